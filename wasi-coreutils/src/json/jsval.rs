//! JSON values with JavaScript semantics, for the `json` tool (which is a
//! node program): numbers are doubles, object keys enumerate as JavaScript
//! does (array-index keys first, ascending, then insertion order), strings
//! serialise as `JSON.stringify` writes them.
//!
//! The parser accepts exactly what `JSON.parse` accepts (no comments, no
//! trailing commas), never panics, and bounds nesting depth.

use std::fmt::Write as _;

use thiserror::Error;

/// A JSON value; `Undefined` is JavaScript's result of a missing property.
#[derive(Clone, Debug, PartialEq)]
pub enum JsVal {
    Undefined,
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<JsVal>),
    /// Key/value pairs in insertion order; duplicate keys are merged at parse time.
    Obj(Vec<(String, JsVal)>),
}

/// Why a text is not JSON.
#[derive(Debug, Error, PartialEq)]
#[error("{msg} at byte {pos}")]
pub struct ParseError {
    pub msg: String,
    pub pos: usize,
}

const MAX_DEPTH: usize = 10_000;

/// Is `k` a canonical array index ("0", "17"; not "01" or "4294967295")?
fn index_key(k: &str) -> Option<u32> {
    if k.is_empty() || (k.len() > 1 && k.starts_with('0')) || !k.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    k.parse::<u32>().ok().filter(|&n| n != u32::MAX)
}

impl JsVal {
    /// Object entries in JavaScript enumeration order.
    pub fn entries(pairs: &[(String, JsVal)]) -> Vec<&(String, JsVal)> {
        let mut idx: Vec<(u32, &(String, JsVal))> = pairs
            .iter()
            .filter_map(|p| index_key(&p.0).map(|n| (n, p)))
            .collect();
        idx.sort_by_key(|(n, _)| *n);
        let rest = pairs.iter().filter(|p| index_key(&p.0).is_none());
        idx.into_iter().map(|(_, p)| p).chain(rest).collect()
    }

    /// `Object.keys(v)` for objects and arrays (indices as strings).
    pub fn keys(&self) -> Option<Vec<String>> {
        match self {
            JsVal::Obj(p) => Some(
                Self::entries(p)
                    .into_iter()
                    .map(|(k, _)| k.clone())
                    .collect(),
            ),
            JsVal::Arr(a) => Some((0..a.len()).map(|i| i.to_string()).collect()),
            JsVal::Str(s) => Some(
                (0..s.encode_utf16().count())
                    .map(|i| i.to_string())
                    .collect(),
            ),
            _ => None,
        }
    }

    /// Property lookup `v[key]` (missing → `Undefined`), including `length`
    /// of arrays and strings.
    pub fn get(&self, key: &str) -> JsVal {
        match self {
            JsVal::Obj(p) => p
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or(JsVal::Undefined),
            JsVal::Arr(a) => match key {
                "length" => JsVal::Num(a.len() as f64),
                k => index_key(k)
                    .and_then(|i| a.get(i as usize))
                    .cloned()
                    .unwrap_or(JsVal::Undefined),
            },
            JsVal::Str(s) => match key {
                "length" => JsVal::Num(s.encode_utf16().count() as f64),
                k => index_key(k)
                    .and_then(|i| s.encode_utf16().nth(i as usize))
                    .map(|u| JsVal::Str(String::from_utf16_lossy(&[u])))
                    .unwrap_or(JsVal::Undefined),
            },
            _ => JsVal::Undefined,
        }
    }

    /// Sets `self[key] = v` on an object (appending new keys) or array index.
    /// Returns false if `self` cannot hold properties.
    pub fn set(&mut self, key: &str, v: JsVal) -> bool {
        match self {
            JsVal::Obj(p) => {
                match p.iter_mut().find(|(k, _)| k == key) {
                    Some(slot) => slot.1 = v,
                    None => p.push((key.to_string(), v)),
                }
                true
            }
            JsVal::Arr(a) => match index_key(key) {
                Some(i) if (i as usize) < a.len() => {
                    a[i as usize] = v;
                    true
                }
                Some(i) if (i as usize) == a.len() => {
                    a.push(v);
                    true
                }
                _ => false,
            },
            _ => false,
        }
    }

    /// JavaScript truthiness.
    pub fn truthy(&self) -> bool {
        match self {
            JsVal::Undefined | JsVal::Null => false,
            JsVal::Bool(b) => *b,
            JsVal::Num(n) => *n != 0.0 && !n.is_nan(),
            JsVal::Str(s) => !s.is_empty(),
            JsVal::Arr(_) | JsVal::Obj(_) => true,
        }
    }

    /// `JSON.stringify(v, null, indent)`; `None` for `undefined`.
    pub fn stringify(&self, indent: usize) -> Option<String> {
        if *self == JsVal::Undefined {
            return None;
        }
        let mut out = String::new();
        self.write(&mut out, indent, 0);
        Some(out)
    }

