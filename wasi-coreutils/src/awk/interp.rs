//! Tree-walking interpreter for a parsed awk [`Program`].
//!
//! Guarantees: fields are split lazily and only once per record, records
//! and field positions reuse their buffers (no per-record allocation for
//! `{ s += $N }`); runtime errors are [`AwkError`]s, never panics; output
//! is only to stdout/stderr and to files opened with `>`/`>>`.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::rc::Rc;

use indexmap::IndexMap;

use super::AwkError;
use super::io::{RecordReader, RecordSep};
use super::lexer::Builtin;
use super::parser::{
    BinOp, CmpOp, Expr, G_ARGC, G_ARGV, G_FILENAME, G_RLENGTH, G_RSTART, LValue, Pattern, Program,
    Redir, Special, Stmt, Var,
};
use super::value::{self, Value, num_to_str, str_to_num};
use crate::sed::posix_re::{Dialect, PosixRegex};

/// An awk associative array (insertion-ordered; see [`Interp::keys`]).
pub type Map = IndexMap<Rc<[u8]>, Value>;
type ArrRef = Rc<RefCell<Map>>;

#[derive(Debug, Clone, Default)]
enum Cell {
    #[default]
    Uninit,
    Val(Value),
    Arr(ArrRef),
}

enum Flow {
    Normal,
    Break,
    Continue,
    Next,
    NextFile,
    Exit,
    Return(Value),
}

/// Field separator modes.
#[derive(Clone)]
enum FieldSep {
    Space,
    Byte(u8),
    Chars,
    Regex(Rc<PosixRegex>),
}

enum Output {
    Stderr,
    File(BufWriter<File>),
}

const MAX_CALL_DEPTH: usize = 400;

/// The interpreter state.
pub struct Interp<'p> {
    prog: &'p Program,
    globals: Vec<Cell>,
    frames: Vec<Vec<Cell>>,
    record: Vec<u8>,
    fields: Vec<(usize, usize)>,
    /// All fields of `$0` are in `fields`.
    split_done: bool,
    /// Where a partial split stopped (see `ensure_fields`).
    split_pos: usize,
    nr: f64,
    fnr: f64,
    fs: Value,
    splitter: FieldSep,
    ofs: Vec<u8>,
    ors: Vec<u8>,
    rs: Value,
    rsep: RecordSep,
    subsep: Vec<u8>,
    convfmt: Vec<u8>,
    ofmt: Vec<u8>,
    out: Box<dyn Write>,
    files: HashMap<Vec<u8>, Output>,
    readers: HashMap<Vec<u8>, RecordReader>,
    main: Option<RecordReader>,
    next_arg: usize,
    opened_any: bool,
    main_done: bool,
    dyn_re: HashMap<Vec<u8>, Rc<PosixRegex>>,
    range_on: Vec<bool>,
    rng: Random,
    seed: f64,
    exit_code: i32,
    /// A file operand could not be opened (gawk then exits 2).
    pub had_input_error: bool,
    tmp: Vec<u8>,
}

impl<'p> Interp<'p> {
    /// A fresh interpreter writing to `out`; `argv` is ARGV (ARGV[0] first).
    pub fn new(prog: &'p Program, argv: Vec<Vec<u8>>, out: Box<dyn Write>) -> Self {
        let mut globals = vec![Cell::Uninit; prog.globals.len()];
        let mut av = Map::new();
        for (i, a) in argv.iter().enumerate() {
            av.insert(key_of_int(i as f64), Value::strnum(a));
        }
        globals[G_ARGV] = Cell::Arr(Rc::new(RefCell::new(av)));
        globals[G_ARGC] = Cell::Val(Value::Num(argv.len() as f64));
        let mut env = Map::new();
        for (k, v) in std::env::vars_os() {
            env.insert(
                Rc::from(crate::common::arg_bytes(&k)),
                Value::strnum(crate::common::arg_bytes(&v)),
            );
        }
        globals[super::parser::G_ENVIRON] = Cell::Arr(Rc::new(RefCell::new(env)));
        globals[G_RSTART] = Cell::Val(Value::Num(0.0));
        globals[G_RLENGTH] = Cell::Val(Value::Num(-1.0));
        Interp {
            prog,
            globals,
            frames: Vec::new(),
            record: Vec::new(),
            fields: Vec::new(),
            split_done: true,
            split_pos: 0,
            nr: 0.0,
            fnr: 0.0,
            fs: Value::str(b" "),
            splitter: FieldSep::Space,
            ofs: b" ".to_vec(),
            ors: b"\n".to_vec(),
            rs: Value::str(b"\n"),
            rsep: RecordSep::Byte(b'\n'),
            subsep: vec![0x1c],
            convfmt: b"%.6g".to_vec(),
            ofmt: b"%.6g".to_vec(),
            out,
            files: HashMap::new(),
            readers: HashMap::new(),
            main: None,
            next_arg: 1,
            opened_any: false,
            main_done: false,
            dyn_re: HashMap::new(),
            range_on: vec![false; prog.ranges],
            // gawk seeds with 1 until srand() is called (srand() still reports 0).
            rng: Random::new(1),
            seed: 0.0,
            exit_code: 0,
            had_input_error: false,
            tmp: Vec::new(),
        }
    }

    /// Assigns a command-line variable (`-v` or operand), value escape-processed.
    pub fn assign_cmdline(&mut self, name: &str, raw: &[u8]) -> Result<(), AwkError> {
        let mut val = Vec::new();
        let mut i = 0;
        while i < raw.len() {
            if raw[i] == b'\\' {
                i = super::lexer::unescape(raw, i + 1, &mut val);
            } else {
                val.push(raw[i]);
                i += 1;
            }
        }
        let v = Value::strnum(&val);
        if let Some(sp) = super::parser::special_by_name(name) {
            return self.set_var(Var::Special(sp), v);
        }
        if let Some(g) = self.prog.global(name) {
            if matches!(self.globals[g], Cell::Arr(_)) {
                return Err(AwkError::Fatal(format!(
                    "cannot use array `{name}' in scalar context"
                )));
            }
            self.globals[g] = Cell::Val(v);
        }
        Ok(())
    }

