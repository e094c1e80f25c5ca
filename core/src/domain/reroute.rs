//! Reroutes: where an order goes when its partition runs out, the copy the
//! next partition receives, and how a shard recognises that copy (or a
//! later hop of it) when it comes back, so a hand-off is never taken for a
//! duplicate and a duplicate never for a hand-off.

use super::messages::Order;
use super::orders::{Live, Status};
use super::types::WarehouseId;

/// Whether `order` is what the runtime was told to forward for `live`.
pub(super) fn is_forwarded_copy(live: &Live, order: &Order) -> bool {
    live.status == Status::Forwarding
        && live
            .rerouted_to
            .as_ref()
            .is_some_and(|to| forwarded_order(&live.order, to) == *order)
}

/// A live order's forwarded copy or a later hop of it.
pub(super) fn is_forwarded_hop(live: &Live, order: &Order) -> bool {
    live.status == Status::Forwarding
        && live
            .rerouted_to
            .as_ref()
            .is_some_and(|to| is_hop_of(&forwarded_order(&live.order, to), order))
}

/// True if `order` is `copy` or `copy` rerouted on along its fallbacks, as
/// the rules reroute. The hops visit distinct warehouses, so a chain may
/// come back to a shard it passed (another of its warehouses) but never to
/// the partition that rerouted `copy`. A producer's message identical to a
/// hop cannot be told from it, and is taken as the hand-off: the order is
/// still decided once.
pub fn is_hop_of(copy: &Order, order: &Order) -> bool {
    let mut hop = copy.clone();
    loop {
        if hop == *order {
            return true;
        }
        match next_hop(&hop) {
            Some(to) => hop = forwarded_order(&hop, &to),
            None => return false,
        }
    }
}

/// The warehouse an order is rerouted to when its partition runs out.
pub(super) fn next_hop(order: &Order) -> Option<WarehouseId> {
    order
        .fallbacks
        .iter()
        .find(|w| **w != order.partition.warehouse)
        .cloned()
}

/// The order, as the next partition should receive it after a reroute.
pub fn forwarded_order(order: &Order, to: &WarehouseId) -> Order {
    let mut next = order.clone();
    next.fallbacks
        .retain(|w| w != to && *w != order.partition.warehouse);
    next.partition.warehouse = to.clone();
    next
}
