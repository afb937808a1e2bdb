//! The namespace's error type: one variant per outcome the gateway maps to
//! a Manta error code (spec §4.2). Messages carry the decoded path.

use crate::kv::KvError;
use crate::path::PathError;

/// Errors of namespace operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NamespaceError {
    /// `404 ResourceNotFound`: the entry does not exist.
    #[error("{0} was not found")]
    NotFound(String),
    /// `404 DirectoryDoesNotExist`: the parent of a PUT is missing (carries the parent).
    #[error("{0} does not exist")]
    DirectoryDoesNotExist(String),
    /// `400 ParentNotDirectory`: the parent of a PUT is an object (carries the parent).
    #[error("{0} is not a directory")]
    ParentNotDirectory(String),
    /// `400 DirectoryNotEmpty`.
    #[error("{0} is not empty")]
    DirectoryNotEmpty(String),
    /// `400 OperationNotAllowedOnDirectory`: PUT of an object/link over a directory.
    #[error("{0} is a directory")]
    IsDirectory(String),
    /// A listing/count of something that is an object, not a directory.
    #[error("{0} is not a directory")]
    NotDirectory(String),
    /// `400 OperationNotAllowedOnRootDirectory`: write/delete of `/:login` or a top dir.
    #[error("{0} is a root directory")]
    RootDirectory(String),
    /// `412 PreconditionFailed`.
    #[error("precondition failed for {0}")]
    PreconditionFailed(String),
    /// `404 SourceObjectNotFound`: snaplink source missing.
    #[error("{0} was not found")]
    LinkSourceNotFound(String),
    /// `400 LinkNotObject`: snaplink source is a directory.
    #[error("{0} is not an object")]
    LinkNotObject(String),
    /// `409 DirectoryLimitExceeded`: the parent already holds the maximum.
    #[error("{0} has reached the maximum number of entries")]
    DirectoryLimitExceeded(String),
    /// `403 AccountDoesNotExist`.
    #[error("account {0} does not exist")]
    AccountNotFound(String),
    /// Creating an account (or subuser, or key) that already exists.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// `403 AccountBlocked`.
    #[error("account {0} is disabled")]
    AccountBlocked(String),
    /// `403 UserDoesNotExist`: unknown subuser.
    #[error("user {0} does not exist")]
    SubuserNotFound(String),
    /// Unknown storage node.
    #[error("storage node {0} is not registered")]
    NodeNotFound(String),
    /// `409 ConcurrentRequest`: still conflicting after bounded retries.
    #[error("{0} was being concurrently updated")]
    ConcurrentRequest(String),
    /// `503 ServiceUnavailable`: the metadata tier cannot be reached.
    #[error("metadata tier unavailable: {0}")]
    Unavailable(String),
    /// The commit may or may not have happened and re-reading could not tell.
    #[error("outcome of the update of {0} is unknown")]
    Undetermined(String),
    /// `400 InvalidResource` (or `404` for [`PathError::UnknownTopDirectory`]).
    #[error(transparent)]
    InvalidPath(#[from] PathError),
    /// An invalid argument (bad node id, key fields...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// `500 InternalError`: corrupt records, backend failures, bugs.
    #[error("internal metadata error: {0}")]
    Internal(String),
}

impl NamespaceError {
    /// Map a backend error that ended an operation on `what`.
    pub(crate) fn from_kv(e: KvError, what: &str) -> Self {
        match e {
            KvError::Conflict(_) => NamespaceError::ConcurrentRequest(what.to_owned()),
            KvError::Unavailable(m) => NamespaceError::Unavailable(m),
            KvError::Undetermined(_) => NamespaceError::Undetermined(what.to_owned()),
            other => NamespaceError::Internal(other.to_string()),
        }
    }
}

impl From<KvError> for NamespaceError {
    fn from(e: KvError) -> Self {
        NamespaceError::from_kv(e, "metadata")
    }
}

/// Result type of namespace operations.
pub type NsResult<T> = Result<T, NamespaceError>;
