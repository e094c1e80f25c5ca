//! Tests of order messages: round trips and each rule. Hostile payloads
//! are in `hostile`.

mod hostile;

use super::raw::FIELDS;
use super::*;
use crate::domain::{OrderId, Priority, Quantity, Region, RejectReason, Sku, WarehouseId};

fn limits() -> Limits {
    Limits::default()
}

/// A valid message with every field.
fn full() -> OrderMessage {
    OrderMessage {
        v: 1,
        id: "ord-17".into(),
        sku: "MUG".into(),
        quantity: 3,
        warehouse: Some("ams".into()),
        region: Some("eu".into()),
        priority: Some(7),
    }
}

fn json(m: &OrderMessage) -> Vec<u8> {
    serde_json::to_vec(m).unwrap()
}

/// Decodes `m` both ways; both must agree.
fn decode_both(m: &OrderMessage) -> Result<ValidatedOrder, WireError> {
    let packed = decode_order(&m.encode(), &limits());
    assert_eq!(packed, decode_order_json(&json(m), &limits()));
    packed
}

/// The fields named by an error, in order.
fn fields(e: &WireError) -> Vec<String> {
    e.problems().into_iter().map(|p| p.field).collect()
}

fn hex(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

/// The first ```text block after `marker` in `source`, as bytes.
fn hex_block_after(source: &str, marker: &str) -> Vec<u8> {
    let rest = &source[source.find(marker).expect("marker")..];
    let start = rest.find("```text").expect("a ```text block") + "```text".len();
    let end = start + rest[start..].find("```").unwrap();
    let text: String = rest[start..end]
        .lines()
        .map(|l| l.trim_start_matches("///"))
        .collect::<Vec<_>>()
        .join(" ");
    hex(&text)
}

fn example() -> OrderMessage {
    OrderMessage {
        v: 1,
        id: "o-1".into(),
        sku: "MUG".into(),
        quantity: 2,
        warehouse: None,
        region: Some("eu".into()),
        priority: None,
    }
}

#[test]
fn the_documented_example_is_what_encode_writes_and_decode_reads() {
    let from_docs = hex_block_after(include_str!("order.rs"), "Example:");
    let from_readme = hex_block_after(include_str!("../../README.md"), "## Wire format");
    assert_eq!(from_docs, example().encode());
    assert_eq!(from_readme, from_docs);
    let order = decode_order(&from_docs, &limits()).unwrap();
    assert_eq!(OrderMessage::from(&order), example());
}

#[test]
fn round_trips_in_both_formats() {
    let order = decode_both(&full()).unwrap();
    assert_eq!(
        order,
        ValidatedOrder {
            id: OrderId::new("ord-17").unwrap(),
            sku: Sku::new("MUG").unwrap(),
            quantity: Quantity::new(3, 1000).unwrap(),
            warehouse: Some(WarehouseId::new("ams").unwrap()),
            region: Some(Region::new("eu").unwrap()),
            priority: Priority(7),
        }
    );
    assert_eq!(
        decode_order(&encode_order(&order), &limits()),
        Ok(order.clone())
    );
    assert_eq!(OrderMessage::from(&order), full());
    let minimal = OrderMessage {
        warehouse: None,
        region: None,
        priority: None,
        ..full()
    };
    let order = decode_both(&minimal).unwrap();
    assert_eq!(order.priority, Priority(0));
    assert_eq!(OrderMessage::from(&order), minimal);
}

#[test]
fn nil_and_null_mean_not_sent() {
    #[derive(serde::Serialize)]
    struct WithNils {
        v: u32,
        id: &'static str,
        sku: &'static str,
        quantity: u64,
        warehouse: Option<String>,
        region: Option<String>,
        priority: Option<u8>,
    }
    let m = WithNils {
        v: 1,
        id: "a",
        sku: "B",
        quantity: 1,
        warehouse: None,
        region: None,
        priority: None,
    };
    let packed = rmp_serde::to_vec_named(&m).unwrap();
    let order = decode_order(&packed, &limits()).unwrap();
    assert_eq!((order.warehouse, order.region), (None, None));
    let text = serde_json::to_vec(&m).unwrap();
    assert!(String::from_utf8_lossy(&text).contains("\"region\":null"));
    assert!(decode_order_json(&text, &limits()).is_ok());
}

#[test]
fn each_invalid_field_is_named() {
    type Breaks = fn(&mut OrderMessage);
    let cases: Vec<(Breaks, &str, &str)> = vec![
        (|m| m.id = "has space".into(), "id", "has ' ' at byte 3"),
        (|m| m.id = "tab\t".into(), "id", "'\\t'"),
        (|m| m.id = String::new(), "id", "is empty"),
        (|m| m.id = "x".repeat(65), "id", "65 bytes long"),
        (|m| m.id = "invalid:7".into(), "id", "reserved"),
        (|m| m.sku = "a.b".into(), "sku", "'.' at byte 1"),
        (
            |m| m.quantity = 0,
            "quantity",
            "0 is out of range, must be 1..=1000",
        ),
        (|m| m.quantity = 1001, "quantity", "1001 is out of range"),
        (|m| m.quantity = u64::MAX, "quantity", "out of range"),
        (|m| m.warehouse = Some("ams*".into()), "warehouse", "'*'"),
        (|m| m.region = Some(String::new()), "region", "is empty"),
    ];
    for (break_it, field, why) in cases {
        let mut m = full();
        break_it(&mut m);
        let e = decode_both(&m).unwrap_err();
        assert_eq!(fields(&e), [field], "{m:?}");
        assert!(e.problems()[0].why.contains(why), "{m:?}: {e}");
        assert_eq!(e.label(), "invalid");
    }
}

#[test]
fn every_problem_is_reported_in_schema_order() {
    let text = br#"{"priority":256,"quantity":0,"sku":"","id":"a b","v":1,"region":"e u"}"#;
    let e = decode_order_json(text, &limits()).unwrap_err();
    assert_eq!(fields(&e), ["id", "sku", "quantity", "region", "priority"]);
    assert_eq!(e.id(), Some("a b"));
}

#[test]
fn missing_fields_are_named() {
    let e = decode_order_json(br#"{"v":1}"#, &limits()).unwrap_err();
    assert_eq!(fields(&e), ["id", "sku", "quantity"]);
    assert!(e.problems().iter().all(|p| p.why == "missing"));
    let e = decode_order_json(br#"{"id":"a","sku":"B","quantity":1}"#, &limits()).unwrap_err();
    assert_eq!(
        e.problems(),
        [FieldError::new("v", "missing; this allot reads version 1")]
    );
}

/// A valid minimal order as a JSON value, with `field` set to `value`.
fn with(field: &str, value: serde_json::Value) -> serde_json::Value {
    let mut obj = serde_json::json!({"v": 1, "id": "a", "sku": "B", "quantity": 1});
    obj[field] = value;
    obj
}

/// Decodes `obj` as MessagePack and as JSON; both must agree.
fn decode_value(obj: &serde_json::Value) -> Result<ValidatedOrder, WireError> {
    let packed = decode_order(&rmp_serde::to_vec_named(obj).unwrap(), &limits());
    let text = decode_order_json(&serde_json::to_vec(obj).unwrap(), &limits());
    match (&packed, &text) {
        // JSON's own messages add where: "... at line 1 column 75".
        (Err(p @ WireError::Malformed { .. }), Err(t @ WireError::Malformed { .. })) => {
            assert_eq!((p.id(), fields(p)), (t.id(), fields(t)), "{obj}");
            assert!(
                t.problems()[0].why.starts_with(&p.problems()[0].why),
                "{p} / {t}"
            );
        }
        _ => assert_eq!(packed, text, "{obj}"),
    }
    packed
}

#[test]
fn wrong_types_are_named_with_what_was_sent() {
    use serde_json::json;
    let cases = [
        ("quantity", json!("3"), "must be an integer, got a string"),
        ("quantity", json!(3.0), "must be an integer, got a float"),
        (
            "quantity",
            json!(-3),
            "-3 is out of range, must be 1..=1000",
        ),
        ("sku", json!(42), "must be a string, got an integer"),
        ("id", json!(-1), "must be a string, got an integer"),
        ("region", json!(["eu"]), "must be a string, got an array"),
        ("warehouse", json!({"a": 1}), "must be a string, got a map"),
        ("priority", json!(true), "must be an integer, got a boolean"),
        (
            "priority",
            json!(256),
            "256 is out of range, must be 0..=255",
        ),
        ("priority", json!(-1), "-1 is out of range, must be 0..=255"),
        ("v", json!("1"), "must be an integer, got a string"),
    ];
    for (field, value, why) in cases {
        let e = decode_value(&with(field, value)).unwrap_err();
        assert_eq!(e.problems(), [FieldError::new(field, why)]);
    }
    // MessagePack binary where a string belongs: {"id": bin8 "a", ...}.
    let mut packed = rmp_serde::to_vec_named(&json!({"v": 1, "sku": "B", "quantity": 1})).unwrap();
    packed[0] += 1;
    packed.extend([0xa2, b'i', b'd', 0xc4, 1, b'a']);
    let e = decode_order(&packed, &limits()).unwrap_err();
    assert_eq!(fields(&e), ["id"]);
    assert!(e.problems()[0].why.contains("got bytes"), "{e}");
}

#[test]
fn quantity_limit_comes_from_the_config() {
    let config = crate::config::Config::from_toml("[limits]\nmax_quantity = 5", "t").unwrap();
    let small = Limits::from_config(&config);
    let m = OrderMessage {
        quantity: 6,
        ..full()
    };
    let e = decode_order(&m.encode(), &small).unwrap_err();
    assert_eq!(
        e.problems(),
        [FieldError::new(
            "quantity",
            "6 is out of range, must be 1..=5"
        )]
    );
    let m = OrderMessage {
        quantity: 5,
        ..full()
    };
    assert!(decode_order(&m.encode(), &small).is_ok());
}

#[test]
fn unknown_fields_are_ignored() {
    use serde_json::json;
    let mut obj = with(
        "note",
        json!({"gift": true, "lines": [1, [2, {"x": null}]]}),
    );
    obj["trace_id"] = json!("abc");
    obj["v2_thing"] = json!(1.5);
    assert_eq!(
        decode_value(&obj).unwrap(),
        decode_value(&with("quantity", json!(1))).unwrap()
    );
}

#[test]
fn a_field_given_twice_is_invalid() {
    // Parsers disagree on which copy wins, so neither does.
    let text = br#"{"v":1,"id":"a","sku":"B","quantity":1,"quantity":900}"#;
    let e = decode_order_json(text, &limits()).unwrap_err();
    assert_eq!(
        e.problems(),
        [FieldError::new("quantity", "given more than once")]
    );
    let mut packed = rmp_serde::to_vec_named(&with("quantity", 1.into())).unwrap();
    packed[0] += 1;
    packed.extend([0xa1, b'v', 1]);
    assert_eq!(
        fields(&decode_order(&packed, &limits()).unwrap_err()),
        ["v"]
    );
}

#[test]
fn an_unsupported_version_is_reported_alone() {
    let mut obj = with("v", 2.into());
    obj["quantity"] = 0.into();
    let e = decode_value(&obj).unwrap_err();
    assert_eq!(
        e.problems(),
        [FieldError::new(
            "v",
            "version 2 is not supported; this allot reads 1"
        )]
    );
    assert_eq!(e.order_id(), Some(OrderId::new("a").unwrap()));
    assert_eq!(
        e.reject_reason().to_string(),
        "invalid v: version 2 is not supported; this allot reads 1"
    );
}

#[test]
fn rejections_are_named_by_the_id_when_it_is_usable() {
    let e = decode_value(&with("quantity", 0.into())).unwrap_err();
    assert_eq!(e.rejection_id(9), OrderId::new("a").unwrap());
    assert_eq!(
        e.reject_reason(),
        RejectReason::Invalid {
            errors: vec![FieldError::new(
                "quantity",
                "0 is out of range, must be 1..=1000"
            )]
        }
    );
    let e = decode_value(&with("id", "a b".into())).unwrap_err();
    assert_eq!(e.id(), Some("a b"));
    assert_eq!(e.order_id(), None);
    assert_eq!(e.rejection_id(9).as_str(), "invalid:9");
    let e = decode_value(&with("id", "invalid:3".into())).unwrap_err();
    assert_eq!(
        e.rejection_id(u64::MAX).as_str(),
        "invalid:18446744073709551615"
    );
    assert_eq!(
        decode_order(b"\xc1", &limits())
            .unwrap_err()
            .rejection_id(4)
            .as_str(),
        "invalid:4"
    );
}

#[test]
fn several_problems_make_one_reason_that_lists_every_field() {
    let mut obj = with("quantity", 0.into());
    obj["sku"] = "a.b".into();
    let e = decode_value(&obj).unwrap_err();
    assert_eq!(
        e.reject_reason(),
        RejectReason::Invalid {
            errors: vec![
                FieldError::new("sku", "has '.' at byte 1 (allowed: A-Z a-z 0-9 _ -)"),
                FieldError::new("quantity", "0 is out of range, must be 1..=1000"),
            ]
        }
    );
    assert_eq!(
        e.to_string(),
        "order \"a\": invalid sku: has '.' at byte 1 (allowed: A-Z a-z 0-9 _ -); quantity: 0 \
         is out of range, must be 1..=1000"
    );
}

#[test]
fn a_long_id_is_clipped_in_messages() {
    let e = decode_value(&with("id", "é".repeat(100).into())).unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("order {:?}...: ", "é".repeat(64))),
        "{text}"
    );
}

#[test]
fn a_validated_order_routes_into_a_domain_order() {
    let config =
        crate::config::Config::from_toml("[routing.regions]\neu = [\"ams\", \"fra\"]\n", "t")
            .unwrap();
    let router = config.router();
    let m = OrderMessage {
        warehouse: None,
        ..full()
    };
    let (order, shard) = decode_order(&m.encode(), &limits())
        .unwrap()
        .route(&router)
        .unwrap();
    assert_eq!(order.partition.to_string(), "ams/MUG");
    assert_eq!(order.fallbacks, [WarehouseId::new("fra").unwrap()]);
    assert_eq!((order.priority, order.quantity.get()), (Priority(7), 3));
    assert_eq!(shard, router.shard_for(&order.partition));
    assert_eq!(order_subject(&order.partition), "orders.ams.MUG");
    assert_eq!(decision_subject(&order.partition), "decisions.ams.MUG");
}
