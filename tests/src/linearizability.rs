//! A linearizability checker for single-object registers: Wing & Gong's
//! search with Lowe's memoisation, as Porcupine implements it.
//!
//! A history is, per object name, the operations clients ran on it: when
//! each was invoked, when its answer came, and what the answer was. The
//! history is linearizable when every operation can be given one instant
//! between its invocation and its answer such that, taken in that order,
//! the answers are those of one register. An operation whose outcome is
//! unknown (timeout, connection lost, 5xx after the request was sent) may
//! have taken effect at any instant after its invocation, or never: it is
//! checked with its answer at +infinity and accepting either effect, as
//! Porcupine does. Reads with unknown outcome say nothing and are dropped.
//!
//! The register holds `None` (no object) or a [`Value`]: every write in a
//! run stores a distinct value, so an `If-Match` etag (a distinct object id
//! per write) names exactly one value, and a conditional write is a
//! compare-and-set on values.
//!
//! Guarantees: [`check`] answers [`Verdict::Linearizable`] only when an
//! order exists, [`Verdict::Violation`] only when none does, and
//! [`Verdict::Inconclusive`] when the search exceeded its step budget
//! (every loop here is bounded).

use std::collections::{BTreeMap, HashSet};

/// A value written to a register; distinct for every write of a run.
pub type Value = u64;

/// What a client asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// `PUT` without conditions.
    Put(Value),
    /// `PUT` with `If-Match` naming the etag of the write of `expect`.
    PutIf {
        /// The value whose etag was sent.
        expect: Value,
        /// The value written.
        new: Value,
    },
    /// `GET`.
    Get,
    /// `DELETE`.
    Delete,
}

/// What the client was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// 2xx of a `PUT` or `DELETE`.
    Done,
    /// A `GET`'s answer: the value read (200), or `None` (404).
    Read(Option<Value>),
    /// 412 of a conditional `PUT`: the etag did not match, nothing written.
    PreconditionFailed,
    /// 404 of a `DELETE` (nothing to delete) or of a conditional `PUT`.
    NotFound,
    /// No answer, or one that does not say whether it took effect.
    Unknown,
}

/// One operation of a history. Times are from one clock (ns since the
/// run started); `ret` is ignored when the output is [`Output::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    /// Which client ran it (for reports).
    pub client: usize,
    /// Invocation time.
    pub call: u64,
    /// Answer time.
    pub ret: u64,
    /// The request.
    pub input: Input,
    /// The answer.
    pub output: Output,
}

/// The register's state: no object, or the value of the last write.
type State = Option<Value>;

/// The register: the state after `op` from `state`, or `None` when the
/// answer is impossible in `state`.
fn step(state: State, op: &Op) -> Option<State> {
    use Input::*;
    use Output::*;
    match (op.input, op.output) {
        (Put(v), Done | Unknown) => Some(Some(v)),
        (PutIf { expect, new }, Done) => (state == Some(expect)).then_some(Some(new)),
        (PutIf { expect, .. }, PreconditionFailed | NotFound) => {
            (state != Some(expect)).then_some(state)
        }
        (PutIf { expect, new }, Unknown) => Some(if state == Some(expect) {
            Some(new)
        } else {
            state
        }),
        (Get, Read(v)) => (state == v).then_some(state),
        (Delete, Done) => state.is_some().then_some(None),
        (Delete, NotFound) => state.is_none().then_some(None),
        (Delete, Unknown) => Some(None),
        _ => None,
    }
}

/// The checker's answer for one register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// An order exists.
    Linearizable,
    /// No order exists.
    Violation,
    /// The search ran out of steps.
    Inconclusive,
}

/// Search steps allowed per register before [`Verdict::Inconclusive`].
pub const STEP_BUDGET: u64 = 20_000_000;

const NONE: usize = usize::MAX;

/// A bit set of operation indexes.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
}

