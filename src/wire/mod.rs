//! The wire format: orders as producers send them and decisions as
//! subscribers receive them, MessagePack with named fields (JSON for orders
//! over HTTP), in a versioned envelope (`v`). The schema is documented in
//! the README ("Wire format"); [`OrderMessage`] and [`DecisionMessage`] are
//! its Rust side.
//!
//! Producers are untrusted. Decoding an order is two steps, and neither
//! panics nor drops anything silently:
//!
//! 1. bytes -> raw fields ([`decode_order`], [`decode_order_json`]): the
//!    size is checked against [`Limits::max_payload_bytes`] before a byte is
//!    parsed; each known field is read as whatever type was sent; unknown
//!    fields are skipped. A payload that cannot be read at all gives
//!    [`WireError::Malformed`], naming the field being read when it broke.
//! 2. raw fields -> domain values through the domain's constructors
//!    ([`OrderId::new`](crate::domain::OrderId::new),
//!    [`Quantity::new`](crate::domain::Quantity::new) with the configured
//!    maximum, ...). Every bad field is collected into
//!    [`WireError::Invalid`], each as an [`Invalid`] `{ field, why }`.
//!
//! Either way the error keeps the order id if one could be read, and
//! [`WireError::reject_reason`] turns it into the
//! [`RejectReason::Invalid`](crate::domain::RejectReason::Invalid) the
//! scheduler records. When there is no usable id, the caller names the
//! rejection `invalid:<stream-seq>` ([`WireError::rejection_id`]); producer
//! ids may not start with `invalid:`, so those never collide.
//!
//! Routing is not done here: a [`ValidatedOrder`] goes through the config's
//! [`Router`](crate::config::Router) ([`ValidatedOrder::route`]) to become a
//! domain [`Order`](crate::domain::Order).

mod batch;
pub mod cart;
mod command;
mod decision;
mod error;
#[cfg(test)]
pub mod fuzz;
pub mod intake;
pub mod log;
pub mod msgpack;
mod order;
mod raw;
pub mod snapshot;
mod submit;

#[cfg(test)]
mod tests;

pub use crate::domain::FieldError;
pub use batch::{decode_orders, encode_orders, MAX_BATCH_BYTES};
pub use command::{decode_command, MAX_COMMAND_DEPTH};
pub use decision::{Decision, DecisionMessage, MAX_DECISION_BYTES};
pub use error::WireError;
pub use intake::{
    encode_command, encode_forward, encode_forward_bytes, encode_routed, Encoded, Intake,
    IntakeDecoder, KIND_BATCH, KIND_COMMAND, KIND_FORWARD, KIND_HEADER, KIND_ROUTED,
};
pub use order::{
    decode_order, decode_order_json, encode_order, OrderMessage, ValidatedOrder, MAX_DEPTH,
};
pub use submit::SubmitReply;

use crate::config::Config;
use crate::domain::PartitionKey;

/// The envelope version this build reads and writes.
pub const VERSION: u32 = 1;

/// Ids starting with this are reserved for rejections of messages whose own
/// id is missing or unusable (see [`WireError::rejection_id`]).
pub const RESERVED_ID_PREFIX: &str = "invalid:";

/// Where producers send an order for ingress to validate and route, as a
/// NATS request; the reply is a [`SubmitReply`].
pub const SUBMIT_SUBJECT: &str = "allot.submit";

/// `orders.<warehouse>.<sku>`: where routed orders go, from ingress or from
/// trusted producers that route themselves.
pub fn order_subject(p: &PartitionKey) -> String {
    format!("orders.{}.{}", p.warehouse, p.sku)
}

/// `decisions.<warehouse>.<sku>`: where a partition's decisions are
/// published for subscribers.
pub fn decision_subject(p: &PartitionKey) -> String {
    format!("decisions.{}.{}", p.warehouse, p.sku)
}

/// What a producer may send, from the config's `[limits]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest payload, in bytes; larger ones are refused unread.
    pub max_payload_bytes: usize,
    /// Largest quantity of one order.
    pub max_quantity: u32,
    /// Most orders in one batch message or request.
    pub max_batch_orders: usize,
    /// Most lines in one cart.
    pub max_cart_lines: usize,
    /// Longest hold a cart may ask for.
    pub max_hold: std::time::Duration,
}

impl Limits {
    /// The `[limits]` of `config`.
    pub fn from_config(config: &Config) -> Self {
        Self {
            max_payload_bytes: config.limits.max_payload_bytes,
            max_quantity: config.max_quantity(),
            max_batch_orders: config.limits.max_batch_size,
            max_cart_lines: config.limits.max_cart_lines,
            max_hold: config.limits.max_hold,
        }
    }
}

impl Default for Limits {
    /// The defaults of an empty config file.
    fn default() -> Self {
        Self::from_config(&Config::default())
    }
}
