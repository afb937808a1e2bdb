//! S3 multipart uploads, laid out as Manta's (`handlers::mpu`): an upload
//! is the directory `/:login/uploads/<first hex digit>/<id>` holding its
//! record in a stored header ([`RECORD_HEADER`]) and its parts as ordinary
//! objects named by part number.
//!
//! Guarantees: a part is written through the shared write path (durable on
//! every copy, checksummed) before its ETag is returned; completing checks
//! every listed part (exists, ETag, ascending, at least 5 MiB but the last)
//! before anything is written, then streams the parts in order to fresh
//! copies (`blobs::concat`, as Manta's commit does) and commits the target
//! with one meta commit; the upload and its parts are removed only after.
//! The ETag is `<hex md5 of the parts' md5s>-<parts>`, as S3 defines it.
//! Known limit (as Manta's): a complete racing an abort is last-writer-wins
//! on the record.

use super::error::{S3ApiError, S3ApiResult};
use super::names::{self, ETAG_HEADER};
use super::ops::{S3Api, login, stored_headers};
use crate::blobs;
use crate::endpoint::upload_prefix;
use md5::{Digest, Md5};
use meta::namespace::{Conditions, Entry, Headers, ListOptions, Marker, NewObject};
use meta::path::{MantaPath, TopDir};
use s3s::S3Request;
use s3s::dto::*;
use serde::{Deserialize, Serialize};

/// Stored-header key of an S3 upload's record (never returned).
pub const RECORD_HEADER: &str = "tidepool-s3-mpu";
const MIN_PART_SIZE: u64 = 5 << 20;
const MAX_PART_NUMBER: i32 = 10_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    bucket: String,
    key: String,
    content_type: String,
    headers: Headers,
    durability: u32,
    created_ms: u64,
}

fn upload_dir(login: &str, id: &uuid::Uuid) -> S3ApiResult<MantaPath> {
    MantaPath::from_parts(
        login,
        Some(TopDir::Uploads),
        vec![upload_prefix(id), id.to_string()],
    )
    .map_err(|e| S3ApiError::InvalidArgument(e.to_string()))
}

/// The upload's directory and record; `NoSuchUpload` unless it is an S3
/// upload of this account for this bucket and key.
async fn load(
    api: &S3Api,
    login: &str,
    upload_id: &str,
    bucket: &str,
    key: &str,
) -> S3ApiResult<(MantaPath, Record)> {
    let missing = || S3ApiError::NoSuchUpload(upload_id.to_owned());
    let id = uuid::Uuid::parse_str(upload_id).map_err(|_| missing())?;
    let dir = upload_dir(login, &id)?;
    let ns = &api.gateway().inner.namespace;
    let e = ns.get(&dir).await?.ok_or_else(missing)?;
    let raw = e.headers.get(RECORD_HEADER).ok_or_else(missing)?;
    let r: Record = serde_json::from_str(raw).map_err(|_| missing())?;
    if r.bucket != bucket || r.key != key {
        return Err(missing());
    }
    Ok((dir, r))
}

pub(crate) async fn create(
    api: &S3Api,
    req: S3Request<CreateMultipartUploadInput>,
) -> S3ApiResult<CreateMultipartUploadOutput> {
    let login = login(&req)?;
    let durability = api.durability_of(&req.headers)?;
    let i = req.input;
    // Checked now so a bad key fails before any part is sent.
    names::key_path(&login, &i.bucket, &i.key)?;
    if i.key.ends_with('/') {
        return Err(S3ApiError::InvalidArgument(
            "a key ending in '/' names a directory".into(),
        ));
    }
    let bpath = names::bucket_path(&login, &i.bucket)?;
    match api.gateway().inner.namespace.get(&bpath).await? {
        Some(e) if e.is_directory() => {}
        _ => return Err(S3ApiError::NoSuchBucket(i.bucket.clone())),
    }
    let headers = stored_headers(
        i.metadata.as_ref(),
        i.cache_control.as_deref(),
        i.content_disposition.as_deref(),
    )?;
    let record = Record {
        bucket: i.bucket.clone(),
        key: i.key.clone(),
        content_type: i
            .content_type
            .as_ref()
            .map(|c| crate::mime::normalize(&c.to_string()))
            .unwrap_or_else(|| "application/octet-stream".to_owned()),
        headers,
        durability,
        created_ms: meta::namespace::system_now_ms(),
    };
    let id = uuid::Uuid::new_v4();
    let dir = upload_dir(&login, &id)?;
    let ns = &api.gateway().inner.namespace;
    if let Some(prefix) = dir.parent() {
        ns.put_directory(&prefix, &Headers::new()).await?;
    }
    let mut h = Headers::new();
    h.insert(
        RECORD_HEADER.to_owned(),
        serde_json::to_string(&record).map_err(crate::error::ApiError::internal)?,
    );
    ns.put_directory(&dir, &h).await?;
    Ok(CreateMultipartUploadOutput {
        bucket: Some(i.bucket),
        key: Some(i.key),
        upload_id: Some(id.to_string()),
        ..Default::default()
    })
}

