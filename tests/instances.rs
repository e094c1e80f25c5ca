//! Several `allot` instances on the same shards, against a real
//! nats-server (each test starts its own, see `tests/common/nats.rs`):
//! shards shared by lease and taken over from a SIGKILLed instance, a
//! second instance started by mistake fenced by the log, and a fenced
//! shard's intake handed to the next owner at once.

mod common;

use std::time::{Duration, Instant};

use allot::adapters::nats::{ensure_streams, NatsIntake, ORDERS_STREAM};
use allot::ports::IntakeQueue;
use allot::wire::Limits;
use common::allot::{
    few_workers, first_half_under_way, ids, jetstream, one_warehouse, partition, publish_all,
    slow_exact_and, sold_out_after, wait_for_streams, wait_intake_drained, AllotProcess,
    ConfigFile, Ledger, Outgoing, Sale,
};
use common::nats::NatsServer;

/// Two instances share the shards by lease: the second one to start gets
/// its fair share (the first drains and gives up two shards), and when the
/// first is SIGKILLed its leases lapse (TTL 2 s here) and the survivor takes
/// every shard, rebuilds each from snapshot plus log and gets the killed
/// one's unacked intake back. Every order is decided exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_shards_by_lease_and_take_over_from_a_killed_one() {
    let server = NatsServer::start();
    let config = few_workers();
    let sale = Sale::one_sku_per_shard(&config.config, "ams", "L1", 500, 50);
    let flags = slow_exact_and(&["--set", "cluster.lease_ttl=2s"]);
    let (mut first, js, mut ledger, half) =
        first_half_under_way(&server, &config, &sale, &flags).await;
    let second = AllotProcess::serve(&server.url(), &config, &flags);
    let logs =
        |a: &AllotProcess, b: &AllotProcess| format!("first:\n{}\nsecond:\n{}", a.log(), b.log());
    assert!(
        second
            .wait_logged("shard lease acquired", 2, Duration::from_secs(20))
            .await,
        "the second instance got no fair share: {}",
        logs(&first, &second)
    );
    assert_eq!(
        first.count("giving the shard up"),
        2,
        "{}",
        logs(&first, &second)
    );
    publish_all(&js, &sale.orders(half..sale.names.len())).await;
    first.kill();
    assert!(
        second
            .wait_logged("shard lease acquired", 4, Duration::from_secs(20))
            .await,
        "the survivor did not take the killed instance's shards: {}",
        second.log()
    );
    let mut second = second;
    sold_out_after(&mut second, &js, &mut ledger, &sale).await;
    assert_eq!(second.count("shard fenced"), 0, "{}", second.log());
}

