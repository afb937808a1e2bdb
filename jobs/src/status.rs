//! The job status record as the `mjob` CLI reads it (spec §3.2, E5 and
//! `job.json`), the error lines of `live/err` and `err.txt` (§4.10), and the
//! state machine of §3.3.
//!
//! Guarantees: keys come out in exactly Manta's order; absent optional
//! fields are omitted, never `null`; `stats` always carries all five
//! counters (also while `queued`, spec §8.2); times are ISO-8601 UTC with
//! milliseconds.

use meta::jobs::{JobErrorRecord, JobRecord, JobState};
use serde_json::Value;

/// `2012-12-04T16:23:13.641Z` for a time in ms since the epoch.
pub fn iso_time(ms: u64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    match time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        ),
        // Beyond year 9999: not a time a job can have; clamp visibly.
        Err(_) => "9999-12-31T23:59:59.999Z".into(),
    }
}

fn q(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// The status record (E5 body; `job.json` when archived), compact JSON.
pub fn status_json(job: &JobRecord) -> String {
    let s = &job.stats;
    let mut out = format!(
        "{{\"id\":{},\"name\":{},\"state\":{},\"cancelled\":{},\"inputDone\":{},\"transient\":{},\
\"stats\":{{\"errors\":{},\"outputs\":{},\"retries\":{},\"tasks\":{},\"tasksDone\":{}{}}},\"timeCreated\":{}",
        q(&job.id.to_string()),
        q(&job.name),
        q(job.state.as_str()),
        job.cancelled,
        // Cancelled jobs always report inputDone (spec §3.2).
        job.input_done || job.cancelled,
        job.transient,
        s.errors,
        s.outputs,
        s.retries,
        s.tasks,
        s.tasks_done,
        // Tidepool's addition, only when there is something to say: tasks
        // whose outputs were reused from an identical earlier task.
        if s.memoized > 0 {
            format!(",\"memoized\":{}", s.memoized)
        } else {
            String::new()
        },
        q(&iso_time(job.time_created_ms)),
    );
    for (key, t) in [
        ("timeDone", job.time_done_ms),
        ("timeArchiveStarted", job.time_archive_started_ms),
        ("timeArchiveDone", job.time_archive_done_ms),
    ] {
        if let Some(ms) = t {
            out.push_str(&format!(",\"{key}\":{}", q(&iso_time(ms))));
        }
    }
    // Tidepool's addition, shown only when asked for, so a status record
    // is Manta's byte for byte otherwise.
    if job.keep_intermediates {
        out.push_str(",\"keepIntermediates\":true");
    }
    out.push_str(",\"phases\":");
    out.push_str(&job.phases_json);
    out.push_str(",\"options\":{}}");
    out
}

fn push_opt(out: &mut String, key: &str, v: &Option<String>) {
    if let Some(v) = v {
        out.push_str(&format!(",\"{key}\":{}", q(v)));
    }
}

/// One `live/err` line: Manta's live shape (`phase`, `what`, `code`,
/// `message`, `stderr`, `core`, `input`, `p0input`) followed by the archive
/// fields `phaseNum`, `taskId`, `server` (spec §8.2 superset).
pub fn error_json_live(e: &JobErrorRecord) -> String {
    let mut out = format!(
        "{{\"phase\":{},\"what\":{},\"code\":{},\"message\":{}",
        e.phase,
        q(&e.what),
        q(&e.code),
        q(if e.message.is_empty() {
            "unknown error"
        } else {
            &e.message
        })
    );
    push_opt(&mut out, "stderr", &e.stderr);
    push_opt(&mut out, "core", &e.core);
    push_opt(&mut out, "input", &e.input);
    push_opt(&mut out, "p0input", &e.p0input);
    out.push_str(&format!(",\"phaseNum\":{}", e.phase));
    push_opt(&mut out, "taskId", &e.task_id.map(|t| t.to_string()));
    push_opt(&mut out, "server", &e.server);
    out.push('}');
    out
}

/// One `err.txt` line: the archive shape (`taskId`, `phaseNum`, `server`,
/// `machine`, `input`, `p0input`, `what`, `code`, `message`, `stderr`,
/// `core`), plus `phase` for tools that read the live shape.
pub fn error_json_archive(e: &JobErrorRecord) -> String {
    let mut out = String::from("{");
    if let Some(t) = e.task_id {
        out.push_str(&format!("\"taskId\":{},", q(&t.to_string())));
    }
    out.push_str(&format!("\"phaseNum\":{}", e.phase));
    push_opt(&mut out, "server", &e.server);
    push_opt(&mut out, "input", &e.input);
    push_opt(&mut out, "p0input", &e.p0input);
    out.push_str(&format!(
        ",\"what\":{},\"code\":{},\"message\":{}",
        q(&e.what),
        q(&e.code),
        q(&e.message)
    ));
    push_opt(&mut out, "stderr", &e.stderr);
    push_opt(&mut out, "core", &e.core);
    out.push_str(&format!(",\"phase\":{}}}", e.phase));
    out
}

/// The events that move a job between states (spec §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEvent {
    /// A supervisor took the job.
    PickedUp,
    /// Input ended, everything dispatched and committed (or cancelled and
    /// cleaned up).
    Finished,
}

/// An event that is not allowed in the current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("job in state '{}' cannot take event {event:?}", state.as_str())]
pub struct InvalidTransition {
    /// Current state.
    pub state: JobState,
    /// Rejected event.
    pub event: JobEvent,
}

