//! `tidepool admin`: accounts, subusers, roles, policies and SSH keys in a
//! deployment's metadata.
//!
//! The embedded metadata file is held by one process at a time, so with it
//! these commands work on a data directory whose `tidepool up` is stopped;
//! with `--meta tikv://...` they work on a running deployment.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use meta::namespace::{Namespace, SshKey};

use crate::metastore::{Meta, MetaSpec};

#[derive(Args)]
pub struct AdminArgs {
    /// Data directory of the deployment (as given to `tidepool up --data`).
    #[arg(long, global = true, default_value = "./tidepool-data")]
    pub data: PathBuf,
    /// Metadata backend: `embedded` (in the data directory) or
    /// `tikv://PD1:2379,PD2:2379,...`.
    #[arg(long, global = true, default_value = "embedded")]
    pub meta: MetaSpec,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// SSH keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Subusers of an account (Manta RBAC users).
    #[command(subcommand)]
    User(UserCommand),
    /// Roles of an account: members, default members, policies.
    #[command(subcommand)]
    Role(RoleCommand),
    /// Policies of an account: rules in Manta's language.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Lists accounts, their keys, and the storage nodes.
    List,
    /// The cluster credential internal requests are signed with.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Storage nodes: list, drain, lost, undrain.
    #[command(subcommand)]
    Node(crate::admin_nodes::NodeCommand),
    /// Background workers (gc, audit, scrub, repair) of every process.
    #[command(subcommand)]
    Workers(crate::admin_nodes::WorkersCommand),
    /// A consistent backup of the embedded metadata of a data directory on
    /// ZFS (`tidepool up --zfs`): a snapshot of its dataset, kept, and a
    /// copy of the metadata file taken from it. Works while `up` runs.
    Backup {
        /// Where to write the copy of `meta.redb`.
        #[arg(long)]
        out: PathBuf,
    },
    /// S3 access keys of an account (for the S3 API, `up --s3-listen`).
    #[command(subcommand, name = "s3-key")]
    S3Key(S3KeyCommand),
    /// Usage now, one JSON line per account: storage (directories, keys,
    /// objects, bytes, bytes × copies, per top directory) and compute
    /// (tasks, seconds, GB-seconds, bytes in/out, per job and phase) over
    /// the last `--since`. The same figures the metering worker writes to
    /// `/:login/reports/usage/`.
    Usage {
        /// Only this account.
        #[arg(long)]
        account: Option<String>,
        /// The compute window: attempts that ended in this last stretch
        /// of time (`1h`, `7d`; usage records are kept 7 days).
        #[arg(long, default_value = "1h", value_parser = upkeep::parse_duration)]
        since: std::time::Duration,
    },
}

