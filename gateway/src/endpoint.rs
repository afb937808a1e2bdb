//! Turning a request head (method, target, headers) into a typed
//! [`Endpoint`] — "parse, then handle". Handlers never look at raw strings.
//!
//! Guarantees: routing follows the spec's order — `?metadata=true` is
//! recognised before any content-type routing (§6.7, trap 11), then
//! `type=directory` / `type=link` (§5.1, §7), then object writes; root
//! directories get their special cases (§3); every header a handler uses
//! is validated here. Nothing reads the body.

use crate::disposition::InvalidDisposition;
use crate::error::ApiError;
use crate::headers::{
    self, ByteRange, DispositionRule, PutKind, RangeRefusal, content_length, has_durability,
    max_content_length, parse_content_md5, parse_durability, parse_range,
};
use crate::path::{parse_location, parse_path};
use crate::query::Query;
use http::{HeaderMap, Method};
use meta::namespace::{Conditions, Headers, MetadataUpdate};
use meta::path::{MantaPath, TopDir};

/// Limits the parse needs from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    pub default_durability: u32,
    pub max_durability: u32,
    pub max_content_length: u64,
}

/// Everything an object PUT needs, validated.
#[derive(Debug, Clone)]
pub struct ObjectPut {
    pub content_type: String,
    pub content_md5: Option<[u8; 16]>,
    pub durability: u32,
    /// Announced length (`None` for chunked uploads).
    pub content_length: Option<u64>,
    /// Largest body accepted.
    pub cap: u64,
    pub headers: Headers,
    pub conditions: Conditions,
}

/// A snaplink PUT (§7).
#[derive(Debug, Clone)]
pub struct LinkPut {
    pub source: MantaPath,
    /// The `Location` value as sent (for messages).
    pub location: String,
    pub conditions: Conditions,
}

/// An existing multipart upload, addressed by its parts directory.
#[derive(Debug, Clone)]
pub struct UploadRef {
    pub id: uuid::Uuid,
    /// `/:login/uploads/<prefix>/<id>`.
    pub dir: MantaPath,
}

/// A request of the jobs API (jobs spec §2, E1-E11). Archived job files
/// (E12) and output objects (E13) are ordinary object reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOp {
    /// E1 `POST /:login/jobs`.
    Create,
    /// E6 `GET /:login/jobs?state=...&name=...` (validated).
    ListLive {
        state: Option<String>,
        name: Option<String>,
    },
    /// E2 `POST .../live/in` (`?end=true` ends input too).
    AddInputs { id: uuid::Uuid, end: bool },
    /// E3 `POST .../live/in/end`.
    EndInput { id: uuid::Uuid },
    /// E4 `POST .../live/cancel`.
    Cancel { id: uuid::Uuid },
    /// E5 `GET .../live/status`.
    Status { id: uuid::Uuid },
    /// E8-E11 `GET .../live/{in,out,err,fail}`.
    Live { id: uuid::Uuid, list: LiveList },
    /// `GET .../live/events`: the job's progress pushed as Server-Sent
    /// Events (Tidepool's, for the web console; see `crate::console`).
    Events { id: uuid::Uuid },
    /// A `live/...` path naming no job (bad id) or no endpoint: 404.
    Unknown,
}

/// Which live list (E8-E11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveList {
    In,
    Out,
    Err,
    Fail,
}

impl LiveList {
    /// The list a `/:login/jobs/:id/live/<segment>` GET names.
    fn from_segment(segment: &str) -> Option<LiveList> {
        match segment {
            "in" => Some(LiveList::In),
            "out" => Some(LiveList::Out),
            "err" => Some(LiveList::Err),
            "fail" => Some(LiveList::Fail),
            _ => None,
        }
    }
}

impl JobOp {
    /// Whether the request only reads ("getjob" rather than "managejob").
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            JobOp::ListLive { .. }
                | JobOp::Status { .. }
                | JobOp::Live { .. }
                | JobOp::Events { .. }
                | JobOp::Unknown
        )
    }
}

/// What a CORS preflight (`OPTIONS`) asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preflight {
    /// `Origin`.
    pub origin: Option<String>,
    /// `Access-Control-Request-Method`.
    pub method: Option<String>,
    /// `Access-Control-Request-Headers`, split on commas (empty names kept
    /// out).
    pub headers: Vec<String>,
}

