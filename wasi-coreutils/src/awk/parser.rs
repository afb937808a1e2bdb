//! Recursive-descent parser from tokens to a resolved AST: variables are
//! slot indices (globals, function locals, or special variables), function
//! calls are indices, regex literals are precompiled.
//!
//! Guarantees: never panics on any token stream (checked by a proptest);
//! constructs the sandbox cannot run (`cmd | getline`, `print | cmd`,
//! `system()`) are rejected here as [`ParseError`]s marked unsupported.

use std::collections::HashMap;
use std::rc::Rc;

use super::ParseError;
use super::lexer::{Builtin, Tok, Token};
use crate::sed::posix_re::{Dialect, PosixRegex};

/// Variables with behaviour attached to reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    Nf,
    Nr,
    Fnr,
    Fs,
    Ofs,
    Ors,
    Rs,
    Subsep,
    Convfmt,
    Ofmt,
}

/// Where a scalar or array lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    Global(usize),
    Local(usize),
    Special(Special),
}

/// Fixed global slots set up by the interpreter.
pub const G_ARGC: usize = 0;
pub const G_ARGV: usize = 1;
pub const G_ENVIRON: usize = 2;
pub const G_FILENAME: usize = 3;
pub const G_RSTART: usize = 4;
pub const G_RLENGTH: usize = 5;
const PREDEFINED: [&str; 6] = ["ARGC", "ARGV", "ENVIRON", "FILENAME", "RSTART", "RLENGTH"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

#[derive(Debug, Clone)]
pub enum LValue {
    Var(Var),
    Field(Box<Expr>),
    Index(Var, Vec<Expr>),
}

#[derive(Debug, Clone)]
pub enum Expr {
    Num(f64),
    Str(Rc<[u8]>),
    /// A regex literal used as a value: matches `$0`.
    Regex(usize),
    Var(Var),
    Field(Box<Expr>),
    Index(Var, Vec<Expr>),
    In(Vec<Expr>, Var),
    Assign(Option<BinOp>, Box<LValue>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    UPlus(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    Concat(Box<Expr>, Box<Expr>),
    Match(bool, Box<Expr>, Box<Expr>),
    IncDec {
        pre: bool,
        delta: f64,
        lv: Box<LValue>,
    },
    Call(usize, Vec<Expr>),
    Builtin(Builtin, Vec<Expr>),
    /// `getline [var] [< file]` (plain getline reads the main input).
    Getline(Option<Box<LValue>>, Option<Box<Expr>>),
    Group(Box<Expr>),
}

#[derive(Debug, Clone)]
pub enum Redir {
    File(Expr),
    Append(Expr),
}

#[derive(Debug, Clone)]
pub enum Stmt {
    Expr(Expr),
    Print(Vec<Expr>, Option<Redir>),
    Printf(Vec<Expr>, Option<Redir>),
    If(Expr, Box<Stmt>, Option<Box<Stmt>>),
    While(Expr, Box<Stmt>),
    Do(Box<Stmt>, Expr),
    For(
        Option<Box<Stmt>>,
        Option<Expr>,
        Option<Box<Stmt>>,
        Box<Stmt>,
    ),
    ForIn(Var, Var, Box<Stmt>),
    Block(Vec<Stmt>),
    Next,
    NextFile,
    Exit(Option<Expr>),
    Return(Option<Expr>),
    Break,
    Continue,
    Delete(Var, Option<Vec<Expr>>),
}

#[derive(Debug, Clone)]
pub enum Pattern {
    All,
    Expr(Expr),
    /// Range with the index of its on/off flag.
    Range(Expr, Expr, usize),
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub pattern: Pattern,
    /// None means `{ print }`.
    pub action: Option<Vec<Stmt>>,
}

#[derive(Debug, Clone)]
pub struct Func {
    pub name: String,
    pub nparams: usize,
    pub body: Vec<Stmt>,
    /// Params the body uses as arrays (an uninitialized argument becomes one).
    pub array_params: Vec<bool>,
    pub defined: bool,
}

#[derive(Debug)]
pub struct Program {
    pub begin: Vec<Stmt>,
    pub end: Vec<Stmt>,
    pub rules: Vec<Rule>,
    pub funcs: Vec<Func>,
    pub regexes: Vec<Rc<PosixRegex>>,
    pub globals: Vec<String>,
    pub ranges: usize,
}

impl Program {
    /// The global slot of `name`, if the program mentions it.
    pub fn global(&self, name: &str) -> Option<usize> {
        self.globals.iter().position(|g| g == name)
    }
}

/// Resolves a name used outside the program text (`-v`, operands).
pub fn special_by_name(name: &str) -> Option<Special> {
    Some(match name {
        "NF" => Special::Nf,
        "NR" => Special::Nr,
        "FNR" => Special::Fnr,
        "FS" => Special::Fs,
        "OFS" => Special::Ofs,
        "ORS" => Special::Ors,
        "RS" => Special::Rs,
        "SUBSEP" => Special::Subsep,
        "CONVFMT" => Special::Convfmt,
        "OFMT" => Special::Ofmt,
        _ => return None,
    })
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    globals: Vec<String>,
    global_ix: HashMap<String, usize>,
    locals: Option<Vec<String>>,
    funcs: Vec<Func>,
    func_ix: HashMap<String, usize>,
    regexes: Vec<Rc<PosixRegex>>,
    ranges: usize,
    /// Inside `print` arguments outside parentheses: `>` is a redirection.
    no_gt: bool,
    /// Inside a `for (x in` header: `in` is not an operator.
    no_in: bool,
    loop_depth: usize,
    depth: usize,
}

const MAX_DEPTH: usize = 200;

/// Longest chain of one binary operator (`a b c ...`, `1+2+...`): the AST
/// is left-deep, so evaluating and dropping it recurses once per term.
const MAX_CHAIN: usize = 500;

/// Parses a whole program.
pub fn parse(toks: Vec<Token>) -> Result<Program, ParseError> {
    let mut p = Parser {
        toks,
        pos: 0,
        globals: Vec::new(),
        global_ix: HashMap::new(),
        locals: None,
        funcs: Vec::new(),
        func_ix: HashMap::new(),
        regexes: Vec::new(),
        ranges: 0,
        no_gt: false,
        no_in: false,
        loop_depth: 0,
        depth: 0,
    };
    for name in PREDEFINED {
        p.global_slot(name);
    }
    let mut begin = Vec::new();
    let mut end = Vec::new();
    let mut rules = Vec::new();
    p.skip_terms();
    while p.peek() != &Tok::Eof {
        match p.peek().clone() {
            Tok::Begin => {
                p.pos += 1;
                begin.extend(p.block()?);
            }
            Tok::End => {
                p.pos += 1;
                end.extend(p.block()?);
            }
            Tok::Function => p.function()?,
            Tok::LBrace => {
                let body = p.block()?;
                rules.push(Rule {
                    pattern: Pattern::All,
                    action: Some(body),
                });
            }
            _ => {
                let e1 = p.expr()?;
                let pattern = if p.eat(&Tok::Comma) {
                    p.skip_newlines();
                    let e2 = p.expr()?;
                    p.ranges += 1;
                    Pattern::Range(e1, e2, p.ranges - 1)
                } else {
                    Pattern::Expr(e1)
                };
                let action = if p.peek() == &Tok::LBrace {
                    Some(p.block()?)
                } else {
                    None
                };
                rules.push(Rule { pattern, action });
            }
        }
        if !matches!(p.peek(), Tok::Newline | Tok::Semi | Tok::Eof)
            && !matches!(
                p.toks.get(p.pos.wrapping_sub(1)).map(|t| &t.tok),
                Some(Tok::RBrace)
            )
        {
            return Err(p.err("syntax error"));
        }
        p.skip_terms();
    }
    for f in &p.funcs {
        if !f.defined {
            return Err(ParseError {
                fatal: false,
                line: 0,
                msg: format!("function `{}' called but never defined", f.name),
            });
        }
    }
    let mut funcs = p.funcs;
    for f in &mut funcs {
        let mut arr = vec![false; f.nparams];
        for s in &f.body {
            mark_arrays_stmt(s, &mut arr);
        }
        f.array_params = arr;
    }
    Ok(Program {
        begin,
        end,
        rules,
        funcs,
        regexes: p.regexes,
        globals: p.globals,
        ranges: p.ranges,
    })
}

fn mark_var(v: &Var, arr: &mut [bool]) {
    if let Var::Local(i) = v
        && let Some(a) = arr.get_mut(*i)
    {
        *a = true;
    }
}

fn mark_arrays_stmt(s: &Stmt, arr: &mut [bool]) {
    match s {
        Stmt::Expr(e) => mark_arrays_expr(e, arr),
        Stmt::Print(es, r) | Stmt::Printf(es, r) => {
            es.iter().for_each(|e| mark_arrays_expr(e, arr));
            if let Some(Redir::File(e) | Redir::Append(e)) = r {
                mark_arrays_expr(e, arr);
            }
        }
        Stmt::If(c, a, b) => {
            mark_arrays_expr(c, arr);
            mark_arrays_stmt(a, arr);
            if let Some(b) = b {
                mark_arrays_stmt(b, arr);
            }
        }
        Stmt::While(c, b) | Stmt::Do(b, c) => {
            mark_arrays_expr(c, arr);
            mark_arrays_stmt(b, arr);
        }
        Stmt::For(i, c, st, b) => {
            if let Some(i) = i {
                mark_arrays_stmt(i, arr);
            }
            if let Some(c) = c {
                mark_arrays_expr(c, arr);
            }
            if let Some(st) = st {
                mark_arrays_stmt(st, arr);
            }
            mark_arrays_stmt(b, arr);
        }
        Stmt::ForIn(_, a, b) => {
            mark_var(a, arr);
            mark_arrays_stmt(b, arr);
        }
        Stmt::Block(b) => b.iter().for_each(|s| mark_arrays_stmt(s, arr)),
        Stmt::Exit(Some(e)) | Stmt::Return(Some(e)) => mark_arrays_expr(e, arr),
        Stmt::Delete(a, ix) => {
            mark_var(a, arr);
            if let Some(ix) = ix {
                ix.iter().for_each(|e| mark_arrays_expr(e, arr));
            }
        }
        _ => {}
    }
}

fn mark_arrays_lv(lv: &LValue, arr: &mut [bool]) {
    match lv {
        LValue::Var(_) => {}
        LValue::Field(e) => mark_arrays_expr(e, arr),
        LValue::Index(a, ix) => {
            mark_var(a, arr);
            ix.iter().for_each(|e| mark_arrays_expr(e, arr));
        }
    }
}

fn mark_arrays_expr(e: &Expr, arr: &mut [bool]) {
    match e {
        Expr::Index(a, ix) | Expr::In(ix, a) => {
            mark_var(a, arr);
            ix.iter().for_each(|e| mark_arrays_expr(e, arr));
        }
        Expr::Field(e) | Expr::Not(e) | Expr::Neg(e) | Expr::UPlus(e) | Expr::Group(e) => {
            mark_arrays_expr(e, arr)
        }
        Expr::Assign(_, lv, e) => {
            mark_arrays_lv(lv, arr);
            mark_arrays_expr(e, arr);
        }
        Expr::IncDec { lv, .. } => mark_arrays_lv(lv, arr),
        Expr::Cond(a, b, c) => {
            mark_arrays_expr(a, arr);
            mark_arrays_expr(b, arr);
            mark_arrays_expr(c, arr);
        }
        Expr::And(a, b)
        | Expr::Or(a, b)
        | Expr::Bin(_, a, b)
        | Expr::Cmp(_, a, b)
        | Expr::Concat(a, b)
        | Expr::Match(_, a, b) => {
            mark_arrays_expr(a, arr);
            mark_arrays_expr(b, arr);
        }
        Expr::Call(_, args) => args.iter().for_each(|e| mark_arrays_expr(e, arr)),
        Expr::Builtin(b, args) => {
            if *b == Builtin::Split
                && let Some(Expr::Var(v)) = args.get(1)
            {
                mark_var(v, arr);
            }
            if *b == Builtin::Length {
                // length(x) works on both; leave the decision to run time.
            }
            args.iter().for_each(|e| mark_arrays_expr(e, arr));
        }
        Expr::Getline(lv, f) => {
            if let Some(lv) = lv {
                mark_arrays_lv(lv, arr);
            }
            if let Some(f) = f {
                mark_arrays_expr(f, arr);
            }
        }
        _ => {}
    }
}

impl Parser {
    fn peek(&self) -> &Tok {
        self.toks.get(self.pos).map(|t| &t.tok).unwrap_or(&Tok::Eof)
    }

    fn peek_at(&self, k: usize) -> &Tok {
        self.toks
            .get(self.pos + k)
            .map(|t| &t.tok)
            .unwrap_or(&Tok::Eof)
    }

    fn line(&self) -> usize {
        self.toks
            .get(self.pos)
            .or(self.toks.last())
            .map(|t| t.line)
            .unwrap_or(1)
    }

    fn err(&self, msg: &str) -> ParseError {
        ParseError {
            fatal: false,
            line: self.line(),
            msg: msg.to_string(),
        }
    }

    fn unsupported(&self, what: &str) -> ParseError {
        ParseError {
            fatal: true,
            line: self.line(),
            msg: format!("unsupported in the sandbox: {what}"),
        }
    }

    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == t {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, t: &Tok, what: &str) -> Result<(), ParseError> {
        if self.eat(t) {
            Ok(())
        } else {
            Err(self.err(&format!("syntax error: expected {what}")))
        }
    }

    fn skip_newlines(&mut self) {
        while self.peek() == &Tok::Newline {
            self.pos += 1;
        }
    }

    fn skip_terms(&mut self) {
        while matches!(self.peek(), Tok::Newline | Tok::Semi) {
            self.pos += 1;
        }
    }

    fn global_slot(&mut self, name: &str) -> usize {
        if let Some(&i) = self.global_ix.get(name) {
            return i;
        }
        self.globals.push(name.to_string());
        self.global_ix
            .insert(name.to_string(), self.globals.len() - 1);
        self.globals.len() - 1
    }

    fn resolve(&mut self, name: &str) -> Result<Var, ParseError> {
        if let Some(sp) = special_by_name(name) {
            return Ok(Var::Special(sp));
        }
        if let Some(locals) = &self.locals
            && let Some(i) = locals.iter().position(|l| l == name)
        {
            return Ok(Var::Local(i));
        }
        if self
            .func_ix
            .get(name)
            .is_some_and(|&i| self.funcs[i].defined)
        {
            return Err(self.err(&format!("function name `{name}' used as a variable")));
        }
        Ok(Var::Global(self.global_slot(name)))
    }

    fn array_var(&mut self, name: &str) -> Result<Var, ParseError> {
        match self.resolve(name)? {
            Var::Special(_) => {
                Err(self.err(&format!("attempt to use scalar `{name}' as an array")))
            }
            v => Ok(v),
        }
    }

    fn func_index(&mut self, name: &str) -> usize {
        if let Some(&i) = self.func_ix.get(name) {
            return i;
        }
        self.funcs.push(Func {
            name: name.to_string(),
            nparams: 0,
            body: Vec::new(),
            array_params: Vec::new(),
            defined: false,
        });
        self.func_ix.insert(name.to_string(), self.funcs.len() - 1);
        self.funcs.len() - 1
    }

    fn regex(&mut self, src: &[u8]) -> Result<usize, ParseError> {
        let re = PosixRegex::new(src, Dialect::Awk, false).map_err(|e| ParseError {
            fatal: true,
            line: self.line(),
            msg: format!("{e}: /{}/", String::from_utf8_lossy(src)),
        })?;
        self.regexes.push(Rc::new(re));
        Ok(self.regexes.len() - 1)
    }

    fn function(&mut self) -> Result<(), ParseError> {
        self.pos += 1;
        let name = match self.peek().clone() {
            Tok::Name(n) | Tok::FuncName(n) => n,
            _ => return Err(self.err("syntax error: expected function name")),
        };
        self.pos += 1;
        if special_by_name(&name).is_some()
            || self.global_ix.contains_key(&name) && PREDEFINED.contains(&name.as_str())
        {
            return Err(self.err(&format!("cannot use `{name}' as a function name")));
        }
        let ix = self.func_index(&name);
        if self.funcs[ix].defined {
            return Err(self.err(&format!("function `{name}' previously defined")));
        }
        self.expect(&Tok::LParen, "(")?;
        let mut params = Vec::new();
        self.skip_newlines();
        if !self.eat(&Tok::RParen) {
            loop {
                self.skip_newlines();
                match self.peek().clone() {
                    Tok::Name(n) => {
                        if params.contains(&n) {
                            return Err(self.err(&format!("duplicate parameter `{n}'")));
                        }
                        params.push(n);
                        self.pos += 1;
                    }
                    _ => return Err(self.err("syntax error in parameter list")),
                }
                self.skip_newlines();
                if self.eat(&Tok::RParen) {
                    break;
                }
                self.expect(&Tok::Comma, ",")?;
            }
        }
        self.skip_newlines();
        let n = params.len();
        self.locals = Some(params);
        let body = self.block();
        self.locals = None;
        let body = body?;
        let f = &mut self.funcs[ix];
        f.nparams = n;
        f.body = body;
        f.defined = true;
        Ok(())
    }

    fn block(&mut self) -> Result<Vec<Stmt>, ParseError> {
        self.skip_newlines();
        self.expect(&Tok::LBrace, "{")?;
        let mut out = Vec::new();
        loop {
            self.skip_terms();
            if self.eat(&Tok::RBrace) {
                return Ok(out);
            }
            if self.peek() == &Tok::Eof {
                return Err(self.err("unexpected end of program: missing }"));
            }
            out.push(self.stmt()?);
        }
    }

    /// After a simple statement: `;`, newline, or (not consumed) `}`.
    fn end_simple(&mut self) -> Result<(), ParseError> {
        match self.peek() {
            Tok::Semi | Tok::Newline => {
                self.pos += 1;
                Ok(())
            }
            Tok::RBrace | Tok::Eof => Ok(()),
            _ => Err(self.err("syntax error")),
        }
    }

    fn simple_or_block(&mut self) -> Result<Stmt, ParseError> {
        self.skip_newlines();
        if self.eat(&Tok::Semi) {
            return Ok(Stmt::Block(Vec::new()));
        }
        self.stmt()
    }

    fn stmt(&mut self) -> Result<Stmt, ParseError> {
        if self.depth > MAX_DEPTH {
            return Err(self.err("statements nested too deeply"));
        }
        self.depth += 1;
        let r = self.stmt_inner();
        self.depth -= 1;
        r
    }

    fn stmt_inner(&mut self) -> Result<Stmt, ParseError> {
        let s = match self.peek().clone() {
            Tok::LBrace => return Ok(Stmt::Block(self.block()?)),
            Tok::If => {
                self.pos += 1;
                self.expect(&Tok::LParen, "(")?;
                let c = self.expr()?;
                self.expect(&Tok::RParen, ")")?;
                let then = self.simple_or_block()?;
                let save = self.pos;
                self.skip_terms();
                if self.eat(&Tok::Else) {
                    let els = self.simple_or_block()?;
                    return Ok(Stmt::If(c, Box::new(then), Some(Box::new(els))));
                }
                self.pos = save;
                return Ok(Stmt::If(c, Box::new(then), None));
            }
            Tok::While => {
                self.pos += 1;
                self.expect(&Tok::LParen, "(")?;
                let c = self.expr()?;
                self.expect(&Tok::RParen, ")")?;
                if self.peek() == &Tok::Semi {
                    self.pos += 1;
                    return Ok(Stmt::While(c, Box::new(Stmt::Block(Vec::new()))));
                }
                self.loop_depth += 1;
                let body = self.simple_or_block();
                self.loop_depth -= 1;
                return Ok(Stmt::While(c, Box::new(body?)));
            }
            Tok::Do => {
                self.pos += 1;
                self.loop_depth += 1;
                let body = self.simple_or_block();
                self.loop_depth -= 1;
                let body = body?;
                self.skip_terms();
                self.expect(&Tok::While, "while")?;
                self.expect(&Tok::LParen, "(")?;
                let c = self.expr()?;
                self.expect(&Tok::RParen, ")")?;
                Stmt::Do(Box::new(body), c)
            }
            Tok::For => {
                self.pos += 1;
                self.expect(&Tok::LParen, "(")?;
                // for (k in a)
                if let (Tok::Name(k), Tok::In, Tok::Name(a), Tok::RParen) = (
                    self.peek_at(0).clone(),
                    self.peek_at(1).clone(),
                    self.peek_at(2).clone(),
                    self.peek_at(3).clone(),
                ) {
                    self.pos += 4;
                    let kv = self.resolve(&k)?;
                    let av = self.array_var(&a)?;
                    self.loop_depth += 1;
                    let body = self.simple_or_block();
                    self.loop_depth -= 1;
                    return Ok(Stmt::ForIn(kv, av, Box::new(body?)));
                }
                let init = if self.peek() == &Tok::Semi {
                    None
                } else {
                    Some(Box::new(self.simple_stmt()?))
                };
                self.expect(&Tok::Semi, ";")?;
                self.skip_newlines();
                let cond = if self.peek() == &Tok::Semi {
                    None
                } else {
                    Some(self.expr()?)
                };
                self.expect(&Tok::Semi, ";")?;
                self.skip_newlines();
                let step = if self.peek() == &Tok::RParen {
                    None
                } else {
                    Some(Box::new(self.simple_stmt()?))
                };
                self.expect(&Tok::RParen, ")")?;
                if self.peek() == &Tok::Semi {
                    self.pos += 1;
                    return Ok(Stmt::For(
                        init,
                        cond,
                        step,
                        Box::new(Stmt::Block(Vec::new())),
                    ));
                }
                self.loop_depth += 1;
                let body = self.simple_or_block();
                self.loop_depth -= 1;
                return Ok(Stmt::For(init, cond, step, Box::new(body?)));
            }
            Tok::Semi => {
                self.pos += 1;
                return Ok(Stmt::Block(Vec::new()));
            }
            _ => self.simple_stmt()?,
        };
        self.end_simple()?;
        Ok(s)
    }

    fn simple_stmt(&mut self) -> Result<Stmt, ParseError> {
        Ok(match self.peek().clone() {
            Tok::Print | Tok::Printf => {
                let is_printf = self.peek() == &Tok::Printf;
                self.pos += 1;
                let args = self.print_args()?;
                let redir = match self.peek() {
                    Tok::Gt => {
                        self.pos += 1;
                        Some(Redir::File(self.concat_no_gt()?))
                    }
                    Tok::Append => {
                        self.pos += 1;
                        Some(Redir::Append(self.concat_no_gt()?))
                    }
                    Tok::Pipe => {
                        return Err(self.unsupported("output to a command (print | \"cmd\")"));
                    }
                    _ => None,
                };
                if is_printf {
                    if args.is_empty() {
                        return Err(self.err("printf: no format"));
                    }
                    Stmt::Printf(args, redir)
                } else {
                    Stmt::Print(args, redir)
                }
            }
            Tok::Next => {
                self.pos += 1;
                if self.locals.is_none() && self.in_begin_end() {
                    return Err(self.err("`next' used in BEGIN or END action"));
                }
                Stmt::Next
            }
            Tok::Nextfile => {
                self.pos += 1;
                Stmt::NextFile
            }
            Tok::Exit => {
                self.pos += 1;
                let e = if self.at_simple_end() {
                    None
                } else {
                    Some(self.expr()?)
                };
                Stmt::Exit(e)
            }
            Tok::Return => {
                self.pos += 1;
                if self.locals.is_none() {
                    return Err(self.err("`return' used outside function context"));
                }
                let e = if self.at_simple_end() {
                    None
                } else {
                    Some(self.expr()?)
                };
                Stmt::Return(e)
            }
            Tok::Break => {
                self.pos += 1;
                if self.loop_depth == 0 {
                    return Err(self.err("`break' is not allowed outside a loop"));
                }
                Stmt::Break
            }
            Tok::Continue => {
                self.pos += 1;
                if self.loop_depth == 0 {
                    return Err(self.err("`continue' is not allowed outside a loop"));
                }
                Stmt::Continue
            }
            Tok::Delete => {
                self.pos += 1;
                let name = match self.peek().clone() {
                    Tok::Name(n) => n,
                    _ => return Err(self.err("syntax error: delete needs an array")),
                };
                self.pos += 1;
                let a = self.array_var(&name)?;
                if self.eat(&Tok::LBracket) {
                    let ix = self.expr_list(&Tok::RBracket)?;
                    Stmt::Delete(a, Some(ix))
                } else {
                    Stmt::Delete(a, None)
                }
            }
            _ => Stmt::Expr(self.expr()?),
        })
    }

    fn in_begin_end(&self) -> bool {
        // Look back for the BEGIN/END keyword that opened the current item.
        let mut depth = 0i32;
        for t in self.toks[..self.pos.min(self.toks.len())].iter().rev() {
            match t.tok {
                Tok::RBrace => depth += 1,
                Tok::LBrace => depth -= 1,
                Tok::Begin | Tok::End if depth < 0 => return true,
                _ => {}
            }
        }
        false
    }

    fn at_simple_end(&self) -> bool {
        matches!(
            self.peek(),
            Tok::Semi | Tok::Newline | Tok::RBrace | Tok::Eof
        )
    }

    fn print_args(&mut self) -> Result<Vec<Expr>, ParseError> {
        if self.at_simple_end() || matches!(self.peek(), Tok::Gt | Tok::Append | Tok::Pipe) {
            return Ok(Vec::new());
        }
        // `print (a, b) > f`: a parenthesized list is the argument list.
        if self.peek() == &Tok::LParen {
            let save = self.pos;
            self.pos += 1;
            let saved = (self.no_gt, self.no_in);
            self.no_gt = false;
            self.no_in = false;
            let list = self.expr_list(&Tok::RParen);
            (self.no_gt, self.no_in) = saved;
            if let Ok(list) = list
                && (self.at_simple_end()
                    || matches!(self.peek(), Tok::Gt | Tok::Append | Tok::Pipe))
            {
                return Ok(list);
            }
            self.pos = save;
        }
        let saved = self.no_gt;
        self.no_gt = true;
        let mut args = Vec::new();
        let r = (|| {
            loop {
                args.push(self.expr()?);
                if !self.eat(&Tok::Comma) {
                    return Ok(());
                }
                self.skip_newlines();
            }
        })();
        self.no_gt = saved;
        r.map(|()| args)
    }

    /// Comma-separated expressions up to `close` (consumed).
    fn expr_list(&mut self, close: &Tok) -> Result<Vec<Expr>, ParseError> {
        let mut v = Vec::new();
        self.skip_newlines();
        if self.eat(close) {
            return Ok(v);
        }
        loop {
            v.push(self.expr()?);
            self.skip_newlines();
            if self.eat(close) {
                return Ok(v);
            }
            if !self.eat(&Tok::Comma) {
                return Err(self.err("syntax error in expression list"));
            }
            self.skip_newlines();
        }
    }

    pub fn expr(&mut self) -> Result<Expr, ParseError> {
        // Bounded recursion: hostile programs must not overflow the stack.
        if self.depth > MAX_DEPTH {
            return Err(self.err("expression nested too deeply"));
        }
        self.depth += 1;
        let r = self.ternary();
        self.depth -= 1;
        r
    }

    fn to_lvalue(&self, e: Expr) -> Option<LValue> {
        match e {
            Expr::Var(v) => Some(LValue::Var(v)),
            Expr::Field(e) => Some(LValue::Field(e)),
            Expr::Index(a, ix) => Some(LValue::Index(a, ix)),
            _ => None,
        }
    }

    fn ternary(&mut self) -> Result<Expr, ParseError> {
        let c = self.or()?;
        if let Some(op) = assign_op(self.peek())
            && let Some(lv) = self.to_lvalue(c.clone())
        {
            // `a /= b` vs regex: the lexer already chose DivAssign.
            self.pos += 1;
            self.skip_newlines();
            let rhs = self.expr()?;
            return Ok(Expr::Assign(op, Box::new(lv), Box::new(rhs)));
        }
        if self.eat(&Tok::Quest) {
            self.skip_newlines();
            let a = self.expr()?;
            self.skip_newlines();
            self.expect(&Tok::Colon, ":")?;
            self.skip_newlines();
            let b = self.expr()?;
            return Ok(Expr::Cond(Box::new(c), Box::new(a), Box::new(b)));
        }
        Ok(c)
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.and()?;
        let mut terms = 0usize;
        while self.eat(&Tok::Or) {
            self.skip_newlines();
            let r = self.and()?;
            terms += 1;
            if terms > MAX_CHAIN {
                return Err(self.err("expression too long"));
            }
            l = Expr::Or(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.in_expr()?;
        let mut terms = 0usize;
        while self.eat(&Tok::And) {
            self.skip_newlines();
            let r = self.in_expr()?;
            terms += 1;
            if terms > MAX_CHAIN {
                return Err(self.err("expression too long"));
            }
            l = Expr::And(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn in_expr(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.match_expr()?;
        while !self.no_in && self.peek() == &Tok::In {
            self.pos += 1;
            let name = match self.peek().clone() {
                Tok::Name(n) => n,
                _ => return Err(self.err("syntax error: `in' needs an array name")),
            };
            self.pos += 1;
            let a = self.array_var(&name)?;
            let keys = match l {
                Expr::Group(e) => vec![*e],
                Expr::In(..) => return Err(self.err("syntax error")),
                other => vec![other],
            };
            l = Expr::In(keys, a);
        }
        Ok(l)
    }

    fn match_expr(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.cmp()?;
        loop {
            let neg = match self.peek() {
                Tok::Match => false,
                Tok::NoMatch => true,
                _ => return Ok(l),
            };
            self.pos += 1;
            let r = self.cmp()?;
            l = Expr::Match(neg, Box::new(l), Box::new(r));
        }
    }

    fn cmp(&mut self) -> Result<Expr, ParseError> {
        let l = self.concat()?;
        let op = match self.peek() {
            Tok::Lt => CmpOp::Lt,
            Tok::Le => CmpOp::Le,
            Tok::Gt if !self.no_gt => CmpOp::Gt,
            Tok::Ge => CmpOp::Ge,
            Tok::Eq => CmpOp::Eq,
            Tok::Ne => CmpOp::Ne,
            Tok::Pipe if self.peek_at(1) == &Tok::Getline => {
                return Err(self.unsupported("reading from a command (\"cmd\" | getline)"));
            }
            _ => return Ok(l),
        };
        self.pos += 1;
        let r = self.concat()?;
        Ok(Expr::Cmp(op, Box::new(l), Box::new(r)))
    }

    /// A concatenation that stops at `>` (redirection targets).
    fn concat_no_gt(&mut self) -> Result<Expr, ParseError> {
        let saved = self.no_gt;
        self.no_gt = true;
        let r = self.concat();
        self.no_gt = saved;
        r
    }

    fn starts_operand(&self) -> bool {
        match self.peek() {
            Tok::Num(_)
            | Tok::Str(_)
            | Tok::Regex(_)
            | Tok::Name(_)
            | Tok::FuncName(_)
            | Tok::Builtin(_)
            | Tok::Dollar
            | Tok::Not
            | Tok::LParen
            | Tok::Minus
            | Tok::Plus
            | Tok::Incr
            | Tok::Decr => true,
            Tok::In => false,
            _ => false,
        }
    }

    fn concat(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.additive()?;
        let mut terms = 0usize;
        loop {
            if !self.starts_operand() || matches!(self.peek(), Tok::Minus | Tok::Plus | Tok::Not) {
                return Ok(l);
            }
            // `getline` after an operand would be `cmd | getline` without the pipe.
            let r = self.additive()?;
            terms += 1;
            if terms > MAX_CHAIN {
                return Err(self.err("expression too long"));
            }
            l = Expr::Concat(Box::new(l), Box::new(r));
        }
    }

    fn additive(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.mul()?;
        let mut terms = 0usize;
        loop {
            let op = match self.peek() {
                Tok::Plus => BinOp::Add,
                Tok::Minus => BinOp::Sub,
                _ => return Ok(l),
            };
            self.pos += 1;
            let r = self.mul()?;
            terms += 1;
            if terms > MAX_CHAIN {
                return Err(self.err("expression too long"));
            }
            l = Expr::Bin(op, Box::new(l), Box::new(r));
        }
    }

    fn mul(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.unary()?;
        let mut terms = 0usize;
        loop {
            let op = match self.peek() {
                Tok::Star => BinOp::Mul,
                Tok::Slash => BinOp::Div,
                Tok::Percent => BinOp::Mod,
                _ => return Ok(l),
            };
            self.pos += 1;
            let r = self.unary()?;
            terms += 1;
            if terms > MAX_CHAIN {
                return Err(self.err("expression too long"));
            }
            l = Expr::Bin(op, Box::new(l), Box::new(r));
        }
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.depth > MAX_DEPTH {
            return Err(self.err("expression nested too deeply"));
        }
        self.depth += 1;
        let r = self.unary_inner();
        self.depth -= 1;
        r
    }

    fn unary_inner(&mut self) -> Result<Expr, ParseError> {
        match self.peek() {
            Tok::Not => {
                self.pos += 1;
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            Tok::Minus => {
                self.pos += 1;
                Ok(Expr::Neg(Box::new(self.unary()?)))
            }
            Tok::Plus => {
                self.pos += 1;
                Ok(Expr::UPlus(Box::new(self.unary()?)))
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Result<Expr, ParseError> {
        if self.depth > MAX_DEPTH {
            return Err(self.err("expression nested too deeply"));
        }
        self.depth += 1;
        let r = self.power_inner();
        self.depth -= 1;
        r
    }

    fn power_inner(&mut self) -> Result<Expr, ParseError> {
        let base = self.postfix()?;
        if self.eat(&Tok::Caret) {
            // Right-associative, and binds tighter than unary minus on its left only.
            let exp = match self.peek() {
                Tok::Minus => {
                    self.pos += 1;
                    Expr::Neg(Box::new(self.power()?))
                }
                Tok::Plus => {
                    self.pos += 1;
                    self.power()?
                }
                Tok::Not => {
                    self.pos += 1;
                    Expr::Not(Box::new(self.power()?))
                }
                _ => self.power()?,
            };
            return Ok(Expr::Bin(BinOp::Pow, Box::new(base), Box::new(exp)));
        }
        Ok(base)
    }

    fn postfix(&mut self) -> Result<Expr, ParseError> {
        let e = self.primary()?;
        let delta = match self.peek() {
            Tok::Incr => 1.0,
            Tok::Decr => -1.0,
            _ => return Ok(e),
        };
        if let Some(lv) = self.to_lvalue(e.clone()) {
            self.pos += 1;
            return Ok(Expr::IncDec {
                pre: false,
                delta,
                lv: Box::new(lv),
            });
        }
        Ok(e)
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let tok = self.peek().clone();
        self.pos += 1;
        Ok(match tok {
            Tok::Num(n) => Expr::Num(n),
            Tok::Str(s) => Expr::Str(Rc::from(s)),
            Tok::Regex(r) => Expr::Regex(self.regex(&r)?),
            Tok::Dollar if self.depth > MAX_DEPTH => {
                return Err(self.err("expression nested too deeply"));
            }
            Tok::Dollar => {
                self.depth += 1;
                // `$` binds tighter than everything but grouping and ++/--.
                let e = match self.peek() {
                    Tok::Incr | Tok::Decr | Tok::Minus | Tok::Not | Tok::Plus => self.unary(),
                    _ => self.primary(),
                };
                self.depth -= 1;
                Expr::Field(Box::new(e?))
            }
            Tok::Incr | Tok::Decr => {
                let delta = if tok == Tok::Incr { 1.0 } else { -1.0 };
                let e = self.primary()?;
                let lv = self
                    .to_lvalue(e)
                    .ok_or_else(|| self.err("syntax error: ++/-- needs a variable"))?;
                Expr::IncDec {
                    pre: true,
                    delta,
                    lv: Box::new(lv),
                }
            }
            Tok::LParen => {
                let saved = (self.no_gt, self.no_in);
                self.no_gt = false;
                self.no_in = false;
                let list = self.expr_list(&Tok::RParen);
                (self.no_gt, self.no_in) = saved;
                let mut list = list?;
                if list.len() > 1 {
                    if self.peek() != &Tok::In {
                        return Err(self.err("syntax error: expression list outside `in'"));
                    }
                    self.pos += 1;
                    let name = match self.peek().clone() {
                        Tok::Name(n) => n,
                        _ => return Err(self.err("syntax error: `in' needs an array name")),
                    };
                    self.pos += 1;
                    let a = self.array_var(&name)?;
                    return Ok(Expr::In(list, a));
                }
                match list.pop() {
                    Some(e) => Expr::Group(Box::new(e)),
                    None => return Err(self.err("syntax error: empty ()")),
                }
            }
            Tok::Name(n) => {
                if self.peek() == &Tok::LBracket {
                    self.pos += 1;
                    let a = self.array_var(&n)?;
                    let ix = self.expr_list(&Tok::RBracket)?;
                    if ix.is_empty() {
                        return Err(self.err("syntax error: empty subscript"));
                    }
                    Expr::Index(a, ix)
                } else {
                    Expr::Var(self.resolve(&n)?)
                }
            }
            Tok::FuncName(n) => {
                if special_by_name(&n).is_some()
                    || self.locals.as_ref().is_some_and(|l| l.contains(&n))
                {
                    return Err(self.err(&format!("`{n}' is not a function")));
                }
                let ix = self.func_index(&n);
                self.expect(&Tok::LParen, "(")?;
                let args = self.expr_list(&Tok::RParen)?;
                Expr::Call(ix, args)
            }
            Tok::Builtin(b) => self.builtin(b)?,
            Tok::Getline => {
                let var = match self.peek() {
                    Tok::Name(_) | Tok::Dollar => {
                        let e = self.primary()?;
                        Some(Box::new(
                            self.to_lvalue(e)
                                .ok_or_else(|| self.err("syntax error after getline"))?,
                        ))
                    }
                    _ => None,
                };
                let file = if self.eat(&Tok::Lt) {
                    Some(Box::new(self.primary_concatless()?))
                } else {
                    None
                };
                Expr::Getline(var, file)
            }
            Tok::Minus => Expr::Neg(Box::new(self.unary()?)),
            Tok::Plus => Expr::UPlus(Box::new(self.unary()?)),
            Tok::Not => Expr::Not(Box::new(self.unary()?)),
            _ => {
                self.pos -= 1;
                return Err(self.err("syntax error"));
            }
        })
    }

    /// The file operand of `getline <`: a primary with `$` and postfix only.
    fn primary_concatless(&mut self) -> Result<Expr, ParseError> {
        self.postfix()
    }

    fn builtin(&mut self, b: Builtin) -> Result<Expr, ParseError> {
        if b == Builtin::System {
            return Err(self.unsupported("system()"));
        }
        if b == Builtin::Length && self.peek() != &Tok::LParen {
            return Ok(Expr::Builtin(b, Vec::new()));
        }
        self.expect(&Tok::LParen, "(")?;
        let args = self.expr_list(&Tok::RParen)?;
        let (min, max) = match b {
            Builtin::Length => (0, 1),
            Builtin::Substr => (2, 3),
            Builtin::Index => (2, 2),
            Builtin::Split => (2, 3),
            Builtin::Sub | Builtin::Gsub => (2, 3),
            Builtin::Match => (2, 2),
            Builtin::Sprintf => (1, usize::MAX),
            Builtin::Tolower | Builtin::Toupper => (1, 1),
            Builtin::Int
            | Builtin::Sqrt
            | Builtin::Exp
            | Builtin::Log
            | Builtin::Sin
            | Builtin::Cos => (1, 1),
            Builtin::Atan2 => (2, 2),
            Builtin::Rand => (0, 0),
            Builtin::Srand => (0, 1),
            Builtin::Close => (1, 1),
            Builtin::Fflush => (0, 1),
            Builtin::System => (1, 1),
        };
        if args.len() < min || args.len() > max {
            return Err(
                self.err(&format!("{b:?}: called with {} arguments", args.len()).to_lowercase())
            );
        }
        if b == Builtin::Split
            && !matches!(args.get(1), Some(Expr::Var(Var::Global(_) | Var::Local(_))))
        {
            return Err(self.err("split: second argument is not an array"));
        }
        if matches!(b, Builtin::Sub | Builtin::Gsub)
            && let Some(t) = args.get(2)
            && self.to_lvalue(t.clone()).is_none()
        {
            return Err(self.err("sub/gsub third parameter is not a changeable object"));
        }
        Ok(Expr::Builtin(b, args))
    }
}

fn assign_op(t: &Tok) -> Option<Option<BinOp>> {
    Some(match t {
        Tok::Assign => None,
        Tok::AddAssign => Some(BinOp::Add),
        Tok::SubAssign => Some(BinOp::Sub),
        Tok::MulAssign => Some(BinOp::Mul),
        Tok::DivAssign => Some(BinOp::Div),
        Tok::ModAssign => Some(BinOp::Mod),
        Tok::PowAssign => Some(BinOp::Pow),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::awk::lexer::lex;

    fn parse_str(s: &str) -> Result<Program, ParseError> {
        parse(lex(s.as_bytes())?)
    }

    #[test]
    fn parses_common_programs() {
        for p in [
            "{ s += $3 } END { print s }",
            "BEGIN { FS = \":\" } $1 ~ /^r/ { print $1, NF }",
            "NR==1, /end/ { print > \"out\" }",
            "function f(a, b) { a[1] = b; return b * 2 } BEGIN { print f(x, 3) }",
            "{ for (k in a) delete a[k]; if ((1,2) in a) print \"y\"; else print \"n\" }",
            "BEGIN { while ((getline line < \"f\") > 0) n++; print n }",
            "{ print (1,2) }\n{ printf \"%s\\n\", $0 }",
            "BEGIN { x = y = 3; print x ^ -1, -2 ^ 2, !x, x++ + ++x, a b c }",
            "{ $1 = \"\"; print; print length, length($0), length() }",
        ] {
            parse_str(p).unwrap_or_else(|e| panic!("{p}: {e}"));
        }
    }

    #[test]
    fn rejects_unsupported_and_errors() {
        assert!(
            parse_str("{ print | \"sort\" }")
                .unwrap_err()
                .msg
                .contains("unsupported")
        );
        assert!(
            parse_str("BEGIN { \"date\" | getline d }")
                .unwrap_err()
                .msg
                .contains("unsupported")
        );
        assert!(
            parse_str("BEGIN { system(\"ls\") }")
                .unwrap_err()
                .msg
                .contains("unsupported")
        );
        assert!(parse_str("BEGIN {").is_err());
        assert!(parse_str("BEGIN { f(1) }").is_err());
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(s in "[ -~\n]{0,60}") {
            if let Ok(t) = lex(s.as_bytes()) {
                let _ = parse(t);
            }
        }

        #[test]
        fn lexer_never_panics(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80)) {
            if let Ok(t) = lex(&b) {
                let _ = parse(t);
            }
        }
    }
}
