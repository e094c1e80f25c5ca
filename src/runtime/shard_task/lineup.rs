//! Lining intake up behind id claims: a batch of deliveries waits in
//! intake order while the ids owned by other shards are claimed there;
//! each is fed to the shard once its claim is answered (a refused one is
//! recorded as a refused copy). Also the owner's side: claims other shards
//! ask of this one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::{Msg, Ports, RuntimeConfig, Task};
use crate::domain::{Claim, ClaimAnswer, OrderId, PartitionKey, Timestamp};
use crate::ports::{Delivery, EventLog, Fulfiller, Intake, IntakeQueue, ShardId, Snapshots};
use crate::runtime::claims::ClaimRequest;
use crate::scheduler::{ReplyId, Shard};

/// What a shard has in hand beyond its state: deliveries fetched and not
/// yet fed to it, events decided and not yet durable, and orders handed
/// to workers and not yet back. The fetch
/// loop takes no more while `max_in_line` are, so a backlog stays in the
/// stream, not in memory (a flash sale published faster than its workers
/// enact it).
#[derive(Default)]
pub(super) struct InLine {
    fetched: AtomicUsize,
    working: AtomicUsize,
    /// Events the shard decided and has not yet made durable: orders
    /// taken in and not yet acked or dispatched.
    unwritten: AtomicUsize,
    room: Notify,
}

impl InLine {
    fn add(&self, n: usize) {
        self.fetched.fetch_add(n, Ordering::Relaxed);
    }

    fn fed(&self, n: usize) {
        self.fetched.fetch_sub(n, Ordering::Relaxed);
        self.room.notify_one();
    }

    pub(super) fn working(&self, n: usize) {
        self.working.fetch_add(n, Ordering::Relaxed);
    }

    /// Orders with workers now (dispatched, outcome not yet handled).
    pub(super) fn with_workers(&self) -> usize {
        self.working.load(Ordering::Relaxed)
    }

    pub(super) fn worked(&self, n: usize) {
        self.working.fetch_sub(n, Ordering::Relaxed);
        self.room.notify_one();
    }

    pub(super) fn unwritten(&self, events: u64) {
        let events = usize::try_from(events).unwrap_or(usize::MAX);
        if self.unwritten.swap(events, Ordering::Relaxed) > events {
            self.room.notify_one();
        }
    }

    fn in_hand(&self) -> usize {
        let load = |n: &AtomicUsize| n.load(Ordering::Relaxed);
        load(&self.fetched) + load(&self.working) + load(&self.unwritten)
    }

    /// Waits until fewer than `max` are in hand.
    async fn wait_for_room(&self, max: usize) {
        while self.in_hand() >= max {
            // A notify stored before this wait wakes it at once; the
            // timeout is a backstop, not the mechanism.
            let _ = tokio::time::timeout(Duration::from_millis(50), self.room.notified()).await;
        }
    }
}

/// Fetches the shard's intake into its channel until `stop`, while the
/// shard has fewer than `config.max_in_line` in hand (see [`InLine`]).
pub(super) async fn fetch_loop<L, I: IntakeQueue, S, F>(
    id: ShardId,
    ports: Arc<Ports<L, I, S, F>>,
    config: RuntimeConfig,
    (tx, in_line): (mpsc::Sender<Msg>, Arc<InLine>),
    stop: CancellationToken,
) {
    loop {
        // The stop first: a queue with a backlog must not keep a draining
        // shard fetching.
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            () = in_line.wait_for_room(config.max_in_line.max(1)) => {}
        }
        let batch = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            batch = ports.intake.fetch(id, config.fetch_batch) => batch,
        };
        if batch.is_empty() {
            tokio::select! {
                biased;
                () = stop.cancelled() => return,
                () = tokio::time::sleep(config.idle_poll) => continue,
            }
        }
        in_line.add(batch.len());
        if tx.send(Msg::Intake(batch)).await.is_err() {
            return;
        }
    }
}

/// Claims asked of an owner shard in one request, at most.
const CLAIMS_PER_REQUEST: usize = 1_024;

/// An intake message in line to be fed to the shard, in intake order.
pub(super) struct Waiting {
    pub(super) delivery: Delivery,
    /// `None`: nothing to wait for; `Some(key)`: its id's claim, asked of
    /// the owner, answered once `answered` holds the key.
    pub(super) claim: Option<u64>,
}

