//! Jobs during faults, and what must hold of them once healed.
//!
//! A client submits small map jobs (`wc -c` over a few stable input
//! objects) throughout the run through the jobs HTTP API: create, add
//! inputs, end input, each one request. After the heal each job whose
//! creation was acknowledged must reach `done`, and then:
//! - every input whose `live/in` POST was acknowledged (204) has exactly
//!   one output, holding the input's byte count;
//! - an input whose POST had an unknown outcome has at most one output;
//! - no other input has an output, and the job reports no error.
//!
//! A job whose creation had an unknown outcome cannot be found again by
//! the client (it has no id); it is counted, not checked.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};

use super::Rng;
use super::client::{Answer, Gateway, Shared, outcome_word};

/// A job as its client knows it.
#[derive(Debug, Clone)]
pub struct JobRecord {
    /// The job id.
    pub id: String,
    /// Inputs whose addition was acknowledged.
    pub acked: Vec<String>,
    /// Inputs whose addition had an unknown outcome.
    pub maybe: Vec<String>,
    /// Whether ending its input was acknowledged.
    pub ended: bool,
}

/// What the job checks found.
#[derive(Debug, Default)]
pub struct JobsSummary {
    /// Create requests sent.
    pub submitted: u64,
    /// Jobs with a known id (creation acknowledged).
    pub tracked: usize,
    /// Tracked jobs that reached `done`.
    pub done: usize,
    /// Outputs read back and checked.
    pub outputs_checked: usize,
}

fn job_body() -> Vec<u8> {
    br#"{"name":"partitions","phases":[{"exec":"wc -c","type":"map"}]}"#.to_vec()
}

