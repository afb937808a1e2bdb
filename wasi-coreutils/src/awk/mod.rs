//! The `awk` implementation: a POSIX awk that behaves like gawk in the C
//! locale for what it supports — lexer, parser to a resolved AST, and a
//! tree-walking interpreter.
//!
//! Exit statuses follow gawk: 1 for syntax errors, 2 for fatal runtime
//! errors, unopenable input files, and anything the sandbox cannot do
//! (pipes to or from commands, `system()`), which is rejected before any
//! input is read.

pub mod interp;
pub mod io;
pub mod lexer;
pub mod parser;
pub mod value;

use std::ffi::OsString;
use std::io::Write;

use crate::common::{self, EXIT_USAGE, arg_bytes};

/// A syntax error (or a construct rejected at parse time).
#[derive(Debug, Clone, thiserror::Error)]
#[error("line {line}: {msg}")]
pub struct ParseError {
    /// Fatal (exit 2: unsupported construct, bad regex) rather than a syntax error (exit 1).
    pub fatal: bool,
    pub line: usize,
    pub msg: String,
}

/// A runtime failure.
#[derive(Debug, thiserror::Error)]
pub enum AwkError {
    #[error("fatal: {0}")]
    Fatal(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// `exit` executed inside a function (unwinds to the rule level).
    #[error("exit")]
    Exit,
}

/// A command-line mistake: gawk prints its usage and exits 1.
fn usage_status(msg: &str) -> i32 {
    eprintln!("awk: {msg}");
    1
}

/// `awk [-F fs] [-v var=val]... [-f progfile | 'prog'] [file | var=val]...`
pub fn main(args: Vec<OsString>) -> i32 {
    let mut fs: Option<Vec<u8>> = None;
    let mut assigns: Vec<Vec<u8>> = Vec::new();
    let mut progfiles: Vec<Vec<u8>> = Vec::new();
    let mut i = 1;
    let argv: Vec<&[u8]> = args.iter().map(|a| arg_bytes(a)).collect();
    while i < argv.len() {
        let a = argv[i];
        if a == b"--" {
            i += 1;
            break;
        }
        if a.len() < 2 || a[0] != b'-' {
            break;
        }
        let (opt, rest) = (a[1], &a[2..]);
        let value = |i: &mut usize| -> Option<Vec<u8>> {
            if !rest.is_empty() {
                Some(rest.to_vec())
            } else {
                *i += 1;
                argv.get(*i).map(|v| v.to_vec())
            }
        };
        match opt {
            b'F' => match value(&mut i) {
                Some(v) => fs = Some(v),
                None => return usage_status("option requires an argument -- F"),
            },
            b'v' => match value(&mut i) {
                Some(v) => assigns.push(v),
                None => return usage_status("option requires an argument -- v"),
            },
            b'f' => match value(&mut i) {
                Some(v) => progfiles.push(v),
                None => return usage_status("option requires an argument -- f"),
            },
            // Options gawk has but this awk does not: exit 2 (unsupported);
            // options gawk does not know either: its usage error, exit 1.
            c if b"bcCdDeEghiIlLMnNoOpPrsStV-".contains(&c) => {
                return common::usage_error(
                    "awk",
                    format!(
                        "unsupported option `{}' (supported: -F -v -f)",
                        String::from_utf8_lossy(a)
                    ),
                );
            }
            _ => {
                eprintln!("awk: invalid option `{}'", String::from_utf8_lossy(a));
                return 1;
            }
        }
        i += 1;
    }
    let src: Vec<u8> = if progfiles.is_empty() {
        let Some(p) = argv.get(i) else {
            return usage_status("usage: awk [-F fs][-v var=value][prog | -f progfile][file ...]");
        };
        i += 1;
        p.to_vec()
    } else {
        let mut s = Vec::new();
        for f in &progfiles {
            let path = String::from_utf8_lossy(f).into_owned();
            let r = if path == "-" {
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut v).map(|_| v)
            } else {
                std::fs::read(&path)
            };
            match r {
                Ok(b) => {
                    s.extend_from_slice(&b);
                    s.push(b'\n');
                }
                Err(e) => {
                    return common::usage_error(
                        "awk",
                        format!("fatal: can't open source file `{path}' for reading: {e}"),
                    );
                }
            }
        }
        s
    };
    let prog = match lexer::lex(&src).and_then(parser::parse) {
        Ok(p) => p,
        Err(e) => {
            eprintln!(
                "awk: {}{e}",
                if e.fatal { "fatal: " } else { "syntax error: " }
            );
            return if e.fatal { EXIT_USAGE } else { 1 };
        }
    };
    let mut av: Vec<Vec<u8>> = vec![b"awk".to_vec()];
    av.extend(argv[i..].iter().map(|a| a.to_vec()));
    let out: Box<dyn Write> = Box::new(common::stdout());
    let mut it = interp::Interp::new(&prog, av, out);
    let mut setup = || -> Result<(), AwkError> {
        if let Some(fs) = &fs {
            // `-F '\t'` is escape-processed like `-v FS='\t'`.
            it.assign_cmdline("FS", fs)?;
        }
        for a in &assigns {
            let Some(eq) = a.iter().position(|&b| b == b'=') else {
                return Err(AwkError::Fatal(format!(
                    "`{}' argument to `-v' not in `var=value' form",
                    String::from_utf8_lossy(a)
                )));
            };
            let name = String::from_utf8_lossy(&a[..eq]).into_owned();
            it.assign_cmdline(&name, &a[eq + 1..])?;
        }
        Ok(())
    };
    let status = match setup().and_then(|()| it.run()) {
        Ok(code) => code,
        Err(AwkError::Exit) => 0,
        Err(AwkError::Io(e)) if common::is_broken_pipe(&e) => return 0,
        Err(e) => {
            let _ = it.finish();
            eprintln!("awk: {e}");
            return EXIT_USAGE;
        }
    };
    match it.finish() {
        Ok(()) => {}
        Err(e) if common::is_broken_pipe(&e) => return 0,
        Err(e) => {
            eprintln!("awk: write error: {e}");
            return EXIT_USAGE;
        }
    }
    if it.had_input_error && status == 0 {
        EXIT_USAGE
    } else {
        status
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::io::{self, Write};
    use std::rc::Rc;

    use super::{interp, lexer, parser};

    struct Capture(Rc<RefCell<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Runs `prog` over `input` (as a file operand); returns stdout and status.
    fn run(prog: &str, input: &str) -> (String, i32) {
        // Unique per call: tests run in parallel threads of one process,
        // and several run the same program over different input.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("awk-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("input");
        std::fs::write(&f, input).unwrap();
        let p = parser::parse(lexer::lex(prog.as_bytes()).unwrap()).unwrap();
        let buf = Rc::new(RefCell::new(Vec::new()));
        let argv = vec![b"awk".to_vec(), f.to_string_lossy().as_bytes().to_vec()];
        let mut it = interp::Interp::new(&p, argv, Box::new(Capture(buf.clone())));
        let code = it.run().unwrap();
        it.finish().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let out = String::from_utf8(buf.borrow().clone()).unwrap();
        (out, code)
    }

    #[test]
    fn field_sum_and_counts() {
        assert_eq!(
            run("{ s += $2 } END { print s, NR }", "a 1\nb 2.5\nc x\n").0,
            "3.5 3\n"
        );
        assert_eq!(
            run(
                "{ c[$1]++ } END { for (k in c) print k, c[k] }",
                "b\na\nb\n"
            )
            .0,
            "b 2\na 1\n"
        );
    }

    #[test]
    fn strnum_comparisons_follow_gawk() {
        let (out, _) = run("{ print ($1 < $2) }", "10 9\nabc abd\n2 10\n");
        assert_eq!(out, "0\n1\n1\n");
    }

    #[test]
    fn field_assignment_rebuilds_record() {
        assert_eq!(
            run(
                "BEGIN { OFS = \"-\" } { $3 = \"z\"; print; print NF }",
                "a b\n"
            )
            .0,
            "a-b-z\n3\n"
        );
        assert_eq!(run("{ NF = 1; print }", "a b c\n").0, "a\n");
    }

    #[test]
    fn functions_arrays_and_exit_status() {
        let prog = "function fill(a, n,  i) { for (i = 1; i <= n; i++) a[i] = i * i }
                    END { fill(sq, 4); print sq[4], length(sq); exit 3 }";
        assert_eq!(run(prog, ""), ("16 4\n".to_string(), 3));
    }

    #[test]
    fn printf_and_number_output() {
        assert_eq!(run("BEGIN { printf \"%5.2f|%d|%s\\n\", 3.14159, \"42abc\", 1e6; print 0.1 + 0.2, 2^53 }", "").0, " 3.14|42|1000000\n0.3 9007199254740992\n");
    }
}
