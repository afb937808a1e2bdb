//! A stranger on the internal network and a hostile tenant against a real
//! `tidepool up` with two accounts (alice, bob), over real HTTP:
//!
//! * storage-node routes and the compute agent's `POST /agent/tasks`
//!   without the cluster credential, with another key, or replayed → 401,
//!   and nothing on disk changes;
//! * a correctly signed request whose task grant was altered (owner or
//!   input changed) → refused, nothing runs;
//! * a task whose `input.object` climbs out with `../` → 400, no host file;
//! * bob's reducer `mcat`s alice's private object → the job ends with an
//!   authorization error and none of alice's bytes reach bob;
//! * alice is unaffected throughout; a cluster key others can read is
//!   refused at start.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use cluster_auth::{AUTH_HEADER, ClusterKey, GRANT_HEADER, GrantSigner, RequestSigner};
use tidepool_tests::{Cluster, describe, ok, run_with_deadline, tidepool_bin};

/// Runs `tidepool admin ARGS` on the cluster's (stopped) data directory.
fn admin(c: &Cluster, args: &[&str]) {
    let mut cmd = Command::new(tidepool_bin());
    cmd.arg("admin").arg("--data").arg(c.data_dir()).args(args);
    let out = run_with_deadline(&mut cmd, None, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "tidepool admin {args:?}: {}",
        describe(&out)
    );
}

/// Bob's client identity: his own HOME with his key, `MANTA_USER=bob`.
struct Bob {
    home: PathBuf,
    key_id: String,
}

impl Bob {
    /// Creates bob's key pair and registers account and key with `tidepool
    /// admin` (the cluster is restarted around it: embedded metadata has
    /// one writer).
    fn add(c: &mut Cluster) -> Bob {
        let home = c.root.path().join("bob-home");
        let ssh = home.join(".ssh");
        std::fs::create_dir_all(&ssh).unwrap();
        let key = ssh.join("id_ed25519");
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "bob@test", "-f"])
            .arg(&key)
            .status()
            .unwrap();
        assert!(st.success(), "ssh-keygen");
        let fp = Command::new("ssh-keygen")
            .args(["-l", "-E", "md5", "-f"])
            .arg(key.with_extension("pub"))
            .output()
            .unwrap();
        let fp = String::from_utf8_lossy(&fp.stdout).into_owned();
        let key_id = fp
            .split_whitespace()
            .nth(1)
            .and_then(|f| f.strip_prefix("MD5:"))
            .unwrap_or_else(|| panic!("md5 fingerprint in {fp:?}"))
            .to_owned();
        c.kill9();
        admin(c, &["account", "add", "bob"]);
        let pubkey = key.with_extension("pub");
        admin(c, &["key", "add", "bob", pubkey.to_str().unwrap()]);
        c.restart().unwrap();
        Bob { home, key_id }
    }

    fn cmd(&self, c: &Cluster, tool: &str) -> Command {
        let mut cmd = c.manta_cmd(tool);
        cmd.env("HOME", &self.home)
            .env("MANTA_USER", "bob")
            .env("MANTA_KEY_ID", &self.key_id);
        cmd
    }

    fn run(
        &self,
        c: &Cluster,
        tool: &str,
        args: &[&str],
        input: Option<&[u8]>,
    ) -> std::process::Output {
        run_with_deadline(
            self.cmd(c, tool).args(args),
            input,
            Duration::from_secs(300),
        )
    }
}

/// Every copy file under the cluster's node directories whose bytes are
/// exactly `content`: `(node index, object id, path)`.
fn copies_of(c: &Cluster, content: &[u8]) -> Vec<(usize, String, PathBuf)> {
    let mut found = Vec::new();
    for i in 1..=3 {
        let objects = c.data_dir().join(format!("nodes/node{i}/objects"));
        let Ok(prefixes) = std::fs::read_dir(&objects) else {
            continue;
        };
        for p in prefixes.flatten() {
            for f in std::fs::read_dir(p.path()).into_iter().flatten().flatten() {
                let path = f.path();
                if std::fs::read(&path).is_ok_and(|b| b == content) {
                    let id = f.file_name().to_string_lossy().into_owned();
                    found.push((i, id, path));
                }
            }
        }
    }
    found
}

/// `path?query` of `url`.
fn path_and_query(url: &str) -> String {
    let u = reqwest::Url::parse(url).unwrap();
    match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_owned(),
    }
}

fn signed(
    http: &reqwest::Client,
    key: &ClusterKey,
    method: reqwest::Method,
    url: &str,
) -> reqwest::RequestBuilder {
    let auth = RequestSigner::new(key).header_value(method.as_str(), &path_and_query(url));
    http.request(method, url).header(AUTH_HEADER, auth)
}

/// Every file below `dir` (recursively) whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return hits;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            hits.extend(files_containing(&p, needle));
        } else if std::fs::read(&p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)) {
            hits.push(p);
        }
    }
    hits
}

