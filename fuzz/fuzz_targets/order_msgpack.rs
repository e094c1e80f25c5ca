//! `decode_order` on arbitrary bytes with the default limits: it never
//! panics, and an order it accepts survives `encode_order` and a second
//! decode unchanged.
#![no_main]

use allot::wire::{decode_order, encode_order, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(order) = decode_order(data, &limits) {
        let again = decode_order(&encode_order(&order), &limits)
            .expect("a decoded order re-encodes into a valid one");
        assert_eq!(again, order, "the round trip changed the order");
    }
});
