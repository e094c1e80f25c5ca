//! allot end to end against a real nats-server (each test starts its own,
//! see `tests/common/nats.rs`): a sale is published, allot decides it, and
//! the decisions are read back from EVENTS and audited with
//! `allot::audit::Audit`: every submitted order has exactly one final
//! decision, nothing is oversold, stock is conserved. Faults are real: a
//! SIGKILLed allot, a restarted nats-server, a second allot on the same
//! shards, bad messages, duplicates.

mod common;

use std::time::{Duration, Instant};

use allot::adapters::nats::{ensure_streams, NatsIntake, NatsLog, ORDERS_STREAM};
use allot::audit::Stock;
use allot::domain::{Event, OrderId, RejectReason};
use allot::ports::{AppendError, EventLog, IntakeQueue};
use allot::wire::{Limits, OrderMessage};
use common::allot::{
    exact_fulfiller, jetstream, one_warehouse, order_id, partition, publish_all, submit,
    wait_for_streams, wait_intake_drained, AllotProcess, ConfigFile, InProcess, Ledger, Outgoing,
    Sale,
};
use common::nats::NatsServer;

/// `allot serve` flags for the fault tests: workers slow enough that a
/// sale is still running when the fault strikes, never failing (exact
/// counts), and a short ack wait so intake held by a dead or fenced
/// instance comes back in seconds, not 30.
const SLOW_EXACT: &[&str] = &[
    "--latency-p50",
    "100ms",
    "--latency-p99",
    "500ms",
    "--failure-rate",
    "0",
    "--ack-wait",
    "3s",
];

/// [`one_warehouse`] (4 shards) with few workers, so a sale of a few
/// hundred units takes seconds and a fault lands with orders queued and in flight.
fn few_workers() -> ConfigFile {
    ConfigFile::new(&format!(
        "{}\n[workers]\ndefault_concurrency = 8\n",
        one_warehouse(4)
    ))
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

fn order_ids(ids: &[String]) -> Vec<OrderId> {
    ids.iter().map(|id| order_id(id)).collect()
}

/// The flash sale of the issue: 10,000 orders for the 100 units of one SKU
/// in one warehouse whose policy rejects when out of stock, allot running
/// in-process, workers that never fail. Prints the end-to-end rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flash_sale_of_10000_orders_for_100_units_confirms_exactly_100() {
    let server = NatsServer::start();
    let config = ConfigFile::new(&one_warehouse(4));
    let allot = InProcess::serve(&server.url(), &config.config, exact_fulfiller(1));
    let js = jetstream(&server.url()).await;
    wait_for_streams(&js, Duration::from_secs(20)).await;

    let mug = partition("ams", "T1-MUG");
    publish_all(&js, &[Outgoing::set_stock(&config.config, &mug, 100)]).await;
    let names = ids("t1", 10_000);
    let orders: Vec<Outgoing> = names
        .iter()
        .map(|id| Outgoing::order(id, &mug, 1))
        .collect();
    let started = Instant::now();
    publish_all(&js, &orders).await;
    let published = started.elapsed();
    let ids = order_ids(&names);
    let mut ledger = Ledger::default();
    let undecided = ledger
        .wait_decided(&js, &ids, Duration::from_secs(45))
        .await;
    let decided_in = started.elapsed();
    assert_eq!(undecided, 0, "orders left undecided after 45 s");
    eprintln!(
        "10000 orders: published in {:.2}s, all decided in {:.2}s: {:.0} orders/s end to end",
        published.as_secs_f64(),
        decided_in.as_secs_f64(),
        10_000.0 / decided_in.as_secs_f64()
    );
    assert!(
        wait_intake_drained(&js, 4, Duration::from_secs(10)).await,
        "intake messages left unacked"
    );
    allot.stop().await.expect("allot stops cleanly");

    ledger.catch_up(&js).await.expect("read EVENTS");
    let f = ledger.findings(&ids);
    assert!(f.clean(), "{f:?}");
    assert_eq!(f.confirmed, 100, "{f:?}");
    assert_eq!(f.rejected.get("out_of_stock"), Some(&9_900), "{f:?}");
    assert_eq!(f.rejected_total(), 9_900, "{f:?}");
    assert_eq!(
        ledger.audit.stock(&mug),
        Some(Stock {
            supplied: 100,
            available: 0,
            reserved: 0,
            sold: 100
        })
    );
}

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
    let (mut allot, js, mut ledger, half) =
        first_half_under_way(&server, &config, &sale, SLOW_EXACT).await;
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

