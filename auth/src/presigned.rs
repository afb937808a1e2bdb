//! Presigned URLs as made by `msign` (spec §2.8).
//!
//! The verification order, messages and signing string follow muskie
//! exactly: method check, required parameters, expiry, algorithm, then the
//! keyId/signature path shared with header signatures. The signing string is
//! rebuilt from the *raw* request path and a canonical (sorted, RFC 3986
//! re-encoded) query, so any change to path, host, methods or parameters
//! changes the bytes that were signed.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::algorithm::Algorithm;
use crate::clock::unix_secs;
use crate::error::AuthError;
use crate::keyid::KeyId;

/// Everything but RFC 3986 unreserved characters is encoded: this equals
/// JavaScript `encodeURIComponent` plus `! ' ( ) *`.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The query keys whose presence (without `Authorization`) makes a request
/// presigned.
pub const PRESIGN_KEYS: [&str; 4] = ["expires", "signature", "keyId", "algorithm"];

/// `encodeURIComponent(s)` with `! ' ( ) *` also encoded, uppercase hex.
pub fn rfc3986_encode(s: &str) -> String {
    utf8_percent_encode(s, RFC3986).to_string()
}

/// Splits a raw query string (without `?`) into decoded `(key, value)`
/// pairs in order, the way Node's `querystring` does: `+` means space,
/// `%XX` is decoded, invalid UTF-8 is replaced, a key without `=` has an
/// empty value, empty segments are skipped.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let s = s.replace('+', " ");
        percent_decode_str(&s).decode_utf8_lossy().into_owned()
    };
    query
        .split('&')
        .filter(|seg| !seg.is_empty())
        .map(|seg| match seg.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(seg), String::new()),
        })
        .collect()
}

/// Whether the decoded query carries any presigned-URL key.
pub fn has_presign_keys(params: &[(String, String)]) -> bool {
    params
        .iter()
        .any(|(k, _)| PRESIGN_KEYS.contains(&k.as_str()))
}

