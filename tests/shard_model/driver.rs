//! Plays a scenario on a [`Harness`], checking each reply against what the
//! state before it says, and keeping what the test knows apart from the
//! shard: the stock supplied by accepted commands, the accepted ids, an
//! independent ledger of the log, and when orders started waiting.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU64;
use std::time::Duration;

use allot::audit::Audit;
use allot::domain::rules::{forwarded_order, is_hop_of};
use allot::domain::{
    CancelConfirmed, Command, Event, Final, Order, OrderId, Outcome, PartitionKey, Priority,
    Quantity, RejectReason, ShardState, Status, Timestamp,
};
use allot::scheduler::{AckId, Dispatch, Reply};
use allot_core::testkit::Harness;

use super::scenario::{oid, wh, Kind, Part, Scenario, Step, BIG_HORIZON};

/// A harness plus what the test knows independently of the shard.
pub struct Sim {
    pub h: Harness,
    big_horizon: bool,
    cancel_confirmed: CancelConfirmed,
    /// Units put in per partition, from the accepted stock commands alone.
    pub supplied: HashMap<PartitionKey, i128>,
    /// Ids some delivery of which was accepted.
    pub accepted: HashSet<OrderId>,
    /// Every dispatch settled so far, for late and repeated outcomes.
    history: Vec<Dispatch>,
    /// Replay of the log so far, independent of `ShardState`.
    pub ledger: Audit,
    ledger_at: usize,
    next_ack: u64,
    pub max_wait: Duration,
    /// When each order last entered a queue.
    pub entered: HashMap<OrderId, Timestamp>,
    /// Each backorder's deadline, and when it expired, if it did.
    pub backorders: HashMap<OrderId, (Timestamp, Option<Timestamp>)>,
    /// The last crash: timers start over then.
    pub restarted: Timestamp,
}

fn order_of(id: u8, part: Part, qty: u8, prio: u8, fallbacks: &[u8]) -> Order {
    Order {
        line: false,
        id: oid(id),
        partition: part.key(),
        quantity: Quantity::new(qty.into(), 1000).unwrap(),
        region: None,
        priority: Priority(prio),
        fallbacks: fallbacks.iter().map(|&w| wh(w)).collect(),
    }
}

fn on_hand(state: &ShardState, key: &PartitionKey) -> i128 {
    state
        .partition_idx(key)
        .map_or(0, |p| state.partition(p).on_hand())
}

/// Whether placing `order` now must be answered `Duplicate`.
fn known(state: &ShardState, order: &Order) -> bool {
    match state.live(&order.id) {
        // The forwarded copy of an order this shard rerouted, or a later hop
        // of it (identical messages included), is the hand-off.
        Some(l) => {
            !(l.status == Status::Forwarding
                && l.rerouted_to
                    .as_ref()
                    .is_some_and(|to| is_hop_of(&forwarded_order(&l.order, to), order)))
        }
        None => match state.decided(&order.id) {
            Some(d) => !d.forwarded.as_deref().is_some_and(|f| is_hop_of(f, order)),
            // Decided longer ago than the full horizon, within the window.
            None => decided_in_window(state, &order.id),
        },
    }
}

fn decided_in_window(state: &ShardState, id: &OrderId) -> bool {
    state
        .ids()
        .decided
        .holder(allot::domain::Fingerprint::of(id))
        .is_some()
}

fn is_current(state: &ShardState, d: &Dispatch) -> bool {
    state.live(&d.order.id).is_some_and(|l| {
        l.status == Status::Reserved
            && l.ticket == d.attempt.ticket
            && l.attempts == d.attempt.retry
    })
}

impl Sim {
    fn new(s: &Scenario, horizon: usize) -> Self {
        let mut h = Harness::new(s.config(horizon));
        h.forwarding = s.forwarding;
        Self {
            h,
            big_horizon: horizon >= BIG_HORIZON,
            cancel_confirmed: s.cancel_confirmed,
            supplied: HashMap::new(),
            accepted: HashSet::new(),
            history: Vec::new(),
            ledger: Audit::default(),
            ledger_at: 0,
            next_ack: 0,
            max_wait: Duration::from_millis(s.max_wait_ms),
            entered: HashMap::new(),
            backorders: HashMap::new(),
            restarted: Timestamp::default(),
        }
    }

