//! A small, safe subset of JavaScript for `json -c CODE` (filter) and
//! `json -e CODE` (edit), evaluated without any JavaScript engine.
//!
//! Supported: `this`, member access (`this.a.b`, `this["x-y"]`, `this.a[0]`,
//! `.length`), literals (numbers, '…'/"…" strings, `true false null
//! undefined`), `! - ( )`, `== != === !== < <= > >=` with JavaScript's
//! coercions between primitives, `&& ||` (returning operands), and the
//! methods `indexOf includes startsWith endsWith` on strings (`indexOf` and
//! `includes` also on arrays). `-e` statements, separated by `;`:
//! `this.P = EXPR`, `this.P++`, `this.P--`, `delete this.P`.
//! Anything else (other identifiers, function calls, arithmetic, regex
//! literals, comparing objects) is rejected as [`CodeError::Unsupported`];
//! reading a property of `undefined`/`null` is a [`CodeError::Type`] error,
//! as in JavaScript.

use thiserror::Error;

use super::jsval::JsVal;

/// Why CODE could not be run.
#[derive(Debug, Error, PartialEq)]
pub enum CodeError {
    /// Outside the supported subset (the tool exits 2).
    #[error("unsupported JavaScript in json -c/-e (safe subset only): {0}")]
    Unsupported(String),
    /// A JavaScript TypeError at run time (the tool exits 1, as node would).
    #[error("TypeError: {0}")]
    Type(String),
}

type Res<T> = Result<T, CodeError>;

fn unsupported<T>(msg: impl Into<String>) -> Res<T> {
    Err(CodeError::Unsupported(msg.into()))
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Num(f64),
    Str(String),
    Punct(&'static str),
}

const PUNCTS: &[&str] = &[
    "===", "!==", "==", "!=", "<=", ">=", "&&", "||", "++", "--", "<", ">", "!", "(", ")", "[",
    "]", ".", ";", "=", ",", "-",
];

fn lex(src: &str) -> Res<Vec<Tok>> {
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    let mut toks = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' || c == '$' {
            let s = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            toks.push(Tok::Ident(chars[s..i].iter().collect()));
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let s = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                if (chars[i] == 'e' || chars[i] == 'E')
                    && matches!(chars.get(i + 1), Some('+' | '-'))
                {
                    i += 1;
                }
                i += 1;
            }
            let text: String = chars[s..i].iter().collect();
            let n = if let Some(h) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
                u64::from_str_radix(h, 16).ok().map(|n| n as f64)
            } else {
                text.parse::<f64>().ok().filter(|_| {
                    text.bytes()
                        .all(|b| b.is_ascii_digit() || b"eE.+-".contains(&b))
                })
            };
            match n {
                Some(n) => toks.push(Tok::Num(n)),
                None => return unsupported(format!("number literal {text}")),
            }
        } else if c == '"' || c == '\'' {
            i += 1;
            let mut s = String::new();
            loop {
                let Some(&d) = chars.get(i) else {
                    return unsupported("unterminated string literal");
                };
                i += 1;
                if d == c {
                    break;
                }
                if d != '\\' {
                    s.push(d);
                    continue;
                }
                let Some(&e) = chars.get(i) else {
                    return unsupported("unterminated string literal");
                };
                i += 1;
                s.push(match e {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'v' => '\u{b}',
                    '0' => '\0',
                    'u' => {
                        let hex: String = chars
                            .get(i..i + 4)
                            .map(|h| h.iter().collect())
                            .unwrap_or_default();
                        i += 4;
                        match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                            Some(ch) => ch,
                            None => return unsupported(format!("string escape \\u{hex}")),
                        }
                    }
                    other => other,
                });
            }
            toks.push(Tok::Str(s));
        } else {
            let rest: String = chars[i..chars.len().min(i + 3)].iter().collect();
            match PUNCTS.iter().find(|p| rest.starts_with(**p)) {
                Some(p) => {
                    toks.push(Tok::Punct(p));
                    i += p.chars().count();
                }
                None => return unsupported(format!("character {c:?}")),
            }
        }
    }
    Ok(toks)
}

/// An expression of the subset.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    This,
    Lit(JsVal),
    Member(Box<Expr>, Box<Expr>),
    Call(Box<Expr>, String, Vec<Expr>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Bin(&'static str, Box<Expr>, Box<Expr>),
}

/// A `-e` statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    Assign(Expr, Expr),
    Incr(Expr, f64),
    Delete(Expr),
    Expr(Expr),
}

