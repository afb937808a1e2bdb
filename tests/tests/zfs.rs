//! ZFS-backed nodes on a real pool: Debian's zfs-fuse, a raidz2 pool made
//! of four files, `tidepool up --zfs POOL/td` with a quota per node.
//!
//! - objects written and read back; each node's files in its own dataset;
//! - one disk file of the pool overwritten with garbage while Tidepool
//!   serves: reads stay correct, and the `zpool-scrub` worker's scrub
//!   repairs the disk;
//! - a degraded pool (a disk offline) takes no new copies; back online, it
//!   does again;
//! - a node's quota reached: `507 NotEnoughSpace`, nothing half-written;
//! - `tidepool admin backup` while `up` runs: a snapshot, and a metadata
//!   file that opens.
//!
//! Needs root, `/dev/fuse` and zfs-fuse (`scripts/setup` installs it); the
//! test says loudly that it did not run where they are missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tidepool_tests::{
    Cluster, ClusterOptions, describe, ok, payload, run_with_deadline, tidepool_bin,
};

fn sh(cmd: &str, args: &[&str]) -> std::process::Output {
    run_with_deadline(Command::new(cmd).args(args), None, Duration::from_secs(120))
}

/// Starts the zfs-fuse daemon if none answers; whether ZFS is usable.
fn zfs_ready() -> Result<(), String> {
    if !Path::new("/dev/fuse").exists() {
        return Err("/dev/fuse is missing".into());
    }
    if Command::new("zpool").arg("list").output().is_err() {
        return Err("zpool is not installed (scripts/setup installs zfs-fuse)".into());
    }
    if sh("zpool", &["list"]).status.success() {
        return Ok(());
    }
    // Daemonizes itself.
    let started = sh("zfs-fuse", &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if sh("zpool", &["list"]).status.success() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!(
        "the zfs-fuse daemon does not answer: {}",
        describe(&started)
    ))
}

/// A raidz2 pool of four 256 MiB files, destroyed on drop.
struct Pool {
    name: String,
    disks: Vec<PathBuf>,
    _dir: tempfile::TempDir,
}

impl Pool {
    fn create() -> Pool {
        let dir = tempfile::Builder::new()
            .prefix("tidepool-zfs-")
            .tempdir()
            .unwrap();
        let disks: Vec<PathBuf> = (1..=4)
            .map(|i| dir.path().join(format!("disk{i}")))
            .collect();
        for d in &disks {
            std::fs::File::create(d)
                .unwrap()
                .set_len(256 << 20)
                .unwrap();
        }
        let name = format!("tp{}", std::process::id());
        let mut args = vec!["create", "-m", "none", name.as_str(), "raidz2"];
        args.extend(disks.iter().map(|d| d.to_str().unwrap()));
        let out = sh("zpool", &args);
        assert!(out.status.success(), "zpool create: {}", describe(&out));
        Pool {
            name,
            disks,
            _dir: dir,
        }
    }

    fn status(&self) -> String {
        String::from_utf8_lossy(&sh("zpool", &["status", &self.name]).stdout).into_owned()
    }

