//! Manta's in-task tools as sandbox host builtins (jobs spec §4.9):
//! `mpipe`, `mcat`, `mtee`, `msplit`, `mput`, `mget`, `mls`, and the CLI
//! commands Manta's zones also had: `mrm`, `mmkdir` and `mjob`
//! ([`crate::task_jobs`]). They act as
//! the job's owner on the object store through the running task's
//! [`TaskIo`], found by the unguessable token the agent puts in the task's
//! environment ([`TASK_ENV`]); outside a task they fail.
//!
//! Guarantees: writes (uploads, `mmkdir`, `mrm`) go only to the owner's
//! own tree (`mmkdir`/`mrm` check every name before changing any); reads to the
//! owner's tree or any `/public` (any tree for an operator's job:
//! [`jobs::naming::may_read`], the rule the supervisor and agent apply),
//! and in a subuser's job only to what its active roles allow
//! ([`jobs::roles::JobAccess`], the supervisor's rule for inputs); emitted outputs (`mpipe`, `mcat`,
//! `msplit`) are recorded on the task, which then does not capture stdout;
//! data is streamed (msplit's partitions go through spool files in the
//! task's directory), never held whole; a reducer index must be below 128.
//! `mcat` refuses a name that cannot name an object (`/u/`, `/u/stor`)
//! before emitting anything; whether the object exists and may be read is
//! decided when the next phase dispatches it. `mtee -c N` writes N copies.
//!
//! Everything a tool writes on the task's behalf is charged to the task's
//! one disk budget ([`sandbox::DiskBudget`]) before it is written: msplit's
//! spool bytes and the bytes of `mput`/`mpipe`/`mtee` uploads. Once the
//! budget is used up the write stops with `disk quota exceeded` and the
//! task is stopped as having run out of local disk space.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use jobs::protocol::EmittedOutput;
use meta::namespace::{Headers, ListOptions, SortBy, TypeFilter};
use meta::path::MantaPath;
use sandbox::{BuiltinCall, DiskBudget, HostBuiltin, Sandbox};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::mpsc;

use jobs::roles::JobAccess;
use meta::jobs::JobStore;
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::objects::ObjectIo;

/// Environment variable carrying the task token.
pub const TASK_ENV: &str = "TIDEPOOL_TASK";
/// The names of the in-task tools [`install`] adds.
pub const TOOL_NAMES: [&str; 10] = [
    "mpipe", "mcat", "mtee", "msplit", "mput", "mget", "mls", "mrm", "mmkdir", "mjob",
];
/// Highest reducer index + 1 an emit may name (spec §4.2).
const MAX_REDUCERS: u32 = 128;
/// Most copies `mtee -c` may ask (the gateway's `durability-level` cap).
const MAX_COPIES: usize = 6;
/// Chunk size when streaming stdin.
const CHUNK: usize = 64 * 1024;

/// What the tools of one running task act with.
#[derive(Debug)]
pub struct TaskIo {
    /// Object I/O (the local node first).
    pub io: ObjectIo,
    /// The job's owner.
    pub owner: String,
    /// The job reads with an operator's reach.
    pub operator: bool,
    /// `MANTA_OUTPUT_BASE`.
    pub output_base: String,
    /// A task-private host directory for temporary files.
    pub work_dir: PathBuf,
    emits: Mutex<Vec<EmittedOutput>>,
    /// The job and where its record is ([`TaskIo::for_job`]).
    job: Option<(Uuid, JobStore)>,
    /// The job's roles, read from its record on the first read a tool
    /// makes (`None` inside: the owner's own job).
    access: OnceCell<Option<Arc<JobAccess>>>,
    /// Jobs this task has started (`mjob create`), bounded per task.
    pub(crate) jobs_started: std::sync::atomic::AtomicU32,
}

