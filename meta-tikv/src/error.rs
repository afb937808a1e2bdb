//! Mapping tikv-client errors onto the `meta` trait's three actionable
//! kinds: conflict (retry the transaction), undetermined (a commit may have
//! happened), unavailable (503).
//!
//! The rule for commits is conservative: once a commit was sent, any failure
//! that does not *prove* the transaction was not applied (a key error such
//! as a write conflict does prove it, because prewrite refused) is reported
//! as `Undetermined`. tikv-client 0.4 itself only flags undetermined commits
//! on connection-level errors while committing the primary key, which
//! misses lost responses and timeouts.

use meta::kv::KvError;
use tikv_client::Error as TError;

/// What the failing call was doing; decides how transport failures map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Reads, locking, begin, snapshot, connect, rollback: nothing can have
    /// been committed, so transport trouble is plain unavailability.
    Other,
    /// `commit`: transport trouble leaves the outcome open.
    Commit,
}

/// The coarse class of a tikv-client error, independent of the phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// The store refused because of another transaction.
    Conflict,
    /// tikv-client itself says the commit outcome is unknown.
    Undetermined,
    /// Could not talk to PD/TiKV (or retries/backoff ran out).
    Transport,
    /// Anything else: a bug, a misuse, an unsupported feature.
    Other,
}

/// Classify an error by walking nested error lists.
pub(crate) fn class_of(e: &TError) -> Class {
    match e {
        TError::UndeterminedError(_) => Class::Undetermined,
        TError::KeyError(k) => {
            if k.conflict.is_some()
                || k.locked.is_some()
                || k.already_exist.is_some()
                || k.deadlock.is_some()
                || k.txn_not_found.is_some()
                || k.commit_ts_expired.is_some()
                || !k.retryable.is_empty()
                || !k.abort.is_empty()
            {
                Class::Conflict
            } else {
                Class::Other
            }
        }
        TError::ResolveLockError(_) | TError::TxnNotFound(_) | TError::DuplicateKeyInsertion => {
            Class::Conflict
        }
        TError::PessimisticLockError { inner, .. } => class_of(inner),
        TError::ExtractedErrors(errs) | TError::MultipleKeyErrors(errs) => {
            let classes: Vec<Class> = errs.iter().map(class_of).collect();
            for wanted in [Class::Undetermined, Class::Conflict, Class::Transport] {
                if classes.contains(&wanted) {
                    return wanted;
                }
            }
            Class::Other
        }
        TError::GrpcAPI(status) => {
            use tonic::Code as C;
            match status.code() {
                C::Unavailable
                | C::DeadlineExceeded
                | C::Cancelled
                | C::Unknown
                | C::ResourceExhausted
                | C::Aborted
                | C::Internal => Class::Transport,
                _ => Class::Other,
            }
        }
        TError::Grpc(_)
        | TError::Io(_)
        | TError::Channel(_)
        | TError::Canceled(_)
        | TError::RegionError(_)
        | TError::LeaderNotFound { .. }
        | TError::RegionForKeyNotFound { .. }
        | TError::RegionForRangeNotFound { .. }
        | TError::RegionNotFoundInResponse { .. }
        | TError::EntryNotFoundInRegionCache
        | TError::NoCurrentRegions
        | TError::InternalError { .. } => Class::Transport,
        _ => Class::Other,
    }
}

/// Map a tikv-client error to the trait's error for a call in `phase`.
pub(crate) fn classify(e: TError, phase: Phase) -> KvError {
    let msg = e.to_string();
    match (class_of(&e), phase) {
        (Class::Conflict, _) => KvError::Conflict(msg),
        (Class::Undetermined, _) | (Class::Transport | Class::Other, Phase::Commit) => {
            KvError::Undetermined(msg)
        }
        (Class::Transport, Phase::Other) => KvError::Unavailable(msg),
        (Class::Other, Phase::Other) => KvError::Backend(Box::new(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tikv_client::ProtoKeyError;

    fn key_err(f: impl FnOnce(&mut ProtoKeyError)) -> TError {
        let mut k = ProtoKeyError::default();
        f(&mut k);
        TError::KeyError(Box::new(k))
    }

    fn kind(e: &KvError) -> &'static str {
        match e {
            KvError::Conflict(_) => "conflict",
            KvError::Undetermined(_) => "undetermined",
            KvError::Unavailable(_) => "unavailable",
            KvError::Backend(_) => "backend",
            _ => "other",
        }
    }

    fn both(e: impl Fn() -> TError) -> (&'static str, &'static str) {
        (
            kind(&classify(e(), Phase::Other)),
            kind(&classify(e(), Phase::Commit)),
        )
    }

    #[test]
    fn refusals_are_conflicts_in_every_phase() {
        let conflict = || key_err(|k| k.conflict = Some(Default::default()));
        assert_eq!(both(conflict), ("conflict", "conflict"));
        let locked = || key_err(|k| k.locked = Some(Default::default()));
        assert_eq!(both(locked), ("conflict", "conflict"));
        let aborted = || key_err(|k| k.abort = "txn already rolled back".into());
        assert_eq!(both(aborted), ("conflict", "conflict"));
        let not_found = || key_err(|k| k.txn_not_found = Some(Default::default()));
        assert_eq!(both(not_found), ("conflict", "conflict"));
        assert_eq!(
            both(|| TError::ResolveLockError(vec![Default::default()])),
            ("conflict", "conflict")
        );
        // Nested lists: a conflict anywhere wins over transport noise.
        let nested = || {
            TError::ExtractedErrors(vec![
                TError::GrpcAPI(tonic::Status::unavailable("x")),
                TError::MultipleKeyErrors(vec![conflict()]),
            ])
        };
        assert_eq!(both(nested), ("conflict", "conflict"));
    }

    #[test]
    fn transport_failures_are_unavailable_but_undetermined_in_commit() {
        let down = || TError::GrpcAPI(tonic::Status::unavailable("connection refused"));
        assert_eq!(both(down), ("unavailable", "undetermined"));
        let deadline = || TError::GrpcAPI(tonic::Status::deadline_exceeded("slow"));
        assert_eq!(both(deadline), ("unavailable", "undetermined"));
        let pd = || TError::InternalError {
            message: "PD cluster failed to respond".into(),
        };
        assert_eq!(both(pd), ("unavailable", "undetermined"));
        let region = || TError::RegionError(Box::default());
        assert_eq!(both(region), ("unavailable", "undetermined"));
    }

    #[test]
    fn client_flagged_undetermined_stays_undetermined() {
        let e =
            || TError::UndeterminedError(Box::new(TError::GrpcAPI(tonic::Status::cancelled("c"))));
        assert_eq!(both(e), ("undetermined", "undetermined"));
        let nested = || TError::ExtractedErrors(vec![e(), key_err(|k| k.abort = "x".into())]);
        assert_eq!(both(nested), ("undetermined", "undetermined"));
    }

    #[test]
    fn bugs_are_backend_errors_outside_commit() {
        let bad = || TError::GrpcAPI(tonic::Status::invalid_argument("bad request"));
        assert_eq!(both(bad), ("backend", "undetermined"));
        assert_eq!(
            both(|| TError::StringError("?".into())),
            ("backend", "undetermined")
        );
        assert_eq!(both(|| key_err(|_| {})), ("backend", "undetermined"));
        assert!(
            classify(
                key_err(|k| k.conflict = Some(Default::default())),
                Phase::Other
            )
            .is_retryable()
        );
    }
}
