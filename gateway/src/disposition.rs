//! `Content-Disposition` as Manta stored it: the whole header is parsed
//! (RFC 6266 with RFC 8187 extended values, as strictly as the npm
//! `content-disposition` module muskie used), then stored re-formatted
//! with only its type and its file name, the file name stripped of any
//! directory part (`"/root/my-file.txt"` is stored as `"my-file.txt"`).
//!
//! Guarantees: [`normalize`] never panics; what it returns is plain
//! printable ASCII (a non-ASCII name travels percent-encoded in
//! `filename*`, with an ASCII `filename` fallback), so it is always a
//! valid header value; anything it cannot parse is an error.

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

/// Why a `Content-Disposition` value was refused (400 `BadRequest`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Content-Disposition invalid: {0}")]
pub struct InvalidDisposition(&'static str);

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+.^_`|~-".contains(c)
}

fn skip_ws(s: &str) -> &str {
    s.trim_start_matches([' ', '\t'])
}

/// Splits a leading token off `s`.
fn token(s: &str) -> Option<(&str, &str)> {
    let end = s.find(|c: char| !is_token_char(c)).unwrap_or(s.len());
    (end > 0).then(|| s.split_at(end))
}

/// Splits a leading quoted-string off `s` (unescaped).
fn quoted(s: &str) -> Option<(String, &str)> {
    let mut chars = s.strip_prefix('"')?.char_indices();
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 2..])),
            '\\' => match chars.next() {
                Some((_, e)) if (' '..='~').contains(&e) => out.push(e),
                _ => return None,
            },
            c if c == ' ' || c == '!' || (('#'..='~').contains(&c) && c != '\\') => out.push(c),
            c if !c.is_ascii() => out.push(c),
            _ => return None,
        }
    }
    None
}

/// Decodes an RFC 8187 `charset'lang'value`.
fn ext_value(v: &str) -> Result<String, InvalidDisposition> {
    let bad = InvalidDisposition("invalid extended field value");
    let mut parts = v.splitn(3, '\'');
    let (Some(charset), Some(lang), Some(value)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad);
    };
    let lang_ok = lang.is_empty()
        || lang
            .split('-')
            .all(|p| !p.is_empty() && p.len() <= 8 && p.chars().all(|c| c.is_ascii_alphanumeric()));
    let mut rest = value;
    let mut value_ok = !value.is_empty();
    while let Some(c) = rest.chars().next() {
        if c == '%' {
            let hex = rest.get(1..3).unwrap_or("");
            if hex.len() != 2 || !hex.chars().all(|h| h.is_ascii_hexdigit()) {
                value_ok = false;
                break;
            }
            rest = &rest[3..];
        } else if c.is_ascii_alphanumeric() || "!#$&+.^_`|~-".contains(c) {
            rest = &rest[1..];
        } else {
            value_ok = false;
            break;
        }
    }
    if charset.is_empty() || !lang_ok || !value_ok {
        return Err(bad);
    }
    match charset.to_ascii_lowercase().as_str() {
        "utf-8" => percent_decode_str(value)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| bad),
        "iso-8859-1" => Ok(percent_decode_str(value).map(char::from).collect()),
        _ => Err(InvalidDisposition("unsupported charset in extended field")),
    }
}

/// The parsed header: lowercase type and the file name, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disposition {
    pub kind: String,
    pub filename: Option<String>,
}

/// Parses a `Content-Disposition` value.
pub fn parse(raw: &str) -> Result<Disposition, InvalidDisposition> {
    let (kind, mut rest) = token(raw).ok_or(InvalidDisposition("invalid type format"))?;
    rest = skip_ws(rest);
    let mut seen: Vec<String> = Vec::new();
    let mut filename: Option<String> = None;
    let mut ext_filename: Option<String> = None;
    while !rest.is_empty() {
        let bad = InvalidDisposition("invalid parameter format");
        rest = skip_ws(rest.strip_prefix(';').ok_or(bad.clone())?);
        let (name, after) = token(rest).ok_or(bad.clone())?;
        let name = name.to_ascii_lowercase();
        rest = skip_ws(skip_ws(after).strip_prefix('=').ok_or(bad.clone())?);
        let value = if rest.starts_with('"') {
            let (v, after) = quoted(rest).ok_or(bad.clone())?;
            rest = after;
            v
        } else {
            let (v, after) = token(rest).ok_or(bad)?;
            rest = after;
            v.to_owned()
        };
        rest = skip_ws(rest);
        if seen.contains(&name) {
            return Err(InvalidDisposition("invalid duplicate parameter"));
        }
        match name.as_str() {
            "filename*" => ext_filename = Some(ext_value(&value)?),
            "filename" => filename = Some(value),
            n if n.ends_with('*') => {
                ext_value(&value)?;
            }
            _ => {}
        }
        seen.push(name);
    }
    Ok(Disposition {
        kind: kind.to_ascii_lowercase(),
        filename: ext_filename.or(filename),
    })
}

