//! Archiving a finished job (spec E12): write `in.txt`, `out.txt`, `err.txt`,
//! `fail.txt` and, last, `job.json` under `/:login/jobs/:id/` through an
//! [`ArchiveSink`], streaming every list page by page, and record
//! `timeArchiveStarted` / `timeArchiveDone` on the job.
//!
//! Guarantees: nothing is archived before the job is `done`; `job.json` is
//! written after the four lists, so its presence (with `timeArchiveDone`)
//! means the archive is complete; rerunning after a crash rewrites the same
//! files. Deleting the job's keys afterwards is `meta::jobs::JobStore::purge`.

use async_trait::async_trait;
use meta::jobs::{JobRecord, JobState, JobStore};
use uuid::Uuid;

use crate::JobsError;
use crate::status::{error_json_archive, status_json};

/// Rows read per page while archiving.
const PAGE: usize = 512;

/// Why writing an archive object failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("archive write failed: {0}")]
pub struct ArchiveError(pub String);

/// One object being written.
#[async_trait]
pub trait ArchiveWriter: Send {
    /// Append bytes.
    async fn write(&mut self, bytes: &[u8]) -> Result<(), ArchiveError>;
    /// Make the object durable and visible.
    async fn finish(self: Box<Self>) -> Result<(), ArchiveError>;
}

/// Where archive objects go (the object store, as the job's owner).
#[async_trait]
pub trait ArchiveSink: Send + Sync {
    /// Start writing object `path` with `content_type`.
    async fn create(
        &self,
        path: &str,
        content_type: &str,
    ) -> Result<Box<dyn ArchiveWriter>, ArchiveError>;
}

