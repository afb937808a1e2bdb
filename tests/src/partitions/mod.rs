//! The partition suite: a deployment where every process is a host of
//! its own ([`crate::netns`]), clients running throughout, faults drawn
//! from a seed ([`faults`]), and, once healed, every promise checked:
//!
//! - every object name's history is linearizable as a register
//!   ([`crate::linearizability`]): no stale read, no acknowledged write
//!   lost, no conditional write applied against the wrong version;
//! - no object is ever served with bytes other than those written;
//! - every job is done with each acknowledged input's output exactly once
//!   ([`jobs`]);
//! - the listing of the directory agrees with the objects read back;
//! - every object is back at its durability: two intact copies on two
//!   nodes' disks.
//!
//! [`run`] is shared by the CI test (`tests/tests/partitions.rs`, a fixed
//! seed and a short schedule) and the long runs
//! (`cargo run -p tidepool-tests --bin partitions -- --seed N --minutes M`).
//! It skips, saying why, where network namespaces cannot be made.

pub mod client;
pub mod faults;
pub mod jobs;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use reqwest::{Method, StatusCode};

use crate::deployment::{Deployment, DeploymentOptions};
use crate::linearizability::{self, Input, Report};
use crate::netns::Net;
use client::{Answer, DIR, Gateway, Shared, body_of, key_path};

/// A small deterministic generator (splitmix64): the suite's only source
/// of choices, so a seed replays them.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Drives the fault schedule and the clients' choices.
    pub seed: u64,
    /// How long faults are injected.
    pub fault_time: Duration,
    /// `tidepool node` processes (3 to 5).
    pub nodes: usize,
    /// `tidepool supervisor` processes.
    pub supervisors: usize,
    /// Registers (object names).
    pub keys: usize,
    /// Concurrent register clients.
    pub clients: usize,
}

impl Config {
    /// The CI configuration for `seed`: 3 nodes, 2 supervisors, 200
    /// registers, 6 clients, `fault_time` of faults.
    pub fn ci(seed: u64, fault_time: Duration) -> Config {
        Config {
            seed,
            fault_time,
            nodes: 3,
            supervisors: 2,
            keys: 200,
            clients: 6,
        }
    }
}

