//! Supervisor tests on the embedded meta backend with the in-process
//! executor. Phases run through a small interpreter of a few fixed commands
//! (`wc -l`, `upper`, `sum`, `split4`, `fail`) instead of the wasm sandbox:
//! what is under test is scheduling, chaining, retries and commits.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use meta::embedded::EmbeddedKv;
use meta::jobs::{JobRecord, JobState, JobStore, NewJob};
use meta::kv::Kv;
use meta::namespace::{
    Conditions, Headers, Namespace, NewObject, NodeRecord, NodeState, system_now_ms,
};
use meta::path::MantaPath;
use uuid::Uuid;

use crate::executor::{
    BlobStore, ExecError, InProcessExecutor, MemoryBlobs, PhaseOutput, PhaseRunner,
};
use crate::manifest::parse_manifest;
use crate::supervisor::{DriveEnd, Supervisor, SupervisorConfig};

const NODES: [&str; 2] = ["n1", "n2"];

/// Bytes in memory, names recorded in the namespace (parents created), so
/// the supervisor resolves outputs like any object.
struct NsBlobs {
    ns: Namespace,
    bytes: MemoryBlobs,
}

impl NsBlobs {
    async fn record(&self, name: &str, size: u64) -> Result<(), ExecError> {
        let io = |e: meta::namespace::NamespaceError| ExecError::Io(e.to_string());
        let path = MantaPath::parse(name).map_err(|e| ExecError::Io(e.to_string()))?;
        let mut parents = Vec::new();
        let mut p = path.parent();
        while let Some(dir) = p {
            if dir.rest().is_empty() {
                break;
            }
            p = dir.parent();
            parents.push(dir);
        }
        for dir in parents.iter().rev() {
            if self.ns.get(dir).await.map_err(io)?.is_none() {
                self.ns
                    .put_directory(dir, &Headers::new())
                    .await
                    .map_err(io)?;
            }
        }
        let obj = NewObject {
            object_id: Uuid::new_v4(),
            size,
            content_md5: "1B2M2Y8AsgTpgAmY7PhCfg==".into(),
            blake3: "00".repeat(32),
            content_type: "application/octet-stream".into(),
            headers: Headers::new(),
            copies: NODES.iter().map(|s| s.to_string()).collect(),
            durability: 2,
        };
        self.ns
            .put_object(&path, obj, &Conditions::default())
            .await
            .map_err(io)?;
        Ok(())
    }
}

#[async_trait]
impl BlobStore for NsBlobs {
    async fn get(&self, name: &str) -> Result<Vec<u8>, ExecError> {
        self.bytes.get(name).await
    }

    async fn put(&self, name: &str, bytes: Vec<u8>) -> Result<(), ExecError> {
        self.record(name, bytes.len() as u64).await?;
        self.bytes.put(name, bytes).await
    }
}

fn env_of<'a>(env: &'a [(String, String)], k: &str) -> &'a str {
    env.iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// The test "shell": a handful of fixed commands.
fn run_phase(exec: &str, env: &[(String, String)], stdin: &[u8]) -> PhaseOutput {
    let text = String::from_utf8_lossy(stdin);
    let ok = |s: String| PhaseOutput {
        stdout: s.into_bytes(),
        ..Default::default()
    };
    match exec {
        "wc -l" => ok(format!("{}\n", text.lines().count())),
        "upper" => ok(text.to_uppercase()),
        "sum" => ok(format!(
            "{}\n",
            text.lines()
                .filter_map(|l| l.trim().parse::<u64>().ok())
                .sum::<u64>()
        )),
        "sumr" => ok(format!(
            "{}:{}\n",
            env_of(env, "MANTA_REDUCER"),
            text.lines()
                .filter_map(|l| l.trim().parse::<u64>().ok())
                .sum::<u64>()
        )),
        "split4" => {
            let mut parts = vec![String::new(); 4];
            for l in text.lines() {
                let n: usize = l.trim().parse().unwrap_or(0);
                parts[n % 4].push_str(l);
                parts[n % 4].push('\n');
            }
            PhaseOutput {
                emits: parts
                    .into_iter()
                    .enumerate()
                    .map(|(i, p)| (p.into_bytes(), Some(i as u32)))
                    .collect(),
                ..Default::default()
            }
        }
        _ => PhaseOutput {
            status: 1,
            stderr: b"boom\n".to_vec(),
            ..Default::default()
        },
    }
}

