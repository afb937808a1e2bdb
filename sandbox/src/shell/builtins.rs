//! Commands the shell runs itself, without a wasm instance: the ones that
//! must change the shell (`cd`, `export`, `exit`, `set`, `read`, `unset`),
//! the cheap ones bash also builds in (`true`, `false`, `:`, `echo`,
//! `test`/`[`, `pwd`), `xargs`, which runs the command that follows it
//! once per batch of arguments read from stdin, the job builtins (`wait`,
//! `kill`), and the script runners (`sh`, `bash`, `.`/`source`, `shift`).
//!
//! `sleep` runs here too: a guest's `sleep` (WASI `poll_oneoff`) holds a
//! host thread for its whole duration, so stages and background jobs could
//! not run beside it, nor `kill` end it; the builtin waits on the
//! executor's timer instead, and is dropped like any command when the run
//! stops. It takes the operands of the toolbox's `sleep` (GNU's).
//!
//! `chmod` is accepted and changes nothing: WASI files have no permission
//! bits, and every readable file in the sandbox can be run as a script
//! (`./x.sh`), so `chmod +x x.sh` only has to succeed on a file that exists.

use super::interp::{Flow, Shell, Stop};
use crate::fs::normalize;
use crate::limits::LimitKind;
use crate::stage::Stdio;

/// Runs `argv` if it names a builtin; `None` otherwise.
pub(crate) async fn run_builtin(
    sh: &mut Shell,
    argv: &[String],
    env: &[(String, String)],
    io: &Stdio,
) -> Option<Flow> {
    let args = &argv[1..];
    let status = match argv[0].as_str() {
        ":" | "true" => 0,
        "false" => 1,
        "exit" => {
            let code = match args.first() {
                None => sh.status,
                Some(a) => match a.parse::<i64>() {
                    Ok(n) => (n & 0xff) as i32,
                    Err(_) => {
                        sh.complain(io, &format!("exit: {a}: numeric argument required"))
                            .await;
                        2
                    }
                },
            };
            return Some(Err(Stop::Exit(code)));
        }
        name @ ("break" | "continue") => return Some(loop_control(sh, name, args, io).await),
        "export" => {
            for a in args {
                match a.split_once('=') {
                    Some((k, v)) => {
                        sh.vars.insert(k.to_owned(), v.to_owned());
                        sh.exported.insert(k.to_owned());
                    }
                    None => {
                        sh.exported.insert(a.clone());
                    }
                }
            }
            0
        }
        "unset" => {
            for a in args.iter().filter(|a| !a.starts_with('-')) {
                sh.vars.remove(a);
                sh.exported.remove(a);
            }
            0
        }
        "cd" => {
            let target = args
                .first()
                .cloned()
                .or_else(|| sh.vars.get("HOME").cloned())
                .unwrap_or_else(|| "/".into());
            let abs = normalize(&sh.cwd, &target);
            match sh.ctx.fs.metadata(&sh.cwd, &target) {
                Ok(m) if m.is_dir() => {
                    sh.cwd = abs.clone();
                    sh.vars.insert("PWD".into(), abs);
                    0
                }
                Ok(_) => {
                    sh.complain(io, &format!("cd: {target}: Not a directory"))
                        .await;
                    1
                }
                Err(e) => {
                    sh.complain(io, &format!("cd: {target}: {e}")).await;
                    1
                }
            }
        }
        "pwd" => write_out(io, format!("{}\n", sh.cwd).as_bytes()).await,
        "set" => set(sh, args, io).await,
        "echo" => echo(args, io).await,
        "test" => test_builtin(sh, args, io).await,
        "[" => match args.split_last() {
            Some((last, rest)) if last == "]" => test_builtin(sh, rest, io).await,
            _ => {
                sh.complain(io, "[: missing `]'").await;
                2
            }
        },
        "read" => match read(sh, args, env, io).await {
            Ok(s) => s,
            Err(stop) => return Some(Err(stop)),
        },
        "xargs" => return Some(xargs(sh, args, env, io).await),
        "wait" => match wait(sh, args, io).await {
            Ok(s) => s,
            Err(stop) => return Some(Err(stop)),
        },
        "kill" => kill(sh, args, io).await,
        "shift" => {
            let n = match args.first().map(|a| a.parse::<usize>()) {
                None => 1,
                Some(Ok(n)) => n,
                Some(Err(_)) => {
                    sh.complain(
                        io,
                        &format!("shift: {}: numeric argument required", args[0]),
                    )
                    .await;
                    sh.status = 2;
                    return Some(Ok(()));
                }
            };
            if n + 1 > sh.args.len() {
                1
            } else {
                let mut a = (*sh.args).clone();
                a.drain(1..=n);
                sh.args = std::sync::Arc::new(a);
                0
            }
        }
        "chmod" => chmod(sh, args, io).await,
        "sleep" => match sleep_for(args) {
            Ok(d) => {
                tokio::time::sleep(d).await;
                0
            }
            Err(msg) => {
                sh.complain(io, &format!("sleep: {msg}")).await;
                1
            }
        },
        "sh" | "bash" => return Some(run_sh(sh, &argv[0], args, env, io).await),
        "." | "source" => return Some(source(sh, args, io).await),
        _ => return None,
    };
    sh.status = status;
    Some(Ok(()))
}