/// Errors of [`archive_job`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveJobError {
    /// The job is not done yet (or does not exist).
    #[error("job {0} is not done")]
    NotDone(Uuid),
    /// Reading job state failed.
    #[error(transparent)]
    Jobs(#[from] JobsError),
    /// The sink failed.
    #[error(transparent)]
    Sink(#[from] ArchiveError),
}

impl From<meta::jobs::JobStoreError> for ArchiveJobError {
    fn from(e: meta::jobs::JobStoreError) -> Self {
        ArchiveJobError::Jobs(JobsError::Store(e))
    }
}

fn dir(job: &JobRecord) -> String {
    format!("/{}/jobs/{}", job.owner, job.id)
}

/// Archive a done job; returns the record as written to `job.json`.
pub async fn archive_job(
    store: &JobStore,
    id: &Uuid,
    sink: &dyn ArchiveSink,
) -> Result<JobRecord, ArchiveJobError> {
    if !matches!(store.get_job(id).await?, Some(j) if j.state == JobState::Done) {
        return Err(ArchiveJobError::NotDone(*id));
    }
    let started = store.now_ms();
    let job = store
        .update_job(id, |j| {
            j.time_archive_started_ms.get_or_insert(started);
            Ok(())
        })
        .await?;
    let base = dir(&job);

    let mut w = sink.create(&format!("{base}/in.txt"), "text/plain").await?;
    let mut from = 0;
    loop {
        let page = store.inputs(id, from, PAGE).await?;
        for (seq, name) in &page {
            w.write(format!("{name}\n").as_bytes()).await?;
            from = seq + 1;
        }
        if page.len() < PAGE {
            break;
        }
    }
    w.finish().await?;

    let mut w = sink
        .create(&format!("{base}/out.txt"), "text/plain")
        .await?;
    let last = job.phase_count.saturating_sub(1);
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = store.outputs(id, last, after.as_deref(), PAGE).await?;
        for (_, o) in &page {
            w.write(format!("{}\n", o.name).as_bytes()).await?;
        }
        match page.last() {
            Some((k, _)) if page.len() == PAGE => after = Some(k.clone()),
            _ => break,
        }
    }
    w.finish().await?;

    let mut err = sink
        .create(
            &format!("{base}/err.txt"),
            "application/x-json-stream; type=job-error",
        )
        .await?;
    let mut fail = sink
        .create(&format!("{base}/fail.txt"), "text/plain")
        .await?;
    let mut from = 0;
    loop {
        let page = store.errors(id, from, PAGE).await?;
        for (seq, e) in &page {
            err.write(format!("{}\n", error_json_archive(e)).as_bytes())
                .await?;
            if let Some(p0) = &e.p0input {
                fail.write(format!("{p0}\n").as_bytes()).await?;
            }
            from = seq + 1;
        }
        if page.len() < PAGE {
            break;
        }
    }
    err.finish().await?;
    fail.finish().await?;

    let done = store.now_ms();
    let mut record = job.clone();
    record.time_archive_done_ms = Some(done);
    let mut w = sink
        .create(&format!("{base}/job.json"), "application/json")
        .await?;
    w.write(status_json(&record).as_bytes()).await?;
    w.finish().await?;
    let record = store
        .update_job(id, |j| {
            j.time_archive_done_ms = Some(done);
            Ok(())
        })
        .await?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use meta::embedded::EmbeddedKv;
    use meta::job_txn;
    use meta::jobs::{JobErrorRecord, JobStoreError, NewJob, TaskOutput, TaskRecord};

    use super::*;

    #[derive(Default)]
    struct Mem(Arc<Mutex<BTreeMap<String, Vec<u8>>>>);

    struct MemWriter {
        path: String,
        buf: Vec<u8>,
        all: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    }

    #[async_trait]
    impl ArchiveWriter for MemWriter {
        async fn write(&mut self, bytes: &[u8]) -> Result<(), ArchiveError> {
            self.buf.extend_from_slice(bytes);
            Ok(())
        }
        async fn finish(self: Box<Self>) -> Result<(), ArchiveError> {
            let mut all = self.all.lock().map_err(|e| ArchiveError(e.to_string()))?;
            all.insert(self.path, self.buf);
            Ok(())
        }
    }

    #[async_trait]
    impl ArchiveSink for Mem {
        async fn create(
            &self,
            path: &str,
            _ct: &str,
        ) -> Result<Box<dyn ArchiveWriter>, ArchiveError> {
            Ok(Box::new(MemWriter {
                path: path.to_owned(),
                buf: Vec::new(),
                all: self.0.clone(),
            }))
        }
    }

    #[tokio::test]
    async fn archives_a_done_job() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kv = Arc::new(
            EmbeddedKv::open(dir.path().join("m.redb"))
                .await
                .expect("open"),
        );
        let store = JobStore::new(kv);
        let job = store
            .create_job(&NewJob {
                owner: "alice".into(),
                name: "n".into(),
                phases_json: r#"[{"exec":"wc","type":"map"}]"#.into(),
                phase_count: 1,
                transient: false,
                keep_intermediates: false,
                operator: false,
                roles: None,
            })
            .await
            .expect("create");
        let names: Vec<String> = (0..600).map(|i| format!("/alice/stor/{i}")).collect();
        store
            .add_inputs(&job.id, &names, true)
            .await
            .expect("inputs");
        let sink = Mem::default();
        assert!(matches!(
            archive_job(&store, &job.id, &sink).await,
            Err(ArchiveJobError::NotDone(_))
        ));
        let r: Result<(), JobStoreError> = job_txn!(&store, t => async {
            let mut j = t.job_for_update(&job.id).await?;
            let mut task = TaskRecord::map(job.id, 0, "/alice/stor/0".into(), Some("/alice/stor/0".into()), vec![]);
            t.put_task(&task, None).await?;
            j.adjust_open(0, 1);
            let out = TaskOutput { name: "/alice/jobs/x/stor/o".into(), reducer: None, p0input: None };
            t.finish_task(&mut j, &mut task, true, &[out]).await?;
            let e = JobErrorRecord {
                phase: 0,
                what: "phase 0: input \"/alice/stor/1\"".into(),
                code: "UserTaskError".into(),
                message: "user command exited with code 1".into(),
                input: Some("/alice/stor/1".into()),
                p0input: Some("/alice/stor/1".into()),
                ..Default::default()
            };
            t.push_error(&mut j, &e).await?;
            j.state = JobState::Done;
            j.time_done_ms = Some(1);
            t.put_job(&j).await
        });
        r.expect("finish job");
        let rec = archive_job(&store, &job.id, &sink).await.expect("archive");
        assert!(rec.time_archive_started_ms.is_some() && rec.time_archive_done_ms.is_some());
        let files = sink.0.lock().expect("lock").clone();
        let base = format!("/alice/jobs/{}", job.id);
        let text =
            |f: &str| String::from_utf8(files[&format!("{base}/{f}")].clone()).expect("utf8");
        let inputs = text("in.txt");
        assert_eq!(inputs.lines().count(), 600);
        assert!(
            inputs.starts_with("/alice/stor/0\n/alice/stor/1\n")
                && inputs.ends_with("/alice/stor/599\n")
        );
        assert_eq!(text("out.txt"), "/alice/jobs/x/stor/o\n");
        assert_eq!(text("fail.txt"), "/alice/stor/1\n");
        let err: serde_json::Value =
            serde_json::from_str(text("err.txt").trim_end()).expect("json line");
        assert_eq!(err["code"], "UserTaskError");
        let j: serde_json::Value = serde_json::from_str(&text("job.json")).expect("json");
        assert!(j["timeArchiveDone"].is_string());
        assert_eq!(j["stats"]["outputs"], 1);
    }
}