#[derive(Subcommand)]
pub enum S3KeyCommand {
    /// Creates a random access key for an account and prints the
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` exports (the secret
    /// is shown only here). Accounts only: subusers cannot hold S3 keys.
    Add {
        /// `LOGIN` (an account; `LOGIN/SUBUSER` is refused).
        login: String,
    },
    /// Lists an account's access key ids (never the secrets).
    List { login: String },
    /// Removes an access key of an account.
    Rm { login: String, id: String },
}

#[derive(Subcommand)]
pub enum ClusterCommand {
    /// Creates a new random cluster key file (mode 0600) for a
    /// multi-process deployment; give it to every `tidepool node`,
    /// `tidepool supervisor` and `tidepool up --nodes 0` with
    /// `--cluster-key`. Never overwrites an existing file.
    Init {
        /// Where to write the key.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Creates an account with its top directories (stor, public, jobs, reports, uploads).
    Add {
        login: String,
        /// Make it an operator: it may read, list, write and delete in
        /// every account, as Manta's operators could (also applies to an
        /// existing account).
        #[arg(long)]
        operator: bool,
    },
    /// Makes an existing account an operator, or (`--revoke`) an ordinary
    /// account again.
    Operator {
        login: String,
        /// Take the operator flag away.
        #[arg(long)]
        revoke: bool,
    },
    /// Lists accounts with their state (disabled, operator).
    List,
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Adds an SSH public key (OpenSSH `.pub` file) to an account or one of
    /// its subusers (created if needed), and prints the `MANTA_*` setup.
    Add {
        login: String,
        pubkey_file: PathBuf,
        /// Register the key for this subuser of the account.
        #[arg(long)]
        subuser: Option<String>,
        /// The gateway URL to print in the setup (as `tidepool up` printed it).
        #[arg(long)]
        url: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Creates a subuser of an account.
    Add { login: String, user: String },
    /// Lists the subusers of an account with their roles.
    List { login: String },
    /// Removes a subuser, its keys and its role memberships.
    Rm { login: String, user: String },
}

#[derive(Subcommand)]
pub enum RoleCommand {
    /// Creates or replaces a role.
    Add {
        login: String,
        role: String,
        /// A subuser who may activate the role (repeatable).
        #[arg(long = "member")]
        members: Vec<String>,
        /// A member for whom the role is active by default (repeatable;
        /// also made a member).
        #[arg(long = "default-member")]
        default_members: Vec<String>,
        /// A policy the role carries (repeatable).
        #[arg(long = "policy")]
        policies: Vec<String>,
    },
    /// Lists the roles of an account.
    List { login: String },
    /// Removes a role (tags naming it then grant nothing).
    Rm { login: String, role: String },
}

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Creates or replaces a policy; every rule is checked before storing
    /// (e.g. `--rule "CAN getobject" --rule "CAN putobject WHEN sourceip = 10.0.0.0/8"`).
    Add {
        login: String,
        policy: String,
        /// A rule (repeatable).
        #[arg(long = "rule", required = true)]
        rules: Vec<String>,
    },
    /// Lists the policies of an account with their rules.
    List { login: String },
    /// Removes a policy and takes it out of every role.
    Rm { login: String, policy: String },
}

/// Reads an OpenSSH public key file into the record the namespace stores.
pub fn read_public_key(file: &Path) -> Result<SshKey> {
    let line = std::fs::read_to_string(file).with_context(|| format!("read {}", file.display()))?;
    let key = auth::key::PublicKey::from_openssh(line.trim())
        .with_context(|| format!("parse {}", file.display()))?;
    Ok(SshKey {
        fingerprint_md5: key.fingerprint_md5(),
        fingerprint_sha256: key.fingerprint_sha256(),
        public_key: key.to_openssh(),
        name: key.comment().to_string(),
    })
}

/// Creates `login` unless it exists; adds `key` unless registered.
pub async fn ensure_account_key(
    ns: &Namespace,
    login: &str,
    subuser: Option<&str>,
    key: &SshKey,
) -> Result<()> {
    if ns.get_account(login).await?.is_none() {
        ns.create_account(login).await?;
    }
    if let Some(sub) = subuser
        && ns.get_subuser(login, sub).await?.is_none()
    {
        ns.create_subuser(login, sub).await?;
    }
    let known = ns.list_keys(login, subuser).await?;
    if !known
        .iter()
        .any(|k| k.fingerprint_md5 == key.fingerprint_md5)
    {
        ns.add_key(login, subuser, key).await?;
    }
    Ok(())
}

/// ` (disabled, operator)`, ` (operator)`, ... or nothing.
fn account_state(a: &meta::namespace::Account) -> String {
    let flags: Vec<&str> = [(a.disabled, "disabled"), (a.operator, "operator")]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
    if flags.is_empty() {
        String::new()
    } else {
        format!(" ({})", flags.join(", "))
    }
}

pub async fn run(args: AdminArgs) -> Result<()> {
    // Needs no metadata: the key is a file.
    if let AdminCommand::Cluster(ClusterCommand::Init { out }) = &args.command {
        cluster_auth::ClusterKey::create(out)?;
        println!("cluster key written to {}", out.display());
        return Ok(());
    }
    // Reads a snapshot, never the live file: no lock on the metadata.
    if let AdminCommand::Backup { out } = &args.command {
        return crate::admin_nodes::backup(&args.data, out).await;
    }
    let ns = Meta::open(&args.meta, &args.data).await?.ns;
    match args.command {
        AdminCommand::Account(AccountCommand::Add { login, operator }) => {
            if ns.get_account(&login).await?.is_some() {
                println!("account {login} exists");
            } else {
                ns.create_account(&login).await?;
                println!("account {login} created");
            }
            if operator {
                ns.set_account_operator(&login, true).await?;
                println!("account {login} is an operator");
            }
        }
        AdminCommand::Account(AccountCommand::Operator { login, revoke }) => {
            ns.set_account_operator(&login, !revoke).await?;
            if revoke {
                println!("account {login} is no longer an operator");
            } else {
                println!("account {login} is an operator");
            }
        }
        AdminCommand::Account(AccountCommand::List) => {
            for account in ns.list_accounts().await? {
                println!("account {}{}", account.login, account_state(&account));
            }
        }
        AdminCommand::Key(KeyCommand::Add {
            login,
            pubkey_file,
            subuser,
            url,
        }) => {
            let key = read_public_key(&pubkey_file)?;
            ensure_account_key(&ns, &login, subuser.as_deref(), &key).await?;
            let who = match &subuser {
                Some(u) => format!("{login}/{u}"),
                None => login.clone(),
            };
            println!(
                "key {} ({}) registered for {who}",
                key.fingerprint_md5, key.fingerprint_sha256
            );
            print_setup(&login, subuser.as_deref(), &key, url.as_deref());
        }
        AdminCommand::User(cmd) => rbac_users(&ns, cmd).await?,
        AdminCommand::Role(cmd) => rbac_roles(&ns, cmd).await?,
        AdminCommand::Policy(cmd) => rbac_policies(&ns, cmd).await?,
        AdminCommand::Cluster(ClusterCommand::Init { .. }) | AdminCommand::Backup { .. } => {}
        AdminCommand::Node(cmd) => crate::admin_nodes::node(&ns, cmd).await?,
        AdminCommand::Workers(cmd) => crate::admin_nodes::workers(&ns, cmd).await?,
        AdminCommand::S3Key(cmd) => s3_keys(&ns, cmd).await?,
        AdminCommand::Usage { account, since } => usage(&ns, account, since).await?,
        AdminCommand::List => {
            for account in ns.list_accounts().await? {
                println!("account {}{}", account.login, account_state(&account));
                for key in ns.list_keys(&account.login, None).await? {
                    println!(
                        "  key {} {} {}",
                        key.fingerprint_md5, key.fingerprint_sha256, key.name
                    );
                }
                for sub in ns.list_subusers(&account.login).await? {
                    println!("  subuser {}", sub.name);
                    for key in ns.list_keys(&account.login, Some(&sub.name)).await? {
                        println!(
                            "    key {} {} {}",
                            key.fingerprint_md5, key.fingerprint_sha256, key.name
                        );
                    }
                }
            }
            for node in ns.list_nodes().await? {
                println!(
                    "node {} az={} url={} used={}/{} state={}",
                    node.id, node.az, node.url, node.capacity_used, node.capacity_total, node.state
                );
            }
        }
    }
    Ok(())
}

/// `tidepool admin usage`: one JSON line per account, taken now.
async fn usage(ns: &Namespace, account: Option<String>, since: std::time::Duration) -> Result<()> {
    let logins = match account {
        Some(login) => {
            if ns.get_account(&login).await?.is_none() {
                bail!("no account {login}");
            }
            vec![login]
        }
        None => ns
            .list_accounts()
            .await?
            .into_iter()
            .map(|a| a.login)
            .collect(),
    };
    let jobs = meta::jobs::JobStore::new(ns.kv().clone());
    let to = meta::namespace::system_now_ms().saturating_add(1);
    let from = to.saturating_sub(u64::try_from(since.as_millis()).unwrap_or(u64::MAX));
    for login in logins {
        let storage = metering::storage::account_storage(ns, &login).await?;
        let compute = metering::compute::account_compute(&jobs, &login, from, to).await?;
        let line = metering::report::summary_line(&login, &storage, &compute, from, to);
        println!("{line}");
    }
    Ok(())
}

/// The `MANTA_*` lines for the principal a key was added for.
fn print_setup(login: &str, subuser: Option<&str>, key: &SshKey, url: Option<&str>) {
    println!("Point Manta's CLI at it with:");
    match url {
        Some(u) => println!("export MANTA_URL={u}"),
        None => println!("# export MANTA_URL=<the gateway URL tidepool up printed>"),
    }
    println!("export MANTA_USER={login}");
    match subuser {
        Some(u) => {
            println!("export MANTA_SUBUSER={u}");
            println!("unset MANTA_ROLE  # or: export MANTA_ROLE=<role>[,<role>...]");
        }
        None => println!("unset MANTA_SUBUSER MANTA_ROLE"),
    }
    println!("export MANTA_KEY_ID={}", key.fingerprint_md5);
}

async fn rbac_users(ns: &Namespace, cmd: UserCommand) -> Result<()> {
    match cmd {
        UserCommand::Add { login, user } => {
            if ns.get_subuser(&login, &user).await?.is_some() {
                println!("user {login}/{user} exists");
            } else {
                ns.create_subuser(&login, &user).await?;
                println!("user {login}/{user} created");
            }
        }
        UserCommand::List { login } => {
            let roles = ns.list_roles(&login).await?;
            for u in ns.list_subusers(&login).await? {
                let of: Vec<String> = roles
                    .iter()
                    .filter(|r| r.members.contains(&u.name))
                    .map(|r| {
                        if r.default_members.contains(&u.name) {
                            format!("{} (default)", r.name)
                        } else {
                            r.name.clone()
                        }
                    })
                    .collect();
                println!("user {}/{} roles: {}", login, u.name, of.join(", "));
            }
        }
        UserCommand::Rm { login, user } => {
            if ns.delete_subuser(&login, &user).await? {
                println!("user {login}/{user} removed");
            } else {
                anyhow::bail!("user {login}/{user} does not exist");
            }
        }
    }
    Ok(())
}

async fn rbac_roles(ns: &Namespace, cmd: RoleCommand) -> Result<()> {
    match cmd {
        RoleCommand::Add {
            login,
            role,
            mut members,
            default_members,
            policies,
        } => {
            for d in &default_members {
                if !members.contains(d) {
                    members.push(d.clone());
                }
            }
            ns.put_role(&login, &role, &members, &default_members, &policies)
                .await?;
            println!("role {login}/{role} saved");
        }
        RoleCommand::List { login } => {
            for r in ns.list_roles(&login).await? {
                println!(
                    "role {} members: {} defaults: {} policies: {}",
                    r.name,
                    r.members.join(", "),
                    r.default_members.join(", "),
                    r.policies.join(", ")
                );
            }
        }
        RoleCommand::Rm { login, role } => {
            if ns.delete_role(&login, &role).await? {
                println!("role {login}/{role} removed");
            } else {
                anyhow::bail!("role {login}/{role} does not exist");
            }
        }
    }
    Ok(())
}

async fn rbac_policies(ns: &Namespace, cmd: PolicyCommand) -> Result<()> {
    match cmd {
        PolicyCommand::Add {
            login,
            policy,
            rules,
        } => {
            for r in &rules {
                auth::policy::Rule::parse(r)?;
            }
            ns.put_policy(&login, &policy, &rules).await?;
            println!("policy {login}/{policy} saved");
        }
        PolicyCommand::List { login } => {
            for p in ns.list_policies(&login).await? {
                println!("policy {}", p.name);
                for r in &p.rules {
                    println!("  {r}");
                }
            }
        }
        PolicyCommand::Rm { login, policy } => {
            if ns.delete_policy(&login, &policy).await? {
                println!("policy {login}/{policy} removed");
            } else {
                anyhow::bail!("policy {login}/{policy} does not exist");
            }
        }
    }
    Ok(())
}

async fn s3_keys(ns: &Namespace, cmd: S3KeyCommand) -> Result<()> {
    match cmd {
        S3KeyCommand::Add { login } => {
            if login.contains('/') {
                anyhow::bail!("S3 keys belong to accounts: subusers ({login}) cannot hold S3 keys");
            }
            let account = ns
                .get_account(&login)
                .await?
                .with_context(|| format!("account {login} does not exist"))?;
            if account.disabled {
                anyhow::bail!("account {login} is disabled");
            }
            let key = gateway::s3::generate_key(&login, meta::namespace::system_now_ms());
            ns.add_s3_key(&key).await?;
            println!("# S3 access key {} for {login}", key.access_key_id);
            println!("export AWS_ACCESS_KEY_ID={}", key.access_key_id);
            println!("export AWS_SECRET_ACCESS_KEY={}", key.secret);
        }
        S3KeyCommand::List { login } => {
            for k in ns.list_s3_keys(&login).await? {
                println!(
                    "{} created {}",
                    k.access_key_id,
                    gateway::format::iso_ms(i64::try_from(k.created_ms).unwrap_or(0))
                );
            }
        }
        S3KeyCommand::Rm { login, id } => {
            if ns.remove_s3_key(&login, &id).await? {
                println!("S3 key {id} of {login} removed");
            } else {
                anyhow::bail!("{login} has no S3 key {id}");
            }
        }
    }
    Ok(())
}
