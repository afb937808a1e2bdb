//! The one definition of what a task's phases see: the mounts, the
//! environment, the limits and the run specs of its `init` and `exec`.
//! A node's agent ([`crate::agent`]) and `tidepool exec` both build their
//! runs here, so a phase that works under `tidepool exec` sees exactly
//! what it sees in a job's task.
//!
//! Guarantees:
//! - A map task's input is the file `<root>/<login>/<segments...>` (each
//!   segment as [`jobs::naming::file_component`] maps it, built from
//!   validated segments only), `<root>` is mounted read-only at
//!   [`INPUT_GUEST`], so the guest finds it at `$MANTA_INPUT_FILE` =
//!   `/manta/<object path>`, and it is also the phase's stdin.
//! - Assets are mounted read-only at [`ASSETS_GUEST`]; `.wasm` assets are
//!   also commands.
//! - The environment is [`jobs::naming::task_env`] (spec §4.8) plus the
//!   in-task tools' token; `init` gets the same minus `MANTA_INPUT_*`.
//! - Limits: [`TASK_WALL_TIME`] of wall time (less what the task waited
//!   for admission), the phase's `memory` over all stages, and one disk
//!   budget (the phase's `disk`) for scratch, stdout and what tools write.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use meta::path::MantaPath;
use sandbox::{InputDir, Limits};

use crate::builtins::TASK_ENV;
use crate::runner::{PhaseInput, PhaseJob, PhaseOutput};

/// Where a map task's input tree is mounted in the sandbox.
pub const INPUT_GUEST: &str = "/manta";
/// Where a phase's assets are mounted (read-only) in the sandbox.
pub const ASSETS_GUEST: &str = "/assets";
/// Wall-time cap of one task.
pub const TASK_WALL_TIME: Duration = Duration::from_secs(3600);
/// Bytes per GB of a phase's `disk` (1 GiB; smaller only in tests).
pub const DISK_UNIT: u64 = 1 << 30;

/// The limits of one task of a phase with `memory_mb` of memory and
/// `disk_gb` of disk (in units of `disk_unit` bytes), which waited
/// `waited` for admission (that comes off its time).
pub fn limits(memory_mb: u32, disk_gb: u32, disk_unit: u64, waited: Duration) -> Limits {
    let mut l = Limits::default();
    let disk = u64::from(disk_gb).saturating_mul(disk_unit);
    l.wall_time = TASK_WALL_TIME.saturating_sub(waited);
    l.memory_bytes = u64::from(memory_mb) << 20;
    l.scratch_bytes = disk;
    l.stdout_bytes = disk;
    l.disk_bytes = disk;
    l
}

/// `path`'s login and segments as a relative host path. Every segment
/// was validated by [`MantaPath`] (non-empty, not `.`/`..`, no `/` or
/// NUL), so the result stays below whatever it is joined to; a segment
/// too long for a file name is mapped as the task's `$MANTA_INPUT_FILE`
/// names it ([`jobs::naming::file_component`]).
pub fn host_relative(path: &MantaPath) -> PathBuf {
    std::iter::once(path.login())
        .chain(path.segments())
        .map(|s| jobs::naming::file_component(s).into_owned())
        .collect()
}

/// The environment of a task's `exec`: `task_env` (from
/// [`jobs::naming::task_env`]) and the in-task tools' `token`, if any.
pub fn exec_env(task_env: &[(String, String)], token: Option<&str>) -> Vec<(String, String)> {
    let mut env = task_env.to_vec();
    if let Some(t) = token {
        env.push((TASK_ENV.to_owned(), t.to_owned()));
    }
    env
}

/// A task's saved stderr when the shell rejected its script (`why`): the
/// task fails with status 2, as bash does.
pub fn script_rejected(why: &str) -> Vec<u8> {
    format!("sh: {why}\n").into_bytes()
}

