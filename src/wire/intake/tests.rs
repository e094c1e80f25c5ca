//! The intake decoder on hand-made messages.

use super::*;
use crate::config::Config;
use crate::wire::OrderMessage;

fn decode(subject: &str, kind: Option<&str>, payload: &[u8]) -> Intake {
    let config = Config::default();
    let router = config.router();
    let limits = Limits::default();
    IntakeDecoder {
        router: &router,
        limits: &limits,
    }
    .decode(subject, kind, payload, 7)
}

fn order(warehouse: Option<&str>, sku: &str) -> Vec<u8> {
    OrderMessage {
        v: 1,
        id: "o-1".into(),
        sku: sku.into(),
        quantity: 1,
        warehouse: warehouse.map(str::to_owned),
        region: None,
        priority: None,
    }
    .encode()
}

fn fields(intake: &Intake) -> Vec<&str> {
    match intake {
        Intake::Invalid { errors, .. } => errors.iter().map(|e| e.field.as_str()).collect(),
        other => panic!("not invalid: {other:?}"),
    }
}

#[test]
fn a_body_that_differs_from_its_subject_names_the_field_that_differs() {
    let wrong_warehouse = decode("orders.0.ams.MUG", None, &order(Some("fra"), "MUG"));
    assert_eq!(fields(&wrong_warehouse), ["warehouse"]);
    let wrong_sku = decode("orders.0.ams.MUG", None, &order(None, "CUP"));
    assert_eq!(fields(&wrong_sku), ["sku"]);
    let both = decode("orders.0.ams.MUG", None, &order(Some("fra"), "CUP"));
    assert_eq!(fields(&both), ["sku", "warehouse"]);
    let Intake::Invalid { partition, id, .. } = both else {
        unreachable!()
    };
    assert_eq!(id.as_str(), "o-1");
    assert_eq!(partition.unwrap().to_string(), "ams/MUG");
}

#[test]
fn an_order_matching_its_subject_is_routed() {
    let ok = decode("orders.0.ams.MUG", None, &order(Some("ams"), "MUG"));
    assert!(matches!(ok, Intake::Order(o) if o.partition.to_string() == "ams/MUG"));
}

#[test]
fn unknown_kinds_and_unreadable_bodies_are_rejections_under_a_reserved_id() {
    let unknown = decode("orders.0.ams.MUG", Some("parcel"), b"\x80");
    assert_eq!(fields(&unknown), [KIND_HEADER]);
    let bad = decode("orders.0.ams.MUG", Some(KIND_FORWARD), b"\xc1");
    let Intake::Invalid { id, partition, .. } = bad else {
        panic!("not invalid")
    };
    assert_eq!(id.as_str(), "invalid:7");
    assert!(partition.is_some());
}

#[test]
fn a_hostile_forward_nested_deep_is_refused_without_recursing() {
    let nested = vec![0x91; 100_000];
    assert!(matches!(
        decode("orders.0.ams.MUG", Some(KIND_FORWARD), &nested),
        Intake::Invalid { .. }
    ));
}

#[test]
fn a_direct_publish_names_every_bad_field_with_the_subject_mismatch() {
    let bad = rmp_serde::to_vec_named(&serde_json::json!({
        "v": 1.0, "id": "o-9", "sku": "CUP", "quantity": 0,
        "warehouse": "ams", "priority": 300,
    }))
    .unwrap();
    let intake = decode("orders.0.ams.MUG", None, &bad);
    assert_eq!(fields(&intake), ["v", "sku", "quantity", "priority"]);
    let Intake::Invalid { id, partition, .. } = intake else {
        unreachable!()
    };
    assert_eq!(id.as_str(), "o-9");
    assert_eq!(partition.unwrap().to_string(), "ams/MUG");
}

#[test]
fn a_command_filed_without_a_key_is_keyed_by_its_sequence() {
    let set = Command::SetStock {
        partition: PartitionKey::new(WarehouseId::new("ams").unwrap(), Sku::new("MUG").unwrap()),
        on_hand: 3,
        expected_version: None,
    };
    let unkeyed = decode(
        "orders.0.ams.MUG",
        Some(KIND_COMMAND),
        &encode_command(&set).body,
    );
    let expected = Command::Keyed {
        id: OrderId::new("invalid:7").unwrap(),
        command: Box::new(set.clone()),
    };
    assert_eq!(unkeyed, Intake::Command(expected));
    // A key of its own is kept.
    let own = Command::Keyed {
        id: OrderId::new("stock-1").unwrap(),
        command: Box::new(set),
    };
    let keyed = decode(
        "orders.0.ams.MUG",
        Some(KIND_COMMAND),
        &encode_command(&own).body,
    );
    assert_eq!(keyed, Intake::Command(own));
}
