//! Every bad field, on every path, against a real nats-server: the same
//! order with several bad fields (a float `v` among them) published
//! straight to `orders.<warehouse>.<sku>`, sent to `allot.submit` and
//! POSTed to `/v1/orders` is refused naming each of them as
//! `{field, why}`; the direct publish's rejection (in EVENTS and in the
//! views) keeps the partition its subject named.

mod common;

use std::time::Duration;

use serde_json::{json, Value};

use allot::domain::{Event, RejectReason};
use allot::wire::{SubmitReply, SUBMIT_SUBJECT};
use common::allot::{
    exact_fulfiller, jetstream, one_warehouse, order_id, partition, publish_all, wait_for_streams,
    ConfigFile, InProcess, Ledger, Outgoing,
};
use common::nats::NatsServer;

/// `v` 1.0 (a JSON client's whole number), a bad SKU, quantity 0 and
/// priority 300: four bad fields.
fn bad(id: &str, sku: &str) -> Value {
    json!({"v": 1.0, "id": id, "sku": sku, "quantity": 0, "warehouse": "ams", "priority": 300})
}

const ALL_FOUR: [&str; 4] = ["v", "sku", "quantity", "priority"];

fn fields(errors: &[allot::domain::FieldError]) -> Vec<&str> {
    errors.iter().map(|e| e.field.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_field_is_named_on_every_path() {
    let server = NatsServer::start();
    let config = ConfigFile::new(&one_warehouse(2));
    let allot = InProcess::serve(&server.url(), &config.config, exact_fulfiller(14));
    let client = async_nats::connect(server.url()).await.expect("connect");
    let js = jetstream(&server.url()).await;
    wait_for_streams(&js, Duration::from_secs(20)).await;

    // Straight to the subject: a SKU that differs from the subject's is
    // one more bad field, named as such.
    let mug = partition("ams", "MUG");
    let body = rmp_serde::to_vec_named(&bad("bf-direct", "CUP")).unwrap();
    publish_all(&js, &[Outgoing::raw(&mug, body)]).await;
    let mut ledger = Ledger::default();
    let id = order_id("bf-direct");
    let undecided = ledger
        .wait_decided(&js, std::slice::from_ref(&id), Duration::from_secs(30))
        .await;
    assert_eq!(undecided, 0);
    let rejected: Vec<_> = ledger
        .events
        .iter()
        .filter_map(|e| match e {
            Event::OrderRejected {
                id: i,
                reason: RejectReason::Invalid { errors },
                partition,
            } if *i == id => Some((errors.clone(), partition.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    let (errors, at) = &rejected[0];
    assert_eq!(fields(errors), ALL_FOUR, "{errors:?}");
    assert_eq!(errors[0].why, "must be an integer, got a float");
    assert_eq!(
        errors[1].why,
        "the order names sku CUP but was published for MUG"
    );
    assert_eq!(at.as_ref(), Some(&mug));

    // allot.submit: the float `v` hides nothing.
    let body = rmp_serde::to_vec_named(&bad("bf-submit", "B C")).unwrap();
    let reply = client
        .request(SUBMIT_SUBJECT, body.into())
        .await
        .expect("ingress answers");
    let reply: SubmitReply = rmp_serde::from_slice(&reply.payload).expect("a submit reply");
    assert!(!reply.accepted, "{reply:?}");
    assert_eq!(reply.id.as_deref(), Some("bf-submit"));
    assert_eq!(fields(&reply.errors), ALL_FOUR, "{reply:?}");

    // HTTP: a 400 listing each.
    let at = allot.listening().await;
    let http = reqwest::Client::new();
    let response = http
        .post(format!("http://{}/v1/orders", at.api))
        .json(&bad("bf-http", "B C"))
        .send()
        .await
        .expect("the API answers");
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("a JSON error");
    let named: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(named, ALL_FOUR, "{body}");

    // The views keep the invalid order where its subject put it.
    let url = format!("http://{}/v1/orders/bf-direct", at.api);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let view = loop {
        let response = http.get(&url).send().await.expect("the API answers");
        if response.status() == 200 {
            break response.json::<Value>().await.expect("a view");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "bf-direct never in the views"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (&view["warehouse"], &view["sku"], &view["status"]),
        (&json!("ams"), &json!("MUG"), &json!("rejected")),
        "{view}"
    );
    allot.stop().await.expect("allot stops cleanly");
}