struct P {
    toks: Vec<Tok>,
    i: usize,
}

impl P {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i)
    }
    fn eat(&mut self, p: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Punct(q)) if *q == p) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, p: &str) -> Res<()> {
        if self.eat(p) {
            Ok(())
        } else {
            unsupported(format!("expected '{p}'"))
        }
    }

    fn binary(&mut self, ops: &[&'static str], next: fn(&mut Self) -> Res<Expr>) -> Res<Expr> {
        let mut l = next(self)?;
        'outer: loop {
            for op in ops {
                if self.eat(op) {
                    let r = next(self)?;
                    l = Expr::Bin(op, Box::new(l), Box::new(r));
                    continue 'outer;
                }
            }
            return Ok(l);
        }
    }
    fn or(&mut self) -> Res<Expr> {
        self.binary(&["||"], Self::and)
    }
    fn and(&mut self) -> Res<Expr> {
        self.binary(&["&&"], Self::equality)
    }
    fn equality(&mut self) -> Res<Expr> {
        self.binary(&["===", "!==", "==", "!="], Self::relational)
    }
    fn relational(&mut self) -> Res<Expr> {
        self.binary(&["<=", ">=", "<", ">"], Self::unary)
    }
    fn unary(&mut self) -> Res<Expr> {
        if self.eat("!") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.eat("-") {
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        self.postfix()
    }
    fn postfix(&mut self) -> Res<Expr> {
        let mut e = self.primary()?;
        loop {
            if self.eat(".") {
                let Some(Tok::Ident(name)) = self.peek().cloned() else {
                    return unsupported("expected a property name after '.'");
                };
                self.i += 1;
                if self.eat("(") {
                    let mut args = Vec::new();
                    if !self.eat(")") {
                        loop {
                            args.push(self.or()?);
                            if self.eat(")") {
                                break;
                            }
                            self.expect(",")?;
                        }
                    }
                    if !matches!(
                        name.as_str(),
                        "indexOf" | "includes" | "startsWith" | "endsWith"
                    ) || args.len() != 1
                    {
                        return unsupported(format!("method call .{name}(...)"));
                    }
                    e = Expr::Call(Box::new(e), name, args);
                } else {
                    e = Expr::Member(Box::new(e), Box::new(Expr::Lit(JsVal::Str(name))));
                }
            } else if self.eat("[") {
                let k = self.or()?;
                self.expect("]")?;
                e = Expr::Member(Box::new(e), Box::new(k));
            } else if matches!(self.peek(), Some(Tok::Punct("("))) {
                return unsupported("function calls");
            } else {
                return Ok(e);
            }
        }
    }
    fn primary(&mut self) -> Res<Expr> {
        let Some(t) = self.peek().cloned() else {
            return unsupported("unexpected end of code");
        };
        self.i += 1;
        Ok(match t {
            Tok::Num(n) => Expr::Lit(JsVal::Num(n)),
            Tok::Str(s) => Expr::Lit(JsVal::Str(s)),
            Tok::Ident(id) => match id.as_str() {
                "this" => Expr::This,
                "true" => Expr::Lit(JsVal::Bool(true)),
                "false" => Expr::Lit(JsVal::Bool(false)),
                "null" => Expr::Lit(JsVal::Null),
                "undefined" => Expr::Lit(JsVal::Undefined),
                other => return unsupported(format!("identifier `{other}` (use `this.{other}`)")),
            },
            Tok::Punct("(") => {
                let e = self.or()?;
                self.expect(")")?;
                e
            }
            Tok::Punct(p) => return unsupported(format!("operator `{p}`")),
        })
    }

    fn statement(&mut self) -> Res<Stmt> {
        if matches!(self.peek(), Some(Tok::Ident(d)) if d == "delete") {
            self.i += 1;
            let target = self.postfix()?;
            check_target(&target)?;
            return Ok(Stmt::Delete(target));
        }
        let e = self.or()?;
        if self.eat("=") {
            check_target(&e)?;
            let v = self.or()?;
            return Ok(Stmt::Assign(e, v));
        }
        for (op, d) in [("++", 1.0), ("--", -1.0)] {
            if self.eat(op) {
                check_target(&e)?;
                return Ok(Stmt::Incr(e, d));
            }
        }
        Ok(Stmt::Expr(e))
    }

    fn done(&self) -> Res<()> {
        match self.peek() {
            None => Ok(()),
            Some(t) => unsupported(format!("unexpected {t:?}")),
        }
    }
}

