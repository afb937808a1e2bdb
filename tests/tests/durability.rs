//! Durable over years: the background workers restore every object to its
//! durability, in a multi-process deployment (gateway, `tidepool node` x 3
//! on shared metadata), with clients on Manta's npm library.
//!
//! - a node killed and declared `lost`: repair makes a second copy of
//!   everything it held while a client keeps reading and writing, and
//!   every object's two copies are then read from the nodes' disks;
//! - a node's disk wiped while it is down and the node restarted empty:
//!   audit + repair alone bring every object back to two identical copies;
//! - a copy damaged on disk is found by scrub and replaced; a stray copy is
//!   removed by audit after the grace period and not before;
//! - `drain` of a live node under reads and writes moves every copy off
//!   it with no client error, and `admin node list` then says it is safe
//!   to remove.
//!
//! Copies are checked on disk: `<node>/objects/<2 hex>/<object id>`, where
//! the object id is the object's etag.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tidepool_tests::deployment::{Deployment, DeploymentOptions};
use tidepool_tests::{Cluster, ok, payload};

/// Worker pace for tests: passes every second, strays older than an hour.
fn fast_workers() -> Vec<String> {
    [
        "--repair-every",
        "1s",
        "--audit-every",
        "1s",
        "--scrub-every",
        "2s",
        "--gc-every",
        "1s",
        "--gc-grace",
        "1h",
        "--repair-rate",
        "0",
        "--scrub-rate",
        "0",
    ]
    .map(String::from)
    .to_vec()
}

fn deployment() -> Deployment {
    Deployment::start(DeploymentOptions {
        supervisors: 0,
        node_args: fast_workers(),
        ..DeploymentOptions::default()
    })
    .unwrap()
}

/// The body of object `i` (distinct per object, a few lines).
fn body(name: &str, i: usize) -> String {
    format!("{name} {i}\n").repeat(i % 7 + 1)
}

/// Stores `count` objects `<dir>/oNNNNN` (durability 2) through the npm
/// library, 8 in flight; returns `name -> etag` (the object id).
fn put_many(c: &Cluster, dir: &str, count: usize) -> HashMap<String, String> {
    ok(&c.manta("mmkdir", &["-p", dir]));
    let script = format!(
        r#"
        var manta = require('manta');
        var log = require('bunyan').createLogger({{name: 't', level: 'fatal'}});
        var client = manta.createBinClient({{log: log}});
        var n = 0, inflight = 0, total = {count};
        function next() {{
            while (inflight < 8 && n < total) {{
                var i = n++; inflight++;
                var name = '{dir}/o' + ('00000' + i).slice(-5);
                var body = (name + ' ' + i + '\n').repeat(i % 7 + 1);
                var s = new (require('stream').PassThrough)(); s.end(body);
                (function (name) {{
                    client.put(name, s, {{size: Buffer.byteLength(body)}}, function (err, res) {{
                        if (err) {{ console.error(err); process.exit(1); }}
                        console.log(name + ' ' + res.headers['etag']);
                        inflight--;
                        if (n === total && inflight === 0) {{ client.close(); }} else {{ next(); }}
                    }});
                }})(name);
            }}
        }}
        next();
    "#
    );
    let out = ok(&c.node(&script));
    let map: HashMap<String, String> = out
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, e)| (n.to_owned(), e.to_owned()))
        .collect();
    assert_eq!(map.len(), count, "every put printed its etag");
    map
}

