//! Key encoding for every metadata table — the one place that knows byte
//! layouts, shared by all backends (a `meta-tikv` crate reuses it unchanged).
//!
//! Layout (see `shared/spec/metadata-keys.md`): one leading tag byte per
//! table, big-endian integers, random UUIDs (never time-ordered at the front).
//!
//! | key | value |
//! | --- | --- |
//! | `0x10 dk 0x00 s` (s = 0..63) | directory count shard `s` (i64 BE) |
//! | `0x10 dk 0x01 name` | directory entry |
//! | `0x10 dk 0x02 mtime(u64) name` | mtime index of the entries (empty value) |
//! | `0x20 objectid` | shared (snaplinked) object record |
//! | `0x30 nodeid` | storage node |
//! | `0x31 len(u16) scope name` | background worker status (scope: node id or process) |
//! | `0x40 len(u16) nodeid ts(u64) objectid` | GC record: a copy to delete |
//! | `0x50..=0x57` | reserved: jobs |
//! | `0x60..=0x62` | reserved: multipart uploads |
//! | `0x70 login` | account |
//! | `0x71 login 0 subuser 0 md5fp` | SSH key (subuser empty for account keys) |
//! | `0x72 login 0 subuser 0 sha256fp` | index: SHA256 fingerprint → md5 fingerprint |
//! | `0x73 login 0 subuser` | subuser |
//! | `0x74 login 0 role` | RBAC role |
//! | `0x75 login 0 policy` | RBAC policy |
//! | `0x76 access_key_id` | S3 access key (owner login, secret, creation) |
//! | `0x77 login 0 access_key_id` | index: an account's S3 access keys (empty value) |
//!
//! Guarantees (property-tested below): `dk` is a fixed 16 bytes, so names
//! follow it raw with no escaping; entry keys of one directory sort exactly
//! like their names' bytes; a directory's counters and entries form one
//! contiguous key range that holds no key of any other directory. Logins and
//! subuser names never contain NUL (validated by [`crate::path`]), which makes
//! the NUL-terminated account components prefix-free.

use uuid::Uuid;

use crate::kv::KeyRange;

/// Directory table: counters and entries.
pub const TAG_DIR: u8 = 0x10;
/// Shared object records (snaplinks).
pub const TAG_OBJECT: u8 = 0x20;
/// Storage nodes.
pub const TAG_NODE: u8 = 0x30;
/// Background worker status records.
pub const TAG_WORKER: u8 = 0x31;
/// Garbage-collection records.
pub const TAG_GC: u8 = 0x40;
/// Reserved for jobs (`0x50`..=`0x57`); not used yet.
pub const TAG_JOB_RESERVED: u8 = 0x50;
/// Reserved for multipart uploads (`0x60`..=`0x62`); not used yet.
pub const TAG_UPLOAD_RESERVED: u8 = 0x60;
/// Accounts.
pub const TAG_ACCOUNT: u8 = 0x70;
/// SSH keys by md5 fingerprint.
pub const TAG_SSH_KEY: u8 = 0x71;
/// SSH key index by SHA256 fingerprint.
pub const TAG_SSH_KEY_SHA256: u8 = 0x72;
/// Subusers.
pub const TAG_SUBUSER: u8 = 0x73;
/// RBAC role records.
pub const TAG_ROLE: u8 = 0x74;
/// RBAC policy records.
pub const TAG_POLICY: u8 = 0x75;
/// S3 access keys by access key id (looked up on every signed S3 request,
/// before the account is known).
pub const TAG_S3_KEY: u8 = 0x76;
/// Index of an account's S3 access keys (for listing them).
pub const TAG_S3_KEY_BY_LOGIN: u8 = 0x77;

/// Length of a directory key.
pub const DK_LEN: usize = 16;
/// Number of count shards per directory. Writers that create or remove
/// names in one directory at once conflict when they hit the same shard:
/// 2,000 memoized tasks snaplinking into one job directory ran
/// 2,900-3,375/s with 16 shards and 3,000-4,650/s (median 3,800) with 64
/// (issue 17; runs on one VM, which vary a lot). A directory's count is
/// the sum of its shards, so counts written under another shard count stay
/// right (a shard may go negative; the sum does not).
pub const COUNT_SHARDS: u8 = 64;

const DIR_COUNTS: u8 = 0x00;
const DIR_ENTRIES: u8 = 0x01;
const DIR_MTIME: u8 = 0x02;

/// A directory key: the first 16 bytes of blake3 over the account and the
/// directory's path segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dk(pub [u8; DK_LEN]);

