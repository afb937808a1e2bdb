//! Hostile guests are contained: each is stopped by the limit named in the
//! report (or denied by the filesystem), and the host keeps running.

mod common;

use std::time::{Duration, Instant};

use common::*;
use sandbox::{InputDir, LimitKind};

#[tokio::test]
async fn infinite_loop_is_stopped_at_the_time_limit() {
    let mut f = Fixture::new();
    f.asset("spin", WAT_LOOP);
    let t = Instant::now();
    let r = f.run_limited("spin", limits("time=300ms")).await;
    let lim = r.limit_exceeded.expect("time limit");
    assert_eq!(lim.kind, LimitKind::WallTime);
    assert!(lim.used >= 300, "{lim:?}");
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_eq!(r.exit_status, sandbox::KILLED_STATUS);
}

#[tokio::test]
async fn builtin_loop_is_stopped_at_the_time_limit() {
    let f = Fixture::new();
    let r = f
        .run_limited("while :; do :; done", limits("time=200ms"))
        .await;
    assert_eq!(r.limit_exceeded.map(|l| l.kind), Some(LimitKind::WallTime));
}

#[tokio::test]
async fn memory_grow_bomb_hits_the_memory_limit() {
    let mut f = Fixture::new();
    f.asset("grow", WAT_GROW);
    let r = f.run_limited("grow", limits("memory=32M")).await;
    let lim = r.limit_exceeded.expect("memory limit");
    assert_eq!(lim.kind, LimitKind::Memory);
    assert!(lim.used > 32 << 20);
}

#[tokio::test]
async fn stdout_flood_hits_the_stdout_limit() {
    let mut f = Fixture::new();
    f.asset("flood", &wat_flood('y'));
    let r = f.run_limited("flood", limits("stdout=1M")).await;
    let lim = r.limit_exceeded.expect("stdout limit");
    assert_eq!(lim.kind, LimitKind::Stdout);
    assert_eq!(
        r.stdout.as_ref().map(Vec::len),
        Some(1 << 20),
        "exactly the limit is delivered"
    );
}

#[tokio::test]
async fn stderr_flood_hits_the_stderr_limit() {
    let mut f = Fixture::new();
    f.asset("flood", &wat_flood('e'));
    let r = f.run_limited("flood 1>&2", limits("stderr=64K")).await;
    assert_eq!(r.limit_exceeded.map(|l| l.kind), Some(LimitKind::Stderr));
    assert_eq!(r.stderr.len(), 64 << 10);
}