impl Preflight {
    fn parse(h: &HeaderMap) -> Preflight {
        let get = |name: &str| {
            h.get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        Preflight {
            origin: get("origin"),
            method: get("access-control-request-method"),
            headers: get("access-control-request-headers")
                .map(|v| auth::rbac::comma_list(&v))
                .unwrap_or_default(),
        }
    }

    /// Whether this is a PUT preflight (answered from the parent's
    /// headers: the object may not exist yet).
    pub fn is_put(&self) -> bool {
        self.method.as_deref() == Some("PUT")
    }

    /// The CORS headers answering this preflight from an entry's stored
    /// headers, as muskie's `preflightRequest`: nothing unless `Origin` and
    /// the requested method are given, the origin is in the stored
    /// `access-control-allow-origin` (or it is `*`), the method in
    /// `access-control-allow-methods`, and every requested header in
    /// `access-control-allow-headers`.
    pub fn answer(&self, stored: &Headers) -> Vec<(&'static str, String)> {
        let list = |v: &str| -> Vec<String> { v.split(',').map(|s| s.trim().to_owned()).collect() };
        let (Some(origin), Some(method)) = (&self.origin, &self.method) else {
            return Vec::new();
        };
        let (Some(allow_origin), Some(allow_methods)) = (
            stored.get("access-control-allow-origin"),
            stored.get("access-control-allow-methods"),
        ) else {
            return Vec::new();
        };
        let allow_headers = stored.get("access-control-allow-headers");
        let origin_ok = list(allow_origin).iter().any(|o| o == origin || o == "*");
        let method_ok = list(allow_methods).iter().any(|m| m == method);
        let headers_ok = self.headers.iter().all(|h| {
            allow_headers.is_some_and(|a| list(a).iter().any(|x| x.eq_ignore_ascii_case(h)))
        });
        if !(origin_ok && method_ok && headers_ok) {
            return Vec::new();
        }
        let mut out = vec![
            ("access-control-allow-origin", origin.clone()),
            ("access-control-allow-methods", allow_methods.clone()),
        ];
        if let Some(a) = allow_headers {
            out.push(("access-control-allow-headers", a.clone()));
        }
        if let Some(m) = stored.get("access-control-max-age") {
            out.push(("access-control-max-age", m.clone()));
        }
        out
    }
}

/// One request, typed.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// The jobs API under `/:login/jobs`.
    Job {
        path: MantaPath,
        op: JobOp,
    },
    /// `POST /:login/tokens`: a token standing for the caller. `path` is
    /// the account root (only the account itself may ask).
    CreateToken {
        path: MantaPath,
    },
    /// `POST /:login/uploads` (§10.3).
    MpuCreate {
        path: MantaPath,
    },
    /// `/:login/uploads/<id>[/<part>]`: `301` to the parts directory (§10.2).
    MpuRedirect {
        path: MantaPath,
        location: String,
    },
    /// `GET <partsDirectory>/state`.
    MpuState {
        path: MantaPath,
        upload: UploadRef,
    },
    /// `POST <partsDirectory>/commit`.
    MpuCommit {
        path: MantaPath,
        upload: UploadRef,
    },
    /// `POST <partsDirectory>/abort`.
    MpuAbort {
        path: MantaPath,
        upload: UploadRef,
    },
    /// `PUT <partsDirectory>/<n>`.
    MpuPart {
        path: MantaPath,
        upload: UploadRef,
        put: Box<ObjectPut>,
    },
    /// GET of an object (maybe ranged) or a directory listing.
    Get {
        path: MantaPath,
        /// Refused only once the caller may see the object (§6.2).
        range: Result<Option<ByteRange>, RangeRefusal>,
        /// `Accept`, checked against an object's type (406).
        accept: Option<String>,
        conditions: Conditions,
        query: Query,
    },
    Head {
        path: MantaPath,
        accept: Option<String>,
        conditions: Conditions,
    },
    PutDirectory {
        path: MantaPath,
        headers: Headers,
    },
    PutLink {
        path: MantaPath,
        link: LinkPut,
    },
    PutMetadata {
        path: MantaPath,
        update: MetadataUpdate,
        /// `Content-Disposition`, normalized or refused: applied (or its
        /// error answered) only if the target turns out to be an object.
        disposition: Option<Result<String, InvalidDisposition>>,
    },
    PutObject {
        path: MantaPath,
        put: Box<ObjectPut>,
    },
    Delete {
        path: MantaPath,
        conditions: Conditions,
    },
    /// A CORS preflight.
    Options {
        path: MantaPath,
        preflight: Preflight,
    },
}

