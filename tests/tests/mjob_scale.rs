//! Jobs at scale and user-built phases, through Manta's official `mjob`
//! against a real `tidepool up`.
//!
//! * 10,000 small objects through one map/reduce job: every input is
//!   accounted for (each map output reaches the reducer with the right
//!   content, no errors, every task committed) and the reducer's sum equals
//!   the one computed here.
//! * A phase written in Rust with the `sdk` crate (its `wordcount`
//!   example), built for `wasm32-wasip1` by this test, stored as an object
//!   and run as a job asset (a `.wasm` asset becomes a command named after
//!   its file), compared with word counts computed by GNU tools.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tidepool_tests::{Cluster, describe, host_sh, ok, run_with_deadline};

/// Objects in the scale test.
const OBJECTS: usize = 10_000;

/// Stores `count` objects `<dir>/oNNNNN` through the Manta npm library in
/// one node process (16 PUTs in flight); object `i` holds its own name on
/// `lines(i)` lines.
fn put_many(c: &Cluster, dir: &str, count: usize) {
    let script = format!(
        r#"
        var manta = require('manta');
        var log = require('bunyan').createLogger({{name: 't', level: 'fatal'}});
        var client = manta.createBinClient({{log: log}});
        var n = 0, inflight = 0, total = {count};
        function next() {{
            while (inflight < 16 && n < total) {{
                var i = n++; inflight++;
                var name = '{dir}/o' + ('00000' + i).slice(-5);
                var body = (name + '\n').repeat(i % 5 + 1);
                var s = new (require('stream').PassThrough)(); s.end(body);
                client.put(name, s, {{size: Buffer.byteLength(body)}}, function (err) {{
                    if (err) {{ console.error(err); process.exit(1); }}
                    inflight--;
                    if (n === total && inflight === 0) {{ client.close(); }} else {{ next(); }}
                }});
            }}
        }}
        next();
    "#
    );
    ok(&c.node(&script));
}

fn status(c: &Cluster, id: &str) -> serde_json::Value {
    serde_json::from_str(&ok(&c.manta("mjob", &["get", id]))).expect("mjob get prints JSON")
}

#[test]
fn ten_thousand_objects_map_reduce_accounts_for_every_input() {
    let t = Instant::now();
    let c = Cluster::start().unwrap();
    let dir = "/alice/stor/scale";
    ok(&c.manta("mmkdir", &["-p", dir]));
    put_many(&c, dir, OBJECTS);
    let uploaded = t.elapsed();

    let id = ok(&c.manta(
        "mjob",
        &[
            "create",
            "--open",
            "-m",
            "uniq -c",
            "-r",
            "awk '{s+=$1; print} END {print \"total \" s}'",
        ],
    ))
    .trim()
    .to_owned();
    assert_eq!(id.len(), 36, "mjob create prints the job id: {id:?}");
    let names: String = (0..OBJECTS).map(|i| format!("{dir}/o{i:05}\n")).collect();
    let added = c.manta_stdin("mjob", &["addinputs", &id], names.as_bytes());
    ok(&added);
    let watched = run_with_deadline(
        c.manta_cmd("mjob").args(["watch", &id]),
        None,
        Duration::from_secs(600),
    );
    ok(&watched);
    // Not asserted, only reported (`--nocapture`): where the wall time goes.
    eprintln!(
        "{OBJECTS} objects: cluster start + upload {:.1} s, job (create + addinputs + watch) {:.1} s",
        uploaded.as_secs_f64(),
        (t.elapsed() - uploaded).as_secs_f64()
    );

    let st = status(&c, &id);
    assert_eq!(st["state"], "done", "{st}");
    assert_eq!(st["inputDone"], true, "{st}");
    let stats = &st["stats"];
    assert_eq!(stats["errors"], 0, "{st}");
    assert_eq!(
        stats["tasks"],
        OBJECTS as u64 + 1,
        "one task per input + reducer: {st}"
    );
    assert_eq!(stats["tasksDone"], stats["tasks"], "{st}");
    assert_eq!(stats["outputs"], 1, "{st}");
    assert_eq!(ok(&c.manta("mjob", &["errors", &id])), "");
    // `mjob addinputs` sends its batches of 1,000 in parallel, so only
    // the set of inputs is defined, not their order across batches.
    let listed = ok(&c.manta("mjob", &["inputs", &id]));
    let mut listed: Vec<&str> = listed.lines().collect();
    listed.sort_unstable();
    let sent: Vec<&str> = names.lines().collect();
    assert_eq!(listed.len(), OBJECTS, "mjob inputs lists every input");
    assert!(listed == sent, "mjob inputs lists each input once");

    let outs = ok(&c.manta("mjob", &["outputs", &id]));
    assert_eq!(outs.lines().count(), 1, "{outs}");
    let got = ok(&c.manta("mget", &[outs.trim()]));
    // Every map output arrived at the reducer once, with the right content.
    let mut lines: Vec<(u64, String)> = got
        .lines()
        .filter(|l| !l.starts_with("total "))
        .map(|l| {
            let (n, name) = l.trim().split_once(' ').unwrap_or(("", ""));
            (n.parse().unwrap_or(0), name.to_owned())
        })
        .collect();
    lines.sort_by(|a, b| a.1.cmp(&b.1));
    let want: Vec<(u64, String)> = (0..OBJECTS)
        .map(|i| ((i % 5 + 1) as u64, format!("{dir}/o{i:05}")))
        .collect();
    assert_eq!(lines.len(), OBJECTS, "one reducer line per input");
    assert!(
        lines == want,
        "map outputs differ from the inputs' line counts"
    );
    let total: usize = (0..OBJECTS).map(|i| i % 5 + 1).sum();
    assert!(
        got.lines().any(|l| l == format!("total {total}")),
        "reducer sum: {:?}",
        got.lines().last()
    );
}

