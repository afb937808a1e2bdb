//! What a person sees when the `tidepool` binary stops on an error: one
//! `error:` line (plus a `hint:` line where the next step is clear), and
//! never a stack trace, even with `RUST_BACKTRACE=1` (which makes anyhow
//! capture one).

use std::process::{Command, Stdio};
use std::time::Duration;

use tidepool_tests::{run_with_deadline, tidepool_bin};

/// Runs `tidepool ARGS` under `RUST_BACKTRACE=1`; returns its stderr
/// after checking it failed and printed one error line and at most one hint.
fn fails_in_one_line(args: &[&str], home: &std::path::Path) -> String {
    let out = run_with_deadline(
        Command::new(tidepool_bin())
            .args(args)
            .env("RUST_BACKTRACE", "1")
            .env("HOME", home)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null()),
        None,
        Duration::from_secs(300),
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "tidepool {args:?} failed: {err}");
    // Progress notices (`tidepool: compiling ...`) may come first.
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("tidepool: "))
        .collect();
    assert!(
        !err.contains("backtrace") && !err.contains("panicked") && !err.contains(".rs:"),
        "no stack trace: {err}"
    );
    assert!(
        lines.first().is_some_and(|l| l.starts_with("error: ")),
        "{err}"
    );
    assert!(
        lines.len() == 1 || (lines.len() == 2 && lines[1].starts_with("hint: ")),
        "one error line and at most a hint: {err}"
    );
    err
}

#[test]
fn a_bad_phase_is_one_line_with_a_hint() {
    let home = tempfile::tempdir().unwrap();
    let err = fails_in_one_line(&["exec", "echo \"unterminated"], home.path());
    assert!(err.contains("syntax error"), "{err}");
    assert!(err.contains("hint: "), "{err}");
}

#[test]
fn a_taken_address_is_one_line_with_a_hint() {
    let home = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let data = home.path().join("data");
    let err = fails_in_one_line(
        &[
            "up",
            "--nodes",
            "1",
            "--account",
            "alice",
            "--data",
            data.to_str().unwrap(),
            "--listen",
            &addr,
        ],
        home.path(),
    );
    assert!(err.contains(&addr), "names the address: {err}");
    assert!(err.contains("hint: another process listens"), "{err}");
}
