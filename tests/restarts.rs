//! Restarts mid-sale against a real nats-server (each test starts its
//! own, see `tests/common/nats.rs`): a SIGKILLed and a SIGTERMed `allot`
//! process, a restarted and a frozen nats-server. Each sale is read back
//! from EVENTS and audited: every order decided exactly once, sold out
//! exactly. Also the log append retried after it landed (its answer lost,
//! as in a broker restart).

mod common;

use std::time::Duration;

use allot::adapters::nats::NatsLog;
use allot::domain::Event;
use allot::ports::{AppendError, EventLog};
use common::allot::{
    few_workers, first_half_under_way, jetstream, partition, publish_all, slow_exact_and,
    sold_out_after, wait_intake_drained, AllotProcess, Sale, SLOW_EXACT,
};
use common::nats::NatsServer;

/// The `allot` process is SIGKILLed with orders queued, reserved and in
/// flight; more orders arrive while it is down; a new process recovers each
/// shard from EVENTS, re-dispatches the reservations, and gets the killed
/// one's unacked intake back after the ack wait (3 s here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allot_sigkilled_mid_sale_then_restarted_decides_every_order_once() {
    let server = NatsServer::start();
    let config = few_workers();
    let sale = Sale::one_sku_per_shard(&config.config, "ams", "T2", 500, 50);
    let (mut allot, js, mut ledger, half) =
        first_half_under_way(&server, &config, &sale, SLOW_EXACT).await;
    allot.kill();
    // What the killed instance made durable: the kill must land mid-sale.
    ledger.catch_up(&js).await.expect("read EVENTS");
    let at_kill = ledger.findings(&sale.ids[..half]);
    assert!(
        at_kill.confirmed < sale.units() && at_kill.undecided > 0,
        "the sale was over before the kill: {at_kill:?}"
    );
    eprintln!(
        "at the kill: {} confirmed, {} of {half} published orders undecided",
        at_kill.confirmed, at_kill.undecided
    );
    publish_all(&js, &sale.orders(half..sale.names.len())).await;

    let mut allot = AllotProcess::serve(&server.url(), &config, SLOW_EXACT);
    sold_out_after(&mut allot, &js, &mut ledger, &sale).await;
}

/// A graceful restart mid-sale loses nothing: SIGTERM stops the fetching,
/// lets in-flight work finish for up to the drain deadline (cut short here,
/// 300 ms against workers of 100-500 ms, so some work is handed back),
/// flushes appends and acks, and exits 0; orders published while it is down
/// wait in the intake; the next process decides every order exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allot_sigtermed_mid_sale_then_restarted_loses_no_order() {
    let server = NatsServer::start();
    let config = few_workers();
    let sale = Sale::one_sku_per_shard(&config.config, "ams", "G1", 500, 50);
    let flags = slow_exact_and(&["--drain-deadline", "300ms"]);
    let (mut allot, js, mut ledger, half) =
        first_half_under_way(&server, &config, &sale, &flags).await;
    let status = allot.terminate(Duration::from_secs(20)).await;
    assert!(status.success(), "{status}; log:\n{}", allot.log());
    assert!(allot.count("draining") > 0, "log:\n{}", allot.log());
    ledger.catch_up(&js).await.expect("read EVENTS");
    let at_stop = ledger.findings(&sale.ids[..half]);
    assert!(
        at_stop.undecided > 0,
        "the sale was over before the stop: {at_stop:?}"
    );
    publish_all(&js, &sale.orders(half..sale.names.len())).await;

    let mut allot = AllotProcess::serve(&server.url(), &config, &flags);
    sold_out_after(&mut allot, &js, &mut ledger, &sale).await;
}

