//! Differential test: every case in `tests/differential/*.cases` runs once
//! through `tidepool exec --input FILE 'PIPELINE'` (wasm tools in the
//! sandbox) and once through bash with the GNU tools (`LC_ALL=C`, `awk` =
//! gawk, input on stdin from the same file), each in its own fresh scratch
//! directory (holding `tmp` and `var/tmp`, as a task's `/` does); stdout
//! bytes and exit status must be identical.
//!
//! Case file syntax, one case per line: `INPUTS :: PIPELINE`, where INPUTS
//! is a comma-separated list of generated inputs (see [`inputs`]) or `*`
//! for the standard edge-case set; `#` starts a comment line.
//! `INPUTS !! PIPELINE` declares a construct Tidepool does not support:
//! it must fail with exit status 2 and no output (GNU is not consulted). Each input
//! makes a separate case. The file name (without `.cases`) is the group
//! reported in the per-group summary.
//!
//! `TIDEPOOL_DIFF_NATIVE=/path/to/wasi-coreutils` runs the host build of
//! the tools through PATH links instead of `tidepool exec` (for developing
//! tools without the sandbox); `TIDEPOOL_DIFF_FILTER=substr` runs only the
//! cases whose group or pipeline contains `substr`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Deterministic pseudo-random numbers (inputs must be identical run to run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[(self.next() as usize) % xs.len()]
    }
}

const WORDS: &[&str] = &[
    "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "Error", "error", "WARN",
    "info", "login", "logout", "user", "admin", "data", "value", "alpha", "beta", "gamma", "delta",
    "foo", "bar", "baz", "Foo", "BAR", "x", "y", "z", "hello", "world",
];

