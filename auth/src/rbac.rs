//! The access-control decision for a subuser acting in its own account
//! (Manta's RBAC as muskie, libmanta and node-mahi decided it).
//!
//! Two steps, both pure:
//! - [`active_roles`]: which of the subuser's roles a request activates
//!   (the `role` header / query parameter, or the default roles).
//! - [`authorize`]: whether one of those roles lets the request's action
//!   happen on a resource, given the resource's role tags.
//!
//! Guarantees: a role grants only through its rules, and (unless a rule
//! names resources explicitly) only on a resource whose tags include it;
//! a role named `administrator` allows everything; `CAN NOT` never denies;
//! the error says which of Manta's refusals applies ([`Denied`]). Account
//! owners, operators and `/public` reads are decided before this (in the
//! gateway) and never reach it.

use crate::policy::{Context, EvalError, Rule};

/// The name of the role that allows every action (node-mahi `ADMIN_ROLE_NAME`).
pub const ADMIN_ROLE: &str = "administrator";

/// One of the owner account's roles with its rules (from all its policies).
#[derive(Debug, Clone)]
pub struct ActiveRole {
    pub name: String,
    pub rules: Vec<Rule>,
}

/// A refusal, one per Manta error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Denied {
    /// `409 InvalidRole`: a requested role is not one of the caller's.
    #[error("Role \"{0}\" is invalid.")]
    InvalidRole(String),
    /// `403 NoMatchingRoleTag`: roles are active but none tags the resource.
    #[error("None of your active roles are present on the resource.")]
    NoMatchingRoleTag,
    /// `403 AuthorizationFailed`: no rule allows the action (or no role is
    /// active at all).
    #[error("not allowed")]
    NotAllowed,
    /// `500`: a rule needs a value this request does not carry (muskie's
    /// `MissingConditionError`).
    #[error("{0}")]
    Evaluation(EvalError),
}

/// The roles a request activates: `requested` is the `role` value as sent
/// (comma-separated names, `*` = every role of the user); absent or empty
/// means the default roles. Each named role must be in `member_of`.
pub fn active_roles(
    requested: Option<&str>,
    member_of: &[String],
    defaults: &[String],
) -> Result<Vec<String>, Denied> {
    let requested = requested.map(str::trim).unwrap_or("");
    if requested.is_empty() {
        return Ok(defaults
            .iter()
            .filter(|d| member_of.contains(d))
            .cloned()
            .collect());
    }
    if requested == "*" {
        return Ok(member_of.to_vec());
    }
    let mut out: Vec<String> = Vec::new();
    for name in requested.split(',').map(str::trim) {
        if !member_of.iter().any(|m| m == name) {
            return Err(Denied::InvalidRole(name.to_owned()));
        }
        if !out.iter().any(|o| o == name) {
            out.push(name.to_owned());
        }
    }
    Ok(out)
}

/// What is being done: `action` as muskie named it (`getobject`,
/// `putdirectory`, ...), `resource` the path as the client wrote it, `tags`
/// the role names tagging the resource (or, for a new entry, its parent).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub action: &'a str,
    pub resource: &'a str,
    pub tags: &'a [String],
}

/// node-mahi's `authorize` for a subuser of the owner account: each active
/// role contributes all its rules if it tags the resource, else only its
/// rules with explicit resources; any rule allowing the action allows.
pub fn authorize(active: &[ActiveRole], req: Request<'_>, cx: &Context) -> Result<(), Denied> {
    if active.is_empty() {
        // mahi's NoMatchingRoleTag; muskie answers it as AuthorizationFailed
        // when no active role belongs to the owner.
        return Err(Denied::NotAllowed);
    }
    let mut rules: Vec<&Rule> = Vec::new();
    let mut contributed = false;
    for role in active {
        if role.name == ADMIN_ROLE {
            return Ok(());
        }
        if req.tags.contains(&role.name) {
            contributed = true;
            rules.extend(role.rules.iter());
        } else {
            let explicit: Vec<&Rule> = role.rules.iter().filter(|r| r.has_resources()).collect();
            if !explicit.is_empty() {
                contributed = true;
                rules.extend(explicit);
            }
        }
    }
    if !contributed {
        return Err(Denied::NoMatchingRoleTag);
    }
    for rule in rules {
        match rule.allows(req.action, req.resource, cx) {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => return Err(Denied::Evaluation(e)),
        }
    }
    Err(Denied::NotAllowed)
}

