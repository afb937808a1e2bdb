//! Runs one phase the way `tidepool exec` does, with only this crate:
//! `phase exec [--input FILE] [--scratch DIR] [--limit K=V]... [--asset NAME=PATH]... PIPELINE`.
//!
//! For measuring and debugging the sandbox without building the rest of
//! Tidepool (the bench accepts it as `TIDEPOOL_BIN`). Same layout as
//! `tidepool exec`: the input file on stdin and at
//! `/manta/input/<name>` (`$MANTA_INPUT_FILE`), stdout to our stdout,
//! stderr after the run, exit status the phase's.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use sandbox::{Input, InputDir, Limits, Output, PhaseSpec, Sandbox, SandboxConfig};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("exec") {
        args.next();
    }
    let (mut input, mut scratch, mut limits, mut assets, mut pipeline) =
        (None, None, Limits::default(), HashMap::new(), None);
    while let Some(a) = args.next() {
        let mut val = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--input" => input = Some(PathBuf::from(val()?)),
            "--scratch" => scratch = Some(PathBuf::from(val()?)),
            "--limit" => limits.set(&val()?)?,
            "--asset" => {
                let v = val()?;
                let (n, p) = v.split_once('=').context("--asset NAME=PATH")?;
                assets.insert(n.to_owned(), PathBuf::from(p));
            }
            _ if pipeline.is_none() => pipeline = Some(a),
            _ => bail!("unexpected argument {a:?}"),
        }
    }
    let pipeline = pipeline.context("usage: phase exec [options] PIPELINE")?;
    let temp = std::env::temp_dir().join(format!("sandbox-phase-{}", std::process::id()));
    let scratch_dir = scratch.clone().unwrap_or_else(|| temp.clone());
    let mut env = vec![
        ("HOME".to_owned(), "/".to_owned()),
        ("PATH".to_owned(), "/bin".to_owned()),
    ];
    let mut spec = PhaseSpec::new(pipeline, scratch_dir);
    if let Some(input) = input {
        let input = input.canonicalize()?;
        let name = input
            .file_name()
            .and_then(|n| n.to_str())
            .context("input name")?;
        let guest = format!("{}/{name}", sandbox::DEFAULT_INPUT_GUEST_DIR);
        env.push(("MANTA_INPUT_FILE".into(), guest.clone()));
        env.push(("MANTA_INPUT_OBJECT".into(), guest));
        spec.input_dir = Some(InputDir {
            host: input.parent().context("input dir")?.to_path_buf(),
            guest: sandbox::DEFAULT_INPUT_GUEST_DIR.to_owned(),
        });
        spec.stdin = Input::File(input);
    }
    spec.env = env;
    spec.assets = assets;
    spec.limits = limits;
    spec.stdout = Output::Writer(Box::new(tokio::io::stdout()));
    let rt = tokio::runtime::Runtime::new()?;
    let report = rt.block_on(async {
        let sandbox = Sandbox::new(SandboxConfig::with_default_cache_dir())?;
        sandbox.run_phase(spec).await
    })?;
    if scratch.is_none() {
        let _ = std::fs::remove_dir_all(&temp);
    }
    let mut err = std::io::stderr().lock();
    err.write_all(&report.stderr)?;
    if let Some(l) = &report.limit_exceeded {
        writeln!(err, "phase: {l}")?;
    }
    std::process::exit(report.exit_status);
}