fn check_target(e: &Expr) -> Res<()> {
    match e {
        Expr::Member(base, _) if matches!(**base, Expr::This | Expr::Member(..)) => Ok(()),
        _ => unsupported("assignment target must be a property of `this`"),
    }
}

/// Parses `-c` CODE: one expression (a trailing `;` is allowed).
pub fn parse_expr(src: &str) -> Res<Expr> {
    let mut p = P {
        toks: lex(src)?,
        i: 0,
    };
    let e = p.or()?;
    p.eat(";");
    p.done()?;
    Ok(e)
}

/// Parses `-e` CODE: statements separated by `;`.
pub fn parse_stmts(src: &str) -> Res<Vec<Stmt>> {
    let mut p = P {
        toks: lex(src)?,
        i: 0,
    };
    let mut out = Vec::new();
    while p.peek().is_some() {
        if p.eat(";") {
            continue;
        }
        out.push(p.statement()?);
        if p.peek().is_some() {
            p.expect(";")?;
        }
    }
    Ok(out)
}

/// JavaScript `ToNumber` for primitives.
fn to_number(v: &JsVal) -> Res<f64> {
    Ok(match v {
        JsVal::Undefined => f64::NAN,
        JsVal::Null => 0.0,
        JsVal::Bool(b) => f64::from(u8::from(*b)),
        JsVal::Num(n) => *n,
        JsVal::Str(s) => str_to_number(s),
        JsVal::Arr(_) | JsVal::Obj(_) => {
            return unsupported("converting an object or array to a number");
        }
    })
}

fn str_to_number(s: &str) -> f64 {
    let t = s.trim();
    if t.is_empty() {
        return 0.0;
    }
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(h, 16)
            .map(|n| n as f64)
            .unwrap_or(f64::NAN);
    }
    match t.trim_start_matches(['+', '-']) {
        "Infinity" => {
            return if t.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            };
        }
        body if body
            .bytes()
            .any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E') =>
        {
            return f64::NAN;
        }
        _ => {}
    }
    t.parse().unwrap_or(f64::NAN)
}

fn strict_eq(a: &JsVal, b: &JsVal) -> Res<bool> {
    Ok(match (a, b) {
        (JsVal::Arr(_) | JsVal::Obj(_), _) | (_, JsVal::Arr(_) | JsVal::Obj(_)) => {
            return unsupported("comparing objects or arrays (JavaScript compares identity)");
        }
        (JsVal::Num(x), JsVal::Num(y)) => x == y,
        (x, y) => x == y,
    })
}

fn loose_eq(a: &JsVal, b: &JsVal) -> Res<bool> {
    use JsVal::*;
    Ok(match (a, b) {
        (Undefined | Null, Undefined | Null) => true,
        (Undefined | Null, _) | (_, Undefined | Null) => false,
        (Num(_), Str(_)) | (Str(_), Num(_)) | (Bool(_), _) | (_, Bool(_)) => {
            if matches!(a, Arr(_) | Obj(_)) || matches!(b, Arr(_) | Obj(_)) {
                return unsupported("comparing objects or arrays");
            }
            to_number(a)? == to_number(b)?
        }
        _ => strict_eq(a, b)?,
    })
}

fn relational(op: &str, a: &JsVal, b: &JsVal) -> Res<bool> {
    if let (JsVal::Str(x), JsVal::Str(y)) = (a, b) {
        let ord = x.encode_utf16().cmp(y.encode_utf16());
        return Ok(match op {
            "<" => ord.is_lt(),
            "<=" => ord.is_le(),
            ">" => ord.is_gt(),
            _ => ord.is_ge(),
        });
    }
    let (x, y) = (to_number(a)?, to_number(b)?);
    Ok(match op {
        "<" => x < y,
        "<=" => x <= y,
        ">" => x > y,
        _ => x >= y,
    })
}

/// The property key JavaScript would use for a computed member `v[k]`.
fn key_of(k: &JsVal) -> Res<String> {
    Ok(match k {
        JsVal::Str(s) => s.clone(),
        JsVal::Num(n) => super::numfmt::js(*n),
        JsVal::Bool(b) => b.to_string(),
        JsVal::Null => "null".into(),
        JsVal::Undefined => "undefined".into(),
        _ => return unsupported("object or array used as a property key"),
    })
}

fn member(base: &JsVal, key: &str) -> Res<JsVal> {
    match base {
        JsVal::Undefined | JsVal::Null => {
            let what = if *base == JsVal::Null {
                "null"
            } else {
                "undefined"
            };
            Err(CodeError::Type(format!(
                "Cannot read properties of {what} (reading '{key}')"
            )))
        }
        b => Ok(b.get(key)),
    }
}

