//! Separate hosts on one machine for tests: Linux network namespaces, each
//! with its own IPv4 address, joined by veth pairs to one bridge in the
//! test's own (root) namespace, so the test process reaches every host
//! over the bridge and a link can really break.
//!
//! Faults, with nothing but iproute2 (no netem, nft or iptables needed):
//! - [`Net::isolate`]: the host's veth is taken down on the bridge side,
//!   so every packet to or from it is dropped silently (connections hang
//!   until their timeouts, as in a real partition; nothing is refused);
//! - [`Net::cut`]: two hosts lose each other only: each gets a permanent
//!   neighbour entry giving the other's address a MAC nobody has, so the
//!   bridge delivers their packets nowhere, again silently;
//! - [`Net::heal`] undoes both for every host.
//!
//! Guarantees: only namespaces and links this value created are touched,
//! all named `tpn<pid in hex>...` (interface names stay within Linux's 15
//! characters); dropping it deletes them, and [`Net::create`] first deletes
//! those left by crashed earlier runs (their pid no longer running). Every
//! `ip` command runs with a deadline. Needs root and `ip netns`:
//! [`Net::unavailable`] says why not, for tests to skip loudly.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Common prefix of every namespace and link this module creates.
const PREFIX: &str = "tpn";
/// A MAC no interface has (locally administered): the "nowhere" of a cut.
const NOWHERE_MAC: &str = "02:00:5e:00:de:ad";
/// Second octet of the test subnets `10.213.X.0/24`.
const SUBNET_OCTET: u8 = 213;

/// One host: a network namespace with one address on the bridge.
#[derive(Debug, Clone)]
pub struct Host {
    /// The test's name for it (`gw`, `n1`, ...).
    pub name: String,
    /// The namespace (`ip netns exec NETNS ...`).
    pub netns: String,
    /// Its address on the bridge.
    pub ip: Ipv4Addr,
    /// The veth end on the bridge, in the root namespace.
    root_dev: String,
    /// The veth end inside the namespace.
    ns_dev: String,
}

/// A set of hosts on one bridge. Dropping it deletes them.
#[derive(Debug)]
pub struct Net {
    bridge: String,
    bridge_ip: Ipv4Addr,
    hosts: Vec<Host>,
}

