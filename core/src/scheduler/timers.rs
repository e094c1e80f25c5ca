//! A shard's timers: retries after a backoff, the bound on how long queued
//! orders wait on in-flight work, and backorder expiry. Armed by the other
//! handlers, fired by [`Shard::handle_timeout`].

use std::cmp::Reverse;

use super::{Dispatch, Output, Shard};
use crate::domain::{Attempt, OrderId, PartitionIdx, Settled, Status, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    Retry(OrderId, u64, u32),
    Wait(PartitionIdx),
    Backorder(PartitionIdx),
}

impl Shard {
    /// When the shard next needs `handle_timeout`.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Reverse((at, timer)) = self.timers.pop().expect("peeked");
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
            self.timers.push(Reverse((at, Timer::Backorder(p))));
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
                    self.timers.push(Reverse((at, Timer::Wait(p))));
                }
            }
            Settled::Idle => {
                self.waits.remove(&p);
            }
        }
    }
}
