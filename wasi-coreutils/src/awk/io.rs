//! Record input for awk: splits a byte stream into records by a single
//! byte (`RS="\n"`, `RS=";"`), by blank lines (`RS=""`), or by a regex
//! (multi-character `RS`, as gawk), reusing one growing buffer.

use std::io::{self, Read};
use std::rc::Rc;

use crate::sed::posix_re::PosixRegex;

/// How records are separated.
#[derive(Debug, Clone)]
pub enum RecordSep {
    Byte(u8),
    Paragraph,
    Regex(Rc<PosixRegex>),
}

/// A buffered reader handing out records.
pub struct RecordReader {
    src: Box<dyn Read>,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    eof: bool,
}

impl std::fmt::Debug for RecordReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordReader")
            .field("pos", &self.pos)
            .field("len", &self.len)
            .finish()
    }
}

impl RecordReader {
    pub fn new(src: Box<dyn Read>) -> Self {
        RecordReader {
            src,
            buf: vec![0; crate::util::input::FIRST_BUF],
            pos: 0,
            len: 0,
            eof: false,
        }
    }

    /// Moves unread bytes to the front and reads more; grows when full.
    fn fill(&mut self) -> io::Result<()> {
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.len, 0);
            self.len -= self.pos;
            self.pos = 0;
        }
        if self.len == self.buf.len() {
            let n = self.buf.len() * 2;
            self.buf.resize(n, 0);
        }
        let asked = self.buf.len() - self.len;
        loop {
            match self.src.read(&mut self.buf[self.len..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.len += n;
                    crate::util::input::grow_when_filled(&mut self.buf, asked, n);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads the next record into `out` (cleared first); false at end of input.
    pub fn read_record(&mut self, sep: &RecordSep, out: &mut Vec<u8>) -> io::Result<bool> {
        out.clear();
        match sep {
            RecordSep::Byte(b) => self.read_byte_sep(*b, out),
            RecordSep::Paragraph => self.read_paragraph(out),
            RecordSep::Regex(re) => self.read_regex(re, out),
        }
    }

    fn read_byte_sep(&mut self, sep: u8, out: &mut Vec<u8>) -> io::Result<bool> {
        let mut scanned = 0;
        loop {
            let from = self.pos + scanned;
            if let Some(k) = memchr::memchr(sep, &self.buf[from..self.len]) {
                let end = from + k;
                out.extend_from_slice(&self.buf[self.pos..end]);
                self.pos = end + 1;
                return Ok(true);
            }
            if self.eof {
                if self.pos < self.len {
                    out.extend_from_slice(&self.buf[self.pos..self.len]);
                    self.pos = self.len;
                    return Ok(true);
                }
                return Ok(false);
            }
            scanned = self.len - self.pos;
            self.fill()?;
        }
    }

    fn read_paragraph(&mut self, out: &mut Vec<u8>) -> io::Result<bool> {
        // Skip leading newlines.
        loop {
            while self.pos < self.len && self.buf[self.pos] == b'\n' {
                self.pos += 1;
            }
            if self.pos < self.len {
                break;
            }
            if self.eof {
                return Ok(false);
            }
            self.fill()?;
        }
        let mut scanned = 0;
        loop {
            let from = self.pos + scanned;
            if let Some(k) = memchr::memmem::find(&self.buf[from..self.len], b"\n\n") {
                let end = from + k;
                out.extend_from_slice(&self.buf[self.pos..end]);
                self.pos = end + 2;
                return Ok(true);
            }
            if self.eof {
                let mut end = self.len;
                while end > self.pos && self.buf[end - 1] == b'\n' {
                    end -= 1;
                }
                out.extend_from_slice(&self.buf[self.pos..end]);
                self.pos = self.len;
                return Ok(true);
            }
            scanned = (self.len - self.pos).saturating_sub(1);
            self.fill()?;
        }
    }

    fn read_regex(&mut self, re: &PosixRegex, out: &mut Vec<u8>) -> io::Result<bool> {
        loop {
            if let Some((s, e)) = re.find_at(&self.buf[..self.len], self.pos) {
                // A match touching the end of the buffer might grow with more input.
                if e > s && (e < self.len || self.eof) {
                    out.extend_from_slice(&self.buf[self.pos..s]);
                    self.pos = e;
                    return Ok(true);
                }
            }
            if self.eof {
                if self.pos < self.len {
                    out.extend_from_slice(&self.buf[self.pos..self.len]);
                    self.pos = self.len;
                    return Ok(true);
                }
                return Ok(false);
            }
            self.fill()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(input: &[u8], sep: RecordSep) -> Vec<String> {
        let mut r = RecordReader::new(Box::new(std::io::Cursor::new(input.to_vec())));
        let mut out = Vec::new();
        let mut v = Vec::new();
        while r.read_record(&sep, &mut out).unwrap() {
            v.push(String::from_utf8_lossy(&out).into_owned());
        }
        v
    }

    #[test]
    fn newline_records() {
        assert_eq!(
            records(b"a\nb\n\nc", RecordSep::Byte(b'\n')),
            ["a", "b", "", "c"]
        );
        assert_eq!(records(b"a\n", RecordSep::Byte(b'\n')), ["a"]);
        assert!(records(b"", RecordSep::Byte(b'\n')).is_empty());
    }

    #[test]
    fn paragraphs() {
        assert_eq!(
            records(b"\n\na\nb\n\n\nc\n", RecordSep::Paragraph),
            ["a\nb", "c"]
        );
    }

    #[test]
    fn long_lines_grow_buffer() {
        let line = vec![b'x'; crate::util::input::BUF_SIZE * 3];
        let mut input = line.clone();
        input.extend_from_slice(b"\ny\n");
        let r = records(&input, RecordSep::Byte(b'\n'));
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].len(), crate::util::input::BUF_SIZE * 3);
    }
}