/// Checks one register's history, which starts from `initial`.
pub fn check(initial: State, history: &[Op]) -> Verdict {
    check_with_budget(initial, history, STEP_BUDGET)
}

/// [`check`] with an explicit step budget.
pub fn check_with_budget(initial: State, history: &[Op], budget: u64) -> Verdict {
    let ops: Vec<Op> = history
        .iter()
        .filter(|o| !(o.input == Input::Get && o.output == Output::Unknown))
        .copied()
        .collect();
    let n = ops.len();
    // Events: (time, is_return, op). Calls sort before returns at the same
    // instant, so touching operations count as concurrent (never a false
    // violation).
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * n);
    for (i, o) in ops.iter().enumerate() {
        let ret = if o.output == Output::Unknown {
            u64::MAX
        } else {
            o.ret.max(o.call)
        };
        events.push((o.call, false, i));
        events.push((ret, true, i));
    }
    events.sort();
    // A doubly linked list of events; node 0 is the head, event k is k+1.
    let len = events.len() + 1;
    let mut next: Vec<usize> = (1..=len).map(|k| if k < len { k } else { NONE }).collect();
    let mut prev: Vec<usize> = (0..len).map(|k| k.wrapping_sub(1)).collect();
    prev[0] = NONE;
    let mut matching = vec![NONE; len];
    let mut call_node = vec![NONE; n];
    for (k, &(_, is_ret, i)) in events.iter().enumerate() {
        if is_ret {
            matching[call_node[i]] = k + 1;
        } else {
            call_node[i] = k + 1;
        }
    }
    let op_of = |node: usize| events[node - 1].2;
    let is_call = |node: usize| !events[node - 1].1;

    fn unlink(next: &mut [usize], prev: &mut [usize], node: usize) {
        let (p, x) = (prev[node], next[node]);
        next[p] = x;
        if x != NONE {
            prev[x] = p;
        }
    }
    fn relink(next: &mut [usize], prev: &mut [usize], node: usize) {
        let (p, x) = (prev[node], next[node]);
        next[p] = node;
        if x != NONE {
            prev[x] = node;
        }
    }

    let mut state = initial;
    let mut linearized = Bits::new(n);
    let mut seen: HashSet<(Bits, State)> = HashSet::new();
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut entry = next[0];
    let mut steps = 0u64;
    while next[0] != NONE {
        steps += 1;
        if steps > budget {
            return Verdict::Inconclusive;
        }
        if entry == NONE {
            // Only reachable through a malformed list; treat as a failed
            // branch rather than loop.
            return Verdict::Inconclusive;
        }
        if is_call(entry) {
            let i = op_of(entry);
            if let Some(s) = step(state, &ops[i]) {
                let mut lin = linearized.clone();
                lin.set(i);
                if seen.insert((lin.clone(), s)) {
                    stack.push((entry, state));
                    state = s;
                    linearized = lin;
                    // Lift the call and its return out of the list.
                    unlink(&mut next, &mut prev, entry);
                    unlink(&mut next, &mut prev, matching[entry]);
                    entry = next[0];
                    continue;
                }
            }
            entry = next[entry];
        } else {
            // A return whose call is not linearized yet: backtrack.
            let Some((e, s)) = stack.pop() else {
                return Verdict::Violation;
            };
            state = s;
            linearized.clear(op_of(e));
            relink(&mut next, &mut prev, matching[e]);
            relink(&mut next, &mut prev, e);
            entry = next[e];
        }
    }
    Verdict::Linearizable
}

/// The result of checking every register of a run.
#[derive(Debug, Default)]
pub struct Report {
    /// Registers checked.
    pub registers: usize,
    /// Operations checked (reads with unknown outcome not counted).
    pub operations: usize,
    /// Registers with no valid order, with their histories.
    pub violations: Vec<(String, Vec<Op>)>,
    /// Registers whose search ran out of steps.
    pub inconclusive: Vec<String>,
}

