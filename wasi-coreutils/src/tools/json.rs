//! `json`: the subset of trentm's `json` CLI (v9) that Manta's examples use,
//! with the same output bytes as `json` 9.0.6 on node.
//!
//! Supported: `json [LOOKUP...]` (dotted lookups, `a["b.c"]`, `a[0]`,
//! `.length`; `-D DELIM` lookup delimiter), `-g/--group` (adjacent objects →
//! array, adjacent arrays → concatenated), `-a/--array` (per-element
//! processing, tabular output, `-d DELIM`), `-A`, `-c CODE` and `-e CODE`
//! (the safe JavaScript subset of `crate::json::cond`), `-k/--keys`,
//! `-M/--items`, `--merge`, `-n/--validate`, `-q`, `-f FILE`, output modes
//! `-o jsony|json|jsony-N|json-N`, `-j`, `-0 -2 -4`, `-j0`.
//! Rejected with status 2: `-I` (in-place), `-i`/`-o inspect`, `--deep-merge`,
//! `-H` and HTTP header blocks, `-a` with lookups in JSON output mode, and
//! JavaScript outside the subset. As `json` does, input that is not JSON is
//! echoed to stdout and the exit status is 1.

use std::ffi::OsString;
use std::io::{self, Read, Write};

use crate::common;
use crate::json::cond::{self, CodeError, Expr, Stmt};
use crate::json::jsval::{self, JsVal, Parser};

const TOOL: &str = "json";

#[derive(Default)]
struct Opts {
    group: bool,
    merge: bool,
    array: bool,
    no_auto_array: bool,
    delim: String,
    lookup_delim: char,
    conds: Vec<Expr>,
    execs: Vec<Vec<Stmt>>,
    keys: bool,
    items: bool,
    validate: bool,
    quiet: bool,
    file: Option<OsString>,
    /// `json` (quoted strings) rather than `jsony`.
    json_mode: bool,
    indent: usize,
    lookups: Vec<String>,
}

/// A usage problem (exit 2) with its message.
struct Usage(String);

impl From<CodeError> for Usage {
    fn from(e: CodeError) -> Self {
        Usage(e.to_string())
    }
}

fn set_mode(o: &mut Opts, mode: &str) -> Result<(), Usage> {
    let (json, rest) = if let Some(r) = mode.strip_prefix("jsony") {
        (false, r)
    } else if let Some(r) = mode.strip_prefix("json") {
        (true, r)
    } else {
        return Err(Usage(format!(
            "unsupported output mode: \"{mode}\" (supported: jsony, json, jsony-N, json-N)"
        )));
    };
    o.json_mode = json;
    o.indent = match rest {
        "" => 2,
        r => r
            .strip_prefix('-')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| Usage(format!("unsupported output mode: \"{mode}\"")))?,
    };
    Ok(())
}

