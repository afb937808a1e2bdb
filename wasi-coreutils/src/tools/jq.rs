//! `jq`: a jq-compatible JSON processor built on the jaq crates (jaq-core
//! interpreter, jaq-std/jaq-json standard library), with output formatted
//! byte-for-byte like jq 1.6 (see `crate::json::jqwrite`).
//!
//! Options: `-r -j -c -n -s -e -S -a -R -M --tab --indent N --arg NAME V
//! --argjson NAME JSON`, combined short flags (`-rc`), files after the filter.
//! Exit statuses follow Debian's jq 1.6: 2 usage, 3 compile error, 4 input parse
//! error, 5 runtime error, `-e`: 1 if the last output was false/null, 4 if none.
//! Known differences (documented; output *formatting* is always jq's):
//! error messages on stderr use jaq's wording; filter semantics are jaq's
//! where jaq deliberately differs from jq 1.6 (e.g. indexing an object with
//! a number yields null instead of an error, `limit(0; f)`, `@sh` of
//! non-strings); a computed non-integral float converted *to a string*
//! (`tostring`, `"\(.)"`) uses jaq's text (`(4/2)|tostring` is "2.0", jq
//! says "2"). `input_filename`, `$__loc__`, `--stream`, `--seq`, `-f`,
//! `--args`, `-C` are not supported (compile error 3 or usage error 2).

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};

use jaq_core::data::{DataT, HasLut};
use jaq_core::load::{Arena, File as JqFile, Loader};
use jaq_core::{Compiler, Ctx, Vars};
use jaq_json::Val;
use jaq_std::input::{HasInputs, Inputs, RcIter};

use crate::common;
use crate::json::jqwrite::{self, Style};

const TOOL: &str = "jq";

/// Definitions jaq lacks or defines differently from jq 1.6; later
/// definitions shadow the standard library's.
const EXTRA_DEFS: &str = r#"
def @csv: if type == "array" then map(if type == "string" then "\"" + (split("\"") | join("\"\"")) + "\""
    elif type == "null" then "" elif type == "boolean" or type == "number" then tostring
    else error("\(type) (\(tojson)) is not valid in a csv row") end) | join(",")
  else error("\(type) (\(tojson)) cannot be csv-formatted, only an array can be") end;
def @tsv: if type == "array" then map(if type == "string" then
      split("\\") | join("\\\\") | split("\t") | join("\\t") | split("\n") | join("\\n") | split("\r") | join("\\r")
    elif type == "null" then "" elif type == "boolean" or type == "number" then tostring
    else error("\(type) (\(tojson)) is not valid in a tsv row") end) | join("\t")
  else error("\(type) (\(tojson)) cannot be tsv-formatted, only an array can be") end;
"#;

/// Marker type telling jaq which value and global-data types we run with.
struct Data;

impl DataT for Data {
    type V<'a> = Val;
    type Data<'a> = &'a Global<'a>;
}

/// Global data for native filters: the lookup table and the shared inputs
/// (so `input`/`inputs` consume the same stream the main loop reads).
struct Global<'a> {
    lut: &'a jaq_core::Lut<Data>,
    inputs: Inputs<'a, Val>,
}

impl<'a> HasLut<'a, Data> for &'a Global<'a> {
    fn lut(&self) -> &'a jaq_core::Lut<Data> {
        self.lut
    }
}

impl<'a> HasInputs<'a, Val> for &'a Global<'a> {
    fn inputs(&self) -> Inputs<'a, Val> {
        self.inputs
    }
}

#[derive(Default)]
struct Opts {
    raw: bool,
    join: bool,
    null_input: bool,
    slurp: bool,
    exit_status: bool,
    raw_input: bool,
    style: Style,
    filter: Option<String>,
    files: Vec<OsString>,
    vars: Vec<(String, Val)>,
}

