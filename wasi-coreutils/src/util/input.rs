//! Reading the tools' inputs: operands are paths relative to the current
//! directory and `-` is standard input. Reading goes through large buffers
//! and hands out borrowed lines, so per-line work allocates nothing.
//!
//! Guarantees: a final line without terminator is still returned (callers see
//! whether it had one); lines longer than the buffer grow it; error messages
//! follow GNU's `tool: name: reason` form.

use std::fs::File;
use std::io::{self, Read};

/// Size of read buffers: big enough that system calls (WASI host calls) are rare.
pub const BUF_SIZE: usize = 256 * 1024;

/// The size read buffers start at. Zeroing a whole [`BUF_SIZE`] buffer up
/// front touched 64 fresh pages of linear memory in every run: most of
/// `wc -l`'s time over a one-line input, which is what a map task over a
/// small object runs.
pub const FIRST_BUF: usize = 16 * 1024;

/// A zeroed read buffer of [`FIRST_BUF`] bytes, for [`grow_when_filled`].
pub fn read_buf() -> Vec<u8> {
    vec![0; FIRST_BUF]
}

/// Doubles `buf`, up to [`BUF_SIZE`], when a read of `asked` bytes into it
/// returned all `got` of them: a large input reaches full-size reads after
/// a few, a small one never pays for them. A read of nothing filled
/// nothing (grep's loop passes 0 and 0 before its first read).
pub fn grow_when_filled(buf: &mut Vec<u8>, asked: usize, got: usize) {
    if got > 0 && got == asked && buf.len() < BUF_SIZE {
        let n = (buf.len() * 2).clamp(FIRST_BUF, BUF_SIZE);
        buf.resize(n, 0);
    }
}

/// Opens an operand: `-` is standard input.
pub fn open(name: &[u8]) -> io::Result<Box<dyn Read>> {
    if name == b"-" {
        Ok(Box::new(io::stdin()))
    } else {
        let path = path_of(name);
        let f = File::open(&path)?;
        if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
            return Err(io::Error::other("Is a directory"));
        }
        Ok(Box::new(f))
    }
}

/// The operand as a filesystem path.
pub fn path_of(name: &[u8]) -> std::path::PathBuf {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        std::path::PathBuf::from(std::ffi::OsStr::from_bytes(name))
    }
    #[cfg(target_os = "wasi")]
    {
        use std::os::wasi::ffi::OsStrExt;
        std::path::PathBuf::from(std::ffi::OsStr::from_bytes(name))
    }
}

/// An I/O error as GNU prints it (`No such file or directory`, without Rust's `(os error 2)`).
pub fn errmsg(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(p) => s[..p].to_string(),
        None => s,
    }
}

/// Reports `tool: name: error` on stderr.
pub fn report(tool: &str, name: &[u8], e: &io::Error) {
    eprintln!("{tool}: {}: {}", String::from_utf8_lossy(name), errmsg(e));
}

/// How a write failure ends a tool: a vanished reader is a quiet stop,
/// anything else is reported and fails with status 1.
pub fn write_failed(tool: &str, e: &io::Error) -> i32 {
    if crate::common::is_broken_pipe(e) {
        0
    } else {
        eprintln!("{tool}: write error: {}", errmsg(e));
        1
    }
}

/// Reads all of `r` into `buf` (retrying on interruption).
pub fn read_all(r: &mut dyn Read, buf: &mut Vec<u8>) -> io::Result<()> {
    r.read_to_end(buf).map(|_| ())
}

/// Fills `buf[at..]` as far as possible; returns the number of bytes read (0 = EOF).
pub fn fill(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            res => return res,
        }
    }
}

/// A line reader over a large buffer that lends each line (terminator included when present).
pub struct Lines<R> {
    r: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    delim: u8,
}

impl<R: Read> Lines<R> {
    pub fn new(r: R, delim: u8) -> Self {
        Lines {
            r,
            buf: read_buf(),
            start: 0,
            end: 0,
            eof: false,
            delim,
        }
    }

