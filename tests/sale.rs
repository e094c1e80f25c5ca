//! The flash sale end to end against a real nats-server (each test starts
//! its own, see `tests/common/nats.rs`): allot decides it in-process, and
//! the decisions are read back from EVENTS and audited with
//! `allot::audit::Audit`: every submitted order has exactly one final
//! decision, nothing is oversold, stock is conserved.

mod common;

use std::time::{Duration, Instant};

use allot::audit::Stock;
use common::allot::{
    exact_fulfiller, ids, jetstream, one_warehouse, order_ids, partition, publish_all,
    wait_for_streams, wait_intake_drained, ConfigFile, InProcess, Ledger, Outgoing,
};
use common::nats::NatsServer;

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
