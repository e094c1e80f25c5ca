//! Each field rule: every invalid field is named with why, in schema
//! order, including missing fields, wrong types, a field given twice, an
//! unsupported version and the configured quantity limit.

use super::*;

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
    let mut obj = with("v", 3.into());
    obj["quantity"] = 0.into();
    let e = decode_value(&obj).unwrap_err();
    assert_eq!(
        e.problems(),
        [FieldError::new(
            "v",
            "version 3 is not supported; this allot reads 1 (an order) and 2 (a cart)"
        )]
    );
    assert_eq!(e.order_id(), Some(OrderId::new("a").unwrap()));
    assert_eq!(
        e.reject_reason().to_string(),
        "invalid v: version 3 is not supported; this allot reads 1 (an order) and 2 (a cart)"
    );
}

#[test]
fn a_version_of_the_wrong_type_hides_no_other_bad_field() {
    // JSON clients send whole numbers as floats; `1.0` is refused, and so
    // is each other bad field, in both formats.
    let text = br#"{"v":1.0,"id":"a","sku":"B C","quantity":0,"priority":300}"#;
    let e = decode_order_json(text, &limits()).unwrap_err();
    assert_eq!(fields(&e), ["v", "sku", "quantity", "priority"]);
    assert_eq!(e.problems()[0].why, "must be an integer, got a float");
    let value: serde_json::Value = serde_json::from_slice(text).unwrap();
    let e = decode_value(&value).unwrap_err();
    assert_eq!(fields(&e), ["v", "sku", "quantity", "priority"]);
    let missing = br#"{"id":"a","sku":"B","quantity":0}"#;
    let e = decode_order_json(missing, &limits()).unwrap_err();
    assert_eq!(fields(&e), ["v", "quantity"]);
}