/// Evaluates `e` with `this` bound to `this`.
pub fn eval(e: &Expr, this: &JsVal) -> Res<JsVal> {
    Ok(match e {
        Expr::This => this.clone(),
        Expr::Lit(v) => v.clone(),
        Expr::Member(b, k) => {
            let base = eval(b, this)?;
            member(&base, &key_of(&eval(k, this)?)?)?
        }
        Expr::Call(b, name, args) => {
            let base = eval(b, this)?;
            let arg = eval(&args[0], this)?;
            call(&base, name, &arg)?
        }
        Expr::Not(x) => JsVal::Bool(!eval(x, this)?.truthy()),
        Expr::Neg(x) => JsVal::Num(-to_number(&eval(x, this)?)?),
        Expr::Bin(op, l, r) => {
            let a = eval(l, this)?;
            match *op {
                "&&" => return if a.truthy() { eval(r, this) } else { Ok(a) },
                "||" => return if a.truthy() { Ok(a) } else { eval(r, this) },
                _ => {}
            }
            let b = eval(r, this)?;
            JsVal::Bool(match *op {
                "===" => strict_eq(&a, &b)?,
                "!==" => !strict_eq(&a, &b)?,
                "==" => loose_eq(&a, &b)?,
                "!=" => !loose_eq(&a, &b)?,
                rel => relational(rel, &a, &b)?,
            })
        }
    })
}

fn call(base: &JsVal, name: &str, arg: &JsVal) -> Res<JsVal> {
    match (base, name) {
        (JsVal::Str(s), _) => {
            let JsVal::Str(needle) = arg else {
                return unsupported(format!("String.{name} with a non-string argument"));
            };
            Ok(match name {
                "indexOf" => {
                    let hay: Vec<u16> = s.encode_utf16().collect();
                    let n: Vec<u16> = needle.encode_utf16().collect();
                    let pos = if n.is_empty() {
                        Some(0)
                    } else {
                        hay.windows(n.len()).position(|w| w == n.as_slice())
                    };
                    JsVal::Num(pos.map_or(-1.0, |p| p as f64))
                }
                "includes" => JsVal::Bool(s.contains(needle.as_str())),
                "startsWith" => JsVal::Bool(s.starts_with(needle.as_str())),
                _ => JsVal::Bool(s.ends_with(needle.as_str())),
            })
        }
        (JsVal::Arr(a), "indexOf" | "includes") => {
            let mut pos = None;
            for (i, x) in a.iter().enumerate() {
                let eq = match (x, arg) {
                    (JsVal::Arr(_) | JsVal::Obj(_), _) | (_, JsVal::Arr(_) | JsVal::Obj(_)) => {
                        false
                    }
                    // includes uses SameValueZero: NaN finds NaN.
                    (JsVal::Num(p), JsVal::Num(q))
                        if name == "includes" && p.is_nan() && q.is_nan() =>
                    {
                        true
                    }
                    _ => strict_eq(x, arg)?,
                };
                if eq {
                    pos = Some(i);
                    break;
                }
            }
            Ok(if name == "indexOf" {
                JsVal::Num(pos.map_or(-1.0, |p| p as f64))
            } else {
                JsVal::Bool(pos.is_some())
            })
        }
        (JsVal::Undefined | JsVal::Null, _) => Err(CodeError::Type(format!(
            "Cannot read properties of {base:?} (reading '{name}')"
        ))),
        _ => Err(CodeError::Type(format!("{name} is not a function"))),
    }
}

/// Runs `-e` statements on `this`, modifying it in place.
pub fn exec(stmts: &[Stmt], this: &mut JsVal) -> Res<()> {
    for s in stmts {
        match s {
            Stmt::Expr(e) => {
                eval(e, this)?;
            }
            Stmt::Assign(target, v) => {
                let v = eval(v, this)?;
                store(target, this, Some(v))?;
            }
            Stmt::Incr(target, d) => {
                let old = to_number(&eval(target, this)?)?;
                store(target, this, Some(JsVal::Num(old + d)))?;
            }
            Stmt::Delete(target) => store(target, this, None)?,
        }
    }
    Ok(())
}

