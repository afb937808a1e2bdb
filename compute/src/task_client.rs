//! The supervisor's side of the task protocol over HTTP: a
//! [`TaskExecutor`] that sends each attempt to the chosen node's agent
//! (`POST /agent/tasks`) and waits for its [`TaskResponse`], plus the
//! [`ArchiveSink`] that writes a finished job's archive files as objects.
//!
//! Contract (that of [`TaskExecutor`]): an agent's `200` is the attempt's
//! outcome; anything else — the node unknown, unreachable, dying mid-task,
//! or answering an error — is [`ExecError::NodeUnavailable`], which the
//! supervisor retries on another node. Reducer inputs are not sent over
//! this channel: agents read them from the job tables themselves.
//!
//! Every attempt is sent signed twice over with the cluster credential: the
//! request itself ([`cluster_auth::request`], as every internal request)
//! and a task grant over the exact body bytes for the chosen node
//! ([`cluster_auth::grant`]), which the agent checks before it reads the
//! request.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use cluster_auth::{ClusterKey, GrantSigner, RequestSigner};
use jobs::archive::{ArchiveError, ArchiveSink, ArchiveWriter};
use jobs::executor::{ExecError, ReducerFeed, TaskExecutor};
use jobs::protocol::{TaskRequest, TaskResponse};
use meta::namespace::{Headers, Namespace};
use tokio::sync::mpsc;

use crate::agent::TASKS_PATH;
use crate::objects::ObjectIo;

/// Sends task attempts to node agents over HTTP.
#[derive(Debug, Clone)]
pub struct HttpExecutor {
    ns: Arc<Namespace>,
    http: reqwest::Client,
    requests: RequestSigner,
    grants: GrantSigner,
}

impl HttpExecutor {
    /// An executor finding node URLs in `ns`, signing requests and task
    /// grants with `cluster_key`.
    pub fn new(ns: Arc<Namespace>, cluster_key: &ClusterKey) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(4))
            .tcp_keepalive(Duration::from_secs(15))
            // Tasks run as long as they run; the supervisor's task timeout
            // bounds them.
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?;
        Ok(HttpExecutor {
            ns,
            http,
            requests: RequestSigner::new(cluster_key),
            grants: GrantSigner::new(cluster_key),
        })
    }
}

#[async_trait]
impl TaskExecutor for HttpExecutor {
    async fn execute(
        &self,
        node: &str,
        req: TaskRequest,
        _feed: Arc<dyn ReducerFeed>,
    ) -> Result<TaskResponse, ExecError> {
        let unavailable = |why: String| ExecError::NodeUnavailable(format!("{node}: {why}"));
        let rec = self
            .ns
            .get_node(node)
            .await
            .map_err(|e| unavailable(e.to_string()))?
            .ok_or_else(|| unavailable("not registered".into()))?;
        let url = format!("{}{TASKS_PATH}", rec.url.trim_end_matches('/'));
        let body = serde_json::to_vec(&req).map_err(|e| unavailable(e.to_string()))?;
        let grant = self.grants.grant(node, &body);
        let mut http_req = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(cluster_auth::GRANT_HEADER, grant)
            .body(body)
            .build()
            .map_err(|e| unavailable(e.to_string()))?;
        let path_and_query = match http_req.url().query() {
            Some(q) => format!("{}?{q}", http_req.url().path()),
            None => http_req.url().path().to_owned(),
        };
        let auth = self.requests.header_value("POST", &path_and_query);
        http_req
            .headers_mut()
            .insert(cluster_auth::AUTH_HEADER, auth);
        let resp = self
            .http
            .execute(http_req)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            return Err(unavailable(format!("agent answered {status}: {body}")));
        }
        resp.json::<TaskResponse>()
            .await
            .map_err(|e| unavailable(e.to_string()))
    }
}

/// Writes archive files (`job.json`, `in.txt`, ...) as objects.
#[derive(Debug, Clone)]
pub struct ObjectArchiveSink {
    io: ObjectIo,
}

impl ObjectArchiveSink {
    /// A sink writing through `io`.
    pub fn new(io: ObjectIo) -> Self {
        ObjectArchiveSink { io }
    }
}

struct StreamWriter {
    tx: Option<mpsc::Sender<Result<Bytes, std::io::Error>>>,
    done: tokio::task::JoinHandle<Result<u64, String>>,
}

#[async_trait]
impl ArchiveWriter for StreamWriter {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), ArchiveError> {
        let Some(tx) = &self.tx else {
            return Err(ArchiveError("writer closed".into()));
        };
        tx.send(Ok(Bytes::copy_from_slice(bytes)))
            .await
            .map_err(|_| ArchiveError("object upload ended early".into()))
    }

    async fn finish(mut self: Box<Self>) -> Result<(), ArchiveError> {
        drop(self.tx.take());
        match (&mut self.done).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(ArchiveError(e)),
            Err(e) => Err(ArchiveError(e.to_string())),
        }
    }
}

#[async_trait]
impl ArchiveSink for ObjectArchiveSink {
    async fn create(
        &self,
        path: &str,
        content_type: &str,
    ) -> Result<Box<dyn ArchiveWriter>, ArchiveError> {
        let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(16);
        let stream =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
        let io = self.io.clone();
        let (path, ct) = (path.to_owned(), content_type.to_owned());
        let mut headers = Headers::default();
        // Manta wrote archive files readable cross-origin.
        headers.insert("access-control-allow-origin".into(), "*".into());
        let done = tokio::spawn(async move {
            io.put_stream(&path, &ct, headers, stream, false)
                .await
                .map_err(|e| e.to_string())
        });
        Ok(Box::new(StreamWriter { tx: Some(tx), done }))
    }
}
