//! `tidepool admin`: accounts and SSH keys in a deployment's metadata.
//!
//! The embedded metadata file is held by one process at a time, so with it
//! these commands work on a data directory whose `tidepool up` is stopped;
//! with `--meta tikv://...` they work on a running deployment.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
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
    /// Lists accounts, their keys, and the storage nodes.
    List,
    /// The cluster credential internal requests are signed with.
    #[command(subcommand)]
    Cluster(ClusterCommand),
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
    /// Adds an SSH public key (OpenSSH `.pub` file) to an account or one of its subusers.
    Add {
        login: String,
        pubkey_file: PathBuf,
        /// Register the key for this subuser of the account.
        #[arg(long)]
        subuser: Option<String>,
    },
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
        }) => {
            let key = read_public_key(&pubkey_file)?;
            ensure_account_key(&ns, &login, subuser.as_deref(), &key).await?;
            println!(
                "key {} ({}) registered for {login}",
                key.fingerprint_md5, key.fingerprint_sha256
            );
        }
        AdminCommand::Cluster(ClusterCommand::Init { .. }) => {}
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
                    "node {} az={} url={} used={}/{} state={:?}",
                    node.id, node.az, node.url, node.capacity_used, node.capacity_total, node.state
                );
            }
        }
    }
    Ok(())
}
