//! Group commit: decided events accumulate while one append is outstanding
//! and go out together in the next. Whatever must wait for durability (an
//! intake ack, a dispatch, a forward) is marked at the position of the last
//! event decided before it, and released once the log is durable past it.

use std::collections::VecDeque;

use crate::domain::{Attempt, ClaimAnswer, Event, Order, OrderId, RejectReason};

/// Encoded bytes one append may hold by [`estimated_size`]: under the
/// broker's default 1 MiB message limit, with room for the batch's frame.
const APPEND_BUDGET: usize = 900 * 1024;

/// An event's encoded size, estimated high: names are at most 64 bytes,
/// a queued order carries its partition, region and fallbacks, a cart
/// opened carries every line's partition.
fn estimated_size(event: &Event) -> usize {
    match event {
        Event::OrderQueued { order } => 240 + 70 * order.fallbacks.len(),
        Event::OrderRejected { reason, .. } => {
            160 + match reason {
                RejectReason::Invalid { errors } => errors
                    .iter()
                    .map(|e| 16 + e.field.len() + e.why.len())
                    .sum(),
                RejectReason::RetriesExhausted { last: why }
                | RejectReason::FulfilmentFailed { reason: why } => why.len(),
                _ => 0,
            }
        }
        // An id is at most 64 bytes, a partition two names of at most 64.
        Event::IdsClaimed { claims } => 40 + 220 * claims.len(),
        Event::Cart { event } => match &**event {
            crate::domain::CartEvent::Opened { cart, .. } => 160 + 160 * cart.lines().len(),
            _ => 200,
        },
        _ => 160,
    }
}

/// The runtime's handle for one intake message (e.g. its stream sequence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AckId(pub u64);

/// The runtime's handle for one claim request to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplyId(pub u64);

/// An order for a worker to enact, with the attempt its outcome must name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatch {
    pub order: Order,
    pub attempt: Attempt,
}

/// Events to append as one log entry, if the log's last sequence for this
/// shard is still `expected_last`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendBatch {
    pub expected_last: u64,
    pub events: Vec<Event>,
}

/// What the runtime must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Append these events; answer with `handle_appended` or `handle_conflict`.
    Append(AppendBatch),
    /// Give these orders to workers.
    Dispatch(Vec<Dispatch>),
    /// Submit these rerouted orders to their new partition.
    Forward(Vec<Order>),
    /// Ack these intake messages.
    Ack(Vec<AckId>),
    /// Answer these claims (durable now), one answer per claim asked.
    Replies(Vec<(ReplyId, Vec<ClaimAnswer>)>),
    /// The cart events given to [`super::Shard::handle_cart_events`] are
    /// durable: tell the coordinator (`Carts::handle_appended`).
    CartsDurable,
    /// These cart lines were rejected here (durably): answer each to its
    /// cart's coordinator.
    LinesRejected(Vec<(OrderId, RejectReason)>),
}

/// Something waiting for the log to be durable up to its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Mark {
    Ack(AckId),
    /// A reservation: the order's slot and ticket (stale once either moves).
    Dispatch(u32, u64),
    Forward(OrderId),
    Reply(ReplyId, Vec<ClaimAnswer>),
    Carts,
    LineRejected(OrderId, RejectReason),
}

/// A mark whose wait is over, if it still applies.
pub(super) enum Released {
    Ack(AckId),
    Dispatch(Dispatch),
    Forward(Order),
    Reply(ReplyId, Vec<ClaimAnswer>),
    Carts,
    LineRejected(OrderId, RejectReason),
}

pub(super) struct GroupCommit {
    pending: Vec<Event>,
    /// Events of `pending` already looked at for marks.
    scanned: usize,
    /// Absolute position of `pending[0]` (events ever decided before it).
    base: u64,
    durable: u64,
    inflight: Option<u64>,
    log_seq: u64,
    max_batch: usize,
    marks: VecDeque<(u64, Mark)>,
    ready: VecDeque<Output>,
    /// Absolute positions where one input's decisions end.
    boundaries: VecDeque<u64>,
    /// Positions in `pending` inside the current input where an append may
    /// end too: between whole decisions of one input that decided many
    /// (a sold-out queue resolved order by order).
    cuts: Vec<usize>,
}

impl GroupCommit {
    pub fn new(log_seq: u64, max_batch: usize) -> Self {
        Self {
            pending: Vec::new(),
            scanned: 0,
            base: 0,
            durable: 0,
            inflight: None,
            log_seq,
            max_batch: max_batch.max(1),
            marks: VecDeque::new(),
            ready: VecDeque::new(),
            boundaries: VecDeque::new(),
            cuts: Vec::new(),
        }
    }

    pub fn log_seq(&self) -> u64 {
        self.log_seq
    }

    /// The pending events, and where the current input may be cut.
    pub fn pending_and_cuts(&mut self) -> (&mut Vec<Event>, &mut Vec<usize>) {
        (&mut self.pending, &mut self.cuts)
    }

    /// Marks what each event decided since the last scan must wait for.
    pub fn scan(&mut self, mut mark_for: impl FnMut(&Event) -> Option<Mark>) {
        let pos = self.base + self.pending.len() as u64;
        for event in &self.pending[self.scanned..] {
            if let Some(mark) = mark_for(event) {
                self.marks.push_back((pos, mark));
            }
        }
        self.scanned = self.pending.len();
    }