/// The next state after `event`. Picking up a running job again (a
/// supervisor taking over) keeps it running; `done` is terminal.
pub fn transition(state: JobState, event: JobEvent) -> Result<JobState, InvalidTransition> {
    match (state, event) {
        (JobState::Queued | JobState::Running, JobEvent::PickedUp) => Ok(JobState::Running),
        (JobState::Running, JobEvent::Finished) => Ok(JobState::Done),
        (state, event) => Err(InvalidTransition { state, event }),
    }
}

/// Nothing more can reach reduce phase `phase`: every job input is
/// consumed and every earlier phase has finished all its tasks. The
/// commits that route inputs to a reducer are the ones that close those
/// tasks, so once this holds a reducer's inputs are all in meta.
pub fn upstream_complete(job: &JobRecord, phase: u32) -> bool {
    job.all_inputs_consumed() && job.reducers_created && (0..phase).all(|q| job.open_in(q) == 0)
}

/// Marks `job` done at `now` if it is [`ready_to_finish`]; true if it was.
/// Every way a job finishes goes through here.
pub fn finish_if_ready(job: &mut JobRecord, now: u64) -> bool {
    if !ready_to_finish(job) {
        return false;
    }
    job.state = transition(job.state, JobEvent::Finished).unwrap_or(JobState::Done);
    job.time_done_ms = Some(now);
    true
}

/// True when a running job has nothing left to do: input ended, every input
/// consumed, and no task of any phase unfinished.
pub fn ready_to_finish(job: &JobRecord) -> bool {
    job.state == JobState::Running
        && job.all_inputs_consumed()
        && job.reducers_created
        && job.open_tasks.iter().all(|&n| n == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use meta::jobs::JobStats;
    use uuid::Uuid;

    fn job() -> JobRecord {
        JobRecord {
            id: Uuid::parse_str("a62ba79e-4d5b-4773-bff9-ecae0fe30dfa").expect("uuid"),
            owner: "alice".into(),
            operator: false,
            roles: None,
            depth: 0,
            name: "word count".into(),
            phases_json: r#"[{"exec":"wc","type":"map"}]"#.into(),
            phase_count: 1,
            transient: false,
            keep_intermediates: false,
            state: JobState::Done,
            cancelled: false,
            input_done: true,
            time_created_ms: 1_354_638_193_641,
            time_done_ms: Some(1_354_638_384_998),
            time_archive_started_ms: None,
            time_archive_done_ms: None,
            stats: JobStats {
                errors: 0,
                outputs: 1,
                retries: 0,
                tasks: 4,
                tasks_done: 4,
                memoized: 0,
            },
            next_input_seq: 3,
            inputs_consumed: 3,
            next_error_seq: 0,
            open_tasks: vec![0],
            last_input_ms: 0,
            reducers_created: true,
        }
    }

    #[test]
    fn status_record_key_order() {
        assert_eq!(
            status_json(&job()),
            r#"{"id":"a62ba79e-4d5b-4773-bff9-ecae0fe30dfa","name":"word count","state":"done","cancelled":false,"inputDone":true,"transient":false,"stats":{"errors":0,"outputs":1,"retries":0,"tasks":4,"tasksDone":4},"timeCreated":"2012-12-04T16:23:13.641Z","timeDone":"2012-12-04T16:26:24.998Z","phases":[{"exec":"wc","type":"map"}],"options":{}}"#
        );
        let mut q = job();
        q.state = JobState::Queued;
        q.time_done_ms = None;
        q.stats = JobStats::default();
        let v: Value = serde_json::from_str(&status_json(&q)).expect("valid JSON");
        assert!(v.get("timeDone").is_none());
        assert_eq!(v["stats"]["tasksDone"], 0);
    }

    #[test]
    fn error_lines() {
        let e = JobErrorRecord {
            phase: 0,
            what: "phase 0: input \"/alice/stor/x\"".into(),
            code: "ResourceNotFoundError".into(),
            message: "no such object: \"/alice/stor/x\"".into(),
            input: Some("/alice/stor/x".into()),
            p0input: Some("/alice/stor/x".into()),
            ..Default::default()
        };
        assert_eq!(
            error_json_live(&e),
            r#"{"phase":0,"what":"phase 0: input \"/alice/stor/x\"","code":"ResourceNotFoundError","message":"no such object: \"/alice/stor/x\"","input":"/alice/stor/x","p0input":"/alice/stor/x","phaseNum":0}"#
        );
        let a: Value = serde_json::from_str(&error_json_archive(&e)).expect("json");
        assert_eq!(a["phaseNum"], 0);
        assert_eq!(a["code"], "ResourceNotFoundError");
    }

    #[test]
    fn state_machine() {
        assert_eq!(
            transition(JobState::Queued, JobEvent::PickedUp),
            Ok(JobState::Running)
        );
        assert_eq!(
            transition(JobState::Running, JobEvent::PickedUp),
            Ok(JobState::Running)
        );
        assert_eq!(
            transition(JobState::Running, JobEvent::Finished),
            Ok(JobState::Done)
        );
        assert!(transition(JobState::Queued, JobEvent::Finished).is_err());
        assert!(transition(JobState::Done, JobEvent::PickedUp).is_err());
        let mut j = job();
        j.state = JobState::Running;
        assert!(ready_to_finish(&j));
        j.open_tasks = vec![1];
        assert!(!ready_to_finish(&j));
        j.open_tasks = vec![0];
        j.input_done = false;
        assert!(!ready_to_finish(&j));
    }

    #[test]
    fn times() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_time(u64::MAX), "9999-12-31T23:59:59.999Z");
    }
}
