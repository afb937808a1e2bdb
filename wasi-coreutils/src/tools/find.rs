//! `find`: walks the given paths (default `.`) without following symlinks,
//! in directory order as GNU find does (pipe through `sort` for a stable
//! order), evaluating an expression of: `-name -iname -path -ipath
//! -type [fdl] -size [+-]N[cwbkMG] -empty -newer FILE -mtime/-mmin [+-]N
//! -true -false -prune -print -print0 -delete`, operators `! -not -a -and
//! -o -or ( ) ,`, and the options `-maxdepth -mindepth -depth`.
//! `-exec`, `-execdir`, `-ok`, `-fprint*`, `-regex` and other primaries are
//! rejected with exit 2 (nothing can be executed inside wasm).

use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::io::{self, Write};
use std::path::Path;
use std::time::SystemTime;

use crate::common;
use crate::files::{glob, io_msg};

const TOOL: &str = "find";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Cmp {
    Less,
    Exactly,
    More,
}

#[derive(Debug)]
enum Node {
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Comma(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Name(String, bool),
    Path(String, bool),
    Type(char),
    Size(Cmp, u64, u64),
    Empty,
    Newer(SystemTime),
    Age(Cmp, i64, i64),
    Const(bool),
    Prune,
    Print,
    Print0,
    Delete,
}

#[derive(Default)]
struct Global {
    maxdepth: Option<usize>,
    mindepth: usize,
    depth_first: bool,
    has_action: bool,
}

struct Parser<'a> {
    toks: &'a [String],
    i: usize,
    g: Global,
    now: SystemTime,
}

fn numeric(arg: &str) -> Option<(Cmp, &str)> {
    Some(match arg.as_bytes().first()? {
        b'+' => (Cmp::More, &arg[1..]),
        b'-' => (Cmp::Less, &arg[1..]),
        _ => (Cmp::Exactly, arg),
    })
}

impl Parser<'_> {
    fn next(&mut self) -> Option<String> {
        let t = self.toks.get(self.i).cloned();
        self.i += 1;
        t
    }
    fn arg(&mut self, prim: &str) -> Result<String, String> {
        self.next()
            .ok_or_else(|| format!("missing argument to `{prim}'"))
    }
    fn peek(&self) -> Option<&str> {
        self.toks.get(self.i).map(String::as_str)
    }

    fn comma(&mut self) -> Result<Node, String> {
        let mut l = self.or()?;
        while self.peek() == Some(",") {
            self.i += 1;
            l = Node::Comma(Box::new(l), Box::new(self.or()?));
        }
        Ok(l)
    }
    fn or(&mut self) -> Result<Node, String> {
        let mut l = self.and()?;
        while matches!(self.peek(), Some("-o" | "-or")) {
            self.i += 1;
            l = Node::Or(Box::new(l), Box::new(self.and()?));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Node, String> {
        let mut l = self.not()?;
        loop {
            match self.peek() {
                Some("-a" | "-and") => {
                    self.i += 1;
                }
                Some("-o" | "-or" | ")" | ",") | None => return Ok(l),
                Some(_) => {}
            }
            l = Node::And(Box::new(l), Box::new(self.not()?));
        }
    }
    fn not(&mut self) -> Result<Node, String> {
        if matches!(self.peek(), Some("!" | "-not")) {
            self.i += 1;
            return Ok(Node::Not(Box::new(self.not()?)));
        }
        self.primary()
    }
    fn primary(&mut self) -> Result<Node, String> {
        let Some(t) = self.next() else {
            return Err("expected an expression".into());
        };
        Ok(match t.as_str() {
            "(" => {
                let e = self.comma()?;
                if self.next().as_deref() != Some(")") {
                    return Err("invalid expression; I was expecting to find a ')' somewhere but did not see one.".into());
                }
                e
            }
            "-name" | "-iname" => Node::Name(self.arg(&t)?, t == "-iname"),
            "-path" | "-ipath" | "-wholename" | "-iwholename" => {
                Node::Path(self.arg(&t)?, t.starts_with("-i"))
            }
            "-type" => {
                let a = self.arg(&t)?;
                match a.as_str() {
                    "f" | "d" | "l" => Node::Type(a.chars().next().unwrap_or('f')),
                    other => return Err(format!("-type {other} is not supported (only f, d, l)")),
                }
            }
            "-size" => {
                let a = self.arg(&t)?;
                let (cmp, rest) = numeric(&a).ok_or("invalid -size")?;
                let (digits, unit) = match rest.char_indices().last() {
                    Some((i, c)) if c.is_ascii_alphabetic() => (&rest[..i], c),
                    _ => (rest, 'b'),
                };
                let unit = match unit {
                    'c' => 1,
                    'w' => 2,
                    'b' => 512,
                    'k' => 1024,
                    'M' => 1024 * 1024,
                    'G' => 1024 * 1024 * 1024,
                    _ => return Err(format!("invalid -size '{a}'")),
                };
                let n: u64 = digits.parse().map_err(|_| format!("invalid -size '{a}'"))?;
                Node::Size(cmp, n, unit)
            }
            "-empty" => Node::Empty,
            "-newer" => {
                let f = self.arg(&t)?;
                let m = fs::metadata(&f)
                    .and_then(|m| m.modified())
                    .map_err(|e| format!("'{f}': {}", io_msg(&e)))?;
                Node::Newer(m)
            }
            "-mtime" | "-mmin" => {
                let a = self.arg(&t)?;
                let (cmp, rest) = numeric(&a).ok_or("invalid number")?;
                let n: i64 = rest
                    .parse()
                    .map_err(|_| format!("invalid argument '{a}' to '{t}'"))?;
                Node::Age(cmp, n, if t == "-mtime" { 86400 } else { 60 })
            }
            "-true" => Node::Const(true),
            "-false" => Node::Const(false),
            "-prune" => Node::Prune,
            "-print" => {
                self.g.has_action = true;
                Node::Print
            }
            "-print0" => {
                self.g.has_action = true;
                Node::Print0
            }
            "-delete" => {
                self.g.has_action = true;
                self.g.depth_first = true;
                Node::Delete
            }
            "-maxdepth" | "-mindepth" => {
                let a = self.arg(&t)?;
                let n: usize = a.parse().map_err(|_| {
                    format!("Expected a positive decimal integer argument to {t}, but got '{a}'")
                })?;
                if t == "-maxdepth" {
                    self.g.maxdepth = Some(n);
                } else {
                    self.g.mindepth = n;
                }
                Node::Const(true)
            }
            "-depth" => {
                self.g.depth_first = true;
                Node::Const(true)
            }
            "-exec" | "-execdir" | "-ok" | "-okdir" => {
                return Err(format!(
                    "{t} is not supported: commands cannot be executed inside wasm (use xargs in the pipeline)"
                ));
            }
            other => return Err(format!("unknown or unsupported predicate '{other}'")),
        })
    }
}

struct Walker<'a, W: Write> {
    expr: &'a Node,
    g: &'a Global,
    now: SystemTime,
    out: &'a mut W,
    status: i32,
}