/// Directory key of the directory `/login/seg...` (`segments` empty for the
/// account root). Every component is length-prefixed so no two different
/// paths hash the same input.
pub fn dk<S: AsRef<str>>(login: &str, segments: &[S]) -> Dk {
    let mut h = blake3::Hasher::new();
    h.update(b"tidepool.dk.v1\0");
    let mut part = |b: &[u8]| {
        // Lengths are bounded by path validation far below u32::MAX.
        h.update(&(b.len() as u32).to_be_bytes());
        h.update(b);
    };
    part(login.as_bytes());
    for s in segments {
        part(s.as_ref().as_bytes());
    }
    let hash = h.finalize();
    let mut out = [0u8; DK_LEN];
    out.copy_from_slice(&hash.as_bytes()[..DK_LEN]);
    Dk(out)
}

fn dir_prefix(dk: &Dk, sub: u8) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + DK_LEN + 64);
    k.push(TAG_DIR);
    k.extend_from_slice(&dk.0);
    k.push(sub);
    k
}

/// Key of one directory entry.
pub fn entry_key(dk: &Dk, name: &str) -> Vec<u8> {
    let mut k = dir_prefix(dk, DIR_ENTRIES);
    k.extend_from_slice(name.as_bytes());
    k
}

/// The name part of an entry key of `dk`, if `key` is one.
pub fn entry_name<'a>(dk: &Dk, key: &'a [u8]) -> Option<&'a [u8]> {
    let p = 1 + DK_LEN + 1;
    if key.len() >= p && key[0] == TAG_DIR && key[1..=DK_LEN] == dk.0 && key[p - 1] == DIR_ENTRIES {
        Some(&key[p..])
    } else {
        None
    }
}

/// All entries of a directory.
pub fn entries_range(dk: &Dk) -> KeyRange {
    KeyRange::new(dir_prefix(dk, DIR_ENTRIES), dir_prefix(dk, DIR_ENTRIES + 1))
}

/// Everything a directory owns: counters and entries (one contiguous range).
pub fn dir_range(dk: &Dk) -> KeyRange {
    let mut start = vec![TAG_DIR];
    start.extend_from_slice(&dk.0);
    KeyRange::prefix(&start)
}

/// Key of an entry's mtime index record.
pub fn mtime_key(dk: &Dk, mtime_ms: u64, name: &str) -> Vec<u8> {
    let mut k = dir_prefix(dk, DIR_MTIME);
    k.extend_from_slice(&mtime_ms.to_be_bytes());
    k.extend_from_slice(name.as_bytes());
    k
}

/// Smallest mtime index key with this mtime (any name sorts at or after it).
pub fn mtime_floor(dk: &Dk, mtime_ms: u64) -> Vec<u8> {
    let mut k = dir_prefix(dk, DIR_MTIME);
    k.extend_from_slice(&mtime_ms.to_be_bytes());
    k
}

/// The mtime index of a directory.
pub fn mtime_range(dk: &Dk) -> KeyRange {
    KeyRange::new(dir_prefix(dk, DIR_MTIME), dir_prefix(dk, DIR_MTIME + 1))
}

/// `(mtime, name)` of an mtime index key of `dk`.
pub fn mtime_parts<'a>(dk: &Dk, key: &'a [u8]) -> Option<(u64, &'a [u8])> {
    let p = 1 + DK_LEN + 1;
    if key.len() >= p + 8 && key[0] == TAG_DIR && key[1..=DK_LEN] == dk.0 && key[p - 1] == DIR_MTIME
    {
        let mtime = u64::from_be_bytes(key[p..p + 8].try_into().ok()?);
        Some((mtime, &key[p + 8..]))
    } else {
        None
    }
}

/// Key of count shard `shard` (taken modulo [`COUNT_SHARDS`]).
pub fn count_key(dk: &Dk, shard: u8) -> Vec<u8> {
    let mut k = dir_prefix(dk, DIR_COUNTS);
    k.push(shard % COUNT_SHARDS);
    k
}

/// All count shards of a directory.
pub fn counts_range(dk: &Dk) -> KeyRange {
    KeyRange::new(dir_prefix(dk, DIR_COUNTS), dir_prefix(dk, DIR_ENTRIES))
}

/// The count shard an entry name belongs to: stable, spread by hash so
/// concurrent PUTs of different names rarely touch the same counter.
pub fn count_shard(name: &str) -> u8 {
    blake3::hash(name.as_bytes()).as_bytes()[0] % COUNT_SHARDS
}

/// Key of a shared object record.
pub fn object_key(id: &Uuid) -> Vec<u8> {
    let mut k = vec![TAG_OBJECT];
    k.extend_from_slice(id.as_bytes());
    k
}

/// Key of a storage node record.
pub fn node_key(node: &str) -> Vec<u8> {
    let mut k = vec![TAG_NODE];
    k.extend_from_slice(node.as_bytes());
    k
}

/// All storage node records.
pub fn nodes_range() -> KeyRange {
    KeyRange::new(vec![TAG_NODE], vec![TAG_NODE + 1])
}

/// Every directory entry of every account (with the counters and mtime
/// index rows between them: filter with [`any_entry_name`]).
pub fn all_directories_range() -> KeyRange {
    KeyRange::new(vec![TAG_DIR], vec![TAG_DIR + 1])
}

