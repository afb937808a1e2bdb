//! Handlers that touch only metadata: directory PUT, DELETE, metadata
//! updates (`?metadata=true`), snaplinks, HEAD, and directory listings.
//!
//! Guarantees: each write is one meta transaction (its checks evaluated
//! inside it); listings return exactly what meta returned for the page
//! (`min(limit, remaining)` entries, inclusive marker) as newline JSON.

use super::{Ctx, entry_headers, no_content};
use crate::disposition::InvalidDisposition;
use crate::endpoint::LinkPut;
use crate::error::ApiError;
use crate::format::{DIRECTORY_CONTENT_TYPE, ListRecord, http_date_ms};
use crate::query::{Query, list_params};
use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use meta::namespace::{
    Conditions, Entry, EntryKind, Headers, ListOptions, Marker, MetadataUpdate, ReadCheck,
    TypeFilter,
};
use meta::path::{MantaPath, TopDir};

/// muskie's fixed mtime for the top-level directories in `GET /:login`.
const ACCOUNT_ROOT_MTIME_MS: i64 = 1_369_244_383_714; // 2013-05-22T17:39:43.714Z

fn mtime_i64(e: &Entry) -> i64 {
    i64::try_from(e.mtime_ms).unwrap_or(i64::MAX)
}

/// `Last-Modified` (and `Etag` for objects) of an entry, for write answers.
fn write_answer(entry: &Entry) -> Response {
    let mut resp = no_content();
    let h = resp.headers_mut();
    if let Some(etag) = entry.etag()
        && let Ok(v) = HeaderValue::from_str(&etag)
    {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&http_date_ms(mtime_i64(entry))) {
        h.insert(header::LAST_MODIFIED, v);
    }
    resp
}

pub async fn put_directory(
    cx: &Ctx,
    path: &MantaPath,
    headers: &Headers,
) -> Result<Response, ApiError> {
    let out = cx.ns.put_directory(path, headers).await?;
    Ok(write_answer(&out.entry))
}

pub async fn delete(cx: &Ctx, path: &MantaPath, cond: &Conditions) -> Result<Response, ApiError> {
    let out = cx.ns.delete(path, cond).await?;
    cx.release_copies(out.freed);
    Ok(write_answer(&out.entry))
}

pub async fn put_metadata(
    cx: &Ctx,
    path: &MantaPath,
    mut update: MetadataUpdate,
    disposition: Option<Result<String, InvalidDisposition>>,
) -> Result<Response, ApiError> {
    if let Some(d) = disposition {
        // Manta ignored Content-Disposition on directories entirely, valid
        // or not; the entry's kind is read first to know which applies (a
        // delete and mkdir racing in between at worst stores a harmless
        // header on the new directory).
        let is_object = cx.ns.get(path).await?.is_some_and(|e| !e.is_directory());
        if is_object {
            let d = d.map_err(|e| ApiError::BadRequest(e.to_string()))?;
            update.headers.insert("content-disposition".to_owned(), d);
        }
    }
    let entry = cx.ns.put_metadata(path, &update).await?;
    Ok(write_answer(&entry))
}

pub async fn put_link(cx: &Ctx, path: &MantaPath, link: &LinkPut) -> Result<Response, ApiError> {
    // The caller needs read access to the source (cross-account only when
    // public); the target was authorized like any write.
    crate::access::authorize(&cx.ns, cx.caller.as_ref(), &link.source, true).await?;
    let out = cx
        .ns
        .snaplink(&link.source, path, &link.conditions)
        .await
        .map_err(|e| match ApiError::from(e) {
            // Messages name the Location as sent (§7).
            ApiError::SourceObjectNotFound(_) => {
                ApiError::SourceObjectNotFound(link.location.clone())
            }
            ApiError::LinkNotObject(_) => ApiError::LinkNotObject(link.location.clone()),
            ApiError::Auth { code, .. } if code == "AccountDoesNotExist" => {
                ApiError::SourceObjectNotFound(link.location.clone())
            }
            other => other,
        })?;
    cx.release_copies(out.freed);
    Ok(write_answer(&out.entry))
}

/// Reads an entry or answers 404 (`/:login` is synthesized by meta).
pub async fn require_entry(cx: &Ctx, path: &MantaPath) -> Result<Entry, ApiError> {
    cx.ns
        .get(path)
        .await?
        .ok_or_else(|| ApiError::ResourceNotFound(path.to_string()))
}

