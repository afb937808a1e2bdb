//! The one place where a failure becomes an HTTP answer.
//!
//! Every handler returns `Result<Response, ApiError>`; `ApiError` knows its
//! Manta code (a stable string, part of the API), its status and its message,
//! and renders Manta's JSON error body with a correct `Content-MD5` (§1.7,
//! §4 of the wire spec). Internal causes are logged here with the request's
//! span and never shown to the client.

use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use http::{HeaderValue, StatusCode, header};
use md5::{Digest, Md5};

/// A failure the client is told about. Variants carry what the message needs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    #[error("{0} was not found")]
    ResourceNotFound(String),
    #[error("{0} does not exist")]
    DirectoryDoesNotExist(String),
    #[error("{0} is not a directory")]
    ParentNotDirectory(String),
    #[error("{0} is not empty")]
    DirectoryNotEmpty(String),
    #[error("{0} is a directory: PUT is not allowed")]
    OperationNotAllowedOnDirectory(String),
    #[error("{method} is not allowed on {path}")]
    OperationNotAllowedOnRootDirectory { method: String, path: String },
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("Content-MD5 expected {expected}, but was {computed}")]
    ContentMd5Mismatch { expected: String, computed: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("max-content-length must be >= 0")]
    InvalidMaxContentLength,
    #[error("request body exceeds {0} bytes")]
    MaxContentLengthExceeded(u64),
    #[error("durability-level must be between 1 and {max}")]
    InvalidDurabilityLevel { max: u32 },
    #[error("overwrite of \"{0}\" forbidden")]
    InvalidUpdate(String),
    #[error("limit={0} is invalid: must be between [1, 1024]")]
    InvalidLimit(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0} is not allowed")]
    QueryParameterForbidden(String),
    #[error("{0}")]
    InvalidResource(String),
    #[error("Location header is required")]
    LocationRequired,
    #[error("{0} is an invalid link")]
    InvalidLink(String),
    #[error("{0} was not found")]
    SourceObjectNotFound(String),
    #[error("{0} is not an object")]
    LinkNotObject(String),
    #[error("{0}")]
    RangeNotSatisfiable(String),
    /// The object's type is not one the request's `Accept` admits.
    #[error("{path} is {content_type}, which the request does not accept")]
    NotAcceptable { path: String, content_type: String },
    #[error("{0} was being concurrently updated")]
    ConcurrentRequest(String),
    #[error("{0} has reached the maximum number of entries")]
    DirectoryLimitExceeded(String),
    #[error("{0}")]
    NotImplemented(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    MultipartUploadInvalidArgument(String),
    #[error("{0}")]
    InvalidMultipartUploadState(String),
    #[error("Content-MD5 of the request body does not match")]
    BadDigest,
    #[error("request body not received in time")]
    UploadTimeout,
    #[error("not enough storage nodes available (wanted {wanted}, have {available})")]
    NotEnoughNodes { wanted: usize, available: usize },
    #[error("no storage node has room for this object")]
    NotEnoughSpace,
    #[error("the metadata tier is unavailable")]
    MetadataUnavailable(String),
    /// Every slot for long-lived event streams is taken (`503`).
    #[error("{0}")]
    TooManyStreams(String),
    /// A job manifest failed validation (`400 InvalidJob`, jobs spec E1).
    #[error("{0}")]
    InvalidJob(String),
    /// A job phase's `exec`/`init` is not a script the shell can run
    /// (`400 InvalidArgumentError`, refused when the job is created).
    #[error("{0}")]
    InvalidPhaseScript(String),
    /// The job's state forbids the request (`409`, jobs spec E2-E4).
    #[error("{0}")]
    InvalidJobState(String),
    /// An unknown (or someone else's) job: `404 ResourceNotFound` worded
    /// as muskie's jobs routes did.
    #[error("{0} does not exist")]
    JobNotFound(String),
    /// `503 ThrottledError`: too many interactive (mlogin) sessions wait
    /// for their peer.
    #[error("{0}")]
    Throttled(String),
    /// An authentication/authorization refusal with its Manta code.
    #[error("{message}")]
    Auth {
        status: StatusCode,
        code: String,
        message: String,
    },
    /// A subuser refused by its roles (Manta RBAC): `InvalidRole` (409),
    /// `NoMatchingRoleTag` or `AuthorizationFailed` (403). Built with
    /// [`ApiError::rbac`].
    #[error("{}", rbac_message(denied, who, path))]
    Rbac {
        denied: auth::rbac::Denied,
        /// `login/subuser`.
        who: String,
        /// The resource path.
        path: String,
    },
    /// `409 InvalidRoleTag`: a `role-tag` naming no role of the owner.
    #[error("Role tag \"{0}\" is invalid.")]
    InvalidRoleTag(String),
    /// `403 MissingPermission`: a subuser's job needs `putobject` and
    /// `putdirectory` (muskie's ensurePutAccess).
    #[error("missing role allowing {0}")]
    MissingPermission(String),
    /// Anything unexpected: the cause is logged, the client sees a generic message.
    #[error("internal error")]
    Internal(String),
    /// `500 InternalError`: no node has any copy the object's committed
    /// metadata names (the cause is logged). A GET meeting it re-reads the
    /// metadata first: a concurrent overwrite or delete may have released
    /// the copies, and garbage collection removed them.
    #[error("internal error")]
    CopiesMissing(String),
}