/// What a task's phases run with; [`TaskPhases::exec_job`] and
/// [`TaskPhases::init_job`] are the runs.
#[derive(Debug, Clone)]
pub struct TaskPhases {
    /// The phase's `exec`.
    pub exec: String,
    /// The phase's `init`, if any (blank counts as none).
    pub init: Option<String>,
    /// The task's scratch directory (the guest's `/`).
    pub scratch: PathBuf,
    /// Where `init` runs, if not in `scratch` (a node's phase instance,
    /// [`PhaseInstance`]).
    pub init_scratch: Option<PathBuf>,
    /// The environment of `exec` ([`exec_env`]).
    pub env: Vec<(String, String)>,
    /// The task's limits ([`limits`]).
    pub limits: Limits,
    /// The job's owner (for per-account runner state).
    pub account: Option<String>,
    /// `.wasm` assets as commands: name → host file.
    pub assets: HashMap<String, PathBuf>,
    /// The host directory of the fetched assets, mounted at
    /// [`ASSETS_GUEST`], if the phase has assets.
    pub assets_dir: Option<PathBuf>,
    /// Clocks and entropy of both runs ([`sandbox::Determinism`]).
    pub determinism: sandbox::Determinism,
}

/// A task's stdin.
pub enum TaskStdin {
    /// A map task: the input tree's host root (mounted at [`INPUT_GUEST`])
    /// and the input file inside it.
    Map { root: PathBuf, file: PathBuf },
    /// A reducer's (or an input-less run's) stream; `None` is empty.
    Stream(Option<PhaseInput>),
}

impl TaskPhases {
    fn base(&self, script: &str) -> PhaseJob {
        let mut job = PhaseJob::new(script, self.scratch.clone());
        job.account = self.account.clone();
        job.limits = self.limits.clone();
        job.assets = self.assets.clone();
        job.determinism = self.determinism.clone();
        job.read_only_dirs
            .extend(self.assets_dir.clone().map(|host| InputDir {
                host,
                guest: ASSETS_GUEST.into(),
            }));
        job
    }

    /// The run of `init`, if the phase has one: the same scratch, assets,
    /// limits and environment as `exec` minus `MANTA_INPUT_*`, empty
    /// stdin, stdout discarded.
    pub fn init_job(&self) -> Option<PhaseJob> {
        let init = self.init.as_deref().filter(|s| !s.trim().is_empty())?;
        let mut job = self.base(init);
        if let Some(dir) = &self.init_scratch {
            job.scratch = dir.clone();
        }
        job.env = self
            .env
            .iter()
            .filter(|(k, _)| !k.starts_with("MANTA_INPUT_"))
            .cloned()
            .collect();
        Some(job)
    }

