//! Metering: the usage reports of two accounts match what each stored
//! and ran — through the metering worker's report objects under
//! `/:login/reports/usage/` (read with `mget`, as a user would) and
//! through `tidepool admin usage`.
//!
//! `tidepool up` runs the worker every second here; a report is polled
//! for (bounded) until it shows what was stored, since a pass may start
//! before the last write.

use std::time::{Duration, Instant};

use serde_json::Value;
use tidepool_tests::{Cluster, ClusterOptions, Tenant, ok, payload};

fn cluster() -> Cluster {
    Cluster::start_with(ClusterOptions {
        args: ["--metering-every", "1s"].map(String::from).to_vec(),
        ..Default::default()
    })
    .unwrap()
}

/// The JSON line of report `name`, read as `tenant` (alice when `None`).
fn read_report(c: &Cluster, tenant: Option<&Tenant>, name: &str) -> Option<Value> {
    let out = match tenant {
        Some(t) => t.manta(c, "mget", &[name], b""),
        None => c.manta("mget", &[name]),
    };
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    let line = lines.next()?;
    assert!(lines.next().is_none(), "one JSON line per report: {text}");
    Some(serde_json::from_str(line).expect("a report line is JSON"))
}

/// Waits (bounded) until report `name` exists and `done` holds for it.
fn wait_report(
    c: &Cluster,
    tenant: Option<&Tenant>,
    name: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last = None;
    while Instant::now() < deadline {
        if let Some(v) = read_report(c, tenant, name) {
            if done(&v) {
                return v;
            }
            last = Some(v);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!(
        "report {name} never showed the expected usage; last: {last:?}\n{}",
        c.server_log()
    );
}

fn n(v: &Value) -> u64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a count is a decimal string: {v}"))
}

#[test]
fn two_accounts_reports_match_what_they_stored_and_ran() {
    let mut c = cluster();
    let bob = c.add_tenant("bob").unwrap();

    // alice: three objects (one empty) in a subdirectory, and a snaplink
    // of one in public (a key, not another object).
    ok(&c.manta("mmkdir", &["-p", "/alice/stor/m/deep"]));
    let sizes = [1000usize, 2000, 0];
    for (i, len) in sizes.iter().enumerate() {
        c.mput(
            &format!("/alice/stor/m/deep/o{i}"),
            &payload(*len, i as u64),
        );
    }
    ok(&c.manta("mln", &["/alice/stor/m/deep/o0", "/alice/public/o0"]));
    let alice_bytes: u64 = sizes.iter().map(|&s| s as u64).sum();

    // bob: two objects and a map job over them.
    ok(&bob.manta(&c, "mmkdir", &["-p", "/bob/stor/in"], b""));
    let bob_inputs = [("a", 500usize), ("b", 700)];
    for (name, len) in bob_inputs {
        let path = format!("/bob/stor/in/{name}");
        ok(&bob.manta(&c, "mput", &[&path], &payload(len, 7)));
    }
    let out = ok(&bob.manta(
        &c,
        "mjob",
        &["create", "-o", "-m", "wc -c"],
        b"/bob/stor/in/a\n/bob/stor/in/b\n",
    ));
    let mut counts: Vec<&str> = out.split_whitespace().collect();
    counts.sort_unstable();
    assert_eq!(counts, ["500", "700"], "the job's outputs: {out}");
    let bob_in: u64 = bob_inputs.iter().map(|(_, l)| *l as u64).sum();
    let bob_out = "500\n".len() as u64 + "700\n".len() as u64;

    // alice's storage report: exact counts under stor and public.
    let storage = wait_report(&c, None, "/alice/reports/usage/storage/latest", |v| {
        v["storage"]["stor"]["objects"] == "3" && v["storage"]["public"]["keys"] == "1"
    });
    let stor = &storage["storage"]["stor"];
    assert_eq!(n(&stor["keys"]), 3, "{storage}");
    assert_eq!(n(&stor["objects"]), 3, "{storage}");
    assert_eq!(n(&stor["bytes"]), alice_bytes, "{storage}");
    // Durability 2: every non-empty object has two copies.
    assert_eq!(n(&stor["storedBytes"]), 2 * alice_bytes, "{storage}");
    // /alice/stor, m, deep.
    assert_eq!(n(&stor["directories"]), 3, "{storage}");
    let public = &storage["storage"]["public"];
    assert_eq!(
        (
            n(&public["keys"]),
            n(&public["objects"]),
            n(&public["bytes"])
        ),
        (1, 0, 0),
        "a snaplink is counted where its object was first named: {storage}"
    );
    assert!(
        storage["date"]
            .as_str()
            .is_some_and(|d| d.ends_with(":00:00.000Z"))
    );

    // bob's compute report: the job's one phase, two tasks, its bytes.
    let compute = wait_report(&c, Some(&bob), "/bob/reports/usage/compute/latest", |v| {
        v["jobs"]
            .as_object()
            .is_some_and(|j| j.values().any(|p| p["0"]["ntasks"] == "2"))
    });
    let jobs = compute["jobs"].as_object().unwrap();
    assert_eq!(jobs.len(), 1, "{compute}");
    let phase = &jobs.values().next().unwrap()["0"];
    assert_eq!(n(&phase["bandwidth"]["in"]), bob_in, "{compute}");
    assert_eq!(n(&phase["bandwidth"]["out"]), bob_out, "{compute}");
    let memory = n(&phase["memory"]);
    assert!(memory > 0, "{compute}");
    let seconds: f64 = phase["seconds"].as_str().unwrap().parse().unwrap();
    let gbs: f64 = phase["gbSeconds"].as_str().unwrap().parse().unwrap();
    assert!(seconds > 0.0, "{compute}");
    let expected = seconds * memory as f64 / 1024.0;
    assert!(
        (gbs - expected).abs() <= 0.002 + expected * 1e-6,
        "{compute}"
    );

    // alice ran nothing: no compute report; bob's storage is his own.
    assert!(read_report(&c, None, "/alice/reports/usage/compute/latest").is_none());
    let bob_storage = wait_report(&c, Some(&bob), "/bob/reports/usage/storage/latest", |v| {
        v["storage"]["stor"]["objects"] == "2"
    });
    assert_eq!(n(&bob_storage["storage"]["stor"]["bytes"]), bob_in);
    assert_eq!(
        n(&bob_storage["storage"]["stor"]["storedBytes"]),
        2 * bob_in
    );
    // Another account's reports are not readable.
    assert!(
        read_report(&c, Some(&bob), "/alice/reports/usage/storage/latest").is_none(),
        "bob read alice's report"
    );

    // `tidepool admin usage`: the same figures, at once.
    let printed = c.admin(&["usage", "--since", "1h"]).unwrap();
    let lines: Vec<Value> = printed
        .lines()
        .map(|l| serde_json::from_str(l).expect("admin usage prints JSON lines"))
        .collect();
    let of = |login: &str| {
        lines
            .iter()
            .find(|l| l["account"] == login)
            .unwrap_or_else(|| panic!("no line for {login}: {printed}"))
    };
    let (a, b) = (of("alice"), of("bob"));
    assert_eq!(n(&a["storage"]["stor"]["bytes"]), alice_bytes, "{printed}");
    assert_eq!(n(&a["storage"]["stor"]["storedBytes"]), 2 * alice_bytes);
    assert_eq!(n(&a["compute"]["total"]["ntasks"]), 0, "{printed}");
    assert_eq!(n(&b["storage"]["stor"]["objects"]), 2, "{printed}");
    assert_eq!(n(&b["compute"]["total"]["ntasks"]), 2, "{printed}");
    assert_eq!(n(&b["compute"]["total"]["bandwidth"]["in"]), bob_in);
    assert_eq!(n(&b["compute"]["total"]["bandwidth"]["out"]), bob_out);
}
