//! Harness for end-to-end tests: starts real `tidepool` processes on
//! loopback and drives them with real clients (Manta's npm CLI, curl).
//!
//! Nothing here is a double: the cluster is the `tidepool up` binary with
//! its embedded metadata, three storage nodes and the gateway, writing real
//! files under a temporary directory.

pub mod browser;
pub mod deployment;
pub mod differential;
pub mod linearizability;
pub mod netns;
pub mod partitions;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Path of the `tidepool` binary, built once per test process with the
/// same cargo and profile as the tests themselves.
pub fn tidepool_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| cargo_bin("TIDEPOOL_BIN", "tidepool", "tidepool"))
        .clone()
}

/// Path of the `tikv-test-double` binary (the TiKV+PD test double served
/// as a process of its own), built once per test process like
/// [`tidepool_bin`]; `TIDEPOOL_TIKV_DOUBLE_BIN` overrides.
pub fn tikv_double_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        cargo_bin(
            "TIDEPOOL_TIKV_DOUBLE_BIN",
            "tikv-test-server",
            "tikv-test-double",
        )
    })
    .clone()
}

/// The executable `bin` of workspace package `package`, built with the
/// same cargo and profile as the running code, unless the environment
/// variable `env` names one.
fn cargo_bin(env: &str, package: &str, bin: &str) -> PathBuf {
    if let Ok(p) = std::env::var(env) {
        return PathBuf::from(p);
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "-p",
        package,
        "--bin",
        bin,
        "--message-format=json",
    ]);
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("run cargo build -p {package}: {e}"));
    assert!(
        out.status.success(),
        "cargo build -p {package} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("\"executable\":\"") && l.contains("compiler-artifact"))
        .filter_map(|l| {
            let start = l.find("\"executable\":\"")? + 14;
            let end = l[start..].find('"')? + start;
            Some(PathBuf::from(&l[start..end]))
        })
        .next_back()
        .unwrap_or_else(|| panic!("cargo reported no {bin} executable"))
}

/// The folder holding Manta's CLI commands (`mput`, `mls`, ...), installed
/// by `scripts/setup` into `.tools/`; `TIDEPOOL_MANTA_BIN` overrides.
pub fn manta_bin_dir() -> PathBuf {
    workspace_path("TIDEPOOL_MANTA_BIN", ".tools/manta/node_modules/manta/bin")
}

/// Where `tidepool up` processes started by tests cache compiled modules:
/// `TIDEPOOL_TEST_CACHE`, else `target/tidepool-test-cache` of the workspace.
pub fn module_cache_dir() -> PathBuf {
    workspace_path("TIDEPOOL_TEST_CACHE", "target/tidepool-test-cache")
}

/// The Python interpreter `scripts/setup` installs (`.tools/python` of the
/// workspace); `TIDEPOOL_PYTHON_DIR` overrides.
pub fn python_dir() -> PathBuf {
    workspace_path("TIDEPOOL_PYTHON_DIR", ".tools/python")
}

/// `rel` under the workspace root, unless the environment variable `env`
/// names another place.
fn workspace_path(env: &str, rel: &str) -> PathBuf {
    if let Ok(p) = std::env::var(env) {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .join(rel)
}

/// The MD5 fingerprint of a public key file (`ssh-keygen -l -E md5`),
/// as `MANTA_KEY_ID` wants it.
pub fn md5_fingerprint(pubkey: &Path) -> Result<String> {
    let out = Command::new("ssh-keygen")
        .args(["-l", "-E", "md5", "-f"])
        .arg(pubkey)
        .output()
        .context("ssh-keygen -l")?;
    let fp = String::from_utf8_lossy(&out.stdout).into_owned();
    Ok(fp
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.strip_prefix("MD5:"))
        .with_context(|| format!("md5 fingerprint in {fp:?}"))?
        .to_owned())
}

/// A `tidepool` server process as tests start them: the shared module
/// cache (compiled wasm is reused across clusters and test processes),
/// `RUST_LOG` (default `warn`), no stdin, stdout and stderr piped.
pub fn server_command() -> Command {
    server_command_in(None)
}

