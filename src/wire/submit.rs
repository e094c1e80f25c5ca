//! The reply to a request on `allot.submit` (MessagePack, named fields):
//! `{accepted, id, warehouse, sku, shard, duplicate, errors}`, and
//! `kind: "cart"` for a cart (whose lines each have a warehouse and SKU).

use serde::{Deserialize, Serialize};

use crate::domain::FieldError;

/// The answer to a submit request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitReply {
    pub accepted: bool,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub warehouse: Option<String>,
    #[serde(default)]
    pub sku: Option<String>,
    #[serde(default)]
    pub shard: Option<u32>,
    /// The id was filed before (the stream's duplicate window dropped this
    /// copy): the order already exists and this one changed nothing.
    #[serde(default)]
    pub duplicate: bool,
    /// Why it was not accepted: one entry per bad field (`broker` when the
    /// broker did not take it: retry with the same id).
    #[serde(default)]
    pub errors: Vec<FieldError>,
    /// `cart` for an accepted cart; absent for an order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// Nesting of a reply: its map, the errors list and an error take three.
const MAX_REPLY_DEPTH: usize = 8;

impl SubmitReply {
    /// Reads a reply, nesting capped; the error says why it is unreadable.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        super::msgpack::read_capped(bytes, MAX_REPLY_DEPTH)
            .map_err(|e| super::msgpack::why(&e, MAX_REPLY_DEPTH))
    }

    /// A refusal naming every bad field.
    pub fn refused(id: Option<String>, errors: Vec<FieldError>) -> Self {
        Self {
            accepted: false,
            id,
            warehouse: None,
            sku: None,
            shard: None,
            duplicate: false,
            errors,
            kind: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fuzz::{fuzzed, nested, with_unknown_field};
    use proptest::prelude::*;

    fn refused() -> Vec<u8> {
        let errors = vec![FieldError::new("quantity", "0, must be 1..=1000")];
        rmp_serde::to_vec_named(&SubmitReply::refused(Some("o-1".into()), errors)).unwrap()
    }

    #[test]
    fn a_reply_round_trips_and_one_nested_past_the_cap_is_refused() {
        let reply = SubmitReply::decode(&refused()).unwrap();
        assert_eq!(reply.errors[0].field, "quantity");
        let deep = with_unknown_field(&refused(), &nested(1_000_000));
        assert_eq!(
            SubmitReply::decode(&deep),
            Err(format!("nested more than {MAX_REPLY_DEPTH} levels deep"))
        );
    }

    proptest! {
        #[test]
        fn replies_never_panic_and_are_refused_with_a_reason(bytes in fuzzed(vec![refused()])) {
            if let Err(why) = SubmitReply::decode(&bytes) {
                prop_assert!(!why.trim().is_empty());
            }
        }
    }
}
