//! The partition suite's short version (see `tidepool_tests::partitions`
//! and docs/partitions.md): gateway, 3 nodes, 2 supervisors and the
//! metadata tier each on a host of its own (network namespaces), a fixed
//! seed's faults for 100 s under clients, then every promise checked:
//! linearizable registers, right bytes, jobs' outputs exactly once,
//! listing agreeing with reads, every object back at two intact copies.
//!
//! Skips (passing, with a message) where network namespaces cannot be
//! made (not root, no `ip netns`).

use std::time::Duration;

use tidepool_tests::partitions::{Config, Outcome, run};

/// The CI seed.
const SEED: u64 = 20261206;

#[test]
fn every_promise_holds_under_partitions_kills_and_heals() {
    match run(&Config::ci(SEED, Duration::from_secs(100))).unwrap() {
        Outcome::Skipped(why) => eprintln!("SKIPPED: network namespaces unavailable: {why}"),
        Outcome::Ran(summary) => {
            let report = summary.render();
            eprintln!("{report}");
            for l in &summary.fault_log {
                eprintln!("fault {l}");
            }
            assert!(summary.ok(), "{report}");
            assert!(
                summary.linearizability.operations > 100,
                "the clients did work: {report}"
            );
            assert!(!summary.faults.is_empty(), "faults were injected: {report}");
        }
    }
}
