//! Generates the gRPC server side of TiKV's `tikvpb.Tikv` and PD's `pdpb.PD`
//! services from the `.proto` files tikv-client 0.4.0 ships (vendored
//! unchanged under `proto/`).
//!
//! The services are trimmed to the methods tikv-client's transactional API
//! actually calls (see [`KEEP`]); tonic answers every other path with
//! `Unimplemented`. Parsing uses `protox` (pure Rust), so no `protoc` binary
//! is needed to build.

use std::collections::HashSet;
use std::path::PathBuf;

/// `(service, methods)` kept in the generated servers.
const KEEP: &[(&str, &[&str])] = &[
    (
        "tikvpb.Tikv",
        &[
            "KvGet",
            "KvScan",
            "KvBatchGet",
            "KvPrewrite",
            "KvCommit",
            "KvBatchRollback",
            "KvCheckTxnStatus",
            "KvResolveLock",
            "KvScanLock",
            "KvTxnHeartBeat",
        ],
    ),
    (
        "pdpb.PD",
        &[
            "GetMembers",
            "Tso",
            "GetRegion",
            "GetRegionByID",
            "GetStore",
            "GetAllStores",
            "UpdateGCSafePoint",
        ],
    ),
];

/// Packages that only define options (or are provided by prost-types).
const SKIP_PACKAGES: &[&str] = &["google.protobuf", "gogoproto", "rustproto", "google.api"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("proto");
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=build.rs");
    let mut fds = protox::compile(
        [root.join("tikvpb.proto"), root.join("pdpb.proto")],
        [root.clone(), root.join("include")],
    )?;

    fds.file
        .retain(|f| !SKIP_PACKAGES.contains(&f.package.as_deref().unwrap_or_default()));
    for file in &mut fds.file {
        let package = file.package.clone().unwrap_or_default();
        file.service.retain_mut(|svc| {
            let full = format!("{package}.{}", svc.name.as_deref().unwrap_or_default());
            let Some((_, methods)) = KEEP.iter().find(|(name, _)| *name == full) else {
                return false;
            };
            let keep: HashSet<&str> = methods.iter().copied().collect();
            svc.method
                .retain(|m| keep.contains(m.name.as_deref().unwrap_or_default()));
            true
        });
        // Source locations refer to the unfiltered file; drop them so
        // prost-build does not attach comments to the wrong items.
        file.source_code_info = None;
    }

    let mut config = prost_build::Config::new();
    config.service_generator(
        tonic_build::configure()
            .build_client(false)
            .build_server(true)
            .service_generator(),
    );
    config.include_file("protos.rs");
    config.compile_fds(fds)?;
    Ok(())
}
