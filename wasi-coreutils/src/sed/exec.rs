//! The sed stream editor: runs a parsed [`Script`] over input files with
//! GNU sed's cycle semantics (auto-print, hold space, append queue,
//! ranges, `$` lookahead, missing final newline preserved).
//!
//! Guarantees: reads only the named files (or stdin) and writes only
//! stdout, files named by `w`, and with `-i` the edited files (via a
//! temporary file in the same directory, renamed over the original).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::rc::Rc;

use super::posix_re::PosixRegex;
use super::script::{Addr, Addr2, Cmd, Kind, Repl, Script, Subst};

/// Run-time options.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub quiet: bool,
    pub separate: bool,
    pub in_place: Option<Vec<u8>>,
    pub null_data: bool,
    pub line_wrap: usize,
}

/// A failure while running.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("no previous regular expression")]
    NoPreviousRegex,
    #[error("{0}")]
    Other(String),
}

/// An output stream that remembers a missing final newline (GNU adds it
/// before anything else is written to the same stream).
struct Out {
    w: Box<dyn Write>,
    missing_newline: bool,
}

impl Out {
    /// Writes text that carries its own line ending (a/i/c text).
    fn write_raw(&mut self, data: &[u8], sep: u8) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        if self.missing_newline {
            self.w.write_all(&[sep])?;
            self.missing_newline = false;
        }
        self.w.write_all(data)
    }

    fn write_line(&mut self, data: &[u8], sep: u8, newline: bool) -> io::Result<()> {
        if self.missing_newline {
            self.w.write_all(&[sep])?;
            self.missing_newline = false;
        }
        self.w.write_all(data)?;
        if newline {
            self.w.write_all(&[sep])
        } else {
            self.missing_newline = true;
            Ok(())
        }
    }
}

struct Input {
    files: Vec<Vec<u8>>,
    next_file: usize,
    reader: Option<Box<dyn BufRead>>,
    /// The next line (lookahead) and whether it ended with the separator.
    peeked: Option<(Vec<u8>, bool)>,
    current_name: Vec<u8>,
    peeked_name: Vec<u8>,
    sep: u8,
    /// Stop at file boundaries (`-s`, `-i`).
    separate: bool,
    had_error: bool,
}

impl Input {
    fn open_next(&mut self) -> bool {
        while self.next_file < self.files.len() {
            let name = self.files[self.next_file].clone();
            self.next_file += 1;
            if name == b"-" {
                self.reader = Some(Box::new(BufReader::with_capacity(64 * 1024, io::stdin())));
                self.peeked_name = name;
                return true;
            }
            match File::open(bytes_path(&name)) {
                Ok(f) => {
                    if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
                        eprintln!(
                            "sed: couldn't edit {}: not a regular file",
                            String::from_utf8_lossy(&name)
                        );
                        self.had_error = true;
                        continue;
                    }
                    self.reader = Some(Box::new(BufReader::with_capacity(64 * 1024, f)));
                    self.peeked_name = name;
                    return true;
                }
                Err(e) => {
                    eprintln!(
                        "sed: can't read {}: {}",
                        String::from_utf8_lossy(&name),
                        io_msg(&e)
                    );
                    self.had_error = true;
                }
            }
        }
        false
    }

    /// Fills the lookahead; with `separate`, does not cross into the next file.
    fn fill(&mut self, cross_files: bool) -> io::Result<()> {
        if self.peeked.is_some() {
            return Ok(());
        }
        loop {
            if self.reader.is_none() && (!cross_files || !self.open_next()) {
                return Ok(());
            }
            let Some(r) = self.reader.as_mut() else {
                return Ok(());
            };
            let mut line = Vec::new();
            let n = r.read_until(self.sep, &mut line)?;
            if n == 0 {
                self.reader = None;
                if !cross_files {
                    return Ok(());
                }
                continue;
            }
            let nl = line.last() == Some(&self.sep);
            if nl {
                line.pop();
            }
            self.peeked = Some((line, nl));
            return Ok(());
        }
    }

    /// The next line, and whether it is the first of a new file in
    /// `separate` mode (where line numbers restart).
    fn next_line(&mut self) -> io::Result<Option<(Vec<u8>, bool, bool)>> {
        self.fill(!self.separate)?;
        let mut new_file = false;
        if self.peeked.is_none() && self.separate {
            self.reader = None;
            self.fill(true)?;
            new_file = true;
        }
        let r = self.peeked.take();
        if r.is_some() {
            self.current_name = self.peeked_name.clone();
        }
        Ok(r.map(|(l, nl)| (l, nl, new_file)))
    }

    fn is_last(&mut self) -> io::Result<bool> {
        self.fill(!self.separate)?;
        Ok(self.peeked.is_none())
    }
}