impl Endpoint {
    /// The path the request addresses.
    pub fn path(&self) -> &MantaPath {
        match self {
            Endpoint::Get { path, .. }
            | Endpoint::Head { path, .. }
            | Endpoint::PutDirectory { path, .. }
            | Endpoint::PutLink { path, .. }
            | Endpoint::PutMetadata { path, .. }
            | Endpoint::PutObject { path, .. }
            | Endpoint::Delete { path, .. }
            | Endpoint::Options { path, .. }
            | Endpoint::MpuCreate { path }
            | Endpoint::CreateToken { path }
            | Endpoint::MpuRedirect { path, .. }
            | Endpoint::MpuState { path, .. }
            | Endpoint::MpuCommit { path, .. }
            | Endpoint::MpuAbort { path, .. }
            | Endpoint::MpuPart { path, .. }
            | Endpoint::Job { path, .. } => path,
        }
    }

    /// The operation's name in metrics and logs (muskie's route names
    /// where it had one): a fixed set, never derived from the path.
    pub fn operation(&self) -> &'static str {
        match self {
            Endpoint::Get { .. } => "getstorage",
            Endpoint::Head { .. } => "headstorage",
            Endpoint::PutDirectory { .. } => "putdirectory",
            Endpoint::PutLink { .. } => "putsnaplink",
            Endpoint::PutMetadata { .. } => "putmetadata",
            Endpoint::PutObject { .. } => "putobject",
            Endpoint::Delete { .. } => "deletestorage",
            Endpoint::Options { .. } => "optionsstorage",
            Endpoint::CreateToken { .. } => "createtoken",
            Endpoint::MpuCreate { .. } => "createupload",
            Endpoint::MpuRedirect { .. } => "redirectupload",
            Endpoint::MpuState { .. } => "getupload",
            Endpoint::MpuCommit { .. } => "commitupload",
            Endpoint::MpuAbort { .. } => "abortupload",
            Endpoint::MpuPart { .. } => "uploadpart",
            Endpoint::Job { op, .. } => match op {
                JobOp::Create => "createjob",
                JobOp::ListLive { .. } => "listjobs",
                JobOp::AddInputs { .. } => "addjobinputs",
                JobOp::EndInput { .. } => "endjobinput",
                JobOp::Cancel { .. } => "canceljob",
                JobOp::Status { .. } => "getjobstatus",
                JobOp::Events { .. } => "getjobevents",
                JobOp::Live { list, .. } => match list {
                    LiveList::In => "getjobinput",
                    LiveList::Out => "getjoboutput",
                    LiveList::Err => "getjoberrors",
                    LiveList::Fail => "getjobfailures",
                },
                JobOp::Unknown => "unknownjobop",
            },
        }
    }

    /// Whether this request only reads (what `/public` allows to anyone).
    pub fn is_read(&self) -> bool {
        match self {
            Endpoint::Job { op, .. } => op.is_read(),
            other => matches!(
                other,
                Endpoint::Get { .. } | Endpoint::Head { .. } | Endpoint::Options { .. }
            ),
        }
    }
}

/// A non-empty `Accept` (an empty one accepts anything, like none).
fn accept(h: &HeaderMap) -> Option<String> {
    let v = h.get(http::header::ACCEPT)?;
    let s = String::from_utf8_lossy(v.as_bytes()).trim().to_owned();
    (!s.is_empty()).then_some(s)
}

fn not_allowed_on_root(method: &Method, path: &MantaPath) -> ApiError {
    ApiError::OperationNotAllowedOnRootDirectory {
        method: method.as_str().to_owned(),
        path: path.to_string(),
    }
}