    pub fn state(&self) -> &ShardState {
        self.h.shard.state()
    }

    fn log_len(&self) -> usize {
        self.h.events().count()
    }

    fn step(&mut self, step: &Step) {
        match step {
            Step::Place { .. }
            | Step::Cancel { .. }
            | Step::SetStock { .. }
            | Step::Restock { .. }
            | Step::Adjust { .. } => self.command(step, true, |h, c| h.command(c)),
            Step::Batch(steps) => self.batch(steps),
            Step::Invalid { id } => {
                let id = oid(*id);
                let dup = self.state().live(&id).is_some()
                    || self.state().decided(&id).is_some()
                    || decided_in_window(self.state(), &id);
                let now = self.h.now;
                let reply = self.h.shard.handle_invalid(
                    id.clone(),
                    vec![allot::domain::FieldError::new(
                        "quantity",
                        "0, must be 1..=1000",
                    )],
                    None,
                    None,
                    now,
                );
                self.h.flush();
                self.booked_place(&id, dup, &reply);
            }
            Step::Outcome { pick, kind } => {
                if !self.h.dispatched.is_empty() {
                    let i = pick % self.h.dispatched.len();
                    let current = is_current(self.state(), &self.h.dispatched[i]);
                    let d = self.h.settle(i, kind.outcome()).expect("in range");
                    if current && *kind == Kind::Unknown {
                        // The work may have been done: only an answer may
                        // settle the order, so it keeps its units.
                        let status = self.state().live(&d.order.id).map(|l| l.status);
                        assert_eq!(
                            status,
                            Some(Status::Reserved),
                            "{}: an unknown outcome settled it",
                            d.order.id
                        );
                    }
                    self.history.push(d);
                }
            }
            Step::Replay { pick, kind } => {
                if self.history.is_empty() {
                    return;
                }
                let d = self.history[pick % self.history.len()].clone();
                let stale = !is_current(self.state(), &d);
                let (log, out) = (self.log_len(), self.h.dispatched.len());
                let stale_before = self.h.shard.stats().stale_outcomes;
                self.h
                    .shard
                    .handle_outcome(&d.order.id, d.attempt, kind.outcome(), self.h.now);
                self.h.flush();
                if stale {
                    assert_eq!(self.log_len(), log, "a stale outcome decided something");
                    assert_eq!(self.h.dispatched.len(), out, "a stale outcome dispatched");
                    assert_eq!(self.h.shard.stats().stale_outcomes, stale_before + 1);
                }
            }
            Step::Advance { ms } => self.h.advance(Duration::from_millis((*ms).into())),
            Step::Deliver { pick } => {
                if !self.h.in_transit.is_empty() {
                    let i = pick % self.h.in_transit.len();
                    self.h.deliver_forwarded(i);
                }
            }
            Step::Crash => {
                self.h.crash_restart();
                self.restarted = self.h.now;
            }
            Step::Torn { inner, outputs } => {
                let ack = AckId(self.next_ack);
                self.next_ack += 1;
                self.command(inner, false, |h, c| {
                    let reply = h.shard.handle_command(c, Some(ack), h.now);
                    h.flush_at_most((*outputs).into());
                    check_dispatches_durable(h);
                    h.crash_restart();
                    reply
                });
                self.restarted = self.h.now;
                if !self.h.acked.contains(&ack) {
                    self.command(inner, true, |h, c| h.command(c));
                }
            }
        }
    }

