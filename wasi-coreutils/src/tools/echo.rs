//! `echo`: GNU echo with `-n`, `-e`, `-E` (an argument is an option only if
//! it consists solely of those letters, as in GNU).

use std::ffi::OsString;
use std::io::Write;

use crate::util::{self, Fail};

pub fn main(args: Vec<OsString>) -> i32 {
    util::run(&args, |_, rest| {
        let mut newline = true;
        let mut escapes = false;
        let mut i = 0;
        while i < rest.len() {
            let a = &rest[i];
            if a.len() < 2 || a[0] != b'-' || !a[1..].iter().all(|c| b"neE".contains(c)) {
                break;
            }
            for &c in &a[1..] {
                match c {
                    b'n' => newline = false,
                    b'e' => escapes = true,
                    _ => escapes = false,
                }
            }
            i += 1;
        }
        let mut buf = Vec::new();
        for (k, a) in rest[i..].iter().enumerate() {
            if k > 0 {
                buf.push(b' ');
            }
            if escapes {
                if unescape_echo(a, &mut buf) {
                    newline = false;
                    break;
                }
            } else {
                buf.extend_from_slice(a);
            }
        }
        if newline {
            buf.push(b'\n');
        }
        let mut out = std::io::stdout().lock();
        out.write_all(&buf)
            .and_then(|_| out.flush())
            .map_err(Fail::Write)?;
        Ok(0)
    })
}

/// Appends `s` with echo's backslash escapes applied; true if `\c` stopped output.
fn unescape_echo(s: &[u8], out: &mut Vec<u8>) -> bool {
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        i += 1;
        if c != b'\\' || i >= s.len() {
            out.push(c);
            continue;
        }
        let e = s[i];
        i += 1;
        match e {
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'c' => return true,
            b'e' => out.push(27),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'\\' => out.push(b'\\'),
            b'0' => {
                let mut v: u32 = 0;
                let mut n = 0;
                while n < 3 && i < s.len() && (b'0'..=b'7').contains(&s[i]) {
                    v = v * 8 + u32::from(s[i] - b'0');
                    i += 1;
                    n += 1;
                }
                out.push(v as u8);
            }
            b'x' if i < s.len() && s[i].is_ascii_hexdigit() => {
                let mut v: u32 = 0;
                let mut n = 0;
                while n < 2 && i < s.len() && s[i].is_ascii_hexdigit() {
                    v = v * 16 + (s[i] as char).to_digit(16).unwrap_or(0);
                    i += 1;
                    n += 1;
                }
                out.push(v as u8);
            }
            _ => {
                out.push(b'\\');
                out.push(e);
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes() {
        let mut v = Vec::new();
        assert!(!super::unescape_echo(br"a\tb\0101\x41\q", &mut v));
        assert_eq!(v, b"a\tbAA\\q");
        let mut v = Vec::new();
        assert!(super::unescape_echo(br"x\cy", &mut v));
        assert_eq!(v, b"x");
    }
}