fn parse_args(args: &[OsString]) -> Result<Opts, Usage> {
    let mut o = Opts {
        delim: " ".into(),
        lookup_delim: '.',
        indent: 2,
        ..Opts::default()
    };
    let args: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut i = 0;
    let mut positional_only = false;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if positional_only || !a.starts_with('-') || a == "-" {
            o.lookups.push(a.clone());
            continue;
        }
        let value = |name: &str, i: &mut usize| -> Result<String, Usage> {
            let v = args
                .get(*i)
                .cloned()
                .ok_or_else(|| Usage(format!("option {name} requires an argument")))?;
            *i += 1;
            Ok(v)
        };
        match a.as_str() {
            "--" => positional_only = true,
            "--group" => o.group = true,
            "--merge" => o.merge = true,
            "--array" => o.array = true,
            "--keys" => o.keys = true,
            "--items" => o.items = true,
            "--validate" => o.validate = true,
            "--quiet" => o.quiet = true,
            "--output" => set_mode(&mut o, &value("-o", &mut i)?)?,
            "--in-place" | "--deep-merge" | "--inspect" => {
                return Err(Usage(format!(
                    "option {a} is not supported in wasi-coreutils json"
                )));
            }
            "-j0" => {
                o.json_mode = true;
                o.indent = 0;
            }
            long if long.starts_with("--") => {
                return Err(Usage(format!("unknown option: \"{long}\"")));
            }
            short => {
                let chars: Vec<char> = short[1..].chars().collect();
                let mut k = 0;
                while k < chars.len() {
                    let c = chars[k];
                    k += 1;
                    // Options taking a value use the rest of the word, or the next word.
                    let mut take = |i: &mut usize| -> Result<String, Usage> {
                        let rest: String = chars[k..].iter().collect();
                        k = chars.len();
                        if rest.is_empty() {
                            value(&format!("-{c}"), i)
                        } else {
                            Ok(rest)
                        }
                    };
                    match c {
                        'g' => o.group = true,
                        'a' => o.array = true,
                        'A' => o.no_auto_array = true,
                        'k' => o.keys = true,
                        'M' => o.items = true,
                        'n' => o.validate = true,
                        'q' => o.quiet = true,
                        'j' => {
                            o.json_mode = true;
                            o.indent = 2;
                        }
                        '0' | '2' | '4' => o.indent = c.to_digit(10).unwrap_or(2) as usize,
                        'd' => o.delim = take(&mut i)?,
                        'D' => {
                            let d = take(&mut i)?;
                            let mut cs = d.chars();
                            match (cs.next(), cs.next()) {
                                (Some(ch), None) => o.lookup_delim = ch,
                                _ => return Err(Usage("-D takes a single character".into())),
                            }
                        }
                        'f' => o.file = Some(OsString::from(take(&mut i)?)),
                        'o' => set_mode(&mut o, &take(&mut i)?)?,
                        'c' => o.conds.push(cond::parse_expr(&take(&mut i)?)?),
                        'e' => o.execs.push(cond::parse_stmts(&take(&mut i)?)?),
                        'I' | 'i' | 'H' => {
                            return Err(Usage(format!(
                                "option -{c} is not supported in wasi-coreutils json"
                            )));
                        }
                        _ => return Err(Usage(format!("unknown option: \"-{c}\""))),
                    }
                }
            }
        }
    }
    if o.array && o.json_mode && !o.lookups.is_empty() {
        return Err(Usage(
            "-a with lookups in json output mode is not supported in wasi-coreutils json".into(),
        ));
    }
    Ok(o)
}

/// Splits a lookup such as `a.b["c.d"][0]` into its keys.
fn parse_lookup(s: &str, delim: char) -> Result<Vec<String>, Usage> {
    let mut keys = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == delim {
            if !cur.is_empty() {
                keys.push(std::mem::take(&mut cur));
            }
        } else if c == '[' {
            if !cur.is_empty() {
                keys.push(std::mem::take(&mut cur));
            }
            let mut key = String::new();
            match chars.peek().copied() {
                Some(q @ ('"' | '\'')) => {
                    chars.next();
                    loop {
                        match chars.next() {
                            Some(ch) if ch == q => break,
                            Some(ch) => key.push(ch),
                            None => return Err(Usage(format!("invalid lookup: {s}"))),
                        }
                    }
                    if chars.next() != Some(']') {
                        return Err(Usage(format!("invalid lookup: {s}")));
                    }
                }
                _ => loop {
                    match chars.next() {
                        Some(']') => break,
                        Some(ch) => key.push(ch),
                        None => return Err(Usage(format!("invalid lookup: {s}"))),
                    }
                },
            }
            keys.push(key);
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        keys.push(cur);
    }
    Ok(keys)
}

fn lookup(v: &JsVal, keys: &[String]) -> JsVal {
    let mut cur = v.clone();
    for k in keys {
        cur = cur.get(k);
        if cur == JsVal::Undefined {
            break;
        }
    }
    cur
}

/// Parses the whole input; with `-g`, several adjacent values are grouped.
fn parse_input(text: &str, group: bool, merge: bool) -> Result<JsVal, String> {
    if !group && !merge {
        return jsval::parse(text).map_err(|e| e.to_string());
    }
    let mut p = Parser::new(text);
    let mut vals = Vec::new();
    while p.skip_ws() {
        vals.push(p.value().map_err(|e| e.to_string())?);
    }
    if vals.len() == 1 {
        return Ok(vals.remove(0));
    }
    if merge {
        let mut out = JsVal::Obj(Vec::new());
        for v in vals {
            let JsVal::Obj(pairs) = v else {
                return Err("--merge needs adjacent objects".into());
            };
            for (k, x) in pairs {
                out.set(&k, x);
            }
        }
        return Ok(out);
    }
    if vals.iter().all(|v| matches!(v, JsVal::Obj(_))) {
        Ok(JsVal::Arr(vals))
    } else if vals.iter().all(|v| matches!(v, JsVal::Arr(_))) {
        Ok(JsVal::Arr(
            vals.into_iter()
                .flat_map(|v| if let JsVal::Arr(a) = v { a } else { Vec::new() })
                .collect(),
        ))
    } else {
        Err("cannot group a mix of objects and arrays".into())
    }
}

