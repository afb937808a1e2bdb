//! Conformance tests of the job tables, generic over the backend: call
//! [`run_all`] with a factory for an `Arc<dyn Kv>` (the embedded backend in
//! this crate's tests; a TiKV backend can call it the same way). Every test
//! creates its own jobs with fresh ids and logins, so a shared store is fine.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use uuid::Uuid;

use super::{
    JobErrorRecord, JobRecord, JobState, JobStore, JobStoreError, NewJob, ReducerInput, TaskOutput,
    TaskRecord, TaskState, TaskUsage,
};
use crate::job_txn;
use crate::keys;
use crate::kv::Kv;

/// Run every job-table test, each with a store from `make`.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Kv>>,
{
    jobs_create_and_indexes(make().await).await;
    jobs_inputs_and_states(make().await).await;
    jobs_appends_never_conflict(make().await).await;
    jobs_outputs_commit_once(make().await).await;
    jobs_dispatch_queue(make().await).await;
    jobs_errors_and_reducer_inputs(make().await).await;
    jobs_lease_takeover(make().await).await;
    jobs_purge(make().await).await;
    jobs_usage_records(make().await).await;
    jobs_memo_records(make().await).await;
}

fn owner() -> String {
    format!("j{}", &Uuid::new_v4().simple().to_string()[..12])
}

async fn new_job(store: &JobStore, owner: &str, phases: u32) -> JobRecord {
    store
        .create_job(&NewJob {
            owner: owner.to_owned(),
            name: "t".into(),
            phases_json: r#"[{"exec":"wc","type":"map"}]"#.into(),
            phase_count: phases,
            transient: false,
            keep_intermediates: false,
            operator: false,
            roles: None,
        })
        .await
        .expect("create job")
}

async fn put_new_task(store: &JobStore, task: &TaskRecord, open_delta: bool) {
    let r: Result<(), JobStoreError> = job_txn!(store, t => async {
        let mut job = t.job_for_update(&task.job).await?;
        if open_delta {
            job.adjust_open(task.phase, 1);
            job.stats.tasks += 1;
        }
        t.put_task(task, None).await?;
        t.put_job(&job).await
    });
    r.expect("put task");
}

/// Creation, lookup, and the owner and live indexes.
pub async fn jobs_create_and_indexes(kv: Arc<dyn Kv>) {
    let store = JobStore::new(kv);
    let o = owner();
    let a = new_job(&store, &o, 1).await;
    let b = new_job(&store, &o, 2).await;
    assert_eq!(a.id.get_version_num(), 4, "job ids are v4");
    let got = store.get_job(&a.id).await.expect("get").expect("exists");
    assert_eq!(got, a);
    assert_eq!(got.state, JobState::Queued);
    assert_eq!(got.stats, Default::default());
    assert_eq!(got.open_tasks, vec![0]);
    let mut mine = store.owner_jobs(&o, None, 10).await.expect("owner jobs");
    let mut want = vec![a.id, b.id];
    want.sort();
    mine.sort();
    assert_eq!(mine, want);
    // Paging by id gives each job once.
    let first = store.owner_jobs(&o, None, 1).await.expect("page 1");
    let second = store
        .owner_jobs(&o, first.first().copied(), 10)
        .await
        .expect("page 2");
    assert_eq!(first.len() + second.len(), 2);
    assert!(
        store
            .owner_jobs(&owner(), None, 10)
            .await
            .expect("other")
            .is_empty()
    );
    let live = store.live_jobs(None, 100_000).await.expect("live");
    assert!(live.contains(&a.id) && live.contains(&b.id));
    assert!(store.get_job(&Uuid::new_v4()).await.expect("get").is_none());
}

