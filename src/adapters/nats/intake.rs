//! The ORDERS stream as each shard's [`IntakeQueue`]: a durable pull
//! consumer per shard, messages decoded and validated here so the shard
//! sees an order, a stock command or an invalid message (which it records
//! as a rejection: nothing is dropped, nothing blocks the queue). Each
//! message is acked once the decision about it is durable (see `held`).

use std::time::{Duration, SystemTime};

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::stream::Stream;
use async_nats::jetstream::AckKind;
use async_nats::jetstream::{self, Context};
use futures::{FutureExt, StreamExt};
use tokio::sync::Mutex;
use tracing::warn;

use super::held::Held;
use super::mail::Mail;
use super::shard_consumer;
use super::NatsFiler;
use crate::config::Router;
use crate::domain::{Order, PartitionKey};
use crate::ingress::Filer;
use crate::ports::{Delivery, Intake, IntakeQueue, ShardId};
use crate::scheduler::AckId;
use crate::wire::{encode_forward, encode_routed, IntakeDecoder, Limits, KIND_HEADER};

/// How long one fetch waits for a first message before answering empty.
const FETCH_WAIT: Duration = Duration::from_millis(250);

/// Each pull request of a shard's intake stream expires after this (the
/// broker then answers with what it did not deliver, and the stream pulls
/// again), and the broker sends an idle heartbeat at this interval. With
/// async-nats' defaults (30 s, 15 s) a hot shard's stream went silent for
/// 30 s mid-sale in about 1 of 20 benchmark runs: no message and no error
/// while the consumer had thousands waiting, until two heartbeats were
/// missed and the stream was reopened. Short, such a stall lasts seconds.
const PULL_EXPIRES: Duration = Duration::from_secs(5);
const PULL_HEARTBEAT: Duration = Duration::from_secs(1);

pub struct NatsIntake {
    filer: NatsFiler,
    orders: Stream,
    router: Router,
    limits: Limits,
    streams: Vec<Mutex<Option<jetstream::consumer::pull::Stream>>>,
    held: Vec<parking_lot::Mutex<Held>>,
    /// Cart traffic to each shard, batched.
    mail: Mail,
}

impl NatsIntake {
    pub fn new(js: Context, orders: Stream, router: Router, limits: Limits) -> Self {
        let streams = (0..router.shard_count())
            .map(|_| Mutex::new(None))
            .collect();
        let shards = router.shard_count() as usize;
        let filer = NatsFiler::new(js);
        Self {
            mail: Mail::new(filer.clone(), router.shard_count()),
            filer,
            orders,
            router,
            limits,
            streams,
            held: (0..shards).map(|_| Default::default()).collect(),
        }
    }

    async fn open(
        &self,
        shard: ShardId,
    ) -> Result<jetstream::consumer::pull::Stream, Box<dyn std::error::Error + Send + Sync>> {
        let consumer: PullConsumer = self.orders.get_consumer(&shard_consumer(shard)).await?;
        Ok(consumer
            .stream()
            .expires(PULL_EXPIRES)
            .heartbeat(PULL_HEARTBEAT)
            .messages()
            .await?)
    }

    /// Counts `acks` of `shard` decided durably, and acks each message
    /// whose every item is.
    async fn settle(&self, shard: ShardId, acks: &[AckId]) {
        let Some(held) = self.held.get(shard as usize) else {
            return;
        };
        let done = held.lock().take(acks.iter().copied());
        for (seq, message) in done {
            if let Err(e) = message.ack().await {
                warn!(shard, seq, error = %e, "ack failed; the message will be redelivered and deduped");
            }
        }
    }

