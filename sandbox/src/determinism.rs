//! What a run may learn that its inputs do not decide: the clocks, entropy,
//! and the environment values that name the job rather than the work.
//!
//! A caller that wants to reuse a run's result for an identical later run
//! (Tidepool's memoized tasks) must know the result is a function of the
//! run's inputs. [`Determinism`] says how a run treats these sources:
//!
//! - [`Determinism::Free`]: real clocks and entropy; nothing is watched.
//! - [`Determinism::Observed`]: entropy and the monotonic clocks come from
//!   a seed (so a hash table's keys, or a timer, repeat), but the first
//!   read of the wall clock, more entropy than a hash table's keys, an
//!   expansion of a watched environment variable, or a command that
//!   prints the environment is named in
//!   [`RunReport::nondeterminism`](crate::RunReport::nondeterminism): the
//!   result is then not reproducible and must not be reused.
//! - [`Determinism::Seeded`]: the run declared itself reproducible. Clocks
//!   and entropy are a function of the seed (the same seed gives the same
//!   values, in the same order, per command), so reading them does not
//!   change the result of an identical run.
//!
//! Guarantees: in `Observed` and `Seeded` mode every WASI read of a clock
//! (`clock_time_get`, any clock id) and of entropy (`random_get`) is seen,
//! by every command of the run, because the linker's entry points are
//! shadowed here; `clock_res_get` and sleeping (`poll_oneoff`) reveal
//! nothing about the time and are not watched. Not covered, by design: file
//! timestamps (scratch files the run makes carry the host's time), and a
//! program of the caller's own that reads a watched variable through WASI
//! (every command reads the whole environment at start, so such reads
//! cannot be told from harmless ones); the shell's own expansions and the
//! environment-printing tools this crate ships are covered.

use std::sync::Arc;

use wasmtime::{AsContextMut, Caller, Linker};
use wasmtime_wasi::p1::types::Errno;
use wasmtime_wasi::p1::wasi_snapshot_preview1::WasiSnapshotPreview1;

use crate::engine::StageState;
use crate::fastio::{delegate, errno, memory, range};
use crate::run::RunShared;

const MODULE: &str = "wasi_snapshot_preview1";

/// How a run treats clocks, entropy and job-naming environment variables.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Determinism {
    /// Real values; nothing watched.
    #[default]
    Free,
    /// Entropy and the monotonic clocks come from `seed`; reading the wall
    /// clock (real), more entropy than a hash table's keys
    /// ([`HASH_KEY_ALLOWANCE`]), or expanding one of `watch` (environment
    /// variables whose values are not part of the run's identity: a job
    /// id, an output name) is reported.
    Observed { seed: [u8; 32], watch: Vec<String> },
    /// Every clock and entropy derived from this seed; nothing reported.
    Seeded([u8; 32]),
}

/// Entropy one command of an observed run may read without being reported:
/// a language runtime's hash-table keys (Rust's std reads 16 bytes, CPython
/// 24). It still comes from the seeded stream, so it repeats.
pub const HASH_KEY_ALLOWANCE: u64 = 32;

/// The realtime clock of a seeded run starts here (2000-01-01T00:00:00Z),
/// and all clocks advance one microsecond per read.
const SEEDED_EPOCH_NS: u64 = 946_684_800 * 1_000_000_000;
const SEEDED_TICK_NS: u64 = 1_000;

/// Commands that print the whole environment (or can, from their program
/// text): running one in an observed run is reported.
pub(crate) fn prints_environment(argv: &[String]) -> bool {
    let name = argv
        .first()
        .map(|a| a.rsplit('/').next().unwrap_or(a))
        .unwrap_or("");
    let args = || argv.iter().skip(1);
    match name {
        "env" | "printenv" => true,
        "set" | "export" | "declare" | "typeset" => argv.len() == 1 || args().any(|a| a == "-p"),
        // Program text on the command line, or in a file we cannot see.
        "awk" => args().any(|a| a.contains("ENVIRON") || a.starts_with("-f")),
        "jq" => args().any(|a| a.contains("env") || a.contains("ENV") || a.starts_with("-f")),
        _ => false,
    }
}

/// A stage's view of its run's determinism: the seeded clock and entropy
/// stream (one per command, so concurrent commands do not race for values).
pub(crate) struct StageDeterminism {
    run: Arc<RunShared>,
    rng: Option<blake3::OutputReader>,
    ticks: u64,
    entropy_read: u64,
}

