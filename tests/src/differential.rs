//! The differential suite's cases (`tests/differential/*.cases`) and the
//! generated inputs they name, shared by the test comparing Tidepool with
//! bash + GNU (`coreutils_differential`) and the one comparing `tidepool
//! exec` with a job (`exec_vs_job`).
//!
//! Case file syntax, one case per line: `INPUTS :: PIPELINE`, where INPUTS
//! is a comma-separated list of generated inputs (see [`inputs`]) or `*`
//! for the standard edge-case set; `#` starts a comment line.
//! `INPUTS !! PIPELINE` declares a construct Tidepool does not support.
//! Each input makes a separate case. `TIDEPOOL_DIFF_FILTER=substr` keeps
//! only the cases whose group or pipeline contains `substr`.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Deterministic pseudo-random numbers (inputs must be identical run to run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[(self.next() as usize) % xs.len()]
    }
}

const WORDS: &[&str] = &[
    "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "Error", "error", "WARN",
    "info", "login", "logout", "user", "admin", "data", "value", "alpha", "beta", "gamma", "delta",
    "foo", "bar", "baz", "Foo", "BAR", "x", "y", "z", "hello", "world",
];

/// The named inputs cases can use.
pub fn inputs(name: &str) -> Option<Vec<u8>> {
    let mut r = Lcg(name
        .bytes()
        .fold(7u64, |a, b| a.wrapping_mul(31).wrapping_add(u64::from(b))));
    let mut s = Vec::new();
    match name {
        "empty" => {}
        "nonl" => s.extend_from_slice(b"alpha beta\ngamma  delta\n\nlast line without newline"),
        "oneline" => s.extend_from_slice(b"hello world\n"),
        "blank" => s.extend_from_slice(b"a\na\n\n\n\nb\nb\nB\n\na\n  c d\n  c d\nc\n\n"),
        "log" => {
            let ips = ["10.0.0.1", "10.0.0.2", "192.168.1.7", "172.16.0.9", "10.0.0.13"];
            let paths = ["/login", "/logout", "/index.html", "/api/v1/items", "/api/v1/items/42", "/static/app.js", "/login?next=/admin"];
            let methods = ["GET", "GET", "GET", "POST", "PUT", "DELETE"];
            let codes = ["200", "200", "200", "301", "404", "500", "401"];
            for i in 0..300 {
                let sz = r.next() % 50000;
                let _ = writeln!(
                    s,
                    "{} - user{} [22/Nov/2026:01:{:02}:{:02} +0000] \"{} {} HTTP/1.1\" {} {} \"Mozilla/5.0\"",
                    r.pick(&ips),
                    r.next() % 7,
                    i / 60,
                    i % 60,
                    r.pick(&methods),
                    r.pick(&paths),
                    r.pick(&codes),
                    sz
                );
            }
        }
        "words" => {
            for _ in 0..120 {
                let n = 1 + r.next() % 12;
                let line: Vec<&str> = (0..n).map(|_| *r.pick(WORDS)).collect();
                let sep = if r.next().is_multiple_of(5) { "  " } else { " " };
                let _ = writeln!(s, "{}{}", line.join(sep), if r.next().is_multiple_of(6) { "." } else { "" });
            }
        }
        "csv" => {
            s.extend_from_slice(b"id,name,city,amount,flag\n");
            let cities = ["Berlin", "Paris", "Tokyo", "", "New York", "Lima"];
            for i in 1..=60 {
                let _ = writeln!(s, "{i},{},{},{}.{:02},{}", r.pick(WORDS), r.pick(&cities), r.next() % 1000, r.next() % 100, r.next() % 2);
            }
        }
        "tsv" => {
            for i in 0..50 {
                let _ = writeln!(s, "{}\t{}\t{}\t{}", r.pick(WORDS), i % 7, r.next() % 100, r.pick(WORDS));
            }
        }
        "nums" => {
            let xs = ["10", "9", "-3", "0", "-0", "1.5", "1.50", " 42", "007", "1e3", "1K", "2M", "512", "3G", "abc", "", "-1.25", "+5", "0x10", "inf"];
            for _ in 0..80 {
                let _ = writeln!(s, "{}", r.pick(&xs));
            }
        }
        "kv" => {
            for _ in 0..80 {
                let _ = writeln!(s, "{} {} {}", r.pick(WORDS), r.next() % 20, r.pick(&["1K", "20M", "3G", "512", "0.5K", "-2"]));
            }
        }
        "utf8" => {
            s.extend_from_slice("héllo wörld\n日本語 テキスト\nemoji 😀 here\nplain ascii\nÉCOLE école\nnaïve café résumé\n\u{00a0}nbsp\n".as_bytes());
        }
        "invalid" => {
            s.extend_from_slice(b"good line\nbad \xff\xfe bytes\nlone \x80 continuation\n\xc3\x28 broken pair\nmixed caf\xc3\xa9 ok\nend\n");
        }
        "crlf" => s.extend_from_slice(b"first line\r\nsecond  line\r\n\r\nError: third\r\nlast\r\n"),
        "long" => {
            for k in 0..3 {
                for j in 0..(120_000 + k * 50_000) {
                    s.push(b"abcdefghij klmnopqrstuvwxyz0123456789"[(j * 7 + k) % 37]);
                }
                s.push(b'\n');
            }
            s.extend_from_slice(b"short\n");
        }
        "sorted" => s.extend_from_slice(b"apple 1\nbanana 2\ncherry 3\ncherry 4\ndate 5\nfig 6\ngrape 7\n"),
        "json" => {
            for i in 0..40 {
                let _ = writeln!(
                    s,
                    "{{\"id\":{i},\"user\":\"{}\",\"status\":{},\"bytes\":{},\"ok\":{},\"tags\":[\"{}\",\"{}\"],\"meta\":{{\"region\":\"{}\"}}}}",
                    r.pick(WORDS),
                    r.pick(&[200, 404, 500]),
                    r.next() % 10000,
                    r.next().is_multiple_of(2),
                    r.pick(WORDS),
                    r.pick(WORDS),
                    r.pick(&["us", "eu", "ap"])
                );
            }
        }
        "jsondoc" => s.extend_from_slice(b"{\"name\":\"tidepool\",\"version\":3,\"items\":[{\"k\":\"a\",\"v\":1},{\"k\":\"b\",\"v\":2}],\"nested\":{\"x\":null,\"y\":[1,2,3]}}\n"),
        "binary" => s.extend_from_slice(b"text before\nnul \x00 inside\nafter\n"),
        _ => return None,
    }
    Some(s)
}