impl TaskIo {
    /// Tool context for one task.
    pub fn new(
        io: ObjectIo,
        owner: String,
        operator: bool,
        output_base: String,
        work_dir: PathBuf,
    ) -> Self {
        TaskIo {
            io,
            owner,
            operator,
            output_base,
            work_dir,
            emits: Mutex::new(Vec::new()),
            job: None,
            access: OnceCell::new(),
            jobs_started: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// The job tables, when the task runs for a job ([`TaskIo::for_job`]).
    pub(crate) fn job_store(&self) -> Option<&JobStore> {
        self.job.as_ref().map(|(_, s)| s)
    }

    /// The record of the job this task runs for.
    pub(crate) async fn job_record(&self) -> Result<meta::jobs::JobRecord, String> {
        let Some((id, store)) = &self.job else {
            return Err("jobs can only be started inside a job's task".into());
        };
        store
            .get_job(id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("job {id} was not found"))
    }

    /// The tools' reads are judged by job `job`'s roles when a subuser
    /// created it (its record in `jobs`). Without this, as for `tidepool
    /// exec`, only the owner rule applies.
    pub fn for_job(mut self, job: Uuid, jobs: JobStore) -> Self {
        self.job = Some((job, jobs));
        self
    }

    /// The roles the job reads with, if a subuser created it. Read once
    /// per task, and only when a tool reads: most tasks never pay for it.
    async fn access(&self) -> Result<Option<(Uuid, Arc<JobAccess>)>, Fail> {
        let Some((job, store)) = &self.job else {
            return Ok(None);
        };
        let access = self
            .access
            .get_or_try_init(|| async {
                let record = store
                    .get_job(job)
                    .await
                    .map_err(|e| Fail(format!("reading the job's record: {e}")))?;
                Ok::<_, Fail>(
                    record.and_then(|r| r.roles.as_ref().map(|r| Arc::new(JobAccess::new(r)))),
                )
            })
            .await?;
        Ok(access.clone().map(|a| (*job, a)))
    }

    /// Whether the roles of a subuser's job refuse reading `p` (the
    /// owner's own job: never). A missing entry is not refused: the read
    /// answers "not found", as for the owner. `Err` when the job's record
    /// or the entry cannot be read.
    pub async fn roles_refuse(&self, p: &MantaPath) -> Result<bool, String> {
        let Some((job, access)) = self.access().await.map_err(|f| f.0)? else {
            return Ok(false);
        };
        let entry = self
            .io
            .namespace()
            .get(p)
            .await
            .map_err(|e| e.to_string())?;
        Ok(entry.is_some_and(|e| !access.may_read(&self.owner, &job, p, &e.headers)))
    }

    fn emit(&self, name: String, reducer: Option<u32>) {
        self.emits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(EmittedOutput { name, reducer });
    }

    /// The outputs emitted so far, in order.
    pub fn emits(&self) -> Vec<EmittedOutput> {
        self.emits.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Running tasks by token.
#[derive(Debug, Default)]
pub struct TaskRegistry {
    tasks: Mutex<HashMap<String, Arc<TaskIo>>>,
}

/// A registration; dropping it unregisters the task.
#[derive(Debug)]
pub struct TaskToken {
    reg: Arc<TaskRegistry>,
    /// The value for [`TASK_ENV`].
    pub token: String,
}

impl Drop for TaskToken {
    fn drop(&mut self) {
        self.reg
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.token);
    }
}

impl TaskRegistry {
    /// Register a task's tool context under a fresh random token.
    pub fn register(self: &Arc<Self>, io: Arc<TaskIo>) -> TaskToken {
        let token = uuid::Uuid::new_v4().to_string();
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token.clone(), io);
        TaskToken {
            reg: self.clone(),
            token,
        }
    }

    fn get(&self, token: &str) -> Option<Arc<TaskIo>> {
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            .cloned()
    }
}

#[derive(Debug, Clone, Copy)]
enum Tool {
    Mpipe,
    Mcat,
    Mtee,
    Msplit,
    Mput,
    Mget,
    Mls,
    Mrm,
    Mmkdir,
    Mjob,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Mpipe => "mpipe",
            Tool::Mcat => "mcat",
            Tool::Mtee => "mtee",
            Tool::Msplit => "msplit",
            Tool::Mput => "mput",
            Tool::Mget => "mget",
            Tool::Mls => "mls",
            Tool::Mrm => "mrm",
            Tool::Mmkdir => "mmkdir",
            Tool::Mjob => "mjob",
        }
    }
}

struct Builtin {
    tool: Tool,
    reg: Arc<TaskRegistry>,
}

