//! Public value types of the namespace: entries, objects, conditions, listing
//! options, accounts, keys, storage nodes and GC records.
//!
//! Entries, accounts, keys and nodes are stored as these types' serde (JSON)
//! form behind a one-byte format version (see `records`), so fields added
//! later must carry `#[serde(default)]`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A storage node's id (at most 255 bytes).
pub type NodeId = String;

/// Stored headers: `m-*`, `role-tag`, CORS, `cache-control`, ... (lowercase
/// names, values verbatim).
pub type Headers = BTreeMap<String, String>;

/// The object-specific part of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectInfo {
    /// The object's id; also its etag. Shared by snaplinked names.
    pub object_id: Uuid,
    /// Size in bytes.
    pub size: u64,
    /// Base64 MD5 of the bytes.
    pub content_md5: String,
    /// Hex blake3 of the bytes.
    pub blake3: String,
    /// Content type returned on GET/HEAD.
    pub content_type: String,
    /// Storage nodes holding a copy.
    pub copies: Vec<NodeId>,
    /// Requested number of copies.
    pub durability: u8,
    /// True once the object id is shared through a snaplink: its copies are
    /// then freed only when the `0x20 objectid` refcount drops to zero.
    #[serde(default)]
    pub linked: bool,
}

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum EntryKind {
    /// A directory.
    Directory,
    /// An object (snaplinks are objects too).
    Object(ObjectInfo),
}

/// One name in a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The last path segment.
    pub name: String,
    /// Last modification, milliseconds since the Unix epoch.
    pub mtime_ms: u64,
    /// Stored headers.
    pub headers: Headers,
    /// Directory or object.
    pub kind: EntryKind,
}

impl Entry {
    /// True for directories.
    pub fn is_directory(&self) -> bool {
        matches!(self.kind, EntryKind::Directory)
    }

    /// The object part, `None` for directories.
    pub fn object(&self) -> Option<&ObjectInfo> {
        match &self.kind {
            EntryKind::Object(o) => Some(o),
            EntryKind::Directory => None,
        }
    }

    /// The etag (the object id), `None` for directories.
    pub fn etag(&self) -> Option<String> {
        self.object().map(|o| o.object_id.to_string())
    }
}

/// What the gateway knows about a freshly written object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewObject {
    /// A fresh random (v4) id; becomes the etag.
    pub object_id: Uuid,
    /// Size in bytes.
    pub size: u64,
    /// Base64 MD5.
    pub content_md5: String,
    /// Hex blake3.
    pub blake3: String,
    /// Content type.
    pub content_type: String,
    /// Stored headers.
    pub headers: Headers,
    /// Nodes that acknowledged a durable copy.
    pub copies: Vec<NodeId>,
    /// Requested durability level.
    pub durability: u8,
}

/// Replacement metadata for `put_metadata` (spec §6.7: replace semantics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataUpdate {
    /// New content type for objects (`None` keeps the old; ignored on directories).
    pub content_type: Option<String>,
    /// The complete new header set (headers not listed are removed).
    pub headers: Headers,
}

/// Conditional request headers, already parsed (spec §6.6).
///
/// Etag lists hold plain etags (strip `W/` and quotes with
/// [`Conditions::parse_etags`]); `"*"` matches any existing entry. Times are
/// Unix seconds (HTTP-date resolution).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    /// `If-Match`.
    pub if_match: Option<Vec<String>>,
    /// `If-None-Match`.
    pub if_none_match: Option<Vec<String>>,
    /// `If-Modified-Since` (reads only).
    pub if_modified_since: Option<i64>,
    /// `If-Unmodified-Since`.
    pub if_unmodified_since: Option<i64>,
}

/// Outcome of evaluating conditions for a GET/HEAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadCheck {
    /// Serve the entry.
    Proceed,
    /// `304 Not Modified`.
    NotModified,
    /// `412 Precondition Failed`.
    PreconditionFailed,
}

/// One copy of an object on one node.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CopyRef {
    /// Node holding the copy.
    pub node: NodeId,
    /// The object.
    pub object_id: Uuid,
}

/// Result of a write that creates or replaces an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOutcome {
    /// The entry as committed.
    pub entry: Entry,
    /// The entry it replaced, if any.
    pub replaced: Option<Entry>,
    /// Copies no name refers to any more; GC records for them were written
    /// in the same transaction (delete them now or let GC do it).
    pub freed: Vec<CopyRef>,
}

/// Result of a delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// The entry that was removed.
    pub entry: Entry,
    /// Copies no name refers to any more (GC records written, as for puts).
    pub freed: Vec<CopyRef>,
}

