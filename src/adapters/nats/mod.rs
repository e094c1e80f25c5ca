//! NATS JetStream adapters: the ORDERS intake stream with one durable pull
//! consumer per shard, the EVENTS log appended with an expected last
//! subject sequence, snapshots in an object store, and the streams' set-up.
//!
//! Subjects:
//! - `orders.<warehouse>.<sku>`: trusted producers publish orders here; the
//!   stream's subject transform files each under `orders.<shard>.<warehouse>.<sku>`
//!   (`partition(N,1,2)`, the same hash as `Router::shard_for`).
//! - `orders.<shard>.<warehouse>.<sku>`: ingress, reroutes and stock
//!   commands publish straight to a shard (pinned SKUs need this).
//! - `events.<shard>`: the shard's decisions, one message per batch.
//! - `dlq.<shard>`: intake messages given up after `max_deliver` deliveries
//!   (see `dlq`).

pub mod claims;
mod connect;
pub mod dlq;
pub mod events;
mod feed;
mod fulfiller;
mod held;
mod ingress;
mod intake;
pub mod leases;
mod log;
mod mail;
pub mod producer;
pub mod reads;
mod setup;
mod snapshots;

use std::time::Duration;

pub use crate::wire::{KIND_COMMAND, KIND_FORWARD, KIND_HEADER};
pub use async_nats::jetstream::stream::Stream as EventsStream;
pub use claims::NatsClaims;
pub use connect::{connect, Broker, ConnectError, NatsOptions};
pub use feed::{NatsDecisions, NatsFeed};
pub use fulfiller::{fulfil_subject, AnyFulfiller, FulfilReply, FulfilRequest, NatsFulfiller};
pub use ingress::{serve_submit, submit, NatsFiler};
pub use intake::NatsIntake;
pub use leases::{NatsLeases, LEASES_BUCKET};
pub use log::NatsLog;
pub use setup::{
    ensure_replicated_streams, ensure_streams, events_config, orders_config, SetupError, Streams,
};
pub use snapshots::NatsSnapshots;

/// Names of what allot keeps in JetStream.
pub const ORDERS_STREAM: &str = "ORDERS";
pub const EVENTS_STREAM: &str = "EVENTS";
pub const SNAPSHOT_BUCKET: &str = "allot_snapshots";

/// How long a delivered intake message may stay unacked before the broker
/// redelivers it (an instance died holding it), unless `allot serve
/// --ack-wait` says otherwise when the consumers are first created.
pub const ACK_WAIT: Duration = Duration::from_secs(30);

pub fn shard_consumer(shard: u32) -> String {
    format!("shard-{shard}")
}

pub fn events_subject(shard: u32) -> String {
    format!("events.{shard}")
}

/// The shard an EVENTS subject is of.
pub(crate) fn events_shard(subject: &str) -> Option<u32> {
    subject.strip_prefix("events.")?.parse().ok()
}

/// The subject of the intake stream for a shard's partition.
pub fn shard_order_subject(shard: u32, partition: &crate::domain::PartitionKey) -> String {
    format!("orders.{shard}.{}.{}", partition.warehouse, partition.sku)
}