#[tokio::test]
async fn scratch_flood_hits_the_scratch_limit() {
    let mut f = Fixture::new();
    f.asset("flood", &wat_flood('s'));
    let r = f.run_limited("flood > big", limits("scratch=2M")).await;
    assert_eq!(r.limit_exceeded.map(|l| l.kind), Some(LimitKind::Scratch));
    let size = std::fs::metadata(f.scratch().join("big"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(size <= 2 << 20, "{size}");
}

#[tokio::test]
async fn deep_recursion_traps_with_stack_overflow() {
    let mut f = Fixture::new();
    f.asset("recurse", WAT_RECURSE);
    let r = f.run("recurse; echo status=$?", b"").await;
    assert_eq!(stdout(&r), "status=134\n");
    assert!(r.traps[0].contains("stack"), "{:?}", r.traps);
    // The host is fine: the same sandbox runs more work afterwards.
    assert_eq!(stdout(&f.run("echo ok", b"").await), "ok\n");
}

#[tokio::test]
async fn host_files_are_unreachable() {
    let mut f = Fixture::new();
    std::fs::write(f.scratch().join("ok.txt"), b"inside").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", f.scratch().join("evil")).unwrap();
    std::os::unix::fs::symlink("/etc", f.scratch().join("evildir")).unwrap();
    f.asset("ok", &wat_read_path(3, "ok.txt"))
        .asset("passwd", &wat_read_path(3, "etc/passwd"))
        .asset("dotdot", &wat_read_path(3, "../../../../etc/passwd"))
        .asset("abs", &wat_read_path(3, "/etc/passwd"))
        .asset("link", &wat_read_path(3, "evil"))
        .asset("linkdir", &wat_read_path(3, "evildir/passwd"));
    // Control: the same guest reads a scratch file.
    let r = f.run("ok", b"").await;
    assert_eq!((r.exit_status, stdout(&r).as_str()), (0, "inside"));
    for guest in ["passwd", "dotdot", "abs", "link", "linkdir"] {
        let r = f.run(guest, b"").await;
        assert_ne!(r.exit_status, 0, "{guest} opened something");
        assert!(!stdout(&r).contains("root:"), "{guest} read /etc/passwd");
    }
    // The shell's own redirections follow the same rules.
    for exec in [
        "echo $(ok) < /etc/passwd",
        "read -r x < evil; echo $x",
        "read -r x < evildir/passwd; echo $x",
        "read -r x < ../../etc/passwd; echo $x",
    ] {
        let r = f.run(exec, b"").await;
        assert!(!stdout(&r).contains("root:"), "{exec}");
    }
    let r = f.run("echo x > evil", b"").await;
    assert_ne!(r.exit_status, 0);
    assert!(
        std::fs::read_to_string("/etc/passwd")
            .map(|s| !s.starts_with('x'))
            .unwrap_or(true)
    );
}

#[tokio::test]
async fn read_only_directories_cannot_be_written_by_guests_or_the_shell() {
    let mut f = Fixture::new();
    let assets = f.dir.path().join("assets");
    std::fs::create_dir(&assets).unwrap();
    std::fs::write(assets.join("f"), b"asset").unwrap();
    // fd 3 is scratch at `/`, fd 4 the first read-only mount.
    f.asset("readro", &wat_read_path(4, "f"))
        .asset("writero", &wat_write_path(4, "f"))
        .asset("createro", &wat_write_path(4, "new"))
        .asset("writescratch", &wat_write_path(3, "f"));
    let run = |exec: &'static str| {
        let mut s = f.spec(exec);
        s.read_only_dirs.push(InputDir {
            host: assets.clone(),
            guest: "/assets".into(),
        });
        async move { sandbox().run_phase(s).await.expect(exec) }
    };
    let r = run("readro").await;
    assert_eq!((r.exit_status, stdout(&r).as_str()), (0, "asset"));
    assert_eq!(run("writescratch").await.exit_status, 0, "control");
    for guest in ["writero", "createro"] {
        assert_ne!(run(guest).await.exit_status, 0, "{guest} wrote");
    }
    for exec in [
        "echo x > /assets/f",
        "echo x >> /assets/f",
        "echo x > /./scratchdir/../assets/f",
        "cd /assets && echo x > f",
        "echo x > /assets/new",
    ] {
        assert_ne!(run(exec).await.exit_status, 0, "{exec} succeeded");
    }
    let r = run("read -r x < /assets/f; echo $x").await;
    assert_eq!(stdout(&r), "asset\n");
    assert_eq!(std::fs::read(assets.join("f")).unwrap(), b"asset");
    assert!(!assets.join("new").exists());
}

#[tokio::test]
async fn ten_thousand_stage_pipeline_is_rejected_by_the_stage_limit() {
    let f = Fixture::new();
    let exec = vec!["true"; 10_000].join(" | ");
    let r = f.run(&exec, b"").await;
    let lim = r.limit_exceeded.expect("stage limit");
    assert_eq!((lim.kind, lim.used), (LimitKind::PipelineStages, 10_000));
    assert_eq!(r.elapsed, Duration::ZERO, "nothing ran");
}

#[tokio::test]
async fn gigabyte_argument_list_is_rejected_by_the_args_limit() {
    let mut f = Fixture::new();
    f.asset("flood", &wat_flood('a')).asset("wcat", &wat_cat());
    // A 1 GiB `$(...)` is cut off at the args limit, not buffered.
    let r = f.run_limited("wcat $(flood)", limits("args=1M")).await;
    let lim = r.limit_exceeded.expect("args limit");
    assert_eq!(lim.kind, LimitKind::Args);
    assert!(lim.used <= (1 << 20) + (256 << 10), "{lim:?}");
    // So is one endless xargs argument.
    let r = f.run_limited("flood | xargs wcat", limits("args=1M")).await;
    assert_eq!(r.limit_exceeded.map(|l| l.kind), Some(LimitKind::Args));
    // And a value doubled in a loop.
    let r = f
        .run_limited("x=ab; while :; do x=$x$x; done", limits("args=1M"))
        .await;
    assert_eq!(r.limit_exceeded.map(|l| l.kind), Some(LimitKind::Args));
}

#[tokio::test]
async fn one_stage_hitting_a_limit_stops_the_whole_pipeline() {
    let mut f = Fixture::new();
    f.asset("spin", WAT_LOOP)
        .asset("grow", WAT_GROW)
        .asset("wcat", &wat_cat());
    let t = Instant::now();
    let r = f
        .run_limited("spin | grow | wcat", limits("memory=16M,time=60s"))
        .await;
    assert_eq!(r.limit_exceeded.map(|l| l.kind), Some(LimitKind::Memory));
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "spin was not stopped"
    );
}

/// Calls `fd_write(1, iovs, n, 16)` with the iovec array at `iovs` holding
/// (`ptr`, `len`) and exits with the returned errno.
fn wat_write_iov(iovs: i64, n: i32, ptr: i64, len: i64) -> String {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const {ptr}))
    (i32.store (i32.const 4) (i32.const {len}))
    (call $proc_exit (call $fd_write (i32.const 1) (i32.const {iovs}) (i32.const {n}) (i32.const 16)))))"#
    )
}

#[tokio::test]
async fn stdio_fast_path_checks_guest_pointers() {
    let mut f = Fixture::new();
    // 21 = EFAULT, 28 = EINVAL (WASI errno numbers).
    f.asset("oob_buf", &wat_write_iov(0, 1, 65000, 4096));
    f.asset("oob_array", &wat_write_iov(65532, 2, 0, 1));
    f.asset("neg_count", &wat_write_iov(0, -1, 0, 1));
    f.asset("huge_count", &wat_write_iov(0, 1 << 30, 0, 1));
    f.asset("ok", &wat_write_iov(0, 1, 32, 3));
    for (cmd, status) in [
        ("oob_buf", 21),
        ("oob_array", 21),
        ("neg_count", 28),
        ("huge_count", 28),
        ("ok", 0),
    ] {
        let r = f.run(cmd, b"").await;
        assert_eq!(r.exit_status, status, "{cmd}: {r:?}");
        assert!(
            r.limit_exceeded.is_none() && r.traps.is_empty(),
            "{cmd}: {r:?}"
        );
    }
}

#[tokio::test]
async fn closed_stdout_stays_closed() {
    // After fd_close(1), fd 1 is wasmtime-wasi's again: a write is EBADF (8).
    let mut f = Fixture::new();
    f.asset(
        "close_then_write",
        r#"(module
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 32) "leak")
  (func (export "_start")
    (drop (call $fd_close (i32.const 1)))
    (i32.store (i32.const 0) (i32.const 32))
    (i32.store (i32.const 4) (i32.const 4))
    (call $proc_exit (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))))"#,
    );
    let r = f.run("close_then_write", b"").await;
    assert_eq!(r.exit_status, 8, "{r:?}");
    assert_eq!(stdout(&r), "");
}