/// What a run did and found.
#[derive(Debug, Default)]
pub struct Summary {
    /// The seed.
    pub seed: u64,
    /// Operations by `kind outcome`.
    pub counts: BTreeMap<String, u64>,
    /// Faults injected by kind.
    pub faults: BTreeMap<String, u64>,
    /// Each fault with its time.
    pub fault_log: Vec<String>,
    /// The linearizability checker's report.
    pub linearizability: Report,
    /// Jobs.
    pub jobs: jobs::JobsSummary,
    /// Objects whose copies were checked on disk after the heal.
    pub objects_checked: usize,
    /// Every violation found (empty: every promise held).
    pub problems: Vec<String>,
    /// Server errors other than 503 seen (not violations).
    pub notes: Vec<String>,
    /// When each phase of the run ended (seconds since the start).
    pub phases: Vec<(String, f32)>,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl Summary {
    /// Whether every promise held.
    pub fn ok(&self) -> bool {
        self.problems.is_empty() && self.linearizability.ok()
    }

    /// A human-readable report.
    pub fn render(&self) -> String {
        let mut s = format!(
            "partitions: seed {} ran {:.0}s\noperations by kind and outcome:\n",
            self.seed,
            self.elapsed.as_secs_f32()
        );
        for (k, n) in &self.counts {
            s.push_str(&format!("  {k}: {n}\n"));
        }
        s.push_str("faults injected:\n");
        for (k, n) in &self.faults {
            s.push_str(&format!("  {k}: {n}\n"));
        }
        let l = &self.linearizability;
        s.push_str(&format!(
            "linearizability: {} registers, {} operations: {} violations, {} inconclusive\n",
            l.registers,
            l.operations,
            l.violations.len(),
            l.inconclusive.len()
        ));
        s.push_str(&format!(
            "jobs: {} submitted, {} tracked, {} done, {} outputs checked\n",
            self.jobs.submitted, self.jobs.tracked, self.jobs.done, self.jobs.outputs_checked
        ));
        s.push_str(&format!(
            "durability: {} objects checked for 2 intact copies\n",
            self.objects_checked
        ));
        for (name, ops) in &l.violations {
            s.push_str(&format!("NOT LINEARIZABLE: {name}:\n"));
            for o in ops {
                s.push_str(&format!("    {o:?}\n"));
            }
        }
        for n in &self.notes {
            s.push_str(&format!("note: {n}\n"));
        }
        let phases: Vec<String> = self
            .phases
            .iter()
            .map(|(p, t)| format!("{p} {t:.0}s"))
            .collect();
        s.push_str(&format!("phases: {}\n", phases.join(", ")));
        for p in &self.problems {
            s.push_str(&format!("PROBLEM: {p}\n"));
        }
        s.push_str(&format!(
            "verdict: {}\n",
            if self.ok() { "OK" } else { "VIOLATIONS" }
        ));
        s
    }
}

/// How a run ended.
pub enum Outcome {
    /// Network namespaces are not available here; why.
    Skipped(String),
    /// The run happened.
    Ran(Box<Summary>),
}

/// The hosts of a deployment with `nodes` nodes and `supervisors`
/// supervisors, as [`DeploymentOptions::net`] names them.
fn host_names(nodes: usize, supervisors: usize) -> Vec<String> {
    let mut v = vec!["meta".to_owned(), "gw".to_owned()];
    v.extend((1..=nodes).map(|i| format!("n{i}")));
    v.extend((1..=supervisors).map(|i| format!("s{i}")));
    v
}

/// Worker pace: repair and audit every second, strays kept an hour.
fn fast_workers() -> Vec<String> {
    [
        "--repair-every",
        "1s",
        "--audit-every",
        "2s",
        "--gc-every",
        "1s",
        "--gc-grace",
        "1h",
        "--repair-rate",
        "0",
    ]
    .map(String::from)
    .to_vec()
}

/// The job inputs: stable objects no client writes.
fn job_inputs() -> Vec<(String, Vec<u8>)> {
    (0..6)
        .map(|i| {
            let name = format!("/alice/stor/jin/i{i}");
            let body = crate::payload(1000 + 977 * i, 31 + i as u64);
            (name, body)
        })
        .collect()
}

/// Runs the suite once.
pub fn run(cfg: &Config) -> Result<Outcome> {
    if let Some(why) = Net::unavailable() {
        return Ok(Outcome::Skipped(why));
    }
    let started = Instant::now();
    let names = host_names(cfg.nodes, cfg.supervisors);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let net = Arc::new(Net::create(&names).context("create the hosts")?);
    let mut d = Deployment::start(DeploymentOptions {
        nodes: cfg.nodes,
        supervisors: cfg.supervisors,
        lease_ttl_ms: 3_000,
        tasks_per_node: 4,
        node_args: fast_workers(),
        net: Some(net.clone()),
    })
    .context("start the deployment")?;
    let deployed = started.elapsed().as_secs_f32();
    let result = run_on(cfg, &mut d, &net, started).map(|mut s| {
        s.phases.insert(0, ("deployed".into(), deployed));
        s
    });
    // Every process's log, for whoever investigates a finding.
    let logs = std::env::temp_dir().join(format!("tidepool-partitions-seed{}.log", cfg.seed));
    match std::fs::write(&logs, d.logs()) {
        Ok(()) => eprintln!("partitions: process logs in {}", logs.display()),
        Err(e) => eprintln!("partitions: could not write {}: {e}", logs.display()),
    }
    result.map(|s| Outcome::Ran(Box::new(s)))
}

fn run_on(cfg: &Config, d: &mut Deployment, net: &Net, started: Instant) -> Result<Summary> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let gw = Gateway::connect(&d.gateway)?;
    let inputs = job_inputs();
    let mut input_etags = BTreeMap::new();
    rt.block_on(async {
        for dir in [DIR, "/alice/stor/jin"] {
            match gw.mkdir(dir).await {
                Answer::Got(s, _, _) if s.is_success() => {}
                Answer::Got(s, _, b) => bail!("mkdir {dir}: {s} {}", String::from_utf8_lossy(&b)),
                Answer::Failed(e) | Answer::NotSent(e) | Answer::Created(_, e) => {
                    bail!("mkdir {dir}: {e}")
                }
            }
        }
        for (name, body) in &inputs {
            match gw.put(name, body.clone(), &[]).await {
                Answer::Got(s, Some(etag), _) if s.is_success() => {
                    input_etags.insert(name.clone(), etag);
                }
                Answer::Got(s, _, b) => bail!("put {name}: {s} {}", String::from_utf8_lossy(&b)),
                Answer::Failed(e) | Answer::NotSent(e) | Answer::Created(_, e) => {
                    bail!("put {name}: {e}")
                }
            }
        }
        Ok(())
    })?;

