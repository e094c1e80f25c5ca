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

use allot::adapters::nats::dlq::{
    dead_letters, ensure_dlq, DELIVERIES_HEADER, DLQ_STREAM, MSG_ID_HEADER, REASON_HEADER,
    SEQ_HEADER, SUBJECT_HEADER,
};
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

/// Plays an instance that takes the next intake message of shard 0 and dies
/// before acking it, `times` times (each time after the ack wait).
async fn take_without_acking(js: &Context, times: u64) {
    let consumer: PullConsumer = js
        .get_stream(ORDERS_STREAM)
        .await
        .expect("ORDERS")
        .get_consumer(&shard_consumer(0))
        .await
        .expect("the shard's consumer");
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