/// Parses the request head into an [`Endpoint`].
pub fn parse(
    method: &Method,
    raw_path: &str,
    raw_query: Option<&str>,
    h: &HeaderMap,
    limits: ParseLimits,
) -> Result<Endpoint, ApiError> {
    if *method == Method::POST
        && let Some(login) = raw_path
            .strip_prefix('/')
            .and_then(|p| p.trim_end_matches('/').strip_suffix("/tokens"))
        && !login.contains('/')
    {
        let path = parse_path(&format!("/{login}"))?;
        return Ok(Endpoint::CreateToken { path });
    }
    let path = parse_path(raw_path)?;
    let query = Query::parse(raw_query);
    if path.is_account_root() && !matches!(*method, Method::GET | Method::HEAD) {
        return Err(not_allowed_on_root(method, &path));
    }
    if path.top() == Some(TopDir::Uploads)
        && let Some(ep) = parse_uploads(method, &path, h, limits)
    {
        return ep;
    }
    if path.top() == Some(TopDir::Jobs)
        && let Some(op) = parse_jobs(method, &path, &query)
    {
        return op.map(|op| Endpoint::Job { path, op });
    }
    let conditions = headers::parse_conditions(h);
    match *method {
        Method::GET => Ok(Endpoint::Get {
            path,
            range: parse_range(h),
            accept: accept(h),
            conditions,
            query,
        }),
        Method::HEAD => Ok(Endpoint::Head {
            path,
            accept: accept(h),
            conditions,
        }),
        Method::DELETE => {
            if path.is_root() {
                return Err(not_allowed_on_root(method, &path));
            }
            Ok(Endpoint::Delete { path, conditions })
        }
        Method::OPTIONS => Ok(Endpoint::Options {
            path,
            preflight: Preflight::parse(h),
        }),
        Method::PUT => parse_put(path, &query, h, conditions, limits),
        _ => Err(ApiError::MethodNotAllowed(format!(
            "{method} is not allowed"
        ))),
    }
}

/// Routes the jobs API (jobs spec §2); `None` for ordinary directory and
/// object requests under `/:login/jobs` (the listing E7, archived files
/// E12, outputs E13).
fn parse_jobs(method: &Method, path: &MantaPath, query: &Query) -> Option<Result<JobOp, ApiError>> {
    let rest: Vec<&str> = path.rest().iter().map(String::as_str).collect();
    let job_id = |s: &str| uuid::Uuid::parse_str(s).ok().filter(|u| u.to_string() == s);
    match (method, rest.as_slice()) {
        (&Method::POST, []) => Some(Ok(JobOp::Create)),
        (&Method::GET, []) => {
            // muskie: any state/status/name key selects the live listing.
            let live = query.0.iter().any(|(k, _)| {
                let k = k.to_ascii_lowercase();
                k == "state" || k == "status" || k == "name"
            });
            if !live {
                return None;
            }
            let state = query.get("state").or_else(|| query.get("status"));
            if let Some(s) = state
                && !matches!(s, "live" | "running" | "queued" | "done")
            {
                return Some(Err(ApiError::InvalidParameter(format!(
                    "\"{s}\" is invalid for \"state\""
                ))));
            }
            let name = query.get("name");
            if let Some(n) = name
                && (n.is_empty()
                    || !n
                        .chars()
                        .all(|c| c.is_alphanumeric() || c == '_' || c == '-'))
            {
                return Some(Err(ApiError::InvalidParameter(format!(
                    "\"{n}\" is invalid for \"name\""
                ))));
            }
            Some(Ok(JobOp::ListLive {
                state: state.map(str::to_owned),
                name: name.map(str::to_owned),
            }))
        }
        (_, [id, "live", tail @ ..]) => {
            let Some(id) = job_id(id) else {
                return Some(Ok(JobOp::Unknown));
            };
            let op = match (method, tail) {
                (&Method::POST, ["in"]) => JobOp::AddInputs {
                    id,
                    end: query.get("end") == Some("true"),
                },
                (&Method::POST, ["in", "end"]) => JobOp::EndInput { id },
                (&Method::POST, ["cancel"]) => JobOp::Cancel { id },
                (&Method::GET, ["status"]) => JobOp::Status { id },
                (&Method::GET, ["events"]) => JobOp::Events { id },
                (&Method::GET, [name]) => match LiveList::from_segment(name) {
                    Some(list) => JobOp::Live { id, list },
                    None => JobOp::Unknown,
                },
                _ => JobOp::Unknown,
            };
            Some(Ok(op))
        }
        _ => None,
    }
}

/// The prefix directory of an upload id (its first hex digit).
pub fn upload_prefix(id: &uuid::Uuid) -> String {
    id.to_string()[..1].to_owned()
}

/// A part number: decimal 0..=9999 without leading zeros (§10.1).
pub fn part_number(s: &str) -> Option<u32> {
    let ok = !s.is_empty()
        && s.len() <= 4
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'));
    if ok { s.parse().ok() } else { None }
}

