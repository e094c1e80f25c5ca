//! The business rules: given a shard's state and what happened, decide the
//! events. Each decided event is applied to the state at once (through
//! `evolve`, the only way state changes), so the next rule sees its effect.
//! Nothing here does I/O or reads a clock.
//!
//! The verdicts and refusals a command can meet are in `verdicts`; the
//! `Decider`'s rules are split by concern: placing orders (admission and
//! id claims) in `placement`, cancels and worker outcomes in `outcome`,
//! stock changes, settling and exhaustion in `stock`.

mod outcome;
mod placement;
mod stock;
mod verdicts;

use super::messages::{Command, Event};
use super::orders::Slot;
use super::policy::{CancelConfirmed, ExhaustionRules, RetryPolicy};
pub use super::reroute::{forwarded_order, is_hop_of};
use super::state::{PartitionIdx, ShardState};
use super::types::Timestamp;
pub use verdicts::{CommandError, Known, Origin, OutcomeEffect, Settled, Verdict};

/// The policies the rules read, as plain values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    pub exhaustion: ExhaustionRules,
    pub retry: RetryPolicy,
    pub cancel_confirmed: CancelConfirmed,
}

/// Identifies one dispatch of a reservation, so a late outcome of an earlier
/// one is recognised and ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Attempt {
    pub ticket: u64,
    pub retry: u32,
}

/// Applies the rules to a state, collecting the events.
pub struct Decider<'a> {
    pub state: &'a mut ShardState,
    pub events: &'a mut Vec<Event>,
    /// Positions in `events` after a whole decision where the log may
    /// split an input that decided many (see `exhaust`).
    pub cuts: &'a mut Vec<usize>,
    pub rules: &'a Rules,
}

impl Decider<'_> {
    fn emit(&mut self, event: Event) {
        self.emit_at(event, None);
    }

    /// `emit`, for an event about the live order at `slot`.
    fn emit_at(&mut self, event: Event, slot: Option<Slot>) {
        if let Err(e) = self.state.evolve_at(&event, slot) {
            panic!("a decided event must apply: {e}");
        }
        self.events.push(event);
    }

    /// Applies a command (a batch's commands in order), settling each
    /// partition it touches; each one and how it settled is added to
    /// `touched`, in order (the last entry of a partition is current).
    pub fn command(
        &mut self,
        command: Command,
        now: Timestamp,
        touched: &mut Vec<(PartitionIdx, Settled)>,
    ) -> Verdict {
        let (verdict, p) = match command {
            Command::PlaceOrder(order) => match self.place(order) {
                Ok(p) => (Verdict::Accepted, Some(p)),
                Err(known) => (Verdict::Duplicate(known), None),
            },
            Command::Keyed { id, command } => {
                if self.state.command_applied(&id) {
                    return Verdict::Duplicate(Known::Applied);
                }
                self.emit(Event::CommandApplied { id: id.clone() });
                let verdict = self.command(*command, now, touched);
                // A refusal is on the record too: the key is spent, and
                // whoever filed it can see why nothing changed.
                if let Verdict::Refused(e) = &verdict {
                    self.emit(Event::CommandRefused {
                        id,
                        reason: e.to_string(),
                    });
                }
                return verdict;
            }
            Command::Batch { commands } => {
                return Verdict::Batch(
                    commands
                        .into_iter()
                        .map(|c| self.command(c, now, touched))
                        .collect(),
                )
            }
            Command::CancelOrder { id, .. } => match self.cancel(&id) {
                Ok(p) => (Verdict::Accepted, p),
                Err(e) => (Verdict::Refused(e), None),
            },
            stock => match self.stock(&stock) {
                Ok(p) => (Verdict::Accepted, Some(p)),
                Err(e) => (Verdict::Refused(e), None),
            },
        };
        if let Some(p) = p {
            let settled = self.settle(p, now);
            touched.push((p, settled));
        }
        verdict
    }

    /// Decides `event` as it is (time passing, say).
    pub fn record(&mut self, event: Event) {
        self.emit(event);
    }
}

/// The rules in their pure form: the verdict and the events `command`
/// decides against `state`, which is left as it was.
pub fn decide(
    state: &ShardState,
    rules: &Rules,
    command: Command,
    now: Timestamp,
) -> (Verdict, Vec<Event>) {
    let mut state = state.clone();
    let mut events = Vec::new();
    let mut decider = Decider {
        state: &mut state,
        events: &mut events,
        cuts: &mut Vec::new(),
        rules,
    };
    let verdict = decider.command(command, now, &mut Vec::new());
    (verdict, events)
}
