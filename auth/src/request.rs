//! Authenticating one request: the API the gateway calls (spec §2).
//!
//! [`authenticate`] = [`prepare`] (all checks that need no key: clock skew,
//! header/URL parsing, algorithm, keyId) + one [`KeyLookup`] call +
//! [`PendingSignature::finish`] (lookup errors, key/algorithm fit, signature
//! check). The split lets a caller with its own lookup strategy (caching,
//! batching, a sync store) use the same checks. Nothing here does I/O except
//! through the caller's `KeyLookup`.

use std::time::SystemTime;

use base64::Engine as _;
use http::HeaderMap;

use crate::algorithm::Algorithm;
use crate::clock::check_date;
use crate::error::{AuthError, LookupError};
use crate::header::{parse_authorization, signing_string};
use crate::key::{B64_LENIENT, Fingerprint, PublicKey};
use crate::keyid::KeyId;
use crate::presigned::{self, has_presign_keys, parse_query};

/// The parts of an HTTP request authentication looks at.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// The method exactly as on the request line (`GET`).
    pub method: &'a str,
    /// The request target exactly as on the request line, before any
    /// decoding or normalization (`/alice/stor/a%20b?x=1`). For HTTP/2 or an
    /// absolute-form target, pass only the path and query.
    pub raw_path_and_query: &'a str,
    /// The request headers. Presigned URLs need `Host` (for HTTP/2, insert
    /// the `:authority` as `Host` before calling).
    pub headers: &'a HeaderMap,
    /// The current time (injected so tests can pin it).
    pub now: SystemTime,
}

/// How a request claims to be authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// No `Authorization` and no presigned-URL query keys.
    Anonymous,
    /// Has an `Authorization` header (it wins over query keys).
    Signed,
    /// No `Authorization`, and the query has any of `expires`, `signature`,
    /// `keyId`, `algorithm`.
    Presigned,
}

/// Decides whether a request is signed, presigned or anonymous (§2.8 step 1).
pub fn classify(headers: &HeaderMap, raw_path_and_query: &str) -> RequestKind {
    if headers.contains_key(http::header::AUTHORIZATION) {
        return RequestKind::Signed;
    }
    match raw_path_and_query.split_once('?') {
        Some((_, query)) if has_presign_keys(&parse_query(query)) => RequestKind::Presigned,
        _ => RequestKind::Anonymous,
    }
}

/// Where the account keys live. The gateway implements this over `meta`.
#[async_trait::async_trait]
pub trait KeyLookup: Send + Sync {
    /// The key of `login` (or of its subuser `subuser`) whose fingerprint is
    /// `fingerprint` (MD5 or SHA-256 of the wire blob; see
    /// [`PublicKey::matches`]). `Ok(None)` when that account/user has no such
    /// key; an error when the account or user is missing or blocked, or the
    /// store failed.
    async fn lookup(
        &self,
        login: &str,
        subuser: Option<&str>,
        fingerprint: &Fingerprint,
    ) -> Result<Option<PublicKey>, LookupError>;
}

/// Details of a presigned-URL authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignInfo {
    /// Expiry, Unix seconds.
    pub expires: i64,
    /// The signed methods.
    pub methods: Vec<String>,
    /// `role` from the query; takes precedence over the `Role` header.
    pub role: Option<String>,
    /// `role-tag` from the query; takes precedence over the header.
    pub role_tag: Option<String>,
}

/// An authenticated principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The account login from the keyId.
    pub login: String,
    /// The subuser, when a subuser key signed.
    pub subuser: Option<String>,
    /// The MD5 fingerprint of the key that verified (whatever form the
    /// keyId used).
    pub fingerprint: Fingerprint,
    /// The algorithm that verified.
    pub algorithm: Algorithm,
    /// Set when authenticated by a presigned URL.
    pub presigned: Option<PresignInfo>,
}

/// The result of a successful authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// No credentials were presented (authorization decides what is allowed).
    Anonymous,
    /// Credentials were presented and verified.
    Authenticated(Caller),
}

/// A request whose credentials are well-formed and only need a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSignature {
    /// Whose key to look up.
    pub key_id: KeyId,
    /// The claimed algorithm.
    pub algorithm: Algorithm,
    /// The bytes the signature must cover.
    pub signing_string: String,
    /// The base64 signature, undecoded.
    pub signature: String,
    /// Set for presigned URLs.
    pub presigned: Option<PresignInfo>,
}

/// The outcome of [`prepare`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// Nothing to verify.
    Anonymous,
    /// Look up `key_id` and call [`PendingSignature::finish`].
    Verify(PendingSignature),
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, AuthError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map_err(|_| AuthError::InvalidHeader(format!("{name} header is invalid")))
        })
        .transpose()
}