/// True if the text is two or more adjacent JSON objects.
fn is_object_stream(text: &str) -> bool {
    let mut p = Parser::new(text);
    let mut n = 0;
    while p.skip_ws() {
        match p.value() {
            Ok(JsVal::Obj(_)) => n += 1,
            _ => return false,
        }
    }
    n > 1
}

/// Output rendering: jsony prints a string value without quotes.
fn render(v: &JsVal, o: &Opts) -> Option<String> {
    match v {
        JsVal::Str(s) if !o.json_mode => Some(s.clone()),
        v => v.stringify(o.indent),
    }
}

enum Fail {
    Usage(String),
    Runtime(String),
}

impl From<CodeError> for Fail {
    fn from(e: CodeError) -> Self {
        match e {
            CodeError::Unsupported(_) => Fail::Usage(e.to_string()),
            CodeError::Type(_) => Fail::Runtime(e.to_string()),
        }
    }
}

/// Applies -e and -c to one item; `None` if filtered out.
fn transform(mut v: JsVal, o: &Opts) -> Result<Option<JsVal>, Fail> {
    for s in &o.execs {
        cond::exec(s, &mut v)?;
    }
    for c in &o.conds {
        if !cond::eval(c, &v)?.truthy() {
            return Ok(None);
        }
    }
    Ok(Some(v))
}

/// Processes the parsed input; `stream` says it was a grouped run of objects.
fn process(v: JsVal, o: &Opts, stream: bool, out: &mut impl Write) -> Result<(), Fail> {
    let io = |e: io::Error| Fail::Runtime(e.to_string());
    let mut v = v;
    if o.items {
        v = match v {
            JsVal::Obj(pairs) => JsVal::Arr(
                JsVal::entries(&pairs)
                    .into_iter()
                    .map(|(k, x)| {
                        JsVal::Obj(vec![
                            ("key".into(), JsVal::Str(k.clone())),
                            ("value".into(), x.clone()),
                        ])
                    })
                    .collect(),
            ),
            other => other,
        };
    }
    // -e/-c apply per element of an input array unless -A.
    if !o.execs.is_empty() || !o.conds.is_empty() {
        v = match v {
            JsVal::Arr(items) if !o.no_auto_array => {
                let mut kept = Vec::new();
                for x in items {
                    if let Some(x) = transform(x, o)? {
                        kept.push(x);
                    }
                }
                JsVal::Arr(kept)
            }
            other => match transform(other, o)? {
                Some(x) => x,
                None => return Ok(()),
            },
        };
    }
    let lookups = o
        .lookups
        .iter()
        .map(|l| parse_lookup(l, o.lookup_delim).map(|k| (l.clone(), k)))
        .collect::<Result<Vec<_>, Usage>>()
        .map_err(|u| Fail::Usage(u.0))?;

    if o.keys {
        // json 9 streams a grouped run of objects through `-a` one object
        // at a time, so `-gak` lists each object's keys.
        if o.array
            && stream
            && let JsVal::Arr(items) = &v
        {
            for item in items {
                for k in item.keys().unwrap_or_default() {
                    writeln!(out, "{k}").map_err(io)?;
                }
            }
            return Ok(());
        }
        let keys = v.keys().unwrap_or_default();
        if o.array {
            for k in keys {
                writeln!(out, "{k}").map_err(io)?;
            }
        } else {
            let arr = JsVal::Arr(keys.into_iter().map(JsVal::Str).collect());
            if let Some(s) = arr.stringify(o.indent) {
                writeln!(out, "{s}").map_err(io)?;
            }
        }
        return Ok(());
    }

    if o.array && !o.json_mode {
        let items = match v {
            JsVal::Arr(items) => items,
            other => vec![other],
        };
        for x in items {
            if lookups.is_empty() {
                if let Some(s) = render(&x, o) {
                    writeln!(out, "{s}").map_err(io)?;
                }
            } else {
                let fields: Vec<String> = lookups
                    .iter()
                    .map(|(_, k)| render(&lookup(&x, k), o).unwrap_or_default())
                    .collect();
                writeln!(out, "{}", fields.join(&o.delim)).map_err(io)?;
            }
        }
        return Ok(());
    }

    match lookups.len() {
        0 => {
            if let Some(s) = render(&v, o) {
                writeln!(out, "{s}").map_err(io)?;
            }
        }
        1 if o.json_mode => {
            if let Some(s) = render(&lookup(&v, &lookups[0].1), o) {
                writeln!(out, "{s}").map_err(io)?;
            }
        }
        _ if o.json_mode => {
            let obj = JsVal::Obj(
                lookups
                    .iter()
                    .map(|(name, k)| (name.clone(), lookup(&v, k)))
                    .collect(),
            );
            if let Some(s) = render(&obj, o) {
                writeln!(out, "{s}").map_err(io)?;
            }
        }
        _ => {
            for (_, k) in &lookups {
                if let Some(s) = render(&lookup(&v, k), o) {
                    writeln!(out, "{s}").map_err(io)?;
                }
            }
        }
    }
    Ok(())
}

