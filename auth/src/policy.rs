//! Manta's policy language (node-aperture, as mahi and muskie used it):
//! parsing a rule such as `CAN getobject, putobject WHEN sourceip =
//! 10.0.0.0/8` and evaluating it against a request.
//!
//! Grammar (keywords case-insensitive, identifiers case-sensitive):
//!
//! ```text
//! rule       := [principals] CAN [NOT] list [list] [(WHEN|IF|WHERE) condition]
//! list       := item ((',' | 'and' | ', and') item)*   ; '*', all, everything, anything = any
//! condition  := or;  or := and ('or' and)*;  and := unary ('and' unary)*
//! unary      := 'not' unary | '(' condition ')' | name['::'type] op value
//!             | name['::'type] 'in' '(' value (',' value)* ')'
//! ```
//!
//! Guarantees: [`Rule::parse`] never panics and accepts only the grammar
//! above; a parsed rule keeps its source text. [`Rule::allows`] is true only
//! for a `CAN` (never `CAN NOT`) rule whose actions, resources and
//! condition all match: as in aperture, `CAN NOT` never denies, and a rule
//! with no resource list matches every resource. A condition naming a
//! context value the request does not have is an error
//! ([`EvalError::MissingCondition`]), never a silent allow.
//!
//! Deliberate limits: `/re/::regex` identifiers are refused at parse time
//! (aperture accepted them); principals before `CAN` are parsed and
//! ignored (mahi grants through role membership, not through the rule).

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

/// Why a rule did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid rule {rule:?}: {why}")]
pub struct ParseError {
    /// The rule text (truncated).
    pub rule: String,
    /// What was wrong.
    pub why: String,
}

/// Why a rule could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// The rule needs a context value this request does not carry.
    #[error("condition {0} is not known for this request")]
    MissingCondition(String),
    /// A rule value does not fit its type (e.g. `sourceip = banana`).
    #[error("{0}")]
    BadValue(String),
}

/// Values the conditions of a rule are evaluated against (aperture's
/// `conditions`, as muskie filled them).
#[derive(Debug, Clone)]
pub struct Context {
    /// The client's address.
    pub sourceip: Option<IpAddr>,
    /// Request time (compared in UTC).
    pub now: SystemTime,
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// `User-Agent`, if sent.
    pub user_agent: Option<String>,
    /// Whether the request comes from inside a job.
    pub fromjob: bool,
    /// Storage PUTs only: whether the target exists.
    pub overwrite: Option<bool>,
    /// The names of the request's active roles.
    pub active_roles: Vec<String>,
}

/// A list of actions or resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// `*`, `all`, `everything`, `anything`.
    Any,
    /// Any of these identifiers.
    List(Vec<Ident>),
}

/// An identifier: exact, or fuzzy with `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ident {
    /// Compared as is.
    Exact(String),
    /// `*` matches any run of characters; unanchored like aperture's
    /// `fuzzyToRegex` (the pattern may match anywhere in the value).
    Fuzzy(String),
}

impl Ident {
    fn new(s: &str) -> Ident {
        if s.contains('*') {
            Ident::Fuzzy(s.to_owned())
        } else {
            Ident::Exact(s.to_owned())
        }
    }

    fn matches(&self, value: &str) -> bool {
        match self {
            Ident::Exact(e) => e == value,
            Ident::Fuzzy(p) => {
                // Unanchored: each `*`-separated part must appear, in order.
                let mut rest = value;
                for part in p.split('*').filter(|p| !p.is_empty()) {
                    match rest.find(part) {
                        Some(i) => rest = &rest[i + part.len()..],
                        None => return false,
                    }
                }
                true
            }
        }
    }
}

impl Matcher {
    fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Any => true,
            Matcher::List(l) => l.iter().any(|i| i.matches(value)),
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Like,
    Contains,
}