impl<W: Write> Walker<'_, W> {
    fn eval(
        &mut self,
        n: &Node,
        path: &str,
        name: &str,
        m: &Metadata,
        prune: &mut bool,
    ) -> io::Result<bool> {
        Ok(match n {
            Node::And(a, b) => {
                self.eval(a, path, name, m, prune)? && self.eval(b, path, name, m, prune)?
            }
            Node::Or(a, b) => {
                self.eval(a, path, name, m, prune)? || self.eval(b, path, name, m, prune)?
            }
            Node::Comma(a, b) => {
                self.eval(a, path, name, m, prune)?;
                self.eval(b, path, name, m, prune)?
            }
            Node::Not(a) => !self.eval(a, path, name, m, prune)?,
            Node::Name(p, fold) => glob::matches(p, name, *fold),
            Node::Path(p, fold) => glob::matches(p, path, *fold),
            Node::Type(c) => match c {
                'd' => m.is_dir(),
                'l' => m.file_type().is_symlink(),
                _ => m.is_file(),
            },
            Node::Size(cmp, n, unit) => {
                let units = m.len().div_ceil(*unit);
                match cmp {
                    Cmp::Less => units < *n,
                    Cmp::Exactly => units == *n,
                    Cmp::More => units > *n,
                }
            }
            Node::Empty => {
                if m.is_dir() {
                    fs::read_dir(path)
                        .map(|mut d| d.next().is_none())
                        .unwrap_or(false)
                } else {
                    m.is_file() && m.len() == 0
                }
            }
            Node::Newer(t) => m.modified().map(|x| x > *t).unwrap_or(false),
            Node::Age(cmp, n, unit) => {
                let age = m
                    .modified()
                    .ok()
                    .and_then(|t| self.now.duration_since(t).ok())
                    .map_or(0, |d| d.as_secs() as i64);
                let units = age.div_euclid(*unit);
                match cmp {
                    Cmp::Less => units < *n,
                    Cmp::Exactly => units == *n,
                    Cmp::More => units > *n,
                }
            }
            Node::Const(b) => *b,
            Node::Prune => {
                *prune = true;
                true
            }
            Node::Print => {
                self.out.write_all(path.as_bytes())?;
                self.out.write_all(b"\n")?;
                true
            }
            Node::Print0 => {
                self.out.write_all(path.as_bytes())?;
                self.out.write_all(b"\0")?;
                true
            }
            Node::Delete => {
                let r = if m.is_dir() {
                    fs::remove_dir(path)
                } else {
                    fs::remove_file(path)
                };
                match r {
                    Ok(()) => true,
                    Err(e) => {
                        self.out.flush()?;
                        eprintln!("{TOOL}: cannot delete '{path}': {}", io_msg(&e));
                        self.status = 1;
                        false
                    }
                }
            }
        })
    }

    fn visit(&mut self, path: &str, name: &str, depth: usize) -> io::Result<()> {
        let m = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) => {
                self.out.flush()?;
                eprintln!("{TOOL}: '{path}': {}", io_msg(&e));
                self.status = 1;
                return Ok(());
            }
        };
        let in_range = depth >= self.g.mindepth;
        let mut prune = false;
        if in_range && !self.g.depth_first {
            let expr = self.expr;
            self.eval(expr, path, name, &m, &mut prune)?;
        }
        let descend = m.is_dir() && !prune && self.g.maxdepth.is_none_or(|d| depth < d);
        if descend {
            match fs::read_dir(path) {
                Ok(rd) => {
                    for ent in rd {
                        let ent = match ent {
                            Ok(e) => e,
                            Err(e) => {
                                eprintln!("{TOOL}: '{path}': {}", io_msg(&e));
                                self.status = 1;
                                continue;
                            }
                        };
                        let child_name = ent.file_name().to_string_lossy().into_owned();
                        let child = if path.ends_with('/') {
                            format!("{path}{child_name}")
                        } else {
                            format!("{path}/{child_name}")
                        };
                        self.visit(&child, &child_name, depth + 1)?;
                    }
                }
                Err(e) => {
                    self.out.flush()?;
                    eprintln!("{TOOL}: '{path}': {}", io_msg(&e));
                    self.status = 1;
                }
            }
        }
        if in_range && self.g.depth_first {
            let expr = self.expr;
            self.eval(expr, path, name, &m, &mut prune)?;
        }
        Ok(())
    }
}