/// The name part of `key` if it is a directory entry key of any directory.
pub fn any_entry_name(key: &[u8]) -> Option<&[u8]> {
    let p = 1 + DK_LEN + 1;
    (key.len() >= p && key[0] == TAG_DIR && key[p - 1] == DIR_ENTRIES).then(|| &key[p..])
}

/// Key of a background worker's status record. Scopes and names are
/// validated to at most 255 bytes without NUL.
pub fn worker_key(scope: &str, name: &str) -> Vec<u8> {
    let mut k = vec![TAG_WORKER];
    k.extend_from_slice(&(scope.len() as u16).to_be_bytes());
    k.extend_from_slice(scope.as_bytes());
    k.extend_from_slice(name.as_bytes());
    k
}

/// All worker status records, by scope then name.
pub fn workers_range() -> KeyRange {
    KeyRange::new(vec![TAG_WORKER], vec![TAG_WORKER + 1])
}

fn gc_node_prefix(node: &str) -> Vec<u8> {
    let mut k = vec![TAG_GC];
    // Node ids are validated to at most 255 bytes; the length prefix keeps
    // one node's records contiguous and apart from every other node's.
    k.extend_from_slice(&(node.len() as u16).to_be_bytes());
    k.extend_from_slice(node.as_bytes());
    k
}

/// Key of a GC record (copy of `object` on `node`, recorded at `ts_ms`).
pub fn gc_key(node: &str, ts_ms: u64, object: &Uuid) -> Vec<u8> {
    let mut k = gc_node_prefix(node);
    k.extend_from_slice(&ts_ms.to_be_bytes());
    k.extend_from_slice(object.as_bytes());
    k
}

/// All GC records of one node, oldest first.
pub fn gc_range(node: &str) -> KeyRange {
    KeyRange::prefix(&gc_node_prefix(node))
}

/// Key of an account record.
pub fn account_key(login: &str) -> Vec<u8> {
    let mut k = vec![TAG_ACCOUNT];
    k.extend_from_slice(login.as_bytes());
    k
}

/// All account records.
pub fn accounts_range() -> KeyRange {
    KeyRange::new(vec![TAG_ACCOUNT], vec![TAG_ACCOUNT + 1])
}

/// The login of an account key.
pub fn account_login(key: &[u8]) -> Option<&[u8]> {
    match key.split_first() {
        Some((&TAG_ACCOUNT, rest)) => Some(rest),
        _ => None,
    }
}

fn principal_prefix(tag: u8, login: &str, subuser: Option<&str>) -> Vec<u8> {
    let mut k = vec![tag];
    k.extend_from_slice(login.as_bytes());
    k.push(0);
    k.extend_from_slice(subuser.unwrap_or("").as_bytes());
    k.push(0);
    k
}

/// Key of an SSH key record by md5 fingerprint.
pub fn ssh_key_key(login: &str, subuser: Option<&str>, md5_fp: &str) -> Vec<u8> {
    let mut k = principal_prefix(TAG_SSH_KEY, login, subuser);
    k.extend_from_slice(md5_fp.as_bytes());
    k
}

/// All SSH keys of one account (`subuser` None) or one subuser.
pub fn ssh_keys_range(login: &str, subuser: Option<&str>) -> KeyRange {
    KeyRange::prefix(&principal_prefix(TAG_SSH_KEY, login, subuser))
}

/// Key of the SHA256 → md5 fingerprint index entry.
pub fn ssh_key_sha256_key(login: &str, subuser: Option<&str>, sha256_fp: &str) -> Vec<u8> {
    let mut k = principal_prefix(TAG_SSH_KEY_SHA256, login, subuser);
    k.extend_from_slice(sha256_fp.as_bytes());
    k
}

/// Key of a subuser record.
pub fn subuser_key(login: &str, subuser: &str) -> Vec<u8> {
    let mut k = vec![TAG_SUBUSER];
    k.extend_from_slice(login.as_bytes());
    k.push(0);
    k.extend_from_slice(subuser.as_bytes());
    k
}

/// All subusers of an account.
pub fn subusers_range(login: &str) -> KeyRange {
    let mut k = vec![TAG_SUBUSER];
    k.extend_from_slice(login.as_bytes());
    k.push(0);
    KeyRange::prefix(&k)
}

fn named_key(tag: u8, login: &str, name: &str) -> Vec<u8> {
    let mut k = vec![tag];
    k.extend_from_slice(login.as_bytes());
    k.push(0);
    k.extend_from_slice(name.as_bytes());
    k
}

fn named_range(tag: u8, login: &str) -> KeyRange {
    KeyRange::prefix(&named_key(tag, login, ""))
}

/// Key of a role record.
pub fn role_key(login: &str, name: &str) -> Vec<u8> {
    named_key(TAG_ROLE, login, name)
}