/// Listing sort key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortBy {
    /// Name bytes, ascending (descending with `reverse`).
    #[default]
    Name,
    /// mtime newest first, ties by name descending; `reverse` is the exact
    /// opposite (oldest first, ties by name ascending).
    Mtime,
}

/// Which entries a listing returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TypeFilter {
    /// Everything.
    #[default]
    All,
    /// Only directories (`dir=true`).
    Directories,
    /// Only objects (`obj=true`).
    Objects,
}

/// Where a listing page starts (inclusive, spec §5.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marker {
    /// Name marker (for [`SortBy::Name`]).
    Name(String),
    /// mtime marker in ms (for [`SortBy::Mtime`]).
    Mtime(u64),
}

/// Listing parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOptions {
    /// Maximum entries returned; the namespace returns exactly
    /// `min(limit, remaining matching)`.
    pub limit: usize,
    /// Inclusive start.
    pub marker: Option<Marker>,
    /// Reverse the sort order.
    pub reverse: bool,
    /// Type filter.
    pub filter: TypeFilter,
    /// Sort key.
    pub sort: SortBy,
}

impl Default for ListOptions {
    fn default() -> Self {
        ListOptions {
            limit: 256,
            marker: None,
            reverse: false,
            filter: TypeFilter::All,
            sort: SortBy::Name,
        }
    }
}

/// An account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Login (first path segment).
    pub login: String,
    /// Stable id.
    pub uuid: Uuid,
    /// Disabled accounts are refused (`403 AccountBlocked`).
    #[serde(default)]
    pub disabled: bool,
    /// An operator account may read, list, write and delete in every
    /// account (Manta's `operators` group). Set only by
    /// [`Namespace::set_account_operator`](super::Namespace::set_account_operator),
    /// which only `tidepool admin` calls; records written before this field
    /// existed read as `false`.
    #[serde(default)]
    pub operator: bool,
    /// Creation time, ms.
    pub created_ms: u64,
}

/// A subuser of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subuser {
    /// Owning account.
    pub login: String,
    /// Subuser login.
    pub name: String,
    /// Stable id.
    pub uuid: Uuid,
    /// Creation time, ms.
    pub created_ms: u64,
}

/// A role of an account (Manta RBAC): who holds it and which policies it
/// carries. Names are unique inside the account; members are subuser
/// logins of the same account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// Owning account.
    pub login: String,
    /// Role name (what `role` headers and `role-tag` name).
    pub name: String,
    /// Stable id.
    pub uuid: Uuid,
    /// Subusers that may activate it.
    #[serde(default)]
    pub members: Vec<String>,
    /// Members for whom it is active when a request names no role
    /// (every default member is also a member).
    #[serde(default)]
    pub default_members: Vec<String>,
    /// Names of the account's policies it carries.
    #[serde(default)]
    pub policies: Vec<String>,
}

/// A policy of an account: rules in Manta's language (`CAN getobject`,
/// ...), kept as text; the `auth` crate parses them. It reaches a subuser
/// only through a role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Owning account.
    pub login: String,
    /// Policy name.
    pub name: String,
    /// Stable id.
    pub uuid: Uuid,
    /// Rule texts.
    #[serde(default)]
    pub rules: Vec<String>,
}

/// What access control needs about one subuser, read from one snapshot:
/// the roles it is a member of, each with its policies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubuserAccess {
    /// Roles the subuser is a member of, with their existing policies.
    pub roles: Vec<(Role, Vec<Policy>)>,
}

impl SubuserAccess {
    /// Names of the member roles.
    pub fn member_of(&self) -> Vec<String> {
        self.roles.iter().map(|(r, _)| r.name.clone()).collect()
    }

    /// Names of the roles this subuser holds by default.
    pub fn defaults(&self, subuser: &str) -> Vec<String> {
        self.roles
            .iter()
            .filter(|(r, _)| r.default_members.iter().any(|m| m == subuser))
            .map(|(r, _)| r.name.clone())
            .collect()
    }
}

/// An SSH public key registered for an account or subuser. Fingerprints are
/// computed by the caller (the `auth` crate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshKey {
    /// `aa:bb:...` lowercase colon-separated hex MD5.
    pub fingerprint_md5: String,
    /// `SHA256:` + unpadded base64.
    pub fingerprint_sha256: String,
    /// The OpenSSH public key line.
    pub public_key: String,
    /// Human name.
    pub name: String,
}

