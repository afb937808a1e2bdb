//! `sleep NUMBER[SUFFIX]...`: pauses for the sum of its operands, each a
//! non-negative decimal number (fractions allowed) with an optional `s`,
//! `m`, `h` or `d` suffix, as GNU's. `infinity` is refused (a task has a
//! wall-time limit anyway).

use std::ffi::OsString;
use std::time::Duration;

use crate::util::args::{self, Spec};
use crate::util::{self, Fail};

const SPEC: Spec = Spec::new("", "", &[]);

/// Seconds in `s` (`1.5`, `2m`, `.5h`), or `None` if it is not a duration.
fn seconds(s: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(s).ok()?;
    let (num, mult) = match text.as_bytes().last()? {
        b's' => (&text[..text.len() - 1], 1.0),
        b'm' => (&text[..text.len() - 1], 60.0),
        b'h' => (&text[..text.len() - 1], 3600.0),
        b'd' => (&text[..text.len() - 1], 86400.0),
        _ => (text, 1.0),
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let v: f64 = num.parse().ok()?;
    Some(v * mult)
}

pub fn main(args: Vec<OsString>) -> i32 {
    util::run(&args, |_tool, rest| {
        let p = args::parse(&SPEC, &rest).map_err(util::opt_error)?;
        if p.operands.is_empty() {
            return util::usage("missing operand");
        }
        let mut total = 0.0f64;
        for op in &p.operands {
            match seconds(op) {
                Some(s) => total += s,
                None => {
                    return Err(Fail::Usage(format!(
                        "invalid time interval '{}'",
                        String::from_utf8_lossy(op)
                    )));
                }
            }
        }
        if !total.is_finite() || total > 1e9 {
            return util::unsupported("sleeping that long is not supported");
        }
        std::thread::sleep(Duration::from_secs_f64(total));
        Ok(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_gnu_reads_them() {
        assert_eq!(seconds(b"1"), Some(1.0));
        assert_eq!(seconds(b"0.5"), Some(0.5));
        assert_eq!(seconds(b".5m"), Some(30.0));
        assert_eq!(seconds(b"2h"), Some(7200.0));
        assert_eq!(seconds(b"1d"), Some(86400.0));
        for bad in [&b"x"[..], b"", b"s", b"-1", b"1x", b"1e3"] {
            assert_eq!(seconds(bad), None, "{bad:?}");
        }
    }
}