/// nats-server is restarted mid-sale, then frozen for longer than allot's
/// append timeout; allot rides out both without a shard fencing itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_restarted_and_stalled_mid_sale_allot_recovers_and_decides_every_order_once() {
    let mut server = NatsServer::start();
    let config = few_workers();
    let sale = Sale::one_sku_per_shard(&config.config, "ams", "T3", 500, 100);
    // The stall below (6 s) stays inside the leases' hold (3/4 of the TTL,
    // 7.5 s): a longer one stops the shards, by design, before their
    // leases could lapse on the broker's clock.
    let flags = slow_exact_and(&["--set", "cluster.lease_ttl=10s"]);
    let (mut allot, js, mut ledger, half) =
        first_half_under_way(&server, &config, &sale, &flags).await;
    tokio::task::block_in_place(|| server.restart());
    ledger.catch_up(&js).await.ok();
    let at_restart = ledger.findings(&sale.ids[..half]);
    let more = ledger
        .wait_until(&js, Duration::from_secs(20), |l| {
            l.findings(&[]).confirmed >= at_restart.confirmed + 10
        })
        .await;
    assert!(
        more,
        "no confirmations after the restart. allot's log:\n{}",
        allot.log()
    );
    // A stall longer than allot's append timeout (5 s): the appends sent
    // meanwhile are stored once the broker wakes, but their answers come
    // too late, so allot retries them and must recognise its own batches.
    let at_stall = ledger.findings(&sale.ids[..half]);
    server.pause();
    tokio::time::sleep(Duration::from_secs(6)).await;
    server.resume();
    publish_all(&js, &sale.orders(half..sale.names.len())).await;

    // A fenced shard never decides again: no need to wait out the timeout.
    ledger
        .wait_until(&js, Duration::from_secs(40), |l| {
            l.undecided(&sale.ids) == 0 || allot.count("fenced") > 0
        })
        .await;
    assert_eq!(
        ledger.undecided(&sale.ids),
        0,
        "after the faults. allot's log:\n{}",
        allot.log()
    );
    for (fault, at) in [("restart", &at_restart), ("stall", &at_stall)] {
        assert!(
            at.confirmed < sale.units() && at.undecided > 0,
            "the sale was over before the {fault}: {at:?}"
        );
        eprintln!(
            "at the {fault}: {} confirmed, {} of {half} published orders undecided",
            at.confirmed, at.undecided
        );
    }
    assert!(
        allot.count("NATS disconnected") >= 1,
        "allot never saw the broker go. Its log:\n{}",
        allot.log()
    );
    assert!(
        wait_intake_drained(&js, 4, Duration::from_secs(10)).await,
        "intake left unacked. allot's log:\n{}",
        allot.log()
    );
    let status = allot.terminate(Duration::from_secs(20)).await;
    assert!(status.success(), "{status}; log:\n{}", allot.log());
    for broken in ["fenced", "shard failed", "shard stopped"] {
        assert_eq!(
            allot.count(broken),
            if broken == "shard stopped" { 4 } else { 0 },
            "{broken}: allot's log:\n{}",
            allot.log()
        );
    }
    ledger.catch_up(&js).await.expect("read EVENTS");
    sale.assert_sold_out(&ledger);
}

/// Regression: the server checks `Nats-Expected-Last-Subject-Sequence`
/// before `Nats-Msg-Id`, so the retry of an append that landed (its answer
/// lost, e.g. in a broker restart) was refused as "wrong last sequence" and
/// taken for another writer: the shard fenced itself and stopped deciding.
#[tokio::test]
async fn log_append_retried_after_it_landed_returns_its_sequence() {
    let server = NatsServer::start();
    let js = jetstream(&server.url()).await;
    let events = js
        .create_stream(async_nats::jetstream::stream::Config {
            name: "EVENTS".into(),
            subjects: vec!["events.*".into()],
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .expect("create EVENTS");
    let log = NatsLog::new(js, events);
    let batch = [Event::StockSet {
        partition: partition("ams", "LOG-MUG"),
        on_hand: 5,
    }];

    let seq = log.append(0, 0, "batch-a", &batch).await.expect("append");
    let retried = log.append(0, 0, "batch-a", &batch).await;
    assert_eq!(retried.expect("the retry is answered"), seq);
    let other = log.append(0, 0, "batch-b", &batch).await;
    assert!(
        matches!(other, Err(AppendError::Conflict { shard: 0, expected: 0, actual }) if actual == seq),
        "{other:?}"
    );
    assert_eq!(log.read(0, 0).await.expect("read").len(), 1);
}