async fn write_out(io: &Stdio, bytes: &[u8]) -> i32 {
    if io.stdout.write_all(bytes).await {
        0
    } else {
        1
    }
}

async fn set(sh: &mut Shell, args: &[String], io: &Stdio) -> i32 {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let on = a.starts_with('-');
        match a.as_str() {
            "--" => {
                // `set -- a b`: the positional parameters.
                let mut v = vec![sh.args[0].clone()];
                v.extend(it.by_ref().cloned());
                sh.args = std::sync::Arc::new(v);
            }
            "-e" | "+e" => sh.errexit = on,
            "-o" | "+o" => match it.next().map(String::as_str) {
                Some("pipefail") => sh.pipefail = on,
                Some("errexit") => sh.errexit = on,
                other => {
                    sh.complain(
                        io,
                        &format!("set: unsupported option {a} {}", other.unwrap_or("")),
                    )
                    .await;
                    return 2;
                }
            },
            _ => {
                sh.complain(
                    io,
                    &format!("set: unsupported option {a} (supported: -e, -o pipefail)"),
                )
                .await;
                return 2;
            }
        }
    }
    0
}

/// bash's builtin `echo`: `-n`, `-e`, `-E` as leading options.
async fn echo(args: &[String], io: &Stdio) -> i32 {
    let (mut newline, mut escapes, mut i) = (true, false, 0);
    while let Some(a) = args.get(i) {
        if a.len() < 2
            || !a.starts_with('-')
            || !a[1..].chars().all(|c| matches!(c, 'n' | 'e' | 'E'))
        {
            break;
        }
        for c in a[1..].chars() {
            match c {
                'n' => newline = false,
                'e' => escapes = true,
                _ => escapes = false,
            }
        }
        i += 1;
    }
    let mut out = Vec::new();
    for (j, a) in args[i..].iter().enumerate() {
        if j > 0 {
            out.push(b' ');
        }
        if escapes {
            if echo_escapes(a, &mut out) {
                return write_out(io, &out).await;
            }
        } else {
            out.extend_from_slice(a.as_bytes());
        }
    }
    if newline {
        out.push(b'\n');
    }
    write_out(io, &out).await
}

