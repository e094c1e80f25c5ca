//! Intake messages: what a message on the ORDERS stream asks of its shard,
//! encoded and decoded here and nowhere else. Each is filed under
//! `orders.<shard>.<warehouse>.<sku>` (producers publish to
//! `orders.<warehouse>.<sku>` and the stream's subject transform adds the
//! shard); the header [`KIND_HEADER`] tells allot's own messages apart:
//!
//! | `Allot-Kind` | body | from |
//! |---|---|---|
//! | (none) | an order message ([`super::OrderMessage`], v1) | producers, ingress |
//! | `command` | MessagePack of a domain [`Command`] | `allot stock`, the HTTP API, ingress |
//! | `forward` | MessagePack of a routed domain [`Order`] | a shard rerouting an order |
//!
//! Decoding never fails: a message that is not valid becomes
//! [`Intake::Invalid`] with every bad field, which the shard records as a
//! rejection, so nothing is dropped and nothing blocks the queue.

use serde::Deserialize as _;

use super::{decode_command, decode_order, Limits, WireError, RESERVED_ID_PREFIX};
use crate::config::Router;
use crate::domain::{Command, FieldError, Order, OrderId, PartitionKey, Sku, WarehouseId};

/// Header telling allot's own intake messages apart from producers' orders.
pub const KIND_HEADER: &str = "Allot-Kind";
/// A command: MessagePack of a domain [`Command`].
pub const KIND_COMMAND: &str = "command";
/// A rerouted order handed on by a shard: MessagePack of a domain [`Order`].
pub const KIND_FORWARD: &str = "forward";

/// Deepest nesting of a forwarded order (its map, the partition's map and
/// the fallbacks' list take three levels).
const MAX_FORWARD_DEPTH: usize = 8;

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
    /// What the message stored at stream sequence `seq` under `subject`,
    /// with `Allot-Kind` `kind`, asks of its shard.
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
                Ok(command) => Intake::Command(command),
                Err(e) => unreadable("command", &e),
            },
            Some(KIND_FORWARD) => match decode_forward(payload, self.limits) {
                Ok(order) => Intake::Forwarded(order),
                Err(e) => unreadable("forwarded order", &e),
            },
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
    /// subject names, and given the fallbacks of its region.
    fn order(&self, subject: Result<PartitionKey, FieldError>, payload: &[u8], seq: u64) -> Intake {
        let order = match decode_order(payload, self.limits) {
            Ok(order) => order,
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
        // A body that names another warehouse or SKU than its subject is
        // refused, naming each field that differs.
        let mut errors = Vec::new();
        if order
            .warehouse
            .as_ref()
            .is_some_and(|w| *w != partition.warehouse)
        {
            errors.push(FieldError::new(
                "warehouse",
                format!(
                    "the order names warehouse {} but was published for {}",
                    order.warehouse.as_ref().expect("checked"),
                    partition.warehouse
                ),
            ));
        }
        if order.sku != partition.sku {
            errors.push(FieldError::new(
                "sku",
                format!(
                    "the order names sku {} but was published for {}",
                    order.sku, partition.sku
                ),
            ));
        }
        if !errors.is_empty() {
            return Intake::Invalid {
                id: order.id,
                errors,
                partition: Some(partition),
            };
        }
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
pub fn reserved_id(seq: u64) -> OrderId {
    OrderId::new(&format!("{RESERVED_ID_PREFIX}{seq}")).expect("a reserved id is valid")
}

/// A forwarded order, nesting capped, quantity within the limits (a
/// forward is allot's own message, but anyone allowed on `orders.>` could
/// send one).
fn decode_forward(bytes: &[u8], limits: &Limits) -> Result<Order, WireError> {
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    de.set_max_depth(MAX_FORWARD_DEPTH);
    let order = Order::deserialize(&mut de).map_err(|e| WireError::Malformed {
        id: None,
        field: "payload",
        why: super::order::msgpack_why(&e),
    })?;
    if order.quantity.get() > limits.max_quantity {
        return Err(WireError::Invalid {
            id: Some(order.id.to_string()),
            problems: vec![FieldError::new(
                "quantity",
                format!(
                    "{} is out of range, must be 1..={}",
                    order.quantity.get(),
                    limits.max_quantity
                ),
            )],
        });
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::wire::OrderMessage;

    fn decode(subject: &str, kind: Option<&str>, payload: &[u8]) -> Intake {
        let config = Config::default();
        let router = config.router();
        let limits = Limits::default();
        IntakeDecoder {
            router: &router,
            limits: &limits,
        }
        .decode(subject, kind, payload, 7)
    }

    fn order(warehouse: Option<&str>, sku: &str) -> Vec<u8> {
        OrderMessage {
            v: 1,
            id: "o-1".into(),
            sku: sku.into(),
            quantity: 1,
            warehouse: warehouse.map(str::to_owned),
            region: None,
            priority: None,
        }
        .encode()
    }

    fn fields(intake: &Intake) -> Vec<&str> {
        match intake {
            Intake::Invalid { errors, .. } => errors.iter().map(|e| e.field.as_str()).collect(),
            other => panic!("not invalid: {other:?}"),
        }
    }

    #[test]
    fn a_body_that_differs_from_its_subject_names_the_field_that_differs() {
        let wrong_warehouse = decode("orders.0.ams.MUG", None, &order(Some("fra"), "MUG"));
        assert_eq!(fields(&wrong_warehouse), ["warehouse"]);
        let wrong_sku = decode("orders.0.ams.MUG", None, &order(None, "CUP"));
        assert_eq!(fields(&wrong_sku), ["sku"]);
        let both = decode("orders.0.ams.MUG", None, &order(Some("fra"), "CUP"));
        assert_eq!(fields(&both), ["warehouse", "sku"]);
        let Intake::Invalid { partition, id, .. } = both else {
            unreachable!()
        };
        assert_eq!(id.as_str(), "o-1");
        assert_eq!(partition.unwrap().to_string(), "ams/MUG");
    }

    #[test]
    fn an_order_matching_its_subject_is_routed() {
        let ok = decode("orders.0.ams.MUG", None, &order(Some("ams"), "MUG"));
        assert!(matches!(ok, Intake::Order(o) if o.partition.to_string() == "ams/MUG"));
    }

    #[test]
    fn unknown_kinds_and_unreadable_bodies_are_rejections_under_a_reserved_id() {
        let unknown = decode("orders.0.ams.MUG", Some("cart"), b"\x80");
        assert_eq!(fields(&unknown), [KIND_HEADER]);
        let bad = decode("orders.0.ams.MUG", Some(KIND_FORWARD), b"\xc1");
        let Intake::Invalid { id, partition, .. } = bad else {
            panic!("not invalid")
        };
        assert_eq!(id.as_str(), "invalid:7");
        assert!(partition.is_some());
    }

    #[test]
    fn a_hostile_forward_nested_deep_is_refused_without_recursing() {
        let nested = vec![0x91; 100_000];
        assert!(matches!(
            decode("orders.0.ams.MUG", Some(KIND_FORWARD), &nested),
            Intake::Invalid { .. }
        ));
    }
}
