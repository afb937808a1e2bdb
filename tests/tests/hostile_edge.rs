//! The public edge under hostile clients: `tidepool up --tls-cert/--tls-key`
//! serving HTTPS to the real `manta` CLI and to reqwest, while strangers
//! speak plain HTTP to the TLS port, send garbage, stall handshakes or do
//! not trust the certificate — each costing only its own connection.
//! Bad certificate files stop startup with a clear error; plain HTTP beyond
//! loopback is announced loudly.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use tidepool_tests::{
    Cluster, ClusterOptions, describe, failed, ok, payload, run_with_deadline, self_signed_cert,
    server_command,
};

fn tls_cluster() -> Cluster {
    let c = Cluster::start_with(ClusterOptions {
        tls: true,
        ..Default::default()
    })
    .unwrap();
    assert!(c.url().starts_with("https://127.0.0.1:"), "{}", c.url());
    c
}

fn file(c: &Cluster, name: &str, bytes: &[u8]) -> String {
    let p = c.root.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_string_lossy().into_owned()
}

/// `host:port` of the gateway.
fn authority(c: &Cluster) -> String {
    c.url()
        .strip_prefix("https://")
        .expect("an https URL")
        .to_owned()
}

/// The CLI with the certificate trusted (NODE_EXTRA_CA_CERTS), with
/// verification off instead (MANTA_TLS_INSECURE=1), and with neither.
#[test]
fn manta_cli_over_https() {
    let c = tls_cluster();
    let data = payload(300_000, 3);
    let f = file(&c, "payload.bin", &data);
    ok(&c.manta("mmkdir", &["~~/stor/tls"]));
    ok(&c.manta("mput", &["-f", &f, "~~/stor/tls/obj"]));
    let ls = ok(&c.manta("mls", &["~~/stor/tls"]));
    assert_eq!(ls.trim(), "obj");
    let got = c.manta("mget", &["~~/stor/tls/obj"]);
    ok(&got);
    assert!(got.stdout == data, "mget over https returns the bytes put");

    let insecure = |tool: &str, args: &[&str]| {
        run_with_deadline(
            c.manta_cmd(tool)
                .env_remove("NODE_EXTRA_CA_CERTS")
                .env("MANTA_TLS_INSECURE", "1")
                .args(args),
            None,
            Duration::from_secs(120),
        )
    };
    ok(&insecure("mput", &["-f", &f, "~~/stor/tls/obj2"]));
    assert_eq!(ok(&insecure("mls", &["~~/stor/tls"])).trim(), "obj\nobj2");
    let got = insecure("mget", &["~~/stor/tls/obj2"]);
    ok(&got);
    assert!(got.stdout == data);

    // Verification is real: without the certificate as a root, the CLI
    // refuses the server.
    let untrusted = run_with_deadline(
        c.manta_cmd("mls")
            .env_remove("NODE_EXTRA_CA_CERTS")
            .arg("~~/stor/tls"),
        None,
        Duration::from_secs(120),
    );
    let err = failed(&untrusted).to_lowercase();
    assert!(
        err.contains("certificate") || err.contains("self signed") || err.contains("self-signed"),
        "{}",
        describe(&untrusted)
    );
    // A plain-HTTP URL to the TLS port fails, with the reason.
    let plain = run_with_deadline(
        c.manta_cmd("mls")
            .env("MANTA_URL", format!("http://{}", authority(&c)))
            .arg("~~/stor/tls"),
        None,
        Duration::from_secs(120),
    );
    let err = failed(&plain);
    assert!(err.contains("https"), "{}", describe(&plain));
    // ...and the server keeps serving.
    assert_eq!(ok(&c.manta("mls", &["~~/stor/tls"])).trim(), "obj\nobj2");
}

fn trusting_client(c: &Cluster) -> reqwest::Client {
    let pem = std::fs::read(c.tls_cert().expect("tls cluster")).unwrap();
    reqwest::Client::builder()
        .no_proxy()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap()
}

/// Connects, sends `bytes`, and reads until the server closes (or the
/// deadline passes, which fails the test): what the server answered.
fn send_raw(addr: &str, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // The server may close before taking every byte; that is its right.
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("server neither answered nor closed: {e}"),
    }
    out
}