/// Many appends into one job at once, while a supervisor keeps rewriting
/// the job record, all succeed on their first attempt: appends only touch
/// the input head and take turns within a process.
pub async fn jobs_appends_never_conflict(kv: Arc<dyn Kv>) {
    let store = JobStore::new(kv.clone());
    let job = new_job(&store, &owner(), 1).await;
    let no_retry = JobStore::new(kv).with_retry(crate::namespace::RetryPolicy {
        max_attempts: 1,
        ..Default::default()
    });
    let sup = {
        let store = store.clone();
        let id = job.id;
        tokio::spawn(async move {
            for _ in 0..200 {
                store
                    .update_job(&id, |j| {
                        j.stats.tasks += 1;
                        j.inputs_consumed = j.next_input_seq;
                        Ok(())
                    })
                    .await
                    .expect("supervisor update");
                tokio::task::yield_now().await;
            }
        })
    };
    let mut appenders = Vec::new();
    for s in 0..25 {
        let store = no_retry.clone();
        let id = job.id;
        appenders.push(tokio::spawn(async move {
            for i in 0..40 {
                store
                    .add_inputs(&id, &[format!("/u/stor/{s}/{i}")], false)
                    .await
                    .expect("an append never conflicts");
            }
        }));
    }
    for a in appenders {
        a.await.expect("appender");
    }
    sup.await.expect("supervisor");
    let got = store.get_job(&job.id).await.expect("get").expect("job");
    assert_eq!(got.next_input_seq, 1000);
    assert_eq!(got.stats.tasks, 200, "no supervisor update lost");
    assert!(got.inputs_consumed <= got.next_input_seq);
    let mut names: Vec<String> = store
        .inputs(&job.id, 0, 2000)
        .await
        .expect("inputs")
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    assert_eq!(names.len(), 1000);
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 1000, "every append landed once");
    // Ending input goes through the head too, so it does not conflict with
    // a supervisor's transaction on the record that is still open...
    let mut sup = store.begin().await.expect("begin");
    let mut rec = sup.job_for_update(&job.id).await.expect("record");
    no_retry
        .end_input(&job.id)
        .await
        .expect("end without a retry");
    rec.stats.tasks += 1;
    sup.put_job(&rec).await.expect("put");
    sup.commit()
        .await
        .expect("the supervisor's commit survives an end of input");
    // ... and later appends are refused.
    assert!(matches!(
        no_retry.add_inputs(&job.id, &names[..1], false).await,
        Err(JobStoreError::InvalidState {
            state: "inputDone",
            ..
        })
    ));
    let ended = store.get_job(&job.id).await.expect("get").expect("job");
    assert!(ended.input_done && ended.next_input_seq == 1000);
    assert_eq!(ended.stats.tasks, 201);
}

/// Inputs keep submission order and duplicates; state rules of E2–E4.
pub async fn jobs_inputs_and_states(kv: Arc<dyn Kv>) {
    let store = JobStore::new(kv);
    let job = new_job(&store, &owner(), 1).await;
    let names: Vec<String> = ["/u/stor/a", "/u/stor/b", "/u/stor/a"]
        .map(String::from)
        .into();
    assert_eq!(
        store.add_inputs(&job.id, &names, false).await.expect("add"),
        0
    );
    assert_eq!(
        store
            .add_inputs(&job.id, &names[..1], false)
            .await
            .expect("add"),
        3
    );
    let page1 = store.inputs(&job.id, 0, 2).await.expect("page");
    let page2 = store
        .inputs(&job.id, page1[1].0 + 1, 10)
        .await
        .expect("page");
    let all: Vec<(u64, String)> = page1.into_iter().chain(page2).collect();
    assert_eq!(
        all,
        vec![
            (0, "/u/stor/a".to_string()),
            (1, "/u/stor/b".to_string()),
            (2, "/u/stor/a".to_string()),
            (3, "/u/stor/a".to_string())
        ]
    );
    let ended = store.end_input(&job.id).await.expect("end");
    assert!(ended.input_done);
    assert_eq!(ended.next_input_seq, 4);
    store
        .end_input(&job.id)
        .await
        .expect("second end is a no-op");
    match store.add_inputs(&job.id, &names, false).await {
        Err(JobStoreError::InvalidState { state, .. }) => assert_eq!(state, "inputDone"),
        other => panic!("add after end: {other:?}"),
    }
    let c = store.cancel(&job.id).await.expect("cancel");
    assert!(c.cancelled && c.input_done);
    match store.cancel(&job.id).await {
        Err(JobStoreError::InvalidState { state, .. }) => assert_eq!(state, "cancelled"),
        other => panic!("second cancel: {other:?}"),
    }
    let done = new_job(&store, &owner(), 1).await;
    store
        .update_job(&done.id, |j| {
            j.state = JobState::Done;
            Ok(())
        })
        .await
        .expect("mark done");
    match store.end_input(&done.id).await {
        Err(JobStoreError::InvalidState { state, .. }) => assert_eq!(state, "done"),
        other => panic!("end on done job: {other:?}"),
    }
    assert!(matches!(
        store.add_inputs(&Uuid::new_v4(), &names, false).await,
        Err(JobStoreError::NotFound(_))
    ));
    // `end` together with the batch.
    let j2 = new_job(&store, &owner(), 1).await;
    store
        .add_inputs(&j2.id, &names[..2], true)
        .await
        .expect("add+end");
    let j2 = store.get_job(&j2.id).await.expect("get").expect("exists");
    assert!(j2.input_done && j2.next_input_seq == 2);
}

