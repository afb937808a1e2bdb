//! The web console (`/console/`) end to end, in Debian's Chromium driven
//! over the DevTools protocol ([`tidepool_tests::browser`]): sign in with a
//! token from `POST /:login/tokens`, upload three objects through the
//! page's file input, run `grep apple ^^ sort | uniq -c` over them, watch
//! the job reach `done` from the events the server pushes (the progress
//! bars' values are recorded as the page showed them), open the output,
//! and look at the operator's cluster view. Screenshots are saved under
//! the target directory and their paths printed.
//!
//! Beside the browser, plain HTTP checks of what the console must refuse:
//! another account's token gets no job events, a normal account and an
//! anonymous caller no cluster view; and the security headers.
//!
//! Without Chromium the test prints a SKIP line and passes (`scripts/setup`
//! installs it, so CI runs it). Nothing waits on time: every wait is for a
//! condition, with a generous limit that only catches a hang.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tidepool_tests::browser::{self, Browser};
use tidepool_tests::{Cluster, Tenant, host_sh, ok};

const HANG: Duration = Duration::from_secs(120);

/// A token for the caller of `msign`'s presigned `POST ~~/tokens` (the
/// way docs/console.md tells a person to get one).
async fn token(presigned: &str) -> String {
    let url = presigned.trim();
    let r = reqwest::Client::new().post(url).send().await.unwrap();
    assert_eq!(r.status(), 201, "POST {url}: {}", r.text().await.unwrap());
    let v: Value = r.json().await.unwrap();
    v["token"].as_str().expect("token").to_owned()
}

async fn get(url: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new().get(url);
    if let Some(t) = token {
        req = req.header("authorization", format!("Token {t}"));
    }
    req.send().await.unwrap()
}

fn shots_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Waits for `expr` to hold in the page; on a hang, saves a screenshot
/// and fails with what the page says (its flash and status lines).
async fn wait(b: &mut Browser, what: &str, expr: &str) -> Value {
    match b.wait_for(what, expr, HANG).await {
        Ok(v) => v,
        Err(e) => {
            let _ = b.screenshot(&shots_dir().join("failed.png")).await;
            let page = b
                .eval(
                    "['flash', 'upload-status', 'job-error', 'job-state', 'job-stats', 'signin-error']\
                     .map(id => id + ': ' + (document.getElementById(id) || {}).textContent).join(' | ')",
                )
                .await;
            let log = b.log.lock().map(|l| l.clone()).unwrap_or_default();
            panic!("{e:#}\npage: {page:?}\nchromium: {log}");
        }
    }
}

async fn shot(b: &mut Browser, name: &str) {
    let p = shots_dir().join(format!("{name}.png"));
    b.screenshot(&p).await.unwrap();
    println!("screenshot: {}", p.display());
}

/// Three objects with lines that `grep apple` keeps.
fn bodies() -> [(&'static str, &'static str); 3] {
    [
        ("a.txt", "apple pie\nbanana\napple pie\n"),
        ("b.txt", "apple tart\ncherry\n"),
        ("c.txt", "apple pie\ndate\napple tart\nelderberry\n"),
    ]
}

/// Records, in the page, every change of the progress bars' values
/// (`window.__progress`, one array of per-phase values per change) and of
/// the job's state text (`window.__states`).
const RECORDER: &str = r#"(() => {
  window.__progress = []; window.__states = [];
  const rec = () => {
    const v = Array.from(document.querySelectorAll('#phases progress'))
      .map((p) => Number(p.getAttribute('value')));
    const last = JSON.stringify(window.__progress[window.__progress.length - 1]);
    if (v.length && JSON.stringify(v) !== last) window.__progress.push(v);
    const s = document.getElementById('job-state').textContent;
    if (window.__states[window.__states.length - 1] !== s) window.__states.push(s);
  };
  new MutationObserver(rec).observe(document.getElementById('job-view'),
    { subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ['value'] });
  return true;
})()"#;

