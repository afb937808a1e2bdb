//! Per-run resource limits, their `KEY=VALUE` syntax, and the record of
//! which one a run exceeded.
//!
//! Every limit has a default sized for a Manta-like task (1 GiB of memory,
//! 8 GiB of disk). A run that exceeds any limit is stopped as a whole; the
//! first limit hit wins and is reported with how much was used.
//!
//! Memory and disk are budgets of the whole run, not of one command: the
//! linear memories of every wasm instance alive at once are summed against
//! `memory_bytes`, and `disk_bytes` is charged by the scratch tree (its
//! largest size seen), the stdout file (when stdout goes to a file), and
//! whatever host builtins write on the run's behalf (spool files, uploads;
//! see [`crate::DiskBudget`]).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::SandboxError;

/// Limits applied to one run of a phase.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Limits {
    /// Wall-clock time for the whole run.
    pub wall_time: Duration,
    /// Linear memory of all wasm instances of the run together, in bytes.
    pub memory_bytes: u64,
    /// Bytes the run may write to its stdout.
    pub stdout_bytes: u64,
    /// Bytes of stderr kept (and allowed) for the whole run.
    pub stderr_bytes: u64,
    /// Bytes the scratch directory may hold.
    pub scratch_bytes: u64,
    /// Bytes the run may put on disk in all: scratch, a stdout file, and
    /// what host builtins charge (spools, uploads).
    pub disk_bytes: u64,
    /// Commands in one pipeline.
    pub pipeline_stages: u64,
    /// Bytes of one command's argument list plus environment (like `ARG_MAX`),
    /// also the most a `$(...)` substitution may capture.
    pub args_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            wall_time: Duration::from_secs(600),
            memory_bytes: 1 << 30,
            stdout_bytes: 8 << 30,
            stderr_bytes: 1 << 20,
            scratch_bytes: 8 << 30,
            disk_bytes: 8 << 30,
            pipeline_stages: 64,
            args_bytes: 2 << 20,
        }
    }
}

/// Which limit a run exceeded. The `key` strings are the `--limit` names and
/// are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum LimitKind {
    WallTime,
    Memory,
    Stdout,
    Stderr,
    Scratch,
    Disk,
    PipelineStages,
    Args,
}

impl LimitKind {
    /// All kinds, in the order they are documented.
    pub const ALL: [LimitKind; 8] = [
        LimitKind::WallTime,
        LimitKind::Memory,
        LimitKind::Stdout,
        LimitKind::Stderr,
        LimitKind::Scratch,
        LimitKind::Disk,
        LimitKind::PipelineStages,
        LimitKind::Args,
    ];

    /// The stable key used in `--limit KEY=VALUE` and in reports.
    pub fn key(self) -> &'static str {
        match self {
            LimitKind::WallTime => "time",
            LimitKind::Memory => "memory",
            LimitKind::Stdout => "stdout",
            LimitKind::Stderr => "stderr",
            LimitKind::Scratch => "scratch",
            LimitKind::Disk => "disk",
            LimitKind::PipelineStages => "stages",
            LimitKind::Args => "args",
        }
    }

    fn unit(self) -> &'static str {
        match self {
            LimitKind::WallTime => "ms",
            LimitKind::PipelineStages => "stages",
            _ => "bytes",
        }
    }
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A limit that stopped a run: which, its value, and how much was used when
/// it tripped (time in milliseconds, stages as a count, everything else in bytes).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LimitReport {
    pub kind: LimitKind,
    pub limit: u64,
    pub used: u64,
}

impl fmt::Display for LimitReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = self.kind.unit();
        write!(
            f,
            "{} limit exceeded: used {} {unit}, limit {} {unit}",
            self.kind, self.used, self.limit
        )
    }
}

impl Limits {
    /// The configured value of one limit, in the unit of [`LimitReport`].
    pub fn get(&self, kind: LimitKind) -> u64 {
        match kind {
            LimitKind::WallTime => u64::try_from(self.wall_time.as_millis()).unwrap_or(u64::MAX),
            LimitKind::Memory => self.memory_bytes,
            LimitKind::Stdout => self.stdout_bytes,
            LimitKind::Stderr => self.stderr_bytes,
            LimitKind::Scratch => self.scratch_bytes,
            LimitKind::Disk => self.disk_bytes,
            LimitKind::PipelineStages => self.pipeline_stages,
            LimitKind::Args => self.args_bytes,
        }
    }