/// Adds the tools to `sandbox`, resolving tasks through `reg`.
pub fn install(mut sandbox: Sandbox, reg: Arc<TaskRegistry>) -> Sandbox {
    for tool in [
        Tool::Mpipe,
        Tool::Mcat,
        Tool::Mtee,
        Tool::Msplit,
        Tool::Mput,
        Tool::Mget,
        Tool::Mls,
        Tool::Mrm,
        Tool::Mmkdir,
        Tool::Mjob,
    ] {
        let b = Arc::new(Builtin {
            tool,
            reg: reg.clone(),
        });
        sandbox = sandbox.with_builtin(tool.name(), b);
    }
    sandbox
}

/// A failure, printed as `<tool>: <message>` with status 1; an empty
/// message means it was already told (the disk budget writes its own).
struct Fail(String);

/// The disk budget refused a write (it said so on stderr itself).
fn quota_exceeded<E>(_: E) -> Fail {
    Fail(String::new())
}

impl<E: std::fmt::Display> From<E> for Fail {
    fn from(e: E) -> Self {
        Fail(e.to_string())
    }
}

fn env<'a>(call: &'a BuiltinCall<'_>, key: &str) -> Option<&'a str> {
    call.env
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[async_trait::async_trait]
impl HostBuiltin for Builtin {
    async fn run(&self, call: BuiltinCall<'_>) -> i32 {
        let name = self.tool.name();
        let Some(task) = env(&call, TASK_ENV).and_then(|t| self.reg.get(t)) else {
            call.stderr()
                .write_all(format!("{name}: only available inside a job task\n").as_bytes())
                .await;
            return 1;
        };
        let r = match self.tool {
            Tool::Mpipe => mpipe(&call, &task).await,
            Tool::Mcat => mcat(&call, &task).await,
            Tool::Mtee => mtee(&call, &task).await,
            Tool::Msplit => msplit(&call, &task).await,
            Tool::Mput => mput(&call, &task).await,
            Tool::Mget => mget(&call, &task).await,
            Tool::Mls => mls(&call, &task).await,
            Tool::Mrm => mrm(&call, &task).await,
            Tool::Mmkdir => mmkdir(&call, &task).await,
            Tool::Mjob => crate::task_jobs::mjob(&call, &task).await.map_err(Fail),
        };
        match r {
            Ok(()) => 0,
            Err(Fail(m)) if m.is_empty() => 1,
            Err(Fail(m)) => {
                call.stderr()
                    .write_all(format!("{name}: {m}\n").as_bytes())
                    .await;
                1
            }
        }
    }
}

/// `~~` expansion and the absolute-path rule of the CLI.
fn object_path(task: &TaskIo, raw: &str) -> Result<String, Fail> {
    let p = match raw.strip_prefix("~~") {
        Some(rest) => format!("/{}{rest}", task.owner),
        None => raw.to_owned(),
    };
    if !p.starts_with('/') {
        return Err(Fail(format!("{raw} is not a valid Manta path")));
    }
    MantaPath::parse(&p).map_err(|_| Fail(format!("{raw} is not a valid Manta path")))?;
    Ok(jobs::naming::normalize(&p))
}

fn may_write(task: &TaskIo, path: &str) -> Result<(), Fail> {
    let p = MantaPath::parse(path).map_err(|_| Fail(format!("{path}: invalid path")))?;
    if p.login() != task.owner {
        return Err(Fail(format!("{path}: permission denied")));
    }
    Ok(())
}

async fn may_read(task: &TaskIo, path: &str) -> Result<(), Fail> {
    let p = MantaPath::parse(path).map_err(|_| Fail(format!("{path}: invalid path")))?;
    if !jobs::naming::may_read(&task.owner, task.operator, &p) {
        return Err(Fail(format!("{path}: permission denied")));
    }
    if task.roles_refuse(&p).await.map_err(Fail)? {
        return Err(Fail(format!(
            "{path}: permission denied (no active role of the job allows getobject)"
        )));
    }
    Ok(())
}

fn reducer_arg(v: &str) -> Result<u32, Fail> {
    match v.parse::<u32>() {
        Ok(n) if n < MAX_REDUCERS => Ok(n),
        _ => Err(Fail(format!("invalid reducer index {v:?}"))),
    }
}

/// Options of the form `-x`, `-x VALUE`, `-xVALUE`; `with_value` names the
/// letters taking a value. Returns `(options, operands)`.
type Parsed = (Vec<(char, String)>, Vec<String>);

fn getopt(args: &[String], with_value: &str) -> Result<Parsed, Fail> {
    let mut opts = Vec::new();
    let mut rest = Vec::new();
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        if a == "--" {
            rest.extend(it.cloned());
            break;
        }
        match a.strip_prefix('-') {
            Some(flags) if !flags.is_empty() => {
                for (i, c) in flags.char_indices() {
                    if with_value.contains(c) {
                        let inline = &flags[i + c.len_utf8()..];
                        let v = if inline.is_empty() {
                            it.next()
                                .cloned()
                                .ok_or_else(|| Fail(format!("option -{c} needs a value")))?
                        } else {
                            inline.to_owned()
                        };
                        opts.push((c, v));
                        break;
                    }
                    opts.push((c, String::new()));
                }
            }
            _ => rest.push(a.clone()),
        }
    }
    Ok((opts, rest))
}

