//! What a subuser's job may read: the roles that were active when the
//! subuser created it, judged by [`auth::rbac`] with `fromjob = true`, as
//! Manta's jobs carried their creator's active roles in the job token.
//!
//! Guarantees: an input in the owner's tree outside `/public` and outside
//! the job's own directory is readable only if an active role allows
//! `getobject` on it (through its tags or an explicit-resource rule).
//! Rules needing a value a job does not have (`sourceip`, `user-agent`)
//! allow nothing. The job's own `/jobs/<id>/` (its intermediate outputs)
//! is always readable. The supervisor applies this to map and reducer
//! inputs, the compute agent to assets and to what the in-task tools read;
//! see docs/access-control.md.

use std::time::SystemTime;

use auth::policy::{Context, Rule};
use auth::rbac::{self, ActiveRole};
use meta::jobs::JobRoles;
use meta::namespace::Headers;
use meta::path::{MantaPath, TopDir};
use uuid::Uuid;

/// A subuser job's parsed roles.
#[derive(Debug, Clone)]
pub struct JobAccess {
    names: Vec<String>,
    active: Vec<ActiveRole>,
}

impl JobAccess {
    /// Parses the roles recorded on the job (rules that do not parse grant
    /// nothing).
    pub fn new(r: &JobRoles) -> JobAccess {
        let active = r
            .roles
            .iter()
            .map(|(name, rules)| ActiveRole {
                name: name.clone(),
                rules: rules.iter().filter_map(|t| Rule::parse(t).ok()).collect(),
            })
            .collect();
        JobAccess {
            names: r.roles.iter().map(|(n, _)| n.clone()).collect(),
            active,
        }
    }

    /// Whether job `job` of `owner` may read `path`, an existing entry with
    /// `headers` (its `role-tag`).
    pub fn may_read(&self, owner: &str, job: &Uuid, path: &MantaPath, headers: &Headers) -> bool {
        if path.login() != owner || path.top() == Some(TopDir::Public) {
            return true;
        }
        let own = format!("/{owner}/jobs/{job}/");
        let resource = path.to_string();
        if resource.starts_with(&own) {
            return true;
        }
        let tags = headers
            .get("role-tag")
            .map(|v| rbac::comma_list(v))
            .unwrap_or_default();
        let cx = Context {
            sourceip: None,
            now: SystemTime::now(),
            method: "GET".to_owned(),
            user_agent: None,
            fromjob: true,
            overwrite: None,
            active_roles: self.names.clone(),
        };
        rbac::authorize(
            &self.active,
            rbac::Request {
                action: "getobject",
                resource: &resource,
                tags: &tags,
            },
            &cx,
        )
        .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_the_roles_allow() {
        let a = JobAccess::new(&JobRoles {
            subuser: "u".into(),
            roles: vec![
                ("readers".into(), vec!["CAN getobject".into()]),
                (
                    "net".into(),
                    vec!["CAN getobject WHEN sourceip = 10.0.0.0/8".into()],
                ),
            ],
        });
        let job = Uuid::new_v4();
        let tagged = |t: &str| Headers::from([("role-tag".to_owned(), t.to_owned())]);
        let p = |s: &str| MantaPath::parse(s).unwrap();
        assert!(a.may_read("bob", &job, &p("/bob/stor/a"), &tagged("readers")));
        assert!(!a.may_read("bob", &job, &p("/bob/stor/a"), &Headers::new()));
        assert!(!a.may_read("bob", &job, &p("/bob/stor/a"), &tagged("writers")));
        // A network condition cannot hold inside a job.
        assert!(!a.may_read("bob", &job, &p("/bob/stor/a"), &tagged("net")));
        // Public trees, other accounts (left to naming::readable_by) and the
        // job's own outputs are not judged here.
        assert!(a.may_read("bob", &job, &p("/bob/public/a"), &Headers::new()));
        assert!(a.may_read("bob", &job, &p("/eve/stor/a"), &Headers::new()));
        let own = format!("/bob/jobs/{job}/stor/out");
        assert!(a.may_read("bob", &job, &p(&own), &Headers::new()));
        let other = format!("/bob/jobs/{}/stor/out", Uuid::new_v4());
        assert!(!a.may_read("bob", &job, &p(&other), &Headers::new()));
    }
}
