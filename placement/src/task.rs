//! Choosing which copy of an input object runs a map task.

use std::collections::HashMap;

use crate::rng::SplitMix64;
use crate::{Candidate, PlacementError};

/// Picks the copy on the least-loaded healthy node.
///
/// `load` maps node id to the work already queued there (tasks, or any
/// monotone measure); a node missing from the map has load 0. Ties are broken
/// at random by `seed`, so equal nodes share the work. To retry a task
/// elsewhere, leave the failed copy out of `copies`.
///
/// # Errors
/// [`PlacementError::NoHealthyCopy`] when no copy is on a known healthy node.
pub fn choose_for_task(
    copies: &[String],
    candidates: &[Candidate],
    load: &HashMap<String, u64>,
    seed: u64,
) -> Result<String, PlacementError> {
    let mut healthy: Vec<&String> = copies
        .iter()
        .filter(|id| {
            candidates
                .iter()
                .find(|c| &c.id == *id)
                .is_some_and(|c| c.healthy)
        })
        .collect();
    healthy.sort();
    healthy.dedup();
    // Shuffle before the stable minimum so ties do not always go to the
    // same (smallest id) node.
    SplitMix64::new(seed).shuffle(&mut healthy);
    healthy
        .into_iter()
        .min_by_key(|id| load.get(id.as_str()).copied().unwrap_or(0))
        .cloned()
        .ok_or(PlacementError::NoHealthyCopy)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn setup() -> (Vec<String>, Vec<Candidate>) {
        let copies = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let cands = vec![
            Candidate::new("a", "z1", 1, true),
            Candidate::new("b", "z2", 1, false),
            Candidate::new("c", "z3", 1, true),
        ];
        (copies, cands)
    }

    #[test]
    fn picks_least_loaded_healthy_copy() {
        let (copies, cands) = setup();
        let load = HashMap::from([
            ("a".to_string(), 5),
            ("b".to_string(), 0),
            ("c".to_string(), 2),
        ]);
        for seed in 0..20 {
            assert_eq!(choose_for_task(&copies, &cands, &load, seed).unwrap(), "c");
        }
    }

    #[test]
    fn ties_spread_over_nodes() {
        let (copies, cands) = setup();
        let picked: HashSet<String> = (0..50)
            .map(|s| choose_for_task(&copies, &cands, &HashMap::new(), s).unwrap())
            .collect();
        assert_eq!(picked, HashSet::from(["a".to_string(), "c".to_string()]));
    }

    #[test]
    fn no_healthy_copy_is_an_error() {
        let (_, cands) = setup();
        let copies = vec!["b".to_string(), "unknown".to_string()];
        assert_eq!(
            choose_for_task(&copies, &cands, &HashMap::new(), 0),
            Err(PlacementError::NoHealthyCopy)
        );
    }
}
