//! `rev`: reverses the bytes of each line (the C locale has one-byte
//! characters); a final line without newline stays without one.

use std::ffi::OsString;
use std::io::Write;

use crate::util::input;
use crate::util::{self, Fail};

pub fn main(args: Vec<OsString>) -> i32 {
    util::run(&args, |tool, rest| {
        if let Some(o) = rest.iter().find(|a| a.len() > 1 && a[0] == b'-') {
            return util::unsupported(format!(
                "unsupported option '{}'",
                String::from_utf8_lossy(o)
            ));
        }
        let mut out = crate::common::stdout();
        let mut status = 0;
        let mut tmp = Vec::new();
        for name in input::operands_or_stdin(rest) {
            let r = match input::open(&name) {
                Ok(r) => r,
                Err(e) => {
                    input::report(tool, &name, &e);
                    status = 1;
                    continue;
                }
            };
            let mut lines = input::Lines::new(r, b'\n');
            loop {
                let line = match lines.next() {
                    Ok(Some(l)) => l,
                    Ok(None) => break,
                    Err(e) => {
                        input::report(tool, &name, &e);
                        status = 1;
                        break;
                    }
                };
                let body = input::chomp(line, b'\n');
                tmp.clear();
                tmp.extend(body.iter().rev());
                tmp.extend_from_slice(&line[body.len()..]);
                out.write_all(&tmp).map_err(Fail::Write)?;
            }
        }
        crate::common::finish(&mut out)?;
        Ok(status)
    })
}
