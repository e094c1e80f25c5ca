//! The broker features allot's NATS runtime relies on, checked against a real
//! nats-server (see `tests/common/nats.rs`; `scripts/setup.sh` installs the
//! pinned version): the intake stream's subject transform hashes like
//! `Router::shard_for`, `Nats-Msg-Id` dedupes, `Nats-Expected-Last-Subject-
//! Sequence` refuses a stale append, KV compare-and-set refuses a stale
//! revision, and a file-backed stream survives a crash.

mod common;

use std::time::Duration;

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::kv::{CreateErrorKind, UpdateErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{Config as StreamConfig, StorageType, SubjectTransform};
use async_nats::jetstream::{self, ErrorCode};
use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use allot::config::{nats_partition, Config, Router};
use allot::domain::{PartitionKey, Sku, WarehouseId};
use common::nats::NatsServer;

type TestResult = Result<(), async_nats::Error>;

async fn jetstream(server: &NatsServer) -> jetstream::Context {
    let client = async_nats::connect(server.url())
        .await
        .expect("connect to the test nats-server");
    jetstream::new(client)
}

/// The server-side error inside an async-nats error chain, if any.
fn server_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a jetstream::Error> {
    let mut e = Some(e);
    while let Some(err) = e {
        if let Some(found) = err.downcast_ref::<jetstream::Error>() {
            return Some(found);
        }
        e = err.source();
    }
    None
}

/// A random warehouse or SKU token: 1..=12 of the characters names allow.
fn token(rng: &mut impl Rng) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    let len = rng.gen_range(1..=12);
    (0..len)
        .map(|_| char::from(CHARS[rng.gen_range(0..CHARS.len())]))
        .collect()
}

#[tokio::test]
async fn intake_transform_puts_each_order_on_the_shard_router_computes() -> TestResult {
    let server = NatsServer::start();
    let js = jetstream(&server).await;
    let router = Router::new(&Config::from_toml("[shards]\ncount = 4", "<test>")?);
    let (source, destination) = router.intake_transform();
    let stream = js
        .create_stream(StreamConfig {
            name: "ORDERS".into(),
            subjects: vec![source.into()],
            subject_transform: Some(SubjectTransform {
                source: source.into(),
                destination,
            }),
            ..Default::default()
        })
        .await?;

    let mut rng = ChaCha8Rng::seed_from_u64(4);
    // Two pairs with hand-checked hashes (src/config/router.rs), then random.
    let mut pairs = vec![("ams".to_owned(), "PS5-DISC".to_owned())];
    pairs.push(("fra".into(), "FRIDGE-X1".into()));
    pairs.extend((0..50).map(|_| (token(&mut rng), token(&mut rng))));
    let mut seen = [false; 4];
    for (wh, sku) in &pairs {
        let key = PartitionKey::new(WarehouseId::new(wh)?, Sku::new(sku)?);
        let shard = router.shard_for(&key);
        assert_eq!(shard, nats_partition(&[wh, sku], 4));
        seen[shard as usize] = true;

        let ack = js
            .publish(format!("orders.{wh}.{sku}"), Bytes::new())
            .await?
            .await?;
        let stored = stream.get_raw_message(ack.sequence).await?;
        assert_eq!(
            stored.subject.as_str(),
            format!("orders.{shard}.{wh}.{sku}"),
            "broker and Router::shard_for disagree on {wh}/{sku}"
        );
    }
    assert_eq!(seen, [true; 4], "the pairs should cover every shard");
    Ok(())
}

