//! Intake messages: what a message on the ORDERS stream asks of its shard,
//! encoded and decoded here and nowhere else. Each is filed under
//! `orders.<shard>.<warehouse>.<sku>` (producers publish to
//! `orders.<warehouse>.<sku>` and the stream's subject transform adds the
//! shard); the header [`KIND_HEADER`] tells allot's own messages apart:
//!
//! | `Allot-Kind` | body | from |
//! |---|---|---|
//! | (none) | an order message ([`super::OrderMessage`], v1) | producers |
//! | `batch` | a MessagePack array of v1 order messages, each naming its warehouse or region ([`super::decode_orders`]) | producers |
//! | `routed` | a MessagePack array of routed domain [`Order`]s, all of this shard | the ingress; a shard handing on what it got for another shard |
//! | `command` | MessagePack of a domain [`Command`] | `allot stock`, the HTTP API, ingress |
//! | `forward` | MessagePack of a routed domain [`Order`] | a shard rerouting an order |
//! | `cart` | MessagePack of a routed domain [`Cart`] | the ingress, for the cart's coordinator |
//! | `line` | MessagePack of a domain [`Order`], a cart's line | a cart's coordinator |
//! | `answer` | an [`AnswerMessage`] | a line's partition, for its cart's coordinator |
//! | `settle` | a [`SettleMessage`] | a cart's coordinator, for a line's partition |
//! | `cart-command` | a [`CartCommandMessage`] | the ingress (confirm, cancel) |
//! | `cart-mail` | a MessagePack array of `[kind, body]` pairs of the five kinds above ([`super::cart::encode_cart_mail`]) | a shard sending several of them to one shard |
//!
//! Decoding never fails: a message that is not valid becomes
//! [`Intake::Invalid`] with every bad field, which the shard records as a
//! rejection, so nothing is dropped and nothing blocks the queue.

use super::cart::{decode_cart_mail, CART_KINDS, KIND_CART_MAIL};
pub use super::cart::{encode_cart_item, CartOp};
use super::order::decode_order_for;
use super::{decode_command, decode_orders, Limits, ValidatedOrder, WireError, RESERVED_ID_PREFIX};
use crate::config::Router;
use crate::domain::{
    Cart, Command, FieldError, LineId, Order, OrderId, PartitionKey, Sku, WarehouseId,
};
use crate::saga::LineAnswer;

/// Header telling allot's own intake messages apart from producers' orders.
pub const KIND_HEADER: &str = "Allot-Kind";
/// A command: MessagePack of a domain [`Command`].
pub const KIND_COMMAND: &str = "command";
/// A rerouted order handed on by a shard: MessagePack of a domain [`Order`].
pub const KIND_FORWARD: &str = "forward";
/// A producer's orders, validated and routed already: MessagePack of a
/// list of domain [`Order`]s (the ingress files this, so the intake does
/// not decode and route them again).
pub const KIND_ROUTED: &str = "routed";
/// Many producer orders in one message (see [`super::decode_orders`]).
pub const KIND_BATCH: &str = "batch";

/// Deepest nesting of a forwarded order (its map, the partition's map and
/// the fallbacks' list take three levels).
pub(super) const MAX_FORWARD_DEPTH: usize = 8;

/// What an intake message holds, once decoded and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intake {
    /// An order for its partition's queue.
    Order(Order),
    /// A rerouted order handed on by another partition: allot's own, so it
    /// needs no id claim (its first partition claimed the id).
    Forwarded(Order),
    /// A command (stock change, cancel, a batch of them): they travel the
    /// same path as orders, so a shard's log alone rebuilds its partitions.
    Command(Command),
    /// A message that failed validation: recorded as a rejection with
    /// every bad field, never dropped. `id` is the order's id, or
    /// `invalid:<stream seq>` if it had none usable; `partition` is the one
    /// its subject named, if readable.
    Invalid {
        id: OrderId,
        errors: Vec<FieldError>,
        partition: Option<PartitionKey>,
    },
    /// A cart, for its coordinator (this shard); its lines are routed.
    Cart(Cart),
    /// A cart's line, for its partition (`line` is set).
    Line(Order),
    /// A partition's answer for a cart's line, for its coordinator.
    Answer { line: LineId, answer: LineAnswer },
    /// A coordinator's commit or release of a line reserved here.
    Settle {
        line: OrderId,
        commit: bool,
        reason: String,
    },
    /// A confirm or cancel of a cart this shard coordinates.
    CartCommand { cart: OrderId, op: CartOp },
}