    /// Hands orders that belong to other shards (a pinned SKU published
    /// on the hashed subject, a batch's orders) to their shards' intake,
    /// one message per shard, retrying until the stream has it (the key
    /// makes a retry store it once).
    async fn hand_on(&self, seq: u64, orders: Vec<Order>) {
        let mut by_shard: Vec<(ShardId, Vec<Order>)> = Vec::new();
        for order in orders {
            let owner = self.router.shard_for(&order.partition);
            match by_shard.iter_mut().find(|(s, _)| *s == owner) {
                Some((_, list)) => list.push(order),
                None => by_shard.push((owner, vec![order])),
            }
        }
        let filings = by_shard.into_iter().map(|(shard, orders)| async move {
            let key = format!("hand-on-{seq}-{shard}");
            let partition = orders[0].partition.clone();
            let mut backoff = Duration::from_millis(50);
            loop {
                let filed = self
                    .filer
                    .file(shard, &partition, &key, encode_routed(&orders))
                    .await;
                match filed {
                    Ok(_) => return,
                    Err(e) => warn!(shard, error = %e, "orders not handed on; retrying"),
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        });
        futures::future::join_all(filings).await;
    }

    /// Hands a rerouted order to the shard of its next partition.
    async fn forward(&self, shard: ShardId, order: &Order) {
        let key = format!("{}@{}", order.id, order.partition.warehouse);
        let mut backoff = Duration::from_millis(50);
        loop {
            let filed = self
                .filer
                .file(shard, &order.partition, &key, encode_forward(order))
                .await;
            match filed {
                Ok(_) => return,
                Err(e) => warn!(order = %order.id, error = %e, "forward not filed; retrying"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    async fn deliver(&self, shard: ShardId, message: jetstream::Message, out: &mut Vec<Delivery>) {
        let (seq, delivered, published) = match message.info() {
            Ok(info) => (
                info.stream_sequence,
                info.delivered,
                SystemTime::from(info.published),
            ),
            Err(e) => {
                warn!(shard, error = %e, "message without JetStream info; ignored");
                return;
            }
        };
        let kind = message
            .headers
            .as_ref()
            .and_then(|h| h.get(KIND_HEADER))
            .map(|v| v.as_str());
        let decoder = IntakeDecoder {
            router: &self.router,
            limits: &self.limits,
        };
        let items = decoder.decode_all(message.subject.as_str(), kind, &message.payload, seq);
        let (mine, theirs): (Vec<Intake>, Vec<Intake>) = items.into_iter().partition(|item| {
            !matches!(item, Intake::Order(o) if self.router.shard_for(&o.partition) != shard)
        });
        if !theirs.is_empty() {
            let orders = theirs
                .into_iter()
                .filter_map(|item| match item {
                    Intake::Order(o) => Some(o),
                    _ => None,
                })
                .collect();
            self.hand_on(seq, orders).await;
        }
        let acks = self.held[shard as usize]
            .lock()
            .hold(seq, message, mine.len());
        if mine.is_empty() {
            // All handed to the shards that own them: done here.
            return self.settle(shard, &acks).await;
        }
        for (item, ack) in mine.into_iter().zip(acks) {
            out.push(Delivery {
                ack: Some(ack),
                item,
                delivery_count: u32::try_from(delivered).unwrap_or(u32::MAX),
                published: Some(published),
            });
        }
    }
}

impl IntakeQueue for NatsIntake {
    async fn fetch(&self, shard: ShardId, max: usize) -> Vec<Delivery> {
        let mut out = Vec::new();
        let Some(slot) = self.streams.get(shard as usize) else {
            return out;
        };
        let mut guard = slot.lock().await;
        if guard.is_none() {
            match self.open(shard).await {
                Ok(stream) => *guard = Some(stream),
                Err(e) => {
                    warn!(shard, error = %e, "intake consumer unavailable");
                    tokio::time::sleep(FETCH_WAIT).await;
                    return out;
                }
            }
        }
        let stream = guard.as_mut().expect("opened above");
        let first = match tokio::time::timeout(FETCH_WAIT, stream.next()).await {
            Err(_) => return out,
            Ok(first) => first,
        };
        let mut next = first;
        loop {
            match next {
                Some(Ok(message)) => self.deliver(shard, message, &mut out).await,
                Some(Err(e)) => {
                    warn!(shard, error = %e, "intake stream error; reopening it");
                    *guard = None;
                    return out;
                }
                None => {
                    *guard = None;
                    return out;
                }
            }
            if out.len() >= max {
                return out;
            }
            match stream.next().now_or_never() {
                Some(n) => next = n,
                None => return out,
            }
        }
    }

    async fn ack(&self, shard: ShardId, acks: &[AckId]) {
        self.settle(shard, acks).await;
    }

    async fn submit(&self, shard: ShardId, order: Order) {
        self.forward(shard, &order).await;
    }

    async fn send(&self, shard: ShardId, partition: PartitionKey, item: Intake) {
        self.mail.send(shard, partition, item).await;
    }

    async fn release(&self, shard: ShardId) {
        let Some(slot) = self.streams.get(shard as usize) else {
            return;
        };
        // Dropping the pull stream ends its pull requests; kept, it would
        // go on taking messages (its background task pulls again on every
        // expiry and reconnect) that nobody here processes.
        let mut handed_back = Vec::new();
        if let Some(mut stream) = slot.lock().await.take() {
            while let Some(Some(Ok(message))) = stream.next().now_or_never() {
                handed_back.push(message);
            }
        }
        if let Some(held) = self.held.get(shard as usize) {
            handed_back.extend(held.lock().drain());
        }
        for message in handed_back {
            if let Err(e) = message.ack_with(AckKind::Nak(None)).await {
                warn!(shard, error = %e, "nak failed; the message comes back after the ack wait");
            }
        }
    }
}