/// Appends `s` with `echo -e` escapes; `true` if `\c` ended the output.
fn echo_escapes(s: &str, out: &mut Vec<u8>) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' || i + 1 == b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        i += 1;
        let c = b[i];
        i += 1;
        match c {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'e' => out.push(0x1b),
            b'f' => out.push(0x0c),
            b'v' => out.push(0x0b),
            b'\\' => out.push(b'\\'),
            b'c' => return true,
            b'0' => {
                let mut v = 0u32;
                let mut n = 0;
                while n < 3 && i < b.len() && (b'0'..=b'7').contains(&b[i]) {
                    v = v * 8 + u32::from(b[i] - b'0');
                    i += 1;
                    n += 1;
                }
                out.push((v & 0xff) as u8);
            }
            b'x' => {
                let mut v = 0u32;
                let mut n = 0;
                while n < 2 && i < b.len() && b[i].is_ascii_hexdigit() {
                    v = v * 16 + (b[i] as char).to_digit(16).unwrap_or(0);
                    i += 1;
                    n += 1;
                }
                if n == 0 {
                    out.extend_from_slice(b"\\x");
                } else {
                    out.push(v as u8);
                }
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    false
}

/// `read [-r] [NAME...]`: one line from stdin into variables.
async fn read(
    sh: &mut Shell,
    args: &[String],
    env: &[(String, String)],
    io: &Stdio,
) -> Result<i32, Stop> {
    let raw = args.first().is_some_and(|a| a == "-r");
    let names: Vec<&String> = args.iter().skip(usize::from(raw)).collect();
    if let Some(bad) = names.iter().find(|n| n.starts_with('-')) {
        sh.complain(
            io,
            &format!("read: unsupported option {bad} (supported: -r)"),
        )
        .await;
        return Ok(2);
    }
    let Some(stdin) = &io.stdin else { return Ok(1) };
    let limit = sh.ctx.run.limits.args_bytes as usize;
    let mut line = Vec::new();
    let mut eof = false;
    loop {
        match stdin
            .read_line(limit.saturating_sub(line.len()).max(1))
            .await
        {
            None => {
                eof = true;
                break;
            }
            Some(part) => {
                line.extend_from_slice(&part);
                sh.check_size(line.len())?;
                // Without -r a trailing backslash continues the line.
                if !raw && line.last() == Some(&b'\\') {
                    line.pop();
                    continue;
                }
                break;
            }
        }
    }
    if eof && line.is_empty() {
        return Ok(1);
    }
    let mut text = String::from_utf8_lossy(&line).into_owned();
    if !raw {
        let mut out = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                out.extend(chars.next());
            } else {
                out.push(c);
            }
        }
        text = out;
    }
    let names: Vec<String> = if names.is_empty() {
        vec!["REPLY".into()]
    } else {
        names.into_iter().cloned().collect()
    };
    if names.len() == 1 && names[0] == "REPLY" && args.iter().all(|a| a == "-r") {
        sh.vars.insert("REPLY".into(), text);
    } else {
        // `IFS=, read a b` sets IFS for `read` alone (it is in `env`).
        let ifs = env
            .iter()
            .rev()
            .find(|(k, _)| k == "IFS")
            .map(|(_, v)| v.as_str())
            .or_else(|| sh.vars.get("IFS").map(String::as_str))
            .unwrap_or(" \t\n");
        for (n, v) in names.iter().zip(split_read_fields(&text, ifs, names.len())) {
            sh.vars.insert(n.clone(), v);
        }
    }
    Ok(i32::from(eof))
}

/// Splits a line read by `read` into `count` values by `ifs`, as bash
/// does: IFS white space (space, tab, newline in `ifs`) around the line is
/// dropped and runs of it separate fields; every other IFS character
/// ends one field (an empty one if two are adjacent). The last value is
/// the rest of the line, except that a single field followed by a single
/// delimiter loses the delimiter (`a,b,` into `x y` gives `y` = `b`).
fn split_read_fields(line: &str, ifs: &str, count: usize) -> Vec<String> {
    let is_ws = |c: char| ifs.contains(c) && matches!(c, ' ' | '\t' | '\n');
    let is_ifs = |c: char| ifs.contains(c);
    let mut rest = line.trim_matches(is_ws);
    // One field and the delimiter after it: (field, what follows).
    let field = |s: &'_ str| -> (String, usize) {
        let end = s.find(is_ifs).unwrap_or(s.len());
        let mut after = s[end..].trim_start_matches(is_ws);
        if let Some(c) = after.chars().next()
            && is_ifs(c)
            && !is_ws(c)
        {
            after = after[c.len_utf8()..].trim_start_matches(is_ws);
        }
        (s[..end].to_owned(), s.len() - after.len())
    };
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        if i + 1 == count {
            let (f, used) = field(rest);
            out.push(if used == rest.len() && !ifs.is_empty() {
                f
            } else {
                rest.to_owned()
            });
        } else if ifs.is_empty() {
            out.push(std::mem::take(&mut rest).to_owned());
        } else {
            let (f, used) = field(rest);
            out.push(f);
            rest = &rest[used..];
        }
    }
    out
}

async fn test_builtin(sh: &mut Shell, args: &[String], io: &Stdio) -> i32 {
    let mut p = TestParser {
        sh: &*sh,
        args,
        pos: 0,
    };
    let r = if args.is_empty() { Ok(false) } else { p.or() };
    let r = match r {
        Ok(v) if p.pos == args.len() => Ok(v),
        Ok(_) => Err(format!("unexpected argument `{}`", args[p.pos])),
        Err(e) => Err(e),
    };
    match r {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            sh.complain(io, &format!("test: {e}")).await;
            2
        }
    }
}

const UNARY: &[&str] = &["-e", "-f", "-d", "-s", "-r", "-w", "-x", "-z", "-n"];
const BINARY: &[&str] = &[
    "=", "==", "!=", "<", ">", "-eq", "-ne", "-lt", "-le", "-gt", "-ge",
];

/// POSIX `test` grammar: `-o` binds looser than `-a`, `!` and `( )` as usual.
struct TestParser<'a> {
    sh: &'a Shell,
    args: &'a [String],
    pos: usize,
}

