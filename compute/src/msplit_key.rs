//! msplit's partition keys, as Manta's `msplit` (manta-compute-bin,
//! `bin/msplit`) computed them, and the small JavaScript subset `-e`
//! evaluates.
//!
//! Guarantees: the text mode (`-d`/`-f`) and the JSON mode (`-j -f`) build
//! the key exactly as msplit's `parseLikeCut`/`parseLikeJson` did (a field
//! that is missing — or, in text mode, empty — is left out; the delimiter
//! joins only non-empty keys; JSON values are turned into strings as
//! JavaScript does, numbers included). `-e` accepts one expression (or
//! `return EXPR;`, as msplit wrapped bodies without `return`) over `line`
//! and `this` in this grammar, evaluated with JavaScript's semantics
//! (UTF-16 string indices, `+` concatenating when either side is a
//! string, `ToNumber` for arithmetic and mixed comparisons):
//!
//! ```text
//! cond    := or ('?' cond ':' cond)?
//! or      := and ('||' and)*          and := eq ('&&' eq)*
//! eq      := rel (('==='|'!=='|'=='|'!=') rel)*
//! rel     := add (('<'|'<='|'>'|'>=') add)*
//! add     := mul (('+'|'-') mul)*     mul := unary (('*'|'/'|'%') unary)*
//! unary   := ('-'|'+'|'!') unary | postfix
//! postfix := primary ('.' NAME | '.' METHOD '(' args ')' | '[' cond ']')*
//! primary := 'line' | 'this' | NUMBER | STRING | 'true' | 'false' | 'null'
//!          | 'parseInt' '(' args ')' | 'String' '(' cond ')' | '(' cond ')'
//! METHOD  := substring | substr | slice | split | indexOf | charAt
//!          | toLowerCase | toUpperCase | trim | join
//! ```
//!
//! Anything else (other names, statements, regular expressions,
//! assignments, function calls outside this list) is refused when msplit
//! starts, with a message naming the limitation: Tidepool has no
//! JavaScript engine and does not pretend to. A runtime TypeError (a
//! property of `undefined`) fails msplit as it failed Node.
//! Reducers are the first 8 hex digits of the key's MD5 (of its UTF-8)
//! modulo N, or with `-i` the key read by `parseInt(key, 10)`.

use md5::Digest as _;
use serde_json::Value;

/// How msplit builds a line's key.
#[derive(Debug, Clone)]
pub enum KeyMode {
    /// `-d DELIM -f 1,3`: 1-based fields of the delimited line.
    Cut {
        /// The delimiter.
        delim: String,
        /// The fields (as msplit's `parseInt`; out of range are skipped).
        fields: Vec<i64>,
    },
    /// `-j -f a,b.c`: (dotted) properties of the JSON line.
    Json {
        /// The delimiter joining values.
        delim: String,
        /// Property paths.
        fields: Vec<String>,
    },
    /// `-e EXPR` (with `-j`: `this` is the parsed line).
    Expr {
        /// The parsed expression.
        expr: Expr,
        /// `-j` was given.
        json: bool,
    },
}

/// A key: a string, or a number (allowed only with `-i`).
#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    /// A string key.
    Str(String),
    /// A number key.
    Num(f64),
}

impl KeyMode {
    /// The mode msplit's options select; `Err` is msplit's usage message.
    pub fn new(
        delim: &str,
        fields: &[String],
        json: bool,
        exec: Option<&str>,
    ) -> Result<KeyMode, String> {
        if delim == "\n" {
            return Err("cannot use newline as a delimiter.".into());
        }
        if let Some(e) = exec {
            return Ok(KeyMode::Expr {
                expr: parse_exec(e)?,
                json,
            });
        }
        if json {
            if fields.is_empty() {
                return Err("no fields specified".into());
            }
            return Ok(KeyMode::Json {
                delim: delim.to_owned(),
                fields: fields.to_vec(),
            });
        }
        let mut fs = Vec::with_capacity(fields.len());
        for f in fields {
            match parse_int_prefix(f) {
                Some(n) => fs.push(n as i64),
                None => return Err("invalid field: NaN".into()),
            }
        }
        if fs.is_empty() {
            fs.push(1);
        }
        Ok(KeyMode::Cut {
            delim: delim.to_owned(),
            fields: fs,
        })
    }

