//! The sans-IO scheduler of one shard: owns its partitions' state, groups
//! decisions into log appends, and says when intake may be acked, which
//! orders go to workers and when to wake up. No I/O, no clock, no async.
//!
//! # Drive loop (the contract)
//!
//! ```text
//! loop {
//!     feed inputs:  handle_order / handle_command / handle_invalid   (intake)
//!                   handle_outcome                                   (workers)
//!                   handle_claims                                    (other shards)
//!                   handle_appended / handle_conflict                (event log)
//!                   handle_forwarded                                 (reroutes sent)
//!                   handle_timeout(now) once now >= poll_timeout()
//!     while let Some(out) = shard.poll_output() {
//!         Append(batch)  -> append batch.events as ONE log entry, expecting
//!                           batch.expected_last; then handle_appended(seq)
//!                           or handle_conflict() (another writer: stop)
//!         Dispatch(list) -> give each order to a worker; its outcome comes
//!                           back through handle_outcome with the same Attempt
//!         Forward(list)  -> submit each order to its new partition's intake,
//!                           then handle_forwarded(order)
//!         Ack(list)      -> ack those intake messages
//!         Replies(list)  -> answer those claims
//!     }
//!     sleep until poll_timeout() or the next input
//! }
//! ```
//!
//! Ids are decided at most once across shards: each id is claimed at the
//! shard [`Shard::claim_owner`] names. Before `handle_order` of a
//! producer's order whose owner is another shard, the runtime claims the
//! id there (`handle_claims` on the owner) and, if another partition holds
//! it, calls `handle_refused` instead. Orders whose owner is this shard are
//! claimed inside; rerouted orders (`handle_rerouted_order`) were claimed
//! where they were placed first.
//!
//! Guarantees: at most one `Append` is outstanding; decisions made while it
//! is (group commit) go into the next one. An intake message is acked, an
//! order dispatched and a reroute forwarded only after the events deciding
//! them are durable, so a crash at any point loses nothing: the log plus
//! the unacked intake rebuild everything (see [`Shard::recover`]).

mod carts;
mod claims;
mod config;
mod group;
#[cfg(test)]
mod tests;
mod timers;

use rustc_hash::FxHashMap;

use crate::domain::rules::{forwarded_order, Decider};
use crate::domain::LineId;
use crate::domain::Verdict;
use crate::domain::{
    Attempt, Command, CommandError, Event, FieldError, Order, OrderId, Origin, Outcome,
    OutcomeEffect, PartitionIdx, PartitionKey, Settled, ShardState, Status, Timestamp,
};
pub use config::ShardConfig;
pub use group::{AckId, AppendBatch, Dispatch, Output, ReplyId};
use group::{GroupCommit, Mark};
pub(crate) use timers::Deadlines;
use timers::Timer;

/// The answer to one command; refused with `CommandError::Fenced` once the
/// shard lost its log to another writer.
pub type Reply = Verdict;

/// Counters for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardStats {
    pub duplicates: u64,
    pub stale_outcomes: u64,
    pub appends: u64,
}

/// One shard's scheduler. See the module docs for the drive loop.
pub struct Shard {
    state: ShardState,
    config: ShardConfig,
    group: GroupCommit,
    timers: Deadlines<Timer>,
    waits: FxHashMap<PartitionIdx, Timestamp>,
    backorder_timers: FxHashMap<PartitionIdx, Timestamp>,
    fenced: bool,
    stats: ShardStats,
    /// Scratch list of partitions a command touched.
    touched: Vec<(PartitionIdx, Settled)>,
}

impl Shard {
    /// A shard with no history.
    pub fn new(config: ShardConfig, now: Timestamp) -> Self {
        let state = config.empty_state();
        Self::recover(state, 0, config, now)
    }

