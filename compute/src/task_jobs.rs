//! `mjob` inside a task: a task starts, reads and waits for jobs of its
//! job's owner, as Manta's compute zones had the CLI and a token of the
//! job's principal.
//!
//! Guarantees: a job started here belongs to the owner the supervisor's
//! grant named for the running task (never anything the task says), keeps
//! the parent job's principal (its operator flag and a subuser's roles),
//! and is validated by the same [`jobs::manifest::parse_manifest`] as
//! `POST /:login/jobs` (phase parsing, memory/disk/count limits), its
//! directories created as the API creates them. A job a task started has
//! [`meta::jobs::JobRecord::depth`] one more than its parent's; creating
//! one deeper than [`MAX_DEPTH`] is refused, so a job that starts itself
//! ends after [`MAX_DEPTH`] generations; one task may start at most
//! [`MAX_JOBS_PER_TASK`] jobs, so each generation's fan-out per task is
//! bounded too. `get`, `outputs` and `wait` see only the owner's jobs.
//! Waiting (`create -w/-o`, `wait`) is bounded by the task's own limits.

use std::sync::atomic::Ordering;
use std::time::Duration;

use jobs::manifest::{ManifestError, parse_manifest};
use meta::jobs::{JobRecord, JobState, NewJob};
use meta::path::MantaPath;
use serde_json::{Map, Value};
use tokio::io::AsyncWriteExt as _;
use uuid::Uuid;

use crate::builtins::TaskIo;
use sandbox::BuiltinCall;

/// Deepest job a task may start (a job created through the API is depth
/// 0; a job its task starts is depth 1, ...).
pub const MAX_DEPTH: u32 = 3;
/// Most jobs one task attempt may start.
pub const MAX_JOBS_PER_TASK: u32 = 16;
/// Inputs committed per transaction (the CLI's default batch).
const INPUT_BATCH: usize = 1000;
/// How often a waiting `mjob` looks at the job's record again (the store's
/// change signal wakes it earlier for changes made in this process).
const POLL: Duration = Duration::from_millis(200);

/// `mjob SUBCOMMAND ...`; `Err` is the message printed after `mjob: `.
pub async fn mjob(call: &BuiltinCall<'_>, task: &TaskIo) -> Result<(), String> {
    let args = &call.args[1..];
    let Some(sub) = args.first() else {
        return Err(usage());
    };
    let rest = &args[1..];
    match sub.as_str() {
        "create" => create(call, task, rest).await,
        "get" => {
            for id in ids(rest)? {
                let job = owned(task, &id).await?;
                let line = jobs::status::status_json(&job);
                write_out(call, format!("{line}\n").as_bytes()).await?;
            }
            Ok(())
        }
        "outputs" => {
            for id in ids(rest)? {
                let job = owned(task, &id).await?;
                cat_or_list(call, task, &job, false).await?;
            }
            Ok(())
        }
        "wait" => {
            for id in ids(rest)? {
                wait(task, &id).await?;
            }
            Ok(())
        }
        other => Err(format!(
            "unknown command {other:?} (in a task: create, get, outputs, wait)"
        )),
    }
}

fn usage() -> String {
    "usage: mjob create [-n NAME] [--open] [-o|-w] [-s ASSET] [--init S] [--memory MB] \
     [--disk GB] [--count N] (-m EXEC|-r EXEC)...; mjob get|outputs|wait JOBID..."
        .into()
}

fn ids(args: &[String]) -> Result<Vec<Uuid>, String> {
    if args.is_empty() {
        return Err(usage());
    }
    args.iter()
        .filter(|a| !a.starts_with('-'))
        .map(|a| Uuid::parse_str(a).map_err(|_| format!("{a} is not a job id")))
        .collect()
}

/// A job of the task's owner, read from the job tables.
async fn owned(task: &TaskIo, id: &Uuid) -> Result<JobRecord, String> {
    let store = task
        .job_store()
        .ok_or_else(|| "jobs can only be used inside a job's task".to_owned())?;
    match store.get_job(id).await.map_err(|e| e.to_string())? {
        Some(j) if j.owner == task.owner => Ok(j),
        _ => Err(format!(
            "ResourceNotFoundError: /{}/jobs/{id} was not found",
            task.owner
        )),
    }
}