#[tokio::test]
async fn strangers_on_the_tls_port_cost_only_their_connection() {
    let c = tls_cluster();
    let addr = authority(&c);
    let f = file(&c, "hello", b"hello over tls\n");
    ok(&c.manta("mput", &["-f", &f, "~~/public/hello"]));
    let url = format!("{}/alice/public/hello", c.url());
    let client = trusting_client(&c);
    let get_hello = || async {
        let r = client.get(&url).send().await.expect("https GET");
        assert_eq!(r.status(), 200);
        assert_eq!(&r.bytes().await.unwrap()[..], b"hello over tls\n");
    };
    get_hello().await;

    // A handshake left hanging does not hold up anyone else.
    let mut stalled = TcpStream::connect(&addr).unwrap();
    stalled.write_all(&[0x16, 0x03, 0x01]).unwrap();
    get_hello().await;

    // Plain HTTP to the TLS port: a clear 400, in Manta's error form.
    let plain = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = plain
        .get(format!("http://{addr}/alice/public/hello"))
        .send()
        .await
        .expect("plain HTTP gets an answer");
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(v["code"], "BadRequest");
    assert!(v["message"].as_str().unwrap().contains("https://"), "{v}");

    // Garbage: random bytes, a TLS record header followed by junk, a
    // truncated ClientHello, an empty connection, binary that looks like
    // neither. Each is closed without an answer that could be mistaken
    // for HTTP.
    let mut junk = payload(64 * 1024, 11);
    // Not an ASCII letter: this one must not look like plain HTTP.
    junk[0] = 0x80;
    let mut record = vec![0x16, 0x03, 0x01, 0xff, 0xff];
    record.extend_from_slice(&junk[..4096]);
    let truncated_hello = [
        0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c, 0x03, 0x03,
    ];
    for (what, bytes) in [
        ("random", &junk[..]),
        ("record", &record[..]),
        ("nul", &[0u8; 100][..]),
    ] {
        let out = send_raw(&addr, bytes);
        assert!(!out.starts_with(b"HTTP/"), "{what}: {out:?}");
    }
    {
        // A truncated hello is then abandoned by the client.
        let mut s = TcpStream::connect(&addr).unwrap();
        s.write_all(&truncated_hello).unwrap();
        drop(s);
        drop(TcpStream::connect(&addr).unwrap());
    }
    // A client that does not trust the certificate fails its handshake.
    let distrustful = reqwest::Client::builder()
        .no_proxy()
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    let err = distrustful.get(&url).send().await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");

    // Many bad connections at once, then the service is still whole.
    let handles: Vec<_> = (0..32)
        .map(|i| {
            let addr = addr.clone();
            let bytes = payload(1000 + i * 37, i as u64 + 1);
            std::thread::spawn(move || send_raw(&addr, &bytes))
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    drop(stalled);
    get_hello().await;
    assert_eq!(
        ok(&c.manta("mget", &["~~/public/hello"])),
        "hello over tls\n"
    );
    assert!(
        !c.server_log().contains("panicked"),
        "server log:\n{}",
        c.server_log()
    );
}

/// `tidepool up` with TLS flags it cannot use: exits non-zero with an error
/// naming the file, before serving anything, and never panics.
#[test]
fn unusable_certificate_files_stop_startup_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed_cert(&dir.path().join("a")).unwrap();
    let (_, other_key) = self_signed_cert(&dir.path().join("b")).unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, b"not a certificate").unwrap();
    let missing = dir.path().join("missing.pem");
    let cases = [
        (&garbage, &key, "garbage.pem"),
        (&missing, &key, "missing.pem"),
        (&cert, &garbage, "garbage.pem"),
        (&cert, &other_key, "cannot be used together"),
    ];
    for (i, (cert, key, expect)) in cases.into_iter().enumerate() {
        let data = dir.path().join(format!("data{i}"));
        let out = run_with_deadline(
            server_command()
                .args(["up", "--listen", "127.0.0.1:0", "--nodes", "0", "--data"])
                .arg(&data)
                .arg("--tls-cert")
                .arg(cert)
                .arg("--tls-key")
                .arg(key),
            None,
            Duration::from_secs(60),
        );
        let stderr = failed(&out);
        assert!(stderr.contains(expect), "{expect}: {}", describe(&out));
        assert!(!stderr.contains("panicked"), "{}", describe(&out));
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("MANTA_URL"),
            "{}",
            describe(&out)
        );
    }
    // One flag without the other is a usage error.
    let out = run_with_deadline(
        server_command()
            .args(["up", "--nodes", "0", "--tls-cert"])
            .arg(&cert),
        None,
        Duration::from_secs(60),
    );
    assert!(failed(&out).contains("--tls-key"), "{}", describe(&out));
}

/// Plain HTTP on a non-loopback address is announced on stderr; on
/// loopback (the default) it is not.
#[test]
fn plain_http_beyond_loopback_warns() {
    let c = Cluster::start().unwrap();
    assert!(c.url().starts_with("http://"));
    assert!(!c.server_log().contains("WARNING"), "{}", c.server_log());
    drop(c);

    let dir = tempfile::tempdir().unwrap();
    let mut child = server_command()
        .args(["up", "--listen", "0.0.0.0:0", "--nodes", "1", "--data"])
        .arg(dir.path().join("data"))
        .env("HOME", dir.path())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = String::new();
    let warned = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("WARNING") && line.contains("plain HTTP") => break true,
            Ok(line) => seen.push_str(&line),
            Err(_) => break false,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(warned, "no warning on stderr; saw:\n{seen}");
}
