//! Issue 12, item 3: a hostile phase script must not take down `tidepool
//! up`. Against a real `tidepool up`, with Manta's real `mjob`:
//!
//! - deeply nested phase scripts (500 nested `if` — 9 KB that used to
//!   overflow a tokio worker's stack and abort the process —, nested
//!   `while`, `case`, `$(`, `${`, unbalanced `((`...) are refused by
//!   `mjob create` with `400 InvalidArgumentError` and the reason, before
//!   any job exists; the server answers afterwards and another job runs;
//! - a bad script that reaches a task anyway (a job written straight into
//!   the metadata store, as one created before these checks would be) costs
//!   that task, with a clear error: the job ends `done`, the process keeps
//!   running, and no crash loop follows a restart.

use std::time::{Duration, Instant};

use meta::jobs::{JobStore, NewJob};
use tidepool_tests::{Cluster, describe, ok};

fn nested_if(n: usize) -> String {
    format!("{}wc -l{}", "if true; then ".repeat(n), "; fi".repeat(n))
}

/// Scripts that are refused at `mjob create`, and a word of each reason.
fn hostile_scripts() -> Vec<(String, &'static str)> {
    vec![
        (nested_if(500), "nested more than 64 levels"),
        (
            format!(
                "{}wc -l{}",
                "while true; do ".repeat(300),
                "; done".repeat(300)
            ),
            "nested more than 64 levels",
        ),
        (
            format!(
                "{}wc -l{}",
                "case x in x) ".repeat(300),
                ";; esac".repeat(300)
            ),
            "case",
        ),
        (
            format!("echo {}x{}", "$(echo ".repeat(300), ")".repeat(300)),
            "nested more than 64 levels",
        ),
        (
            format!("echo {}x{}", "${a:-".repeat(300), "}".repeat(300)),
            "nested more than 64 levels",
        ),
        (
            format!("{}wc -l{}", "{ ".repeat(2000), "; }".repeat(2000)),
            "nested more than 64 levels",
        ),
        // 60 bytes on which the parser used to backtrack for hours.
        ("(".repeat(60), "arithmetic"),
    ]
}

/// A job over `/alice/stor/in` with an ordinary phase still works, with
/// the right output.
fn ordinary_job_works(c: &Cluster) {
    let out = c.manta_stdin(
        "mjob",
        &["create", "-o", "-m", "wc -l"],
        b"/alice/stor/in\n",
    );
    assert_eq!(ok(&out).trim(), "3", "{}", describe(&out));
}

#[test]
fn deep_phase_scripts_are_refused_at_create_and_the_server_keeps_serving() {
    let c = Cluster::start().unwrap();
    c.mput("/alice/stor/in", b"a\nb\nc\n");

    for (script, reason) in hostile_scripts() {
        for args in [
            vec!["create", "-m", script.as_str()],
            vec!["create", "-m", "wc -l", "-r", script.as_str()],
        ] {
            let out = c.manta_stdin("mjob", &args, b"/alice/stor/in\n");
            assert!(!out.status.success(), "refused: {}", describe(&out));
            // The CLI prints the message of the 400 InvalidArgumentError
            // (its code is checked over HTTP in gateway/tests).
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("property \"phases["), "{err}");
            assert!(err.contains(reason), "names the reason ({reason}): {err}");
        }
    }

    // `init` is checked too (phases given as a JSON file).
    let file = c.root.path().join("phases.json");
    let phases = serde_json::json!([{ "exec": "wc -l", "init": nested_if(500) }]);
    std::fs::write(&file, phases.to_string()).unwrap();
    let out = c.manta_stdin(
        "mjob",
        &["create", "-f", file.to_str().unwrap()],
        b"/alice/stor/in\n",
    );
    assert!(!out.status.success(), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("phases[0].init"), "{err}");

    // No job was created by any of them.
    let jobs = ok(&c.manta("mls", &["~~/jobs"]));
    assert_eq!(jobs.trim(), "", "no job exists: {jobs}");

    // The same process still serves, and runs jobs.
    ok(&c.manta("mls", &["~~/stor"]));
    ordinary_job_works(&c);
}

/// Writes a job straight into the stopped cluster's metadata store, as one
/// created before phase scripts were checked would be, with its input.
fn plant_job(c: &Cluster, exec: &str) -> String {
    let path = c.data_dir().join("meta.redb");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let kv = meta::embedded::EmbeddedKv::open(&path).await.unwrap();
        let store = JobStore::new(std::sync::Arc::new(kv));
        let phases = serde_json::json!([{ "exec": exec, "type": "map" }]);
        let job = store
            .create_job(&NewJob {
                owner: "alice".into(),
                name: "planted".into(),
                phases_json: phases.to_string(),
                phase_count: 1,
                transient: false,
                keep_intermediates: false,
                operator: false,
                roles: None,
            })
            .await
            .unwrap();
        store
            .add_inputs(&job.id, &["/alice/stor/in".to_owned()], true)
            .await
            .unwrap();
        job.id.to_string()
    })
}

#[test]
fn a_bad_script_that_reaches_a_task_fails_the_task_not_the_process() {
    let mut c = Cluster::start().unwrap();
    c.mput("/alice/stor/in", b"a\nb\nc\n");
    c.kill9();
    let id = plant_job(&c, &nested_if(500));
    c.restart().unwrap();

    // The job ends `done` with the task's error; the process stays up.
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        let out = c.manta("mjob", &["get", &id]);
        if out.status.success() {
            let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            if s["state"] == "done" {
                break s;
            }
        }
        assert!(
            Instant::now() < deadline,
            "job {id} never finished: {}\n{}",
            describe(&out),
            c.server_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status["stats"]["errors"], 1, "{status}");
    let errors = ok(&c.manta("mjob", &["errors", &id]));
    let e: serde_json::Value = serde_json::from_str(errors.lines().next().unwrap()).unwrap();
    assert_eq!(e["code"], "UserTaskError", "{errors}");
    let stderr = ok(&c.manta("mget", &[e["stderr"].as_str().expect("stderr object")]));
    assert!(
        stderr.contains("nested more than 64 levels"),
        "the task's stderr says why: {stderr}"
    );

    // Still the same process (a restart would lose nothing, but the crash
    // loop is what this guards against): it serves, and runs jobs.
    ordinary_job_works(&c);
    // And a restart does not bring the bad task back to crash it.
    c.restart().unwrap();
    ordinary_job_works(&c);
}
