//! How an invalid order's rejection is named: by its id when usable
//! (else a reserved one), one reason listing every field, and a long id
//! clipped in messages.

use super::*;

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
fn a_cart_published_on_an_order_subject_is_read_as_a_cart() {
    let config = crate::config::Config::default();
    let router = config.router();
    let limits = limits();
    let decoder = crate::wire::IntakeDecoder {
        router: &router,
        limits: &limits,
    };
    let cart = |quantity: u32| {
        let v = serde_json::json!({"v": 2, "id": "c-1", "lines": [
            {"sku": "MUG", "quantity": 1, "warehouse": "ams"},
            {"sku": "CUP", "quantity": quantity, "warehouse": "fra"}]});
        rmp_serde::to_vec_named(&v).unwrap()
    };
    match decoder.decode("orders.ams.PEN", None, &cart(2), 7) {
        Intake::Cart(c) => {
            assert_eq!(c.id().as_str(), "c-1");
            assert_eq!(c.lines().len(), 2);
        }
        other => panic!("not a cart: {other:?}"),
    }
    match decoder.decode("orders.ams.PEN", None, &cart(0), 7) {
        Intake::Invalid { id, errors, .. } => {
            assert_eq!(id.as_str(), "c-1");
            assert_eq!(errors[0].field, "lines[1].quantity", "{errors:?}");
        }
        other => panic!("not refused: {other:?}"),
    }
    // In a batch, a cart is refused by name.
    let batch = rmp_serde::to_vec_named(&serde_json::json!([{"v": 2, "id": "c-2"}])).unwrap();
    let items = decoder.decode_all("orders.ams.PEN", Some(KIND_BATCH), &batch, 8);
    let text = format!("{items:?}");
    assert!(text.contains("version 2 is a cart"), "{text}");
}

#[test]
fn a_cart_is_told_apart_whatever_integer_encoding_its_version_has() {
    use crate::wire::cart::{is_cart, CartMessage, LineMessage};
    let cart = CartMessage {
        v: 2,
        id: "c-1".into(),
        lines: vec![LineMessage {
            sku: "MUG".into(),
            quantity: 1,
            warehouse: Some("ams".into()),
        }],
        region: None,
        fill: None,
        hold: None,
    }
    .encode();
    assert!(is_cart(&cart, false));
    let at = cart
        .windows(3)
        .position(|w| w == [0xa1, b'v', 0x02])
        .unwrap();
    for wide in [
        &[0xcc, 0x02][..],
        &[0xcd, 0, 2],
        &[0xd0, 0x02],
        &[0xcf, 0, 0, 0, 0, 0, 0, 0, 2],
    ] {
        let mut body = cart[..at + 2].to_vec();
        body.extend_from_slice(wide);
        body.extend_from_slice(&cart[at + 3..]);
        assert!(is_cart(&body, false), "{wide:02x?}");
    }
    assert!(!is_cart(&full().encode(), false), "an order");
    assert!(is_cart(br#"{"v" : 2, "id": "c", "lines": []}"#, true));
    assert!(!is_cart(br#"{"v": 1, "id": "c", "note": "v 2"}"#, true));
}