    let shared = Shared::new();
    let clients: Vec<_> = (0..cfg.clients)
        .map(|c| {
            rt.spawn(client::run_client(
                gw.clone(),
                shared.clone(),
                c,
                cfg.keys,
                cfg.seed,
            ))
        })
        .collect();
    let job_client = rt.spawn(jobs::run_jobs(
        gw.clone(),
        shared.clone(),
        inputs.iter().map(|(n, _)| n.clone()).collect(),
        cfg.seed,
    ));

    let steps = faults::schedule(cfg.seed, cfg.fault_time, cfg.nodes, cfg.supervisors);
    let mut fault_log = Vec::new();
    let deadline = Instant::now() + cfg.fault_time + Duration::from_secs(60);
    let injected = faults::inject(d, net, &steps, deadline, &mut fault_log);
    // Healed whatever happened, before anything else.
    let healed = faults::heal(d, net);
    shared.stop.store(true, Ordering::SeqCst);
    for c in clients {
        rt.block_on(c).context("client task")?;
    }
    let (submitted, job_records) = rt.block_on(job_client).context("job client")?;
    let injected = injected?;
    healed?;
    let mut phases = vec![("faults".to_owned(), started.elapsed().as_secs_f32())];

    // Settle: the gateway writes again (bounded), then every register is
    // read back and the reads join the history.
    let settle = Instant::now() + Duration::from_secs(180);
    rt.block_on(wait_writable(&gw, settle))?;
    let finals = rt.block_on(final_reads(&gw, &shared, cfg.keys, settle));
    phases.push(("final-reads".into(), started.elapsed().as_secs_f32()));

    let mut summary = Summary {
        seed: cfg.seed,
        faults: injected,
        fault_log,
        phases,
        ..Summary::default()
    };
    let checks_deadline = Instant::now() + Duration::from_secs(300);
    rt.block_on(check_listing(&gw, &shared, &finals, checks_deadline));
    let sizes: BTreeMap<String, usize> = inputs.iter().map(|(n, b)| (n.clone(), b.len())).collect();
    summary.jobs = rt.block_on(jobs::check_jobs(
        &gw,
        &shared,
        &job_records,
        &sizes,
        checks_deadline,
    ));
    summary.jobs.submitted = submitted;
    let t = started.elapsed().as_secs_f32();
    summary.phases.push(("jobs".into(), t));

    // Durability: every live object and every job input.
    let mut objects: Vec<(String, String, Vec<u8>)> = finals
        .iter()
        .filter_map(|(path, f)| {
            let (etag, v) = f.as_ref()?;
            Some((path.clone(), etag.clone(), body_of(path, *v)))
        })
        .collect();
    for (name, body) in &inputs {
        objects.push((name.clone(), input_etags[name].clone(), body.clone()));
    }
    summary.objects_checked = objects.len();
    if let Err(e) = wait_durable(d, &objects, checks_deadline) {
        shared.problem(format!("{e:#}"));
    }
    let t = started.elapsed().as_secs_f32();
    summary.phases.push(("durable".into(), t));

