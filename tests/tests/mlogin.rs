//! `mlogin`, Manta's interactive session on an object, through the real
//! CLI (npm `manta@5.4.2`) under a pseudo-terminal (util-linux `script`),
//! against a real `tidepool up`: the gateway's session reflector
//! (`/:login/medusa/attach/:job/{master,slave}`) and the node's session
//! agent running each typed line as the job's task.
//!
//! Expected answers come from the host's GNU tools over the same bytes,
//! never from numbers written into the test. Deadlines only guard against
//! hangs; nothing asserts on time.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tidepool_tests::{Cluster, Tenant, host_sh, manta_bin_dir, ok, run_with_deadline};

/// Deterministic web-server log lines.
fn access_log(lines: usize) -> Vec<u8> {
    let ips = ["10.0.0.1", "10.0.0.2", "192.168.1.7", "172.16.4.20"];
    let paths = ["/login", "/index.html", "/login/help", "/api/v1/x"];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = String::new();
    for i in 0..lines {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let ip = ips[(x % 4) as usize];
        let path = paths[((x >> 8) % 4) as usize];
        out.push_str(&format!(
            "{ip} - - [06/Dec/2026:10:{:02}:{:02} +0000] \"GET {path} HTTP/1.1\" 200 {}\n",
            i % 60,
            (x >> 20) % 60,
            (x >> 32) % 5000
        ));
    }
    out.into_bytes()
}

/// `mlogin` running under `script`'s pseudo-terminal: what we type goes
/// to the terminal, everything the terminal shows collects in `screen`.
struct Terminal {
    child: Child,
    stdin: std::process::ChildStdin,
    screen: Arc<Mutex<Vec<u8>>>,
}

impl Terminal {
    fn start(c: &Cluster, args: &str) -> Terminal {
        let mlogin = manta_bin_dir().join("mlogin");
        let mut cmd = Command::new("script");
        cmd.arg("-qfec")
            .arg(format!("node {} {args}", mlogin.display()))
            .arg("/dev/null")
            .env_clear()
            .envs(c.client_env())
            .env("TERM", "xterm")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn script(1)");
        let stdin = child.stdin.take().unwrap();
        let screen = Arc::new(Mutex::new(Vec::new()));
        for mut out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let screen = screen.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = out.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    screen.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
        Terminal {
            child,
            stdin,
            screen,
        }
    }

