//! A cart as a producer sends it: the version-2 envelope as MessagePack
//! with named fields, what [`super::decode_cart`] reads.

use serde::Serialize;

use super::{ValidatedCart, CART_VERSION};
use crate::domain::Fill;

/// The version-2 envelope, field for field (see the table in `cart.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CartMessage {
    /// Envelope version: [`CART_VERSION`].
    pub v: u64,
    pub id: String,
    pub lines: Vec<LineMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fill: Option<&'static str>,
    /// Whole seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold: Option<u64>,
}

/// One line of a [`CartMessage`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineMessage {
    pub sku: String,
    pub quantity: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warehouse: Option<String>,
}

impl CartMessage {
    /// The message as MessagePack with named fields. Nothing is checked:
    /// tests and tools use this to send invalid carts on purpose.
    pub fn encode(&self) -> Vec<u8> {
        // Strings and integers into a Vec: rmp-serde cannot fail here.
        rmp_serde::to_vec_named(self).expect("a CartMessage always encodes")
    }
}

impl From<&ValidatedCart> for CartMessage {
    fn from(c: &ValidatedCart) -> Self {
        Self {
            v: CART_VERSION,
            id: c.id.to_string(),
            lines: c
                .lines
                .iter()
                .map(|l| LineMessage {
                    sku: l.sku.to_string(),
                    quantity: l.quantity.get().into(),
                    warehouse: l.warehouse.as_ref().map(ToString::to_string),
                })
                .collect(),
            region: c.region.as_ref().map(ToString::to_string),
            fill: (c.fill == Fill::Partial).then_some("partial"),
            // A hold of a fraction of a second is sent as the next whole one.
            hold: c.hold.map(|h| h.as_millis().div_ceil(1000) as u64),
        }
    }
}

/// The cart as MessagePack with named fields: publish it on any
/// `orders.<warehouse>.<sku>` subject (README "Carts").
pub fn encode_cart(cart: &ValidatedCart) -> Vec<u8> {
    CartMessage::from(cart).encode()
}
