//! The request pipeline: authenticate → parse into an [`Endpoint`] →
//! authorize → handle. One axum handler receives every request and runs
//! this pipeline; errors leave through [`ApiError`].
//!
//! Guarantees: the request body is handed, unread, to the one handler that
//! streams it (object PUT), after every check has passed; so hyper's
//! automatic `100 Continue` is sent only then (§1.5). A PUT that fails is
//! answered with `Connection: close`, since its body may be unread.

mod entries;
mod jobs;
mod mpu;
mod objects;

use crate::Gateway;
use crate::access::{Grant, MetaKeys, auth_error, authorize};
use crate::endpoint::{self, Endpoint};
use crate::error::ApiError;
use crate::format::http_date_ms;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use meta::namespace::{CopyRef, Entry, Namespace};
use std::sync::Arc;

/// How many times a GET re-reads metadata when the copies it was about to
/// read were released and collected meanwhile (each time by a newer write).
const MAX_RELEASED_RETRIES: usize = 3;

/// What a handler needs for one request.
pub(crate) struct Ctx {
    pub gw: Gateway,
    pub ns: Arc<Namespace>,
    /// `None` for anonymous requests.
    pub caller: Option<auth::Caller>,
    /// A subuser in its own account: its active roles.
    pub roles: Option<crate::roles::SubuserAccess>,
}

impl Ctx {
    /// Deletes copies no name refers to any more, in the background. Meta
    /// already holds GC records for them, so a failure here loses nothing.
    /// Copies of an object a running job's task has pinned (it runs that
    /// version) are left to the nodes' GC, which waits for the pin to go.
    pub fn release_copies(&self, freed: Vec<CopyRef>) {
        self.gw.release_copies(freed);
    }
}

/// `204 No Content` with no body.
pub(crate) fn no_content() -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