/// Runs `ip ARGS` with a deadline; an error says what `ip` printed.
fn ip(args: &[&str]) -> Result<String> {
    let mut cmd = Command::new("ip");
    cmd.args(args);
    let out = crate::run_with_deadline(&mut cmd, None, Duration::from_secs(20));
    if !out.status.success() {
        bail!("ip {}: {}", args.join(" "), crate::describe(&out));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The pid a name of ours embeds (`tpn<hex pid>...`), if it is ours.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let hex: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
    u32::from_str_radix(&hex, 16).ok()
}

/// Whether `name` is ours and its creator is gone.
fn stale(name: &str) -> bool {
    owner_pid(name).is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
}

/// Deletes namespaces and links left by earlier runs that crashed (their
/// creating process no longer exists). Best effort: a failure here only
/// leaves the leftovers where they were.
fn remove_stale() {
    if let Ok(list) = ip(&["netns", "list"]) {
        for ns in list.lines().filter_map(|l| l.split_whitespace().next()) {
            if stale(ns) {
                let _ = ip(&["netns", "delete", ns]);
            }
        }
    }
    if let Ok(list) = ip(&["-o", "link", "show"]) {
        for l in list.lines() {
            // `12: name@peer: <...` or `12: name: <...`
            let Some(name) = l.split(": ").nth(1) else {
                continue;
            };
            let name = name.split('@').next().unwrap_or(name);
            if stale(name) {
                let _ = ip(&["link", "delete", name]);
            }
        }
    }
}

impl Net {
    /// Why hosts cannot be made here (not root, no `ip netns`), or `None`
    /// when they can.
    pub fn unavailable() -> Option<String> {
        let uid = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .and_then(|l| l.split_whitespace().next().map(str::to_owned))
            });
        if uid.as_deref() != Some("0") {
            return Some(format!("not root (uid {uid:?})"));
        }
        if let Err(e) = ip(&["netns", "list"]) {
            return Some(format!("`ip netns` does not work: {e:#}"));
        }
        None
    }

    /// Creates one namespace per name in `names`, each with an address in
    /// a fresh `10.213.X.0/24` and a veth to a new bridge in the root
    /// namespace (address `.1`), every link up.
    pub fn create(names: &[&str]) -> Result<Net> {
        remove_stale();
        let tag = format!("{PREFIX}{:x}", std::process::id());
        // One subnet per run, not used by any route yet (another run's).
        let routes = ip(&["-4", "route", "show"])?;
        let third = (0..250u32)
            .map(|i| ((std::process::id() + i) % 250 + 1) as u8)
            .find(|x| !routes.contains(&format!("10.{SUBNET_OCTET}.{x}.")))
            .context("no free 10.213.X.0/24 subnet")?;
        let bridge = format!("{tag}s");
        if names.len() > 99 {
            bail!("at most 99 hosts");
        }
        let mut net = Net {
            bridge: bridge.clone(),
            bridge_ip: Ipv4Addr::new(10, SUBNET_OCTET, third, 1),
            hosts: Vec::new(),
        };
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/24", net.bridge_ip),
            "dev",
            &bridge,
        ])?;
        ip(&["link", "set", &bridge, "up"])?;
        for (i, name) in names.iter().enumerate() {
            let host = Host {
                name: (*name).to_owned(),
                netns: format!("{tag}-{name}"),
                ip: Ipv4Addr::new(10, SUBNET_OCTET, third, 10 + i as u8),
                root_dev: format!("{tag}h{i}"),
                ns_dev: format!("{tag}n{i}"),
            };
            // Pushed first: Drop deletes whatever part of it was made.
            net.hosts.push(host.clone());
            ip(&["netns", "add", &host.netns])?;
            ip(&[
                "link",
                "add",
                &host.root_dev,
                "type",
                "veth",
                "peer",
                "name",
                &host.ns_dev,
            ])?;
            ip(&["link", "set", &host.ns_dev, "netns", &host.netns])?;
            ip(&["link", "set", &host.root_dev, "master", &bridge, "up"])?;
            let n = host.netns.as_str();
            ip(&["-n", n, "link", "set", "lo", "up"])?;
            ip(&[
                "-n",
                n,
                "addr",
                "add",
                &format!("{}/24", host.ip),
                "dev",
                &host.ns_dev,
            ])?;
            ip(&["-n", n, "link", "set", &host.ns_dev, "up"])?;
        }
        Ok(net)
    }

    /// The host named `name`; panics on a name not given to [`Net::create`].
    pub fn host(&self, name: &str) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no host {name}"))
    }

    /// Every host, in creation order.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The root namespace's address on the bridge (the test process).
    pub fn bridge_ip(&self) -> Ipv4Addr {
        self.bridge_ip
    }

    /// Cuts `name` off from everyone (the test process included).
    pub fn isolate(&self, name: &str) -> Result<()> {
        ip(&["link", "set", &self.host(name).root_dev, "down"])?;
        Ok(())
    }

    /// Cuts `a` and `b` off from each other only, both ways.
    pub fn cut(&self, a: &str, b: &str) -> Result<()> {
        let (ha, hb) = (self.host(a), self.host(b));
        for (from, to) in [(ha, hb), (hb, ha)] {
            ip(&[
                "-n",
                &from.netns,
                "neigh",
                "replace",
                &to.ip.to_string(),
                "lladdr",
                NOWHERE_MAC,
                "nud",
                "permanent",
                "dev",
                &from.ns_dev,
            ])?;
        }
        Ok(())
    }

    /// Undoes every [`Net::isolate`] and [`Net::cut`].
    pub fn heal(&self) -> Result<()> {
        for h in &self.hosts {
            ip(&["link", "set", &h.root_dev, "up"])?;
            ip(&[
                "-n",
                &h.netns,
                "neigh",
                "flush",
                "dev",
                &h.ns_dev,
                "nud",
                "permanent",
            ])?;
        }
        Ok(())
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting a namespace deletes its veth end, and with it the peer.
        for h in &self.hosts {
            let _ = ip(&["netns", "delete", &h.netns]);
            let _ = ip(&["link", "delete", &h.root_dev]);
        }
        let _ = ip(&["link", "delete", &self.bridge]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_their_owner_and_fit_linux_limits() {
        assert_eq!(owner_pid("tpn3fffffh12"), Some(0x3fffff));
        assert_eq!(owner_pid("tpn1a2s"), Some(0x1a2));
        assert_eq!(owner_pid("tpn1a2-gw"), Some(0x1a2));
        assert_eq!(owner_pid("eth0"), None);
        assert_eq!(owner_pid("tpnxyz"), None);
        // The longest device name: max pid (2^22) + `h` + two digits.
        assert!(format!("{PREFIX}{:x}h99", 1u32 << 22).len() <= 15);
    }
}
