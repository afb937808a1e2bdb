//! Object names of a job: input normalization (spec §4.1), output, stderr
//! and core names (§4.4), and the task environment (§4.8).
//!
//! Guarantees: normalization is idempotent, keeps a leading and a trailing
//! slash, and never produces `.`/`..` or empty segments; output names are
//! always under `/<login>/jobs/<id>/stor/` and end in the task id.
//!
//! [`readable_by`] and [`writable_by`] are the one rule of which object
//! names a job's owner may read (its own tree and any `/public`; every
//! account's tree for an operator's job, as Manta's jobs read with their
//! creator's principal) and write (its own tree, operator or not): the
//! supervisor applies it to every input before any phase reads it, the
//! agent to every name in a task it is given, and the in-task tools to
//! every path they touch ([`may_read`]).

use meta::path::{MantaPath, TopDir};
use uuid::Uuid;

/// Why an object name is refused for a job's owner.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameDenied {
    /// Not an object path (`/<login>/<top>/<name>...`).
    #[error("malformed object name: {0}")]
    Malformed(String),
    /// The owner may not access it.
    #[error("permission denied: {0}")]
    Forbidden(String),
}

/// Normalizes `name` and parses it as an object path below a top directory.
fn object_path(name: &str) -> Result<(String, MantaPath), NameDenied> {
    let quoted = || serde_json::Value::String(name.to_owned()).to_string();
    let norm = normalize(name);
    match MantaPath::parse(&norm) {
        Ok(p) if p.top().is_some() && !p.rest().is_empty() => Ok((norm, p)),
        _ => Err(NameDenied::Malformed(quoted())),
    }
}

/// `name` normalized and parsed as an object name (`/<login>/<top>/<name>
/// ...`), or [`NameDenied::Malformed`] (e.g. `/u/`, `/u/stor`, `/u/jobs`):
/// what `mcat` checks before it emits a name.
pub fn object_name(name: &str) -> Result<(String, MantaPath), NameDenied> {
    object_path(name)
}

/// Whether a job of `owner` (`operator`: created by an operator account)
/// may read `path`: its owner's tree, any `/public`, or anything for an
/// operator's job.
pub fn may_read(owner: &str, operator: bool, path: &MantaPath) -> bool {
    operator || path.login() == owner || path.top() == Some(TopDir::Public)
}

/// `name` normalized and parsed, if a job of `owner` may read it
/// ([`may_read`]).
pub fn readable_by(
    owner: &str,
    operator: bool,
    name: &str,
) -> Result<(String, MantaPath), NameDenied> {
    let (norm, p) = object_path(name)?;
    if !may_read(owner, operator, &p) {
        return Err(NameDenied::Forbidden(
            serde_json::Value::String(name.to_owned()).to_string(),
        ));
    }
    Ok((norm, p))
}

/// `name` normalized and parsed, if `owner` may write it: it is in the
/// owner's tree.
pub fn writable_by(owner: &str, name: &str) -> Result<(String, MantaPath), NameDenied> {
    let (norm, p) = object_path(name)?;
    if p.login() != owner {
        return Err(NameDenied::Forbidden(
            serde_json::Value::String(name.to_owned()).to_string(),
        ));
    }
    Ok((norm, p))
}