impl<L, I, S, F> Task<L, I, S, F>
where
    L: EventLog + 'static,
    I: IntakeQueue + 'static,
    S: Snapshots + 'static,
    F: Fulfiller + 'static,
{
    /// Puts a batch of intake in line, and sends the claims its producers'
    /// ids need, one question per owner shard.
    pub(super) fn line_up(&mut self, shard: &Shard, batch: Vec<Delivery>) {
        let mut asks: FxHashMap<ShardId, (Vec<u64>, Vec<Claim>)> = FxHashMap::default();
        for delivery in batch {
            if let Some(at) = delivery.published {
                if let Some(ack) = delivery.ack {
                    self.published.insert(ack, at);
                }
            }
            let claim = claim_of(&delivery.item).and_then(|(id, partition)| {
                let owner = shard.claim_owner(id)?;
                let key = self.next_claim;
                self.next_claim += 1;
                let ask = asks.entry(owner).or_default();
                ask.0.push(key);
                ask.1.push(Claim {
                    id: id.clone(),
                    by: partition.clone(),
                });
                Some(key)
            });
            self.waiting.push_back(Waiting { delivery, claim });
        }
        let mut asks: Vec<_> = asks.into_iter().collect();
        asks.sort_by_key(|(owner, _)| *owner);
        // A request of at most CLAIMS_PER_REQUEST ids: under the broker's
        // message limit (ids and partition names of 64 bytes) when the
        // owner runs in another instance.
        let asks = asks.iter().flat_map(|(owner, (keys, claims))| {
            let parts = keys
                .chunks(CLAIMS_PER_REQUEST)
                .zip(claims.chunks(CLAIMS_PER_REQUEST));
            parts.map(|(keys, claims)| (*owner, keys.to_vec(), claims.to_vec()))
        });
        for (owner, keys, claims) in asks {
            let (ports, tx) = (self.ports.clone(), self.tx.clone());
            self.spawned.spawn(async move {
                let mut backoff = Duration::from_millis(10);
                loop {
                    match ports.claims.claim(owner, claims.clone()).await {
                        Ok(answers) => {
                            let _ = tx.send(Msg::Claimed(keys, answers)).await;
                            return;
                        }
                        Err(e) => debug!(owner, error = %e, "claim not answered; asking again"),
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            });
        }
    }

    /// Feeds the shard every lined-up delivery that waits for nothing, in
    /// order, stopping at the first still waiting for its claim. Answers
    /// are looked up by key: a backlog of many thousand lined-up
    /// deliveries (batched intake) must not be scanned once per answer.
    pub(super) fn feed_ready(&mut self, shard: &mut Shard, now: Timestamp) {
        let mut fed = 0;
        while let Some(w) = self.waiting.front() {
            let answer = match w.claim {
                None => None,
                Some(key) => match self.answered.remove(&key) {
                    Some(answer) => Some(answer),
                    None => break,
                },
            };
            let w = self.waiting.pop_front().expect("checked");
            fed += 1;
            match (answer, w.delivery.item) {
                (Some(ClaimAnswer::Refused { holder }), item) => {
                    let (id, partition) = claim_of(&item).expect("only claims are asked");
                    let (id, partition) = (id.clone(), partition.clone());
                    shard.handle_refused(id, partition, holder, w.delivery.ack, now);
                }
                (_, item) => {
                    let delivery = Delivery { item, ..w.delivery };
                    self.feed_item(shard, delivery, now);
                }
            }
        }
        if fed > 0 {
            self.in_line.fed(fed);
        }
    }

    /// Another shard asks this one, the owner, for ids.
    pub(super) fn claims(&mut self, shard: &mut Shard, request: ClaimRequest) {
        let reply = ReplyId(self.next_reply);
        self.next_reply += 1;
        self.replies.insert(reply, request.reply);
        shard.handle_claims(&request.claims, reply, self.config.clock.now());
    }
}

/// The id and partition a delivery's claim is for: a producer's order, or
/// an invalid one under the producer's own id and its subject's partition.
fn claim_of(item: &Intake) -> Option<(&OrderId, &PartitionKey)> {
    match item {
        Intake::Order(order) | Intake::Line(order) => Some((&order.id, &order.partition)),
        Intake::Invalid {
            id,
            partition: Some(p),
            ..
        } if !id.as_str().starts_with(crate::wire::RESERVED_ID_PREFIX) => Some((id, p)),
        _ => None,
    }
}
