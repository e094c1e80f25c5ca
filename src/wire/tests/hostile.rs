//! Hostile payloads: too large, garbage, truncated, lying lengths, deep
//! nesting, and property tests that no input panics.

use proptest::prelude::*;

use super::*;

#[test]
fn oversized_payloads_are_refused_unread() {
    let tight = Limits {
        max_payload_bytes: 64,
        ..limits()
    };
    let mut obj = with("pad", "".into());
    let fits = |obj: &serde_json::Value| rmp_serde::to_vec_named(obj).unwrap().len();
    while fits(&obj) < 64 {
        obj["pad"] = format!("{}x", obj["pad"].as_str().unwrap()).into();
    }
    let packed = rmp_serde::to_vec_named(&obj).unwrap();
    assert_eq!(packed.len(), 64);
    assert!(decode_order(&packed, &tight).is_ok());
    obj["pad"] = format!("{}x", obj["pad"].as_str().unwrap()).into();
    let packed = rmp_serde::to_vec_named(&obj).unwrap();
    let e = decode_order(&packed, &tight).unwrap_err();
    assert_eq!(e, WireError::TooLarge { size: 65, max: 64 });
    assert_eq!(e.id(), None);
    assert_eq!(e.label(), "too_large");
    assert_eq!(
        e.reject_reason(),
        RejectReason::Invalid {
            errors: vec![FieldError::new(
                "payload",
                "65 bytes, more than the 64 allowed"
            )]
        }
    );
    // JSON too, and garbage is not even looked at.
    assert_eq!(
        decode_order_json(&[b' '; 65], &tight),
        Err(WireError::TooLarge { size: 65, max: 64 })
    );
}

#[test]
fn garbage_is_malformed() {
    let garbage: [&[u8]; 9] = [
        b"",
        b"\xc1",             // never used in MessagePack
        b"\x2a",             // the integer 42, not a map
        b"\xa5hello",        // a string
        b"\xc0",             // nil
        b"\x81\x01\x02",     // a map with an integer key
        b"\x81\xa1\xff\x01", // a key that is not UTF-8
        b"not msgpack at all",
        b"\x00\xff\xfe\xfd",
    ];
    for bytes in garbage {
        let e = decode_order(bytes, &limits()).unwrap_err();
        assert_eq!(e.label(), "malformed", "{bytes:?}: {e}");
        assert_eq!(fields(&e), ["payload"], "{bytes:?}");
    }
    for text in ["", "[]", "nul", "{\"v\":1,}", "{\"v\":1} {}", "\u{fffd}"] {
        let e = decode_order_json(text.as_bytes(), &limits()).unwrap_err();
        assert_eq!(e.label(), "malformed", "{text:?}: {e}");
    }
}

#[test]
fn json_sent_as_msgpack_says_so() {
    let e = decode_order(&json(&full()), &limits()).unwrap_err();
    assert_eq!(e.problems()[0].why, "not MessagePack: this looks like JSON");
}

#[test]
fn positional_arrays_are_refused_with_a_hint() {
    let positional = rmp_serde::to_vec(&full()).unwrap();
    let e = decode_order(&positional, &limits()).unwrap_err();
    assert!(e.to_string().contains("to_vec_named"), "{e}");
}

#[test]
fn trailing_bytes_are_malformed() {
    let mut packed = full().encode();
    packed.push(0xc0);
    let e = decode_order(&packed, &limits()).unwrap_err();
    assert_eq!(
        e.problems(),
        [FieldError::new(
            "payload",
            "trailing bytes after the message"
        )]
    );
    assert_eq!(e.order_id(), Some(OrderId::new("ord-17").unwrap()));
}

#[test]
fn every_truncation_is_malformed_and_keeps_the_id_once_read() {
    let packed = full().encode();
    let id_end = packed.windows(6).position(|w| w == b"ord-17").unwrap() + 6;
    for cut in 0..packed.len() {
        let e = decode_order(&packed[..cut], &limits()).unwrap_err();
        assert_eq!(e.label(), "malformed", "cut at {cut}: {e}");
        assert_eq!(e.id().is_some(), cut >= id_end, "cut at {cut}: {e}");
    }
    let text = json(&full());
    for cut in 0..text.len() {
        let e = decode_order_json(&text[..cut], &limits()).unwrap_err();
        assert_eq!(e.label(), "malformed", "cut at {cut}: {e}");
    }
}

#[test]
fn a_truncation_inside_a_field_names_the_field() {
    let packed = full().encode();
    let at = packed.windows(8).position(|w| w == b"quantity").unwrap() + 8;
    let e = decode_order(&packed[..at], &limits()).unwrap_err();
    assert_eq!(fields(&e), ["quantity"]);
    assert!(e.problems()[0].why.starts_with("truncated"), "{e}");
}

