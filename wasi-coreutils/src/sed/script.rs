//! Parser for sed scripts (GNU sed syntax) into a flat command list where
//! blocks are jumps and labels are resolved to indices.
//!
//! Guarantees: never panics on any input (proptest); errors carry GNU's
//! wording and the exit status GNU uses (1), except constructs we cannot
//! run, which are [`ScriptError::Unsupported`] (exit 2).

use std::rc::Rc;

use super::posix_re::{Dialect, PosixRegex, ReError};

/// Why a script was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// Malformed script; GNU exits 1.
    #[error("-e expression #1, char {pos}: {msg}")]
    Syntax { pos: usize, msg: String },
    /// Valid GNU sed we do not implement; exit 2.
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl ScriptError {
    /// The process exit status for this error.
    pub fn status(&self) -> i32 {
        match self {
            ScriptError::Syntax { .. } => 1,
            ScriptError::Unsupported(_) => 2,
        }
    }
}

/// A single address.
#[derive(Debug, Clone)]
pub enum Addr {
    Line(u64),
    Last,
    /// None: the last regex used.
    Regex(Option<Rc<PosixRegex>>),
    Step(u64, u64),
    /// `0` in `0,/re/`.
    Zero,
}

/// The end of a range.
#[derive(Debug, Clone)]
pub enum Addr2 {
    Addr(Addr),
    Plus(u64),
    Tilde(u64),
}

/// One piece of an `s` replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repl {
    Lit(Vec<u8>),
    Group(usize),
    Upper,
    Lower,
    OneUpper,
    OneLower,
    EndCase,
}

#[derive(Debug, Clone)]
pub struct Subst {
    pub re: Option<Rc<PosixRegex>>,
    pub repl: Vec<Repl>,
    pub global: bool,
    /// Replace starting from the Nth match (1 = first).
    pub nth: usize,
    pub print: usize,
    pub write: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub enum Kind {
    /// `{`: index of the matching `}`.
    Block(usize),
    EndBlock,
    Subst(Box<Subst>),
    Translate(Box<[u8; 256]>),
    Print,
    PrintFirst,
    Delete,
    DeleteFirst,
    Next,
    NextAppend,
    Hold,
    HoldAppend,
    Get,
    GetAppend,
    Exchange,
    Quit(i32),
    QuitSilent(i32),
    LineNumber,
    List(Option<usize>),
    Append(Vec<u8>),
    Insert(Vec<u8>),
    Change(Vec<u8>),
    /// Branch target: None means end of script.
    Branch(Option<usize>),
    BranchIfSub(Option<usize>),
    BranchUnlessSub(Option<usize>),
    Label,
    Write(Vec<u8>),
    ReadFile(Vec<u8>),
    Zap,
    FileName,
}

#[derive(Debug, Clone)]
pub struct Cmd {
    pub a1: Option<Addr>,
    pub a2: Option<Addr2>,
    pub negate: bool,
    pub kind: Kind,
}

/// A parsed script.
#[derive(Debug)]
pub struct Script {
    pub cmds: Vec<Cmd>,
    /// `#n` on the first line.
    pub quiet: bool,
}

struct P<'a> {
    s: &'a [u8],
    i: usize,
    dialect: Dialect,
}

