//! GNU `getopt_long`-style option parsing over raw argument bytes.
//!
//! Guarantees: short options cluster (`-nv`), an option's argument may be
//! attached (`-n5`, `--lines=5`) or separate (`-n 5`), long options may be
//! abbreviated to any unique prefix, options and operands may be mixed
//! (GNU permutation) and `--` ends options. Anything unknown is an error the
//! caller reports with exit status 2 — never silently ignored.

use std::ffi::OsString;

use crate::common::arg_bytes;

/// Whether an option takes an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HasArg {
    No,
    Yes,
    /// Only in the attached form (`--color=never`).
    Optional,
}

/// A long option: its name, whether it takes an argument, and the key it
/// reports as (usually its short letter; long-only options use other chars).
pub type LongOpt = (&'static str, HasArg, char);

/// What a tool accepts.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Short options without argument.
    pub flags: &'static str,
    /// Short options that take an argument.
    pub with_arg: &'static str,
    pub long: &'static [LongOpt],
    /// `-123` is reported as option `'#'` with argument `"123"` (grep, head, tail).
    pub digits: bool,
    /// Stop option parsing at the first operand (POSIX order; used by tools
    /// whose operands may look like options, e.g. `seq -1`... is not one of them).
    pub stop_at_operand: bool,
}

impl Spec {
    pub const fn new(
        flags: &'static str,
        with_arg: &'static str,
        long: &'static [LongOpt],
    ) -> Self {
        Spec {
            flags,
            with_arg,
            long,
            digits: false,
            stop_at_operand: false,
        }
    }
}

/// The parsed command line: options in order, then operands.
#[derive(Debug, Default)]
pub struct Parsed {
    pub opts: Vec<(char, Option<Vec<u8>>)>,
    pub operands: Vec<Vec<u8>>,
}

/// Parses `args` (without argv[0]). The error is a message for the user.
pub fn parse(spec: &Spec, args: &[Vec<u8>]) -> Result<Parsed, String> {
    let mut out = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == b"--" {
            out.operands.extend(args[i..].iter().cloned());
            break;
        }
        if a.starts_with(b"--") {
            let body = &a[2..];
            let (name, val) = match body.iter().position(|&b| b == b'=') {
                Some(p) => (&body[..p], Some(body[p + 1..].to_vec())),
                None => (body, None),
            };
            let name_s = String::from_utf8_lossy(name).into_owned();
            let exact = spec.long.iter().find(|(n, _, _)| n.as_bytes() == name);
            let cands: Vec<&LongOpt> = match exact {
                Some(e) => vec![e],
                None => spec
                    .long
                    .iter()
                    .filter(|(n, _, _)| n.as_bytes().starts_with(name))
                    .collect(),
            };
            let &(lname, has, key) = match cands.as_slice() {
                [one] => *one,
                [] => return Err(format!("unrecognized option '--{name_s}'")),
                _ => return Err(format!("option '--{name_s}' is ambiguous")),
            };
            match (has, val) {
                (HasArg::No, Some(_)) => {
                    return Err(format!("option '--{lname}' doesn't allow an argument"));
                }
                (HasArg::No, None) | (HasArg::Optional, None) => out.opts.push((key, None)),
                (_, Some(v)) => out.opts.push((key, Some(v))),
                (HasArg::Yes, None) => {
                    let Some(v) = args.get(i) else {
                        return Err(format!("option '--{lname}' requires an argument"));
                    };
                    i += 1;
                    out.opts.push((key, Some(v.clone())));
                }
            }
            continue;
        }
        if a.len() > 1 && a[0] == b'-' {
            let mut j = 1;
            while j < a.len() {
                let c = a[j];
                if spec.digits && c.is_ascii_digit() {
                    let start = j;
                    while j < a.len() && a[j].is_ascii_digit() {
                        j += 1;
                    }
                    out.opts.push(('#', Some(a[start..j].to_vec())));
                    continue;
                }
                j += 1;
                let ch = c as char;
                if c.is_ascii() && spec.flags.contains(ch) {
                    out.opts.push((ch, None));
                } else if c.is_ascii() && spec.with_arg.contains(ch) {
                    if j < a.len() {
                        out.opts.push((ch, Some(a[j..].to_vec())));
                    } else {
                        let Some(v) = args.get(i) else {
                            return Err(format!("option requires an argument -- '{ch}'"));
                        };
                        i += 1;
                        out.opts.push((ch, Some(v.clone())));
                    }
                    break;
                } else {
                    return Err(format!(
                        "invalid option -- '{}'",
                        String::from_utf8_lossy(&[c])
                    ));
                }
            }
            continue;
        }
        out.operands.push(a.clone());
        if spec.stop_at_operand {
            out.operands.extend(args[i..].iter().cloned());
            break;
        }
    }
    Ok(out)
}

