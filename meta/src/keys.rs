//! Key encoding for every metadata table — the one place that knows byte
//! layouts, shared by all backends (a `meta-tikv` crate reuses it unchanged).
//!
//! Layout (see `shared/spec/metadata-keys.md`): one leading tag byte per
//! table, big-endian integers, random UUIDs (never time-ordered at the front).
//!
//! | key | value |
//! | --- | --- |
//! | `0x10 dk 0x00 s` (s = 0..15) | directory count shard `s` (i64 BE) |
//! | `0x10 dk 0x01 name` | directory entry |
//! | `0x10 dk 0x02 mtime(u64) name` | mtime index of the entries (empty value) |
//! | `0x20 objectid` | shared (snaplinked) object record |
//! | `0x30 nodeid` | storage node |
//! | `0x40 len(u16) nodeid ts(u64) objectid` | GC record: a copy to delete |
//! | `0x50..=0x57` | reserved: jobs |
//! | `0x60..=0x62` | reserved: multipart uploads |
//! | `0x70 login` | account |
//! | `0x71 login 0 subuser 0 md5fp` | SSH key (subuser empty for account keys) |
//! | `0x72 login 0 subuser 0 sha256fp` | index: SHA256 fingerprint → md5 fingerprint |
//! | `0x73 login 0 subuser` | subuser |
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

/// Length of a directory key.
pub const DK_LEN: usize = 16;
/// Number of count shards per directory.
pub const COUNT_SHARDS: u8 = 16;

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

/// Encode a counter value.
pub fn encode_count(n: i64) -> Vec<u8> {
    n.to_be_bytes().to_vec()
}

/// Decode a counter value (`None` if malformed).
pub fn decode_count(v: &[u8]) -> Option<i64> {
    Some(i64::from_be_bytes(v.try_into().ok()?))
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

    #[test]
    fn count_round_trip() {
        for n in [0i64, 1, -1, i64::MAX] {
            assert_eq!(decode_count(&encode_count(n)), Some(n));
        }
        assert_eq!(decode_count(&[1, 2]), None);
    }
}
