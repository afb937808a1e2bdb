//! Fair admission of tasks to one node's compute capacity.
//!
//! A node runs at most `capacity.stages` wasm instances (pipeline stages)
//! and `capacity.tasks` tasks at once. A task asks for its stages before it
//! runs and gives them back when it ends. The rule, per account:
//!
//! - an account never grows past `capacity - capacity / 4` (of stages and
//!   of tasks): a quarter of the node stays free of any single account, so
//!   a second tenant arriving while one keeps the node busy starts at once
//!   rather than waiting for one of the first tenant's tasks to end (tasks
//!   are never preempted);
//! - while another account waits, an account is granted more only up to its
//!   share, `ceil(capacity / active accounts)` of stages and of tasks, where
//!   the active accounts are those holding or waiting; the rest queue;
//! - an account holding nothing is always eligible for its first request
//!   (if it fits in what is free), so a pipeline wider than a share still
//!   runs;
//! - requests of one account are granted in order (FIFO per account);
//!   among accounts, eligible requests are granted oldest first, and an
//!   account that must wait never blocks another that may go.
//!
//! What this does not give: several accounts together can still fill the
//! node (each within its cap), and then a newcomer waits, queued, for the
//! first task to end; it is never failed for it.
//!
//! A request larger than the whole capacity can never run and is refused
//! at once ([`Refused`]). [`FairQueue`] is the pure decision (unit tested);
//! [`Admission`] wraps it for async callers: [`Admission::acquire`] waits
//! until granted and returns a [`Permit`] that gives the capacity back when
//! dropped; dropping the waiting future withdraws the request.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// What a node can run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Wasm instances (pipeline stages) at once.
    pub stages: u32,
    /// Tasks at once.
    pub tasks: u32,
}

/// Default wasm instances one node runs at once.
pub const DEFAULT_NODE_STAGES: u32 = 128;

/// A request that can never be granted: it is larger than the node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the task needs {stages} concurrent pipeline stages; a node runs at most {capacity}")]
pub struct Refused {
    pub stages: u32,
    pub capacity: u32,
}

/// Identifies one request in a [`FairQueue`].
pub type Ticket = u64;

#[derive(Debug, Default, Clone, Copy)]
struct Held {
    stages: u32,
    tasks: u32,
}

#[derive(Debug)]
struct Waiting {
    ticket: Ticket,
    stages: u32,
}

/// The pure admission state of one node.
#[derive(Debug)]
pub struct FairQueue {
    capacity: Capacity,
    used: Held,
    held: HashMap<String, Held>,
    queues: HashMap<String, VecDeque<Waiting>>,
    granted: HashMap<Ticket, (String, u32)>,
    next: Ticket,
}

fn ceil_div(a: u32, b: u32) -> u32 {
    a.div_ceil(b.max(1))
}

impl FairQueue {
    pub fn new(capacity: Capacity) -> FairQueue {
        FairQueue {
            capacity: Capacity {
                stages: capacity.stages.max(1),
                tasks: capacity.tasks.max(1),
            },
            used: Held::default(),
            held: HashMap::new(),
            queues: HashMap::new(),
            granted: HashMap::new(),
            next: 0,
        }
    }

    /// Queues a request of `account` for `stages` (at least 1).
    pub fn enqueue(&mut self, account: &str, stages: u32) -> Result<Ticket, Refused> {
        let stages = stages.max(1);
        if stages > self.capacity.stages {
            return Err(Refused {
                stages,
                capacity: self.capacity.stages,
            });
        }
        self.next += 1;
        let ticket = self.next;
        self.queues
            .entry(account.to_owned())
            .or_default()
            .push_back(Waiting { ticket, stages });
        Ok(ticket)
    }