/// A task's outputs are committed once; a duplicate report changes nothing.
pub async fn jobs_outputs_commit_once(kv: Arc<dyn Kv>) {
    let store = JobStore::new(kv);
    let job = new_job(&store, &owner(), 1).await;
    let task = TaskRecord::map(
        job.id,
        0,
        "/u/stor/a".into(),
        Some("/u/stor/a".into()),
        vec!["n1".into()],
    );
    put_new_task(&store, &task, true).await;
    let outs = vec![
        TaskOutput {
            name: "/u/jobs/x/stor/u/stor/a.0.1".into(),
            reducer: None,
            p0input: None,
        },
        TaskOutput {
            name: "/u/jobs/x/stor/u/stor/a.0.2".into(),
            reducer: Some(1),
            p0input: None,
        },
    ];
    let commit = |outs: Vec<TaskOutput>| {
        let store = store.clone();
        let (jid, tid) = (job.id, task.id);
        async move {
            let r: Result<bool, JobStoreError> = job_txn!(&store, t => async {
                let mut j = t.job_for_update(&jid).await?;
                let mut tk = t.task_for_update(&jid, 0, &tid).await?;
                let first = t.finish_task(&mut j, &mut tk, true, &outs).await?;
                t.put_job(&j).await?;
                Ok(first)
            });
            r.expect("commit")
        }
    };
    assert!(commit(outs.clone()).await, "first commit applies");
    assert!(
        !commit(outs[..1].to_vec()).await,
        "duplicate commit is ignored"
    );
    let got = store.outputs(&job.id, 0, None, 10).await.expect("outputs");
    let names: Vec<&TaskOutput> = got.iter().map(|(_, o)| o).collect();
    assert_eq!(names, outs.iter().collect::<Vec<_>>());
    let j = store.get_job(&job.id).await.expect("get").expect("exists");
    assert_eq!(j.stats.outputs, 2);
    assert_eq!(j.stats.tasks_done, 1);
    assert_eq!(j.open_tasks, vec![0]);
    let t = store
        .get_task(&job.id, 0, &task.id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(t.state, TaskState::Done);
    // Paging outputs by key.
    let p1 = store.outputs(&job.id, 0, None, 1).await.expect("p1");
    let p2 = store
        .outputs(&job.id, 0, Some(&p1[0].0), 10)
        .await
        .expect("p2");
    assert_eq!(p1.len() + p2.len(), 2);
}

/// The per-node queue follows the task's node and state.
pub async fn jobs_dispatch_queue(kv: Arc<dyn Kv>) {
    let store = JobStore::new(kv);
    let (n1, n2) = (
        format!("n1-{}", Uuid::new_v4()),
        format!("n2-{}", Uuid::new_v4()),
    );
    let job = new_job(&store, &owner(), 1).await;
    let mut task = TaskRecord::map(
        job.id,
        0,
        "/u/stor/a".into(),
        None,
        vec![n1.clone(), n2.clone()],
    );
    put_new_task(&store, &task, true).await;
    assert!(
        store.node_queue(&n1, 10).await.expect("q").is_empty(),
        "queued tasks are on no node"
    );
    let set = |task: TaskRecord, prev: Option<String>| {
        let store = store.clone();
        async move {
            let r: Result<(), JobStoreError> = job_txn!(&store, t => async {
                t.put_task(&task, prev.as_deref()).await
            });
            r.expect("put task");
        }
    };
    task.state = TaskState::Dispatched;
    task.node = Some(n1.clone());
    set(task.clone(), None).await;
    assert_eq!(
        store.node_queue(&n1, 10).await.expect("q"),
        vec![(job.id, task.id)]
    );
    task.node = Some(n2.clone());
    task.attempt = 1;
    set(task.clone(), Some(n1.clone())).await;
    assert!(
        store.node_queue(&n1, 10).await.expect("q").is_empty(),
        "moved off n1"
    );
    assert_eq!(
        store.node_queue(&n2, 10).await.expect("q"),
        vec![(job.id, task.id)]
    );
    let r: Result<bool, JobStoreError> = job_txn!(&store, t => async {
        let mut j = t.job_for_update(&job.id).await?;
        let mut tk = t.task_for_update(&job.id, 0, &task.id).await?;
        let ok = t.finish_task(&mut j, &mut tk, false, &[]).await?;
        t.put_job(&j).await?;
        Ok(ok)
    });
    assert!(r.expect("fail task"));
    assert!(
        store.node_queue(&n2, 10).await.expect("q").is_empty(),
        "finished tasks leave the queue"
    );
    let j = store.get_job(&job.id).await.expect("get").expect("exists");
    assert_eq!((j.stats.tasks_done, j.stats.outputs), (1, 0));
}

/// Errors keep their order; reducer inputs are per reducer.
pub async fn jobs_errors_and_reducer_inputs(kv: Arc<dyn Kv>) {
    let store = JobStore::new(kv);
    let job = new_job(&store, &owner(), 2).await;
    let r: Result<(), JobStoreError> = job_txn!(&store, t => async {
        let mut j = t.job_for_update(&job.id).await?;
        for i in 0..3 {
            let e = JobErrorRecord {
                phase: 0,
                what: format!("phase 0: input \"/u/stor/{i}\""),
                code: "ResourceNotFoundError".into(),
                message: format!("no such object: \"/u/stor/{i}\""),
                input: Some(format!("/u/stor/{i}")),
                p0input: Some(format!("/u/stor/{i}")),
                ..Default::default()
            };
            t.push_error(&mut j, &e).await?;
        }
        let mut r0 = TaskRecord::reduce(job.id, 1, 0);
        let mut r1 = TaskRecord::reduce(job.id, 1, 1);
        for i in 0..3 {
            t.push_reducer_input(&mut r0, &ReducerInput { name: format!("/a/{i}") }).await?;
        }
        t.push_reducer_input(&mut r1, &ReducerInput { name: "/b/0".into() }).await?;
        t.put_task(&r0, None).await?;
        t.put_task(&r1, None).await?;
        t.put_job(&j).await
    });
    r.expect("write");
    let errs = store.errors(&job.id, 0, 10).await.expect("errors");
    assert_eq!(
        errs.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert_eq!(errs[2].1.input.as_deref(), Some("/u/stor/2"));
    assert_eq!(store.errors(&job.id, 2, 10).await.expect("errors").len(), 1);
    let j = store.get_job(&job.id).await.expect("get").expect("exists");
    assert_eq!(j.stats.errors, 3);
    let r0 = store
        .reducer_inputs(&job.id, 1, 0, 1, 10)
        .await
        .expect("r0");
    assert_eq!(
        r0.iter()
            .map(|(s, i)| (*s, i.name.as_str()))
            .collect::<Vec<_>>(),
        vec![(1, "/a/1"), (2, "/a/2")]
    );
    let r1 = store
        .reducer_inputs(&job.id, 1, 1, 0, 10)
        .await
        .expect("r1");
    assert_eq!(r1.len(), 1);
    assert!(
        store
            .reducer_inputs(&job.id, 1, 2, 0, 10)
            .await
            .expect("r2")
            .is_empty()
    );
}

/// A lease excludes other supervisors until it expires; after a takeover the
/// old holder's transactions are fenced.
pub async fn jobs_lease_takeover(kv: Arc<dyn Kv>) {
    let now = Arc::new(AtomicU64::new(1_000_000));
    let clock = {
        let now = now.clone();
        Arc::new(move || now.load(Ordering::SeqCst))
    };
    let store = JobStore::new(kv).with_clock(clock);
    let job = new_job(&store, &owner(), 1).await;
    let ttl = Duration::from_secs(10);
    assert!(store.take_lease(&job.id, "A", ttl).await.expect("A takes"));
    assert!(
        !store
            .take_lease(&job.id, "B", ttl)
            .await
            .expect("B refused")
    );
    assert!(store.take_lease(&job.id, "A", ttl).await.expect("A renews"));
    now.fetch_add(5_000, Ordering::SeqCst);
    assert!(
        !store
            .take_lease(&job.id, "B", ttl)
            .await
            .expect("still A's")
    );
    now.fetch_add(10_001, Ordering::SeqCst);
    assert!(
        store
            .take_lease(&job.id, "B", ttl)
            .await
            .expect("B takes over")
    );
    assert_eq!(
        store.lease(&job.id).await.expect("lease").map(|l| l.owner),
        Some("B".into())
    );
    let at = store.now_ms();
    let a: Result<(), JobStoreError> =
        job_txn!(&store, t => async { t.check_lease(&job.id, "A", at).await });
    assert!(
        matches!(a, Err(JobStoreError::LeaseLost(_))),
        "A is fenced: {a:?}"
    );
    let b: Result<(), JobStoreError> =
        job_txn!(&store, t => async { t.check_lease(&job.id, "B", at).await });
    b.expect("B holds it");
    // A transaction that checked the lease conflicts with a takeover that
    // commits before it.
    let mut t = store.begin().await.expect("begin");
    t.check_lease(&job.id, "B", at).await.expect("B holds it");
    now.fetch_add(20_000, Ordering::SeqCst);
    assert!(
        store
            .take_lease(&job.id, "C", ttl)
            .await
            .expect("C takes over")
    );
    let mut j = t.job_for_update(&job.id).await.expect("job");
    j.name = "stale".into();
    t.put_job(&j).await.expect("put");
    assert!(t.commit().await.is_err(), "stale holder's commit must fail");
    store
        .release_lease(&job.id, "B")
        .await
        .expect("release by non-holder");
    assert_eq!(
        store.lease(&job.id).await.expect("lease").map(|l| l.owner),
        Some("C".into())
    );
    store.release_lease(&job.id, "C").await.expect("release");
    assert!(store.lease(&job.id).await.expect("lease").is_none());
    assert!(
        !store
            .take_lease(&Uuid::new_v4(), "A", ttl)
            .await
            .expect("unknown job")
    );
}

/// Purging deletes every key of the job (in small batches) and nothing else.
pub async fn jobs_purge(kv: Arc<dyn Kv>) {
    let store = JobStore::new(kv);
    let o = owner();
    let job = new_job(&store, &o, 2).await;
    let keep = new_job(&store, &o, 1).await;
    let names: Vec<String> = (0..7).map(|i| format!("/u/stor/{i}")).collect();
    store
        .add_inputs(&job.id, &names, true)
        .await
        .expect("inputs");
    store
        .add_inputs(&keep.id, &names, false)
        .await
        .expect("inputs");
    let node = format!("n-{}", Uuid::new_v4());
    for i in 0..5 {
        let mut t = TaskRecord::map(job.id, 0, format!("/u/stor/{i}"), None, vec![node.clone()]);
        t.state = TaskState::Dispatched;
        t.node = Some(node.clone());
        put_new_task(&store, &t, true).await;
    }
    store
        .take_lease(&job.id, "S", Duration::from_secs(5))
        .await
        .expect("lease");
    assert!(store.purge(&job.id, 2).await.expect("purge"));
    assert!(store.get_job(&job.id).await.expect("get").is_none());
    for range in [
        keys::tasks_range(&job.id),
        keys::inputs_range(&job.id),
        keys::outputs_range(&job.id),
        keys::job_errors_range(&job.id),
        keys::dispatch_range(&node),
    ] {
        assert_eq!(store.count_range(range).await.expect("count"), 0);
    }
    assert!(store.lease(&job.id).await.expect("lease").is_none());
    assert_eq!(
        store.owner_jobs(&o, None, 10).await.expect("owner"),
        vec![keep.id]
    );
    assert!(
        !store
            .live_jobs(None, 100_000)
            .await
            .expect("live")
            .contains(&job.id)
    );
    assert_eq!(store.inputs(&keep.id, 0, 100).await.expect("kept").len(), 7);
    assert!(!store.purge(&job.id, 2).await.expect("purge again"));
}

/// Usage records: per owner, by end time, paged, rewritable, purged by
/// age.
pub async fn jobs_usage_records(kv: Arc<dyn Kv>) {
    let store = JobStore::new(kv);
    let (a, b) = (owner(), owner());
    let job = Uuid::new_v4();
    let rec = |owner: &str, ended_ms: u64, attempt: u32| TaskUsage {
        owner: owner.to_owned(),
        job,
        phase: 0,
        task: Uuid::new_v4(),
        attempt,
        ended_ms,
        wall_ms: 10,
        memory_mb: 1024,
        disk_gb: 8,
        bytes_in: 100,
        bytes_out: 7,
    };
    let mut mine: Vec<TaskUsage> = (0..5).map(|i| rec(&a, 1_000 + i * 1_000, 0)).collect();
    store.record_usage(&mine).await.expect("record");
    store
        .record_usage(&[rec(&b, 2_000, 0)])
        .await
        .expect("record other");
    // Rewriting a record (a retried flush) does not add one.
    store.record_usage(&mine[..1]).await.expect("rewrite");

    let got: Vec<TaskUsage> = store
        .usage(&a, 0, u64::MAX, None, 100)
        .await
        .expect("usage")
        .into_iter()
        .map(|(_, u)| u)
        .collect();
    assert_eq!(got, mine, "one owner's records, oldest first, none of b's");

    // A window is [from, to); pages continue after the last key.
    let first = store
        .usage(&a, 2_000, 5_000, None, 2)
        .await
        .expect("page 1");
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].1.ended_ms, 2_000);
    let after = first.last().map(|(k, _)| k.as_slice());
    let second = store
        .usage(&a, 2_000, 5_000, after, 2)
        .await
        .expect("page 2");
    let ends: Vec<u64> = second.iter().map(|(_, u)| u.ended_ms).collect();
    assert_eq!(ends, vec![4_000]);

    store.purge_usage(&a, 3_000, 1).await.expect("purge");
    mine.drain(..2);
    let left: Vec<TaskUsage> = store
        .usage(&a, 0, u64::MAX, None, 100)
        .await
        .expect("usage after purge")
        .into_iter()
        .map(|(_, u)| u)
        .collect();
    assert_eq!(left, mine);
    let theirs = store.usage(&b, 0, u64::MAX, None, 100).await.expect("b");
    assert_eq!(theirs.len(), 1, "purging one owner leaves the others");
}

