//! Shell arithmetic (`$((...))`, `((...))`, `for ((...; ...; ...))`):
//! parsed once while lowering into a small tree, evaluated by the
//! interpreter with bash's rules for 64-bit signed integers.
//!
//! What it guarantees:
//! - **Bounded.** Parsing recurses once per level of parentheses or
//!   unary/ternary/assignment nesting and refuses past [`MAX_ARITH_DEPTH`];
//!   evaluation walks the tree it parsed, so it is bounded the same way.
//!   A variable whose value names another variable is followed at most
//!   [`MAX_INDIRECTION`] times.
//! - **bash's semantics** for what it accepts: C precedence with `**`
//!   (right-associative) above `*`, wrapping 64-bit arithmetic, `&&`, `||`
//!   and `?:` evaluating only the operand they need, numbers in decimal,
//!   octal (`017`), hexadecimal (`0x1f`) and `BASE#DIGITS`, unset or empty
//!   variables reading as 0, and the errors bash reports (division by 0,
//!   a value that is not a number) as `Err` with bash's message.

use crate::ScriptError;

/// Deepest nesting an arithmetic expression may have.
pub const MAX_ARITH_DEPTH: usize = 64;
/// How many times a variable's value naming another variable is followed.
pub const MAX_INDIRECTION: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Mul,
    Div,
    Rem,
    Add,
    Sub,
    Shl,
    Shr,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    BitAnd,
    BitXor,
    BitOr,
    Pow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Plus,
    Not,
    BitNot,
}

/// An arithmetic expression.
#[derive(Debug, Clone)]
pub enum Arith {
    Num(i64),
    /// A variable (or positional parameter) read as a number.
    Var(String),
    Unary(UnOp, Box<Arith>),
    Binary(BinOp, Box<Arith>, Box<Arith>),
    And(Box<Arith>, Box<Arith>),
    Or(Box<Arith>, Box<Arith>),
    Cond(Box<Arith>, Box<Arith>, Box<Arith>),
    /// `v = e`, or `v op= e` when the operator is given.
    Assign(String, Option<BinOp>, Box<Arith>),
    /// `++v`, `v--`, ...: the variable, the step, whether the old value is
    /// the result.
    Step(String, i64, bool),
    Comma(Box<Arith>, Box<Arith>),
}

/// Where an expression reads and writes variables.
pub trait ArithVars {
    fn get(&self, name: &str) -> Option<String>;
    fn set(&mut self, name: &str, value: String);
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(i64),
    Ident(String),
    Op(&'static str),
}

const OPS: [&str; 39] = [
    "<<=", ">>=", "**", "++", "--", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "+=", "-=",
    "*=", "/=", "%=", "&=", "^=", "|=", "+", "-", "*", "/", "%", "<", ">", "&", "^", "|", "!", "~",
    "?", ":", "=", "(", ")", ",",
];

fn syntax(text: &str, msg: &str) -> ScriptError {
    ScriptError::Syntax(format!("arithmetic `{text}`: {msg}"))
}

fn tokenize(text: &str) -> Result<Vec<Tok>, ScriptError> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    'outer: while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'#' || b[i] == b'_') {
                i += 1;
            }
            let n = parse_number(&text[start..i]).ok_or_else(|| {
                syntax(
                    text,
                    &format!(
                        "value too great for base (error token is \"{}\")",
                        &text[start..]
                    ),
                )
            })?;
            out.push(Tok::Num(n));
            continue;
        }
        if c == b'$' {
            // `$x`, `${x}`, `$1`: the variable itself.
            i += 1;
            let braced = b.get(i) == Some(&b'{');
            if braced {
                i += 1;
            }
            let start = i;
            if b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            } else {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
            }
            if start == i {
                return Err(ScriptError::unsupported(
                    "expansion inside arithmetic other than `$NAME`",
                    text,
                ));
            }
            out.push(Tok::Ident(text[start..i].to_owned()));
            if braced {
                if b.get(i) != Some(&b'}') {
                    return Err(ScriptError::unsupported(
                        "expansion inside arithmetic other than `${NAME}`",
                        text,
                    ));
                }
                i += 1;
            }
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Ident(text[start..i].to_owned()));
            continue;
        }
        for op in OPS {
            if b[i..].starts_with(op.as_bytes()) {
                out.push(Tok::Op(op));
                i += op.len();
                continue 'outer;
            }
        }
        return Err(syntax(
            text,
            &format!(
                "syntax error: operand expected (error token is \"{}\")",
                &text[i..]
            ),
        ));
    }
    Ok(out)
}