impl TestParser<'_> {
    fn peek(&self, k: usize) -> Option<&str> {
        self.args.get(self.pos + k).map(String::as_str)
    }
    fn or(&mut self) -> Result<bool, String> {
        let mut v = self.and()?;
        while self.peek(0) == Some("-o") {
            self.pos += 1;
            v |= self.and()?;
        }
        Ok(v)
    }
    fn and(&mut self) -> Result<bool, String> {
        let mut v = self.not()?;
        while self.peek(0) == Some("-a") {
            self.pos += 1;
            v &= self.not()?;
        }
        Ok(v)
    }
    fn not(&mut self) -> Result<bool, String> {
        // `! = x` style ambiguities resolve toward a binary test, as POSIX says.
        if self.peek(0) == Some("!")
            && !self
                .peek(1)
                .is_some_and(|o| BINARY.contains(&o) && self.peek(2).is_some())
        {
            self.pos += 1;
            return Ok(!self.not()?);
        }
        self.primary()
    }
    fn primary(&mut self) -> Result<bool, String> {
        let Some(a) = self.peek(0).map(str::to_owned) else {
            return Err("argument expected".into());
        };
        if let (Some(op), Some(b)) = (self.peek(1), self.peek(2))
            && BINARY.contains(&op)
        {
            let (a, op, b) = (a.clone(), op.to_owned(), b.to_owned());
            self.pos += 3;
            return binary_test(&op, &a, &b);
        }
        if a == "(" {
            self.pos += 1;
            let v = self.or()?;
            if self.peek(0) != Some(")") {
                return Err("missing `)'".into());
            }
            self.pos += 1;
            return Ok(v);
        }
        if UNARY.contains(&a.as_str())
            && let Some(v) = self.peek(1)
        {
            let (op, v) = (a.clone(), v.to_owned());
            self.pos += 2;
            return unary_test(self.sh, &op, &v);
        }
        self.pos += 1;
        Ok(!a.is_empty())
    }
}

pub(crate) fn unary_test(sh: &Shell, op: &str, v: &str) -> Result<bool, String> {
    let md = || sh.ctx.fs.metadata(&sh.cwd, v).ok();
    Ok(match op {
        "-z" => v.is_empty(),
        "-n" => !v.is_empty(),
        "-e" | "-r" | "-x" => md().is_some(),
        "-f" => md().is_some_and(|m| m.is_file()),
        "-d" => md().is_some_and(|m| m.is_dir()),
        "-s" => md().is_some_and(|m| m.len() > 0),
        "-w" => sh.ctx.fs.open_write_allowed(&sh.cwd, v) && md().is_some(),
        _ => return Err(format!("{op}: unary operator expected")),
    })
}

pub(crate) fn binary_test(op: &str, a: &str, b: &str) -> Result<bool, String> {
    let num = |s: &str| {
        s.trim()
            .parse::<i64>()
            .map_err(|_| format!("{s}: integer expression expected"))
    };
    Ok(match op {
        "=" | "==" => a == b,
        "!=" => a != b,
        "<" => a < b,
        ">" => a > b,
        "-eq" => num(a)? == num(b)?,
        "-ne" => num(a)? != num(b)?,
        "-lt" => num(a)? < num(b)?,
        "-le" => num(a)? <= num(b)?,
        "-gt" => num(a)? > num(b)?,
        "-ge" => num(a)? >= num(b)?,
        _ => return Err(format!("{op}: binary operator expected")),
    })
}

/// Options of `xargs` that we run.
struct XargsOpts {
    max_args: Option<usize>,
    delim: Option<u8>,
    replace: Option<String>,
    no_run_if_empty: bool,
}