fn rbac_message(d: &auth::rbac::Denied, who: &str, path: &str) -> String {
    match d {
        auth::rbac::Denied::NotAllowed => format!("{who} is not allowed to access {path}"),
        other => other.to_string(),
    }
}

impl ApiError {
    /// An RBAC refusal. A rule that cannot be evaluated (it names a
    /// condition this request lacks) is muskie's 500, with the cause logged.
    pub fn rbac(denied: auth::rbac::Denied, who: &str, path: &str) -> Self {
        match denied {
            auth::rbac::Denied::Evaluation(e) => {
                ApiError::Internal(format!("evaluating a rule for {who} on {path}: {e}"))
            }
            denied => ApiError::Rbac {
                denied,
                who: who.to_owned(),
                path: path.to_owned(),
            },
        }
    }

    /// Wraps an unexpected failure; the cause only reaches the log.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        ApiError::Internal(cause.to_string())
    }

    /// Manta's stable error code string.
    pub fn code(&self) -> &str {
        match self {
            ApiError::ResourceNotFound(_) => "ResourceNotFound",
            ApiError::DirectoryDoesNotExist(_) => "DirectoryDoesNotExist",
            ApiError::ParentNotDirectory(_) => "ParentNotDirectory",
            ApiError::DirectoryNotEmpty(_) => "DirectoryNotEmpty",
            ApiError::OperationNotAllowedOnDirectory(_) => "OperationNotAllowedOnDirectory",
            ApiError::OperationNotAllowedOnRootDirectory { .. } => {
                "OperationNotAllowedOnRootDirectory"
            }
            ApiError::PreconditionFailed(_) => "PreconditionFailed",
            ApiError::ContentMd5Mismatch { .. } => "ContentMD5Mismatch",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::InvalidMaxContentLength => "InvalidMaxContentLength",
            ApiError::MaxContentLengthExceeded(_) => "MaxContentLengthExceeded",
            ApiError::InvalidDurabilityLevel { .. } => "InvalidDurabilityLevel",
            ApiError::InvalidUpdate(_) => "InvalidUpdate",
            ApiError::InvalidLimit(_) => "InvalidArgumentError",
            ApiError::InvalidParameter(_) => "InvalidParameter",
            ApiError::QueryParameterForbidden(_) => "QueryParameterForbidden",
            ApiError::InvalidResource(_) => "InvalidResource",
            ApiError::LocationRequired => "LocationRequired",
            ApiError::InvalidLink(_) => "InvalidLink",
            ApiError::SourceObjectNotFound(_) => "SourceObjectNotFound",
            ApiError::LinkNotObject(_) => "LinkNotObject",
            ApiError::RangeNotSatisfiable(_) => "RangeNotSatisfiable",
            ApiError::NotAcceptable { .. } => "NotAcceptable",
            ApiError::ConcurrentRequest(_) => "ConcurrentRequest",
            ApiError::DirectoryLimitExceeded(_) => "DirectoryLimitExceeded",
            ApiError::NotImplemented(_) => "NotImplemented",
            ApiError::MethodNotAllowed(_) => "MethodNotAllowed",
            ApiError::MultipartUploadInvalidArgument(_) => "MultipartUploadInvalidArgument",
            ApiError::InvalidMultipartUploadState(_) => "InvalidMultipartUploadState",
            ApiError::BadDigest => "BadDigest",
            ApiError::UploadTimeout => "UploadTimeout",
            ApiError::NotEnoughNodes { .. } => "InternalError",
            ApiError::NotEnoughSpace => "NotEnoughSpace",
            ApiError::MetadataUnavailable(_) | ApiError::TooManyStreams(_) => "ServiceUnavailable",
            ApiError::InvalidJob(_) => "InvalidJob",
            ApiError::InvalidPhaseScript(_) => "InvalidArgumentError",
            ApiError::InvalidJobState(_) => "InvalidJobState",
            ApiError::JobNotFound(_) => "ResourceNotFound",
            ApiError::Throttled(_) => "ThrottledError",
            ApiError::Auth { code, .. } => code,
            ApiError::Rbac { denied, .. } => match denied {
                auth::rbac::Denied::InvalidRole(_) => "InvalidRole",
                auth::rbac::Denied::NoMatchingRoleTag => "NoMatchingRoleTag",
                _ => "AuthorizationFailed",
            },
            ApiError::InvalidRoleTag(_) => "InvalidRoleTag",
            ApiError::MissingPermission(_) => "MissingPermission",
            ApiError::Internal(_) | ApiError::CopiesMissing(_) => "InternalError",
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            ResourceNotFound(_)
            | DirectoryDoesNotExist(_)
            | SourceObjectNotFound(_)
            | JobNotFound(_) => StatusCode::NOT_FOUND,
            ParentNotDirectory(_)
            | DirectoryNotEmpty(_)
            | OperationNotAllowedOnDirectory(_)
            | OperationNotAllowedOnRootDirectory { .. }
            | ContentMd5Mismatch { .. }
            | BadRequest(_)
            | InvalidMaxContentLength
            | InvalidDurabilityLevel { .. }
            | InvalidUpdate(_)
            | InvalidLimit(_)
            | InvalidParameter(_)
            | InvalidResource(_)
            | LocationRequired
            | InvalidLink(_)
            | LinkNotObject(_)
            | InvalidJob(_)
            | InvalidPhaseScript(_) => StatusCode::BAD_REQUEST,
            InvalidJobState(_) => StatusCode::CONFLICT,
            PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            MaxContentLengthExceeded(_) => StatusCode::PAYLOAD_TOO_LARGE,
            QueryParameterForbidden(_) => StatusCode::FORBIDDEN,
            RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            NotAcceptable { .. } => StatusCode::NOT_ACCEPTABLE,
            ConcurrentRequest(_) | DirectoryLimitExceeded(_) => StatusCode::CONFLICT,
            NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            MultipartUploadInvalidArgument(_) | InvalidMultipartUploadState(_) => {
                StatusCode::CONFLICT
            }
            BadDigest => StatusCode::BAD_REQUEST,
            UploadTimeout => StatusCode::REQUEST_TIMEOUT,
            NotEnoughNodes { .. } | MetadataUnavailable(_) | TooManyStreams(_) | Throttled(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            NotEnoughSpace => StatusCode::INSUFFICIENT_STORAGE,
            Auth { status, .. } => *status,
            Rbac {
                denied: auth::rbac::Denied::InvalidRole(_),
                ..
            }
            | InvalidRoleTag(_) => StatusCode::CONFLICT,
            Rbac { .. } | MissingPermission(_) => StatusCode::FORBIDDEN,
            Internal(_) | CopiesMissing(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message shown to the client (generic for internal errors).
    pub fn client_message(&self) -> String {
        match self {
            ApiError::Internal(_) | ApiError::CopiesMissing(_) => "internal error".to_owned(),
            ApiError::MetadataUnavailable(_) => "the metadata tier is unavailable".to_owned(),
            other => other.to_string(),
        }
    }
}

impl From<meta::namespace::NamespaceError> for ApiError {
    fn from(e: meta::namespace::NamespaceError) -> Self {
        use meta::namespace::NamespaceError as N;
        let forbidden = |code: &str, message: String| ApiError::Auth {
            status: StatusCode::FORBIDDEN,
            code: code.to_owned(),
            message,
        };
        match e {
            N::NotFound(p) => ApiError::ResourceNotFound(p),
            N::DirectoryDoesNotExist(p) => ApiError::DirectoryDoesNotExist(p),
            N::ParentNotDirectory(p) | N::NotDirectory(p) => ApiError::ParentNotDirectory(p),
            N::DirectoryNotEmpty(p) => ApiError::DirectoryNotEmpty(p),
            N::IsDirectory(p) => ApiError::OperationNotAllowedOnDirectory(p),
            // Roots are refused while parsing, with the real method; this is
            // only a backstop.
            N::RootDirectory(p) => ApiError::OperationNotAllowedOnRootDirectory {
                method: "this operation".to_owned(),
                path: p,
            },
            N::PreconditionFailed(p) => {
                ApiError::PreconditionFailed(format!("precondition failed for {p}"))
            }
            N::LinkSourceNotFound(p) => ApiError::SourceObjectNotFound(p),
            N::LinkNotObject(p) => ApiError::LinkNotObject(p),
            N::DirectoryLimitExceeded(p) => ApiError::DirectoryLimitExceeded(p),
            N::AccountNotFound(l) => {
                forbidden("AccountDoesNotExist", format!("{l} does not exist"))
            }
            N::AccountBlocked(l) => forbidden("AccountBlocked", format!("{l} is not active")),
            N::SubuserNotFound(u) => forbidden("UserDoesNotExist", format!("{u} does not exist")),
            N::ConcurrentRequest(p) => ApiError::ConcurrentRequest(p),
            N::Unavailable(m) => ApiError::MetadataUnavailable(m),
            // The commit may have happened: the client must re-read, so it
            // is told to retry rather than that the write failed for good.
            N::Undetermined(p) => ApiError::MetadataUnavailable(format!("outcome unknown for {p}")),
            N::InvalidPath(pe) => crate::path::path_error(pe, "path"),
            other => ApiError::internal(other),
        }
    }
}

impl From<crate::headers::RangeRefusal> for ApiError {
    fn from(r: crate::headers::RangeRefusal) -> Self {
        match r {
            crate::headers::RangeRefusal::Malformed => {
                ApiError::RangeNotSatisfiable("invalid range".to_owned())
            }
            crate::headers::RangeRefusal::Multiple => {
                ApiError::NotImplemented("multi-range requests not supported".to_owned())
            }
        }
    }
}

impl From<meta::jobs::JobStoreError> for ApiError {
    fn from(e: meta::jobs::JobStoreError) -> Self {
        use meta::jobs::JobStoreError as J;
        use meta::kv::KvError;
        match e {
            J::NotFound(id) => ApiError::JobNotFound(format!("job {id}")),
            J::InvalidState { .. } => ApiError::InvalidJobState(e.to_string()),
            // A conflict the job store did not retry (e.g. a lock a writer
            // cut off mid-commit left behind, not yet resolvable): nothing
            // was written and a retry is safe, as for objects.
            J::ConcurrentRequest | J::Kv(KvError::Conflict(_)) => {
                ApiError::ConcurrentRequest("job".to_owned())
            }
            J::Kv(KvError::Unavailable(m)) => ApiError::MetadataUnavailable(m),
            J::Kv(KvError::Undetermined(m)) => {
                ApiError::MetadataUnavailable(format!("outcome unknown: {m}"))
            }
            other => ApiError::internal(other),
        }
    }
}

/// A JSON body with the headers Manta's JSON client checks (§1.7):
/// `Content-Type`, `Content-Length` and `Content-MD5` of exactly these bytes.
pub fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&body));
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&md5) {
        h.insert("content-md5", v);
    }
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            ApiError::Internal(cause) | ApiError::CopiesMissing(cause) => {
                tracing::error!(%cause, "internal error")
            }
            ApiError::MetadataUnavailable(cause) => {
                tracing::error!(%cause, "metadata unavailable")
            }
            ApiError::NotEnoughNodes { .. } => tracing::warn!(error = %self, "write refused"),
            _ => tracing::info!(code = self.code(), error = %self, "request failed"),
        }
        let mut body = serde_json::json!({
            "code": self.code(),
            "message": self.client_message(),
        });
        // The id the response's `x-request-id` header and every log line of
        // the request carry, so a user's bug report finds the logs. Manta's
        // clients read only `code` and `message` and ignore other fields.
        if let Some(id) = crate::middleware::current_request_id() {
            body["requestId"] = serde_json::Value::from(&*id);
        }
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut resp = json_response(status, bytes);
        if matches!(
            self,
            ApiError::NotEnoughNodes { .. } | ApiError::MetadataUnavailable(_)
        ) {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_store_conflict_is_409_concurrent_request_not_500() {
        let e = ApiError::from(meta::jobs::JobStoreError::Kv(meta::kv::KvError::Conflict(
            "Failed to resolve lock".into(),
        )));
        assert_eq!(e.status(), StatusCode::CONFLICT);
        assert_eq!(e.code(), "ConcurrentRequest");
    }
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn error_body_has_matching_md5() {
        let resp = ApiError::ResourceNotFound("/alice/stor/nope".into()).into_response();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let md5 = resp.headers()["content-md5"].to_str().unwrap().to_owned();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            &body[..],
            br#"{"code":"ResourceNotFound","message":"/alice/stor/nope was not found"}"#
        );
        // The spec's example (§4.1) gives this exact digest for this exact body.
        assert_eq!(md5, "tciDs8sltenkLiFeFcjQlQ==");
    }

    #[tokio::test]
    async fn internal_errors_are_generic() {
        let resp = ApiError::internal("disk exploded at /secret/path").into_response();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let s = String::from_utf8(body.to_vec()).unwrap();
        assert!(!s.contains("secret"), "{s}");
        assert!(s.contains("InternalError"));
    }

    #[test]
    fn limit_code_ends_in_error() {
        assert_eq!(
            ApiError::InvalidLimit("0".into()).code(),
            "InvalidArgumentError"
        );
    }
}