    /// Resumes from `state` rebuilt from the log up to sequence `log_seq`:
    /// re-dispatches every reservation (workers dedupe by order id),
    /// re-forwards unfinished reroutes and re-arms every timer.
    pub fn recover(state: ShardState, log_seq: u64, config: ShardConfig, now: Timestamp) -> Self {
        let mut shard = Self {
            group: GroupCommit::new(log_seq, config.max_batch_events),
            state,
            config,
            timers: Deadlines::default(),
            waits: FxHashMap::default(),
            backorder_timers: FxHashMap::default(),
            fenced: false,
            stats: ShardStats::default(),
            touched: Vec::new(),
        };
        let mut dispatch = Vec::new();
        let mut forward = Vec::new();
        for live in shard.state.live_orders() {
            match live.status {
                Status::Reserved => dispatch.push(Dispatch {
                    order: live.order.clone(),
                    attempt: Attempt {
                        ticket: live.ticket,
                        retry: live.attempts,
                    },
                }),
                Status::Forwarding => {
                    let to = live.rerouted_to.as_ref().expect("forwarding has a target");
                    forward.push(forwarded_order(&live.order, to));
                }
                _ => {}
            }
        }
        // Hash-map order is not stable; keep replays deterministic.
        dispatch.sort_by_key(|d| d.attempt.ticket);
        forward.sort_by(|a, b| a.id.cmp(&b.id));
        if !dispatch.is_empty() {
            shard.group.push_ready(Output::Dispatch(dispatch));
        }
        if !forward.is_empty() {
            shard.group.push_ready(Output::Forward(forward));
        }
        for p in 0..shard.state.partitions().len() as PartitionIdx {
            if shard.state.partition(p).backordered > 0 {
                shard.expire(p, now);
            }
            shard.settle(p, now);
        }
        shard.after_input(None, now);
        shard
    }

    pub fn state(&self) -> &ShardState {
        &self.state
    }

    pub fn stats(&self) -> ShardStats {
        self.stats
    }

    /// True once another writer took the shard: drop it.
    pub fn is_fenced(&self) -> bool {
        self.fenced
    }

    /// True when events were decided since the last `Append` output.
    pub fn has_pending_events(&self) -> bool {
        self.group.has_pending_events()
    }

    /// True while decisions are not yet durable or outputs wait to be taken.
    pub fn has_unwritten(&self) -> bool {
        self.group.has_unwritten()
    }

    /// How many decided events are not yet durable.
    pub fn unwritten_events(&self) -> u64 {
        self.group.unwritten_events()
    }

    /// Sequence of the last durable append.
    pub fn log_seq(&self) -> u64 {
        self.group.log_seq()
    }

