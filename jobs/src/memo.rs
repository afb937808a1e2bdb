//! Memoized tasks: a map task identical to an earlier successful one of the
//! same account reuses that task's output instead of running.
//!
//! "Identical" is the [`memo_key`]: the account, the guest runtime (the
//! coreutils module and engine, [`TaskMemo::runtime`]), the phase's `exec`,
//! its assets with their etags, the environment minus the values that name
//! the job or the task ([`PER_TASK_ENV`]), the next phase's reducer count,
//! the limits, the phase's `memo` policy, and the input object's etag (its
//! object id: a new version is a new etag, a snaplink shares it). The input's
//! *name* is not part of it, so a later phase over a reused output is
//! identical too.
//!
//! A result is recorded only when the agent reports it reproducible
//! ([`TaskResponse::reproducible`](crate::protocol::TaskResponse)): the run
//! was observed (wall clock, entropy beyond hash keys, job-naming variables,
//! the in-task tools) and did none of it, or the phase declared itself
//! deterministic (`"memo":"deterministic"`, every clock and all entropy
//! seeded from the key); its only output is its stdout; and it ran with the
//! runtime and asset etags the key assumed. The record is written in the
//! task's own commit transaction.
//!
//! Reuse snaplinks the recorded output (conditional on its etag) to the new
//! task's stdout name, so deleting either job's outputs later is safe. A
//! record whose output is gone or replaced is forgotten and the task runs.
//! Phases with `init` and reducers are never memoized: their results depend
//! on more than one input object.

use uuid::Uuid;

use crate::manifest::{MemoPolicy, Phase, PhaseKind};
use crate::protocol::TaskLimits;

/// Environment variables whose values name the job or the task, not the
/// work: left out of the key, and a run that expands one is not
/// reproducible.
pub const PER_TASK_ENV: &[&str] = &[
    "MANTA_JOB_ID",
    "MANTA_OUTPUT_BASE",
    "MANTA_INPUT_FILE",
    "MANTA_INPUT_OBJECT",
    "MANTA_REDUCER",
    "TIDEPOOL_TASK",
];

/// Whether `phase`'s tasks may be memoized at all.
pub fn memoizable(phase: &Phase) -> bool {
    phase.kind == PhaseKind::Map
        && phase.memo != MemoPolicy::Off
        && phase.init.as_deref().is_none_or(|i| i.trim().is_empty())
}

/// What a map task's result may depend on.
#[derive(Debug, Clone, Copy)]
pub struct MemoInput<'a> {
    pub owner: &'a str,
    pub runtime: &'a str,
    pub phase: &'a Phase,
    /// The phase's assets as named, with their etags, in manifest order.
    pub assets: &'a [(String, Uuid)],
    /// The task's environment (per-task values are skipped).
    pub env: &'a [(String, String)],
    pub next_reducers: u32,
    pub limits: TaskLimits,
    /// The input object's etag.
    pub input: Uuid,
}

/// The memo key of a map task.
pub fn memo_key(m: &MemoInput<'_>) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("tidepool memo key v1");
    let mut field = |b: &[u8]| {
        h.update(&(b.len() as u64).to_le_bytes());
        h.update(b);
    };
    field(m.owner.as_bytes());
    field(m.runtime.as_bytes());
    field(m.phase.exec.as_bytes());
    field(match m.phase.memo {
        MemoPolicy::Deterministic => b"deterministic",
        _ => b"auto",
    });
    for (name, etag) in m.assets {
        field(name.as_bytes());
        field(etag.as_bytes());
    }
    field(b"env");
    let mut env: Vec<&(String, String)> = m
        .env
        .iter()
        .filter(|(k, _)| !PER_TASK_ENV.contains(&k.as_str()))
        .collect();
    env.sort();
    for (k, v) in env {
        field(k.as_bytes());
        field(v.as_bytes());
    }
    field(&m.next_reducers.to_le_bytes());
    field(&m.limits.memory_mb.to_le_bytes());
    field(&m.limits.disk_gb.to_le_bytes());
    field(m.input.as_bytes());
    *h.finalize().as_bytes()
}

/// Hex form of a key (the wire form, [`crate::protocol::TaskMemo::key`]).
pub fn key_hex(key: &[u8; 32]) -> String {
    blake3::Hash::from_bytes(*key).to_hex().to_string()
}

/// A key back from its hex form.
pub fn key_from_hex(s: &str) -> Option<[u8; 32]> {
    blake3::Hash::from_hex(s).ok().map(|h| *h.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse_stored_phases;

    fn phase(json: &str) -> Phase {
        parse_stored_phases(json).expect("phase").phases.remove(0)
    }

    #[test]
    fn the_key_covers_the_work_and_not_the_names() {
        let p = phase(r#"[{"exec":"wc -l"}]"#);
        let input = Uuid::from_u128(7);
        let assets = vec![("/a/stor/x.wasm".to_owned(), Uuid::from_u128(1))];
        let env = |job: &str| {
            vec![
                ("MANTA_USER".to_owned(), "a".to_owned()),
                ("MANTA_JOB_ID".to_owned(), job.to_owned()),
                ("MANTA_INPUT_OBJECT".to_owned(), format!("/a/jobs/{job}/x")),
            ]
        };
        let (e1, e2) = (env("j1"), env("j2"));
        let base = MemoInput {
            owner: "a",
            runtime: "r1",
            phase: &p,
            assets: &assets,
            env: &e1,
            next_reducers: 0,
            limits: TaskLimits {
                memory_mb: 1024,
                disk_gb: 8,
            },
            input,
        };
        let k = memo_key(&base);
        // Another job, another input name: the same work.
        assert_eq!(k, memo_key(&MemoInput { env: &e2, ..base }));
        let other_asset = vec![("/a/stor/x.wasm".to_owned(), Uuid::from_u128(2))];
        let other_env = vec![("MANTA_USER".to_owned(), "b".to_owned())];
        let p2 = phase(r#"[{"exec":"wc -c"}]"#);
        let p3 = phase(r#"[{"exec":"wc -l","memo":"deterministic"}]"#);
        for changed in [
            MemoInput { owner: "b", ..base },
            MemoInput {
                runtime: "r2",
                ..base
            },
            MemoInput { phase: &p2, ..base },
            MemoInput { phase: &p3, ..base },
            MemoInput {
                assets: &other_asset,
                ..base
            },
            MemoInput {
                env: &other_env,
                ..base
            },
            MemoInput {
                next_reducers: 2,
                ..base
            },
            MemoInput {
                input: Uuid::from_u128(8),
                ..base
            },
        ] {
            assert_ne!(k, memo_key(&changed), "{changed:?}");
        }
        assert_eq!(key_from_hex(&key_hex(&k)), Some(k));
    }

    #[test]
    fn only_plain_map_phases_are_memoizable() {
        assert!(memoizable(&phase(r#"[{"exec":"wc"}]"#)));
        assert!(memoizable(&phase(r#"[{"exec":"wc","memo":true}]"#)));
        assert!(memoizable(&phase(
            r#"[{"exec":"wc","memo":"deterministic"}]"#
        )));
        assert!(!memoizable(&phase(r#"[{"exec":"wc","memo":false}]"#)));
        assert!(!memoizable(&phase(r#"[{"exec":"wc","init":"echo"}]"#)));
        assert!(!memoizable(&phase(r#"[{"exec":"wc","type":"reduce"}]"#)));
        assert!(parse_stored_phases(r#"[{"exec":"wc","memo":"sometimes"}]"#).is_err());
    }
}
