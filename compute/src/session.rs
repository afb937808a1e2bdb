//! The node's side of `mlogin`: an interactive shell session inside a
//! task's sandbox, in place of Manta's medusa agent (`agent.sh`).
//!
//! `mlogin` creates a job whose one phase runs the asset
//! [`AGENT_ASSET`] with a second asset, a small JSON config holding the URL
//! it presigned for `GET /:login/medusa/attach/:jobid/slave`. A task whose
//! `exec` is that asset ([`is_session`]) does not run a pipeline: the agent
//! reads the config, connects to the gateway's reflector at that URL
//! (`gateway::medusa`) and speaks the client's protocol: it waits for
//! `medusa:{"type":"linkup"}` and `mlogin:{"type":"start",...}`, answers
//! `mlogin:{"type":"started"}`, then reads the terminal's bytes (binary
//! frames, the client's terminal in raw mode) and writes the session's
//! output as binary frames; `mlogin:{"type":"resize",...}` updates
//! `COLUMNS`/`LINES`; the session ends with `mlogin:{"type":"exit"}`.
//!
//! The terminal is served by a small line editor (echo, backspace, `^U`,
//! `^C`, `^D` on an empty line ends the session, arrow keys ignored, output
//! `\n` becomes `\r\n`). Each entered line runs as a script through the
//! task's own [`PhaseRunner`] with the task's mounts, environment, assets
//! and limits: the input object at `$MANTA_INPUT_FILE` and on stdin, the
//! task's scratch as the writable tree (it persists between lines), the
//! working directory carried from one line to the next (`cd DIR`).
//! Variables and functions do not carry over (every line is a new shell).
//! `exit [N]` (or `^D`) ends the session: the task succeeds (exit 0) or
//! fails with "user command exited with code N". `^C` stops the running
//! line. Programs that need a real terminal (editors, pagers, `top`) are
//! refused with one line saying so.
//!
//! Guarantees: the agent connects only to a URL whose path is exactly
//! this job's slave attach point of the job's owner (the reflector checks
//! the signature); the session ends when the job is cancelled, when the
//! connection ends, or when the task's wall time is spent; frames are
//! bounded ([`MAX_FRAME`]) and output is relayed with backpressure.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt as _, StreamExt as _};
use sandbox::{InputDir, Limits};
use tokio::io::AsyncReadExt as _;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::runner::{PhaseError, PhaseInput, PhaseJob, PhaseOutput, PhaseRunner};

/// The asset `mlogin` names as its phase's program (Manta's medusa agent).
/// It does not exist in Tidepool: a task recognises it by name.
pub const AGENT_ASSET: &str = "/poseidon/public/medusa/agent.sh";
/// Largest frame accepted from the reflector.
pub const MAX_FRAME: usize = 1 << 20;
/// How long connecting to the reflector may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Output frames queued for the socket (each at most [`OUT_CHUNK`]).
const OUT_QUEUE: usize = 16;
/// Bytes of command output per frame.
const OUT_CHUNK: usize = 16 * 1024;
/// The prompt.
const PROMPT: &str = "tidepool$ ";
/// Programs that need a terminal the session does not emulate.
const NEEDS_TERMINAL: &[&str] = &[
    "vi", "vim", "nvim", "view", "vimdiff", "ex", "nano", "pico", "emacs", "ed", "joe", "mg",
    "less", "more", "most", "man", "top", "htop", "watch", "screen", "tmux", "ssh", "telnet",
    "ftp", "sftp", "mlogin",
];

/// Whether a phase's `exec` runs Manta's medusa agent (an mlogin job).
pub fn is_session(exec: &str) -> bool {
    exec.trim() == format!("/assets{AGENT_ASSET}")
}

/// Whether `asset` (as a job names it) is the medusa agent, which no
/// task fetches.
pub fn is_agent_asset(asset: &str) -> bool {
    asset.trim_end_matches('/') == AGENT_ASSET
}