fn parse_xargs(args: &[String]) -> Result<(XargsOpts, &[String]), String> {
    let mut o = XargsOpts {
        max_args: None,
        delim: None,
        replace: None,
        no_run_if_empty: false,
    };
    let mut i = 0;
    while let Some(a) = args.get(i) {
        if !a.starts_with('-') || a == "-" {
            break;
        }
        i += 1;
        let mut value = |inline: &str| -> Result<String, String> {
            if !inline.is_empty() {
                return Ok(inline.to_owned());
            }
            i += 1;
            args.get(i - 1)
                .cloned()
                .ok_or_else(|| format!("option {a} requires an argument"))
        };
        match a.as_str() {
            "--" => break,
            "-0" | "--null" => o.delim = Some(0),
            "-r" | "--no-run-if-empty" => o.no_run_if_empty = true,
            s if s.starts_with("-n") => {
                let v = value(&s[2..])?;
                o.max_args = Some(
                    v.parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| format!("invalid number {v}"))?,
                );
            }
            s if s.starts_with("-I") => o.replace = Some(value(&s[2..])?),
            s if s.starts_with("-d") => {
                let v = value(&s[2..])?;
                o.delim = Some(match v.as_str() {
                    "\\n" => b'\n',
                    "\\t" => b'\t',
                    "\\0" => 0,
                    v if v.len() == 1 => v.as_bytes()[0],
                    _ => return Err(format!("unsupported delimiter {v}")),
                });
            }
            other => {
                return Err(format!(
                    "unsupported option {other} (supported: -n, -0, -d, -r, -I)"
                ));
            }
        }
    }
    if o.replace.is_some() && o.delim.is_none() {
        // -I reads whole lines.
        o.delim = Some(b'\n');
    }
    Ok((o, &args[i..]))
}

/// Splits xargs input: by a delimiter, or by blanks with quotes and backslashes.
#[derive(Default)]
struct Tokenizer {
    cur: Vec<u8>,
    has: bool,
    quote: Option<u8>,
    escape: bool,
}

impl Tokenizer {
    fn feed(&mut self, data: &[u8], delim: Option<u8>, out: &mut Vec<String>) {
        for &c in data {
            if let Some(d) = delim {
                if c == d {
                    out.push(String::from_utf8_lossy(&std::mem::take(&mut self.cur)).into_owned());
                } else {
                    self.cur.push(c);
                }
                continue;
            }
            if self.escape {
                self.cur.push(c);
                self.has = true;
                self.escape = false;
            } else if let Some(q) = self.quote {
                if c == q {
                    self.quote = None;
                } else {
                    self.cur.push(c);
                }
            } else if c == b'\\' {
                self.escape = true;
            } else if c == b'\'' || c == b'"' {
                self.quote = Some(c);
                self.has = true;
            } else if matches!(c, b' ' | b'\t' | b'\n') {
                self.flush(out);
            } else {
                self.cur.push(c);
                self.has = true;
            }
        }
    }

    fn flush(&mut self, out: &mut Vec<String>) {
        if self.has || !self.cur.is_empty() {
            out.push(String::from_utf8_lossy(&std::mem::take(&mut self.cur)).into_owned());
            self.has = false;
        }
    }
}

async fn xargs(sh: &mut Shell, args: &[String], env: &[(String, String)], io: &Stdio) -> Flow {
    let (opts, cmd) = match parse_xargs(args) {
        Ok(x) => x,
        Err(e) => {
            sh.complain(io, &format!("xargs: {e}")).await;
            sh.status = 1;
            return Ok(());
        }
    };
    let base: Vec<String> = if cmd.is_empty() {
        vec!["echo".into()]
    } else {
        cmd.to_vec()
    };
    let limit = sh.ctx.run.limits.args_bytes as usize;
    let base_size = crate::stage::arg_bytes(&base, env) as usize;
    // Children read nothing from xargs's input (GNU redirects them from /dev/null).
    let child_io = Stdio {
        stdin: None,
        stdout: io.stdout.clone(),
        stderr: io.stderr.clone(),
    };
    let mut tok = Tokenizer::default();
    let mut pending: Vec<String> = Vec::new();
    let mut worst = 0;
    let mut ran = false;
    let mut eof = false;
    while !eof {
        match io.stdin.as_ref() {
            Some(stdin) => match stdin.read_chunk(64 * 1024).await {
                Some(chunk) => tok.feed(&chunk, opts.delim, &mut pending),
                None => eof = true,
            },
            None => eof = true,
        }
        if eof {
            if opts.delim.is_some() {
                if !tok.cur.is_empty() {
                    pending
                        .push(String::from_utf8_lossy(&std::mem::take(&mut tok.cur)).into_owned());
                }
            } else {
                tok.flush(&mut pending);
            }
        }
        if tok.cur.len() > limit {
            sh.ctx.run.trip(LimitKind::Args, tok.cur.len() as u64);
            return Err(Stop::Killed);
        }
        // Run every full batch now; keep a partial one until more input or EOF.
        loop {
            let per = if opts.replace.is_some() {
                1
            } else {
                opts.max_args.unwrap_or(usize::MAX)
            };
            let mut take = 0;
            let mut size = base_size;
            while take < pending.len() && take < per {
                let s = pending[take].len() + 1;
                if size + s > limit {
                    break;
                }
                size += s;
                take += 1;
            }
            if take == 0 && !pending.is_empty() {
                let need = base_size + pending[0].len() + 1;
                sh.ctx.run.trip(LimitKind::Args, need as u64);
                return Err(Stop::Killed);
            }
            let full = take == per || take < pending.len();
            if take == 0 || (!full && !eof) {
                break;
            }
            let batch: Vec<String> = pending.drain(..take).collect();
            let argv = match &opts.replace {
                Some(r) => base
                    .iter()
                    .map(|a| a.replace(r.as_str(), &batch[0]))
                    .collect(),
                None => base.iter().cloned().chain(batch).collect(),
            };
            sh.dispatch(argv, env.to_vec(), &child_io).await?;
            ran = true;
            worst = worst.max(xargs_status(sh.status));
        }
    }
    if !ran && !opts.no_run_if_empty && opts.replace.is_none() {
        sh.dispatch(base, env.to_vec(), &child_io).await?;
        worst = xargs_status(sh.status);
    }
    sh.status = worst;
    Ok(())
}

