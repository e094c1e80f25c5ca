//! `decode_order_json` (the body of `POST /v1/orders`) on arbitrary bytes
//! with the default limits: it never panics, and an order it accepts
//! survives the MessagePack round trip producers use unchanged.
#![no_main]

use allot::wire::{decode_order, decode_order_json, encode_order, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(order) = decode_order_json(data, &limits) {
        let again = decode_order(&encode_order(&order), &limits)
            .expect("a JSON order re-encodes into a valid MessagePack one");
        assert_eq!(again, order, "the round trip changed the order");
    }
});