fn parse_args(args: &[OsString]) -> Result<Opts, String> {
    let mut o = Opts::default();
    let mut it = args.iter().skip(1);
    let mut only_positional = false;
    let text = |a: &OsString| a.to_string_lossy().into_owned();
    while let Some(a) = it.next() {
        let s = text(a);
        if only_positional || !s.starts_with('-') || s == "-" {
            if o.filter.is_none() {
                o.filter = Some(s);
            } else {
                o.files.push(a.clone());
            }
            continue;
        }
        match s.as_str() {
            "--" => only_positional = true,
            "--raw-output" => o.raw = true,
            "--join-output" => {
                o.raw = true;
                o.join = true
            }
            "--compact-output" => o.style.indent.clear(),
            "--null-input" => o.null_input = true,
            "--slurp" => o.slurp = true,
            "--exit-status" => o.exit_status = true,
            "--sort-keys" => o.style.sort_keys = true,
            "--ascii-output" => o.style.ascii = true,
            "--raw-input" => o.raw_input = true,
            "--monochrome-output" => {}
            "--tab" => o.style.indent = "\t".to_string(),
            "--indent" => {
                let n = it.next().map(text).ok_or("--indent takes one parameter")?;
                let n: usize = n.parse().map_err(|_| "--indent takes a number")?;
                if n > 7 {
                    return Err("Cannot indent more than 7 characters".into());
                }
                o.style.indent = " ".repeat(n);
            }
            "--arg" | "--argjson" => {
                let (Some(name), Some(value)) = (it.next(), it.next()) else {
                    return Err(format!("{s} takes two parameters (e.g. {s} varname value)"));
                };
                let value = if s == "--arg" {
                    Val::from(text(value))
                } else {
                    single_json(common::arg_bytes(value)).map_err(|_| {
                        format!("Invalid JSON text passed to --argjson: {}", text(value))
                    })?
                };
                o.vars.push((text(name), value));
            }
            long if long.starts_with("--") => return Err(format!("Unknown option: {long}")),
            short => {
                for c in short[1..].chars() {
                    match c {
                        'r' => o.raw = true,
                        'j' => {
                            o.raw = true;
                            o.join = true
                        }
                        'c' => o.style.indent.clear(),
                        'n' => o.null_input = true,
                        's' => o.slurp = true,
                        'e' => o.exit_status = true,
                        'S' => o.style.sort_keys = true,
                        'a' => o.style.ascii = true,
                        'R' => o.raw_input = true,
                        'M' => {}
                        _ => {
                            return Err(format!(
                                "Unknown option: {short} (unsupported in wasi-coreutils jq)"
                            ));
                        }
                    }
                }
            }
        }
    }
    Ok(o)
}

/// Concatenation of the named files (or stdin), as jq reads them.
fn open_inputs(files: &[OsString]) -> Result<Box<dyn BufRead>, String> {
    if files.is_empty() {
        return Ok(Box::new(BufReader::with_capacity(64 * 1024, io::stdin())));
    }
    let mut r: Box<dyn Read> = Box::new(io::empty());
    for f in files {
        let file = File::open(f).map_err(|e| {
            format!(
                "error: Could not open {}: {}",
                f.to_string_lossy(),
                crate::files::io_msg(&e)
            )
        })?;
        r = Box::new(r.chain(file));
    }
    Ok(Box::new(BufReader::with_capacity(64 * 1024, r)))
}

/// The input values: JSON texts, or raw lines with `-R`, slurped with `-s`.
fn values<'a>(
    o: &Opts,
    mut r: Box<dyn BufRead + 'a>,
) -> Box<dyn Iterator<Item = Result<Val, String>> + 'a> {
    let parse_err = |e: io::Error| format!("{e}");
    match (o.raw_input, o.slurp) {
        (true, true) => {
            let mut buf = Vec::new();
            Box::new(std::iter::once(
                r.read_to_end(&mut buf)
                    .map(|_| Val::from(String::from_utf8_lossy(&buf).into_owned()))
                    .map_err(parse_err),
            ))
        }
        (true, false) => Box::new(r.split(b'\n').map(move |l| {
            l.map(|l| Val::from(String::from_utf8_lossy(&l).into_owned()))
                .map_err(parse_err)
        })),
        (false, slurp) => {
            let vals = crate::json::jqread::Reader::new(r);
            if slurp {
                let all: Result<Vec<Val>, String> = vals.collect();
                Box::new(std::iter::once(all.map(|v| v.into_iter().collect())))
            } else {
                Box::new(vals)
            }
        }
    }
}