/// The named inputs cases can use.
fn inputs(name: &str) -> Option<Vec<u8>> {
    let mut r = Lcg(name
        .bytes()
        .fold(7u64, |a, b| a.wrapping_mul(31).wrapping_add(u64::from(b))));
    let mut s = Vec::new();
    match name {
        "empty" => {}
        "nonl" => s.extend_from_slice(b"alpha beta\ngamma  delta\n\nlast line without newline"),
        "oneline" => s.extend_from_slice(b"hello world\n"),
        "blank" => s.extend_from_slice(b"a\na\n\n\n\nb\nb\nB\n\na\n  c d\n  c d\nc\n\n"),
        "log" => {
            let ips = ["10.0.0.1", "10.0.0.2", "192.168.1.7", "172.16.0.9", "10.0.0.13"];
            let paths = ["/login", "/logout", "/index.html", "/api/v1/items", "/api/v1/items/42", "/static/app.js", "/login?next=/admin"];
            let methods = ["GET", "GET", "GET", "POST", "PUT", "DELETE"];
            let codes = ["200", "200", "200", "301", "404", "500", "401"];
            for i in 0..300 {
                let sz = r.next() % 50000;
                let _ = writeln!(
                    s,
                    "{} - user{} [22/Nov/2026:01:{:02}:{:02} +0000] \"{} {} HTTP/1.1\" {} {} \"Mozilla/5.0\"",
                    r.pick(&ips),
                    r.next() % 7,
                    i / 60,
                    i % 60,
                    r.pick(&methods),
                    r.pick(&paths),
                    r.pick(&codes),
                    sz
                );
            }
        }
        "words" => {
            for _ in 0..120 {
                let n = 1 + r.next() % 12;
                let line: Vec<&str> = (0..n).map(|_| *r.pick(WORDS)).collect();
                let sep = if r.next().is_multiple_of(5) { "  " } else { " " };
                let _ = writeln!(s, "{}{}", line.join(sep), if r.next().is_multiple_of(6) { "." } else { "" });
            }
        }
        "csv" => {
            s.extend_from_slice(b"id,name,city,amount,flag\n");
            let cities = ["Berlin", "Paris", "Tokyo", "", "New York", "Lima"];
            for i in 1..=60 {
                let _ = writeln!(s, "{i},{},{},{}.{:02},{}", r.pick(WORDS), r.pick(&cities), r.next() % 1000, r.next() % 100, r.next() % 2);
            }
        }
        "tsv" => {
            for i in 0..50 {
                let _ = writeln!(s, "{}\t{}\t{}\t{}", r.pick(WORDS), i % 7, r.next() % 100, r.pick(WORDS));
            }
        }
        "nums" => {
            let xs = ["10", "9", "-3", "0", "-0", "1.5", "1.50", " 42", "007", "1e3", "1K", "2M", "512", "3G", "abc", "", "-1.25", "+5", "0x10", "inf"];
            for _ in 0..80 {
                let _ = writeln!(s, "{}", r.pick(&xs));
            }
        }
        "kv" => {
            for _ in 0..80 {
                let _ = writeln!(s, "{} {} {}", r.pick(WORDS), r.next() % 20, r.pick(&["1K", "20M", "3G", "512", "0.5K", "-2"]));
            }
        }
        "utf8" => {
            s.extend_from_slice("héllo wörld\n日本語 テキスト\nemoji 😀 here\nplain ascii\nÉCOLE école\nnaïve café résumé\n\u{00a0}nbsp\n".as_bytes());
        }
        "invalid" => {
            s.extend_from_slice(b"good line\nbad \xff\xfe bytes\nlone \x80 continuation\n\xc3\x28 broken pair\nmixed caf\xc3\xa9 ok\nend\n");
        }
        "crlf" => s.extend_from_slice(b"first line\r\nsecond  line\r\n\r\nError: third\r\nlast\r\n"),
        "long" => {
            for k in 0..3 {
                for j in 0..(120_000 + k * 50_000) {
                    s.push(b"abcdefghij klmnopqrstuvwxyz0123456789"[(j * 7 + k) % 37]);
                }
                s.push(b'\n');
            }
            s.extend_from_slice(b"short\n");
        }
        "sorted" => s.extend_from_slice(b"apple 1\nbanana 2\ncherry 3\ncherry 4\ndate 5\nfig 6\ngrape 7\n"),
        "json" => {
            for i in 0..40 {
                let _ = writeln!(
                    s,
                    "{{\"id\":{i},\"user\":\"{}\",\"status\":{},\"bytes\":{},\"ok\":{},\"tags\":[\"{}\",\"{}\"],\"meta\":{{\"region\":\"{}\"}}}}",
                    r.pick(WORDS),
                    r.pick(&[200, 404, 500]),
                    r.next() % 10000,
                    r.next().is_multiple_of(2),
                    r.pick(WORDS),
                    r.pick(WORDS),
                    r.pick(&["us", "eu", "ap"])
                );
            }
        }
        "jsondoc" => s.extend_from_slice(b"{\"name\":\"tidepool\",\"version\":3,\"items\":[{\"k\":\"a\",\"v\":1},{\"k\":\"b\",\"v\":2}],\"nested\":{\"x\":null,\"y\":[1,2,3]}}\n"),
        "binary" => s.extend_from_slice(b"text before\nnul \x00 inside\nafter\n"),
        _ => return None,
    }
    Some(s)
}

/// The standard edge-case set `*` expands to.
const STANDARD: &[&str] = &["empty", "nonl", "log", "utf8", "invalid", "crlf"];

struct Case {
    group: String,
    input: String,
    pipeline: String,
    line: usize,
    /// Expected to be rejected with status 2 (`!!` cases).
    unsupported: bool,
}

fn load_cases() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("differential");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read tests/differential")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cases"))
        .collect();
    files.sort();
    let filter = std::env::var("TIDEPOOL_DIFF_FILTER").ok();
    let mut cases = Vec::new();
    for f in files {
        let group = f
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(&f).expect("read case file");
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let (ins, pipeline, unsupported) = match (t.split_once(" :: "), t.split_once(" !! ")) {
                (Some((a, b)), _) => (a, b, false),
                (None, Some((a, b))) => (a, b, true),
                _ => panic!(
                    "{}:{}: expected `INPUTS :: PIPELINE` or `INPUTS !! PIPELINE`",
                    f.display(),
                    i + 1
                ),
            };
            if let Some(flt) = &filter
                && !group.contains(flt.as_str())
                && !pipeline.contains(flt.as_str())
            {
                continue;
            }
            let names: Vec<&str> = ins
                .split(',')
                .map(str::trim)
                .flat_map(|n| if n == "*" { STANDARD.to_vec() } else { vec![n] })
                .collect();
            for n in names {
                assert!(
                    inputs(n).is_some(),
                    "{}:{}: unknown input {n:?}",
                    f.display(),
                    i + 1
                );
                cases.push(Case {
                    group: group.clone(),
                    input: n.to_string(),
                    pipeline: pipeline.to_string(),
                    line: i + 1,
                    unsupported,
                });
            }
        }
    }
    cases
}