/// Whether `name` (a normalized asset path) is an mlogin config object.
pub fn is_config_asset(name: &str) -> bool {
    let file = name.rsplit('/').next().unwrap_or("");
    file.starts_with("medusa-config-") && file.ends_with(".json")
}

/// Why a session could not run (the task's error message).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The config asset is missing or not what mlogin writes.
    #[error("mlogin session: {0}")]
    Config(String),
    /// The reflector could not be reached or refused the slave half.
    #[error("mlogin session: cannot attach to {url}: {why}")]
    Connect { url: String, why: String },
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// `exit N`, `^D` (0), or `mlogin -c`'s command's status.
    Exited(i32),
    /// The client went away (or the reflector closed) before `exit`.
    Disconnected,
    /// The task's wall time was spent.
    TimedOut,
}

/// Everything a command line of the session runs with: the task's phase
/// minus the script and stdout.
#[derive(Debug, Clone)]
pub struct CommandTemplate {
    /// The task's scratch (`/` for guests; kept between lines).
    pub scratch: PathBuf,
    /// The map task's input file (every line's stdin); `None` for a
    /// reducer's session.
    pub stdin_file: Option<PathBuf>,
    pub input_dir: Option<InputDir>,
    pub read_only_dirs: Vec<InputDir>,
    pub env: Vec<(String, String)>,
    pub assets: std::collections::HashMap<String, PathBuf>,
    pub limits: Limits,
    pub account: Option<String>,
}

impl CommandTemplate {
    fn job(&self, script: String, stdout: PhaseOutput, left: Duration, tty: &Tty) -> PhaseJob {
        let mut j = PhaseJob::new(script, self.scratch.clone());
        j.stdin = match &self.stdin_file {
            Some(p) => PhaseInput::File(p.clone()),
            None => PhaseInput::None,
        };
        j.input_dir = self.input_dir.clone();
        j.read_only_dirs = self.read_only_dirs.clone();
        j.env = self.env.clone();
        j.env
            .retain(|(k, _)| !matches!(k.as_str(), "TERM" | "COLUMNS" | "LINES"));
        j.env.push(("TERM".into(), tty.term.clone()));
        j.env.push(("COLUMNS".into(), tty.columns.to_string()));
        j.env.push(("LINES".into(), tty.lines.to_string()));
        j.assets = self.assets.clone();
        j.limits = self.limits.clone();
        j.limits.wall_time = left;
        j.account = self.account.clone();
        j.stdout = stdout;
        j
    }
}

/// mlogin's config object (`put_config_object` in `bin/mlogin`).
#[derive(Debug, serde::Deserialize)]
struct Config {
    signed_url: String,
}

/// Reads the slave URL from the config asset at `config` and checks that
/// it names exactly `/:owner/medusa/attach/:job/slave`; returns the
/// WebSocket URL (`ws://...`) to connect to.
pub fn slave_url(config: &Path, owner: &str, job: uuid::Uuid) -> Result<String, SessionError> {
    let bytes = std::fs::read(config)
        .map_err(|e| SessionError::Config(format!("reading its config asset: {e}")))?;
    let c: Config = serde_json::from_slice(&bytes)
        .map_err(|e| SessionError::Config(format!("config asset: {e}")))?;
    let rest = if let Some(r) = c.signed_url.strip_prefix("http://") {
        r
    } else if c.signed_url.starts_with("https://") {
        return Err(SessionError::Config(
            "the gateway's URL is https://; nodes attach sessions over http only".into(),
        ));
    } else {
        return Err(SessionError::Config("signed_url is not an http URL".into()));
    };
    let (authority, target) = rest
        .split_once('/')
        .ok_or_else(|| SessionError::Config("signed_url has no path".into()))?;
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    if path != format!("{owner}/medusa/attach/{job}/slave") || authority.is_empty() {
        return Err(SessionError::Config(format!(
            "signed_url does not name this job's session (/{owner}/medusa/attach/{job}/slave)"
        )));
    }
    if authority.contains(['@', ' ', '\\']) {
        return Err(SessionError::Config("signed_url has a bad host".into()));
    }
    Ok(format!("ws://{rest}"))
}