    /// `mark` waits for every event decided so far.
    pub fn mark(&mut self, mark: Mark) {
        let pos = self.base + self.pending.len() as u64;
        self.marks.push_back((pos, mark));
    }

    pub fn push_ready(&mut self, out: Output) {
        self.ready.push_back(out);
    }

    /// Moves every mark the log is durable for into the ready outputs;
    /// `resolve` drops those that no longer apply.
    pub fn release(&mut self, mut resolve: impl FnMut(Mark) -> Option<Released>) {
        let (mut acks, mut dispatch, mut forward) = (Vec::new(), Vec::new(), Vec::new());
        let (mut replies, mut carts, mut lines) = (Vec::new(), false, Vec::new());
        while self
            .marks
            .front()
            .is_some_and(|(pos, _)| *pos <= self.durable)
        {
            let (_, mark) = self.marks.pop_front().expect("checked");
            match resolve(mark) {
                Some(Released::Ack(a)) => acks.push(a),
                Some(Released::Dispatch(d)) => dispatch.push(d),
                Some(Released::Forward(o)) => forward.push(o),
                Some(Released::Reply(r, a)) => replies.push((r, a)),
                Some(Released::Carts) => carts = true,
                Some(Released::LineRejected(id, why)) => lines.push((id, why)),
                None => {}
            }
        }
        if carts {
            self.ready.push_back(Output::CartsDurable);
        }
        if !lines.is_empty() {
            self.ready.push_back(Output::LinesRejected(lines));
        }
        if !dispatch.is_empty() {
            self.ready.push_back(Output::Dispatch(dispatch));
        }
        if !forward.is_empty() {
            self.ready.push_back(Output::Forward(forward));
        }
        if !acks.is_empty() {
            self.ready.push_back(Output::Ack(acks));
        }
        if !replies.is_empty() {
            self.ready.push_back(Output::Replies(replies));
        }
    }

    pub fn poll(&mut self) -> Option<Output> {
        if let Some(out) = self.ready.pop_front() {
            return Some(out);
        }
        if self.inflight.is_some() || self.pending.is_empty() {
            return None;
        }
        let n = self.batch_len();
        let events = if n == self.pending.len() {
            // The next batch will likely be as large: allocate once for it.
            std::mem::replace(&mut self.pending, Vec::with_capacity(n))
        } else {
            self.pending.drain(..n).collect()
        };
        self.scanned -= n;
        self.base += n as u64;
        self.inflight = Some(self.base);
        Some(Output::Append(AppendBatch {
            expected_last: self.log_seq,
            events,
        }))
    }

    /// The events decided for one input end here: an append never splits
    /// them (a crash between two appends must not leave half a decision,
    /// such as a release without its rejection, durable).
    /// Its cuts become boundaries too: an input deciding more than an
    /// append may carry (a whole queue rejected at sell-out, larger than
    /// the broker's message limit) goes out in several appends, each of
    /// whole decisions.
    pub fn boundary(&mut self) {
        let end = self.base + self.pending.len() as u64;
        for cut in std::mem::take(&mut self.cuts) {
            let at = self.base + cut as u64;
            if at > self.base && at < end && self.boundaries.back().is_none_or(|b| *b < at) {
                self.boundaries.push_back(at);
            }
        }
        if end > self.base && self.boundaries.back().is_none_or(|b| *b < end) {
            self.boundaries.push_back(end);
        }
    }

    /// How many pending events the next append takes: whole inputs' worth,
    /// up to `max_batch` (more only when one input decided more).
    fn batch_len(&mut self) -> usize {
        let max = self.base + self.max_batch.min(self.fitting()) as u64;
        let mut end = None;
        while let Some(&b) = self.boundaries.front() {
            if b > max && end.is_some() {
                break;
            }
            end = Some(b);
            self.boundaries.pop_front();
            if b >= max {
                break;
            }
        }
        let end = end.unwrap_or(self.base + self.pending.len() as u64);
        (end - self.base) as usize
    }

    /// How many pending events fit in one log message by a generous
    /// estimate of their encoded size (at least 1): a batch of big events
    /// (carts of many lines) must stay under the broker's message limit
    /// (nats-server's 1 MiB by default), or its append fails every time.
    fn fitting(&self) -> usize {
        let mut bytes = 0;
        for (i, event) in self.pending.iter().enumerate() {
            bytes += estimated_size(event);
            if bytes > APPEND_BUDGET {
                return i.max(1);
            }
        }
        self.pending.len().max(1)
    }

    /// The outstanding append is durable at log sequence `seq`.
    pub fn appended(&mut self, seq: u64) {
        if let Some(end) = self.inflight.take() {
            self.durable = end;
            self.log_seq = seq;
        }
    }

    /// Events decided and not yet durable (pending or in flight).
    pub fn unwritten_events(&self) -> u64 {
        self.base + self.pending.len() as u64 - self.durable
    }

    pub fn has_pending_events(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Decided events not yet durable, or outputs not yet taken.
    pub fn has_unwritten(&self) -> bool {
        !self.pending.is_empty() || self.inflight.is_some() || !self.ready.is_empty()
    }

    pub fn clear(&mut self) {
        self.pending.clear();
        self.scanned = 0;
        self.marks.clear();
        self.ready.clear();
        self.boundaries.clear();
        self.cuts.clear();
        self.inflight = None;
    }
}
