//! Dead letters end to end on a real nats-server: an order the broker gives
//! up on after `max_deliver` deliveries lands in `DLQ` with its reason and
//! its payload unchanged, `allot dlq list` shows it, `allot dlq replay` puts
//! it back and allot decides it.
//!
//! How the order exceeds `max_deliver` is real: the intake consumer is
//! created with `max_deliver = 2` and a 1 s ack wait (what `allot serve
//! --set nats.max_deliver=2 --ack-wait 1s` creates), and the test plays an
//! instance that takes the order from the shard's durable consumer and dies
//! before acking it, twice. The broker then refuses a third delivery and
//! publishes its advisory when the `allot serve` started next pulls.

mod common;

use std::process::Output;
use std::time::Duration;

use allot::adapters::nats::dlq::ADVISORY_STREAM;
use allot::adapters::nats::dlq::{
    dead_letters, ensure_dlq, DELIVERIES_HEADER, DLQ_STREAM, MSG_ID_HEADER, REASON_HEADER,
    SEQ_HEADER, SUBJECT_HEADER,
};
use allot::adapters::nats::trim::Trim;
use allot::adapters::nats::{ensure_streams, shard_consumer, ORDERS_STREAM};
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::Context;
use futures::StreamExt;
use tokio::time::Instant;

use common::allot::{
    jetstream, one_warehouse, order_id, partition, publish_all, AllotProcess, ConfigFile, Ledger,
    Outgoing,
};
use common::nats::NatsServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_over_max_deliver_is_dead_lettered_listed_and_replayed_then_decided() {
    let server = NatsServer::start();
    let config = ConfigFile::new(&one_warehouse(1));
    let js = jetstream(&server.url()).await;
    ensure_streams(&js, &config.config.router(), 2, Duration::from_secs(1))
        .await
        .expect("set up ORDERS");
    ensure_dlq(&js).await.expect("set up DLQ");
    let mug = partition("ams", "DLQ-MUG");
    let order = Outgoing::order("dl-1", &mug, 1);
    let original = order.payload.clone();
    let seq = publish_all(&js, &[order]).await[0];
    take_without_acking(&js, 2).await;

    let allot = AllotProcess::serve(
        &server.url(),
        &config,
        &["--set", "nats.max_deliver=2", "--ack-wait", "1s"],
    );
    let mut dlq = js.get_stream(DLQ_STREAM).await.expect("DLQ");
    let deadline = Instant::now() + Duration::from_secs(30);
    let letter = loop {
        if let Some(letter) = dead_letters(&mut dlq, 10).await.expect("read DLQ").pop() {
            break letter;
        }
        assert!(
            Instant::now() < deadline,
            "no dead letter after 30 s; allot log:\n{}",
            allot.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(letter.payload, original, "the payload is the original");
    assert_eq!(letter.header(SUBJECT_HEADER), "orders.0.ams.DLQ-MUG");
    assert_eq!(letter.header(SEQ_HEADER), seq.to_string());
    assert_eq!(letter.header(MSG_ID_HEADER), "dl-1");
    let deliveries: u64 = letter
        .header(DELIVERIES_HEADER)
        .parse()
        .expect("deliveries");
    assert!(deliveries >= 2, "{deliveries} deliveries");
    assert_eq!(
        letter.header(REASON_HEADER),
        format!("max_deliver exceeded: {deliveries} deliveries")
    );
    let ids = [order_id("dl-1")];
    let mut ledger = Ledger::default();
    ledger.catch_up(&js).await.expect("read EVENTS");
    assert_eq!(ledger.undecided(&ids), 1, "a dead letter is not decided");

    let listed = allot_dlq(&server, &config, &["list"]);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success(), "dlq list failed: {listed:?}");
    assert!(
        text.contains("order dl-1") && text.contains("max_deliver exceeded"),
        "dlq list printed:\n{text}"
    );

    let replayed = allot_dlq(&server, &config, &["replay", "--all"]);
    assert!(replayed.status.success(), "dlq replay failed: {replayed:?}");
    assert_eq!(
        ledger
            .wait_decided(&js, &ids, Duration::from_secs(20))
            .await,
        0,
        "the replayed order was not decided; allot log:\n{}",
        allot.log()
    );
    assert_eq!(ledger.finals(&ids[0]), 1, "decided exactly once");
    assert!(dead_letters(&mut dlq, 10)
        .await
        .expect("read DLQ")
        .is_empty());
    let again = allot_dlq(
        &server,
        &config,
        &["replay", "--seq", &letter.seq.to_string()],
    );
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        !again.status.success() && err.contains(&format!("no dead letter #{}", letter.seq)),
        "a second replay of the same letter must fail naming it: {again:?}"
    );
}