/// Collapse repeated slashes and `.`/`..` segments; keep a trailing slash.
/// `..` above the root stays at the root.
pub fn normalize(name: &str) -> String {
    let mut segs: Vec<&str> = Vec::new();
    for s in name.split('/') {
        match s {
            "" | "." => {}
            ".." => {
                segs.pop();
            }
            s => segs.push(s),
        }
    }
    let mut out = String::with_capacity(name.len());
    for s in &segs {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() || (name.ends_with('/') && !segs.is_empty()) {
        out.push('/');
    }
    out
}

/// `/<login>/jobs/<id>/stor`.
pub fn job_stor(login: &str, job: &Uuid) -> String {
    format!("/{login}/jobs/{job}/stor")
}

/// The base of a task's output names (§4.4): `reduce` for reducers,
/// otherwise the task's `p0input` if known, else its input with this job's
/// `stor` prefix stripped.
pub fn output_base(
    login: &str,
    job: &Uuid,
    reducer: bool,
    p0input: Option<&str>,
    input: Option<&str>,
) -> String {
    if reducer {
        return "reduce".into();
    }
    if let Some(p) = p0input {
        return p.to_owned();
    }
    let input = input.unwrap_or("");
    let stor = job_stor(login, job);
    input.strip_prefix(&stor).unwrap_or(input).to_owned()
}

fn join(stor: &str, base: &str) -> String {
    format!("{stor}/{}", base.trim_start_matches('/'))
}

/// `MANTA_OUTPUT_BASE`: `OUT/<base>.<phase>.` (trailing dot).
pub fn manta_output_base(login: &str, job: &Uuid, base: &str, phase: u32) -> String {
    format!("{}.{phase}.", join(&job_stor(login, job), base))
}

/// The captured-stdout object of a task.
pub fn stdout_object(login: &str, job: &Uuid, base: &str, phase: u32, task: &Uuid) -> String {
    format!("{}{task}", manta_output_base(login, job, base, phase))
}

/// The saved-stderr object of a failed task.
pub fn stderr_object(login: &str, job: &Uuid, base: &str, phase: u32, task: &Uuid) -> String {
    format!("{}.{phase}.err.{task}", join(&job_stor(login, job), base))
}

/// The directory core files of `phase` go to.
pub fn core_dir(login: &str, job: &Uuid, phase: u32) -> String {
    format!("{}/cores/{phase}", job_stor(login, job))
}

/// Where a map task's input is visible inside the sandbox:
/// `/manta<object path>`, each component as [`file_component`] maps it.
pub fn input_file(normalized: &str) -> String {
    let mut out = String::from("/manta");
    for c in normalized.split('/').filter(|c| !c.is_empty()) {
        out.push('/');
        out.push_str(&file_component(c));
    }
    out
}

/// Longest file name component a task's file system takes (Linux's
/// `NAME_MAX`); object names allow longer components.
pub const MAX_FILE_COMPONENT: usize = 255;

/// One component of an object path as a file name in a task's file system.
/// Components up to [`MAX_FILE_COMPONENT`] bytes are kept; a longer one
/// becomes its first 200 bytes (cut at a character boundary), `~` and 32
/// hex digits of its blake3 hash, so distinct long names stay distinct and
/// the input keeps a recognizable name. `$MANTA_INPUT_FILE` names the
/// mapped path; `$MANTA_INPUT_OBJECT` keeps the real name.
pub fn file_component(c: &str) -> std::borrow::Cow<'_, str> {
    if c.len() <= MAX_FILE_COMPONENT {
        return c.into();
    }
    let mut cut = 200;
    while !c.is_char_boundary(cut) {
        cut -= 1;
    }
    let hash = blake3::hash(c.as_bytes()).to_hex();
    format!("{}~{}", &c[..cut], &hash[..32]).into()
}

/// `MANTA_URL` of a task when nothing else is configured: tasks reach
/// the store through their in-task tools, never through this URL.
pub const DEFAULT_TASK_URL: &str = "http://localhost:80/";

/// What the environment of one task depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvSpec<'a> {
    /// Job owner.
    pub login: &'a str,
    /// Job id.
    pub job: &'a Uuid,
    /// `MANTA_OUTPUT_BASE`.
    pub output_base: &'a str,
    /// Map tasks: the normalized input object.
    pub input_object: Option<&'a str>,
    /// Reduce tasks: the reducer index.
    pub reducer: Option<u32>,
    /// `MANTA_URL` (an in-sandbox endpoint; tools must not need it).
    pub url: &'a str,
}