/// The client's terminal.
#[derive(Debug, Clone)]
struct Tty {
    term: String,
    columns: u32,
    lines: u32,
}

/// A control message of the client (`mlogin:{...}`).
#[derive(Debug, serde::Deserialize)]
struct Control {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    term: Option<String>,
    #[serde(default)]
    columns: Option<u32>,
    #[serde(default)]
    lines: Option<u32>,
    #[serde(default)]
    arguments: Vec<String>,
}

fn control(text: &str) -> Option<Control> {
    serde_json::from_str(text.strip_prefix("mlogin:")?).ok()
}

fn medusa_type(text: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(text.strip_prefix("medusa:")?).ok()?;
    v.get("type")?.as_str().map(str::to_owned)
}

/// Output for a raw-mode terminal: `\n` → `\r\n`.
fn crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 16);
    for &b in bytes {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// What the line editor made of some input bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Edit {
    /// A whole line was entered.
    Line(String),
    /// `^D` on an empty line.
    Eof,
    /// `^C`: the line was dropped.
    Interrupt,
}

/// A line editor for a raw-mode terminal: keeps the line, says what to
/// echo.
#[derive(Debug, Default)]
struct Editor {
    line: Vec<u8>,
    /// 0: normal, 1: after ESC, 2: inside a CSI/SS3 sequence.
    esc: u8,
    last_cr: bool,
}

impl Editor {
    /// Feeds one byte; appends what to echo to `echo`.
    fn feed(&mut self, b: u8, echo: &mut Vec<u8>) -> Option<Edit> {
        let after_cr = std::mem::replace(&mut self.last_cr, b == b'\r');
        match self.esc {
            1 => {
                self.esc = if b == b'[' || b == b'O' { 2 } else { 0 };
                return None;
            }
            2 => {
                if (0x40..=0x7e).contains(&b) {
                    self.esc = 0;
                }
                return None;
            }
            _ => {}
        }
        match b {
            0x1b => self.esc = 1,
            b'\n' if after_cr => {}
            b'\r' | b'\n' => {
                echo.extend_from_slice(b"\r\n");
                let line = String::from_utf8_lossy(&std::mem::take(&mut self.line)).into_owned();
                return Some(Edit::Line(line));
            }
            0x7f | 0x08 => {
                if self.pop_char() {
                    echo.extend_from_slice(b"\x08 \x08");
                }
            }
            0x15 => {
                while self.pop_char() {
                    echo.extend_from_slice(b"\x08 \x08");
                }
            }
            0x03 => {
                self.line.clear();
                echo.extend_from_slice(b"^C\r\n");
                return Some(Edit::Interrupt);
            }
            0x04 => {
                if self.line.is_empty() {
                    echo.extend_from_slice(b"\r\n");
                    return Some(Edit::Eof);
                }
            }
            b'\t' => {
                self.line.push(b' ');
                echo.push(b' ');
            }
            b if b < 0x20 => {}
            b => {
                self.line.push(b);
                echo.push(b);
            }
        }
        None
    }

    /// Removes the last character (a whole UTF-8 sequence).
    fn pop_char(&mut self) -> bool {
        let Some(mut b) = self.line.pop() else {
            return false;
        };
        while b & 0xc0 == 0x80 {
            match self.line.pop() {
                Some(x) => b = x,
                None => break,
            }
        }
        true
    }
}

/// What one entered line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Nothing,
    Exit(i32),
    /// One line of text to print (a refusal or an error).
    Say(String),
    /// `cd DIR`: checked by running it, remembered on success.
    Cd(String),
    Run(String),
}

