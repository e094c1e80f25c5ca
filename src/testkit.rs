//! A synchronous driver for one shard, for tests and examples: appends go to
//! an in-memory log at once, dispatched orders wait until the test settles
//! them, reroutes loop back into the same shard, and time moves only when
//! told. It also checks the invariants from the log alone.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::domain::{
    Event, Order, OrderId, Outcome, PartitionKey, RejectReason, ShardState, Timestamp,
};
use crate::scheduler::{AckId, Dispatch, Output, Reply, Shard, ShardConfig};

pub struct Harness {
    pub shard: Shard,
    pub now: Timestamp,
    pub dispatched: VecDeque<Dispatch>,
    pub acked: Vec<AckId>,
    batches: Vec<Vec<Event>>,
    dedupe_horizon: usize,
}

impl Harness {
    pub fn new(config: ShardConfig) -> Self {
        let now = Timestamp(1_000_000);
        Self {
            dedupe_horizon: config.dedupe_horizon,
            shard: Shard::new(config, now),
            now,
            dispatched: VecDeque::new(),
            acked: Vec::new(),
            batches: Vec::new(),
        }
    }

    /// Runs the shard's outputs until it has nothing left to do now.
    pub fn flush(&mut self) {
        while let Some(out) = self.shard.poll_output() {
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
                        self.shard.handle_forwarded(&order.id, self.now);
                        self.shard.handle_order(order, None, self.now);
                    }
                }
                Output::Ack(list) => self.acked.extend(list),
            }
        }
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
        self.batches.iter().flatten().cloned().collect()
    }

    fn of<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a Event> + 'a {
        self.batches
            .iter()
            .flatten()
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
        let mut rebuilt = ShardState::new(self.dedupe_horizon);
        for e in self.batches.iter().flatten() {
            rebuilt.evolve(e).expect("the log rebuilds");
        }
        assert_eq!(
            &rebuilt,
            self.shard.state(),
            "rebuilt state differs from live state"
        );
        let mut finals: HashMap<&OrderId, usize> = HashMap::new();
        for e in self.batches.iter().flatten() {
            if let Event::OrderConfirmed { id } | Event::OrderRejected { id, .. } = e {
                *finals.entry(id).or_default() += 1;
            }
        }
        if let Some((id, n)) = finals.iter().find(|(_, n)| **n > 1) {
            panic!("order {id} decided {n} times");
        }
        let mut ledger = Ledger::default();
        for e in self.batches.iter().flatten() {
            ledger.apply(e);
        }
        ledger.check(self.shard.state());
    }
}

/// An independent replay of the stock arithmetic of a log, kept apart
/// from [`ShardState`] so each checks the other.
#[derive(Debug, Default)]
pub struct Ledger {
    orders: HashMap<OrderId, (PartitionKey, i128)>,
    /// Per partition: supplied, available, reserved, sold.
    pub stock: HashMap<PartitionKey, [i128; 4]>,
}

impl Ledger {
    /// Applies one event; panics if stock would go negative (an oversell).
    pub fn apply(&mut self, e: &Event) {
        const SUP: usize = 0;
        const AVAIL: usize = 1;
        const RES: usize = 2;
        const SOLD: usize = 3;
        let mut moves = |id: &OrderId, from: usize, to: usize| {
            let (key, q) = self.orders[id].clone();
            let s = self.stock.entry(key).or_default();
            s[from] -= q;
            s[to] += q;
            assert!(s[from] >= 0, "oversold: {e:?} leaves {s:?}");
        };
        match e {
            Event::OrderQueued { order } => {
                let q = i128::from(order.quantity.get());
                self.orders
                    .insert(order.id.clone(), (order.partition.clone(), q));
            }
            Event::OrderReserved { id } => moves(id, AVAIL, RES),
            Event::OrderConfirmed { id } => moves(id, RES, SOLD),
            Event::OrderReleased { id, .. } | Event::ReservationRevoked { id } => {
                moves(id, RES, AVAIL)
            }
            Event::OrderCancelled { id } => moves(id, SOLD, AVAIL),
            Event::StockSet { partition, on_hand } => {
                let s = self.stock.entry(partition.clone()).or_default();
                let delta = i128::from(*on_hand) - s[AVAIL] - s[RES];
                s[SUP] += delta;
                s[AVAIL] += delta;
                assert!(s[AVAIL] >= 0, "stock set below reserved: {e:?}");
            }
            Event::StockRestocked { partition, units } => {
                let s = self.stock.entry(partition.clone()).or_default();
                s[SUP] += i128::from(*units);
                s[AVAIL] += i128::from(*units);
            }
            Event::StockAdjusted { partition, delta } => {
                let s = self.stock.entry(partition.clone()).or_default();
                s[SUP] += i128::from(*delta);
                s[AVAIL] += i128::from(*delta);
                assert!(s[AVAIL] >= 0, "adjusted below zero: {e:?}");
            }
            _ => {}
        }
    }

    /// Checks the shard's counters against this replay, and conservation:
    /// supplied = available + reserved + sold.
    pub fn check(&self, state: &ShardState) {
        for p in state.partitions() {
            let [sup, avail, res, sold] = self.stock.get(&p.key).copied().unwrap_or_default();
            let got = [p.available, p.reserved, p.sold].map(i128::from);
            assert_eq!(
                got,
                [avail, res, sold],
                "{}: state differs from the ledger",
                p.key
            );
            assert_eq!(sup, avail + res + sold, "{}: stock not conserved", p.key);
        }
    }
}