pub fn main(args: Vec<OsString>) -> i32 {
    let o = match parse_args(&args) {
        Ok(o) => o,
        Err(Usage(m)) => return common::usage_error(TOOL, m),
    };
    let mut raw = Vec::new();
    let read = match &o.file {
        Some(f) => std::fs::File::open(f).and_then(|mut f| f.read_to_end(&mut raw)),
        None => io::stdin().lock().read_to_end(&mut raw),
    };
    if let Err(e) = read {
        eprintln!(
            "{TOOL}: error: could not read input: {}",
            crate::files::io_msg(&e)
        );
        return 1;
    }
    let text = String::from_utf8_lossy(&raw);
    if text.starts_with("HTTP/") {
        return common::usage_error(
            TOOL,
            "HTTP header blocks are not supported in wasi-coreutils json",
        );
    }
    let mut out = common::stdout();
    if text.is_empty() {
        return 0;
    }
    let v = match parse_input(&text, o.group, o.merge) {
        Ok(v) => v,
        Err(e) => {
            if !o.validate {
                // json echoes input it cannot parse.
                let nl: &[u8] = if text.ends_with('\n') { b"" } else { b"\n" };
                let _ = out
                    .write_all(text.as_bytes())
                    .and_then(|_| out.write_all(nl));
                let _ = common::finish(&mut out);
            }
            if !o.quiet {
                eprintln!("{TOOL}: error: input is not JSON: {e}");
            }
            return 1;
        }
    };
    if o.validate {
        return 0;
    }
    let stream =
        o.group && matches!(&v, JsVal::Arr(items) if items.len() > 1) && is_object_stream(&text);
    let r = process(v, &o, stream, &mut out);
    let flushed = common::finish(&mut out);
    match r {
        Ok(()) => match flushed {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("{TOOL}: error: {e}");
                1
            }
        },
        Err(Fail::Usage(m)) => common::usage_error(TOOL, m),
        Err(Fail::Runtime(m)) => {
            eprintln!("{TOOL}: error: {m}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_split() {
        assert_eq!(
            parse_lookup("a.b[\"c.d\"][0]", '.').ok(),
            Some(vec!["a".into(), "b".into(), "c.d".into(), "0".into()])
        );
        assert_eq!(
            parse_lookup("a/b.c", '/').ok(),
            Some(vec!["a".into(), "b.c".into()])
        );
    }

    #[test]
    fn grouping() {
        let v = parse_input("{\"a\":1}{\"a\":2}\n{\"a\":3}", true, false).unwrap();
        assert_eq!(v.stringify(0).unwrap(), r#"[{"a":1},{"a":2},{"a":3}]"#);
        let v = parse_input("[1,2]\n[3]", true, false).unwrap();
        assert_eq!(v.stringify(0).unwrap(), "[1,2,3]");
        assert!(parse_input("{}\n[1]", true, false).is_err());
        assert!(parse_input("{}\n{}", false, false).is_err());
    }

    #[test]
    fn options() {
        let a = |v: &[&str]| {
            std::iter::once("json")
                .chain(v.iter().copied())
                .map(OsString::from)
                .collect::<Vec<_>>()
        };
        let o = parse_args(&a(&["-gac", "this.x == 1", "-d,", "a.b", "c"]))
            .ok()
            .unwrap();
        assert!(o.group && o.array && o.conds.len() == 1 && o.delim == "," && o.lookups.len() == 2);
        assert!(parse_args(&a(&["-I"])).is_err());
        assert!(parse_args(&a(&["-c", "process.exit()"])).is_err());
        assert!(parse_args(&a(&["-o", "inspect"])).is_err());
    }
}
