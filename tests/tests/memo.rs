//! Memoized tasks through Manta's official `mjob` against a real
//! `tidepool up`:
//!
//! * a second job identical to a first is fully memoized: every task is
//!   counted as memoized, no agent runs a task (the agents' task counter
//!   does not move), and the outputs are the first job's;
//! * an input object changed in between is recomputed, the rest reused;
//! * a phase that reads the wall clock is not memoized; a phase that
//!   declares itself deterministic is, and sees the seeded clock; a phase
//!   that opts out is not;
//! * deleting the first job's outputs leaves the reused ones readable
//!   (they are snaplinks), and a later identical job runs again.

use std::time::Duration;

use tidepool_tests::{Cluster, describe, ok, run_with_deadline};

const N: usize = 6;

fn status(c: &Cluster, id: &str) -> serde_json::Value {
    serde_json::from_str(&ok(&c.manta("mjob", &["get", id]))).expect("mjob get prints JSON")
}

/// Runs a job over `inputs` to the end; its id.
fn run_job(c: &Cluster, create: &[&str], inputs: &str) -> String {
    let mut args = vec!["create"];
    args.extend_from_slice(create);
    let id = ok(&c.manta_stdin("mjob", &args, inputs.as_bytes()))
        .trim()
        .to_owned();
    assert_eq!(id.len(), 36, "mjob create prints the job id: {id:?}");
    let watched = run_with_deadline(
        c.manta_cmd("mjob").args(["watch", &id]),
        None,
        Duration::from_secs(600),
    );
    ok(&watched);
    let st = status(c, &id);
    assert_eq!(st["state"], "done", "{st}");
    assert_eq!(st["stats"]["errors"], 0, "{st}");
    id
}

/// Each output's contents, sorted (task order is not output order).
fn outputs(c: &Cluster, id: &str) -> Vec<String> {
    let names = ok(&c.manta("mjob", &["outputs", id]));
    let mut got: Vec<String> = names.lines().map(|n| ok(&c.manta("mget", &[n]))).collect();
    got.sort();
    got
}

fn memoized(c: &Cluster, id: &str) -> u64 {
    status(c, id)["stats"]["memoized"].as_u64().unwrap_or(0)
}

