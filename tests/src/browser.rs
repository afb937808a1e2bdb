//! Headless Chromium driven over the Chrome DevTools Protocol (CDP): a
//! small client speaking CDP's JSON messages over the browser's WebSocket,
//! enough for end-to-end tests of the web console (navigate, evaluate,
//! click and type with real input events, set a file input's files, take
//! screenshots).
//!
//! Chromium is Debian's `chromium` (`scripts/setup` installs it), started
//! with a fresh profile in a temporary directory, `--headless=new`, and
//! `--no-sandbox` (tests run as root, where Chromium's sandbox refuses to
//! start). The process is killed when the [`Browser`] is dropped.

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long one CDP command may take before the test gives up (a hang,
/// not a timing assertion).
const CALL_LIMIT: Duration = Duration::from_secs(60);

/// The Chromium binary: `TIDEPOOL_CHROMIUM`, else `chromium` or
/// `chromium-browser` on `PATH`.
pub fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TIDEPOOL_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| ["chromium", "chromium-browser"].map(|n| d.join(n)))
        .find(|p| p.is_file())
}

/// One headless Chromium with one page attached.
pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    ws: Ws,
    next_id: u64,
    session: String,
    /// Everything Chromium printed on stderr (for failure messages).
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    /// Starts `bin` with a `width`x`height` window and attaches to a new
    /// blank page.
    pub async fn launch(bin: &Path, width: u32, height: u32) -> Result<Browser> {
        let profile = tempfile::Builder::new()
            .prefix("tidepool-chromium-")
            .tempdir()?;
        let mut child = Command::new(bin)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
            ])
            .arg(format!("--window-size={width},{height}"))
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        // Chromium prints `DevTools listening on ws://...` on stderr; the
        // rest of stderr keeps being drained so it never blocks on a full
        // pipe.
        let stderr = child.stderr.take().context("chromium stderr")?;
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("DevTools listening on ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(url.trim().to_owned());
                }
                if let Ok(mut l) = sink.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        let url = tokio::task::spawn_blocking(move || rx.recv_timeout(CALL_LIMIT))
            .await?
            .map_err(|_| {
                anyhow!(
                    "chromium printed no DevTools URL: {}",
                    log.lock().map(|l| l.clone()).unwrap_or_default()
                )
            })?;
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .with_context(|| format!("connecting to {url}"))?;
        let mut b = Browser {
            child,
            _profile: profile,
            ws,
            next_id: 0,
            session: String::new(),
            log,
        };
        let target = b
            .send(None, "Target.createTarget", json!({ "url": "about:blank" }))
            .await?;
        let target_id = target["targetId"].as_str().context("targetId")?.to_owned();
        let attached = b
            .send(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target_id, "flatten": true }),
            )
            .await?;
        b.session = attached["sessionId"]
            .as_str()
            .context("sessionId")?
            .to_owned();
        b.call("Page.enable", json!({})).await?;
        b.call("Runtime.enable", json!({})).await?;
        b.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false }),
        )
        .await?;
        Ok(b)
    }

    /// Sends one command (to the browser, or to a page session) and waits
    /// for its answer; events in between are skipped.
    async fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws.send(Message::text(msg.to_string())).await?;
        let answer = tokio::time::timeout(CALL_LIMIT, async {
            while let Some(m) = self.ws.next().await {
                let Message::Text(text) = m? else { continue };
                let v: Value = serde_json::from_str(text.as_str())?;
                if v["id"].as_u64() == Some(id) {
                    return Ok(v);
                }
            }
            bail!("the DevTools connection closed")
        })
        .await
        .with_context(|| format!("{method}: no answer"))??;
        if let Some(e) = answer.get("error") {
            bail!("{method}: {e}");
        }
        Ok(answer["result"].clone())
    }

    /// A command on the page.
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        let session = self.session.clone();
        self.send(Some(&session), method, params).await
    }

    /// Evaluates `expr` in the page (promises awaited) and returns its
    /// value as JSON; a thrown exception is an error.
    pub async fn eval(&mut self, expr: &str) -> Result<Value> {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expr, "awaitPromise": true, "returnByValue": true }),
            )
            .await?;
        if let Some(e) = r.get("exceptionDetails") {
            bail!("evaluating {expr}: {e}");
        }
        Ok(r["result"]["value"].clone())
    }

    /// Evaluates `expr` until it gives a truthy value and returns it; fails
    /// after `limit` (the page hung) with `what` and the last value.
    pub async fn wait_for(&mut self, what: &str, expr: &str, limit: Duration) -> Result<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let v = self.eval(expr).await?;
            let truthy =
                !matches!(&v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("");
            if truthy {
                return Ok(v);
            }
            if Instant::now() >= deadline {
                bail!("waited {limit:?} for {what}; last value {v}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Loads `url` and waits until the document has loaded.
    pub async fn navigate(&mut self, url: &str) -> Result<()> {
        let r = self.call("Page.navigate", json!({ "url": url })).await?;
        if let Some(e) = r.get("errorText") {
            bail!("navigating to {url}: {e}");
        }
        self.wait_for(
            "the page to load",
            "document.readyState === 'complete'",
            CALL_LIMIT,
        )
        .await?;
        Ok(())
    }

    /// The center of the element `selector` matches, scrolled into view.
    async fn center(&mut self, selector: &str) -> Result<(f64, f64)> {
        let sel = serde_json::to_string(selector)?;
        let v = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({sel}); if (!e) return null; \
                 e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); \
                 return [r.left + r.width / 2, r.top + r.height / 2, r.width * r.height]; }})()"
            ))
            .await?;
        match v
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect::<Vec<_>>())
        {
            Some(p) if p.len() == 3 && p[2] > 0.0 => Ok((p[0], p[1])),
            _ => bail!("no visible element {selector}"),
        }
    }

    /// Clicks the element `selector` matches with mouse events.
    pub async fn click(&mut self, selector: &str) -> Result<()> {
        let (x, y) = self.center(selector).await?;
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }),
            )
            .await?;
        }
        Ok(())
    }

    /// Focuses the field `selector` matches, empties it and types `text`
    /// (as the keyboard would insert it).
    pub async fn type_into(&mut self, selector: &str, text: &str) -> Result<()> {
        self.click(selector).await?;
        let sel = serde_json::to_string(selector)?;
        self.eval(&format!(
            "(() => {{ const e = document.querySelector({sel}); e.focus(); e.select(); }})()"
        ))
        .await?;
        self.call("Input.insertText", json!({ "text": text }))
            .await?;
        Ok(())
    }

    /// Gives the file input `selector` these files, as a person choosing
    /// them in the file dialog would.
    pub async fn set_files(&mut self, selector: &str, files: &[PathBuf]) -> Result<()> {
        let sel = serde_json::to_string(selector)?;
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": format!("document.querySelector({sel})") }),
            )
            .await?;
        let object = r["result"]["objectId"]
            .as_str()
            .with_context(|| format!("no element {selector}"))?
            .to_owned();
        let files: Vec<String> = files
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        self.call(
            "DOM.setFileInputFiles",
            json!({ "files": files, "objectId": object }),
        )
        .await?;
        Ok(())
    }

    /// Saves a PNG of the page as it is now to `path`.
    pub async fn screenshot(&mut self, path: &Path) -> Result<()> {
        let r = self
            .call(
                "Page.captureScreenshot",
                json!({ "format": "png", "captureBeyondViewport": true }),
            )
            .await?;
        let data = r["data"].as_str().context("screenshot data")?;
        let png = base64::engine::general_purpose::STANDARD.decode(data)?;
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}
