//! Connection settings for a TiKV cluster and the `tikv://` URL form that
//! selects this backend (`--meta tikv://PD1:2379,PD2:2379`).
//!
//! Parsing never panics on any input; every accepted endpoint is a
//! non-empty host (name, IPv4, or bracketed IPv6) and a non-zero port.

use std::str::FromStr;
use std::time::Duration;

/// URL scheme selecting the TiKV backend.
pub const SCHEME: &str = "tikv://";

/// Why a `tikv://` URL was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The string does not start with `tikv://`.
    #[error("metadata URL must start with {SCHEME}, got {0:?}")]
    Scheme(String),
    /// No PD endpoint was listed.
    #[error("{SCHEME} URL lists no PD endpoint")]
    NoEndpoints,
    /// One endpoint is not `host:port`.
    #[error("PD endpoint {endpoint:?} is not host:port: {reason}")]
    Endpoint {
        /// The offending endpoint text.
        endpoint: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The same endpoint was listed twice (tikv-client refuses that).
    #[error("PD endpoint {0:?} is listed twice")]
    Duplicate(String),
}

/// How to reach a TiKV cluster and how long to wait for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TikvConfig {
    /// PD endpoints as `host:port`.
    pub pd_endpoints: Vec<String>,
    /// Upper bound for [`crate::TikvKv::connect`] (PD discovery).
    pub connect_timeout: Duration,
    /// Per-RPC timeout handed to tikv-client (`Config::with_timeout`).
    pub request_timeout: Duration,
    /// Upper bound for one trait call including tikv-client's own retries
    /// and backoff (region errors, lock resolution, PD reconnects). When it
    /// elapses the call fails with `Unavailable` (or `Undetermined` for a
    /// commit).
    pub operation_timeout: Duration,
}

impl TikvConfig {
    /// Defaults: connect 5 s, per-RPC 2 s (tikv-client's own default),
    /// per-operation 10 s.
    pub fn new(pd_endpoints: Vec<String>) -> Self {
        TikvConfig {
            pd_endpoints,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(2),
            operation_timeout: Duration::from_secs(10),
        }
    }

    /// Parse `tikv://PD1:2379,PD2:2379[/]` with default timeouts.
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        let rest = url
            .strip_prefix(SCHEME)
            .ok_or_else(|| ConfigError::Scheme(url.to_owned()))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.trim().is_empty() {
            return Err(ConfigError::NoEndpoints);
        }
        let mut endpoints: Vec<String> = Vec::new();
        for raw in rest.split(',') {
            let ep = raw.trim();
            validate_endpoint(ep)?;
            if endpoints.iter().any(|e| e == ep) {
                return Err(ConfigError::Duplicate(ep.to_owned()));
            }
            endpoints.push(ep.to_owned());
        }
        Ok(TikvConfig::new(endpoints))
    }

    /// The `tikv://` URL naming these endpoints.
    pub fn to_url(&self) -> String {
        format!("{SCHEME}{}", self.pd_endpoints.join(","))
    }
}

impl FromStr for TikvConfig {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        TikvConfig::from_url(s)
    }
}

fn validate_endpoint(ep: &str) -> Result<(), ConfigError> {
    let bad = |reason| ConfigError::Endpoint {
        endpoint: ep.to_owned(),
        reason,
    };
    if ep.is_empty() {
        return Err(bad("empty"));
    }
    let (host, port) = if let Some(v6) = ep.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad("invalid IPv6 address"));
        }
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| bad("missing :port"))?;
        (host, port)
    } else {
        let (host, port) = ep.rsplit_once(':').ok_or_else(|| bad("missing :port"))?;
        let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_';
        if !host.chars().all(ok_char) {
            return Err(bad("invalid character in host"));
        }
        (host, port)
    };
    if host.is_empty() {
        return Err(bad("empty host"));
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad("port must be 1..=65535")),
        Ok(_) if !port.bytes().all(|b| b.is_ascii_digit()) => Err(bad("port must be digits")),
        Ok(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_endpoint_lists() {
        let c = TikvConfig::from_url("tikv://pd1:2379,pd2.example.com:2379,10.0.0.3:2379").unwrap();
        assert_eq!(
            c.pd_endpoints,
            vec!["pd1:2379", "pd2.example.com:2379", "10.0.0.3:2379"]
        );
        assert_eq!(c.request_timeout, Duration::from_secs(2));
        let c: TikvConfig = "tikv://[::1]:2379/".parse().unwrap();
        assert_eq!(c.pd_endpoints, vec!["[::1]:2379"]);
        let c = TikvConfig::from_url("tikv://a:1, b:2").unwrap();
        assert_eq!(c.pd_endpoints, vec!["a:1", "b:2"]);
    }

    #[test]
    fn rejects_malformed_urls() {
        for bad in [
            "",
            "tikv:/pd:2379",
            "http://pd:2379",
            "tikv://",
            "tikv:///",
            "tikv://pd",
            "tikv://pd:",
            "tikv://:2379",
            "tikv://pd:0",
            "tikv://pd:65536",
            "tikv://pd:+80",
            "tikv://pd:2379,",
            "tikv://pd:2379,,pd2:2379",
            "tikv://user@pd:2379",
            "tikv://pd:2379/path",
            "tikv://[::1:2379",
            "tikv://[nothex]:2379",
            "tikv://pd:2379,pd:2379",
        ] {
            assert!(
                TikvConfig::from_url(bad).is_err(),
                "{bad:?} must be rejected"
            );
        }
        assert_eq!(
            TikvConfig::from_url("tikv://"),
            Err(ConfigError::NoEndpoints)
        );
        assert!(matches!(
            TikvConfig::from_url("tikv://a:1,a:1"),
            Err(ConfigError::Duplicate(_))
        ));
    }

    fn endpoint() -> impl Strategy<Value = String> {
        prop_oneof![
            ("[a-z][a-z0-9.-]{0,20}", 1u16..).prop_map(|(h, p)| format!("{h}:{p}")),
            (any::<[u8; 4]>(), 1u16..)
                .prop_map(|(ip, p)| { format!("{}:{p}", std::net::Ipv4Addr::from(ip)) }),
            (any::<u128>(), 1u16..)
                .prop_map(|(ip, p)| { format!("[{}]:{p}", std::net::Ipv6Addr::from(ip)) }),
        ]
    }

    proptest! {
        #[test]
        fn valid_lists_round_trip(eps in proptest::collection::btree_set(endpoint(), 1..5)) {
            let eps: Vec<String> = eps.into_iter().collect();
            let url = format!("tikv://{}", eps.join(","));
            let c = TikvConfig::from_url(&url).unwrap();
            prop_assert_eq!(&c.pd_endpoints, &eps);
            prop_assert_eq!(c.to_url(), url);
        }

        #[test]
        fn arbitrary_input_never_panics(s in ".{0,64}") {
            let _ = TikvConfig::from_url(&s);
            let _ = TikvConfig::from_url(&format!("tikv://{s}"));
        }
    }
}
