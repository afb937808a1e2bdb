//! Object data paths: PUT (stream to N nodes, then one meta commit), GET
//! (first working copy, ranges) and HEAD.
//!
//! Guarantees:
//! - a PUT reads its body only after every check passed (parent exists and
//!   is a directory, target is not a directory, conditions, durability,
//!   placement), so `100 Continue` is sent only then;
//! - the meta commit happens only after every copy is durable and the MD5
//!   matched; a failure before leaves nothing visible (the orphaned copies
//!   are deleted best-effort; storage GC audits catch the rest);
//! - a GET announces the exact `Content-Length` and `Content-MD5` of the
//!   bytes it serves, and never ends a 200 early: a copy failing mid-stream
//!   aborts the connection.

use super::{Ctx, entry_headers, no_content};
use crate::blobs;
use crate::endpoint::ObjectPut;
use crate::error::ApiError;
use crate::format::{b64, http_date_ms};
use crate::headers::{ByteRange, RangeRefusal};
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use meta::namespace::{Entry, NewObject};
use meta::path::MantaPath;

/// Checks that must pass before the body is touched (spec §6.1 order).
async fn pre_checks(cx: &Ctx, path: &MantaPath, put: &ObjectPut) -> Result<(), ApiError> {
    let parent = path
        .parent()
        .ok_or_else(|| ApiError::internal("object PUT on a root passed parsing"))?;
    match cx.ns.get(&parent).await? {
        None => return Err(ApiError::DirectoryDoesNotExist(parent.to_string())),
        Some(p) if !p.is_directory() => {
            return Err(ApiError::ParentNotDirectory(parent.to_string()));
        }
        Some(_) => {}
    }
    let current = cx.ns.get(path).await?;
    if current.as_ref().is_some_and(Entry::is_directory) {
        return Err(ApiError::OperationNotAllowedOnDirectory(path.to_string()));
    }
    if !put.conditions.allows_write(current.as_ref()) {
        return Err(ApiError::PreconditionFailed(format!(
            "precondition failed for {path}"
        )));
    }
    Ok(())
}

pub async fn put_object(
    cx: &Ctx,
    path: &MantaPath,
    put: &ObjectPut,
    body: Body,
) -> Result<Response, ApiError> {
    pre_checks(cx, path, put).await?;
    let object_id = uuid::Uuid::new_v4();
    let durability =
        u8::try_from(put.durability).map_err(|_| ApiError::InvalidDurabilityLevel {
            max: cx.gw.inner.limits.max_durability,
        })?;

    let stored = blobs::store(
        &cx.gw,
        put.durability,
        put.content_length,
        object_id,
        body.into_data_stream(),
        put.cap,
    )
    .await?;

    if let Some(expected) = put.content_md5 {
        let expected = b64(&expected);
        if expected != stored.md5 {
            cx.gw.delete_orphans(object_id, &stored.copies);
            return Err(ApiError::ContentMd5Mismatch {
                expected,
                computed: stored.md5,
            });
        }
    }

    let mut headers = put.headers.clone();
    if path.top() == Some(meta::path::TopDir::Public) {
        // Manta made public objects fetchable cross-origin unless told otherwise.
        headers
            .entry("access-control-allow-origin".to_owned())
            .or_insert_with(|| "*".to_owned());
    }
    let new = NewObject {
        object_id,
        size: stored.size,
        content_md5: stored.md5.clone(),
        blake3: stored.blake3.clone(),
        content_type: put.content_type.clone(),
        headers,
        copies: stored.copies.clone(),
        durability,
    };
    let out = cx.gw.commit_object(path, new, &put.conditions).await?;

    let mut resp = no_content();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&object_id.to_string()) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&http_date_ms(
        i64::try_from(out.entry.mtime_ms).unwrap_or(0),
    )) {
        h.insert(header::LAST_MODIFIED, v);
    }
    if let Ok(v) = HeaderValue::from_str(&stored.md5) {
        h.insert("computed-md5", v);
    }
    Ok(resp)
}

/// HEAD of an object: GET's headers, `Content-Length` = size, no body.
pub fn head_object(entry: &Entry) -> Response {
    let mut resp = Response::new(Body::empty());
    entry_headers(resp.headers_mut(), entry);
    if let Some(o) = entry.object() {
        resp.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(o.size));
    }
    resp
}

pub async fn get_object(
    cx: &Ctx,
    entry: &Entry,
    range: Result<Option<ByteRange>, RangeRefusal>,
) -> Result<Response, ApiError> {
    let Some(o) = entry.object() else {
        return Err(ApiError::internal("get_object on a directory"));
    };
    let range = match range {
        Ok(r) => Ok(r),
        Err(RangeRefusal::Multiple) => return Err(RangeRefusal::Multiple.into()),
        Err(malformed) => Err(ApiError::from(malformed)),
    };
    let resolved = match range.and_then(|r| r.map(|r| r.resolve(o.size)).transpose()) {
        Ok(r) => r,
        Err(e) => {
            let mut resp = e.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", o.size)) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(resp);
        }
    };
    let mut resp = Response::new(Body::empty());
    entry_headers(resp.headers_mut(), entry);
    resp.headers_mut()
        .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let len = match resolved {
        Some((a, b)) => b - a + 1,
        None => o.size,
    };
    if len > 0 {
        let stream = blobs::read(&cx.gw, o, resolved).await?;
        *resp.body_mut() = Body::from_stream(stream);
    }
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Some((a, b)) = resolved {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
        let h = resp.headers_mut();
        // The stored MD5 is of the whole object, not of this part.
        h.remove("content-md5");
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {a}-{b}/{}", o.size)) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(resp)
}
