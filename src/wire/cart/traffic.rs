//! allot's own cart traffic between a cart's coordinator and the
//! partitions of its lines, as intake messages: what each carries, how
//! each is encoded and decoded, and the subject of those that belong to
//! no partition.

use serde::{Deserialize, Serialize};

use super::{cart_config, KIND_ANSWER, KIND_CART, KIND_CART_COMMAND, KIND_LINE, KIND_SETTLE};
use crate::domain::{Cart, LineId, Order, OrderId, PartitionKey, RejectReason, Sku, WarehouseId};
use crate::saga::LineAnswer;
use crate::wire::intake::{decode_forward, Encoded, Intake, IntakeDecoder, MAX_FORWARD_DEPTH};
use crate::wire::msgpack::read_capped;
use crate::wire::Limits;

/// A partition's answer to a line's reserve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerMessage {
    pub line: OrderId,
    pub reserved: bool,
    /// The partition that reserved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<PartitionKey>,
    /// Why it was not reserved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RejectReason>,
}

/// A coordinator's settlement of a line reserved in a partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettleMessage {
    pub line: OrderId,
    /// Sell it; otherwise its units go back to stock.
    pub commit: bool,
    #[serde(default)]
    pub reason: String,
}

/// What a cart command asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CartOp {
    /// Payment captured: a held cart goes to its workers.
    Confirm,
    /// Release every line.
    Cancel,
}

/// A confirm or cancel of a cart, for its coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartCommandMessage {
    pub cart: OrderId,
    pub op: CartOp,
}

/// Every `Allot-Kind` of cart traffic.
pub const CART_KINDS: [&str; 5] = [
    KIND_CART,
    KIND_LINE,
    KIND_ANSWER,
    KIND_SETTLE,
    KIND_CART_COMMAND,
];

/// Decodes cart traffic of `kind` (one of [`CART_KINDS`]); on error, what
/// it was and why it is unreadable.
pub(in crate::wire) fn decode_item(
    kind: &str,
    payload: &[u8],
    limits: &Limits,
) -> Result<Intake, (&'static str, String)> {
    Ok(match Some(kind) {
        Some(KIND_LINE) => match decode_forward(payload, limits) {
            Ok(order) if LineId::try_from(order.id.clone()).is_ok() => Intake::Line(Order {
                line: true,
                ..order
            }),
            Ok(order) => return Err(("cart line", format!("{} is not <cart>#<index>", order.id))),
            Err(e) => return Err(("cart line", e.to_string())),
        },
        Some(KIND_CART) => match read_capped::<Cart>(payload, MAX_FORWARD_DEPTH) {
            Ok(cart) => match recheck(cart, limits) {
                Ok(cart) => Intake::Cart(cart),
                Err(e) => return Err(("cart", e.to_string())),
            },
            Err(e) => return Err(("cart", e.to_string())),
        },
        Some(KIND_ANSWER) => match read_capped::<AnswerMessage>(payload, MAX_FORWARD_DEPTH) {
            Ok(m) => match LineId::try_from(m.line) {
                Ok(line) => Intake::Answer {
                    line,
                    answer: match (m.reserved, m.at, m.reason) {
                        (true, Some(at), _) => LineAnswer::ReservedAt(at),
                        (true, None, _) => LineAnswer::Reserved,
                        (false, _, reason) => LineAnswer::Rejected(
                            reason.unwrap_or(crate::domain::RejectReason::OutOfStock),
                        ),
                    },
                },
                Err(e) => return Err(("line answer", e.to_string())),
            },
            Err(e) => return Err(("line answer", e.to_string())),
        },
        Some(KIND_SETTLE) => match read_capped::<SettleMessage>(payload, MAX_FORWARD_DEPTH) {
            Ok(m) => Intake::Settle {
                line: m.line,
                commit: m.commit,
                reason: m.reason,
            },
            Err(e) => return Err(("line settlement", e.to_string())),
        },
        Some(KIND_CART_COMMAND) => {
            match read_capped::<CartCommandMessage>(payload, MAX_FORWARD_DEPTH) {
                Ok(m) => Intake::CartCommand {
                    cart: m.cart,
                    op: m.op,
                },
                Err(e) => return Err(("cart command", e.to_string())),
            }
        }
        _ => return Err(("cart traffic", format!("{kind:?} is not a cart kind"))),
    })
}

/// A cart as filed, checked against this build's limits again (anyone
/// allowed on `orders.>` could send one).
fn recheck(cart: Cart, limits: &Limits) -> Result<Cart, String> {
    let (id, lines, fill, hold) = (
        cart.id().clone(),
        cart.lines().to_vec(),
        cart.fill(),
        cart.hold(),
    );
    Cart::new(id, lines, fill, hold, &cart_config(limits)).map_err(|errors| {
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// An item of allot's own cart traffic as its intake message, or `None`
/// for any other item.
pub fn encode_cart_item(item: &Intake) -> Option<Encoded> {
    let (kind, body) = match item {
        Intake::Cart(cart) => (KIND_CART, rmp_serde::to_vec_named(cart)),
        Intake::Line(order) => (KIND_LINE, rmp_serde::to_vec_named(order)),
        Intake::Answer { line, answer } => {
            let (reserved, at, reason) = match answer {
                LineAnswer::Reserved => (true, None, None),
                LineAnswer::ReservedAt(p) => (true, Some(p.clone()), None),
                LineAnswer::Rejected(r) => (false, None, Some(r.clone())),
            };
            let message = AnswerMessage {
                line: line.as_order_id().clone(),
                reserved,
                at,
                reason,
            };
            (KIND_ANSWER, rmp_serde::to_vec_named(&message))
        }
        Intake::Settle {
            line,
            commit,
            reason,
        } => {
            let message = SettleMessage {
                line: line.clone(),
                commit: *commit,
                reason: reason.clone(),
            };
            (KIND_SETTLE, rmp_serde::to_vec_named(&message))
        }
        Intake::CartCommand { cart, op } => {
            let message = CartCommandMessage {
                cart: cart.clone(),
                op: *op,
            };
            (KIND_CART_COMMAND, rmp_serde::to_vec_named(&message))
        }
        _ => return None,
    };
    Some(Encoded {
        kind: Some(kind),
        body: body.expect("validated values always encode"),
    })
}

/// The partition whose subject carries cart traffic that belongs to no
/// partition (answers of rejected lines, cart commands):
/// `orders.<shard>._carts._carts`.
pub fn placeholder_partition() -> PartitionKey {
    PartitionKey::new(
        WarehouseId::new("_carts").expect("a valid name"),
        Sku::new("_carts").expect("a valid name"),
    )
}

impl IntakeDecoder<'_> {
    /// A producer's cart (`"v": 2`) published on any order subject:
    /// validated and routed here; the shard that takes it hands it on to
    /// the cart's coordinator. Invalid, it is rejected under its id with
    /// every bad field (`lines[2].quantity`), like an order.
    pub(crate) fn producer_cart(
        &self,
        subject: Option<PartitionKey>,
        payload: &[u8],
        seq: u64,
    ) -> Intake {
        let cart = match super::decode_cart(payload, self.limits) {
            Ok(cart) => cart,
            Err(e) => {
                return Intake::Invalid {
                    id: e.rejection_id(seq),
                    errors: e.problems(),
                    partition: subject,
                }
            }
        };
        let id = cart.id.clone();
        match cart.route(self.router, self.limits) {
            Ok((cart, _)) => Intake::Cart(cart),
            Err(errors) => Intake::Invalid {
                id,
                errors,
                partition: subject,
            },
        }
    }
}