/// Lowercase UUID text, as the CLI asserts.
fn upload_id(s: &str) -> Option<uuid::Uuid> {
    let id = uuid::Uuid::parse_str(s).ok()?;
    (id.to_string() == s).then_some(id)
}

/// Whether `prefix` is a valid upload prefix directory for `id`: 1 to 4
/// of its leading hex digits (muskie's prefix length is configurable;
/// Tidepool makes 1, and answers the others as unknown uploads).
fn prefix_of(prefix: &str, id: &uuid::Uuid) -> bool {
    (1..=4).contains(&prefix.len())
        && prefix.bytes().all(|b| b.is_ascii_hexdigit())
        && id.to_string().starts_with(prefix)
}

/// Routes the multipart-upload endpoints under `/:login/uploads`; `None`
/// for requests that are ordinary directory/object operations there.
fn parse_uploads(
    method: &Method,
    path: &MantaPath,
    h: &HeaderMap,
    limits: ParseLimits,
) -> Option<Result<Endpoint, ApiError>> {
    let rest = path.rest();
    let not_allowed = || {
        Some(Err(ApiError::MethodNotAllowed(format!(
            "{method} is not allowed on {path}"
        ))))
    };
    let not_found = || Some(Err(ApiError::ResourceNotFound(path.to_string())));
    let redirect = |id: &uuid::Uuid, tail: Option<&str>| {
        let mut location = format!("/{}/uploads/{}/{id}", path.login(), upload_prefix(id));
        if let Some(t) = tail {
            location.push('/');
            location.push_str(t);
        }
        Some(Ok(Endpoint::MpuRedirect {
            path: path.clone(),
            location,
        }))
    };
    match rest {
        [] if *method == Method::POST => Some(Ok(Endpoint::MpuCreate { path: path.clone() })),
        [] if *method == Method::PUT => not_allowed(),
        // `/:login/uploads/<id>`: every method is redirected to the parts
        // directory (DELETE too, as muskie's redirect route).
        [id] => upload_id(id).and_then(|id| redirect(&id, None)),
        [id, part] if upload_id(id).is_some() && part_number(part).is_some() => {
            redirect(&upload_id(id)?, Some(part))
        }
        // Under a prefix directory only upload ids live: anything else,
        // or an id under a prefix that is not its own, is no upload.
        [prefix, id, ..] if !upload_id(id).is_some_and(|u| prefix_of(prefix, &u)) => not_found(),
        [_, _] => match *method {
            Method::GET | Method::HEAD => None,
            _ => not_allowed(),
        },
        [_, id, leaf] => {
            let uid = upload_id(id)?;
            let upload = UploadRef {
                id: uid,
                dir: path.parent()?,
            };
            let p = path.clone();
            match (leaf.as_str(), method) {
                ("state", &Method::GET) => Some(Ok(Endpoint::MpuState { path: p, upload })),
                ("state", _) => not_allowed(),
                ("commit", &Method::POST) => Some(Ok(Endpoint::MpuCommit { path: p, upload })),
                ("abort", &Method::POST) => Some(Ok(Endpoint::MpuAbort { path: p, upload })),
                ("commit" | "abort", _) => not_allowed(),
                (n, &Method::PUT) => {
                    if part_number(n).is_none() {
                        return Some(Err(ApiError::MultipartUploadInvalidArgument(format!(
                            "{n} is not a valid part number"
                        ))));
                    }
                    if has_durability(h) {
                        return Some(Err(ApiError::MultipartUploadInvalidArgument(
                            "cannot change durability level for multipart uploads".to_owned(),
                        )));
                    }
                    Some(
                        parse_put(
                            p.clone(),
                            &Query::default(),
                            h,
                            Conditions::default(),
                            limits,
                        )
                        .and_then(|ep| match ep {
                            Endpoint::PutObject { path, put } => {
                                Ok(Endpoint::MpuPart { path, upload, put })
                            }
                            _ => Err(ApiError::MultipartUploadInvalidArgument(
                                "parts must be objects".to_owned(),
                            )),
                        }),
                    )
                }
                // Parts are written, listed and committed, never read back.
                (n, &Method::GET) if part_number(n).is_some() => not_allowed(),
                (_, &Method::DELETE) => not_allowed(),
                _ => None,
            }
        }
        [_, _, _, ..] => not_found(),
        _ => None,
    }
}

