//! Many orders in one message (`Allot-Kind: batch`): a MessagePack array of
//! order maps, each the v1 order of [`super::OrderMessage`], at most
//! `limits.max_batch_orders` of them in at most `limits.max_batch_bytes`.
//! One broker write carries them all; each order is still validated,
//! deduplicated and decided on its own. A batch that is not an array of
//! maps is rejected as a whole; an order in it that breaks the schema is
//! rejected alone, naming every bad field.

use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use std::fmt;

use super::order::{msgpack_why, validate, MAX_DEPTH};
use super::raw::RawOrder;
use super::{Limits, OrderMessage, ValidatedOrder, WireError};

/// Largest batch message, in bytes (NATS' default max payload is 1 MiB).
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// Decodes a batch: each order validated on its own, in order.
pub fn decode_orders(
    bytes: &[u8],
    limits: &Limits,
) -> Result<Vec<Result<ValidatedOrder, WireError>>, WireError> {
    if bytes.len() > MAX_BATCH_BYTES {
        return Err(WireError::TooLarge {
            size: bytes.len(),
            max: MAX_BATCH_BYTES,
        });
    }
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    // The batch's array is a level, each order's map another.
    de.set_max_depth(MAX_DEPTH + 2);
    let raws = Orders {
        max: limits.max_batch_orders,
    }
    .deserialize(&mut de)
    .map_err(|e| WireError::Malformed {
        id: None,
        field: "payload",
        why: format!("not a batch of order maps: {}", msgpack_why(&e)),
    })?;
    Ok(raws.into_iter().map(|raw| validate(raw, limits)).collect())
}

/// A batch as a producer sends it.
pub fn encode_orders(orders: &[OrderMessage]) -> Vec<u8> {
    rmp_serde::to_vec_named(orders).expect("order messages always encode")
}

struct Orders {
    max: usize,
}

impl<'de> DeserializeSeed<'de> for Orders {
    type Value = Vec<RawOrder>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<RawOrder>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Orders {
    type Value = Vec<RawOrder>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of order maps")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<RawOrder>, A::Error> {
        // Nothing is reserved from the claimed length: each element needs
        // bytes that are in the message.
        let mut out = Vec::new();
        while let Some(raw) = seq.next_element_seed(OneOrder)? {
            if out.len() == self.max {
                return Err(de::Error::custom(format_args!(
                    "more than {} orders in one batch (limits.max_batch_size)",
                    self.max
                )));
            }
            out.push(raw);
        }
        Ok(out)
    }
}

struct OneOrder;

impl<'de> DeserializeSeed<'de> for OneOrder {
    type Value = RawOrder;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RawOrder, D::Error> {
        let mut raw = RawOrder::default();
        raw.fill(d)?;
        Ok(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(id: &str, quantity: u64) -> OrderMessage {
        OrderMessage {
            v: 1,
            id: id.into(),
            sku: "MUG".into(),
            quantity,
            warehouse: Some("ams".into()),
            region: None,
            priority: None,
        }
    }

    #[test]
    fn each_order_of_a_batch_is_validated_on_its_own() {
        let bytes = encode_orders(&[order("a", 1), order("b", 0), order("c", 2)]);
        let got = decode_orders(&bytes, &Limits::default()).unwrap();
        assert_eq!(got.len(), 3);
        assert!(got[0].is_ok() && got[2].is_ok());
        let e = got[1].as_ref().unwrap_err();
        assert_eq!(e.id(), Some("b"));
        assert_eq!(e.problems()[0].field, "quantity");
    }

    #[test]
    fn a_batch_that_is_not_an_array_of_maps_is_refused_whole() {
        let limits = Limits::default();
        for bytes in [
            order("a", 1).encode(),
            vec![0x92, 0x01, 0x02],
            vec![0xdd, 0xff, 0xff, 0xff, 0xff],
        ] {
            let e = decode_orders(&bytes, &limits).unwrap_err();
            assert_eq!(e.label(), "malformed", "{bytes:?}");
        }
        let many: Vec<OrderMessage> = (0..=limits.max_batch_orders)
            .map(|i| order(&format!("o{i}"), 1))
            .collect();
        let e = decode_orders(&encode_orders(&many), &limits).unwrap_err();
        assert!(e.to_string().contains("more than"), "{e}");
    }
}