    /// Grants every request that may go now, oldest first; returns their
    /// tickets (each must later be [`release`](Self::release)d).
    pub fn grant(&mut self) -> Vec<Ticket> {
        let mut out = Vec::new();
        loop {
            // Accounts whose head request may go now; oldest head first.
            let mut best: Option<(&String, Ticket, u32)> = None;
            for (acct, q) in &self.queues {
                let Some(head) = q.front() else { continue };
                if !self.eligible(acct, head.stages) {
                    continue;
                }
                if best.is_none_or(|(_, t, _)| head.ticket < t) {
                    best = Some((acct, head.ticket, head.stages));
                }
            }
            let Some((acct, ticket, stages)) = best else {
                return out;
            };
            let acct = acct.clone();
            if let Some(q) = self.queues.get_mut(&acct) {
                q.pop_front();
                if q.is_empty() {
                    self.queues.remove(&acct);
                }
            }
            let h = self.held.entry(acct.clone()).or_default();
            h.stages += stages;
            h.tasks += 1;
            self.used.stages += stages;
            self.used.tasks += 1;
            self.granted.insert(ticket, (acct, stages));
            out.push(ticket);
        }
    }

    fn eligible(&self, account: &str, stages: u32) -> bool {
        if self.used.stages + stages > self.capacity.stages
            || self.used.tasks + 1 > self.capacity.tasks
        {
            return false;
        }
        let held = self.held.get(account).copied().unwrap_or_default();
        if held.tasks == 0 {
            return true;
        }
        // The reserve no single account may take.
        let cap = |c: u32| c - c / 4;
        if held.stages + stages > cap(self.capacity.stages)
            || held.tasks + 1 > cap(self.capacity.tasks)
        {
            return false;
        }
        let others_wait = self
            .queues
            .iter()
            .any(|(a, q)| a != account && !q.is_empty());
        if !others_wait {
            return true;
        }
        let active = self
            .held
            .keys()
            .chain(self.queues.keys())
            .collect::<std::collections::HashSet<_>>()
            .len() as u32;
        held.stages + stages <= ceil_div(self.capacity.stages, active)
            && held.tasks < ceil_div(self.capacity.tasks, active)
    }

    /// Gives back a granted request, or withdraws a waiting one.
    pub fn release(&mut self, ticket: Ticket) {
        if let Some((acct, stages)) = self.granted.remove(&ticket) {
            self.used.stages -= stages;
            self.used.tasks -= 1;
            if let Some(h) = self.held.get_mut(&acct) {
                h.stages -= stages;
                h.tasks -= 1;
                if h.tasks == 0 {
                    self.held.remove(&acct);
                }
            }
            return;
        }
        self.queues.retain(|_, q| {
            q.retain(|w| w.ticket != ticket);
            !q.is_empty()
        });
    }

    /// Stages and tasks granted now.
    pub fn in_use(&self) -> Capacity {
        Capacity {
            stages: self.used.stages,
            tasks: self.used.tasks,
        }
    }

    /// Requests waiting now.
    pub fn waiting(&self) -> usize {
        self.queues.values().map(VecDeque::len).sum()
    }
}

#[derive(Debug)]
struct Inner {
    queue: FairQueue,
    wakers: HashMap<Ticket, oneshot::Sender<()>>,
}

/// [`FairQueue`] for async callers. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Admission(Arc<Mutex<Inner>>);

/// Granted capacity; given back on drop.
#[derive(Debug)]
pub struct Permit {
    adm: Admission,
    ticket: Ticket,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.adm.release(self.ticket);
    }
}

/// Withdraws a request whose waiter went away (cancelled or timed out).
struct Withdraw {
    adm: Admission,
    ticket: Option<Ticket>,
}

impl Drop for Withdraw {
    fn drop(&mut self) {
        if let Some(t) = self.ticket {
            // Granted in the meantime or still queued: either way it goes.
            self.adm.release(t);
        }
    }
}

