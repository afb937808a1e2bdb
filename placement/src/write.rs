//! Choosing the nodes that receive a new object.
//!
//! Algorithm: drop unhealthy nodes and nodes without room, give every
//! remaining node a random key weighted by its free space (Efraimidis–
//! Spirakis weighted sampling: `ln(u) / weight`, larger wins), sort each
//! zone's nodes by key, then take nodes round-robin over the zones — in each
//! round the zones are visited in the order of their best remaining key.
//! Round-robin is what makes the zone spread maximal and even: a zone gets a
//! second copy only once every zone that still has a node got its first.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};

use crate::rng::SplitMix64;
use crate::{Candidate, PlacementError};

/// Chooses `n` distinct nodes for a new object.
///
/// * Only healthy nodes with at least `size_hint` bytes free (and more than
///   zero bytes free when the size is unknown) are eligible.
/// * Copies go to distinct zones first; with more copies than zones, the
///   zones' counts differ by at most one unless a zone runs out of eligible
///   nodes.
/// * Within those rules, nodes with more free space are proportionally more
///   likely to be chosen.
/// * Duplicate ids in `candidates` count once (the first entry wins).
///
/// The order of the result is the order of choice (best first). `n == 0`
/// yields an empty list.
///
/// # Errors
/// [`PlacementError::NotEnoughNodes`] when fewer than `n` distinct healthy
/// nodes exist; [`PlacementError::NotEnoughSpace`] when enough are healthy
/// but fewer than `n` have room.
pub fn choose_for_write(
    candidates: &[Candidate],
    n: usize,
    size_hint: Option<u64>,
    seed: u64,
) -> Result<Vec<String>, PlacementError> {
    let needed = size_hint.unwrap_or(0);
    let mut seen = HashSet::new();
    let healthy: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| seen.insert(c.id.as_str()))
        .filter(|c| c.healthy)
        .collect();
    if healthy.len() < n {
        return Err(PlacementError::NotEnoughNodes {
            wanted: n,
            available: healthy.len(),
        });
    }
    let eligible: Vec<&Candidate> = healthy
        .into_iter()
        .filter(|c| c.free_bytes > 0 && c.free_bytes >= needed)
        .collect();
    if eligible.len() < n {
        return Err(PlacementError::NotEnoughSpace {
            wanted: n,
            available: eligible.len(),
            size: needed,
        });
    }

    let mut rng = SplitMix64::new(seed);
    let mut zones: BTreeMap<&str, Vec<Keyed<'_>>> = BTreeMap::new();
    for c in eligible {
        // Weighted key: with weight w, P(key_a > key_b) = w_a / (w_a + w_b).
        let key = rng.next_unit_open0().ln() / c.free_bytes as f64;
        zones
            .entry(c.az.as_str())
            .or_default()
            .push(Keyed { key, node: c });
    }
    for nodes in zones.values_mut() {
        nodes.sort_by(|a, b| a.better(b));
    }

    let mut chosen = Vec::with_capacity(n);
    let mut round = 0;
    while chosen.len() < n {
        let mut this_round: Vec<&Keyed<'_>> = zones
            .values()
            .filter_map(|nodes| nodes.get(round))
            .collect();
        if this_round.is_empty() {
            // Unreachable: `eligible.len() >= n` guarantees enough nodes.
            break;
        }
        this_round.sort_by(|a, b| a.better(b));
        for k in this_round {
            if chosen.len() == n {
                break;
            }
            chosen.push(k.node.id.clone());
        }
        round += 1;
    }
    Ok(chosen)
}

struct Keyed<'a> {
    key: f64,
    node: &'a Candidate,
}

