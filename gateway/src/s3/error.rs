//! The one place where an S3 request's failure becomes an S3 error code.
//!
//! Handlers of the S3 frontend return [`S3ApiError`]: its own variants for
//! what only S3 names (buckets, keys, uploads, parts), and [`ApiError`] for
//! failures of the shared write and read paths, translated here. Internal
//! causes are logged and never shown to the client, as on the Manta side.

use crate::error::ApiError;
use s3s::{S3Error, S3ErrorCode};

/// A failure of an S3 request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum S3ApiError {
    #[error("The specified bucket does not exist: {0}")]
    NoSuchBucket(String),
    #[error("The specified key does not exist: {0}")]
    NoSuchKey(String),
    #[error("The bucket you tried to delete is not empty: {0}")]
    BucketNotEmpty(String),
    #[error(
        "Your previous request to create the named bucket succeeded and you already own it: {0}"
    )]
    BucketAlreadyOwnedByYou(String),
    #[error("The specified bucket is not valid: {0}")]
    InvalidBucketName(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("At least one of the pre-conditions you specified did not hold")]
    PreconditionFailed,
    #[error("Not Modified")]
    NotModified,
    #[error("The requested range is not satisfiable")]
    InvalidRange,
    #[error("The specified multipart upload does not exist: {0}")]
    NoSuchUpload(String),
    #[error("{0}")]
    InvalidPart(String),
    #[error("The list of parts was not in ascending order")]
    InvalidPartOrder,
    #[error("Your proposed upload is smaller than the minimum allowed object size: {0}")]
    EntityTooSmall(String),
    #[error("{0}")]
    NotImplemented(String),
    #[error("{0}")]
    AccessDenied(String),
    #[error("The AWS access key Id you provided does not exist in our records")]
    InvalidAccessKeyId,
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<meta::namespace::NamespaceError> for S3ApiError {
    fn from(e: meta::namespace::NamespaceError) -> Self {
        S3ApiError::Api(ApiError::from(e))
    }
}

/// The result type of S3 handlers.
pub type S3ApiResult<T> = Result<T, S3ApiError>;

impl From<S3ApiError> for S3Error {
    fn from(e: S3ApiError) -> S3Error {
        use S3ErrorCode as C;
        let msg = e.to_string();
        let code = match e {
            S3ApiError::NoSuchBucket(_) => C::NoSuchBucket,
            S3ApiError::NoSuchKey(_) => C::NoSuchKey,
            S3ApiError::BucketNotEmpty(_) => C::BucketNotEmpty,
            S3ApiError::BucketAlreadyOwnedByYou(_) => C::BucketAlreadyOwnedByYou,
            S3ApiError::InvalidBucketName(_) => C::InvalidBucketName,
            S3ApiError::InvalidArgument(_) => C::InvalidArgument,
            S3ApiError::PreconditionFailed => C::PreconditionFailed,
            S3ApiError::NotModified => C::NotModified,
            S3ApiError::InvalidRange => C::InvalidRange,
            S3ApiError::NoSuchUpload(_) => C::NoSuchUpload,
            S3ApiError::InvalidPart(_) => C::InvalidPart,
            S3ApiError::InvalidPartOrder => C::InvalidPartOrder,
            S3ApiError::EntityTooSmall(_) => C::EntityTooSmall,
            S3ApiError::NotImplemented(_) => C::NotImplemented,
            S3ApiError::AccessDenied(_) => C::AccessDenied,
            S3ApiError::InvalidAccessKeyId => C::InvalidAccessKeyId,
            S3ApiError::Api(api) => return from_api(api),
        };
        S3Error::with_message(code, msg)
    }
}

/// Failures of the shared paths (placement, replication, meta, reads).
fn from_api(e: ApiError) -> S3Error {
    use S3ErrorCode as C;
    let code = match &e {
        ApiError::ResourceNotFound(_)
        | ApiError::SourceObjectNotFound(_)
        | ApiError::DirectoryDoesNotExist(_) => C::NoSuchKey,
        ApiError::PreconditionFailed(_) => C::PreconditionFailed,
        ApiError::ContentMd5Mismatch { .. } | ApiError::BadDigest => C::BadDigest,
        ApiError::MaxContentLengthExceeded(_) => C::EntityTooLarge,
        ApiError::UploadTimeout => C::RequestTimeout,
        ApiError::RangeNotSatisfiable(_) => C::InvalidRange,
        ApiError::ParentNotDirectory(_)
        | ApiError::OperationNotAllowedOnDirectory(_)
        | ApiError::OperationNotAllowedOnRootDirectory { .. }
        | ApiError::DirectoryNotEmpty(_)
        | ApiError::DirectoryLimitExceeded(_)
        | ApiError::InvalidDurabilityLevel { .. }
        | ApiError::InvalidParameter(_)
        | ApiError::InvalidResource(_)
        | ApiError::LinkNotObject(_) => C::InvalidArgument,
        ApiError::BadRequest(_) => C::InvalidRequest,
        ApiError::NotImplemented(_) => C::NotImplemented,
        ApiError::Auth { .. } | ApiError::Rbac { .. } | ApiError::MissingPermission(_) => {
            C::AccessDenied
        }
        ApiError::NotEnoughNodes { .. }
        | ApiError::NotEnoughSpace
        | ApiError::MetadataUnavailable(_)
        | ApiError::ConcurrentRequest(_) => C::ServiceUnavailable,
        ApiError::Internal(cause) => {
            tracing::error!(cause = %cause, "internal error on the S3 API");
            return S3Error::with_message(C::InternalError, "internal error");
        }
        other => {
            tracing::error!(error = %other, "unexpected error on the S3 API");
            return S3Error::with_message(C::InternalError, "internal error");
        }
    };
    S3Error::with_message(code, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_path_failures_get_s3_codes() {
        let cases = [
            (ApiError::ResourceNotFound("/a/stor/b".into()), C::NoSuchKey),
            (ApiError::BadDigest, C::BadDigest),
            (ApiError::MaxContentLengthExceeded(1), C::EntityTooLarge),
            (
                ApiError::NotEnoughNodes {
                    wanted: 2,
                    available: 1,
                },
                C::ServiceUnavailable,
            ),
            (ApiError::internal("secret cause"), C::InternalError),
        ];
        use S3ErrorCode as C;
        for (api, want) in cases {
            let e = S3Error::from(S3ApiError::Api(api));
            assert_eq!(*e.code(), want);
            assert!(!e.message().unwrap_or("").contains("secret cause"));
        }
        let e = S3Error::from(S3ApiError::BucketNotEmpty("b".into()));
        assert_eq!(*e.code(), S3ErrorCode::BucketNotEmpty);
    }
}