/// stdin as a byte stream (for uploads), optionally copied to stdout;
/// every chunk is charged to the task's disk budget first. The pump ends
/// with the budget's refusal, if that is what stopped it.
fn stdin_stream(
    call: &BuiltinCall<'_>,
    tee: bool,
) -> (
    mpsc::Receiver<Result<Bytes, std::io::Error>>,
    impl std::future::Future<Output = Option<sandbox::DiskFull>> + Send + 'static,
) {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let stdin = call.stdin().cloned();
    let stdout = call.stdout().clone();
    let budget = call.disk_budget();
    let pump = async move {
        let stdin = stdin?;
        while let Some(chunk) = stdin.read_chunk(CHUNK).await {
            if let Err(e) = budget.charge(chunk.len() as u64) {
                let _ = tx.send(Err(std::io::Error::other(e.clone()))).await;
                return Some(e);
            }
            if tee && !stdout.write_all(&chunk).await {
                let _ = tx.send(Err(std::io::Error::other("stdout closed"))).await;
                return None;
            }
            if tx.send(Ok(chunk)).await.is_err() {
                return None;
            }
        }
        None
    };
    (rx, pump)
}

/// A file's bytes as an upload body, each chunk charged to `budget`
/// first: past the budget the stream ends with an error (`ErrorKind::
/// QuotaExceeded`, carrying the [`sandbox::DiskFull`] message).
fn charged(
    budget: DiskBudget,
    file: std::fs::File,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    use futures::StreamExt as _;
    tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file)).map(move |chunk| {
        let chunk = chunk?;
        budget
            .charge(chunk.len() as u64)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::QuotaExceeded, e))?;
        Ok(chunk)
    })
}

/// An upload's failure; when the disk budget stopped it, that was told.
fn upload_failed(budget: &DiskBudget, e: crate::objects::ObjectError) -> Fail {
    if budget.remaining() == 0 {
        quota_exceeded(e)
    } else {
        Fail(e.to_string())
    }
}

fn rx_stream(
    rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
}

/// Upload stdin to `path` (optionally teeing it to stdout).
async fn upload_stdin(
    call: &BuiltinCall<'_>,
    task: &TaskIo,
    path: &str,
    headers: Headers,
    mkdirs: bool,
    tee: bool,
) -> Result<(), Fail> {
    upload_stdin_with(&task.io, call, path, headers, mkdirs, tee).await
}

/// [`upload_stdin`] through `io`.
async fn upload_stdin_with(
    io: &ObjectIo,
    call: &BuiltinCall<'_>,
    path: &str,
    headers: Headers,
    mkdirs: bool,
    tee: bool,
) -> Result<(), Fail> {
    let (rx, pump) = stdin_stream(call, tee);
    let content_type = headers
        .get("content-type")
        .cloned()
        .unwrap_or_else(|| "application/octet-stream".into());
    let upload = io.put_stream(path, &content_type, headers, rx_stream(rx), mkdirs);
    let (res, full) = tokio::join!(upload, pump);
    if let Some(full) = full {
        return Err(quota_exceeded(full));
    }
    res?;
    Ok(())
}