/// All roles of an account.
pub fn roles_range(login: &str) -> KeyRange {
    named_range(TAG_ROLE, login)
}

/// Key of a policy record.
pub fn policy_key(login: &str, name: &str) -> Vec<u8> {
    named_key(TAG_POLICY, login, name)
}

/// All policies of an account.
pub fn policies_range(login: &str) -> KeyRange {
    named_range(TAG_POLICY, login)
}

/// Key of an S3 access key record.
pub fn s3_key_key(access_key_id: &str) -> Vec<u8> {
    let mut k = vec![TAG_S3_KEY];
    k.extend_from_slice(access_key_id.as_bytes());
    k
}

/// Index key listing `access_key_id` under its owner.
pub fn s3_key_index_key(login: &str, access_key_id: &str) -> Vec<u8> {
    named_key(TAG_S3_KEY_BY_LOGIN, login, access_key_id)
}

/// All index keys of an account's S3 access keys.
pub fn s3_key_index_range(login: &str) -> KeyRange {
    named_range(TAG_S3_KEY_BY_LOGIN, login)
}

/// The access key id of an index key of `login`.
pub fn s3_key_index_id<'a>(login: &str, key: &'a [u8]) -> Option<&'a [u8]> {
    key.strip_prefix(named_key(TAG_S3_KEY_BY_LOGIN, login, "").as_slice())
}