/// A number as bash reads one: decimal, `0` octal, `0x` hex, `BASE#DIGITS`.
pub fn parse_number(s: &str) -> Option<i64> {
    let (base, digits) = if let Some((b, d)) = s.split_once('#') {
        let base: u32 = b.parse().ok()?;
        if !(2..=64).contains(&base) {
            return None;
        }
        (base, d)
    } else if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (16, h)
    } else if s.len() > 1 && s.starts_with('0') {
        (8, &s[1..])
    } else {
        (10, s)
    };
    if digits.is_empty() {
        return None;
    }
    let mut n: i64 = 0;
    for c in digits.chars() {
        let d = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'a'..='z' => c as u32 - 'a' as u32 + 10,
            'A'..='Z' if base <= 36 => c as u32 - 'A' as u32 + 10,
            'A'..='Z' => c as u32 - 'A' as u32 + 36,
            '@' => 62,
            '_' => 63,
            _ => return None,
        };
        if d >= base {
            return None;
        }
        n = n.wrapping_mul(i64::from(base)).wrapping_add(i64::from(d));
    }
    Some(n)
}

struct Parser<'a> {
    text: &'a str,
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
}

/// Parses one arithmetic expression (the text between `$((` and `))`).
///
/// # Errors
/// [`ScriptError::Syntax`] for a malformed expression,
/// [`ScriptError::TooDeep`] past [`MAX_ARITH_DEPTH`].
pub fn parse(text: &str) -> Result<Arith, ScriptError> {
    let toks = tokenize(text)?;
    if toks.is_empty() {
        return Ok(Arith::Num(0));
    }
    let mut p = Parser {
        text,
        toks,
        pos: 0,
        depth: 0,
    };
    let e = p.comma()?;
    if p.pos != p.toks.len() {
        return Err(syntax(text, "syntax error in expression"));
    }
    Ok(e)
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn eat(&mut self, op: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Op(o)) if *o == op) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn enter(&mut self) -> Result<(), ScriptError> {
        self.depth += 1;
        if self.depth > MAX_ARITH_DEPTH {
            return Err(ScriptError::TooDeep(format!(
                "arithmetic nested more than {MAX_ARITH_DEPTH} levels deep"
            )));
        }
        Ok(())
    }

    fn comma(&mut self) -> Result<Arith, ScriptError> {
        let mut e = self.assign()?;
        while self.eat(",") {
            let r = self.assign()?;
            e = Arith::Comma(Box::new(e), Box::new(r));
        }
        Ok(e)
    }

    fn assign(&mut self) -> Result<Arith, ScriptError> {
        self.enter()?;
        let r = self.assign_inner();
        self.depth -= 1;
        r
    }

    fn assign_inner(&mut self) -> Result<Arith, ScriptError> {
        if let (Some(Tok::Ident(name)), Some(Tok::Op(op))) =
            (self.toks.get(self.pos), self.toks.get(self.pos + 1))
        {
            let kind = match *op {
                "=" => Some(None),
                "+=" => Some(Some(BinOp::Add)),
                "-=" => Some(Some(BinOp::Sub)),
                "*=" => Some(Some(BinOp::Mul)),
                "/=" => Some(Some(BinOp::Div)),
                "%=" => Some(Some(BinOp::Rem)),
                "<<=" => Some(Some(BinOp::Shl)),
                ">>=" => Some(Some(BinOp::Shr)),
                "&=" => Some(Some(BinOp::BitAnd)),
                "^=" => Some(Some(BinOp::BitXor)),
                "|=" => Some(Some(BinOp::BitOr)),
                _ => None,
            };
            if let Some(op) = kind {
                let name = name.clone();
                self.pos += 2;
                let value = self.assign()?;
                return Ok(Arith::Assign(name, op, Box::new(value)));
            }
        }
        self.ternary()
    }

    fn ternary(&mut self) -> Result<Arith, ScriptError> {
        let c = self.binary(0)?;
        if self.eat("?") {
            let a = self.assign()?;
            if !self.eat(":") {
                return Err(syntax(self.text, "`:' expected for conditional expression"));
            }
            let b = self.assign()?;
            return Ok(Arith::Cond(Box::new(c), Box::new(a), Box::new(b)));
        }
        Ok(c)
    }

    /// Binary operators by precedence level, lowest first.
    fn binary(&mut self, level: usize) -> Result<Arith, ScriptError> {
        const LEVELS: [&[(&str, Option<BinOp>)]; 10] = [
            &[("||", None)],
            &[("&&", None)],
            &[("|", Some(BinOp::BitOr))],
            &[("^", Some(BinOp::BitXor))],
            &[("&", Some(BinOp::BitAnd))],
            &[("==", Some(BinOp::Eq)), ("!=", Some(BinOp::Ne))],
            &[
                ("<=", Some(BinOp::Le)),
                (">=", Some(BinOp::Ge)),
                ("<", Some(BinOp::Lt)),
                (">", Some(BinOp::Gt)),
            ],
            &[("<<", Some(BinOp::Shl)), (">>", Some(BinOp::Shr))],
            &[("+", Some(BinOp::Add)), ("-", Some(BinOp::Sub))],
            &[
                ("*", Some(BinOp::Mul)),
                ("/", Some(BinOp::Div)),
                ("%", Some(BinOp::Rem)),
            ],
        ];
        if level == LEVELS.len() {
            return self.power();
        }
        let mut e = self.binary(level + 1)?;
        'more: loop {
            for (op, kind) in LEVELS[level] {
                if self.eat(op) {
                    let r = self.binary(level + 1)?;
                    e = match (kind, *op) {
                        (Some(k), _) => Arith::Binary(*k, Box::new(e), Box::new(r)),
                        (None, "&&") => Arith::And(Box::new(e), Box::new(r)),
                        (None, _) => Arith::Or(Box::new(e), Box::new(r)),
                    };
                    continue 'more;
                }
            }
            return Ok(e);
        }
    }

    fn power(&mut self) -> Result<Arith, ScriptError> {
        let base = self.unary()?;
        if self.eat("**") {
            self.enter()?;
            let exp = self.power();
            self.depth -= 1;
            return Ok(Arith::Binary(BinOp::Pow, Box::new(base), Box::new(exp?)));
        }
        Ok(base)
    }

    fn unary(&mut self) -> Result<Arith, ScriptError> {
        self.enter()?;
        let r = self.unary_inner();
        self.depth -= 1;
        r
    }

    fn unary_inner(&mut self) -> Result<Arith, ScriptError> {
        for (op, step) in [("++", 1), ("--", -1)] {
            if self.eat(op) {
                return match self.peek().cloned() {
                    Some(Tok::Ident(v)) => {
                        self.pos += 1;
                        Ok(Arith::Step(v, step, false))
                    }
                    _ => Err(syntax(self.text, "syntax error: operand expected")),
                };
            }
        }
        for (op, kind) in [
            ("-", UnOp::Neg),
            ("+", UnOp::Plus),
            ("!", UnOp::Not),
            ("~", UnOp::BitNot),
        ] {
            if self.eat(op) {
                return Ok(Arith::Unary(kind, Box::new(self.unary()?)));
            }
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Arith, ScriptError> {
        match self.peek().cloned() {
            Some(Tok::Num(n)) => {
                self.pos += 1;
                Ok(Arith::Num(n))
            }
            Some(Tok::Ident(v)) => {
                self.pos += 1;
                for (op, step) in [("++", 1), ("--", -1)] {
                    if self.eat(op) {
                        return Ok(Arith::Step(v, step, true));
                    }
                }
                Ok(Arith::Var(v))
            }
            Some(Tok::Op("(")) => {
                self.pos += 1;
                let e = self.comma()?;
                if !self.eat(")") {
                    return Err(syntax(self.text, "missing `)'"));
                }
                Ok(e)
            }
            _ => Err(syntax(self.text, "syntax error: operand expected")),
        }
    }
}

/// Reads a variable as a number (bash: unset or empty is 0; a value naming
/// another variable reads that one).
fn read_var(vars: &dyn ArithVars, name: &str) -> Result<i64, String> {
    let mut name = name.to_owned();
    for _ in 0..MAX_INDIRECTION {
        let v = vars.get(&name).unwrap_or_default();
        let t = v.trim();
        if t.is_empty() {
            return Ok(0);
        }
        let (neg, digits) = match t.strip_prefix('-') {
            Some(d) => (true, d.trim_start()),
            None => (false, t.strip_prefix('+').unwrap_or(t).trim_start()),
        };
        if digits.starts_with(|c: char| c.is_ascii_digit()) {
            return match parse_number(digits) {
                Some(n) => Ok(if neg { n.wrapping_neg() } else { n }),
                None => Err(format!(
                    "{t}: value too great for base (error token is \"{t}\")"
                )),
            };
        }
        if !neg
            && digits.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && digits
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            name = digits.to_owned();
            continue;
        }
        return Err(format!(
            "{t}: syntax error in expression (error token is \"{t}\")"
        ));
    }
    Err(format!("{name}: expression recursion level exceeded"))
}