    /// Sends one command, checking the reply against what the state before
    /// it says, and books stock it supplies. `durable`: `send` leaves its
    /// decisions in the log (no crash lost them).
    fn command(
        &mut self,
        step: &Step,
        durable: bool,
        send: impl FnOnce(&mut Harness, Command) -> Reply,
    ) {
        let state = self.h.shard.state();
        match step {
            Step::Place {
                id,
                part,
                qty,
                prio,
                fallbacks,
            } => {
                let order = order_of(*id, *part, *qty, *prio, fallbacks);
                let dup = known(state, &order);
                let reply = send(&mut self.h, Command::PlaceOrder(order.clone()));
                self.booked_place(&order.id, dup, &reply);
            }
            Step::Cancel { id } => {
                let id = oid(*id);
                let (ok, partition) = match (state.live(&id), state.decided(&id)) {
                    (Some(l), _) => (l.status != Status::Forwarding, l.order.partition.clone()),
                    (None, Some(d)) => (
                        d.outcome == Final::Confirmed
                            && self.cancel_confirmed == CancelConfirmed::Restock,
                        Part(0, 0).key(),
                    ),
                    (None, None) => (false, Part(0, 0).key()),
                };
                let reply = send(
                    &mut self.h,
                    Command::CancelOrder {
                        id: id.clone(),
                        partition,
                    },
                );
                assert_eq!(reply == Reply::Accepted, ok, "cancel {id}: {reply:?}");
                if ok && durable {
                    let live = self.state().live(&id).map(|l| l.status);
                    assert!(
                        !matches!(live, Some(Status::Queued | Status::Backordered { .. })),
                        "cancelled {id} still waits"
                    );
                }
            }
            Step::SetStock { .. } | Step::Restock { .. } | Step::Adjust { .. } => {
                let key = stock_key(step);
                let before = on_hand(state, &key);
                let (command, delta) = stock_command(step, before);
                let reply = send(&mut self.h, command);
                self.booked_stock(&key, delta, &reply);
            }
            _ => unreachable!("not a command: {step:?}"),
        }
    }

    fn booked_place(&mut self, id: &OrderId, dup: bool, reply: &Reply) {
        match reply {
            Reply::Duplicate(_) => assert!(dup, "{id}: unexpected Duplicate"),
            Reply::Accepted => {
                assert!(!dup, "{id}: known id accepted again");
                self.accepted.insert(id.clone());
            }
            other => panic!("{id}: placing replied {other:?}"),
        }
    }

    /// `delta` is the change of supply if accepted, `None` if it must be
    /// refused.
    fn booked_stock(&mut self, key: &PartitionKey, delta: Option<i128>, reply: &Reply) {
        match (delta, reply) {
            (Some(d), Reply::Accepted) => *self.supplied.entry(key.clone()).or_default() += d,
            (None, Reply::Refused(_)) => {}
            (d, r) => panic!("{key}: stock change {d:?} replied {r:?}"),
        }
    }

    /// Only places and stock changes, so on-hand stock within the batch
    /// changes by the stock commands alone.
    fn batch(&mut self, steps: &[Step]) {
        let state = self.state();
        let mut on_hands: HashMap<PartitionKey, i128> = HashMap::new();
        // Per id, the orders the batch may have rerouted by the time the
        // next place with that id is applied.
        let mut reroutable: HashMap<OrderId, Vec<Order>> = HashMap::new();
        let mut expected = Vec::new();
        let mut commands = Vec::new();
        for step in steps {
            match step {
                Step::Place {
                    id,
                    part,
                    qty,
                    prio,
                    fallbacks,
                } => {
                    let order = order_of(*id, *part, *qty, *prio, fallbacks);
                    let earlier = reroutable.entry(order.id.clone()).or_insert_with(|| {
                        state
                            .live(&order.id)
                            .map(|l| l.order.clone())
                            .into_iter()
                            .collect()
                    });
                    let to = &order.partition.warehouse;
                    let dup = if earlier.iter().any(|e| forwarded_order(e, to) == order) {
                        // If the batch rerouted an earlier order, this one is
                        // taken for its forwarded copy, and that is fine: it
                        // is the very same order.
                        earlier.push(order.clone());
                        None
                    } else if earlier.is_empty() && !known(state, &order) {
                        earlier.push(order.clone());
                        Some(false)
                    } else {
                        Some(true)
                    };
                    expected.push((Some((order.id.clone(), dup)), None));
                    commands.push(Command::PlaceOrder(order));
                }
                _ => {
                    let key = stock_key(step);
                    let now = on_hands
                        .entry(key.clone())
                        .or_insert_with(|| on_hand(state, &key));
                    let (command, delta) = stock_command(step, *now);
                    *now += delta.unwrap_or(0);
                    expected.push((None, Some((key, delta))));
                    commands.push(command);
                }
            }
        }
        let reply = self.h.command(Command::Batch { commands });
        let Reply::Batch(replies) = reply else {
            panic!("a batch replied {reply:?}");
        };
        assert_eq!(replies.len(), expected.len());
        for ((place, stock), reply) in expected.into_iter().zip(&replies) {
            if let Some((id, dup)) = place {
                match dup {
                    Some(dup) if self.big_horizon => self.booked_place(&id, dup, reply),
                    // Decisions within the batch may push ids out of a tiny
                    // horizon, so the reply is not predictable.
                    _ if *reply == Reply::Accepted => {
                        self.accepted.insert(id);
                    }
                    _ => assert!(matches!(reply, Reply::Duplicate(_)), "{id}: {reply:?}"),
                }
            }
            if let Some((key, delta)) = stock {
                self.booked_stock(&key, delta, reply);
            }
        }
    }

