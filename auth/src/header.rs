//! The `Authorization: Signature ...` header and the signing string
//! (spec §2.1, §2.2).
//!
//! [`parse_authorization`] accepts the draft-cavage parameter list in any
//! order with optional whitespace, a case-insensitive scheme, and unknown
//! parameters (ignored). It never panics, and it rejects duplicates and
//! missing required parameters with `InvalidHeader` so that an ambiguous
//! header can never be verified in two different ways.

use crate::algorithm::Algorithm;
use crate::error::AuthError;

/// The pseudo-header whose line is `<lowercase method> <path-and-query>`.
pub const REQUEST_TARGET: &str = "(request-target)";

/// The parameters of a `Signature` Authorization header, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureParams {
    /// The raw `keyId` (parse it with [`crate::KeyId::parse`]).
    pub key_id: String,
    /// The raw `algorithm` value.
    pub algorithm: String,
    /// Lowercased signed header names; `["date"]` when `headers` is absent.
    pub headers: Vec<String>,
    /// The base64 signature, undecoded.
    pub signature: String,
}

impl SignatureParams {
    /// The algorithm, or `InvalidAlgorithm` naming the supported ones.
    pub fn algorithm(&self) -> Result<Algorithm, AuthError> {
        Algorithm::parse(&self.algorithm).ok_or_else(|| {
            AuthError::InvalidAlgorithm(format!(
                "{} is not a supported algorithm (supported: {})",
                self.algorithm,
                Algorithm::supported_list()
            ))
        })
    }

    /// Renders the header value in the CLI's exact form and order.
    pub fn to_header_value(&self) -> String {
        format!(
            "Signature keyId=\"{}\",algorithm=\"{}\",headers=\"{}\",signature=\"{}\"",
            self.key_id,
            self.algorithm,
            self.headers.join(" "),
            self.signature
        )
    }
}

fn invalid(detail: &str) -> AuthError {
    AuthError::InvalidHeader(format!("Invalid Authorization header: {detail}"))
}

/// Parses an `Authorization` header value.
///
/// Errors: not `scheme credentials` → `InvalidHeader("Invalid Authorization
/// header")`; a scheme other than `Signature` → `AuthorizationSchemeNotAllowed`;
/// bad, duplicate or missing parameters → `InvalidHeader`. The algorithm is
/// not checked here (see [`SignatureParams::algorithm`]).
pub fn parse_authorization(value: &str) -> Result<SignatureParams, AuthError> {
    let value = value.trim();
    let Some((scheme, credentials)) = value.split_once([' ', '\t']) else {
        return Err(AuthError::InvalidHeader(
            "Invalid Authorization header".into(),
        ));
    };
    let credentials = credentials.trim_start();
    if scheme.is_empty() || credentials.is_empty() {
        return Err(AuthError::InvalidHeader(
            "Invalid Authorization header".into(),
        ));
    }
    if !scheme.eq_ignore_ascii_case("signature") {
        return Err(AuthError::AuthorizationSchemeNotAllowed {
            scheme: scheme.to_owned(),
        });
    }

    let mut key_id = None;
    let mut algorithm = None;
    let mut headers = None;
    let mut signature = None;
    for (name, val) in Params::new(credentials) {
        let (name, val) = (name?, val);
        let slot = match name.to_ascii_lowercase().as_str() {
            "keyid" => &mut key_id,
            "algorithm" => &mut algorithm,
            "headers" => &mut headers,
            "signature" => &mut signature,
            _ => continue,
        };
        if slot.replace(val.to_owned()).is_some() {
            return Err(invalid(&format!("duplicate parameter {name}")));
        }
    }
    let require = |v: Option<String>, name: &str| {
        v.filter(|s| !s.is_empty())
            .ok_or_else(|| invalid(&format!("{name} was not specified")))
    };
    let headers = match headers {
        None => vec!["date".to_owned()],
        Some(list) => {
            let list: Vec<String> = list
                .split_ascii_whitespace()
                .map(str::to_ascii_lowercase)
                .collect();
            if list.is_empty() {
                return Err(invalid("headers is empty"));
            }
            list
        }
    };
    Ok(SignatureParams {
        key_id: require(key_id, "keyId")?,
        algorithm: require(algorithm, "algorithm")?,
        headers,
        signature: require(signature, "signature")?,
    })
}