/// Tasks the cluster's agents have run (all outcomes).
fn tasks_run(c: &Cluster) -> f64 {
    let url = c
        .printed
        .iter()
        .find_map(|l| l.strip_prefix("metrics at "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("tidepool up printed no metrics URL: {:?}", c.printed))
        .to_owned();
    let text = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async { reqwest::get(url).await.unwrap().text().await.unwrap() });
    text.lines()
        .filter(|l| l.starts_with("tidepool_compute_tasks_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn an_identical_job_is_memoized_and_a_changed_input_recomputed() {
    let c = Cluster::start().unwrap();
    ok(&c.manta("mmkdir", &["-p", "~~/stor/memo"]));
    let names: Vec<String> = (0..N).map(|i| format!("/alice/stor/memo/o{i}")).collect();
    for (i, o) in names.iter().enumerate() {
        c.mput(o, "word\n".repeat(i + 1).as_bytes());
    }
    let inputs: String = names.iter().map(|n| format!("{n}\n")).collect();
    let exec = "sort | uniq -c | awk '{n[$2]+=$1} END {for (k in n) print k, n[k]}'";

    let first = run_job(&c, &["-m", exec], &inputs);
    assert_eq!(memoized(&c, &first), 0, "{}", status(&c, &first));
    let expected = outputs(&c, &first);
    assert_eq!(expected.len(), N);
    assert!(expected.contains(&"word 3\n".to_owned()), "{expected:?}");

    let before = tasks_run(&c);
    let second = run_job(&c, &["-m", exec], &inputs);
    let st = status(&c, &second);
    assert_eq!(memoized(&c, &second), N as u64, "every task memoized: {st}");
    assert_eq!(st["stats"]["tasksDone"], N as u64, "{st}");
    assert_eq!(
        tasks_run(&c),
        before,
        "no agent ran a task of the memoized job"
    );
    assert_eq!(outputs(&c, &second), expected);

    // One input changes: it alone is recomputed.
    c.mput(&names[0], b"word\nword\nword\nword\nword\nword\nword\n");
    let before = tasks_run(&c);
    let third = run_job(&c, &["-m", exec], &inputs);
    assert_eq!(
        memoized(&c, &third),
        (N - 1) as u64,
        "{}",
        status(&c, &third)
    );
    assert_eq!(tasks_run(&c), before + 1.0, "exactly the changed input ran");
    let got = outputs(&c, &third);
    assert!(got.contains(&"word 7\n".to_owned()), "{got:?}");
    assert!(!got.contains(&"word 1\n".to_owned()), "{got:?}");

    // The first job's outputs deleted: the reused ones are snaplinks and
    // stay; the records pointing at the deleted ones are not used again.
    ok(&c.manta("mrm", &["-r", &format!("/alice/jobs/{first}")]));
    assert_eq!(outputs(&c, &second), expected);
    let fourth = run_job(&c, &["-m", exec], &inputs);
    assert_eq!(outputs(&c, &fourth).len(), N);
}

#[test]
fn clocks_and_declarations_decide_what_is_memoized() {
    let c = Cluster::start().unwrap();
    ok(&c.manta("mmkdir", &["-p", "~~/stor/clock"]));
    let names: Vec<String> = (0..3).map(|i| format!("/alice/stor/clock/o{i}")).collect();
    for (i, o) in names.iter().enumerate() {
        c.mput(o, format!("{i}\n").as_bytes());
    }
    let inputs: String = names.iter().map(|n| format!("{n}\n")).collect();

    // Reads the wall clock: never memoized.
    let clock = ["-m", "date >/dev/null; wc -l"];
    run_job(&c, &clock, &inputs);
    let again = run_job(&c, &clock, &inputs);
    assert_eq!(memoized(&c, &again), 0, "{}", status(&c, &again));

    // Expands the job's id: not memoized either.
    let named = ["-m", "echo $MANTA_JOB_ID >/dev/null; wc -l"];
    run_job(&c, &named, &inputs);
    let again = run_job(&c, &named, &inputs);
    assert_eq!(memoized(&c, &again), 0, "{}", status(&c, &again));

    // Declared deterministic: memoized, and its clock is the seeded one.
    let file = c.root.path().join("declared.json");
    let phases = serde_json::json!([{ "exec": "date +%Y; wc -l", "memo": "deterministic" }]);
    std::fs::write(&file, phases.to_string()).unwrap();
    let declared = ["-f", file.to_str().unwrap()];
    let one = run_job(&c, &declared, &inputs);
    let two = run_job(&c, &declared, &inputs);
    assert_eq!(memoized(&c, &two), 3, "{}", status(&c, &two));
    assert_eq!(outputs(&c, &one), outputs(&c, &two));
    assert!(
        outputs(&c, &one).iter().all(|o| o == "2000\n1\n"),
        "{:?}",
        outputs(&c, &one)
    );

    // Opted out: runs every time.
    let file = c.root.path().join("off.json");
    let phases = serde_json::json!([{ "exec": "wc -l", "memo": false }]);
    std::fs::write(&file, phases.to_string()).unwrap();
    let off = ["-f", file.to_str().unwrap()];
    run_job(&c, &off, &inputs);
    let again = run_job(&c, &off, &inputs);
    assert_eq!(memoized(&c, &again), 0, "{}", status(&c, &again));

    // A bad value is refused at create, with the property named.
    std::fs::write(&file, r#"[{"exec":"wc -l","memo":"sometimes"}]"#).unwrap();
    let out = c.manta_stdin("mjob", &["create", "-f", file.to_str().unwrap()], b"");
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("phases[0].memo"),
        "{}",
        describe(&out)
    );
}