/// What one side produced.
#[derive(PartialEq)]
struct Outcome {
    stdout: Vec<u8>,
    status: i32,
    stderr: Vec<u8>,
}

fn outcome(out: std::process::Output) -> Outcome {
    // A signal death (e.g. SIGPIPE) reads as the shell would report it.
    use std::os::unix::process::ExitStatusExt;
    let status = out
        .status
        .code()
        .unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0));
    Outcome {
        stdout: out.stdout,
        status,
        stderr: out.stderr,
    }
}

struct Env {
    root: PathBuf,
    shim: PathBuf,
    native: Option<PathBuf>,
    tidepool: Option<PathBuf>,
}

/// A fresh working directory standing for the task's `/`: like a task's
/// scratch, it holds `tmp` and `var/tmp`.
fn fresh_dir(root: &Path, tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = root.join(format!("{tag}-{}", N.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(d.join("tmp")).expect("create scratch");
    std::fs::create_dir_all(d.join("var/tmp")).expect("create scratch");
    d
}

fn run_gnu(env: &Env, input: &Path, pipeline: &str) -> Outcome {
    let dir = fresh_dir(&env.root, "gnu");
    // Every side runs under coreutils `timeout`: a hanging case fails (124)
    // instead of hanging the suite.
    let out = Command::new("timeout")
        .args(["-k", "5", "30", "bash", "-c"])
        .arg(pipeline)
        .current_dir(&dir)
        .env_clear()
        .env("LC_ALL", "C")
        .env("PATH", format!("{}:/usr/bin:/bin", env.shim.display()))
        .env("HOME", &dir)
        .env("MANTA_INPUT_FILE", input)
        .stdin(std::fs::File::open(input).expect("open input"))
        .output()
        .expect("run bash");
    let _ = std::fs::remove_dir_all(&dir);
    outcome(out)
}

fn run_tidepool(env: &Env, input: &Path, pipeline: &str) -> Outcome {
    let dir = fresh_dir(&env.root, "tp");
    let out = if let Some(native) = &env.native {
        let bin = env.root.join("native-bin");
        Command::new("timeout")
            .args(["-k", "5", "30", "bash", "-c"])
            .arg(pipeline)
            .current_dir(&dir)
            .env_clear()
            .env("LC_ALL", "C")
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("MANTA_INPUT_FILE", input)
            .stdin(std::fs::File::open(input).expect("open input"))
            .output()
            .unwrap_or_else(|e| panic!("run native {}: {e}", native.display()))
    } else {
        let tp = env.tidepool.as_ref().expect("tidepool binary");
        Command::new("timeout")
            .args(["-k", "5", "120"])
            .arg(tp)
            .arg("exec")
            .arg("--input")
            .arg(input)
            .arg("--scratch")
            .arg(&dir)
            .arg(pipeline)
            .stdin(Stdio::null())
            .output()
            .expect("run tidepool exec")
    };
    let _ = std::fs::remove_dir_all(&dir);
    outcome(out)
}

fn show(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    if s.len() > 600 {
        format!(
            "{}…[{} bytes]",
            &s[..s.char_indices().nth(600).map_or(s.len(), |c| c.0)],
            b.len()
        )
    } else {
        s.into_owned()
    }
}

#[test]
fn coreutils_match_gnu() {
    let cases = load_cases();
    assert!(
        std::env::var("TIDEPOOL_DIFF_FILTER").is_ok() || cases.len() >= 300,
        "only {} cases",
        cases.len()
    );
    let root = std::env::temp_dir().join(format!("tidepool-diff-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("temp root");
    // The GNU side's `awk` is gawk, as the issue asks.
    let shim = root.join("gnu-shim");
    std::fs::create_dir_all(&shim).expect("shim dir");
    std::os::unix::fs::symlink("/usr/bin/gawk", shim.join("awk")).expect("awk shim");
    let native = std::env::var_os("TIDEPOOL_DIFF_NATIVE").map(PathBuf::from);
    if let Some(n) = &native {
        let bin = root.join("native-bin");
        std::fs::create_dir_all(&bin).expect("native bin");
        let tools = Command::new(n).arg("--list").output().ok();
        let listed = tools
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let names: Vec<String> = if listed.len() > 5 {
            listed
        } else {
            default_tool_names()
        };
        for t in names {
            let _ = std::os::unix::fs::symlink(n, bin.join(t));
        }
    }
    let tidepool = if native.is_none() {
        Some(tidepool_tests::tidepool_bin())
    } else {
        None
    };
    let env = Env {
        root: root.clone(),
        shim,
        native,
        tidepool,
    };
    let inputs_dir = root.join("inputs");
    std::fs::create_dir_all(&inputs_dir).expect("inputs dir");
    let mut input_paths = BTreeMap::new();
    for c in &cases {
        input_paths.entry(c.input.clone()).or_insert_with(|| {
            // Each input in its own directory: tidepool mounts the input's directory.
            let d = inputs_dir.join(&c.input);
            std::fs::create_dir_all(&d).expect("input dir");
            let p = d.join("input.txt");
            std::fs::write(&p, inputs(&c.input).unwrap_or_default()).expect("write input");
            p
        });
    }

    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, bool, String)>> = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(4);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(c) = cases.get(i) else { break };
                    let input = &input_paths[&c.input];
                    let want = if c.unsupported {
                        Outcome { stdout: Vec::new(), status: 2, stderr: b"(expected: rejected as unsupported)".to_vec() }
                    } else {
                        run_gnu(&env, input, &c.pipeline)
                    };
                    let got = run_tidepool(&env, input, &c.pipeline);
                    let ok = want.stdout == got.stdout && want.status == got.status;
                    let detail = if ok {
                        String::new()
                    } else {
                        format!(
                            "FAIL [{}:{}] input={} :: {}\n  gnu: status {} stdout {:?}\n  gnu stderr: {}\n  tp:  status {} stdout {:?}\n  tp stderr: {}",
                            c.group,
                            c.line,
                            c.input,
                            c.pipeline,
                            want.status,
                            show(&want.stdout),
                            show(&want.stderr).trim_end(),
                            got.status,
                            show(&got.stdout),
                            show(&got.stderr).trim_end()
                        )
                    };
                    results.lock().expect("results lock").push((i, ok, detail));
                }
            });
        }
    });
    let mut results = results.into_inner().expect("results");
    results.sort_by_key(|r| r.0);
    let mut per_group: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    for (i, ok, detail) in &results {
        let e = per_group.entry(cases[*i].group.as_str()).or_default();
        e.1 += 1;
        if *ok {
            e.0 += 1;
        } else {
            failures.push(detail.as_str());
        }
    }
    for f in &failures {
        eprintln!("{f}");
    }
    eprintln!("differential summary (passed/total):");
    for (g, (p, t)) in &per_group {
        eprintln!(
            "  {g:<12} {p:>4}/{t:<4}{}",
            if p == t { "" } else { "  <-- failures" }
        );
    }
    let passed = results.iter().filter(|r| r.1).count();
    eprintln!("  {:<12} {passed:>4}/{:<4}", "TOTAL", results.len());
    let _ = std::fs::remove_dir_all(&root);
    assert!(
        failures.is_empty(),
        "{} of {} differential cases failed (details above)",
        failures.len(),
        results.len()
    );
}

/// Tool names for the native mode when the binary cannot list them.
fn default_tool_names() -> Vec<String> {
    "awk base64 basename cat comm cp cut date dirname echo env false find fold grep gunzip gzip head join jq json ls md5sum mkdir mv nl paste printf rev rm sed seq sha1sum sha256sum sort split tac tail tar tee touch tr true uniq wc yes zcat"
        .split(' ')
        .map(str::to_string)
        .collect()
}
