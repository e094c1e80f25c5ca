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
//!
//! A cart (issue 13) is followed by its coordinator's `cart` events: its
//! admission is the moment every line is decided (its first enactment
//! starts) or it is rejected; its final decision is `confirmed` or
//! `rejected`. Its lines' own order events (`o7#0`, ...) are audited, not
//! timed; the follower also waits for each line's final event (a line is
//! committed or released in its partition after its cart is decided).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use allot::adapters::nats::events::EventsReader;
use allot::audit::{Audit, Findings};
use allot::domain::{CartEvent, Event, OrderId};
use allot::wire::log::Chains;
use async_nats::jetstream::stream::Stream;
use tokio::time::Instant;

use crate::gate::Answers;
use crate::workload::order_index;

/// What the follower saw, per order index.
pub struct Followed {
    pub admitted: Vec<Option<Instant>>,
    pub finals: Vec<Option<Instant>>,
    /// When the last `OrderReserved` (a cart's `line_reserved`) arrived:
    /// the sell-out moment.
    pub last_reserved: Option<Instant>,
    pub findings: Findings,
    /// Every final decision read (a second one for an order is a duplicate).
    pub answers: Answers,
}

/// Stock commands applied so far (`StockSet` events seen).
pub type StockSeen = Arc<AtomicU64>;

/// Starts following `events` after sequence `after` for `orders` orders
/// (or carts) and `lines` cart lines in all; the task ends when every
/// order and line has a final decision or `timeout` passes without a new
/// event.
pub async fn follow(
    events: &Stream,
    after: u64,
    orders: usize,
    lines: usize,
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
        let mut waiting = orders + lines;
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
    /// Records `event`'s time; returns 1 if it is an order's first final,
    /// or a cart line's final.
    fn note(&mut self, event: &Event, now: Instant) -> usize {
        if let Event::OrderConfirmed { id } | Event::OrderRejected { id, .. } = event {
            let line = id.as_str().rsplit_once('#');
            if line.is_some_and(|(cart, _)| order_index(cart).is_some()) {
                return 1;
            }
        }
        // (id, an admission, a final decision, sold)
        let (id, admits, last, sold) = match event {
            Event::OrderReserved { id } => (id, true, false, false),
            Event::OrderConfirmed { id } => (id, false, true, true),
            Event::OrderRejected { id, .. } => (id, true, true, false),
            Event::Cart { event } => match &**event {
                CartEvent::LineReserved { .. } => {
                    self.last_reserved = Some(now);
                    return 0;
                }
                CartEvent::EnactStarted { cart, .. } | CartEvent::Held { cart, .. } => {
                    (cart, true, false, false)
                }
                CartEvent::Confirmed { cart } => (cart, false, true, true),
                CartEvent::Rejected { cart, .. } | CartEvent::Cancelled { cart } => {
                    (cart, true, true, false)
                }
                _ => return 0,
            },
            _ => return 0,
        };
        let Some(n) = order_index(id.as_str()).filter(|&n| n < self.finals.len()) else {
            return 0;
        };
        if matches!(event, Event::OrderReserved { .. }) {
            self.last_reserved = Some(now);
        }
        if last {
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