#[test]
fn lengths_claiming_4_gib_fail_fast() {
    // Each header claims u32::MAX items or bytes; the payload holds a few.
    // (tests/wire_alloc.rs checks that no large allocation happens.)
    let huge: [&[u8]; 6] = [
        b"\xdd\xff\xff\xff\xff\x01",          // array 32 at the top
        b"\xdf\xff\xff\xff\xff\xa1v\x01",     // map 32 at the top
        b"\xdb\xff\xff\xff\xffabc",           // str 32 at the top
        b"\x81\xa2id\xdb\xff\xff\xff\xffabc", // str 32 as the id
        b"\x81\xa1x\xc6\xff\xff\xff\xffabc",  // bin 32, unknown field
        b"\x81\xa1x\xdd\xff\xff\xff\xff\xdd\xff\xff\xff\xff", // nested arrays
    ];
    for bytes in huge {
        let started = std::time::Instant::now();
        let e = decode_order(bytes, &limits()).unwrap_err();
        assert_eq!(e.label(), "malformed", "{bytes:?}: {e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
    let e = decode_order(huge[3], &limits()).unwrap_err();
    assert_eq!(fields(&e), ["id"]);
}

#[test]
fn nesting_is_capped_the_same_in_both_formats() {
    // The message's map is level 1; an unknown field holds `arrays` more.
    let nested = |arrays: usize| {
        let mut obj = with("x", serde_json::Value::Null);
        for _ in 0..arrays {
            obj["x"] = serde_json::Value::Array(vec![obj["x"].take()]);
        }
        obj
    };
    assert!(decode_value(&nested(MAX_DEPTH - 1)).is_ok());
    let e = decode_value(&nested(MAX_DEPTH)).unwrap_err();
    assert_eq!(
        e.problems(),
        [FieldError::new(
            "payload",
            format!("nested more than {MAX_DEPTH} levels deep")
        )]
    );
    // The same inside a known field, which then is not even type-checked.
    let mut obj = nested(MAX_DEPTH - 1);
    obj["region"] = obj["x"].take();
    assert_eq!(fields(&decode_value(&obj).unwrap_err()), ["region"]);
    // Far deeper than any parser's own limit: refused, not a stack overflow.
    let deep = format!(
        r#"{{"v":1,"x":{}{}}}"#,
        "[".repeat(30_000),
        "]".repeat(30_000)
    );
    assert_eq!(
        decode_order_json(deep.as_bytes(), &limits())
            .unwrap_err()
            .label(),
        "malformed"
    );
    let mut deep = rmp_serde::to_vec_named(&with("quantity", 1.into())).unwrap();
    deep[0] += 1;
    deep.extend([0xa1, b'x']);
    deep.extend(std::iter::repeat_n(0x91, 30_000));
    deep.push(0xc0);
    assert_eq!(
        decode_order(&deep, &limits()).unwrap_err().label(),
        "malformed"
    );
}

/// A well-formed error: at least one problem, each naming a schema field
/// or the payload.
fn well_formed(e: &WireError) -> bool {
    let problems = e.problems();
    !problems.is_empty()
        && problems
            .iter()
            .all(|p| p.field == "payload" || FIELDS.contains(&p.field.as_str()))
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Err(e) = decode_order(&bytes, &limits()) {
            prop_assert!(well_formed(&e), "{e:?}");
        }
        if let Err(e) = decode_order_json(&bytes, &limits()) {
            prop_assert!(well_formed(&e), "{e:?}");
        }
    }

    #[test]
    fn corrupted_messages_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        for mut bytes in [full().encode(), json(&full())] {
            for (at, byte) in &edits {
                let i = at.index(bytes.len());
                bytes[i] = *byte;
            }
            bytes.truncate(cut.index(bytes.len() + 1).max(1));
            for result in [decode_order(&bytes, &limits()), decode_order_json(&bytes, &limits())] {
                if let Err(e) = result {
                    prop_assert!(well_formed(&e), "{e:?}");
                }
            }
        }
    }

    #[test]
    fn valid_orders_round_trip(
        id in "[!-~]{1,64}",
        sku in "[A-Za-z0-9_-]{1,64}",
        quantity in 1u32..=1000,
        warehouse in proptest::option::of("[A-Za-z0-9_-]{1,64}"),
        priority in any::<u8>(),
    ) {
        prop_assume!(!id.starts_with(RESERVED_ID_PREFIX));
        let order = ValidatedOrder {
            id: OrderId::new(&id).unwrap(),
            sku: Sku::new(&sku).unwrap(),
            quantity: Quantity::new(quantity.into(), 1000).unwrap(),
            warehouse: warehouse.map(|w| WarehouseId::new(&w).unwrap()),
            region: None,
            priority: Priority(priority),
        };
        prop_assert_eq!(decode_order(&encode_order(&order), &limits()), Ok(order.clone()));
        let text = serde_json::to_vec(&OrderMessage::from(&order)).unwrap();
        prop_assert_eq!(decode_order_json(&text, &limits()), Ok(order));
    }
}