/// An encoded intake message: its `Allot-Kind` (none for an order) and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub kind: Option<&'static str>,
    pub body: Vec<u8>,
}

/// A command as its shard's intake takes it.
pub fn encode_command(command: &Command) -> Encoded {
    Encoded {
        kind: Some(KIND_COMMAND),
        // Validated values into a Vec: rmp-serde cannot fail here.
        body: rmp_serde::to_vec_named(command).expect("a command always encodes"),
    }
}

/// A rerouted order as the next partition's shard takes it.
pub fn encode_forward(order: &Order) -> Encoded {
    Encoded {
        kind: Some(KIND_FORWARD),
        body: encode_forward_bytes(order),
    }
}

/// Routed producer orders, all for one shard, as its intake takes them.
pub fn encode_routed(orders: &[Order]) -> Encoded {
    Encoded {
        kind: Some(KIND_ROUTED),
        body: rmp_serde::to_vec_named(orders).expect("orders always encode"),
    }
}

/// The body of [`encode_forward`].
pub fn encode_forward_bytes(order: &Order) -> Vec<u8> {
    rmp_serde::to_vec_named(order).expect("an order always encodes")
}

/// The partition `orders.<shard>.<warehouse>.<sku>` names, or why not.
pub fn subject_partition(subject: &str) -> Result<PartitionKey, FieldError> {
    let mut tokens = subject.split('.');
    let shape = (
        tokens.next(),
        tokens.next(),
        tokens.next(),
        tokens.next(),
        tokens.next(),
    );
    let (Some("orders"), Some(_), Some(w), Some(s), None) = shape else {
        return Err(FieldError::new(
            "subject",
            format!("{subject} is not orders.<shard>.<warehouse>.<sku>"),
        ));
    };
    match (WarehouseId::new(w), Sku::new(s)) {
        (Ok(w), Ok(s)) => Ok(PartitionKey::new(w, s)),
        _ => Err(FieldError::new(
            "subject",
            format!("{subject} does not name a valid warehouse and SKU"),
        )),
    }
}

/// Decodes intake messages with one config's routing rules and limits.
pub struct IntakeDecoder<'a> {
    pub router: &'a Router,
    pub limits: &'a Limits,
}