fn parse_headers(opts: &[(char, String)]) -> Result<Headers, Fail> {
    let mut h = Headers::default();
    for (c, v) in opts {
        if *c == 'H' {
            let (k, val) = v
                .split_once(':')
                .ok_or_else(|| Fail(format!("invalid header {v:?}")))?;
            h.insert(k.trim().to_ascii_lowercase(), val.trim().to_owned());
        }
    }
    Ok(h)
}

async fn mpipe(call: &BuiltinCall<'_>, task: &TaskIo) -> Result<(), Fail> {
    let (opts, rest) = getopt(call.args, "rHf")?;
    let reducer = match opts.iter().rev().find(|(c, _)| *c == 'r') {
        Some((_, v)) => Some(reducer_arg(v)?),
        None => None,
    };
    let explicit = rest.first().map(|p| object_path(task, p)).transpose()?;
    let (path, mkdirs) = match explicit {
        Some(p) => (p, opts.iter().any(|(c, _)| *c == 'p')),
        None => (
            format!("{}{}", task.output_base, uuid::Uuid::new_v4()),
            true,
        ),
    };
    may_write(task, &path)?;
    if let Some((_, f)) = opts.iter().find(|(c, _)| *c == 'f') {
        let file = call.open_read(f)?;
        let budget = call.disk_budget();
        let stream = charged(budget.clone(), file);
        let h = parse_headers(&opts)?;
        let ct = h
            .get("content-type")
            .cloned()
            .unwrap_or_else(|| "application/octet-stream".into());
        task.io
            .put_stream(&path, &ct, h, stream, mkdirs)
            .await
            .map_err(|e| upload_failed(&budget, e))?;
    } else {
        upload_stdin(call, task, &path, parse_headers(&opts)?, mkdirs, false).await?;
    }
    task.emit(path, reducer);
    Ok(())
}

async fn mcat(call: &BuiltinCall<'_>, task: &TaskIo) -> Result<(), Fail> {
    let (opts, rest) = getopt(call.args, "r")?;
    let reducer = match opts.iter().rev().find(|(c, _)| *c == 'r') {
        Some((_, v)) => Some(reducer_arg(v)?),
        None => None,
    };
    if rest.is_empty() {
        return Err(Fail("usage: mcat [-r reducer] PATH...".into()));
    }
    // By reference: names are resolved (found, authorized) when the next
    // phase dispatches them (spec §4.3); one that cannot name an object at
    // all fails here, before anything is emitted, as Manta's mcat did.
    let mut names = Vec::with_capacity(rest.len());
    for p in &rest {
        let path = object_path(task, p)?;
        let (norm, _) = jobs::naming::object_name(&path).map_err(|e| Fail(e.to_string()))?;
        names.push(norm);
    }
    for n in names {
        task.emit(n, reducer);
    }
    Ok(())
}

async fn mtee(call: &BuiltinCall<'_>, task: &TaskIo) -> Result<(), Fail> {
    let (opts, rest) = getopt(call.args, "cH")?;
    let Some(raw) = rest.first() else {
        return Err(Fail("usage: mtee [-c copies] [-H 'h: v'] PATH".into()));
    };
    let path = object_path(task, raw)?;
    may_write(task, &path)?;
    match opts.iter().rev().find(|(c, _)| *c == 'c') {
        // `-c N`: the object's durability (copies), as `mput -c`/the
        // `durability-level` header allow (1..=6).
        Some((_, v)) => {
            let copies = match v.parse::<usize>() {
                Ok(n) if (1..=MAX_COPIES).contains(&n) => n,
                _ => return Err(Fail(format!("invalid copies {v:?} (1..={MAX_COPIES})"))),
            };
            let io = task.io.with_durability(copies);
            upload_stdin_with(&io, call, &path, parse_headers(&opts)?, false, true).await
        }
        None => upload_stdin(call, task, &path, parse_headers(&opts)?, false, true).await,
    }
}

