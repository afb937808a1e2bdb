//! Harness for end-to-end tests: starts real `tidepool` processes on
//! loopback and drives them with real clients.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// Path of the `tidepool` binary, built once per test process with the
/// same cargo and profile as the tests themselves.
pub fn tidepool_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("TIDEPOOL_BIN") {
            return PathBuf::from(p);
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "tidepool", "--bin", "tidepool", "--message-format=json"]);
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        let out = cmd.output().expect("run cargo build -p tidepool");
        assert!(
            out.status.success(),
            "cargo build -p tidepool failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("\"executable\":\"") && l.contains("compiler-artifact"))
            .filter_map(|l| {
                let start = l.find("\"executable\":\"")? + 14;
                let end = l[start..].find('"')? + start;
                Some(PathBuf::from(&l[start..end]))
            })
            .next_back()
            .expect("cargo reported no tidepool executable")
    })
    .clone()
}