fn part_name(n: i32) -> S3ApiResult<String> {
    if (1..=MAX_PART_NUMBER).contains(&n) {
        Ok(n.to_string())
    } else {
        Err(S3ApiError::InvalidArgument(format!(
            "part number must be between 1 and {MAX_PART_NUMBER}"
        )))
    }
}

pub(crate) async fn upload_part(
    api: &S3Api,
    req: S3Request<UploadPartInput>,
) -> S3ApiResult<UploadPartOutput> {
    let login = login(&req)?;
    let i = req.input;
    let name = part_name(i.part_number)?;
    let (dir, r) = load(api, &login, &i.upload_id, &i.bucket, &i.key).await?;
    let path = dir
        .join(&name)
        .map_err(|e| S3ApiError::InvalidArgument(e.to_string()))?;
    let gw = api.gateway();
    let id = uuid::Uuid::new_v4();
    let announced = i.content_length.and_then(|n| u64::try_from(n).ok());
    let cap = gw.inner.limits.max_content_length;
    let stored = match i.body {
        None => blobs::empty(),
        Some(body) => blobs::store(gw, r.durability, announced, id, body, cap).await?,
    };
    if let Some(md5) = &i.content_md5
        && *md5 != stored.md5
    {
        gw.delete_orphans(id, &stored.copies);
        return Err(S3ApiError::Api(crate::error::ApiError::BadDigest));
    }
    let etag = names::md5_hex(&stored.md5);
    let new = NewObject {
        object_id: id,
        size: stored.size,
        content_md5: stored.md5,
        blake3: stored.blake3,
        content_type: "application/octet-stream".to_owned(),
        headers: Headers::new(),
        copies: stored.copies,
        durability: u8::try_from(r.durability).unwrap_or(u8::MAX),
    };
    gw.commit_object(&path, new, &Conditions::default()).await?;
    Ok(UploadPartOutput {
        e_tag: Some(ETag::Strong(etag)),
        ..Default::default()
    })
}

