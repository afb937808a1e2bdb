//! Builds `wasi-coreutils` for `wasm32-wasip1` and tells the crate where the
//! `.wasm` is (`TIDEPOOL_COREUTILS_WASM`), so the toolbox is always built
//! from the workspace sources and never checked in.
//!
//! The nested `cargo build` uses its own target directory next to the outer
//! one (`<target>/wasm-guests`): sharing the outer directory would deadlock on
//! its build lock, and a directory inside `OUT_DIR` would be thrown away
//! whenever this script's hash changes. Cargo's own freshness checks make a
//! nested build with unchanged sources a no-op, and the `rerun-if-changed`
//! lines below keep this script from running at all in that case.
//!
//! Set `TIDEPOOL_COREUTILS_WASM=/path/to/file.wasm` to use a prebuilt module
//! instead (e.g. a CI artifact).
//!
//! A first build must not stop for a missing `wasm32-wasip1` standard
//! library: rustup installs the targets of `rust-toolchain.toml` only when
//! it installs the toolchain itself, and not at all with
//! `RUSTUP_AUTO_INSTALL=0`. So when the target's library directory is
//! missing, this script runs `rustup target add wasm32-wasip1` (saying so in
//! a cargo warning) and, if that cannot work, fails with one line saying
//! what to do.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip1";
/// `CARGO_ENCODED_RUSTFLAGS` of the guest build (0x1f-separated).
const GUEST_RUSTFLAGS: &str = "-Ctarget-feature=+simd128";

fn main() {
    println!("cargo:rerun-if-env-changed=TIDEPOOL_COREUTILS_WASM");
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("sandbox lives inside the workspace")
        .to_path_buf();
    let coreutils = workspace.join("wasi-coreutils");
    if let Ok(prebuilt) = env::var("TIDEPOOL_COREUTILS_WASM") {
        println!("cargo:rerun-if-changed={prebuilt}");
        println!("cargo:rustc-env=TIDEPOOL_COREUTILS_WASM={prebuilt}");
        write_tool_list(&coreutils.join("src").join("registry.rs"));
        return;
    }

    for p in [
        coreutils.join("src"),
        coreutils.join("Cargo.toml"),
        workspace.join("Cargo.lock"),
        workspace.join("Cargo.toml"),
    ] {
        println!("cargo:rerun-if-changed={}", p.display());
    }

    write_tool_list(&coreutils.join("src").join("registry.rs"));
    ensure_target(&workspace);

    let target_dir = guest_target_dir();
    let wasm = target_dir
        .join(TARGET)
        .join("release")
        .join("wasi-coreutils.wasm");
    let first_build = !wasm.is_file();
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&workspace)
        .args([
            "build",
            "--release",
            "--package",
            "wasi-coreutils",
            "--bin",
            "wasi-coreutils",
            "--target",
            TARGET,
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        // The outer build's flags are for the host; never leak them into the
        // guest build. The guest's own: 128-bit SIMD (wasmtime compiles it to
        // SSE/AVX), which `memchr` and `regex` use for newline counting and
        // literal search; without it they fall back to 4-byte-word loops.
        .env("CARGO_ENCODED_RUSTFLAGS", GUEST_RUSTFLAGS)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_MAKEFLAGS")
        // Keep symbol names (for trap reports) but no DWARF: a smaller module compiles faster.
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        // One optimisation unit across crates: the tools' hot loops inline
        // memchr/regex calls. Costs build time once per source change.
        .env("CARGO_PROFILE_RELEASE_LTO", "fat")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
        .status()
        .unwrap_or_else(|e| {
            fail(&format!(
                "cannot run cargo for the {TARGET} toolbox build: {e}"
            ))
        });
    if !status.success() {
        fail(&format!(
            "building wasi-coreutils for {TARGET} failed (its errors are above); \
             `rustup target add {TARGET}` if the target is missing"
        ));
    }

    assert!(
        wasm.is_file(),
        "expected {} after the guest build",
        wasm.display()
    );
    if first_build {
        // Cargo shows only `sandbox(build)` while this runs: say afterwards
        // what the minutes went into, and that they are not spent again.
        println!(
            "cargo:warning=built the wasm toolbox (wasi-coreutils for {TARGET}, in {}); \
             later builds reuse it",
            target_dir.display()
        );
    }
    println!("cargo:rustc-env=TIDEPOOL_COREUTILS_WASM={}", wasm.display());
}

/// Stops the build with one line saying what went wrong and what to do
/// (cargo prints a build script's stderr under its own error line).
fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1)
}