/// The 4-line signing string: sorted methods joined by `,`, host, raw path,
/// and every parameter but `signature`, sorted by key (stable) and rendered
/// `rfc3986(k)=rfc3986(v)` joined by `&`.
pub fn signing_string(
    methods: &[String],
    host: &str,
    raw_path: &str,
    params: &[(String, String)],
) -> String {
    let mut methods = methods.to_vec();
    methods.sort();
    let mut params: Vec<&(String, String)> =
        params.iter().filter(|(k, _)| k != "signature").collect();
    params.sort_by(|a, b| a.0.cmp(&b.0));
    let query = params
        .iter()
        .map(|(k, v)| format!("{}={}", rfc3986_encode(k), rfc3986_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    format!("{}\n{host}\n{raw_path}\n{query}", methods.join(","))
}

/// A presigned request that passed the checks which need no key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedRequest {
    /// The signing algorithm.
    pub algorithm: Algorithm,
    /// Expiry, Unix seconds.
    pub expires: i64,
    /// The parsed keyId.
    pub key_id: KeyId,
    /// Set when the keyId names no fingerprint (see
    /// [`KeyId::parse_or_unknown`]).
    pub unknown_key: Option<String>,
    /// The base64 signature (with `+` restored where the query turned it
    /// into a space).
    pub signature: String,
    /// The allowed methods, as signed.
    pub methods: Vec<String>,
    /// The `role` query value, if any (acts like the `Role` header).
    pub role: Option<String>,
    /// The `role-tag` query value, if any (acts like the `role-tag` header).
    pub role_tag: Option<String>,
    /// The bytes the signature must cover.
    pub signing_string: String,
}

fn qs_error(msg: String) -> AuthError {
    AuthError::InvalidQueryStringAuthentication(msg)
}

/// Checks a presigned request up to (not including) key lookup.
///
/// `raw_path_and_query` is the request target exactly as on the request
/// line; `host` is the `Host` header value; `now` is the current time.
pub fn prepare(
    method: &str,
    host: Option<&str>,
    raw_path_and_query: &str,
    now: std::time::SystemTime,
) -> Result<PresignedRequest, AuthError> {
    let (raw_path, query) = raw_path_and_query
        .split_once('?')
        .unwrap_or((raw_path_and_query, ""));
    let params = parse_query(query);
    let single = |key: &str| -> Result<Option<String>, AuthError> {
        let mut values = params.iter().filter(|(k, _)| k == key).map(|(_, v)| v);
        let first = values.next().cloned();
        if values.next().is_some() {
            return Err(qs_error(format!(
                "parameter \"{key}\" was given more than once"
            )));
        }
        Ok(first)
    };

    // Step 2: the request's method must be one of the signed ones.
    let methods: Vec<String> = match single("method")? {
        Some(list) => list.split(',').map(|m| m.trim().to_owned()).collect(),
        None => vec![method.to_owned()],
    };
    if !methods.iter().any(|m| m == method) {
        return Err(qs_error(format!("{method} was not a signed method")));
    }

    // Step 3: required parameters.
    let algorithm = single("algorithm")?;
    let expires = single("expires")?;
    let key_id = single("keyId")?;
    let signature = single("signature")?;
    let missing: Vec<&str> = [
        ("algorithm", &algorithm),
        ("expires", &expires),
        ("keyId", &key_id),
        ("signature", &signature),
    ]
    .iter()
    .filter(|(_, v)| v.is_none())
    .map(|(k, _)| *k)
    .collect();
    let (Some(algorithm), Some(expires), Some(key_id), Some(signature)) =
        (algorithm, expires, key_id, signature)
    else {
        return Err(qs_error(format!(
            "parameters \"{}\" are required",
            missing.join(", ")
        )));
    };

    // Step 4: expiry.
    let expires: i64 = expires
        .trim()
        .parse()
        .map_err(|_| qs_error(format!("expires \"{expires}\" is invalid")))?;
    if unix_secs(now) > expires {
        return Err(qs_error("request expired".into()));
    }

    // Step 5: algorithm.
    let upper = algorithm.to_ascii_uppercase();
    let algorithm = Algorithm::parse(&upper)
        .ok_or_else(|| qs_error(format!("{upper} is not a supported signing algorithm")))?;

    // Step 6: keyId and the signing string.
    let (key_id, unknown_key) = KeyId::parse_or_unknown(&key_id)?;
    let host = host.ok_or_else(|| qs_error("a Host header is required".into()))?;
    let signing_string = signing_string(&methods, host, raw_path, &params);
    Ok(PresignedRequest {
        algorithm,
        expires,
        key_id,
        unknown_key,
        // Base64 never contains spaces; a space here was a raw `+` that the
        // query decoding turned into one (see spec §2.8 pitfalls).
        signature: signature.replace(' ', "+"),
        methods,
        role: single("role")?,
        role_tag: single("role-tag")?,
        signing_string,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use std::time::{Duration, UNIX_EPOCH};

    pub(crate) const RSA_URL: &str = "/alice/stor/dir/a%20b%2Bc.txt?algorithm=RSA-SHA256&expires=1700000000&keyId=%2Falice%2Fkeys%2F71%3Acd%3A44%3A83%3A0d%3Aa3%3A29%3Af3%3A90%3A84%3A77%3A02%3A68%3Ae4%3Aba%3Ab6&method=GET%2CHEAD&role=ops&signature=KrlIjX%2F%2BBLA4v8Tu1d3%2FF63JAckpAE4NoK03oN9h%2B05fBGpQduDkpDEBncqB04qrxL%2F6AuanPbm0R8j9J6V%2FBAK4%2FO1RH9QucDO2DxWv3ggUjN3xBkye70AO3cBguVtG7K5a7oRVDBV7NANHQ3kzsDjoJu%2FN8TzL4Q8xl3rJMEQRHcEKjIQpw8v1W7A77NNoEpfWD64vOi5hZACkQMoee6WYYCvXUZVS678kb0KJn0gjaO72H7rKb34owwisZIl4kYXyb2d6%2FQtvz5ILoC5lVmwR0N1VIylOmih2wJuJ1f0jVzGQPPnn60XaY5%2BzrelVoK1xx1MKl6WdSzpGmIbuDQ%3D%3D";

    fn before_expiry() -> std::time::SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_699_999_000)
    }

    #[test]
    fn rfc3986_matches_the_cli() {
        assert_eq!(
            rfc3986_encode("/alice/keys/71:cd"),
            "%2Falice%2Fkeys%2F71%3Acd"
        );
        assert_eq!(rfc3986_encode("GET,HEAD"), "GET%2CHEAD");
        assert_eq!(
            rfc3986_encode("a!'()*~-_.z ü"),
            "a%21%27%28%29%2A~-_.z%20%C3%BC"
        );
    }

    #[test]
    fn spec_vector_signing_string_is_rebuilt_exactly() {
        let req = prepare("HEAD", Some("manta.example.com"), RSA_URL, before_expiry()).unwrap();
        assert_eq!(
            req.signing_string,
            "GET,HEAD\nmanta.example.com\n/alice/stor/dir/a%20b%2Bc.txt\nalgorithm=RSA-SHA256&expires=1700000000&keyId=%2Falice%2Fkeys%2F71%3Acd%3A44%3A83%3A0d%3Aa3%3A29%3Af3%3A90%3A84%3A77%3A02%3A68%3Ae4%3Aba%3Ab6&method=GET%2CHEAD&role=ops"
        );
        assert_eq!(req.algorithm, Algorithm::RsaSha256);
        assert_eq!(req.role.as_deref(), Some("ops"));
        assert_eq!(req.expires, 1_700_000_000);
        assert_eq!(req.key_id.login, "alice");
        assert!(req.signature.starts_with("KrlIjX/+BLA4"));
    }

    #[test]
    fn failures_in_muskie_order() {
        let host = Some("manta.example.com");
        let code_msg = |r: Result<PresignedRequest, AuthError>| {
            let e = r.unwrap_err();
            (e.code(), e.message())
        };
        assert_eq!(
            code_msg(prepare("PUT", host, RSA_URL, before_expiry())),
            (
                "InvalidQueryStringAuthentication",
                "PUT was not a signed method".into()
            )
        );
        assert_eq!(
            code_msg(prepare(
                "GET",
                host,
                RSA_URL,
                UNIX_EPOCH + Duration::from_secs(1_700_000_001)
            )),
            ("InvalidQueryStringAuthentication", "request expired".into())
        );
        // Exactly at expiry is still valid.
        assert!(
            prepare(
                "GET",
                host,
                RSA_URL,
                UNIX_EPOCH + Duration::from_secs(1_700_000_000)
            )
            .is_ok()
        );
        assert_eq!(
            code_msg(prepare(
                "GET",
                host,
                "/a/stor/x?expires=1&keyId=%2Fa%2Fkeys%2Fx",
                before_expiry()
            )),
            (
                "InvalidQueryStringAuthentication",
                "parameters \"algorithm, signature\" are required".into()
            )
        );
        let with = |alg: &str, exp: &str, kid: &str| {
            format!("/a/stor/x?algorithm={alg}&expires={exp}&keyId={kid}&signature=c2ln")
        };
        let kid = "%2Fa%2Fkeys%2F71%3Acd%3A44%3A83%3A0d%3Aa3%3A29%3Af3%3A90%3A84%3A77%3A02%3A68%3Ae4%3Aba%3Ab6";
        assert_eq!(
            code_msg(prepare(
                "GET",
                host,
                &with("dsa-sha1", "1700000000", kid),
                before_expiry()
            )),
            (
                "InvalidQueryStringAuthentication",
                "DSA-SHA1 is not a supported signing algorithm".into()
            )
        );
        assert_eq!(
            code_msg(prepare(
                "GET",
                host,
                &with("rsa-sha256", "soon", kid),
                before_expiry()
            ))
            .0,
            "InvalidQueryStringAuthentication"
        );
        assert_eq!(
            code_msg(prepare(
                "GET",
                host,
                &with("rsa-sha256", "1700000000", "%2Fa%2Fkey%2Fx"),
                before_expiry()
            ))
            .0,
            "InvalidKeyId"
        );
        assert_eq!(
            code_msg(prepare(
                "GET",
                None,
                &with("rsa-sha256", "1700000000", kid),
                before_expiry()
            ))
            .0,
            "InvalidQueryStringAuthentication"
        );
        let dup = format!(
            "{}&expires=1700000000",
            with("rsa-sha256", "1700000000", kid)
        );
        assert_eq!(
            code_msg(prepare("GET", host, &dup, before_expiry())).0,
            "InvalidQueryStringAuthentication"
        );
        // Lower-case algorithm is accepted (uppercased before lookup).
        assert!(
            prepare(
                "GET",
                host,
                &with("ed25519-sha512", "1700000000", kid),
                before_expiry()
            )
            .is_ok()
        );
    }

    #[test]
    fn single_method_defaults_to_the_request_method() {
        let url = "/alice/stor/x?algorithm=RSA-SHA256&expires=1700000000&keyId=%2Falice%2Fbob%2Fkeys%2F71%3Acd%3A44%3A83%3A0d%3Aa3%3A29%3Af3%3A90%3A84%3A77%3A02%3A68%3Ae4%3Aba%3Ab6&signature=x+y";
        let req = prepare("PUT", Some("h:8080"), url, before_expiry()).unwrap();
        assert!(
            req.signing_string
                .starts_with("PUT\nh:8080\n/alice/stor/x\nalgorithm=")
        );
        assert_eq!(req.key_id.subuser.as_deref(), Some("bob"));
        assert_eq!(req.signature, "x+y");
    }

    #[test]
    fn query_parsing() {
        assert_eq!(
            parse_query("a=1&&b&c=%20x+y%2B&=e"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), String::new()),
                ("c".into(), " x y+".into()),
                (String::new(), "e".into()),
            ]
        );
        assert!(has_presign_keys(&parse_query("keyId=x")));
        assert!(!has_presign_keys(&parse_query("limit=5&marker=x")));
    }

    proptest::proptest! {
        #[test]
        fn prepare_never_panics(method in "[A-Z]{0,6}", target in ".{0,300}") {
            let _ = prepare(&method, Some("h"), &target, before_expiry());
        }
    }

    fn ed25519_signer() -> crate::sign::RequestSigner {
        let pem =
            std::fs::read_to_string(format!("{}/testdata/ed25519", env!("CARGO_MANIFEST_DIR")))
                .unwrap();
        crate::sign::RequestSigner::new(
            crate::sign::SigningKey::from_openssh(&pem).unwrap(),
            "alice",
            None,
        )
    }

    proptest::proptest! {
        /// Whatever the path, host, methods and role, the server rebuilds
        /// exactly the string the signer signed.
        #[test]
        fn signer_and_server_agree_on_the_signing_string(
            segment in ".{1,20}",
            host in "[a-z0-9.-]{1,20}(:[0-9]{1,5})?",
            methods in proptest::sample::subsequence(vec!["DELETE", "GET", "HEAD", "PUT"], 1..4),
            role in proptest::option::of(".{1,20}"),
        ) {
            let signer = ed25519_signer();
            let raw_path = format!("/alice/stor/{}", rfc3986_encode(&segment));
            let url = signer
                .presign(&crate::sign::Presign {
                    methods: &methods,
                    host: &host,
                    raw_path: &raw_path,
                    expires: 1_700_000_000,
                    role: role.as_deref(),
                })
                .unwrap();
            let req = prepare(methods[0], Some(&host), &url, before_expiry()).unwrap();
            proptest::prop_assert_eq!(&req.role, &role);
            let sig = crate::key::B64_LENIENT.decode(&req.signature).unwrap();
            let public = signer.key().public_key();
            proptest::prop_assert!(public.verify(req.algorithm, req.signing_string.as_bytes(), &sig));
        }
    }
}