    /// Runs BEGIN, the main loop and END; returns the exit status.
    pub fn run(&mut self) -> Result<i32, AwkError> {
        let prog = self.prog;
        let exited = matches!(exit_as_flow(self.exec_block(&prog.begin))?, Flow::Exit);
        if !exited && (!prog.rules.is_empty() || !prog.end.is_empty()) {
            // Records are read into a spare buffer so `$0` keeps the last
            // record in END, as gawk does.
            let mut spare = Vec::new();
            'records: while self.read_main(&mut spare)? {
                std::mem::swap(&mut self.record, &mut spare);
                self.invalidate_fields();
                for (ri, rule) in prog.rules.iter().enumerate() {
                    if !self.pattern_matches(&rule.pattern, ri)? {
                        continue;
                    }
                    let flow = match &rule.action {
                        None => {
                            self.print_record()?;
                            Flow::Normal
                        }
                        Some(body) => exit_as_flow(self.exec_block(body))?,
                    };
                    match flow {
                        Flow::Next => break,
                        Flow::NextFile => {
                            self.main = None;
                            break;
                        }
                        Flow::Exit => break 'records,
                        _ => {}
                    }
                }
            }
        }
        // END runs after `exit` in BEGIN or in a rule, but not after exit in END.
        exit_as_flow(self.exec_block(&prog.end))?;
        Ok(self.exit_code)
    }

    /// Flushes and closes every output.
    pub fn finish(&mut self) -> io::Result<()> {
        for (_, o) in self.files.drain() {
            if let Output::File(mut f) = o {
                f.flush()?;
            }
        }
        self.out.flush()
    }

    fn pattern_matches(&mut self, p: &Pattern, _ri: usize) -> Result<bool, AwkError> {
        Ok(match p {
            Pattern::All => true,
            Pattern::Expr(e) => self.cond(e)?,
            Pattern::Range(a, b, i) => {
                if self.range_on[*i] {
                    if self.cond(b)? {
                        self.range_on[*i] = false;
                    }
                    true
                } else if self.cond(a)? {
                    if !self.cond(b)? {
                        self.range_on[*i] = true;
                    }
                    true
                } else {
                    false
                }
            }
        })
    }

    fn print_record(&mut self) -> Result<(), AwkError> {
        let Interp {
            out, record, ors, ..
        } = self;
        out.write_all(record)?;
        out.write_all(ors)?;
        Ok(())
    }

    // ---- main input ----

    fn argv_get(&self, i: usize) -> Option<Vec<u8>> {
        let Cell::Arr(a) = &self.globals[G_ARGV] else {
            return None;
        };
        let a = a.borrow();
        a.get(&key_of_int(i as f64)[..]).map(|v| {
            let mut s = Vec::new();
            v.write_str(b"%.6g", &mut s);
            s
        })
    }

    fn argc(&self) -> usize {
        match &self.globals[G_ARGC] {
            Cell::Val(v) => v.to_num().max(0.0) as usize,
            _ => 0,
        }
    }

    fn open_next_main(&mut self) -> Result<bool, AwkError> {
        while self.next_arg < self.argc() {
            let i = self.next_arg;
            self.next_arg += 1;
            let Some(arg) = self.argv_get(i) else {
                continue;
            };
            if arg.is_empty() {
                continue;
            }
            if let Some(eq) = arg.iter().position(|&b| b == b'=') {
                let name = &arg[..eq];
                if !name.is_empty()
                    && (name[0].is_ascii_alphabetic() || name[0] == b'_')
                    && name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
                {
                    let name = String::from_utf8_lossy(name).into_owned();
                    self.assign_cmdline(&name, &arg[eq + 1..])?;
                    continue;
                }
            }
            self.opened_any = true;
            self.fnr = 0.0;
            self.globals[G_FILENAME] = Cell::Val(Value::str(&arg));
            if arg == b"-" || arg == b"/dev/stdin" {
                self.main = Some(RecordReader::new(Box::new(io::stdin())));
                return Ok(true);
            }
            match File::open(bytes_path(&arg)) {
                Ok(f) => {
                    self.main = Some(RecordReader::new(Box::new(f)));
                    return Ok(true);
                }
                Err(e) => {
                    eprintln!(
                        "awk: cannot open \"{}\" ({})",
                        String::from_utf8_lossy(&arg),
                        io_msg(&e)
                    );
                    self.had_input_error = true;
                }
            }
        }
        if !self.opened_any {
            self.opened_any = true;
            self.main = Some(RecordReader::new(Box::new(io::stdin())));
            return Ok(true);
        }
        Ok(false)
    }

    /// Reads the next main-input record into `out`, updating NR/FNR.
    fn read_main(&mut self, out: &mut Vec<u8>) -> Result<bool, AwkError> {
        if self.main_done {
            return Ok(false);
        }
        loop {
            if self.main.is_none() && !self.open_next_main()? {
                self.main_done = true;
                return Ok(false);
            }
            let Some(r) = self.main.as_mut() else {
                continue;
            };
            if r.read_record(&self.rsep, out)? {
                self.nr += 1.0;
                self.fnr += 1.0;
                return Ok(true);
            }
            self.main = None;
        }
    }

    // ---- fields ----

    /// Marks `$0` as changed: fields are split again on demand.
    fn invalidate_fields(&mut self) {
        self.split_done = false;
        self.fields.clear();
        self.split_pos = 0;
    }

    fn ensure_split(&mut self) {
        self.ensure_fields(usize::MAX);
    }

    /// Splits at least `want` fields (fewer if the record has fewer):
    /// `{ s += $2 }` never scans past the second field.
    fn ensure_fields(&mut self, want: usize) {
        if self.split_done || self.fields.len() >= want {
            return;
        }
        let para = matches!(self.rsep, RecordSep::Paragraph);
        let Interp {
            record,
            splitter,
            fields,
            split_pos,
            ..
        } = self;
        let done = match splitter {
            FieldSep::Space | FieldSep::Byte(_) => {
                split_partial(record, splitter, para, split_pos, want, fields)
            }
            _ => {
                split_into(record, splitter, para, fields);
                true
            }
        };
        if done {
            self.split_done = true;
        }
    }

    fn nf(&mut self) -> usize {
        self.ensure_split();
        self.fields.len()
    }

    fn field_bytes(&mut self, i: usize) -> &[u8] {
        if i == 0 {
            return &self.record;
        }
        self.ensure_fields(i);
        match self.fields.get(i - 1) {
            Some(&(s, e)) => &self.record[s..e],
            None => &[],
        }
    }

    fn field_index(&mut self, e: &Expr) -> Result<usize, AwkError> {
        let n = self.eval_num(e)?;
        if n < 0.0 {
            return Err(AwkError::Fatal(format!(
                "attempt to access field {}",
                n as i64
            )));
        }
        if n > 10_000_000.0 {
            return Err(AwkError::Fatal("field index too large".into()));
        }
        Ok(n as usize)
    }

    fn set_field(&mut self, i: usize, val: &[u8]) {
        if i == 0 {
            self.record.clear();
            self.record.extend_from_slice(val);
            self.invalidate_fields();
            return;
        }
        self.ensure_split();
        let mut fs: Vec<Vec<u8>> = self
            .fields
            .iter()
            .map(|&(s, e)| self.record[s..e].to_vec())
            .collect();
        if fs.len() < i {
            fs.resize(i, Vec::new());
        }
        fs[i - 1] = val.to_vec();
        self.rebuild(&fs);
    }

    fn set_nf(&mut self, n: usize) {
        self.ensure_split();
        let mut fs: Vec<Vec<u8>> = self
            .fields
            .iter()
            .map(|&(s, e)| self.record[s..e].to_vec())
            .collect();
        fs.resize(n, Vec::new());
        self.rebuild(&fs);
    }

    /// `$0 = $1 OFS $2 ...`; the field positions stay exact without re-splitting.
    fn rebuild(&mut self, fs: &[Vec<u8>]) {
        self.record.clear();
        self.fields.clear();
        for (k, f) in fs.iter().enumerate() {
            if k > 0 {
                self.record.extend_from_slice(&self.ofs);
            }
            let s = self.record.len();
            self.record.extend_from_slice(f);
            self.fields.push((s, self.record.len()));
        }
        self.split_done = true;
    }

    // ---- variables ----

    fn cell(&mut self, v: Var) -> &mut Cell {
        match v {
            Var::Global(i) => &mut self.globals[i],
            Var::Local(i) => match self.frames.last_mut() {
                Some(f) => &mut f[i],
                None => &mut self.globals[0],
            },
            Var::Special(_) => &mut self.globals[0],
        }
    }

    fn get_var(&mut self, v: Var) -> Result<Value, AwkError> {
        Ok(match v {
            Var::Special(sp) => match sp {
                Special::Nf => Value::Num(self.nf() as f64),
                Special::Nr => Value::Num(self.nr),
                Special::Fnr => Value::Num(self.fnr),
                Special::Fs => self.fs.clone(),
                Special::Ofs => Value::str(&self.ofs),
                Special::Ors => Value::str(&self.ors),
                Special::Rs => self.rs.clone(),
                Special::Subsep => Value::str(&self.subsep),
                Special::Convfmt => Value::str(&self.convfmt),
                Special::Ofmt => Value::str(&self.ofmt),
            },
            _ => match self.cell(v) {
                Cell::Uninit => Value::Uninit,
                Cell::Val(x) => x.clone(),
                Cell::Arr(_) => {
                    return Err(AwkError::Fatal(
                        "attempt to use array in a scalar context".into(),
                    ));
                }
            },
        })
    }

    #[inline(never)]
    fn set_var(&mut self, v: Var, val: Value) -> Result<(), AwkError> {
        match v {
            Var::Special(sp) => {
                let mut s = Vec::new();
                val.write_str(&self.convfmt, &mut s);
                match sp {
                    Special::Nf => {
                        let n = val.to_num();
                        if n < 0.0 {
                            return Err(AwkError::Fatal("NF set to negative value".into()));
                        }
                        self.set_nf(n.min(10_000_000.0) as usize);
                    }
                    Special::Nr => self.nr = val.to_num(),
                    Special::Fnr => self.fnr = val.to_num(),
                    Special::Fs => {
                        // The new FS applies from the next record on.
                        self.ensure_split();
                        self.splitter = self.make_splitter(&s)?;
                        self.fs = val;
                    }
                    Special::Ofs => self.ofs = s,
                    Special::Ors => self.ors = s,
                    Special::Rs => {
                        self.rsep = match s.len() {
                            0 => RecordSep::Paragraph,
                            1 => RecordSep::Byte(s[0]),
                            _ => RecordSep::Regex(self.regex_from(&s)?),
                        };
                        self.rs = val;
                    }
                    Special::Subsep => self.subsep = s,
                    Special::Convfmt => self.convfmt = s,
                    Special::Ofmt => self.ofmt = s,
                }
            }
            _ => {
                let c = self.cell(v);
                if matches!(c, Cell::Arr(_)) {
                    return Err(AwkError::Fatal(
                        "attempt to use array in a scalar context".into(),
                    ));
                }
                *c = Cell::Val(val);
            }
        }
        Ok(())
    }

    fn make_splitter(&mut self, fs: &[u8]) -> Result<FieldSep, AwkError> {
        Ok(match fs {
            b" " => FieldSep::Space,
            b"" => FieldSep::Chars,
            [c] if *c != b'\\' => FieldSep::Byte(*c),
            b"\\" => FieldSep::Byte(b'\\'),
            _ => FieldSep::Regex(self.regex_from(fs)?),
        })
    }

    fn array(&mut self, v: Var) -> Result<ArrRef, AwkError> {
        let c = self.cell(v);
        match c {
            Cell::Arr(a) => Ok(a.clone()),
            Cell::Uninit => {
                let a: ArrRef = Rc::new(RefCell::new(Map::new()));
                *c = Cell::Arr(a.clone());
                Ok(a)
            }
            Cell::Val(_) => Err(AwkError::Fatal(
                "attempt to use a scalar as an array".into(),
            )),
        }
    }

    #[inline(never)]
    fn key(&mut self, ix: &[Expr]) -> Result<Rc<[u8]>, AwkError> {
        if let [e] = ix {
            let v = self.eval(e)?;
            return Ok(match v {
                Value::Num(n) => key_of_num(n, &self.convfmt),
                other => other.to_rc_str(&self.convfmt),
            });
        }
        let mut k = Vec::new();
        for (i, e) in ix.iter().enumerate() {
            if i > 0 {
                k.extend_from_slice(&self.subsep);
            }
            let v = self.eval(e)?;
            v.write_str(&self.convfmt, &mut k);
        }
        Ok(Rc::from(k))
    }

    /// Iteration order for `for (k in a)`: like gawk for the common cases —
    /// integer keys ascending after the other keys.
    fn keys(a: &Map) -> Vec<Rc<[u8]>> {
        let mut strs = Vec::new();
        let mut ints: Vec<(i64, Rc<[u8]>)> = Vec::new();
        for k in a.keys() {
            match int_key(k) {
                Some(n) => ints.push((n, k.clone())),
                None => strs.push(k.clone()),
            }
        }
        ints.sort_by_key(|(n, _)| *n);
        strs.extend(ints.into_iter().map(|(_, k)| k));
        strs
    }

    // ---- regexes ----

    fn regex_from(&mut self, src: &[u8]) -> Result<Rc<PosixRegex>, AwkError> {
        if let Some(r) = self.dyn_re.get(src) {
            return Ok(r.clone());
        }
        let re = PosixRegex::new(src, Dialect::Awk, false)
            .map_err(|e| AwkError::Fatal(format!("{e}: /{}/", String::from_utf8_lossy(src))))?;
        let re = Rc::new(re);
        if self.dyn_re.len() > 500 {
            self.dyn_re.clear();
        }
        self.dyn_re.insert(src.to_vec(), re.clone());
        Ok(re)
    }

    #[inline(never)]
    fn regex_of(&mut self, e: &Expr) -> Result<Rc<PosixRegex>, AwkError> {
        if let Expr::Regex(i) = e {
            return Ok(self.prog.regexes[*i].clone());
        }
        let v = self.eval(e)?;
        let mut s = Vec::new();
        v.write_str(&self.convfmt, &mut s);
        self.regex_from(&s)
    }

    // ---- statements ----

    fn exec_block(&mut self, b: &[Stmt]) -> Result<Flow, AwkError> {
        for s in b {
            match self.exec(s)? {
                Flow::Normal => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Normal)
    }

    fn exec(&mut self, s: &Stmt) -> Result<Flow, AwkError> {
        match s {
            Stmt::Expr(e) => {
                self.eval_discard(e)?;
            }
            Stmt::Print(args, redir) => self.print(args, redir.as_ref())?,
            Stmt::Printf(args, redir) => {
                let mut vals = Vec::with_capacity(args.len());
                for a in args {
                    vals.push(self.eval(a)?);
                }
                let mut fmt = Vec::new();
                vals[0].write_str(&self.convfmt, &mut fmt);
                let mut buf = std::mem::take(&mut self.tmp);
                buf.clear();
                if !value::sprintf(&fmt, &vals[1..], &self.convfmt, &mut buf) {
                    self.tmp = buf;
                    return Err(not_enough_args());
                }
                let r = self.write_out(redir, &buf);
                self.tmp = buf;
                r?;
            }
            Stmt::If(c, a, b) => {
                if self.cond(c)? {
                    return self.exec(a);
                } else if let Some(b) = b {
                    return self.exec(b);
                }
            }
            Stmt::While(c, body) => {
                while self.cond(c)? {
                    match self.exec(body)? {
                        Flow::Break => break,
                        Flow::Normal | Flow::Continue => {}
                        other => return Ok(other),
                    }
                }
            }
            Stmt::Do(body, c) => loop {
                match self.exec(body)? {
                    Flow::Break => break,
                    Flow::Normal | Flow::Continue => {}
                    other => return Ok(other),
                }
                if !self.cond(c)? {
                    break;
                }
            },
            Stmt::For(init, c, step, body) => {
                if let Some(i) = init {
                    self.exec(i)?;
                }
                loop {
                    if let Some(c) = c
                        && !self.cond(c)?
                    {
                        break;
                    }
                    match self.exec(body)? {
                        Flow::Break => break,
                        Flow::Normal | Flow::Continue => {}
                        other => return Ok(other),
                    }
                    if let Some(st) = step {
                        self.exec(st)?;
                    }
                }
            }
            Stmt::ForIn(k, a, body) => {
                let arr = self.array(*a)?;
                let keys = Self::keys(&arr.borrow());
                for key in keys {
                    if !arr.borrow().contains_key(&key) {
                        continue;
                    }
                    self.set_var(*k, Value::StrNum(key))?;
                    match self.exec(body)? {
                        Flow::Break => break,
                        Flow::Normal | Flow::Continue => {}
                        other => return Ok(other),
                    }
                }
            }
            Stmt::Block(b) => return self.exec_block(b),
            Stmt::Next => return Ok(Flow::Next),
            Stmt::NextFile => return Ok(Flow::NextFile),
            Stmt::Exit(e) => {
                if let Some(e) = e {
                    self.exit_code = self.eval_num(e)? as i32;
                }
                return Ok(Flow::Exit);
            }
            Stmt::Return(e) => {
                let v = match e {
                    Some(e) => self.eval(e)?,
                    None => Value::Uninit,
                };
                return Ok(Flow::Return(v));
            }
            Stmt::Break => return Ok(Flow::Break),
            Stmt::Continue => return Ok(Flow::Continue),
            Stmt::Delete(a, ix) => {
                let arr = self.array(*a)?;
                match ix {
                    None => arr.borrow_mut().clear(),
                    Some(ix) => {
                        let k = self.key(ix)?;
                        arr.borrow_mut().shift_remove(&k);
                    }
                }
            }
        }
        Ok(Flow::Normal)
    }

    #[inline(never)]
    fn print(&mut self, args: &[Expr], redir: Option<&Redir>) -> Result<(), AwkError> {
        let mut buf = std::mem::take(&mut self.tmp);
        buf.clear();
        if args.is_empty() {
            buf.extend_from_slice(&self.record);
        }
        for (i, a) in args.iter().enumerate() {
            if i > 0 {
                buf.extend_from_slice(&self.ofs);
            }
            let r = match a {
                Expr::Field(ix) => match self.field_index(ix) {
                    Ok(k) => {
                        let f = self.field_bytes(k);
                        buf.extend_from_slice(f);
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
                _ => self.eval(a).map(|v| v.write_str(&self.ofmt, &mut buf)),
            };
            if let Err(e) = r {
                self.tmp = buf;
                return Err(e);
            }
        }
        buf.extend_from_slice(&self.ors);
        let r = self.write_out(&redir.cloned(), &buf);
        self.tmp = buf;
        r
    }

    #[inline(never)]
    fn write_out(&mut self, redir: &Option<Redir>, data: &[u8]) -> Result<(), AwkError> {
        let Some(r) = redir else {
            self.out.write_all(data)?;
            return Ok(());
        };
        let (e, append) = match r {
            Redir::File(e) => (e, false),
            Redir::Append(e) => (e, true),
        };
        let v = self.eval(e)?;
        let mut name = Vec::new();
        v.write_str(&self.convfmt, &mut name);
        if name == b"/dev/stdout" || name == b"-" {
            self.out.write_all(data)?;
            return Ok(());
        }
        if !self.files.contains_key(&name) {
            let o = if name == b"/dev/stderr" {
                Output::Stderr
            } else {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .append(append)
                    .truncate(!append)
                    .open(bytes_path(&name))
                    .map_err(|e| {
                        AwkError::Fatal(format!(
                            "can't redirect to `{}' ({})",
                            String::from_utf8_lossy(&name),
                            io_msg(&e)
                        ))
                    })?;
                Output::File(BufWriter::new(f))
            };
            self.files.insert(name.clone(), o);
        }
        match self.files.get_mut(&name) {
            Some(Output::File(f)) => f.write_all(data)?,
            Some(Output::Stderr) => {
                self.out.flush()?;
                io::stderr().write_all(data)?;
            }
            None => {}
        }
        Ok(())
    }

    // ---- expressions ----

    fn cond(&mut self, e: &Expr) -> Result<bool, AwkError> {
        Ok(match e {
            Expr::Regex(i) => self.prog.regexes[*i].is_match(&self.record),
            Expr::Cmp(op, a, b) => {
                let av = self.eval(a)?;
                let bv = self.eval(b)?;
                cmp_result(*op, self.compare(&av, &bv))
            }
            Expr::Match(neg, a, b) => self.eval_match(*neg, a, b)?,
            Expr::And(a, b) => self.cond(a)? && self.cond(b)?,
            Expr::Or(a, b) => self.cond(a)? || self.cond(b)?,
            Expr::Not(a) => !self.cond(a)?,
            _ => self.eval(e)?.truthy(),
        })
    }

    fn eval_discard(&mut self, e: &Expr) -> Result<(), AwkError> {
        match e {
            Expr::Assign(op, lv, rhs) => {
                self.assign(*op, lv, rhs)?;
            }
            Expr::IncDec { lv, delta, .. } => {
                if let LValue::Var(v @ (Var::Global(_) | Var::Local(_))) = **lv {
                    let c = self.cell(v);
                    let n = match c {
                        Cell::Uninit => 0.0,
                        Cell::Val(x) => x.to_num(),
                        Cell::Arr(_) => {
                            return Err(AwkError::Fatal(
                                "attempt to use array in a scalar context".into(),
                            ));
                        }
                    };
                    *c = Cell::Val(Value::Num(n + delta));
                } else {
                    self.eval(e)?;
                }
            }
            _ => {
                self.eval(e)?;
            }
        }
        Ok(())
    }

    fn eval_num(&mut self, e: &Expr) -> Result<f64, AwkError> {
        Ok(match e {
            Expr::Num(n) => *n,
            Expr::Field(ix) => {
                let k = self.field_index(ix)?;
                str_to_num(self.field_bytes(k))
            }
            Expr::Var(v @ (Var::Global(_) | Var::Local(_))) => match self.cell(*v) {
                Cell::Uninit => 0.0,
                Cell::Val(x) => x.to_num(),
                Cell::Arr(_) => {
                    return Err(AwkError::Fatal(
                        "attempt to use array in a scalar context".into(),
                    ));
                }
            },
            Expr::Var(Var::Special(Special::Nf)) => self.nf() as f64,
            Expr::Var(Var::Special(Special::Nr)) => self.nr,
            Expr::Bin(op, a, b) => {
                let x = self.eval_num(a)?;
                let y = self.eval_num(b)?;
                arith(*op, x, y)?
            }
            _ => self.eval(e)?.to_num(),
        })
    }

    #[inline(never)]
    fn lvalue_get(&mut self, lv: &LValue) -> Result<Value, AwkError> {
        match lv {
            LValue::Var(v) => self.get_var(*v),
            LValue::Field(ix) => {
                let k = self.field_index(ix)?;
                Ok(Value::strnum(self.field_bytes(k)))
            }
            LValue::Index(a, ix) => {
                let k = self.key(ix)?;
                let arr = self.array(*a)?;
                let mut m = arr.borrow_mut();
                Ok(m.entry(k).or_insert(Value::Uninit).clone())
            }
        }
    }

    #[inline(never)]
    fn lvalue_set(&mut self, lv: &LValue, val: Value) -> Result<(), AwkError> {
        match lv {
            LValue::Var(v) => self.set_var(*v, val),
            LValue::Field(ix) => {
                let k = self.field_index(ix)?;
                let mut s = Vec::new();
                val.write_str(&self.convfmt, &mut s);
                self.set_field(k, &s);
                Ok(())
            }
            LValue::Index(a, ix) => {
                let k = self.key(ix)?;
                let arr = self.array(*a)?;
                arr.borrow_mut().insert(k, val);
                Ok(())
            }
        }
    }

    fn assign(&mut self, op: Option<BinOp>, lv: &LValue, rhs: &Expr) -> Result<Value, AwkError> {
        let Some(op) = op else {
            let v = self.eval(rhs)?;
            // Assigning a field copies its text; the target keeps strnum-ness.
            self.lvalue_set(lv, v.clone())?;
            return Ok(v);
        };
        let y = self.eval_num(rhs)?;
        if let LValue::Var(v @ (Var::Global(_) | Var::Local(_))) = lv {
            let c = self.cell(*v);
            let x = match c {
                Cell::Uninit => 0.0,
                Cell::Val(x) => x.to_num(),
                Cell::Arr(_) => {
                    return Err(AwkError::Fatal(
                        "attempt to use array in a scalar context".into(),
                    ));
                }
            };
            let r = arith(op, x, y)?;
            *c = Cell::Val(Value::Num(r));
            return Ok(Value::Num(r));
        }
        if let LValue::Index(a, ix) = lv {
            let k = self.key(ix)?;
            let arr = self.array(*a)?;
            let mut m = arr.borrow_mut();
            let slot = m.entry(k).or_insert(Value::Uninit);
            let r = arith(op, slot.to_num(), y)?;
            *slot = Value::Num(r);
            return Ok(Value::Num(r));
        }
        let x = self.lvalue_get(lv)?.to_num();
        let r = Value::Num(arith(op, x, y)?);
        self.lvalue_set(lv, r.clone())?;
        Ok(r)
    }

    fn compare(&self, a: &Value, b: &Value) -> Ordering {
        if a.is_numeric() && b.is_numeric() {
            let (x, y) = (a.to_num(), b.to_num());
            return x.partial_cmp(&y).unwrap_or(Ordering::Equal);
        }
        let mut sa = Vec::new();
        let mut sb = Vec::new();
        a.write_str(&self.convfmt, &mut sa);
        b.write_str(&self.convfmt, &mut sb);
        sa.cmp(&sb)
    }

    #[inline(never)]
    fn eval_match(&mut self, neg: bool, a: &Expr, b: &Expr) -> Result<bool, AwkError> {
        let re = self.regex_of(b)?;
        let m = if let Expr::Field(ix) = a {
            let k = self.field_index(ix)?;
            re.is_match(self.field_bytes(k))
        } else {
            let v = self.eval(a)?;
            let mut s = Vec::new();
            v.write_str(&self.convfmt, &mut s);
            re.is_match(&s)
        };
        Ok(m != neg)
    }

    fn to_bytes(&self, v: &Value) -> Vec<u8> {
        let mut s = Vec::new();
        v.write_str(&self.convfmt, &mut s);
        s
    }

    fn eval(&mut self, e: &Expr) -> Result<Value, AwkError> {
        Ok(match e {
            Expr::Num(n) => Value::Num(*n),
            Expr::Str(s) => Value::Str(s.clone()),
            Expr::Regex(i) => Value::Num(if self.prog.regexes[*i].is_match(&self.record) {
                1.0
            } else {
                0.0
            }),
            Expr::Var(v) => self.get_var(*v)?,
            Expr::Group(e) => self.eval(e)?,
            Expr::Field(ix) => {
                let k = self.field_index(ix)?;
                Value::strnum(self.field_bytes(k))
            }
            Expr::Index(a, ix) => {
                let k = self.key(ix)?;
                let arr = self.array(*a)?;
                let mut m = arr.borrow_mut();
                m.entry(k).or_insert(Value::Uninit).clone()
            }
            Expr::In(ix, a) => {
                let k = self.key(ix)?;
                let arr = self.array(*a)?;
                let r = arr.borrow().contains_key(&k);
                bool_val(r)
            }
            Expr::Assign(op, lv, rhs) => self.assign(*op, lv, rhs)?,
            Expr::Cond(c, a, b) => {
                if self.cond(c)? {
                    self.eval(a)?
                } else {
                    self.eval(b)?
                }
            }
            Expr::And(..) | Expr::Or(..) | Expr::Not(_) | Expr::Cmp(..) | Expr::Match(..) => {
                bool_val(self.cond(e)?)
            }
            Expr::Neg(a) => Value::Num(-self.eval_num(a)?),
            Expr::UPlus(a) => Value::Num(self.eval_num(a)?),
            Expr::Bin(..) => Value::Num(self.eval_num(e)?),
            Expr::Concat(a, b) => {
                let mut s = Vec::new();
                self.concat_into(a, &mut s)?;
                self.concat_into(b, &mut s)?;
                Value::Str(Rc::from(s))
            }
            Expr::IncDec { pre, delta, lv } => {
                let old = self.lvalue_get(lv)?.to_num();
                let new = old + delta;
                self.lvalue_set(lv, Value::Num(new))?;
                Value::Num(if *pre { new } else { old })
            }
            Expr::Call(fi, args) => self.call(*fi, args)?,
            Expr::Builtin(b, args) => self.builtin(*b, args)?,
            Expr::Getline(var, file) => self.getline(var.as_deref(), file.as_deref())?,
        })
    }

    #[inline(never)]
    fn concat_into(&mut self, e: &Expr, out: &mut Vec<u8>) -> Result<(), AwkError> {
        match e {
            Expr::Concat(a, b) => {
                self.concat_into(a, out)?;
                self.concat_into(b, out)
            }
            Expr::Field(ix) => {
                let k = self.field_index(ix)?;
                let f = self.field_bytes(k);
                out.extend_from_slice(f);
                Ok(())
            }
            _ => {
                let v = self.eval(e)?;
                v.write_str(&self.convfmt, out);
                Ok(())
            }
        }
    }

    #[inline(never)]
    fn call(&mut self, fi: usize, args: &[Expr]) -> Result<Value, AwkError> {
        let prog = self.prog;
        let f = &prog.funcs[fi];
        if args.len() > f.nparams {
            return Err(AwkError::Fatal(format!(
                "function `{}' called with more arguments than declared",
                f.name
            )));
        }
        if self.frames.len() >= MAX_CALL_DEPTH {
            return Err(AwkError::Fatal(format!(
                "function call nesting too deep (limit {MAX_CALL_DEPTH})"
            )));
        }
        let mut frame = vec![Cell::Uninit; f.nparams];
        for (i, a) in args.iter().enumerate() {
            let wants_array = f.array_params.get(i).copied().unwrap_or(false);
            if let Expr::Var(v @ (Var::Global(_) | Var::Local(_))) = a {
                let c = self.cell(*v);
                match c {
                    Cell::Arr(r) => {
                        frame[i] = Cell::Arr(r.clone());
                        continue;
                    }
                    Cell::Uninit if wants_array => {
                        frame[i] = Cell::Arr(self.array(*v)?);
                        continue;
                    }
                    _ => {}
                }
            }
            frame[i] = Cell::Val(self.eval(a)?);
        }
        self.frames.push(frame);
        let r = self.exec_block(&f.body);
        self.frames.pop();
        match r? {
            Flow::Return(v) => Ok(v),
            Flow::Exit => Err(AwkError::Exit),
            Flow::Next => Err(AwkError::Fatal(
                "`next' called from a function is not supported".into(),
            )),
            _ => Ok(Value::Uninit),
        }
    }

    #[inline(never)]
    fn getline(&mut self, var: Option<&LValue>, file: Option<&Expr>) -> Result<Value, AwkError> {
        let mut buf = Vec::new();
        match file {
            None => {
                if !self.read_main(&mut buf)? {
                    return Ok(Value::Num(0.0));
                }
            }
            Some(fe) => {
                let v = self.eval(fe)?;
                let name = self.to_bytes(&v);
                if !self.readers.contains_key(&name) {
                    let src: Box<dyn io::Read> = if name == b"-" || name == b"/dev/stdin" {
                        Box::new(io::stdin())
                    } else {
                        match File::open(bytes_path(&name)) {
                            Ok(f) => Box::new(f),
                            Err(_) => return Ok(Value::Num(-1.0)),
                        }
                    };
                    self.readers.insert(name.clone(), RecordReader::new(src));
                }
                let Some(r) = self.readers.get_mut(&name) else {
                    return Ok(Value::Num(-1.0));
                };
                if !r.read_record(&self.rsep, &mut buf)? {
                    return Ok(Value::Num(0.0));
                }
                if var.is_none() {
                    // getline < file sets $0 and NF only.
                    self.set_field(0, &buf);
                    return Ok(Value::Num(1.0));
                }
            }
        }
        match var {
            Some(lv) => self.lvalue_set(lv, Value::strnum(&buf))?,
            None => self.set_field(0, &buf),
        }
        Ok(Value::Num(1.0))
    }

    #[inline(never)]
    fn builtin(&mut self, b: Builtin, args: &[Expr]) -> Result<Value, AwkError> {
        let num = |s: &mut Self, i: usize| -> Result<f64, AwkError> { s.eval_num(&args[i]) };
        Ok(match b {
            Builtin::Length => match args.first() {
                None => Value::Num(self.record.len() as f64),
                Some(Expr::Var(v @ (Var::Global(_) | Var::Local(_))))
                    if matches!(self.cell(*v), Cell::Arr(_)) =>
                {
                    let a = self.array(*v)?;
                    let n = a.borrow().len();
                    Value::Num(n as f64)
                }
                Some(e) => {
                    let v = self.eval(e)?;
                    Value::Num(self.to_bytes(&v).len() as f64)
                }
            },
            Builtin::Substr => {
                // gawk truncates both numbers and clamps a start below 1
                // to 1 without shortening the length.
                let v = self.eval(&args[0])?;
                let s = self.to_bytes(&v);
                let m = num(self, 1)?;
                let start = if m.is_nan() || m < 1.0 {
                    1.0
                } else {
                    m.trunc()
                };
                let len = s.len() as f64;
                let end = match args.get(2) {
                    Some(e) => {
                        let n = self.eval_num(e)?;
                        if n.is_nan() { start } else { start + n.trunc() }
                    }
                    None => len + 1.0,
                };
                let end = end.min(len + 1.0);
                if end <= start || start > len {
                    Value::str(b"")
                } else {
                    Value::str(&s[(start as usize - 1)..(end as usize - 1)])
                }
            }
            Builtin::Index => {
                let a = self.eval(&args[0])?;
                let bv = self.eval(&args[1])?;
                let (s, t) = (self.to_bytes(&a), self.to_bytes(&bv));
                let p = if t.is_empty() {
                    Some(0)
                } else {
                    memchr::memmem::find(&s, &t)
                };
                Value::Num(p.map(|p| p as f64 + 1.0).unwrap_or(0.0))
            }
            Builtin::Split => {
                let v = self.eval(&args[0])?;
                let s = self.to_bytes(&v);
                let Expr::Var(av) = &args[1] else {
                    return Err(AwkError::Fatal(
                        "split: second argument is not an array".into(),
                    ));
                };
                let sep = match args.get(2) {
                    None => self.splitter.clone(),
                    Some(Expr::Regex(i)) => FieldSep::Regex(self.prog.regexes[*i].clone()),
                    Some(e) => {
                        let v = self.eval(e)?;
                        let fs = self.to_bytes(&v);
                        self.make_splitter(&fs)?
                    }
                };
                let mut ranges = Vec::new();
                split_into(&s, &sep, false, &mut ranges);
                let arr = self.array(*av)?;
                let mut m = arr.borrow_mut();
                m.clear();
                for (i, &(a, e)) in ranges.iter().enumerate() {
                    m.insert(key_of_int(i as f64 + 1.0), Value::strnum(&s[a..e]));
                }
                Value::Num(ranges.len() as f64)
            }
            Builtin::Sub | Builtin::Gsub => {
                let re = self.regex_of(&args[0])?;
                let rv = self.eval(&args[1])?;
                let repl = self.to_bytes(&rv);
                let zero = LValue::Field(Box::new(Expr::Num(0.0)));
                let target = match args.get(2) {
                    Some(Expr::Var(v)) => LValue::Var(*v),
                    Some(Expr::Field(e)) => LValue::Field(e.clone()),
                    Some(Expr::Index(a, ix)) => LValue::Index(*a, ix.clone()),
                    Some(Expr::Group(e)) if matches!(**e, Expr::Var(_)) => match &**e {
                        Expr::Var(v) => LValue::Var(*v),
                        _ => zero,
                    },
                    Some(_) => {
                        return Err(AwkError::Fatal(
                            "sub/gsub third parameter is not a changeable object".into(),
                        ));
                    }
                    None => zero,
                };
                let tv = self.lvalue_get(&target)?;
                let s = self.to_bytes(&tv);
                let (out, n) = substitute(&re, &s, &repl, b == Builtin::Gsub);
                if n > 0 {
                    self.lvalue_set(&target, Value::str(&out))?;
                }
                Value::Num(n as f64)
            }
            Builtin::Match => {
                let v = self.eval(&args[0])?;
                let s = self.to_bytes(&v);
                let re = self.regex_of(&args[1])?;
                let (st, len) = match re.find_at(&s, 0) {
                    Some((a, e)) => (a as f64 + 1.0, (e - a) as f64),
                    None => (0.0, -1.0),
                };
                self.globals[G_RSTART] = Cell::Val(Value::Num(st));
                self.globals[G_RLENGTH] = Cell::Val(Value::Num(len));
                Value::Num(st)
            }
            Builtin::Sprintf => {
                let mut vals = Vec::with_capacity(args.len());
                for a in args {
                    vals.push(self.eval(a)?);
                }
                let fmt = self.to_bytes(&vals[0]);
                let mut out = Vec::new();
                if !value::sprintf(&fmt, &vals[1..], &self.convfmt, &mut out) {
                    return Err(not_enough_args());
                }
                Value::Str(Rc::from(out))
            }
            Builtin::Tolower | Builtin::Toupper => {
                let v = self.eval(&args[0])?;
                let mut s = self.to_bytes(&v);
                if b == Builtin::Tolower {
                    s.make_ascii_lowercase();
                } else {
                    s.make_ascii_uppercase();
                }
                Value::Str(Rc::from(s))
            }
            Builtin::Int => Value::Num(num(self, 0)?.trunc()),
            Builtin::Sqrt => Value::Num(num(self, 0)?.sqrt()),
            Builtin::Exp => Value::Num(num(self, 0)?.exp()),
            Builtin::Log => Value::Num(num(self, 0)?.ln()),
            Builtin::Sin => Value::Num(num(self, 0)?.sin()),
            Builtin::Cos => Value::Num(num(self, 0)?.cos()),
            Builtin::Atan2 => {
                let y = num(self, 0)?;
                let x = num(self, 1)?;
                Value::Num(y.atan2(x))
            }
            Builtin::Rand => Value::Num(self.rng.next_f64()),
            Builtin::Srand => {
                let prev = self.seed;
                self.seed = match args.first() {
                    Some(_) => num(self, 0)?,
                    None => std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs() as f64)
                        .unwrap_or(0.0),
                };
                self.rng = Random::new(self.seed as i64 as u32);
                Value::Num(prev)
            }
            Builtin::System => {
                return Err(AwkError::Fatal(
                    "system() is not supported in the sandbox".into(),
                ));
            }
            Builtin::Close => {
                let v = self.eval(&args[0])?;
                let name = self.to_bytes(&v);
                let mut r = -1.0;
                if let Some(o) = self.files.remove(&name) {
                    r = 0.0;
                    if let Output::File(mut f) = o
                        && f.flush().is_err()
                    {
                        r = -1.0;
                    }
                }
                if self.readers.remove(&name).is_some() {
                    r = 0.0;
                }
                Value::Num(r)
            }
            Builtin::Fflush => {
                self.out.flush()?;
                for o in self.files.values_mut() {
                    if let Output::File(f) = o {
                        f.flush()?;
                    }
                }
                Value::Num(0.0)
            }
        })
    }
}

/// `exit` inside a function unwinds as an error; at rule level it is a flow.
fn exit_as_flow(r: Result<Flow, AwkError>) -> Result<Flow, AwkError> {
    match r {
        Err(AwkError::Exit) => Ok(Flow::Exit),
        other => other,
    }
}

fn not_enough_args() -> AwkError {
    AwkError::Fatal("not enough arguments to satisfy format string".into())
}

fn bool_val(b: bool) -> Value {
    Value::Num(if b { 1.0 } else { 0.0 })
}

fn cmp_result(op: CmpOp, o: Ordering) -> bool {
    match op {
        CmpOp::Lt => o == Ordering::Less,
        CmpOp::Le => o != Ordering::Greater,
        CmpOp::Gt => o == Ordering::Greater,
        CmpOp::Ge => o != Ordering::Less,
        CmpOp::Eq => o == Ordering::Equal,
        CmpOp::Ne => o != Ordering::Equal,
    }
}

fn arith(op: BinOp, x: f64, y: f64) -> Result<f64, AwkError> {
    Ok(match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div => {
            if y == 0.0 {
                return Err(AwkError::Fatal("division by zero attempted".into()));
            }
            x / y
        }
        BinOp::Mod => {
            if y == 0.0 {
                return Err(AwkError::Fatal("division by zero attempted in `%'".into()));
            }
            x % y
        }
        BinOp::Pow => pow(x, y),
    })
}

