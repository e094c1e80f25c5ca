//! One shard's actor task: recovery (see `recover.rs`), then the
//! drive loop of `scheduler` (see its module docs), with the I/O each
//! output asks for running as spawned tasks that answer on the actor's
//! channel.
//!
//! This file holds the task, its drive loop and the handling of each
//! message; lining intake up behind id claims is in `lineup`, log appends
//! and snapshots in `append`.

mod append;
mod carts;
mod lineup;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustc_hash::FxHashMap;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug_span, error, info, info_span, Instrument};

use super::recover::recover_with_carts;
use super::{Ports, RuntimeConfig, RuntimeError};
use crate::domain::{Attempt, CartEvent, ClaimAnswer, Order, OrderId, Outcome, WarehouseId};
use crate::ports::{AppendError, Delivery, EventLog, Fulfiller, IntakeQueue, ShardId, Snapshots};
use crate::saga::{Carts, EnactResult};
use crate::scheduler::{AckId, Output, ReplyId, Shard};
use crate::telemetry::CartMetrics;
use crate::telemetry::{BatchTally, ShardMetrics};
use lineup::{fetch_loop, InLine, Waiting};

/// How a shard task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardExit {
    /// Asked to stop; in-flight work drained (or the deadline passed).
    Stopped,
    /// Another writer appended to the shard's log: this instance must not
    /// decide for it any more.
    Fenced,
}

enum Msg {
    Intake(Vec<Delivery>),
    Outcome(OrderId, Attempt, Outcome),
    Appended(Result<u64, AppendError>),
    Forwarded(Order),
    /// The owners' answers to the claims of these waiting deliveries.
    Claimed(Vec<u64>, Vec<ClaimAnswer>),
    /// How a cart's enactment at a warehouse (that attempt) ended.
    Enacted(OrderId, WarehouseId, u32, EnactResult),
    /// One of the cart coordinator's messages was taken by its intake.
    CartSent,
}

struct Task<L, I, S, F> {
    id: ShardId,
    /// Every task spawned for this shard: dropping the shard's task (a
    /// crash, an abort) aborts them too, so none outlives its owner.
    spawned: JoinSet<()>,
    ports: Arc<Ports<L, I, S, F>>,
    config: RuntimeConfig,
    tx: mpsc::Sender<Msg>,
    /// What the outstanding append decides, if one is outstanding.
    appending: Option<BatchTally>,
    events_since_snapshot: u64,
    last_snapshot: tokio::time::Instant,
    /// A snapshot of the state as of the outstanding append, with its
    /// turn among the instance's shards.
    snapshot_after_append: Option<(Vec<u8>, OwnedSemaphorePermit)>,
    /// The last snapshot's size: the next is encoded into a buffer of
    /// about that size, not one grown by doubling.
    snapshot_size: usize,
    instance: u64,
    metrics: ShardMetrics,
    /// When each intake message not yet acked was published, by ack id:
    /// its decision latency is taken when the ack is released.
    published: FxHashMap<AckId, SystemTime>,
    /// Intake not yet fed, in order: what waits for a claim holds up what
    /// came after it, so each partition still sees its orders in order.
    waiting: VecDeque<Waiting>,
    /// Deliveries fetched and not yet fed, and orders with workers: the
    /// fetch loop waits while they are over the bound.
    in_line: Arc<InLine>,
    next_claim: u64,
    /// The owners' answers to claims of `waiting`, by claim key.
    answered: FxHashMap<u64, ClaimAnswer>,
    /// Claims this shard owns, waiting for their answers to be durable.
    replies: FxHashMap<ReplyId, oneshot::Sender<Vec<ClaimAnswer>>>,
    next_reply: u64,
    /// The shard's cart coordinator: its events go in the shard's log.
    carts: Carts,
    metrics_carts: CartMetrics,
    /// The coordinator's messages not yet taken, and its append waiting
    /// for them (see `carts.rs`).
    cart_sends: usize,
    cart_append: Option<Vec<CartEvent>>,
}

/// Runs shard `id` until `stop` is cancelled (then drains) or another
/// writer fences it. Everything it logs is inside a `shard` span carrying
/// the shard id.
pub async fn run_shard<L, I, S, F>(
    id: ShardId,
    ports: Arc<Ports<L, I, S, F>>,
    config: RuntimeConfig,
    stop: CancellationToken,
) -> Result<ShardExit, RuntimeError>
where
    L: EventLog + 'static,
    I: IntakeQueue + 'static,
    S: Snapshots + 'static,
    F: Fulfiller + 'static,
{
    drive_shard(id, ports, config, stop)
        .instrument(info_span!("shard", shard = id))
        .await
}