async fn write_out(call: &BuiltinCall<'_>, bytes: &[u8]) -> Result<(), String> {
    // A closed stdout (`mjob ... | head -1`) ends the command quietly.
    call.stdout().write_all(bytes).await;
    Ok(())
}

/// What `mjob create` was asked.
#[derive(Debug, Default, PartialEq)]
pub struct CreateArgs {
    /// The manifest's body (the CLI's `job` object).
    pub manifest: Map<String, Value>,
    /// `--open`: leave the input open.
    pub open: bool,
    /// `-w`: wait for the job.
    pub watch: bool,
    /// `-o`: wait and print the outputs' contents (not the id).
    pub cat_outputs: bool,
    /// `-q`: no "added N inputs" line.
    pub quiet: bool,
}

/// Parses `mjob create`'s options the way the CLI built its job: phase
/// properties given before a `-m`/`-r` apply to that phase only; without
/// `-m`/`-r`, the operands form phases split at `^` (map) and `^^`
/// (reduce), with the properties applying to every phase.
pub fn parse_create(args: &[String], owner: &str) -> Result<CreateArgs, String> {
    let mut out = CreateArgs::default();
    let mut phases: Vec<Value> = Vec::new();
    let mut next: Map<String, Value> = Map::new();
    let mut global: Map<String, Value> = Map::new();
    let mut global_assets: Vec<Value> = Vec::new();
    let mut operands: Vec<String> = Vec::new();
    let mut explicit = false;
    let mut name: Option<String> = None;
    let mut it = args.iter();
    let asset = |v: &str| -> Value {
        Value::String(match v.strip_prefix("~~") {
            Some(rest) => format!("/{owner}{rest}"),
            None => v.to_owned(),
        })
    };
    let positive = |opt: &str, v: &str| -> Result<Value, String> {
        match v.parse::<u64>() {
            Ok(n) if n > 0 => Ok(Value::from(n)),
            _ => Err(format!(
                "arg for \"--{opt}\" is not a positive integer: \"{v}\""
            )),
        }
    };
    while let Some(a) = it.next() {
        if a == "--" {
            operands.extend(it.by_ref().cloned());
            break;
        }
        // `--opt=value`, `--opt value`, `-x value`, `-xvalue`, `-ow`.
        let (key, inline): (String, Option<String>) = if let Some(long) = a.strip_prefix("--") {
            match long.split_once('=') {
                Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                None => (long.to_owned(), None),
            }
        } else if let Some(short) = a.strip_prefix('-').filter(|s| !s.is_empty()) {
            let mut chars = short.chars();
            let c = chars.next().unwrap_or('-');
            let tail: String = chars.collect();
            let long = match c {
                'm' => "map",
                'r' => "reduce",
                's' => "asset",
                'n' => "name",
                'o' => "cat-outputs",
                'w' => "watch",
                'q' => "quiet",
                'p' => "parallel",
                'b' => "batch",
                'f' => "file",
                _ => return Err(format!("unknown option: \"-{c}\"")),
            };
            let takes = matches!(c, 'm' | 'r' | 's' | 'n' | 'p' | 'b' | 'f');
            if !takes && !tail.is_empty() {
                // A cluster of flags: `-ow`.
                for f in tail.chars() {
                    match f {
                        'o' => out.cat_outputs = true,
                        'w' => out.watch = true,
                        'q' => out.quiet = true,
                        _ => return Err(format!("unknown option: \"-{f}\"")),
                    }
                }
                (long.to_owned(), None)
            } else {
                (long.to_owned(), (!tail.is_empty()).then_some(tail))
            }
        } else {
            operands.push(a.clone());
            continue;
        };
        let flag = matches!(
            key.as_str(),
            "cat-outputs" | "watch" | "quiet" | "open" | "close" | "dry-run"
        );
        if flag {
            match key.as_str() {
                "cat-outputs" => out.cat_outputs = true,
                "watch" => out.watch = true,
                "quiet" => out.quiet = true,
                "open" => out.open = true,
                "dry-run" => return Err("--dry-run is not available in a task".into()),
                _ => {}
            }
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .cloned()
                .ok_or_else(|| format!("do not have enough args for \"--{key}\" option"))?,
        };
        match key.as_str() {
            "map" | "reduce" => {
                explicit = true;
                let mut p = Map::new();
                if let Some(a) = next.remove("assets") {
                    p.insert("assets".into(), a);
                }
                if key == "reduce"
                    && let Some(c) = next.remove("count")
                {
                    p.insert("count".into(), c);
                }
                for k in ["disk"] {
                    if let Some(v) = next.remove(k) {
                        p.insert(k.into(), v);
                    }
                }
                p.insert("exec".into(), Value::String(value));
                for k in ["image", "init", "memory"] {
                    if let Some(v) = next.remove(k) {
                        p.insert(k.into(), v);
                    }
                }
                p.insert("type".into(), Value::String(key.clone()));
                next.clear();
                phases.push(Value::Object(p));
            }
            "asset" => {
                let a = asset(&value);
                global_assets.push(a.clone());
                let e = next
                    .entry("assets")
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(v) = e {
                    v.push(a);
                }
            }
            "count" | "disk" | "memory" => {
                let v = positive(&key, &value)?;
                next.insert(key.clone(), v.clone());
                global.insert(key.clone(), v);
            }
            "image" | "init" => {
                next.insert(key.clone(), Value::String(value.clone()));
                global.insert(key.clone(), Value::String(value));
            }
            "name" => name = Some(value),
            "parallel" | "batch" => {
                positive(&key, &value)?;
            }
            "file" => return Err("-f (a manifest file) is not available in a task".into()),
            other => return Err(format!("unknown option: \"--{other}\"")),
        }
    }
    if explicit {
        if !operands.is_empty() {
            return Err("cannot use -m/-r along with a job expression\n\
                 (did you forget a \"-m\" or \"-r\"?)"
                .into());
        }
    } else if !operands.is_empty() {
        // `mjob create 'grep x' ^^ 'wc -l'`: the CLI's job expression.
        let mut exec = String::new();
        let mut kind = "map";
        let mut count = global.get("count").cloned();
        let mut add = |exec: &mut String, kind: &str, count: &mut Option<Value>| {
            let mut p = Map::new();
            if !global_assets.is_empty() {
                p.insert("assets".into(), Value::Array(global_assets.clone()));
            }
            if let Some(d) = global.get("disk") {
                p.insert("disk".into(), d.clone());
            }
            p.insert("exec".into(), Value::String(std::mem::take(exec)));
            for k in ["image", "init", "memory"] {
                if let Some(v) = global.get(k) {
                    p.insert(k.into(), v.clone());
                }
            }
            p.insert("type".into(), Value::String(kind.to_owned()));
            if kind == "reduce"
                && let Some(c) = count.as_ref().filter(|c| c.as_u64().is_some_and(|n| n > 1))
            {
                p.insert("count".into(), c.clone());
            }
            *count = global.get("count").cloned();
            phases.push(Value::Object(p));
        };
        for a in &operands {
            if a == "^" {
                if !exec.is_empty() {
                    add(&mut exec, kind, &mut count);
                }
                kind = "map";
            } else if a.len() >= 2 && a.bytes().all(|b| b == b'^') {
                if !exec.is_empty() {
                    add(&mut exec, kind, &mut count);
                }
                if a.len() > 2 {
                    count = Some(Value::from(a.len() as u64 - 2));
                }
                kind = "reduce";
            } else {
                if !exec.is_empty() {
                    exec.push(' ');
                }
                exec.push_str(a);
            }
        }
        if !exec.is_empty() {
            add(&mut exec, kind, &mut count);
        }
    }
    if phases.is_empty() {
        return Err("At least one map or reduce task must be specified".into());
    }
    if let Some(n) = name {
        out.manifest.insert("name".into(), Value::String(n));
    }
    out.manifest.insert("phases".into(), Value::Array(phases));
    Ok(out)
}