/// A task request body as the supervisor would send it, for `owner`.
fn task_body(owner: &str, object: &str, object_id: &str, size: u64, exec: &str) -> Vec<u8> {
    let job = "6a0c0b6e-0000-4000-8000-000000000001";
    let task = "6a0c0b6e-0000-4000-8000-000000000002";
    serde_json::to_vec(&serde_json::json!({
        "job_id": job,
        "owner": owner,
        "phase": 0,
        "task_id": task,
        "attempt": 0,
        "exec": exec,
        "init": null,
        "assets": [],
        "input": {"kind": "map", "object": object, "object_id": object_id, "size": size},
        "env": [["MANTA_USER", owner]],
        "stdout_object": format!("/{owner}/jobs/{job}/stor/out.0.{task}"),
        "stderr_object": format!("/{owner}/jobs/{job}/stor/out.0.err.{task}"),
        "next_reducers": 0,
        "limits": {"memory_mb": 256, "disk_gb": 1},
    }))
    .unwrap()
}

#[test]
fn nodes_and_agents_trust_no_one_and_reducers_read_only_the_owners_data() {
    let mut c = Cluster::start().unwrap();
    let bob = Bob::add(&mut c);
    let secret = format!("ALICE-SECRET-{}\n", std::process::id()).into_bytes();
    ok(&c.manta_stdin("mput", &["/alice/stor/secret"], &secret));
    let mine = b"bob's own line\n".to_vec();
    ok(&bob.run(&c, "mput", &["/bob/stor/mine"], Some(&mine)));

    let nodes = c.node_urls();
    assert_eq!(
        nodes.len(),
        3,
        "tidepool up prints its nodes: {:?}",
        c.printed
    );
    for (id, url) in &nodes {
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "{id} on loopback: {url}"
        );
    }
    let secret_copies = copies_of(&c, &secret);
    assert_eq!(secret_copies.len(), 2, "alice's secret has two copies");
    let (node_i, secret_id, secret_file) = secret_copies[0].clone();
    let node_url = nodes[node_i - 1].1.clone();
    let (bob_node, bob_id, _) = copies_of(&c, &mine)[0].clone();
    let bob_node_url = nodes[bob_node - 1].1.clone();
    let key = ClusterKey::load(&c.data_dir().join("cluster.key")).unwrap();
    let stranger = ClusterKey::generate();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let planted_dir = tempfile::tempdir().unwrap();
    let planted = planted_dir.path().join("planted");
    rt.block_on(async {
        use reqwest::Method;
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let obj = format!("{node_url}/objects/{secret_id}");
        let routes = [
            (Method::GET, format!("{node_url}/objects?limit=1000")),
            (Method::GET, obj.clone()),
            (Method::HEAD, obj.clone()),
            (Method::PUT, obj.clone()),
            (Method::DELETE, obj.clone()),
            (Method::POST, format!("{obj}/verify")),
            (Method::GET, format!("{node_url}/status")),
            (Method::POST, format!("{node_url}/agent/tasks")),
        ];
        for (method, url) in &routes {
            let body = if url.ends_with("/agent/tasks") {
                task_body("alice", "/alice/stor/secret", &secret_id, 0, "cat")
            } else {
                b"forged".to_vec()
            };
            let bare = http
                .request(method.clone(), url)
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(bare.status(), 401, "no credential: {method} {url}");
            if *method != Method::HEAD {
                let err: serde_json::Value = bare.json().await.unwrap();
                assert_eq!(err["code"], "NotAuthenticated", "{method} {url}");
            }
            let wrong = signed(&http, &stranger, method.clone(), url)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(wrong.status(), 401, "another key: {method} {url}");
        }

        // A genuine signed request works once; its replay is refused.
        let get = signed(&http, &key, Method::GET, &obj).build().unwrap();
        let captured = get.headers()[AUTH_HEADER].clone();
        let first = http.execute(get).await.unwrap();
        assert_eq!(first.status(), 200);
        assert_eq!(first.bytes().await.unwrap().as_ref(), secret.as_slice());
        let replay = http
            .get(&obj)
            .header(AUTH_HEADER, captured.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(replay.status(), 401, "replayed GET");
        // ...and as a DELETE (the signature covers the method).
        let as_delete = http
            .delete(&obj)
            .header(AUTH_HEADER, captured)
            .send()
            .await
            .unwrap();
        assert_eq!(as_delete.status(), 401, "GET signature reused for DELETE");

        // Tasks: the grant binds every byte of the request.
        let tasks = format!("{bob_node_url}/agent/tasks");
        let bob_node_id = &nodes[bob_node - 1].0;
        let grants = GrantSigner::new(&key);
        let genuine = task_body("bob", "/bob/stor/mine", &bob_id, mine.len() as u64, "wc -c");
        let grant = grants.grant(bob_node_id, &genuine);
        let pwn = "echo pwned | mput /alice/stor/pwned";
        let altered = [
            // Owner changed to alice, same input and script.
            task_body(
                "alice",
                "/bob/stor/mine",
                &bob_id,
                mine.len() as u64,
                "wc -c",
            ),
            // Input changed to alice's object.
            task_body(
                "bob",
                "/alice/stor/secret",
                &secret_id,
                secret.len() as u64,
                "wc -c",
            ),
            // Owner and script changed.
            task_body(
                "alice",
                "/alice/stor/secret",
                &secret_id,
                secret.len() as u64,
                pwn,
            ),
        ];
        for body in &altered {
            let resp = signed(&http, &key, Method::POST, &tasks)
                .header("content-type", "application/json")
                .header(GRANT_HEADER, grant.clone())
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 403, "altered grant");
            let err: serde_json::Value = resp.json().await.unwrap();
            assert_eq!(err["code"], "InvalidGrant");
        }
        // No grant at all, or one for another node.
        let other_node = &nodes[bob_node % 3].0;
        for g in [None, Some(grants.grant(other_node, &genuine))] {
            let mut req = signed(&http, &key, Method::POST, &tasks)
                .header("content-type", "application/json")
                .body(genuine.clone());
            if let Some(g) = g {
                req = req.header(GRANT_HEADER, g);
            }
            assert_eq!(
                req.send().await.unwrap().status(),
                403,
                "missing/foreign grant"
            );
        }

        // A granted task whose input climbs out of the task directory.
        let climb = format!(
            "/bob/stor/{}{}",
            "../".repeat(40),
            planted.to_str().unwrap().trim_start_matches('/')
        );
        for (object, size) in [(climb.as_str(), 0u64), (climb.as_str(), mine.len() as u64)] {
            let body = task_body("bob", object, &bob_id, size, "cat");
            let resp = signed(&http, &key, Method::POST, &tasks)
                .header("content-type", "application/json")
                .header(GRANT_HEADER, grants.grant(bob_node_id, &body))
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 400, "input with ../");
            let err: serde_json::Value = resp.json().await.unwrap();
            assert_eq!(err["code"], "InvalidTask");
        }
    });
    assert!(!planted.exists(), "no host file created outside the task");
    assert_eq!(
        std::fs::read(&secret_file).unwrap(),
        secret,
        "copy untouched"
    );
    let pwned = c.manta("mget", &["/alice/stor/pwned"]);
    assert!(
        !pwned.status.success(),
        "no task ran as alice: {}",
        describe(&pwned)
    );

    // bob's reducer mcat's alice's private object (what `mjob create -o`
    // does: create, watch, print every output).
    let out = bob.run(
        &c,
        "mjob",
        &["create", "-m", "mcat /alice/stor/secret", "-r", "cat"],
        Some(b"/bob/stor/mine\n"),
    );
    let id = ok(&out).trim().to_owned();
    assert_eq!(
        id.len(),
        36,
        "mjob create prints the job id: {}",
        describe(&out)
    );
    let watched = bob.run(&c, "mjob", &["watch", &id], None);
    let status: serde_json::Value = serde_json::from_slice(&watched.stdout)
        .unwrap_or_else(|_| panic!("mjob watch: {}", describe(&watched)));
    assert_eq!(status["state"], "done", "{status}");
    let errors = ok(&bob.run(&c, "mjob", &["errors", &id], None));
    assert!(
        errors.contains("AuthorizationError") && errors.contains("/alice/stor/secret"),
        "the reducer input is refused with an authorization error: {errors}"
    );
    let outputs = ok(&bob.run(&c, "mjob", &["outputs", &id], None));
    for name in outputs.lines().filter(|l| !l.is_empty()) {
        let got = bob.run(&c, "mget", &[name], None);
        assert!(
            !String::from_utf8_lossy(&got.stdout).contains("ALICE-SECRET"),
            "output {name} holds alice's bytes"
        );
    }
    // Nothing under bob's job directory holds alice's bytes: every object
    // file that does is one of the two copies of her secret.
    let holders = files_containing(&c.data_dir().join("nodes"), b"ALICE-SECRET");
    let objects: Vec<_> = holders
        .iter()
        .filter(|p| p.components().any(|c| c.as_os_str() == "objects"))
        .collect();
    assert_eq!(
        objects.len(),
        2,
        "only alice's two copies hold her bytes: {holders:?}"
    );

    // alice is unaffected.
    assert_eq!(
        ok(&c.manta("mget", &["/alice/stor/secret"])).as_bytes(),
        secret
    );
    ok(&c.manta_stdin("mput", &["/alice/stor/after"], b"still mine\n"));
    assert_eq!(ok(&c.manta("mget", &["/alice/stor/after"])), "still mine\n");

    // A cluster key others may read is refused at start.
    let key_file = c.data_dir().join("cluster.key");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(
        c.restart().is_err(),
        "tidepool up started with a world-readable key"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !c.server_log().contains("group or others") {
        assert!(
            std::time::Instant::now() < deadline,
            "no refusal of the key in the log:\n{}",
            c.server_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