/// Iterator over `name="value"` pairs separated by commas (with optional
/// whitespace). Yields an error once and then stops on malformed input.
struct Params<'a> {
    rest: &'a str,
    failed: bool,
}

impl<'a> Params<'a> {
    fn new(s: &'a str) -> Self {
        Params {
            rest: s,
            failed: false,
        }
    }
}

impl<'a> Iterator for Params<'a> {
    type Item = (Result<&'a str, AuthError>, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let s = self.rest.trim_start_matches([' ', '\t', ',']);
        if s.is_empty() {
            return None;
        }
        let mut fail = |what: &str| {
            self.failed = true;
            Some((Err(invalid(what)), ""))
        };
        let name_len = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(s.len());
        if name_len == 0 {
            return fail("expected a parameter name");
        }
        let (name, after) = s.split_at(name_len);
        let Some(after) = after.trim_start().strip_prefix('=') else {
            return fail("expected '=' after a parameter name");
        };
        let Some(after) = after.trim_start().strip_prefix('"') else {
            return fail("parameter values must be quoted");
        };
        let Some((val, after)) = after.split_once('"') else {
            return fail("unterminated quoted value");
        };
        let after = after.trim_start();
        if !(after.is_empty() || after.starts_with(',')) {
            return fail("expected ',' between parameters");
        }
        self.rest = after;
        Some((Ok(name), val))
    }
}

