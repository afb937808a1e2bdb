//! Shared helpers: a per-process sandbox, WAT test guests, and a runner.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sandbox::{Input, Limits, Output, PhaseSpec, RunReport, Sandbox, SandboxConfig};

/// One sandbox per test binary, as in production (one engine per process).
pub fn sandbox() -> &'static Sandbox {
    static S: OnceLock<Sandbox> = OnceLock::new();
    S.get_or_init(|| Sandbox::new(SandboxConfig::default()).expect("sandbox"))
}

const IMPORTS: &str = r#"
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
"#;

/// Copies stdin to stdout (a minimal `cat`).
pub fn wat_cat() -> String {
    format!(
        r#"(module {IMPORTS}
  (memory (export "memory") 2)
  (func (export "_start")
    (local $n i32)
    (loop $l
      (i32.store (i32.const 0) (i32.const 1024))
      (i32.store (i32.const 4) (i32.const 65536))
      (if (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 16)) (then (call $proc_exit (i32.const 1))))
      (local.set $n (i32.load (i32.const 16)))
      (if (i32.eqz (local.get $n)) (then (return)))
      (i32.store (i32.const 4) (local.get $n))
      (loop $w
        (if (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 20)) (then (call $proc_exit (i32.const 2))))
        (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.load (i32.const 20))))
        (i32.store (i32.const 4) (i32.sub (i32.load (i32.const 4)) (i32.load (i32.const 20))))
        (br_if $w (i32.gt_u (i32.load (i32.const 4)) (i32.const 0))))
      (br $l))))"#
    )
}

/// Writes 64 KiB blocks of `byte` to stdout forever (until EPIPE).
pub fn wat_flood(byte: char) -> String {
    let block: String = std::iter::repeat_n(byte, 65536).collect();
    format!(
        r#"(module {IMPORTS}
  (memory (export "memory") 2)
  (data (i32.const 1024) "{block}")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 65536))
    (loop $l
      (if (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)) (then (return)))
      (br $l))))"#
    )
}

/// Exits with `code`.
pub fn wat_exit(code: i32) -> String {
    format!(
        r#"(module {IMPORTS} (memory (export "memory") 1) (func (export "_start") (call $proc_exit (i32.const {code}))))"#
    )
}

/// Spins forever without any host call.
pub const WAT_LOOP: &str =
    r#"(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))"#;

/// Grows memory 1 MiB at a time forever.
pub const WAT_GROW: &str = r#"(module (memory (export "memory") 1)
  (func (export "_start") (loop $l (drop (memory.grow (i32.const 16))) (br $l))))"#;

/// Infinite recursion.
pub const WAT_RECURSE: &str = r#"(module (memory (export "memory") 1)
  (func $f (param i64) (result i64) (i64.add (call $f (i64.add (local.get 0) (i64.const 1))) (i64.const 1)))
  (func (export "_start") (drop (call $f (i64.const 0)))))"#;

/// Opens `path` relative to preopen fd `dirfd` and copies up to 4 KiB of it
/// to stdout; exits with the WASI errno if the open fails.
pub fn wat_read_path(dirfd: u32, path: &str) -> String {
    let len = path.len();
    format!(
        r#"(module {IMPORTS}
  (memory (export "memory") 1)
  (data (i32.const 256) "{path}")
  (func (export "_start")
    (local $e i32)
    (local.set $e (call $path_open (i32.const {dirfd}) (i32.const 1) (i32.const 256) (i32.const {len})
      (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 16)))
    (if (local.get $e) (then (call $proc_exit (local.get $e))))
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 4096))
    (drop (call $fd_read (i32.load (i32.const 16)) (i32.const 0) (i32.const 1) (i32.const 20)))
    (i32.store (i32.const 4) (i32.load (i32.const 20)))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 24)))))"#
    )
}

/// A guest that creates (or truncates) `path` relative to preopened
/// directory `dirfd` and writes `x` to it; exits with the WASI errno of
/// the first call that fails, 0 if both succeed.
pub fn wat_write_path(dirfd: u32, path: &str) -> String {
    let len = path.len();
    format!(
        r#"(module {IMPORTS}
  (memory (export "memory") 1)
  (data (i32.const 256) "{path}")
  (data (i32.const 512) "x")
  (func (export "_start")
    (local $e i32)
    (local.set $e (call $path_open (i32.const {dirfd}) (i32.const 1) (i32.const 256) (i32.const {len})
      (i32.const 9) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 16)))
    (if (local.get $e) (then (call $proc_exit (local.get $e))))
    (i32.store (i32.const 0) (i32.const 512))
    (i32.store (i32.const 4) (i32.const 1))
    (local.set $e (call $fd_write (i32.load (i32.const 16)) (i32.const 0) (i32.const 1) (i32.const 24)))
    (if (local.get $e) (then (call $proc_exit (local.get $e))))))"#
    )
}

/// A test fixture: a temp dir holding scratch and assets.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub assets: HashMap<String, PathBuf>,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("scratch")).expect("scratch");
        Fixture {
            dir,
            assets: HashMap::new(),
        }
    }

    pub fn scratch(&self) -> PathBuf {
        self.dir.path().join("scratch")
    }

    /// Adds a guest (wasmtime accepts WAT text as module bytes).
    pub fn asset(&mut self, name: &str, wat: &str) -> &mut Self {
        let p = self.dir.path().join(format!("{name}.wasm"));
        std::fs::write(&p, wat).expect("write asset");
        self.assets.insert(name.to_owned(), p);
        self
    }

    pub fn spec(&self, exec: &str) -> PhaseSpec {
        let mut s = PhaseSpec::new(exec, self.scratch());
        s.assets = self.assets.clone();
        s.stdout = Output::Capture;
        s
    }

    pub async fn run(&self, exec: &str, stdin: &[u8]) -> RunReport {
        let mut s = self.spec(exec);
        s.stdin = Input::Bytes(stdin.to_vec());
        sandbox()
            .run_phase(s)
            .await
            .unwrap_or_else(|e| panic!("{exec}: {e}"))
    }

    pub async fn run_limited(&self, exec: &str, limits: Limits) -> RunReport {
        let mut s = self.spec(exec);
        s.limits = limits;
        sandbox()
            .run_phase(s)
            .await
            .unwrap_or_else(|e| panic!("{exec}: {e}"))
    }
}

pub fn stdout(r: &RunReport) -> String {
    String::from_utf8_lossy(r.stdout.as_deref().unwrap_or_default()).into_owned()
}

pub fn limits(spec: &str) -> Limits {
    spec.parse().expect("limits")
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}