    fn decider(&mut self) -> Decider<'_> {
        let (events, cuts) = self.group.pending_and_cuts();
        Decider {
            state: &mut self.state,
            events,
            cuts,
            rules: &self.config.rules,
        }
    }

    /// Queue a producer's validated order; it is released when stock
    /// allows. The intake message `ack` is acked once the decision is
    /// durable. If [`Shard::claim_owner`] names another shard, its id must
    /// have been claimed there first.
    pub fn handle_order(&mut self, order: Order, ack: Option<AckId>, now: Timestamp) -> Reply {
        self.tick(now);
        let reply = self.command(Command::PlaceOrder(order), now);
        self.after_input(ack, now);
        reply
    }

    /// Queue an order another partition rerouted here.
    pub fn handle_rerouted_order(
        &mut self,
        order: Order,
        ack: Option<AckId>,
        now: Timestamp,
    ) -> Reply {
        self.tick(now);
        let reply = if self.fenced {
            Reply::Refused(CommandError::Fenced)
        } else {
            match self.decider().place_from(order, Origin::Forwarded) {
                Ok(p) => {
                    self.settle(p, now);
                    Reply::Accepted
                }
                Err(known) => {
                    self.stats.duplicates += 1;
                    Reply::Duplicate(known)
                }
            }
        };
        self.after_input(ack, now);
        reply
    }

    /// An order that failed validation: recorded as rejected with every
    /// bad field, under the partition its subject named (if readable).
    pub fn handle_invalid(
        &mut self,
        id: OrderId,
        errors: Vec<FieldError>,
        partition: Option<PartitionKey>,
        ack: Option<AckId>,
        now: Timestamp,
    ) -> Reply {
        self.tick(now);
        let reply = match self.decider().reject_invalid(id, errors, partition) {
            Ok(()) => Reply::Accepted,
            Err(known) => Reply::Duplicate(known),
        };
        self.after_input(ack, now);
        reply
    }

    /// Any command; batches are applied in order, one reply per command.
    pub fn handle_command(
        &mut self,
        command: Command,
        ack: Option<AckId>,
        now: Timestamp,
    ) -> Reply {
        self.tick(now);
        let reply = self.command(command, now);
        self.after_input(ack, now);
        reply
    }

    fn command(&mut self, command: Command, now: Timestamp) -> Reply {
        if self.fenced {
            return Reply::Refused(CommandError::Fenced);
        }
        let mut touched = std::mem::take(&mut self.touched);
        let verdict = self.decider().command(command, now, &mut touched);
        for (p, settled) in touched.drain(..) {
            self.note_settled(p, settled, now);
        }
        self.touched = touched;
        if matches!(verdict, Verdict::Duplicate(_)) {
            self.stats.duplicates += 1;
        }
        verdict
    }

    /// A worker finished enacting a dispatched order.
    pub fn handle_outcome(
        &mut self,
        id: &OrderId,
        attempt: Attempt,
        outcome: Outcome,
        now: Timestamp,
    ) {
        match self.decider().outcome(id, attempt, outcome) {
            OutcomeEffect::Settled(p) => self.settle(p, now),
            OutcomeEffect::Retry { attempt, after } => {
                self.timers.arm(
                    now.plus(after),
                    Timer::Retry(id.clone(), attempt.ticket, attempt.retry),
                );
            }
            OutcomeEffect::Stale => self.stats.stale_outcomes += 1,
        }
        self.after_input(None, now);
    }

    /// The runtime handed `order`, as output by `Forward`, to its next
    /// partition.
    pub fn handle_forwarded(&mut self, order: &Order, now: Timestamp) {
        self.decider().forwarded(order);
        self.after_input(None, now);
    }

    /// The outstanding append is durable at log sequence `seq`.
    pub fn handle_appended(&mut self, seq: u64, now: Timestamp) {
        self.stats.appends += 1;
        self.group.appended(seq);
        self.after_input(None, now);
    }

    /// The log's last sequence was not the expected one: another instance
    /// writes this shard now. Nothing more is output; drop the shard.
    pub fn handle_conflict(&mut self) {
        self.fenced = true;
        self.group.clear();
        self.timers.clear();
    }

    /// Next thing the runtime must do; `None` once there is nothing until
    /// the next input or [`Shard::poll_timeout`].
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        if self.fenced {
            return None;
        }
        self.group.poll()
    }

    /// Marks what the events decided since the last input must wait for
    /// (dispatches, forwards, the intake ack) and arms backorder timers.
    fn after_input(&mut self, ack: Option<AckId>, _now: Timestamp) {
        self.group.boundary();
        let mut backordered = Vec::new();
        let state = &self.state;
        self.group.scan(|event| match event {
            Event::OrderReserved { id } => state
                .ticket_of(id)
                .map(|(slot, ticket)| Mark::Dispatch(slot, ticket)),
            Event::OrderRerouted { id, .. } => Some(Mark::Forward(id.clone())),
            Event::OrderRejected { id, reason, .. } if LineId::try_from(id.clone()).is_ok() => {
                Some(Mark::LineRejected(id.clone(), reason.clone()))
            }
            Event::OrderBackordered { id, until } => {
                if let Some(l) = state.live(id) {
                    backordered.push((l.partition, *until));
                }
                None
            }
            _ => None,
        });
        for (p, until) in backordered {
            self.arm_backorder(p, until);
        }
        if let Some(ack) = ack {
            self.group.mark(Mark::Ack(ack));
        }
        let state = &self.state;
        self.group.release(|mark| match mark {
            Mark::Dispatch(slot, ticket) => state
                .at_slot(slot)
                .filter(|l| l.status == Status::Reserved && l.ticket == ticket)
                .map(|l| {
                    group::Released::Dispatch(Dispatch {
                        order: l.order.clone(),
                        attempt: Attempt {
                            ticket,
                            retry: l.attempts,
                        },
                    })
                }),
            Mark::Forward(id) => state
                .live(&id)
                .filter(|l| l.status == Status::Forwarding)
                .map(|l| {
                    let to = l.rerouted_to.as_ref().expect("forwarding has a target");
                    group::Released::Forward(forwarded_order(&l.order, to))
                }),
            Mark::Ack(a) => Some(group::Released::Ack(a)),
            Mark::Carts => Some(group::Released::Carts),
            Mark::LineRejected(id, why) => Some(group::Released::LineRejected(id, why)),
            Mark::Reply(r, answers) => Some(group::Released::Reply(r, answers)),
        });
    }
}
