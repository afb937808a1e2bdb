//! A `POST /:login/jobs` body: any bytes get a manifest or a
//! `ManifestError` (phase scripts parsed too), never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "contained_panics.rs"]
mod contained_panics;

fuzz_target!(|data: &[u8]| {
    contained_panics::install();
    if let Ok(m) = jobs::manifest::parse_manifest(data) {
        assert!(!m.phases.is_empty());
        // The stored phases are JSON the status record echoes.
        let _: serde_json::Value = serde_json::from_str(&m.phases_json).expect("stored phases");
    }
});
