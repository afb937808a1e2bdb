//! `--meta`: which metadata backend a process uses. Every process that
//! touches metadata takes the same flag: `embedded` (the default; a redb
//! file in the data directory, held by one process at a time) or
//! `tikv://PD1:2379,PD2:2379,...` (a TiKV cluster shared by many processes).
//!
//! A TiKV store connects lazily, so a process starts and serves even while
//! the cluster is unreachable: metadata calls fail with the `meta` trait's
//! "unavailable" error, which the gateway answers with 503, and the next
//! call tries to connect again.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{Context, Result};
use meta::namespace::Namespace;
use meta_tikv::{TikvConfig, TikvKv};
use tokio_util::sync::CancellationToken;

/// The embedded metadata file in a data directory.
pub const EMBEDDED_FILE: &str = "meta.redb";

/// The value of `--meta`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaSpec {
    /// `DATA/meta.redb`.
    Embedded,
    /// A TiKV cluster reached through its PD endpoints.
    Tikv(TikvConfig),
}

impl FromStr for MetaSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "" | "embedded" => Ok(MetaSpec::Embedded),
            s if s.starts_with(meta_tikv::config::SCHEME) => TikvConfig::from_url(s)
                .map(MetaSpec::Tikv)
                .map_err(|e| e.to_string()),
            other => Err(format!(
                "unknown metadata backend {other:?}: use `embedded` or tikv://PD1:2379,..."
            )),
        }
    }
}

impl std::fmt::Display for MetaSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetaSpec::Embedded => f.write_str("embedded"),
            MetaSpec::Tikv(cfg) => f.write_str(&cfg.to_url()),
        }
    }
}

/// An opened metadata backend.
pub struct Meta {
    /// The namespace on top of the backend.
    pub ns: Arc<Namespace>,
    tikv: Option<TikvKv>,
}

impl Meta {
    /// Opens the backend `spec` names; `data` holds the embedded file.
    pub async fn open(spec: &MetaSpec, data: &Path) -> Result<Meta> {
        match spec {
            MetaSpec::Embedded => {
                std::fs::create_dir_all(data)
                    .with_context(|| format!("create {}", data.display()))?;
                let path = data.join(EMBEDDED_FILE);
                let kv = meta::embedded::EmbeddedKv::open(&path)
                    .await
                    .with_context(|| {
                        format!(
                            "open metadata {} (is `tidepool up` running on it?)",
                            path.display()
                        )
                    })?;
                Ok(Meta {
                    ns: Arc::new(Namespace::new(Arc::new(kv))),
                    tikv: None,
                })
            }
            MetaSpec::Tikv(cfg) => {
                let kv = TikvKv::lazy(cfg);
                Ok(Meta {
                    ns: Arc::new(Namespace::new(Arc::new(kv.clone()))),
                    tikv: Some(kv),
                })
            }
        }
    }

    /// Whether metadata may be unreachable for a while (a remote cluster)
    /// rather than failing for good (a local file).
    pub fn is_remote(&self) -> bool {
        self.tikv.is_some()
    }

    /// Starts the backend's housekeeping (TiKV: advancing the GC safe
    /// point, which nothing else does without TiDB) as a background worker
    /// of the scope `cluster` (`tidepool admin workers`), until `cancel`.
    pub fn spawn_housekeeping(&self, cancel: CancellationToken) {
        let Some(kv) = &self.tikv else {
            return;
        };
        let registry = upkeep::Registry::new(crate::agents::CLUSTER_SCOPE, self.ns.clone());
        // Detached: both stop when `cancel` fires.
        drop(registry.spawn(
            SafePoint {
                kv: kv.clone(),
                cfg: meta_tikv::GcConfig::default(),
            },
            cancel.clone(),
        ));
        tokio::spawn(registry.run_publisher(cancel));
    }
}

/// Advancing TiKV's GC safe point ([`TikvKv::advance_gc_safe_point`]) on
/// the workers' shape: a pass per interval, failures recorded and retried.
/// Several processes may run it: PD keeps the highest safe point.
struct SafePoint {
    kv: TikvKv,
    cfg: meta_tikv::GcConfig,
}

impl upkeep::Worker for SafePoint {
    fn name(&self) -> &'static str {
        "tikv-safe-point"
    }

    fn every(&self) -> std::time::Duration {
        self.cfg.interval
    }

    async fn pass(&mut self, _ctl: &upkeep::Control) -> Result<String, upkeep::UpkeepError> {
        let sp = self
            .kv
            .advance_gc_safe_point(self.cfg.keep)
            .await
            .map_err(|e| {
                upkeep::UpkeepError::Failed(format!("advancing the GC safe point: {e}"))
            })?;
        Ok(format!("safe point {sp}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_backends() {
        assert_eq!("embedded".parse::<MetaSpec>(), Ok(MetaSpec::Embedded));
        let MetaSpec::Tikv(cfg) = "tikv://pd1:2379,pd2:2379".parse().expect("tikv") else {
            panic!("not tikv");
        };
        assert_eq!(cfg.pd_endpoints, ["pd1:2379", "pd2:2379"]);
        assert!("tikv://".parse::<MetaSpec>().is_err());
        assert!("postgres://x".parse::<MetaSpec>().is_err());
        assert_eq!(
            "tikv://h:1".parse::<MetaSpec>().expect("tikv").to_string(),
            "tikv://h:1"
        );
    }
}