/// An S3 access key of an account (SigV4 needs the secret itself to
/// recompute signatures, so it is stored as is; meta is inside the trust
/// boundary, like the cluster key).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Key {
    /// The public id (`AWS_ACCESS_KEY_ID`): uppercase letters and digits.
    pub access_key_id: String,
    /// The shared secret (`AWS_SECRET_ACCESS_KEY`).
    pub secret: String,
    /// The owning account.
    pub login: String,
    /// Creation time, ms since the Unix epoch.
    pub created_ms: u64,
}

impl std::fmt::Debug for S3Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Key")
            .field("access_key_id", &self.access_key_id)
            .field("login", &self.login)
            .field("created_ms", &self.created_ms)
            .finish_non_exhaustive()
    }
}

/// Lifecycle state of a storage node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// Accepts writes and serves reads.
    #[default]
    Active,
    /// Serves reads, takes no new writes; repair moves every copy it holds
    /// to other nodes, after which it can be removed.
    Draining,
    /// Gone for good (declared by an operator): its copies count as missing
    /// and repair makes new ones elsewhere. A lost node that comes back
    /// takes no work until an operator marks it up again, and its audit
    /// then removes the copies no name refers to.
    #[serde(alias = "down")]
    Lost,
}

impl NodeState {
    /// The name operators use: `up`, `draining`, `lost`.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Active => "up",
            NodeState::Draining => "draining",
            NodeState::Lost => "lost",
        }
    }
}

impl std::fmt::Display for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for NodeState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "up" | "active" => Ok(NodeState::Active),
            "draining" => Ok(NodeState::Draining),
            "lost" => Ok(NodeState::Lost),
            other => Err(format!(
                "unknown node state {other:?}: up, draining or lost"
            )),
        }
    }
}

/// A storage node's registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Node id (1..=255 bytes).
    pub id: NodeId,
    /// Base URL of the node's HTTP service.
    pub url: String,
    /// Availability zone.
    pub az: String,
    /// Capacity in bytes.
    pub capacity_total: u64,
    /// Bytes used.
    pub capacity_used: u64,
    /// Last heartbeat, ms since the epoch.
    pub heartbeat_ms: u64,
    /// State.
    #[serde(default)]
    pub state: NodeState,
    /// Health of the ZFS pool under the node's files (`ONLINE`,
    /// `DEGRADED`, ...), when it keeps them on ZFS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_health: Option<String>,
}

impl NodeRecord {
    /// Whether the node takes work: active, and heard from within
    /// `timeout` before `now_ms`.
    pub fn is_live(&self, now_ms: u64, timeout: std::time::Duration) -> bool {
        let timeout = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self.state == NodeState::Active && now_ms.saturating_sub(self.heartbeat_ms) <= timeout
    }

    /// Whether the node serves reads of the copies it holds: not lost, and
    /// heard from within `timeout` (a draining node still serves).
    pub fn is_reachable(&self, now_ms: u64, timeout: std::time::Duration) -> bool {
        let timeout = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self.state != NodeState::Lost && now_ms.saturating_sub(self.heartbeat_ms) <= timeout
    }

    /// Whether the storage under the node is sound enough for new copies:
    /// not on ZFS, or on a pool whose health is `ONLINE`.
    pub fn storage_ok(&self) -> bool {
        self.pool_health.as_deref().is_none_or(|h| h == "ONLINE")
    }

    /// Bytes the node can still take.
    pub fn free_bytes(&self) -> u64 {
        self.capacity_total.saturating_sub(self.capacity_used)
    }
}

/// A copy waiting for deletion on a node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GcRecord {
    /// Node holding the copy.
    pub node: NodeId,
    /// The object.
    pub object_id: Uuid,
    /// When the copy became garbage, ms.
    pub recorded_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn node(state: NodeState, heartbeat_ms: u64) -> NodeRecord {
        NodeRecord {
            id: "n1".into(),
            url: "http://127.0.0.1:1".into(),
            az: "az1".into(),
            capacity_total: 100,
            capacity_used: 130,
            heartbeat_ms,
            pool_health: None,
            state,
        }
    }

    #[test]
    fn liveness_needs_an_active_state_and_a_recent_heartbeat() {
        let t = Duration::from_secs(30);
        assert!(node(NodeState::Active, 1_000).is_live(31_000, t));
        assert!(!node(NodeState::Active, 1_000).is_live(31_001, t));
        // A heartbeat "from the future" (clock skew) still counts as recent.
        assert!(node(NodeState::Active, 50_000).is_live(31_000, t));
        assert!(!node(NodeState::Draining, 1_000).is_live(1_000, t));
        // Over-full nodes report no free space rather than wrapping.
        assert_eq!(node(NodeState::Active, 0).free_bytes(), 0);
    }
}