/// A condition of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
    Not(Box<Condition>),
    /// `name[::type] op value`.
    Cmp {
        name: String,
        ty: Option<String>,
        op: Op,
        value: String,
    },
    /// `name[::type] in (v1, v2, ...)`.
    In {
        name: String,
        ty: Option<String>,
        values: Vec<String>,
    },
}

/// One parsed rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The source text.
    pub text: String,
    /// `CAN` (true) or `CAN NOT` (false).
    pub can: bool,
    pub actions: Matcher,
    /// `None`: no resource list (every resource).
    pub resources: Option<Matcher>,
    pub condition: Option<Condition>,
}

// ---------------------------------------------------------------- lexer

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Str(String),
    LParen,
    RParen,
    Comma,
    Op(Op),
}

const MAX_RULE_LEN: usize = 4096;

fn is_word_char(c: char) -> bool {
    !(c.is_whitespace() || matches!(c, '(' | ')' | ',' | '=' | '!' | '<' | '>' | '"' | '\''))
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut it = s.char_indices().peekable();
    while let Some(&(i, c)) = it.peek() {
        if c.is_whitespace() {
            it.next();
            continue;
        }
        let two = s.get(i..i + 2).unwrap_or("");
        let (tok, len) = match c {
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            ',' => (Tok::Comma, 1),
            '!' if two == "!=" => (Tok::Op(Op::Ne), 2),
            '<' if two == "<=" => (Tok::Op(Op::Le), 2),
            '>' if two == ">=" => (Tok::Op(Op::Ge), 2),
            '<' => (Tok::Op(Op::Lt), 1),
            '>' => (Tok::Op(Op::Gt), 1),
            '=' => (Tok::Op(Op::Eq), 1),
            '"' | '\'' => {
                let rest = &s[i + 1..];
                let end = rest
                    .find(c)
                    .ok_or_else(|| "unterminated string".to_owned())?;
                out.push(Tok::Str(rest[..end].to_owned()));
                for _ in 0..rest[..end].chars().count() + 2 {
                    it.next();
                }
                continue;
            }
            '!' => return Err("unexpected '!'".to_owned()),
            _ => {
                let end = s[i..]
                    .char_indices()
                    .find(|&(_, c)| !is_word_char(c))
                    .map_or(s.len(), |(j, _)| i + j);
                out.push(Tok::Word(s[i..end].to_owned()));
                for _ in 0..s[i..end].chars().count() {
                    it.next();
                }
                continue;
            }
        };
        out.push(tok);
        for _ in 0..len {
            it.next();
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------- parser

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

fn kw(t: Option<&Tok>, k: &str) -> bool {
    matches!(t, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(k))
}

fn is_condition_kw(t: Option<&Tok>) -> bool {
    kw(t, "when") || kw(t, "if") || kw(t, "where")
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn word(&mut self, what: &str) -> Result<String, String> {
        match self.next() {
            Some(Tok::Word(w)) | Some(Tok::Str(w)) => Ok(w),
            other => Err(format!("expected {what}, found {other:?}")),
        }
    }

    /// `item ((',' | 'and' | ', and') item)*`.
    fn list(&mut self, what: &str) -> Result<Matcher, String> {
        let mut items = Vec::new();
        let mut any = false;
        loop {
            let w = self.word(what)?;
            if w.starts_with('/') && w.len() > 1 && w.ends_with('/') {
                return Err("regular expressions are not supported".to_owned());
            }
            if w.contains("::") {
                return Err(format!("typed identifiers are not supported: {w}"));
            }
            if w == "*"
                || ["all", "everything", "anything"]
                    .iter()
                    .any(|k| w.eq_ignore_ascii_case(k))
            {
                any = true;
            } else {
                items.push(Ident::new(&w));
            }
            match self.peek() {
                Some(Tok::Comma) => {
                    self.pos += 1;
                    if kw(self.peek(), "and") {
                        self.pos += 1;
                    }
                }
                t if kw(t, "and") => self.pos += 1,
                _ => break,
            }
        }
        Ok(if any {
            Matcher::Any
        } else {
            Matcher::List(items)
        })
    }

    fn condition(&mut self) -> Result<Condition, String> {
        let mut left = self.and()?;
        while kw(self.peek(), "or") {
            self.pos += 1;
            let right = self.and()?;
            left = Condition::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Condition, String> {
        let mut left = self.unary()?;
        while kw(self.peek(), "and") {
            self.pos += 1;
            let right = self.unary()?;
            left = Condition::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Condition, String> {
        if kw(self.peek(), "not") {
            self.pos += 1;
            return Ok(Condition::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let c = self.condition()?;
            if self.next() != Some(Tok::RParen) {
                return Err("expected ')'".to_owned());
            }
            return Ok(c);
        }
        let raw = self.word("a condition name")?;
        let (name, ty) = match raw.split_once("::") {
            Some((n, t)) => (n.to_owned(), Some(t.to_ascii_lowercase())),
            None => (raw, None),
        };
        if name.is_empty() {
            return Err("empty condition name".to_owned());
        }
        if kw(self.peek(), "in") {
            self.pos += 1;
            if self.next() != Some(Tok::LParen) {
                return Err("expected '(' after in".to_owned());
            }
            let mut values = vec![self.word("a value")?];
            while self.peek() == Some(&Tok::Comma) {
                self.pos += 1;
                values.push(self.word("a value")?);
            }
            if self.next() != Some(Tok::RParen) {
                return Err("expected ')'".to_owned());
            }
            return Ok(Condition::In { name, ty, values });
        }
        let op = match self.next() {
            Some(Tok::Op(op)) => op,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("like") => Op::Like,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("contains") => Op::Contains,
            other => return Err(format!("expected an operator, found {other:?}")),
        };
        let value = self.word("a value")?;
        Ok(Condition::Cmp {
            name,
            ty,
            op,
            value,
        })
    }
}

impl Rule {
    /// Parses one rule.
    pub fn parse(text: &str) -> Result<Rule, ParseError> {
        let err = |why: String| ParseError {
            rule: text.chars().take(200).collect(),
            why,
        };
        if text.len() > MAX_RULE_LEN {
            return Err(err(format!("longer than {MAX_RULE_LEN} bytes")));
        }
        let toks = lex(text).map_err(err)?;
        let mut p = Parser { toks, pos: 0 };
        // Principals, if any, up to CAN (ignored: roles decide who).
        while p.peek().is_some() && !kw(p.peek(), "can") {
            p.pos += 1;
        }
        if !kw(p.next().as_ref(), "can") {
            return Err(err("expected CAN".to_owned()));
        }
        let can = if kw(p.peek(), "not") {
            p.pos += 1;
            false
        } else {
            true
        };
        let actions = p.list("an action").map_err(err)?;
        let resources = match p.peek() {
            None => None,
            t if is_condition_kw(t) => None,
            _ => Some(p.list("a resource").map_err(err)?),
        };
        let condition = if is_condition_kw(p.peek()) {
            p.pos += 1;
            Some(p.condition().map_err(err)?)
        } else {
            None
        };
        if let Some(t) = p.peek() {
            return Err(err(format!("unexpected {t:?}")));
        }
        Ok(Rule {
            text: text.to_owned(),
            can,
            actions,
            resources,
            condition,
        })
    }

    /// Whether the rule names resources explicitly (so it applies without
    /// a role tag, mahi 2.4.2's behaviour).
    pub fn has_resources(&self) -> bool {
        self.resources.is_some()
    }

    /// Whether this rule allows `action` on `resource` under `cx`.
    pub fn allows(&self, action: &str, resource: &str, cx: &Context) -> Result<bool, EvalError> {
        if !self.can || !self.actions.matches(action) {
            return Ok(false);
        }
        if let Some(r) = &self.resources
            && !r.matches(resource)
        {
            return Ok(false);
        }
        match &self.condition {
            None => Ok(true),
            Some(c) => eval(c, cx),
        }
    }
}

// ---------------------------------------------------------------- evaluation

fn eval(c: &Condition, cx: &Context) -> Result<bool, EvalError> {
    match c {
        Condition::And(a, b) => Ok(eval(a, cx)? && eval(b, cx)?),
        Condition::Or(a, b) => Ok(eval(a, cx)? || eval(b, cx)?),
        Condition::Not(a) => Ok(!eval(a, cx)?),
        Condition::Cmp {
            name,
            ty,
            op,
            value,
        } => compare(name, ty.as_deref(), *op, value, cx),
        Condition::In { name, ty, values } => {
            for v in values {
                if compare(name, ty.as_deref(), Op::Eq, v, cx)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
    }
}

/// aperture-config's type of each condition muskie supplied.
fn default_type(name: &str) -> &'static str {
    match name {
        "sourceip" => "ip",
        "date" => "date",
        "day" => "day",
        "time" => "time",
        "fromjob" | "overwrite" => "boolean",
        "activeRoles" => "array",
        _ => "string",
    }
}

fn bad(what: &str, v: &str) -> EvalError {
    EvalError::BadValue(format!("{v:?} is not a valid {what}"))
}

fn ordered<T: PartialOrd>(op: Op, have: T, want: T) -> Result<bool, EvalError> {
    Ok(match op {
        Op::Eq => have == want,
        Op::Ne => have != want,
        Op::Lt => have < want,
        Op::Gt => have > want,
        Op::Le => have <= want,
        Op::Ge => have >= want,
        Op::Like | Op::Contains => {
            return Err(EvalError::BadValue(format!(
                "operator {op:?} does not apply here"
            )));
        }
    })
}

fn compare(
    name: &str,
    ty: Option<&str>,
    op: Op,
    value: &str,
    cx: &Context,
) -> Result<bool, EvalError> {
    let missing = || EvalError::MissingCondition(name.to_owned());
    let secs = cx
        .now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    match ty.unwrap_or(default_type(name)) {
        "ip" => {
            if name != "sourceip" {
                return Err(missing());
            }
            let ip = cx.sourceip.ok_or_else(missing)?;
            let inside = cidr_contains(value, ip).ok_or_else(|| bad("address", value))?;
            match op {
                Op::Eq => Ok(inside),
                Op::Ne => Ok(!inside),
                _ => Err(bad("ip operator", value)),
            }
        }
        "date" => {
            if name != "date" {
                return Err(missing());
            }
            let want = parse_date(value).ok_or_else(|| bad("date", value))?;
            // A bare date compares by day.
            let have = if value.len() == 10 {
                secs.div_euclid(86_400) * 86_400
            } else {
                secs
            };
            ordered(op, have, want)
        }
        "day" => {
            if name != "day" {
                return Err(missing());
            }
            // 1970-01-01 was a Thursday (4, Monday = 1).
            let have = (secs.div_euclid(86_400) + 3).rem_euclid(7) + 1;
            let want = parse_day(value).ok_or_else(|| bad("day", value))?;
            ordered(op, have, want)
        }
        "time" => {
            if name != "time" {
                return Err(missing());
            }
            let have = secs.rem_euclid(86_400);
            let want = parse_time(value).ok_or_else(|| bad("time", value))?;
            ordered(op, have, want)
        }
        "boolean" => {
            let have = match name {
                "fromjob" => cx.fromjob,
                "overwrite" => cx.overwrite.ok_or_else(missing)?,
                _ => return Err(missing()),
            };
            let want = match value.to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => return Err(bad("boolean", value)),
            };
            match op {
                Op::Eq => Ok(have == want),
                Op::Ne => Ok(have != want),
                _ => Err(bad("boolean operator", value)),
            }
        }
        "array" => {
            if name != "activeRoles" || op != Op::Contains {
                return Err(missing());
            }
            Ok(cx.active_roles.iter().any(|r| r == value))
        }
        "string" => {
            let have = match name {
                "method" => cx.method.clone(),
                "user-agent" => cx.user_agent.clone().ok_or_else(missing)?,
                _ => return Err(missing()),
            };
            match op {
                Op::Like => {
                    let pat = value
                        .strip_prefix('/')
                        .and_then(|v| v.strip_suffix('/'))
                        .unwrap_or(value);
                    Ok(Ident::Fuzzy(format!("*{pat}*")).matches(&have)
                        || Ident::new(pat).matches(&have))
                }
                Op::Contains => Ok(have.contains(value)),
                op => ordered(op, have.as_str(), value),
            }
        }
        other => Err(EvalError::BadValue(format!("unknown type {other}"))),
    }
}

/// Whether `ip` is `value` (an address) or inside it (`addr/prefix`).
/// IPv4-mapped IPv6 addresses count as their IPv4 address. `None` when
/// `value` is not an address or network.
pub fn cidr_contains(value: &str, ip: IpAddr) -> Option<bool> {
    let norm = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let (addr, bits) = match value.split_once('/') {
        Some((a, b)) => (a, Some(b.parse::<u32>().ok()?)),
        None => (value, None),
    };
    let net = norm(addr.parse::<IpAddr>().ok()?);
    let ip = norm(ip);
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let bits = bits.unwrap_or(32);
            if bits > 32 {
                return None;
            }
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            Some(u32::from(n) & mask == u32::from(i) & mask)
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let bits = bits.unwrap_or(128);
            if bits > 128 {
                return None;
            }
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            Some(u128::from(n) & mask == u128::from(i) & mask)
        }
        _ => Some(false),
    }
}

/// Monday = 1 .. Sunday = 7, from a number, a name or an abbreviation.
fn parse_day(v: &str) -> Option<i64> {
    if let Ok(n) = v.parse::<i64>() {
        return (1..=7).contains(&n).then_some(n);
    }
    const DAYS: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let l = v.to_ascii_lowercase();
    DAYS.iter()
        .position(|d| l.len() >= 3 && d.starts_with(&l))
        .map(|i| i as i64 + 1)
}

/// `HH:MM[:SS]` → seconds since midnight.
fn parse_time(v: &str) -> Option<i64> {
    let mut parts = v.split(':');
    let h: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let s: i64 = match parts.next() {
        Some(s) => s.parse().ok()?,
        None => 0,
    };
    if parts.next().is_some()
        || !(0..24).contains(&h)
        || !(0..60).contains(&m)
        || !(0..61).contains(&s)
    {
        return None;
    }
    Some(h * 3600 + m * 60 + s)
}

/// `YYYY-MM-DD[THH:MM[:SS][Z]]` (UTC) → Unix seconds.
fn parse_date(v: &str) -> Option<i64> {
    let (d, t) = match v.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z').unwrap_or(t))),
        None => (v, None),
    };
    let mut p = d.split('-');
    let y: i64 = p.next()?.parse().ok()?;
    let m: i64 = p.next()?.parse().ok()?;
    let day: i64 = p.next()?.parse().ok()?;
    if p.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let tod = match t {
        Some(t) => parse_time(t)?,
        None => 0,
    };
    Some(days * 86_400 + tod)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cx(ip: &str, unix: u64) -> Context {
        Context {
            sourceip: Some(ip.parse().unwrap()),
            now: UNIX_EPOCH + Duration::from_secs(unix),
            method: "GET".into(),
            user_agent: Some("restify".into()),
            fromjob: false,
            overwrite: None,
            active_roles: vec!["readers".into()],
        }
    }

    // 2026-12-07 (a Monday) 10:30:00 UTC.
    const MONDAY: u64 = 1_796_639_400;

    fn allows(rule: &str, action: &str, cx: &Context) -> bool {
        Rule::parse(rule)
            .unwrap()
            .allows(action, "/a/stor/x", cx)
            .unwrap()
    }

    #[test]
    fn actions_and_lists() {
        let c = cx("10.1.2.3", MONDAY);
        assert!(allows("CAN getobject", "getobject", &c));
        assert!(allows("can GetObject", "GetObject", &c));
        assert!(!allows("CAN getobject", "putobject", &c));
        for r in [
            "CAN getobject, putobject",
            "CAN getobject and putobject",
            "CAN getobject, getdirectory, and putobject",
            "CAN *",
            "CAN all",
            "CAN get*",
        ] {
            let c2 = if r == "CAN get*" {
                "getobject"
            } else {
                "putobject"
            };
            assert!(allows(r, c2, &c), "{r}");
        }
        // CAN NOT never allows (and never denies: callers OR the rules).
        assert!(!allows("CAN NOT getobject", "getobject", &c));
        // Principals before CAN are ignored.
        assert!(allows("Fred CAN getobject", "getobject", &c));
    }

    #[test]
    fn resources() {
        let c = cx("10.1.2.3", MONDAY);
        let r = Rule::parse("CAN getobject /a/stor/pub*").unwrap();
        assert!(r.has_resources());
        assert!(r.allows("getobject", "/a/stor/public/x", &c).unwrap());
        assert!(!r.allows("getobject", "/a/stor/x", &c).unwrap());
        let r = Rule::parse("CAN getobject /a/stor/x and /a/stor/y").unwrap();
        assert!(r.allows("getobject", "/a/stor/y", &c).unwrap());
        assert!(!r.allows("getobject", "/a/stor/z", &c).unwrap());
        assert!(!Rule::parse("CAN getobject").unwrap().has_resources());
    }

    #[test]
    fn sourceip() {
        let rule = "CAN getobject WHEN sourceip = 10.0.0.0/8";
        assert!(allows(rule, "getobject", &cx("10.1.2.3", MONDAY)));
        assert!(!allows(rule, "getobject", &cx("192.168.1.1", MONDAY)));
        assert!(allows(rule, "getobject", &cx("::ffff:10.9.9.9", MONDAY)));
        let rule = "CAN getobject IF sourceip != 127.0.0.1";
        assert!(!allows(rule, "getobject", &cx("127.0.0.1", MONDAY)));
        assert!(allows(rule, "getobject", &cx("127.0.0.2", MONDAY)));
        assert!(allows(
            "CAN getobject WHEN sourceip = fd00::/8",
            "getobject",
            &cx("fd12::1", MONDAY)
        ));
        let mut c = cx("10.0.0.1", MONDAY);
        c.sourceip = None;
        let r = Rule::parse(rule).unwrap();
        assert_eq!(
            r.allows("getobject", "/x", &c),
            Err(EvalError::MissingCondition("sourceip".into()))
        );
        let r = Rule::parse("CAN getobject WHEN sourceip = banana").unwrap();
        assert!(
            r.allows("getobject", "/x", &cx("10.0.0.1", MONDAY))
                .is_err()
        );
    }

    #[test]
    fn time_conditions() {
        let c = cx("10.0.0.1", MONDAY);
        assert!(!allows(
            "CAN getobject WHEN day in (Sat, Sun)",
            "getobject",
            &c
        ));
        assert!(allows(
            "CAN getobject WHEN day in (Mon, Tue)",
            "getobject",
            &c
        ));
        assert!(allows("CAN getobject WHEN day = monday", "getobject", &c));
        assert!(allows("CAN getobject WHEN day <= 5", "getobject", &c));
        assert!(allows(
            "CAN getobject WHEN time >= 09:00:00 and time < 17:00",
            "getobject",
            &c
        ));
        assert!(!allows("CAN getobject WHEN time > 11:00", "getobject", &c));
        assert!(allows(
            "CAN getobject WHEN date = 2026-12-07",
            "getobject",
            &c
        ));
        assert!(allows(
            "CAN getobject WHEN date < 2026-12-07T10:30:01Z",
            "getobject",
            &c
        ));
        assert!(!allows(
            "CAN getobject WHEN date > 2027-01-01",
            "getobject",
            &c
        ));
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2026-12-07T10:30:00Z"), Some(MONDAY as i64));
    }

    #[test]
    fn boolean_logic_and_other_conditions() {
        let c = cx("10.0.0.1", MONDAY);
        assert!(allows(
            "CAN getobject WHEN (sourceip = 10.0.0.0/8 or day = Sun) and not fromjob = true",
            "getobject",
            &c
        ));
        assert!(allows("CAN getobject WHEN method = GET", "getobject", &c));
        assert!(allows(
            "CAN getobject WHEN user-agent like /rest/",
            "getobject",
            &c
        ));
        assert!(allows(
            "CAN getobject WHEN activeRoles contains readers",
            "getobject",
            &c
        ));
        assert!(allows(
            "CAN getobject WHEN method = \"GET\"",
            "getobject",
            &c
        ));
        let r = Rule::parse("CAN putobject WHEN overwrite = false").unwrap();
        assert_eq!(
            r.allows("putobject", "/x", &c),
            Err(EvalError::MissingCondition("overwrite".into()))
        );
        let mut c = c;
        c.overwrite = Some(false);
        assert!(r.allows("putobject", "/x", &c).unwrap());
    }

    #[test]
    fn parse_errors() {
        for bad in [
            "",
            "getobject",
            "CAN",
            "CAN getobject WHEN",
            "CAN getobject WHEN sourceip",
            "CAN getobject WHEN sourceip =",
            "CAN getobject WHEN (sourceip = 1.2.3.4",
            "CAN getobject WHEN day in (Mon",
            "CAN getobject, ",
            "CAN /get.*/",
            "CAN getobject WHEN a = \"x",
            "CAN getobject WHEN a ! b",
            "CAN getobject extra junk )",
        ] {
            assert!(Rule::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,120}") {
            let _ = Rule::parse(&s);
        }

        #[test]
        fn generated_rules_parse_and_evaluate(
            actions in proptest::collection::vec("[a-z]{1,12}", 1..4),
            cidr in (0u8..=255, 0u8..=255, 0u32..=32),
            ip in (0u8..=255, 0u8..=255),
            words in proptest::collection::vec(proptest::sample::select(vec![
                "CAN", "NOT", "WHEN", "and", "or", "not", "(", ")", ",", "=", "!=", "<",
                "in", "sourceip", "day", "time", "Mon", "10.0.0.0/8", "09:00", "getobject", "*",
            ]), 0..14),
        ) {
            let rule = format!(
                "CAN {} WHEN sourceip = {}.{}.0.0/{}",
                actions.join(", "), cidr.0, cidr.1, cidr.2
            );
            let r = Rule::parse(&rule).unwrap();
            let c = cx(&format!("{}.{}.1.1", ip.0, ip.1), MONDAY);
            let inside = cidr_contains(&format!("{}.{}.0.0/{}", cidr.0, cidr.1, cidr.2), c.sourceip.unwrap()).unwrap();
            proptest::prop_assert_eq!(r.allows(&actions[0], "/x", &c).unwrap(), inside);
            proptest::prop_assert!(!r.allows("not-an-action-", "/x", &c).unwrap());
            // Keyword soup never panics, parse or evaluate.
            let soup = words.join(" ");
            if let Ok(r) = Rule::parse(&soup) {
                let _ = r.allows("getobject", "/x", &c);
                proptest::prop_assert_eq!(r.text, soup);
            }
        }
    }
}