async fn drive_shard<L, I, S, F>(
    id: ShardId,
    ports: Arc<Ports<L, I, S, F>>,
    config: RuntimeConfig,
    stop: CancellationToken,
) -> Result<ShardExit, RuntimeError>
where
    L: EventLog + 'static,
    I: IntakeQueue + 'static,
    S: Snapshots + 'static,
    F: Fulfiller + 'static,
{
    let mut config = config;
    config.shard.shard = id;
    let recovered = recover_with_carts(id, &ports.log, &ports.snapshots, &config.shard).await?;
    let clock = config.clock;
    let now = move || clock.now();
    let mut shard = Shard::recover(recovered.state, recovered.seq, config.shard.clone(), now());
    let carts = Carts::restore(
        config.carts.clone(),
        recovered.carts,
        recovered.cart_events,
        now(),
    );
    let mut serving = ports
        .claims
        .serve(id)
        .await
        .map_err(|e| RuntimeError::Claims {
            shard: id,
            why: e.to_string(),
        })?;
    let _owned = config.owned.hold(id);
    let (tx, mut rx) = mpsc::channel(1024);
    let fetching = CancellationToken::new();
    let mut spawned = JoinSet::new();
    let in_line = Arc::new(InLine::default());
    spawned.spawn(fetch_loop(
        id,
        ports.clone(),
        config.clone(),
        (tx.clone(), in_line.clone()),
        fetching.clone(),
    ));
    let mut task = Task {
        id,
        spawned,
        ports,
        tx,
        appending: None,
        events_since_snapshot: 0,
        last_snapshot: tokio::time::Instant::now(),
        snapshot_after_append: None,
        snapshot_size: 0,
        instance: rand::random(),
        config,
        metrics: ShardMetrics::new(id),
        published: FxHashMap::default(),
        waiting: VecDeque::new(),
        in_line,
        next_claim: 0,
        answered: FxHashMap::default(),
        replies: FxHashMap::default(),
        next_reply: 0,
        carts,
        metrics_carts: CartMetrics::new(),
        cart_sends: 0,
        cart_append: None,
    };
    let mut drain_until: Option<tokio::time::Instant> = None;
    let exit = loop {
        task.drive(&mut shard);
        if shard.is_fenced() {
            break ShardExit::Fenced;
        }
        if let Some(deadline) = drain_until {
            let quiet = task.appending.is_none()
                && task.in_line.with_workers() == 0
                && !shard.has_unwritten()
                && !task.carts.has_unwritten()
                && task.cart_sends == 0;
            if quiet || tokio::time::Instant::now() >= deadline {
                break ShardExit::Stopped;
            }
        }
        let next = match (shard.poll_timeout(), task.carts.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let wake = next.map(|t| Duration::from_millis(t.0.saturating_sub(now().0)));
        // Branches in a fixed order, so a seeded run replays exactly. The
        // stop, the drain deadline and due timers come before messages: a
        // channel that never empties under load must not starve them.
        tokio::select! {
            biased;
            () = stop.cancelled(), if drain_until.is_none() => {
                info!(shard = id, in_flight = task.in_line.with_workers(), "draining");
                fetching.cancel();
                drain_until = Some(tokio::time::Instant::now() + task.config.drain_deadline);
            }
            () = tokio::time::sleep_until(drain_until.unwrap_or_else(tokio::time::Instant::now)), if drain_until.is_some() => {}
            () = tokio::time::sleep(wake.unwrap_or_default()), if wake.is_some() => {
                shard.handle_timeout(now());
                task.carts.handle_timeout(now());
            }
            msg = rx.recv() => match msg {
                Some(msg) => task.handle(&mut shard, msg),
                None => break ShardExit::Stopped,
            },
            Some(request) = serving.rx.recv() => task.claims(&mut shard, request),
            Some(_) = task.spawned.join_next() => {}
        }
    };
    fetching.cancel();
    task.spawned.abort_all();
    match exit {
        ShardExit::Stopped => task
            .metrics
            .gauges(shard.state(), task.in_line.with_workers(), true),
        ShardExit::Fenced => task.metrics.disowned(),
    }
    // A fenced shard's intake must not keep taking (and holding) messages
    // that only the shard's new owner will decide.
    task.ports.intake.release(id).await;
    info!(shard = id, ?exit, "shard stopped");
    Ok(exit)
}

impl<L, I, S, F> Task<L, I, S, F>
where
    L: EventLog + 'static,
    I: IntakeQueue + 'static,
    S: Snapshots + 'static,
    F: Fulfiller + 'static,
{
    fn handle(&mut self, shard: &mut Shard, msg: Msg) {
        let now = self.config.clock.now();
        match msg {
            Msg::Intake(batch) => {
                let _span = debug_span!("intake", messages = batch.len()).entered();
                self.metrics.intake(&batch);
                self.line_up(shard, batch);
                self.feed_ready(shard, now);
            }
            Msg::Claimed(keys, answers) => {
                self.answered.extend(keys.into_iter().zip(answers));
                self.feed_ready(shard, now);
            }
            Msg::Outcome(id, attempt, outcome) => {
                self.in_line.worked(1);
                shard.handle_outcome(&id, attempt, outcome, now);
            }
            Msg::Appended(Ok(seq)) => {
                if let Some(tally) = self.appending.take() {
                    self.events_since_snapshot += tally.events;
                    self.metrics.appended(&tally);
                }
                shard.handle_appended(seq, now);
                if let Some((bytes, turn)) = self.snapshot_after_append.take() {
                    self.save_snapshot(seq, bytes, turn);
                }
            }
            Msg::Appended(Err(e)) => {
                error!(shard = self.id, error = %e, "event log conflict: another writer owns this shard; stopping it");
                self.appending = None;
                self.metrics.conflict();
                shard.handle_conflict();
            }
            Msg::Forwarded(copy) => shard.handle_forwarded(&copy, now),
            Msg::Enacted(c, w, attempt, r) => self.carts.handle_enacted(&c, &w, attempt, r, now),
            Msg::CartSent => self.cart_sent(shard, now),
        }
    }

    /// Carries out every output the shard and its cart coordinator have
    /// now (each can give the other work: cart events to append, appends
    /// made durable).
    fn drive(&mut self, shard: &mut Shard) {
        loop {
            let carts = self.drive_carts(shard);
            if !self.drive_shard(shard) && !carts {
                break;
            }
        }
        self.in_line.unwritten(shard.unwritten_events());
        self.maybe_snapshot(shard);
        self.metrics
            .gauges(shard.state(), self.in_line.with_workers(), false);
    }

    /// Carries out every output the shard has now; false if it had none.
    fn drive_shard(&mut self, shard: &mut Shard) -> bool {
        let mut any = false;
        while let Some(out) = shard.poll_output() {
            any = true;
            match out {
                Output::Append(batch) => self.append(batch),
                Output::Dispatch(list) => {
                    for d in list {
                        if d.order.line {
                            self.answer_reserved(&d.order);
                            continue;
                        }
                        self.in_line.working(1);
                        let (ports, tx) = (self.ports.clone(), self.tx.clone());
                        self.spawned.spawn(async move {
                            let outcome = ports.workers.run(&d.order, d.attempt).await;
                            let _ = tx.send(Msg::Outcome(d.order.id, d.attempt, outcome)).await;
                        });
                    }
                }
                Output::Forward(orders) => {
                    for order in orders {
                        let (ports, tx) = (self.ports.clone(), self.tx.clone());
                        self.spawned.spawn(async move {
                            let target = (ports.shard_of)(&order.partition);
                            ports.intake.submit(target, order.clone()).await;
                            let _ = tx.send(Msg::Forwarded(order)).await;
                        });
                    }
                }
                Output::Ack(acks) => {
                    self.decided(&acks);
                    let (ports, id) = (self.ports.clone(), self.id);
                    self.spawned
                        .spawn(async move { ports.intake.ack(id, &acks).await });
                }
                Output::Replies(replies) => {
                    for (reply, answers) in replies {
                        if let Some(to) = self.replies.remove(&reply) {
                            let _ = to.send(answers);
                        }
                    }
                }
                Output::CartsDurable => self.carts.handle_appended(self.config.clock.now()),
                Output::LinesRejected(lines) => lines
                    .into_iter()
                    .for_each(|(line, why)| self.answer_rejected(line, why)),
            }
        }
        any
    }

    /// The appends deciding `acks` are durable: their decision latency,
    /// from publish, is known.
    fn decided(&mut self, acks: &[AckId]) {
        let now = SystemTime::now();
        for ack in acks {
            if let Some(at) = self.published.remove(ack) {
                // The broker's clock stamped `at`: skew can make it "later".
                self.metrics
                    .decided(now.duration_since(at).unwrap_or_default());
            }
        }
    }
}
