//! allot's own intake messages, read defensively: anyone allowed on
//! `orders.>` could send one.

use serde::Deserialize;

use super::MAX_FORWARD_DEPTH;
use crate::domain::{FieldError, Order};
use crate::wire::{Limits, WireError};

/// Routed orders: nesting capped, at most a batch of them, each within the
/// limits (allot's own message, but anyone allowed on `orders.>` could
/// send one).
pub(super) fn decode_routed(bytes: &[u8], limits: &Limits) -> Result<Vec<Order>, WireError> {
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    de.set_max_depth(MAX_FORWARD_DEPTH + 1);
    let orders = Vec::<Order>::deserialize(&mut de).map_err(|e| WireError::Malformed {
        id: None,
        field: "payload",
        why: format!(
            "unreadable routed orders: {}",
            crate::wire::order::msgpack_why(&e)
        ),
    })?;
    if orders.len() > limits.max_batch_orders.max(1) {
        return Err(WireError::Malformed {
            id: None,
            field: "payload",
            why: format!("more than {} routed orders", limits.max_batch_orders),
        });
    }
    for order in &orders {
        check_quantity(order, limits)?;
    }
    Ok(orders)
}

fn check_quantity(order: &Order, limits: &Limits) -> Result<(), WireError> {
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
    Ok(())
}

/// A forwarded order, nesting capped, quantity within the limits (a
/// forward is allot's own message, but anyone allowed on `orders.>` could
/// send one).
pub(crate) fn decode_forward(bytes: &[u8], limits: &Limits) -> Result<Order, WireError> {
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    de.set_max_depth(MAX_FORWARD_DEPTH);
    let order = Order::deserialize(&mut de).map_err(|e| WireError::Malformed {
        id: None,
        field: "payload",
        why: crate::wire::order::msgpack_why(&e),
    })?;
    check_quantity(&order, limits)?;
    Ok(order)
}