/// Runs every check that needs no key (see the module docs for the order).
pub fn prepare(parts: &RequestParts<'_>) -> Result<Prepared, AuthError> {
    let headers = parts.headers;
    // Anonymous and presigned requests carry a Date too; it is checked for
    // every request that has one (§2.5).
    if let Some(date) = header_str(headers, "date")
        .map_err(|_| AuthError::InvalidHeader("Date header is invalid".into()))?
    {
        check_date("date", date, parts.now)?;
    }
    match classify(headers, parts.raw_path_and_query) {
        RequestKind::Anonymous => Ok(Prepared::Anonymous),
        RequestKind::Signed => prepare_signed(parts).map(Prepared::Verify),
        RequestKind::Presigned => {
            let host = header_str(headers, "host").map_err(|_| {
                AuthError::InvalidQueryStringAuthentication("Host header is invalid".into())
            })?;
            let req = presigned::prepare(parts.method, host, parts.raw_path_and_query, parts.now)?;
            Ok(Prepared::Verify(PendingSignature {
                key_id: req.key_id,
                algorithm: req.algorithm,
                signing_string: req.signing_string,
                signature: req.signature,
                presigned: Some(PresignInfo {
                    expires: req.expires,
                    methods: req.methods,
                    role: req.role,
                    role_tag: req.role_tag,
                }),
            }))
        }
    }
}

fn prepare_signed(parts: &RequestParts<'_>) -> Result<PendingSignature, AuthError> {
    let headers = parts.headers;
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(AuthError::InvalidHeader(
            "Invalid Authorization header: more than one was sent".into(),
        ));
    };
    let value = value
        .to_str()
        .map_err(|_| AuthError::InvalidHeader("Invalid Authorization header".into()))?;
    let params = parse_authorization(value)?;
    let algorithm = params.algorithm()?;
    // A signature that covers no date could be replayed forever.
    let dated = params.headers.iter().any(|h| h == "date" || h == "x-date");
    if !dated {
        return Err(AuthError::InvalidHeader(
            "Invalid Authorization header: the signature must cover date or x-date".into(),
        ));
    }
    if params.headers.iter().any(|h| h == "x-date") {
        let x_date = header_str(headers, "x-date")?.ok_or_else(|| {
            AuthError::InvalidHeader(
                "Invalid Authorization header: signed header x-date is missing from the request"
                    .into(),
            )
        })?;
        check_date("x-date", x_date, parts.now)?;
    }
    let key_id = KeyId::parse(&params.key_id)?;
    let signing_string = signing_string(
        &params.headers,
        parts.method,
        parts.raw_path_and_query,
        |name| {
            let mut iter = headers.get_all(name).iter().peekable();
            iter.peek()?;
            // Repeated headers are signed joined by ", " (draft-cavage).
            Some(
                iter.map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        },
    )?;
    Ok(PendingSignature {
        key_id,
        algorithm,
        signing_string,
        signature: params.signature,
        presigned: None,
    })
}

impl PendingSignature {
    /// Turns the key lookup's answer into a verified [`Caller`] or the
    /// matching Manta error.
    pub fn finish(
        self,
        looked_up: Result<Option<PublicKey>, LookupError>,
    ) -> Result<Caller, AuthError> {
        let login = &self.key_id.login;
        let key = match looked_up {
            Ok(Some(key)) if key.matches(&self.key_id.fingerprint) => key,
            // A store that answers with another key must not make it usable.
            Ok(_) => {
                return Err(AuthError::KeyDoesNotExist {
                    key_id: self.key_id.to_string(),
                });
            }
            Err(LookupError::AccountNotFound) => {
                return Err(AuthError::AccountDoesNotExist {
                    login: login.clone(),
                });
            }
            Err(LookupError::UserNotFound) => {
                return Err(AuthError::UserDoesNotExist {
                    login: login.clone(),
                    user: self.key_id.subuser.clone().unwrap_or_default(),
                });
            }
            Err(LookupError::AccountBlocked) => {
                return Err(AuthError::AccountBlocked {
                    login: login.clone(),
                });
            }
            Err(LookupError::Unavailable(cause)) => return Err(AuthError::Unavailable(cause)),
        };
        if !self.algorithm.fits(key.key_type()) {
            let msg = format!(
                "{} cannot be used with a {} key",
                self.algorithm,
                key.key_type().ssh_name()
            );
            return Err(if self.presigned.is_some() {
                AuthError::InvalidQueryStringAuthentication(msg)
            } else {
                AuthError::InvalidAlgorithm(msg)
            });
        }
        let signature = B64_LENIENT
            .decode(self.signature.trim())
            .map_err(|_| AuthError::InvalidSignature)?;
        if !key.verify(self.algorithm, self.signing_string.as_bytes(), &signature) {
            return Err(AuthError::InvalidSignature);
        }
        Ok(Caller {
            login: self.key_id.login,
            subuser: self.key_id.subuser,
            fingerprint: key.md5(),
            algorithm: self.algorithm,
            presigned: self.presigned,
        })
    }
}

/// Authenticates a request: `Ok(Anonymous)` when it carries no credentials,
/// `Ok(Authenticated(caller))` when they verify, otherwise the Manta error.
pub async fn authenticate<L>(
    parts: &RequestParts<'_>,
    lookup: &L,
) -> Result<AuthOutcome, AuthError>
where
    L: KeyLookup + ?Sized,
{
    let pending = match prepare(parts)? {
        Prepared::Anonymous => return Ok(AuthOutcome::Anonymous),
        Prepared::Verify(pending) => pending,
    };
    let key_id = &pending.key_id;
    let looked_up = lookup
        .lookup(&key_id.login, key_id.subuser.as_deref(), &key_id.fingerprint)
        .await;
    pending.finish(looked_up).map(AuthOutcome::Authenticated)
}