#[derive(Clone, Copy, Default)]
struct RangeState {
    active: bool,
    end_line: u64,
}

/// The editor state for one run.
pub struct Sed<'s> {
    script: &'s Script,
    opts: Options,
    sep: u8,
    ps: Vec<u8>,
    hs: Vec<u8>,
    line: u64,
    last_re: Option<Rc<PosixRegex>>,
    tflag: bool,
    ranges: Vec<RangeState>,
    append_queue: Vec<Appended>,
    out: Out,
    wfiles: HashMap<Vec<u8>, Out>,
    quit: Option<i32>,
    input: Input,
    newline: bool,
    locs: Vec<Option<(usize, usize)>>,
}

enum Appended {
    Text(Vec<u8>),
    File(Vec<u8>),
}

enum Step {
    Continue,
    /// End the cycle; auto-print unless suppressed.
    EndCycle {
        print: bool,
    },
    /// `D` with a newline: restart without reading.
    Restart,
    Quit {
        print: bool,
        code: i32,
    },
}

impl<'s> Sed<'s> {
    pub fn new(
        script: &'s Script,
        opts: Options,
        files: Vec<Vec<u8>>,
        out: Box<dyn Write>,
    ) -> Result<Self, ExecError> {
        let sep = if opts.null_data { 0 } else { b'\n' };
        let files = if files.is_empty() {
            vec![b"-".to_vec()]
        } else {
            files
        };
        let mut wfiles = HashMap::new();
        // GNU creates every `w` file before reading input.
        for c in &script.cmds {
            let name = match &c.kind {
                Kind::Write(f) => Some(f),
                Kind::Subst(s) => s.write.as_ref(),
                _ => None,
            };
            if let Some(f) = name
                && f != b"/dev/stdout"
                && f != b"/dev/stderr"
                && !wfiles.contains_key(f)
            {
                let file = File::create(bytes_path(f)).map_err(|e| {
                    ExecError::Other(format!(
                        "couldn't open file {}: {}",
                        String::from_utf8_lossy(f),
                        io_msg(&e)
                    ))
                })?;
                wfiles.insert(
                    f.clone(),
                    Out {
                        w: Box::new(io::BufWriter::new(file)),
                        missing_newline: false,
                    },
                );
            }
        }
        let separate = opts.separate || opts.in_place.is_some();
        Ok(Sed {
            script,
            sep,
            ps: Vec::new(),
            hs: Vec::new(),
            line: 0,
            last_re: None,
            tflag: false,
            ranges: vec![RangeState::default(); script.cmds.len()],
            append_queue: Vec::new(),
            out: Out {
                w: out,
                missing_newline: false,
            },
            wfiles,
            quit: None,
            input: Input {
                files,
                next_file: 0,
                reader: None,
                peeked: None,
                current_name: Vec::new(),
                peeked_name: Vec::new(),
                sep,
                separate,
                had_error: false,
            },
            newline: true,
            locs: Vec::new(),
            opts,
        })
    }

    /// Whether an input file could not be read (GNU then exits 2).
    pub fn had_input_error(&self) -> bool {
        self.input.had_error
    }

