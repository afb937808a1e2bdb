//! The job manifest (spec §3.1): parsing and validation of `POST /:login/jobs`
//! bodies, with Manta's `InvalidJob` messages, and the stored form of the
//! phases that the status record echoes.
//!
//! Guarantees: any byte string either parses into a [`Manifest`] whose every
//! field is within the limits of §3.4, or yields a [`ManifestError`] naming
//! the first failing property — never a panic. Every phase's `exec` and
//! `init` is parsed as the sandbox will parse it (`shell-syntax`, nesting
//! bounded, on its own parser thread), so a script that could never run is
//! refused before any job or task exists ([`ManifestError::Script`]).
//! [`parse_manifest`] blocks while scripts are parsed: async callers run it
//! on a blocking thread. Object key order of each
//! phase is kept for the echo (`phases` as stored: the user's keys in the
//! user's order, plus `type` when it was missing).

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Largest accepted manifest body.
pub const MAX_MANIFEST_BYTES: usize = 100_000;
/// Allowed `memory` values (MB).
pub const MEMORY_VALUES: [u64; 7] = [128, 256, 512, 1024, 2048, 4096, 8192];
/// Allowed `disk` values (GB).
pub const DISK_VALUES: [u64; 10] = [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
/// Largest reducer count of one phase.
pub const MAX_REDUCERS: u32 = 128;
/// Default memory (MB).
pub const DEFAULT_MEMORY_MB: u32 = 1024;
/// Default disk (GB).
pub const DEFAULT_DISK_GB: u32 = 8;
/// Compute images Manta offered; `image` ranges must match one.
pub const IMAGES: [(u64, u64, u64); 5] =
    [(13, 1, 0), (13, 3, 4), (13, 3, 5), (13, 3, 6), (16, 1, 0)];

/// Map or reduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseKind {
    /// One task per input object.
    Map,
    /// `count` reducers fed a stream of objects.
    Reduce,
}

impl PhaseKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PhaseKind::Map => "map",
            PhaseKind::Reduce => "reduce",
        }
    }
}

/// One validated phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase {
    /// Task type.
    pub kind: PhaseKind,
    /// Shell script per task (non-empty).
    pub exec: String,
    /// Script run once per sandbox before its first task.
    pub init: Option<String>,
    /// Object paths materialized under `/assets`.
    pub assets: Vec<String>,
    /// Reducer count (1..=128); 1 when absent.
    pub count: u32,
    /// RAM cap in MB.
    pub memory_mb: u32,
    /// Disk quota in GB.
    pub disk_gb: u32,
    /// Image semver range, if given.
    pub image: Option<String>,
    /// `memo` (Tidepool's addition): whether map tasks may reuse an
    /// identical earlier task's outputs ([`crate::memo`]).
    pub memo: MemoPolicy,
}

/// A phase's `memo` property.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemoPolicy {
    /// `true`, `"auto"` or absent: memoized when a run shows it reproducible
    /// (no wall clock, no entropy beyond hash keys, no job-naming values).
    #[default]
    Auto,
    /// `false`: always run.
    Off,
    /// `"deterministic"`: the phase declares itself reproducible; its clocks
    /// and entropy are seeded from the task's identity and reading them
    /// does not stop memoization.
    Deterministic,
}

/// A validated manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Job name (`""` when absent).
    pub name: String,
    /// Phases, at least one.
    pub phases: Vec<Phase>,
    /// Echoed flag.
    pub transient: bool,
    /// `keepIntermediates` (Tidepool's addition, not in Manta's API): keep
    /// the outputs of non-final phases when the job is done instead of
    /// deleting them (spec §4.3).
    pub keep_intermediates: bool,
    /// The phases as stored (JSON array; user key order, `type` filled in).
    pub phases_json: String,
}

/// Why a manifest was rejected: Manta's `400 InvalidJob`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// A property failed validation.
    #[error("property \"{property}\": {message}")]
    Property {
        /// Dotted property path (`phases[0].memory`).
        property: String,
        /// Manta's wording.
        message: String,
    },
    /// The body is not JSON (or not an object).
    #[error("invalid job manifest: {0}")]
    Malformed(String),
    /// The body exceeds [`MAX_MANIFEST_BYTES`].
    #[error("job manifest exceeds {MAX_MANIFEST_BYTES} bytes")]
    TooLarge,
    /// A phase's `exec` or `init` is not a script the sandbox can run
    /// (syntax, an unsupported construct, nesting too deep).
    #[error("property \"{property}\": {message}")]
    Script {
        /// `phases[N].exec` or `phases[N].init`.
        property: String,
        /// Why, in the shell parser's words.
        message: String,
    },
}