pub fn main(args: Vec<OsString>) -> i32 {
    let words: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let first_expr = words
        .iter()
        .position(|w| (w.starts_with('-') && w.len() > 1) || w == "!" || w == "(" || w == ",")
        .unwrap_or(words.len());
    let mut roots: Vec<String> = words[..first_expr].to_vec();
    if roots.is_empty() {
        roots.push(".".into());
    }
    let toks = &words[first_expr..];
    let now = SystemTime::now();
    let mut p = Parser {
        toks,
        i: 0,
        g: Global::default(),
        now,
    };
    let expr = if toks.is_empty() {
        Node::Const(true)
    } else {
        match p.comma() {
            Ok(e) if p.i >= toks.len() => e,
            Ok(_) => {
                return common::usage_error(
                    TOOL,
                    format!("paths must precede expression: '{}'", toks[p.i - 1]),
                );
            }
            Err(e) => return common::usage_error(TOOL, e),
        }
    };
    let expr = if p.g.has_action {
        expr
    } else {
        Node::And(Box::new(expr), Box::new(Node::Print))
    };
    let g = p.g;
    let mut out = common::stdout();
    let mut w = Walker {
        expr: &expr,
        g: &g,
        now: p.now,
        out: &mut out,
        status: 0,
    };
    for r in &roots {
        let name = Path::new(r)
            .file_name()
            .map_or_else(|| r.clone(), |n| n.to_string_lossy().into_owned());
        if let Err(e) = w.visit(r, &name, 0) {
            if common::is_broken_pipe(&e) {
                return 0;
            }
            eprintln!("{TOOL}: write error: {}", io_msg(&e));
            return 1;
        }
    }
    let status = w.status;
    match common::finish(&mut out) {
        Ok(()) => status,
        Err(e) => {
            eprintln!("{TOOL}: write error: {}", io_msg(&e));
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Result<(Node, Global), String> {
        let toks: Vec<String> = words.iter().map(|s| s.to_string()).collect();
        let mut p = Parser {
            toks: &toks,
            i: 0,
            g: Global::default(),
            now: SystemTime::now(),
        };
        let e = p.comma()?;
        Ok((e, p.g))
    }

    #[test]
    fn parses_operators_and_options() {
        let (e, g) = parse(&[
            "-maxdepth",
            "2",
            "-name",
            "*.c",
            "-o",
            "!",
            "-type",
            "d",
            "-print0",
        ])
        .unwrap();
        assert!(matches!(e, Node::Or(..)));
        assert_eq!(g.maxdepth, Some(2));
        assert!(g.has_action);
        assert!(parse(&["-exec", "rm", "{}", ";"]).is_err());
        assert!(parse(&["(", "-name", "x"]).is_err());
        assert!(parse(&["-size", "+3q"]).is_err());
    }
}
