//! The HTTP JSON bodies without a server: `POST /v1/commands` batches
//! (`parse_batch`, then each command and nested batch through
//! `parse_command`, orders through `decode_order_json`) and the three stock
//! bodies. Nothing may panic, and an accepted batch holds at most
//! `max_batch_size` commands in all.
#![no_main]

use allot::adapters::http::{
    parse_batch, parse_command, parse_json, AdjustBody, BatchItem, RestockBody, SetBody,
};
use allot::wire::{decode_order_json, Limits};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// The default `limits.max_batch_size`.
const MAX_BATCH: usize = 1000;

fuzz_target!(|data: &[u8]| {
    if let Ok(commands) = parse_batch(data, MAX_BATCH) {
        let seen = walk(commands, &Limits::default());
        assert!(
            seen <= MAX_BATCH,
            "{seen} commands passed a batch limit of {MAX_BATCH}"
        );
    }
    let _ = parse_json::<SetBody>(data);
    let _ = parse_json::<RestockBody>(data);
    let _ = parse_json::<AdjustBody>(data);
});

/// Reads every command as the handler would; returns how many there were.
fn walk(commands: Vec<Value>, limits: &Limits) -> usize {
    let mut seen = 0;
    for (i, item) in commands.into_iter().enumerate() {
        seen += 1;
        match parse_command(i, item) {
            Ok(BatchItem::Batch(inner)) => seen += walk(inner, limits),
            Ok(BatchItem::PlaceOrder(order)) => {
                let bytes = serde_json::to_vec(&order).expect("a JSON value serialises");
                let _ = decode_order_json(&bytes, limits);
            }
            Ok(_) | Err(_) => {}
        }
    }
    seen
}