    /// The next line, with its terminator if it had one; `None` at end of input.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> io::Result<Option<&[u8]>> {
        let mut scan_from = self.start;
        loop {
            if let Some(p) = memchr::memchr(self.delim, &self.buf[scan_from..self.end]) {
                let s = self.start;
                let e = scan_from + p + 1;
                self.start = e;
                return Ok(Some(&self.buf[s..e]));
            }
            if self.eof {
                if self.start == self.end {
                    return Ok(None);
                }
                let s = self.start;
                self.start = self.end;
                return Ok(Some(&self.buf[s..self.end]));
            }
            // Move the partial line to the front (or grow), then read more.
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buf.len() {
                let n = self.buf.len();
                self.buf.resize(n * 2, 0);
            }
            scan_from = self.end;
            let asked = self.buf.len() - self.end;
            let n = fill(&mut self.r, &mut self.buf[self.end..])?;
            if n == 0 {
                self.eof = true;
            }
            self.end += n;
            grow_when_filled(&mut self.buf, asked, n);
        }
    }
}

/// The line without its terminator.
pub fn chomp(line: &[u8], delim: u8) -> &[u8] {
    match line.last() {
        Some(&b) if b == delim => &line[..line.len() - 1],
        _ => line,
    }
}

/// Displayed name of an operand (`-` is `standard input`), as GNU headers show it.
pub fn display_name(name: &[u8]) -> String {
    if name == b"-" {
        "standard input".to_string()
    } else {
        String::from_utf8_lossy(name).into_owned()
    }
}

/// The operands, or `-` when there are none.
pub fn operands_or_stdin(ops: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    if ops.is_empty() {
        vec![b"-".to_vec()]
    } else {
        ops
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_handle_missing_terminator_and_growth() {
        let mut data = vec![b'x'; BUF_SIZE * 3];
        data.extend_from_slice(b"\na\n\nb");
        let mut l = Lines::new(&data[..], b'\n');
        assert_eq!(l.next().unwrap().unwrap().len(), BUF_SIZE * 3 + 1);
        assert_eq!(l.next().unwrap().unwrap(), b"a\n");
        assert_eq!(l.next().unwrap().unwrap(), b"\n");
        assert_eq!(l.next().unwrap().unwrap(), b"b");
        assert!(l.next().unwrap().is_none());
    }

    #[test]
    fn read_buffers_grow_only_when_filled_and_stop_at_full_size() {
        let mut buf = read_buf();
        assert_eq!(buf.len(), FIRST_BUF);
        grow_when_filled(&mut buf, FIRST_BUF, 10);
        assert_eq!(buf.len(), FIRST_BUF, "a short read keeps the buffer");
        grow_when_filled(&mut buf, 0, 0);
        assert_eq!(buf.len(), FIRST_BUF, "no read, no growth");
        let mut sizes = Vec::new();
        while buf.len() < BUF_SIZE {
            let n = buf.len();
            grow_when_filled(&mut buf, n, n);
            sizes.push(buf.len());
        }
        assert_eq!(sizes.len(), 4, "16 KiB doubles to 256 KiB in four reads");
        grow_when_filled(&mut buf, BUF_SIZE, BUF_SIZE);
        assert_eq!(buf.len(), BUF_SIZE, "never past full size");
    }

    /// Many lines through a reader that hands out a few bytes per read:
    /// growing in the middle of a line keeps every byte.
    #[test]
    fn lines_survive_growth_between_reads() {
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                let n = out.len().min(self.0.len()).min(self.1);
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                self.1 = self.1 * 3 + 1;
                Ok(n)
            }
        }
        let text: Vec<u8> = (0..20_000u32)
            .flat_map(|i| format!("line {i} {}\n", "y".repeat((i % 97) as usize)).into_bytes())
            .collect();
        let mut l = Lines::new(Trickle(&text, 1), b'\n');
        let mut back = Vec::new();
        while let Some(line) = l.next().unwrap() {
            back.extend_from_slice(line);
        }
        assert_eq!(back, text);
    }

    #[test]
    fn chomp_only_strips_delim() {
        assert_eq!(chomp(b"a\n", b'\n'), b"a");
        assert_eq!(chomp(b"a", b'\n'), b"a");
        assert_eq!(chomp(b"a\0", 0), b"a");
    }
}