async fn mput(call: &BuiltinCall<'_>, task: &TaskIo) -> Result<(), Fail> {
    let (opts, rest) = getopt(call.args, "cHf")?;
    let Some(raw) = rest.first() else {
        return Err(Fail("usage: mput [-p] [-f FILE] PATH".into()));
    };
    let path = object_path(task, raw)?;
    may_write(task, &path)?;
    let mkdirs = opts.iter().any(|(c, _)| *c == 'p');
    if let Some((_, f)) = opts.iter().find(|(c, _)| *c == 'f') {
        let file = call.open_read(f)?;
        let budget = call.disk_budget();
        let stream = charged(budget.clone(), file);
        let h = parse_headers(&opts)?;
        task.io
            .put_stream(&path, "application/octet-stream", h, stream, mkdirs)
            .await
            .map_err(|e| upload_failed(&budget, e))?;
        return Ok(());
    }
    upload_stdin(call, task, &path, parse_headers(&opts)?, mkdirs, false).await
}

async fn mget(call: &BuiltinCall<'_>, task: &TaskIo) -> Result<(), Fail> {
    let (_, rest) = getopt(call.args, "o")?;
    if rest.is_empty() {
        return Err(Fail("usage: mget PATH...".into()));
    }
    let mut out = call.stdout().clone();
    for raw in &rest {
        let path = object_path(task, raw)?;
        may_read(task, &path).await?;
        match task.io.copy_to(&path, &mut out).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return Ok(()),
            Err(crate::objects::ObjectError::Namespace(
                meta::namespace::NamespaceError::NotFound(_),
            )) => return Err(Fail(format!("{path} was not found"))),
            Err(e) => return Err(e.into()),
        }
    }
    let _ = out.flush().await;
    Ok(())
}

async fn mls(call: &BuiltinCall<'_>, task: &TaskIo) -> Result<(), Fail> {
    let (_, rest) = getopt(call.args, "")?;
    let raw = rest.first().cloned().unwrap_or_else(|| "~~/stor".into());
    let path = object_path(task, &raw)?;
    may_read(task, &path).await?;
    let mp = MantaPath::parse(&path)?;
    let ns = task.io.namespace();
    let Some(entry) = ns.get(&mp).await? else {
        return Err(Fail(format!("{path} was not found")));
    };
    let out = call.stdout();
    if !entry.is_directory() {
        let base = path.rsplit('/').next().unwrap_or("");
        out.write_all(format!("{base}\n").as_bytes()).await;
        return Ok(());
    }
    let mut marker = None;
    loop {
        let opts = ListOptions {
            limit: 1024,
            marker: marker.clone(),
            reverse: false,
            filter: TypeFilter::default(),
            sort: SortBy::Name,
        };
        let page = ns.list(&mp, &opts).await?;
        let skip = usize::from(marker.is_some());
        for e in page.iter().skip(skip) {
            let slash = if e.is_directory() { "/" } else { "" };
            if !out
                .write_all(format!("{}{slash}\n", e.name).as_bytes())
                .await
            {
                return Ok(());
            }
        }
        match page.last() {
            Some(last) if page.len() == 1024 => {
                marker = Some(meta::namespace::Marker::Name(last.name.clone()))
            }
            _ => return Ok(()),
        }
    }
}

/// A namespace failure as the CLI printed it (`Name: message`).
fn ns_fail(e: meta::namespace::NamespaceError) -> Fail {
    use meta::namespace::NamespaceError as E;
    let code = match &e {
        E::NotFound(_) => "ResourceNotFoundError",
        E::DirectoryNotEmpty(_) => "DirectoryNotEmptyError",
        E::DirectoryDoesNotExist(_) => "DirectoryDoesNotExistError",
        E::RootDirectory(_) => "OperationNotAllowedOnRootDirectoryError",
        _ => "InternalError",
    };
    Fail(format!("{code}: {e}"))
}

/// `mrm [-r] PATH...` (the CLI's `-I` needs a terminal, which a task has
/// not). A directory without `-r` is refused as the CLI did; `-r` removes
/// depth first, a page of entries at a time.
async fn mrm(call: &BuiltinCall<'_>, task: &TaskIo) -> Result<(), Fail> {
    let (opts, rest) = getopt(call.args, "p")?;
    if let Some((c, _)) = opts.iter().find(|(c, _)| !matches!(c, 'r' | 'p')) {
        return Err(Fail(format!(
            "unknown option -{c}\nusage: mrm [-r] PATH..."
        )));
    }
    let recursive = opts.iter().any(|(c, _)| *c == 'r');
    if rest.is_empty() {
        return Err(Fail("usage: mrm [-r] PATH...".into()));
    }
    // Every name is checked before anything is removed.
    let mut paths = Vec::with_capacity(rest.len());
    for raw in &rest {
        let path = object_path(task, raw)?;
        may_write(task, &path)?;
        paths.push(MantaPath::parse(&path)?);
    }
    let ns = task.io.namespace();
    for p in paths {
        let Some(entry) = ns.get(&p).await.map_err(ns_fail)? else {
            return Err(Fail(format!("ResourceNotFoundError: {p} was not found")));
        };
        if entry.is_directory() {
            if !recursive {
                call.stderr()
                    .write_all(format!("{p} is not an object\n").as_bytes())
                    .await;
                return Err(Fail(String::new()));
            }
            remove_tree(task, p).await?;
        } else {
            remove_one(task, &p).await?;
        }
    }
    Ok(())
}