/// Single-quotes `s` for the shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn classify(line: &str) -> Action {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') {
        return Action::Nothing;
    }
    let words: Vec<&str> = t.split_whitespace().collect();
    match words.as_slice() {
        ["exit"] | ["logout"] => return Action::Exit(0),
        ["exit", n] => {
            return match n.parse::<i64>() {
                Ok(n) => Action::Exit(i32::try_from(n.rem_euclid(256)).unwrap_or(0)),
                Err(_) => Action::Say(format!("exit: {n}: numeric argument required")),
            };
        }
        ["cd"] => return Action::Cd("/".into()),
        ["cd", dir] => return Action::Cd((*dir).to_owned()),
        _ => {}
    }
    // The first word of each command of the line.
    let firsts = t
        .split(['|', ';', '&', '(', ')', '`'])
        .filter_map(|c| c.split_whitespace().find(|w| !w.contains('=')))
        .map(|w| w.rsplit('/').next().unwrap_or(w));
    for w in firsts {
        if NEEDS_TERMINAL.contains(&w) {
            return Action::Say(format!(
                "{w}: interactive programs that need a terminal are not supported in Tidepool sessions (use cat, head, grep, sed)"
            ));
        }
    }
    Action::Run(t.to_owned())
}

/// The socket's sending side, fed through a bounded queue by one task.
struct Out(mpsc::Sender<Message>);

impl Out {
    async fn bytes(&self, b: &[u8]) -> bool {
        if b.is_empty() {
            return true;
        }
        self.0.send(Message::binary(b.to_vec())).await.is_ok()
    }
    async fn text(&self, s: String) -> bool {
        self.0.send(Message::text(s)).await.is_ok()
    }
}

/// Where the session is (what the loop waits for).
type WsStream =
    futures::stream::SplitStream<tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>>;