async fn create(call: &BuiltinCall<'_>, task: &TaskIo, args: &[String]) -> Result<(), String> {
    let parsed = parse_create(args, &task.owner)?;
    let Some(store) = task.job_store() else {
        return Err("jobs can only be started inside a job's task".into());
    };
    let parent = task.job_record().await?;
    let depth = parent.depth + 1;
    if depth > MAX_DEPTH {
        return Err(format!(
            "InvalidJobError: a job started from a task may nest at most {MAX_DEPTH} deep \
             (this task's job is already {} deep)",
            parent.depth
        ));
    }
    if task.jobs_started.fetch_add(1, Ordering::SeqCst) >= MAX_JOBS_PER_TASK {
        return Err(format!(
            "InvalidJobError: one task may start at most {MAX_JOBS_PER_TASK} jobs"
        ));
    }
    let body = serde_json::to_vec(&Value::Object(parsed.manifest)).map_err(|e| e.to_string())?;
    // The API's body limit: the gateway refuses a larger manifest unread.
    if body.len() > jobs::manifest::MAX_MANIFEST_BYTES {
        return Err(format!("InvalidJobError: {}", ManifestError::TooLarge));
    }
    // The API's validation, on a blocking thread as the gateway runs it.
    let m = tokio::task::spawn_blocking(move || parse_manifest(&body))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| match e {
            ManifestError::Script { .. } => format!("InvalidPhaseScriptError: {e}"),
            e => format!("InvalidJobError: {e}"),
        })?;
    let job = store
        .create_job_at_depth(
            &NewJob {
                owner: task.owner.clone(),
                name: m.name,
                phases_json: m.phases_json,
                phase_count: u32::try_from(m.phases.len()).unwrap_or(u32::MAX),
                transient: m.transient,
                keep_intermediates: m.keep_intermediates,
                // The parent's principal, as the task's token was.
                operator: parent.operator,
                roles: parent.roles.clone(),
            },
            depth,
        )
        .await
        .map_err(|e| e.to_string())?;
    let dir = format!("/{}/jobs/{}", task.owner, job.id);
    let mut headers = meta::namespace::Headers::new();
    if let Some(r) = parent.roles.as_ref().filter(|r| !r.roles.is_empty()) {
        let names: Vec<&str> = r.roles.iter().map(|(n, _)| n.as_str()).collect();
        headers.insert("role-tag".to_owned(), names.join(", "));
    }
    for d in [dir.clone(), format!("{dir}/stor")] {
        let p = MantaPath::parse(&d).map_err(|e| e.to_string())?;
        task.io
            .namespace()
            .put_directory(&p, &headers)
            .await
            .map_err(|e| e.to_string())?;
    }
    if !parsed.cat_outputs {
        write_out(call, format!("{}\n", job.id).as_bytes()).await?;
    }
    add_inputs(call, task, &job.id, !parsed.open, parsed.quiet).await?;
    if parsed.watch || parsed.cat_outputs {
        let done = wait(task, &job.id).await?;
        if done.stats.errors > 0 {
            return Err(errors_message(&done));
        }
        if parsed.cat_outputs {
            cat_or_list(call, task, &done, true).await?;
        }
    }
    Ok(())
}

