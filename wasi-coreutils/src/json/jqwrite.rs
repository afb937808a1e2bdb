//! Serialises jaq values the way jq 1.6 prints them, so `jq` output is
//! byte-identical with Debian's `/usr/bin/jq` for the common cases:
//! insertion-ordered keys, two-space (or `--indent N` / `--tab`) pretty
//! printing, jq 1.6 number layout (see [`super::numfmt::jq`]), and jq's
//! string escapes (`\u007f`, lowercase hex, non-ASCII raw unless `-a`).

use std::io::{self, Write};

use jaq_json::{Num, Val};

/// How to lay values out.
#[derive(Clone, Debug)]
pub struct Style {
    /// Indentation unit; empty means compact (`-c`, `--indent 0`).
    pub indent: String,
    /// Sort object keys (`-S`).
    pub sort_keys: bool,
    /// Escape non-ASCII characters as `\uXXXX` (`-a`).
    pub ascii: bool,
}

impl Default for Style {
    fn default() -> Self {
        Style {
            indent: "  ".to_string(),
            sort_keys: false,
            ascii: false,
        }
    }
}

/// A jaq number as the `f64` jq 1.6 would hold (jq has only doubles).
pub fn num_f64(n: &Num) -> f64 {
    match n {
        Num::Int(i) => *i as f64,
        Num::Float(f) => *f,
        other => other.to_string().parse().unwrap_or(f64::NAN),
    }
}

/// The bytes of a string value with invalid UTF-8 replaced, as jq does on input.
pub fn str_text(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// Writes `s` as a JSON string literal with jq's escapes.
pub fn write_str(w: &mut impl Write, s: &str, ascii: bool) -> io::Result<()> {
    let mut buf = Vec::with_capacity(s.len() + 2);
    buf.push(b'"');
    for c in s.chars() {
        match c {
            '"' => buf.extend_from_slice(b"\\\""),
            '\\' => buf.extend_from_slice(b"\\\\"),
            '\n' => buf.extend_from_slice(b"\\n"),
            '\t' => buf.extend_from_slice(b"\\t"),
            '\r' => buf.extend_from_slice(b"\\r"),
            '\u{8}' => buf.extend_from_slice(b"\\b"),
            '\u{c}' => buf.extend_from_slice(b"\\f"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                buf.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c if ascii && !c.is_ascii() => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    buf.extend_from_slice(format!("\\u{:04x}", u).as_bytes());
                }
            }
            c => {
                let mut tmp = [0u8; 4];
                buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
            }
        }
    }
    buf.push(b'"');
    w.write_all(&buf)
}

fn newline(w: &mut impl Write, style: &Style, level: usize) -> io::Result<()> {
    if style.indent.is_empty() {
        return Ok(());
    }
    w.write_all(b"\n")?;
    for _ in 0..level {
        w.write_all(style.indent.as_bytes())?;
    }
    Ok(())
}

/// Writes one value (no trailing newline).
pub fn write(w: &mut impl Write, v: &Val, style: &Style, level: usize) -> io::Result<()> {
    match v {
        Val::Null => w.write_all(b"null"),
        Val::Bool(b) => w.write_all(if *b { b"true" } else { b"false" }),
        Val::Num(n) => w.write_all(super::numfmt::jq(num_f64(n)).as_bytes()),
        Val::TStr(b) | Val::BStr(b) => write_str(w, &str_text(b), style.ascii),
        Val::Arr(a) if a.is_empty() => w.write_all(b"[]"),
        Val::Arr(a) => {
            w.write_all(b"[")?;
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    w.write_all(b",")?;
                }
                newline(w, style, level + 1)?;
                write(w, x, style, level + 1)?;
            }
            newline(w, style, level)?;
            w.write_all(b"]")
        }
        Val::Obj(o) if o.is_empty() => w.write_all(b"{}"),
        Val::Obj(o) => {
            let mut entries: Vec<(String, &Val)> =
                o.iter().map(|(k, v)| (key_text(k), v)).collect();
            if style.sort_keys {
                // jq compares keys as UTF-8 byte strings.
                entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            }
            w.write_all(b"{")?;
            for (i, (k, x)) in entries.iter().enumerate() {
                if i > 0 {
                    w.write_all(b",")?;
                }
                newline(w, style, level + 1)?;
                write_str(w, k, style.ascii)?;
                w.write_all(if style.indent.is_empty() { b":" } else { b": " })?;
                write(w, x, style, level + 1)?;
            }
            newline(w, style, level)?;
            w.write_all(b"}")
        }
    }
}

/// jq keys are strings; jaq allows any value, which we print by its JSON text.
fn key_text(k: &Val) -> String {
    match k {
        Val::TStr(b) | Val::BStr(b) => str_text(b).into_owned(),
        other => {
            let mut v = Vec::new();
            let _ = write(
                &mut v,
                other,
                &Style {
                    indent: String::new(),
                    ..Style::default()
                },
                0,
            );
            String::from_utf8_lossy(&v).into_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(json: &str, style: &Style) -> String {
        let v = jaq_json::read::parse_single(json.as_bytes()).unwrap();
        let mut out = Vec::new();
        write(&mut out, &v, style, 0).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn pretty_matches_jq16() {
        let got = render(
            r#"[1,{"a":[],"b":{}},"x\u0001\u007f\u00e9"]"#,
            &Style::default(),
        );
        assert_eq!(
            got,
            "[\n  1,\n  {\n    \"a\": [],\n    \"b\": {}\n  },\n  \"x\\u0001\\u007fé\"\n]"
        );
    }

    #[test]
    fn compact_sorted_and_numbers() {
        let style = Style {
            indent: String::new(),
            sort_keys: true,
            ascii: true,
        };
        let got = render(
            r#"{"b":1.0,"a":[1e1000,100000000000000000000,"é😀"]}"#,
            &style,
        );
        assert_eq!(
            got,
            r#"{"a":[1.7976931348623157e+308,1e+20,"\u00e9\ud83d\ude00"],"b":1}"#
        );
    }
}
