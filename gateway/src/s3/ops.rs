//! The S3 operations: buckets, objects, listings, copies, deletes, and the
//! multipart calls (delegated to [`super::mpu`]).
//!
//! Guarantees: every path is built from the signing account's login
//! ([`Principal`]); an object PUT creates missing intermediate directories
//! before reading the body and answers only after the shared write path
//! committed it; a delete removes the directories it leaves empty up to the
//! bucket, so prefixes disappear as they do in S3; conditional reads and
//! writes compare S3 ETags.

use super::Principal;
use super::error::{S3ApiError, S3ApiResult};
use super::list::{Item, Walker};
use super::names::{self, ETAG_HEADER};
use crate::Gateway;
use crate::blobs;
use base64::Engine as _;
use futures::Stream;
use http::{HeaderMap, HeaderName, HeaderValue};
use meta::namespace::{
    Conditions, Entry, Headers, ListOptions, Marker, MetadataUpdate, NamespaceError, NewObject,
    TypeFilter,
};
use meta::path::MantaPath;
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result};
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

/// Default and largest `max-keys`.
const MAX_KEYS: i32 = 1000;
const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// The `s3s` handler over a [`Gateway`].
pub(crate) struct S3Api {
    pub gw: Gateway,
}

pub(crate) fn login<T>(req: &S3Request<T>) -> S3ApiResult<String> {
    req.extensions
        .get::<Principal>()
        .map(|p| p.login.clone())
        .ok_or_else(|| S3ApiError::AccessDenied("request is not signed".into()))
}

/// The metadata headers a write stores: `m-*` from `x-amz-meta-*`, plus
/// `cache-control` and `content-disposition`, checked and capped by the
/// same function as a Manta PUT's headers.
pub(crate) fn stored_headers(
    metadata: Option<&Metadata>,
    cache_control: Option<&str>,
    content_disposition: Option<&str>,
) -> S3ApiResult<Headers> {
    let mut h = HeaderMap::new();
    let mut add = |k: &str, v: &str| -> S3ApiResult<()> {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| S3ApiError::InvalidArgument(format!("invalid metadata name {k:?}")))?;
        let value = HeaderValue::from_str(v)
            .map_err(|_| S3ApiError::InvalidArgument(format!("invalid value for {k:?}")))?;
        h.append(name, value);
        Ok(())
    };
    for (k, v) in names::user_metadata(metadata) {
        add(&k, &v)?;
    }
    if let Some(v) = cache_control {
        add("cache-control", v)?;
    }
    if let Some(v) = content_disposition {
        add("content-disposition", v)?;
    }
    Ok(crate::headers::stored_headers(&h)?)
}

/// A response stream `s3s` can hold (it wants `Sync`; the node client's
/// stream is only `Send`, and is only ever polled through `&mut`).
struct SyncStream<S>(Mutex<Pin<Box<S>>>);

impl<S: Stream + Send> Stream for SyncStream<S> {
    type Item = S::Item;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        match self.get_mut().0.get_mut() {
            Ok(s) => s.as_mut().poll_next(cx),
            Err(poisoned) => poisoned.into_inner().as_mut().poll_next(cx),
        }
    }
}

fn secs(t: &Timestamp) -> i64 {
    time::OffsetDateTime::from(t.clone()).unix_timestamp()
}

fn etag_matches(cond: &ETagCondition, etag: &str) -> bool {
    match cond {
        ETagCondition::Any => true,
        ETagCondition::ETag(t) => t.value() == etag,
    }
}

/// S3's (RFC 9110's) conditional read rules against the S3 ETag.
fn check_read(
    e: &Entry,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
    if_unmodified_since: Option<&Timestamp>,
) -> S3ApiResult<()> {
    let etag = names::etag(e).unwrap_or_default();
    let mtime = i64::try_from(e.mtime_ms / 1000).unwrap_or(i64::MAX);
    match if_match {
        Some(c) if !etag_matches(c, &etag) => return Err(S3ApiError::PreconditionFailed),
        Some(_) => {}
        None => {
            if if_unmodified_since.is_some_and(|t| mtime > secs(t)) {
                return Err(S3ApiError::PreconditionFailed);
            }
        }
    }
    match if_none_match {
        Some(c) if etag_matches(c, &etag) => return Err(S3ApiError::NotModified),
        Some(_) => {}
        None => {
            if if_modified_since.is_some_and(|t| mtime <= secs(t)) {
                return Err(S3ApiError::NotModified);
            }
        }
    }
    Ok(())
}

