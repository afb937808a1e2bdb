//! A streaming JSON reader with jq 1.6's tokenisation, producing jaq values.
//!
//! jq 1.6 reads "literal" tokens as maximal runs of non-delimiter bytes and
//! then validates them, so `192.168.1.7` is one invalid numeric literal
//! (jaq's own reader would yield `192.168` first). Matching this matters
//! for `jq` applied to non-JSON lines. Other jq 1.6 behaviours kept: values
//! may be concatenated without whitespace, `NaN`/`infinity` literals are
//! accepted by its strtod, nesting deeper than 256 is refused, raw control
//! characters in strings and unpaired surrogates are errors. Numbers get
//! jq's double semantics (see [`jq_number`]). Never panics on any input.

use std::io::{self, BufRead};

use jaq_json::{Num, Rc, Val};

/// jq 1.6's maximum parsing depth.
const MAX_DEPTH: usize = 256;

/// A number as jq 1.6 holds it (a double), given jaq's representation:
/// integral values that fit jaq's machine integer stay integers (so they
/// index arrays); others become decimal literals carrying jq's text, which
/// jaq's string conversion (`tostring`, `"\(.)"`) then prints verbatim.
pub fn jq_number(x: f64) -> Val {
    let negative_zero = x == 0.0 && x.is_sign_negative();
    if x.fract() == 0.0
        && x.abs() < 9007199254740992.0
        && !negative_zero
        && let Ok(i) = isize::try_from(x as i64)
    {
        return Val::Num(Num::Int(i));
    }
    Val::Num(Num::Dec(Rc::new(super::numfmt::jq(x))))
}

/// Reads consecutive JSON texts from a byte stream.
pub struct Reader<R> {
    r: R,
    line: usize,
    failed: bool,
}

type Res<T> = Result<T, String>;

impl<R: BufRead> Reader<R> {
    pub fn new(r: R) -> Self {
        Reader {
            r,
            line: 1,
            failed: false,
        }
    }

    fn peek(&mut self) -> Res<Option<u8>> {
        match self.r.fill_buf() {
            Ok(b) => Ok(b.first().copied()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => self.peek(),
            Err(e) => Err(e.to_string()),
        }
    }

    fn bump(&mut self) -> Res<Option<u8>> {
        let b = self.peek()?;
        if let Some(c) = b {
            self.r.consume(1);
            if c == b'\n' {
                self.line += 1;
            }
        }
        Ok(b)
    }

    fn err<T>(&self, msg: &str) -> Res<T> {
        Err(format!("{msg} at line {}", self.line))
    }

    fn skip_ws(&mut self) -> Res<Option<u8>> {
        while let Some(b) = self.peek()? {
            if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                self.bump()?;
            } else {
                return Ok(Some(b));
            }
        }
        Ok(None)
    }

    fn value(&mut self, depth: usize) -> Res<Val> {
        if depth > MAX_DEPTH {
            return self.err("Exceeds depth limit for parsing");
        }
        match self.skip_ws()? {
            None => self.err("Unfinished JSON term at EOF"),
            Some(b'[') => {
                self.bump()?;
                let mut items = Vec::new();
                if self.skip_ws()? == Some(b']') {
                    self.bump()?;
                    return Ok(Val::Arr(Rc::new(items)));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    match self.skip_ws()? {
                        Some(b',') => {
                            self.bump()?;
                        }
                        Some(b']') => {
                            self.bump()?;
                            return Ok(Val::Arr(Rc::new(items)));
                        }
                        None => return self.err("Unfinished JSON term at EOF"),
                        Some(_) => return self.err("Expected separator between values"),
                    }
                }
            }
            Some(b'{') => {
                self.bump()?;
                let mut map = jaq_json::Map::default();
                if self.skip_ws()? == Some(b'}') {
                    self.bump()?;
                    return Ok(Val::obj(map));
                }
                loop {
                    match self.skip_ws()? {
                        Some(b'"') => {}
                        None => return self.err("Unfinished JSON term at EOF"),
                        Some(_) => return self.err("Object keys must be strings"),
                    }
                    let k = self.string()?;
                    if self.skip_ws()? != Some(b':') {
                        return self.err("Objects must consist of key:value pairs");
                    }
                    self.bump()?;
                    let v = self.value(depth + 1)?;
                    map.insert(Val::from(k), v);
                    match self.skip_ws()? {
                        Some(b',') => {
                            self.bump()?;
                        }
                        Some(b'}') => {
                            self.bump()?;
                            return Ok(Val::obj(map));
                        }
                        None => return self.err("Unfinished JSON term at EOF"),
                        Some(_) => return self.err("Expected separator between values"),
                    }
                }
            }
            Some(b'"') => self.string().map(Val::from),
            Some(b']' | b'}' | b',' | b':') => self.err("Unmatched or misplaced delimiter"),
            Some(_) => self.literal(),
        }
    }