/// The smallest key greater than every key starting with `prefix`, or `None`
/// when there is none (the prefix is all `0xff`).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut out = prefix.to_vec();
    while let Some(last) = out.pop() {
        if last < 0xff {
            out.push(last + 1);
            return Some(out);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seg() -> impl Strategy<Value = String> {
        "[^/\u{0}]{1,12}"
    }

    proptest! {
        #[test]
        fn entry_keys_sort_like_names(a in any::<String>(), b in any::<String>(),
                                      login in "[a-z]{1,8}", dir in prop::collection::vec(seg(), 0..4)) {
            let d = dk(&login, &dir);
            let (ka, kb) = (entry_key(&d, &a), entry_key(&d, &b));
            prop_assert_eq!(ka.cmp(&kb), a.as_bytes().cmp(b.as_bytes()));
            prop_assert_eq!(entry_name(&d, &ka), Some(a.as_bytes()));
            prop_assert!(entries_range(&d).contains(&ka));
            prop_assert!(dir_range(&d).contains(&ka));
        }

        #[test]
        fn mtime_keys_sort_by_time_then_name(t1 in any::<u64>(), t2 in any::<u64>(),
                                             a in any::<String>(), b in any::<String>()) {
            let d = dk("alice", &["stor"]);
            let (ka, kb) = (mtime_key(&d, t1, &a), mtime_key(&d, t2, &b));
            prop_assert_eq!(ka.cmp(&kb), (t1, a.as_bytes()).cmp(&(t2, b.as_bytes())));
            prop_assert_eq!(mtime_parts(&d, &ka), Some((t1, a.as_bytes())));
            prop_assert!(mtime_range(&d).contains(&ka));
            prop_assert!(dir_range(&d).contains(&ka));
            prop_assert!(!entries_range(&d).contains(&ka));
            prop_assert!(mtime_floor(&d, t1) <= ka);
        }

        #[test]
        fn directories_do_not_interleave(login in "[a-z]{1,8}",
                                         d1 in prop::collection::vec(seg(), 0..4),
                                         d2 in prop::collection::vec(seg(), 0..4),
                                         name in any::<String>(), shard in 0u8..16) {
            prop_assume!(d1 != d2);
            let (k1, k2) = (dk(&login, &d1), dk(&login, &d2));
            prop_assert_ne!(k1, k2);
            let r1 = dir_range(&k1);
            prop_assert!(!r1.contains(&entry_key(&k2, &name)));
            prop_assert!(!r1.contains(&count_key(&k2, shard)));
            prop_assert!(r1.contains(&count_key(&k1, shard)));
            prop_assert!(counts_range(&k1).contains(&count_key(&k1, shard)));
            prop_assert!(!entries_range(&k1).contains(&count_key(&k1, shard)));
            prop_assert!(!counts_range(&k1).contains(&entry_key(&k1, &name)));
            prop_assert!(!r1.contains(&mtime_key(&k2, 7, &name)));
        }

        #[test]
        fn gc_records_of_a_node_are_contiguous(n1 in "[a-z0-9-]{1,20}", n2 in "[a-z0-9-]{1,20}",
                                               ts in any::<u64>(), ts2 in any::<u64>(), id in any::<u128>()) {
            prop_assume!(n1 != n2);
            let id = Uuid::from_u128(id);
            prop_assert!(gc_range(&n1).contains(&gc_key(&n1, ts, &id)));
            prop_assert!(!gc_range(&n1).contains(&gc_key(&n2, ts, &id)));
            prop_assert_eq!(gc_key(&n1, ts, &id).cmp(&gc_key(&n1, ts2, &id)), ts.cmp(&ts2));
        }

        #[test]
        fn ssh_key_ranges_are_per_principal(login in "[a-z]{1,8}", l2 in "[a-z]{1,8}",
                                            sub in proptest::option::of("[a-z]{1,8}"), fp in "[0-9a-f:]{1,47}") {
            let k = ssh_key_key(&login, sub.as_deref(), &fp);
            prop_assert!(ssh_keys_range(&login, sub.as_deref()).contains(&k));
            if l2 != login {
                prop_assert!(!ssh_keys_range(&l2, sub.as_deref()).contains(&k));
            }
            // Account keys and subuser keys never mix.
            let other = if sub.is_some() { None } else { Some("x") };
            prop_assert!(!ssh_keys_range(&login, other).contains(&k));
        }

        #[test]
        fn successor_bounds_prefix(p in prop::collection::vec(any::<u8>(), 0..6), tail in prop::collection::vec(any::<u8>(), 0..6)) {
            let mut k = p.clone();
            k.extend_from_slice(&tail);
            match prefix_successor(&p) {
                Some(s) => prop_assert!(k < s),
                None => prop_assert!(p.iter().all(|&b| b == 0xff)),
            }
        }
    }
}

// ---------------------------------------------------------------- jobs
//
// Job tables (tags 0x50..=0x57). Job and task ids are random v4 UUIDs, so
// different jobs spread over the key space; every per-job table starts with
// `tag jobid`, so one job's rows of one table are one contiguous range that
// can be scanned in pages and deleted in batches when the job is archived.
//
// | key | value |
// | --- | --- |
// | `0x50 jobid` | job record |
// | `0x50 jobid 0x01` | supervisor lease |
// | `0x50 jobid 0x02` | input head (input count, end of input) |
// | `0x51 jobid phase(u32) taskid` | task |
// | `0x52 len(u16) nodeid jobid taskid` | per-node dispatch queue entry |
// | `0x53 jobid 0x00 seq(u64)` | job input, in submission order |
// | `0x53 jobid 0x01 phase(u32) reducer(u32) seq(u64)` | reducer input |
// | `0x54 jobid phase(u32) taskid seq(u32)` | committed task output |
// | `0x55 jobid seq(u64)` | job error, in the order recorded |
// | `0x56 jobid` | live-job index (jobs not yet archived) |
// | `0x57 len(u16) owner jobid` | per-owner job index |
// | `0x58 objectid jobid taskid` | a map task's pin on its input's copies |
// | `0x59 len(u16) owner ended_ms(u64) taskid attempt(u32)` | one task attempt's metered usage |
// | `0x5a len(u16) owner memokey(32)` | a reproducible task's result, for reuse |

/// Job records and supervisor leases.
pub const TAG_JOB: u8 = 0x50;
/// Pins: an unfinished map task's hold on its input object's copies.
pub const TAG_PIN: u8 = 0x58;

/// Key of the pin of `task` (of `job`) on object `object`.
pub fn pin_key(object: &Uuid, job: &Uuid, task: &Uuid) -> Vec<u8> {
    let mut k = tag_id(TAG_PIN, object);
    k.extend_from_slice(job.as_bytes());
    k.extend_from_slice(task.as_bytes());
    k
}

/// Every pin on object `object`.
pub fn pins_of(object: &Uuid) -> KeyRange {
    KeyRange::prefix(&tag_id(TAG_PIN, object))
}
/// Tasks.
pub const TAG_TASK: u8 = 0x51;
/// Per-node dispatch queue.
pub const TAG_DISPATCH: u8 = 0x52;
/// Job inputs and reducer inputs.
pub const TAG_JOB_INPUT: u8 = 0x53;
/// Committed task outputs.
pub const TAG_TASK_OUTPUT: u8 = 0x54;
/// Job errors.
pub const TAG_JOB_ERROR: u8 = 0x55;
/// Live-job index (what supervisors scan for work).
pub const TAG_LIVE_JOB: u8 = 0x56;
/// Per-owner job index.
pub const TAG_OWNER_JOB: u8 = 0x57;

fn tag_id(tag: u8, id: &Uuid) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + 16 + 32);
    k.push(tag);
    k.extend_from_slice(id.as_bytes());
    k
}

/// Key of a job record.
pub fn job_key(job: &Uuid) -> Vec<u8> {
    tag_id(TAG_JOB, job)
}

/// Key of a job's supervisor lease.
pub fn job_lease_key(job: &Uuid) -> Vec<u8> {
    let mut k = tag_id(TAG_JOB, job);
    k.push(0x01);
    k
}