impl S3Api {
    fn ns(&self) -> &meta::namespace::Namespace {
        &self.gw.inner.namespace
    }

    async fn require_bucket(&self, bucket: &MantaPath) -> S3ApiResult<()> {
        match self.ns().get(bucket).await? {
            Some(e) if e.is_directory() => Ok(()),
            _ => Err(S3ApiError::NoSuchBucket(
                bucket.name().unwrap_or("").to_owned(),
            )),
        }
    }

    /// Makes every directory from the bucket down to `dir` (S3 has no
    /// directories: a key's prefixes exist as soon as the key does).
    pub(crate) async fn ensure_dir(&self, bucket: &MantaPath, dir: &MantaPath) -> S3ApiResult<()> {
        match self.ns().get(dir).await? {
            Some(e) if e.is_directory() => return Ok(()),
            Some(_) => {
                return Err(S3ApiError::InvalidArgument(format!(
                    "a prefix of this key is an object: {dir}"
                )));
            }
            None if dir == bucket => {
                return Err(S3ApiError::NoSuchBucket(
                    bucket.name().unwrap_or("").to_owned(),
                ));
            }
            None => {}
        }
        self.require_bucket(bucket).await?;
        let mut p = bucket.clone();
        for seg in &dir.rest()[bucket.rest().len()..] {
            p = p
                .join(seg)
                .map_err(|e| S3ApiError::InvalidArgument(e.to_string()))?;
            match self.ns().get(&p).await? {
                Some(e) if e.is_directory() => {}
                Some(_) => {
                    return Err(S3ApiError::InvalidArgument(format!(
                        "a prefix of this key is an object: {p}"
                    )));
                }
                None => {
                    self.ns().put_directory(&p, &Headers::new()).await?;
                }
            }
        }
        Ok(())
    }

    /// Removes the directories below the bucket that `path`'s removal left
    /// empty (stops at the first one that is not).
    async fn prune(&self, bucket: &MantaPath, path: &MantaPath) {
        let mut p = path.parent();
        while let Some(dir) = p {
            if dir.rest().len() <= bucket.rest().len() {
                break;
            }
            match self.ns().delete(&dir, &Conditions::default()).await {
                Ok(_) => p = dir.parent(),
                Err(_) => break,
            }
        }
    }