/// The task environment of spec §4.8, sorted by name. `init` runs with the
/// same minus the `MANTA_INPUT_*` pair (pass `input_object: None`).
pub fn task_env(spec: &EnvSpec<'_>) -> Vec<(String, String)> {
    let mut env = vec![
        ("HOME".to_string(), "/root".to_string()),
        ("MANTA_JOB_ID".into(), spec.job.to_string()),
        ("MANTA_NO_AUTH".into(), "true".into()),
        ("MANTA_OUTPUT_BASE".into(), spec.output_base.to_owned()),
        ("MANTA_URL".into(), spec.url.to_owned()),
        ("MANTA_USER".into(), spec.login.to_owned()),
        ("PATH".into(), "/usr/bin:/bin".into()),
    ];
    if let Some(obj) = spec.input_object {
        env.push(("MANTA_INPUT_FILE".into(), input_file(obj)));
        env.push(("MANTA_INPUT_OBJECT".into(), obj.to_owned()));
    }
    if let Some(r) = spec.reducer {
        env.push(("MANTA_REDUCER".into(), r.to_string()));
    }
    env.sort();
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_components_map_to_short_distinct_file_names() {
        let long_a = "a".repeat(300);
        let long_b = format!("{}b", "a".repeat(299));
        let fa = input_file(&format!("/u/stor/{long_a}/x"));
        let fb = input_file(&format!("/u/stor/{long_b}/x"));
        assert_ne!(fa, fb);
        for f in [&fa, &fb] {
            assert!(f.split('/').all(|c| c.len() <= MAX_FILE_COMPONENT), "{f}");
            assert!(f.starts_with("/manta/u/stor/aaaa") && f.ends_with("/x"));
        }
        assert_eq!(input_file("/u/stor/short"), "/manta/u/stor/short");
        // A cut never splits a character.
        let wide = "é".repeat(200);
        assert!(file_component(&wide).len() <= MAX_FILE_COMPONENT);
    }
    use proptest::prelude::*;

    const J: &str = "a62ba79e-4d5b-4773-bff9-ecae0fe30dfa";

    #[test]
    fn spec_examples() {
        let j = Uuid::parse_str(J).expect("uuid");
        let t = Uuid::new_v4();
        let base = output_base("alice", &j, false, Some("/alice/stor/obj1"), None);
        assert_eq!(
            stdout_object("alice", &j, &base, 0, &t),
            format!("/alice/jobs/{J}/stor/alice/stor/obj1.0.{t}")
        );
        assert_eq!(
            stderr_object("alice", &j, &base, 0, &t),
            format!("/alice/jobs/{J}/stor/alice/stor/obj1.0.err.{t}")
        );
        assert_eq!(
            manta_output_base("alice", &j, &base, 0),
            format!("/alice/jobs/{J}/stor/alice/stor/obj1.0.")
        );
        let r = output_base("alice", &j, true, None, None);
        assert_eq!(
            stdout_object("alice", &j, &r, 1, &t),
            format!("/alice/jobs/{J}/stor/reduce.1.{t}")
        );
        // A map after a reduce: the input is under the job's stor.
        let reduced = format!("/alice/jobs/{J}/stor/reduce.1.x");
        let b2 = output_base("alice", &j, false, None, Some(&reduced));
        assert_eq!(
            stdout_object("alice", &j, &b2, 2, &t),
            format!("/alice/jobs/{J}/stor/reduce.1.x.2.{t}")
        );
        assert_eq!(
            core_dir("alice", &j, 0),
            format!("/alice/jobs/{J}/stor/cores/0")
        );
    }

    #[test]
    fn environment() {
        let j = Uuid::parse_str(J).expect("uuid");
        let env = task_env(&EnvSpec {
            login: "alice",
            job: &j,
            output_base: "/alice/jobs/x/stor/alice/stor/obj1.0.",
            input_object: Some("/alice/stor/obj1"),
            reducer: None,
            url: "http://localhost:80/",
        });
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("MANTA_INPUT_FILE"), Some("/manta/alice/stor/obj1"));
        assert_eq!(get("MANTA_INPUT_OBJECT"), Some("/alice/stor/obj1"));
        assert_eq!(get("MANTA_JOB_ID"), Some(J));
        assert_eq!(get("MANTA_USER"), Some("alice"));
        assert_eq!(get("MANTA_NO_AUTH"), Some("true"));
        assert_eq!(get("HOME"), Some("/root"));
        assert_eq!(get("MANTA_REDUCER"), None);
        let red = task_env(&EnvSpec {
            login: "alice",
            job: &j,
            output_base: "b",
            input_object: None,
            reducer: Some(2),
            url: "u",
        });
        assert!(red.iter().all(|(k, _)| !k.starts_with("MANTA_INPUT")));
        assert!(red.contains(&("MANTA_REDUCER".into(), "2".into())));
    }

    #[test]
    fn operator_jobs_read_everywhere_and_write_only_at_home() {
        let bob = "/bob/stor/private";
        assert!(matches!(
            readable_by("op", false, bob),
            Err(NameDenied::Forbidden(_))
        ));
        assert_eq!(readable_by("op", true, bob).unwrap().0, bob);
        assert!(readable_by("op", false, "/bob/public/x").is_ok());
        assert!(matches!(
            writable_by("op", bob),
            Err(NameDenied::Forbidden(_))
        ));
        // Still only object names.
        assert!(matches!(
            readable_by("op", true, "/bob/stor"),
            Err(NameDenied::Malformed(_))
        ));
    }

    #[test]
    fn normalize_examples() {
        assert_eq!(normalize("/alice/stor///obj1"), "/alice/stor/obj1");
        assert_eq!(normalize("/alice/stor/./a/../b/"), "/alice/stor/b/");
        assert_eq!(normalize("/../.."), "/");
        assert_eq!(normalize(""), "/");
    }

    proptest! {
        #[test]
        fn normalize_is_idempotent_and_clean(s in "[/a-c.]{0,24}") {
            let n = normalize(&s);
            prop_assert_eq!(normalize(&n), n.clone());
            prop_assert!(n.starts_with('/'));
            prop_assert!(!n.contains("//"));
            prop_assert!(n.split('/').all(|seg| seg != "." && seg != ".."));
        }

        #[test]
        fn outputs_live_under_the_job(login in "[a-z]{1,8}", p0 in "(/[a-z0-9. ]{1,6}){1,4}", phase in 0u32..10) {
            let j = Uuid::new_v4();
            let t = Uuid::new_v4();
            let base = output_base(&login, &j, false, Some(&p0), None);
            let out = stdout_object(&login, &j, &base, phase, &t);
            let stor = format!("{}/", job_stor(&login, &j));
            prop_assert!(out.starts_with(&stor));
            let suffix = format!(".{phase}.{t}");
            prop_assert!(out.ends_with(&suffix));
            prop_assert!(!out.contains("//"));
        }
    }
}