/// Memo records: per owner, replaced by a newer one, forgotten only by the
/// task that made them.
pub async fn jobs_memo_records(kv: Arc<dyn Kv>) {
    let store = JobStore::new(kv);
    let (a, ab) = (owner(), owner());
    // `ab` extends `a`: the length prefix keeps their records apart.
    let ab = format!("{a}{ab}");
    let key = [7u8; 32];
    let rec = |task: Uuid| super::MemoRecord {
        job: Uuid::new_v4(),
        task,
        output: format!("/{a}/jobs/x/stor/o.0.{task}"),
        etag: Uuid::new_v4(),
        created_ms: 1,
    };
    assert_eq!(store.memo(&a, &key).await.expect("memo"), None);
    let (t1, t2) = (Uuid::new_v4(), Uuid::new_v4());
    let first = rec(t1);
    job_txn!(&store, t => async { t.put_memo(&a, &key, &first).await }).expect("put");
    assert_eq!(
        store.memo(&a, &key).await.expect("memo"),
        Some(first.clone())
    );
    assert_eq!(
        store.memo(&ab, &key).await.expect("memo"),
        None,
        "per owner"
    );
    assert_eq!(
        store.memo(&a, &[8u8; 32]).await.expect("memo"),
        None,
        "per key"
    );
    let second = rec(t2);
    job_txn!(&store, t => async { t.put_memo(&a, &key, &second).await }).expect("replace");
    // The first task's record is gone already: forgetting it leaves the
    // second's.
    store
        .forget_memo(&a, &key, &t1)
        .await
        .expect("forget stale");
    assert_eq!(store.memo(&a, &key).await.expect("memo"), Some(second));
    store.forget_memo(&a, &key, &t2).await.expect("forget");
    assert_eq!(store.memo(&a, &key).await.expect("memo"), None);
}