/// Evaluates `e`, reading and assigning through `vars`.
///
/// # Errors
/// bash's message for a division by zero, a negative exponent or a value
/// that is not a number.
pub fn eval(e: &Arith, vars: &mut dyn ArithVars) -> Result<i64, String> {
    Ok(match e {
        Arith::Num(n) => *n,
        Arith::Var(v) => read_var(vars, v)?,
        Arith::Unary(op, x) => {
            let x = eval(x, vars)?;
            match op {
                UnOp::Neg => x.wrapping_neg(),
                UnOp::Plus => x,
                UnOp::Not => i64::from(x == 0),
                UnOp::BitNot => !x,
            }
        }
        Arith::Binary(op, a, b) => {
            let a = eval(a, vars)?;
            let b = eval(b, vars)?;
            binop(*op, a, b)?
        }
        Arith::And(a, b) => i64::from(eval(a, vars)? != 0 && eval(b, vars)? != 0),
        Arith::Or(a, b) => i64::from(eval(a, vars)? != 0 || eval(b, vars)? != 0),
        Arith::Cond(c, a, b) => {
            if eval(c, vars)? != 0 {
                eval(a, vars)?
            } else {
                eval(b, vars)?
            }
        }
        Arith::Assign(v, op, x) => {
            let x = eval(x, vars)?;
            let n = match op {
                Some(op) => binop(*op, read_var(vars, v)?, x)?,
                None => x,
            };
            vars.set(v, n.to_string());
            n
        }
        Arith::Step(v, step, post) => {
            let old = read_var(vars, v)?;
            let new = old.wrapping_add(*step);
            vars.set(v, new.to_string());
            if *post { old } else { new }
        }
        Arith::Comma(a, b) => {
            eval(a, vars)?;
            eval(b, vars)?
        }
    })
}