/// A part copied from a range of an existing object (what `aws s3 cp`
/// does for copies above its multipart threshold): the source range is
/// read from its first working copy and streamed into the part.
pub(crate) async fn upload_part_copy(
    api: &S3Api,
    req: S3Request<UploadPartCopyInput>,
) -> S3ApiResult<UploadPartCopyOutput> {
    let login = login(&req)?;
    let i = req.input;
    let name = part_name(i.part_number)?;
    let (dir, r) = load(api, &login, &i.upload_id, &i.bucket, &i.key).await?;
    let (src_bucket, src_key) = match &i.copy_source {
        CopySource::Bucket {
            bucket,
            key,
            version_id: None,
        } => (bucket.to_string(), key.to_string()),
        _ => {
            return Err(S3ApiError::NotImplemented(
                "only bucket/key copy sources without versionId are supported".into(),
            ));
        }
    };
    let src_path = names::key_path(&login, &src_bucket, &src_key)?;
    let gw = api.gateway();
    let src = match gw.inner.namespace.get(&src_path).await? {
        Some(e) if !e.is_directory() => e,
        _ => return Err(S3ApiError::NoSuchKey(src_key)),
    };
    let o = src
        .object()
        .ok_or_else(|| S3ApiError::NoSuchKey(src_key.clone()))?;
    let etag = names::etag(&src).unwrap_or_default();
    let cond_ok = i.copy_source_if_match.as_ref().is_none_or(|c| {
        matches!(c, ETagCondition::Any) || c.as_etag().is_some_and(|t| t.value() == etag)
    }) && i.copy_source_if_none_match.as_ref().is_none_or(|c| {
        !(matches!(c, ETagCondition::Any) || c.as_etag().is_some_and(|t| t.value() == etag))
    });
    if !cond_ok {
        return Err(S3ApiError::PreconditionFailed);
    }
    let range = match i.copy_source_range.as_deref() {
        None => None,
        Some(spec) => {
            let (a, b) = spec
                .strip_prefix("bytes=")
                .and_then(|r| r.split_once('-'))
                .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
                .ok_or_else(|| {
                    S3ApiError::InvalidArgument(format!("invalid x-amz-copy-source-range {spec:?}"))
                })?;
            if a > b || b >= o.size {
                return Err(S3ApiError::InvalidRange);
            }
            Some((a, b))
        }
    };
    let len = range.map_or(o.size, |(a, b)| b - a + 1);
    let id = uuid::Uuid::new_v4();
    let stored = if len == 0 {
        blobs::empty()
    } else {
        let source = blobs::read(gw, o, range).await?;
        blobs::store(gw, r.durability, Some(len), id, source, u64::MAX).await?
    };
    let path = dir
        .join(&name)
        .map_err(|e| S3ApiError::InvalidArgument(e.to_string()))?;
    let part_etag = names::md5_hex(&stored.md5);
    let new = NewObject {
        object_id: id,
        size: stored.size,
        content_md5: stored.md5,
        blake3: stored.blake3,
        content_type: "application/octet-stream".to_owned(),
        headers: Headers::new(),
        copies: stored.copies,
        durability: u8::try_from(r.durability).unwrap_or(u8::MAX),
    };
    let out = gw.commit_object(&path, new, &Conditions::default()).await?;
    Ok(UploadPartCopyOutput {
        copy_part_result: Some(CopyPartResult {
            e_tag: Some(ETag::Strong(part_etag)),
            last_modified: Some(names::timestamp(out.entry.mtime_ms)),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// Every part of an upload, by part number.
async fn parts(api: &S3Api, dir: &MantaPath) -> S3ApiResult<Vec<(i32, Entry)>> {
    let ns = &api.gateway().inner.namespace;
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let opts = ListOptions {
            limit: 1000,
            marker: marker.clone().map(Marker::Name),
            ..ListOptions::default()
        };
        let page = ns.list(dir, &opts).await?;
        let full = page.len() == 1000;
        let last = page.last().map(|e| e.name.clone());
        for e in page {
            if marker.as_deref() == Some(e.name.as_str()) || e.is_directory() {
                continue;
            }
            if let Ok(n) = e.name.parse::<i32>() {
                out.push((n, e));
            }
        }
        marker = last;
        if !full {
            break;
        }
    }
    out.sort_by_key(|(n, _)| *n);
    Ok(out)
}

pub(crate) async fn list_parts(
    api: &S3Api,
    req: S3Request<ListPartsInput>,
) -> S3ApiResult<ListPartsOutput> {
    let login = login(&req)?;
    let i = req.input;
    let (dir, _) = load(api, &login, &i.upload_id, &i.bucket, &i.key).await?;
    let max = i.max_parts.unwrap_or(1000).clamp(0, 1000);
    let from = i.part_number_marker.unwrap_or(0);
    let all: Vec<_> = parts(api, &dir)
        .await?
        .into_iter()
        .filter(|(n, _)| *n > from)
        .collect();
    let truncated = all.len() > max as usize;
    let page: Vec<Part> = all
        .into_iter()
        .take(max as usize)
        .map(|(n, e)| Part {
            e_tag: names::etag(&e).map(ETag::Strong),
            last_modified: Some(names::timestamp(e.mtime_ms)),
            part_number: Some(n),
            size: e.object().and_then(|o| i64::try_from(o.size).ok()),
            ..Default::default()
        })
        .collect();
    let next = page.last().and_then(|p| p.part_number);
    Ok(ListPartsOutput {
        bucket: Some(i.bucket),
        key: Some(i.key),
        upload_id: Some(i.upload_id),
        max_parts: Some(max),
        part_number_marker: i.part_number_marker,
        next_part_number_marker: next,
        is_truncated: Some(truncated),
        parts: Some(page),
        ..Default::default()
    })
}

/// Removes an upload's parts and directory (their copies are released).
async fn remove(api: &S3Api, dir: &MantaPath) -> S3ApiResult<()> {
    let gw = api.gateway();
    let ns = &gw.inner.namespace;
    for (_, e) in parts(api, dir).await? {
        let p = dir
            .join(&e.name)
            .map_err(|e| S3ApiError::InvalidArgument(e.to_string()))?;
        match ns.delete(&p, &Conditions::default()).await {
            Ok(out) => gw.release_copies(out.freed),
            Err(meta::namespace::NamespaceError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    match ns.delete(dir, &Conditions::default()).await {
        Ok(_) | Err(meta::namespace::NamespaceError::NotFound(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn complete(
    api: &S3Api,
    req: S3Request<CompleteMultipartUploadInput>,
) -> S3ApiResult<CompleteMultipartUploadOutput> {
    let login = login(&req)?;
    let i = req.input;
    let (dir, r) = load(api, &login, &i.upload_id, &i.bucket, &i.key).await?;
    let listed = i
        .multipart_upload
        .and_then(|m| m.parts)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            S3ApiError::InvalidArgument("The XML you provided did not list any part".into())
        })?;
    let numbers = listed
        .iter()
        .map(|p| p.part_number)
        .collect::<Option<Vec<i32>>>()
        .ok_or_else(|| S3ApiError::InvalidPart("a part has no PartNumber".into()))?;
    if numbers.windows(2).any(|w| w[0] >= w[1]) {
        return Err(S3ApiError::InvalidPartOrder);
    }
    let stored_parts = parts(api, &dir).await?;
    let mut infos = Vec::with_capacity(listed.len());
    let mut digest = Md5::new();
    for (idx, (p, n)) in listed.iter().zip(numbers).enumerate() {
        let (_, e) = stored_parts
            .iter()
            .find(|(m, _)| *m == n)
            .ok_or_else(|| S3ApiError::InvalidPart(format!("part {n} was not uploaded")))?;
        let want = names::etag(e).unwrap_or_default();
        let given = p.e_tag.as_ref().map(|t| t.value().to_ascii_lowercase());
        if given.as_deref() != Some(want.as_str()) {
            return Err(S3ApiError::InvalidPart(format!(
                "part {n}: the ETag does not match the uploaded part"
            )));
        }
        let o = e
            .object()
            .ok_or_else(|| S3ApiError::InvalidPart(format!("part {n} is not an object")))?;
        if idx + 1 < listed.len() && o.size < MIN_PART_SIZE {
            return Err(S3ApiError::EntityTooSmall(format!(
                "part {n} is {} bytes",
                o.size
            )));
        }
        digest.update(hex::decode(&want).unwrap_or_default());
        infos.push(o.clone());
    }
    let etag = format!("{}-{}", hex::encode(digest.finalize()), listed.len());
    let bpath = names::bucket_path(&login, &i.bucket)?;
    let path = names::key_path(&login, &i.bucket, &i.key)?;
    let parent = path
        .parent()
        .ok_or_else(|| S3ApiError::InvalidArgument("key has no parent".into()))?;
    api.ensure_dir(&bpath, &parent).await?;
    let gw = api.gateway();
    let id = uuid::Uuid::new_v4();
    let stored = blobs::concat(gw, infos, r.durability, id).await?;
    let mut headers = r.headers.clone();
    headers.insert(ETAG_HEADER.to_owned(), etag.clone());
    let new = NewObject {
        object_id: id,
        size: stored.size,
        content_md5: stored.md5,
        blake3: stored.blake3,
        content_type: r.content_type.clone(),
        headers,
        copies: stored.copies,
        durability: u8::try_from(r.durability).unwrap_or(u8::MAX),
    };
    gw.commit_object(&path, new, &Conditions::default()).await?;
    // The object is committed: a failure to clean up only leaves garbage.
    if let Err(e) = remove(api, &dir).await {
        tracing::warn!(error = %e, upload = %i.upload_id, "removing a completed upload failed");
    }
    Ok(CompleteMultipartUploadOutput {
        bucket: Some(i.bucket.clone()),
        key: Some(i.key.clone()),
        e_tag: Some(ETag::Strong(etag)),
        location: Some(format!("/{}/{}", i.bucket, i.key)),
        ..Default::default()
    })
}

pub(crate) async fn abort(
    api: &S3Api,
    req: S3Request<AbortMultipartUploadInput>,
) -> S3ApiResult<AbortMultipartUploadOutput> {
    let login = login(&req)?;
    let i = req.input;
    let (dir, _) = load(api, &login, &i.upload_id, &i.bucket, &i.key).await?;
    remove(api, &dir).await?;
    Ok(AbortMultipartUploadOutput::default())
}