fn errors_message(job: &JobRecord) -> String {
    let n = job.stats.errors;
    format!(
        "job {} had {n} error{}",
        job.id,
        if n > 1 { "s" } else { "" }
    )
}

/// stdin's lines as the job's inputs (`~~` expanded, empty lines
/// skipped), in batches; input ends unless `end` is false.
async fn add_inputs(
    call: &BuiltinCall<'_>,
    task: &TaskIo,
    id: &Uuid,
    end: bool,
    quiet: bool,
) -> Result<(), String> {
    let Some(store) = task.job_store() else {
        return Err("jobs can only be used inside a job's task".into());
    };
    let mut batch: Vec<String> = Vec::new();
    let flush = |batch: Vec<String>, end: bool| async move {
        store
            .add_inputs(id, &batch, end)
            .await
            .map_err(|e| e.to_string())?;
        if !quiet && !batch.is_empty() {
            let n = batch.len();
            call.stderr()
                .write_all(
                    format!("added {n} input{} to {id}\n", if n > 1 { "s" } else { "" }).as_bytes(),
                )
                .await;
        }
        Ok::<_, String>(())
    };
    if let Some(stdin) = call.stdin() {
        while let Some(line) = stdin.read_line(64 * 1024).await {
            let l = String::from_utf8_lossy(&line);
            let l = l.strip_suffix('\r').unwrap_or(&l);
            if l.is_empty() {
                continue;
            }
            batch.push(match l.strip_prefix("~~") {
                Some(rest) => format!("/{}{rest}", task.owner),
                None => l.to_owned(),
            });
            if batch.len() == INPUT_BATCH {
                flush(std::mem::take(&mut batch), false).await?;
            }
        }
    }
    if !batch.is_empty() || end {
        flush(batch, end).await?;
    }
    Ok(())
}