pub fn main(args: Vec<OsString>) -> i32 {
    let o = match parse_args(&args) {
        Ok(o) => o,
        Err(e) => return common::usage_error(TOOL, e),
    };
    let Some(code) = o.filter.clone() else {
        return common::usage_error(TOOL, "usage: jq [OPTIONS] FILTER [FILES...]");
    };

    let mut vars = o.vars.clone();
    vars.push(("ENV".to_string(), env_object()));
    let var_names: Vec<String> = vars.iter().map(|(n, _)| format!("${n}")).collect();
    let arena = Arena::default();
    let extra = jaq_core::load::parse(EXTRA_DEFS, |p| p.defs()).unwrap_or_default();
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs())
        .chain(extra);
    let loader = Loader::new(defs);
    let modules = match loader.load(
        &arena,
        JqFile {
            code: code.as_str(),
            path: (),
        },
    ) {
        Ok(m) => m,
        Err(errs) => {
            for (_, e) in errs {
                eprintln!("jq: error: {}", load_error(&e));
            }
            eprintln!("jq: 1 compile error");
            return 3;
        }
    };
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs())
        .chain(
            jaq_std::input::funs::<Data>()
                .into_vec()
                .into_iter()
                .map(jaq_core::native::run::<Data>),
        );
    let compiler = Compiler::default()
        .with_funs(funs)
        .with_global_vars(var_names.iter().map(|s| s.as_str()));
    let filter = match compiler.compile(modules) {
        Ok(f) => f,
        Err(errs) => {
            for (_, es) in errs {
                for (name, undefined) in es {
                    eprintln!("jq: error: {name}/{} is not defined", undefined.as_str());
                }
            }
            eprintln!("jq: 1 compile error");
            return 3;
        }
    };

    let reader = match open_inputs(&o.files) {
        Ok(r) => r,
        Err(e) => return common::usage_error(TOOL, e),
    };
    let inputs = RcIter::new(values(&o, reader));
    let inputs: &RcIter<dyn Iterator<Item = Result<Val, String>>> = &inputs;
    let global = Global {
        lut: &filter.lut,
        inputs,
    };
    let ctx = Ctx::<Data>::new(&global, Vars::new(vars.iter().map(|(_, v)| v.clone())));

    let mut out = common::stdout();
    let mut status = 0;
    let mut last: Option<bool> = None;
    let mut first_null = Some(Ok(Val::Null));
    loop {
        let item = if o.null_input {
            match first_null.take() {
                Some(v) => v,
                None => break,
            }
        } else {
            match { inputs }.next() {
                Some(v) => v,
                None => break,
            }
        };
        let input = match item {
            Ok(v) => v,
            Err(e) => {
                let _ = common::finish(&mut out);
                eprintln!("jq: error (at <stdin>:0): Cannot parse input: {e}");
                // jq 1.6 (Debian 12) exits 4 after an input parse error.
                return 4;
            }
        };
        for r in filter.id.run((ctx.clone(), input)) {
            match r {
                Ok(v) => {
                    last = Some(!matches!(v, Val::Null | Val::Bool(false)));
                    if let Err(e) = emit(&mut out, &v, &o) {
                        return io_fail(e);
                    }
                }
                Err(exn) => match exn.get_err() {
                    Ok(err) => {
                        let _ = out.flush();
                        eprintln!("jq: error (at <stdin>:0): {}", error_text(err.into_val()));
                        status = 5;
                    }
                    Err(exn) => {
                        let code = exn.get_halt().unwrap_or(5);
                        let _ = common::finish(&mut out);
                        return code;
                    }
                },
            }
        }
    }
    if let Err(e) = common::finish(&mut out) {
        return io_fail(e);
    }
    if status != 0 {
        return status;
    }
    if o.exit_status {
        return match last {
            None => 4,
            Some(true) => 0,
            Some(false) => 1,
        };
    }
    0
}