impl Admission {
    pub fn new(capacity: Capacity) -> Admission {
        Admission(Arc::new(Mutex::new(Inner {
            queue: FairQueue::new(capacity),
            wakers: HashMap::new(),
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until `account` may run a task of `stages` stages. `Err` at
    /// once if the node can never run it.
    pub async fn acquire(&self, account: &str, stages: u32) -> Result<Permit, Refused> {
        let (tx, rx) = oneshot::channel();
        let ticket = {
            let mut g = self.lock();
            let t = g.queue.enqueue(account, stages)?;
            g.wakers.insert(t, tx);
            Self::wake(&mut g);
            t
        };
        let mut guard = Withdraw {
            adm: self.clone(),
            ticket: Some(ticket),
        };
        // The sender lives in `wakers` until granted, so `Err` cannot
        // happen while queued; treat it as granted either way.
        let _ = rx.await;
        guard.ticket = None;
        Ok(Permit {
            adm: self.clone(),
            ticket,
        })
    }

    fn release(&self, ticket: Ticket) {
        let mut g = self.lock();
        g.wakers.remove(&ticket);
        g.queue.release(ticket);
        Self::wake(&mut g);
    }

    fn wake(g: &mut Inner) {
        for t in g.queue.grant() {
            if let Some(tx) = g.wakers.remove(&t) {
                let _ = tx.send(());
            }
        }
    }

    /// Stages and tasks granted now.
    pub fn in_use(&self) -> Capacity {
        self.lock().queue.in_use()
    }

    /// Requests waiting now.
    pub fn waiting(&self) -> usize {
        self.lock().queue.waiting()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(stages: u32, tasks: u32) -> FairQueue {
        FairQueue::new(Capacity { stages, tasks })
    }

    #[test]
    fn alone_an_account_takes_all_but_the_reserve() {
        let mut f = q(8, 10);
        let a: Vec<_> = (0..4).map(|_| f.enqueue("bob", 2).unwrap()).collect();
        assert_eq!(f.grant(), a[..3].to_vec(), "a quarter stays free");
        assert_eq!(f.in_use().stages, 6);
        f.release(a[0]);
        assert_eq!(f.grant(), vec![a[3]]);
        // A first request wider than the cap still runs alone.
        let mut f = q(8, 10);
        let wide = f.enqueue("bob", 8).unwrap();
        assert_eq!(f.grant(), vec![wide]);
    }

    #[test]
    fn a_newcomer_starts_while_a_hog_keeps_the_node_busy() {
        // One node's default: 128 stages, 4 tasks; bob's 64-stage loops.
        let mut f = q(128, 4);
        let bob: Vec<_> = (0..6).map(|_| f.enqueue("bob", 64).unwrap()).collect();
        assert_eq!(f.grant(), vec![bob[0]]);
        // Alice comes while bob's tasks run (none ends): she goes at once.
        let alice = f.enqueue("alice", 1).unwrap();
        assert_eq!(f.grant(), vec![alice]);
        // Many small bob tasks still leave a task slot free.
        let mut f = q(128, 4);
        let bob: Vec<_> = (0..6).map(|_| f.enqueue("bob", 1).unwrap()).collect();
        assert_eq!(f.grant(), bob[..3].to_vec());
        let alice = f.enqueue("alice", 1).unwrap();
        assert_eq!(f.grant(), vec![alice]);
    }

    #[test]
    fn a_waiting_account_gets_its_share_before_the_hog() {
        let mut f = q(8, 10);
        let bob: Vec<_> = (0..3).map(|_| f.enqueue("bob", 2).unwrap()).collect();
        assert_eq!(f.grant().len(), 3);
        let carol = f.enqueue("carol", 2).unwrap();
        assert_eq!(f.grant(), vec![carol], "the node is full now");
        // Bob queues more, then alice arrives.
        let bob_more: Vec<_> = (0..3).map(|_| f.enqueue("bob", 2).unwrap()).collect();
        let alice = f.enqueue("alice", 1).unwrap();
        assert!(f.grant().is_empty());
        // A bob task ends: alice (holding nothing) goes first, although
        // bob's requests are older.
        f.release(bob[0]);
        assert_eq!(f.grant(), vec![alice]);
        // No one else waits now, so bob may grow again, up to his cap.
        f.release(bob[1]);
        assert_eq!(f.grant(), vec![bob_more[0]]);
    }

    #[test]
    fn share_caps_an_account_while_others_wait() {
        let mut f = q(8, 10);
        let a1 = f.enqueue("alice", 4).unwrap();
        assert_eq!(f.grant(), vec![a1]);
        let b1 = f.enqueue("bob", 1).unwrap();
        assert_eq!(f.grant(), vec![b1]);
        // carol waits for a big slot; alice may not grow past ceil(8/3)=3
        // (she holds 4) while carol waits, bob (1) may take 2 more.
        let c1 = f.enqueue("carol", 4).unwrap();
        let a2 = f.enqueue("alice", 1).unwrap();
        let b2 = f.enqueue("bob", 2).unwrap();
        assert_eq!(f.grant(), vec![b2]);
        assert_eq!(f.in_use().stages, 7);
        f.release(a1);
        // 5 free now, and carol and alice hold nothing: both go, oldest first.
        assert_eq!(f.grant(), vec![c1, a2]);
        assert_eq!(f.in_use().stages, 8);
    }

    #[test]
    fn fifo_within_an_account() {
        let mut f = q(5, 10);
        let big = f.enqueue("bob", 3).unwrap();
        assert_eq!(f.grant(), vec![big]);
        let big2 = f.enqueue("bob", 3).unwrap();
        let small = f.enqueue("bob", 1).unwrap();
        // The small one fits but must not overtake bob's older request.
        assert!(f.grant().is_empty());
        f.release(big);
        assert_eq!(f.grant(), vec![big2, small]);
    }

    #[test]
    fn task_slots_are_shared_too() {
        let mut f = q(100, 2);
        let b: Vec<_> = (0..3).map(|_| f.enqueue("bob", 1).unwrap()).collect();
        assert_eq!(f.grant(), b[..2].to_vec());
        let a = f.enqueue("alice", 1).unwrap();
        f.release(b[0]);
        assert_eq!(f.grant(), vec![a]);
    }

    #[test]
    fn too_wide_is_refused_and_withdrawn_requests_vanish() {
        let mut f = q(4, 10);
        assert_eq!(
            f.enqueue("bob", 5),
            Err(Refused {
                stages: 5,
                capacity: 4
            })
        );
        let a = f.enqueue("bob", 4).unwrap();
        assert_eq!(f.grant(), vec![a]);
        let w = f.enqueue("alice", 1).unwrap();
        f.release(w);
        assert_eq!(f.waiting(), 0);
        f.release(a);
        assert_eq!(
            f.in_use(),
            Capacity {
                stages: 0,
                tasks: 0
            }
        );
    }

    #[tokio::test]
    async fn async_waiters_are_woken_and_dropping_withdraws() {
        let adm = Admission::new(Capacity {
            stages: 2,
            tasks: 10,
        });
        let p1 = adm.acquire("bob", 2).await.unwrap();
        let waiting = adm.acquire("alice", 1);
        tokio::pin!(waiting);
        assert!(
            futures::poll!(waiting.as_mut()).is_pending(),
            "node is full"
        );
        assert_eq!(adm.waiting(), 1);
        drop(p1);
        let p2 = waiting.await.unwrap();
        assert_eq!(adm.in_use().stages, 1);
        // A waiter that gives up leaves nothing behind.
        let p3 = adm.acquire("bob", 1).await.unwrap();
        {
            let w = adm.acquire("carol", 1);
            tokio::pin!(w);
            assert!(futures::poll!(w.as_mut()).is_pending());
        }
        assert_eq!(adm.waiting(), 0);
        drop((p2, p3));
        assert_eq!(
            adm.in_use(),
            Capacity {
                stages: 0,
                tasks: 0
            }
        );
        assert!(adm.acquire("x", 3).await.is_err());
    }
}