/// A client on the npm library reading (and checking) the objects of
/// `dir` and writing new ones under `dir-load`, until `stop` exists.
/// Returns its summary line: `reads=N writes=M errors=K` plus the errors.
fn start_load(
    c: &Cluster,
    dir: &str,
    count: usize,
    stop: &Path,
) -> std::thread::JoinHandle<String> {
    let script = format!(
        r#"
        var fs = require('fs');
        var manta = require('manta');
        var log = require('bunyan').createLogger({{name: 't', level: 'fatal'}});
        var client = manta.createBinClient({{log: log}});
        var reads = 0, writes = 0, errors = [];
        var started = Date.now();
        function done() {{
            return fs.existsSync('{stop}') || Date.now() - started > 900000;
        }}
        function reader() {{
            if (done()) return finish();
            var i = Math.floor(Math.random() * {count});
            var name = '{dir}/o' + ('00000' + i).slice(-5);
            var want = (name + ' ' + i + '\n').repeat(i % 7 + 1);
            client.get(name, function (err, stream) {{
                if (err) {{ errors.push('get ' + name + ': ' + err); return reader(); }}
                var chunks = [];
                stream.on('data', function (c) {{ chunks.push(c); }});
                stream.on('error', function (e) {{ errors.push('get ' + name + ': ' + e); reader(); }});
                stream.on('end', function () {{
                    var got = Buffer.concat(chunks).toString();
                    if (got !== want) errors.push('wrong bytes for ' + name);
                    reads++;
                    reader();
                }});
            }});
        }}
        function writer() {{
            if (done()) return finish();
            var name = '{dir}-load/w' + writes;
            var s = new (require('stream').PassThrough)(); s.end(name);
            client.put(name, s, {{size: Buffer.byteLength(name), mkdirs: true}}, function (err) {{
                if (err) errors.push('put ' + name + ': ' + err); else writes++;
                writer();
            }});
        }}
        var running = 3;
        function finish() {{
            if (--running > 0) return;
            console.log('reads=' + reads + ' writes=' + writes + ' errors=' + errors.length);
            errors.slice(0, 20).forEach(function (e) {{ console.log(e); }});
            client.close();
        }}
        reader(); reader(); writer();
    "#,
        stop = stop.display()
    );
    let c = c.client_env();
    std::thread::spawn(move || {
        let mut node = std::process::Command::new("node");
        node.arg("-e").arg(&script).env_clear().envs(c);
        let modules = tidepool_tests::manta_bin_dir().join("../..");
        let nested = tidepool_tests::manta_bin_dir().join("../node_modules");
        node.env(
            "NODE_PATH",
            format!("{}:{}", modules.display(), nested.display()),
        );
        ok(&tidepool_tests::run_with_deadline(
            &mut node,
            None,
            Duration::from_secs(1000),
        ))
    })
}

/// Stops a load client and asserts it did work and saw no error.
fn finish_load(load: std::thread::JoinHandle<String>, stop: &Path) -> String {
    std::fs::write(stop, b"stop").unwrap();
    let summary = load.join().expect("load client thread");
    let first = summary.lines().next().unwrap_or_default().to_owned();
    assert!(
        first.ends_with("errors=0") && !first.contains("reads=0 ") && !first.contains("writes=0 "),
        "the client kept reading and writing without errors: {summary}"
    );
    first
}

fn copy_path(node_dir: &Path, object_id: &str) -> PathBuf {
    node_dir
        .join("objects")
        .join(&object_id[..2])
        .join(object_id)
}

/// Nodes (by index) whose disk holds an intact copy of the object.
fn intact_copies(d: &Deployment, object_id: &str, want: &[u8]) -> Vec<usize> {
    (0..d.nodes.len())
        .filter(|&i| std::fs::read(copy_path(&d.node_dir(i), object_id)).is_ok_and(|b| b == want))
        .collect()
}

/// `(name, etag, body)` of every object [`put_many`] stored.
fn expected_bodies(objects: &HashMap<String, String>) -> Vec<(&String, &String, String)> {
    objects
        .iter()
        .map(|(name, etag)| {
            let i: usize = name.rsplit('o').next().unwrap().parse().unwrap();
            (name, etag, body(name, i))
        })
        .collect()
}