/// gawk computes integer powers by repeated multiplication.
fn pow(x: f64, y: f64) -> f64 {
    if y == y.trunc() && y.abs() < 1024.0 {
        let mut n = y.abs() as u32;
        let mut base = x;
        let mut r = 1.0;
        while n > 0 {
            if n & 1 == 1 {
                r *= base;
            }
            base *= base;
            n >>= 1;
        }
        if y < 0.0 { 1.0 / r } else { r }
    } else {
        x.powf(y)
    }
}

fn key_of_int(n: f64) -> Rc<[u8]> {
    Rc::from((n as i64).to_string().into_bytes())
}

fn key_of_num(n: f64, convfmt: &[u8]) -> Rc<[u8]> {
    let mut s = Vec::new();
    num_to_str(n, convfmt, &mut s);
    Rc::from(s)
}

fn int_key(k: &[u8]) -> Option<i64> {
    if k.is_empty() || k.len() > 18 {
        return None;
    }
    let (neg, digits) = match k[0] {
        b'-' => (true, &k[1..]),
        _ => (false, k),
    };
    if digits.is_empty()
        || !digits.iter().all(u8::is_ascii_digit)
        || (digits.len() > 1 && digits[0] == b'0')
    {
        return None;
    }
    let n: i64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(if neg { -n } else { n })
}