    /// Feeds new log events to the ledger, which panics on an oversell,
    /// and notes when orders start and stop waiting. Everything a step
    /// decides is decided at its end time.
    fn observe(&mut self) {
        let new: Vec<Event> = self.h.events().skip(self.ledger_at).cloned().collect();
        self.ledger_at += new.len();
        let now = self.h.now;
        for e in &new {
            self.ledger.apply(e);
            match e {
                Event::OrderQueued { order } => {
                    self.entered.insert(order.id.clone(), now);
                }
                Event::OrderBackordered { id, until } => {
                    self.backorders.insert(id.clone(), (*until, None));
                }
                Event::OrderRejected {
                    id,
                    reason: RejectReason::BackorderExpired,
                    ..
                } => {
                    self.backorders.get_mut(id).expect("backordered").1 = Some(now);
                }
                _ => {}
            }
        }
    }

    /// Settles all work: every dispatch fulfilled, time moved until every
    /// retry, wait and backorder timer fired.
    pub fn drain(&mut self) {
        for _ in 0..1000 {
            self.h.flush();
            while self.h.deliver_forwarded(0).is_some() {}
            while let Some(d) = self.h.settle(0, Outcome::Fulfilled) {
                self.history.push(d);
            }
            if self.h.shard.poll_timeout().is_none() && self.h.in_transit.is_empty() {
                break;
            }
            self.h.advance(Duration::from_secs(3600));
        }
        self.observe();
    }
}

fn stock_key(step: &Step) -> PartitionKey {
    match step {
        Step::SetStock { part, .. } | Step::Restock { part, .. } | Step::Adjust { part, .. } => {
            part.key()
        }
        _ => unreachable!(),
    }
}

/// The command of a stock step and how it changes supply given the on-hand
/// stock before it (`None`: it must be refused).
fn stock_command(step: &Step, on_hand: i128) -> (Command, Option<i128>) {
    let partition = stock_key(step);
    match *step {
        Step::SetStock { on_hand: n, .. } => (
            Command::SetStock {
                partition,
                on_hand: n.into(),
                expected_version: None,
            },
            Some(i128::from(n) - on_hand),
        ),
        Step::Restock { units, .. } => (
            Command::Restock {
                partition,
                units: NonZeroU64::new(units.into()).unwrap(),
            },
            Some(units.into()),
        ),
        Step::Adjust { delta, .. } => (
            Command::AdjustStock {
                partition,
                delta: delta.into(),
            },
            (on_hand + i128::from(delta) >= 0).then_some(delta.into()),
        ),
        _ => unreachable!(),
    }
}

/// Plays the scenario, calling `check` after every step with a label.
pub fn play(s: &Scenario, horizon: usize, mut check: impl FnMut(&Sim, &str)) -> Sim {
    let mut sim = Sim::new(s, horizon);
    for (i, step) in s.steps.iter().enumerate() {
        sim.step(step);
        sim.observe();
        check(&sim, &format!("after step {i}: {step:?}"));
    }
    sim
}

/// Orders go to workers only once their reservation is in the log: a
/// dispatch that is current in the live state is current in the durable one.
pub fn check_dispatches_durable(h: &Harness) {
    let durable = h.rebuild().expect("the log rebuilds");
    for d in &h.dispatched {
        assert!(
            !is_current(h.shard.state(), d) || is_current(&durable, d),
            "{} dispatched before its reservation was durable: {:?}",
            d.order.id,
            d.attempt
        );
    }
}