/// Builds the sdk's `wordcount` example for `wasm32-wasip1` with the same
/// cargo and profile as this test; returns the `.wasm` path.
fn build_wordcount() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "-p",
        "sdk",
        "--example",
        "wordcount",
        "--target",
        "wasm32-wasip1",
        "--message-format=json",
    ])
    .env_remove("CARGO_BUILD_TARGET")
    .stdin(Stdio::null());
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    let out = run_with_deadline(&mut cmd, None, Duration::from_secs(600));
    assert!(
        out.status.success(),
        "building wordcount: {}",
        describe(&out)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "wordcount")
        .flat_map(|m| {
            m["filenames"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|f| f.as_str().map(PathBuf::from))
        })
        .find(|p| p.extension().is_some_and(|e| e == "wasm"))
        .expect("cargo reported the wordcount .wasm")
}

#[test]
fn sdk_wordcount_runs_as_a_wasm_asset() {
    let wasm = build_wordcount();
    let c = Cluster::start().unwrap();
    ok(&c.manta("mmkdir", &["-p", "~~/stor/texts"]));
    ok(&c.manta(
        "mput",
        &["-f", &wasm.to_string_lossy(), "/alice/stor/wordcount.wasm"],
    ));
    let words = [
        "Tide", "pool", "MANTA", "ray", "reef", "Kelp", "crab", "shell", "wave", "sand", "tide",
    ];
    let mut all = Vec::new();
    let mut inputs = String::new();
    for i in 0..4usize {
        let mut text = String::new();
        for j in 0..(60 + 17 * i) {
            text.push_str(words[(i * 5 + j * j + j / 3) % words.len()]);
            text.push(match j % 11 {
                10 => '\n',
                4 => '\t',
                _ => ' ',
            });
            if j % 23 == 0 {
                text.push(' ');
            }
        }
        text.push('\n');
        let p = format!("/alice/stor/texts/t{i}.txt");
        ok(&c.manta_stdin("mput", &[&p], text.as_bytes()));
        all.extend_from_slice(text.as_bytes());
        inputs.push_str(&p);
        inputs.push('\n');
    }
    let asset = "/alice/stor/wordcount.wasm";
    // Phase properties (`-s`) apply to the next phase only.
    let got = ok(&c.manta_stdin(
        "mjob",
        &[
            "create",
            "-o",
            "-s",
            asset,
            "-m",
            "wordcount",
            "-s",
            asset,
            "-r",
            "wordcount",
        ],
        inputs.as_bytes(),
    ));
    let want = host_sh(
        "tr A-Z a-z | tr -s ' \\t\\n' '\\n' | sed '/^$/d' | sort | uniq -c | awk '{print $2 \"\\t\" $1}'",
        &all,
    );
    assert!(!want.is_empty());
    assert_eq!(got, want, "word counts equal GNU's");
}
