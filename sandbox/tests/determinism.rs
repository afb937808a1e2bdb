//! Clocks, entropy and job-naming variables under `Determinism`: observed
//! runs name what made them unreproducible, seeded runs repeat exactly.

mod common;

use common::*;
use sandbox::{Determinism, Input};

/// Writes 16 bytes of WASI entropy (`random_get`), then the realtime clock
/// (`clock_time_get`, 8 bytes), to stdout;
/// `extra` more bytes of entropy are read first (a program drawing more
/// than a hash table's keys).
fn wat_entropy_and_time(extra: u32) -> String {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $random_get (i32.const 1024) (i32.const {extra})))
    (drop (call $random_get (i32.const 64) (i32.const 16)))
    (drop (call $clock (i32.const 0) (i64.const 1) (i32.const 80)))
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 24))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#
    )
}

async fn run_with(f: &Fixture, exec: &str, det: Determinism) -> sandbox::RunReport {
    let mut s = f.spec(exec);
    s.stdin = Input::Bytes(b"a\nb\n".to_vec());
    s.env = vec![("JOB".into(), "j1".into()), ("USER".into(), "u".into())];
    s.determinism = det;
    sandbox().run_phase(s).await.expect("run")
}

fn observed() -> Determinism {
    Determinism::Observed {
        seed: [1; 32],
        watch: vec!["JOB".into()],
    }
}

#[tokio::test]
async fn observed_runs_name_what_made_them_unreproducible() {
    let mut f = Fixture::new();
    f.asset("ent", &wat_entropy_and_time(0));
    f.asset("ent64", &wat_entropy_and_time(64));
    // Pure work reports nothing, even where it draws hash-table keys (awk).
    for exec in [
        "wc -l",
        "sort | uniq -c",
        "echo $USER",
        "awk '{n[$1]++} END {print length(n)}'",
    ] {
        let r = run_with(&f, exec, observed()).await;
        assert!(r.success(), "{exec}: {r:?}");
        assert_eq!(r.nondeterminism, None, "{exec}");
    }
    for (exec, why) in [
        ("date +%s", "read the clock"),
        ("ent", "read the clock"),
        ("ent64", "read entropy"),
        ("echo $JOB", "expanded $JOB"),
        ("env", "ran env"),
        ("awk 'BEGIN{print ENVIRON[\"JOB\"]}'", "ran awk"),
    ] {
        let r = run_with(&f, exec, observed()).await;
        assert_eq!(r.nondeterminism.as_deref(), Some(why), "{exec}: {r:?}");
    }
    // Free runs watch nothing.
    let r = run_with(&f, "date +%s; echo $JOB", Determinism::Free).await;
    assert_eq!(r.nondeterminism, None);
}

#[tokio::test]
async fn seeded_runs_repeat_their_clocks_and_entropy() {
    let mut f = Fixture::new();
    f.asset("ent", &wat_entropy_and_time(0));
    let a = run_with(&f, "ent; date +%Y", Determinism::Seeded([7; 32])).await;
    let b = run_with(&f, "ent; date +%Y", Determinism::Seeded([7; 32])).await;
    let c = run_with(&f, "ent; date +%Y", Determinism::Seeded([8; 32])).await;
    assert!(a.success(), "{a:?}");
    assert_eq!(a.stdout, b.stdout, "same seed, same bytes");
    assert_ne!(a.stdout, c.stdout, "another seed, other entropy");
    let out = a.stdout.unwrap_or_default();
    assert_eq!(out.len(), 24 + 5, "{out:?}");
    assert_eq!(&out[24..], b"2000\n", "the seeded clock starts in 2000");
    assert_eq!(a.nondeterminism, None);
    // Real entropy differs run to run.
    let x = run_with(&f, "ent", Determinism::Free).await;
    let y = run_with(&f, "ent", Determinism::Free).await;
    assert_ne!(
        x.stdout.map(|o| o[..16].to_vec()),
        y.stdout.map(|o| o[..16].to_vec())
    );
}