    /// The key of `line`; `Err` is msplit's fatal message.
    pub fn key(&self, line: &str, allow_number: bool) -> Result<Key, String> {
        match self {
            KeyMode::Cut { delim, fields } => {
                let parts = js_split(line, delim);
                let mut key = String::new();
                for f in fields {
                    let Some(p) = usize::try_from(f - 1).ok().and_then(|i| parts.get(i)) else {
                        continue;
                    };
                    if p.is_empty() {
                        continue;
                    }
                    if !key.is_empty() {
                        key.push_str(delim);
                    }
                    key.push_str(p);
                }
                Ok(Key::Str(key))
            }
            KeyMode::Json { delim, fields } => {
                let obj = parse_json_line(line)?;
                let mut key = String::new();
                for f in fields {
                    let mut parts = f.split('.');
                    let first = parts.next().unwrap_or("");
                    let mut datum = get_prop(&obj, first)?;
                    for p in parts {
                        if !datum.truthy() {
                            break;
                        }
                        datum = get_prop(&datum, p)?;
                    }
                    if matches!(datum, V::Undef) {
                        continue;
                    }
                    if !key.is_empty() {
                        key.push_str(delim);
                    }
                    key.push_str(&datum.to_js_string());
                }
                Ok(Key::Str(key))
            }
            KeyMode::Expr { expr, json } => {
                let this = if *json {
                    parse_json_line(line)?
                } else {
                    let mut m = serde_json::Map::new();
                    m.insert("line".into(), Value::String(line.to_owned()));
                    V::Obj(m)
                };
                let cx = Cx { line, this: &this };
                match eval(expr, &cx)? {
                    V::Str(s) => Ok(Key::Str(s)),
                    V::Num(n) if allow_number => Ok(Key::Num(n)),
                    v => Err(format!(
                        "{} must be one of types [{}], but was type {}",
                        v.to_js_string(),
                        if allow_number {
                            "string, number"
                        } else {
                            "string"
                        },
                        v.type_of()
                    )),
                }
            }
        }
    }
}

/// The reducer of a key: the first 8 hex digits of MD5(key) mod `n`.
pub fn hash_reducer(key: &str, n: u32) -> u32 {
    let d = md5::Md5::digest(key.as_bytes());
    let v = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
    v % n.max(1)
}

/// `-i`: the key as a literal reducer index (`parseInt(key, 10)`).
pub fn literal_reducer(key: &Key, n: u32, line: &str) -> Result<u32, String> {
    let s = match key {
        Key::Str(s) => s.clone(),
        Key::Num(x) => js_number(*x),
    };
    match parse_int_prefix(&s) {
        Some(i) if i >= 0.0 && i < f64::from(n) => Ok(i as u32),
        parsed => Err(format!(
            "Parsed {s} as {} out of line: {line}\nWhich is not a number or not within the \
             valid range of reducers.",
            parsed.map_or_else(|| "NaN".to_owned(), js_number)
        )),
    }
}

fn parse_json_line(line: &str) -> Result<V, String> {
    if line.is_empty() {
        // JSON.parse was skipped and `null` was indexed: a TypeError.
        return Ok(V::Null);
    }
    serde_json::from_str::<Value>(line)
        .map(|v| V::from_json(&v))
        .map_err(|_| format!("error: input is not json: {line}"))
}

/// JavaScript's `String.prototype.split(sep)` for a string separator.
fn js_split(s: &str, sep: &str) -> Vec<String> {
    if sep.is_empty() {
        return s
            .encode_utf16()
            .map(|u| String::from_utf16_lossy(&[u]))
            .collect();
    }
    s.split(sep).map(str::to_owned).collect()
}

/// JavaScript's `parseInt(s, 10)`: leading whitespace, a sign, digits.
fn parse_int_prefix(s: &str) -> Option<f64> {
    let t = s.trim_start_matches(is_js_space);
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let digits: &str = &t[..t.bytes().take_while(u8::is_ascii_digit).count()];
    if digits.is_empty() {
        return None;
    }
    let v: f64 = digits.parse().ok()?;
    Some(if neg { -v } else { v })
}

fn is_js_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}'
}

/// JavaScript's `Number.prototype.toString()` (shortest round trip).
pub fn js_number(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if x == 0.0 {
        return "0".into();
    }
    let sci = format!("{:e}", x.abs());
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let k = digits.len() as i64;
    let n = exp.parse::<i64>().unwrap_or(0) + 1;
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = n - 1;
        let sign = if e >= 0 { "+" } else { "-" };
        if k == 1 {
            format!("{digits}e{sign}{}", e.abs())
        } else {
            format!("{}.{}e{sign}{}", &digits[..1], &digits[1..], e.abs())
        }
    };
    if x < 0.0 { format!("-{body}") } else { body }
}

/// JavaScript's `ToNumber` of a string.
fn str_to_number(s: &str) -> f64 {
    let t = s.trim_matches(is_js_space);
    if t.is_empty() {
        return 0.0;
    }
    for (p, neg) in [("0x", false), ("0X", false)] {
        if let Some(h) = t.strip_prefix(p) {
            let _ = neg;
            return u128::from_str_radix(h, 16).map_or(f64::NAN, |v| v as f64);
        }
    }
    match t {
        "Infinity" | "+Infinity" => return f64::INFINITY,
        "-Infinity" => return f64::NEG_INFINITY,
        _ => {}
    }
    // StrDecimalLiteral: sign? (digits ('.' digits?)? | '.' digits) exponent?
    let b = t.as_bytes();
    let mut i = usize::from(matches!(b[0], b'+' | b'-'));
    let int = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    i += int;
    let mut frac = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        i += frac;
    }
    if int + frac == 0 {
        return f64::NAN;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let e = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if e == 0 {
            return f64::NAN;
        }
        i += e;
    }
    if i != b.len() {
        return f64::NAN;
    }
    t.parse::<f64>().unwrap_or(f64::NAN)
}