#[tokio::test]
async fn msg_id_duplicate_is_dropped_within_the_window() -> TestResult {
    let server = NatsServer::start();
    let js = jetstream(&server).await;
    let mut stream = js
        .create_stream(StreamConfig {
            name: "ORDERS".into(),
            subjects: vec!["orders.*.*".into()],
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await?;
    let publish = |id: &str| {
        js.send_publish(
            "orders.ams.MUG",
            PublishMessage::build()
                .message_id(id)
                .payload(Bytes::from(id.to_owned())),
        )
    };

    let first = publish("order-1").await?.await?;
    let retry = publish("order-1").await?.await?;
    let other = publish("order-2").await?.await?;
    assert!(!first.duplicate);
    // A retry is acked (the producer stops retrying) with the original
    // sequence, and flagged, but not stored again.
    assert!(retry.duplicate);
    assert_eq!(retry.sequence, first.sequence);
    assert!(!other.duplicate);
    assert_eq!(other.sequence, first.sequence + 1);
    assert_eq!(stream.info().await?.state.messages, 2);
    Ok(())
}

#[tokio::test]
async fn expected_last_subject_sequence_refuses_a_stale_append() -> TestResult {
    let server = NatsServer::start();
    let js = jetstream(&server).await;
    let mut stream = js
        .create_stream(StreamConfig {
            name: "EVENTS".into(),
            subjects: vec!["events.*".into()],
            ..Default::default()
        })
        .await?;
    let append = |shard: u32, expected: u64| {
        js.send_publish(
            format!("events.{shard}"),
            PublishMessage::build()
                .expected_last_subject_sequence(expected)
                .payload(Bytes::from_static(b"batch")),
        )
    };

    // 0 means "no message on this subject yet": a new shard's first append.
    assert_eq!(append(0, 0).await?.await?.sequence, 1);
    // Sequences are stream-wide; the check is per subject.
    assert_eq!(append(1, 0).await?.await?.sequence, 2);
    assert_eq!(append(0, 1).await?.await?.sequence, 3);

    // A second owner that last saw sequence 1 (or nothing) must be refused.
    for stale in [1, 0] {
        let err = append(0, stale).await?.await.unwrap_err();
        // What the runtime maps to "another instance owns the shard":
        // PublishErrorKind::WrongLastSequence, whose source is the server's
        // jetstream::Error with code 400 and err_code 10071
        // (JSStreamWrongLastSequenceErrF). Display, for stale = 1:
        // "wrong last sequence: wrong last sequence: 3 (code 400, error code 10071)"
        assert_eq!(err.kind(), PublishErrorKind::WrongLastSequence, "{err}");
        let server_err = server_error(&err).expect("the server's error is the source");
        assert_eq!(
            server_err.error_code(),
            ErrorCode::STREAM_WRONG_LAST_SEQUENCE
        );
        assert_eq!(server_err.error_code(), ErrorCode(10071));
        assert_eq!(server_err.code(), 400);
        if stale == 1 {
            assert_eq!(
                err.to_string(),
                "wrong last sequence: wrong last sequence: 3 (code 400, error code 10071)"
            );
        }
    }
    assert_eq!(stream.info().await?.state.messages, 3);
    Ok(())
}

#[tokio::test]
async fn kv_update_refuses_a_stale_revision() -> TestResult {
    let server = NatsServer::start();
    let js = jetstream(&server).await;
    let kv = js
        .create_key_value(jetstream::kv::Config {
            bucket: "LEASES".into(),
            history: 1,
            ..Default::default()
        })
        .await?;

    let r1 = kv.create("shard.0", "instance-a".into()).await?;
    let err = kv.create("shard.0", "instance-b".into()).await.unwrap_err();
    assert_eq!(err.kind(), CreateErrorKind::AlreadyExists, "{err}");

    let r2 = kv.update("shard.0", "instance-a".into(), r1).await?;
    assert!(r2 > r1);
    let err = kv
        .update("shard.0", "instance-b".into(), r1)
        .await
        .unwrap_err();
    // UpdateErrorKind::WrongLastRevision over PublishErrorKind::
    // WrongLastSequence over the server's 400 / 10071, as for the log.
    assert_eq!(err.kind(), UpdateErrorKind::WrongLastRevision, "{err}");
    let server_err = server_error(&err).expect("the server's error is in the chain");
    assert_eq!(
        server_err.error_code(),
        ErrorCode::STREAM_WRONG_LAST_SEQUENCE
    );
    assert_eq!(
        err.to_string(),
        format!(
            "wrong last revision: wrong last sequence: wrong last sequence: {r2} \
             (code 400, error code 10071)"
        )
    );
    assert_eq!(kv.get("shard.0").await?, Some("instance-a".into()));
    Ok(())
}

#[tokio::test]
async fn file_stream_keeps_its_messages_across_a_crash() -> TestResult {
    let mut server = NatsServer::start();
    let js = jetstream(&server).await;
    js.create_stream(StreamConfig {
        name: "EVENTS".into(),
        subjects: vec!["events.*".into()],
        storage: StorageType::File,
        ..Default::default()
    })
    .await?;
    for i in 0..10u32 {
        js.publish(format!("events.{}", i % 2), Bytes::from(i.to_string()))
            .await?
            .await?;
    }
    drop(js);

    // SIGKILL: no shutdown, no fsync. Acked writes are in the OS page cache,
    // which a process crash does not lose (a power loss could, within
    // jetstream.sync_interval, 2 min by default).
    server.kill();
    server.restart();

    let js = jetstream(&server).await;
    let mut stream = js.get_stream("EVENTS").await?;
    let state = stream.info().await?.state.clone();
    assert_eq!(
        (state.messages, state.first_sequence, state.last_sequence),
        (10, 1, 10)
    );
    let last = stream.get_last_raw_message_by_subject("events.1").await?;
    assert_eq!((last.sequence, last.payload), (10, Bytes::from("9")));
    Ok(())
}

#[tokio::test]
async fn kv_keeps_its_entries_across_a_graceful_restart() -> TestResult {
    let mut server = NatsServer::start();
    let (port, pid) = (server.port(), server.pid());
    let js = jetstream(&server).await;
    let kv = js
        .create_key_value(jetstream::kv::Config {
            bucket: "SNAPSHOTS".into(),
            ..Default::default()
        })
        .await?;
    let revision = kv.put("shard.3", "snapshot".into()).await?;
    drop((kv, js));

    server.stop();
    assert_eq!(server.pid(), None);
    server.restart();
    assert_eq!(server.port(), port, "a restart keeps the port");
    assert_ne!(server.pid(), pid);

    let kv = jetstream(&server).await.get_key_value("SNAPSHOTS").await?;
    let entry = kv.entry("shard.3").await?.expect("the entry survives");
    assert_eq!((entry.revision, entry.value), (revision, "snapshot".into()));
    Ok(())
}

#[tokio::test]
async fn retried_append_that_landed_is_refused_by_the_sequence_check() -> TestResult {
    let server = NatsServer::start();
    let js = jetstream(&server).await;
    let mut stream = js
        .create_stream(StreamConfig {
            name: "EVENTS".into(),
            subjects: vec!["events.*".into()],
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await?;
    let append = |batch_id: &str, expected: u64| {
        js.send_publish(
            "events.0",
            PublishMessage::build()
                .message_id(batch_id)
                .expected_last_subject_sequence(expected)
                .payload(Bytes::from_static(b"batch")),
        )
    };

    let first = append("batch-a", 0).await?.await?;
    // The runtime retries an append whose answer it lost with the same batch
    // id and the same expected sequence, stale by then. The server checks
    // the sequence before the msg id: the retry is refused as a conflict,
    // not answered as a duplicate. So `NatsLog::append` must look at the
    // subject's last message before it calls a refusal a conflict.
    let err = append("batch-a", 0).await?.await.unwrap_err();
    assert_eq!(err.kind(), PublishErrorKind::WrongLastSequence, "{err}");
    let last = stream.get_last_raw_message_by_subject("events.0").await?;
    assert_eq!(last.sequence, first.sequence);
    let msg_id = last
        .headers
        .get("Nats-Msg-Id")
        .map(|v| v.as_str().to_owned());
    assert_eq!(msg_id.as_deref(), Some("batch-a"));
    // With the right expected sequence the msg id still dedupes.
    let again = append("batch-a", first.sequence).await?.await?;
    assert!(again.duplicate);
    assert_eq!(again.sequence, first.sequence);
    assert_eq!(stream.info().await?.state.messages, 1);
    Ok(())
}
