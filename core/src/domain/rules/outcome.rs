//! The `Decider`'s rules for the end of an order's life: a cancel, and a
//! worker's outcome for one dispatch (confirm, retry after a backoff, or
//! release and reject).

use super::{Attempt, CommandError, Decider, OutcomeEffect};
use crate::domain::messages::{Event, Outcome, RejectReason};
use crate::domain::orders::{Final, Status};
use crate::domain::policy::CancelConfirmed;
use crate::domain::state::PartitionIdx;
use crate::domain::types::OrderId;

impl Decider<'_> {
    /// Cancels an order. Returns the partition whose stock may have changed.
    pub fn cancel(&mut self, id: &OrderId) -> Result<Option<PartitionIdx>, CommandError> {
        if let Some(live) = self.state.live(id) {
            let p = live.partition;
            match live.status {
                Status::Queued | Status::Backordered { .. } => self.emit(Event::OrderRejected {
                    id: id.clone(),
                    reason: RejectReason::Cancelled,
                    partition: None,
                }),
                Status::Reserved if !live.cancel_requested => {
                    self.emit(Event::OrderCancelRequested { id: id.clone() })
                }
                Status::Reserved | Status::Releasing => {}
                Status::Forwarding => {
                    return Err(CommandError::Rerouted {
                        id: id.clone(),
                        to: live.rerouted_to.clone().expect("forwarding has a target"),
                    })
                }
            }
            return Ok(Some(p));
        }
        let d = self
            .state
            .decided(id)
            .ok_or_else(|| CommandError::UnknownOrder(id.clone()))?;
        match (&d.outcome, self.rules.cancel_confirmed) {
            (Final::Confirmed, CancelConfirmed::Restock) => {
                let p = d.partition;
                self.emit(Event::OrderCancelled { id: id.clone() });
                Ok(p)
            }
            (Final::Confirmed, CancelConfirmed::Refuse) => {
                Err(CommandError::CancelConfirmedRefused(id.clone()))
            }
            (Final::Rerouted(to), _) => Err(CommandError::Rerouted {
                id: id.clone(),
                to: to.clone(),
            }),
            (outcome, _) => Err(CommandError::AlreadyDecided {
                id: id.clone(),
                outcome: outcome.clone(),
            }),
        }
    }

    /// Applies a worker's outcome for one dispatch.
    pub fn outcome(&mut self, id: &OrderId, attempt: Attempt, outcome: Outcome) -> OutcomeEffect {
        let Some(slot) = self.state.slot_of(id) else {
            return OutcomeEffect::Stale;
        };
        let live = self.state.at_slot(slot).expect("slot of a live order");
        if live.status != Status::Reserved
            || live.ticket != attempt.ticket
            || live.attempts != attempt.retry
        {
            return OutcomeEffect::Stale;
        }
        let (p, cancelled, attempts) = (live.partition, live.cancel_requested, live.attempts);
        match outcome {
            Outcome::Fulfilled => {
                self.emit_at(Event::OrderConfirmed { id: id.clone() }, Some(slot));
                if cancelled && self.rules.cancel_confirmed == CancelConfirmed::Restock {
                    self.emit(Event::OrderCancelled { id: id.clone() });
                }
            }
            // Asked again whatever the budget: only an answer may settle an
            // order whose work may have been done.
            Outcome::Unknown { reason } => return self.retry(id, attempt, reason),
            Outcome::Failed { reason, .. } if cancelled => {
                self.release(id, reason, RejectReason::Cancelled)
            }
            Outcome::Failed {
                reason,
                retryable: true,
            } if attempts < self.rules.retry.max_retries => {
                return self.retry(id, attempt, reason);
            }
            Outcome::Failed {
                reason,
                retryable: true,
            } => {
                let why = RejectReason::RetriesExhausted {
                    last: reason.clone(),
                };
                self.release(id, reason, why)
            }
            Outcome::Failed {
                reason,
                retryable: false,
            } => {
                let why = RejectReason::FulfilmentFailed {
                    reason: reason.clone(),
                };
                self.release(id, reason, why)
            }
        }
        OutcomeEffect::Settled(p)
    }

    fn release(&mut self, id: &OrderId, reason: String, why: RejectReason) {
        self.emit(Event::OrderReleased {
            id: id.clone(),
            reason,
        });
        self.emit(Event::OrderRejected {
            id: id.clone(),
            reason: why,
            partition: None,
        });
    }

    /// Schedules the next attempt of a reserved order after `attempt`,
    /// under the same ticket (the same idempotency key for the worker).
    fn retry(&mut self, id: &OrderId, attempt: Attempt, reason: String) -> OutcomeEffect {
        let retry = attempt.retry.saturating_add(1);
        self.emit(Event::OrderRetrying {
            id: id.clone(),
            attempt: retry,
            reason,
        });
        OutcomeEffect::Retry {
            attempt: Attempt {
                ticket: attempt.ticket,
                retry,
            },
            after: self.rules.retry.backoff(retry),
        }
    }
}
