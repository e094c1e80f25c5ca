//! `docs/asyncapi.yaml` against the code, as `tests/http.rs` holds
//! `docs/openapi.json`: every message example decodes with allot's own
//! decoders and encodes back to the same value; every subject and
//! `Allot-Kind` the document names is the one the code uses; and every
//! event, reject reason, command and decision the code has is documented
//! with exactly its fields. `scripts/check-asyncapi.sh` (CI) validates the
//! document itself and each example against its JSON Schema.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use allot::adapters::nats::dlq::{
    DELIVERIES_HEADER, MSG_ID_HEADER, REASON_HEADER, SEQ_HEADER, SUBJECT_HEADER, TIME_HEADER,
};
use allot::adapters::nats::reads::{ORDER_SUBJECT, STOCK_SUBJECT};
use allot::adapters::nats::{
    claims::claims_subject, events_subject, fulfil_subject, shard_order_subject, FulfilReply,
    FulfilRequest,
};
use allot::config::Config;
use allot::domain::{Claim, ClaimAnswer, Command, OrderId, PartitionKey, Sku, WarehouseId};
use allot::views::{StockView, Views};
use allot::wire::log::{decode_batch, encode_batch};
use allot::wire::{
    decision_subject, decode_command, decode_order, decode_orders, encode_command, encode_forward,
    encode_order, encode_orders, encode_routed, order_subject, DecisionMessage, Intake,
    IntakeDecoder, Limits, OrderMessage, SubmitReply, KIND_BATCH, KIND_COMMAND, KIND_FORWARD,
    KIND_HEADER, KIND_ROUTED, SUBMIT_SUBJECT,
};

mod asyncapi_doc;

use asyncapi_doc::{
    every_cart_event, every_cart_reason, every_command, every_event, every_reason,
    held_cart_events, Doc,
};

fn packed(v: &Value) -> Vec<u8> {
    rmp_serde::to_vec_named(v).expect("a JSON value packs")
}

fn unpacked(bytes: &[u8]) -> Value {
    rmp_serde::from_slice(bytes).expect("allot's own output unpacks")
}

/// `encoded` equals `example`, but for fields the example leaves out that
/// encode to their default (nil, false, an empty list).
fn same(encoded: &Value, example: &Value, what: &str) {
    let mut encoded = encoded.clone();
    if let (Some(e), Some(x)) = (encoded.as_object_mut(), example.as_object()) {
        e.retain(|k, v| {
            x.contains_key(k) || !(v.is_null() || *v == json!(false) || *v == json!([]))
        });
    }
    assert_eq!(&encoded, example, "{what}: encoded back differently");
}

fn ams_mug() -> PartitionKey {
    PartitionKey::new(WarehouseId::new("ams").unwrap(), Sku::new("MUG").unwrap())
}

fn decode_intake(kind: &str, payload: &[u8]) -> Vec<Intake> {
    let config = Config::default();
    let router = config.router();
    let limits = Limits::default();
    IntakeDecoder {
        router: &router,
        limits: &limits,
    }
    .decode_all("orders.0.ams.MUG", Some(kind), payload, 1)
}

fn orders_of(items: Vec<Intake>, what: &str) -> Vec<allot::domain::Order> {
    items
        .into_iter()
        .map(|i| match i {
            Intake::Order(o) | Intake::Forwarded(o) => o,
            other => panic!("{what}: not an order: {other:?}"),
        })
        .collect()
}

