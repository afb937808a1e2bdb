//! Multipart uploads (spec §10): create, locate (301), upload parts, state,
//! commit, abort.
//!
//! Layout: an upload is the directory `/:login/uploads/<first hex digit of
//! id>/<id>`; its parts are ordinary objects `<dir>/<n>` (so `mmpu list` and
//! `mmpu parts` are plain listings); its record (target, create headers,
//! copies, state) is kept in that directory's stored headers under the
//! internal key [`RECORD_HEADER`], which GET/HEAD never return.
//!
//! Guarantees: parts are checked before `100 Continue` like any PUT (upload
//! exists and is open, part number valid); a commit streams the parts, in
//! order, to new copies and records the target with one meta commit, only
//! after every check (etags, sizes, promised length and MD5) passed.
//! Known limit: state changes are last-writer-wins on the record (a commit
//! racing an abort is not serialized by meta).

use super::{Ctx, objects};
use crate::blobs;
use crate::endpoint::{ObjectPut, UploadRef, upload_prefix};
use crate::error::{ApiError, json_response};
use crate::format::b64;
use crate::path::parse_path;
use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use md5::{Digest, Md5};
use meta::namespace::{Conditions, Entry, Headers, NewObject, ObjectInfo};
use meta::path::{MantaPath, TopDir};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Stored-header key of the upload record (never returned to clients).
pub const RECORD_HEADER: &str = "tidepool-mpu";
/// Largest JSON request body accepted.
const MAX_JSON_BODY: usize = 1 << 20;
/// Smallest part size except for the last part.
const MIN_PART_SIZE: u64 = 5_242_880;
const MAX_PARTS: usize = 10_000;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum State {
    Created,
    Committed,
    Aborted,
}

/// The upload record.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    id: String,
    target: String,
    /// Create headers as given (lowercased keys, JSON values).
    headers: Map<String, Value>,
    num_copies: u32,
    creation_ms: u64,
    state: State,
    #[serde(default)]
    committed_parts: Vec<String>,
    #[serde(default)]
    parts_md5_summary: Option<String>,
}

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::MultipartUploadInvalidArgument(msg.into())
}

async fn read_json(body: Body, h: &HeaderMap) -> Result<Value, ApiError> {
    let bytes = axum::body::to_bytes(body, MAX_JSON_BODY)
        .await
        .map_err(|_| invalid("request body too large or unreadable"))?;
    if let Some(expected) = crate::headers::parse_content_md5(h)?
        && Md5::digest(&bytes)[..] != expected[..]
    {
        return Err(ApiError::BadDigest);
    }
    if bytes.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_slice(&bytes).map_err(|e| invalid(format!("invalid JSON body: {e}")))
}

fn only_account(cx: &Ctx, path: &MantaPath) -> Result<(), ApiError> {
    match &cx.caller {
        Some(c) if c.subuser.is_none() => Ok(()),
        Some(c) => Err(ApiError::Auth {
            status: StatusCode::FORBIDDEN,
            code: "AuthorizationFailed".to_owned(),
            message: format!(
                "{}/{} is not allowed to access {path}",
                c.login,
                c.subuser.as_deref().unwrap_or("")
            ),
        }),
        None => Err(ApiError::internal(
            "anonymous MPU request passed authorization",
        )),
    }
}

/// `Location` / JSON form of a path: each segment percent-encoded.
fn encoded(path: &MantaPath) -> String {
    let mut s = format!("/{}", path.login());
    for seg in path.segments() {
        s.push('/');
        s.push_str(
            &percent_encoding::utf8_percent_encode(seg, crate::format::URI_COMPONENT).to_string(),
        );
    }
    s
}

/// Create headers the upload keeps: the ones the target object will store
/// (`m-*`, CORS, `role-tag`, ...) validated and capped by the same function
/// as a PUT's ([`crate::headers::stored_headers`]), plus the few the upload
/// itself uses. Anything else is dropped, so a record cannot grow past what
/// a PUT could store. A name or value that could not be an HTTP header is
/// refused: it could never be returned on a GET.
fn checked_headers(given: Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    const CONTROL: [&str; 5] = [
        "content-length",
        "content-md5",
        "content-type",
        "durability-level",
        "x-durability-level",
    ];
    let mut as_http = HeaderMap::new();
    let mut kept = Map::new();
    for (k, v) in given {
        let Some(text) = header_string(&v) else {
            // Checked again below where a control header's type matters;
            // a non-scalar stored header is not a header at all.
            if CONTROL.contains(&k.as_str()) {
                kept.insert(k, v);
                continue;
            }
            return Err(invalid(format!(
                "cannot create upload: header {k} must be a string"
            )));
        };
        let name = http::HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
            invalid(format!(
                "cannot create upload: {k:?} is not a valid header name"
            ))
        })?;
        let value = HeaderValue::from_str(&text).map_err(|_| {
            invalid(format!(
                "cannot create upload: the value of {k} is not a valid header value"
            ))
        })?;
        as_http.append(name, value);
        if CONTROL.contains(&k.as_str()) {
            kept.insert(k, v);
        }
    }
    for (k, v) in crate::headers::stored_headers(&as_http)? {
        kept.insert(k, Value::String(v));
    }
    Ok(kept)
}