fn binop(op: BinOp, a: i64, b: i64) -> Result<i64, String> {
    Ok(match op {
        BinOp::Mul => a.wrapping_mul(b),
        BinOp::Div | BinOp::Rem if b == 0 => return Err("division by 0".into()),
        BinOp::Div => a.wrapping_div(b),
        BinOp::Rem => a.wrapping_rem(b),
        BinOp::Add => a.wrapping_add(b),
        BinOp::Sub => a.wrapping_sub(b),
        BinOp::Shl => a.wrapping_shl(b as u32),
        BinOp::Shr => a.wrapping_shr(b as u32),
        BinOp::Lt => i64::from(a < b),
        BinOp::Le => i64::from(a <= b),
        BinOp::Gt => i64::from(a > b),
        BinOp::Ge => i64::from(a >= b),
        BinOp::Eq => i64::from(a == b),
        BinOp::Ne => i64::from(a != b),
        BinOp::BitAnd => a & b,
        BinOp::BitXor => a ^ b,
        BinOp::BitOr => a | b,
        BinOp::Pow => {
            if b < 0 {
                return Err("exponent less than 0".into());
            }
            let mut r: i64 = 1;
            let mut base = a;
            let mut e = b as u64;
            while e > 0 {
                if e & 1 == 1 {
                    r = r.wrapping_mul(base);
                }
                base = base.wrapping_mul(base);
                e >>= 1;
            }
            r
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    impl ArithVars for HashMap<String, String> {
        fn get(&self, name: &str) -> Option<String> {
            HashMap::get(self, name).cloned()
        }
        fn set(&mut self, name: &str, value: String) {
            self.insert(name.to_owned(), value);
        }
    }

    fn ev(s: &str, vars: &mut HashMap<String, String>) -> Result<i64, String> {
        eval(&parse(s).map_err(|e| e.to_string())?, vars)
    }

    #[test]
    fn precedence_and_associativity_as_bash() {
        let mut v = HashMap::new();
        // Each checked with bash: echo $((...)).
        for (src, want) in [
            ("1+2*3", 7),
            ("(1+2)*3", 9),
            ("2**3**2", 512),
            ("-2**2", 4),
            ("7/2", 3),
            ("-7/2", -3),
            ("-7%3", -1),
            ("1<2 && 3>4 || 5", 1),
            ("1 ? 2 : 3", 2),
            ("0 ? 2 : 0 ? 4 : 5", 5),
            ("010 + 0x10 + 2#101", 29),
            ("1 << 4 | 1", 17),
            ("~5 ^ 3", -7),
            ("!0 + !7", 1),
            ("", 0),
            ("9223372036854775807 + 1", i64::MIN),
        ] {
            assert_eq!(ev(src, &mut v), Ok(want), "{src}");
        }
    }

    #[test]
    fn variables_assignments_and_steps() {
        let mut v = HashMap::new();
        v.insert("x".to_owned(), " 5 ".to_owned());
        v.insert("r".to_owned(), "x".to_owned());
        assert_eq!(ev("x + r + unset", &mut v), Ok(10));
        assert_eq!(ev("i = 3, i += 2, i *= $x", &mut v), Ok(25));
        assert_eq!(ev("i++", &mut v), Ok(25));
        assert_eq!(ev("++i", &mut v), Ok(27));
        assert_eq!(ev("${i}--", &mut v), Ok(27));
        assert_eq!(v["i"], "26");
        assert_eq!(ev("0 && (j = 1)", &mut v), Ok(0));
        assert!(!v.contains_key("j"), "&& does not evaluate its right side");
        v.insert("bad".to_owned(), "1a".to_owned());
        assert!(ev("bad", &mut v).is_err());
        assert_eq!(ev("1/0", &mut v), Err("division by 0".into()));
    }

    #[test]
    fn malformed_and_deep_expressions_are_refused() {
        for src in ["1 +", "(1", "1 2", "a ? b", "$(ls)", "3 @ 4"] {
            assert!(parse(src).is_err(), "{src}");
        }
        let deep = format!("{}1{}", "(".repeat(100), ")".repeat(100));
        assert!(matches!(parse(&deep), Err(ScriptError::TooDeep(_))));
        let unary = format!("{}1", "- ".repeat(10_000));
        assert!(matches!(parse(&unary), Err(ScriptError::TooDeep(_))));
    }
}