    fn init_ranges(&mut self) {
        for (i, c) in self.script.cmds.iter().enumerate() {
            self.ranges[i] = RangeState {
                active: matches!(c.a1, Some(Addr::Zero)),
                end_line: 0,
            };
        }
    }

    /// Runs over all input; returns the exit status requested by `q`/`Q`.
    pub fn run(&mut self) -> Result<i32, ExecError> {
        self.init_ranges();
        if let Some(suffix) = self.opts.in_place.clone() {
            return self.run_in_place(&suffix);
        }
        self.run_stream()?;
        self.flush()?;
        Ok(self.quit.unwrap_or(0))
    }

    fn flush(&mut self) -> io::Result<()> {
        for o in self.wfiles.values_mut() {
            o.w.flush()?;
        }
        self.out.w.flush()
    }

    fn run_in_place(&mut self, suffix: &[u8]) -> Result<i32, ExecError> {
        let files = std::mem::take(&mut self.input.files);
        for name in files {
            if name == b"-" {
                return Err(ExecError::Other(
                    "couldn't edit -: not a regular file".into(),
                ));
            }
            let path = bytes_path(&name);
            let tmp_name = {
                let mut t = name.clone();
                t.extend_from_slice(b".sedtmp");
                t
            };
            let tmp = match File::create(bytes_path(&tmp_name)) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!(
                        "sed: couldn't open temporary file {}: {}",
                        String::from_utf8_lossy(&tmp_name),
                        io_msg(&e)
                    );
                    self.input.had_error = true;
                    continue;
                }
            };
            if !path.exists() {
                let _ = std::fs::remove_file(bytes_path(&tmp_name));
                eprintln!(
                    "sed: can't read {}: No such file or directory",
                    String::from_utf8_lossy(&name)
                );
                self.input.had_error = true;
                continue;
            }
            self.input.files = vec![name.clone()];
            self.input.next_file = 0;
            self.input.reader = None;
            self.input.peeked = None;
            let prev = std::mem::replace(
                &mut self.out,
                Out {
                    w: Box::new(io::BufWriter::new(tmp)),
                    missing_newline: false,
                },
            );
            let r = self.run_stream();
            let mut file_out = std::mem::replace(&mut self.out, prev);
            file_out.w.flush()?;
            drop(file_out);
            r?;
            if !suffix.is_empty() {
                let mut backup = name.clone();
                backup.extend_from_slice(suffix);
                std::fs::copy(&path, bytes_path(&backup))?;
            }
            std::fs::rename(bytes_path(&tmp_name), &path)?;
            if self.quit.is_some() {
                break;
            }
        }
        self.flush()?;
        Ok(self.quit.unwrap_or(0))
    }

    fn read_line(&mut self) -> Result<bool, ExecError> {
        match self.input.next_line()? {
            Some((l, nl, new_file)) => {
                if new_file {
                    self.line = 0;
                }
                self.ps = l;
                self.newline = nl;
                self.line += 1;
                self.tflag = false;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn run_stream(&mut self) -> Result<(), ExecError> {
        let mut restart = false;
        loop {
            if self.quit.is_some() {
                return Ok(());
            }
            if !restart && !self.read_line()? {
                return Ok(());
            }
            restart = false;
            let step = self.run_cycle()?;
            match step {
                Step::Continue | Step::EndCycle { print: true } => {
                    if !self.opts.quiet {
                        self.emit_ps()?;
                    }
                }
                Step::EndCycle { print: false } => {}
                Step::Restart => restart = true,
                Step::Quit { print, code } => {
                    if print && !self.opts.quiet {
                        self.emit_ps()?;
                    }
                    self.dump_append()?;
                    self.quit = Some(code);
                    return Ok(());
                }
            }
            self.dump_append()?;
        }
    }

    fn emit_ps(&mut self) -> io::Result<()> {
        let nl = self.newline;
        self.out.write_line(&self.ps, self.sep, nl)
    }

    fn dump_append(&mut self) -> Result<(), ExecError> {
        for a in std::mem::take(&mut self.append_queue) {
            match a {
                Appended::Text(t) => self.out.write_raw(&t, self.sep)?,
                Appended::File(f) => {
                    if let Ok(mut file) = File::open(bytes_path(&f)) {
                        let mut buf = Vec::new();
                        file.read_to_end(&mut buf)?;
                        if !buf.is_empty() {
                            if self.out.missing_newline {
                                self.out.w.write_all(&[self.sep])?;
                                self.out.missing_newline = false;
                            }
                            self.out.w.write_all(&buf)?;
                            if buf.last() != Some(&self.sep) {
                                self.out.missing_newline = true;
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn match_addr(&mut self, a: &Addr) -> Result<bool, ExecError> {
        Ok(match a {
            Addr::Line(n) => self.line == *n,
            Addr::Zero => false,
            Addr::Last => self.input.is_last()?,
            Addr::Step(first, step) => {
                if *step == 0 {
                    self.line == *first
                } else {
                    self.line >= *first && (self.line - first).is_multiple_of(*step)
                }
            }
            Addr::Regex(re) => {
                let re = self.regex(re)?;
                re.is_match(&self.ps)
            }
        })
    }

    fn regex(&mut self, re: &Option<Rc<PosixRegex>>) -> Result<Rc<PosixRegex>, ExecError> {
        match re {
            Some(r) => {
                self.last_re = Some(r.clone());
                Ok(r.clone())
            }
            None => self.last_re.clone().ok_or(ExecError::NoPreviousRegex),
        }
    }

    fn selected(&mut self, ci: usize, c: &Cmd) -> Result<bool, ExecError> {
        let Some(a1) = &c.a1 else {
            return Ok(true);
        };
        let Some(a2) = &c.a2 else {
            return Ok(self.match_addr(a1)? != c.negate);
        };
        let st = self.ranges[ci];
        let m = if st.active {
            let ended = match a2 {
                Addr2::Addr(Addr::Line(n)) => self.line >= *n,
                Addr2::Plus(_) => self.line >= st.end_line,
                Addr2::Tilde(n) => *n == 0 || self.line.is_multiple_of(*n),
                Addr2::Addr(a) => self.match_addr(a)?,
            };
            if ended {
                self.ranges[ci].active = false;
            }
            // A numeric end already passed closes the range without selecting.
            if let Addr2::Addr(Addr::Line(n)) = a2
                && self.line > *n
            {
                self.ranges[ci].active = false;
                return Ok(self.match_addr(a1)? != c.negate);
            }
            true
        } else if self.match_addr(a1)? {
            let single = match a2 {
                Addr2::Addr(Addr::Line(n)) => *n <= self.line,
                Addr2::Plus(n) => {
                    self.ranges[ci].end_line = self.line + n;
                    *n == 0
                }
                Addr2::Tilde(n) => *n == 0 || self.line.is_multiple_of(*n),
                _ => false,
            };
            if !single {
                self.ranges[ci].active = true;
            }
            true
        } else {
            false
        };
        Ok(m != c.negate)
    }

    fn run_cycle(&mut self) -> Result<Step, ExecError> {
        let cmds = &self.script.cmds;
        let mut pc = 0;
        while pc < cmds.len() {
            let c = &cmds[pc];
            if matches!(c.kind, Kind::EndBlock | Kind::Label) {
                pc += 1;
                continue;
            }
            if !self.selected(pc, c)? {
                pc = match c.kind {
                    Kind::Block(end) => end + 1,
                    _ => pc + 1,
                };
                continue;
            }
            pc += 1;
            match &c.kind {
                Kind::Block(_) | Kind::EndBlock | Kind::Label => {}
                Kind::Subst(s) => {
                    if self.substitute(s)? {
                        self.tflag = true;
                        for _ in 0..s.print {
                            self.emit_ps()?;
                        }
                        if let Some(w) = &s.write {
                            let (ps, nl) = (self.ps.clone(), true);
                            self.write_to(w, &ps, nl)?;
                        }
                    }
                }
                Kind::Translate(map) => {
                    for b in self.ps.iter_mut() {
                        *b = map[usize::from(*b)];
                    }
                }
                Kind::Print => self.emit_ps()?,
                Kind::PrintFirst => {
                    let end = memchr::memchr(b'\n', &self.ps).unwrap_or(self.ps.len());
                    let first = self.ps[..end].to_vec();
                    self.out.write_line(&first, self.sep, true)?;
                }
                Kind::Delete => return Ok(Step::EndCycle { print: false }),
                Kind::DeleteFirst => match memchr::memchr(b'\n', &self.ps) {
                    None => return Ok(Step::EndCycle { print: false }),
                    Some(k) => {
                        self.ps.drain(..=k);
                        self.dump_append()?;
                        return Ok(Step::Restart);
                    }
                },
                Kind::Next => {
                    if self.input.is_last()? {
                        // GNU: no next line — quit, printing the pattern space.
                        return Ok(Step::Quit {
                            print: true,
                            code: 0,
                        });
                    }
                    if !self.opts.quiet {
                        self.emit_ps()?;
                    }
                    self.dump_append()?;
                    self.read_line()?;
                }
                Kind::NextAppend => {
                    if self.input.is_last()? {
                        return Ok(Step::Quit {
                            print: true,
                            code: 0,
                        });
                    }
                    self.dump_append()?;
                    let prev = std::mem::take(&mut self.ps);
                    self.read_line()?;
                    let mut joined = prev;
                    joined.push(b'\n');
                    joined.extend_from_slice(&self.ps);
                    self.ps = joined;
                }
                Kind::Hold => self.hs.clone_from(&self.ps),
                Kind::HoldAppend => {
                    self.hs.push(b'\n');
                    self.hs.extend_from_slice(&self.ps);
                }
                Kind::Get => self.ps.clone_from(&self.hs),
                Kind::GetAppend => {
                    self.ps.push(b'\n');
                    self.ps.extend_from_slice(&self.hs);
                }
                Kind::Exchange => std::mem::swap(&mut self.ps, &mut self.hs),
                Kind::Zap => self.ps.clear(),
                Kind::FileName => {
                    let name = if self.input.current_name == b"-" {
                        b"-".to_vec()
                    } else {
                        self.input.current_name.clone()
                    };
                    self.out.write_line(&name, b'\n', true)?;
                }
                Kind::Quit(code) => {
                    return Ok(Step::Quit {
                        print: true,
                        code: *code,
                    });
                }
                Kind::QuitSilent(code) => {
                    return Ok(Step::Quit {
                        print: false,
                        code: *code,
                    });
                }
                Kind::LineNumber => {
                    let s = self.line.to_string();
                    self.out.write_line(s.as_bytes(), b'\n', true)?;
                }
                Kind::List(w) => {
                    let width = w.unwrap_or(self.opts.line_wrap);
                    let text = list_escape(&self.ps, width);
                    self.out.write_line(&text, b'\n', true)?;
                }
                Kind::Append(t) => self.append_queue.push(Appended::Text(t.clone())),
                Kind::ReadFile(f) => self.append_queue.push(Appended::File(f.clone())),
                Kind::Insert(t) => self.out.write_raw(t, self.sep)?,
                Kind::Change(t) => {
                    // In a range, the text is printed once, at its end.
                    let in_range = c.a2.is_some() && !c.negate;
                    if !in_range || !self.ranges[pc - 1].active {
                        self.out.write_raw(t, self.sep)?;
                    }
                    return Ok(Step::EndCycle { print: false });
                }
                Kind::Branch(t) => match t {
                    Some(t) => pc = *t,
                    None => return Ok(Step::Continue),
                },
                Kind::BranchIfSub(t) | Kind::BranchUnlessSub(t) => {
                    let want = matches!(c.kind, Kind::BranchIfSub(_));
                    if self.tflag == want {
                        self.tflag = false;
                        match t {
                            Some(t) => pc = *t,
                            None => return Ok(Step::Continue),
                        }
                    } else if !want {
                        // `T` resets the flag too when it does not branch.
                        self.tflag = false;
                    }
                }
                Kind::Write(f) => {
                    let ps = self.ps.clone();
                    let nl = self.newline;
                    self.write_to(f, &ps, nl)?;
                }
            }
        }
        Ok(Step::Continue)
    }

    fn write_to(&mut self, name: &[u8], data: &[u8], newline: bool) -> io::Result<()> {
        match name {
            b"/dev/stdout" => self.out.write_line(data, self.sep, newline),
            b"/dev/stderr" => {
                let mut e = io::stderr();
                e.write_all(data)?;
                e.write_all(&[self.sep])
            }
            _ => match self.wfiles.get_mut(name) {
                Some(o) => o.write_line(data, self.sep, newline),
                None => Ok(()),
            },
        }
    }

    fn substitute(&mut self, s: &Subst) -> Result<bool, ExecError> {
        let re = self.regex(&s.re)?;
        let ps = &self.ps;
        let mut out: Vec<u8> = Vec::new();
        let mut pos = 0;
        let mut copied = 0;
        let mut count = 0;
        let mut did = false;
        let mut last_end: Option<usize> = None;
        let mut locs = std::mem::take(&mut self.locs);
        while pos <= ps.len() {
            if !re.captures_at(ps, pos, &mut locs) {
                break;
            }
            let Some(Some((ms, me))) = locs.first().copied() else {
                break;
            };
            if ms == me && last_end == Some(ms) {
                // An empty match right after a match does not count.
                pos = ms + 1;
                continue;
            }
            count += 1;
            last_end = Some(me);
            if count >= s.nth {
                out.extend_from_slice(&ps[copied..ms]);
                apply_repl(&s.repl, ps, &locs, &mut out);
                copied = me;
                did = true;
                if !s.global {
                    break;
                }
            }
            pos = if me == ms { me + 1 } else { me };
        }
        self.locs = locs;
        if did {
            out.extend_from_slice(&ps[copied..]);
            self.ps = out;
        }
        Ok(did)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Case {
    None,
    Upper,
    Lower,
}

fn apply_repl(repl: &[Repl], ps: &[u8], locs: &[Option<(usize, usize)>], out: &mut Vec<u8>) {
    let mut mode = Case::None;
    let mut one = Case::None;
    let push = |bytes: &[u8], mode: Case, one: &mut Case, out: &mut Vec<u8>| {
        for &b in bytes {
            let b = match (*one, mode) {
                (Case::Upper, _) => b.to_ascii_uppercase(),
                (Case::Lower, _) => b.to_ascii_lowercase(),
                (Case::None, Case::Upper) => b.to_ascii_uppercase(),
                (Case::None, Case::Lower) => b.to_ascii_lowercase(),
                (Case::None, Case::None) => b,
            };
            *one = Case::None;
            out.push(b);
        }
    };
    for r in repl {
        match r {
            Repl::Lit(l) => push(l, mode, &mut one, out),
            Repl::Group(g) => {
                if let Some(Some((a, b))) = locs.get(*g) {
                    push(&ps[*a..*b], mode, &mut one, out);
                }
            }
            Repl::Upper => {
                mode = Case::Upper;
                one = Case::None;
            }
            Repl::Lower => {
                mode = Case::Lower;
                one = Case::None;
            }
            Repl::OneUpper => one = Case::Upper,
            Repl::OneLower => one = Case::Lower,
            Repl::EndCase => {
                mode = Case::None;
                one = Case::None;
            }
        }
    }
}

/// The `l` command's unambiguous form, wrapped at `width` (0: no wrapping).
fn list_escape(s: &[u8], width: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut col = 0;
    for &b in s {
        let piece: Vec<u8> = match b {
            b'\\' => b"\\\\".to_vec(),
            7 => b"\\a".to_vec(),
            8 => b"\\b".to_vec(),
            12 => b"\\f".to_vec(),
            b'\n' => b"\\n".to_vec(),
            b'\r' => b"\\r".to_vec(),
            b'\t' => b"\\t".to_vec(),
            11 => b"\\v".to_vec(),
            32..=126 => vec![b],
            _ => format!("\\{b:03o}").into_bytes(),
        };
        if width > 1 && col + piece.len() > width - 1 {
            out.extend_from_slice(b"\\\n");
            col = 0;
        }
        col += piece.len();
        out.extend_from_slice(&piece);
    }
    out.push(b'$');
    out
}

#[cfg(unix)]
fn bytes_path(b: &[u8]) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStrExt;
    std::path::PathBuf::from(std::ffi::OsStr::from_bytes(b))
}

#[cfg(target_os = "wasi")]
fn bytes_path(b: &[u8]) -> std::path::PathBuf {
    use std::os::wasi::ffi::OsStrExt;
    std::path::PathBuf::from(std::ffi::OsStr::from_bytes(b))
}

fn io_msg(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "No such file or directory".into(),
        io::ErrorKind::PermissionDenied => "Permission denied".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sed::script::parse;

    fn run(script: &str, input: &[u8], quiet: bool) -> Vec<u8> {
        let s = parse(script.as_bytes(), false).unwrap();
        // Unique per call: tests run in parallel threads of one process.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("sed-exec-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("in");
        std::fs::write(&f, input).unwrap();
        let buf = Rc::new(std::cell::RefCell::new(Vec::new()));
        struct W(Rc<std::cell::RefCell<Vec<u8>>>);
        impl Write for W {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0.borrow_mut().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let opts = Options {
            quiet,
            line_wrap: 70,
            ..Options::default()
        };
        let mut sed = Sed::new(
            &s,
            opts,
            vec![f.to_string_lossy().as_bytes().to_vec()],
            Box::new(W(buf.clone())),
        )
        .unwrap();
        sed.run().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        buf.borrow().clone()
    }

    #[test]
    fn cycles_and_hold_space() {
        assert_eq!(run("s/a/X/g", b"banana\n", false), b"bXnXnX\n");
        assert_eq!(run(":a;N;$!ba;s/\\n/,/g", b"1\n2\n3\n", false), b"1,2,3\n");
        assert_eq!(run("1!G;h;$!d", b"1\n2\n3\n", false), b"3\n2\n1\n");
        assert_eq!(run("$!N;P;D", b"a\nb\nc\n", false), b"a\nb\nc\n");
        assert_eq!(run("2q", b"a\nb\nc\n", false), b"a\nb\n");
        assert_eq!(run("/b/,/c/p", b"a\nb\nc\nd\n", true), b"b\nc\n");
    }

    #[test]
    fn missing_newline_is_kept() {
        assert_eq!(run("p", b"x", false), b"x\nx");
        assert_eq!(run("$a end", b"a\nb", false), b"a\nb\nend\n");
    }

    #[test]
    fn nth_and_empty_matches() {
        assert_eq!(run("s/a/X/2g", b"aaaa\n", false), b"aXXX\n");
        assert_eq!(run("s/x*/-/g", b"abc\n", false), b"-a-b-c-\n");
        assert_eq!(run("s/b*/-/g", b"abc\n", false), b"-a-c-\n");
    }

    #[test]
    fn list_wraps() {
        assert_eq!(list_escape(b"a\tb\x01", 70), b"a\\tb\\001$");
        assert_eq!(list_escape(b"abcdef", 4), b"abc\\\ndef$");
    }
}