/// Parses `src` (all `-e`/`-f` pieces joined by newlines).
pub fn parse(src: &[u8], extended: bool) -> Result<Script, ScriptError> {
    let mut p = P {
        s: src,
        i: 0,
        dialect: if extended { Dialect::Ere } else { Dialect::Bre },
    };
    let quiet = src.starts_with(b"#n\n") || src == b"#n";
    let mut cmds: Vec<Cmd> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let mut labels: Vec<(Vec<u8>, usize)> = Vec::new();
    let mut branches: Vec<(usize, Vec<u8>)> = Vec::new();
    loop {
        p.skip_ws_and(b";\n");
        if p.i >= p.s.len() {
            break;
        }
        if p.peek() == Some(b'#') {
            p.skip_line();
            continue;
        }
        let a1 = p.address()?;
        let mut a2 = None;
        if a1.is_some() {
            p.skip_blanks();
            if p.peek() == Some(b',') {
                p.i += 1;
                p.skip_blanks();
                a2 = Some(match p.peek() {
                    Some(b'+') => {
                        p.i += 1;
                        Addr2::Plus(p.number().ok_or_else(|| p.err("expected number after +"))?)
                    }
                    Some(b'~') => {
                        p.i += 1;
                        Addr2::Tilde(p.number().ok_or_else(|| p.err("expected number after ~"))?)
                    }
                    _ => match p.address()? {
                        Some(Addr::Zero) => return Err(p.err("invalid usage of line address 0")),
                        Some(a) => Addr2::Addr(a),
                        None => return Err(p.err("unexpected `,'")),
                    },
                });
            }
        }
        if matches!(a1, Some(Addr::Zero)) && !matches!(a2, Some(Addr2::Addr(Addr::Regex(_)))) {
            return Err(p.err("invalid usage of line address 0"));
        }
        p.skip_blanks();
        let mut negate = false;
        while p.peek() == Some(b'!') {
            negate = true;
            p.i += 1;
            p.skip_blanks();
        }
        let Some(c) = p.peek() else {
            return Err(p.err("missing command"));
        };
        p.i += 1;
        let has_addr = a1.is_some();
        let kind = match c {
            b'{' => {
                open.push(cmds.len());
                Kind::Block(0)
            }
            b'}' => {
                if has_addr {
                    return Err(p.err("} doesn't want any addresses"));
                }
                let Some(o) = open.pop() else {
                    return Err(p.err("unexpected `}'"));
                };
                let here = cmds.len();
                cmds[o].kind = Kind::Block(here);
                Kind::EndBlock
            }
            b's' => Kind::Subst(Box::new(p.subst()?)),
            b'y' => Kind::Translate(p.translate()?),
            b'p' => Kind::Print,
            b'P' => Kind::PrintFirst,
            b'd' => Kind::Delete,
            b'D' => Kind::DeleteFirst,
            b'n' => Kind::Next,
            b'N' => Kind::NextAppend,
            b'h' => Kind::Hold,
            b'H' => Kind::HoldAppend,
            b'g' => Kind::Get,
            b'G' => Kind::GetAppend,
            b'x' => Kind::Exchange,
            b'z' => Kind::Zap,
            b'F' => Kind::FileName,
            b'=' => Kind::LineNumber,
            b'q' | b'Q' => {
                if a2.is_some() {
                    return Err(p.err("command only uses one address"));
                }
                p.skip_blanks();
                let code = p.number().unwrap_or(0).min(i32::MAX as u64) as i32;
                if c == b'q' {
                    Kind::Quit(code)
                } else {
                    Kind::QuitSilent(code)
                }
            }
            b'l' => {
                p.skip_blanks();
                Kind::List(p.number().map(|n| n as usize))
            }
            b'a' | b'i' | b'c' => {
                let text = p.text()?;
                match c {
                    b'a' => Kind::Append(text),
                    b'i' => Kind::Insert(text),
                    _ => Kind::Change(text),
                }
            }
            b':' => {
                if has_addr {
                    return Err(p.err(": doesn't want any addresses"));
                }
                let l = p.label();
                if l.is_empty() {
                    return Err(p.err("\":\" lacks a label"));
                }
                labels.push((l, cmds.len()));
                Kind::Label
            }
            b'b' | b't' | b'T' => {
                let l = p.label();
                if !l.is_empty() {
                    branches.push((cmds.len(), l));
                }
                match c {
                    b'b' => Kind::Branch(None),
                    b't' => Kind::BranchIfSub(None),
                    _ => Kind::BranchUnlessSub(None),
                }
            }
            b'w' => Kind::Write(p.filename()?),
            b'r' => Kind::ReadFile(p.filename()?),
            b'e' | b'R' | b'W' | b'v' | b'L' => {
                return Err(ScriptError::Unsupported(format!(
                    "the `{}' command",
                    c as char
                )));
            }
            other => return Err(p.err(&format!("unknown command: `{}'", other.escape_ascii()))),
        };
        cmds.push(Cmd {
            a1,
            a2,
            negate,
            kind,
        });
        // After a command: blanks, then `;`, newline, `}` or `#`.
        p.skip_blanks();
        match p.peek() {
            None | Some(b';' | b'\n' | b'}' | b'#') => {}
            Some(_) if matches!(cmds.last().map(|c| &c.kind), Some(Kind::Block(_))) => {}
            Some(other) => {
                return Err(p.err(&format!(
                    "extra characters after command ({})",
                    other.escape_ascii()
                )));
            }
        }
    }
    if !open.is_empty() {
        return Err(ScriptError::Syntax {
            pos: 0,
            msg: "unmatched `{'".into(),
        });
    }
    for (ci, l) in branches {
        let Some(&(_, target)) = labels.iter().find(|(n, _)| *n == l) else {
            return Err(ScriptError::Syntax {
                pos: 0,
                msg: format!(
                    "can't find label for jump to `{}'",
                    String::from_utf8_lossy(&l)
                ),
            });
        };
        match &mut cmds[ci].kind {
            Kind::Branch(t) | Kind::BranchIfSub(t) | Kind::BranchUnlessSub(t) => *t = Some(target),
            _ => {}
        }
    }
    Ok(Script { cmds, quiet })
}

