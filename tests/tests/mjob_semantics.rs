//! Manta's job semantics under concurrency and change, through Manta's
//! official `mjob` against a real `tidepool up`:
//!
//! * many `mjob addinputs` streams into one job at once: no request is
//!   refused (a metadata conflict is the server's business) and every
//!   input is accounted for.
//! * an input object overwritten again and again while the job runs: every
//!   task runs one whole version of it (the one its input resolved to) and
//!   none fails for lack of a copy.
//! * an input whose name has a component over 255 bytes runs.
//! * the task's file system and shell as Manta users wrote for them:
//!   `/tmp` and `/var/tmp` writable, brace expansion, `sleep`, `cmp`,
//!   `egrep`/`fgrep`; compared with bash and GNU tools on the same input.
//! * dispatch errors (malformed, missing and directory inputs) carry the
//!   codes and messages of the jobs spec §4.10.
//! * a reducer streams: it runs, and writes, while its job's input is
//!   still open (so before its last map task even exists), and its output
//!   is the GNU pipeline's over every input.

use std::collections::BTreeMap;
use std::time::Duration;

use tidepool_tests::{Cluster, describe, host_sh, ok, run_with_deadline};

fn status(c: &Cluster, id: &str) -> serde_json::Value {
    serde_json::from_str(&ok(&c.manta("mjob", &["get", id]))).expect("mjob get prints JSON")
}

fn watch(c: &Cluster, id: &str) {
    let watched = run_with_deadline(
        c.manta_cmd("mjob").args(["watch", id]),
        None,
        Duration::from_secs(900),
    );
    ok(&watched);
}

/// Streams added by parallel `mjob addinputs` processes.
const STREAMS: usize = 25;
/// Names per stream.
const NAMES: usize = 1000;
/// Distinct objects the names refer to.
const OBJECTS: usize = 20;