    /// What the terminal showed, with carriage returns left out: the
    /// session writes `\r\n` and the client's raw mode (libuv keeps
    /// `ONLCR`) adds one more before each `\n`.
    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).replace('\r', "")
    }

    fn type_line(&mut self, line: &str) {
        self.stdin.write_all(line.as_bytes()).unwrap();
        self.stdin.write_all(b"\r").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Waits until the screen after byte `from` contains `want` (a hang
    /// guard of 120 s); returns the screen.
    fn wait_for(&mut self, from: usize, want: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let s = self.screen();
            if s.get(from..).is_some_and(|t| t.contains(want)) {
                return s;
            }
            if Instant::now() > deadline {
                panic!("the terminal never showed {want:?}; it shows:\n{s}");
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                // Give the readers a moment to drain, then look once more.
                std::thread::sleep(Duration::from_millis(200));
                let s = self.screen();
                if s.get(from..).is_some_and(|t| t.contains(want)) {
                    return s;
                }
                panic!("mlogin exited ({st}) before showing {want:?}; it showed:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to end (hang guard 120 s).
    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("mlogin did not exit; screen:\n{}", self.screen());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn len(&self) -> usize {
        self.screen().len()
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mjob get` of `id` once its state is `done` (hang guard 120 s).
fn wait_done(c: &Cluster, id: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let v: serde_json::Value =
            serde_json::from_str(&ok(&c.manta("mjob", &["get", id]))).unwrap();
        if v["state"] == "done" {
            return v;
        }
        assert!(Instant::now() < deadline, "job {id} never ended: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The job id mlogin announces (" * created interactive job -- ID").
fn job_id(screen: &str) -> String {
    let at = screen
        .find("created interactive job -- ")
        .expect("mlogin names its job")
        + "created interactive job -- ".len();
    screen[at..at + 36].to_owned()
}

#[test]
fn mlogin_session_runs_commands_on_the_object_and_exit_ends_the_job() {
    let c = Cluster::start().unwrap();
    let log = access_log(500);
    c.mput("/alice/stor/access.log", &log);

    let mut t = Terminal::start(&c, "~~/stor/access.log");
    let started = Instant::now();
    let s = t.wait_for(0, "tidepool$ ");
    let id = job_id(&s);
    eprintln!("session prompt after {:?}", started.elapsed());
    assert!(s.contains("established"), "{s}");

    // wc -l on the object, as the task sees it.
    let mark = t.len();
    t.type_line("wc -l $MANTA_INPUT_FILE");
    let want = format!(
        "{} /manta/alice/stor/access.log\n",
        host_sh("wc -l", &log).trim()
    );
    let s = t.wait_for(mark, &want);
    // What we typed was echoed by the session.
    assert!(s[mark..].contains("wc -l $MANTA_INPUT_FILE\n"), "{s}");
    t.wait_for(mark + s[mark..].find(&want).unwrap(), "tidepool$ ");

    // A pipeline: grep | sort | uniq -c, compared with GNU's answer.
    let mark = t.len();
    let pipeline = "grep /login $MANTA_INPUT_FILE | cut -d' ' -f1 | sort | uniq -c";
    t.type_line(pipeline);
    let want = host_sh("grep /login | cut -d' ' -f1 | sort | uniq -c", &log);
    assert!(want.lines().count() > 1, "a non-trivial answer: {want}");
    t.wait_for(mark, &want);

    // The object is also every line's stdin; scratch is writable and kept
    // between lines; `cd` carries over.
    let mark = t.len();
    t.type_line("mkdir -p /work && cd /work && grep -c login > n.txt");
    t.wait_for(mark, "tidepool$ ");
    let mark = t.len();
    t.type_line("cd /work");
    t.wait_for(mark, "tidepool$ ");
    let mark = t.len();
    // A relative name: the tools follow the shell's working directory.
    t.type_line("cat n.txt");
    let want = host_sh("grep -c login", &log);
    t.wait_for(mark, &want);

    // An editor is refused with one clear line, and the session goes on.
    let mark = t.len();
    t.type_line("vi /tmp/x");
    t.wait_for(mark, "not supported in Tidepool sessions");

    let mark = t.len();
    t.type_line("exit");
    t.wait_for(mark, "remote process exited");
    let st = t.wait_exit();
    assert!(st.success(), "mlogin exits 0: {st}\n{}", t.screen());

    let job = wait_done(&c, &id);
    eprintln!("session and job done after {:?}", started.elapsed());
    assert_eq!(job["stats"]["errors"], 0, "{job}");
    assert_eq!(job["stats"]["tasks"], 1, "{job}");
    assert_eq!(job["name"], "interactive compute job", "{job}");
}

/// A Node.js script run with the manta library, as `who` (alice when
/// `None`).
fn node_as(c: &Cluster, who: Option<&Tenant>, script: &str) -> std::process::Output {
    let mut node = Command::new("node");
    node.arg("-e")
        .arg(script)
        .env_clear()
        .envs(c.client_env())
        .env(
            "NODE_PATH",
            format!(
                "{}:{}",
                manta_bin_dir().join("../..").display(),
                manta_bin_dir().join("../node_modules").display()
            ),
        );
    if let Some(t) = who {
        node.env("HOME", &t.home)
            .env("MANTA_USER", &t.login)
            .env("MANTA_KEY_ID", &t.key_id);
    }
    run_with_deadline(&mut node, None, Duration::from_secs(120))
}

/// Attaches the master half of `job` under `/:account/medusa/...` with the
/// CLI's own `medusaAttach` (which names the signer's account unless told
/// otherwise); prints `attached` or the error.
fn attach_master(job: &str) -> String {
    attach_master_of(None, job)
}

fn attach_master_of(account: Option<&str>, job: &str) -> String {
    let account = account.map_or_else(String::new, |a| format!("client.user = '{a}';"));
    format!(
        r#"
        var manta = require('manta');
        var log = require('bunyan').createLogger({{name: 't', level: 'fatal'}});
        var client = manta.createBinClient({{log: log}});
        {account}
        client.medusaAttach('{job}', function (err, shed) {{
            if (err) {{ console.log('refused: ' + err.message); process.exit(0); }}
            console.log('attached');
            shed.destroy();
            process.exit(0);
        }});
    "#
    )
}

/// A job id no job has.
const UNKNOWN_JOB: &str = "00000000-0000-4000-8000-000000000001";

/// An open job of alice's (input not ended), its id printed.
const OPEN_JOB: &str = r#"
    var manta = require('manta');
    var log = require('bunyan').createLogger({name: 't', level: 'fatal'});
    var client = manta.createBinClient({log: log});
    client.createJob({phases: [{exec: 'cat'}]}, function (err, id) {
        if (err) { console.error(err); process.exit(1); }
        console.log(id);
        client.close();
    });
"#;

/// Upgrades `url` (the slave half) with plain Node `http`; prints
/// `upgraded` or the HTTP status and body.
fn upgrade_slave(url: &str) -> String {
    format!(
        r#"
        var http = require('http');
        var req = http.get('{url}', {{headers: {{
            'connection': 'upgrade', 'upgrade': 'websocket',
            'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13'}}}});
        req.on('upgrade', function (res, socket) {{
            console.log('upgraded ' + res.statusCode); socket.destroy(); process.exit(0);
        }});
        req.on('response', function (res) {{
            var b = ''; res.on('data', function (d) {{ b += d; }});
            res.on('end', function () {{ console.log(res.statusCode + ' ' + b); process.exit(0); }});
        }});
        req.on('error', function (e) {{ console.log('error ' + e.message); process.exit(0); }});
    "#
    )
}

#[test]
fn the_reflector_admits_only_the_jobs_owner_and_its_presigned_slave() {
    let mut c = Cluster::start().unwrap();
    let bob = c.add_tenant("bob").unwrap();
    let id = ok(&node_as(&c, None, OPEN_JOB)).trim().to_owned();
    assert_eq!(id.len(), 36, "{id}");

    // Another account cannot attach the master of alice's job: not under
    // alice's path (403 Forbidden), and under its own the job is not found (404, so
    // nothing says the job exists).
    let out = ok(&node_as(
        &c,
        Some(&bob),
        &attach_master_of(Some("alice"), &id),
    ));
    assert!(
        out.contains("refused") && out.contains("ForbiddenError"),
        "{out}"
    );
    let out = ok(&node_as(&c, Some(&bob), &attach_master(&id)));
    assert!(
        out.contains("refused") && out.contains("NotFoundError"),
        "{out}"
    );
    // An unknown job is 404.
    let out = ok(&node_as(&c, None, &attach_master(UNKNOWN_JOB)));
    assert!(
        out.contains("refused") && out.contains("NotFoundError"),
        "{out}"
    );

    // The slave needs the presigned URL: without a signature it is refused,
    // with a tampered one too, with bob's presigned URL for alice's path
    // too; the real one upgrades.
    let path = format!("/alice/medusa/attach/{id}/slave");
    let url = c.url();
    let out = ok(&node_as(&c, None, &upgrade_slave(&format!("{url}{path}"))));
    assert!(out.starts_with("403 "), "{out}");
    let signed = ok(&c.manta("msign", &["-m", "GET", &path]))
        .trim()
        .to_owned();
    assert!(signed.contains("signature="), "{signed}");
    let tampered = signed.replace(&id, UNKNOWN_JOB);
    let out = ok(&node_as(&c, None, &upgrade_slave(&tampered)));
    assert!(out.starts_with("403 "), "{out}");
    let mut sig_tampered = signed.clone();
    let at = sig_tampered.find("signature=").unwrap() + "signature=".len();
    let flipped = if &sig_tampered[at..=at] == "A" {
        "B"
    } else {
        "A"
    };
    sig_tampered.replace_range(at..=at, flipped);
    let out = ok(&node_as(&c, None, &upgrade_slave(&sig_tampered)));
    assert!(out.starts_with("403 "), "{out}");
    let bobs = ok(&bob.manta(&c, "msign", &["-m", "GET", &path], b""))
        .trim()
        .to_owned();
    let out = ok(&node_as(&c, None, &upgrade_slave(&bobs)));
    assert!(out.starts_with("403 "), "{out}");
    // A presigned URL is not a master's credential.
    let master_signed = ok(&c.manta(
        "msign",
        &["-m", "GET", &format!("/alice/medusa/attach/{id}/master")],
    ))
    .trim()
    .to_owned();
    let out = ok(&node_as(&c, None, &upgrade_slave(&master_signed)));
    assert!(out.starts_with("403 "), "{out}");
    // Not an attach point: 404.
    let out = ok(&node_as(
        &c,
        None,
        &upgrade_slave(&format!("{url}/alice/medusa/other")),
    ));
    assert!(out.starts_with("404 "), "{out}");

    let out = ok(&node_as(&c, None, &upgrade_slave(&signed)));
    assert!(out.starts_with("upgraded 101"), "{out}");
    // The owner's master attaches (and waits for a slave that is gone).
    let out = ok(&node_as(&c, None, &attach_master(&id)));
    assert_eq!(out.trim(), "attached", "{out}");

    // The gateway still serves.
    ok(&c.manta("mls", &["~~/stor"]));
    assert!(c.is_running(), "tidepool up is still running");
}