/// Applies GET/HEAD conditionals to an object entry.
pub fn check_read(
    entry: &Entry,
    cond: &Conditions,
    path: &MantaPath,
) -> Result<Option<Response>, ApiError> {
    if entry.is_directory() || cond.is_empty() {
        // muskie did not evaluate conditionals on directories (§6.6).
        return Ok(None);
    }
    match cond.check_read(entry) {
        ReadCheck::Proceed => Ok(None),
        ReadCheck::PreconditionFailed => Err(ApiError::PreconditionFailed(format!(
            "precondition failed for {path}"
        ))),
        ReadCheck::NotModified => {
            let mut resp = Response::new(Body::empty());
            *resp.status_mut() = StatusCode::NOT_MODIFIED;
            entry_headers(resp.headers_mut(), entry);
            Ok(Some(resp))
        }
    }
}

/// Number of entries of a directory (`/:login` has its five top dirs).
async fn result_set_size(cx: &Ctx, path: &MantaPath) -> Result<u64, ApiError> {
    if path.is_account_root() {
        return Ok(TopDir::ALL.len() as u64);
    }
    Ok(cx.ns.count(path).await?)
}

/// HEAD/GET response head of a directory.
fn directory_head(entry: &Entry, size: u64) -> Response {
    let mut resp = Response::new(Body::empty());
    entry_headers(resp.headers_mut(), entry);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(DIRECTORY_CONTENT_TYPE),
    );
    h.insert("result-set-size", HeaderValue::from(size));
    resp
}

pub async fn head_directory(
    cx: &Ctx,
    path: &MantaPath,
    entry: &Entry,
) -> Result<Response, ApiError> {
    let size = result_set_size(cx, path).await?;
    Ok(directory_head(entry, size))
}

fn record(e: &Entry) -> ListRecord {
    match &e.kind {
        EntryKind::Directory => ListRecord::directory(e.name.clone(), mtime_i64(e)),
        EntryKind::Object(o) => ListRecord {
            name: e.name.clone(),
            etag: Some(o.object_id.to_string()),
            size: Some(o.size),
            kind: "object",
            content_type: Some(o.content_type.clone()),
            content_disposition: e.headers.get("content-disposition").cloned(),
            content_md5: Some(o.content_md5.clone()),
            mtime: crate::format::iso_ms(mtime_i64(e)),
            durability: Some(u32::from(o.durability)),
        },
    }
}

/// The account root's page: the top directories, exclusive marker (§3).
fn account_root_page(opts: &ListOptions) -> Vec<ListRecord> {
    let wanted = |t: &&TopDir| match &opts.marker {
        Some(Marker::Name(m)) => t.as_str() > m.as_str(),
        _ => true,
    };
    let mut tops: Vec<TopDir> = TopDir::ALL.into_iter().collect();
    if opts.reverse {
        tops.reverse();
    }
    if opts.filter == TypeFilter::Objects {
        return Vec::new();
    }
    tops.iter()
        .filter(wanted)
        .take(opts.limit)
        .map(|t| ListRecord::directory(t.as_str().to_owned(), ACCOUNT_ROOT_MTIME_MS))
        .collect()
}

pub async fn list_directory(
    cx: &Ctx,
    path: &MantaPath,
    entry: &Entry,
    query: &Query,
) -> Result<Response, ApiError> {
    let opts = list_params(query)?;
    let size = result_set_size(cx, path).await?;
    let records: Vec<ListRecord> = if path.is_account_root() {
        account_root_page(&opts)
    } else {
        cx.ns.list(path, &opts).await?.iter().map(record).collect()
    };
    let mut body = Vec::with_capacity(records.len() * 160);
    for r in &records {
        r.write_line(&mut body);
    }
    let mut resp = directory_head(entry, size);
    *resp.body_mut() = Body::from(body);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_root_listing() {
        let opts = ListOptions::default();
        let names: Vec<String> = account_root_page(&opts)
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["jobs", "public", "reports", "stor", "uploads"]);
        let opts = ListOptions {
            marker: Some(Marker::Name("public".into())),
            limit: 2,
            ..ListOptions::default()
        };
        let names: Vec<String> = account_root_page(&opts)
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["reports", "stor"]);
        assert_eq!(
            crate::format::iso_ms(ACCOUNT_ROOT_MTIME_MS),
            "2013-05-22T17:39:43.714Z"
        );
    }
}
