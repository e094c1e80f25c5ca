//! Creates or verifies allot's streams, consumers and buckets, idempotently.
//! An existing stream whose config differs from what allot needs is never
//! rewritten: start-up stops with an error naming the difference.

use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::object_store;
use async_nats::jetstream::stream::{
    Config as StreamConfig, DiscardPolicy, StorageType, SubjectTransform,
};
use async_nats::jetstream::{self, stream};

use tracing::warn;

use super::{shard_consumer, EVENTS_STREAM, ORDERS_STREAM, SNAPSHOT_BUCKET};
use crate::config::Router;

/// Why the broker could not be set up for allot.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The broker refused or failed a request.
    #[error("{what}: {source}")]
    Broker {
        what: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An existing stream is configured differently from what allot needs.
    #[error("stream {stream} exists with {field} = {found}, allot needs {wanted}; change it by hand (allot never rewrites a stream) or point allot at another account")]
    Mismatch {
        stream: String,
        field: &'static str,
        found: String,
        wanted: String,
    },
}

pub(super) fn broker(
    what: impl Into<String>,
) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> SetupError {
    let what = what.into();
    move |source| SetupError::Broker { what, source }
}

/// Handles to what `ensure_streams` verified.
pub struct Streams {
    pub orders: stream::Stream,
    pub events: stream::Stream,
    pub snapshots: object_store::ObjectStore,
}

/// What the ORDERS stream must look like for `router`'s shard count.
pub fn orders_config(router: &Router, duplicate_window: Duration) -> StreamConfig {
    let (source, destination) = router.intake_transform();
    StreamConfig {
        name: ORDERS_STREAM.into(),
        subjects: vec![source.into(), "orders.*.*.*".into()],
        subject_transform: Some(SubjectTransform {
            source: source.into(),
            destination,
        }),
        storage: StorageType::File,
        duplicate_window,
        discard: DiscardPolicy::Old,
        ..Default::default()
    }
}

pub fn events_config(duplicate_window: Duration) -> StreamConfig {
    StreamConfig {
        name: EVENTS_STREAM.into(),
        subjects: vec!["events.*".into()],
        storage: StorageType::File,
        duplicate_window,
        ..Default::default()
    }
}

/// Creates the streams, the per-shard consumers and the snapshot bucket if
/// missing; verifies them if present. `ack_wait` and `max_deliver` apply to
/// consumers created now: an existing consumer keeps its own (a difference
/// is logged, never rewritten).
pub async fn ensure_streams(
    js: &jetstream::Context,
    router: &Router,
    max_deliver: i64,
    ack_wait: Duration,
) -> Result<Streams, SetupError> {
    ensure_replicated_streams(js, router, max_deliver, ack_wait, 1).await
}

/// [`ensure_streams`] with `replicas` copies of every stream and bucket it
/// creates (3 on a 3-node cluster, so losing a node loses nothing).
pub async fn ensure_replicated_streams(
    js: &jetstream::Context,
    router: &Router,
    max_deliver: i64,
    ack_wait: Duration,
    replicas: usize,
) -> Result<Streams, SetupError> {
    let window = Duration::from_secs(120);
    let replicated = |c: StreamConfig| StreamConfig {
        num_replicas: replicas,
        ..c
    };
    let orders = ensure_stream(js, replicated(orders_config(router, window))).await?;
    let events = ensure_stream(js, replicated(events_config(window))).await?;
    for shard in 0..router.shard_count() {
        let config = pull::Config {
            durable_name: Some(shard_consumer(shard)),
            filter_subject: format!("orders.{shard}.>"),
            // One ack per message: with ack-all, an instance acking its
            // floor would ack messages another instance holds undecided
            // while both pull during a takeover (tests/instances.rs lost
            // orders that way).
            ack_policy: AckPolicy::Explicit,
            ack_wait,
            deliver_policy: DeliverPolicy::All,
            max_deliver,
            max_ack_pending: 20_000,
            ..Default::default()
        };
        let consumer = orders
            .get_or_create_consumer::<pull::Config>(&shard_consumer(shard), config)
            .await
            .map_err(|e| {
                broker(format!(
                    "consumer {} on {ORDERS_STREAM}",
                    shard_consumer(shard)
                ))(e.into())
            })?;
        let found = &consumer.cached_info().config;
        if found.ack_wait != ack_wait || found.max_deliver != max_deliver {
            warn!(
                consumer = shard_consumer(shard),
                ack_wait = ?found.ack_wait,
                max_deliver = found.max_deliver,
                wanted_ack_wait = ?ack_wait,
                wanted_max_deliver = max_deliver,
                "the intake consumer exists with other settings and keeps them: allot never rewrites it (edit it with the nats CLI)"
            );
        }
    }
    let snapshots = match js.get_object_store(SNAPSHOT_BUCKET).await {
        Ok(store) => store,
        Err(_) => js
            .create_object_store(object_store::Config {
                bucket: SNAPSHOT_BUCKET.into(),
                storage: StorageType::File,
                num_replicas: replicas,
                ..Default::default()
            })
            .await
            .map_err(|e| broker(format!("object store {SNAPSHOT_BUCKET}"))(e.into()))?,
    };
    Ok(Streams {
        orders,
        events,
        snapshots,
    })
}

pub(super) async fn ensure_stream(
    js: &jetstream::Context,
    wanted: StreamConfig,
) -> Result<stream::Stream, SetupError> {
    let name = wanted.name.clone();
    match js.get_stream(&name).await {
        Ok(mut existing) => {
            let info = existing
                .info()
                .await
                .map_err(|e| broker(format!("stream {name} info"))(e.into()))?;
            check_same(&name, &info.config, &wanted)?;
            Ok(existing)
        }
        Err(_) => js
            .create_stream(wanted)
            .await
            .map_err(|e| broker(format!("creating stream {name}"))(e.into())),
    }
}

/// Compares the fields allot relies on.
fn check_same(stream: &str, found: &StreamConfig, wanted: &StreamConfig) -> Result<(), SetupError> {
    let mismatch = |field, found: String, wanted: String| SetupError::Mismatch {
        stream: stream.to_owned(),
        field,
        found,
        wanted,
    };
    let mut found_subjects = found.subjects.clone();
    let mut wanted_subjects = wanted.subjects.clone();
    found_subjects.sort();
    wanted_subjects.sort();
    if found_subjects != wanted_subjects {
        return Err(mismatch(
            "subjects",
            format!("{found_subjects:?}"),
            format!("{wanted_subjects:?}"),
        ));
    }
    let transform = |c: &StreamConfig| {
        c.subject_transform
            .as_ref()
            .map(|t| format!("{} -> {}", t.source, t.destination))
    };
    if transform(found) != transform(wanted) {
        return Err(mismatch(
            "subject_transform",
            format!("{:?}", transform(found)),
            format!("{:?}", transform(wanted)),
        ));
    }
    if found.storage != wanted.storage {
        return Err(mismatch(
            "storage",
            format!("{:?}", found.storage),
            format!("{:?}", wanted.storage),
        ));
    }
    Ok(())
}