pub async fn create(
    cx: &Ctx,
    path: &MantaPath,
    h: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    only_account(cx, path)?;
    let v = read_json(body, h).await?;
    let object_path = v
        .get("objectPath")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("cannot create upload: objectPath is required"))?;
    // Only its syntax is checked now: whether the target may be written
    // (a root, a missing parent, another account's tree) is decided at
    // commit, as muskie did.
    let target = parse_path(object_path)?;
    let mut headers = Map::new();
    if let Some(hv) = v.get("headers") {
        let obj = hv
            .as_object()
            .ok_or_else(|| invalid("cannot create upload: headers must be an object"))?;
        for (k, val) in obj {
            headers.insert(k.to_ascii_lowercase(), val.clone());
        }
    }
    for forbidden in [
        "if-match",
        "if-none-match",
        "if-modified-since",
        "if-unmodified-since",
    ] {
        if headers.contains_key(forbidden) {
            return Err(invalid(format!(
                "cannot create upload: {forbidden} is not allowed"
            )));
        }
    }
    let headers = checked_headers(headers)?;
    if let Some(cl) = headers.get("content-length")
        && cl.as_u64().is_none()
    {
        return Err(invalid(
            "cannot create upload: content-length must be a number >= 0",
        ));
    }
    if let Some(md5) = headers.get("content-md5")
        && md5.as_str().is_none_or(str::is_empty)
    {
        return Err(invalid(
            "cannot create upload: content-md5 must be a string",
        ));
    }
    let limits = cx.gw.inner.limits;
    let num_copies = match headers
        .get("durability-level")
        .or_else(|| headers.get("x-durability-level"))
    {
        None => limits.default_durability,
        Some(d) => match d
            .as_u64()
            .or_else(|| d.as_str().and_then(|s| s.parse().ok()))
        {
            Some(n) if (1..=u64::from(limits.max_durability)).contains(&n) => n as u32,
            _ => {
                return Err(ApiError::InvalidDurabilityLevel {
                    max: limits.max_durability,
                });
            }
        },
    };
    let id = uuid::Uuid::new_v4();
    let prefix_dir = MantaPath::from_parts(
        path.login(),
        Some(TopDir::Uploads),
        vec![upload_prefix(&id)],
    )
    .map_err(|e| crate::path::path_error(e, "upload"))?;
    let dir = prefix_dir
        .join(&id.to_string())
        .map_err(|e| crate::path::path_error(e, "upload"))?;
    let record = Record {
        id: id.to_string(),
        target: target.to_string(),
        headers,
        num_copies,
        creation_ms: meta::namespace::system_now_ms(),
        state: State::Created,
        committed_parts: Vec::new(),
        parts_md5_summary: None,
    };
    cx.ns.put_directory(&prefix_dir, &Headers::new()).await?;
    save(cx, &dir, &record).await?;
    let body = serde_json::json!({ "id": id.to_string(), "partsDirectory": dir.to_string() });
    let mut resp = json_response(
        StatusCode::CREATED,
        serde_json::to_vec(&body).unwrap_or_default(),
    );
    if let Ok(v) = HeaderValue::from_str(&encoded(&dir)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

async fn save(cx: &Ctx, dir: &MantaPath, record: &Record) -> Result<(), ApiError> {
    let mut h = Headers::new();
    h.insert(
        RECORD_HEADER.to_owned(),
        serde_json::to_string(record).map_err(ApiError::internal)?,
    );
    cx.ns.put_directory(dir, &h).await?;
    Ok(())
}

async fn load(cx: &Ctx, upload: &UploadRef) -> Result<Record, ApiError> {
    let not_found = || ApiError::ResourceNotFound(upload.dir.to_string());
    let entry = cx.ns.get(&upload.dir).await?.ok_or_else(not_found)?;
    let raw = entry.headers.get(RECORD_HEADER).ok_or_else(not_found)?;
    serde_json::from_str(raw).map_err(ApiError::internal)
}

pub fn redirect(location: &str) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::MOVED_PERMANENTLY;
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// `HEAD /:login/uploads/<id>` must 404 for unknown ids (the CLI then says
/// MPU is unsupported for *any* 404, so only real unknown ids get one).
pub async fn locate(cx: &Ctx, path: &MantaPath, location: &str) -> Result<Response, ApiError> {
    only_account(cx, path)?;
    let dir = parse_path(location)?;
    let upload_dir = dir
        .rest()
        .get(..2)
        .ok_or_else(|| ApiError::internal("upload location without an upload directory"))?;
    let dir = MantaPath::from_parts(dir.login(), dir.top(), upload_dir.to_vec())
        .map_err(|e| crate::path::path_error(e, location))?;
    match cx.ns.get(&dir).await? {
        Some(e) if e.headers.contains_key(RECORD_HEADER) => Ok(redirect(location)),
        _ => Err(ApiError::ResourceNotFound(path.to_string())),
    }
}

pub async fn state(cx: &Ctx, path: &MantaPath, upload: &UploadRef) -> Result<Response, ApiError> {
    only_account(cx, path)?;
    let r = load(cx, upload).await?;
    let mut v = serde_json::json!({
        "id": r.id,
        "targetObject": r.target,
        "headers": r.headers,
        "numCopies": r.num_copies,
        "creationTimeMs": r.creation_ms,
    });
    let m = v
        .as_object_mut()
        .ok_or_else(|| ApiError::internal("json"))?;
    match r.state {
        State::Created => {
            m.insert("state".into(), "created".into());
            m.insert("partsDirectory".into(), upload.dir.to_string().into());
        }
        State::Committed => {
            m.insert("state".into(), "done".into());
            m.insert("result".into(), "committed".into());
            if let Some(s) = &r.parts_md5_summary {
                m.insert("partsMD5Summary".into(), s.clone().into());
            }
        }
        State::Aborted => {
            m.insert("state".into(), "done".into());
            m.insert("result".into(), "aborted".into());
        }
    }
    Ok(json_response(
        StatusCode::OK,
        serde_json::to_vec(&v).unwrap_or_default(),
    ))
}

pub async fn abort(cx: &Ctx, path: &MantaPath, upload: &UploadRef) -> Result<Response, ApiError> {
    only_account(cx, path)?;
    let mut r = load(cx, upload).await?;
    match r.state {
        State::Committed => Err(ApiError::InvalidMultipartUploadState(format!(
            "upload {}: already committed",
            r.id
        ))),
        State::Aborted => Ok(super::no_content()),
        State::Created => {
            r.state = State::Aborted;
            save(cx, &upload.dir, &r).await?;
            Ok(super::no_content())
        }
    }
}

pub async fn put_part(
    cx: &Ctx,
    path: &MantaPath,
    upload: &UploadRef,
    put: &ObjectPut,
    body: Body,
) -> Result<Response, ApiError> {
    only_account(cx, path)?;
    let r = load(cx, upload).await?;
    if r.state != State::Created {
        return Err(ApiError::InvalidMultipartUploadState(format!(
            "upload {}: already finalized",
            r.id
        )));
    }
    let mut put = put.clone();
    put.durability = r.num_copies;
    objects::put_object(cx, path, &put, body).await
}

fn header_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub async fn commit(
    cx: &Ctx,
    path: &MantaPath,
    upload: &UploadRef,
    h: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    only_account(cx, path)?;
    let mut r = load(cx, upload).await?;
    let target = parse_path(&r.target)?;
    // 1. Target checks, as for a PUT: who may write it first, so nothing
    // about another account's tree is looked up.
    crate::access::authorize(&cx.ns, cx.caller.as_ref(), &target, false).await?;
    let Some(parent) = target.parent().filter(|_| !target.is_account_root()) else {
        return Err(ApiError::OperationNotAllowedOnDirectory(target.to_string()));
    };
    match cx.ns.get(&parent).await? {
        None => return Err(ApiError::DirectoryDoesNotExist(parent.to_string())),
        Some(p) if !p.is_directory() => {
            return Err(ApiError::ParentNotDirectory(parent.to_string()));
        }
        Some(_) => {}
    }
    if cx
        .ns
        .get(&target)
        .await?
        .as_ref()
        .is_some_and(Entry::is_directory)
    {
        return Err(ApiError::OperationNotAllowedOnDirectory(target.to_string()));
    }
    // 2. Body.
    let v = read_json(body, h).await?;
    let parts: Vec<String> = match v.get("parts") {
        None => return Err(invalid("parts is required")),
        Some(Value::Array(a)) if a.len() <= MAX_PARTS => a
            .iter()
            .map(|p| p.as_str().filter(|s| !s.is_empty()).map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| invalid("parts must be non-empty strings"))?,
        Some(_) => return Err(invalid("parts must be an array of at most 10000 etags")),
    };
    // 3. State.
    match r.state {
        State::Aborted => {
            return Err(ApiError::InvalidMultipartUploadState(format!(
                "upload {}: already aborted",
                r.id
            )));
        }
        State::Committed if r.committed_parts == parts => {
            return committed_answer(cx, &target).await;
        }
        State::Committed => {
            return Err(ApiError::InvalidMultipartUploadState(format!(
                "upload {}: already committed",
                r.id
            )));
        }
        State::Created => {}
    }
    // 4. Each part.
    let mut infos: Vec<ObjectInfo> = Vec::with_capacity(parts.len());
    for (i, etag) in parts.iter().enumerate() {
        let part_path = upload
            .dir
            .join(&i.to_string())
            .map_err(|e| crate::path::path_error(e, "part"))?;
        let o = cx
            .ns
            .get(&part_path)
            .await?
            .and_then(|e| e.object().cloned())
            .ok_or_else(|| invalid(format!("[part {i}] part does not exist")))?;
        if o.object_id.to_string() != *etag {
            return Err(invalid(format!("[part {i}] invalid etag \"{etag}\"")));
        }
        if i + 1 < parts.len() && o.size < MIN_PART_SIZE {
            return Err(invalid(format!(
                "[part {i}] part is too small (size {})",
                o.size
            )));
        }
        infos.push(o);
    }
    // 5. Promised length.
    let total: u64 = infos.iter().map(|o| o.size).sum();
    if let Some(cl) = r.headers.get("content-length").and_then(Value::as_u64)
        && cl != total
    {
        return Err(invalid(format!(
            "expected content-length {cl}, but object was {total}"
        )));
    }
    // 6. Stream the parts, in order, to fresh copies.
    let object_id = uuid::Uuid::new_v4();
    let stored = blobs::concat(&cx.gw, infos, r.num_copies, object_id).await?;
    if let Some(md5) = r.headers.get("content-md5").and_then(Value::as_str)
        && md5 != stored.md5
    {
        cx.gw.delete_orphans(object_id, &stored.copies);
        return Err(invalid(format!(
            "expected content-md5 \"{md5}\", but object has md5 \"{}\"",
            stored.md5
        )));
    }
    // 7. One commit for the target, then the record.
    let mut headers = Headers::new();
    let mut content_type = crate::headers::DEFAULT_CONTENT_TYPE.to_owned();
    for (k, v) in &r.headers {
        let Some(v) = header_string(v) else { continue };
        if k == "content-type" {
            content_type = crate::mime::normalize(&v);
        } else if k.starts_with("m-")
            || k == "role-tag"
            || k == "cache-control"
            || k == "content-disposition"
            || k == "surrogate-key"
            || k.starts_with("access-control-")
        {
            headers.insert(k.clone(), v);
        }
    }
    let new = NewObject {
        object_id,
        size: stored.size,
        content_md5: stored.md5.clone(),
        blake3: stored.blake3.clone(),
        content_type,
        headers,
        copies: stored.copies.clone(),
        durability: u8::try_from(r.num_copies).unwrap_or(u8::MAX),
    };
    cx.gw
        .commit_object(&target, new, &Conditions::default())
        .await?;
    r.parts_md5_summary = Some(b64(&Md5::digest(parts.concat().as_bytes())));
    r.committed_parts = parts;
    r.state = State::Committed;
    save(cx, &upload.dir, &r).await?;
    committed_answer(cx, &target).await
}

async fn committed_answer(cx: &Ctx, target: &MantaPath) -> Result<Response, ApiError> {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::CREATED;
    if let Ok(v) = HeaderValue::from_str(&encoded(target)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    if let Some(o) = cx.ns.get(target).await?.as_ref().and_then(Entry::object)
        && let Ok(v) = HeaderValue::from_str(&o.content_md5)
    {
        resp.headers_mut().insert("computed-md5", v);
    }
    Ok(resp)
}
