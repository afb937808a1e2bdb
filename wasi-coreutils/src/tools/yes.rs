//! `yes`: repeats its arguments (or `y`) on stdout until the reader goes away.

use std::ffi::OsString;
use std::io::Write;

use crate::util::{self, Fail};

pub fn main(args: Vec<OsString>) -> i32 {
    util::run(&args, |_, rest| {
        let ops: Vec<&Vec<u8>> = match rest.first().map(Vec::as_slice) {
            Some(b"--") => rest[1..].iter().collect(),
            Some(a) if a.len() > 1 && a[0] == b'-' => {
                return util::unsupported(format!(
                    "unsupported option '{}'",
                    String::from_utf8_lossy(a)
                ));
            }
            _ => rest.iter().collect(),
        };
        let mut line = if ops.is_empty() {
            b"y".to_vec()
        } else {
            ops.iter()
                .map(|v| v.as_slice())
                .collect::<Vec<_>>()
                .join(&b' ')
        };
        line.push(b'\n');
        // Fill one large block so each write moves many lines.
        let mut block = Vec::with_capacity(64 * 1024 + line.len());
        while block.len() < 64 * 1024 {
            block.extend_from_slice(&line);
        }
        let mut out = std::io::stdout().lock();
        loop {
            if let Err(e) = out.write_all(&block) {
                return Err(Fail::Write(e));
            }
        }
    })
}
