//! A synchronous driver for one shard, for tests and examples: appends go to
//! an in-memory log at once, dispatched orders wait until the test settles
//! them, reroutes loop back into the same shard (at once or when the test
//! delivers them), time moves only when told, and a crash restarts the
//! shard from the log. It also checks the invariants from the log alone.

use std::collections::{HashMap, VecDeque};

use crate::audit::Audit;
use std::time::Duration;

use crate::domain::ClaimAnswer;
use crate::domain::{
    Event, Order, OrderId, Outcome, RejectReason, ShardState, StateError, Timestamp,
};
use crate::scheduler::{AckId, Dispatch, Output, Reply, ReplyId, Shard, ShardConfig};

/// How the harness plays the runtime's part in a reroute. The runtime
/// submits the copy to the next partition's intake, then reports the
/// forward; when the copy comes back out of the intake is not up to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Forwarding {
    /// Report the forward, then deliver the copy at once.
    #[default]
    ReportFirst,
    /// Deliver the copy at once, then report the forward (the copy won the
    /// race).
    CopyFirst,
    /// Report the forward; the copy waits in `in_transit` until the test
    /// delivers it.
    Held,
}

pub struct Harness {
    pub shard: Shard,
    pub now: Timestamp,
    pub dispatched: VecDeque<Dispatch>,
    pub acked: Vec<AckId>,
    /// Claim answers released (durable).
    pub replies: Vec<(ReplyId, Vec<ClaimAnswer>)>,
    pub forwarding: Forwarding,
    /// Forwarded copies not yet delivered ([`Forwarding::Held`]).
    pub in_transit: VecDeque<Order>,
    batches: Vec<Vec<Event>>,
    config: ShardConfig,
}

impl Harness {
    pub fn new(config: ShardConfig) -> Self {
        let now = Timestamp(1_000_000);
        Self {
            shard: Shard::new(config.clone(), now),
            now,
            dispatched: VecDeque::new(),
            acked: Vec::new(),
            replies: Vec::new(),
            forwarding: Forwarding::default(),
            in_transit: VecDeque::new(),
            batches: Vec::new(),
            config,
        }
    }

    /// Runs the shard's outputs until it has nothing left to do now.
    pub fn flush(&mut self) {
        while self.step() {}
    }

    /// Runs at most `n` of the shard's outputs (a crash may follow).
    pub fn flush_at_most(&mut self, n: usize) {
        for _ in 0..n {
            if !self.step() {
                break;
            }
        }
    }

    /// Runs one output; false if there was none.
    fn step(&mut self) -> bool {
        let Some(out) = self.shard.poll_output() else {
            return false;
        };
        match out {
            Output::Append(batch) => {
                assert_eq!(batch.expected_last, self.batches.len() as u64);
                self.batches.push(batch.events);
                self.shard
                    .handle_appended(self.batches.len() as u64, self.now);
            }
            Output::Dispatch(list) => self.dispatched.extend(list),
            Output::Forward(orders) => {
                for order in orders {
                    match self.forwarding {
                        Forwarding::ReportFirst => {
                            self.shard.handle_forwarded(&order, self.now);
                            self.shard.handle_order(order, None, self.now);
                        }
                        Forwarding::CopyFirst => {
                            self.shard.handle_order(order.clone(), None, self.now);
                            self.shard.handle_forwarded(&order, self.now);
                        }
                        Forwarding::Held => {
                            self.shard.handle_forwarded(&order, self.now);
                            self.in_transit.push_back(order);
                        }
                    }
                }
            }
            Output::Ack(list) => self.acked.extend(list),
            Output::Replies(list) => self.replies.extend(list),
            // The harness drives no cart coordinator.
            Output::CartsDurable | Output::LinesRejected(_) => {}
        }
        true
    }

    /// Drops the shard with whatever was not durable yet and recovers it
    /// from the log, as a restart would. Outstanding dispatches stay with
    /// their workers.
    pub fn crash_restart(&mut self) {
        let state = self.rebuild().expect("the log rebuilds");
        let seq = self.batches.len() as u64;
        self.shard = Shard::recover(state, seq, self.config.clone(), self.now);
        self.flush();
    }

    /// Folds the durable log into a fresh state.
    pub fn rebuild(&self) -> Result<ShardState, StateError> {
        let mut state = self.config.empty_state();
        for e in self.events() {
            state.evolve(e)?;
        }
        Ok(state)
    }

    pub fn place(&mut self, order: Order) -> Reply {
        let reply = self.shard.handle_order(order, None, self.now);
        self.flush();
        reply
    }

    pub fn command(&mut self, command: crate::domain::Command) -> Reply {
        let reply = self.shard.handle_command(command, None, self.now);
        self.flush();
        reply
    }

