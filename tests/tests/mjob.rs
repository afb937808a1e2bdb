//! Jobs through Manta's official `mjob` (npm `manta@5.4.2`) against a real
//! `tidepool up`: the gateway's jobs API, the supervisor inside it, and
//! tasks running as wasm in the storage nodes' agents.
//!
//! Every expectation is computed independently: job outputs are compared
//! with the same pipeline run locally by GNU tools (`sh -c`), never with
//! numbers written into the test.

use std::time::{Duration, Instant};

use tidepool_tests::{Cluster, describe, host_sh, ok};

fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_owned).collect();
    v.sort();
    v
}

/// Waits (deadline, no fixed sleeps as synchronization) until `mls` of the
/// job's directory lists its archive.
fn wait_archived(c: &Cluster, id: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = c.manta("mls", &[&format!("~~/jobs/{id}")]);
        let ls = String::from_utf8_lossy(&out.stdout).into_owned();
        if ls.contains("job.json") || Instant::now() > deadline {
            return ls;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Deterministic Apache combined-format log lines.
fn apache_log(seed: u64, lines: usize) -> Vec<u8> {
    let ips = [
        "10.0.0.1",
        "10.0.0.2",
        "192.168.1.7",
        "172.16.4.20",
        "8.8.8.8",
    ];
    let paths = [
        "/login",
        "/index.html",
        "/login/help",
        "/api/v1/x",
        "/logout",
    ];
    let mut x = seed | 1;
    let mut out = String::new();
    for _ in 0..lines {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let ip = ips[(x % ips.len() as u64) as usize];
        let path = paths[((x >> 8) % paths.len() as u64) as usize];
        let status = [200, 302, 404][((x >> 16) % 3) as usize];
        out.push_str(&format!(
            "{ip} - - [04/Dec/2026:12:{:02}:{:02} +0000] \"GET {path} HTTP/1.1\" {status} {} \"-\" \"curl/8.0\"\n",
            (x >> 20) % 60,
            (x >> 26) % 60,
            (x >> 32) % 5000
        ));
    }
    out.into_bytes()
}

#[test]
fn map_wc_l_over_three_objects() {
    let c = Cluster::start().unwrap();
    ok(&c.manta("mmkdir", &["-p", "~~/stor/wc"]));
    let bodies: Vec<Vec<u8>> = (1..=3)
        .map(|n| "line\n".repeat(n * 7).into_bytes())
        .collect();
    let mut inputs = String::new();
    for (i, b) in bodies.iter().enumerate() {
        let p = format!("/alice/stor/wc/obj{i}");
        c.mput(&p, b);
        inputs.push_str(&p);
        inputs.push('\n');
    }
    let out = c.manta_stdin("mjob", &["create", "-o", "-m", "wc -l"], inputs.as_bytes());
    let got = ok(&out);
    let want: String = bodies.iter().map(|b| host_sh("wc -l", b)).collect();
    assert_eq!(got.lines().count(), 3, "one output line per input: {got:?}");
    assert_eq!(
        sorted_lines(&got)
            .iter()
            .map(|l| l.trim().to_owned())
            .collect::<Vec<_>>(),
        sorted_lines(&want)
            .iter()
            .map(|l| l.trim().to_owned())
            .collect::<Vec<_>>()
    );

    // The job is listed, its inputs and outputs read back, and it is
    // archived under its directory.
    let list = ok(&c.manta("mjob", &["list"]));
    let id = list
        .lines()
        .next()
        .unwrap_or("")
        .trim_end_matches('/')
        .to_owned();
    assert_eq!(id.len(), 36, "mjob list shows the job: {list:?}");
    let ins = ok(&c.manta("mjob", &["inputs", &id]));
    assert_eq!(ins, inputs, "mjob inputs lists the inputs in order");
    let outs = ok(&c.manta("mjob", &["outputs", &id]));
    assert_eq!(outs.lines().count(), 3);
    for o in outs.lines() {
        assert!(
            o.starts_with(&format!("/alice/jobs/{id}/stor/alice/stor/wc/obj")) && o.contains(".0."),
            "output name {o}"
        );
    }
    let status: serde_json::Value =
        serde_json::from_str(&ok(&c.manta("mjob", &["get", &id]))).unwrap();
    assert_eq!(status["state"], "done");
    assert_eq!(status["stats"]["tasks"], 3);
    assert_eq!(status["stats"]["tasksDone"], 3);
    assert_eq!(status["stats"]["outputs"], 3);
    assert_eq!(status["stats"]["errors"], 0);
    let ls = wait_archived(&c, &id);
    for f in [
        "err.txt", "fail.txt", "in.txt", "job.json", "out.txt", "stor/",
    ] {
        assert!(ls.lines().any(|l| l == f), "archive lists {f}: {ls:?}");
    }
    let archived: serde_json::Value =
        serde_json::from_str(&ok(&c.manta("mget", &[&format!("~~/jobs/{id}/job.json")]))).unwrap();
    assert!(archived["timeArchiveDone"].is_string(), "{archived}");

    // A plain asset is a read-only file at /assets/<path>: neither the
    // shell nor a wasm program can change it.
    c.mput("/alice/stor/wc/words.txt", b"asset words\n");
    let at = "/assets/alice/stor/wc/words.txt";
    let script = format!(
        "cat {at}; if echo x > {at}; then echo written; else echo refused; fi; \
         echo y | tee {at} > /dev/null || echo tee refused; cat {at}"
    );
    let out = c.manta_stdin(
        "mjob",
        &[
            "create",
            "-o",
            "-s",
            "/alice/stor/wc/words.txt",
            "-m",
            &script,
        ],
        b"/alice/stor/wc/obj0\n",
    );
    assert_eq!(
        ok(&out),
        "asset words\nrefused\ntee refused\nasset words\n",
        "{}",
        describe(&out)
    );
}

#[test]
fn apache_logs_map_awk_reduce_sort_uniq_c() {
    let c = Cluster::start().unwrap();
    ok(&c.manta("mmkdir", &["-p", "~~/stor/logs"]));
    let mut all = Vec::new();
    let mut inputs = String::new();
    for i in 0..4u64 {
        let log = apache_log(i + 11, 300 + 50 * i as usize);
        let p = format!("/alice/stor/logs/access{i}.log");
        c.mput(&p, &log);
        all.extend_from_slice(&log);
        inputs.push_str(&p);
        inputs.push('\n');
    }
    let out = c.manta_stdin(
        "mjob",
        &[
            "create",
            "-o",
            "-m",
            "awk '{print $1}'",
            "-r",
            "sort | uniq -c",
        ],
        inputs.as_bytes(),
    );
    let got = ok(&out);
    let want = host_sh("awk '{print $1}' | sort | uniq -c", &all);
    assert_eq!(got, want, "per-IP request counts equal GNU's");

    // Manta's other classic: grep -w /login per log.
    let out = c.manta_stdin(
        "mjob",
        &["create", "-o", "-m", "grep -w /login || true"],
        inputs.as_bytes(),
    );
    let got = ok(&out);
    let want = host_sh("grep -w /login", &all);
    assert_eq!(sorted_lines(&got), sorted_lines(&want));
}

#[test]
fn failing_exec_yields_an_error_with_stderr() {
    let c = Cluster::start().unwrap();
    ok(&c.manta("mmkdir", &["-p", "~~/stor/f"]));
    c.mput("/alice/stor/f/a", b"some text\n");
    let id = ok(&c.manta_stdin(
        "mjob",
        &["create", "-m", "cat /no/such/file"],
        b"/alice/stor/f/a\n/alice/stor/f/missing\n",
    ))
    .trim()
    .to_owned();
    assert_eq!(id.len(), 36, "mjob create prints the job id: {id:?}");
    let watched = c.manta("mjob", &["watch", &id]);
    let status: serde_json::Value = serde_json::from_slice(&watched.stdout).unwrap();
    assert_eq!(status["state"], "done", "{status}");
    assert_eq!(status["stats"]["errors"], 2, "{status}");
    assert_eq!(
        status["stats"]["tasks"], 1,
        "the missing input makes no task"
    );

    let errors = ok(&c.manta("mjob", &["errors", &id]));
    let errs: Vec<serde_json::Value> = errors
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(errs.len(), 2, "{errors}");
    let user = errs
        .iter()
        .find(|e| e["code"] == "UserTaskError")
        .unwrap_or_else(|| panic!("a UserTaskError: {errors}"));
    assert_eq!(user["what"], "phase 0: input \"/alice/stor/f/a\"");
    assert_eq!(user["input"], "/alice/stor/f/a");
    let code = host_sh("cat /no/such/file 2>/dev/null; echo $?", b"");
    assert_eq!(
        user["message"],
        format!("user command exited with code {}", code.trim())
    );
    let stderr_obj = user["stderr"].as_str().expect("stderr object named");
    assert!(
        stderr_obj.starts_with(&format!("/alice/jobs/{id}/stor/alice/stor/f/a.0.err.")),
        "{stderr_obj}"
    );
    let stderr = ok(&c.manta("mget", &[stderr_obj]));
    assert!(stderr.contains("/no/such/file"), "stderr saved: {stderr:?}");

    let missing = errs
        .iter()
        .find(|e| e["code"] == "ResourceNotFoundError")
        .unwrap_or_else(|| panic!("a ResourceNotFoundError: {errors}"));
    assert_eq!(
        missing["message"],
        "no such object: \"/alice/stor/f/missing\""
    );
    let fails = ok(&c.manta("mjob", &["failures", &id]));
    assert_eq!(
        sorted_lines(&fails),
        vec![
            "/alice/stor/f/a".to_owned(),
            "/alice/stor/f/missing".to_owned()
        ]
    );
}

/// Puts `n` text objects under `~~/stor/<dir>/` and returns the input list
/// and the concatenation of their bytes.
fn text_objects(c: &Cluster, dir: &str, n: usize) -> (String, Vec<u8>) {
    ok(&c.manta("mmkdir", &["-p", &format!("~~/stor/{dir}")]));
    let words = [
        "tide", "pool", "manta", "ray", "reef", "kelp", "crab", "shell", "wave", "sand",
    ];
    let mut inputs = String::new();
    let mut all = Vec::new();
    for i in 0..n {
        let mut text = String::new();
        for j in 0..(40 + 13 * i) {
            let w = words[(i * 7 + j * j * 3 + j / 5) % words.len()];
            text.push_str(w);
            text.push(if j % 9 == 8 { '\n' } else { ' ' });
        }
        text.push('\n');
        let p = format!("/alice/stor/{dir}/t{i:02}.txt");
        c.mput(&p, text.as_bytes());
        all.extend_from_slice(text.as_bytes());
        inputs.push_str(&p);
        inputs.push('\n');
    }
    (inputs, all)
}

#[test]
fn mpipe_mcat_and_map_map_reduce() {
    let c = Cluster::start().unwrap();
    let (inputs, all) = text_objects(&c, "mm", 3);

    // Any explicit emit turns stdout capture off.
    let got = ok(&c.manta_stdin(
        "mjob",
        &["create", "-o", "-m", "echo foo; echo bar | mpipe"],
        inputs.as_bytes(),
    ));
    assert_eq!(got, "bar\n".repeat(3));

    // mcat emits an existing object by reference, unchanged.
    let first = inputs.lines().next().unwrap().to_owned();
    let id = ok(&c.manta_stdin(
        "mjob",
        &["create", "-m", &format!("mcat {first}")],
        inputs.as_bytes(),
    ))
    .trim()
    .to_owned();
    ok(&c.manta("mjob", &["watch", &id]));
    let outs = ok(&c.manta("mjob", &["outputs", &id]));
    assert_eq!(outs, format!("{first}\n").repeat(3));

    // Phases chain: map, map, reduce.
    let got = ok(&c.manta_stdin(
        "mjob",
        &[
            "create",
            "-o",
            "-m",
            "tr a-z A-Z",
            "-m",
            "wc -w",
            "-r",
            "awk '{s+=$1} END {print s}'",
        ],
        inputs.as_bytes(),
    ));
    let want = host_sh("wc -w", &all);
    assert_eq!(got.trim(), want.trim());
}

#[test]
fn word_frequency_with_four_msplit_reducers() {
    let c = Cluster::start().unwrap();
    let (inputs, all) = text_objects(&c, "wf", 20);
    let out = c.manta_stdin(
        "mjob",
        &[
            "create",
            "-o",
            "-m",
            "tr -s ' ' '\\n' | msplit -n 4",
            "--count",
            "4",
            "-r",
            "sort | uniq -c",
        ],
        inputs.as_bytes(),
    );
    let got = ok(&out);
    let want = host_sh("tr -s ' ' '\\n' | sort | uniq -c", &all);
    assert_eq!(sorted_lines(&got), sorted_lines(&want));
    // Top 10 by count, as the classic example prints it.
    let top = |s: &str| {
        let mut v: Vec<(u64, String)> = s
            .lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                Some((it.next()?.parse().ok()?, it.next().unwrap_or("").to_owned()))
            })
            .collect();
        v.sort_by(|a, b| b.cmp(a));
        v.truncate(10);
        v
    };
    assert_eq!(top(&got), top(&want));
}

#[test]
fn cancel_stops_a_running_job() {
    let c = Cluster::start().unwrap();
    let (inputs, _) = text_objects(&c, "cx", 2);
    let id = ok(&c.manta_stdin(
        "mjob",
        &["create", "--open", "-m", "yes | wc -l"],
        inputs.as_bytes(),
    ))
    .trim()
    .to_owned();
    ok(&c.manta("mjob", &["cancel", &id]));
    let watched = ok(&c.manta("mjob", &["watch", &id]));
    let status: serde_json::Value = serde_json::from_str(&watched).unwrap();
    assert_eq!(status["state"], "done");
    assert_eq!(status["cancelled"], true);
    assert_eq!(status["inputDone"], true);
    assert_eq!(status["stats"]["outputs"], 0);
    // A second cancel is refused.
    let again = c.manta("mjob", &["cancel", &id]);
    assert!(!again.status.success());
}