/// Waits until job `id` of the owner is done; returns its final record.
async fn wait(task: &TaskIo, id: &Uuid) -> Result<JobRecord, String> {
    let store = task
        .job_store()
        .ok_or_else(|| "jobs can only be used inside a job's task".to_owned())?;
    let mut changes = store.changes(meta::jobs::JobChange::Any);
    loop {
        let job = owned(task, id).await?;
        if job.state == JobState::Done {
            return Ok(job);
        }
        let _ = tokio::time::timeout(POLL, changes.changed()).await;
    }
}

/// The job's final outputs: their names (`outputs`), or their bytes
/// (`create -o`).
async fn cat_or_list(
    call: &BuiltinCall<'_>,
    task: &TaskIo,
    job: &JobRecord,
    cat: bool,
) -> Result<(), String> {
    let store = task
        .job_store()
        .ok_or_else(|| "jobs can only be used inside a job's task".to_owned())?;
    let last = job.phase_count.saturating_sub(1);
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = store
            .outputs(&job.id, last, after.as_deref(), 256)
            .await
            .map_err(|e| e.to_string())?;
        for (_, o) in &page {
            if cat {
                let mut out = call.stdout().clone();
                match task.io.copy_to(&o.name, &mut out).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(_)) => return Ok(()),
                    Err(e) => return Err(e.to_string()),
                }
                let _ = out.flush().await;
            } else {
                write_out(call, format!("{}\n", o.name).as_bytes()).await?;
            }
        }
        match page.last() {
            Some((k, _)) if page.len() == 256 => after = Some(k.clone()),
            _ => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn phases_from_options_in_order() {
        let c = parse_create(
            &args(&[
                "--memory",
                "2048",
                "-m",
                "grep x",
                "--count=3",
                "-s",
                "~~/stor/a.sh",
                "-r",
                "wc -l",
                "-w",
            ]),
            "bob",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(c.watch && !c.cat_outputs && !c.open);
        let body = serde_json::to_string(&Value::Object(c.manifest)).unwrap_or_default();
        assert_eq!(
            body,
            r#"{"phases":[{"exec":"grep x","memory":2048,"type":"map"},{"assets":["/bob/stor/a.sh"],"count":3,"exec":"wc -l","type":"reduce"}]}"#
        );
    }

    #[test]
    fn job_expression_and_flags() {
        let c = parse_create(&args(&["-ow", "grep", "x", "^^^", "wc"]), "bob")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(c.watch && c.cat_outputs);
        let body = serde_json::to_string(&Value::Object(c.manifest)).unwrap_or_default();
        assert_eq!(
            body,
            r#"{"phases":[{"exec":"grep x","type":"map"},{"exec":"wc","type":"reduce"}]}"#
        );
        assert!(parse_create(&args(&["-m", "wc", "extra"]), "b").is_err());
        assert!(parse_create(&args(&["--count", "0", "-r", "wc"]), "b").is_err());
        assert!(parse_create(&args(&["-o"]), "b").is_err());
        assert!(parse_create(&args(&["-m"]), "b").is_err());
    }

    proptest! {
        /// Any argument vector parses or is refused; never a panic, and a
        /// parsed one has at least one phase, each with an exec.
        #[test]
        fn parse_create_total(a in proptest::collection::vec(
            prop_oneof![
                Just("-m".to_string()), Just("-r".to_string()), Just("^^".to_string()),
                Just("--count".to_string()), Just("-ow".to_string()), Just("--".to_string()),
                "[ -~]{0,8}",
            ], 0..8)) {
            if let Ok(c) = parse_create(&a, "bob") {
                let phases = c.manifest.get("phases").and_then(Value::as_array).cloned().unwrap_or_default();
                prop_assert!(!phases.is_empty());
                for p in phases {
                    prop_assert!(p.get("exec").is_some());
                }
            }
        }
    }
}