struct Env {
    _dir: tempfile::TempDir,
    store: JobStore,
    ns: Namespace,
    blobs: Arc<NsBlobs>,
    now: Arc<AtomicU64>,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let kv: Arc<dyn Kv> = Arc::new(
        EmbeddedKv::open(dir.path().join("m.redb"))
            .await
            .expect("open"),
    );
    let now = Arc::new(AtomicU64::new(system_now_ms()));
    let clock = {
        let now = now.clone();
        Arc::new(move || now.load(Ordering::SeqCst))
    };
    let store = JobStore::new(kv.clone()).with_clock(clock);
    let ns = Namespace::new(kv);
    ns.create_account("tpuser").await.expect("account");
    for n in NODES {
        ns.register_node(&NodeRecord {
            id: n.into(),
            url: format!("http://{n}"),
            az: format!("az-{n}"),
            capacity_total: 1 << 40,
            capacity_used: 0,
            heartbeat_ms: system_now_ms(),
            pool_health: None,
            state: NodeState::Active,
        })
        .await
        .expect("node");
    }
    let blobs = Arc::new(NsBlobs {
        ns: ns.clone(),
        bytes: MemoryBlobs::default(),
    });
    Env {
        _dir: dir,
        store,
        ns,
        blobs,
        now,
    }
}

fn cfg(id: &str) -> SupervisorConfig {
    SupervisorConfig {
        poll_interval: Duration::from_millis(10),
        health: membership::HealthRule {
            heartbeat_timeout: Duration::from_secs(86_400),
        },
        lease_ttl: Duration::from_secs(30),
        ..SupervisorConfig::new(id)
    }
}

impl Env {
    fn executor(&self) -> Arc<InProcessExecutor> {
        Arc::new(InProcessExecutor::new(
            self.blobs.clone(),
            Arc::new(run_phase),
        ))
    }

    fn supervisor(&self, id: &str, exec: Arc<InProcessExecutor>) -> Arc<Supervisor> {
        Supervisor::new(cfg(id), self.store.clone(), self.ns.clone(), exec)
    }

    async fn object(&self, name: &str, body: &str) {
        self.blobs
            .put(name, body.as_bytes().to_vec())
            .await
            .expect("put object");
    }

    async fn job(&self, manifest: &str, inputs: &[&str]) -> Uuid {
        let m = parse_manifest(manifest.as_bytes()).expect("manifest");
        let job = self
            .store
            .create_job(&NewJob {
                owner: "tpuser".into(),
                name: m.name.clone(),
                phases_json: m.phases_json.clone(),
                phase_count: m.phases.len() as u32,
                transient: m.transient,
                keep_intermediates: m.keep_intermediates,
                operator: false,
                roles: None,
            })
            .await
            .expect("create");
        let names: Vec<String> = inputs.iter().map(|s| s.to_string()).collect();
        self.store
            .add_inputs(&job.id, &names, true)
            .await
            .expect("inputs");
        job.id
    }

    async fn record(&self, id: &Uuid) -> JobRecord {
        self.store
            .get_job(id)
            .await
            .expect("get")
            .expect("job exists")
    }

    /// Committed outputs of `phase` with their contents.
    async fn outputs(&self, id: &Uuid, phase: u32) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = self
                .store
                .outputs(id, phase, after.as_deref(), 2)
                .await
                .expect("outputs");
            for (_, o) in &page {
                let body = self
                    .blobs
                    .bytes
                    .read(&o.name)
                    .expect("output object exists");
                out.push((o.name.clone(), String::from_utf8_lossy(&body).into_owned()));
            }
            match page.last() {
                Some((k, _)) if page.len() == 2 => after = Some(k.clone()),
                _ => return out,
            }
        }
    }
}