#[test]
fn parallel_addinputs_streams_lose_nothing() {
    let c = Cluster::start().unwrap();
    ok(&c.manta("mmkdir", &["-p", "~~/stor/many"]));
    let objects: Vec<String> = (0..OBJECTS)
        .map(|i| format!("/alice/stor/many/o{i:02}"))
        .collect();
    for o in &objects {
        c.mput(o, format!("{o}\n").as_bytes());
    }
    // A reduce-only job: every input goes to the one reducer, which counts
    // how often it saw each object.
    let id = ok(&c.manta("mjob", &["create", "--open", "-r", "sort | uniq -c"]))
        .trim()
        .to_owned();
    assert_eq!(id.len(), 36, "mjob create prints the job id: {id:?}");
    let streams: Vec<String> = (0..STREAMS)
        .map(|s| {
            (0..NAMES)
                .map(|i| format!("{}\n", objects[(s * 7 + i * 3 + i / 11) % OBJECTS]))
                .collect()
        })
        .collect();
    // 25 processes at once, each with 10 requests of 10 names in flight.
    let outs: Vec<std::process::Output> = std::thread::scope(|scope| {
        let handles: Vec<_> = streams
            .iter()
            .map(|names| {
                let (c, id) = (&c, &id);
                scope.spawn(move || {
                    c.manta_stdin(
                        "mjob",
                        &["addinputs", "--open", "-b", "10", "-p", "10", id],
                        names.as_bytes(),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("addinputs thread"))
            .collect()
    });
    for out in &outs {
        assert!(
            out.status.success(),
            "every addinputs stream succeeds: {}",
            describe(out)
        );
    }
    // End input (an empty addinputs without --open).
    ok(&c.manta_stdin("mjob", &["addinputs", &id], b""));
    watch(&c, &id);

    let st = status(&c, &id);
    assert_eq!(st["state"], "done", "{st}");
    assert_eq!(st["stats"]["errors"], 0, "{st}");
    assert_eq!(ok(&c.manta("mjob", &["errors", &id])), "");

    let mut sent: Vec<&str> = streams.iter().flat_map(|s| s.lines()).collect();
    sent.sort_unstable();
    let listed = ok(&c.manta("mjob", &["inputs", &id]));
    let mut listed: Vec<&str> = listed.lines().collect();
    listed.sort_unstable();
    assert_eq!(
        listed.len(),
        STREAMS * NAMES,
        "mjob inputs lists every input"
    );
    assert!(listed == sent, "mjob inputs lists exactly the inputs sent");

    let mut want: BTreeMap<&str, u64> = BTreeMap::new();
    for n in &sent {
        *want.entry(n).or_default() += 1;
    }
    let outputs = ok(&c.manta("mjob", &["outputs", &id]));
    assert_eq!(outputs.lines().count(), 1, "{outputs}");
    let counted = ok(&c.manta("mget", &[outputs.trim()]));
    let got: BTreeMap<&str, u64> = counted
        .lines()
        .filter_map(|l| {
            let (n, name) = l.trim().split_once(' ')?;
            Some((name, n.parse().ok()?))
        })
        .collect();
    assert_eq!(got, want, "the reducer saw every input once");
}

/// A reducer starts with its first input and reads the rest as the maps
/// commit them (issue 17): its first line is written to an object at once,
/// which must appear while the job's input is still open: a reducer that
/// waited for its upstream could not start before the input ends. The
/// reducer's output is then GNU `sort` over every map's output.
#[test]
fn a_reducer_streams_while_its_maps_still_run() {
    let c = Cluster::start().unwrap();
    ok(&c.manta("mmkdir", &["-p", "~~/stor/stream"]));
    let names: Vec<String> = (0..6).map(|i| format!("/alice/stor/stream/o{i}")).collect();
    let mut all = String::new();
    for (i, o) in names.iter().enumerate() {
        let body = format!("line {}\nline {i}\n", 9 - i);
        all.push_str(&body);
        c.mput(o, body.as_bytes());
    }
    let seen = "/alice/stor/stream/first-seen";
    let reducer =
        format!("read -r first; echo \"$first\" | mput {seen}; {{ echo \"$first\"; cat; }} | sort");
    let id = ok(&c.manta("mjob", &["create", "--open", "-m", "cat", "-r", &reducer]))
        .trim()
        .to_owned();
    let first: String = names[..3].iter().map(|n| format!("{n}\n")).collect();
    ok(&c.manta_stdin("mjob", &["addinputs", "--open", &id], first.as_bytes()));
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        if c.manta("mget", &[seen]).status.success() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the reducer did not start while the job's input was open: {}",
            status(&c, &id)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let st = status(&c, &id);
    assert_eq!(st["inputDone"], false, "{st}");
    assert_eq!(st["state"], "running", "{st}");
    // The rest of the input, then its end.
    let rest: String = names[3..].iter().map(|n| format!("{n}\n")).collect();
    ok(&c.manta_stdin("mjob", &["addinputs", &id], rest.as_bytes()));
    watch(&c, &id);
    let st = status(&c, &id);
    assert_eq!(st["stats"]["errors"], 0, "{st}");
    let outputs = ok(&c.manta("mjob", &["outputs", &id]));
    assert_eq!(outputs.lines().count(), 1, "{outputs}");
    let got = ok(&c.manta("mget", &[outputs.trim()]));
    assert_eq!(got, host_sh("sort", all.as_bytes()));
}

/// Overwrites of the input while the job runs.
const VERSIONS: usize = 50;
/// Tasks over the overwritten object.
const TASKS: usize = 100;

fn version(k: usize) -> String {
    format!("version {k}\n").repeat(500 + k)
}

#[test]
fn input_overwritten_while_the_job_runs_keeps_every_task_on_one_version() {
    let c = Cluster::start().unwrap();
    ok(&c.manta("mmkdir", &["-p", "~~/stor/ow"]));
    let obj = "/alice/stor/ow/x";
    c.mput(obj, version(0).as_bytes());
    let id = ok(&c.manta("mjob", &["create", "--open", "-m", "md5sum", "-r", "cat"]))
        .trim()
        .to_owned();
    // One node process overwrites the object VERSIONS times in a row while
    // `mjob addinputs` submits the tasks one input per request.
    let overwrite = format!(
        r#"
        var manta = require('manta');
        var log = require('bunyan').createLogger({{name: 't', level: 'fatal'}});
        var client = manta.createBinClient({{log: log}});
        var k = 1;
        function next() {{
            if (k > {VERSIONS}) {{ client.close(); return; }}
            var body = ('version ' + k + '\n').repeat(500 + k);
            var s = new (require('stream').PassThrough)(); s.end(body);
            client.put('{obj}', s, {{size: Buffer.byteLength(body)}}, function (err) {{
                if (err) {{ console.error(err); process.exit(1); }}
                k++; next();
            }});
        }}
        next();
    "#
    );
    let names = format!("{obj}\n").repeat(TASKS);
    let (wrote, added) = std::thread::scope(|scope| {
        let w = scope.spawn(|| c.node(&overwrite));
        let a = scope.spawn(|| {
            c.manta_stdin(
                "mjob",
                &["addinputs", "-b", "1", "-p", "1", &id],
                names.as_bytes(),
            )
        });
        (w.join().expect("overwriter"), a.join().expect("addinputs"))
    });
    ok(&wrote);
    ok(&added);
    watch(&c, &id);

    let st = status(&c, &id);
    assert_eq!(st["state"], "done", "{st}");
    assert_eq!(st["stats"]["errors"], 0, "{st}");
    assert_eq!(ok(&c.manta("mjob", &["errors", &id])), "");
    assert_eq!(st["stats"]["tasks"], TASKS as u64 + 1, "{st}");
    // Each map task printed the MD5 of what it read; the reducer gathered
    // them. Every one is the MD5 of a whole version.
    let versions: Vec<String> = (0..=VERSIONS)
        .map(|k| host_sh("md5sum", version(k).as_bytes()))
        .collect();
    let outputs = ok(&c.manta("mjob", &["outputs", &id]));
    assert_eq!(outputs.lines().count(), 1, "{outputs}");
    let sums = ok(&c.manta("mget", &[outputs.trim()]));
    assert_eq!(sums.lines().count(), TASKS, "one line per task: {sums}");
    let mut seen = std::collections::BTreeSet::new();
    for line in sums.lines() {
        let k = versions.iter().position(|v| v.trim_end() == line);
        assert!(
            k.is_some(),
            "{line:?} is the MD5 of one version of the input"
        );
        seen.insert(k);
    }
    // Not asserted (it depends on timing), only reported: how many
    // versions the tasks saw.
    eprintln!("tasks saw {} distinct versions", seen.len());
    // The final version is what the name holds now.
    assert_eq!(ok(&c.manta("mget", &[obj])), version(VERSIONS));
}

/// An input whose name has a component longer than a file name may be
/// (Manta allowed up to 1,024 bytes per path) runs like any other: the
/// task sees it under a mapped name and reads its bytes.
#[test]
fn input_with_a_component_over_255_bytes_runs() {
    let c = Cluster::start().unwrap();
    let long = format!("{}-{}", "k".repeat(150), "é".repeat(80));
    assert!(long.len() > 255);
    let dir = format!("/alice/stor/{long}");
    ok(&c.manta("mmkdir", &["-p", &dir]));
    let obj = format!("{dir}/{long}.txt");
    let body = "one\ntwo\nthree\n";
    c.mput(&obj, body.as_bytes());
    let out = c.manta_stdin(
        "mjob",
        &[
            "create",
            "-o",
            "-m",
            "wc -l < $MANTA_INPUT_FILE && cat && echo $MANTA_INPUT_OBJECT",
        ],
        format!("{obj}\n").as_bytes(),
    );
    let got = ok(&out);
    assert_eq!(got, format!("3\n{body}{obj}\n"), "{}", describe(&out));
}

#[test]
fn task_has_tmp_braces_and_the_missing_commands() {
    let c = Cluster::start().unwrap();
    ok(&c.manta("mmkdir", &["-p", "~~/stor/fs"]));
    let body = "GET /login 200\nPOST /login 302\nGET /index.html 200\nGET /login 404\n";
    let obj = "/alice/stor/fs/access.log";
    c.mput(obj, body.as_bytes());
    let script = "grep /login > /tmp/l.txt && wc -l < /tmp/l.txt; \
        egrep 'POST|404' $MANTA_INPUT_FILE > /var/tmp/e.txt; cat /var/tmp/e.txt; \
        fgrep -c 'GET /' $MANTA_INPUT_FILE; \
        sleep 0.1 && echo {a,b}{1,2} {1..3}; \
        cp /tmp/l.txt /tmp/m.txt; cmp /tmp/l.txt /tmp/m.txt && echo same; \
        cmp -s /tmp/l.txt /var/tmp/e.txt; echo $?";
    let got = ok(&c.manta_stdin(
        "mjob",
        &["create", "-o", "-m", script],
        format!("{obj}\n").as_bytes(),
    ));
    // The same script under bash, in a scratch directory standing in for
    // `/tmp` and `/var/tmp`, with the input at the same relative name.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
    std::fs::create_dir_all(dir.path().join("var/tmp")).unwrap();
    std::fs::write(dir.path().join("input"), body).unwrap();
    let local = script
        .replace("/var/tmp/", "VAR_TMP/")
        .replace("/tmp/", "tmp/")
        .replace("VAR_TMP/", "var/tmp/")
        .replace("$MANTA_INPUT_FILE", "input");
    let out = std::process::Command::new("bash")
        .args(["-c", &local])
        .current_dir(dir.path())
        .env("LC_ALL", "C")
        .stdin(std::fs::File::open(dir.path().join("input")).unwrap())
        .output()
        .unwrap();
    let want = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(want.contains("a1 a2 b1 b2 1 2 3"), "{want}");
    assert_eq!(got, want);
}

/// Dispatch errors carry Manta's codes and messages (jobs spec §4.10):
/// names without an object below a top directory are malformed, a missing
/// object or owner account is not found, a directory is refused.
#[test]
fn dispatch_errors_use_mantas_codes() {
    let c = Cluster::start().unwrap();
    ok(&c.manta("mmkdir", &["-p", "~~/stor/somedir"]));
    let inputs = [
        (
            "/alice/stor",
            "ResourceNotFoundError",
            "malformed object name: \"/alice/stor\"",
        ),
        (
            "/alice/jobs",
            "ResourceNotFoundError",
            "malformed object name: \"/alice/jobs\"",
        ),
        (
            "/alice",
            "ResourceNotFoundError",
            "malformed object name: \"/alice\"",
        ),
        (
            "/alice/stor/missing",
            "ResourceNotFoundError",
            "no such object: \"/alice/stor/missing\"",
        ),
        (
            "/nosuchaccount/public/x",
            "ResourceNotFoundError",
            "no such object: \"/nosuchaccount/public/x\"",
        ),
        (
            "/alice/stor/somedir",
            "InvalidArgumentError",
            "objects of type \"directory\" are not supported: \"/alice/stor/somedir\"",
        ),
    ];
    let names: String = inputs.iter().map(|(n, _, _)| format!("{n}\n")).collect();
    let id = ok(&c.manta_stdin("mjob", &["create", "-m", "wc -l"], names.as_bytes()))
        .trim()
        .to_owned();
    watch(&c, &id);
    let errors = ok(&c.manta("mjob", &["errors", &id]));
    let mut got: Vec<(String, String)> = errors
        .lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|x| panic!("{x}: {l}"));
            (
                v["code"].as_str().unwrap_or_default().to_owned(),
                v["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    got.sort();
    let mut want: Vec<(String, String)> = inputs
        .iter()
        .map(|(_, c, m)| ((*c).to_owned(), (*m).to_owned()))
        .collect();
    want.sort();
    assert_eq!(got, want, "{errors}");
    let st = status(&c, &id);
    assert_eq!(st["stats"]["errors"], inputs.len() as u64, "{st}");
    assert_eq!(st["stats"]["tasks"], 0, "{st}");
}