/// A bad message for the intake, and the rejection it must become.
struct Bad {
    payload: bytes::Bytes,
    /// The id the rejection is recorded under; `None`: `invalid:<seq>`.
    id: Option<&'static str>,
    field: &'static str,
    /// Part of the reason's text.
    why: String,
}

impl Bad {
    fn new(payload: &[u8], id: Option<&'static str>, field: &'static str, why: &str) -> Bad {
        Bad {
            payload: bytes::Bytes::copy_from_slice(payload),
            id,
            field,
            why: why.to_owned(),
        }
    }
}

/// Garbage, oversized and invalid messages published straight to
/// `orders.<warehouse>.<sku>` among good orders: each becomes one
/// `OrderRejected { reason: Invalid { errors }, partition }`, under the
/// producer's id when it could be read and is valid, else
/// `invalid:<stream sequence>`, with the partition its subject named; the
/// good orders around them are all decided.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_on_the_order_subject_are_rejected_as_invalid_with_their_reason() {
    let server = NatsServer::start();
    let config = ConfigFile::new(&format!(
        "{}\n[limits]\nmax_payload_bytes = 1024\n",
        one_warehouse(4)
    ));
    let allot = InProcess::serve(&server.url(), &config.config, exact_fulfiller(5));
    let js = jetstream(&server.url()).await;
    wait_for_streams(&js, Duration::from_secs(20)).await;
    let mug = partition("ams", "T5-MUG");
    publish_all(&js, &[Outgoing::set_stock(&config.config, &mug, 150)]).await;

    let order = |id: &str, sku: &str, quantity: u64, v: u32| OrderMessage {
        v,
        id: id.to_owned(),
        sku: sku.to_owned(),
        quantity,
        warehouse: Some("ams".into()),
        region: None,
        priority: None,
    };
    let oversized = rmp_serde::to_vec_named(&serde_json::json!({
        "v": 1, "id": "t5-big", "sku": "T5-MUG", "quantity": 1, "warehouse": "ams",
        "note": "x".repeat(2_000),
    }))
    .expect("encode");
    let oversized_len = oversized.len();
    let bad = [
        Bad::new(
            b"\xc1 this is not msgpack",
            None,
            "payload",
            "not MessagePack",
        ),
        Bad::new(
            &oversized,
            None,
            "payload",
            &format!("{oversized_len} bytes, more than the 1024 allowed"),
        ),
        Bad::new(b"", None, "payload", "truncated"),
        Bad::new(
            &order("t5-q0", "T5-MUG", 0, 1).encode(),
            Some("t5-q0"),
            "quantity",
            "0 is out of range, must be 1..=1000",
        ),
        Bad::new(
            &order("t5-badsku", "BAD SKU!", 1, 1).encode(),
            Some("t5-badsku"),
            "sku",
            "has ' ' at byte 3",
        ),
        Bad::new(
            &order("t5-elsewhere", "T5-OTHER", 1, 1).encode(),
            Some("t5-elsewhere"),
            "sku",
            "the order names sku T5-OTHER but was published for T5-MUG",
        ),
        Bad::new(
            &order("t5-v2", "T5-MUG", 1, 2).encode(),
            Some("t5-v2"),
            "v",
            "version 2 is not supported",
        ),
        Bad::new(
            &order("t5 spaced", "T5-MUG", 1, 1).encode(),
            None,
            "id",
            "has ' ' at byte 2",
        ),
        // String lengths: ids and SKUs are at most 64 bytes.
        Bad::new(
            &order(&"i".repeat(65), "T5-MUG", 1, 1).encode(),
            None,
            "id",
            "65 bytes long",
        ),
        Bad::new(
            &order("t5-longsku", &"S".repeat(65), 1, 1).encode(),
            Some("t5-longsku"),
            "sku",
            "65 bytes long",
        ),
    ];
    let names = ids("t5", 200);
    let mut outgoing = Vec::new();
    let mut bad_at = Vec::new();
    for (i, name) in names.iter().enumerate() {
        outgoing.push(Outgoing::order(name, &mug, 1));
        if i % 20 == 12 {
            bad_at.push(outgoing.len());
            outgoing.push(Outgoing::raw(&mug, bad[bad_at.len() - 1].payload.clone()));
        }
    }
    assert_eq!(bad_at.len(), bad.len());
    let seqs = publish_all(&js, &outgoing).await;

    let good = order_ids(&names);
    let mut expected: Vec<OrderId> = good.clone();
    for (b, at) in bad.iter().zip(&bad_at) {
        let id =
            b.id.map_or_else(|| format!("invalid:{}", seqs[*at]), str::to_owned);
        expected.push(order_id(&id));
    }
    let mut ledger = Ledger::default();
    let undecided = ledger
        .wait_decided(&js, &expected, Duration::from_secs(30))
        .await;
    assert_eq!(undecided, 0);
    assert!(
        wait_intake_drained(&js, 4, Duration::from_secs(10)).await,
        "intake left unacked"
    );
    allot.stop().await.expect("allot stops cleanly");
    ledger.catch_up(&js).await.expect("read EVENTS");

    let invalid: Vec<(&OrderId, &str, &str)> = ledger
        .events
        .iter()
        .filter_map(|e| match e {
            Event::OrderRejected {
                id,
                reason: RejectReason::Invalid { errors },
                partition,
            } => {
                assert_eq!(partition.as_ref(), Some(&mug), "{id}: {errors:?}");
                Some((id, errors[0].field.as_str(), errors[0].why.as_str()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(invalid.len(), bad.len(), "{invalid:#?}");
    for (b, id) in bad.iter().zip(&expected[good.len()..]) {
        let found: Vec<_> = invalid.iter().filter(|(i, ..)| *i == id).collect();
        assert_eq!(found.len(), 1, "{id}: {invalid:#?}");
        let (_, field, why) = found[0];
        assert_eq!(*field, b.field, "{id}: {why}");
        assert!(why.contains(&b.why), "{id}: {why:?} lacks {:?}", b.why);
    }
    let f = ledger.findings(&expected);
    assert!(f.clean(), "{f:?}");
    assert_eq!(f.confirmed, 150, "{f:?}");
    assert_eq!(f.rejected.get("out_of_stock"), Some(&50), "{f:?}");
    assert_eq!(
        f.rejected.get("invalid"),
        Some(&(bad.len() as u64)),
        "{f:?}"
    );
}

/// Duplicates: the same `Nats-Msg-Id` twice (the stream drops one); the
/// same order through ingress and straight to the subject under another
/// msg id, in either order (the shard dedupes a live order); and again after
/// it was decided (the shard dedupes a decided one). One decision each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_sent_twice_is_decided_once() {
    let server = NatsServer::start();
    let config = ConfigFile::new(&one_warehouse(4));
    let allot = InProcess::serve(&server.url(), &config.config, exact_fulfiller(6));
    let client = async_nats::connect(server.url()).await.expect("connect");
    let js = async_nats::jetstream::new(client.clone());
    wait_for_streams(&js, Duration::from_secs(20)).await;
    let mug = partition("ams", "T6-MUG");
    publish_all(&js, &[Outgoing::set_stock(&config.config, &mug, 30)]).await;

    // Same Nats-Msg-Id twice: the stream keeps one.
    let same_msg_id = ids("t6-a", 40);
    let twice: Vec<Outgoing> = same_msg_id
        .iter()
        .flat_map(|id| [Outgoing::order(id, &mug, 1), Outgoing::order(id, &mug, 1)])
        .collect();
    let seqs = publish_all(&js, &twice).await;
    for pair in seqs.chunks(2) {
        assert_eq!(pair[0], pair[1], "the second copy was stored");
    }
    // Once through ingress (msg id = order id) and once straight to the
    // subject under another msg id, in both orders: the stream keeps both.
    let two_ways = ids("t6-b", 40);
    for (i, id) in two_ways.iter().enumerate() {
        let mut straight = Outgoing::order(id, &mug, 1);
        straight.msg_id = Some(format!("{id}-straight"));
        if i % 2 == 1 {
            publish_all(&js, std::slice::from_ref(&straight)).await;
        }
        let reply = submit(&client, id, "T6-MUG", 1).await;
        assert!(reply.accepted, "{reply:?}");
        if i % 2 == 0 {
            publish_all(&js, std::slice::from_ref(&straight)).await;
        }
    }
    let mut all = same_msg_id.clone();
    all.extend(two_ways.iter().cloned());
    let all = order_ids(&all);
    let mut ledger = Ledger::default();
    let undecided = ledger
        .wait_decided(&js, &all, Duration::from_secs(30))
        .await;
    assert_eq!(undecided, 0);
    assert!(
        wait_intake_drained(&js, 4, Duration::from_secs(10)).await,
        "intake left unacked"
    );
    // And once more, straight, long after each was decided.
    let late: Vec<Outgoing> = two_ways
        .iter()
        .map(|id| {
            let mut again = Outgoing::order(id, &mug, 1);
            again.msg_id = Some(format!("{id}-late"));
            again
        })
        .collect();
    publish_all(&js, &late).await;
    assert!(
        wait_intake_drained(&js, 4, Duration::from_secs(10)).await,
        "the late copies were not taken"
    );
    let mut orders = js.get_stream(ORDERS_STREAM).await.expect("ORDERS");
    let stored = orders.info().await.expect("info").state.messages;
    assert_eq!(
        stored,
        1 + 40 + 2 * 40 + 40,
        "stock, A once, B twice, B late"
    );
    allot.stop().await.expect("allot stops cleanly");

    ledger.catch_up(&js).await.expect("read EVENTS");
    for id in &all {
        assert_eq!(ledger.finals(id), 1, "{id}");
        let queued = ledger
            .events
            .iter()
            .filter(|e| matches!(e, Event::OrderQueued { order } if order.id == *id))
            .count();
        assert_eq!(queued, 1, "{id}");
    }
    let f = ledger.findings(&all);
    assert!(f.clean(), "{f:?}");
    assert_eq!(f.confirmed, 30, "{f:?}");
    assert_eq!(f.rejected.get("out_of_stock"), Some(&50), "{f:?}");
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
            seen.insert(delivery.ack.0);
        }
    }
    assert_eq!(seen.len(), 50, "the next owner got only these: {seen:?}");
}

/// [`SLOW_EXACT`] and `extra` flags.
fn slow_exact_and(extra: &[&'static str]) -> Vec<&'static str> {
    SLOW_EXACT.iter().chain(extra).copied().collect()
}

/// The end of a fault test: every order decided, the intake drained,
/// `allot` stopped cleanly (exit 0), and the sale sold out exactly.
async fn sold_out_after(
    allot: &mut AllotProcess,
    js: &async_nats::jetstream::Context,
    ledger: &mut Ledger,
    sale: &Sale,
) {
    let undecided = ledger
        .wait_decided(js, &sale.ids, Duration::from_secs(40))
        .await;
    assert_eq!(undecided, 0, "allot's log:\n{}", allot.log());
    assert!(
        wait_intake_drained(js, 4, Duration::from_secs(15)).await,
        "intake left unacked. allot's log:\n{}",
        allot.log()
    );
    let status = allot.terminate(Duration::from_secs(20)).await;
    assert!(status.success(), "{status}; log:\n{}", allot.log());
    ledger.catch_up(js).await.expect("read EVENTS");
    sale.assert_sold_out(ledger);
}

/// Starts an `allot` process on `server`, stocks `sale`, publishes the first
/// half of its orders and waits for the first confirmations: a sale under
/// way, for the fault tests to break. Returns the process, a JetStream
/// context, the ledger following EVENTS, and where the second half starts.
async fn first_half_under_way(
    server: &NatsServer,
    config: &ConfigFile,
    sale: &Sale,
    flags: &[&str],
) -> (AllotProcess, async_nats::jetstream::Context, Ledger, usize) {
    let allot = AllotProcess::serve(&server.url(), config, flags);
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
    assert!(
        started,
        "no confirmations in 20 s. allot's log:\n{}",
        allot.log()
    );
    (allot, js, ledger, half)
}