async fn drive(sup: &Arc<Supervisor>, id: Uuid) {
    let end = tokio::time::timeout(Duration::from_secs(60), sup.drive(id))
        .await
        .expect("job finishes in time")
        .expect("drive");
    assert_eq!(end, DriveEnd::Done);
}

#[tokio::test]
async fn three_input_map_job() {
    let e = env().await;
    e.object("/tpuser/stor/a", "1\n").await;
    e.object("/tpuser/stor/b", "1\n2\n").await;
    e.object("/tpuser/stor/c", "1\n2\n3\n").await;
    let id = e
        .job(
            r#"{"phases":[{"exec":"wc -l"}]}"#,
            &["/tpuser/stor/a", "/tpuser/stor/b", "/tpuser/stor/c"],
        )
        .await;
    let sup = e.supervisor("s1", e.executor());
    drive(&sup, id).await;
    let j = e.record(&id).await;
    assert_eq!(j.state, JobState::Done);
    assert!(j.time_done_ms.is_some());
    assert_eq!(
        (
            j.stats.tasks,
            j.stats.tasks_done,
            j.stats.outputs,
            j.stats.errors,
            j.stats.retries
        ),
        (3, 3, 3, 0, 0)
    );
    let outs = e.outputs(&id, 0).await;
    let mut bodies: Vec<&str> = outs.iter().map(|(_, b)| b.as_str()).collect();
    bodies.sort();
    assert_eq!(bodies, vec!["1\n", "2\n", "3\n"]);
    for (name, body) in &outs {
        let obj = match body.as_str() {
            "1\n" => "a",
            "2\n" => "b",
            _ => "c",
        };
        assert!(
            name.starts_with(&format!("/tpuser/jobs/{id}/stor/tpuser/stor/{obj}.0.")),
            "{name}"
        );
    }
    assert!(
        e.store.lease(&id).await.expect("lease").is_none(),
        "lease released at done"
    );
}

#[tokio::test]
async fn map_map_reduce_chains_phases() {
    let e = env().await;
    e.object("/tpuser/stor/a", "x\n").await;
    e.object("/tpuser/stor/b", "x\ny\n").await;
    e.object("/tpuser/stor/c", "x\ny\nz\n").await;
    let id = e
        .job(
            r#"{"phases":[{"exec":"upper"},{"exec":"wc -l"},{"type":"reduce","exec":"sum"}]}"#,
            &["/tpuser/stor/a", "/tpuser/stor/b", "/tpuser/stor/c"],
        )
        .await;
    drive(&e.supervisor("s1", e.executor()), id).await;
    let j = e.record(&id).await;
    assert_eq!(
        (
            j.stats.tasks,
            j.stats.tasks_done,
            j.stats.outputs,
            j.stats.errors
        ),
        (7, 7, 1, 0)
    );
    let outs = e.outputs(&id, 2).await;
    assert_eq!(outs.len(), 1);
    assert_eq!(outs[0].1, "6\n");
    assert!(
        outs[0]
            .0
            .starts_with(&format!("/tpuser/jobs/{id}/stor/reduce.2."))
    );
    // Phase 1 outputs keep the phase-0 input's lineage in their names.
    let mid = e.outputs(&id, 1).await;
    assert_eq!(mid.len(), 3);
    assert!(
        mid.iter()
            .all(|(n, _)| n.contains("/stor/tpuser/stor/") && n.contains(".1."))
    );
}

