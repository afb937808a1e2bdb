//! The jobs API (jobs spec §2, E1-E11): create a job, add inputs (streamed),
//! end input, cancel, the status record, the live lists and the live job
//! listing. Archived files (E12) and output objects (E13) are ordinary
//! objects and go through the object handlers.
//!
//! Guarantees: a job is visible only under its owner's login (anything
//! else is `404`, as muskie answered); input bodies are read as a stream and
//! committed in batches, never held whole; live lists are streamed page by
//! page and complete (no 100-record cap, spec §8.2); JSON bodies carry a
//! matching `Content-MD5`.

use super::Ctx;
use crate::endpoint::{JobOp, LiveList};
use crate::error::{ApiError, json_response};
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::{HeaderValue, StatusCode, header};
use jobs::manifest::{MAX_MANIFEST_BYTES, ManifestError, parse_manifest};
use jobs::status::{error_json_live, iso_time, status_json};
use meta::jobs::{JobRecord, JobState, JobStore, JobStoreError, NewJob};
use meta::path::MantaPath;
use uuid::Uuid;

/// Inputs committed per transaction while reading an input body (the CLI
/// sends at most 1000 per request).
const INPUT_BATCH: usize = 1000;
/// Longest accepted input line (an object name is far shorter).
const MAX_INPUT_LINE: usize = 64 * 1024;
/// Rows read per page while streaming a live list.
const PAGE: usize = 512;
/// Jobs returned by the live job listing (E6).
const LIVE_LISTING_MAX: usize = 1000;

pub(crate) async fn handle(
    cx: &Ctx,
    path: &MantaPath,
    op: JobOp,
    body: Body,
) -> Result<Response, ApiError> {
    let store = &cx.gw.inner.jobs;
    let login = path.login();
    match op {
        JobOp::Create => create(cx, login, body).await,
        JobOp::ListLive { state, name } => list_live(store, login, state, name).await,
        JobOp::AddInputs { id, end } => {
            owned_job(store, path, &id).await?;
            add_inputs(store, &id, body, end).await?;
            Ok(status_only(StatusCode::NO_CONTENT))
        }
        JobOp::EndInput { id } => {
            owned_job(store, path, &id).await?;
            store.end_input(&id).await?;
            Ok(status_only(StatusCode::ACCEPTED))
        }
        JobOp::Cancel { id } => {
            owned_job(store, path, &id).await?;
            store.cancel(&id).await?;
            Ok(status_only(StatusCode::ACCEPTED))
        }
        JobOp::Status { id } => {
            let job = owned_job(store, path, &id).await?;
            Ok(json_response(
                StatusCode::OK,
                status_json(&job).into_bytes(),
            ))
        }
        JobOp::Live { id, list } => {
            let job = owned_job(store, path, &id).await?;
            Ok(live_list(store.clone(), &job, list))
        }
        JobOp::Events { id } => {
            let job = owned_job(store, path, &id).await?;
            crate::console::events::job_events(store.clone(), job)
        }
        JobOp::Unknown => Err(ApiError::JobNotFound(path.to_string())),
    }
}

fn status_only(status: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    r
}

/// The job, if it exists and belongs to the login in the path; otherwise
/// the 404 muskie gave for any job path it could not serve.
async fn owned_job(store: &JobStore, path: &MantaPath, id: &Uuid) -> Result<JobRecord, ApiError> {
    match store.get_job(id).await? {
        Some(j) if j.owner == path.login() => Ok(j),
        _ => Err(ApiError::JobNotFound(path.to_string())),
    }
}