/// Continues splitting `s` from `*pos` until `out` has `want` fields;
/// returns true when the record is exhausted. Only for the blank and
/// single-byte separators (the others split in one go).
fn split_partial(
    s: &[u8],
    sep: &FieldSep,
    para: bool,
    pos: &mut usize,
    want: usize,
    out: &mut Vec<(usize, usize)>,
) -> bool {
    let n = s.len();
    let mut i = *pos;
    match sep {
        FieldSep::Byte(c) => {
            if n == 0 || i > n {
                return true;
            }
            while out.len() < want {
                let next = if para {
                    s[i..]
                        .iter()
                        .position(|&b| b == *c || b == b'\n')
                        .map(|k| i + k)
                } else {
                    memchr::memchr(*c, &s[i..]).map(|k| i + k)
                };
                match next {
                    Some(j) => {
                        out.push((i, j));
                        i = j + 1;
                    }
                    None => {
                        out.push((i, n));
                        *pos = n + 1;
                        return true;
                    }
                }
            }
        }
        _ => {
            while out.len() < want {
                while i < n && matches!(s[i], b' ' | b'\t' | b'\n') {
                    i += 1;
                }
                if i >= n {
                    *pos = n;
                    return true;
                }
                let st = i;
                while i < n && !matches!(s[i], b' ' | b'\t' | b'\n') {
                    i += 1;
                }
                out.push((st, i));
            }
        }
    }
    *pos = i;
    false
}

