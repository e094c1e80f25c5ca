//! An order id is decided at most once across every shard and every path
//! (issue 10, bug 1), against a real nats-server: the same id published
//! straight to two partitions on different shards under different
//! `Nats-Msg-Id`s (a producer retrying after the stream's duplicate
//! window), and sent through `allot.submit` for one partition after a
//! direct publish for another. One copy is decided; the other is refused
//! with a `duplicate_refused` record naming the partition that holds the
//! id. With one instance the claims go between its shard tasks; with two,
//! over core NATS between the instances.

mod common;

use std::time::Duration;

use allot::config::Config;
use allot::domain::{Event, Fingerprint, IdTable, OrderId, PartitionKey, Window};
use allot::wire::OrderMessage;
use common::allot::{
    exact_fulfiller, jetstream, one_warehouse, order_id, partition, publish_all, wait_for_streams,
    wait_intake_drained, AllotProcess, ConfigFile, InProcess, Ledger, Outgoing,
};
use common::nats::NatsServer;

const SHARDS: u32 = 4;

/// Two SKUs of `ams` whose partitions are on different shards.
fn two_shards(config: &Config, prefix: &str) -> (PartitionKey, PartitionKey) {
    let router = config.router();
    let a = partition("ams", &format!("{prefix}-A"));
    let b = (0..)
        .map(|i| partition("ams", &format!("{prefix}-B{i}")))
        .find(|b| router.shard_for(b) != router.shard_for(&a))
        .expect("some SKU lands on another shard");
    (a, b)
}

/// The same id published to `a` and to `b` under different msg ids.
fn twice(ids: &[String], a: &PartitionKey, b: &PartitionKey) -> Vec<Outgoing> {
    ids.iter()
        .flat_map(|id| {
            let mut first = Outgoing::order(id, a, 1);
            first.msg_id = Some(format!("{id}-first"));
            let mut again = Outgoing::order(id, b, 1);
            again.msg_id = Some(format!("{id}-retry"));
            [first, again]
        })
        .collect()
}

