//! A shard's timers: retries after a backoff, the bound on how long queued
//! orders wait on in-flight work, and backorder expiry. Armed by the other
//! handlers, fired by [`Shard::handle_timeout`].

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::{Dispatch, Output, Shard};
use crate::domain::{Attempt, OrderId, PartitionIdx, Settled, Status, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    Retry(OrderId, u64, u32),
    Wait(PartitionIdx),
    Backorder(PartitionIdx),
}

/// Timers in deadline order: armed for a time, taken once due (ties in
/// the timers' own order, so a replay fires them the same way). The
/// scheduler's and the cart coordinator's.
#[derive(Debug)]
pub(crate) struct Deadlines<T: Ord>(BinaryHeap<Reverse<(Timestamp, T)>>);

impl<T: Ord> Default for Deadlines<T> {
    fn default() -> Self {
        Self(BinaryHeap::new())
    }
}

impl<T: Ord> Deadlines<T> {
    pub(crate) fn arm(&mut self, at: Timestamp, timer: T) {
        self.0.push(Reverse((at, timer)));
    }

    /// The earliest deadline armed.
    pub(crate) fn next(&self) -> Option<Timestamp> {
        self.0.peek().map(|Reverse((at, _))| *at)
    }

    /// The earliest timer due at `now`, with its deadline.
    pub(crate) fn pop_due(&mut self, now: Timestamp) -> Option<(Timestamp, T)> {
        if self.next()? > now {
            return None;
        }
        self.0.pop().map(|Reverse(due)| due)
    }

    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }

    /// Drops the earliest timers while `stale` says they no longer apply,
    /// so [`Deadlines::next`] names one that does (or a later stale one).
    pub(crate) fn drop_stale(&mut self, mut stale: impl FnMut(&T) -> bool) {
        while self.0.peek().is_some_and(|Reverse((_, t))| stale(t)) {
            self.0.pop();
        }
    }
}

impl Shard {
    /// When the shard next needs `handle_timeout`.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.timers.next()
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        while let Some((at, timer)) = self.timers.pop_due(now) {
            match timer {
                Timer::Retry(id, ticket, retry) => self.retry(&id, Attempt { ticket, retry }),
                Timer::Wait(p) if self.waits.get(&p) == Some(&at) => {
                    self.waits.remove(&p);
                    self.decider().exhaust(p, now);
                    self.settle(p, now);
                }
                Timer::Backorder(p) if self.backorder_timers.get(&p) == Some(&at) => {
                    self.backorder_timers.remove(&p);
                    self.expire(p, now);
                    self.settle(p, now);
                }
                Timer::Wait(_) | Timer::Backorder(_) => {}
            }
        }
        self.after_input(None, now);
    }

    pub(super) fn retry(&mut self, id: &OrderId, attempt: Attempt) {
        let Some(live) = self.state.live(id) else {
            return;
        };
        if live.status == Status::Reserved
            && live.ticket == attempt.ticket
            && live.attempts == attempt.retry
        {
            let order = live.order.clone();
            self.group
                .push_ready(Output::Dispatch(vec![Dispatch { order, attempt }]));
        }
    }

    pub(super) fn expire(&mut self, p: PartitionIdx, now: Timestamp) {
        if let Some(next) = self.decider().expire_backorders(p, now) {
            self.arm_backorder(p, next);
        }
    }

    pub(super) fn arm_backorder(&mut self, p: PartitionIdx, at: Timestamp) {
        if self.backorder_timers.get(&p).is_none_or(|t| *t > at) {
            self.backorder_timers.insert(p, at);
            self.timers.arm(at, Timer::Backorder(p));
        }
    }

    pub(super) fn settle(&mut self, p: PartitionIdx, now: Timestamp) {
        let settled = self.decider().settle(p, now);
        self.note_settled(p, settled, now);
    }

    /// Arms or clears the partition's wait bound.
    pub(super) fn note_settled(&mut self, p: PartitionIdx, settled: Settled, now: Timestamp) {
        match settled {
            Settled::Waiting => {
                if !self.waits.contains_key(&p) {
                    let at = now.plus(self.config.max_wait);
                    self.waits.insert(p, at);
                    self.timers.arm(at, Timer::Wait(p));
                }
            }
            Settled::Idle => {
                self.waits.remove(&p);
            }
        }
    }
}