/// Delete one entry. Freed copies are left to their GC records, as a
/// task's overwrites leave them ([`ObjectIo::put_stream`]).
async fn remove_one(task: &TaskIo, p: &MantaPath) -> Result<(), Fail> {
    let cond = meta::namespace::Conditions::none();
    match task.io.namespace().delete(p, &cond).await {
        Ok(_) | Err(meta::namespace::NamespaceError::NotFound(_)) => Ok(()),
        Err(e) => Err(ns_fail(e)),
    }
}

/// `rm -r` of directory `dir`: its entries (directories first emptied),
/// then `dir` itself. The stack holds one path per level, never a listing.
async fn remove_tree(task: &TaskIo, dir: MantaPath) -> Result<(), Fail> {
    let ns = task.io.namespace();
    let mut stack = vec![dir];
    while let Some(top) = stack.last().cloned() {
        let opts = ListOptions {
            limit: 256,
            marker: None,
            reverse: false,
            filter: TypeFilter::default(),
            sort: SortBy::Name,
        };
        let page = match ns.list(&top, &opts).await {
            Ok(p) => p,
            Err(meta::namespace::NamespaceError::NotFound(_)) => Vec::new(),
            Err(e) => return Err(ns_fail(e)),
        };
        let mut descended = false;
        for e in &page {
            let child = MantaPath::parse(&format!("{top}/{}", e.name))?;
            if e.is_directory() {
                stack.push(child);
                descended = true;
                break;
            }
            remove_one(task, &child).await?;
        }
        if !descended && page.is_empty() {
            remove_one(task, &top).await?;
            stack.pop();
        }
    }
    Ok(())
}

/// `mmkdir [-p] [-H 'h: v'] PATH...`: without `-p` the parent must exist.
async fn mmkdir(call: &BuiltinCall<'_>, task: &TaskIo) -> Result<(), Fail> {
    let (opts, rest) = getopt(call.args, "H")?;
    if let Some((c, _)) = opts.iter().find(|(c, _)| !matches!(c, 'p' | 'H')) {
        return Err(Fail(format!(
            "unknown option -{c}\nusage: mmkdir [-p] PATH..."
        )));
    }
    if rest.is_empty() {
        return Err(Fail("usage: mmkdir [-p] PATH...".into()));
    }
    let parents = opts.iter().any(|(c, _)| *c == 'p');
    let headers = parse_headers(&opts)?;
    let mut paths = Vec::with_capacity(rest.len());
    for raw in &rest {
        let path = object_path(task, raw)?;
        may_write(task, &path)?;
        paths.push(MantaPath::parse(&path)?);
    }
    let ns = task.io.namespace();
    for p in paths {
        if parents {
            task.io.mkdirp_parents(&p).await?;
        }
        ns.put_directory(&p, &headers).await.map_err(ns_fail)?;
    }
    Ok(())
}

