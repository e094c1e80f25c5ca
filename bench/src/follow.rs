//! Follows allot's EVENTS stream from a given sequence and timestamps each
//! order's decisions as the bench sees them durable, while auditing every
//! event with `allot::audit`.
//!
//! An order's *admission* is its first decision: `OrderReserved` (a unit is
//! held for it) or `OrderRejected`. Its *final* decision is
//! `OrderConfirmed` or `OrderRejected`. Both are timestamped when the batch
//! holding them arrives from EVENTS, i.e. once the append is durable.
//! Every final decision is also counted in [`Answers`], the gate every
//! system shares.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use allot::adapters::nats::events::EventsReader;
use allot::audit::{Audit, Findings};
use allot::domain::{Event, OrderId};
use allot::wire::log::Chains;
use async_nats::jetstream::stream::Stream;
use tokio::time::Instant;

use crate::gate::Answers;
use crate::workload::order_index;

/// What the follower saw, per order index.
pub struct Followed {
    pub admitted: Vec<Option<Instant>>,
    pub finals: Vec<Option<Instant>>,
    /// When the last `OrderReserved` arrived: the sell-out moment.
    pub last_reserved: Option<Instant>,
    pub findings: Findings,
    /// Every final decision read (a second one for an order is a duplicate).
    pub answers: Answers,
}

/// Stock commands applied so far (`StockSet` events seen).
pub type StockSeen = Arc<AtomicU64>;

/// Starts following `events` after sequence `after` for `orders` orders;
/// the task ends when every order has a final decision or `timeout` passes
/// without a new event.
pub async fn follow(
    events: &Stream,
    after: u64,
    orders: usize,
    timeout: Duration,
) -> anyhow::Result<(StockSeen, tokio::task::JoinHandle<anyhow::Result<Followed>>)> {
    let mut reader = EventsReader::new(
        events.clone(),
        "events.*",
        Chains::from_anywhere(),
        after + 1,
    );
    let stock_seen = StockSeen::default();
    let seen = stock_seen.clone();
    let task = tokio::spawn(async move {
        let mut f = Followed {
            admitted: vec![None; orders],
            finals: vec![None; orders],
            last_reserved: None,
            findings: Findings::default(),
            answers: Answers::new(orders),
        };
        let mut audit = Audit::default();
        let mut waiting = orders;
        while waiting > 0 {
            // Each batch once, in its shard's order.
            let Some(read) = reader.next(timeout).await? else {
                break;
            };
            let now = Instant::now();
            for event in read.batch.events {
                waiting -= f.note(&event, now);
                if matches!(event, Event::StockSet { .. }) {
                    seen.fetch_add(1, Ordering::Relaxed);
                }
                audit.apply(&event);
            }
        }
        let ids: Vec<OrderId> = (0..orders)
            .map(|n| OrderId::new(&format!("o{n}")).expect("valid id"))
            .collect();
        f.findings = audit.finish(&ids);
        Ok(f)
    });
    Ok((stock_seen, task))
}

impl Followed {
    /// Records `event`'s time; returns 1 if it is an order's first final.
    fn note(&mut self, event: &Event, now: Instant) -> usize {
        let (id, admits, last) = match event {
            Event::OrderReserved { id } => (id, true, false),
            Event::OrderConfirmed { id } => (id, false, true),
            Event::OrderRejected { id, .. } => (id, true, true),
            _ => return 0,
        };
        let Some(n) = order_index(id.as_str()).filter(|&n| n < self.finals.len()) else {
            return 0;
        };
        if matches!(event, Event::OrderReserved { .. }) {
            self.last_reserved = Some(now);
        }
        if last {
            let sold = matches!(event, Event::OrderConfirmed { .. });
            self.answers.record(Some(n), sold);
        }
        if admits && self.admitted[n].is_none() {
            self.admitted[n] = Some(now);
        }
        if last && self.finals[n].is_none() {
            self.finals[n] = Some(now);
            return 1;
        }
        0
    }
}