/// Writes (or with `None` deletes) the property `target` names.
fn store(target: &Expr, this: &mut JsVal, v: Option<JsVal>) -> Res<()> {
    let Expr::Member(base, key) = target else {
        return unsupported("assignment target");
    };
    let key = key_of(&eval(key, this)?)?;
    // Collect the path of keys from `this` down to the parent object.
    let mut path = Vec::new();
    let mut cur: &Expr = base;
    loop {
        match cur {
            Expr::This => break,
            Expr::Member(b, k) => {
                path.push(key_of(&eval(k, this)?)?);
                cur = b;
            }
            _ => return unsupported("assignment target"),
        }
    }
    path.reverse();
    let mut obj: &mut JsVal = this;
    for k in &path {
        obj = match obj {
            JsVal::Obj(pairs) => match pairs.iter_mut().find(|(pk, _)| pk == k) {
                Some((_, v)) => v,
                None => {
                    return Err(CodeError::Type(format!(
                        "Cannot set properties of undefined (setting '{key}')"
                    )));
                }
            },
            JsVal::Arr(a) => match k.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                Some(v) => v,
                None => {
                    return Err(CodeError::Type(format!(
                        "Cannot set properties of undefined (setting '{key}')"
                    )));
                }
            },
            _ => {
                return Err(CodeError::Type(format!(
                    "Cannot set properties of a non-object (setting '{key}')"
                )));
            }
        };
    }
    match v {
        Some(v) => {
            if !obj.set(&key, v) {
                return unsupported(format!("setting property '{key}' on a non-object"));
            }
        }
        None => match obj {
            JsVal::Obj(pairs) => pairs.retain(|(k, _)| *k != key),
            _ => return unsupported(format!("deleting '{key}' from a non-object")),
        },
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::jsval::parse;
    use proptest::prelude::*;

    fn check(code: &str, json: &str) -> Res<bool> {
        let e = parse_expr(code)?;
        Ok(eval(&e, &parse(json).unwrap())?.truthy())
    }

    #[test]
    fn comparisons_follow_javascript() {
        let d = r#"{"status":200,"name":"x","s":"200","n":null,"a":[1,2],"o":{"k":"v"}}"#;
        assert_eq!(check("this.status == 200", d), Ok(true));
        assert_eq!(check("this.s == 200", d), Ok(true));
        assert_eq!(check("this.s === 200", d), Ok(false));
        assert_eq!(check("this.name === \"x\" && !this.n", d), Ok(true));
        assert_eq!(check("this.missing == null", d), Ok(true));
        assert_eq!(check("this.missing === null", d), Ok(false));
        assert_eq!(
            check("this.status >= 500 || this.a.length > 1", d),
            Ok(true)
        );
        assert_eq!(check("this.o.k === 'v'", d), Ok(true));
        assert_eq!(check("this['o'][\"k\"] !== 'v'", d), Ok(false));
        assert_eq!(check("this.a[1] == 2", d), Ok(true));
        assert_eq!(check("'10' < '9'", d), Ok(true));
        assert_eq!(check("this.name.indexOf('x') !== -1", d), Ok(true));
        assert_eq!(check("this.missing > 1", d), Ok(false));
    }

    #[test]
    fn rejects_outside_subset() {
        for code in [
            "status == 200",
            "this.a + 1",
            "require('fs')",
            "/x/.test(this.a)",
            "this.a.map(x)",
            "this.a = 1",
        ] {
            assert!(
                matches!(parse_expr(code), Err(CodeError::Unsupported(_))),
                "{code}"
            );
        }
        assert!(matches!(
            check("this.o == this.o", "{\"o\":{}}"),
            Err(CodeError::Unsupported(_))
        ));
        assert!(matches!(check("this.x.y", "{}"), Err(CodeError::Type(_))));
    }

    #[test]
    fn statements_edit() {
        let mut v = parse(r#"{"age":38,"o":{"x":1},"gone":1}"#).unwrap();
        let s = parse_stmts("this.age++; this.o.y = 'n'; delete this.gone; this.z = this.age > 30")
            .unwrap();
        exec(&s, &mut v).unwrap();
        assert_eq!(
            v.stringify(0).unwrap(),
            r#"{"age":39,"o":{"x":1,"y":"n"},"z":true}"#
        );
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "[ -~]{0,40}") {
            if let Ok(e) = parse_expr(&s) {
                let _ = eval(&e, &JsVal::Obj(vec![]));
            }
        }

        #[test]
        fn numeric_comparison_matches_f64(a in -1e6f64..1e6, b in -1e6f64..1e6) {
            let doc = format!("{{\"a\":{a},\"b\":{b}}}");
            prop_assert_eq!(check("this.a < this.b", &doc), Ok(a < b));
            prop_assert_eq!(check("this.a == this.b", &doc), Ok(a == b));
        }
    }
}
