//! `uniq`: collapses adjacent equal lines. `-c -d -D -u -i -f N -s N -w N -z`
//! and the optional INPUT and OUTPUT operands, as in GNU (fields are blanks
//! followed by non-blanks; `-c` uses GNU's `%7d ` layout).

use std::ffi::OsString;
use std::io::Write;

use crate::util::args::{self, HasArg, LongOpt, Spec};
use crate::util::input;
use crate::util::{self, Fail};

const LONG: &[LongOpt] = &[
    ("count", HasArg::No, 'c'),
    ("repeated", HasArg::No, 'd'),
    ("all-repeated", HasArg::Optional, 'D'),
    ("skip-fields", HasArg::Yes, 'f'),
    ("ignore-case", HasArg::No, 'i'),
    ("skip-chars", HasArg::Yes, 's'),
    ("unique", HasArg::No, 'u'),
    ("check-chars", HasArg::Yes, 'w'),
    ("zero-terminated", HasArg::No, 'z'),
    ("group", HasArg::Optional, '\u{1}'),
];
const SPEC: Spec = Spec::new("cdDiuz", "fsw", LONG);

#[derive(Default)]
struct Opts {
    count: bool,
    repeated: bool,
    all_repeated: bool,
    unique: bool,
    icase: bool,
    skip_fields: usize,
    skip_chars: usize,
    check_chars: Option<usize>,
}

impl Opts {
    /// The part of a line that is compared.
    fn key<'a>(&self, l: &'a [u8]) -> &'a [u8] {
        let mut p = 0;
        for _ in 0..self.skip_fields {
            while p < l.len() && (l[p] == b' ' || l[p] == b'\t') {
                p += 1;
            }
            while p < l.len() && !(l[p] == b' ' || l[p] == b'\t') {
                p += 1;
            }
        }
        p = (p + self.skip_chars).min(l.len());
        let e = match self.check_chars {
            Some(w) => (p + w).min(l.len()),
            None => l.len(),
        };
        &l[p..e]
    }

    fn same(&self, a: &[u8], b: &[u8]) -> bool {
        let (ka, kb) = (self.key(a), self.key(b));
        if self.icase {
            ka.eq_ignore_ascii_case(kb)
        } else {
            ka == kb
        }
    }
}

pub fn main(args: Vec<OsString>) -> i32 {
    util::run(&args, |tool, rest| {
        let p = args::parse(&SPEC, &rest).map_err(util::opt_error)?;
        let mut o = Opts::default();
        let mut delim = b'\n';
        let n = |v: &Option<Vec<u8>>, what: &str| -> Result<usize, Fail> {
            let v = v.as_deref().unwrap_or_default();
            args::parse_count(v)
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
                .ok_or_else(|| {
                    Fail::Usage(format!(
                        "{}: invalid number of {what} to skip",
                        String::from_utf8_lossy(v)
                    ))
                })
        };
        for (k, v) in &p.opts {
            match k {
                'c' => o.count = true,
                'd' => o.repeated = true,
                'D' => {
                    if !matches!(v.as_deref(), None | Some(b"none")) {
                        return util::unsupported("only --all-repeated=none is supported");
                    }
                    o.all_repeated = true;
                }
                'i' => o.icase = true,
                'u' => o.unique = true,
                'z' => delim = 0,
                'f' => o.skip_fields = n(v, "fields")?,
                's' => o.skip_chars = n(v, "bytes")?,
                'w' => o.check_chars = Some(n(v, "bytes")?),
                '\u{1}' => return util::unsupported("--group is not supported"),
                _ => {}
            }
        }
        if o.all_repeated && o.count {
            return util::usage("printing all duplicated lines and repeat counts is meaningless");
        }
        if p.operands.len() > 2 {
            return util::usage(format!(
                "extra operand '{}'",
                String::from_utf8_lossy(&p.operands[2])
            ));
        }
        let in_name = p.operands.first().cloned().unwrap_or_else(|| b"-".to_vec());
        let r = input::open(&in_name).map_err(|e| {
            input::report(tool, &in_name, &e);
            Fail::Exit(1)
        })?;
        let mut sink: Box<dyn Write> = match p.operands.get(1) {
            Some(name) if name.as_slice() != b"-" => {
                Box::new(std::fs::File::create(input::path_of(name)).map_err(|e| {
                    input::report(tool, name, &e);
                    Fail::Exit(1)
                })?)
            }
            _ => Box::new(crate::common::RawStdout::default()),
        };
        let mut out = std::io::BufWriter::with_capacity(crate::common::STDOUT_BUF, &mut sink);
        let mut lines = input::Lines::new(r, delim);
        let mut group: Vec<u8> = Vec::new();
        let mut digits = [0u8; 24];
        let mut count: u64 = 0;
        let mut status = 0;
        loop {
            let next = match lines.next() {
                Ok(l) => l.map(|l| input::chomp(l, delim)),
                Err(e) => {
                    input::report(tool, &in_name, &e);
                    status = 1;
                    None
                }
            };
            match next {
                Some(l) if count > 0 && o.same(&group, l) => {
                    count += 1;
                    if o.all_repeated {
                        if count == 2 {
                            out.write_all(&group)?;
                            out.write_all(&[delim])?;
                        }
                        out.write_all(l)?;
                        out.write_all(&[delim])?;
                    }
                }
                _ => {
                    if count > 0 && !o.all_repeated {
                        let show = (count > 1 || !o.repeated) && (count == 1 || !o.unique);
                        if show {
                            if o.count {
                                out.write_all(count_field(count, &mut digits))?;
                            }
                            out.write_all(&group)?;
                            out.write_all(&[delim])?;
                        }
                    }
                    match next {
                        Some(l) => {
                            group.clear();
                            group.extend_from_slice(l);
                            count = 1;
                        }
                        None => break,
                    }
                }
            }
        }
        crate::common::finish(&mut out)?;
        Ok(status)
    })
}

/// `-c`'s prefix, `format!("{n:>7} ")` without the formatting machinery
/// (it runs once per output line).
fn count_field(mut n: u64, buf: &mut [u8; 24]) -> &[u8] {
    let end = buf.len() - 1;
    buf[end] = b' ';
    let mut i = end;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    while end - i < 7 {
        i -= 1;
        buf[i] = b' ';
    }
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::Opts;

    #[test]
    fn count_field_is_gnu_format() {
        let mut b = [0u8; 24];
        for n in [0u64, 1, 42, 9_999_999, 12_345_678, u64::MAX] {
            assert_eq!(super::count_field(n, &mut b), format!("{n:>7} ").as_bytes());
        }
    }

    #[test]
    fn keys() {
        let o = Opts {
            skip_fields: 1,
            skip_chars: 1,
            check_chars: Some(2),
            ..Default::default()
        };
        // The skipped field excludes its trailing blanks, as in GNU.
        assert_eq!(o.key(b"a  xbcd"), b" x");
        assert!(o.same(b"1 abcz", b"2 abcy"));
    }
}
