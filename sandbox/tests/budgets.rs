//! Per-run budgets: memory summed over every stage of a pipeline, one disk
//! budget for scratch, the stdout file and what host builtins write, a
//! bound on `.wasm` command size, and an exhausted instance pool reported
//! as the host's failure rather than the guest's.

mod common;

use std::sync::Arc;

use common::*;
use sandbox::{
    BuiltinCall, HostBuiltin, Input, LimitKind, Output, PhaseSpec, Sandbox, SandboxConfig,
};

/// Takes 48 MiB of memory, then copies stdin to stdout until EOF.
fn wat_hold() -> String {
    wat_cat().replacen(
        "(local $n i32)",
        "(local $n i32)\n    (drop (memory.grow (i32.const 768)))",
        1,
    )
}

#[tokio::test]
async fn memory_is_summed_over_the_stages_of_a_pipeline() {
    let mut f = Fixture::new();
    f.asset("spin", WAT_LOOP).asset("hold", &wat_hold());
    // Four stages of 48 MiB fit in 256 MiB: only the time limit stops them.
    let four = ["hold"; 4].join(" | ");
    let r = f
        .run_limited(&format!("spin | {four}"), limits("memory=256M,time=2s"))
        .await;
    assert_eq!(r.limit_exceeded.map(|l| l.kind), Some(LimitKind::WallTime));
    // Eight do not, although each alone is far below the limit.
    let eight = ["hold"; 8].join(" | ");
    let r = f
        .run_limited(&format!("spin | {eight}"), limits("memory=256M,time=60s"))
        .await;
    let lim = r.limit_exceeded.expect("memory limit");
    assert_eq!(lim.kind, LimitKind::Memory);
    assert!(lim.used > 256 << 20 && lim.used < 300 << 20, "{lim:?}");
}

#[tokio::test]
async fn a_redirect_into_scratch_is_charged_to_the_disk_budget() {
    let mut f = Fixture::new();
    f.asset("flood", &wat_flood('s'));
    let r = f.run_limited("flood > big", limits("disk=2M")).await;
    assert_eq!(r.limit_exceeded.map(|l| l.kind), Some(LimitKind::Disk));
    let size = std::fs::metadata(f.scratch().join("big"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(size <= 2 << 20, "{size}");
}

#[tokio::test]
async fn scratch_and_the_stdout_file_share_one_disk_budget() {
    let mut f = Fixture::new();
    f.asset("flood", &wat_flood('d'));
    let out = f.dir.path().join("stdout");
    let exec = "flood | head -c 1500000 > a; flood | head -c 1500000";
    let run = |disk: &str| {
        let mut s = f.spec(exec);
        s.limits = limits(disk);
        s.stdout = Output::File(out.clone());
        sandbox().run_phase(s)
    };
    // Each half fits in 2 MiB; together they do not.
    let r = run("disk=2M").await.unwrap();
    assert_eq!(r.limit_exceeded.map(|l| l.kind), Some(LimitKind::Disk));
    std::fs::remove_file(f.scratch().join("a")).unwrap();
    let r = run("disk=4M").await.unwrap();
    assert!(r.success(), "{r:?}");
    assert_eq!(std::fs::metadata(&out).unwrap().len(), 1_500_000);
}

/// Charges 1 MiB at a time to the run's disk budget until refused;
/// prints how many charges were accepted.
struct Charger;

#[async_trait::async_trait]
impl HostBuiltin for Charger {
    async fn run(&self, call: BuiltinCall<'_>) -> i32 {
        let budget = call.disk_budget();
        let mut n = 0;
        while budget.charge(1 << 20).is_ok() {
            n += 1;
            if n > 100 {
                return 2;
            }
        }
        call.stdout().write_all(format!("{n}\n").as_bytes()).await;
        1
    }
}

#[tokio::test]
async fn host_builtins_charge_the_same_disk_budget() {
    let sb = Sandbox::new(SandboxConfig::default())
        .unwrap()
        .with_builtin("charge", Arc::new(Charger));
    let f = Fixture::new();
    let mut s = f.spec("yes | head -c 1048576 > a; charge");
    s.limits = limits("disk=5M");
    let r = sb.run_phase(s).await.unwrap();
    // 1 MiB of scratch leaves room for four charges of 1 MiB.
    assert_eq!(stdout(&r).trim(), "4");
    assert_eq!(r.limit_exceeded.map(|l| l.kind), Some(LimitKind::Disk));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("charge: disk quota of 5242880 bytes exceeded"),
        "the refused command is told: {err:?}"
    );
}

#[tokio::test]
async fn an_oversized_wasm_command_is_refused_unread() {
    let mut f = Fixture::new();
    let p = f.dir.path().join("big.wasm");
    std::fs::File::create(&p)
        .unwrap()
        .set_len(sandbox::MAX_MODULE_BYTES + 1)
        .unwrap();
    f.assets.insert("big".into(), p);
    let r = f.run("big", b"").await;
    assert_eq!(r.exit_status, 126);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("at most"), "{err}");
}

#[tokio::test]
async fn an_exhausted_instance_pool_is_the_hosts_failure() {
    let mut cfg = SandboxConfig::default();
    cfg.max_instances = 2;
    let sb = Sandbox::new(cfg).unwrap();
    let mut f = Fixture::new();
    f.asset("wcat", &wat_cat()).asset("spin", WAT_LOOP);
    // Three instances alive at once (spin never ends) in a pool of two.
    let mut s: PhaseSpec = f.spec("spin | wcat | wcat");
    s.stdin = Input::Bytes(b"x".to_vec());
    s.limits = limits("time=30s");
    let r = sb.run_phase(s).await.unwrap();
    assert!(r.limit_exceeded.is_none(), "{r:?}");
    assert!(r.traps.is_empty(), "not the guest's crash: {r:?}");
    let why = r.infrastructure_error.expect("host failure reported");
    assert!(why.contains("no wasm instance available"), "{why}");
}