/// The standard edge-case set `*` expands to.
pub const STANDARD: &[&str] = &["empty", "nonl", "log", "utf8", "invalid", "crlf"];

pub struct Case {
    /// The case file's name without `.cases`.
    pub group: String,
    /// The generated input's name.
    pub input: String,
    pub pipeline: String,
    /// Line in the case file.
    pub line: usize,
    /// Expected to be rejected with status 2 (`!!` cases).
    pub unsupported: bool,
}

pub fn load_cases() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("differential");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read tests/differential")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cases"))
        .collect();
    files.sort();
    let filter = std::env::var("TIDEPOOL_DIFF_FILTER").ok();
    let mut cases = Vec::new();
    for f in files {
        let group = f
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(&f).expect("read case file");
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let (ins, pipeline, unsupported) = match (t.split_once(" :: "), t.split_once(" !! ")) {
                (Some((a, b)), _) => (a, b, false),
                (None, Some((a, b))) => (a, b, true),
                _ => panic!(
                    "{}:{}: expected `INPUTS :: PIPELINE` or `INPUTS !! PIPELINE`",
                    f.display(),
                    i + 1
                ),
            };
            if let Some(flt) = &filter
                && !group.contains(flt.as_str())
                && !pipeline.contains(flt.as_str())
            {
                continue;
            }
            let names: Vec<&str> = ins
                .split(',')
                .map(str::trim)
                .flat_map(|n| if n == "*" { STANDARD.to_vec() } else { vec![n] })
                .collect();
            for n in names {
                assert!(
                    inputs(n).is_some(),
                    "{}:{}: unknown input {n:?}",
                    f.display(),
                    i + 1
                );
                cases.push(Case {
                    group: group.clone(),
                    input: n.to_string(),
                    pipeline: pipeline.to_string(),
                    line: i + 1,
                    unsupported,
                });
            }
        }
    }
    cases
}
