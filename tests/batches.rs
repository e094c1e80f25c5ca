//! Many orders in one message (`Allot-Kind: batch` on NATS) and in one
//! request (`POST /v1/order-batches`), against a real nats-server: each
//! order is validated, deduplicated and decided on its own, wherever its
//! partition's shard is, and the message is acked once all are decided.

mod common;

use std::time::Duration;

use allot::wire::{encode_orders, OrderMessage, KIND_BATCH};
use common::allot::{
    exact_fulfiller, order_id, partition, publish_all, wait_for_streams, wait_intake_drained,
    ConfigFile, InProcess, Ledger, Outgoing,
};
use common::nats::NatsServer;

const CONFIG: &str = r#"
[shards]
count = 4

[routing]
default_region = "eu"

[routing.regions]
eu = ["ams", "fra"]

[exhaustion]
default = { policy = "reject" }
"#;

fn order(id: &str, sku: &str, quantity: u64, warehouse: Option<&str>) -> OrderMessage {
    OrderMessage {
        v: 1,
        id: id.into(),
        sku: sku.into(),
        quantity,
        warehouse: warehouse.map(str::to_owned),
        region: None,
        priority: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_order_of_a_batch_message_is_decided_once() {
    let server = NatsServer::start();
    let config = ConfigFile::new(CONFIG);
    let allot = InProcess::serve(&server.url(), &config.config, exact_fulfiller(2));
    let client = async_nats::connect(server.url()).await.expect("connect");
    let js = async_nats::jetstream::new(client.clone());
    wait_for_streams(&js, Duration::from_secs(20)).await;
    let skus: Vec<String> = (0..12).map(|i| format!("B-{i}")).collect();
    let stock: Vec<Outgoing> = skus
        .iter()
        .map(|s| Outgoing::set_stock(&config.config, &partition("ams", s), 3))
        .collect();
    publish_all(&js, &stock).await;

    // 60 orders over 12 SKUs (so over every shard), one invalid, one a
    // repeat of an earlier id, in two messages published on one subject.
    let mut orders: Vec<OrderMessage> = (0..60)
        .map(|i| order(&format!("bt-{i}"), &skus[i % skus.len()], 1, Some("ams")))
        .collect();
    orders[7].quantity = 0;
    orders.push(order("bt-3", &skus[3], 1, Some("ams")));
    let mut sent = Vec::new();
    for (n, part) in orders.chunks(31).enumerate() {
        let mut out = Outgoing::raw(&partition("ams", &skus[0]), encode_orders(part));
        out.kind = Some(KIND_BATCH);
        out.msg_id = Some(format!("batch-{n}"));
        sent.push(out);
    }
    publish_all(&js, &sent).await;

    let ids: Vec<_> = (0..60).map(|i| order_id(&format!("bt-{i}"))).collect();
    let mut ledger = Ledger::default();
    let undecided = ledger
        .wait_decided(&js, &ids, Duration::from_secs(30))
        .await;
    assert_eq!(undecided, 0);
    assert!(
        wait_intake_drained(&js, 4, Duration::from_secs(20)).await,
        "a batch message left unacked"
    );
    ledger.catch_up(&js).await.expect("read EVENTS");
    let f = ledger.findings(&ids);
    assert!(f.clean(), "{f:?}");
    assert_eq!(f.rejected.get("invalid"), Some(&1), "{f:?}");
    assert_eq!(f.confirmed, 36, "3 units of each of 12 SKUs: {f:?}");
    assert_eq!(f.rejected.get("out_of_stock"), Some(&23), "{f:?}");
    allot.stop().await.expect("allot stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_request_answers_each_order_and_files_them() {
    let server = NatsServer::start();
    let config = ConfigFile::new(CONFIG);
    let allot = InProcess::serve(&server.url(), &config.config, exact_fulfiller(2));
    let at = allot.listening().await;
    let js = common::allot::jetstream(&server.url()).await;
    wait_for_streams(&js, Duration::from_secs(20)).await;
    publish_all(
        &js,
        &[Outgoing::set_stock(
            &config.config,
            &partition("ams", "HB"),
            5,
        )],
    )
    .await;
    let body = serde_json::json!({"orders": [
        {"v": 1, "id": "hb-1", "sku": "HB", "quantity": 1, "warehouse": "ams"},
        {"v": 1, "id": "hb-2", "sku": "HB", "quantity": 1, "region": "eu"},
        {"v": 1, "id": "hb-3", "sku": "HB", "quantity": 0},
        {"v": 1, "id": "hb-4", "sku": "HB", "quantity": 1, "region": "mars"},
    ]});
    let http = reqwest::Client::new();
    let answer: serde_json::Value = http
        .post(format!("http://{}/v1/order-batches", at.api))
        .json(&body)
        .send()
        .await
        .expect("the API answers")
        .json()
        .await
        .expect("JSON");
    let statuses: Vec<u64> = answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [202, 202, 400, 400], "{answer}");
    assert_eq!(
        answer["results"][2]["body"]["errors"][0]["field"],
        "quantity"
    );
    let ids = [order_id("hb-1"), order_id("hb-2")];
    let mut ledger = Ledger::default();
    assert_eq!(
        ledger
            .wait_decided(&js, &ids, Duration::from_secs(20))
            .await,
        0
    );
    let f = ledger.findings(&ids);
    assert!(f.clean() && f.confirmed == 2, "{f:?}");
    // A batch of no orders is refused as a whole, naming the field.
    let empty = http
        .post(format!("http://{}/v1/order-batches", at.api))
        .json(&serde_json::json!({"orders": []}))
        .send()
        .await
        .expect("the API answers");
    assert_eq!(empty.status(), 400);
    let empty: serde_json::Value = empty.json().await.expect("JSON");
    assert_eq!(empty["errors"][0]["field"], "orders", "{empty}");
    assert_eq!(empty["errors"][0]["why"], "holds no orders", "{empty}");
    allot.stop().await.expect("allot stops cleanly");
}