/// The non-empty, trimmed items of a comma-separated header value: the
/// role names of a `role-tag` (and, in the gateway, the header names of a
/// CORS preflight).
pub fn comma_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn role(name: &str, rules: &[&str]) -> ActiveRole {
        ActiveRole {
            name: name.into(),
            rules: rules.iter().map(|r| Rule::parse(r).unwrap()).collect(),
        }
    }

    fn cx(ip: &str) -> Context {
        Context {
            sourceip: Some(ip.parse().unwrap()),
            now: UNIX_EPOCH + Duration::from_secs(1_796_639_400),
            method: "GET".into(),
            user_agent: None,
            fromjob: false,
            overwrite: None,
            active_roles: vec![],
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    fn req<'a>(action: &'a str, tags: &'a [String]) -> Request<'a> {
        Request {
            action,
            resource: "/bigco/stor/d/a.txt",
            tags,
        }
    }

    #[test]
    fn role_activation() {
        let member = s(&["readers", "writers"]);
        let defaults = s(&["readers"]);
        assert_eq!(active_roles(None, &member, &defaults).unwrap(), defaults);
        assert_eq!(
            active_roles(Some(""), &member, &defaults).unwrap(),
            defaults
        );
        assert_eq!(active_roles(Some("*"), &member, &defaults).unwrap(), member);
        // Named roles replace the defaults; spaces around commas are fine.
        assert_eq!(
            active_roles(Some("writers"), &member, &defaults).unwrap(),
            s(&["writers"])
        );
        assert_eq!(
            active_roles(Some(" writers ,readers"), &member, &defaults).unwrap(),
            s(&["writers", "readers"])
        );
        assert_eq!(
            active_roles(Some("readers,nosuch"), &member, &defaults),
            Err(Denied::InvalidRole("nosuch".into()))
        );
        assert_eq!(
            Denied::InvalidRole("x".into()).to_string(),
            "Role \"x\" is invalid."
        );
        // A default the user is no longer a member of is not active.
        assert_eq!(
            active_roles(None, &s(&["writers"]), &defaults).unwrap(),
            s(&[])
        );
    }

    #[test]
    fn tags_and_rules_decide() {
        let readers = role("readers", &["CAN getobject"]);
        let tagged = s(&["readers"]);
        let c = cx("10.0.0.1");
        assert_eq!(
            authorize(
                std::slice::from_ref(&readers),
                req("getobject", &tagged),
                &c
            ),
            Ok(())
        );
        // Tagged, action not granted.
        assert_eq!(
            authorize(
                std::slice::from_ref(&readers),
                req("deleteobject", &tagged),
                &c
            ),
            Err(Denied::NotAllowed)
        );
        // Untagged: no role contributes.
        assert_eq!(
            authorize(std::slice::from_ref(&readers), req("getobject", &[]), &c),
            Err(Denied::NoMatchingRoleTag)
        );
        // Tagged with another role.
        assert_eq!(
            authorize(
                std::slice::from_ref(&readers),
                req("getobject", &s(&["writers"])),
                &c
            ),
            Err(Denied::NoMatchingRoleTag)
        );
        // No active role at all.
        assert_eq!(
            authorize(&[], req("getobject", &tagged), &c),
            Err(Denied::NotAllowed)
        );
        // CAN NOT does not deny another rule's allow.
        let mixed = role("readers", &["CAN NOT getobject", "CAN getobject"]);
        assert_eq!(authorize(&[mixed], req("getobject", &tagged), &c), Ok(()));
    }

    #[test]
    fn administrator_and_explicit_resources() {
        let admin = role(ADMIN_ROLE, &[]);
        assert_eq!(
            authorize(&[admin], req("deleteobject", &[]), &cx("1.2.3.4")),
            Ok(())
        );
        let pubr = role("pub", &["CAN getobject /bigco/stor/d*", "CAN putobject"]);
        // The explicit rule applies without a tag; the plain one does not.
        assert_eq!(
            authorize(
                std::slice::from_ref(&pubr),
                req("getobject", &[]),
                &cx("1.2.3.4")
            ),
            Ok(())
        );
        assert_eq!(
            authorize(&[pubr], req("putobject", &[]), &cx("1.2.3.4")),
            Err(Denied::NotAllowed)
        );
    }

    #[test]
    fn conditions_apply() {
        let r = role("net", &["CAN getobject WHEN sourceip = 10.0.0.0/8"]);
        let tagged = s(&["net"]);
        assert_eq!(
            authorize(
                std::slice::from_ref(&r),
                req("getobject", &tagged),
                &cx("10.1.2.3")
            ),
            Ok(())
        );
        assert_eq!(
            authorize(
                std::slice::from_ref(&r),
                req("getobject", &tagged),
                &cx("192.168.1.1")
            ),
            Err(Denied::NotAllowed)
        );
        let mut no_ip = cx("10.0.0.1");
        no_ip.sourceip = None;
        assert!(matches!(
            authorize(&[r], req("getobject", &tagged), &no_ip),
            Err(Denied::Evaluation(_))
        ));
    }
}