fn re_err(e: ReError) -> ScriptError {
    match e {
        ReError::Unsupported(m) => ScriptError::Unsupported(m),
        ReError::Syntax(m) => ScriptError::Syntax { pos: 0, msg: m },
    }
}

impl P<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn err(&self, msg: &str) -> ScriptError {
        ScriptError::Syntax {
            pos: self.i,
            msg: msg.to_string(),
        }
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn skip_ws_and(&mut self, extra: &[u8]) {
        while let Some(c) = self.peek() {
            if c == b' ' || c == b'\t' || extra.contains(&c) {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.peek() {
            self.i += 1;
            if c == b'\n' {
                break;
            }
        }
    }

    fn number(&mut self) -> Option<u64> {
        let st = self.i;
        let mut v: u64 = 0;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            v = v.saturating_mul(10).saturating_add(u64::from(c - b'0'));
            self.i += 1;
        }
        (self.i > st).then_some(v)
    }

    fn address(&mut self) -> Result<Option<Addr>, ScriptError> {
        match self.peek() {
            Some(b'0'..=b'9') => {
                let n = self.number().unwrap_or(0);
                if self.peek() == Some(b'~') {
                    self.i += 1;
                    let step = self.number().unwrap_or(0);
                    return Ok(Some(Addr::Step(n, step)));
                }
                Ok(Some(if n == 0 { Addr::Zero } else { Addr::Line(n) }))
            }
            Some(b'$') => {
                self.i += 1;
                Ok(Some(Addr::Last))
            }
            Some(b'/') | Some(b'\\') => {
                let delim = if self.peek() == Some(b'\\') {
                    self.i += 1;
                    match self.peek() {
                        Some(d) if d != b'\n' && d != b'\\' => d,
                        _ => return Err(self.err("unexpected end of address")),
                    }
                } else {
                    b'/'
                };
                self.i += 1;
                let pat = self
                    .delimited(delim, true)
                    .ok_or_else(|| self.err("unterminated address regex"))?;
                let mut icase = false;
                let mut multiline = false;
                while let Some(f) = self.peek() {
                    match f {
                        b'I' => icase = true,
                        b'M' => multiline = true,
                        _ => break,
                    }
                    self.i += 1;
                }
                Ok(Some(Addr::Regex(self.compile(&pat, icase, multiline)?)))
            }
            _ => Ok(None),
        }
    }

    fn compile(
        &self,
        pat: &[u8],
        icase: bool,
        multiline: bool,
    ) -> Result<Option<Rc<PosixRegex>>, ScriptError> {
        if pat.is_empty() {
            return Ok(None);
        }
        let re = PosixRegex::with_flags(pat, self.dialect, icase, multiline).map_err(re_err)?;
        Ok(Some(Rc::new(re)))
    }

    /// Text up to an unescaped `delim`; `\delim` becomes `delim`, `\n` in a
    /// regex stays for the regex translator, other escapes are kept.
    fn delimited(&mut self, delim: u8, is_regex: bool) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let mut in_bracket = false;
        loop {
            let c = self.peek()?;
            self.i += 1;
            if is_regex && in_bracket {
                out.push(c);
                if c == b']' && !matches!(out.len(), 0) {
                    in_bracket = false;
                }
                if c == b'\n' {
                    // Newline inside brackets is fine in sed; keep scanning.
                }
                continue;
            }
            if c == delim {
                return Some(out);
            }
            if c == b'\\' {
                let n = self.peek()?;
                self.i += 1;
                if n == delim {
                    out.push(delim);
                } else if n == b'\n' {
                    out.push(b'\n');
                } else {
                    out.push(b'\\');
                    out.push(n);
                }
                continue;
            }
            if c == b'\n' && is_regex {
                return None;
            }
            if is_regex && c == b'[' {
                in_bracket = true;
                out.push(c);
                // `[]...]` and `[^]...]`: the first `]` is literal.
                if self.peek() == Some(b'^') {
                    out.push(b'^');
                    self.i += 1;
                }
                if self.peek() == Some(b']') {
                    out.push(b']');
                    self.i += 1;
                }
                continue;
            }
            out.push(c);
        }
    }