    /// The run of `exec` over `stdin`, its stdout to `stdout`.
    pub fn exec_job(&self, stdin: TaskStdin, stdout: PhaseOutput) -> PhaseJob {
        let mut job = self.base(&self.exec);
        job.env = self.env.clone();
        job.stdout = stdout;
        match stdin {
            TaskStdin::Map { root, file } => {
                job.input_dir = Some(InputDir {
                    host: root,
                    guest: INPUT_GUEST.into(),
                });
                job.stdin = PhaseInput::File(file);
            }
            TaskStdin::Stream(Some(s)) => job.stdin = s,
            TaskStdin::Stream(None) => {}
        }
        job
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_has_no_input_and_exec_mounts_it_at_manta() {
        let t = TaskPhases {
            exec: "wc -l".into(),
            init: Some("echo hi".into()),
            scratch: "/s".into(),
            init_scratch: None,
            env: exec_env(
                &jobs::naming::task_env(&jobs::naming::EnvSpec {
                    login: "u",
                    job: &uuid::Uuid::nil(),
                    output_base: "/u/jobs/x/stor/u/stor/a.0.",
                    input_object: Some("/u/stor/a"),
                    reducer: None,
                    url: jobs::naming::DEFAULT_TASK_URL,
                }),
                Some("tok"),
            ),
            limits: limits(1024, 8, DISK_UNIT, Duration::ZERO),
            account: None,
            assets: HashMap::new(),
            assets_dir: None,
            determinism: sandbox::Determinism::Free,
        };
        let init = t.init_job().expect("init");
        assert!(init.env.iter().all(|(k, _)| !k.starts_with("MANTA_INPUT_")));
        assert!(init.env.iter().any(|(k, v)| k == TASK_ENV && v == "tok"));
        let root = PathBuf::from("/w/input");
        let path = MantaPath::parse("/alice/stor/a").expect("path");
        let file = root.join(host_relative(&path));
        assert_eq!(file, PathBuf::from("/w/input/alice/stor/a"));
        let exec = t.exec_job(TaskStdin::Map { root, file }, PhaseOutput::Discard);
        assert_eq!(
            exec.input_dir.as_ref().map(|d| d.guest.as_str()),
            Some("/manta")
        );
        assert_eq!(exec.limits.wall_time, TASK_WALL_TIME);
        assert_eq!(exec.limits.stdout_bytes, 8 << 30);
        let blank = TaskPhases {
            init: Some("  ".into()),
            ..t
        };
        assert!(blank.init_job().is_none());
    }
}

/// How a phase's `init` ended on this node.
#[derive(Debug, Clone)]
pub enum InitOutcome {
    /// It succeeded; tasks start from a copy of its scratch.
    Ready,
    /// It failed while run for task `task`: that task fails with
    /// `message` and `stderr` (the object it saved); every other task of
    /// the phase here is aborted ([`INIT_ABORTED`]).
    Failed {
        task: uuid::Uuid,
        message: String,
        stderr: Option<String>,
    },
}

/// The error message of a task whose phase's `init` failed for another
/// task on the same node (spec §4.5).
pub const INIT_ABORTED: &str =
    "task aborted because a previous task failed to initialize (see other errors for details)";

/// A phase's compute instance on one node (spec §4.5, §8.3): its `init`
/// runs once, in the instance's own scratch, and every task of the phase
/// here starts from a copy of what `init` left there (so `/var/tmp` set up
/// by `init` is there, and tasks never see each other's files).
#[derive(Debug)]
pub struct PhaseInstance {
    /// The scratch `init` ran in (the template of each task's scratch).
    pub scratch: PathBuf,
    /// How `init` ended; unset until it ran. An infrastructure failure
    /// leaves it unset, so the next task runs `init` again.
    pub init: tokio::sync::OnceCell<InitOutcome>,
    last_used: std::sync::Mutex<std::time::Instant>,
}

/// The phase instances of one node, by job and phase. An instance unused
/// for [`INSTANCE_IDLE`] is forgotten and its directory removed (a later
/// task of that phase runs `init` again, as Manta reset idle zones).
#[derive(Debug)]
pub struct PhaseInstances {
    dir: PathBuf,
    map: std::sync::Mutex<HashMap<(uuid::Uuid, u32), std::sync::Arc<PhaseInstance>>>,
}

/// How long an idle phase instance is kept.
pub const INSTANCE_IDLE: Duration = Duration::from_secs(600);

impl PhaseInstances {
    /// Instances with their directories under `dir`.
    pub fn new(dir: PathBuf) -> PhaseInstances {
        PhaseInstances {
            dir,
            map: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The instance of `job`'s `phase` (created, with an empty scratch,
    /// on first use); forgets instances idle for too long.
    pub async fn get(
        &self,
        job: uuid::Uuid,
        phase: u32,
    ) -> std::io::Result<std::sync::Arc<PhaseInstance>> {
        let now = std::time::Instant::now();
        let (inst, stale) = {
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            let mut stale = Vec::new();
            map.retain(|_, i| {
                let idle =
                    now.duration_since(*i.last_used.lock().unwrap_or_else(|p| p.into_inner()));
                // Held by a running task: kept whatever its age.
                let keep = idle < INSTANCE_IDLE || std::sync::Arc::strong_count(i) > 1;
                if !keep {
                    stale.push(i.scratch.clone());
                }
                keep
            });
            let inst = map
                .entry((job, phase))
                .or_insert_with(|| {
                    std::sync::Arc::new(PhaseInstance {
                        scratch: self.dir.join(format!("phase-{job}-{phase}")),
                        init: tokio::sync::OnceCell::new(),
                        last_used: std::sync::Mutex::new(now),
                    })
                })
                .clone();
            *inst.last_used.lock().unwrap_or_else(|p| p.into_inner()) = now;
            (inst, stale)
        };
        for s in stale {
            tokio::task::spawn_blocking(move || {
                let _ = std::fs::remove_dir_all(&s);
            });
        }
        tokio::fs::create_dir_all(&inst.scratch).await?;
        Ok(inst)
    }
}

/// Copy the tree `from` into the (existing, empty) directory `to`: a
/// task's scratch from its phase instance's. Files are copied, not
/// linked, so what a task writes never reaches the instance or another
/// task.
pub fn copy_tree(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let dst = to.join(entry.file_name());
        if kind.is_dir() {
            std::fs::create_dir_all(&dst)?;
            copy_tree(&entry.path(), &dst)?;
        } else if kind.is_symlink() {
            let target = std::fs::read_link(entry.path())?;
            std::os::unix::fs::symlink(target, &dst)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &dst)?;
        }
    }
    Ok(())
}
