//! The `sed` implementation (GNU sed in the C locale): option handling,
//! the script parser ([`script`]) and the stream editor ([`exec`]), plus
//! the POSIX regular-expression translation ([`posix_re`]) that `awk`
//! shares.
//!
//! Exit statuses follow GNU sed: 1 for an invalid script, 2 when an input
//! file cannot be read, 4 for an I/O error, and the `q`/`Q` status.
//! Unsupported options and constructs exit 2 with a message.

pub mod exec;
pub mod posix_re;
pub mod script;

use std::ffi::OsString;

use crate::common::{self, EXIT_USAGE, arg_bytes};

/// `sed [-nEsuz] [-i[SUFFIX]] [-l N] [-e script]... [-f file]... [script] [file]...`
pub fn main(args: Vec<OsString>) -> i32 {
    let argv: Vec<Vec<u8>> = args.iter().skip(1).map(|a| arg_bytes(a).to_vec()).collect();
    let mut opts = exec::Options {
        line_wrap: 70,
        ..exec::Options::default()
    };
    let mut pieces: Vec<Vec<u8>> = Vec::new();
    let mut have_script = false;
    let mut extended = false;
    let mut operands: Vec<Vec<u8>> = Vec::new();
    let mut i = 0;
    let mut only_operands = false;
    let bad = |m: String| common::usage_error("sed", m);
    while i < argv.len() {
        let a = argv[i].clone();
        i += 1;
        if only_operands || a.len() < 2 || a[0] != b'-' {
            operands.push(a);
            continue;
        }
        if a == b"--" {
            only_operands = true;
            continue;
        }
        if a.starts_with(b"--") {
            let (name, val) = match a.iter().position(|&b| b == b'=') {
                Some(e) => (&a[2..e], Some(a[e + 1..].to_vec())),
                None => (&a[2..], None),
            };
            let need = |i: &mut usize| -> Option<Vec<u8>> {
                if let Some(v) = &val {
                    return Some(v.clone());
                }
                let v = argv.get(*i).cloned();
                *i += 1;
                v
            };
            match name {
                b"quiet" | b"silent" => opts.quiet = true,
                b"regexp-extended" => extended = true,
                b"separate" => opts.separate = true,
                b"null-data" => opts.null_data = true,
                b"unbuffered" => {}
                b"in-place" => opts.in_place = Some(val.clone().unwrap_or_default()),
                b"expression" => match need(&mut i) {
                    Some(v) => {
                        pieces.push(v);
                        have_script = true;
                    }
                    None => return bad("option '--expression' requires an argument".into()),
                },
                b"file" => match need(&mut i) {
                    Some(v) => match read_script_file(&v) {
                        Ok(s) => {
                            pieces.push(s);
                            have_script = true;
                        }
                        Err(m) => return common::usage_error("sed", m),
                    },
                    None => return bad("option '--file' requires an argument".into()),
                },
                b"line-length" => {
                    match need(&mut i).and_then(|v| String::from_utf8_lossy(&v).parse().ok()) {
                        Some(n) => opts.line_wrap = n,
                        None => return bad("invalid line length".into()),
                    }
                }
                b"posix" | b"debug" | b"sandbox" | b"follow-symlinks" | b"binary" | b"help"
                | b"version" => {
                    return bad(format!(
                        "unsupported option '{}'",
                        String::from_utf8_lossy(&a)
                    ));
                }
                _ => {
                    eprintln!("sed: unrecognized option '{}'", String::from_utf8_lossy(&a));
                    return 1;
                }
            }
            continue;
        }
        // Short options, possibly bundled (`-ne`, `-i.bak`).
        let mut k = 1;
        while k < a.len() {
            let c = a[k];
            k += 1;
            let rest = a[k..].to_vec();
            let take = |i: &mut usize, k: &mut usize| -> Option<Vec<u8>> {
                if !rest.is_empty() {
                    *k = a.len();
                    return Some(rest.clone());
                }
                let v = argv.get(*i).cloned();
                *i += 1;
                v
            };
            match c {
                b'n' => opts.quiet = true,
                b'E' | b'r' => extended = true,
                b's' => opts.separate = true,
                b'z' => opts.null_data = true,
                b'u' => {}
                b'i' => {
                    opts.in_place = Some(rest.clone());
                    k = a.len();
                }
                b'e' => match take(&mut i, &mut k) {
                    Some(v) => {
                        pieces.push(v);
                        have_script = true;
                    }
                    None => return bad("option requires an argument -- 'e'".into()),
                },
                b'f' => match take(&mut i, &mut k) {
                    Some(v) => match read_script_file(&v) {
                        Ok(s) => {
                            pieces.push(s);
                            have_script = true;
                        }
                        Err(m) => return common::usage_error("sed", m),
                    },
                    None => return bad("option requires an argument -- 'f'".into()),
                },
                b'l' => match take(&mut i, &mut k)
                    .and_then(|v| String::from_utf8_lossy(&v).parse().ok())
                {
                    Some(n) => opts.line_wrap = n,
                    None => return bad("invalid line length".into()),
                },
                // GNU options not implemented here exit 2; unknown ones are
                // GNU's usage error (exit 1).
                b'b' | b'h' | b'V' => {
                    return bad(format!("unsupported option -- '{}'", c.escape_ascii()));
                }
                other => {
                    eprintln!("sed: invalid option -- '{}'", other.escape_ascii());
                    return 1;
                }
            }
        }
    }
    if !have_script {
        if operands.is_empty() {
            eprintln!("Usage: sed [OPTION]... {{script-only-if-no-other-script}} [input-file]...");
            return 1;
        }
        pieces.push(operands.remove(0));
    }
    let src = pieces.join(&b'\n');
    let parsed = match script::parse(&src, extended) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sed: {e}");
            return e.status();
        }
    };
    if parsed.quiet {
        opts.quiet = true;
    }
    if opts.in_place.is_some() && operands.is_empty() {
        eprintln!("sed: no input files");
        return 1;
    }
    let out = Box::new(common::stdout());
    let mut sed = match exec::Sed::new(&parsed, opts, operands, out) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sed: {e}");
            return 4;
        }
    };
    let r = sed.run();
    match r {
        Ok(code) => {
            if code == 0 && sed.had_input_error() {
                2
            } else {
                code
            }
        }
        Err(exec::ExecError::Io(e)) if common::is_broken_pipe(&e) => 0,
        Err(exec::ExecError::NoPreviousRegex) => {
            eprintln!("sed: no previous regular expression");
            1
        }
        Err(e) => {
            eprintln!("sed: {e}");
            if matches!(e, exec::ExecError::Other(_)) {
                EXIT_USAGE
            } else {
                4
            }
        }
    }
}

fn read_script_file(name: &[u8]) -> Result<Vec<u8>, String> {
    let path = String::from_utf8_lossy(name).into_owned();
    let r = if path == "-" {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut v).map(|_| v)
    } else {
        std::fs::read(&path)
    };
    match r {
        Ok(mut v) => {
            if v.last() == Some(&b'\n') {
                v.pop();
            }
            Ok(v)
        }
        Err(e) => Err(format!("couldn't open file {path}: {e}")),
    }
}
