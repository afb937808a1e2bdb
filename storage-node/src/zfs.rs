//! ZFS under a node: each node's files in a dataset of its own (with a
//! quota), the pool's health for heartbeats, `zpool scrub`, and snapshots.
//!
//! Everything goes through the `zfs` and `zpool` commands (Debian's
//! `zfs-fuse` or OpenZFS: the same command lines), run as child processes
//! off the async workers, each bounded by [`COMMAND_LIMIT`]. Dataset names
//! are validated before they reach a command line ([`check_dataset`]), and
//! arguments are passed as separate argv entries, never through a shell.

use std::path::Path;
use std::time::Duration;

use tokio::process::Command;

/// Longest a single `zfs`/`zpool` command may take.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(60);

/// A ZFS command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ZfsError {
    /// The dataset name is not one ZFS accepts.
    #[error("invalid ZFS dataset name {0:?}")]
    InvalidName(String),
    /// The command could not be started (ZFS not installed?).
    #[error(
        "cannot run {command}: {source} (is zfs-fuse or OpenZFS installed and its daemon running?)"
    )]
    Spawn {
        /// The command.
        command: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The command ran and failed.
    #[error("{command} {args}: {stderr}")]
    Failed {
        /// The command.
        command: &'static str,
        /// Its arguments.
        args: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// The command took longer than [`COMMAND_LIMIT`].
    #[error("{0} did not finish within {COMMAND_LIMIT:?}")]
    Timeout(&'static str),
    /// The mount point holds files: ZFS would not mount over them.
    #[error("{0} is not empty: a ZFS dataset can only be mounted on an empty or missing directory")]
    NotEmpty(String),
}

/// Checks `name` is a plausible dataset name (`pool[/child...]`): ZFS's
/// characters only, no empty components, no option-like start.
pub fn check_dataset(name: &str) -> Result<(), ZfsError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name.split('/').all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
        })
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(ZfsError::InvalidName(name.to_owned()))
    }
}

/// The pool a dataset lives in.
pub fn pool_of(dataset: &str) -> &str {
    dataset.split('/').next().unwrap_or(dataset)
}

async fn run(command: &'static str, args: &[&str]) -> Result<String, ZfsError> {
    let child = Command::new(command).args(args).kill_on_drop(true).output();
    let out = tokio::time::timeout(COMMAND_LIMIT, child)
        .await
        .map_err(|_| ZfsError::Timeout(command))?
        .map_err(|source| ZfsError::Spawn { command, source })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(ZfsError::Failed {
            command,
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Makes sure `dataset` exists, is mounted at `mountpoint` and has
/// `quota` bytes (when given). Creates missing parents. A dataset that
/// exists keeps its data; a mount point that holds files is refused.
pub async fn ensure_dataset(
    dataset: &str,
    mountpoint: &Path,
    quota: Option<u64>,
) -> Result<(), ZfsError> {
    check_dataset(dataset)?;
    let mp = mountpoint.to_string_lossy().into_owned();
    let exists = run("zfs", &["list", "-H", "-o", "name", dataset])
        .await
        .is_ok();
    if !exists {
        if std::fs::read_dir(mountpoint).is_ok_and(|mut d| d.next().is_some()) {
            return Err(ZfsError::NotEmpty(mp));
        }
        let opt = format!("mountpoint={mp}");
        run("zfs", &["create", "-p", "-o", &opt, dataset]).await?;
    } else {
        let current = run("zfs", &["get", "-H", "-o", "value", "mountpoint", dataset]).await?;
        if current.trim() != mp {
            let opt = format!("mountpoint={mp}");
            run("zfs", &["set", &opt, dataset]).await?;
        }
    }
    let mounted = run("zfs", &["get", "-H", "-o", "value", "mounted", dataset]).await?;
    if mounted.trim() != "yes" {
        run("zfs", &["mount", dataset]).await?;
    }
    if let Some(q) = quota {
        let opt = format!("quota={q}");
        run("zfs", &["set", &opt, dataset]).await?;
    }
    Ok(())
}

/// The pool's health as `zpool` reports it (`ONLINE`, `DEGRADED`,
/// `FAULTED`, ...).
pub async fn pool_health(pool: &str) -> Result<String, ZfsError> {
    check_dataset(pool)?;
    Ok(run("zpool", &["list", "-H", "-o", "health", pool])
        .await?
        .trim()
        .to_owned())
}

/// Starts a scrub of `pool` (one already running is left alone); returns
/// the pool's scrub status line.
pub async fn scrub(pool: &str) -> Result<String, ZfsError> {
    check_dataset(pool)?;
    match run("zpool", &["scrub", pool]).await {
        Ok(_) => {}
        Err(ZfsError::Failed { stderr, .. }) if stderr.contains("currently scrubbing") => {}
        Err(e) => return Err(e),
    }
    scrub_status(pool).await
}

/// The `scrub:` (or `scan:`) line of `zpool status POOL`.
pub async fn scrub_status(pool: &str) -> Result<String, ZfsError> {
    check_dataset(pool)?;
    let status = run("zpool", &["status", pool]).await?;
    Ok(status
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("scrub:") || l.starts_with("scan:"))
        .unwrap_or("scrub: unknown")
        .to_owned())
}

/// The dataset mounted at `mountpoint`, if any.
pub async fn dataset_at(mountpoint: &Path) -> Result<Option<String>, ZfsError> {
    let want = mountpoint.to_string_lossy();
    let list = run("zfs", &["list", "-H", "-o", "name,mountpoint"]).await?;
    Ok(list.lines().find_map(|l| {
        let (name, mp) = l.split_once('\t')?;
        (mp == want).then(|| name.to_owned())
    }))
}

/// Takes snapshot `dataset@name`.
pub async fn snapshot(dataset: &str, name: &str) -> Result<(), ZfsError> {
    check_dataset(dataset)?;
    check_dataset(name)?;
    let full = format!("{dataset}@{name}");
    run("zfs", &["snapshot", &full]).await.map(|_| ())
}

/// Mounts snapshot `dataset@name` read-only at `mountpoint` as a
/// temporary clone `clone`, runs `f` on the mounted directory, and
/// destroys the clone again (also when `f` fails).
pub async fn with_snapshot_mounted<T>(
    dataset: &str,
    name: &str,
    clone: &str,
    mountpoint: &Path,
    f: impl FnOnce(&Path) -> std::io::Result<T>,
) -> Result<std::io::Result<T>, ZfsError> {
    check_dataset(clone)?;
    let snap = format!("{dataset}@{name}");
    let mp = format!("mountpoint={}", mountpoint.to_string_lossy());
    run(
        "zfs",
        &["clone", "-o", &mp, "-o", "readonly=on", &snap, clone],
    )
    .await?;
    let result = f(mountpoint);
    // zfs-fuse reports a just-used clone busy for a moment: unmount first
    // and retry the destroy a few times.
    let _ = run("zfs", &["unmount", "-f", clone]).await;
    let mut attempt = 0;
    loop {
        match run("zfs", &["destroy", "-f", clone]).await {
            Ok(_) => return Ok(result),
            Err(ZfsError::Failed { stderr, .. }) if stderr.contains("busy") && attempt < 20 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_names() {
        for ok in ["tank", "tank/tidepool", "t-1/a_b.c:d"] {
            assert!(check_dataset(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "/tank", "tank/", "tank//x", "-o", "tank/a b", "tank;rm", "a@b",
        ] {
            assert!(check_dataset(bad).is_err(), "{bad}");
        }
        assert_eq!(pool_of("tank/a/b"), "tank");
        assert_eq!(pool_of("tank"), "tank");
    }
}