/// Every id decided exactly once, every second copy refused with a
/// record, each unit sold once.
async fn decided_once_and_refused_once(
    js: &async_nats::jetstream::Context,
    ids: &[OrderId],
    copies_refused: u64,
) -> Ledger {
    let mut ledger = Ledger::default();
    let done = ledger
        .wait_until(js, Duration::from_secs(60), |l| {
            l.undecided(ids) == 0 && l.audit.finish(ids).duplicates_refused >= copies_refused
        })
        .await;
    assert!(
        wait_intake_drained(js, SHARDS, Duration::from_secs(30)).await,
        "intake left unacked"
    );
    ledger.catch_up(js).await.expect("read EVENTS");
    let f = ledger.findings(ids);
    assert!(done, "{f:?}");
    assert!(f.clean(), "{f:?}");
    assert_eq!(f.duplicate_decisions, 0, "an id decided twice: {f:?}");
    assert_eq!(f.duplicates_refused, copies_refused, "{f:?}");
    for id in ids {
        assert_eq!(ledger.finals(id), 1, "{id}");
    }
    let refused: Vec<&Event> = ledger
        .events
        .iter()
        .filter(|e| matches!(e, Event::DuplicateRefused { .. }))
        .collect();
    for e in &refused {
        let Event::DuplicateRefused {
            id,
            partition,
            holder,
        } = e
        else {
            unreachable!()
        };
        assert_ne!(partition, holder, "{id}: refused for its own partition");
    }
    ledger
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_published_to_two_shards_is_decided_once() {
    let server = NatsServer::start();
    let config = ConfigFile::new(&one_warehouse(SHARDS));
    let allot = InProcess::serve(&server.url(), &config.config, exact_fulfiller(1));
    let client = async_nats::connect(server.url()).await.expect("connect");
    let js = async_nats::jetstream::new(client.clone());
    wait_for_streams(&js, Duration::from_secs(20)).await;
    let (a, b) = two_shards(&config.config, "D1");
    publish_all(
        &js,
        &[
            Outgoing::set_stock(&config.config, &a, 100),
            Outgoing::set_stock(&config.config, &b, 100),
        ],
    )
    .await;
    // Ids whose claims land on every shard: A's, B's and the others.
    let names: Vec<String> = (0..40).map(|i| format!("d1-{i}")).collect();
    publish_all(&js, &twice(&names, &a, &b)).await;
    // Through allot.submit for B, after a direct publish for A.
    let via = "d1-submit";
    let mut direct = Outgoing::order(via, &a, 1);
    direct.msg_id = Some(format!("{via}-direct"));
    publish_all(&js, &[direct]).await;
    let mut ids: Vec<OrderId> = names.iter().map(|n| order_id(n)).collect();
    ids.push(order_id(via));
    let mut ledger = Ledger::default();
    ledger
        .wait_until(&js, Duration::from_secs(30), |l| {
            l.finals(&order_id(via)) == 1
        })
        .await;
    let body = OrderMessage {
        v: 1,
        id: via.to_owned(),
        sku: b.sku.to_string(),
        quantity: 1,
        warehouse: Some("ams".into()),
        region: None,
        priority: None,
    };
    let reply = client
        .request(allot::wire::SUBMIT_SUBJECT, body.encode().into())
        .await
        .expect("ingress answers");
    let reply: allot::wire::SubmitReply = rmp_serde::from_slice(&reply.payload).unwrap();
    assert!(reply.accepted, "{reply:?}");
    let ledger = decided_once_and_refused_once(&js, &ids, names.len() as u64 + 1).await;
    let sold: i128 = [&a, &b]
        .iter()
        .map(|p| ledger.audit.stock(p).unwrap().sold)
        .sum();
    assert_eq!(sold, ids.len() as i128, "one unit per id");
    allot.stop().await.expect("allot stops cleanly");
}

/// Two instances share the shards by lease: an id's owner is often the
/// other instance, so claims cross over core NATS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_published_to_two_shards_of_two_instances_is_decided_once() {
    let server = NatsServer::start();
    let config = ConfigFile::new(&one_warehouse(SHARDS));
    let flags = [
        "--latency-p50",
        "2ms",
        "--latency-p99",
        "10ms",
        "--failure-rate",
        "0",
        "--set",
        "cluster.lease_ttl=2s",
    ];
    let first = AllotProcess::serve(&server.url(), &config, &flags);
    let second = AllotProcess::serve(&server.url(), &config, &flags);
    let js = jetstream(&server.url()).await;
    wait_for_streams(&js, Duration::from_secs(20)).await;
    // Both hold their share before the sale.
    for p in [&first, &second] {
        assert!(
            p.wait_logged("shard lease acquired", 2, Duration::from_secs(30))
                .await,
            "an instance took no shards: {}",
            p.log()
        );
    }
    let (a, b) = two_shards(&config.config, "D2");
    publish_all(
        &js,
        &[
            Outgoing::set_stock(&config.config, &a, 100),
            Outgoing::set_stock(&config.config, &b, 100),
        ],
    )
    .await;
    let names: Vec<String> = (0..40).map(|i| format!("d2-{i}")).collect();
    publish_all(&js, &twice(&names, &a, &b)).await;
    let ids: Vec<OrderId> = names.iter().map(|n| order_id(n)).collect();
    decided_once_and_refused_once(&js, &ids, names.len() as u64).await;
    for mut p in [first, second] {
        let status = p.terminate(Duration::from_secs(30)).await;
        assert!(status.success(), "{status}: {}", p.log());
    }
}

/// The figure RELIABILITY.md quotes: memory per remembered id with the
/// table at the default cap, 10 million ids. Run alone, in release:
/// `cargo test --release --test dedupe bytes_per_id -- --ignored --nocapture`.
#[test]
#[ignore = "allocates ~0.5 GB; run by hand for the figure"]
fn bytes_per_id_at_ten_million_ids() {
    let n: u32 = 10_000_000;
    let fps: Vec<Fingerprint> = (0..n)
        .map(|i| Fingerprint::of(&OrderId::new(&format!("o-{i}")).unwrap()))
        .collect();
    let before = allot::telemetry::resident_bytes().expect("Linux /proc");
    let mut t = IdTable::new(Window::default());
    for (i, f) in fps.iter().enumerate() {
        t.insert(*f, 0, i as u32 / (n / 24));
    }
    let per_id =
        (allot::telemetry::resident_bytes().expect("Linux /proc") - before) as f64 / f64::from(n);
    eprintln!("{} ids remembered: {per_id:.1} bytes per id", t.len());
    assert_eq!(t.len(), n as usize);
    // 24 bytes of entry and one control byte, in a table at most 7/8 full
    // and grown by doubling: 28-57 bytes per id.
    assert!(per_id < 60.0, "{per_id:.1} bytes per id");
}