/// Runs one session at `url` (from [`slave_url`]) to its end: every line
/// through `runner` with `template`, for at most `wall` in all. `banner`
/// is printed first (one line).
pub async fn run(
    url: &str,
    runner: Arc<dyn PhaseRunner>,
    template: CommandTemplate,
    banner: String,
    wall: Duration,
) -> Result<SessionEnd, SessionError> {
    let started = Instant::now();
    let connect_err = |why: String| SessionError::Connect {
        url: url.split('?').next().unwrap_or(url).to_owned(),
        why,
    };
    let authority = url
        .strip_prefix("ws://")
        .and_then(|r| r.split('/').next())
        .unwrap_or("");
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(authority))
        .await
        .map_err(|_| connect_err("timed out".into()))?
        .map_err(|e| connect_err(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let mut config = WebSocketConfig::default();
    config.max_message_size = Some(MAX_FRAME);
    config.max_frame_size = Some(MAX_FRAME);
    let (ws, _) = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio_tungstenite::client_async_with_config(url, tcp, Some(config)),
    )
    .await
    .map_err(|_| connect_err("timed out".into()))?
    .map_err(|e| connect_err(e.to_string()))?;
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Message>(OUT_QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            let close = matches!(m, Message::Close(_));
            if sink.send(m).await.is_err() || close {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let out = Out(tx);
    let left = || wall.saturating_sub(started.elapsed());
    let end = tokio::select! {
        end = session(&out, &mut stream, runner, &template, banner, &left) => end,
        () = tokio::time::sleep(left()) => SessionEnd::TimedOut,
    };
    if let SessionEnd::Exited(code) = &end {
        let _ = out
            .text(format!("mlogin:{{\"type\":\"exit\",\"code\":{code}}}"))
            .await;
    }
    let _ = out.0.send(Message::Close(None)).await;
    drop(out);
    let _ = writer.await;
    Ok(end)
}

/// The protocol after connecting: linkup, start, then lines.
async fn session(
    out: &Out,
    stream: &mut WsStream,
    runner: Arc<dyn PhaseRunner>,
    template: &CommandTemplate,
    banner: String,
    left: &(dyn Fn() -> Duration + Sync),
) -> SessionEnd {
    // Wait for the client's `start` (after the reflector's linkup).
    let (mut tty, arguments) = loop {
        match stream.next().await {
            Some(Ok(Message::Text(t))) => {
                if medusa_type(&t).is_some() {
                    continue;
                }
                if let Some(c) = control(&t)
                    && c.kind == "start"
                {
                    let tty = Tty {
                        term: c.term.unwrap_or_else(|| "xterm".into()),
                        columns: c.columns.unwrap_or(80),
                        lines: c.lines.unwrap_or(24),
                    };
                    break (tty, c.arguments);
                }
            }
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return SessionEnd::Disconnected,
            Some(Ok(_)) => {}
        }
    };
    if !out.text("mlogin:{\"type\":\"started\"}".into()).await {
        return SessionEnd::Disconnected;
    }
    let mut cwd = "/".to_owned();
    // `mlogin -c CMD`: bash ... -c CMD. Run it once and end with its status.
    if let Some(i) = arguments.iter().position(|a| a == "-c")
        && let Some(cmd) = arguments.get(i + 1)
    {
        let mut pending = Vec::new();
        return match classify(cmd) {
            Action::Run(script) => {
                match run_line(
                    out,
                    stream,
                    &runner,
                    template,
                    &tty,
                    &cwd,
                    &script,
                    left,
                    &mut pending,
                )
                .await
                {
                    Ran::Status(s) => SessionEnd::Exited(s),
                    Ran::Interrupted => SessionEnd::Exited(130),
                    Ran::Gone => SessionEnd::Disconnected,
                }
            }
            Action::Exit(n) => SessionEnd::Exited(n),
            Action::Say(s) => {
                out.bytes(&crlf(format!("{s}\n").as_bytes())).await;
                SessionEnd::Exited(1)
            }
            Action::Nothing | Action::Cd(_) => SessionEnd::Exited(0),
        };
    }
    let mut greeting = crlf(format!("{banner}\n").as_bytes());
    greeting.extend_from_slice(PROMPT.as_bytes());
    if !out.bytes(&greeting).await {
        return SessionEnd::Disconnected;
    }
    let mut editor = Editor::default();
    // Bytes typed while a line ran, to edit once it is done.
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let input = if pending.is_empty() {
            match next_input(stream, &mut tty).await {
                Some(b) => b,
                None => return SessionEnd::Disconnected,
            }
        } else {
            std::mem::take(&mut pending)
        };
        let mut echo = Vec::new();
        let mut i = 0;
        while i < input.len() {
            let edit = editor.feed(input[i], &mut echo);
            i += 1;
            let Some(edit) = edit else { continue };
            let action = match edit {
                Edit::Eof => Action::Exit(0),
                Edit::Interrupt => Action::Nothing,
                Edit::Line(l) => classify(&l),
            };
            if !out.bytes(&std::mem::take(&mut echo)).await {
                return SessionEnd::Disconnected;
            }
            // The rest of this input is typed ahead of the line's output.
            pending.extend_from_slice(&input[i..]);
            i = input.len();
            match action {
                Action::Nothing => {}
                Action::Exit(n) => return SessionEnd::Exited(n),
                Action::Say(s) => {
                    out.bytes(&crlf(format!("{s}\n").as_bytes())).await;
                }
                Action::Cd(dir) => {
                    let target = if dir.starts_with('/') {
                        dir.clone()
                    } else {
                        format!("{}/{dir}", cwd.trim_end_matches('/'))
                    };
                    // `cd` there and print where it landed (normalized).
                    let script = format!("cd {} && pwd", quote(&target));
                    let (status, printed) = probe(&runner, template, &tty, &script, left()).await;
                    match (status, printed) {
                        (Some(0), p) if !p.trim().is_empty() => cwd = p.trim().to_owned(),
                        _ => {
                            out.bytes(&crlf(
                                format!("cd: {dir}: No such file or directory\n").as_bytes(),
                            ))
                            .await;
                        }
                    }
                }
                Action::Run(script) => {
                    let mut more = Vec::new();
                    let ran = run_line(
                        out, stream, &runner, template, &tty, &cwd, &script, left, &mut more,
                    )
                    .await;
                    pending.extend_from_slice(&more);
                    if ran == Ran::Gone {
                        return SessionEnd::Disconnected;
                    }
                }
            }
            if !out.bytes(PROMPT.as_bytes()).await {
                return SessionEnd::Disconnected;
            }
        }
        if !out.bytes(&echo).await {
            return SessionEnd::Disconnected;
        }
    }
}

/// The next terminal bytes (control messages handled on the way); `None`
/// when the connection is over.
async fn next_input(stream: &mut WsStream, tty: &mut Tty) -> Option<Vec<u8>> {
    loop {
        match stream.next().await? {
            Ok(Message::Binary(b)) => return Some(b.to_vec()),
            Ok(Message::Text(t)) => {
                if let Some(c) = control(&t)
                    && c.kind == "resize"
                {
                    tty.columns = c.columns.unwrap_or(tty.columns);
                    tty.lines = c.lines.unwrap_or(tty.lines);
                }
                // Anything else (mlogin's "ping") needs no answer.
            }
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ran {
    Status(i32),
    Interrupted,
    Gone,
}

/// Runs `script` in `cwd`, relaying its output; `^C` stops it; other
/// bytes typed meanwhile go to `typed`.
#[allow(clippy::too_many_arguments)]
async fn run_line(
    out: &Out,
    stream: &mut WsStream,
    runner: &Arc<dyn PhaseRunner>,
    template: &CommandTemplate,
    tty: &Tty,
    cwd: &str,
    script: &str,
    left: &(dyn Fn() -> Duration + Sync),
    typed: &mut Vec<u8>,
) -> Ran {
    let full = if cwd == "/" {
        script.to_owned()
    } else {
        format!("cd {} || exit 1\n{script}", quote(cwd))
    };
    let (w, mut r) = tokio::io::duplex(OUT_CHUNK * 4);
    let job = template.job(full, PhaseOutput::Stream(Box::new(w)), left(), tty);
    let sender = out.0.clone();
    // stdout streams as it comes; the pump ends when the run drops it.
    let pump = tokio::spawn(async move {
        let mut buf = vec![0u8; OUT_CHUNK];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sender.send(Message::binary(crlf(&buf[..n]))).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    let runner = runner.clone();
    let mut run = tokio::spawn(async move { runner.run(job).await });
    let result = loop {
        tokio::select! {
            r = &mut run => break Some(r),
            msg = stream.next() => match msg {
                Some(Ok(Message::Binary(b))) => {
                    if let Some(at) = b.iter().position(|&c| c == 0x03) {
                        typed.extend_from_slice(&b[at + 1..]);
                        break None;
                    }
                    typed.extend_from_slice(&b);
                }
                Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    run.abort();
                    pump.abort();
                    return Ran::Gone;
                }
            }
        }
    };
    let Some(result) = result else {
        // Dropping the run stops its instances.
        run.abort();
        let _ = run.await;
        let _ = pump.await;
        out.bytes(b"^C\r\n").await;
        return Ran::Interrupted;
    };
    let _ = pump.await;
    let (status, stderr) = match result {
        Ok(Ok(r)) => {
            let mut err = r.stderr.clone();
            if let Some(e) = &r.infrastructure_error {
                err.extend_from_slice(format!("sh: {e}\n").as_bytes());
            } else if let Some(l) = &r.limit_exceeded {
                err.extend_from_slice(format!("sh: stopped: {:?} limit\n", l.kind).as_bytes());
            }
            (r.exit_status, err)
        }
        Ok(Err(PhaseError::Script(e))) => (2, format!("sh: {e}\n").into_bytes()),
        Ok(Err(e)) => (1, format!("sh: {e}\n").into_bytes()),
        Err(e) => (1, format!("sh: {e}\n").into_bytes()),
    };
    if !out.bytes(&crlf(&stderr)).await {
        return Ran::Gone;
    }
    Ran::Status(status)
}

/// Runs `script` quietly (no stdin): its status and stdout.
async fn probe(
    runner: &Arc<dyn PhaseRunner>,
    template: &CommandTemplate,
    tty: &Tty,
    script: &str,
    left: Duration,
) -> (Option<i32>, String) {
    let (w, mut r) = tokio::io::duplex(64 * 1024);
    let mut job = template.job(
        script.to_owned(),
        PhaseOutput::Stream(Box::new(w)),
        left,
        tty,
    );
    job.stdin = PhaseInput::None;
    let reader = tokio::spawn(async move {
        let mut s = Vec::new();
        let _ = (&mut r).take(64 * 1024).read_to_end(&mut s).await;
        String::from_utf8_lossy(&s).into_owned()
    });
    let status = match runner.run(job).await {
        Ok(r) => Some(r.exit_status),
        Err(_) => None,
    };
    let printed = reader.await.unwrap_or_default();
    (status, printed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(e: &mut Editor, s: &[u8]) -> (Vec<Edit>, Vec<u8>) {
        let mut echo = Vec::new();
        let edits = s.iter().filter_map(|&b| e.feed(b, &mut echo)).collect();
        (edits, echo)
    }

    #[test]
    fn editor_echoes_edits_and_ends_lines_on_cr() {
        let mut e = Editor::default();
        let (edits, echo) = feed(&mut e, b"wc -x\x7fl\r");
        assert_eq!(edits, vec![Edit::Line("wc -l".into())]);
        assert_eq!(echo, b"wc -x\x08 \x08l\r\n");
        // CR LF is one line end; arrows are swallowed.
        let (edits, _) = feed(&mut e, b"a\x1b[Ab\r\n\x04");
        assert_eq!(edits, vec![Edit::Line("ab".into()), Edit::Eof]);
        let (edits, echo) = feed(&mut e, b"xy\x03");
        assert_eq!(edits, vec![Edit::Interrupt]);
        assert_eq!(echo, b"xy^C\r\n");
        // Backspace removes a whole UTF-8 character.
        let (edits, _) = feed(&mut e, "é\x7f\x15z\r".as_bytes());
        assert_eq!(edits, vec![Edit::Line("z".into())]);
    }

    #[test]
    fn lines_are_classified() {
        assert_eq!(classify("  exit "), Action::Exit(0));
        assert_eq!(classify("exit 3"), Action::Exit(3));
        assert_eq!(classify("cd /tmp"), Action::Cd("/tmp".into()));
        assert!(matches!(classify("vi x"), Action::Say(_)));
        assert!(matches!(classify("grep a f | less"), Action::Say(_)));
        assert!(matches!(classify("X=1 /usr/bin/top"), Action::Say(_)));
        assert_eq!(
            classify("grep vim f | sort"),
            Action::Run("grep vim f | sort".into())
        );
        assert_eq!(classify(""), Action::Nothing);
    }

    #[test]
    fn the_slave_url_must_name_this_jobs_session() {
        let dir = tempfile::tempdir().unwrap();
        let job = uuid::Uuid::new_v4();
        let cfg = dir.path().join("c.json");
        let write = |u: &str| {
            std::fs::write(&cfg, serde_json::json!({ "signed_url": u }).to_string()).unwrap();
        };
        write(&format!(
            "http://127.0.0.1:8080/alice/medusa/attach/{job}/slave?signature=x"
        ));
        assert_eq!(
            slave_url(&cfg, "alice", job).unwrap(),
            format!("ws://127.0.0.1:8080/alice/medusa/attach/{job}/slave?signature=x")
        );
        for bad in [
            format!("http://127.0.0.1:8080/bob/medusa/attach/{job}/slave"),
            format!("http://127.0.0.1:8080/alice/medusa/attach/{job}/master"),
            "http://127.0.0.1:8080/alice/stor/x".to_owned(),
            format!("ftp://h/alice/medusa/attach/{job}/slave"),
        ] {
            write(&bad);
            assert!(slave_url(&cfg, "alice", job).is_err(), "{bad}");
        }
        assert_eq!(crlf(b"a\nb\n"), b"a\r\nb\r\n");
        assert!(is_session(" /assets/poseidon/public/medusa/agent.sh "));
        assert!(is_config_asset("/alice/stor/medusa-config-1-2.json"));
    }
}