    fn hex4(&mut self) -> Res<u16> {
        let mut v: u16 = 0;
        for _ in 0..4 {
            let d = self.bump()?.and_then(|b| (b as char).to_digit(16));
            match d {
                Some(d) => v = v * 16 + d as u16,
                None => return self.err("Invalid \\uXXXX escape"),
            }
        }
        Ok(v)
    }

    /// A string; the opening quote is next.
    fn string(&mut self) -> Res<String> {
        self.bump()?;
        let mut bytes: Vec<u8> = Vec::new();
        loop {
            let Some(b) = self.bump()? else {
                return self.err("Unfinished string at EOF");
            };
            match b {
                b'"' => return Ok(String::from_utf8_lossy(&bytes).into_owned()),
                0..=0x1f => {
                    return self.err("Invalid string: control characters from U+0000 through U+001F must be escaped");
                }
                b'\\' => {
                    let c = match self.bump()? {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            let hi = self.hex4()?;
                            let cp = if (0xd800..0xdc00).contains(&hi) {
                                if self.bump()? != Some(b'\\') || self.bump()? != Some(b'u') {
                                    return self
                                        .err("Invalid \\uXXXX\\uXXXX surrogate pair escape");
                                }
                                let lo = self.hex4()?;
                                if !(0xdc00..0xe000).contains(&lo) {
                                    return self
                                        .err("Invalid \\uXXXX\\uXXXX surrogate pair escape");
                                }
                                0x10000
                                    + ((u32::from(hi) - 0xd800) << 10)
                                    + (u32::from(lo) - 0xdc00)
                            } else if (0xdc00..0xe000).contains(&hi) {
                                return self.err("Invalid \\uXXXX\\uXXXX surrogate pair escape");
                            } else {
                                u32::from(hi)
                            };
                            char::from_u32(cp).unwrap_or('\u{fffd}')
                        }
                        _ => return self.err("Invalid escape"),
                    };
                    let mut tmp = [0u8; 4];
                    bytes.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
                b => bytes.push(b),
            }
        }
    }

    /// A maximal run of non-delimiter bytes, validated as jq 1.6 does.
    fn literal(&mut self) -> Res<Val> {
        let mut tok = Vec::new();
        while let Some(b) = self.peek()? {
            if matches!(
                b,
                b' ' | b'\t' | b'\n' | b'\r' | b'[' | b']' | b'{' | b'}' | b',' | b':' | b'"'
            ) {
                break;
            }
            tok.push(b);
            self.bump()?;
        }
        let text = String::from_utf8_lossy(&tok);
        match text.as_bytes().first() {
            Some(b't' | b'f' | b'n') => match &*text {
                "true" => Ok(Val::Bool(true)),
                "false" => Ok(Val::Bool(false)),
                "null" => Ok(Val::Null),
                _ => self.err("Invalid literal"),
            },
            _ => {
                let valid_chars = text
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
                match text.parse::<f64>() {
                    Ok(x) if valid_chars => Ok(jq_number(x)),
                    _ => self.err("Invalid numeric literal"),
                }
            }
        }
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = Result<Val, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.skip_ws() {
            Ok(None) => None,
            Ok(Some(_)) => {
                let v = self.value(0);
                self.failed = v.is_err();
                Some(v)
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all(s: &str) -> Vec<Result<String, ()>> {
        Reader::new(s.as_bytes())
            .map(|r| r.map(|v| v.to_string()).map_err(|_| ()))
            .collect()
    }

    #[test]
    fn jq16_tokenisation() {
        assert_eq!(all("1 2"), vec![Ok("1".into()), Ok("2".into())]);
        assert_eq!(all("192.168.1.7 x"), vec![Err(())]);
        assert_eq!(
            all("{\"a\":1}{\"b\":[1.0,1e17]}"),
            vec![Ok("{\"a\":1}".into()), Ok("{\"b\":[1,1e+17]}".into())]
        );
        assert_eq!(
            all(".5 +1 01"),
            vec![Ok("0.5".into()), Ok("1".into()), Ok("1".into())]
        );
        assert_eq!(all("truex"), vec![Err(())]);
        assert_eq!(all("nan"), vec![Err(())]);
        assert_eq!(all("\"\\ud83d\\ude00\""), vec![Ok("\"😀\"".into())]);
        assert_eq!(all("\"\\ud800\""), vec![Err(())]);
        assert_eq!(all("\"a\tb\""), vec![Err(())]);
        assert_eq!(all("[1 2]"), vec![Err(())]);
        assert_eq!(all(&"[".repeat(257)), vec![Err(())]);
        assert_eq!(all("  "), vec![]);
    }

    proptest! {
        #[test]
        fn never_panics(s in "[\\[\\]{}\",:0-9a-z.+\\\\ -]{0,30}") {
            let _ = all(&s);
        }
    }
}