    let record = std::mem::take(&mut *shared.record.lock().unwrap_or_else(|p| p.into_inner()));
    summary.linearizability = linearizability::check_all(&record.histories);
    let t = started.elapsed().as_secs_f32();
    summary.phases.push(("checked".into(), t));
    summary.counts = record.counts;
    summary.problems = record.problems;
    summary.notes = record.notes;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Waits (bounded) until the gateway stores and removes a probe object.
async fn wait_writable(gw: &Gateway, deadline: Instant) -> Result<()> {
    let probe = "/alice/stor/.partitions-probe";
    loop {
        if let Answer::Got(s, _, _) = gw.put(probe, b"probe".to_vec(), &[]).await
            && s.is_success()
        {
            gw.send(Method::DELETE, probe, &[], None).await;
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the gateway never accepted a write after the heal");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The final state of every register: its etag and value, `None` when
/// absent.
type Finals = BTreeMap<String, Option<(String, linearizability::Value)>>;

/// Reads every register until it answers (bounded); each read joins the
/// history.
async fn final_reads(gw: &Gateway, shared: &Arc<Shared>, keys: usize, deadline: Instant) -> Finals {
    let mut tasks = Vec::new();
    const READERS: usize = 8;
    for r in 0..READERS {
        let (gw, shared) = (gw.clone(), shared.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for i in (r..keys).step_by(READERS) {
                let path = key_path(i);
                loop {
                    let got =
                        client::register_op(&gw, &shared, usize::MAX - r, &path, Input::Get, None)
                            .await;
                    match got {
                        Some(Some((etag, v))) => {
                            out.push((path.clone(), Some((etag, v))));
                            break;
                        }
                        Some(None) => {
                            out.push((path.clone(), None));
                            break;
                        }
                        None if Instant::now() > deadline => {
                            shared.problem(format!("{path}: never readable after the heal"));
                            break;
                        }
                        None => tokio::time::sleep(Duration::from_millis(300)).await,
                    }
                }
            }
            out
        }));
    }
    let mut finals = BTreeMap::new();
    for t in tasks {
        if let Ok(v) = t.await {
            finals.extend(v);
        }
    }
    finals
}

/// The directory's listing must name exactly the registers read back as
/// present, with the etags read.
async fn check_listing(gw: &Gateway, shared: &Shared, finals: &Finals, deadline: Instant) {
    let body = loop {
        match gw
            .send(Method::GET, &format!("{DIR}?limit=1000"), &[], None)
            .await
        {
            Answer::Got(StatusCode::OK, _, b) => break b,
            _ if Instant::now() > deadline => {
                shared.problem("the listing never answered after the heal".into());
                return;
            }
            _ => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    };
    let listed: BTreeSet<(String, String)> = String::from_utf8_lossy(&body)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|e| {
            Some((
                format!("{DIR}/{}", e["name"].as_str()?),
                e["etag"].as_str().unwrap_or_default().to_owned(),
            ))
        })
        .collect();
    let want: BTreeSet<(String, String)> = finals
        .iter()
        .filter_map(|(p, f)| f.as_ref().map(|(e, _)| (p.clone(), e.clone())))
        .collect();
    if listed != want {
        let extra: Vec<_> = listed.difference(&want).collect();
        let missing: Vec<_> = want.difference(&listed).collect();
        shared.problem(format!(
            "listing of {DIR} disagrees with the reads: listed but not read {extra:?}; read but not listed {missing:?}"
        ));
    }
}

fn copy_path(node_dir: &std::path::Path, id: &str) -> std::path::PathBuf {
    node_dir
        .join("objects")
        .join(&id[..2.min(id.len())])
        .join(id)
}

/// Waits (bounded) until every object has two intact copies on two
/// nodes' disks.
fn wait_durable(
    d: &Deployment,
    objects: &[(String, String, Vec<u8>)],
    deadline: Instant,
) -> Result<()> {
    loop {
        let short: Vec<&String> = objects
            .iter()
            .filter(|(_, id, want)| {
                (0..d.nodes.len())
                    .filter(|&i| {
                        std::fs::read(copy_path(&d.node_dir(i), id)).is_ok_and(|b| b == *want)
                    })
                    .count()
                    < 2
            })
            .map(|(name, _, _)| name)
            .collect();
        if short.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{} objects short of 2 intact copies after the heal, e.g. {:?}\nworkers:\n{}",
                short.len(),
                &short[..short.len().min(5)],
                d.admin(&["workers", "list"]).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