// ------------------------------------------------------------- values

/// A JavaScript value (what JSON and this subset produce).
#[derive(Debug, Clone, PartialEq)]
enum V {
    Undef,
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<V>),
    Obj(serde_json::Map<String, Value>),
}

impl V {
    fn from_json(v: &Value) -> V {
        match v {
            Value::Null => V::Null,
            Value::Bool(b) => V::Bool(*b),
            Value::Number(n) => V::Num(n.as_f64().unwrap_or(f64::NAN)),
            Value::String(s) => V::Str(s.clone()),
            Value::Array(a) => V::Arr(a.iter().map(V::from_json).collect()),
            Value::Object(m) => V::Obj(m.clone()),
        }
    }

    fn truthy(&self) -> bool {
        match self {
            V::Undef | V::Null => false,
            V::Bool(b) => *b,
            V::Num(n) => *n != 0.0 && !n.is_nan(),
            V::Str(s) => !s.is_empty(),
            V::Arr(_) | V::Obj(_) => true,
        }
    }

    fn type_of(&self) -> &'static str {
        match self {
            V::Undef => "undefined",
            V::Null | V::Arr(_) | V::Obj(_) => "object",
            V::Bool(_) => "boolean",
            V::Num(_) => "number",
            V::Str(_) => "string",
        }
    }

    fn to_js_string(&self) -> String {
        match self {
            V::Undef => "undefined".into(),
            V::Null => "null".into(),
            V::Bool(b) => b.to_string(),
            V::Num(n) => js_number(*n),
            V::Str(s) => s.clone(),
            V::Arr(a) => a
                .iter()
                .map(|v| match v {
                    V::Undef | V::Null => String::new(),
                    v => v.to_js_string(),
                })
                .collect::<Vec<_>>()
                .join(","),
            V::Obj(_) => "[object Object]".into(),
        }
    }

    fn to_number(&self) -> f64 {
        match self {
            V::Undef => f64::NAN,
            V::Null => 0.0,
            V::Bool(b) => f64::from(u8::from(*b)),
            V::Num(n) => *n,
            V::Str(s) => str_to_number(s),
            V::Arr(_) => str_to_number(&self.to_js_string()),
            V::Obj(_) => f64::NAN,
        }
    }

    fn is_primitive_string(&self) -> bool {
        matches!(self, V::Str(_) | V::Arr(_) | V::Obj(_))
    }
}

fn get_prop(v: &V, name: &str) -> Result<V, String> {
    Ok(match v {
        V::Undef | V::Null => {
            return Err(format!(
                "TypeError: Cannot read property '{name}' of {}",
                v.to_js_string()
            ));
        }
        V::Obj(m) => m.get(name).map_or(V::Undef, V::from_json),
        V::Arr(a) => match name {
            "length" => V::Num(a.len() as f64),
            _ => index_of_name(name)
                .and_then(|i| a.get(i).cloned())
                .unwrap_or(V::Undef),
        },
        V::Str(s) => {
            let u: Vec<u16> = s.encode_utf16().collect();
            match name {
                "length" => V::Num(u.len() as f64),
                _ => index_of_name(name)
                    .and_then(|i| u.get(i))
                    .map_or(V::Undef, |c| V::Str(String::from_utf16_lossy(&[*c]))),
            }
        }
        V::Bool(_) | V::Num(_) => V::Undef,
    })
}

/// A property name that is an array index (canonical decimal).
fn index_of_name(name: &str) -> Option<usize> {
    let i: usize = name.parse().ok()?;
    (i.to_string() == name).then_some(i)
}

// ------------------------------------------------------------- parser