/// One example through the decoder and encoder its message names.
fn round_trip(message: &str, what: &str, payload: &Value, headers: Option<&Value>) {
    let bytes = packed(payload);
    let kind = headers
        .and_then(|h| h.get(KIND_HEADER))
        .and_then(Value::as_str);
    match message {
        "order" => {
            let order =
                decode_order(&bytes, &Limits::default()).unwrap_or_else(|e| panic!("{what}: {e}"));
            same(&unpacked(&encode_order(&order)), payload, what);
        }
        "cart" => {
            let cart = allot::wire::cart::decode_cart(&bytes, &Limits::default())
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(cart.id.as_str(), payload["id"], "{what}");
            let lines = payload["lines"].as_array().expect("lines");
            assert_eq!(cart.lines.len(), lines.len(), "{what}");
            for (l, x) in cart.lines.iter().zip(lines) {
                assert_eq!(l.sku.as_str(), x["sku"], "{what}");
                assert_eq!(u64::from(l.quantity.get()), x["quantity"], "{what}");
            }
        }
        "orderBatch" => {
            assert_eq!(kind, Some(KIND_BATCH), "{what}");
            let orders: Vec<OrderMessage> = decode_orders(&bytes, &Limits::default())
                .unwrap_or_else(|e| panic!("{what}: {e}"))
                .iter()
                .map(|o| OrderMessage::from(o.as_ref().unwrap_or_else(|e| panic!("{what}: {e}"))))
                .collect();
            same(&unpacked(&encode_orders(&orders)), payload, what);
        }
        "routedOrders" => {
            assert_eq!(kind, Some(KIND_ROUTED), "{what}");
            let orders = orders_of(decode_intake(KIND_ROUTED, &bytes), what);
            same(&unpacked(&encode_routed(&orders).body), payload, what);
        }
        "forward" => {
            assert_eq!(kind, Some(KIND_FORWARD), "{what}");
            let items = decode_intake(KIND_FORWARD, &bytes);
            assert!(
                matches!(items[..], [Intake::Forwarded(_)]),
                "{what}: {items:?}"
            );
            let order = orders_of(items, what).remove(0);
            same(&unpacked(&encode_forward(&order).body), payload, what);
        }
        "command" => {
            assert_eq!(kind, Some(KIND_COMMAND), "{what}");
            let command = decode_command(&bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
            let items = decode_intake(KIND_COMMAND, &bytes);
            // One without a key is keyed by its ORDERS sequence (1 here).
            let applied = match &command {
                Command::Keyed { .. } => command.clone(),
                unkeyed => Command::Keyed {
                    id: OrderId::new("invalid:1").unwrap(),
                    command: Box::new(unkeyed.clone()),
                },
            };
            assert_eq!(items, [Intake::Command(applied)], "{what}");
            same(&unpacked(&encode_command(&command).body), payload, what);
        }
        "submitReply" => {
            let reply: SubmitReply = rmp_serde::from_slice(&bytes).expect(what);
            same(
                &unpacked(&rmp_serde::to_vec_named(&reply).unwrap()),
                payload,
                what,
            );
        }
        "fulfilRequest" => {
            let request: FulfilRequest = rmp_serde::from_slice(&bytes).expect(what);
            same(
                &unpacked(&rmp_serde::to_vec_named(&request).unwrap()),
                payload,
                what,
            );
        }
        "fulfilReply" => {
            let reply: FulfilReply = rmp_serde::from_slice(&bytes).expect(what);
            same(
                &unpacked(&rmp_serde::to_vec_named(&reply).unwrap()),
                payload,
                what,
            );
        }
        "eventBatch" => {
            let batch = decode_batch(7, &bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
            let again = encode_batch(batch.shard, batch.prev, &batch.events);
            same(&unpacked(&again), payload, what);
        }
        "decision" => {
            let decision =
                DecisionMessage::decode(&bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_ne!(decision.decision, allot::wire::Decision::Unknown, "{what}");
            same(&unpacked(&decision.encode()), payload, what);
        }
        "deadLetter" => {
            let headers = headers.expect("a dead letter has headers");
            let names: BTreeSet<&str> = headers
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            let ours = [
                REASON_HEADER,
                SUBJECT_HEADER,
                SEQ_HEADER,
                MSG_ID_HEADER,
                DELIVERIES_HEADER,
                TIME_HEADER,
            ];
            assert_eq!(
                names,
                BTreeSet::from_iter(ours.into_iter().chain(["Nats-Msg-Id"])),
                "{what}"
            );
            decode_order(&bytes, &Limits::default()).unwrap_or_else(|e| panic!("{what}: {e}"));
        }
        "viewsOrderRequest" => {
            OrderId::new(payload.as_str().expect("an id")).expect(what);
        }
        "viewsStockRequest" => {
            let (w, s) = payload
                .as_str()
                .and_then(|p| p.split_once('.'))
                .expect(what);
            WarehouseId::new(w).expect(what);
            Sku::new(s).expect(what);
        }
        "viewsOrderReply" | "viewsStockReply" => views_reply(message, what, payload),
        "claimsRequest" => {
            #[derive(serde::Serialize, serde::Deserialize)]
            struct Ask {
                claims: Vec<Claim>,
            }
            let ask: Ask = rmp_serde::from_slice(&bytes).expect(what);
            same(
                &unpacked(&rmp_serde::to_vec_named(&ask).unwrap()),
                payload,
                what,
            );
        }
        "claimsReply" => {
            #[derive(serde::Serialize, serde::Deserialize)]
            struct Answer {
                answers: Vec<ClaimAnswer>,
            }
            let answer: Answer = rmp_serde::from_slice(&bytes).expect(what);
            same(
                &unpacked(&rmp_serde::to_vec_named(&answer).unwrap()),
                payload,
                what,
            );
        }
        other => panic!("message {other} has no round trip here: add one"),
    }
}

/// A views reply: an error, or a view with exactly the fields allot's
/// views serialise (a view built from a real batch).
fn views_reply(message: &str, what: &str, payload: &Value) {
    if payload.get("error").is_some() {
        let keys: BTreeSet<&String> = payload.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            BTreeSet::from_iter([&"error".to_owned(), &"message".to_owned()]),
            "{what}"
        );
        return;
    }
    let views = Views::new(1, 100);
    views.apply(0, 3, &every_event());
    let real = if payload["kind"] == "cart" {
        let held: Vec<allot::domain::Event> = held_cart_events()
            .into_iter()
            .map(|e| allot::domain::Event::Cart { event: Box::new(e) })
            .collect();
        views.apply(0, 4, &held);
        serde_json::to_value(views.cart(&OrderId::new("c-1").unwrap()).expect(what)).unwrap()
    } else if message == "viewsOrderReply" {
        serde_json::to_value(
            views
                .order(&OrderId::new("o-1").unwrap())
                .expect("o-1 is in the views"),
        )
        .unwrap()
    } else {
        let stock: StockView = serde_json::from_value(payload.clone()).expect(what);
        assert_eq!(&serde_json::to_value(&stock).unwrap(), payload, "{what}");
        serde_json::to_value(views.stock(&ams_mug()).expect("ams/MUG has stock")).unwrap()
    };
    let keys = |v: &Value| {
        v.as_object()
            .map(|o| o.keys().cloned().collect::<BTreeSet<_>>())
            .unwrap_or_default()
    };
    assert_eq!(
        keys(payload),
        keys(&real),
        "{what}: not the fields allot sends"
    );
    // A cart's lines too.
    assert_eq!(
        keys(&payload["lines"][0]),
        keys(&real["lines"][0]),
        "{what}: a line's fields"
    );
}

#[test]
fn every_example_round_trips_through_allots_own_decoders() {
    let doc = Doc::load();
    let mut checked = 0;
    for (message, name, payload, headers) in doc.examples() {
        let what = format!("message {message} example {name}");
        round_trip(&message, &what, &payload, headers.as_ref());
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} examples");
}

#[test]
fn every_subject_is_the_one_the_code_uses() {
    let doc = Doc::load();
    let p = ams_mug();
    let order = allot::domain::Order {
        line: false,
        id: OrderId::new("o-1").unwrap(),
        partition: p.clone(),
        quantity: allot::domain::Quantity::ONE,
        region: None,
        priority: allot::domain::Priority(0),
        fallbacks: vec![],
    };
    let code = [
        ("orders", order_subject(&p)),
        ("shardOrders", shard_order_subject(1, &p)),
        ("submit", SUBMIT_SUBJECT.to_owned()),
        ("fulfil", fulfil_subject(&order)),
        ("events", events_subject(1)),
        ("decisions", decision_subject(&p)),
        ("dlq", "dlq.1".to_owned()),
        ("viewsOrder", ORDER_SUBJECT.to_owned()),
        ("viewsStock", STOCK_SUBJECT.to_owned()),
        ("claims", claims_subject(1)),
    ];
    let documented = doc.addresses();
    for (channel, subject) in &code {
        let address = documented
            .iter()
            .find(|(c, _)| c == channel)
            .unwrap_or_else(|| panic!("channel {channel} is not documented"))
            .1
            .replace("{warehouse}", "ams")
            .replace("{sku}", "MUG")
            .replace("{shard}", "1");
        assert_eq!(&address, subject, "channel {channel}");
    }
    assert_eq!(
        documented.len(),
        code.len(),
        "a documented channel is not checked here: {documented:?}"
    );
    // allot's own cart traffic is named (not specified) on the shards'
    // subjects.
    let shard_orders = doc.channel_description("shardOrders");
    let cart_kinds = allot::wire::cart::CART_KINDS;
    for kind in cart_kinds
        .iter()
        .chain([&allot::wire::cart::KIND_CART_MAIL])
    {
        assert!(
            shard_orders.contains(&format!("`{kind}`")),
            "shardOrders does not name the kind {kind}"
        );
    }
    let kinds = doc.kinds();
    assert_eq!(
        kinds,
        BTreeSet::from_iter(
            [KIND_BATCH, KIND_COMMAND, KIND_FORWARD, KIND_ROUTED].map(String::from)
        )
    );
}

#[test]
fn every_event_reason_and_command_is_documented_with_its_fields() {
    let doc = Doc::load();
    let events: Vec<Value> = every_event()
        .iter()
        .map(|e| unpacked(&rmp_serde::to_vec_named(e).unwrap()))
        .collect();
    doc.covers("Event", "type", &events);
    let reasons: Vec<Value> = every_reason()
        .iter()
        .map(|r| unpacked(&rmp_serde::to_vec_named(r).unwrap()))
        .collect();
    doc.covers("RejectReason", "kind", &reasons);
    let commands: Vec<Value> = every_command()
        .iter()
        .map(|c| unpacked(&rmp_serde::to_vec_named(c).unwrap()))
        .collect();
    doc.covers("Command", "type", &commands);
    let cart_events: Vec<Value> = every_cart_event()
        .iter()
        .map(|e| unpacked(&rmp_serde::to_vec_named(e).unwrap()))
        .collect();
    doc.covers("CartEvent", "type", &cart_events);
    let cart_reasons: Vec<Value> = every_cart_reason()
        .iter()
        .map(|r| unpacked(&rmp_serde::to_vec_named(r).unwrap()))
        .collect();
    doc.covers("CartReason", "kind", &cart_reasons);
    for (r, v) in every_cart_reason().iter().zip(&cart_reasons) {
        assert_eq!(v["kind"], r.label(), "{r:?}");
    }
    // Each reject reason's kind is the label decisions and metrics use.
    for (r, v) in every_reason().iter().zip(&reasons) {
        assert_eq!(v["kind"], r.label(), "{r:?}");
    }
    let labels: BTreeSet<String> = every_reason()
        .iter()
        .map(|r| r.label().to_owned())
        .collect();
    assert_eq!(doc.decision_enum("reason"), labels);
    // Every decision kind a DecisionMessage can carry.
    let decisions: BTreeSet<String> = every_event()
        .iter()
        .filter_map(|e| DecisionMessage::from_event(e, &ams_mug()))
        .map(|d| {
            unpacked(&d.encode())["decision"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(doc.decision_enum("decision"), decisions);
}
