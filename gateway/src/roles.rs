//! Role-based access control for subusers acting in their own account
//! (Manta's RBAC): gathers what the decision needs — the subuser's active
//! roles, the request's action, the resource's role tags, the conditions —
//! and asks [`auth::rbac`], where the decision itself lives.
//!
//! Guarantees:
//! - Only subusers reach this module (the account owner, operators and
//!   `/public` reads are decided in [`crate::access`] without it), so the
//!   account owner's requests cost no RBAC lookups at all.
//! - As in muskie: reads and deletes are judged by the entry's own tags (a
//!   missing entry is left to the handler's 404, before authorization);
//!   overwriting by the entry's own tags, creating by the parent
//!   directory's tags (a missing parent is left to the handler's
//!   `DirectoryDoesNotExist`); directory tags never reach children.
//! - `sourceip` is the TCP peer's address. `X-Forwarded-For` is not
//!   trusted: the gateway faces clients directly, and a header the client
//!   writes must not satisfy a network condition.
//! - Refusals leave through [`ApiError::rbac`], the one mapping to Manta's
//!   codes.

use std::net::IpAddr;
use std::time::SystemTime;

use auth::policy::{Context, Rule};
use auth::rbac::{self, ActiveRole};
use http::HeaderMap;
use meta::namespace::{Entry, Headers, Namespace};
use meta::path::MantaPath;

use crate::endpoint::{Endpoint, JobOp};
use crate::error::ApiError;

/// The TCP peer of a TLS connection (axum's connect info for
/// [`crate::tls::TlsListener`]; plain connections use `SocketAddr`).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::SocketAddr);