#[tokio::test]
async fn four_reducers_get_their_partitions() {
    let e = env().await;
    let nums = |r: std::ops::RangeInclusive<u64>| r.map(|n| format!("{n}\n")).collect::<String>();
    e.object("/tpuser/stor/p1", &nums(1..=10)).await;
    e.object("/tpuser/stor/p2", &nums(11..=20)).await;
    let id = e
        .job(
            r#"{"phases":[{"exec":"split4"},{"type":"reduce","count":4,"exec":"sumr"}]}"#,
            &["/tpuser/stor/p1", "/tpuser/stor/p2"],
        )
        .await;
    drive(&e.supervisor("s1", e.executor()), id).await;
    let j = e.record(&id).await;
    assert_eq!(
        (
            j.stats.tasks,
            j.stats.tasks_done,
            j.stats.outputs,
            j.stats.errors
        ),
        (6, 6, 4, 0)
    );
    let got: BTreeMap<String, String> = e
        .outputs(&id, 1)
        .await
        .into_iter()
        .map(|(_, b)| {
            let (r, s) = b.trim().split_once(':').expect("r:sum");
            (r.to_string(), s.to_string())
        })
        .collect();
    let want: BTreeMap<String, String> = (0..4u64)
        .map(|r| {
            (
                r.to_string(),
                (1..=20u64).filter(|n| n % 4 == r).sum::<u64>().to_string(),
            )
        })
        .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn reduce_only_job_without_inputs_still_runs_its_reducer() {
    let e = env().await;
    let id = e
        .job(r#"{"phases":[{"type":"reduce","exec":"wc -l"}]}"#, &[])
        .await;
    drive(&e.supervisor("s1", e.executor()), id).await;
    let outs = e.outputs(&id, 0).await;
    assert_eq!(
        outs.iter().map(|(_, b)| b.as_str()).collect::<Vec<_>>(),
        vec!["0\n"]
    );
}

#[tokio::test]
async fn failing_task_and_bad_inputs_become_error_records() {
    let e = env().await;
    e.object("/tpuser/stor/a", "1\n").await;
    e.ns.put_directory(
        &MantaPath::parse("/tpuser/stor/dir").expect("path"),
        &Headers::new(),
    )
    .await
    .expect("dir");
    let id = e
        .job(
            r#"{"phases":[{"exec":"fail"}]}"#,
            &[
                "/tpuser/stor/a",
                "/tpuser/stor/missing",
                "/tpuser/stor/dir",
                "/tpuser",
                "/other/stor/x",
            ],
        )
        .await;
    drive(&e.supervisor("s1", e.executor()), id).await;
    let j = e.record(&id).await;
    assert_eq!(
        (
            j.stats.tasks,
            j.stats.tasks_done,
            j.stats.outputs,
            j.stats.errors,
            j.stats.retries
        ),
        (1, 1, 0, 5, 0)
    );
    let errs: Vec<_> = e
        .store
        .errors(&id, 0, 100)
        .await
        .expect("errors")
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    let by_input = |i: &str| {
        errs.iter()
            .find(|e| e.input.as_deref() == Some(i))
            .expect("error for input")
    };
    let user = by_input("/tpuser/stor/a");
    assert_eq!(user.code, "UserTaskError");
    assert_eq!(user.message, "user command exited with code 1");
    assert_eq!(user.what, "phase 0: input \"/tpuser/stor/a\"");
    let stderr = user.stderr.clone().expect("stderr saved");
    assert!(stderr.starts_with(&format!("/tpuser/jobs/{id}/stor/tpuser/stor/a.0.err.")));
    assert_eq!(e.blobs.bytes.read(&stderr).as_deref(), Some(&b"boom\n"[..]));
    let missing = by_input("/tpuser/stor/missing");
    assert_eq!(
        (missing.code.as_str(), missing.message.as_str()),
        (
            "ResourceNotFoundError",
            "no such object: \"/tpuser/stor/missing\""
        )
    );
    assert_eq!(missing.p0input.as_deref(), Some("/tpuser/stor/missing"));
    assert_eq!(by_input("/tpuser/stor/dir").code, "InvalidArgumentError");
    assert_eq!(
        by_input("/tpuser").message,
        "malformed object name: \"/tpuser\""
    );
    assert_eq!(by_input("/other/stor/x").code, "AuthorizationError");
}

#[tokio::test]
async fn node_death_is_retried_on_another_copy_without_duplicate_outputs() {
    let e = env().await;
    let names: Vec<String> = (0..6).map(|i| format!("/tpuser/stor/o{i}")).collect();
    for n in &names {
        e.object(n, "a\nb\n").await;
    }
    let inputs: Vec<&str> = names.iter().map(String::as_str).collect();
    let id = e.job(r#"{"phases":[{"exec":"wc -l"}]}"#, &inputs).await;
    let exec = e.executor();
    exec.kill_first_node_used();
    drive(&e.supervisor("s1", exec), id).await;
    let j = e.record(&id).await;
    assert!(
        j.stats.retries > 0,
        "a task ran on the dead node: {:?}",
        j.stats
    );
    assert_eq!(j.stats.tasks, 6 + j.stats.retries);
    // Spec: `tasks == tasksDone` once done, retried attempts included.
    assert_eq!(
        (j.stats.tasks_done, j.stats.outputs, j.stats.errors),
        (j.stats.tasks, 6, 0)
    );
    let outs = e.outputs(&id, 0).await;
    let unique: HashSet<&String> = outs.iter().map(|(n, _)| n).collect();
    assert_eq!(
        (outs.len(), unique.len()),
        (6, 6),
        "each task's output committed once"
    );
    let tasks = e.store.tasks(&id, None, 100).await.expect("tasks");
    let retried: Vec<_> = tasks.iter().filter(|t| t.retries > 0).collect();
    assert!(!retried.is_empty());
    for t in retried {
        assert!(
            !t.tried.is_empty() && t.node.as_ref() != t.tried.first(),
            "retry moved to another copy: {t:?}"
        );
    }
}

#[tokio::test]
async fn a_node_that_failed_is_passed_over_until_it_heartbeats_again() {
    let e = env().await;
    // Failures are recorded on the supervisor's clock: after the nodes'
    // last heartbeat.
    e.now.fetch_add(1_000, Ordering::SeqCst);
    // Each task picks either copy at random (equal load): all 20 landing
    // on one node has probability 2^-19.
    let names: Vec<String> = (0..20).map(|i| format!("/tpuser/stor/h{i}")).collect();
    for n in &names {
        e.object(n, "x\n").await;
    }
    let inputs: Vec<&str> = names.iter().map(String::as_str).collect();
    let exec = e.executor();
    exec.kill_node("n1");
    let sup = e.supervisor("s1", exec);
    let manifest = r#"{"phases":[{"exec":"wc -l"}]}"#;
    // Retried attempts count as tasks done too; outputs once per input.
    let stats = |j: JobRecord| {
        assert_eq!(j.stats.tasks, j.stats.tasks_done, "{:?}", j.stats);
        (
            j.stats.tasks_done - j.stats.retries,
            j.stats.outputs,
            j.stats.errors,
        )
    };

    // Tasks are spread over both copies, so some land on the dead node.
    let first = e.job(manifest, &inputs).await;
    drive(&sup, first).await;
    let j = e.record(&first).await;
    assert!(j.stats.retries > 0, "some ran on n1: {:?}", j.stats);
    assert_eq!(stats(j), (20, 20, 0));

    // n1 has not heartbeaten since it failed: every task goes to n2.
    let second = e.job(manifest, &inputs).await;
    drive(&sup, second).await;
    let j = e.record(&second).await;
    assert_eq!(j.stats.retries, 0, "n1 passed over: {:?}", j.stats);
    assert_eq!(stats(j), (20, 20, 0));
    let tasks = e.store.tasks(&second, None, 100).await.expect("tasks");
    assert!(tasks.iter().all(|t| t.node.as_deref() == Some("n2")));

    // A heartbeat after the failure makes n1 a candidate again.
    let mut n1 = e.ns.get_node("n1").await.expect("get").expect("n1");
    n1.heartbeat_ms = e.now.load(Ordering::SeqCst) + 1;
    e.ns.register_node(&n1).await.expect("heartbeat");
    let third = e.job(manifest, &inputs).await;
    drive(&sup, third).await;
    let j = e.record(&third).await;
    assert!(j.stats.retries > 0, "n1 tried again: {:?}", j.stats);
    assert_eq!(stats(j), (20, 20, 0));
}

/// A gate that holds phase runs until opened (a supervisor dies while its
/// tasks are still running on nodes).
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    fn open(&self) {
        *self.open.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cv.notify_all();
    }

    fn wait(&self) {
        let mut g = self.open.lock().unwrap_or_else(|p| p.into_inner());
        while !*g {
            g = self.cv.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_supervisor_takes_over_after_the_lease_expires() {
    let e = env().await;
    let names: Vec<String> = (0..6).map(|i| format!("/tpuser/stor/t{i}")).collect();
    for n in &names {
        e.object(n, "l\n").await;
    }
    let inputs: Vec<&str> = names.iter().map(String::as_str).collect();
    let id = e
        .job(
            r#"{"phases":[{"exec":"wc -l"},{"type":"reduce","exec":"sum"}]}"#,
            &inputs,
        )
        .await;

    let gate = Arc::new(Gate::default());
    let held: Arc<dyn PhaseRunner> = {
        let gate = gate.clone();
        Arc::new(move |exec: &str, env: &[(String, String)], stdin: &[u8]| {
            gate.wait();
            run_phase(exec, env, stdin)
        })
    };
    let a = Supervisor::new(
        cfg("A"),
        e.store.clone(),
        e.ns.clone(),
        Arc::new(InProcessExecutor::new(e.blobs.clone(), held)),
    );
    assert_eq!(a.claim_jobs(10).await.expect("claim"), vec![id]);
    let b = e.supervisor("B", e.executor());
    assert!(
        b.claim_jobs(10).await.expect("claim").is_empty(),
        "A holds the lease"
    );
    let a_run = {
        let a = a.clone();
        tokio::spawn(async move { a.drive(id).await })
    };
    // Wait (bounded) until A has dispatched every map task, then kill it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while e.record(&id).await.stats.tasks < 7 {
        assert!(Instant::now() < deadline, "A never dispatched");
        tokio::task::yield_now().await;
    }
    a_run.abort();
    assert!(a_run.await.is_err(), "A was killed");
    assert_eq!(e.record(&id).await.stats.tasks_done, 0);

    e.now.fetch_add(31_000, Ordering::SeqCst);
    assert_eq!(
        b.claim_jobs(10).await.expect("claim"),
        vec![id],
        "B takes the expired lease"
    );
    assert_eq!(
        a.drive(id).await.expect("drive"),
        DriveEnd::LeaseLost,
        "A is fenced"
    );
    drive(&b, id).await;
    gate.open();

    let j = e.record(&id).await;
    assert_eq!(
        (
            j.stats.tasks,
            j.stats.tasks_done,
            j.stats.outputs,
            j.stats.errors
        ),
        (7, 7, 1, 0)
    );
    let outs = e.outputs(&id, 1).await;
    assert_eq!(outs.len(), 1);
    assert_eq!(outs[0].1, "6\n", "every input counted once");
    assert_eq!(e.outputs(&id, 0).await.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_lost_with_its_supervisor_every_time_fails_after_its_retries() {
    let e = env().await;
    e.object("/tpuser/stor/x", "l\n").await;
    let id = e
        .job(r#"{"phases":[{"exec":"wc -l"}]}"#, &["/tpuser/stor/x"])
        .await;
    // Every attempt hangs (as if it took its process down), and each
    // supervisor dies while the attempt is in flight.
    let gate = Arc::new(Gate::default());
    let started = Arc::new(AtomicU64::new(0));
    let held: Arc<dyn PhaseRunner> = {
        let (gate, started) = (gate.clone(), started.clone());
        Arc::new(move |exec: &str, env: &[(String, String)], stdin: &[u8]| {
            started.fetch_add(1, Ordering::SeqCst);
            gate.wait();
            run_phase(exec, env, stdin)
        })
    };
    let max_retries = cfg("x").max_retries;
    for round in 0..=u64::from(max_retries) {
        let s = Supervisor::new(
            cfg(&format!("S{round}")),
            e.store.clone(),
            e.ns.clone(),
            Arc::new(InProcessExecutor::new(e.blobs.clone(), held.clone())),
        );
        e.now.fetch_add(31_000, Ordering::SeqCst);
        assert_eq!(s.claim_jobs(10).await.expect("claim"), vec![id]);
        let run = {
            let s = s.clone();
            tokio::spawn(async move { s.drive(id).await })
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while started.load(Ordering::SeqCst) <= round {
            assert!(
                Instant::now() < deadline,
                "round {round} never ran the task"
            );
            tokio::task::yield_now().await;
        }
        run.abort();
        assert!(run.await.is_err(), "the supervisor was killed");
    }
    // The next owner does not dispatch it again: the task fails.
    let last = e.supervisor("last", e.executor());
    e.now.fetch_add(31_000, Ordering::SeqCst);
    assert_eq!(last.claim_jobs(10).await.expect("claim"), vec![id]);
    drive(&last, id).await;
    gate.open();
    assert_eq!(
        started.load(Ordering::SeqCst),
        u64::from(max_retries) + 1,
        "no attempt after the retries"
    );
    let j = e.record(&id).await;
    assert_eq!(j.state, JobState::Done);
    assert_eq!(
        (j.stats.tasks, j.stats.tasks_done, j.stats.errors),
        (1, 1, 1)
    );
    let errs = e.store.errors(&id, 0, 10).await.expect("errors");
    assert_eq!(errs.len(), 1);
    let err = &errs[0].1;
    assert_eq!(err.code, "InternalError");
    assert_eq!(err.message, crate::supervisor::LOST_ATTEMPTS);
    assert_eq!(err.input.as_deref(), Some("/tpuser/stor/x"));
}

#[tokio::test]
async fn cancelled_job_ends_done_with_cancel_errors() {
    let e = env().await;
    let id2 = {
        let m = parse_manifest(br#"{"phases":[{"type":"reduce","exec":"sum"}]}"#).expect("m");
        let j = e
            .store
            .create_job(&NewJob {
                owner: "tpuser".into(),
                name: String::new(),
                phases_json: m.phases_json,
                phase_count: 1,
                transient: false,
                keep_intermediates: false,
                operator: false,
                roles: None,
            })
            .await
            .expect("create");
        e.store.cancel(&j.id).await.expect("cancel");
        j.id
    };
    drive(&e.supervisor("s1", e.executor()), id2).await;
    let j = e.record(&id2).await;
    assert!(j.cancelled && j.input_done && j.state == JobState::Done);
    let errs = e.store.errors(&id2, 0, 10).await.expect("errors");
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].1.code, "JobCancelledError");
    assert_eq!(errs[0].1.what, "phase 0: reduce");
}

#[tokio::test]
async fn idle_open_input_is_closed_automatically() {
    let e = env().await;
    e.object("/tpuser/stor/a", "1\n2\n").await;
    let m = parse_manifest(br#"{"phases":[{"exec":"wc -l"}]}"#).expect("m");
    let j = e
        .store
        .create_job(&NewJob {
            owner: "tpuser".into(),
            name: String::new(),
            phases_json: m.phases_json,
            phase_count: 1,
            transient: false,
            keep_intermediates: false,
            operator: false,
            roles: None,
        })
        .await
        .expect("create");
    e.store
        .add_inputs(&j.id, &["/tpuser/stor/a".to_string()], false)
        .await
        .expect("add");
    let sup = e.supervisor("s1", e.executor());
    let run = {
        let sup = sup.clone();
        tokio::spawn(async move { sup.drive(j.id).await })
    };
    // The input is processed but the job stays running while input is open.
    let deadline = Instant::now() + Duration::from_secs(30);
    while e.record(&j.id).await.stats.tasks_done < 1 {
        assert!(Instant::now() < deadline, "task never finished");
        tokio::task::yield_now().await;
    }
    let rec = e.record(&j.id).await;
    assert_eq!((rec.state, rec.input_done), (JobState::Running, false));
    e.now.fetch_add(3_600_001, Ordering::SeqCst);
    let end = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("done in time")
        .expect("join")
        .expect("drive");
    assert_eq!(end, DriveEnd::Done);
    let rec = e.record(&j.id).await;
    assert!(rec.input_done && rec.state == JobState::Done);
    assert_eq!(rec.stats.outputs, 1);
}

#[tokio::test]
async fn run_loop_claims_and_finishes_new_jobs() {
    let e = env().await;
    e.object("/tpuser/stor/a", "1\n").await;
    let sup = e.supervisor("s1", e.executor());
    let (stop, rx) = tokio::sync::watch::channel(false);
    let run = tokio::spawn(sup.clone().run(rx));
    let ids = [
        e.job(r#"{"phases":[{"exec":"wc -l"}]}"#, &["/tpuser/stor/a"])
            .await,
        e.job(
            r#"{"phases":[{"type":"reduce","exec":"sum"}]}"#,
            &["/tpuser/stor/a"],
        )
        .await,
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    for id in ids {
        while e.record(&id).await.state != JobState::Done {
            assert!(Instant::now() < deadline, "job {id} not done");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(e.record(&id).await.stats.outputs, 1);
    }
    stop.send(true).expect("stop");
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("run stops")
        .expect("join")
        .expect("run ok");
}

/// Answers map tasks by emitting `names` as outputs (as `mcat` does: names,
/// not bytes) and records every input a reducer is fed.
struct EmitNames {
    names: Vec<String>,
    fed: Mutex<Vec<String>>,
}

#[async_trait]
impl crate::executor::TaskExecutor for EmitNames {
    async fn execute(
        &self,
        node: &str,
        req: crate::protocol::TaskRequest,
        feed: Arc<dyn crate::executor::ReducerFeed>,
    ) -> Result<crate::protocol::TaskResponse, ExecError> {
        use crate::protocol::{EmittedOutput, ReducerInputsRequest, TaskInput, TaskOutcome};
        let outputs = match req.input {
            TaskInput::Map { .. } => self
                .names
                .iter()
                .map(|n| EmittedOutput {
                    name: n.clone(),
                    reducer: None,
                })
                .collect(),
            TaskInput::Reduce { reducer } => {
                let mut from = 0;
                loop {
                    let page = feed
                        .page(ReducerInputsRequest {
                            job_id: req.job_id,
                            phase: req.phase,
                            reducer,
                            from,
                            limit: 100,
                        })
                        .await?;
                    let idle = page.inputs.is_empty();
                    self.fed.lock().expect("lock").extend(page.inputs);
                    from = page.next;
                    if page.ended {
                        break;
                    }
                    if idle {
                        // Upstream still runs (reducers stream): let it.
                        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                    }
                }
                Vec::new()
            }
        };
        Ok(crate::protocol::TaskResponse {
            task_id: req.task_id,
            attempt: req.attempt,
            node: node.to_owned(),
            outcome: TaskOutcome::Success { outputs },
            reproducible: false,
        })
    }
}

#[tokio::test]
async fn names_emitted_into_a_reducer_are_authorized_for_the_owner() {
    let e = env().await;
    e.ns.create_account("other").await.expect("account");
    e.object("/tpuser/stor/in", "1\n").await;
    e.object("/tpuser/stor/mine", "2\n").await;
    e.object("/other/stor/secret", "3\n").await;
    e.object("/other/public/shared", "4\n").await;
    let exec = Arc::new(EmitNames {
        names: vec![
            "/other/stor/secret".into(),
            "/tpuser/stor/mine".into(),
            "/other/public/shared".into(),
            "/tpuser/stor/nothing-here".into(),
            "/tpuser/stor/../../other/stor/secret".into(),
        ],
        fed: Mutex::default(),
    });
    let sup = Supervisor::new(cfg("s1"), e.store.clone(), e.ns.clone(), exec.clone());
    let id = e
        .job(
            r#"{"phases":[{"exec":"mcat"},{"type":"reduce","exec":"cat"}]}"#,
            &["/tpuser/stor/in"],
        )
        .await;
    drive(&sup, id).await;
    let fed = exec.fed.lock().expect("lock").clone();
    assert_eq!(
        fed,
        vec![
            "/tpuser/stor/mine".to_owned(),
            "/other/public/shared".to_owned()
        ],
        "the reducer is fed only what the owner may read"
    );
    let errs: Vec<_> = e
        .store
        .errors(&id, 0, 100)
        .await
        .expect("errors")
        .into_iter()
        .map(|(_, e)| (e.code, e.input.unwrap_or_default(), e.phase))
        .collect();
    assert_eq!(errs.len(), 3, "{errs:?}");
    for (code, input, phase) in &errs {
        assert_eq!(*phase, 1, "{errs:?}");
        let want = if input.contains("nothing-here") {
            "ResourceNotFoundError"
        } else {
            "AuthorizationError"
        };
        assert_eq!(code, want, "{input}: {errs:?}");
    }
}