/// [`server_command`], run inside network namespace `netns` (`ip netns
/// exec NETNS tidepool ...`; `ip` execs the program, so the child is the
/// `tidepool` process itself and killing it kills the server).
pub fn server_command_in(netns: Option<&str>) -> Command {
    let mut cmd = in_netns(netns, &tidepool_bin());
    server_env(&mut cmd);
    cmd
}

/// The environment and stdio of [`server_command`], on `cmd`.
pub(crate) fn server_env(cmd: &mut Command) {
    cmd.env("XDG_CACHE_HOME", module_cache_dir())
        .env("TIDEPOOL_PYTHON_DIR", python_dir())
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
}

/// A command running `program`, inside network namespace `netns` when
/// given (`ip netns exec`, which execs `program` in place).
pub fn in_netns(netns: Option<&str>, program: &Path) -> Command {
    match netns {
        Some(ns) => {
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", ns]).arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

/// A running `tidepool up`, with a private HOME holding the account's SSH
/// key where the Manta CLI looks for it (`~/.ssh`).
pub struct Cluster {
    child: Option<Child>,
    /// Temporary root: `home/` (HOME for clients) and `data/` (`--data`).
    pub root: tempfile::TempDir,
    /// `MANTA_URL`, `MANTA_USER`, `MANTA_KEY_ID` as printed by `tidepool up`.
    pub env: Vec<(String, String)>,
    /// Every line `tidepool up` printed on stdout up to its exports.
    pub printed: Vec<String>,
    /// Everything `tidepool up` printed on stderr so far (for failure messages).
    stderr_log: std::sync::Arc<std::sync::Mutex<String>>,
    extra_args: Vec<String>,
    tls_cert: Option<PathBuf>,
    extra_env: Vec<(String, String)>,
    netns: Option<String>,
    listen_host: String,
}

/// Options for [`Cluster::start_with`].
#[derive(Default, Clone)]
pub struct ClusterOptions {
    /// ssh-keygen key type: `ed25519` (default), `rsa`, `ecdsa`.
    pub key_type: Option<String>,
    /// Extra arguments for `tidepool up`.
    pub args: Vec<String>,
    /// Serve HTTPS: a self-signed certificate for `127.0.0.1` and
    /// `localhost` is generated under the cluster's root and passed with
    /// `--tls-cert/--tls-key`; clients trust it through
    /// `NODE_EXTRA_CA_CERTS` (see [`Cluster::tls_cert`]).
    pub tls: bool,
    /// Extra environment of `tidepool up` (e.g. test-only fault switches).
    pub env: Vec<(String, String)>,
    /// Run `tidepool up` inside this network namespace (see
    /// [`crate::netns`]).
    pub netns: Option<String>,
    /// The address the gateway listens on (default `127.0.0.1`): in a
    /// network namespace, that namespace's own address.
    pub listen_host: Option<String>,
}

impl Cluster {
    /// Starts `tidepool up` for account `alice` with a fresh ed25519 key.
    pub fn start() -> Result<Self> {
        Self::start_with(ClusterOptions::default())
    }

    /// Starts `tidepool up` with the given options.
    pub fn start_with(opts: ClusterOptions) -> Result<Self> {
        let root = tempfile::Builder::new()
            .prefix("tidepool-test-")
            .tempdir()?;
        let ssh = root.path().join("home/.ssh");
        std::fs::create_dir_all(&ssh)?;
        let key_type = opts.key_type.unwrap_or_else(|| "ed25519".into());
        let key = ssh.join(format!("id_{key_type}"));
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", &key_type, "-N", "", "-C", "alice@test", "-f"])
            .arg(&key)
            .status()
            .context("ssh-keygen")?;
        if !st.success() {
            bail!("ssh-keygen failed");
        }
        let mut extra_args = opts.args;
        let tls_cert = if opts.tls {
            let (cert, key) = self_signed_cert(&root.path().join("tls"))?;
            extra_args.extend([
                "--tls-cert".to_owned(),
                cert.to_string_lossy().into_owned(),
                "--tls-key".to_owned(),
                key.to_string_lossy().into_owned(),
            ]);
            Some(cert)
        } else {
            None
        };
        let mut c = Cluster {
            child: None,
            root,
            env: Vec::new(),
            printed: Vec::new(),
            stderr_log: Default::default(),
            extra_args,
            tls_cert,
            extra_env: opts.env,
            netns: opts.netns,
            listen_host: opts.listen_host.unwrap_or_else(|| "127.0.0.1".into()),
        };
        c.launch()?;
        Ok(c)
    }

    /// The self-signed certificate the gateway serves, when started with
    /// [`ClusterOptions::tls`].
    pub fn tls_cert(&self) -> Option<&Path> {
        self.tls_cert.as_deref()
    }

    /// The data directory given to `tidepool up --data`.
    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// The HOME directory clients run with.
    pub fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    /// The public key file of the account.
    pub fn public_key(&self) -> PathBuf {
        let ssh = self.home().join(".ssh");
        std::fs::read_dir(&ssh)
            .expect("read .ssh")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|e| e == "pub"))
            .expect("a .pub key")
    }

    /// The account's private key (beside [`Cluster::public_key`]), for
    /// clients that sign requests themselves as the CLI does.
    pub fn signing_key(&self) -> Result<auth::sign::SigningKey> {
        let key_file = self.public_key().with_extension("");
        let pem =
            std::fs::read_to_string(&key_file).with_context(|| key_file.display().to_string())?;
        Ok(auth::sign::SigningKey::from_openssh(&pem)?)
    }

    fn launch(&mut self) -> Result<()> {
        let port = match self.env.iter().find(|(k, _)| k == "MANTA_URL") {
            // A restart keeps its port so clients' MANTA_URL stays valid.
            Some((_, url)) => url.rsplit(':').next().unwrap_or("0").to_string(),
            // Alone in its namespace: any port the kernel picks.
            None if self.netns.is_some() => "0".to_string(),
            None => fixed_port(&self.listen_host).to_string(),
        };
        let mut cmd = server_command_in(self.netns.as_deref());
        cmd.arg("up")
            .arg("--data")
            .arg(self.data_dir())
            .arg("--listen")
            .arg(format!("{}:{port}", self.listen_host))
            .arg("--account")
            .arg("alice")
            .args(&self.extra_args)
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            // The private HOME holds the key; the module cache is shared
            // (see server_command), or each cluster would compile the
            // toolbox again.
            .env("HOME", self.home());
        let mut child = cmd.spawn().context("spawn tidepool up")?;
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = self.stderr_log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut env = Vec::new();
        let mut printed = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(l) => l,
                Err(_) => bail!(
                    "tidepool up did not print its exports within 120 s; stderr:\n{}",
                    self.stderr_log.lock().unwrap()
                ),
            };
            printed.push(line.clone());
            if let Some(rest) = line.trim().strip_prefix("export ") {
                if let Some((k, v)) = rest.split_once('=') {
                    env.push((
                        k.to_string(),
                        v.trim_matches('"').trim_matches('\'').to_string(),
                    ));
                }
                if rest.starts_with("MANTA_KEY_ID=") {
                    break;
                }
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || while rx.recv().is_ok() {});
        self.env = env;
        self.printed = printed;
        Ok(())
    }

    /// A value printed by `tidepool up` (`MANTA_URL`, ...).
    pub fn var(&self, name: &str) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// The storage nodes `tidepool up` runs, as `(id, url)` from the lines
    /// it prints (`storage node ID at URL ...`).
    pub fn node_urls(&self) -> Vec<(String, String)> {
        self.printed
            .iter()
            .filter_map(|l| {
                let rest = l.strip_prefix("storage node ")?;
                let mut it = rest.split_whitespace();
                let id = it.next()?;
                (it.next()? == "at").then_some(())?;
                Some((id.to_owned(), it.next()?.to_owned()))
            })
            .collect()
    }

    /// The gateway's base URL.
    pub fn url(&self) -> String {
        self.var("MANTA_URL")
    }

    /// The environment clients run with: PATH, HOME (with the key in
    /// `~/.ssh`), C locale, and the `MANTA_*` variables `tidepool up` printed.
    pub fn client_env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            (
                "PATH".to_string(),
                std::env::var("PATH").unwrap_or_default(),
            ),
            (
                "HOME".to_string(),
                self.home().to_string_lossy().into_owned(),
            ),
            ("LC_ALL".to_string(), "C".to_string()),
        ];
        if let Some(cert) = &self.tls_cert {
            // Node (the CLI) verifies the self-signed certificate like any
            // other, with it as an extra root.
            env.push((
                "NODE_EXTRA_CA_CERTS".to_string(),
                cert.to_string_lossy().into_owned(),
            ));
        }
        env.extend(self.env.iter().cloned());
        env
    }

    /// A `Command` for one of Manta's CLI tools with [`Cluster::client_env`].
    pub fn manta_cmd(&self, tool: &str) -> Command {
        let mut cmd = Command::new("node");
        cmd.arg(manta_bin_dir().join(tool))
            .env_clear()
            .envs(self.client_env())
            .stdin(Stdio::null());
        cmd
    }

    /// Runs a Manta CLI tool to completion with a deadline.
    pub fn manta(&self, tool: &str, args: &[&str]) -> Output {
        run_with_deadline(
            self.manta_cmd(tool).args(args),
            None,
            Duration::from_secs(120),
        )
    }

    /// Stores `bytes` at `path` (an absolute Manta path) with `mput`;
    /// panics, with what the tool said, if it fails.
    pub fn mput(&self, path: &str, bytes: &[u8]) {
        ok(&self.manta_stdin("mput", &[path], bytes));
    }

    /// Runs a Manta CLI tool with `input` on its stdin.
    pub fn manta_stdin(&self, tool: &str, args: &[&str], input: &[u8]) -> Output {
        run_with_deadline(
            self.manta_cmd(tool).args(args),
            Some(input),
            Duration::from_secs(300),
        )
    }

    /// Runs a Node.js script with the cluster's client environment and
    /// Manta's npm library (`require('manta')`) on its module path.
    pub fn node(&self, script: &str) -> Output {
        let mut node = Command::new("node");
        node.arg("-e")
            .arg(script)
            .env_clear()
            .envs(self.client_env());
        let modules = manta_bin_dir().join("../..");
        let nested = manta_bin_dir().join("../node_modules");
        node.env(
            "NODE_PATH",
            format!("{}:{}", modules.display(), nested.display()),
        );
        run_with_deadline(&mut node, None, Duration::from_secs(600))
    }

    /// The pid of the running `tidepool up`.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether `tidepool up` is still running (not exited or crashed).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Stops the process abruptly, as `kill -9` would.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills (SIGKILL) and starts `tidepool up` again on the same data and port.
    pub fn restart(&mut self) -> Result<()> {
        self.kill9();
        self.launch()
    }

    /// What the server printed on stderr so far.
    pub fn server_log(&self) -> String {
        self.stderr_log.lock().unwrap().clone()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A second account's client identity on a [`Cluster`]: its own HOME
/// with its own key, `MANTA_USER` = its login.
pub struct Tenant {
    pub login: String,
    pub home: PathBuf,
    pub key_id: String,
}

impl Cluster {
    /// Creates `login`'s key pair and registers account and key with
    /// `tidepool admin` (the server is restarted around it: embedded
    /// metadata has one writer).
    pub fn add_tenant(&mut self, login: &str) -> Result<Tenant> {
        self.add_tenant_and(login, &[])
    }

    /// [`Cluster::add_tenant`], also running the `tidepool admin` commands
    /// `also` while the server is stopped (one restart for all of them).
    pub fn add_tenant_and(&mut self, login: &str, also: &[&[&str]]) -> Result<Tenant> {
        let home = self.root.path().join(format!("{login}-home"));
        let ssh = home.join(".ssh");
        std::fs::create_dir_all(&ssh)?;
        let key = ssh.join("id_ed25519");
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", login, "-f"])
            .arg(&key)
            .status()
            .context("ssh-keygen")?;
        if !st.success() {
            bail!("ssh-keygen failed");
        }
        let pubkey = key.with_extension("pub");
        let key_id = md5_fingerprint(&pubkey)?;
        self.kill9();
        let pubkey = pubkey.to_string_lossy().into_owned();
        let added = self
            .admin_stopped(&["account", "add", login])
            .and_then(|_| self.admin_stopped(&["key", "add", login, &pubkey]))
            .and_then(|_| {
                also.iter()
                    .try_for_each(|a| self.admin_stopped(a).map(drop))
            });
        self.launch()?;
        added?;
        Ok(Tenant {
            login: login.to_owned(),
            home,
            key_id,
        })
    }
}

impl Cluster {
    /// Runs `tidepool admin ARGS` on this cluster's data (the server is
    /// stopped around it: embedded metadata has one writer) and returns
    /// what it printed.
    pub fn admin(&mut self, args: &[&str]) -> Result<String> {
        self.kill9();
        let out = self.admin_stopped(args);
        self.launch()?;
        out
    }

    /// `tidepool admin ARGS` while the server is already stopped.
    fn admin_stopped(&self, args: &[&str]) -> Result<String> {
        let mut cmd = Command::new(tidepool_bin());
        cmd.arg("admin")
            .arg("--data")
            .arg(self.data_dir())
            .args(args);
        let out = run_with_deadline(&mut cmd, None, Duration::from_secs(60));
        if !out.status.success() {
            bail!("tidepool admin {args:?}: {}", describe(&out));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Tenant {
    /// A `Command` for one of Manta's CLI tools acting as this tenant.
    pub fn manta_cmd(&self, c: &Cluster, tool: &str) -> Command {
        let mut cmd = c.manta_cmd(tool);
        cmd.env("HOME", &self.home)
            .env("MANTA_USER", &self.login)
            .env("MANTA_KEY_ID", &self.key_id);
        cmd
    }

    /// Runs a Manta CLI tool as this tenant, with `input` on its stdin.
    pub fn manta(&self, c: &Cluster, tool: &str, args: &[&str], input: &[u8]) -> Output {
        run_with_deadline(
            self.manta_cmd(c, tool).args(args),
            Some(input),
            Duration::from_secs(300),
        )
    }
}

/// A free port below the kernel's ephemeral range (32768 and up on Linux)
/// for a cluster's gateway. A port the kernel handed out (`:0`) could be
/// taken, between a restart's kill and relaunch, as the local port of
/// another test's outgoing connection or by another cluster's `:0`; these
/// ports are only ever bound on purpose, by a cluster that first checked
/// the port was free.
fn fixed_port(host: &str) -> u16 {
    use std::hash::{BuildHasher as _, RandomState};
    let random = RandomState::new();
    for i in 0u64..1000 {
        let port = 20_000 + (random.hash_one(i) % 12_000) as u16;
        if std::net::TcpListener::bind((host, port)).is_ok() {
            return port;
        }
    }
    0
}

/// Writes a fresh self-signed certificate for `127.0.0.1`, `::1` and
/// `localhost` and its private key as PEM files `cert.pem`, `key.pem` in
/// `dir`; returns their paths.
pub fn self_signed_cert(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let names = ["127.0.0.1", "::1", "localhost"].map(str::to_owned);
    let c = rcgen::generate_simple_self_signed(names.to_vec()).context("rcgen")?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, c.cert.pem())?;
    std::fs::write(&key, c.key_pair.serialize_pem())?;
    Ok((cert, key))
}

/// Runs `script` with the host's `sh` (GNU tools) in the C locale, `input`
/// on stdin: the reference a job's output is compared with. Panics, with
/// what the shell said, if it fails.
pub fn host_sh(script: &str, input: &[u8]) -> String {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script).env("LC_ALL", "C");
    ok(&run_with_deadline(
        &mut cmd,
        Some(input),
        Duration::from_secs(60),
    ))
}

/// Runs `cmd`, feeding `input`, killing it if it outlives `limit`.
pub fn run_with_deadline(cmd: &mut Command, input: Option<&[u8]>, limit: Duration) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    if input.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().expect("spawn client");
    let writer = input.map(|data| {
        let mut stdin = child.stdin.take().expect("piped stdin");
        let data = data.to_vec();
        std::thread::spawn(move || {
            use std::io::Write;
            let _ = stdin.write_all(&data);
        })
    });
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait client") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().expect("wait killed client");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

/// A finished client command as text (status, stdout, stderr), for
/// assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts the command succeeded; returns its stdout.
pub fn ok(out: &Output) -> String {
    assert!(out.status.success(), "command failed: {}", describe(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts the command failed; returns its stderr.
pub fn failed(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "command unexpectedly succeeded: {}",
        describe(out)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// base64(md5(bytes)), as in `Content-MD5`.
pub fn md5_b64(bytes: &[u8]) -> String {
    use base64::Engine;
    use md5::Digest;
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(bytes))
}

/// Deterministic pseudo-random bytes (xorshift), for test payloads.
pub fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}