/// Splits `s` into field ranges according to `sep`.
fn split_into(s: &[u8], sep: &FieldSep, para: bool, out: &mut Vec<(usize, usize)>) {
    out.clear();
    match sep {
        FieldSep::Space => {
            let mut i = 0;
            let n = s.len();
            loop {
                while i < n && matches!(s[i], b' ' | b'\t' | b'\n') {
                    i += 1;
                }
                if i >= n {
                    break;
                }
                let st = i;
                while i < n && !matches!(s[i], b' ' | b'\t' | b'\n') {
                    i += 1;
                }
                out.push((st, i));
            }
        }
        FieldSep::Byte(c) => {
            if s.is_empty() {
                return;
            }
            let mut st = 0;
            let is_sep = |b: u8| b == *c || (para && b == b'\n');
            for (i, &b) in s.iter().enumerate() {
                if is_sep(b) {
                    out.push((st, i));
                    st = i + 1;
                }
            }
            out.push((st, s.len()));
        }
        FieldSep::Chars => {
            for i in 0..s.len() {
                out.push((i, i + 1));
            }
        }
        FieldSep::Regex(re) => {
            if s.is_empty() {
                return;
            }
            let mut st = 0;
            let mut pos = 0;
            while pos <= s.len() {
                match re.find_at(s, pos) {
                    Some((a, e)) if e > a => {
                        out.push((st, a));
                        st = e;
                        pos = e;
                    }
                    Some((a, _)) => pos = a + 1,
                    None => break,
                }
            }
            out.push((st, s.len()));
        }
    }
}