/// E1: validate the manifest, create the job record and its directories.
async fn create(cx: &Ctx, login: &str, body: Body) -> Result<Response, ApiError> {
    let bytes = axum::body::to_bytes(body, MAX_MANIFEST_BYTES + 1)
        .await
        .map_err(|_| ApiError::InvalidJob(jobs::manifest::ManifestError::TooLarge.to_string()))?;
    // Validation parses every phase script (on shell-syntax's own thread);
    // waiting for that is blocking work, kept off this async worker.
    let m = tokio::task::spawn_blocking(move || parse_manifest(&bytes))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| match e {
            ManifestError::Script { .. } => ApiError::InvalidPhaseScript(e.to_string()),
            e => ApiError::InvalidJob(e.to_string()),
        })?;
    // Manta's job kept its creator's principal, operator flag included; an
    // operator's job in another account's tree does not get it (that
    // account would then own a job reading everyone's objects).
    let operator = cx.caller.as_ref().is_some_and(|c| c.login == login)
        && crate::access::is_operator(&cx.ns, cx.caller.as_ref()).await?;
    let job = cx
        .gw
        .inner
        .jobs
        .create_job(&NewJob {
            owner: login.to_owned(),
            name: m.name,
            phases_json: m.phases_json,
            phase_count: u32::try_from(m.phases.len()).unwrap_or(u32::MAX),
            transient: m.transient,
            keep_intermediates: m.keep_intermediates,
            operator,
            // A subuser's job reads only what its active roles allow.
            roles: cx.roles.as_ref().map(|r| r.job_roles()),
        })
        .await?;
    // The job's directory and its `stor/` (where outputs go), as Manta
    // created them; `live/` is served by this API, not stored.
    // A subuser's job directories are tagged with its active roles, as
    // muskie's mkdirForJob did, so that the roles reach the job's status.
    let dir = format!("/{login}/jobs/{}", job.id);
    let mut headers = meta::namespace::Headers::new();
    if let Some(r) = cx.roles.as_ref().filter(|r| !r.active_names().is_empty()) {
        headers.insert("role-tag".to_owned(), r.active_names().join(", "));
    }
    for d in [dir.clone(), format!("{dir}/stor")] {
        let p = MantaPath::parse(&d).map_err(ApiError::internal)?;
        cx.ns.put_directory(&p, &headers).await?;
    }
    let mut r = status_only(StatusCode::CREATED);
    if let Ok(v) = HeaderValue::from_str(&dir) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

/// One input line: a trailing CR stripped, empty lines skipped, otherwise
/// kept verbatim (E2).
fn push_line(batch: &mut Vec<String>, line: &[u8]) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if !line.is_empty() {
        batch.push(String::from_utf8_lossy(line).into_owned());
    }
}

/// E2: stream the body's names into the job in batches.
async fn add_inputs(store: &JobStore, id: &Uuid, body: Body, end: bool) -> Result<(), ApiError> {
    let mut stream = body.into_data_stream();
    let mut buf: Vec<u8> = Vec::new();
    let mut batch: Vec<String> = Vec::new();
    let mut committed = false;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("reading the input list: {e}")))?;
        buf.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(pos) = buf[start..].iter().position(|&b| b == b'\n') {
            push_line(&mut batch, &buf[start..start + pos]);
            start += pos + 1;
        }
        buf.drain(..start);
        if buf.len() > MAX_INPUT_LINE {
            return Err(ApiError::BadRequest(format!(
                "input line longer than {MAX_INPUT_LINE} bytes"
            )));
        }
        if batch.len() >= INPUT_BATCH {
            store.add_inputs(id, &batch, false).await?;
            batch.clear();
            committed = true;
        }
    }
    push_line(&mut batch, &buf);
    if !batch.is_empty() || !committed || end {
        // Also for an empty body: the job's state is still checked (409).
        store.add_inputs(id, &batch, end).await?;
    }
    Ok(())
}

/// E6: the owner's jobs matching the filters, oldest first, at most 1000.
async fn list_live(
    store: &JobStore,
    login: &str,
    state: Option<String>,
    name: Option<String>,
) -> Result<Response, ApiError> {
    let want = match state.as_deref() {
        Some("running") => Some(JobState::Running),
        Some("queued") => Some(JobState::Queued),
        Some("done") => Some(JobState::Done),
        _ => None,
    };
    let mut found: Vec<(u64, Uuid)> = Vec::new();
    let mut after = None;
    loop {
        let page = store.owner_jobs(login, after, PAGE).await?;
        for id in &page {
            let Some(j) = store.get_job(id).await? else {
                continue;
            };
            if want.is_some_and(|s| s != j.state) || name.as_ref().is_some_and(|n| *n != j.name) {
                continue;
            }
            found.push((j.time_created_ms, j.id));
        }
        // Keep only the oldest matches so memory stays bounded.
        found.sort();
        found.truncate(LIVE_LISTING_MAX);
        match page.last() {
            Some(last) if page.len() == PAGE => after = Some(*last),
            _ => break,
        }
    }
    let mut out = String::new();
    for (t, id) in found {
        out.push_str(&format!(
            "{{\"name\":\"{id}\",\"type\":\"directory\",\"mtime\":\"{}\"}}\n",
            iso_time(t)
        ));
    }
    let mut r = Response::new(Body::from(out));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-json-stream; type=job"),
    );
    Ok(r)
}

