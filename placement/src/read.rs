//! Ordering an object's copies for a read.

use std::collections::{HashMap, HashSet};

use crate::Candidate;
use crate::rng::SplitMix64;

/// Orders `copies` (node ids) for a reader to try one after another.
///
/// Copies on healthy nodes come first, shuffled so that reads of one hot
/// object spread over its copies; copies on unhealthy or unknown nodes come
/// last, in their original order — they are still worth a try when every
/// healthy copy fails, because a stale heartbeat does not prove a node is
/// down. Duplicate ids appear once.
pub fn order_for_read(copies: &[String], candidates: &[Candidate], seed: u64) -> Vec<String> {
    let health: HashMap<&str, bool> = candidates
        .iter()
        .rev() // so that the first entry for an id wins, as elsewhere
        .map(|c| (c.id.as_str(), c.healthy))
        .collect();
    let mut seen = HashSet::new();
    let (mut healthy, rest): (Vec<String>, Vec<String>) = copies
        .iter()
        .filter(|id| seen.insert(id.as_str()))
        .cloned()
        .partition(|id| health.get(id.as_str()).copied().unwrap_or(false));
    SplitMix64::new(seed).shuffle(&mut healthy);
    healthy.extend(rest);
    healthy
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn healthy_first_unhealthy_and_unknown_last_in_order() {
        let cands = vec![
            Candidate::new("a", "z", 1, true),
            Candidate::new("b", "z", 1, false),
            Candidate::new("c", "z", 1, true),
        ];
        for seed in 0..50 {
            let got = order_for_read(&ids(&["b", "x", "a", "c"]), &cands, seed);
            let mut head = got[..2].to_vec();
            head.sort();
            assert_eq!(head, ["a", "c"]);
            assert_eq!(&got[2..], ["b", "x"]);
        }
    }

    #[test]
    fn shuffle_varies_with_seed() {
        let cands: Vec<Candidate> = (0..4)
            .map(|i| Candidate::new(format!("n{i}"), "z", 1, true))
            .collect();
        let copies = ids(&["n0", "n1", "n2", "n3"]);
        let firsts: HashSet<String> = (0..100)
            .map(|s| order_for_read(&copies, &cands, s)[0].clone())
            .collect();
        assert_eq!(firsts.len(), 4, "every copy should lead sometimes");
    }

    proptest! {
        #[test]
        fn read_order_is_a_healthy_first_permutation(
            copies in prop::collection::vec(0u8..10, 0..8),
            health in prop::collection::vec(any::<bool>(), 10),
            seed in any::<u64>(),
        ) {
            let copies: Vec<String> = copies.iter().map(|i| format!("n{i}")).collect();
            // Node 9 is unknown to placement.
            let cands: Vec<Candidate> = (0..9).map(|i| Candidate::new(format!("n{i}"), "z", 1, health[i])).collect();
            let got = order_for_read(&copies, &cands, seed);
            let want: HashSet<&String> = copies.iter().collect();
            let have: HashSet<&String> = got.iter().collect();
            prop_assert_eq!(want, have);
            prop_assert_eq!(got.len(), copies.iter().collect::<HashSet<_>>().len());
            let is_healthy = |id: &String| cands.iter().any(|c| &c.id == id && c.healthy);
            let first_unhealthy = got.iter().position(|id| !is_healthy(id)).unwrap_or(got.len());
            prop_assert!(got[first_unhealthy..].iter().all(|id| !is_healthy(id)));
        }
    }
}