impl<'a>
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, crate::tls::TlsListener>>
    for Peer
{
    fn connect_info(stream: axum::serve::IncomingStream<'a, crate::tls::TlsListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// A subuser's request, with its active roles loaded.
#[derive(Debug, Clone)]
pub struct SubuserAccess {
    /// `login/subuser`, as messages name the caller.
    pub who: String,
    /// The active roles with their parsed rules.
    pub active: Vec<ActiveRole>,
    base: Context,
}

/// The header value of the role tags of an entry, split.
pub fn tags_of(headers: &Headers) -> Vec<String> {
    headers
        .get("role-tag")
        .map(|v| auth::rbac::comma_list(v))
        .unwrap_or_default()
}

impl SubuserAccess {
    /// Loads the roles of the subuser `caller` and activates those the
    /// request names (`requested`: the `role` header, or the `role` query
    /// parameter of a presigned URL), else the defaults. `None` for a
    /// caller that is not a subuser.
    pub async fn load(
        ns: &Namespace,
        caller: &auth::Caller,
        requested: Option<&str>,
        headers: &HeaderMap,
        method: &str,
        peer: Option<IpAddr>,
        now: SystemTime,
    ) -> Result<Option<SubuserAccess>, ApiError> {
        let (login, Some(subuser)) = (caller.login.as_str(), caller.subuser.as_deref()) else {
            return Ok(None);
        };
        let who = format!("{login}/{subuser}");
        let access = ns.subuser_access(login, subuser).await?;
        let names = rbac::active_roles(requested, &access.member_of(), &access.defaults(subuser))
            .map_err(|d| ApiError::rbac(d, &who, ""))?;
        let mut active = Vec::new();
        for (role, policies) in access.roles {
            if !names.contains(&role.name) {
                continue;
            }
            let mut rules = Vec::new();
            for p in &policies {
                for text in &p.rules {
                    match Rule::parse(text) {
                        Ok(r) => rules.push(r),
                        // Admin checks rules before storing them; a rule
                        // that no longer parses grants nothing.
                        Err(e) => {
                            tracing::warn!(policy = %p.name, error = %e, "stored rule does not parse")
                        }
                    }
                }
            }
            active.push(ActiveRole {
                name: role.name,
                rules,
            });
        }
        let base = Context {
            sourceip: peer,
            now,
            method: method.to_owned(),
            user_agent: headers
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            fromjob: false,
            overwrite: None,
            active_roles: names,
        };
        Ok(Some(SubuserAccess { who, active, base }))
    }

    /// The names of the active roles (what a write without `role-tag`
    /// tags its entry with).
    pub fn active_names(&self) -> &[String] {
        &self.base.active_roles
    }

    /// The roles a job this subuser creates runs with.
    pub fn job_roles(&self) -> meta::jobs::JobRoles {
        meta::jobs::JobRoles {
            subuser: self.who.rsplit('/').next().unwrap_or_default().to_owned(),
            roles: self
                .active
                .iter()
                .map(|r| {
                    (
                        r.name.clone(),
                        r.rules.iter().map(|x| x.text.clone()).collect(),
                    )
                })
                .collect(),
        }
    }

    /// The decision for `action` on `path` tagged `tags`.
    pub fn check(
        &self,
        action: &str,
        path: &MantaPath,
        tags: &[String],
        overwrite: Option<bool>,
    ) -> Result<(), ApiError> {
        let resource = path.to_string();
        let mut cx = self.base.clone();
        cx.overwrite = overwrite;
        rbac::authorize(
            &self.active,
            rbac::Request {
                action,
                resource: &resource,
                tags,
            },
            &cx,
        )
        .map_err(|d| ApiError::rbac(d, &self.who, &resource))
    }

    /// `get<kind>` / `delete<kind>` on an existing entry; nothing to decide
    /// (the handler answers 404) when it does not exist.
    async fn check_existing(
        &self,
        ns: &Namespace,
        verb: &str,
        path: &MantaPath,
    ) -> Result<(), ApiError> {
        let Some(entry) = ns.get(path).await? else {
            return Ok(());
        };
        let kind = if entry.is_directory() {
            "directory"
        } else {
            "object"
        };
        self.check(
            &format!("{verb}{kind}"),
            path,
            &tags_of(&entry.headers),
            None,
        )
    }

    /// A write: against the entry's own tags when it exists (overwrite),
    /// else against its parent's (create). Nothing to decide when neither
    /// exists: the handler answers `DirectoryDoesNotExist`.
    pub async fn check_write(
        &self,
        ns: &Namespace,
        action: &str,
        path: &MantaPath,
    ) -> Result<(), ApiError> {
        if let Some(e) = ns.get(path).await? {
            return self.check(action, path, &tags_of(&e.headers), Some(true));
        }
        let parent: Option<Entry> = match path.parent() {
            Some(p) => ns.get(&p).await?,
            None => None,
        };
        match parent {
            Some(p) => self.check(action, path, &tags_of(&p.headers), Some(false)),
            None => Ok(()),
        }
    }

    /// A job route: the tags of `dir` (the jobs directory, or the job's
    /// own directory), none if it does not exist.
    async fn check_job(
        &self,
        ns: &Namespace,
        action: &str,
        dir: &MantaPath,
    ) -> Result<(), ApiError> {
        let tags = match ns.get(dir).await? {
            Some(e) => tags_of(&e.headers),
            None => Vec::new(),
        };
        self.check(action, dir, &tags, None)
    }

    /// Authorizes one request of this subuser in its own account, and tags
    /// its write with the active roles when it names no `role-tag`
    /// (muskie's rule for subusers).
    pub async fn authorize(&self, ns: &Namespace, ep: &mut Endpoint) -> Result<(), ApiError> {
        match ep {
            Endpoint::Get { path, .. }
            | Endpoint::Head { path, .. }
            | Endpoint::Options { path, .. } => self.check_existing(ns, "get", path).await,
            Endpoint::Delete { path, .. } => self.check_existing(ns, "delete", path).await,
            Endpoint::PutObject { path, put } => {
                self.check_write(ns, "putobject", path).await?;
                self.default_tags(&mut put.headers);
                Ok(())
            }
            Endpoint::PutDirectory { path, headers } => {
                self.check_write(ns, "putdirectory", path).await?;
                self.default_tags(headers);
                Ok(())
            }
            Endpoint::PutMetadata { path, update, .. } => {
                // mchmod/mchattr go through muskie's PutObject route, for
                // directories too.
                self.check_write(ns, "putobject", path).await?;
                self.default_tags(&mut update.headers);
                Ok(())
            }
            Endpoint::PutLink { path, link } => {
                self.check_write(ns, "putlink", path).await?;
                // The source must be readable too (muskie lib/link.js).
                if link.source.login() == path.login() {
                    self.check_existing(ns, "get", &link.source.clone()).await?;
                }
                Ok(())
            }
            Endpoint::Job { path, op } => {
                let login = path.login().to_owned();
                let jobs = MantaPath::top_dir(&login, meta::path::TopDir::Jobs)
                    .map_err(|e| crate::path::path_error(e, "path"))?;
                let job_dir = |id: &uuid::Uuid| {
                    jobs.join(&id.to_string())
                        .map_err(|e| crate::path::path_error(e, "path"))
                };
                match op {
                    JobOp::Create => {
                        self.check_job(ns, "createjob", &jobs).await?;
                        // muskie's ensurePutAccess: the job's directories
                        // are written with the active roles as tags.
                        for action in ["putobject", "putdirectory"] {
                            let tags = self.active_names().to_vec();
                            if self.check(action, &jobs, &tags, Some(false)).is_err() {
                                return Err(ApiError::MissingPermission(action.to_owned()));
                            }
                        }
                        Ok(())
                    }
                    JobOp::ListLive { .. } | JobOp::Unknown => {
                        self.check_job(ns, "listjobs", &jobs).await
                    }
                    JobOp::Status { id } | JobOp::Live { id, .. } | JobOp::Events { id } => {
                        self.check_job(ns, "getjob", &job_dir(id)?).await
                    }
                    JobOp::AddInputs { id, .. } | JobOp::EndInput { id } | JobOp::Cancel { id } => {
                        self.check_job(ns, "managejob", &job_dir(id)?).await
                    }
                }
            }
            // A token stands for the subuser; every request made with it
            // is judged again here.
            Endpoint::CreateToken { .. } => Ok(()),
            // Multipart uploads refuse subusers outright (handlers::mpu).
            Endpoint::MpuCreate { .. }
            | Endpoint::MpuRedirect { .. }
            | Endpoint::MpuState { .. }
            | Endpoint::MpuCommit { .. }
            | Endpoint::MpuAbort { .. }
            | Endpoint::MpuPart { .. } => Ok(()),
        }
    }

    /// A subuser's write without `role-tag` is tagged with its active roles.
    fn default_tags(&self, headers: &mut Headers) {
        if !headers.contains_key("role-tag") && !self.active_names().is_empty() {
            headers.insert("role-tag".to_owned(), self.active_names().join(", "));
        }
    }
}

/// The `role-tag` names a write asks for.
pub fn requested_tags(ep: &Endpoint) -> Vec<String> {
    match ep {
        Endpoint::PutObject { put, .. } => tags_of(&put.headers),
        Endpoint::PutDirectory { headers, .. } => tags_of(headers),
        Endpoint::PutMetadata { update, .. } => tags_of(&update.headers),
        _ => Vec::new(),
    }
}

/// `409 InvalidRoleTag` unless every requested tag is a role of the owner
/// account (any of its roles: the writer need not hold it). Reads the
/// account's roles only when a tag is requested.
pub async fn check_role_tags(ns: &Namespace, ep: &Endpoint) -> Result<(), ApiError> {
    let wanted = requested_tags(ep);
    if wanted.is_empty() {
        return Ok(());
    }
    let roles = ns.list_roles(ep.path().login()).await?;
    match wanted
        .into_iter()
        .find(|w| !roles.iter().any(|r| &r.name == w))
    {
        Some(bad) => Err(ApiError::InvalidRoleTag(bad)),
        None => Ok(()),
    }
}