/// Where a paged list stands.
enum Cursor {
    Seq(u64),
    Key(Option<Vec<u8>>),
    Done,
}

type PageResult = Result<(String, Cursor), JobStoreError>;

/// One page of a live list, rendered, and the cursor after it.
async fn page(store: &JobStore, job: &JobRecord, list: LiveList, cur: Cursor) -> PageResult {
    let more = |n: usize| n == PAGE;
    let mut out = String::new();
    match (list, cur) {
        (_, Cursor::Done) => Ok((out, Cursor::Done)),
        (LiveList::In, Cursor::Seq(from)) => {
            let rows = store.inputs(&job.id, from, PAGE).await?;
            for (_, name) in &rows {
                out.push_str(name);
                out.push('\n');
            }
            let next = match rows.last() {
                Some((s, _)) if more(rows.len()) => Cursor::Seq(s + 1),
                _ => Cursor::Done,
            };
            Ok((out, next))
        }
        (LiveList::Out, Cursor::Key(after)) => {
            let last = job.phase_count.saturating_sub(1);
            let rows = store.outputs(&job.id, last, after.as_deref(), PAGE).await?;
            for (_, o) in &rows {
                out.push_str(&o.name);
                out.push('\n');
            }
            let next = match rows.last() {
                Some((k, _)) if more(rows.len()) => Cursor::Key(Some(k.clone())),
                _ => Cursor::Done,
            };
            Ok((out, next))
        }
        (LiveList::Err | LiveList::Fail, Cursor::Seq(from)) => {
            let rows = store.errors(&job.id, from, PAGE).await?;
            for (_, e) in &rows {
                if list == LiveList::Err {
                    out.push_str(&error_json_live(e));
                    out.push('\n');
                } else if let Some(p0) = &e.p0input {
                    out.push_str(p0);
                    out.push('\n');
                }
            }
            let next = match rows.last() {
                Some((s, _)) if more(rows.len()) => Cursor::Seq(s + 1),
                _ => Cursor::Done,
            };
            Ok((out, next))
        }
        // A cursor of the wrong kind cannot be built below.
        (_, _) => Ok((out, Cursor::Done)),
    }
}

/// E8-E11: the whole list, streamed page by page.
fn live_list(store: JobStore, job: &JobRecord, list: LiveList) -> Response {
    let start = match list {
        LiveList::Out => Cursor::Key(None),
        _ => Cursor::Seq(0),
    };
    let job = job.clone();
    let stream = futures::stream::try_unfold(start, move |cur| {
        let (store, job) = (store.clone(), job.clone());
        async move {
            if matches!(cur, Cursor::Done) {
                return Ok::<_, JobStoreError>(None);
            }
            let (text, next) = page(&store, &job, list, cur).await?;
            Ok(Some((Bytes::from(text), next)))
        }
    });
    let content_type = match list {
        LiveList::Err => "application/x-json-stream; type=job-error",
        _ => "text/plain",
    };
    let mut r = Response::new(Body::from_stream(skip_empty(stream)));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Drops empty chunks (an empty page) so the body ends cleanly.
fn skip_empty(
    s: impl Stream<Item = Result<Bytes, JobStoreError>> + Send + 'static,
) -> impl Stream<Item = Result<Bytes, JobStoreError>> + Send + 'static {
    s.filter(|r| futures::future::ready(!matches!(r, Ok(b) if b.is_empty())))
}