/// The arguments after argv[0] as byte strings.
pub fn rest_bytes(args: &[OsString]) -> Vec<Vec<u8>> {
    args.iter().skip(1).map(|a| arg_bytes(a).to_vec()).collect()
}

/// Parses a non-negative decimal count (as GNU tools do for `-n 10`).
pub fn parse_count(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok().or(Some(u64::MAX))
}

/// Parses a count with GNU's size suffixes (`b`=512, `K`/`KiB`=1024,
/// `kB`=1000, `M`, `MB`, `G`, ...), as `head -c 1K` accepts.
pub fn parse_size(s: &[u8]) -> Option<u64> {
    let n = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if n == 0 {
        return None;
    }
    let base: u64 = std::str::from_utf8(&s[..n]).ok()?.parse().ok()?;
    let suf = &s[n..];
    let mult: u64 = match suf {
        b"" => 1,
        b"b" => 512,
        _ => {
            let (letter, tail) = (suf[0].to_ascii_uppercase(), &suf[1..]);
            let pow = b"KMGTPEZYRQ".iter().position(|&c| c == letter)? as u32 + 1;
            if suf[0] == b'k' && tail != b"B" {
                return None;
            }
            let unit: u64 = match tail {
                b"" | b"iB" => 1024,
                b"B" => 1000,
                _ => return None,
            };
            unit.checked_pow(pow).unwrap_or(u64::MAX)
        }
    };
    Some(base.saturating_mul(mult))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: &[LongOpt] = &[
        ("lines", HasArg::Yes, 'n'),
        ("quiet", HasArg::No, 'q'),
        ("color", HasArg::Optional, 'C'),
    ];
    const SPEC: Spec = Spec {
        flags: "qv",
        with_arg: "n",
        long: LONG,
        digits: true,
        stop_at_operand: false,
    };

    fn v(xs: &[&str]) -> Vec<Vec<u8>> {
        xs.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn clusters_attached_and_permuted() {
        let p = parse(
            &SPEC,
            &v(&["-qn5", "f", "--lin", "7", "--color=never", "--", "-v"]),
        )
        .unwrap();
        assert_eq!(
            p.opts,
            vec![
                ('q', None),
                ('n', Some(b"5".to_vec())),
                ('n', Some(b"7".to_vec())),
                ('C', Some(b"never".to_vec()))
            ]
        );
        assert_eq!(p.operands, v(&["f", "-v"]));
    }

    #[test]
    fn digits_and_errors() {
        let p = parse(&SPEC, &v(&["-12", "-"])).unwrap();
        assert_eq!(p.opts, vec![('#', Some(b"12".to_vec()))]);
        assert_eq!(p.operands, v(&["-"]));
        assert!(parse(&SPEC, &v(&["-x"])).is_err());
        assert!(parse(&SPEC, &v(&["-n"])).is_err());
        assert!(parse(&SPEC, &v(&["--quiet=1"])).is_err());
        assert!(parse(&SPEC, &v(&["--nope"])).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size(b"10"), Some(10));
        assert_eq!(parse_size(b"2K"), Some(2048));
        assert_eq!(parse_size(b"2kB"), Some(2000));
        assert_eq!(parse_size(b"1MiB"), Some(1 << 20));
        assert_eq!(parse_size(b"1b"), Some(512));
        assert_eq!(parse_size(b"x"), None);
        assert_eq!(parse_size(b"1k"), None);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(words in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..6), 0..6)) {
            let _ = parse(&SPEC, &words);
        }
    }
}