    fn subst(&mut self) -> Result<Subst, ScriptError> {
        let delim = match self.peek() {
            Some(d) if d != b'\n' && d != b'\\' => d,
            _ => return Err(self.err("unterminated `s' command")),
        };
        self.i += 1;
        let pat = self
            .delimited(delim, true)
            .ok_or_else(|| self.err("unterminated `s' command"))?;
        let raw = self
            .replacement(delim)
            .ok_or_else(|| self.err("unterminated `s' command"))?;
        let mut s = Subst {
            re: None,
            repl: raw,
            global: false,
            nth: 1,
            print: 0,
            write: None,
        };
        let mut icase = false;
        let mut multiline = false;
        let mut seen_n = false;
        loop {
            match self.peek() {
                Some(b'g') => s.global = true,
                Some(b'p') => s.print += 1,
                Some(b'i' | b'I') => icase = true,
                Some(b'0'..=b'9') => {
                    if seen_n {
                        return Err(self.err("multiple number options to `s' command"));
                    }
                    let n = self.number().unwrap_or(0);
                    if n == 0 {
                        return Err(self.err("number option to `s' command may not be zero"));
                    }
                    s.nth = n.min(usize::MAX as u64) as usize;
                    seen_n = true;
                    continue;
                }
                Some(b'w') => {
                    self.i += 1;
                    s.write = Some(self.filename()?);
                    break;
                }
                Some(b'm' | b'M') => multiline = true,
                Some(b'e') => return Err(ScriptError::Unsupported("the e flag of `s'".into())),
                _ => break,
            }
            self.i += 1;
        }
        s.re = self.compile(&pat, icase, multiline)?;
        let max_group = s
            .repl
            .iter()
            .filter_map(|r| {
                if let Repl::Group(n) = r {
                    Some(*n)
                } else {
                    None
                }
            })
            .max()
            .unwrap_or(0);
        if let Some(re) = &s.re
            && max_group > re.groups()
        {
            return Err(self.err(&format!(
                "invalid reference \\{max_group} on `s' command's RHS"
            )));
        }
        Ok(s)
    }

    fn replacement(&mut self, delim: u8) -> Option<Vec<Repl>> {
        let mut parts = Vec::new();
        let mut lit = Vec::new();
        let flush = |lit: &mut Vec<u8>, parts: &mut Vec<Repl>| {
            if !lit.is_empty() {
                parts.push(Repl::Lit(std::mem::take(lit)));
            }
        };
        loop {
            let c = self.peek()?;
            self.i += 1;
            if c == delim {
                flush(&mut lit, &mut parts);
                return Some(parts);
            }
            match c {
                b'&' => {
                    flush(&mut lit, &mut parts);
                    parts.push(Repl::Group(0));
                }
                b'\\' => {
                    let n = self.peek()?;
                    self.i += 1;
                    let special = match n {
                        b'0'..=b'9' => Some(Repl::Group(usize::from(n - b'0'))),
                        b'U' => Some(Repl::Upper),
                        b'L' => Some(Repl::Lower),
                        b'u' => Some(Repl::OneUpper),
                        b'l' => Some(Repl::OneLower),
                        b'E' => Some(Repl::EndCase),
                        _ => None,
                    };
                    if let Some(sp) = special {
                        flush(&mut lit, &mut parts);
                        parts.push(sp);
                        continue;
                    }
                    if n == delim {
                        lit.push(n);
                        continue;
                    }
                    match n {
                        b'n' => lit.push(b'\n'),
                        b't' => lit.push(b'\t'),
                        b'r' => lit.push(b'\r'),
                        b'a' => lit.push(7),
                        b'f' => lit.push(12),
                        b'v' => lit.push(11),
                        other => lit.push(other),
                    }
                }
                b'\n' => lit.push(b'\n'),
                other => lit.push(other),
            }
        }
    }

    fn translate(&mut self) -> Result<Box<[u8; 256]>, ScriptError> {
        let delim = match self.peek() {
            Some(d) if d != b'\n' && d != b'\\' => d,
            _ => return Err(self.err("unterminated `y' command")),
        };
        self.i += 1;
        let a = self.y_part(delim)?;
        let b = self.y_part(delim)?;
        if a.len() != b.len() {
            return Err(self.err("strings for `y' command are different lengths"));
        }
        let mut map = Box::new([0u8; 256]);
        for (i, m) in map.iter_mut().enumerate() {
            *m = i as u8;
        }
        for (x, y) in a.iter().zip(b.iter()) {
            map[usize::from(*x)] = *y;
        }
        Ok(map)
    }