    fn write(&self, out: &mut String, indent: usize, level: usize) {
        let nl = |out: &mut String, level: usize| {
            if indent > 0 {
                out.push('\n');
                out.extend(std::iter::repeat_n(' ', indent * level));
            }
        };
        match self {
            JsVal::Undefined | JsVal::Null => out.push_str("null"),
            JsVal::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            JsVal::Num(n) if n.is_finite() => out.push_str(&super::numfmt::js(*n)),
            JsVal::Num(_) => out.push_str("null"),
            JsVal::Str(s) => quote(s, out),
            JsVal::Arr(a) if a.is_empty() => out.push_str("[]"),
            JsVal::Arr(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    nl(out, level + 1);
                    x.write(out, indent, level + 1);
                }
                nl(out, level);
                out.push(']');
            }
            JsVal::Obj(p) => {
                // `undefined` members are left out, as JSON.stringify does.
                let entries: Vec<_> = Self::entries(p)
                    .into_iter()
                    .filter(|(_, v)| *v != JsVal::Undefined)
                    .collect();
                if entries.is_empty() {
                    out.push_str("{}");
                    return;
                }
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    nl(out, level + 1);
                    quote(k, out);
                    out.push(':');
                    if indent > 0 {
                        out.push(' ');
                    }
                    v.write(out, indent, level + 1);
                }
                nl(out, level);
                out.push('}');
            }
        }
    }
}

/// `JSON.stringify` of a string.
pub fn quote(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON text reader over a string.
pub struct Parser<'a> {
    s: &'a [u8],
    pub pos: usize,
}

impl<'a> Parser<'a> {
    pub fn new(s: &'a str) -> Self {
        Parser {
            s: s.as_bytes(),
            pos: 0,
        }
    }

    fn err<T>(&self, msg: &str) -> Result<T, ParseError> {
        Err(ParseError {
            msg: msg.to_string(),
            pos: self.pos,
        })
    }

    /// Skips JSON whitespace; true if input remains.
    pub fn skip_ws(&mut self) -> bool {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.pos) {
            self.pos += 1;
        }
        self.pos < self.s.len()
    }

    /// Parses one value starting at the current position (after whitespace).
    pub fn value(&mut self) -> Result<JsVal, ParseError> {
        self.value_at(0)
    }

    fn value_at(&mut self, depth: usize) -> Result<JsVal, ParseError> {
        if depth > MAX_DEPTH {
            return self.err("nesting too deep");
        }
        self.skip_ws();
        match self.s.get(self.pos) {
            None => self.err("unexpected end of input"),
            Some(b'{') => {
                self.pos += 1;
                let mut pairs: Vec<(String, JsVal)> = Vec::new();
                self.skip_ws();
                if self.s.get(self.pos) == Some(&b'}') {
                    self.pos += 1;
                    return Ok(JsVal::Obj(pairs));
                }
                loop {
                    self.skip_ws();
                    if self.s.get(self.pos) != Some(&b'"') {
                        return self.err("expected string key");
                    }
                    let k = self.string()?;
                    self.skip_ws();
                    if self.s.get(self.pos) != Some(&b':') {
                        return self.err("expected ':'");
                    }
                    self.pos += 1;
                    let v = self.value_at(depth + 1)?;
                    match pairs.iter_mut().find(|(pk, _)| *pk == k) {
                        Some(slot) => slot.1 = v,
                        None => pairs.push((k, v)),
                    }
                    self.skip_ws();
                    match self.s.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(JsVal::Obj(pairs));
                        }
                        _ => return self.err("expected ',' or '}'"),
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.skip_ws();
                if self.s.get(self.pos) == Some(&b']') {
                    self.pos += 1;
                    return Ok(JsVal::Arr(items));
                }
                loop {
                    items.push(self.value_at(depth + 1)?);
                    self.skip_ws();
                    match self.s.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(JsVal::Arr(items));
                        }
                        _ => return self.err("expected ',' or ']'"),
                    }
                }
            }
            Some(b'"') => self.string().map(JsVal::Str),
            Some(b't') => self.word("true", JsVal::Bool(true)),
            Some(b'f') => self.word("false", JsVal::Bool(false)),
            Some(b'n') => self.word("null", JsVal::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => self.err("unexpected character"),
        }
    }

    fn word(&mut self, w: &str, v: JsVal) -> Result<JsVal, ParseError> {
        if self.s[self.pos..].starts_with(w.as_bytes()) {
            self.pos += w.len();
            Ok(v)
        } else {
            self.err("unexpected token")
        }
    }

    fn number(&mut self) -> Result<JsVal, ParseError> {
        let start = self.pos;
        let digits = |p: &mut Self| {
            let s = p.pos;
            while p.s.get(p.pos).is_some_and(u8::is_ascii_digit) {
                p.pos += 1;
            }
            p.pos - s
        };
        if self.s.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        let n = digits(self);
        if n == 0 || (n > 1 && self.s[int_start] == b'0') {
            return self.err("invalid number");
        }
        if self.s.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if digits(self) == 0 {
                return self.err("invalid number");
            }
        }
        if let Some(b'e' | b'E') = self.s.get(self.pos) {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.s.get(self.pos) {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return self.err("invalid number");
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("0");
        Ok(JsVal::Num(text.parse().unwrap_or(f64::NAN)))
    }

    fn hex4(&mut self) -> Result<u16, ParseError> {
        let h = self
            .s
            .get(self.pos..self.pos + 4)
            .and_then(|h| std::str::from_utf8(h).ok());
        match h.and_then(|h| u16::from_str_radix(h, 16).ok()) {
            Some(u) => {
                self.pos += 4;
                Ok(u)
            }
            None => self.err("invalid \\u escape"),
        }
    }

    /// A string literal; the opening quote is at `pos`.
    fn string(&mut self) -> Result<String, ParseError> {
        self.pos += 1;
        let mut units: Vec<u16> = Vec::new();
        loop {
            let Some(&b) = self.s.get(self.pos) else {
                return self.err("unterminated string");
            };
            match b {
                b'"' => {
                    self.pos += 1;
                    // Lone surrogates become U+FFFD (JavaScript would keep them).
                    return Ok(String::from_utf16_lossy(&units));
                }
                b'\\' => {
                    self.pos += 1;
                    let Some(&e) = self.s.get(self.pos) else {
                        return self.err("unterminated string");
                    };
                    self.pos += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            units.push(self.hex4()?);
                            continue;
                        }
                        _ => return self.err("invalid escape"),
                    };
                    units.push(c as u16);
                }
                0..=0x1f => return self.err("control character in string"),
                _ => {
                    // Copy one UTF-8 character (the input is a &str, so this is valid).
                    let len = match b {
                        0x00..=0x7f => 1,
                        0xc0..=0xdf => 2,
                        0xe0..=0xef => 3,
                        _ => 4,
                    };
                    let end = (self.pos + len).min(self.s.len());
                    let ch = std::str::from_utf8(&self.s[self.pos..end]).unwrap_or("\u{fffd}");
                    units.extend(ch.encode_utf16());
                    self.pos = end;
                }
            }
        }
    }
}

