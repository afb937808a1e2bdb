//! The compute agent's entry checks against a real node server over real
//! HTTP: the cluster credential on every request, the supervisor's task
//! grant over the exact request bytes, and object names validated before
//! anything exists on the host.

use std::sync::Arc;

use cluster_auth::{AUTH_HEADER, ClusterKey, GRANT_HEADER, GrantSigner, RequestSigner};
use compute::agent::{Agent, AgentConfig};
use compute::builtins::TaskRegistry;
use compute::objects::ObjectIo;
use compute::task_client::HttpExecutor;
use jobs::executor::{ExecError, ReducerFeed, TaskExecutor};
use jobs::protocol::{TaskInput, TaskLimits, TaskRequest};
use jobs::supervisor::StoreFeed;
use meta::embedded::EmbeddedKv;
use meta::jobs::JobStore;
use meta::namespace::{Namespace, NodeRecord, NodeState, system_now_ms};
use storage_node::client::{ClientOptions, NodeClient};
use storage_node::server::{NodeConfig, NodeServer};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

struct Node {
    url: String,
    ns: Arc<Namespace>,
    key: ClusterKey,
    work_dir: std::path::PathBuf,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
    stop: CancellationToken,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// One storage node `n1` with its agent, registered in fresh metadata.
async fn node() -> Node {
    let meta_dir = tempfile::tempdir().unwrap();
    let kv = Arc::new(
        EmbeddedKv::open(meta_dir.path().join("meta.redb"))
            .await
            .unwrap(),
    );
    let ns = Arc::new(Namespace::new(kv));
    ns.create_account("bob").await.unwrap();
    let key = ClusterKey::generate();
    let dir = tempfile::tempdir().unwrap();
    let server = NodeServer::bind(NodeConfig {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        node_id: "n1".into(),
        az: "az1".into(),
        cluster_key: key.clone(),
    })
    .await
    .unwrap();
    let url = server.url();
    ns.register_node(&NodeRecord {
        id: "n1".into(),
        url: url.clone(),
        az: "az1".into(),
        capacity_total: 1 << 40,
        capacity_used: 0,
        heartbeat_ms: system_now_ms(),
        pool_health: None,
        state: NodeState::Active,
    })
    .await
    .unwrap();
    let client = NodeClient::new(ClientOptions::default(), &key).unwrap();
    let io = ObjectIo::new(ns.clone(), client, Some("n1".into()), 1);
    let tools = Arc::new(TaskRegistry::default());
    let sandbox = sandbox::Sandbox::new(sandbox::SandboxConfig::default()).unwrap();
    let sandbox = compute::builtins::install(sandbox, tools.clone());
    let work_dir = dir.path().join("tasks");
    let agent = Agent::new(
        AgentConfig {
            node_id: "n1".into(),
            work_dir: work_dir.clone(),
            max_tasks: 1,
            cluster_key: key.clone(),
            // In process: these tests are about what reaches a phase.
            worker: None,
            max_stages: compute::fair::DEFAULT_NODE_STAGES,
            max_task_memory_mb: compute::agent::DEFAULT_MAX_TASK_MEMORY_MB,
            disk_unit: compute::agent::DISK_UNIT,
        },
        server.store(),
        io,
        JobStore::new(ns.kv().clone()),
        sandbox,
        tools,
    );
    let app = storage_node::server::router(server.store(), server.identity().clone())
        .merge(compute::agent::routes(agent));
    let stop = CancellationToken::new();
    tokio::spawn(server.serve_with(app, stop.clone()));
    Node {
        url,
        ns,
        key,
        work_dir,
        _dirs: (meta_dir, dir),
        stop,
    }
}

fn request(owner: &str, object: &str) -> TaskRequest {
    let (job, task) = (Uuid::new_v4(), Uuid::new_v4());
    TaskRequest {
        job_id: job,
        owner: owner.into(),
        operator: false,
        phase: 0,
        task_id: task,
        attempt: 0,
        exec: "cat".into(),
        init: None,
        assets: Vec::new(),
        input: TaskInput::Map {
            object: object.into(),
            object_id: Uuid::new_v4(),
            size: 0,
        },
        env: Vec::new(),
        stdout_object: format!("/{owner}/jobs/{job}/stor/o.0.{task}"),
        stderr_object: format!("/{owner}/jobs/{job}/stor/o.0.err.{task}"),
        next_reducers: 0,
        limits: TaskLimits {
            memory_mb: 64,
            disk_gb: 1,
        },
        memo: None,
    }
}

fn feed(n: &Node) -> Arc<dyn ReducerFeed> {
    Arc::new(StoreFeed::new(JobStore::new(n.ns.kv().clone())))
}

/// A raw POST of `body` to the agent, signed with `key` when given, with
/// `grant` when given.
async fn post(
    n: &Node,
    key: Option<&ClusterKey>,
    grant: Option<http::HeaderValue>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{}{}", n.url, compute::agent::TASKS_PATH))
        .header("content-type", "application/json")
        .body(body);
    if let Some(k) = key {
        let auth = RequestSigner::new(k).header_value("POST", compute::agent::TASKS_PATH);
        req = req.header(AUTH_HEADER, auth);
    }
    if let Some(g) = grant {
        req = req.header(GRANT_HEADER, g);
    }
    req.send().await.unwrap()
}

async fn code(resp: reqwest::Response) -> String {
    let v: serde_json::Value = resp.json().await.unwrap();
    v["code"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn tasks_need_the_credential_and_a_grant_for_exactly_this_request() {
    let n = node().await;
    let genuine = serde_json::to_vec(&request("bob", "/bob/stor/in")).unwrap();
    let grant = GrantSigner::new(&n.key).grant("n1", &genuine);

    // No credential, or another cluster's: 401 before anything else.
    let resp = post(&n, None, Some(grant.clone()), genuine.clone()).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(code(resp).await, "NotAuthenticated");
    let stranger = ClusterKey::generate();
    let resp = post(&n, Some(&stranger), Some(grant.clone()), genuine.clone()).await;
    assert_eq!(resp.status(), 401);

    // Authenticated, but the grant is missing, for another node, or for
    // other bytes (owner changed to alice, input changed).
    let other_node = GrantSigner::new(&n.key).grant("n2", &genuine);
    let stranger_grant = GrantSigner::new(&stranger).grant("n1", &genuine);
    for g in [None, Some(other_node), Some(stranger_grant)] {
        let resp = post(&n, Some(&n.key), g, genuine.clone()).await;
        assert_eq!(resp.status(), 403);
        assert_eq!(code(resp).await, "InvalidGrant");
    }
    let mut as_alice = request("bob", "/bob/stor/in");
    as_alice.owner = "alice".into();
    let mut other_input = request("bob", "/bob/stor/in");
    other_input.input = TaskInput::Map {
        object: "/alice/stor/secret".into(),
        object_id: Uuid::new_v4(),
        size: 0,
    };
    let text = String::from_utf8(genuine.clone()).unwrap();
    let edited = text.replacen("\"owner\":\"bob\"", "\"owner\":\"alice\"", 1);
    assert_ne!(edited, text);
    for body in [
        edited.into_bytes(),
        serde_json::to_vec(&as_alice).unwrap(),
        serde_json::to_vec(&other_input).unwrap(),
    ] {
        let resp = post(&n, Some(&n.key), Some(grant.clone()), body).await;
        assert_eq!(resp.status(), 403);
        assert_eq!(code(resp).await, "InvalidGrant");
    }
    // Nothing ran: no task directory was ever made.
    assert!(!n.work_dir.exists(), "a refused task created files");
}

#[tokio::test]
async fn names_are_checked_before_anything_is_created() {
    let n = node().await;
    let exec = HttpExecutor::new(n.ns.clone(), &n.key).unwrap();
    let planted_dir = tempfile::tempdir().unwrap();
    let planted = planted_dir.path().join("planted");
    let climb = format!(
        "/bob/stor/{}{}",
        "../".repeat(40),
        planted.to_str().unwrap().trim_start_matches('/')
    );
    let mut bad = vec![
        // Escapes the task directory (the empty-object path used to create
        // the file there).
        request("bob", &climb),
        // Another account's private object.
        request("bob", "/alice/stor/secret"),
        // Not a Manta object path.
        request("bob", "/bob"),
        request("bob", "relative/name"),
    ];
    let mut stdout_elsewhere = request("bob", "/bob/stor/in");
    stdout_elsewhere.stdout_object = "/alice/stor/overwritten".into();
    bad.push(stdout_elsewhere);
    let mut stderr_climb = request("bob", "/bob/stor/in");
    stderr_climb.stderr_object = "/bob/stor/../../alice/stor/x".into();
    bad.push(stderr_climb);
    let mut bad_owner = request("bob", "/bob/stor/in");
    bad_owner.owner = "../bob".into();
    bad.push(bad_owner);
    for req in bad {
        let what = format!("{:?} as {}", req.input, req.owner);
        // Sent by the supervisor's own client: signed and granted, so it is
        // the name check (400) that refuses it, not authentication.
        let err = exec.execute("n1", req, feed(&n)).await.unwrap_err();
        let ExecError::NodeUnavailable(msg) = &err else {
            panic!("{what}: {err}");
        };
        assert!(
            msg.contains("400") && msg.contains("InvalidTask"),
            "{what}: {msg}"
        );
    }
    assert!(!planted.exists(), "a file was planted outside the task");
    assert!(!n.work_dir.exists(), "a refused task created files");
}

#[tokio::test]
async fn an_executor_with_another_key_is_refused() {
    let n = node().await;
    let exec = HttpExecutor::new(n.ns.clone(), &ClusterKey::generate()).unwrap();
    let err = exec
        .execute("n1", request("bob", "/bob/stor/in"), feed(&n))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    assert!(!n.work_dir.exists());
}