    fn y_part(&mut self, delim: u8) -> Result<Vec<u8>, ScriptError> {
        let mut out = Vec::new();
        loop {
            let c = self
                .peek()
                .ok_or_else(|| self.err("unterminated `y' command"))?;
            self.i += 1;
            if c == delim {
                return Ok(out);
            }
            if c == b'\\' {
                let n = self
                    .peek()
                    .ok_or_else(|| self.err("unterminated `y' command"))?;
                self.i += 1;
                match n {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'\\' => out.push(b'\\'),
                    d if d == delim => out.push(d),
                    _ => return Err(self.err("unknown option to `y'")),
                }
                continue;
            }
            out.push(c);
        }
    }

    /// Text of `a`, `i`, `c` (GNU one-liner and classic `\`-newline
    /// forms), including its final newline; empty after a lone `a\`.
    fn text(&mut self) -> Result<Vec<u8>, ScriptError> {
        self.skip_blanks();
        let mut backslash = false;
        if self.peek() == Some(b'\\') {
            backslash = true;
            self.i += 1;
            if self.peek() == Some(b'\n') {
                self.i += 1;
            }
        }
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'\\' => match self.peek() {
                    Some(n) => {
                        self.i += 1;
                        out.push(n);
                    }
                    None => break,
                },
                b'\n' => break,
                other => out.push(other),
            }
        }
        if out.is_empty() {
            if !backslash {
                return Err(self.err("expected \\ after `a', `c' or `i'"));
            }
            return Ok(out);
        }
        out.push(b'\n');
        Ok(out)
    }

    fn label(&mut self) -> Vec<u8> {
        self.skip_blanks();
        let st = self.i;
        while let Some(c) = self.peek() {
            if c == b'\n' || c == b';' {
                break;
            }
            self.i += 1;
        }
        let mut l = self.s[st..self.i].to_vec();
        while l.last().is_some_and(|c| *c == b' ' || *c == b'\t') {
            l.pop();
        }
        l
    }

    fn filename(&mut self) -> Result<Vec<u8>, ScriptError> {
        self.skip_blanks();
        let st = self.i;
        while let Some(c) = self.peek() {
            if c == b'\n' {
                break;
            }
            self.i += 1;
        }
        let f = self.s[st..self.i].to_vec();
        if f.is_empty() {
            return Err(self.err("missing filename in r/R/w/W commands"));
        }
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_scripts() {
        for s in [
            "s/a/b/g",
            "1d;$d",
            "/x/,/y/{s/a/b/;p}",
            ":a;N;$!ba;s/\\n/ /g",
            "$!N;P;D",
            "1~2p",
            "0,/re/s//X/",
            "/a/,+2d",
            "y/abc/xyz/",
            "a\\\nfoo",
            "2i hello",
            "s|/usr|/opt|w out.txt",
            "s/\\(a\\)\\(b\\)/\\2\\1/",
        ] {
            parse(s.as_bytes(), false).unwrap_or_else(|e| panic!("{s}: {e}"));
        }
    }

    #[test]
    fn errors_have_gnu_statuses() {
        assert_eq!(parse(b"s/a/", false).unwrap_err().status(), 1);
        assert_eq!(parse(b"k", false).unwrap_err().status(), 1);
        assert_eq!(parse(b"s/\\(a\\)\\1/x/", false).unwrap_err().status(), 2);
        assert_eq!(parse(b"s/a/\\1/", false).unwrap_err().status(), 1);
        assert_eq!(parse(b"b nowhere", false).unwrap_err().status(), 1);
        assert_eq!(parse(b"e ls", false).unwrap_err().status(), 2);
    }

    #[test]
    fn replacement_parts() {
        let s = parse(b"s/x/[&]\\n\\U\\1/", true);
        assert!(s.is_err(), "\\1 without a group");
        let s = parse(b"s/(x)/[&]\\n\\U\\1/", true).unwrap();
        let Kind::Subst(sub) = &s.cmds[0].kind else {
            panic!("not s")
        };
        assert_eq!(
            sub.repl,
            [
                Repl::Lit(b"[".to_vec()),
                Repl::Group(0),
                Repl::Lit(b"]\n".to_vec()),
                Repl::Upper,
                Repl::Group(1)
            ]
        );
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..60)) {
            let _ = parse(&b, false);
            let _ = parse(&b, true);
        }

        #[test]
        fn parser_never_panics_sedlike(s in "[0-9$/,!{};:a-zA-Z\\\\ \n~+.*^]{0,40}") {
            let _ = parse(s.as_bytes(), false);
        }
    }
}