#[test]
fn console_signs_in_uploads_runs_a_job_and_watches_it_live() {
    let Some(chromium) = browser::chromium() else {
        eprintln!(
            "SKIP console_signs_in_uploads_runs_a_job_and_watches_it_live: no chromium on PATH \
             (scripts/setup installs Debian's chromium; TIDEPOOL_CHROMIUM names another)"
        );
        return;
    };
    let started = std::time::Instant::now();
    let mut c = Cluster::start().unwrap();
    // bob: a second, ordinary account; alice: an operator.
    let bob: Tenant = c
        .add_tenant_and("bob", &[&["account", "operator", "alice"]])
        .unwrap();
    let base = c.url();
    println!(
        "cluster with bob and operator alice after {:?}",
        started.elapsed()
    );
    let alice_url = ok(&c.manta("msign", &["-m", "POST", "/alice/tokens"]));
    let bob_url = ok(&bob.manta(&c, "msign", &["-m", "POST", "/bob/tokens"], b""));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let alice = token(&alice_url).await;
        let bob = token(&bob_url).await;

        // The page: public, with its security headers; `/console` leads there.
        let r = get(&format!("{base}/console/"), None).await;
        assert_eq!(r.status(), 200);
        let h = r.headers().clone();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        let r = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(format!("{base}/console"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 308);
        assert_eq!(r.headers()["location"], "/console/");

        // The operator view: alice (operator) only.
        let r = get(&format!("{base}/console/api/cluster"), Some(&alice)).await;
        assert_eq!(r.status(), 200);
        let view: Value = r.json().await.unwrap();
        assert_eq!(view["nodes"].as_array().map(Vec::len), Some(3), "{view}");
        for who in [Some(bob.as_str()), None] {
            let r = get(&format!("{base}/console/api/cluster"), who).await;
            assert_eq!(r.status(), 403, "cluster view for {who:?}");
            let e: Value = r.json().await.unwrap();
            assert_eq!(e["code"], "AuthorizationFailed", "{e}");
        }

        let mut b = Browser::launch(&chromium, 1280, 1000).await.unwrap();
        println!("browser up after {:?}", started.elapsed());
        b.navigate(&format!("{base}/console/")).await.unwrap();
        shot(&mut b, "01-sign-in").await;
        b.type_into("#login", "alice").await.unwrap();
        b.type_into("#token", &alice).await.unwrap();
        b.click("#signin-button").await.unwrap();
        wait(&mut b, "the file view after signing in", "!document.getElementById('files').hidden && document.querySelector('#listing tbody tr') !== null").await;
        let who = b.eval("document.getElementById('who').textContent").await.unwrap();
        assert_eq!(who, "alice (operator)");
        // The token is in this tab's session storage, not in the URL.
        let href = b.eval("location.href").await.unwrap();
        assert!(!href.as_str().unwrap().contains(&alice[..16]), "{href}");

        // A directory made and opened through the page; three files
        // uploaded into it through its file input.
        b.type_into("#newdir", "demo").await.unwrap();
        b.click("#mkdir").await.unwrap();
        wait(
            &mut b,
            "demo in the listing",
            "document.querySelector('#listing tr[data-name=\"demo\"] button') !== null",
        )
        .await;
        b.click("#listing tr[data-name=\"demo\"] td:nth-child(2) button").await.unwrap();
        wait(
            &mut b,
            "the demo directory listed",
            "document.getElementById('listing').dataset.dir === '/alice/stor/demo'",
        )
        .await;
        let local = c.root.path().join("uploads");
        std::fs::create_dir_all(&local).unwrap();
        let mut files = Vec::new();
        for (name, body) in bodies() {
            let p = local.join(name);
            std::fs::write(&p, body).unwrap();
            files.push(p);
        }
        b.set_files("#upload-files", &files).await.unwrap();
        b.click("#upload").await.unwrap();
        wait(
            &mut b,
            "three uploads",
            "document.getElementById('upload-status').dataset.done === '3' && \
             document.querySelectorAll('#listing tbody tr[data-name]').length === 3",
        )
        .await;
        shot(&mut b, "02-uploaded").await;
        for (name, body) in bodies() {
            let got = ok(&c.manta("mget", &[&format!("/alice/stor/demo/{name}")]));
            assert_eq!(got, body, "{name} as uploaded by the page");
        }

        // The three objects as the job's inputs, the pipeline typed in.
        for (name, _) in bodies() {
            b.click(&format!("#listing tr[data-name=\"{name}\"] input[type=checkbox]"))
                .await
                .unwrap();
        }
        b.click("#use-inputs").await.unwrap();
        let inputs = b.eval("document.getElementById('job-inputs').value").await.unwrap();
        assert_eq!(
            inputs,
            "/alice/stor/demo/a.txt\n/alice/stor/demo/b.txt\n/alice/stor/demo/c.txt"
        );
        b.type_into("#job-name", "console-test").await.unwrap();
        b.type_into("#job-pipeline", "grep apple ^^ sort | uniq -c").await.unwrap();
        assert_eq!(b.eval(RECORDER).await.unwrap(), Value::Bool(true));
        b.click("#job-run").await.unwrap();
        wait(&mut b, "the first pushed event", "document.querySelectorAll('#phases progress').length === 2").await;
        shot(&mut b, "03-job-started").await;
        wait(&mut b, "the job to be done", "document.getElementById('job-state').textContent.startsWith('done')").await;
        shot(&mut b, "04-job-done").await;
        println!("job done after {:?}", started.elapsed());
        let progress = b.eval("window.__progress").await.unwrap();
        let states = b.eval("window.__states").await.unwrap();
        println!("progress bars as shown (phase 0, phase 1): {progress}");
        println!("job states as shown: {states}");
        let seq: Vec<Vec<u64>> = serde_json::from_value(progress).unwrap();
        assert_eq!(seq.last(), Some(&vec![100, 100]), "{seq:?}");
        assert!(
            seq.iter().any(|v| v.iter().any(|&p| p < 100)),
            "the bars moved: some pushed update showed less than 100% ({seq:?})"
        );
        assert!(seq.len() >= 2, "{seq:?}");
        // Values never go back.
        for w in seq.windows(2) {
            assert!(w[0].iter().zip(&w[1]).all(|(a, b)| a <= b), "{seq:?}");
        }
        let states: Vec<String> = serde_json::from_value(states).unwrap();
        assert_eq!(states.last().map(String::as_str), Some("done"), "{states:?}");
        // A done job offers no "Cancel job" (the button is not rendered).
        let cancel = b
            .eval("document.getElementById('job-cancel').offsetParent === null")
            .await
            .unwrap();
        assert_eq!(cancel, true, "the cancel button is hidden on a done job");

        // The output, opened from the page.
        wait(&mut b, "the output list", "document.querySelector('#job-outputs button') !== null").await;
        b.click("#job-outputs button").await.unwrap();
        let shown = wait(
            &mut b,
            "the output text",
            "document.getElementById('job-output').dataset.loaded && \
             document.getElementById('job-output').textContent",
        )
        .await;
        let all: String = bodies().iter().map(|(_, b)| *b).collect();
        let expected = host_sh("grep apple | sort | uniq -c", all.as_bytes());
        assert_eq!(shown.as_str().unwrap(), expected);
        shot(&mut b, "05-output").await;
        let job_id = b
            .eval("document.getElementById('job-title').textContent.split(' ').pop()")
            .await
            .unwrap();
        let job_id = job_id.as_str().unwrap().to_owned();
        let errors = b.eval("document.getElementById('job-errors').textContent").await.unwrap();
        assert_eq!(errors, "no errors");

        // The operator's view of the cluster.
        b.click("#nav-cluster").await.unwrap();
        wait(&mut b, "three nodes", "document.querySelectorAll('#nodes tbody tr').length === 3").await;
        let conditions = b
            .eval("Array.from(document.querySelectorAll('#nodes tbody tr td:nth-child(2)')).map(t => t.textContent)")
            .await
            .unwrap();
        assert_eq!(conditions, serde_json::json!(["up", "up", "up"]));
        shot(&mut b, "06-cluster").await;
        drop(b);

        // The event stream over plain HTTP: a done job's stream gives its
        // final status and ends.
        let events = format!("{base}/alice/jobs/{job_id}/live/events");
        let r = get(&events, Some(&alice)).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "text/event-stream");
        let text = r.text().await.unwrap();
        let last = text
            .split("\n\n")
            .filter_map(|f| f.strip_prefix("event: status\ndata: "))
            .last()
            .unwrap_or_else(|| panic!("no status event: {text}"));
        let snap: Value = serde_json::from_str(last).unwrap();
        assert_eq!(snap["state"], "done", "{snap}");
        assert_eq!(snap["phases"][0]["tasks"], 3, "{snap}");
        assert_eq!(snap["phases"][0]["done"], 3, "{snap}");
        assert_eq!(snap["phases"][1]["type"], "reduce", "{snap}");
        assert_eq!(snap["phases"][1]["done"], 1, "{snap}");

        // Another account gets none of it, through either path.
        let r = get(&events, Some(&bob)).await;
        assert_eq!(r.status(), 403, "bob on alice's job events");
        let r = get(&format!("{base}/bob/jobs/{job_id}/live/events"), Some(&bob)).await;
        assert_eq!(r.status(), 404, "alice's job under bob's login");
        let r = get(&events, None).await;
        assert_eq!(r.status(), 403, "anonymous");
    });
}
