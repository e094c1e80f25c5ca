//! Round trips: the documented example, both formats agreeing, nil and
//! null as not sent, unknown fields ignored, and a validated order routed
//! into a domain order.

use super::*;

#[test]
fn the_documented_example_is_what_encode_writes_and_decode_reads() {
    let from_docs = hex_block_after(include_str!("../order.rs"), "Example:");
    let from_readme = hex_block_after(include_str!("../../../README.md"), "## Message contract");
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

#[test]
fn a_cart_round_trips_through_its_encoder() {
    use crate::wire::cart::{decode_cart, encode_cart, ValidatedCart, ValidatedLine};
    let cart = ValidatedCart {
        id: OrderId::new("c-9").unwrap(),
        lines: vec![
            ValidatedLine {
                sku: Sku::new("MUG").unwrap(),
                quantity: Quantity::new(2, 1000).unwrap(),
                warehouse: Some(WarehouseId::new("ams").unwrap()),
            },
            ValidatedLine {
                sku: Sku::new("CUP").unwrap(),
                quantity: Quantity::ONE,
                warehouse: None,
            },
        ],
        region: Some(Region::new("eu").unwrap()),
        fill: crate::domain::Fill::Partial,
        hold: Some(std::time::Duration::from_secs(90)),
    };
    assert_eq!(
        decode_cart(&encode_cart(&cart), &limits()),
        Ok(cart.clone())
    );
    let plain = ValidatedCart {
        region: None,
        fill: crate::domain::Fill::All,
        hold: None,
        ..cart
    };
    assert_eq!(decode_cart(&encode_cart(&plain), &limits()), Ok(plain));
}
