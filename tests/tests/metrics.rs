//! Operators' view of a real `tidepool up`: `/metrics` on the admin
//! listener (parsed with a Prometheus text-format parser, `prometheus-parse`)
//! moves by at least what the test drove through Manta's CLI and a job, and
//! `--log-format json` gives one JSON object per stderr line, the request
//! id of a failing request on its lines, in its `x-request-id` header and
//! in its error body.
//!
//! Counters are compared before and after, never with absolute numbers the
//! server's own background work could also move; nothing waits on time.

use std::time::{Duration, Instant};

use prometheus_parse::{Sample, Scrape, Value};
use tidepool_tests::{Cluster, ClusterOptions, ok};

/// The `/metrics` URL `tidepool up` printed (`metrics at URL (...)`).
fn metrics_url(c: &Cluster) -> String {
    c.printed
        .iter()
        .find_map(|l| l.strip_prefix("metrics at "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("tidepool up printed no metrics URL: {:?}", c.printed))
        .to_owned()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// One scrape, parsed; also checks the content type Prometheus expects.
fn scrape(url: &str) -> Scrape {
    let text = runtime().block_on(async {
        let resp = reqwest::get(url).await.expect("GET /metrics");
        assert_eq!(resp.status(), 200);
        let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
        resp.text().await.unwrap()
    });
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text format")
}

fn labels_match(s: &Sample, want: &[(&str, &str)]) -> bool {
    want.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
}

/// The sum of the counter or gauge `name` over the samples with `labels`
/// (0 when there is none yet).
fn value(sc: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    sc.samples
        .iter()
        .filter(|s| s.metric == name && labels_match(s, labels))
        .map(|s| match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            _ => panic!("{name} is not a counter or gauge: {:?}", s.value),
        })
        .sum()
}

/// The histogram `name` with `labels`: its bucket count and its total
/// (the `+Inf` bucket). `None` when it has no samples yet.
fn histogram(sc: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<(usize, f64)> {
    sc.samples
        .iter()
        .filter(|s| s.metric.starts_with(name) && labels_match(s, labels))
        .find_map(|s| match &s.value {
            Value::Histogram(b) => {
                let total = b
                    .iter()
                    .find(|c| c.less_than.is_infinite())
                    .map_or(0.0, |c| c.count);
                Some((b.len(), total))
            }
            _ => None,
        })
}

const REQUESTS: &str = "tidepool_gateway_requests_total";
const LATENCY: &str = "tidepool_gateway_request_duration_seconds";

#[test]
fn metrics_move_with_requests_and_jobs() {
    let c = Cluster::start().unwrap();
    let url = metrics_url(&c);
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "loopback by default: {url}"
    );
    // The public listener does not serve it.
    let public = runtime().block_on(async {
        reqwest::get(format!("{}/metrics", c.url()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert!(!public.contains(REQUESTS), "{public}");

    ok(&c.manta("mmkdir", &["-p", "~~/stor/m"]));
    let before = scrape(&url);

    let bodies: Vec<Vec<u8>> = (1..=3)
        .map(|n| format!("object {n}\n").repeat(100 * n).into_bytes())
        .collect();
    let mut put_bytes = 0;
    for (i, b) in bodies.iter().enumerate() {
        c.mput(&format!("/alice/stor/m/o{i}"), b);
        put_bytes += b.len();
    }
    let mut got_bytes = 0;
    for i in 0..bodies.len() {
        got_bytes += ok(&c.manta("mget", &[&format!("/alice/stor/m/o{i}")])).len();
    }
    assert_eq!(got_bytes, put_bytes);
    for i in 0..2 {
        let out = c.manta("mget", &[&format!("/alice/stor/m/missing{i}")]);
        assert!(!out.status.success(), "mget of a missing object fails");
    }
    let job = ok(&c.manta_stdin(
        "mjob",
        &["create", "-o", "-m", "wc -l"],
        b"/alice/stor/m/o0\n",
    ));
    assert_eq!(job.trim(), "100", "the job ran: {job:?}");

    let after = scrape(&url);
    let moved = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    let put = [("operation", "putobject"), ("status", "204")];
    let get = [("operation", "getstorage"), ("status", "200")];
    let missing = [("operation", "getstorage"), ("status", "404")];
    assert!(moved(REQUESTS, &put) >= 3.0, "PUTs counted");
    assert!(moved(REQUESTS, &get) >= 3.0, "GETs counted");
    assert!(moved(REQUESTS, &missing) >= 2.0, "404s counted");
    assert!(
        moved(REQUESTS, &[("operation", "createjob")]) >= 1.0,
        "job creation counted"
    );
    // The latency histograms have buckets and count the same requests.
    for labels in [&put[..], &get[..], &missing[..]] {
        let (buckets, total) = histogram(&after, LATENCY, labels)
            .unwrap_or_else(|| panic!("no latency histogram for {labels:?}"));
        assert!(buckets > 1, "{labels:?}: {buckets} buckets");
        let total_before = histogram(&before, LATENCY, labels).map_or(0.0, |h| h.1);
        assert!(
            total - total_before >= 2.0,
            "{labels:?}: {total_before} -> {total}"
        );
    }
    assert!(
        moved("tidepool_gateway_received_bytes_total", &[]) >= put_bytes as f64,
        "request bytes counted"
    );
    assert!(
        moved("tidepool_gateway_sent_bytes_total", &[]) >= got_bytes as f64,
        "response bytes counted"
    );
    // The job's map task ran on a node's agent of this process.
    assert!(
        moved("tidepool_compute_tasks_total", &[("outcome", "success")]) >= 1.0,
        "task counted"
    );
    let (buckets, _) = histogram(&after, "tidepool_compute_task_duration_seconds", &[])
        .expect("task duration histogram");
    assert!(buckets > 1);
    assert_eq!(
        value(&after, "tidepool_compute_tasks_in_agent", &[]),
        0.0,
        "no task left in the agent"
    );
    assert!(
        after
            .samples
            .iter()
            .any(|s| s.metric == "tidepool_compute_tasks_queued"),
        "queue depth exported"
    );

    // Node capacity and health from the cluster view, and the background
    // workers' records: present once every node has heartbeated and each
    // worker has published (a condition with a deadline, not a sleep).
    let nodes = c.node_urls().len();
    assert_eq!(nodes, 3);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let sc = scrape(&url);
        let up = value(&sc, "tidepool_cluster_nodes", &[("condition", "up")]);
        let capacities = sc
            .samples
            .iter()
            .filter(|s| s.metric == "tidepool_cluster_node_capacity_bytes")
            .filter(|s| matches!(s.value, Value::Gauge(v) if v > 0.0))
            .count();
        let own = sc
            .samples
            .iter()
            .filter(|s| s.metric == "tidepool_node_capacity_bytes")
            .count();
        let workers = value(&sc, "tidepool_worker_state", &[]);
        if up == nodes as f64 && capacities == nodes && own == nodes && workers >= 4.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "cluster gauges: {up} up, {capacities} capacities, {own} own, {workers} workers"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn json_logs_carry_the_request_id_of_a_failing_request() {
    let c = Cluster::start_with(ClusterOptions {
        args: vec!["--log-format".into(), "json".into()],
        env: vec![("RUST_LOG".into(), "info".into())],
        ..Default::default()
    })
    .unwrap();
    // Anonymous GET of a missing public object: 404 ResourceNotFound.
    let (header_id, body) = runtime().block_on(async {
        let resp = reqwest::get(format!("{}/alice/public/no-such-object", c.url()))
            .await
            .unwrap();
        assert_eq!(resp.status(), 404);
        let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
        let body: serde_json::Value = resp.json().await.unwrap();
        (id, body)
    });
    assert_eq!(body["code"], "ResourceNotFound");
    assert_eq!(
        body["requestId"].as_str(),
        Some(header_id.as_str()),
        "{body}"
    );

    // Its log lines arrive through the server's stderr pipe: wait for them.
    let deadline = Instant::now() + Duration::from_secs(60);
    let log = loop {
        let log = c.server_log();
        if log
            .lines()
            .filter(|l| l.contains(&header_id))
            .any(|l| l.contains("\"done\""))
        {
            break log;
        }
        assert!(
            Instant::now() < deadline,
            "no log line of {header_id}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut of_request = 0;
    for line in log.lines().filter(|l| !l.is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stderr line is not JSON ({e}): {line}"));
        if v["span"]["path"] == "/alice/public/no-such-object" {
            of_request += 1;
            assert_eq!(
                v["span"]["req_id"].as_str(),
                Some(header_id.as_str()),
                "{line}"
            );
        }
    }
    // The error ("request failed") and the summary ("done").
    assert!(of_request >= 2, "lines of the request: {of_request}\n{log}");
}