/// Key of a job's input head (`0x50 jobid 0x02`): the input counter and
/// end-of-input flag, kept apart from the job record so that appending
/// inputs does not conflict with the supervisor's writes of the record.
pub fn job_input_head_key(job: &Uuid) -> Vec<u8> {
    let mut k = tag_id(TAG_JOB, job);
    k.push(0x02);
    k
}

/// Key of a task.
pub fn task_key(job: &Uuid, phase: u32, task: &Uuid) -> Vec<u8> {
    let mut k = tag_id(TAG_TASK, job);
    k.extend_from_slice(&phase.to_be_bytes());
    k.extend_from_slice(task.as_bytes());
    k
}

/// All tasks of a job, phase by phase.
pub fn tasks_range(job: &Uuid) -> KeyRange {
    KeyRange::prefix(&tag_id(TAG_TASK, job))
}

/// All tasks of one phase of a job.
pub fn phase_tasks_range(job: &Uuid, phase: u32) -> KeyRange {
    let mut k = tag_id(TAG_TASK, job);
    k.extend_from_slice(&phase.to_be_bytes());
    KeyRange::prefix(&k)
}

fn dispatch_node_prefix(node: &str) -> Vec<u8> {
    let mut k = vec![TAG_DISPATCH];
    // Length-prefixed like GC records: one node's queue never interleaves
    // with another node's whose id extends this one.
    k.extend_from_slice(&(node.len() as u16).to_be_bytes());
    k.extend_from_slice(node.as_bytes());
    k
}

/// Key of a dispatch queue entry: `task` of `job` runs on `node`.
pub fn dispatch_key(node: &str, job: &Uuid, task: &Uuid) -> Vec<u8> {
    let mut k = dispatch_node_prefix(node);
    k.extend_from_slice(job.as_bytes());
    k.extend_from_slice(task.as_bytes());
    k
}

/// A node's whole dispatch queue.
pub fn dispatch_range(node: &str) -> KeyRange {
    KeyRange::prefix(&dispatch_node_prefix(node))
}

/// `(job, task)` of a dispatch key of `node`.
pub fn dispatch_parts(node: &str, key: &[u8]) -> Option<(Uuid, Uuid)> {
    let rest = key.strip_prefix(dispatch_node_prefix(node).as_slice())?;
    if rest.len() != 32 {
        return None;
    }
    let job = Uuid::from_slice(&rest[..16]).ok()?;
    let task = Uuid::from_slice(&rest[16..]).ok()?;
    Some((job, task))
}