    /// Sets one limit from `KEY=VALUE`: sizes take `K`/`M`/`G`/`T` (binary)
    /// suffixes, `time` takes `ms`/`s`/`m`/`h` (bare numbers are seconds).
    pub fn set(&mut self, spec: &str) -> Result<(), SandboxError> {
        let bad = |why: &str| SandboxError::Config(format!("--limit {spec:?}: {why}"));
        let (key, value) = spec
            .split_once('=')
            .ok_or_else(|| bad("expected KEY=VALUE"))?;
        let kind = LimitKind::ALL
            .into_iter()
            .find(|k| k.key() == key.trim())
            .ok_or_else(|| {
                bad("unknown key (time, memory, stdout, stderr, scratch, disk, stages, args)")
            })?;
        let value = value.trim();
        match kind {
            LimitKind::WallTime => {
                self.wall_time = parse_duration(value).ok_or_else(|| bad("bad duration"))?
            }
            LimitKind::PipelineStages => {
                self.pipeline_stages = value.parse().map_err(|_| bad("bad count"))?
            }
            _ => {
                let n = parse_size(value).ok_or_else(|| bad("bad size"))?;
                match kind {
                    LimitKind::Memory => self.memory_bytes = n,
                    LimitKind::Stdout => self.stdout_bytes = n,
                    LimitKind::Stderr => self.stderr_bytes = n,
                    LimitKind::Scratch => self.scratch_bytes = n,
                    LimitKind::Disk => self.disk_bytes = n,
                    _ => self.args_bytes = n,
                }
            }
        }
        Ok(())
    }
}

impl FromStr for Limits {
    type Err = SandboxError;
    /// Parses a comma-separated list of `KEY=VALUE` over the defaults.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut l = Limits::default();
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            l.set(part)?;
        }
        Ok(l)
    }
}

/// `123`, `4k`, `64M`, `1G`, `2T` (binary multiples; a trailing `B`/`iB` is allowed).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s
        .strip_suffix("iB")
        .or_else(|| s.strip_suffix('B'))
        .unwrap_or(s);
    let (digits, shift) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 10),
        (i, 'm' | 'M') => (&s[..i], 20),
        (i, 'g' | 'G') => (&s[..i], 30),
        (i, 't' | 'T') => (&s[..i], 40),
        _ => (s, 0),
    };
    digits.parse::<u64>().ok()?.checked_mul(1u64 << shift)
}

/// `250ms`, `30s`, `5m`, `1h`, or bare seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (digits, scale_ms) = if let Some(d) = s.strip_suffix("ms") {
        (d, 1)
    } else if let Some(d) = s.strip_suffix('s') {
        (d, 1000)
    } else if let Some(d) = s.strip_suffix('m') {
        (d, 60_000)
    } else if let Some(d) = s.strip_suffix('h') {
        (d, 3_600_000)
    } else {
        (s, 1000)
    };
    Some(Duration::from_millis(
        digits.parse::<u64>().ok()?.checked_mul(scale_ms)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("64M"), Some(64 << 20));
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("99999999999T"), None);
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Some(Duration::from_secs(3)));
    }

    #[test]
    fn set_by_key() {
        let l: Limits = "time=2s,memory=64M,stages=3,disk=1G".parse().unwrap();
        assert_eq!(l.wall_time, Duration::from_secs(2));
        assert_eq!(l.disk_bytes, 1 << 30);
        assert_eq!(l.memory_bytes, 64 << 20);
        assert_eq!(l.pipeline_stages, 3);
        assert!("bogus=1".parse::<Limits>().is_err());
        assert!("memory".parse::<Limits>().is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,20}") {
            let _ = parse_size(&s);
            let _ = parse_duration(&s);
            let _ = s.parse::<Limits>();
        }

        #[test]
        fn size_roundtrip(n in 0u64..1<<40) {
            prop_assert_eq!(parse_size(&n.to_string()), Some(n));
            prop_assert_eq!(parse_size(&format!("{}K", n >> 10)), Some((n >> 10) << 10));
        }
    }
}