impl ManifestError {
    /// The Manta error code: `InvalidArgumentError` for a phase script the
    /// shell cannot run, `InvalidJob` for everything else.
    pub fn code(&self) -> &'static str {
        match self {
            ManifestError::Script { .. } => "InvalidArgumentError",
            _ => "InvalidJob",
        }
    }

    fn prop(property: impl Into<String>, message: impl Into<String>) -> Self {
        ManifestError::Property {
            property: property.into(),
            message: message.into(),
        }
    }
}

/// A JSON object with its keys in document order (serde_json's own map
/// sorts keys unless a workspace-wide feature is turned on).
#[derive(Debug, Clone, PartialEq)]
struct Ordered(Vec<(String, Node)>);

/// A JSON value whose objects keep key order.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Object(Ordered),
    Array(Vec<Node>),
    Scalar(Value),
}

impl<'de> serde::Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
                Ok(Node::Scalar(Value::Bool(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
                Ok(Node::Scalar(Value::from(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
                Ok(Node::Scalar(Value::from(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
                Ok(Node::Scalar(Value::from(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
                Ok(Node::Scalar(Value::String(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
                Ok(Node::Scalar(Value::String(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
                Ok(Node::Scalar(Value::Null))
            }
            fn visit_none<E: de::Error>(self) -> Result<Node, E> {
                Ok(Node::Scalar(Value::Null))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
                let mut out = Vec::new();
                while let Some(n) = a.next_element()? {
                    out.push(n);
                }
                Ok(Node::Array(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
                let mut out: Vec<(String, Node)> = Vec::new();
                while let Some((k, v)) = a.next_entry::<String, Node>()? {
                    // Last duplicate wins, like JSON.parse.
                    out.retain(|(existing, _)| existing != &k);
                    out.push((k, v));
                }
                Ok(Node::Object(Ordered(out)))
            }
        }
        d.deserialize_any(V)
    }
}

impl Node {
    fn type_name(&self) -> &'static str {
        match self {
            Node::Object(_) => "object",
            Node::Array(_) => "array",
            Node::Scalar(Value::Bool(_)) => "boolean",
            Node::Scalar(Value::Number(_)) => "number",
            Node::Scalar(Value::String(_)) => "string",
            Node::Scalar(_) => "null",
        }
    }

    /// Manta's "<value> - <type> value found, but a <want> is required".
    fn wrong_type(&self, property: &str, want: &str) -> ManifestError {
        let shown = match self {
            Node::Scalar(Value::String(s)) => s.clone(),
            Node::Scalar(v) => v.to_string(),
            Node::Array(_) => "[array]".into(),
            Node::Object(_) => "[object]".into(),
        };
        ManifestError::prop(
            property,
            format!(
                "{shown} - {} value found, but a {want} is required",
                self.type_name()
            ),
        )
    }

    fn to_json(&self, out: &mut String) {
        match self {
            Node::Scalar(v) => out.push_str(&v.to_string()),
            Node::Array(items) => {
                out.push('[');
                for (i, n) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    n.to_json(out);
                }
                out.push(']');
            }
            Node::Object(Ordered(fields)) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    v.to_json(out);
                }
                out.push('}');
            }
        }
    }
}

fn string(node: &Node, property: &str) -> Result<String, ManifestError> {
    match node {
        Node::Scalar(Value::String(s)) => Ok(s.clone()),
        other => Err(other.wrong_type(property, "string")),
    }
}

fn number(node: &Node, property: &str) -> Result<f64, ManifestError> {
    match node {
        Node::Scalar(Value::Number(n)) => n
            .as_f64()
            .ok_or_else(|| node.wrong_type(property, "number")),
        other => Err(other.wrong_type(property, "number")),
    }
}

fn enum_number(node: &Node, property: &str, allowed: &[u64]) -> Result<u32, ManifestError> {
    let v = number(node, property)?;
    allowed
        .iter()
        .find(|&&a| a as f64 == v)
        .map(|&a| a as u32)
        .ok_or_else(|| {
            let list: Vec<String> = allowed.iter().map(u64::to_string).collect();
            ManifestError::prop(
                property,
                format!(
                    "does not have a value in the enumeration {}",
                    list.join(", ")
                ),
            )
        })
}

/// Parse and validate a manifest body.
///
/// # Errors
/// The first failing property, in Manta's words (see the module docs).
pub fn parse_manifest(body: &[u8]) -> Result<Manifest, ManifestError> {
    let manifest = parse_unchecked(body)?;
    for (i, phase) in manifest.phases.iter().enumerate() {
        check_script(&format!("phases[{i}].exec"), &phase.exec)?;
        if let Some(init) = &phase.init {
            check_script(&format!("phases[{i}].init"), init)?;
        }
    }
    Ok(manifest)
}

/// The phases of a job already stored, as [`parse_manifest`] reads them
/// but without parsing their scripts again: a stored job whose script the
/// shell refuses (one created before scripts were checked at creation)
/// must fail in its tasks, with the reason in their stderr, not stop the
/// supervisor from driving it.
///
/// # Errors
/// As [`parse_manifest`], less [`ManifestError::Script`].
pub fn parse_stored_phases(phases_json: &str) -> Result<Manifest, ManifestError> {
    parse_unchecked(format!(r#"{{"phases":{phases_json}}}"#).as_bytes())
}

fn parse_unchecked(body: &[u8]) -> Result<Manifest, ManifestError> {
    if body.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::TooLarge);
    }
    let root: Node =
        serde_json::from_slice(body).map_err(|e| ManifestError::Malformed(e.to_string()))?;
    let Node::Object(Ordered(fields)) = root else {
        return Err(ManifestError::Malformed(
            "the manifest must be a JSON object".into(),
        ));
    };
    let mut name = String::new();
    let mut transient = false;
    let mut keep_intermediates = false;
    let mut phases_node = None;
    for (k, v) in &fields {
        match k.as_str() {
            "name" => name = string(v, "name")?,
            "transient" => match v {
                Node::Scalar(Value::Bool(b)) => transient = *b,
                other => return Err(other.wrong_type("transient", "boolean")),
            },
            "keepIntermediates" => match v {
                Node::Scalar(Value::Bool(b)) => keep_intermediates = *b,
                other => return Err(other.wrong_type("keepIntermediates", "boolean")),
            },
            "phases" => phases_node = Some(v),
            other => return Err(ManifestError::prop(other, "unsupported property")),
        }
    }
    let Some(phases_node) = phases_node else {
        return Err(ManifestError::prop(
            "phases",
            "is missing and it is required",
        ));
    };
    let Node::Array(items) = phases_node else {
        return Err(phases_node.wrong_type("phases", "array"));
    };
    if items.is_empty() {
        return Err(ManifestError::prop(
            "phases",
            "there must be a minimum of 1 in the array",
        ));
    }
    let mut phases = Vec::with_capacity(items.len());
    let mut stored = String::from("[");
    for (i, item) in items.iter().enumerate() {
        let (phase, echo) = parse_phase(item, i)?;
        if i > 0 {
            stored.push(',');
        }
        echo.to_json(&mut stored);
        phases.push(phase);
    }
    stored.push(']');
    Ok(Manifest {
        name,
        phases,
        transient,
        keep_intermediates,
        phases_json: stored,
    })
}

/// Parses `script` as the sandbox will, on shell-syntax's parser thread
/// (shared: where the agents run in this process, their first task finds
/// it parsed).
fn check_script(property: &str, script: &str) -> Result<(), ManifestError> {
    shell_syntax::parse_shared(script)
        .map(|_| ())
        .map_err(|e| ManifestError::Script {
            property: property.to_owned(),
            message: e.to_string(),
        })
}

fn parse_phase(item: &Node, i: usize) -> Result<(Phase, Node), ManifestError> {
    let at = |k: &str| format!("phases[{i}].{k}");
    let Node::Object(Ordered(fields)) = item else {
        return Err(item.wrong_type(&format!("phases[{i}]"), "object"));
    };
    let mut phase = Phase {
        kind: PhaseKind::Map,
        exec: String::new(),
        init: None,
        assets: Vec::new(),
        count: 1,
        memory_mb: DEFAULT_MEMORY_MB,
        disk_gb: DEFAULT_DISK_GB,
        image: None,
        memo: MemoPolicy::Auto,
    };
    let mut echo = fields.clone();
    let mut has_exec = false;
    let mut has_type = false;
    for (k, v) in fields {
        let p = at(k);
        match k.as_str() {
            "type" => {
                has_type = true;
                phase.kind = match string(v, &p)?.as_str() {
                    "map" | "storage-map" => PhaseKind::Map,
                    "reduce" => PhaseKind::Reduce,
                    _ => {
                        return Err(ManifestError::prop(
                            p,
                            "does not have a value in the enumeration storage-map, map, reduce",
                        ));
                    }
                };
            }
            "exec" => {
                phase.exec = string(v, &p)?;
                if phase.exec.is_empty() {
                    return Err(ManifestError::prop(p, "must be at least 1 characters long"));
                }
                has_exec = true;
            }
            "init" => phase.init = Some(string(v, &p)?),
            "assets" => {
                let Node::Array(list) = v else {
                    return Err(v.wrong_type(&p, "array"));
                };
                for (j, a) in list.iter().enumerate() {
                    phase.assets.push(string(a, &format!("{p}[{j}]"))?);
                }
            }
            "count" => {
                let n = number(v, &p)?;
                if n.fract() != 0.0 {
                    return Err(v.wrong_type(&p, "integer"));
                }
                if n < 1.0 {
                    return Err(ManifestError::prop(p, "must have a minimum value of 1"));
                }
                if n > f64::from(MAX_REDUCERS) {
                    return Err(ManifestError::prop(p, "must have a maximum value of 128"));
                }
                phase.count = n as u32;
            }
            "memory" => phase.memory_mb = enum_number(v, &p, &MEMORY_VALUES)?,
            "disk" => phase.disk_gb = enum_number(v, &p, &DISK_VALUES)?,
            "memo" => {
                phase.memo = match v {
                    Node::Scalar(Value::Bool(true)) => MemoPolicy::Auto,
                    Node::Scalar(Value::Bool(false)) => MemoPolicy::Off,
                    Node::Scalar(Value::String(s)) if s == "auto" => MemoPolicy::Auto,
                    Node::Scalar(Value::String(s)) if s == "deterministic" => {
                        MemoPolicy::Deterministic
                    }
                    _ => {
                        return Err(ManifestError::prop(
                            p,
                            "must be true, false, \"auto\" or \"deterministic\"",
                        ));
                    }
                };
            }
            "image" => {
                let range = string(v, &p)?;
                check_image(&range).map_err(|m| ManifestError::prop(p, m))?;
                phase.image = Some(range);
            }
            _ => return Err(ManifestError::prop(p, "unsupported property")),
        }
    }
    if !has_exec {
        return Err(ManifestError::prop(
            at("exec"),
            "is missing and it is required",
        ));
    }
    // Stored form: "storage-map" is shown as "map", a missing type is added.
    let type_node = Node::Scalar(Value::String(phase.kind.as_str().into()));
    if has_type {
        for (k, v) in &mut echo {
            if k == "type" {
                *v = type_node.clone();
            }
        }
    } else {
        echo.push(("type".into(), type_node));
    }
    Ok((phase, Node::Object(Ordered(echo))))
}

/// One comparator of a semver range: operator and a partial version.
fn parse_comparator(s: &str) -> Option<(&str, [Option<u64>; 3])> {
    let ops = [">=", "<=", ">", "<", "=", "^", "~"];
    let op = ops
        .iter()
        .find(|o| s.starts_with(**o))
        .copied()
        .unwrap_or("");
    let ver = s[op.len()..].trim_start_matches('v');
    if ver.is_empty() || ver == "*" || ver.eq_ignore_ascii_case("x") {
        return Some((op, [None; 3]));
    }
    let mut parts = [None; 3];
    let mut n = 0;
    for (i, part) in ver.split('.').enumerate() {
        if i >= 3 {
            return None;
        }
        n = i + 1;
        if part == "*" || part.eq_ignore_ascii_case("x") {
            continue;
        }
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) || part.len() > 9 {
            return None;
        }
        parts[i] = Some(part.parse().ok()?);
    }
    // A wildcard may only be followed by wildcards ("13.x.1" is invalid).
    let first_none = parts.iter().take(n).position(Option::is_none).unwrap_or(n);
    if parts[first_none..n].iter().any(Option::is_some) {
        return None;
    }
    Some((op, parts))
}

fn satisfies(op: &str, want: [Option<u64>; 3], v: (u64, u64, u64)) -> bool {
    let have = [v.0, v.1, v.2];
    let fixed: Vec<u64> = want.iter().map_while(|p| *p).collect();
    let lo = [0, 1, 2].map(|i| fixed.get(i).copied().unwrap_or(0));
    let prefix_eq = fixed.iter().zip(have).all(|(a, b)| *a == b);
    let cmp = have.cmp(&lo);
    match op {
        "" | "=" => prefix_eq,
        ">=" => cmp.is_ge(),
        ">" => cmp.is_gt() && !prefix_eq,
        "<" => cmp.is_lt(),
        "<=" => cmp.is_le() || prefix_eq,
        // ^: same leftmost non-zero component; ~: same major.minor (or major).
        "^" => cmp.is_ge() && have[0] == lo[0] && (lo[0] != 0 || have[1] == lo[1]),
        "~" => cmp.is_ge() && have[0] == lo[0] && (fixed.len() < 2 || have[1] == lo[1]),
        _ => false,
    }
}

/// Validate an `image` range (space-separated comparators, `||` between
/// alternatives) against [`IMAGES`].
fn check_image(range: &str) -> Result<(), String> {
    let invalid = || format!("invalid semver range: \"{range}\"");
    let mut alternatives = Vec::new();
    for alt in range.split("||") {
        let mut comps = Vec::new();
        for c in alt.split_whitespace() {
            comps.push(parse_comparator(c).ok_or_else(invalid)?);
        }
        alternatives.push(comps);
    }
    let ok = IMAGES.iter().any(|&img| {
        alternatives
            .iter()
            .any(|comps| comps.iter().all(|(op, v)| satisfies(op, *v, img)))
    });
    if ok {
        Ok(())
    } else {
        Err(format!("unsupported version: \"{range}\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn err(body: &str) -> String {
        parse_manifest(body.as_bytes()).expect_err(body).to_string()
    }

    #[test]
    fn keep_intermediates_is_an_optional_boolean() {
        let m = parse_manifest(br#"{"phases":[{"exec":"wc"}]}"#).expect("valid");
        assert!(!m.keep_intermediates);
        let m = parse_manifest(br#"{"keepIntermediates":true,"phases":[{"exec":"wc"}]}"#)
            .expect("valid");
        assert!(m.keep_intermediates);
        assert_eq!(
            err(r#"{"keepIntermediates":"yes","phases":[{"exec":"wc"}]}"#),
            r#"property "keepIntermediates": yes - string value found, but a boolean is required"#
        );
    }

    #[test]
    fn defaults_and_echo() {
        let m = parse_manifest(
            br#"{"name":"t","phases":[{"exec":"wc"},{"type":"reduce","exec":"cat","count":3}]}"#,
        )
        .expect("valid");
        assert_eq!(m.name, "t");
        assert_eq!(m.phases[0].kind, PhaseKind::Map);
        assert_eq!(m.phases[0].memory_mb, 1024);
        assert_eq!(m.phases[0].disk_gb, 8);
        assert_eq!(m.phases[1].count, 3);
        assert_eq!(
            m.phases_json,
            r#"[{"exec":"wc","type":"map"},{"type":"reduce","exec":"cat","count":3}]"#
        );
        let legacy =
            parse_manifest(br#"{"phases":[{"type":"storage-map","exec":"x"}]}"#).expect("valid");
        assert_eq!(legacy.phases_json, r#"[{"type":"map","exec":"x"}]"#);
        assert_eq!(legacy.name, "");
    }

    #[test]
    fn manta_messages() {
        assert_eq!(
            err(r#"{"phases":[]}"#),
            r#"property "phases": there must be a minimum of 1 in the array"#
        );
        assert_eq!(
            err(r#"{"phases":[{"exec":""}]}"#),
            r#"property "phases[0].exec": must be at least 1 characters long"#
        );
        assert_eq!(
            err(r#"{"phases":[{"exec":"x","type":"foo"}]}"#),
            r#"property "phases[0].type": does not have a value in the enumeration storage-map, map, reduce"#
        );
        assert_eq!(
            err(r#"{"phases":[{"exec":"x","memory":3000}]}"#),
            r#"property "phases[0].memory": does not have a value in the enumeration 128, 256, 512, 1024, 2048, 4096, 8192"#
        );
        assert!(
            err(r#"{"phases":[{"exec":"x","disk":3}]}"#)
                .starts_with(r#"property "phases[0].disk""#)
        );
        assert_eq!(
            err(r#"{"phases":[{"exec":"x","count":0}]}"#),
            r#"property "phases[0].count": must have a minimum value of 1"#
        );
        assert_eq!(
            err(r#"{"phases":[{"exec":"x","count":129}]}"#),
            r#"property "phases[0].count": must have a maximum value of 128"#
        );
        assert_eq!(
            err(r#"{"phases":[{"exec":"x","bogus":1}]}"#),
            r#"property "phases[0].bogus": unsupported property"#
        );
        assert_eq!(
            err(r#"{"phases":[{"exec":"x","memory":"1024"}]}"#),
            r#"property "phases[0].memory": 1024 - string value found, but a number is required"#
        );
        assert_eq!(
            err(r#"{"phases":[{"exec":"x"}],"x":1}"#),
            r#"property "x": unsupported property"#
        );
        assert!(err(r#"{"name":"x"}"#).contains("phases"));
        assert!(err("[1]").contains("object"));
        assert!(err("{").contains("invalid"));
        let big = format!(
            r#"{{"name":"{}","phases":[{{"exec":"x"}}]}}"#,
            "a".repeat(MAX_MANIFEST_BYTES)
        );
        assert_eq!(parse_manifest(big.as_bytes()), Err(ManifestError::TooLarge));
    }

    #[test]
    fn images() {
        for ok in [
            "*",
            "13.x",
            ">=13.1.0",
            "^13.3.0",
            "~13.3",
            "16.1.0",
            "13.1.0 || 99",
            ">=13 <14",
        ] {
            check_image(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        assert_eq!(
            check_image("99.0.0"),
            Err("unsupported version: \"99.0.0\"".into())
        );
        assert_eq!(
            check_image("13.x.1"),
            Err("invalid semver range: \"13.x.1\"".into())
        );
        assert!(check_image("banana").unwrap_err().starts_with("invalid"));
    }

    #[test]
    fn phase_scripts_are_parsed_at_creation() {
        let deep = format!(
            "{}wc -l{}",
            "if true; then ".repeat(500),
            "; fi".repeat(500)
        );
        for (body, property) in [
            (
                serde_json::json!({"phases": [{"exec": deep}]}),
                "phases[0].exec",
            ),
            (
                serde_json::json!({"phases": [{"exec": "wc"}, {"exec": "cat", "init": deep}]}),
                "phases[1].init",
            ),
            (
                serde_json::json!({"phases": [{"exec": "echo 'unterminated"}]}),
                "phases[0].exec",
            ),
        ] {
            let e = parse_manifest(body.to_string().as_bytes()).unwrap_err();
            assert_eq!(e.code(), "InvalidArgumentError");
            assert!(
                matches!(&e, ManifestError::Script { property: p, .. } if p == property),
                "{e}"
            );
        }
        let e = parse_manifest(
            serde_json::json!({"phases": [{"exec": deep}]})
                .to_string()
                .as_bytes(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("nested more than 64 levels"), "{e}");
    }

    proptest! {
        #[test]
        fn never_panics(body in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_manifest(&body);
        }

        #[test]
        fn valid_phases_round_trip(execs in prop::collection::vec(("(wc|cat|grep|sort|head)( [a-z0-9./-]{1,5}){0,3}( \\| (wc|sort|uniq)){0,2}", any::<bool>(), 1u32..=128,
                                                                     prop::sample::select(MEMORY_VALUES.to_vec())), 1..5)) {
            let phases: Vec<Value> = execs.iter().map(|(e, reduce, count, mem)| serde_json::json!({
                "exec": e, "type": if *reduce { "reduce" } else { "map" }, "count": count, "memory": mem
            })).collect();
            let body = serde_json::json!({"name": "p", "phases": phases}).to_string();
            let m = parse_manifest(body.as_bytes()).expect("valid");
            prop_assert_eq!(m.phases.len(), execs.len());
            for (p, (e, reduce, count, mem)) in m.phases.iter().zip(&execs) {
                prop_assert_eq!(&p.exec, e);
                prop_assert_eq!(p.kind == PhaseKind::Reduce, *reduce);
                prop_assert_eq!(p.count, *count);
                prop_assert_eq!(u64::from(p.memory_mb), *mem);
            }
            // The stored echo parses again to the same manifest.
            let again = format!(r#"{{"name":"p","phases":{}}}"#, m.phases_json);
            let m2 = parse_manifest(again.as_bytes()).expect("echo valid");
            prop_assert_eq!(m2.phases, m.phases);
        }

        #[test]
        fn out_of_range_counts_rejected(c in prop_oneof![-1000i64..1, 129i64..100_000]) {
            let body = format!(r#"{{"phases":[{{"exec":"x","count":{c}}}]}}"#);
            prop_assert!(parse_manifest(body.as_bytes()).is_err());
        }
    }
}
