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
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use tidepool_tests::differential::{inputs, load_cases};

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