    /// The CKSUM column of `disk` in `zpool status`.
    fn cksum_errors(&self, disk: &str) -> u64 {
        self.status()
            .lines()
            .find(|l| l.split_whitespace().next() == Some(disk))
            .and_then(|l| l.split_whitespace().nth(4).map(str::to_owned))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// `zpool scrub` commands in the pool's history.
    fn scrubs_started(&self) -> usize {
        String::from_utf8_lossy(&sh("zpool", &["history", &self.name]).stdout)
            .lines()
            .filter(|l| l.contains("zpool scrub"))
            .count()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Children first: a mounted dataset keeps the pool busy.
        let list = sh("zfs", &["list", "-H", "-o", "name", "-r", &self.name]);
        let mut datasets: Vec<String> = String::from_utf8_lossy(&list.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        datasets.sort();
        for d in datasets.iter().rev() {
            let _ = sh("zfs", &["unmount", "-f", d]);
        }
        let _ = sh("zpool", &["destroy", "-f", &self.name]);
    }
}

fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> Option<String>) -> String {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn nodes_on_a_zfs_raidz_pool_survive_a_damaged_disk_respect_quotas_and_back_up() {
    if let Err(why) = zfs_ready() {
        eprintln!("\n*** ZFS TEST NOT RUN: {why} ***\n");
        return;
    }
    let pool = Pool::create();
    let dataset = format!("{}/td", pool.name);
    let mut c = Cluster::start_with(ClusterOptions {
        args: [
            "--zfs",
            &dataset,
            "--zfs-quota",
            "48M",
            "--scrub-every",
            "3s",
        ]
        .map(String::from)
        .to_vec(),
        ..Default::default()
    })
    .unwrap();

    // Every node in its own dataset.
    let datasets = String::from_utf8_lossy(&sh("zfs", &["list", "-H", "-o", "name,quota"]).stdout)
        .into_owned();
    for i in 1..=3 {
        assert!(
            datasets.contains(&format!("{dataset}/node{i}\t48M")),
            "{datasets}"
        );
    }

    // Writes and reads.
    let bodies: Vec<Vec<u8>> = (0..12)
        .map(|i| payload(300_000 + i * 7, i as u64))
        .collect();
    for (i, b) in bodies.iter().enumerate() {
        c.mput(&format!("/alice/stor/z{i}"), b);
    }
    let read_all = |c: &Cluster| {
        for (i, b) in bodies.iter().enumerate() {
            let out = c.manta("mget", &[&format!("/alice/stor/z{i}")]);
            assert!(
                out.status.success() && out.stdout == *b,
                "z{i} reads back: {}",
                describe(&out)
            );
        }
    };
    read_all(&c);

    // One disk overwritten with garbage (its labels at both ends kept):
    // reads stay right, and the scheduled scrub repairs it.
    let garbage = payload(248 << 20, 99);
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&pool.disks[1])
            .unwrap();
        f.seek(SeekFrom::Start(4 << 20)).unwrap();
        f.write_all(&garbage).unwrap();
        f.sync_all().unwrap();
    }
    read_all(&c);
    // Each scrub reports only its own repairs, and the worker scrubs every
    // 3 s: what stays is the damaged disk's checksum error count.
    let disk2 = pool.disks[1].to_str().unwrap().to_owned();
    let found = wait_for(
        "a scrub to find the damage",
        Duration::from_secs(300),
        || {
            let s = pool.status();
            (pool.cksum_errors(&disk2) > 0 && s.contains("No known data errors")).then_some(s)
        },
    );
    // Healed: with the counters cleared, later scrubs find nothing.
    let out = sh("zpool", &["clear", &pool.name]);
    assert!(out.status.success(), "zpool clear: {}", describe(&out));
    let scrubs = pool.scrubs_started();
    // Three nodes each ask every 3 s: six asks span at least one whole
    // scrub started after the clear.
    wait_for("more scrubs", Duration::from_secs(120), || {
        (pool.scrubs_started() >= scrubs + 6).then(String::new)
    });
    let after = pool.status();
    assert_eq!(
        pool.cksum_errors(&disk2),
        0,
        "the damage was repaired:\n{after}"
    );
    assert!(after.contains("No known data errors"), "{after}");
    eprintln!("pool when the scrub found the damage:\n{found}");
    read_all(&c);

    // A degraded pool takes no new copies; online again, it does.
    let disk4 = pool.disks[3].to_str().unwrap().to_owned();
    let out = sh("zpool", &["offline", &pool.name, &disk4]);
    assert!(out.status.success(), "zpool offline: {}", describe(&out));
    wait_for(
        "writes to stop on a degraded pool",
        Duration::from_secs(60),
        || {
            let out = c.manta_stdin("mput", &["/alice/stor/degraded"], b"x");
            (!out.status.success()).then(|| describe(&out))
        },
    );
    let out = sh("zpool", &["online", &pool.name, &disk4]);
    assert!(out.status.success(), "zpool online: {}", describe(&out));
    wait_for("writes to resume", Duration::from_secs(60), || {
        let out = c.manta_stdin("mput", &["/alice/stor/healthy"], b"x");
        out.status.success().then(String::new)
    });

    // Quota: an object bigger than any node's room is refused whole.
    let big = payload(60 << 20, 5);
    let file = c.root.path().join("big");
    std::fs::write(&file, &big).unwrap();
    let out = c.manta(
        "mput",
        &["-f", file.to_str().unwrap(), "/alice/stor/too-big"],
    );
    assert!(!out.status.success(), "over quota: {}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("NotEnoughSpace"), "507 NotEnoughSpace: {err}");
    let ls = c.manta("mls", &["/alice/stor/too-big"]);
    assert!(!ls.status.success(), "nothing visible: {}", describe(&ls));
    for i in 1..=3 {
        let tmp = c.data_dir().join(format!("nodes/node{i}/tmp"));
        let left: Vec<_> = std::fs::read_dir(&tmp)
            .map(|d| d.collect())
            .unwrap_or_default();
        assert!(
            left.is_empty(),
            "no partial upload left in {}",
            tmp.display()
        );
    }

    // Backup while up runs, and the copy opens.
    let backup = c.root.path().join("backup.redb");
    let mut cmd = Command::new(tidepool_bin());
    cmd.args(["admin", "backup", "--data"])
        .arg(c.data_dir())
        .arg("--out")
        .arg(&backup);
    let out = run_with_deadline(&mut cmd, None, Duration::from_secs(120));
    assert!(out.status.success(), "admin backup: {}", describe(&out));
    let restored = c.root.path().join("restored");
    std::fs::create_dir_all(&restored).unwrap();
    std::fs::copy(&backup, restored.join("meta.redb")).unwrap();
    let mut cmd = Command::new(tidepool_bin());
    cmd.args(["admin", "--data"]).arg(&restored).arg("list");
    let listed = ok(&run_with_deadline(&mut cmd, None, Duration::from_secs(60)));
    assert!(listed.contains("account alice"), "{listed}");

    c.kill9();
    // Unmount before the pool goes, so nothing holds it busy.
    let _ = sh("zfs", &["unmount", "-f", &dataset]);
}