/// Key of job input number `seq`.
pub fn job_input_key(job: &Uuid, seq: u64) -> Vec<u8> {
    let mut k = tag_id(TAG_JOB_INPUT, job);
    k.push(0x00);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Job inputs with sequence numbers `from..`.
pub fn job_inputs_from(job: &Uuid, from: u64) -> KeyRange {
    let mut end = tag_id(TAG_JOB_INPUT, job);
    end.push(0x01);
    KeyRange::new(job_input_key(job, from), end)
}

/// The sequence number of a job input key.
pub fn job_input_seq(key: &[u8]) -> Option<u64> {
    if key.len() != 26 || key[0] != TAG_JOB_INPUT || key[17] != 0x00 {
        return None;
    }
    Some(u64::from_be_bytes(key[18..].try_into().ok()?))
}

fn reducer_prefix(job: &Uuid, phase: u32, reducer: u32) -> Vec<u8> {
    let mut k = tag_id(TAG_JOB_INPUT, job);
    k.push(0x01);
    k.extend_from_slice(&phase.to_be_bytes());
    k.extend_from_slice(&reducer.to_be_bytes());
    k
}

/// Key of reducer input number `seq` of reducer `reducer` in `phase`.
pub fn reducer_input_key(job: &Uuid, phase: u32, reducer: u32, seq: u64) -> Vec<u8> {
    let mut k = reducer_prefix(job, phase, reducer);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Inputs of one reducer with sequence numbers `from..`.
pub fn reducer_inputs_from(job: &Uuid, phase: u32, reducer: u32, from: u64) -> KeyRange {
    let end = prefix_successor(&reducer_prefix(job, phase, reducer))
        .unwrap_or_else(|| vec![TAG_JOB_INPUT + 1]);
    KeyRange::new(reducer_input_key(job, phase, reducer, from), end)
}

/// The sequence number of a reducer input key.
pub fn reducer_input_seq(key: &[u8]) -> Option<u64> {
    if key.len() != 34 || key[0] != TAG_JOB_INPUT || key[17] != 0x01 {
        return None;
    }
    Some(u64::from_be_bytes(key[26..].try_into().ok()?))
}

/// All inputs (job and reducer) of a job.
pub fn inputs_range(job: &Uuid) -> KeyRange {
    KeyRange::prefix(&tag_id(TAG_JOB_INPUT, job))
}

/// Key of output `seq` of a committed task.
pub fn task_output_key(job: &Uuid, phase: u32, task: &Uuid, seq: u32) -> Vec<u8> {
    let mut k = tag_id(TAG_TASK_OUTPUT, job);
    k.extend_from_slice(&phase.to_be_bytes());
    k.extend_from_slice(task.as_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Committed outputs of every task of `phase`.
pub fn phase_outputs_range(job: &Uuid, phase: u32) -> KeyRange {
    let mut k = tag_id(TAG_TASK_OUTPUT, job);
    k.extend_from_slice(&phase.to_be_bytes());
    KeyRange::prefix(&k)
}

/// Committed outputs of every task of a job.
pub fn outputs_range(job: &Uuid) -> KeyRange {
    KeyRange::prefix(&tag_id(TAG_TASK_OUTPUT, job))
}

/// Key of job error number `seq`.
pub fn job_error_key(job: &Uuid, seq: u64) -> Vec<u8> {
    let mut k = tag_id(TAG_JOB_ERROR, job);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// All errors of a job, oldest first.
pub fn job_errors_range(job: &Uuid) -> KeyRange {
    KeyRange::prefix(&tag_id(TAG_JOB_ERROR, job))
}

/// Key of a job's live-index entry.
pub fn live_job_key(job: &Uuid) -> Vec<u8> {
    tag_id(TAG_LIVE_JOB, job)
}

/// The whole live-job index.
pub fn live_jobs_range() -> KeyRange {
    KeyRange::new(vec![TAG_LIVE_JOB], vec![TAG_LIVE_JOB + 1])
}

/// The job id of a live-index key.
pub fn live_job_id(key: &[u8]) -> Option<Uuid> {
    match key.split_first() {
        Some((&TAG_LIVE_JOB, rest)) => Uuid::from_slice(rest).ok(),
        _ => None,
    }
}

fn owner_prefix(owner: &str) -> Vec<u8> {
    let mut k = vec![TAG_OWNER_JOB];
    k.extend_from_slice(&(owner.len() as u16).to_be_bytes());
    k.extend_from_slice(owner.as_bytes());
    k
}

/// Key of a per-owner index entry.
pub fn owner_job_key(owner: &str, job: &Uuid) -> Vec<u8> {
    let mut k = owner_prefix(owner);
    k.extend_from_slice(job.as_bytes());
    k
}

/// All jobs of one owner, by job id.
pub fn owner_jobs_range(owner: &str) -> KeyRange {
    KeyRange::prefix(&owner_prefix(owner))
}

/// The job id of a per-owner index key of `owner`.
pub fn owner_job_id(owner: &str, key: &[u8]) -> Option<Uuid> {
    let rest = key.strip_prefix(owner_prefix(owner).as_slice())?;
    Uuid::from_slice(rest).ok()
}

/// Metered usage of task attempts, per owner by end time.
pub const TAG_TASK_USAGE: u8 = 0x59;

fn usage_owner_prefix(owner: &str) -> Vec<u8> {
    let mut k = vec![TAG_TASK_USAGE];
    // Length-prefixed: one owner's records never interleave with those of
    // an owner whose login extends this one.
    k.extend_from_slice(&(owner.len() as u16).to_be_bytes());
    k.extend_from_slice(owner.as_bytes());
    k
}

/// Key of the usage record of one task attempt of `owner` that ended at
/// `ended_ms`. Owner first, so metering one account reads one range and
/// different accounts' writes spread over the key space.
pub fn task_usage_key(owner: &str, ended_ms: u64, task: &Uuid, attempt: u32) -> Vec<u8> {
    let mut k = usage_owner_prefix(owner);
    k.extend_from_slice(&ended_ms.to_be_bytes());
    k.extend_from_slice(task.as_bytes());
    k.extend_from_slice(&attempt.to_be_bytes());
    k
}

/// Usage records of `owner` for attempts that ended in `[from_ms, to_ms)`.
pub fn task_usage_range(owner: &str, from_ms: u64, to_ms: u64) -> KeyRange {
    let mut start = usage_owner_prefix(owner);
    start.extend_from_slice(&from_ms.to_be_bytes());
    let mut end = usage_owner_prefix(owner);
    end.extend_from_slice(&to_ms.to_be_bytes());
    KeyRange::new(start, end)
}

/// Memoized task results, per owner by memo key.
pub const TAG_MEMO: u8 = 0x5a;

/// Key of `owner`'s memo record for the 32-byte memo key `memo`
/// (length-prefixed owner, as the usage records: one account's records
/// never interleave with another's).
pub fn memo_key(owner: &str, memo: &[u8; 32]) -> Vec<u8> {
    let mut k = vec![TAG_MEMO];
    k.extend_from_slice(&(owner.len() as u16).to_be_bytes());
    k.extend_from_slice(owner.as_bytes());
    k.extend_from_slice(memo);
    k
}

#[cfg(test)]
mod job_key_tests {
    use super::*;
    use proptest::prelude::*;

    fn uuid() -> impl Strategy<Value = Uuid> {
        any::<u128>().prop_map(Uuid::from_u128)
    }

    proptest! {
        #[test]
        fn usage_ranges_hold_exactly_one_owners_records_in_time(
            owner in "[a-z]{1,6}", other in "[a-z]{1,6}", t in any::<u64>(),
            from in any::<u64>(), to in any::<u64>(), task in uuid(), attempt in any::<u32>(),
        ) {
            let k = task_usage_key(&owner, t, &task, attempt);
            let r = task_usage_range(&owner, from, to);
            prop_assert_eq!(r.contains(&k), from <= t && t < to);
            if other != owner {
                let all = task_usage_range(&other, 0, u64::MAX);
                prop_assert!(!all.contains(&k));
            }
        }

        #[test]
        fn inputs_sort_by_seq_and_stay_in_their_job(j in uuid(), j2 in uuid(), a in any::<u64>(), b in any::<u64>(), from in any::<u64>()) {
            prop_assume!(j != j2);
            let (ka, kb) = (job_input_key(&j, a), job_input_key(&j, b));
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
            prop_assert_eq!(job_input_seq(&ka), Some(a));
            prop_assert_eq!(job_inputs_from(&j, from).contains(&ka), a >= from);
            prop_assert!(!job_inputs_from(&j2, 0).contains(&ka));
            prop_assert!(inputs_range(&j).contains(&ka));
            // Reducer inputs never show up among job inputs.
            prop_assert!(!job_inputs_from(&j, 0).contains(&reducer_input_key(&j, 0, 0, a)));
        }

        #[test]
        fn reducer_inputs_are_per_reducer(j in uuid(), p in any::<u32>(), r in any::<u32>(), r2 in any::<u32>(),
                                          a in any::<u64>(), b in any::<u64>()) {
            let ka = reducer_input_key(&j, p, r, a);
            prop_assert_eq!(ka.cmp(&reducer_input_key(&j, p, r, b)), a.cmp(&b));
            prop_assert_eq!(reducer_input_seq(&ka), Some(a));
            prop_assert!(reducer_inputs_from(&j, p, r, 0).contains(&ka));
            prop_assert_eq!(reducer_inputs_from(&j, p, r2, 0).contains(&ka), r == r2);
            prop_assert_eq!(reducer_inputs_from(&j, p, r, b).contains(&ka), a >= b);
        }

        #[test]
        fn tasks_and_outputs_group_by_phase(j in uuid(), j2 in uuid(), p in any::<u32>(), p2 in any::<u32>(),
                                            t in uuid(), s in any::<u32>(), s2 in any::<u32>()) {
            prop_assume!(j != j2);
            let tk = task_key(&j, p, &t);
            prop_assert!(tasks_range(&j).contains(&tk));
            prop_assert!(!tasks_range(&j2).contains(&tk));
            prop_assert_eq!(phase_tasks_range(&j, p2).contains(&tk), p == p2);
            prop_assert!(task_key(&j, p.min(p2), &t) <= task_key(&j, p.max(p2), &t));
            let ok = task_output_key(&j, p, &t, s);
            prop_assert_eq!(ok.cmp(&task_output_key(&j, p, &t, s2)), s.cmp(&s2));
            prop_assert_eq!(phase_outputs_range(&j, p2).contains(&ok), p == p2);
            prop_assert!(outputs_range(&j).contains(&ok));
            prop_assert!(!outputs_range(&j2).contains(&ok));
        }

        #[test]
        fn errors_sort_by_seq(j in uuid(), a in any::<u64>(), b in any::<u64>()) {
            let ka = job_error_key(&j, a);
            prop_assert_eq!(ka.cmp(&job_error_key(&j, b)), a.cmp(&b));
            prop_assert!(job_errors_range(&j).contains(&ka));
        }

        #[test]
        fn dispatch_and_owner_indexes_are_per_principal(n1 in "[a-z0-9-]{1,20}", n2 in "[a-z0-9-]{1,20}",
                                                        j in uuid(), t in uuid()) {
            prop_assume!(n1 != n2);
            let d = dispatch_key(&n1, &j, &t);
            prop_assert!(dispatch_range(&n1).contains(&d));
            prop_assert!(!dispatch_range(&n2).contains(&d));
            prop_assert_eq!(dispatch_parts(&n1, &d), Some((j, t)));
            prop_assert_eq!(dispatch_parts(&n2, &d), None);
            let o = owner_job_key(&n1, &j);
            prop_assert!(owner_jobs_range(&n1).contains(&o));
            prop_assert!(!owner_jobs_range(&n2).contains(&o));
            prop_assert_eq!(owner_job_id(&n1, &o), Some(j));
            prop_assert_eq!(live_job_id(&live_job_key(&j)), Some(j));
            prop_assert!(live_jobs_range().contains(&live_job_key(&j)));
            prop_assert!(job_lease_key(&j) > job_key(&j));
        }
    }
}