/// Waits (bounded) until every object has at least `copies` intact copies
/// on disk among `nodes`; panics with the shortfall otherwise.
fn wait_restored(
    d: &Deployment,
    objects: &HashMap<String, String>,
    copies: usize,
    nodes: &[usize],
    what: &str,
) {
    let deadline = Instant::now() + Duration::from_secs(600);
    let expected = expected_bodies(objects);
    loop {
        let short: Vec<&String> = expected
            .iter()
            .filter(|(_, etag, want)| {
                intact_copies(d, etag, want.as_bytes())
                    .iter()
                    .filter(|i| nodes.contains(i))
                    .count()
                    < copies
            })
            .map(|(name, _, _)| *name)
            .collect();
        if short.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {} objects still short of {copies} intact copies, e.g. {:?}\nworkers:\n{}\n{}",
            short.len(),
            &short[..short.len().min(5)],
            d.admin(&["workers", "list"]).unwrap_or_default(),
            d.logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Passes `worker` of `node` has completed, from `admin workers list`.
fn passes(d: &Deployment, node: &str, worker: &str) -> u64 {
    let list = d.admin(&["workers", "list"]).unwrap();
    list.lines()
        .find(|l| l.starts_with(&format!("{node} {worker} ")))
        .and_then(|l| l.split("passes=").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn wait_passes(d: &Deployment, node: &str, worker: &str, at_least: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while passes(d, node, worker) < at_least {
        assert!(
            Instant::now() < deadline,
            "{node} {worker} never completed {at_least} passes:\n{}",
            d.admin(&["workers", "list"]).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn a_lost_node_is_repaired_under_load_and_every_copy_is_read_back() {
    let mut d = deployment();
    let dir = "/alice/stor/dur";
    let objects = put_many(&d.gateway, dir, 2000);
    // Durability 2 over 3 nodes: about two thirds of the objects have a
    // copy on node3.
    let on_node3 = objects
        .values()
        .filter(|etag| copy_path(&d.node_dir(2), etag).exists())
        .count();
    assert!(on_node3 > 0, "placement used node3");

    d.nodes[2].kill9();
    // Under a short node timeout (one flag, the same rule every process
    // applies) the dead node is `silent` within a few seconds.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = d.admin(&["node", "list", "--node-timeout", "2s"]).unwrap();
        if list.contains("node node3 silent") {
            break;
        }
        assert!(Instant::now() < deadline, "node3 never went silent: {list}");
        std::thread::sleep(Duration::from_millis(500));
    }
    d.admin(&["node", "lost", "node3"]).unwrap();
    let stop = d.gateway.root.path().join("stop-lost");
    let load = start_load(&d.gateway, dir, objects.len(), &stop);
    // Every object back at two intact copies, now on node1 and node2.
    wait_restored(&d, &objects, 2, &[0, 1], "repair after a lost node");
    let summary = finish_load(load, &stop);
    let list = d.admin(&["node", "list"]).unwrap();
    assert!(list.contains("node node3 lost"), "{list}");
    let workers = d.admin(&["workers", "list"]).unwrap();
    assert!(
        workers.contains("node1 repair") && workers.contains("node2 repair"),
        "{workers}"
    );
    // Heartbeats and the TiKV safe-point loop are workers too.
    assert!(
        workers.contains("node1 heartbeat ") && workers.contains("cluster tikv-safe-point"),
        "{workers}"
    );
    eprintln!("{on_node3} of 2000 objects had a copy on node3; load during repair: {summary}");
}

#[test]
fn a_wiped_disk_is_refilled_by_audit_and_repair_alone() {
    let mut d = deployment();
    let dir = "/alice/stor/wipe";
    let objects = put_many(&d.gateway, dir, 300);
    d.nodes[1].kill9();
    std::fs::remove_dir_all(d.node_dir(1).join("objects")).unwrap();
    d.nodes[1].restart().unwrap();
    wait_restored(
        &d,
        &objects,
        2,
        &[0, 1, 2],
        "audit + repair after a wiped disk",
    );
    // And the names read back through the gateway, byte for byte.
    for (name, _) in objects.iter().take(20) {
        let i: usize = name.rsplit('o').next().unwrap().parse().unwrap();
        let got = ok(&d.gateway.manta("mget", &[name]));
        assert_eq!(got, body(name, i), "{name}");
    }
}

#[test]
fn scrub_replaces_a_damaged_copy_and_audit_removes_only_old_strays() {
    let d = deployment();
    let big = payload(3 << 20, 17);
    d.gateway.mput("/alice/stor/big", &big);
    let info = ok(&d.gateway.manta("minfo", &["/alice/stor/big"]));
    let etag = info
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .expect("minfo prints the etag")
        .trim()
        .to_owned();
    let holders = intact_copies(&d, &etag, &big);
    assert_eq!(holders.len(), 2, "two copies at first");

    // Strays: copies no name refers to, one old and one new.
    let victim = copy_path(&d.node_dir(holders[0]), &etag);
    let old_stray_id = format!("{}0000-0000-4000-8000-000000000001", &etag[..4]);
    let new_stray_id = format!("{}0000-0000-4000-8000-000000000002", &etag[..4]);
    let stray_dir = d.node_dir(holders[0]);
    let old_stray = copy_path(&stray_dir, &old_stray_id);
    let new_stray = copy_path(&stray_dir, &new_stray_id);
    std::fs::write(&old_stray, b"nobody refers to me").unwrap();
    std::fs::write(&new_stray, b"nobody refers to me either").unwrap();
    let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&old_stray)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();

    // Damage one byte in the middle of the copy: a block a client reading
    // the first megabyte never touches.
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[2 << 20] ^= 0x5a;
    std::fs::write(&victim, &bytes).unwrap();

    let node = format!("node{}", holders[0] + 1);
    // The published count lags the worker by up to one publish interval
    // (2 s, two 1 s passes) and a pass may have been running when the
    // strays were written: four more passes include one that started
    // after them.
    let before = passes(&d, &node, "audit");
    wait_passes(&d, &node, "audit", before + 4);
    assert!(
        !old_stray.exists(),
        "a stray older than the grace period is removed"
    );
    assert!(
        new_stray.exists(),
        "a stray within the grace period is kept"
    );

    // Scrub takes the damaged copy out and repair makes a good one.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let good = intact_copies(&d, &etag, &big);
        if good.len() >= 2 && std::fs::read(&victim).map_or(true, |b| b == big) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the damaged copy was not replaced (intact on {good:?}):\n{}\n{}",
            d.admin(&["workers", "list"]).unwrap_or_default(),
            d.logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let got = d.gateway.manta("mget", &["/alice/stor/big"]);
    assert!(
        got.status.success() && got.stdout == big,
        "the object reads back intact"
    );
}

#[test]
fn drain_moves_every_copy_off_a_live_node_without_a_client_error() {
    let d = deployment();
    let dir = "/alice/stor/drain";
    let objects = put_many(&d.gateway, dir, 300);
    let stop = d.gateway.root.path().join("stop-drain");
    let load = start_load(&d.gateway, dir, objects.len(), &stop);
    let expected = expected_bodies(&objects);
    d.admin(&["node", "drain", "node1"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut samples = 0;
    loop {
        // Sampled throughout the drain: no object ever has fewer than its
        // two intact copies on the nodes' disks (a new copy is made before
        // the old one is let go).
        for (name, etag, want) in &expected {
            let held = intact_copies(&d, etag, want.as_bytes());
            assert!(
                held.len() >= 2,
                "{name} fell to {held:?} during the drain (sample {samples})"
            );
        }
        samples += 1;
        let list = d.admin(&["node", "list"]).unwrap();
        if list.contains("safe to remove") {
            assert!(list.contains("node node1 draining"), "{list}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node1 never drained:\n{list}\n{}",
            d.logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let summary = finish_load(load, &stop);
    wait_restored(&d, &objects, 2, &[1, 2], "drain");
    eprintln!("load during drain: {summary}; durability sampled {samples} times over all objects");
}