impl IntakeDecoder<'_> {
    /// Everything the message stored at stream sequence `seq` under
    /// `subject`, with `Allot-Kind` `kind`, asks of its shard: one item,
    /// or one per order of a batch.
    pub fn decode_all(
        &self,
        subject: &str,
        kind: Option<&str>,
        payload: &[u8],
        seq: u64,
    ) -> Vec<Intake> {
        let whole = |errors: Vec<FieldError>| Intake::Invalid {
            id: reserved_id(seq),
            errors,
            partition: subject_partition(subject).ok(),
        };
        let items = match kind {
            Some(KIND_BATCH) => match decode_orders(payload, self.limits) {
                Ok(orders) => orders
                    .into_iter()
                    .enumerate()
                    .map(|(i, order)| self.routed(order, seq, i))
                    .collect(),
                Err(e) => vec![whole(e.problems())],
            },
            Some(KIND_ROUTED) => match decode_routed(payload, self.limits) {
                Ok(orders) => orders.into_iter().map(Intake::Order).collect(),
                Err(e) => vec![whole(e.problems())],
            },
            Some(KIND_CART_MAIL) => decode_cart_mail(payload, seq, self.limits),
            _ => vec![self.decode(subject, kind, payload, seq)],
        };
        // A batch (or cart mail) of none is bad input, not nothing to do.
        if items.is_empty() {
            return vec![whole(vec![FieldError::new("payload", "holds no orders")])];
        }
        items
    }

    /// A batch's order number `i`: routed by its own warehouse or region.
    fn routed(&self, order: Result<ValidatedOrder, WireError>, seq: u64, i: usize) -> Intake {
        match order {
            Ok(order) => {
                let id = order.id.clone();
                match order.route(self.router) {
                    Ok((order, _)) => Intake::Order(order),
                    Err(e) => Intake::Invalid {
                        id,
                        errors: vec![FieldError::new("region", e.to_string())],
                        partition: None,
                    },
                }
            }
            Err(e) => Intake::Invalid {
                id: e.order_id().unwrap_or_else(|| reserved_item_id(seq, i)),
                errors: e.problems(),
                partition: None,
            },
        }
    }

    /// What a one-item message (an order, a command, a forward) asks.
    pub fn decode(&self, subject: &str, kind: Option<&str>, payload: &[u8], seq: u64) -> Intake {
        let partition = subject_partition(subject);
        let unreadable = |what: &str, e: &dyn std::fmt::Display| Intake::Invalid {
            id: reserved_id(seq),
            errors: vec![FieldError::new(
                "payload",
                format!("unreadable {what}: {e}"),
            )],
            partition: partition.clone().ok(),
        };
        match kind {
            None => self.order(partition, payload, seq),
            Some(KIND_COMMAND) => match decode_command(payload) {
                Ok(command) => Intake::Command(keyed(command, seq)),
                Err(e) => unreadable("command", &e),
            },
            Some(KIND_FORWARD) => match decode_forward(payload, self.limits) {
                Ok(order) => Intake::Forwarded(order),
                Err(e) => unreadable("forwarded order", &e),
            },
            Some(kind) if CART_KINDS.contains(&kind) => {
                match super::cart::decode_item(kind, payload, self.limits) {
                    Ok(item) => item,
                    Err((what, why)) => unreadable(what, &why),
                }
            }
            Some(other) => Intake::Invalid {
                id: reserved_id(seq),
                errors: vec![FieldError::new(
                    KIND_HEADER,
                    format!(
                        "{other:?} is not a kind allot files; producers send orders without this header"
                    ),
                )],
                partition: partition.ok(),
            },
        }
    }

    /// A producer's order: validated, checked against the partition its
    /// subject names (a body `warehouse` or `sku` naming another is one
    /// more bad field, reported with the rest), and given the fallbacks of
    /// its region.
    fn order(&self, subject: Result<PartitionKey, FieldError>, payload: &[u8], seq: u64) -> Intake {
        let order = match decode_order_for(payload, self.limits, subject.as_ref().ok()) {
            Ok(order) => order,
            Err(_)
                if super::cart::envelope_version(payload, false)
                    == Some(super::cart::CART_VERSION) =>
            {
                return self.producer_cart(subject.ok(), payload, seq)
            }
            Err(e) => {
                return Intake::Invalid {
                    id: e.rejection_id(seq),
                    errors: e.problems(),
                    partition: subject.ok(),
                }
            }
        };
        let partition = match subject {
            Ok(p) => p,
            Err(e) => {
                return Intake::Invalid {
                    id: order.id,
                    errors: vec![e],
                    partition: None,
                }
            }
        };
        let fallbacks = order
            .region
            .as_ref()
            .and_then(|_| {
                self.router
                    .route(
                        &partition.sku,
                        Some(&partition.warehouse),
                        order.region.as_ref(),
                    )
                    .ok()
            })
            .map(|r| r.fallbacks)
            .unwrap_or_default();
        Intake::Order(Order {
            line: false,
            id: order.id,
            partition,
            quantity: order.quantity,
            region: order.region,
            priority: order.priority,
            fallbacks,
        })
    }
}

/// `invalid:<seq>`: the id a rejection is recorded under when the message
/// had no usable id of its own.
/// A command as the shard applies it: filed without a key, it is keyed
/// by its ORDERS sequence (`invalid:<seq>`, a reserved id no key filed
/// through the ingress may take), so a redelivery of that message (allot
/// stopped after deciding it and before acking it) is not applied again.
fn keyed(command: Command, seq: u64) -> Command {
    match command {
        keyed @ Command::Keyed { .. } => keyed,
        command => Command::Keyed {
            id: reserved_id(seq),
            command: Box::new(command),
        },
    }
}

pub fn reserved_id(seq: u64) -> OrderId {
    OrderId::new(&format!("{RESERVED_ID_PREFIX}{seq}")).expect("a reserved id is valid")
}

/// `invalid:<seq>.<i>`: the id order `i` of the batch at `seq` is
/// rejected under when it had no usable id.
pub fn reserved_item_id(seq: u64, i: usize) -> OrderId {
    OrderId::new(&format!("{RESERVED_ID_PREFIX}{seq}.{i}")).expect("a reserved id is valid")
}

mod own;
#[cfg(test)]
mod tests;

pub(crate) use own::decode_forward;
use own::decode_routed;