/// The ORDERS trim (`adapters::nats::trim`) on a real broker, rounds driven
/// by hand with no dead-letter mover running: it keeps a given-up message
/// while its advisory waits (and so everything after it), purges what every
/// consumer acked once the advisory is handled, and keeps what a consumer
/// holds unacked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orders_trim_spares_unacked_messages_and_unmoved_dead_letters() {
    let server = NatsServer::start();
    let config = ConfigFile::new(&one_warehouse(1));
    let js = jetstream(&server.url()).await;
    let streams = ensure_streams(&js, &config.config.router(), 2, Duration::from_secs(1))
        .await
        .expect("set up ORDERS");
    ensure_dlq(&js).await.expect("set up DLQ");
    let mug = partition("ams", "TRIM-MUG");
    let orders: Vec<Outgoing> = (1..=4)
        .map(|i| Outgoing::order(&format!("tr-{i}"), &mug, 1))
        .collect();
    // tr-1 is delivered twice and never acked: the broker gives up on it
    // (max_deliver 2) when the next pull comes, which gets tr-2..tr-4.
    let mut seqs = publish_all(&js, &orders[..1]).await;
    take_without_acking(&js, 2).await;
    seqs.extend(publish_all(&js, &orders[1..]).await);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(ack_next(&js, 3).await, ["tr-2", "tr-3", "tr-4"]);
    let advisories = js.get_stream(ADVISORY_STREAM).await.expect("advisories");
    let deadline = Instant::now() + Duration::from_secs(10);
    while advisories.get_info().await.expect("info").state.messages == 0 {
        assert!(Instant::now() < deadline, "no max-deliveries advisory");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut trim = Trim::new(js.clone(), streams.orders.clone());
    purge_nothing(&mut trim, 3, "tr-1's advisory waits").await;
    streams
        .orders
        .get_raw_message(seqs[0])
        .await
        .expect("the given-up tr-1 is still in ORDERS for the mover");

    // The mover's part: the advisory handled, tr-1 may go, and all acked.
    advisories.purge().await.expect("handle the advisory");
    assert_eq!(
        trim.round().await.expect("a round"),
        4,
        "all four are done with"
    );
    let held = streams.orders.get_info().await.expect("info").state;
    assert_eq!((held.messages, held.last_sequence), (0, seqs[3]));
    // The purge leaves the duplicate window alone: a producer's retry of
    // tr-2 within it is still dropped.
    let retry = js
        .send_publish(orders[1].subject.clone(), orders[1].build())
        .await
        .expect("publish")
        .await
        .expect("stored or dropped");
    assert!(
        retry.duplicate,
        "a retry after the trim was stored again: {retry:?}"
    );

    // A message delivered and not acked stays; acked, it goes.
    let seq = publish_all(&js, &[Outgoing::order("tr-5", &mug, 1)]).await[0];
    take_without_acking(&js, 1).await;
    purge_nothing(&mut trim, 2, "tr-5 is held unacked").await;
    streams
        .orders
        .get_raw_message(seq)
        .await
        .expect("tr-5 kept");
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(ack_next(&js, 1).await, ["tr-5"]);
    trim.round().await.expect("a round");
    assert_eq!(trim.round().await.expect("a round"), 1, "acked, tr-5 goes");
}

/// Runs `rounds` trim rounds, each of which must purge nothing because of
/// `why`.
async fn purge_nothing(trim: &mut Trim, rounds: usize, why: &str) {
    for _ in 0..rounds {
        assert_eq!(
            trim.round().await.expect("a round"),
            0,
            "nothing goes: {why}"
        );
    }
}

/// Takes the next `n` intake messages of shard 0 and acks each; returns
/// their message ids.
async fn ack_next(js: &Context, n: usize) -> Vec<String> {
    let consumer = shard0(js).await;
    let mut ids = Vec::new();
    let mut batch = consumer
        .fetch()
        .max_messages(n)
        .expires(Duration::from_secs(5))
        .messages()
        .await
        .expect("fetch");
    while let Some(message) = batch.next().await {
        let message = message.expect("a message");
        let id = message
            .headers
            .as_ref()
            .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID));
        ids.push(id.map_or(String::new(), |v| v.as_str().to_owned()));
        message.double_ack().await.expect("ack");
    }
    ids
}

/// Plays an instance that takes the next intake message of shard 0 and dies
/// before acking it, `times` times (each time after the ack wait).
async fn take_without_acking(js: &Context, times: u64) {
    let consumer = shard0(js).await;
    for delivery in 1..=times {
        let mut batch = consumer
            .fetch()
            .max_messages(1)
            .expires(Duration::from_secs(5))
            .messages()
            .await
            .expect("fetch");
        let message = batch
            .next()
            .await
            .expect("a delivery within 5 s")
            .expect("a message");
        let info = message.info().expect("JetStream info");
        assert_eq!(info.delivered, delivery as i64, "delivery number");
    }
}

/// Shard 0's intake consumer.
async fn shard0(js: &Context) -> PullConsumer {
    js.get_stream(ORDERS_STREAM)
        .await
        .expect("ORDERS")
        .get_consumer(&shard_consumer(0))
        .await
        .expect("the shard's consumer")
}

/// Runs `allot dlq <args>` against `server`.
fn allot_dlq(server: &NatsServer, config: &ConfigFile, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_allot"))
        .arg("dlq")
        .args(args)
        .arg("--nats-url")
        .arg(server.url())
        .arg("--config")
        .arg(config.path())
        .env_remove("ALLOT_ENV")
        .output()
        .expect("run allot dlq")
}
