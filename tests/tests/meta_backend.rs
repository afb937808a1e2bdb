//! `tidepool up --meta tikv://...`: the TiKV backend selected from the
//! command line, against a cluster that cannot be reached. The process must
//! still start, and the gateway must answer 503 `ServiceUnavailable` — never
//! a wrong 404 or 401 — because the metadata tier is down, not the object.
//! (The conformance suite against the protocol-level TiKV test server and a
//! real cluster lives in `meta-tikv/tests`.)

use tidepool_tests::{Cluster, ClusterOptions, describe};

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
    // dropped here: nothing listens on the port any more
}

#[test]
fn gateway_answers_503_when_tikv_is_unreachable() {
    let meta = format!("tikv://127.0.0.1:{}", closed_port());
    let c = Cluster::start_with(ClusterOptions {
        args: vec!["--meta".into(), meta],
        ..Default::default()
    })
    .expect("tidepool up starts although its TiKV cluster is down");

    // Unsigned read of a public object: the gateway cannot know whether it
    // exists, so it must not say 404.
    let script = r#"
        const http = require('http');
        const u = new URL(process.env.MANTA_URL + '/alice/public/readme.txt');
        http.get(u, res => {
            let body = '';
            res.on('data', d => body += d);
            res.on('end', () => console.log(JSON.stringify({status: res.statusCode, body})));
        }).on('error', e => { console.error(e); process.exit(2); });
    "#;
    let out = c.node(script);
    assert!(out.status.success(), "{}", describe(&out));
    let got: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", describe(&out)));
    assert_eq!(got["status"], 503, "{got}");
    let body: serde_json::Value = serde_json::from_str(got["body"].as_str().expect("body"))
        .unwrap_or_else(|_| panic!("error body is JSON: {got}"));
    assert_eq!(body["code"], "ServiceUnavailable", "{body}");

    // A signed request from the real CLI: the account's keys live in the
    // unreachable metadata too, so this is 503 as well, not 401/403.
    let out = c.manta("mls", &["/alice/stor"]);
    assert!(!out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ServiceUnavailable") || stderr.contains("metadata tier is unavailable"),
        "{}",
        describe(&out)
    );
}