/// Parses a complete JSON text (one value, surrounding whitespace allowed).
pub fn parse(s: &str) -> Result<JsVal, ParseError> {
    let mut p = Parser::new(s);
    let v = p.value()?;
    if p.skip_ws() {
        return p.err("unexpected data after JSON value");
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn index_keys_enumerate_first() {
        let v = parse(r#"{"b":1,"2":2,"1":3,"01":4}"#).unwrap();
        assert_eq!(v.stringify(0).unwrap(), r#"{"1":3,"2":2,"b":1,"01":4}"#);
    }

    #[test]
    fn stringify_like_node() {
        let v = parse(r#"{"a":[1.50,1e21,"\u0001é\u007f"],"b":{},"c":[]}"#).unwrap();
        assert_eq!(
            v.stringify(0).unwrap(),
            "{\"a\":[1.5,1e+21,\"\\u0001é\u{7f}\"],\"b\":{},\"c\":[]}"
        );
        assert_eq!(
            parse("[1,{\"x\":null}]").unwrap().stringify(2).unwrap(),
            "[\n  1,\n  {\n    \"x\": null\n  }\n]"
        );
    }

    #[test]
    fn rejects_non_json() {
        for bad in [
            "",
            "{",
            "[1,]",
            "01",
            "{'a':1}",
            "1 2",
            "\"\u{1}\"",
            "tru",
            "-",
            "1.",
            "1e",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lookups() {
        let v = parse(r#"{"a":[10,"xyz"]}"#).unwrap();
        assert_eq!(v.get("a").get("1").get("length"), JsVal::Num(3.0));
        assert_eq!(v.get("a").get("5"), JsVal::Undefined);
        assert_eq!(v.get("zz").get("q"), JsVal::Undefined);
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = parse(&s);
        }

        #[test]
        fn stringify_round_trips(v in arb_val()) {
            let text = v.stringify(0).unwrap();
            prop_assert_eq!(parse(&text).unwrap().stringify(0).unwrap(), text);
        }
    }

    fn arb_val() -> impl Strategy<Value = JsVal> {
        let leaf = prop_oneof![
            Just(JsVal::Null),
            any::<bool>().prop_map(JsVal::Bool),
            (-1e9f64..1e9).prop_map(JsVal::Num),
            "\\PC{0,8}".prop_map(JsVal::Str),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(JsVal::Arr),
                prop::collection::vec(("[a-z0-9]{1,3}", inner), 0..4).prop_map(|kv| {
                    let mut pairs: Vec<(String, JsVal)> = Vec::new();
                    for (k, v) in kv {
                        if !pairs.iter().any(|(pk, _)| *pk == k) {
                            pairs.push((k, v));
                        }
                    }
                    JsVal::Obj(pairs)
                }),
            ]
        })
    }
}