async fn msplit(call: &BuiltinCall<'_>, task: &TaskIo) -> Result<(), Fail> {
    use crate::msplit_key::{Key, KeyMode, hash_reducer, literal_reducer};
    let (opts, _) = getopt(call.args, "ndfe")?;
    let get = |c: char| {
        opts.iter()
            .rev()
            .find(|(o, _)| *o == c)
            .map(|(_, v)| v.as_str())
    };
    if let Some((c, _)) = opts
        .iter()
        .find(|(c, _)| !matches!(c, 'n' | 'd' | 'f' | 'e' | 'i' | 'j' | 't' | 'z'))
    {
        return Err(Fail(format!("illegal option -- {c}")));
    }
    let n: u32 = match get('n').map(str::parse::<u32>) {
        Some(Ok(n)) if (1..=MAX_REDUCERS).contains(&n) => n,
        _ => return Err(Fail("-n N (1..128) is required".into())),
    };
    let has = |c: char| opts.iter().any(|(o, _)| *o == c);
    let literal = has('i');
    let gzip = has('z');
    // `-f` lists accumulate, as msplit concatenated them.
    let fields: Vec<String> = opts
        .iter()
        .filter(|(c, _)| *c == 'f')
        .flat_map(|(_, v)| v.split(',').map(str::to_owned).collect::<Vec<_>>())
        .collect();
    let mode = KeyMode::new(get('d').unwrap_or("\t"), &fields, has('j'), get('e')).map_err(Fail)?;
    let budget = call.disk_budget();
    // Inside the task's directory (removed with the task however it ends).
    let dir = task
        .work_dir
        .join(format!("msplit-{}", uuid::Uuid::new_v4()));
    tokio::fs::create_dir_all(&dir).await?;
    let mut files = Vec::with_capacity(n as usize);
    for i in 0..n {
        let f = tokio::fs::File::create(dir.join(i.to_string())).await?;
        files.push(tokio::io::BufWriter::new(f));
    }
    let res = async {
        if let Some(stdin) = call.stdin() {
            while let Some(line) = stdin.read_line(1 << 20).await {
                // Node read the lines as UTF-8 text: keys are of that text.
                let text = String::from_utf8_lossy(&line);
                let key = mode.key(&text, literal).map_err(Fail)?;
                let r = if literal {
                    literal_reducer(&key, n, &text).map_err(Fail)?
                } else {
                    match &key {
                        Key::Str(k) => hash_reducer(k, n),
                        Key::Num(_) => return Err(Fail("a number key needs -i".into())),
                    }
                };
                // The spool is disk the task uses: charged before written.
                budget
                    .charge(line.len() as u64 + 1)
                    .map_err(quota_exceeded)?;
                let f = &mut files[r as usize];
                f.write_all(&line).await?;
                f.write_all(b"\n").await?;
            }
        }
        for f in &mut files {
            f.flush().await?;
        }
        let prefix = format!("{}{}.", task.output_base, uuid::Uuid::new_v4());
        for i in 0..n {
            let name = format!("{prefix}{i}");
            let mut spool = dir.join(i.to_string());
            if gzip {
                // `-z`: each partition gzipped (the next phase reads one
                // gzip stream per input, e.g. `zcat`). Not charged again:
                // it is no larger than the plain spool, already charged,
                // beyond gzip's few bytes of framing.
                let plain = spool.clone();
                spool = dir.join(format!("{i}.gz"));
                let out = spool.clone();
                tokio::task::spawn_blocking(move || gzip_file(&plain, &out))
                    .await
                    .map_err(|e| Fail(e.to_string()))??;
            }
            task.io.put_file(&name, &spool, true).await?;
            task.emit(name, Some(i));
        }
        Ok(())
    }
    .await;
    drop(files);
    let _ = tokio::fs::remove_dir_all(&dir).await;
    res
}

/// gzip `from` into `to`, streaming.
fn gzip_file(from: &std::path::Path, to: &std::path::Path) -> Result<(), Fail> {
    let mut input = std::io::BufReader::new(std::fs::File::open(from)?);
    let out = std::io::BufWriter::new(std::fs::File::create(to)?);
    let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    std::io::copy(&mut input, &mut enc)?;
    let mut out = enc.finish()?;
    std::io::Write::flush(&mut out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_and_fields() {
        let args: Vec<String> = [
            "mpipe",
            "-p",
            "-r",
            "3",
            "-Hcontent-type: text/plain",
            "/a/stor/x",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (opts, rest) = getopt(&args, "rH").unwrap_or_else(|_| panic!("parse"));
        assert_eq!(opts[0], ('p', String::new()));
        assert_eq!(opts[1], ('r', "3".into()));
        assert_eq!(opts[2], ('H', "content-type: text/plain".into()));
        assert_eq!(rest, vec!["/a/stor/x".to_string()]);
    }
}