fn parse_put(
    path: MantaPath,
    query: &Query,
    h: &HeaderMap,
    conditions: Conditions,
    limits: ParseLimits,
) -> Result<Endpoint, ApiError> {
    // Metadata updates first: routing them by content type would turn them
    // into an object write with an empty body (trap 11).
    if query.has_nonempty("metadata") {
        if h.contains_key("content-md5") {
            return Err(ApiError::InvalidUpdate("content-md5".to_owned()));
        }
        if has_durability(h) {
            return Err(ApiError::InvalidUpdate("durability-level".to_owned()));
        }
        // muskie refused any content-length (node-manta's chattr sends its
        // empty body chunked because of it, MANTA-2929); `0` is let through
        // since other HTTP stacks (Python's requests, hyper) announce an
        // empty PUT body that way, and it carries no update.
        if content_length(h).is_some_and(|n| n > 0) {
            return Err(ApiError::InvalidUpdate("content-length".to_owned()));
        }
        let headers = headers::stored_headers_with(h, DispositionRule::Ignore)?;
        let content_type = match headers::put_kind(h) {
            PutKind::Object(ct) if h.contains_key(http::header::CONTENT_TYPE) => Some(ct),
            _ => None,
        };
        return Ok(Endpoint::PutMetadata {
            path,
            update: MetadataUpdate {
                content_type,
                headers,
            },
            disposition: headers::disposition(h),
        });
    }
    match headers::put_kind(h) {
        PutKind::Directory => {
            let headers = headers::stored_headers_with(h, DispositionRule::Ignore)?;
            Ok(Endpoint::PutDirectory { path, headers })
        }
        PutKind::Link => {
            if path.is_root() {
                return Err(not_allowed_on_root(&Method::PUT, &path));
            }
            let location = h
                .get(http::header::LOCATION)
                .ok_or(ApiError::LocationRequired)?
                .to_str()
                .map_err(|_| ApiError::InvalidLink("Location".to_owned()))?
                .to_owned();
            let source = parse_location(&location)?;
            Ok(Endpoint::PutLink {
                path,
                link: LinkPut {
                    source,
                    location,
                    conditions,
                },
            })
        }
        PutKind::Object(content_type) => {
            if path.is_root() {
                return Err(not_allowed_on_root(&Method::PUT, &path));
            }
            let durability =
                parse_durability(h, limits.max_durability)?.unwrap_or(limits.default_durability);
            let content_md5 = parse_content_md5(h)?;
            let cap = max_content_length(h, limits.max_content_length)?;
            let content_length = content_length(h);
            if let Some(n) = content_length
                && n > cap
            {
                return Err(ApiError::MaxContentLengthExceeded(cap));
            }
            let headers = headers::stored_headers(h)?;
            Ok(Endpoint::PutObject {
                path,
                put: Box::new(ObjectPut {
                    content_type,
                    content_md5,
                    durability,
                    content_length,
                    cap,
                    headers,
                    conditions,
                }),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;

    const LIMITS: ParseLimits = ParseLimits {
        default_durability: 2,
        max_durability: 6,
        max_content_length: 1 << 30,
    };

    fn hm(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn put(path: &str, q: Option<&str>, h: &[(&'static str, &str)]) -> Result<Endpoint, ApiError> {
        parse(&Method::PUT, path, q, &hm(h), LIMITS)
    }

    #[test]
    fn metadata_routes_before_content_type() {
        let e = put(
            "/alice/stor/x",
            Some("metadata=true"),
            &[
                ("content-type", "application/json; type=directory"),
                ("m-a", "1"),
            ],
        )
        .unwrap();
        assert!(matches!(e, Endpoint::PutMetadata { .. }), "{e:?}");
        let e = put(
            "/alice/stor/x",
            Some("metadata=true"),
            &[("content-type", "text/x"), ("m-a", "1")],
        )
        .unwrap();
        let Endpoint::PutMetadata { update, .. } = e else {
            panic!()
        };
        assert_eq!(update.content_type.as_deref(), Some("text/x"));
        assert_eq!(update.headers.get("m-a").map(String::as_str), Some("1"));
        let e = put(
            "/alice/stor/x",
            Some("metadata=true"),
            &[("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg==")],
        );
        assert_eq!(e.unwrap_err().code(), "InvalidUpdate");
        let e = put(
            "/alice/stor/x",
            Some("metadata=true"),
            &[("x-durability-level", "2")],
        );
        assert_eq!(e.unwrap_err().code(), "InvalidUpdate");
    }

    #[test]
    fn put_kinds() {
        assert!(matches!(
            put(
                "/alice/stor/d",
                None,
                &[("content-type", "application/json; type=directory")]
            )
            .unwrap(),
            Endpoint::PutDirectory { .. }
        ));
        let e = put(
            "/alice/stor/l",
            None,
            &[
                ("content-type", "application/json; type=link"),
                ("location", "/alice/stor/a%20b"),
            ],
        )
        .unwrap();
        let Endpoint::PutLink { link, .. } = e else {
            panic!()
        };
        assert_eq!(link.source.to_string(), "/alice/stor/a b");
        assert_eq!(
            put(
                "/alice/stor/l",
                None,
                &[("content-type", "application/json; type=link")]
            )
            .unwrap_err()
            .code(),
            "LocationRequired"
        );
        let e = put("/alice/stor/o", None, &[("x-durability-level", "3")]).unwrap();
        let Endpoint::PutObject { put: p, .. } = e else {
            panic!()
        };
        assert_eq!(p.durability, 3);
        assert_eq!(p.content_type, "application/octet-stream");
    }

    #[test]
    fn roots() {
        assert_eq!(
            put("/alice/stor", None, &[]).unwrap_err().code(),
            "OperationNotAllowedOnRootDirectory"
        );
        assert!(matches!(
            put(
                "/alice/stor",
                None,
                &[("content-type", "application/json; type=directory")]
            )
            .unwrap(),
            Endpoint::PutDirectory { .. }
        ));
        assert_eq!(
            parse(
                &Method::DELETE,
                "/alice/stor",
                None,
                &HeaderMap::new(),
                LIMITS
            )
            .unwrap_err()
            .code(),
            "OperationNotAllowedOnRootDirectory"
        );
        assert_eq!(
            parse(
                &Method::PUT,
                "/alice",
                None,
                &hm(&[("content-type", "application/json; type=directory")]),
                LIMITS
            )
            .unwrap_err()
            .code(),
            "OperationNotAllowedOnRootDirectory"
        );
        assert!(parse(&Method::GET, "/alice", None, &HeaderMap::new(), LIMITS).is_ok());
    }

    #[test]
    fn object_validation() {
        assert_eq!(
            put("/alice/stor/o", None, &[("durability-level", "0")])
                .unwrap_err()
                .code(),
            "InvalidDurabilityLevel"
        );
        assert_eq!(
            put("/alice/stor/o", None, &[("x-durability-level", "99")])
                .unwrap_err()
                .code(),
            "InvalidDurabilityLevel"
        );
        assert_eq!(
            put("/alice/stor/o", None, &[("content-md5", "zz")])
                .unwrap_err()
                .code(),
            "BadRequest"
        );
        assert_eq!(
            put(
                "/alice/stor/o",
                None,
                &[("content-length", "100"), ("max-content-length", "10")]
            )
            .unwrap_err()
            .code(),
            "MaxContentLengthExceeded"
        );
        assert_eq!(
            parse(
                &Method::POST,
                "/alice/stor/o",
                None,
                &HeaderMap::new(),
                LIMITS
            )
            .unwrap_err()
            .code(),
            "MethodNotAllowed"
        );
    }

    #[test]
    fn upload_routes() {
        let id = "6ad0f13e-80f2-4d18-b432-85ed63108af1";
        let get = |m: Method, p: &str| parse(&m, p, None, &HeaderMap::new(), LIMITS);
        assert!(matches!(
            get(Method::POST, "/alice/uploads").unwrap(),
            Endpoint::MpuCreate { .. }
        ));
        let Endpoint::MpuRedirect { location, .. } =
            get(Method::HEAD, &format!("/alice/uploads/{id}")).unwrap()
        else {
            panic!()
        };
        assert_eq!(location, format!("/alice/uploads/6/{id}"));
        let Endpoint::MpuRedirect { location, .. } =
            get(Method::PUT, &format!("/alice/uploads/{id}/3")).unwrap()
        else {
            panic!()
        };
        assert_eq!(location, format!("/alice/uploads/6/{id}/3"));
        assert!(matches!(
            get(Method::GET, &format!("/alice/uploads/6/{id}/state")).unwrap(),
            Endpoint::MpuState { .. }
        ));
        assert!(matches!(
            get(Method::POST, &format!("/alice/uploads/6/{id}/commit")).unwrap(),
            Endpoint::MpuCommit { .. }
        ));
        assert!(matches!(
            get(Method::PUT, &format!("/alice/uploads/6/{id}/0")).unwrap(),
            Endpoint::MpuPart { .. }
        ));
        assert_eq!(
            get(Method::PUT, &format!("/alice/uploads/6/{id}/01"))
                .unwrap_err()
                .code(),
            "MultipartUploadInvalidArgument"
        );
        assert_eq!(
            get(Method::DELETE, &format!("/alice/uploads/6/{id}"))
                .unwrap_err()
                .code(),
            "MethodNotAllowed"
        );
        assert!(matches!(
            get(Method::DELETE, &format!("/alice/uploads/{id}")).unwrap(),
            Endpoint::MpuRedirect { .. }
        ));
        for leaf in ["abort", "commit"] {
            for m in [Method::GET, Method::HEAD] {
                assert_eq!(
                    get(m, &format!("/alice/uploads/6/{id}/{leaf}"))
                        .unwrap_err()
                        .code(),
                    "MethodNotAllowed"
                );
            }
        }
        assert_eq!(
            get(Method::GET, &format!("/alice/uploads/6/{id}/0"))
                .unwrap_err()
                .code(),
            "MethodNotAllowed"
        );
        // Longer prefixes (muskie's is configurable) route too.
        assert!(matches!(
            get(Method::GET, &format!("/alice/uploads/6ad0/{id}/state")).unwrap(),
            Endpoint::MpuState { .. }
        ));
        for bad in ["6ad0f", "6g", "7"] {
            assert_eq!(
                get(Method::GET, &format!("/alice/uploads/{bad}/{id}/state"))
                    .unwrap_err()
                    .code(),
                "ResourceNotFound",
                "{bad}"
            );
        }
        assert_eq!(
            get(Method::PUT, "/alice/uploads/6/not-a-uuid")
                .unwrap_err()
                .code(),
            "ResourceNotFound"
        );
        assert_eq!(
            get(Method::PUT, "/alice/uploads").unwrap_err().code(),
            "MethodNotAllowed"
        );

        // Uppercase ids are not the CLI's UUIDs.
        assert!(matches!(
            get(
                Method::HEAD,
                &format!("/alice/uploads/{}", id.to_uppercase())
            )
            .unwrap(),
            Endpoint::Head { .. }
        ));
    }

    #[test]
    fn part_numbers() {
        assert_eq!(part_number("0"), Some(0));
        assert_eq!(part_number("9999"), Some(9999));
        for bad in ["", "00", "01", "10000", "-1", "a", "1.5"] {
            assert_eq!(part_number(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn upload_shapes_never_panic(prefix in "[0-9a-g-]{0,6}", leaf in "[ -~]{0,8}", extra in "[ -~]{0,8}") {
            let id = "6ad0f13e-80f2-4d18-b432-85ed63108af1";
            for p in [
                format!("/alice/uploads/{prefix}/{id}/{leaf}"),
                format!("/alice/uploads/{prefix}/{id}"),
                format!("/alice/uploads/{id}/{leaf}"),
                format!("/alice/uploads/{prefix}/{id}/{leaf}/{extra}"),
            ] {
                for m in [Method::GET, Method::PUT, Method::DELETE, Method::HEAD, Method::POST] {
                    let _ = parse(&m, &p, None, &HeaderMap::new(), LIMITS);
                }
            }
        }

        #[test]
        fn never_panics(path in "/[ -~]{0,60}", q in proptest::option::of("[ -~]{0,40}"), ct in "[ -~]{0,40}", d in "[ -~]{0,5}") {
            // Upload and token routes too: their shapes with random parts.
            let upload = format!("/alice/uploads{path}");
            let token = format!("{path}/tokens");
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&ct) { h.insert("content-type", v); }
            if let Ok(v) = HeaderValue::from_str(&d) { h.insert("durability-level", v); }
            for m in [Method::GET, Method::PUT, Method::DELETE, Method::HEAD, Method::POST, Method::OPTIONS] {
                for p in [&path, &upload, &token] {
                    let _ = parse(&m, p, q.as_deref(), &h, LIMITS);
                }
            }
        }
    }
}
