//! A small guest library for writing Tidepool (Manta-compatible) job phases
//! in Rust for `wasm32-wasip1`: read input records from stdin, emit output
//! to stdout, and read the task environment (`MANTA_*`, spec §4.8).
//!
//! Needs only `std`, so it builds for the host as well (for tests and the
//! workspace build). A phase is an ordinary `main`:
//!
//! ```no_run
//! use std::io::Write;
//! let task = sdk::Task::from_env();
//! let mut out = sdk::Output::stdout();
//! for line in sdk::lines() {
//!     let line = line?;
//!     writeln!(out, "{}", line.to_uppercase())?;
//! }
//! out.flush()?;
//! # let _ = task;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, BufRead, BufWriter, Read, Write};

/// What kind of task is running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskKind {
    /// A map task over one object.
    Map {
        /// `MANTA_INPUT_OBJECT`: the object's name.
        object: String,
        /// `MANTA_INPUT_FILE`: where it is readable in the sandbox.
        file: String,
    },
    /// A reducer.
    Reduce {
        /// `MANTA_REDUCER`: the reducer index.
        index: u32,
    },
    /// Not inside a job (no `MANTA_*` input variables).
    Unknown,
}

/// The task environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// `MANTA_USER`.
    pub user: String,
    /// `MANTA_JOB_ID`.
    pub job_id: String,
    /// `MANTA_OUTPUT_BASE`.
    pub output_base: String,
    /// Map or reduce.
    pub kind: TaskKind,
}

impl Task {
    /// Read the environment of this process.
    pub fn from_env() -> Self {
        Self::from_vars(std::env::vars())
    }

    /// Build from explicit variables (tests, or a custom environment).
    pub fn from_vars<I: IntoIterator<Item = (String, String)>>(vars: I) -> Self {
        let mut user = String::new();
        let mut job_id = String::new();
        let mut output_base = String::new();
        let (mut object, mut file, mut reducer) = (None, None, None);
        for (k, v) in vars {
            match k.as_str() {
                "MANTA_USER" => user = v,
                "MANTA_JOB_ID" => job_id = v,
                "MANTA_OUTPUT_BASE" => output_base = v,
                "MANTA_INPUT_OBJECT" => object = Some(v),
                "MANTA_INPUT_FILE" => file = Some(v),
                "MANTA_REDUCER" => reducer = v.parse().ok(),
                _ => {}
            }
        }
        let kind = match (object, file, reducer) {
            (Some(object), file, _) => TaskKind::Map {
                file: file.unwrap_or_else(|| format!("/manta{object}")),
                object,
            },
            (None, _, Some(index)) => TaskKind::Reduce { index },
            _ => TaskKind::Unknown,
        };
        Task {
            user,
            job_id,
            output_base,
            kind,
        }
    }
}

/// Input records (lines without their `\n` / `\r\n`) from stdin. Invalid
/// UTF-8 is replaced, never a panic.
pub fn lines() -> impl Iterator<Item = io::Result<String>> {
    records(io::stdin().lock(), b'\n')
}

/// Records separated by `delim` from any reader.
pub fn records<R: BufRead>(mut r: R, delim: u8) -> impl Iterator<Item = io::Result<String>> {
    std::iter::from_fn(move || {
        let mut buf = Vec::new();
        match r.read_until(delim, &mut buf) {
            Ok(0) => None,
            Ok(_) => {
                if buf.last() == Some(&delim) {
                    buf.pop();
                }
                if delim == b'\n' && buf.last() == Some(&b'\r') {
                    buf.pop();
                }
                Some(Ok(String::from_utf8_lossy(&buf).into_owned()))
            }
            Err(e) => Some(Err(e)),
        }
    })
}

/// All of stdin (a reducer's concatenated inputs, or the map object).
pub fn read_all() -> io::Result<Vec<u8>> {
    let mut v = Vec::new();
    io::stdin().lock().read_to_end(&mut v)?;
    Ok(v)
}

/// Buffered output to stdout: the task's captured output object.
pub struct Output<W: Write> {
    w: BufWriter<W>,
}

impl<W: Write> std::fmt::Debug for Output<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output").finish_non_exhaustive()
    }
}

impl Output<io::Stdout> {
    /// Stdout, buffered.
    pub fn stdout() -> Self {
        Output::new(io::stdout())
    }
}

impl<W: Write> Output<W> {
    /// Any writer, buffered.
    pub fn new(w: W) -> Self {
        Output {
            w: BufWriter::new(w),
        }
    }

    /// Emit one record followed by `\n`.
    pub fn emit(&mut self, record: &str) -> io::Result<()> {
        self.w.write_all(record.as_bytes())?;
        self.w.write_all(b"\n")
    }

    /// Emit `key<TAB>value` (the shape `sort`/`msplit`/`maggr` expect).
    pub fn emit_kv(&mut self, key: &str, value: impl std::fmt::Display) -> io::Result<()> {
        writeln!(self.w, "{key}\t{value}")
    }

    /// The inner writer, after flushing.
    pub fn into_inner(self) -> io::Result<W> {
        self.w.into_inner().map_err(|e| e.into_error())
    }
}

impl<W: Write> Write for Output<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.w.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment() {
        let v = |k: &str, x: &str| (k.to_string(), x.to_string());
        let t = Task::from_vars([
            v("MANTA_USER", "u"),
            v("MANTA_JOB_ID", "j"),
            v("MANTA_INPUT_OBJECT", "/u/stor/a"),
            v("MANTA_OUTPUT_BASE", "/u/jobs/j/stor/u/stor/a.0."),
        ]);
        assert_eq!(t.user, "u");
        assert_eq!(
            t.kind,
            TaskKind::Map {
                object: "/u/stor/a".into(),
                file: "/manta/u/stor/a".into()
            }
        );
        let r = Task::from_vars([v("MANTA_REDUCER", "3")]);
        assert_eq!(r.kind, TaskKind::Reduce { index: 3 });
        assert_eq!(
            Task::from_vars([v("MANTA_REDUCER", "x")]).kind,
            TaskKind::Unknown
        );
    }

    #[test]
    fn record_splitting() {
        let got: Vec<String> = records(&b"a\r\nb\n\xffc"[..], b'\n')
            .map(|r| r.expect("read"))
            .collect();
        assert_eq!(got, vec!["a", "b", "\u{fffd}c"]);
        let mut o = Output::new(Vec::new());
        o.emit("x").expect("emit");
        o.emit_kv("k", 2).expect("emit");
        assert_eq!(o.into_inner().expect("flush"), b"x\nk\t2\n");
    }
}