/// Headers common to GET/HEAD of any entry: stored headers, `Last-Modified`,
/// and for objects `Etag`, `Content-Type`, `Content-MD5`, `Durability-Level`.
pub(crate) fn entry_headers(h: &mut HeaderMap, e: &Entry) {
    for (k, v) in &e.headers {
        // Internal records: upload state and S3 multipart ETags.
        if k == mpu::RECORD_HEADER
            || k == crate::s3::names::ETAG_HEADER
            || k == crate::s3::MPU_RECORD_HEADER
        {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            h.insert(name, value);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&http_date_ms(i64::try_from(e.mtime_ms).unwrap_or(0))) {
        h.insert(header::LAST_MODIFIED, v);
    }
    if let Some(o) = e.object() {
        if let Ok(v) = HeaderValue::from_str(&o.object_id.to_string()) {
            h.insert(header::ETAG, v);
        }
        if let Ok(v) = HeaderValue::from_str(&o.content_type) {
            h.insert(header::CONTENT_TYPE, v);
        }
        if let Ok(v) = HeaderValue::from_str(&o.content_md5) {
            h.insert("content-md5", v);
        }
        h.insert(
            "durability-level",
            HeaderValue::from(u32::from(o.durability)),
        );
    }
}

/// The raw request target as on the request line (auth signs it verbatim).
pub(crate) fn raw_target(req: &Request) -> &str {
    req.uri()
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/")
}

/// The axum handler for every route.
pub(crate) async fn handle(State(gw): State<Gateway>, req: Request) -> Response {
    let method = req.method().clone();
    let is_put = method == Method::PUT;
    let announced_empty = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() == b"0");
    let origin = req.headers().get(header::ORIGIN).cloned();
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
        .or_else(|| {
            req.extensions()
                .get::<axum::extract::ConnectInfo<crate::roles::Peer>>()
                .map(|c| c.0.0.ip())
        });
    let mut operation = crate::metrics::UNPARSED;
    let mut resp = match pipeline(gw, req, peer, &mut operation).await {
        Ok(mut resp) => {
            if let Some(origin) = origin {
                apply_cors(&origin, &method, resp.headers_mut());
            }
            resp
        }
        Err(e) => {
            let mut resp = e.into_response();
            if is_put && !announced_empty {
                // The body may be unread (the client waits for a 100 that
                // never comes, or is mid-stream): the connection cannot be
                // reused.
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            resp
        }
    };
    resp.extensions_mut()
        .insert(crate::metrics::Operation(operation));
    resp
}

/// Whether a comma-separated CORS list holds `want` (or `*` when `star`).
fn cors_lists(v: &HeaderValue, want: &str, star: bool) -> bool {
    v.to_str().is_ok_and(|l| {
        l.split(',')
            .map(str::trim)
            .any(|a| a == want || (star && a == "*"))
    })
}

/// CORS for requests with `Origin` (spec §9), as muskie answered them:
/// the stored `access-control-allow-origin` list is reduced to the
/// caller's origin (`*` matches any); when it does not match, or when a
/// stored `access-control-allow-methods` does not list the request's
/// method, no `access-control-*` header is sent at all. `-max-age` and
/// `-allow-headers` only answer preflights (`OPTIONS`). Successful writes
/// of entries without an origin list echo the origin.
fn apply_cors(origin: &HeaderValue, method: &Method, h: &mut HeaderMap) {
    let preflight = *method == Method::OPTIONS;
    let o = origin.to_str().unwrap_or("");
    let origin_ok = h
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .map(|v| cors_lists(v, o, true));
    let method_ok = preflight
        || h.get(header::ACCESS_CONTROL_ALLOW_METHODS)
            .is_none_or(|v| cors_lists(v, method.as_str(), false));
    if origin_ok == Some(false) || !method_ok {
        let names: Vec<http::HeaderName> = h
            .keys()
            .filter(|k| k.as_str().starts_with("access-control-"))
            .cloned()
            .collect();
        for n in names {
            h.remove(n);
        }
        return;
    }
    if !preflight {
        h.remove(header::ACCESS_CONTROL_MAX_AGE);
        h.remove(header::ACCESS_CONTROL_ALLOW_HEADERS);
    }
    let is_write = matches!(*method, Method::PUT | Method::POST | Method::DELETE);
    if origin_ok == Some(true) || is_write {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    }
}

/// `406 NotAcceptable` when `Accept` does not admit the object's type.
fn negotiate(
    entry: &Entry,
    accept: Option<&str>,
    path: &meta::path::MantaPath,
) -> Result<(), ApiError> {
    if let (Some(accept), Some(o)) = (accept, entry.object())
        && !crate::mime::accepts(accept, &o.content_type)
    {
        return Err(ApiError::NotAcceptable {
            path: path.to_string(),
            content_type: o.content_type.clone(),
        });
    }
    Ok(())
}

/// Unix seconds of `t` (0 before the epoch).
fn unix_secs(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `Authorization: Token <token>`: the caller a token stands for, once
/// its MAC and expiry check and the key that minted it still exists.
/// `Ok(None)` for any other scheme (left to `auth::authenticate`).
async fn token_caller(
    gw: &Gateway,
    headers: &HeaderMap,
    keys: &MetaKeys,
) -> Result<Option<auth::Caller>, ApiError> {
    let Some((scheme, token)) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
    else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("token") {
        return Ok(None);
    }
    let now = gw.now();
    if let Some(date) = headers.get(header::DATE) {
        let date = date.to_str().map_err(|_| {
            auth_error(auth::AuthError::InvalidHeader(
                "Date header is invalid".into(),
            ))
        })?;
        auth::check_date("date", date, now).map_err(auth_error)?;
    }
    let invalid = |why: &str| auth_error(auth::AuthError::InvalidAuthToken(why.to_owned()));
    let claims =
        auth::token::verify(&gw.inner.token_key, token, unix_secs(now)).map_err(auth_error)?;
    let fingerprint =
        auth::Fingerprint::parse(&claims.fingerprint).ok_or_else(|| invalid("bad key"))?;
    let algorithm =
        auth::Algorithm::parse(&claims.algorithm).ok_or_else(|| invalid("bad algorithm"))?;
    use auth::KeyLookup as _;
    let looked_up = keys
        .lookup(&claims.login, claims.subuser.as_deref(), &fingerprint)
        .await;
    match looked_up {
        Ok(Some(k)) if k.matches(&fingerprint) => Ok(Some(auth::Caller {
            login: claims.login,
            subuser: claims.subuser,
            fingerprint,
            algorithm,
            presigned: None,
        })),
        // The minting key was removed: the token goes with it.
        Ok(_) => Err(invalid("the key that made it is gone")),
        Err(auth::LookupError::Unavailable(m)) => Err(ApiError::MetadataUnavailable(m)),
        Err(auth::LookupError::AccountBlocked) => {
            Err(auth_error(auth::AuthError::AccountBlocked {
                login: claims.login,
            }))
        }
        Err(_) => Err(invalid("its account or user is gone")),
    }
}

/// `POST /:login/tokens`: `201 {"token": ...}` for the signing caller.
fn create_token(cx: &Ctx, by_token: bool) -> Result<Response, ApiError> {
    let caller = cx
        .caller
        .as_ref()
        .ok_or_else(|| ApiError::internal("anonymous token request passed authorization"))?;
    if by_token {
        // A token must not renew itself forever: minting needs a key.
        return Err(ApiError::Auth {
            status: StatusCode::FORBIDDEN,
            code: "AuthorizationFailed".to_owned(),
            message: "a token cannot be used to create a token".to_owned(),
        });
    }
    let claims = auth::token::TokenClaims {
        login: caller.login.clone(),
        subuser: caller.subuser.clone(),
        fingerprint: caller.fingerprint.to_string(),
        algorithm: caller.algorithm.to_string(),
        expires: unix_secs(cx.gw.now()).saturating_add(auth::token::TOKEN_TTL_SECS),
    };
    let token = auth::token::issue(&cx.gw.inner.token_key, &claims)
        .ok_or_else(|| ApiError::internal("caller names cannot be put in a token"))?;
    let body =
        serde_json::to_vec(&serde_json::json!({ "token": token })).map_err(ApiError::internal)?;
    Ok(crate::error::json_response(StatusCode::CREATED, body))
}

/// Who makes `req`: the account (or subuser) of an `Authorization: Token`,
/// of an HTTP signature or presigned URL, or `None` for anonymous; and
/// whether a token was used. Every authenticated path of the gateway (the
/// Manta API and the console's operator API) goes through this.
/// `target` is the request target as on the request line.
pub(crate) async fn authenticate(
    gw: &Gateway,
    method: &Method,
    target: &str,
    headers: &HeaderMap,
) -> Result<(Option<auth::Caller>, bool), ApiError> {
    let keys = MetaKeys {
        ns: gw.inner.namespace.clone(),
    };
    if let Some(c) = token_caller(gw, headers, &keys).await? {
        return Ok((Some(c), true));
    }
    let parts = auth::RequestParts {
        method: method.as_str(),
        raw_path_and_query: target,
        headers,
        now: gw.now(),
    };
    match auth::authenticate(&parts, &keys)
        .await
        .map_err(auth_error)?
    {
        auth::AuthOutcome::Anonymous => Ok((None, false)),
        auth::AuthOutcome::Authenticated(c) => Ok((Some(c), false)),
    }
}

async fn pipeline(
    gw: Gateway,
    req: Request,
    peer: Option<std::net::IpAddr>,
    operation: &mut &'static str,
) -> Result<Response, ApiError> {
    let ns = gw.inner.namespace.clone();
    let (caller, by_token) =
        authenticate(&gw, req.method(), raw_target(&req), req.headers()).await?;
    // mlogin's reflector: WebSocket halves, not Manta entries.
    if let Some(what) = crate::medusa::parse_path(req.uri().path()) {
        *operation = "medusa";
        return crate::medusa::attach(&gw, caller.as_ref(), what, req).await;
    }
    let mut ep = endpoint::parse(
        req.method(),
        req.uri().path(),
        req.uri().query(),
        req.headers(),
        gw.inner.limits,
    )?;
    *operation = ep.operation();
    if matches!(ep, Endpoint::MpuCreate { .. })
        && caller.as_ref().map(|c| c.login.as_str()) != Some(ep.path().login())
    {
        // muskie resolved the owner before authorizing: an upload for an
        // account that does not exist is AccountDoesNotExist.
        ns.active_account(ep.path().login()).await?;
    }
    let grant = authorize(&ns, caller.as_ref(), ep.path(), ep.is_read()).await?;
    match grant {
        Grant::Owner => {}
        // Someone else's public tree: the owner must exist and be active.
        Grant::Public => {
            ns.active_account(ep.path().login()).await?;
        }
        // muskie let an operator into an owner's tree even when the owner
        // was blocked; it must still exist.
        Grant::Operator => {
            if ns.get_account(ep.path().login()).await?.is_none() {
                return Err(meta::namespace::NamespaceError::AccountNotFound(
                    ep.path().login().to_owned(),
                )
                .into());
            }
        }
    }
    // What the client asked to tag its write with, before a subuser's
    // default tags are added.
    let tags_requested = !crate::roles::requested_tags(&ep).is_empty();
    let mut roles = None;
    if grant == Grant::Owner
        && let Some(c) = caller.as_ref().filter(|c| c.subuser.is_some())
    {
        // Only subusers pay for roles: one snapshot read of their roles
        // and policies, and the target's (or parent's) entry.
        let requested = match &c.presigned {
            Some(p) => p.role.clone(),
            None => req
                .headers()
                .get("role")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        };
        let access = crate::roles::SubuserAccess::load(
            &ns,
            c,
            requested.as_deref(),
            req.headers(),
            req.method().as_str(),
            peer,
            gw.now(),
        )
        .await?;
        if let Some(access) = access {
            access.authorize(&ns, &mut ep).await?;
            roles = Some(access);
        }
    }
    if tags_requested {
        crate::roles::check_role_tags(&ns, &ep).await?;
    }
    let cx = Ctx {
        gw,
        ns,
        caller,
        roles,
    };
    match ep {
        Endpoint::CreateToken { .. } => create_token(&cx, by_token),
        Endpoint::Get {
            path,
            range,
            accept,
            conditions,
            query,
        } => {
            // Order as muskie's: lookup (404), negotiation (406),
            // conditionals, then the range (416) — all after authorization,
            // so none of them tells a stranger whether the path exists.
            //
            // Between the metadata read and the node read, a concurrent
            // overwrite or delete can release the object and GC remove its
            // copies. Then the answer comes from the metadata as it is now
            // (the GET linearizes at that later read, still within the
            // request): a 500 is only for copies missing under metadata
            // that still names them.
            let mut attempts = 0;
            loop {
                let entry = entries::require_entry(&cx, &path).await?;
                if entry.is_directory() {
                    return entries::list_directory(&cx, &path, &entry, &query).await;
                }
                negotiate(&entry, accept.as_deref(), &path)?;
                if let Some(resp) = entries::check_read(&entry, &conditions, &path)? {
                    return Ok(resp);
                }
                match objects::get_object(&cx, &entry, range).await {
                    Err(ApiError::CopiesMissing(cause)) if attempts < MAX_RELEASED_RETRIES => {
                        let tried = entry.object().map(|o| o.object_id);
                        let now = cx.ns.get(&path).await?;
                        if now.as_ref().and_then(|e| e.object()).map(|o| o.object_id) == tried {
                            return Err(ApiError::CopiesMissing(cause));
                        }
                        attempts += 1;
                    }
                    other => return other,
                }
            }
        }
        Endpoint::Head {
            path,
            accept,
            conditions,
        } => {
            let entry = entries::require_entry(&cx, &path).await?;
            if entry.is_directory() {
                return entries::head_directory(&cx, &path, &entry).await;
            }
            negotiate(&entry, accept.as_deref(), &path)?;
            if let Some(resp) = entries::check_read(&entry, &conditions, &path)? {
                return Ok(resp);
            }
            Ok(objects::head_object(&entry))
        }
        Endpoint::PutDirectory { path, headers } => {
            entries::put_directory(&cx, &path, &headers).await
        }
        Endpoint::PutLink { path, link } => entries::put_link(&cx, &path, &link).await,
        Endpoint::PutMetadata {
            path,
            update,
            disposition,
        } => entries::put_metadata(&cx, &path, update, disposition).await,
        Endpoint::PutObject { path, put } => {
            objects::put_object(&cx, &path, &put, req.into_body()).await
        }
        Endpoint::Delete { path, conditions } => entries::delete(&cx, &path, &conditions).await,
        Endpoint::MpuCreate { path } => {
            let (parts, body) = req.into_parts();
            mpu::create(&cx, &path, &parts.headers, body).await
        }
        Endpoint::Job { path, op } => jobs::handle(&cx, &path, op, req.into_body()).await,
        Endpoint::MpuRedirect { path, location } => mpu::locate(&cx, &path, &location).await,
        Endpoint::MpuState { path, upload } => mpu::state(&cx, &path, &upload).await,
        Endpoint::MpuAbort { path, upload } => mpu::abort(&cx, &path, &upload).await,
        Endpoint::MpuCommit { path, upload } => {
            let (parts, body) = req.into_parts();
            mpu::commit(&cx, &path, &upload, &parts.headers, body).await
        }
        Endpoint::MpuPart { path, upload, put } => {
            mpu::put_part(&cx, &path, &upload, &put, req.into_body()).await
        }
        Endpoint::Options { path, preflight } => {
            // CORS preflights, answered from the stored headers of the entry
            // (of its parent for a PUT: the object may not exist yet).
            let target = match path.parent() {
                Some(parent) if preflight.is_put() => parent,
                _ => path,
            };
            let entry = entries::require_entry(&cx, &target).await?;
            let mut resp = Response::new(Body::empty());
            for (k, v) in preflight.answer(&entry.headers) {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    resp.headers_mut().insert(k, v);
                }
            }
            Ok(resp)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_str(v).unwrap(),
        );
        h.insert("access-control-max-age", HeaderValue::from_static("60"));
        h
    }

    #[test]
    fn cors_reduces_to_the_origin() {
        let o = HeaderValue::from_static("https://a.example");
        let get = Method::GET;
        let mut h = stored("https://b.example, https://a.example");
        apply_cors(&o, &get, &mut h);
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://a.example");
        // max-age only answers preflights.
        assert!(!h.contains_key("access-control-max-age"), "{h:?}");
        let mut h = stored("*");
        apply_cors(&o, &Method::OPTIONS, &mut h);
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://a.example");
        assert_eq!(h["access-control-max-age"], "60");
        let mut h = stored("https://b.example");
        apply_cors(&o, &get, &mut h);
        assert!(h.is_empty(), "{h:?}");
        let mut h = HeaderMap::new();
        apply_cors(&o, &Method::PUT, &mut h);
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://a.example");
        let mut h = HeaderMap::new();
        apply_cors(&o, &get, &mut h);
        assert!(h.is_empty());
    }

    #[test]
    fn cors_needs_the_method_listed() {
        let o = HeaderValue::from_static("https://a.example");
        let with_methods = || {
            let mut h = stored("*");
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, PUT"),
            );
            h.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("m-a"),
            );
            h
        };
        let mut h = with_methods();
        apply_cors(&o, &Method::GET, &mut h);
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://a.example");
        assert_eq!(h[header::ACCESS_CONTROL_EXPOSE_HEADERS], "m-a");
        let mut h = with_methods();
        apply_cors(&o, &Method::HEAD, &mut h);
        assert!(h.is_empty(), "{h:?}");
    }
}