/// The directory of the guest target's standard library, which exists
/// exactly when the target is installed for the compiler cargo uses.
fn target_libdir() -> Option<PathBuf> {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    Some(dir)
}

/// Installs the guest target through rustup when the compiler lacks it.
fn ensure_target(workspace: &Path) {
    if target_libdir().is_some_and(|d| d.is_dir()) {
        return;
    }
    println!(
        "cargo:warning=the {TARGET} target is missing (the wasm toolbox is built for it): \
         running `rustup target add {TARGET}`"
    );
    // In the workspace, rustup resolves the same toolchain as this build
    // (rust-toolchain.toml, or the RUSTUP_TOOLCHAIN the proxy set).
    let added = Command::new("rustup")
        .current_dir(workspace)
        .args(["target", "add", TARGET])
        .status();
    let why = match added {
        Ok(s) if s.success() && target_libdir().is_some_and(|d| d.is_dir()) => return,
        Ok(s) if s.success() => "rustup added it, but the compiler still lacks it".to_owned(),
        Ok(s) => format!("`rustup target add {TARGET}` failed ({s}; its output is above)"),
        Err(e) => format!("rustup cannot be run ({e})"),
    };
    fail(&format!(
        "the Rust target {TARGET} is not installed and {why}: install it for this \
         toolchain (`rustup target add {TARGET}`, or your distribution's wasm32-wasip1 \
         standard library), or point TIDEPOOL_COREUTILS_WASM at a prebuilt wasi-coreutils.wasm"
    ));
}

/// `<outer target dir>/wasm-guests`, derived from `OUT_DIR`
/// (`<target>/[<triple>/]<profile>/build/<pkg>-<hash>/out`).
fn guest_target_dir() -> PathBuf {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let build = out_dir
        .ancestors()
        .find(|a| a.file_name().is_some_and(|n| n == "build"));
    let target = build.and_then(Path::parent).and_then(Path::parent);
    match target {
        Some(t) => {
            // With an explicit --target the profile dir sits one level deeper.
            let t = if t.join("CACHEDIR.TAG").exists() || t.parent().is_none() {
                t
            } else {
                t.parent()
                    .filter(|p| p.join("CACHEDIR.TAG").exists())
                    .unwrap_or(t)
            };
            t.join("wasm-guests")
        }
        None => out_dir.join("wasm-guests"),
    }
}

/// Writes `$OUT_DIR/coreutils_tools.rs` with the tool names of the
/// multi-call table (`("name", tools::...)` entries of registry.rs), so the
/// shell resolves exactly the commands the toolbox dispatches.
fn write_tool_list(registry: &Path) {
    let src = std::fs::read_to_string(registry)
        .unwrap_or_else(|e| panic!("reading {}: {e}", registry.display()));
    let mut names: Vec<&str> = src
        .lines()
        .filter_map(|l| l.trim().strip_prefix("(\""))
        .filter_map(|l| l.split_once("\","))
        .filter(|(_, rest)| rest.contains("tools::"))
        .map(|(name, _)| name)
        .collect();
    names.sort_unstable();
    names.dedup();
    let body: String = names.iter().map(|n| format!("    {n:?},\n")).collect();
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("coreutils_tools.rs");
    std::fs::write(out, format!("/// Tools of the wasi-coreutils multi-call binary, sorted.\npub const TOOLS: &[&str] = &[\n{body}];\n"))
        .expect("writing coreutils_tools.rs");
}