/// GNU xargs: 123 if any command failed with 1-125, else pass 126/127/255-ish through.
fn xargs_status(s: i32) -> i32 {
    match s {
        0 => 0,
        1..=125 => 123,
        126 | 127 => s,
        _ => 125,
    }
}

/// A job named by `%N`, `%%`/`%+`, or a process id.
fn job_pid(sh: &Shell, spec: &str) -> Option<u32> {
    match spec.strip_prefix('%') {
        Some("%" | "+" | "") => sh.jobs.list.last().map(|j| j.pid),
        Some(n) => n
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| sh.jobs.list.get(i))
            .map(|j| j.pid),
        None => spec.parse().ok(),
    }
}

/// `wait [%N|PID]...`: with no operand waits for every job (status 0),
/// else for each named one (the last one's status; 127 for one that is
/// not this shell's child).
async fn wait(sh: &mut Shell, args: &[String], io: &Stdio) -> Result<i32, Stop> {
    if args.is_empty() {
        sh.wait_jobs(None).await?;
        return Ok(0);
    }
    let mut status = 0;
    for a in args {
        let known = job_pid(sh, a).filter(|p| sh.jobs.list.iter().any(|j| j.pid == *p));
        status = match known {
            Some(pid) => sh.wait_jobs(Some(pid)).await?.unwrap_or(127),
            None => {
                let msg = if a.starts_with('%') {
                    format!("wait: {a}: no such job")
                } else {
                    format!("wait: pid {a} is not a child of this shell")
                };
                sh.complain(io, &msg).await;
                127
            }
        };
    }
    Ok(status)
}

/// Signal numbers `kill` knows by name.
fn signal_number(name: &str) -> Option<i32> {
    let name = name.strip_prefix("SIG").unwrap_or(name);
    if let Ok(n) = name.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    Some(match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "KILL" => 9,
        "USR1" => 10,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        _ => return None,
    })
}

/// `kill [-SIGNAL | -s SIGNAL] %N|PID...`: ends background jobs of this
/// shell (there are no other processes to signal); every signal ends the
/// job, whose status is then 128 + the signal's number.
async fn kill(sh: &mut Shell, args: &[String], io: &Stdio) -> i32 {
    let mut signal = 15;
    let mut rest = args;
    if let Some(first) = rest.first() {
        if first == "-s" || first == "-n" {
            match rest.get(1).and_then(|s| signal_number(s)) {
                Some(n) => signal = n,
                None => {
                    sh.complain(io, "kill: invalid signal specification").await;
                    return 1;
                }
            }
            rest = &rest[2..];
        } else if let Some(name) = first.strip_prefix('-').filter(|n| !n.is_empty()) {
            match signal_number(name) {
                Some(n) => signal = n,
                None => {
                    sh.complain(io, &format!("kill: {name}: invalid signal specification"))
                        .await;
                    return 1;
                }
            }
            rest = &rest[1..];
        }
    }
    if rest.is_empty() {
        sh.complain(
            io,
            "kill: usage: kill [-s sigspec | -sigspec] pid | jobspec ...",
        )
        .await;
        return 2;
    }
    let mut status = 0;
    for a in rest {
        let done = job_pid(sh, a).is_some_and(|pid| sh.kill_job(pid, signal));
        if !done {
            let msg = if a.starts_with('%') {
                format!("kill: {a}: no such job")
            } else {
                format!("kill: ({a}) - No such process")
            };
            sh.complain(io, &msg).await;
            status = 1;
        }
    }
    status
}