/// `$ENV`: the environment as an object.
fn env_object() -> Val {
    let map = std::env::vars_os()
        .map(|(k, v)| {
            let k = Val::from(k.to_string_lossy().into_owned());
            (k, Val::from(v.to_string_lossy().into_owned()))
        })
        .collect();
    Val::obj(map)
}

/// jq prints `error("msg")` unquoted and other error values as JSON.
fn error_text(v: Val) -> String {
    match &v {
        Val::TStr(b) | Val::BStr(b) => jqwrite::str_text(b).into_owned(),
        _ => format!("{v} (not a string)"),
    }
}

/// Exactly one JSON text (for `--argjson`).
fn single_json(b: &[u8]) -> Result<Val, String> {
    let mut r = crate::json::jqread::Reader::new(b);
    match (r.next(), r.next()) {
        (Some(Ok(v)), None) => Ok(v),
        (Some(Err(e)), _) => Err(e),
        _ => Err("expected exactly one JSON text".into()),
    }
}

fn emit(out: &mut impl Write, v: &Val, o: &Opts) -> io::Result<()> {
    match v {
        Val::TStr(b) | Val::BStr(b) if o.raw => out.write_all(jqwrite::str_text(b).as_bytes())?,
        v => jqwrite::write(out, v, &o.style, 0)?,
    }
    if !o.join {
        out.write_all(b"\n")?;
    }
    Ok(())
}

fn io_fail(e: io::Error) -> i32 {
    if common::is_broken_pipe(&e) {
        return 0;
    }
    eprintln!("{TOOL}: error: {e}");
    2
}

fn load_error(e: &jaq_core::load::Error<&str>) -> String {
    use jaq_core::load::Error;
    match e {
        Error::Io(errs) => errs
            .iter()
            .map(|(p, e)| format!("could not load {p}: {e}"))
            .collect::<Vec<_>>()
            .join("; "),
        Error::Lex(errs) => errs
            .iter()
            .map(|(expected, found)| {
                format!(
                    "syntax error: expected {} near {:?}",
                    expected.as_str(),
                    first_chars(found)
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        Error::Parse(errs) => errs
            .iter()
            .map(|(expected, found)| {
                format!(
                    "syntax error: expected {} near {:?}",
                    expected.as_str(),
                    first_chars(found)
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
    }
}

fn first_chars(s: &str) -> String {
    s.chars().take(20).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<OsString> {
        std::iter::once("jq")
            .chain(v.iter().copied())
            .map(OsString::from)
            .collect()
    }

    #[test]
    fn parses_combined_flags_and_vars() {
        let o = parse_args(&args(&[
            "-rc",
            "--arg",
            "x",
            "1",
            "--argjson",
            "y",
            "[1]",
            ".",
            "f",
        ]))
        .unwrap();
        assert!(o.raw && o.style.indent.is_empty());
        assert_eq!(o.filter.as_deref(), Some("."));
        assert_eq!(o.files.len(), 1);
        assert_eq!(o.vars.len(), 2);
    }

    #[test]
    fn extra_defs_parse() {
        assert!(jaq_core::load::parse(EXTRA_DEFS, |p| p.defs()).is_some());
    }

    #[test]
    fn argjson_takes_one_text() {
        assert_eq!(
            single_json(b"[1.0, 1e17]").map(|v| v.to_string()),
            Ok("[1,1e+17]".to_string())
        );
        assert!(single_json(b"1 2").is_err());
        assert!(single_json(b"").is_err());
    }

    #[test]
    fn rejects_unknown_options() {
        assert!(parse_args(&args(&["-C", "."])).is_err());
        assert!(parse_args(&args(&["--stream", "."])).is_err());
        assert!(parse_args(&args(&["--argjson", "y", "[1", "."])).is_err());
    }
}