/// A second `allot serve` started by mistake on the same streams: both pull
/// from each shard's consumer and both try to append. The log's expected
/// sequence fences one writer per shard (either instance may win a shard),
/// the fenced shard stops and hands its intake back, and the survivors
/// finish the sale. Leases are off here: this is the log's own fence, what
/// protects the sale when leases fail (a paused instance whose lease
/// lapsed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_allot_on_the_same_shards_is_fenced_and_the_sale_completes() {
    let server = NatsServer::start();
    let config = few_workers();
    let sale = Sale::one_sku_per_shard(&config.config, "ams", "T4", 500, 50);
    let flags = slow_exact_and(&["--set", "cluster.leases=false"]);
    let first = AllotProcess::serve(&server.url(), &config, &flags);
    let js = jetstream(&server.url()).await;
    wait_for_streams(&js, Duration::from_secs(20)).await;
    publish_all(&js, &sale.stock_commands(&config.config)).await;
    let half = sale.names.len() / 2;
    publish_all(&js, &sale.orders(0..half)).await;

    let mut ledger = Ledger::default();
    let started = ledger
        .wait_until(&js, Duration::from_secs(20), |l| {
            l.findings(&[]).confirmed >= 10
        })
        .await;
    assert!(started, "no confirmations in 20 s. log:\n{}", first.log());
    let second = AllotProcess::serve(&server.url(), &config, &flags);
    assert!(
        second
            .wait_logged("shard recovered", 4, Duration::from_secs(20))
            .await,
        "the second allot did not start. Its log:\n{}",
        second.log()
    );
    let resumed = Instant::now();
    publish_all(&js, &sale.orders(half..sale.names.len())).await;

    let undecided = ledger
        .wait_decided(&js, &sale.ids, Duration::from_secs(40))
        .await;
    let decided_in = resumed.elapsed();
    let logs = || format!("first:\n{}\nsecond:\n{}", first.log(), second.log());
    assert_eq!(undecided, 0, "{}", logs());
    let fenced = first.count("shard fenced") + second.count("shard fenced");
    assert!(fenced >= 1, "no shard was fenced: {}", logs());
    assert!(
        wait_intake_drained(&js, 4, Duration::from_secs(15)).await,
        "intake left unacked: {}",
        logs()
    );
    // Each fenced shard stopped (and handed its intake back); the
    // instances themselves go on and stop cleanly.
    for allot in [&first, &second] {
        assert_eq!(
            allot.count("exit=Fenced"),
            allot.count("shard fenced"),
            "{}",
            logs()
        );
    }
    eprintln!(
        "shards fenced: {} in the first instance, {} in the second; \
         second half decided {:.2}s after it was published",
        first.count("shard fenced"),
        second.count("shard fenced"),
        decided_in.as_secs_f64()
    );
    for mut allot in [first, second] {
        let status = allot.terminate(Duration::from_secs(20)).await;
        assert!(status.success(), "{status}; log:\n{}", allot.log());
    }
    ledger.catch_up(&js).await.expect("read EVENTS");
    sale.assert_sold_out(&ledger);
}

/// Regression: a fenced shard's intake pull stream stayed open in its
/// instance, which kept pulling (on every pull expiry and reconnect) and
/// holding messages that only the shard's new owner would decide, each for
/// a whole ack wait, again and again: a second instance started by mistake
/// slowed the sale on every shard it had touched, for as long as it ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn released_intake_hands_its_messages_to_the_next_owner_at_once() {
    let server = NatsServer::start();
    let client = async_nats::connect(server.url()).await.expect("connect");
    let js = async_nats::jetstream::new(client.clone());
    let config = ConfigFile::new(&one_warehouse(4)).config;
    let router = config.router();
    let limits = Limits::from_config(&config);
    // The default ack wait: without the hand-back nothing comes for 30 s.
    let streams = ensure_streams(&js, &router, 20, Duration::from_secs(30))
        .await
        .expect("set up the streams");
    let mug = partition("ams", "T7-MUG");
    let shard = router.shard_for(&mug);
    let names = ids("t7", 50);
    let orders: Vec<Outgoing> = names
        .iter()
        .map(|id| Outgoing::order(id, &mug, 1))
        .collect();
    publish_all(&js, &orders).await;

    let fenced = NatsIntake::new(js.clone(), streams.orders.clone(), router.clone(), limits);
    let mut taken = Vec::new();
    while taken.is_empty() {
        taken = fenced.fetch(shard, 10).await;
    }
    // Every order is now with the fenced instance: some handed to its
    // shard, the rest in its pull stream's buffer (the flush makes sure
    // they arrived there rather than being on the wire).
    let orders_stream = js.get_stream(ORDERS_STREAM).await.expect("ORDERS");
    let consumer = allot::adapters::nats::shard_consumer(shard);
    let deadline = Instant::now() + Duration::from_secs(10);
    while orders_stream
        .consumer_info(&consumer)
        .await
        .expect("consumer info")
        .num_ack_pending
        < 50
    {
        assert!(Instant::now() < deadline, "the orders were not delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client.flush().await.expect("flush");
    fenced.release(shard).await;

    let owner = NatsIntake::new(js.clone(), streams.orders, router, limits);
    let mut seen = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.len() < 50 && Instant::now() < deadline {
        for delivery in owner.fetch(shard, 100).await {
            assert_eq!(delivery.delivery_count, 2, "{:?}", delivery.item);
            seen.insert(delivery.ack.expect("one order per message").0);
        }
    }
    assert_eq!(seen.len(), 50, "the next owner got only these: {seen:?}");
}