impl Keyed<'_> {
    /// Total order, best first: larger key, then id (so ties are
    /// deterministic too).
    fn better(&self, other: &Self) -> Ordering {
        other
            .key
            .total_cmp(&self.key)
            .then_with(|| self.node.id.cmp(&other.node.id))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    const GIB: u64 = 1 << 30;

    fn c(id: &str, az: &str, free: u64, healthy: bool) -> Candidate {
        Candidate::new(id, az, free, healthy)
    }

    fn az_of<'a>(cands: &'a [Candidate], id: &str) -> &'a str {
        &cands.iter().find(|c| c.id == id).unwrap().az
    }

    #[test]
    fn spreads_over_distinct_zones_first() {
        let cands = vec![
            c("a1", "a", GIB, true),
            c("a2", "a", 100 * GIB, true),
            c("a3", "a", 100 * GIB, true),
            c("b1", "b", GIB, true),
            c("c1", "c", GIB, true),
        ];
        for seed in 0..200 {
            let got = choose_for_write(&cands, 3, None, seed).unwrap();
            let zones: HashSet<&str> = got.iter().map(|id| az_of(&cands, id)).collect();
            assert_eq!(zones.len(), 3, "seed {seed}: {got:?}");
        }
    }

    #[test]
    fn more_copies_than_zones_balances_counts() {
        let cands = vec![
            c("a1", "a", GIB, true),
            c("a2", "a", GIB, true),
            c("a3", "a", GIB, true),
            c("b1", "b", GIB, true),
            c("b2", "b", GIB, true),
        ];
        for seed in 0..100 {
            let got = choose_for_write(&cands, 4, None, seed).unwrap();
            let in_a = got.iter().filter(|id| id.starts_with('a')).count();
            assert_eq!(in_a, 2, "seed {seed}: {got:?}");
        }
    }

    #[test]
    fn never_picks_unhealthy_or_full_nodes() {
        let cands = vec![
            c("sick", "a", 100 * GIB, false),
            c("full", "b", 0, true),
            c("small", "c", 10, true),
            c("ok1", "a", GIB, true),
            c("ok2", "d", GIB, true),
        ];
        for seed in 0..100 {
            let got = choose_for_write(&cands, 2, Some(1000), seed).unwrap();
            let mut sorted = got.clone();
            sorted.sort();
            assert_eq!(sorted, ["ok1", "ok2"]);
        }
    }

    #[test]
    fn errors_distinguish_missing_nodes_from_missing_space() {
        let cands = vec![
            c("a", "a", GIB, true),
            c("b", "b", 10, true),
            c("c", "c", GIB, false),
        ];
        assert_eq!(
            choose_for_write(&cands, 3, None, 0),
            Err(PlacementError::NotEnoughNodes {
                wanted: 3,
                available: 2
            })
        );
        assert_eq!(
            choose_for_write(&cands, 2, Some(100), 0),
            Err(PlacementError::NotEnoughSpace {
                wanted: 2,
                available: 1,
                size: 100
            })
        );
        assert_eq!(choose_for_write(&cands, 0, None, 0), Ok(vec![]));
    }

    #[test]
    fn duplicate_ids_count_once() {
        let cands = vec![c("a", "a", GIB, true), c("a", "b", GIB, true)];
        assert!(matches!(
            choose_for_write(&cands, 2, None, 0),
            Err(PlacementError::NotEnoughNodes { available: 1, .. })
        ));
    }

    #[test]
    fn prefers_free_space_but_still_spreads_load() {
        // One zone, so only the weighting decides.
        let cands = vec![
            c("big", "a", 90 * GIB, true),
            c("small", "a", 10 * GIB, true),
        ];
        let mut wins: HashMap<String, u32> = HashMap::new();
        for seed in 0..2000 {
            let got = choose_for_write(&cands, 1, None, seed).unwrap();
            *wins.entry(got[0].clone()).or_default() += 1;
        }
        let big = wins["big"];
        let small = wins["small"];
        // Expected 1800 / 200; allow generous statistical slack.
        assert!(big > 1600 && small > 100, "big={big} small={small}");
    }

    #[test]
    fn deterministic_for_a_seed() {
        let cands: Vec<Candidate> = (0..20)
            .map(|i| c(&format!("n{i}"), &format!("z{}", i % 4), GIB + i, true))
            .collect();
        let a = choose_for_write(&cands, 5, None, 1234).unwrap();
        let b = choose_for_write(&cands, 5, None, 1234).unwrap();
        assert_eq!(a, b);
        let differs = (0..50).any(|s| choose_for_write(&cands, 5, None, s).unwrap() != a);
        assert!(differs, "different seeds should give different choices");
    }

    fn arb_candidates() -> impl Strategy<Value = Vec<Candidate>> {
        prop::collection::vec(
            (
                0u8..30,
                0u8..5,
                prop_oneof![Just(0u64), 1u64..1000, Just(u64::MAX)],
                prop::bool::weighted(0.8),
            ),
            0..25,
        )
        .prop_map(|v| {
            v.into_iter()
                .map(|(id, az, free, healthy)| {
                    c(&format!("n{id}"), &format!("z{az}"), free, healthy)
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn write_choice_invariants(
            cands in arb_candidates(),
            n in 0usize..8,
            size in prop::option::of(0u64..1200),
            seed in any::<u64>(),
        ) {
            // The first entry per id is the one that counts.
            let mut seen = HashSet::new();
            let unique: Vec<&Candidate> = cands.iter().filter(|c| seen.insert(c.id.clone())).collect();
            let eligible: Vec<&Candidate> = unique
                .iter()
                .copied()
                .filter(|c| c.healthy && c.free_bytes > 0 && c.free_bytes >= size.unwrap_or(0))
                .collect();
            match choose_for_write(&cands, n, size, seed) {
                Ok(got) => {
                    prop_assert_eq!(got.len(), n);
                    let distinct: HashSet<&String> = got.iter().collect();
                    prop_assert_eq!(distinct.len(), n, "ids must be distinct");
                    for id in &got {
                        prop_assert!(eligible.iter().any(|c| &c.id == id), "{} not eligible", id);
                    }
                    // Zone spread: as many zones as possible...
                    let mut per_zone: HashMap<&str, usize> = HashMap::new();
                    for id in &got {
                        let z = eligible.iter().find(|c| &c.id == id).unwrap().az.as_str();
                        *per_zone.entry(z).or_default() += 1;
                    }
                    let zones_available: HashSet<&str> = eligible.iter().map(|c| c.az.as_str()).collect();
                    prop_assert_eq!(per_zone.len(), n.min(zones_available.len()));
                    // ...and as even as possible: a zone with two more copies
                    // than another means the other one had no node left.
                    for z_low in &zones_available {
                        let low = per_zone.get(z_low).copied().unwrap_or(0);
                        let capacity = eligible.iter().filter(|c| c.az == *z_low).count();
                        for &high in per_zone.values() {
                            prop_assert!(high <= low + 1 || low == capacity);
                        }
                    }
                    prop_assert_eq!(choose_for_write(&cands, n, size, seed).unwrap(), got);
                }
                Err(PlacementError::NotEnoughNodes { wanted, available }) => {
                    prop_assert_eq!(wanted, n);
                    prop_assert!(available < n);
                    prop_assert_eq!(available, unique.iter().filter(|c| c.healthy).count());
                }
                Err(PlacementError::NotEnoughSpace { available, .. }) => {
                    prop_assert!(available < n);
                    prop_assert_eq!(available, eligible.len());
                }
                Err(e) => prop_assert!(false, "unexpected error {e}"),
            }
        }
    }
}