/// `chmod MODE FILE...`: files have no permission bits here; succeeds when
/// every file exists.
async fn chmod(sh: &mut Shell, args: &[String], io: &Stdio) -> i32 {
    let files: Vec<&String> = args
        .iter()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if args.is_empty() || files.is_empty() {
        sh.complain(io, "chmod: missing operand").await;
        return 1;
    }
    let mut status = 0;
    for f in files {
        if let Err(e) = sh.ctx.fs.metadata(&sh.cwd, f) {
            sh.complain(io, &format!("chmod: cannot access '{f}': {e}"))
                .await;
            status = 1;
        }
    }
    status
}

/// Reads a script's text: at most the largest script the parser accepts.
pub(crate) async fn read_script(sh: &Shell, path: &str) -> Result<String, String> {
    use tokio::io::AsyncReadExt;
    let file = sh
        .ctx
        .fs
        .open_read(&sh.cwd, path)
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    tokio::fs::File::from_std(file)
        .take(shell_syntax::MAX_SCRIPT_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .await
        .map_err(|e| e.to_string())?;
    String::from_utf8(out).map_err(|_| "cannot execute binary file".to_owned())
}

/// `sh`/`bash`: `-c STRING [NAME [ARG...]]`, `FILE [ARG...]`, or the script
/// on stdin; run by a new shell that sees only the exported variables, as
/// a child process would.
async fn run_sh(
    sh: &mut Shell,
    name: &str,
    args: &[String],
    env: &[(String, String)],
    io: &Stdio,
) -> Flow {
    let mut i = 0;
    let mut errexit = false;
    let mut command = None;
    while let Some(a) = args.get(i) {
        match a.as_str() {
            "-c" => command = Some(()),
            "-e" => errexit = true,
            "--" => {
                i += 1;
                break;
            }
            o if o.starts_with('-') && o.len() > 1 => {
                sh.complain(
                    io,
                    &format!("{name}: {o}: unsupported option (supported: -c, -e)"),
                )
                .await;
                sh.status = 2;
                return Ok(());
            }
            _ => break,
        }
        i += 1;
    }
    let rest = &args[i..];
    let (source, argv) = if command.is_some() {
        let Some(text) = rest.first() else {
            sh.complain(io, &format!("{name}: -c: option requires an argument"))
                .await;
            sh.status = 2;
            return Ok(());
        };
        let mut argv: Vec<String> = rest[1..].to_vec();
        if argv.is_empty() {
            argv.push(name.to_owned());
        }
        (text.clone(), argv)
    } else if let Some(file) = rest.first() {
        match read_script(sh, file).await {
            Ok(text) => (text, rest.to_vec()),
            Err(e) => {
                sh.complain(io, &format!("{file}: {e}")).await;
                // dash (`sh`) says it cannot open the file (2); bash
                // treats it as a command not found (127).
                sh.status = if name == "sh" { 2 } else { 127 };
                return Ok(());
            }
        }
    } else {
        match read_stdin_script(sh, io).await? {
            Some(text) => (text, vec![name.to_owned()]),
            None => {
                sh.status = 2;
                return Ok(());
            }
        }
    };
    sh.run_child_script(&source, argv, env, errexit, io).await
}

/// A script read from stdin (`... | sh`), bounded like any script.
async fn read_stdin_script(sh: &mut Shell, io: &Stdio) -> Result<Option<String>, Stop> {
    let mut out = Vec::new();
    if let Some(stdin) = &io.stdin {
        while let Some(chunk) = stdin.read_chunk(64 * 1024).await {
            out.extend_from_slice(&chunk);
            if out.len() > shell_syntax::MAX_SCRIPT_BYTES {
                sh.complain(io, "sh: script on stdin is too large").await;
                return Ok(None);
            }
        }
    }
    Ok(Some(String::from_utf8_lossy(&out).into_owned()))
}

/// `. FILE [ARG...]`: runs the file in this shell.
async fn source(sh: &mut Shell, args: &[String], io: &Stdio) -> Flow {
    let Some(file) = args.first() else {
        sh.complain(io, ".: filename argument required").await;
        sh.status = 2;
        return Ok(());
    };
    let text = match read_script(sh, file).await {
        Ok(t) => t,
        Err(e) => {
            sh.complain(io, &format!("{file}: {e}")).await;
            sh.status = 1;
            return Ok(());
        }
    };
    sh.source_script(&text, args, io).await
}

/// `sleep NUMBER[SUFFIX]...`: the sum of the operands (GNU's `s`, `m`, `h`,
/// `d` suffixes, fractions allowed).
fn sleep_for(args: &[String]) -> Result<std::time::Duration, String> {
    if args.is_empty() {
        return Err("missing operand".into());
    }
    let mut total = 0.0f64;
    for a in args {
        let (num, mult) = match a.as_bytes().last() {
            Some(b's') => (&a[..a.len() - 1], 1.0),
            Some(b'm') => (&a[..a.len() - 1], 60.0),
            Some(b'h') => (&a[..a.len() - 1], 3600.0),
            Some(b'd') => (&a[..a.len() - 1], 86400.0),
            _ => (a.as_str(), 1.0),
        };
        let valid = !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        match num.parse::<f64>() {
            Ok(v) if valid => total += v * mult,
            _ => return Err(format!("invalid time interval '{a}'")),
        }
    }
    if !total.is_finite() || total > 1e9 {
        return Err("sleeping that long is not supported".into());
    }
    Ok(std::time::Duration::from_secs_f64(total))
}

/// `break [N]` / `continue [N]`, as bash does them: outside a loop they
/// only complain (status 0); `N` beyond the loops there are means all of
/// them; `N` below 1 leaves every loop with status 1; a non-number ends
/// the shell (status 128), as for a special builtin's bad operand.
async fn loop_control(sh: &mut Shell, name: &str, args: &[String], io: &Stdio) -> Flow {
    if args.len() > 1 {
        sh.complain(io, &format!("{name}: too many arguments"))
            .await;
        return Err(Stop::Exit(1));
    }
    let n = match args.first() {
        None => 1,
        Some(a) => match a.trim().parse::<i64>() {
            Ok(n) => n,
            Err(_) => {
                sh.complain(io, &format!("{name}: {a}: numeric argument required"))
                    .await;
                return Err(Stop::Exit(128));
            }
        },
    };
    let depth = sh.loops.0;
    if depth == 0 {
        sh.complain(
            io,
            &format!("{name}: only meaningful in a `for', `while', or `until' loop"),
        )
        .await;
        sh.status = 0;
        return Ok(());
    }
    if n < 1 {
        sh.complain(io, &format!("{name}: {n}: loop count out of range"))
            .await;
        sh.status = 1;
        return Err(Stop::Break(depth));
    }
    let n = u32::try_from(n).unwrap_or(u32::MAX).min(depth);
    sh.status = 0;
    Err(if name == "break" {
        Stop::Break(n)
    } else {
        Stop::Continue(n)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xargs_tokenizer_handles_quotes_and_delims() {
        let mut t = Tokenizer::default();
        let mut out = Vec::new();
        t.feed(b"a 'b c' \"d\"\\ e\nf", None, &mut out);
        t.flush(&mut out);
        assert_eq!(out, ["a", "b c", "d e", "f"]);
        let mut t = Tokenizer::default();
        let mut out = Vec::new();
        t.feed(b"x y\0z\0", Some(0), &mut out);
        assert_eq!(out, ["x y", "z"]);
    }

    #[test]
    fn xargs_options() {
        let args: Vec<String> = ["-n", "2", "-r", "wc", "-l"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (o, cmd) = parse_xargs(&args).unwrap();
        assert_eq!(o.max_args, Some(2));
        assert!(o.no_run_if_empty);
        assert_eq!(cmd, ["wc", "-l"]);
        assert!(parse_xargs(&["-P4".to_string()]).is_err());
    }

    #[test]
    fn binary_tests() {
        assert_eq!(binary_test("-lt", "2", "10"), Ok(true));
        assert_eq!(binary_test("<", "10", "2"), Ok(true));
        assert!(binary_test("-eq", "x", "1").is_err());
    }

    #[test]
    fn sleep_operands_as_gnu() {
        let secs = |a: &[&str]| {
            sleep_for(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>()).map(|d| d.as_secs_f64())
        };
        assert_eq!(secs(&["1.5", "2m", ".5h"]), Ok(1.5 + 120.0 + 1800.0));
        assert!(secs(&[]).is_err());
        assert!(secs(&["x"]).is_err());
        assert!(secs(&["-1"]).is_err());
        assert!(secs(&["1e10"]).is_err());
    }

    #[test]
    fn echo_escape_sequences() {
        let mut out = Vec::new();
        assert!(!echo_escapes("a\\tb\\x41\\0101", &mut out));
        assert_eq!(out, b"a\tbAA");
        let mut out = Vec::new();
        assert!(echo_escapes("x\\cy", &mut out));
        assert_eq!(out, b"x");
    }
}