/// Builds the signing string for `headers`: `name: value` lines joined by
/// `\n`. `(request-target)` becomes `<lowercase method> <path_and_query>`;
/// every other name is looked up with `header` (which should join repeated
/// headers with `", "`). A listed header missing from the request is
/// `InvalidHeader`.
pub fn signing_string(
    headers: &[String],
    method: &str,
    path_and_query: &str,
    header: impl Fn(&str) -> Option<String>,
) -> Result<String, AuthError> {
    let mut lines = Vec::with_capacity(headers.len());
    for name in headers {
        if name == REQUEST_TARGET {
            lines.push(format!(
                "{REQUEST_TARGET}: {} {path_and_query}",
                method.to_ascii_lowercase()
            ));
        } else {
            let value = header(name).ok_or_else(|| {
                AuthError::InvalidHeader(format!(
                    "Invalid Authorization header: signed header {name} is missing from the request"
                ))
            })?;
            lines.push(format!("{name}: {value}"));
        }
    }
    Ok(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CLI: &str = "Signature keyId=\"/alice/keys/71:cd:44:83:0d:a3:29:f3:90:84:77:02:68:e4:ba:b6\",algorithm=\"rsa-sha256\",headers=\"date\",signature=\"sEAv==\"";

    #[test]
    fn parses_the_cli_form_and_renders_it_back() {
        let p = parse_authorization(CLI).unwrap();
        assert_eq!(
            p.key_id,
            "/alice/keys/71:cd:44:83:0d:a3:29:f3:90:84:77:02:68:e4:ba:b6"
        );
        assert_eq!(p.algorithm, "rsa-sha256");
        assert_eq!(p.headers, ["date"]);
        assert_eq!(p.signature, "sEAv==");
        assert_eq!(p.to_header_value(), CLI);
        assert_eq!(p.algorithm().unwrap(), Algorithm::RsaSha256);
    }

    #[test]
    fn any_order_spaces_case_and_default_headers() {
        let p = parse_authorization(
            "  sIgNaTuRe   signature = \"c2ln\" , algorithm=\"ED25519-SHA512\",  keyId=\"/a/keys/x\", extra=\"ignored\"",
        )
        .unwrap();
        assert_eq!(p.headers, ["date"]);
        assert_eq!(p.signature, "c2ln");
        assert_eq!(p.algorithm().unwrap(), Algorithm::Ed25519Sha512);
        let p = parse_authorization(
            "Signature keyId=\"k\",algorithm=\"rsa-sha256\",headers=\"(request-target) Host  X-Date\",signature=\"s\"",
        )
        .unwrap();
        assert_eq!(p.headers, ["(request-target)", "host", "x-date"]);
    }

    #[test]
    fn malformed_headers_are_invalid_header() {
        for bad in [
            "",
            "Signature",
            "Signature ",
            "Signature keyId",
            "Signature keyId=",
            "Signature keyId=unquoted",
            "Signature keyId=\"unterminated",
            "Signature keyId=\"a\" algorithm=\"b\"",
            "Signature keyId=\"a\",algorithm=\"rsa-sha256\"",
            "Signature algorithm=\"rsa-sha256\",signature=\"s\"",
            "Signature keyId=\"a\",signature=\"s\"",
            "Signature keyId=\"\",algorithm=\"rsa-sha256\",signature=\"s\"",
            "Signature keyId=\"a\",keyId=\"b\",algorithm=\"rsa-sha256\",signature=\"s\"",
            "Signature keyId=\"a\",algorithm=\"rsa-sha256\",headers=\" \",signature=\"s\"",
            "Signature =\"a\"",
        ] {
            let err = parse_authorization(bad).unwrap_err();
            assert_eq!(err.code(), "InvalidHeader", "{bad:?}");
        }
    }

    #[test]
    fn other_schemes_are_not_allowed() {
        for scheme in ["Basic dXNlcjpwYXNz", "Token abc", "Bearer x"] {
            let err = parse_authorization(scheme).unwrap_err();
            assert_eq!(err.code(), "AuthorizationSchemeNotAllowed", "{scheme}");
            assert_eq!(err.http_status(), 403);
        }
    }

    #[test]
    fn unsupported_algorithm_lists_supported_ones() {
        let p = parse_authorization("Signature keyId=\"a\",algorithm=\"dsa-sha1\",signature=\"s\"")
            .unwrap();
        let err = p.algorithm().unwrap_err();
        assert_eq!(err.code(), "InvalidAlgorithm");
        assert!(err.message().contains("rsa-sha256") && err.message().contains("ed25519-sha512"));
    }

    #[test]
    fn signing_string_for_cli_and_general_lists() {
        let lookup = |name: &str| match name {
            "date" => Some("Sun, 22 Nov 2026 01:33:03 GMT".to_owned()),
            "host" => Some("example.com".to_owned()),
            _ => None,
        };
        assert_eq!(
            signing_string(&["date".into()], "GET", "/a", lookup).unwrap(),
            "date: Sun, 22 Nov 2026 01:33:03 GMT"
        );
        assert_eq!(
            signing_string(
                &["(request-target)".into(), "host".into(), "date".into()],
                "PUT",
                "/alice/stor/a%20b?x=1",
                lookup
            )
            .unwrap(),
            "(request-target): put /alice/stor/a%20b?x=1\nhost: example.com\ndate: Sun, 22 Nov 2026 01:33:03 GMT"
        );
        let err = signing_string(&["x-date".into()], "GET", "/", lookup).unwrap_err();
        assert_eq!(err.code(), "InvalidHeader");
    }

    fn value() -> impl Strategy<Value = String> {
        "[^\"]{1,40}"
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in ".{0,200}") {
            let _ = parse_authorization(&s);
        }

        #[test]
        fn parser_never_panics_on_near_valid_input(s in "Signature [a-zA-Z=\", \\t]{0,80}") {
            let _ = parse_authorization(&s);
        }

        #[test]
        fn well_formed_headers_round_trip(
            key_id in value(),
            algorithm in value(),
            headers in proptest::collection::vec("[a-z(][a-z0-9-)]{0,15}", 1..5),
            signature in value(),
        ) {
            let params = SignatureParams { key_id, algorithm, headers, signature };
            let parsed = parse_authorization(&params.to_header_value()).unwrap();
            prop_assert_eq!(parsed, params);
        }
    }
}