/// Submits jobs over `inputs` until `shared.stop`, one every few seconds.
pub async fn run_jobs(
    gw: Gateway,
    shared: Arc<Shared>,
    inputs: Vec<String>,
    seed: u64,
) -> (u64, Vec<JobRecord>) {
    let mut rng = Rng::new(seed ^ 0x6a6f_6273);
    let mut jobs = Vec::new();
    let mut submitted = 0;
    'run: while !shared.stop.load(Ordering::SeqCst) {
        let pause = Duration::from_millis(1_000 + rng.below(4_000));
        let until = Instant::now() + pause;
        while Instant::now() < until {
            if shared.stop.load(Ordering::SeqCst) {
                break 'run;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        submitted += 1;
        let h = [("content-type", "application/json".to_owned())];
        let a = gw
            .send(Method::POST, "/alice/jobs", &h, Some(job_body()))
            .await;
        shared.count("job-create", &outcome_word(&a));
        shared.note("job-create", "/alice/jobs", &a);
        let Answer::Created(_, location) = a else {
            continue;
        };
        let id = location.rsplit('/').next().unwrap_or_default().to_owned();
        let mut record = JobRecord {
            id: id.clone(),
            acked: Vec::new(),
            maybe: Vec::new(),
            ended: false,
        };
        let mut picked: Vec<String> = Vec::new();
        while picked.len() < 3.min(inputs.len()) {
            let i = &inputs[rng.below(inputs.len() as u64) as usize];
            if !picked.contains(i) {
                picked.push(i.clone());
            }
        }
        let h = [("content-type", "text/plain".to_owned())];
        let a = gw
            .send(
                Method::POST,
                &format!("/alice/jobs/{id}/live/in"),
                &h,
                Some(picked.join("\n").into_bytes()),
            )
            .await;
        shared.count("job-add-inputs", &outcome_word(&a));
        shared.note("job-add-inputs", &id, &a);
        match a {
            Answer::Got(s, _, _) if s.is_success() => record.acked = picked,
            Answer::Got(s, _, _) if s.is_client_error() => {}
            Answer::NotSent(_) => {}
            _ => record.maybe = picked,
        }
        let a = gw
            .send(
                Method::POST,
                &format!("/alice/jobs/{id}/live/in/end"),
                &[],
                None,
            )
            .await;
        shared.count("job-end-input", &outcome_word(&a));
        record.ended = matches!(a, Answer::Got(s, _, _) if s.is_success());
        jobs.push(record);
    }
    (submitted, jobs)
}

/// GETs `path` until it answers 2xx, or `deadline`; the body.
async fn get_ok(gw: &Gateway, path: &str, deadline: Instant) -> Option<Vec<u8>> {
    while Instant::now() < deadline {
        if let Answer::Got(s, _, b) = gw.send(Method::GET, path, &[], None).await
            && s.is_success()
        {
            return Some(b);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    None
}

/// Checks every tracked job (see the module doc); problems go to `shared`.
/// `sizes` is each input's byte count.
pub async fn check_jobs(
    gw: &Gateway,
    shared: &Shared,
    jobs: &[JobRecord],
    sizes: &BTreeMap<String, usize>,
    deadline: Instant,
) -> JobsSummary {
    let mut sum = JobsSummary {
        tracked: jobs.len(),
        ..JobsSummary::default()
    };
    for job in jobs {
        let id = &job.id;
        // End its input if that was not acknowledged (idempotent).
        while !job.ended && Instant::now() < deadline {
            match gw
                .send(
                    Method::POST,
                    &format!("/alice/jobs/{id}/live/in/end"),
                    &[],
                    None,
                )
                .await
            {
                Answer::Got(s, _, _) if s.is_success() || s == StatusCode::CONFLICT => break,
                _ => tokio::time::sleep(Duration::from_millis(300)).await,
            }
        }
        let mut status = serde_json::Value::Null;
        while Instant::now() < deadline {
            if let Some(b) = get_ok(gw, &format!("/alice/jobs/{id}/live/status"), deadline).await {
                status = serde_json::from_slice(&b).unwrap_or_default();
                if status["state"] == "done" {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if status["state"] != "done" {
            shared.problem(format!("job {id} never finished: {status}"));
            continue;
        }
        sum.done += 1;
        if status["stats"]["errors"].as_u64().unwrap_or(0) > 0 {
            let errs = get_ok(gw, &format!("/alice/jobs/{id}/live/err"), deadline)
                .await
                .unwrap_or_default();
            shared.problem(format!(
                "job {id} reported errors: {}\n{}",
                status["stats"],
                String::from_utf8_lossy(&errs)
            ));
        }
        let Some(out) = get_ok(gw, &format!("/alice/jobs/{id}/live/out"), deadline).await else {
            shared.problem(format!("job {id}: live/out never answered"));
            continue;
        };
        let outs: Vec<String> = String::from_utf8_lossy(&out)
            .lines()
            .map(str::to_owned)
            .collect();
        for (input, size) in sizes {
            let prefix = format!("/alice/jobs/{id}/stor{input}.0.");
            let mine: Vec<&String> = outs.iter().filter(|o| o.starts_with(&prefix)).collect();
            let allowed = if job.acked.contains(input) {
                1..=1
            } else if job.maybe.contains(input) {
                0..=1
            } else {
                0..=0
            };
            if !allowed.contains(&mine.len()) {
                shared.problem(format!(
                    "job {id}: {} outputs of {input} (allowed {allowed:?}; acked {:?}, maybe {:?}): {outs:?}",
                    mine.len(),
                    job.acked,
                    job.maybe
                ));
            }
            for o in mine {
                match get_ok(gw, o, deadline).await {
                    Some(b) if String::from_utf8_lossy(&b).trim() == size.to_string() => {
                        sum.outputs_checked += 1;
                    }
                    got => shared.problem(format!(
                        "job {id}: output {o} of {input} is {:?}, want {size}",
                        got.map(|b| String::from_utf8_lossy(&b).into_owned())
                    )),
                }
            }
        }
        let known = outs
            .iter()
            .filter(|o| sizes.keys().any(|i| o.contains(&format!("/stor{i}.0."))))
            .count();
        if known != outs.len() {
            shared.problem(format!("job {id}: outputs of no input: {outs:?}"));
        }
    }
    sum
}