    /// Settles every dispatched order (and any dispatched meanwhile) as
    /// fulfilled.
    pub fn fulfil_all(&mut self) {
        self.flush();
        while let Some(d) = self.dispatched.pop_front() {
            self.shard
                .handle_outcome(&d.order.id, d.attempt, Outcome::Fulfilled, self.now);
            self.flush();
        }
    }

    /// Delivers the `i`-th forwarded copy in transit.
    pub fn deliver_forwarded(&mut self, i: usize) -> Option<Reply> {
        let order = self.in_transit.remove(i)?;
        Some(self.place(order))
    }

    /// Settles the `i`-th outstanding dispatch with `outcome`; returns it.
    pub fn settle(&mut self, i: usize, outcome: Outcome) -> Option<Dispatch> {
        let d = self.dispatched.remove(i)?;
        self.shard
            .handle_outcome(&d.order.id, d.attempt, outcome, self.now);
        self.flush();
        Some(d)
    }

    /// Fails the orders dispatched so far (not those dispatched meanwhile).
    pub fn fail_all(&mut self, reason: &str, retryable: bool) {
        self.flush();
        let now_dispatched: Vec<_> = self.dispatched.drain(..).collect();
        for d in now_dispatched {
            let outcome = Outcome::Failed {
                reason: reason.to_owned(),
                retryable,
            };
            self.shard
                .handle_outcome(&d.order.id, d.attempt, outcome, self.now);
            self.flush();
        }
    }

    /// Moves the clock and fires what is due.
    pub fn advance(&mut self, by: Duration) {
        self.now = self.now.plus(by);
        while self.shard.poll_timeout().is_some_and(|t| t <= self.now) {
            self.shard.handle_timeout(self.now);
            self.flush();
        }
        self.flush();
    }

    /// Every durable event, in order.
    pub fn log(&self) -> Vec<Event> {
        self.events().cloned().collect()
    }

    /// Every durable log entry (its sequence is its index + 1).
    pub fn batches(&self) -> &[Vec<Event>] {
        &self.batches
    }

    /// Every durable event, in order, borrowed.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.batches.iter().flatten()
    }

    fn of<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a Event> + 'a {
        self.events()
            .filter(move |e| e.order_id().is_some_and(|i| i.as_str() == id))
    }

    /// The order's last final event.
    pub fn final_of(&self, id: &str) -> Option<Event> {
        self.of(id).filter(|e| e.is_final()).last().cloned()
    }

    /// How many confirmations and rejections the order got.
    pub fn finals(&self, id: &str) -> usize {
        self.of(id)
            .filter(|e| {
                matches!(
                    e,
                    Event::OrderConfirmed { .. } | Event::OrderRejected { .. }
                )
            })
            .count()
    }

    pub fn rejection_of(&self, id: &str) -> Option<RejectReason> {
        self.of(id).find_map(|e| match e {
            Event::OrderRejected { reason, .. } => Some(reason.clone()),
            _ => None,
        })
    }

    pub fn confirmed_in_order(&self) -> Vec<String> {
        self.log()
            .iter()
            .filter_map(|e| match e {
                Event::OrderConfirmed { id } => Some(id.to_string()),
                _ => None,
            })
            .collect()
    }

    /// Checks, from the log alone: rebuilding gives the live state, no order
    /// is confirmed or rejected twice, and per partition stock is conserved
    /// (supplied = available + reserved + sold).
    pub fn check_invariants(&mut self) {
        self.flush();
        let rebuilt = self.rebuild().expect("the log rebuilds");
        assert_eq!(
            &rebuilt,
            self.shard.state(),
            "rebuilt state differs from live state"
        );
        let mut finals: HashMap<&OrderId, usize> = HashMap::new();
        for e in self.events() {
            if let Event::OrderConfirmed { id } | Event::OrderRejected { id, .. } = e {
                *finals.entry(id).or_default() += 1;
            }
        }
        if let Some((id, n)) = finals.iter().find(|(_, n)| **n > 1) {
            panic!("order {id} decided {n} times");
        }
        let mut audit = Audit::default();
        for e in self.events() {
            audit.apply(e);
        }
        check_audit(&audit, self.shard.state());
    }
}

/// Panics unless the audit of a log is clean (no oversell, no illegal
/// transition, stock conserved) and agrees with the shard's counters.
pub fn check_audit(audit: &Audit, state: &ShardState) {
    let f = audit.finish(std::iter::empty());
    assert!(f.clean(), "the log breaks a promise: {f:?}");
    let differ = audit.compare(state);
    assert!(
        differ.is_empty(),
        "the state differs from its log: {differ:?}"
    );
}