impl Report {
    /// Whether every register was found linearizable.
    pub fn ok(&self) -> bool {
        self.violations.is_empty() && self.inconclusive.is_empty()
    }
}

/// Checks every register's history; each starts empty (`None`).
pub fn check_all(histories: &BTreeMap<String, Vec<Op>>) -> Report {
    let mut r = Report::default();
    for (name, ops) in histories {
        r.registers += 1;
        r.operations += ops
            .iter()
            .filter(|o| !(o.input == Input::Get && o.output == Output::Unknown))
            .count();
        match check(None, ops) {
            Verdict::Linearizable => {}
            Verdict::Violation => {
                let mut ops = ops.clone();
                ops.sort_by_key(|o| o.call);
                r.violations.push((name.clone(), ops));
            }
            Verdict::Inconclusive => r.inconclusive.push(name.clone()),
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::Input::*;
    use super::Output::*;
    use super::*;

    fn op(call: u64, ret: u64, input: Input, output: Output) -> Op {
        Op {
            client: 0,
            call,
            ret,
            input,
            output,
        }
    }

    fn lin(h: &[Op]) -> bool {
        match check(None, h) {
            Verdict::Linearizable => true,
            Verdict::Violation => false,
            Verdict::Inconclusive => panic!("inconclusive"),
        }
    }

    #[test]
    fn sequential_register_history_is_linearizable() {
        assert!(lin(&[
            op(0, 1, Get, Read(None)),
            op(2, 3, Put(1), Done),
            op(4, 5, Get, Read(Some(1))),
            op(6, 7, Put(2), Done),
            op(8, 9, Get, Read(Some(2))),
            op(10, 11, Delete, Done),
            op(12, 13, Get, Read(None)),
            op(14, 15, Delete, NotFound),
        ]));
    }

    #[test]
    fn a_stale_read_after_an_acknowledged_overwrite_is_rejected() {
        assert!(!lin(&[
            op(0, 10, Put(1), Done),
            op(20, 30, Put(2), Done),
            op(40, 50, Get, Read(Some(1))),
        ]));
    }

    #[test]
    fn a_lost_acknowledged_write_is_rejected() {
        assert!(!lin(&[
            op(0, 10, Put(1), Done),
            op(100, 110, Get, Read(None)),
        ]));
    }

    #[test]
    fn reads_concurrent_with_a_write_may_see_either_but_not_go_back() {
        assert!(lin(&[
            op(0, 100, Put(1), Done),
            op(10, 20, Get, Read(None)),
            op(30, 40, Get, Read(Some(1))),
        ]));
        assert!(!lin(&[
            op(0, 100, Put(1), Done),
            op(10, 20, Get, Read(Some(1))),
            op(30, 40, Get, Read(None)),
        ]));
    }

    #[test]
    fn a_value_never_written_is_rejected() {
        assert!(!lin(&[
            op(0, 10, Put(1), Done),
            op(20, 30, Get, Read(Some(7)))
        ]));
    }

    #[test]
    fn a_write_with_unknown_outcome_may_apply_late_or_never_but_once() {
        // Never observed: fine.
        assert!(lin(&[
            op(0, 0, Put(1), Unknown),
            op(50, 60, Get, Read(None)),
        ]));
        // Observed long after the client gave up: fine.
        assert!(lin(&[
            op(0, 0, Put(1), Unknown),
            op(50, 60, Get, Read(None)),
            op(70, 80, Get, Read(Some(1))),
        ]));
        // Observed, then gone without a delete: not fine.
        assert!(!lin(&[
            op(0, 0, Put(1), Unknown),
            op(50, 60, Get, Read(Some(1))),
            op(70, 80, Get, Read(None)),
        ]));
        // An unknown write cannot take effect before it was invoked.
        assert!(!lin(&[
            op(0, 10, Get, Read(Some(1))),
            op(20, 20, Put(1), Unknown),
        ]));
    }

    #[test]
    fn conditional_writes_are_compare_and_set() {
        assert!(lin(&[
            op(0, 1, Put(1), Done),
            op(2, 3, PutIf { expect: 1, new: 2 }, Done),
            op(4, 5, PutIf { expect: 1, new: 3 }, PreconditionFailed),
            op(6, 7, Get, Read(Some(2))),
        ]));
        // Two sequential CAS from the same value cannot both succeed.
        assert!(!lin(&[
            op(0, 1, Put(1), Done),
            op(2, 3, PutIf { expect: 1, new: 2 }, Done),
            op(4, 5, PutIf { expect: 1, new: 3 }, Done),
        ]));
        // Concurrent ones cannot either.
        assert!(!lin(&[
            op(0, 1, Put(1), Done),
            op(2, 10, PutIf { expect: 1, new: 2 }, Done),
            op(3, 9, PutIf { expect: 1, new: 3 }, Done),
        ]));
        // A 412 while the etag matched is wrong.
        assert!(!lin(&[
            op(0, 1, Put(1), Done),
            op(2, 3, PutIf { expect: 1, new: 2 }, PreconditionFailed),
        ]));
        // A CAS on a missing object cannot succeed.
        assert!(!lin(&[op(0, 1, PutIf { expect: 1, new: 2 }, Done)]));
    }

    #[test]
    fn an_unknown_conditional_write_applies_only_if_it_matched() {
        assert!(lin(&[
            op(0, 1, Put(1), Done),
            op(2, 2, PutIf { expect: 1, new: 2 }, Unknown),
            op(10, 11, Get, Read(Some(2))),
        ]));
        assert!(!lin(&[
            op(0, 1, Put(5), Done),
            op(2, 2, PutIf { expect: 1, new: 2 }, Unknown),
            op(10, 11, Get, Read(Some(2))),
        ]));
    }

    #[test]
    fn deletes_are_checked() {
        assert!(!lin(&[
            op(0, 1, Put(1), Done),
            op(2, 3, Delete, Done),
            op(4, 5, Get, Read(Some(1))),
        ]));
        assert!(!lin(&[op(0, 1, Put(1), Done), op(2, 3, Delete, NotFound)]));
        assert!(!lin(&[op(0, 1, Delete, Done)]));
    }

    #[test]
    fn many_concurrent_writers_are_searched_within_budget() {
        // 12 overlapping writes, then a read of each of the last ones:
        // the search must find an order without exhausting its budget.
        let mut h: Vec<Op> = (0..12).map(|i| op(i, 100 + i, Put(i + 1), Done)).collect();
        h.push(op(200, 210, Get, Read(Some(12))));
        assert!(lin(&h));
        h.push(op(220, 230, Get, Read(Some(3))));
        assert!(!lin(&h));
    }

    #[test]
    fn the_budget_bounds_the_search() {
        let h: Vec<Op> = (0..20).map(|i| op(0, 1000, Put(i + 1), Done)).collect();
        let mut h = h;
        h.push(op(2000, 2001, Get, Read(Some(99))));
        assert_eq!(check_with_budget(None, &h, 50), Verdict::Inconclusive);
    }

    #[test]
    fn check_all_reports_the_failing_register_only() {
        let mut m = BTreeMap::new();
        m.insert(
            "good".to_owned(),
            vec![op(0, 1, Put(1), Done), op(2, 3, Get, Read(Some(1)))],
        );
        m.insert(
            "bad".to_owned(),
            vec![op(0, 1, Put(2), Done), op(2, 3, Get, Read(None))],
        );
        let r = check_all(&m);
        assert_eq!(r.registers, 2);
        assert_eq!(r.operations, 4);
        assert!(!r.ok());
        assert_eq!(r.violations.len(), 1);
        assert_eq!(r.violations[0].0, "bad");
    }
}