    /// Deletes one key; a missing key is not an error (S3 semantics).
    async fn delete_key(&self, login: &str, bucket: &str, key: &str) -> S3ApiResult<()> {
        let bpath = names::bucket_path(login, bucket)?;
        let path = names::key_path(login, bucket, key)?;
        let is_dir_marker = key.ends_with('/');
        match self.ns().delete(&path, &Conditions::default()).await {
            Ok(out) => {
                if out.entry.is_directory() && !is_dir_marker {
                    // Should not happen (refused below), but never lose data.
                    return Ok(());
                }
                self.gw.release_copies(out.freed);
                self.prune(&bpath, &path).await;
                Ok(())
            }
            Err(NamespaceError::NotFound(_)) | Err(NamespaceError::DirectoryDoesNotExist(_)) => {
                Ok(())
            }
            // A key naming a directory (`a` when `a/b` exists), or a
            // non-empty "folder": S3 has no such object.
            Err(NamespaceError::DirectoryNotEmpty(_)) | Err(NamespaceError::NotDirectory(_)) => {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The object entry at a key, or `NoSuchKey`.
    async fn object_entry(&self, login: &str, bucket: &str, key: &str) -> S3ApiResult<Entry> {
        let bpath = names::bucket_path(login, bucket)?;
        let path = names::key_path(login, bucket, key)?;
        match self.ns().get(&path).await? {
            Some(e) if !e.is_directory() => Ok(e),
            _ => {
                // Distinguish a missing bucket, as S3 does.
                self.require_bucket(&bpath).await?;
                Err(S3ApiError::NoSuchKey(key.to_owned()))
            }
        }
    }

    fn durability(&self, h: &HeaderMap) -> S3ApiResult<u32> {
        let limits = self.gw.inner.limits;
        Ok(crate::headers::parse_durability(h, limits.max_durability)?
            .unwrap_or(limits.default_durability))
    }

    /// Conditions of a write, in meta's terms (object ids), from S3 ETag
    /// conditions on the current entry.
    async fn write_conditions(
        &self,
        path: &MantaPath,
        if_match: Option<&ETagCondition>,
        if_none_match: Option<&ETagCondition>,
    ) -> S3ApiResult<Conditions> {
        let mut cond = Conditions::default();
        if if_match.is_none() && if_none_match.is_none() {
            return Ok(cond);
        }
        let current = self.ns().get(path).await?.filter(|e| !e.is_directory());
        let etag = current.as_ref().and_then(names::etag);
        if let Some(c) = if_match {
            match (&current, &etag) {
                (Some(e), Some(t)) if etag_matches(c, t) => {
                    cond.if_match = Some(vec![e.etag().unwrap_or_default()]);
                }
                _ => return Err(S3ApiError::PreconditionFailed),
            }
        }
        if let Some(c) = if_none_match {
            match c {
                ETagCondition::Any => cond.if_none_match = Some(vec!["*".to_owned()]),
                ETagCondition::ETag(_) => {
                    if let (Some(e), Some(t)) = (&current, &etag) {
                        if etag_matches(c, t) {
                            return Err(S3ApiError::PreconditionFailed);
                        }
                        cond.if_match = Some(vec![e.etag().unwrap_or_default()]);
                    }
                }
            }
        }
        Ok(cond)
    }

    async fn put(&self, req: S3Request<PutObjectInput>) -> S3ApiResult<PutObjectOutput> {
        let login = login(&req)?;
        let durability = self.durability(&req.headers)?;
        let i = req.input;
        let bpath = names::bucket_path(&login, &i.bucket)?;
        let path = names::key_path(&login, &i.bucket, &i.key)?;
        let announced = i.content_length.and_then(|n| u64::try_from(n).ok());
        if i.key.ends_with('/') {
            // A "folder" marker: the directory itself.
            if announced.is_some_and(|n| n > 0) {
                return Err(S3ApiError::InvalidArgument(
                    "a key ending in '/' names a directory and cannot hold bytes".into(),
                ));
            }
            self.ensure_dir(&bpath, &path).await?;
            return Ok(PutObjectOutput {
                e_tag: Some(ETag::Strong(names::md5_hex(&blobs::empty().md5))),
                ..Default::default()
            });
        }
        let parent = path
            .parent()
            .ok_or_else(|| S3ApiError::InvalidArgument("key has no parent".into()))?;
        self.ensure_dir(&bpath, &parent).await?;
        let cond = self
            .write_conditions(&path, i.if_match.as_ref(), i.if_none_match.as_ref())
            .await?;
        let headers = stored_headers(
            i.metadata.as_ref(),
            i.cache_control.as_deref(),
            i.content_disposition.as_deref(),
        )?;
        let content_type = i
            .content_type
            .as_ref()
            .map(|c| crate::mime::normalize(&c.to_string()))
            .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned());
        let object_id = uuid::Uuid::new_v4();
        let cap = self.gw.inner.limits.max_content_length;
        let stored = match i.body {
            None => blobs::empty(),
            Some(body) => {
                blobs::store(&self.gw, durability, announced, object_id, body, cap).await?
            }
        };
        if let Some(md5) = &i.content_md5
            && *md5 != stored.md5
        {
            self.gw.delete_orphans(object_id, &stored.copies);
            return Err(S3ApiError::Api(crate::error::ApiError::BadDigest));
        }
        let etag = names::md5_hex(&stored.md5);
        let new = NewObject {
            object_id,
            size: stored.size,
            content_md5: stored.md5,
            blake3: stored.blake3,
            content_type,
            headers,
            copies: stored.copies,
            durability: u8::try_from(durability).unwrap_or(u8::MAX),
        };
        self.gw.commit_object(&path, new, &cond).await?;
        Ok(PutObjectOutput {
            e_tag: Some(ETag::Strong(etag)),
            ..Default::default()
        })
    }

    async fn get(&self, req: S3Request<GetObjectInput>) -> S3ApiResult<GetObjectOutput> {
        let login = login(&req)?;
        let i = req.input;
        if i.version_id.is_some() || i.part_number.is_some() {
            return Err(S3ApiError::NotImplemented(
                "versionId and partNumber are not supported".into(),
            ));
        }
        let e = self.object_entry(&login, &i.bucket, &i.key).await?;
        check_read(
            &e,
            i.if_match.as_ref(),
            i.if_none_match.as_ref(),
            i.if_modified_since.as_ref(),
            i.if_unmodified_since.as_ref(),
        )?;
        let o = e
            .object()
            .ok_or_else(|| S3ApiError::NoSuchKey(i.key.clone()))?;
        let range = match i.range {
            None => None,
            Some(r) => {
                let r = r.check(o.size).map_err(|_| S3ApiError::InvalidRange)?;
                if r.is_empty() {
                    return Err(S3ApiError::InvalidRange);
                }
                Some((r.start, r.end - 1))
            }
        };
        let len = range.map_or(o.size, |(a, b)| b - a + 1);
        let body = if len > 0 {
            let stream = blobs::read(&self.gw, o, range).await?;
            Some(StreamingBlob::wrap(SyncStream(Mutex::new(Box::pin(
                stream,
            )))))
        } else {
            Some(StreamingBlob::wrap(futures::stream::empty::<
                Result<bytes::Bytes, std::io::Error>,
            >()))
        };
        Ok(GetObjectOutput {
            body,
            accept_ranges: Some("bytes".into()),
            content_length: i64::try_from(len).ok(),
            content_range: range.map(|(a, b)| format!("bytes {a}-{b}/{}", o.size)),
            content_type: o.content_type.parse().ok(),
            e_tag: names::etag(&e).map(ETag::Strong),
            last_modified: Some(names::timestamp(e.mtime_ms)),
            metadata: names::metadata_of(&e),
            cache_control: e.headers.get("cache-control").cloned(),
            content_disposition: e.headers.get("content-disposition").cloned(),
            ..Default::default()
        })
    }

    async fn head(&self, req: S3Request<HeadObjectInput>) -> S3ApiResult<HeadObjectOutput> {
        let login = login(&req)?;
        let i = req.input;
        let e = self.object_entry(&login, &i.bucket, &i.key).await?;
        check_read(
            &e,
            i.if_match.as_ref(),
            i.if_none_match.as_ref(),
            i.if_modified_since.as_ref(),
            i.if_unmodified_since.as_ref(),
        )?;
        let o = e
            .object()
            .ok_or_else(|| S3ApiError::NoSuchKey(i.key.clone()))?;
        Ok(HeadObjectOutput {
            accept_ranges: Some("bytes".into()),
            content_length: i64::try_from(o.size).ok(),
            content_type: o.content_type.parse().ok(),
            e_tag: names::etag(&e).map(ETag::Strong),
            last_modified: Some(names::timestamp(e.mtime_ms)),
            metadata: names::metadata_of(&e),
            cache_control: e.headers.get("cache-control").cloned(),
            content_disposition: e.headers.get("content-disposition").cloned(),
            ..Default::default()
        })
    }

    async fn copy(&self, req: S3Request<CopyObjectInput>) -> S3ApiResult<CopyObjectOutput> {
        let login = login(&req)?;
        let i = req.input;
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
        let src = self.object_entry(&login, &src_bucket, &src_key).await?;
        check_read(
            &src,
            i.copy_source_if_match.as_ref(),
            i.copy_source_if_none_match.as_ref(),
            i.copy_source_if_modified_since.as_ref(),
            i.copy_source_if_unmodified_since.as_ref(),
        )
        .map_err(|e| match e {
            // A failed copy-source condition is 412 whatever its kind.
            S3ApiError::NotModified => S3ApiError::PreconditionFailed,
            other => other,
        })?;
        let replace = i
            .metadata_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
        let src_path = names::key_path(&login, &src_bucket, &src_key)?;
        let bpath = names::bucket_path(&login, &i.bucket)?;
        let dst_path = names::key_path(&login, &i.bucket, &i.key)?;
        if i.key.ends_with('/') {
            return Err(S3ApiError::InvalidArgument(
                "a key ending in '/' names a directory".into(),
            ));
        }
        if src_path == dst_path && !replace {
            return Err(S3ApiError::InvalidArgument(
                "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata".into(),
            ));
        }
        let parent = dst_path
            .parent()
            .ok_or_else(|| S3ApiError::InvalidArgument("key has no parent".into()))?;
        self.ensure_dir(&bpath, &parent).await?;
        // Objects are immutable, so a copy is a snaplink: no bytes move.
        if src_path != dst_path {
            let out = self
                .ns()
                .snaplink(&src_path, &dst_path, &Conditions::default())
                .await?;
            self.gw.release_copies(out.freed);
        }
        let entry = if replace {
            let mut headers = stored_headers(
                i.metadata.as_ref(),
                i.cache_control.as_deref(),
                i.content_disposition.as_deref(),
            )?;
            if let Some(t) = src.headers.get(ETAG_HEADER) {
                headers.insert(ETAG_HEADER.to_owned(), t.clone());
            }
            let update = MetadataUpdate {
                content_type: Some(
                    i.content_type
                        .as_ref()
                        .map(|c| crate::mime::normalize(&c.to_string()))
                        .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned()),
                ),
                headers,
            };
            self.ns().put_metadata(&dst_path, &update).await?
        } else {
            self.ns()
                .get(&dst_path)
                .await?
                .ok_or_else(|| S3ApiError::NoSuchKey(i.key.clone()))?
        };
        Ok(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: names::etag(&entry).map(ETag::Strong),
                last_modified: Some(names::timestamp(entry.mtime_ms)),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    async fn list(
        &self,
        login: &str,
        bucket: &str,
        prefix: Option<&str>,
        delimiter: Option<&str>,
        after: Option<&str>,
        max_keys: Option<i32>,
    ) -> S3ApiResult<(Vec<Object>, Vec<CommonPrefix>, Option<String>)> {
        let bpath = names::bucket_path(login, bucket)?;
        self.require_bucket(&bpath).await?;
        let max = match max_keys {
            None => MAX_KEYS,
            Some(n) if n < 0 => {
                return Err(S3ApiError::InvalidArgument("max-keys must be >= 0".into()));
            }
            Some(n) => n.min(MAX_KEYS),
        };
        let mut w = Walker::new(self.ns(), &bpath, prefix.unwrap_or(""), delimiter, after);
        let (mut objects, mut prefixes) = (Vec::new(), Vec::new());
        let mut last = None;
        let mut n = 0;
        while n < max {
            match w.next().await? {
                None => return Ok((objects, prefixes, None)),
                Some(Item::Prefix(p)) => {
                    last = Some(p.clone());
                    prefixes.push(CommonPrefix { prefix: Some(p) });
                }
                Some(Item::Object(key, e)) => {
                    last = Some(key.clone());
                    objects.push(Object {
                        e_tag: names::etag(&e).map(ETag::Strong),
                        size: e.object().and_then(|o| i64::try_from(o.size).ok()),
                        last_modified: Some(names::timestamp(e.mtime_ms)),
                        storage_class: Some(ObjectStorageClass::from_static(
                            ObjectStorageClass::STANDARD,
                        )),
                        key: Some(key),
                        ..Default::default()
                    });
                }
            }
            n += 1;
        }
        // Truncated only if something follows.
        let more = w.next().await?.is_some();
        Ok((objects, prefixes, if more { last } else { None }))
    }
}

fn encode_token(key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

fn decode_token(t: &str) -> S3ApiResult<String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            S3ApiError::InvalidArgument("The continuation token provided is incorrect".into())
        })
}

fn owner(login: &str) -> Owner {
    Owner {
        display_name: Some(login.to_owned()),
        id: Some(login.to_owned()),
    }
}

fn ok<T>(r: S3ApiResult<T>) -> S3Result<S3Response<T>> {
    r.map(S3Response::new).map_err(Into::into)
}

#[async_trait::async_trait]
impl S3 for S3Api {
    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        ok(async {
            let login = login(&req)?;
            let stor = names::stor(&login)?;
            let mut buckets = Vec::new();
            let mut marker: Option<String> = None;
            loop {
                let opts = ListOptions {
                    limit: 1000,
                    marker: marker.clone().map(Marker::Name),
                    filter: TypeFilter::Directories,
                    ..ListOptions::default()
                };
                let page = self.ns().list(&stor, &opts).await?;
                let full = page.len() == 1000;
                for e in &page {
                    if marker.as_deref() == Some(e.name.as_str()) || !names::valid_bucket(&e.name) {
                        continue;
                    }
                    buckets.push(Bucket {
                        name: Some(e.name.clone()),
                        creation_date: Some(names::timestamp(e.mtime_ms)),
                        ..Default::default()
                    });
                }
                marker = page.last().map(|e| e.name.clone());
                if !full {
                    break;
                }
            }
            Ok(ListBucketsOutput {
                buckets: Some(buckets),
                owner: Some(owner(&login)),
                ..Default::default()
            })
        }
        .await)
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        ok(async {
            let login = login(&req)?;
            let path = names::bucket_path(&login, &req.input.bucket)?;
            match self.ns().get(&path).await? {
                Some(e) if e.is_directory() => Err(S3ApiError::BucketAlreadyOwnedByYou(
                    req.input.bucket.clone(),
                )),
                Some(_) => Err(S3ApiError::InvalidArgument(format!(
                    "an object named {} exists in stor",
                    req.input.bucket
                ))),
                None => {
                    self.ns().put_directory(&path, &Headers::new()).await?;
                    Ok(CreateBucketOutput {
                        location: Some(format!("/{}", req.input.bucket)),
                    })
                }
            }
        }
        .await)
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        ok(async {
            let login = login(&req)?;
            let b = &req.input.bucket;
            let path = names::bucket_path(&login, b)?;
            match self.ns().get(&path).await? {
                Some(e) if e.is_directory() => {}
                _ => return Err(S3ApiError::NoSuchBucket(b.clone())),
            }
            match self.ns().delete(&path, &Conditions::default()).await {
                Ok(_) => Ok(DeleteBucketOutput::default()),
                Err(NamespaceError::DirectoryNotEmpty(_)) => {
                    Err(S3ApiError::BucketNotEmpty(b.clone()))
                }
                Err(NamespaceError::NotFound(_)) => Err(S3ApiError::NoSuchBucket(b.clone())),
                Err(e) => Err(e.into()),
            }
        }
        .await)
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        ok(async {
            let login = login(&req)?;
            self.require_bucket(&names::bucket_path(&login, &req.input.bucket)?)
                .await?;
            Ok(HeadBucketOutput::default())
        }
        .await)
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        ok(async {
            let login = login(&req)?;
            self.require_bucket(&names::bucket_path(&login, &req.input.bucket)?)
                .await?;
            Ok(GetBucketLocationOutput::default())
        }
        .await)
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        ok(self.put(req).await)
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        ok(self.get(req).await)
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        ok(self.head(req).await)
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        ok(self.copy(req).await)
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        ok(async {
            let login = login(&req)?;
            let i = &req.input;
            let bpath = names::bucket_path(&login, &i.bucket)?;
            self.require_bucket(&bpath).await?;
            self.delete_key(&login, &i.bucket, &i.key).await?;
            Ok(DeleteObjectOutput::default())
        }
        .await)
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        ok(async {
            let login = login(&req)?;
            let i = &req.input;
            let bpath = names::bucket_path(&login, &i.bucket)?;
            self.require_bucket(&bpath).await?;
            let quiet = i.delete.quiet.unwrap_or(false);
            let (mut deleted, mut errors) = (Vec::new(), Vec::new());
            for o in &i.delete.objects {
                match self.delete_key(&login, &i.bucket, &o.key).await {
                    Ok(()) => {
                        if !quiet {
                            deleted.push(DeletedObject {
                                key: Some(o.key.clone()),
                                ..Default::default()
                            });
                        }
                    }
                    Err(e) => {
                        let e = s3s::S3Error::from(e);
                        errors.push(Error {
                            code: Some(e.code().as_str().to_owned()),
                            key: Some(o.key.clone()),
                            message: e.message().map(str::to_owned),
                            ..Default::default()
                        });
                    }
                }
            }
            Ok(DeleteObjectsOutput {
                deleted: Some(deleted),
                errors: (!errors.is_empty()).then_some(errors),
                ..Default::default()
            })
        }
        .await)
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        ok(async {
            let login = login(&req)?;
            let i = &req.input;
            let token = i
                .continuation_token
                .as_deref()
                .map(decode_token)
                .transpose()?;
            let after = token.as_deref().or(i.start_after.as_deref());
            let (contents, prefixes, next) = self
                .list(
                    &login,
                    &i.bucket,
                    i.prefix.as_deref(),
                    i.delimiter.as_deref(),
                    after,
                    i.max_keys,
                )
                .await?;
            let count = contents.len() + prefixes.len();
            Ok(ListObjectsV2Output {
                name: Some(i.bucket.clone()),
                prefix: Some(i.prefix.clone().unwrap_or_default()),
                delimiter: i.delimiter.clone(),
                max_keys: Some(i.max_keys.unwrap_or(MAX_KEYS).clamp(0, MAX_KEYS)),
                key_count: i32::try_from(count).ok(),
                continuation_token: i.continuation_token.clone(),
                start_after: i.start_after.clone(),
                is_truncated: Some(next.is_some()),
                next_continuation_token: next.as_deref().map(encode_token),
                contents: Some(contents),
                common_prefixes: (!prefixes.is_empty()).then_some(prefixes),
                ..Default::default()
            })
        }
        .await)
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        ok(async {
            let login = login(&req)?;
            let i = &req.input;
            let (contents, prefixes, next) = self
                .list(
                    &login,
                    &i.bucket,
                    i.prefix.as_deref(),
                    i.delimiter.as_deref(),
                    i.marker.as_deref(),
                    i.max_keys,
                )
                .await?;
            Ok(ListObjectsOutput {
                name: Some(i.bucket.clone()),
                prefix: Some(i.prefix.clone().unwrap_or_default()),
                delimiter: i.delimiter.clone(),
                marker: Some(i.marker.clone().unwrap_or_default()),
                max_keys: Some(i.max_keys.unwrap_or(MAX_KEYS).clamp(0, MAX_KEYS)),
                is_truncated: Some(next.is_some()),
                next_marker: next,
                contents: Some(contents),
                common_prefixes: (!prefixes.is_empty()).then_some(prefixes),
                ..Default::default()
            })
        }
        .await)
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        ok(super::mpu::create(self, req).await)
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        ok(super::mpu::upload_part(self, req).await)
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        ok(super::mpu::upload_part_copy(self, req).await)
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        ok(super::mpu::list_parts(self, req).await)
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        ok(super::mpu::complete(self, req).await)
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        ok(super::mpu::abort(self, req).await)
    }
}

impl S3Api {
    pub(crate) fn gateway(&self) -> &Gateway {
        &self.gw
    }

    pub(crate) fn durability_of(&self, h: &HeaderMap) -> S3ApiResult<u32> {
        self.durability(h)
    }
}
