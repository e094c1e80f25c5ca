//! Tests of order messages, by concern: round trips and routing
//! (`round_trip`), each field rule (`fields`), how rejections are named
//! (`rejections`), hostile payloads (`hostile`), allot's own messages
//! read back (`own_streams`), and log appends within the broker's limit
//! (`appends`). This file holds the
//! helpers they share.

mod appends;
mod fields;
mod hostile;
mod own_streams;
mod rejections;
mod round_trip;

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