/// What `encodeURIComponent` leaves alone minus RFC 8187's reserved
/// characters: everything else in a `filename*` value is percent-encoded.
const EXT_ENCODE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'%')
    .add(b'\'')
    .add(b'(')
    .add(b')')
    .add(b'*')
    .add(b',')
    .add(b'/')
    .add(b':')
    .add(b';')
    .add(b'<')
    .add(b'=')
    .add(b'>')
    .add(b'?')
    .add(b'@')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'{')
    .add(b'}')
    .add(b'`')
    .add(b'^')
    .add(b'|');

/// The last path component of `name`, as node's `path.basename` gives it
/// (trailing slashes ignored).
fn basename(name: &str) -> &str {
    let trimmed = name.trim_end_matches('/');
    trimmed.rsplit('/').next().unwrap_or("")
}

/// [`normalize`] of a raw header value (UTF-8, or refused).
pub fn normalize_bytes(raw: &[u8]) -> Result<String, InvalidDisposition> {
    let s = std::str::from_utf8(raw).map_err(|_| InvalidDisposition("not UTF-8"))?;
    normalize(s)
}

/// Parses `raw` and returns the form Manta stored: `type` alone, or
/// `type; filename="base"` (plus `filename*` when the name is not plain
/// ASCII, or looks percent-encoded).
pub fn normalize(raw: &str) -> Result<String, InvalidDisposition> {
    let d = parse(raw)?;
    let mut out = d.kind;
    let Some(name) = d
        .filename
        .as_deref()
        .map(basename)
        .filter(|n| !n.is_empty())
    else {
        return Ok(out);
    };
    let plain = name.chars().all(|c| (' '..='~').contains(&c));
    let looks_encoded = name
        .as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit());
    let fallback: String = name
        .chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect();
    out.push_str("; filename=\"");
    for c in fallback.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    if !plain || looks_encoded {
        out.push_str("; filename*=UTF-8''");
        out.extend(utf8_percent_encode(name, EXT_ENCODE));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn manta_forms() {
        let n = |s: &str| normalize(s);
        assert_eq!(n("attachment").unwrap(), "attachment");
        assert_eq!(n("Inline").unwrap(), "inline");
        assert_eq!(
            n("attachment; filename=\"/root/my-file.txt\"").unwrap(),
            "attachment; filename=\"my-file.txt\""
        );
        assert_eq!(
            n("attachment;filename=a.txt; size=3").unwrap(),
            "attachment; filename=\"a.txt\""
        );
        assert_eq!(
            n("attachment; filename=\"a\\\"b\"").unwrap(),
            "attachment; filename=\"a\\\"b\""
        );
        assert_eq!(
            n("attachment; filename*=UTF-8''%e2%82%ac%20rates.txt").unwrap(),
            "attachment; filename=\"? rates.txt\"; filename*=UTF-8''%E2%82%AC%20rates.txt"
        );
        assert_eq!(
            n("attachment; filename=\"x.txt\"; filename*=iso-8859-1'en'%A3.txt").unwrap(),
            "attachment; filename=\"?.txt\"; filename*=UTF-8''%C2%A3.txt"
        );
        assert_eq!(
            n("attachment; filename=\"dir/\"").unwrap(),
            "attachment; filename=\"dir\""
        );
        assert_eq!(n("attachment; filename=\"/\"").unwrap(), "attachment");
    }

    #[test]
    fn refusals() {
        for bad in [
            "",
            "attachment;",
            "attachment; ",
            ";filename=a",
            "attach ment",
            "attachment; filename",
            "attachment; filename=",
            "attachment; filename=\"unterminated",
            "attachment; filename=a b",
            "attachment; filename=a; filename=b",
            "attachment; filename*=UTF-16''abc",
            "attachment; filename*=UTF-8''%zz",
            "attachment; filename*=UTF-8''%ff",
            "attachment; filename*=abc",
            "attachment, inline",
        ] {
            assert!(normalize(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn never_panics_and_output_is_a_header(s in "[ -~\u{80}-\u{2000}]{0,60}") {
            if let Ok(v) = normalize(&s) {
                prop_assert!(http::HeaderValue::from_str(&v).is_ok());
                prop_assert!(v.is_ascii());
                // Stable: the stored form parses to itself.
                prop_assert_eq!(normalize(&v).unwrap(), v);
            }
        }
    }
}