impl StageDeterminism {
    pub(crate) fn new(run: Arc<RunShared>, argv: &[String]) -> StageDeterminism {
        let seed = match run.determinism() {
            Determinism::Seeded(seed) | Determinism::Observed { seed, .. } => Some(*seed),
            Determinism::Free => None,
        };
        let rng = seed.map(|seed| {
            let mut h = blake3::Hasher::new_keyed(&seed);
            for a in argv {
                h.update(&(a.len() as u64).to_le_bytes());
                h.update(a.as_bytes());
            }
            h.finalize_xof()
        });
        StageDeterminism {
            run,
            rng,
            ticks: 0,
            entropy_read: 0,
        }
    }

    fn observed(&self) -> bool {
        matches!(self.run.determinism(), Determinism::Observed { .. })
    }

    /// The seeded clock's next reading; `None` for a real reading (a free
    /// run, or the wall clock of an observed one, which is reported).
    fn seeded_time(&mut self, id: i32) -> Option<Result<u64, Errno>> {
        self.rng.as_ref()?;
        if id == 0 && self.observed() {
            self.run.note_nondeterminism("read the clock");
            return None;
        }
        self.ticks += 1;
        let t = self.ticks * SEEDED_TICK_NS;
        Some(match id {
            0 => Ok(SEEDED_EPOCH_NS + t),
            1..=3 => Ok(t),
            _ => Err(Errno::Inval),
        })
    }

    /// Fills `buf` from the seeded stream; `false` for a free run.
    fn seeded_entropy(&mut self, buf: &mut [u8]) -> bool {
        let observed = self.observed();
        let Some(rng) = self.rng.as_mut() else {
            return false;
        };
        rng.fill(buf);
        self.entropy_read = self.entropy_read.saturating_add(buf.len() as u64);
        if observed && self.entropy_read > HASH_KEY_ALLOWANCE {
            self.run.note_nondeterminism("read entropy");
        }
        true
    }
}

/// Shadows the clock and entropy entry points of `linker` (which must
/// already hold wasmtime-wasi's WASIp1 functions).
pub(crate) fn shadow(linker: &mut Linker<StageState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.func_wrap_async(
        MODULE,
        "clock_time_get",
        |mut caller: Caller<'_, StageState>, (id, precision, out): (i32, i64, i32)| {
            Box::new(async move {
                if let Some(t) = caller.data_mut().det.seeded_time(id) {
                    let mem = memory(&mut caller)?;
                    let data = mem.data_mut(&mut caller);
                    return Ok(match t.and_then(|t| range(data, out, 8).map(|r| (r, t))) {
                        Ok((r, t)) => {
                            data[r].copy_from_slice(&t.to_le_bytes());
                            0
                        }
                        Err(e) => errno(e),
                    });
                }
                delegate!(sync caller, clock_time_get(id, precision, out))
            })
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "random_get",
        |mut caller: Caller<'_, StageState>, (buf, len): (i32, i32)| {
            Box::new(async move {
                if caller.data().det.rng.is_some() {
                    let mem = memory(&mut caller)?;
                    let (data, state) = mem.data_and_store_mut(&mut caller);
                    return Ok(match range(data, buf, len as u32 as u64) {
                        Ok(r) => {
                            state.det.seeded_entropy(&mut data[r]);
                            0
                        }
                        Err(e) => errno(e),
                    });
                }
                delegate!(sync caller, random_get(buf, len))
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn environment_printers_are_recognised() {
        assert!(prints_environment(&argv(&["env"])));
        assert!(prints_environment(&argv(&["/usr/bin/printenv", "HOME"])));
        assert!(prints_environment(&argv(&["export"])));
        assert!(prints_environment(&argv(&["export", "-p"])));
        assert!(!prints_environment(&argv(&["export", "A=1"])));
        assert!(prints_environment(&argv(&[
            "awk",
            "{print ENVIRON[\"X\"]}"
        ])));
        assert!(prints_environment(&argv(&["awk", "-f", "prog.awk"])));
        assert!(!prints_environment(&argv(&["awk", "{print $1}"])));
        assert!(prints_environment(&argv(&["jq", "$ENV.X"])));
        assert!(!prints_environment(&argv(&["wc", "-l"])));
    }
}