/// sub/gsub: replaces the first (or every) match; `&` is the match, `\&` a literal `&`.
fn substitute(re: &PosixRegex, s: &[u8], repl: &[u8], global: bool) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(s.len());
    let mut n = 0;
    let mut pos = 0;
    let mut last_end: Option<usize> = None;
    while pos <= s.len() {
        let Some((ms, me)) = re.find_at(s, pos) else {
            break;
        };
        if ms == me && last_end == Some(ms) {
            if ms < s.len() {
                out.push(s[ms]);
            }
            pos = ms + 1;
            continue;
        }
        out.extend_from_slice(&s[pos..ms]);
        let mut i = 0;
        while i < repl.len() {
            match repl[i] {
                b'\\' if matches!(repl.get(i + 1), Some(b'&' | b'\\')) => {
                    out.push(repl[i + 1]);
                    i += 2;
                }
                b'&' => {
                    out.extend_from_slice(&s[ms..me]);
                    i += 1;
                }
                c => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        n += 1;
        last_end = Some(me);
        if ms == me {
            if ms < s.len() {
                out.push(s[ms]);
            }
            pos = ms + 1;
        } else {
            pos = me;
        }
        if !global {
            break;
        }
    }
    if pos < s.len() {
        out.extend_from_slice(&s[pos..]);
    }
    (out, n)
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

/// An additive-feedback generator in the style of BSD `random()` (TYPE_4).
/// Deterministic for a given `srand()` seed, but NOT gawk's exact sequence:
/// programs whose output depends on `rand()` values differ from gawk.
struct Random {
    state: [i32; 63],
    f: usize,
    r: usize,
}

impl Random {
    fn new(seed: u32) -> Self {
        let mut state = [0i32; 63];
        state[0] = seed as i32;
        for i in 1..63 {
            // Park-Miller "good_rand" with Schrage's method, as BSD random.c.
            // BSD's good_rand cannot start from 0.
            let x = if state[i - 1] == 0 {
                123_459_876
            } else {
                state[i - 1]
            };
            let hi = x / 127_773;
            let lo = x % 127_773;
            let mut w = 16_807i32
                .wrapping_mul(lo)
                .wrapping_sub(2_836i32.wrapping_mul(hi));
            if w <= 0 {
                w = w.wrapping_add(0x7fff_ffff);
            }
            state[i] = w;
        }
        let mut r = Random { state, f: 1, r: 0 };
        for _ in 0..630 {
            r.next();
        }
        r
    }

    fn next(&mut self) -> u32 {
        self.state[self.f] = self.state[self.f].wrapping_add(self.state[self.r]);
        let v = ((self.state[self.f] as u32) >> 1) & 0x7fff_ffff;
        self.f = (self.f + 1) % 63;
        self.r = (self.r + 1) % 63;
        v
    }

    fn next_f64(&mut self) -> f64 {
        const DIV: f64 = 2_147_483_648.0;
        loop {
            let d1 = f64::from(self.next());
            let d2 = f64::from(self.next());
            let mut t = 0.5 + ((d1 / DIV + d2) / DIV);
            t -= 0.5;
            if t != 1.0 {
                return t;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsub_empty_matches() {
        let re = PosixRegex::new(b"x*", Dialect::Awk, false).unwrap();
        assert_eq!(substitute(&re, b"abc", b"-", true).0, b"-a-b-c-");
        let re = PosixRegex::new(b"b*", Dialect::Awk, false).unwrap();
        assert_eq!(substitute(&re, b"abc", b"-", true).0, b"-a-c-");
        let re = PosixRegex::new(b"o", Dialect::Awk, false).unwrap();
        assert_eq!(
            substitute(&re, b"foo", b"[&\\&]", false),
            (b"f[o&]o".to_vec(), 1)
        );
    }

    #[test]
    fn field_splitting() {
        let mut v = Vec::new();
        split_into(b"  a b\t\tc ", &FieldSep::Space, false, &mut v);
        assert_eq!(v, [(2, 3), (4, 5), (7, 8)]);
        split_into(b"a::b", &FieldSep::Byte(b':'), false, &mut v);
        assert_eq!(v, [(0, 1), (2, 2), (3, 4)]);
        split_into(b"", &FieldSep::Byte(b':'), false, &mut v);
        assert!(v.is_empty());
    }

    #[test]
    fn integer_keys_sort_after_strings() {
        let mut m = Map::new();
        for k in ["10", "x", "2", "-1", "01"] {
            m.insert(Rc::from(k.as_bytes()), Value::Uninit);
        }
        let keys: Vec<_> = Interp::keys(&m)
            .iter()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect();
        assert_eq!(keys, ["x", "01", "-1", "2", "10"]);
    }
}