/// A parsed `-e` expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `line`.
    Line,
    /// `this`.
    This,
    /// A literal.
    Lit(LitV),
    /// `a.b` / `a[b]`.
    Member(Box<Expr>, Box<Expr>),
    /// `a.m(args)`.
    Method(Box<Expr>, String, Vec<Expr>),
    /// `parseInt(...)` / `String(...)`.
    Call(String, Vec<Expr>),
    /// A unary operator.
    Unary(char, Box<Expr>),
    /// A binary operator.
    Bin(&'static str, Box<Expr>, Box<Expr>),
    /// `c ? a : b`.
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum LitV {
    /// Number.
    Num(f64),
    /// String.
    Str(String),
    /// Boolean.
    Bool(bool),
    /// `null`.
    Null,
}

const METHODS: [&str; 10] = [
    "substring",
    "substr",
    "slice",
    "split",
    "indexOf",
    "charAt",
    "toLowerCase",
    "toUpperCase",
    "trim",
    "join",
];

const LIMIT: &str = "Tidepool evaluates only a subset of JavaScript for msplit -e \
     (one expression over line and this: property access, substring/substr/slice/split/\
     indexOf/charAt/toLowerCase/toUpperCase/trim/join, parseInt, String, + - * / %, \
     comparisons, && || !, ?:)";

/// msplit's `-e` text: a body containing `return` must be `return EXPR`
/// (a `;` may end it); otherwise the text (less one trailing `;`) is the
/// expression, as msplit wrapped it in `return ( ... )`.
pub fn parse_exec(src: &str) -> Result<Expr, String> {
    let body = if src.contains("return") {
        let t = src.trim();
        let t = t.strip_suffix(';').unwrap_or(t).trim_end();
        match t.strip_prefix("return") {
            Some(rest) if rest.starts_with(|c: char| c.is_whitespace() || c == '(') => {
                rest.to_owned()
            }
            _ => {
                return Err(format!(
                    "-e: {LIMIT}; a body with statements is not supported: {src:?}"
                ));
            }
        }
    } else {
        src.strip_suffix(';').unwrap_or(src).to_owned()
    };
    let toks = lex(&body)?;
    let mut p = Parser { toks, pos: 0 };
    let e = p.cond(0)?;
    if p.pos != p.toks.len() {
        return Err(format!(
            "-e: {LIMIT}; unexpected {:?} in {src:?}",
            p.toks[p.pos]
        ));
    }
    Ok(e)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Name(String),
    Op(&'static str),
}

const OPS: [&str; 24] = [
    "===", "!==", "==", "!=", "<=", ">=", "&&", "||", "<", ">", "+", "-", "*", "/", "%", "!", "?",
    ":", ".", ",", "(", ")", "[", "]",
];

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let b: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '\'' {
            let mut v = String::new();
            i += 1;
            loop {
                let Some(&d) = b.get(i) else {
                    return Err(format!("-e: unterminated string in {s:?}"));
                };
                i += 1;
                if d == c {
                    break;
                }
                if d == '\\' {
                    let Some(&e) = b.get(i) else {
                        return Err(format!("-e: unterminated string in {s:?}"));
                    };
                    i += 1;
                    v.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        '0' => '\0',
                        '\\' | '\'' | '"' => e,
                        _ => {
                            return Err(format!("-e: {LIMIT}; the escape \\{e} is not supported"));
                        }
                    });
                } else {
                    v.push(d);
                }
            }
            out.push(Tok::Str(v));
        } else if c.is_ascii_digit() || (c == '.' && b.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == '.') {
                i += 1;
            }
            let t: String = b[start..i].iter().collect();
            let v = str_to_number(&t);
            if v.is_nan() {
                return Err(format!("-e: {LIMIT}; the number {t:?} is not supported"));
            }
            out.push(Tok::Num(v));
        } else if c.is_alphabetic() || c == '_' || c == '$' {
            let start = i;
            while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_' || b[i] == '$') {
                i += 1;
            }
            out.push(Tok::Name(b[start..i].iter().collect()));
        } else {
            let rest: String = b[i..b.len().min(i + 3)].iter().collect();
            let Some(op) = OPS.iter().find(|o| rest.starts_with(**o)) else {
                return Err(format!("-e: {LIMIT}; {c:?} is not supported"));
            };
            i += op.chars().count();
            out.push(Tok::Op(op));
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

/// Deepest nesting of parentheses/operators accepted (the parser recurses).
const MAX_NEST: usize = 64;

impl Parser {
    fn peek_op(&self) -> Option<&'static str> {
        match self.toks.get(self.pos) {
            Some(Tok::Op(o)) => Some(o),
            _ => None,
        }
    }

    fn eat(&mut self, op: &str) -> bool {
        if self.peek_op() == Some(op) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, op: &str) -> Result<(), String> {
        if self.eat(op) {
            Ok(())
        } else {
            Err(format!(
                "-e: {LIMIT}; expected {op:?}, found {:?}",
                self.toks.get(self.pos)
            ))
        }
    }

    fn cond(&mut self, d: usize) -> Result<Expr, String> {
        if d > MAX_NEST {
            return Err("-e: expression nested too deeply".into());
        }
        let c = self.bin(0, d)?;
        if self.eat("?") {
            let a = self.cond(d + 1)?;
            self.expect(":")?;
            let b = self.cond(d + 1)?;
            return Ok(Expr::Cond(Box::new(c), Box::new(a), Box::new(b)));
        }
        Ok(c)
    }

    fn bin(&mut self, level: usize, d: usize) -> Result<Expr, String> {
        const LEVELS: [&[&str]; 6] = [
            &["||"],
            &["&&"],
            &["===", "!==", "==", "!="],
            &["<", "<=", ">", ">="],
            &["+", "-"],
            &["*", "/", "%"],
        ];
        if level == LEVELS.len() {
            return self.unary(d);
        }
        let mut l = self.bin(level + 1, d)?;
        while let Some(op) = self.peek_op().filter(|o| LEVELS[level].contains(o)) {
            self.pos += 1;
            let r = self.bin(level + 1, d)?;
            l = Expr::Bin(op, Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn unary(&mut self, d: usize) -> Result<Expr, String> {
        if d > MAX_NEST {
            return Err("-e: expression nested too deeply".into());
        }
        for op in ['-', '+', '!'] {
            if self.eat(&op.to_string()) {
                return Ok(Expr::Unary(op, Box::new(self.unary(d + 1)?)));
            }
        }
        self.postfix(d)
    }

    fn args(&mut self, d: usize) -> Result<Vec<Expr>, String> {
        self.expect("(")?;
        let mut a = Vec::new();
        if self.eat(")") {
            return Ok(a);
        }
        loop {
            a.push(self.cond(d + 1)?);
            if self.eat(")") {
                return Ok(a);
            }
            self.expect(",")?;
        }
    }

    fn postfix(&mut self, d: usize) -> Result<Expr, String> {
        let mut e = self.primary(d)?;
        loop {
            if self.eat(".") {
                let Some(Tok::Name(n)) = self.toks.get(self.pos).cloned() else {
                    return Err(format!("-e: {LIMIT}; expected a name after '.'"));
                };
                self.pos += 1;
                if self.peek_op() == Some("(") {
                    if !METHODS.contains(&n.as_str()) {
                        return Err(format!("-e: {LIMIT}; the method {n}() is not supported"));
                    }
                    let a = self.args(d)?;
                    e = Expr::Method(Box::new(e), n, a);
                } else {
                    e = Expr::Member(Box::new(e), Box::new(Expr::Lit(LitV::Str(n))));
                }
            } else if self.eat("[") {
                let i = self.cond(d + 1)?;
                self.expect("]")?;
                e = Expr::Member(Box::new(e), Box::new(i));
            } else {
                return Ok(e);
            }
        }
    }

    fn primary(&mut self, d: usize) -> Result<Expr, String> {
        let Some(t) = self.toks.get(self.pos).cloned() else {
            return Err(format!("-e: {LIMIT}; the expression ends early"));
        };
        self.pos += 1;
        match t {
            Tok::Num(n) => Ok(Expr::Lit(LitV::Num(n))),
            Tok::Str(s) => Ok(Expr::Lit(LitV::Str(s))),
            Tok::Op("(") => {
                let e = self.cond(d + 1)?;
                self.expect(")")?;
                Ok(e)
            }
            Tok::Op("/") => Err(format!(
                "-e: {LIMIT}; regular expressions are not supported"
            )),
            Tok::Name(n) => match n.as_str() {
                "line" => Ok(Expr::Line),
                "this" => Ok(Expr::This),
                "true" => Ok(Expr::Lit(LitV::Bool(true))),
                "false" => Ok(Expr::Lit(LitV::Bool(false))),
                "null" => Ok(Expr::Lit(LitV::Null)),
                "parseInt" | "String" => {
                    let a = self.args(d)?;
                    Ok(Expr::Call(n, a))
                }
                _ => Err(format!("-e: {LIMIT}; {n:?} is not supported")),
            },
            Tok::Op(o) => Err(format!("-e: {LIMIT}; unexpected {o:?}")),
        }
    }
}

// ------------------------------------------------------------- evaluation

struct Cx<'a> {
    line: &'a str,
    this: &'a V,
}

/// ToIntegerOrInfinity, NaN as 0.
fn to_int(v: &V) -> f64 {
    let n = v.to_number();
    if n.is_nan() { 0.0 } else { n.trunc() }
}

fn clamp(n: f64, len: usize) -> usize {
    n.max(0.0).min(len as f64) as usize
}

fn rel_index(n: f64, len: usize) -> usize {
    if n < 0.0 {
        clamp(len as f64 + n, len)
    } else {
        clamp(n, len)
    }
}

fn eval(e: &Expr, cx: &Cx<'_>) -> Result<V, String> {
    Ok(match e {
        Expr::Line => V::Str(cx.line.to_owned()),
        Expr::This => cx.this.clone(),
        Expr::Lit(l) => match l {
            LitV::Num(n) => V::Num(*n),
            LitV::Str(s) => V::Str(s.clone()),
            LitV::Bool(b) => V::Bool(*b),
            LitV::Null => V::Null,
        },
        Expr::Member(o, k) => {
            let o = eval(o, cx)?;
            let k = eval(k, cx)?;
            let name = k.to_js_string();
            get_prop(&o, &name)?
        }
        Expr::Call(f, args) => {
            let a: Vec<V> = args.iter().map(|x| eval(x, cx)).collect::<Result<_, _>>()?;
            let first = a.first().cloned().unwrap_or(V::Undef);
            match f.as_str() {
                "String" => V::Str(if a.is_empty() {
                    String::new()
                } else {
                    first.to_js_string()
                }),
                _ => {
                    let radix = a.get(1).map(to_int).unwrap_or(0.0);
                    if radix != 0.0 && radix != 10.0 {
                        return Err(format!("-e: {LIMIT}; parseInt with radix {radix}"));
                    }
                    V::Num(parse_int_prefix(&first.to_js_string()).unwrap_or(f64::NAN))
                }
            }
        }
        Expr::Method(o, m, args) => {
            let o = eval(o, cx)?;
            let a: Vec<V> = args.iter().map(|x| eval(x, cx)).collect::<Result<_, _>>()?;
            method(&o, m, &a)?
        }
        Expr::Unary(op, x) => {
            let v = eval(x, cx)?;
            match op {
                '-' => V::Num(-v.to_number()),
                '+' => V::Num(v.to_number()),
                _ => V::Bool(!v.truthy()),
            }
        }
        Expr::Cond(c, a, b) => {
            if eval(c, cx)?.truthy() {
                eval(a, cx)?
            } else {
                eval(b, cx)?
            }
        }
        Expr::Bin(op, l, r) => {
            let l = eval(l, cx)?;
            match *op {
                "&&" => {
                    if !l.truthy() {
                        return Ok(l);
                    }
                    return eval(r, cx);
                }
                "||" => {
                    if l.truthy() {
                        return Ok(l);
                    }
                    return eval(r, cx);
                }
                _ => {}
            }
            let r = eval(r, cx)?;
            binary(op, &l, &r)
        }
    })
}

fn binary(op: &str, l: &V, r: &V) -> V {
    match op {
        "+" => {
            if l.is_primitive_string() || r.is_primitive_string() {
                V::Str(l.to_js_string() + &r.to_js_string())
            } else {
                V::Num(l.to_number() + r.to_number())
            }
        }
        "-" => V::Num(l.to_number() - r.to_number()),
        "*" => V::Num(l.to_number() * r.to_number()),
        "/" => V::Num(l.to_number() / r.to_number()),
        "%" => V::Num(l.to_number() % r.to_number()),
        "===" => V::Bool(strict_eq(l, r)),
        "!==" => V::Bool(!strict_eq(l, r)),
        "==" => V::Bool(loose_eq(l, r)),
        "!=" => V::Bool(!loose_eq(l, r)),
        _ => {
            // Relational: strings compare by UTF-16 code units, anything
            // else numerically (NaN compares false).
            let ord = match (l, r) {
                (V::Str(a), V::Str(b)) => Some(a.encode_utf16().cmp(b.encode_utf16())),
                _ => {
                    let (a, b) = (prim_num(l), prim_num(r));
                    a.partial_cmp(&b)
                }
            };
            V::Bool(match (op, ord) {
                (_, None) => false,
                ("<", Some(o)) => o.is_lt(),
                ("<=", Some(o)) => o.is_le(),
                (">", Some(o)) => o.is_gt(),
                (_, Some(o)) => o.is_ge(),
            })
        }
    }
}

/// ToNumber after ToPrimitive (arrays and objects via their string).
fn prim_num(v: &V) -> f64 {
    match v {
        V::Arr(_) | V::Obj(_) => str_to_number(&v.to_js_string()),
        v => v.to_number(),
    }
}

fn strict_eq(l: &V, r: &V) -> bool {
    match (l, r) {
        (V::Num(a), V::Num(b)) => a == b,
        // Objects are equal only when identical; values here never are.
        (V::Arr(_), _) | (V::Obj(_), _) => false,
        _ => l == r,
    }
}

fn loose_eq(l: &V, r: &V) -> bool {
    match (l, r) {
        (V::Undef | V::Null, V::Undef | V::Null) => true,
        (V::Undef | V::Null, _) | (_, V::Undef | V::Null) => false,
        (V::Arr(_) | V::Obj(_), V::Arr(_) | V::Obj(_)) => false,
        (V::Str(a), V::Str(b)) => a == b,
        (V::Arr(_) | V::Obj(_), _) => loose_eq(&V::Str(l.to_js_string()), r),
        (_, V::Arr(_) | V::Obj(_)) => loose_eq(l, &V::Str(r.to_js_string())),
        _ => l.to_number() == r.to_number(),
    }
}

fn method(o: &V, m: &str, a: &[V]) -> Result<V, String> {
    let arg = |i: usize| a.get(i).cloned().unwrap_or(V::Undef);
    if let V::Arr(items) = o {
        return match m {
            "join" => {
                let sep = match arg(0) {
                    V::Undef => ",".to_owned(),
                    v => v.to_js_string(),
                };
                Ok(V::Str(
                    items
                        .iter()
                        .map(|v| match v {
                            V::Undef | V::Null => String::new(),
                            v => v.to_js_string(),
                        })
                        .collect::<Vec<_>>()
                        .join(&sep),
                ))
            }
            "slice" => {
                let len = items.len();
                let s = rel_index(to_int(&arg(0)), len);
                let e = match arg(1) {
                    V::Undef => len,
                    v => rel_index(to_int(&v), len),
                };
                Ok(V::Arr(items[s..e.max(s)].to_vec()))
            }
            "indexOf" => Ok(V::Num(
                items
                    .iter()
                    .position(|v| strict_eq(v, &arg(0)))
                    .map_or(-1.0, |i| i as f64),
            )),
            _ => Err(format!(
                "TypeError: {}.{m} is not a function",
                o.to_js_string()
            )),
        };
    }
    let V::Str(s) = o else {
        if matches!(o, V::Undef | V::Null) {
            return Err(format!(
                "TypeError: Cannot call method '{m}' of {}",
                o.to_js_string()
            ));
        }
        return Err(format!(
            "-e: {LIMIT}; {m}() on a {} is not supported",
            o.type_of()
        ));
    };
    let u: Vec<u16> = s.encode_utf16().collect();
    let len = u.len();
    let sub = |a: usize, b: usize| V::Str(String::from_utf16_lossy(&u[a..b.max(a)]));
    Ok(match m {
        "substring" => {
            let x = clamp(to_int(&arg(0)), len);
            let y = match arg(1) {
                V::Undef => len,
                v => clamp(to_int(&v), len),
            };
            sub(x.min(y), x.max(y))
        }
        "substr" => {
            let x = rel_index(to_int(&arg(0)), len);
            let n = match arg(1) {
                V::Undef => len as f64,
                v => to_int(&v),
            };
            let end = clamp(x as f64 + n.max(0.0), len);
            sub(x, end)
        }
        "slice" => {
            let x = rel_index(to_int(&arg(0)), len);
            let y = match arg(1) {
                V::Undef => len,
                v => rel_index(to_int(&v), len),
            };
            sub(x, y)
        }
        "charAt" => {
            let i = to_int(&arg(0));
            if i < 0.0 || i >= len as f64 {
                V::Str(String::new())
            } else {
                sub(i as usize, i as usize + 1)
            }
        }
        "indexOf" => {
            let needle: Vec<u16> = arg(0).to_js_string().encode_utf16().collect();
            let from = clamp(to_int(&arg(1)), len);
            let found = (from..=len)
                .find(|&i| u.len() >= i + needle.len() && u[i..i + needle.len()] == needle[..]);
            V::Num(found.map_or(-1.0, |i| i as f64))
        }
        "toLowerCase" => V::Str(s.to_lowercase()),
        "toUpperCase" => V::Str(s.to_uppercase()),
        "trim" => V::Str(s.trim_matches(is_js_space).to_owned()),
        "split" => {
            let parts = match arg(0) {
                V::Undef => vec![s.clone()],
                sep => js_split(s, &sep.to_js_string()),
            };
            let parts: Vec<V> = match arg(1) {
                V::Undef => parts.into_iter().map(V::Str).collect(),
                lim => {
                    let n = lim.to_number();
                    let n = if n.is_nan() {
                        0
                    } else {
                        (n as i64).rem_euclid(1 << 32) as usize
                    };
                    parts.into_iter().take(n).map(V::Str).collect()
                }
            };
            V::Arr(parts)
        }
        _ => {
            return Err(format!(
                "TypeError: {}.{m} is not a function (on a string)",
                s
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(mode: &KeyMode, line: &str) -> String {
        match mode.key(line, false) {
            Ok(Key::Str(s)) => s,
            other => panic!("{other:?}"),
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    /// manta-compute-bin's test/msplit.test.js cases, reducer by reducer.
    #[test]
    fn manta_test_suite_cases() {
        let cut = KeyMode::new("\t", &[], false, None).unwrap_or_else(|e| panic!("{e}"));
        let r: Vec<u32> = ["1", "2", "3", "4"]
            .iter()
            .map(|l| hash_reducer(&key(&cut, l), 2))
            .collect();
        assert_eq!(r, [0, 1, 0, 1]);
        let f3 = KeyMode::new(",", &s(&["3"]), false, None).unwrap_or_else(|e| panic!("{e}"));
        let r: Vec<u32> = ["1,2,3", "1,2,2", "1,1,1", "1,3,4"]
            .iter()
            .map(|l| hash_reducer(&key(&f3, l), 2))
            .collect();
        assert_eq!(r, [0, 1, 0, 1]);
        let j = KeyMode::new("\t", &s(&["x"]), true, None).unwrap_or_else(|e| panic!("{e}"));
        let r: Vec<u32> = [r#"{"x":1}"#, r#"{"x":2}"#, r#"{"x":3}"#, r#"{"x":4}"#]
            .iter()
            .map(|l| hash_reducer(&key(&j, l), 2))
            .collect();
        assert_eq!(r, [0, 1, 0, 1]);
        for src in [
            r#"return (line < 3 ? "1" : "2")"#,
            r#"line < 3 ? "1" : "2""#,
            r#"line < 3 ? "1" : "2";"#,
        ] {
            let e = KeyMode::new("\t", &[], false, Some(src)).unwrap_or_else(|e| panic!("{e}"));
            let r: Vec<u32> = ["1", "2", "3", "4"]
                .iter()
                .map(|l| hash_reducer(&key(&e, l), 2))
                .collect();
            assert_eq!(r, [0, 0, 1, 1], "{src}");
        }
        let ej = KeyMode::new("\t", &[], true, Some(r#"this.x < 3 ? "1" : "2""#))
            .unwrap_or_else(|e| panic!("{e}"));
        let r: Vec<u32> = [r#"{"x":1}"#, r#"{"x":2}"#, r#"{"x":3}"#, r#"{"x":4}"#]
            .iter()
            .map(|l| hash_reducer(&key(&ej, l), 2))
            .collect();
        assert_eq!(r, [0, 0, 1, 1]);
    }

    #[test]
    fn cut_and_json_keys_as_msplit_built_them() {
        let m =
            KeyMode::new(",", &s(&["1", "2", "3"]), false, None).unwrap_or_else(|e| panic!("{e}"));
        // Empty and missing fields are left out; no leading delimiter.
        assert_eq!(key(&m, ",b,c"), "b,c");
        assert_eq!(key(&m, "a,,c"), "a,c");
        assert_eq!(key(&m, "a"), "a");
        assert!(KeyMode::new(",", &s(&["x"]), false, None).is_err());
        let j = KeyMode::new("\t", &s(&["a.b", "n", "z", "t", "o"]), true, None)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            key(&j, r#"{"a":{"b":1.5e21},"n":null,"t":[1,null,"x"],"o":{}}"#),
            "1.5e+21\tnull\t1,,x\t[object Object]"
        );
        assert_eq!(key(&j, r#"{"a":0}"#), "0");
        assert!(j.key("{not json", false).is_err());
    }

    #[test]
    fn expressions_users_wrote() {
        let k = |src: &str, json: bool, line: &str| {
            let m = KeyMode::new("\t", &[], json, Some(src)).unwrap_or_else(|e| panic!("{e}"));
            m.key(line, true).unwrap_or_else(|e| panic!("{src}: {e}"))
        };
        let st = |x: &str| Key::Str(x.to_owned());
        assert_eq!(
            k("return line.substring(0,4)", false, "abcdefg"),
            st("abcd")
        );
        assert_eq!(k("line.substring(0,16);", false, "ab"), st("ab"));
        assert_eq!(
            k("this.id.substring(0,9)", true, r#"{"id":"1234567890-22"}"#),
            st("123456789")
        );
        assert_eq!(k("line % 2", false, "7"), Key::Num(1.0));
        assert_eq!(
            k("this.latency % 4", true, r#"{"latency":10}"#),
            Key::Num(2.0)
        );
        assert_eq!(k("line.split(',')[2]", false, "a,b,c"), st("c"));
        assert_eq!(
            k("line.split(' ')[0].toLowerCase()", false, "GET /x"),
            st("get")
        );
        assert_eq!(
            k("this.a + ':' + this.b", true, r#"{"a":"x","b":2}"#),
            st("x:2")
        );
        assert_eq!(k("line.substr(-3)", false, "abcdef"), st("def"));
        assert_eq!(k("line.slice(1, -1)", false, "[x]"), st("x"));
        assert_eq!(k("String(parseInt(line) * 2)", false, " 21px"), st("42"));
        assert_eq!(
            k("line.length > 3 && 'long' || 'short'", false, "ab"),
            st("short")
        );
        // Only strings without -i.
        let m = KeyMode::new("\t", &[], false, Some("line % 2")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            m.key("3", false),
            Err("1 must be one of types [string], but was type number".into())
        );
        // Outside the subset: refused at start, naming the limitation.
        for src in [
            "Math.floor(line)",
            "var x = line; return x",
            "line.replace(/a/, 'b')",
            "line.match('x')",
            "line = 'a'",
        ] {
            let e = KeyMode::new("\t", &[], false, Some(src))
                .err()
                .unwrap_or_default();
            assert!(e.contains("subset of JavaScript"), "{src}: {e}");
        }
        // A property of undefined is a TypeError, as in Node.
        let m = KeyMode::new("\t", &[], true, Some("this.a.b")).unwrap_or_else(|e| panic!("{e}"));
        assert!(m.key("{}", false).is_err_and(|e| e.contains("TypeError")));
    }

    #[test]
    fn literal_reducers() {
        assert_eq!(literal_reducer(&Key::Num(1.0), 2, "x"), Ok(1));
        assert_eq!(literal_reducer(&Key::Str(" 3abc".into()), 4, "x"), Ok(3));
        assert!(literal_reducer(&Key::Str("4".into()), 4, "x").is_err());
        assert!(literal_reducer(&Key::Str("x".into()), 4, "x").is_err());
    }

    #[test]
    fn numbers_print_as_javascript() {
        for (x, s) in [
            (1.0, "1"),
            (-0.0, "0"),
            (0.1, "0.1"),
            (1e21, "1e+21"),
            (123456789012345680000.0, "123456789012345680000"),
            (1e-7, "1e-7"),
            (0.000001, "0.000001"),
            (1.5e-10, "1.5e-10"),
            (-2.5, "-2.5"),
        ] {
            assert_eq!(js_number(x), s);
        }
    }

    proptest! {
        /// Any -e text parses or is refused, and any line's key is a
        /// value or an error: never a panic.
        #[test]
        fn exec_parser_total(src in "[ -~]{0,40}", line in "[ -~]{0,20}") {
            if let Ok(m) = KeyMode::new("\t", &[], false, Some(&src)) {
                let _ = m.key(&line, true);
            }
        }

        /// Expressions built from the grammar parse.
        #[test]
        fn grammar_expressions_parse(a in 0u8..20, b in 0u8..20, sep in "[a-z,]") {
            let src = format!("line.split('{sep}')[{a}] + line.substring({a}, {b}) + (line.length % 3)");
            prop_assert!(KeyMode::new("\t", &[], false, Some(&src)).is_ok());
        }

        /// The hash is MD5's first 32 bits mod n, always below n.
        #[test]
        fn hash_in_range(k in ".{0,20}", n in 1u32..128) {
            prop_assert!(hash_reducer(&k, n) < n);
        }
    }
}
