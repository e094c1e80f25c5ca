//! Log appends against the broker's message limit: however much one input
//! decides, every append a shard makes encodes under 1 MiB.

use super::*;
use crate::domain::{Command, Event};

/// Every append a shard makes fits in one broker message (nats-server's
/// 1 MiB default), however much one input decided: a queue of 30,000
/// orders rejected at sell-out, and one coordinator append of 3,000 carts
/// of 20 lines. Each went out as a single message of over 1 MiB before,
/// and the shard retried it forever. A coordinator append is split only
/// between carts.
#[test]
fn every_append_fits_in_one_broker_message() {
    use crate::domain::{Cart, CartConfig, CartEvent, CartLine, Fill, Order, Priority, Quantity};
    use crate::scheduler::ShardConfig;
    use allot_core::testkit::Harness;
    let mut h = Harness::new(ShardConfig::default());
    let now = h.now;
    let partition = |sku: &str| {
        crate::domain::PartitionKey::new(
            crate::domain::WarehouseId::new("warehouse-with-a-long-name").unwrap(),
            crate::domain::Sku::new(sku).unwrap(),
        )
    };
    let order = |id: String| Order {
        id: OrderId::new(&id).unwrap(),
        partition: partition("SKU-HOT-0000000000000000"),
        quantity: Quantity::ONE,
        region: None,
        priority: Priority(0),
        fallbacks: vec![],
        line: false,
    };
    h.command(Command::SetStock {
        partition: partition("SKU-HOT-0000000000000000"),
        on_hand: 1,
        expected_version: None,
    });
    h.place(order("first".into()));
    for i in 0..30_000 {
        h.place(order(format!("queued-order-with-a-long-id-{i:08}")));
    }
    h.fulfil_all();
    let carts: Vec<CartEvent> = (0..3_000)
        .flat_map(|n| {
            let lines = (0..20)
                .map(|l| CartLine {
                    partition: partition(&format!("SKU-{l:040}")),
                    quantity: Quantity::ONE,
                })
                .collect();
            let id = OrderId::new(&format!("cart-{n:08}")).unwrap();
            let cart = Cart::new(id.clone(), lines, Fill::All, None, &CartConfig::default());
            let cart = cart.unwrap();
            [
                CartEvent::Opened { cart, at: now },
                CartEvent::Rejected {
                    cart: id,
                    reason: crate::domain::CartReason::Cancelled,
                },
            ]
        })
        .collect();
    let before = h.batches().len();
    h.shard.handle_cart_events(carts, now);
    h.flush();
    let appends = h.batches();
    assert!(appends.len() - before > 1, "the carts were split");
    for (i, events) in appends.iter().enumerate() {
        let bytes = crate::wire::log::encode_batch(0, i as u64, events).len();
        assert!(
            bytes < 1024 * 1024,
            "append {i}: {} events in {bytes} bytes",
            events.len()
        );
        if i >= before {
            assert!(
                matches!(events.first(), Some(Event::Cart { event }) if matches!(**event, CartEvent::Opened { .. })),
                "append {i} starts inside a cart"
            );
        }
    }
    let rejected = appends
        .iter()
        .flatten()
        .filter(|e| matches!(e, Event::OrderRejected { .. }))
        .count();
    assert_eq!(rejected, 30_000);
}

/// One claims request of 10,000 ids (an owner shard answering the backlog
/// of batched intake another shard lined up) is recorded in appends that
/// each fit in one broker message; a repeated id in the request is granted
/// once. It went out as one `IdsClaimed` event of 1.17 MB before, and the
/// owner retried that append forever.
#[test]
fn a_large_claims_request_fits_in_broker_messages() {
    use crate::domain::{Claim, ClaimAnswer, PartitionKey, Sku, WarehouseId};
    use crate::scheduler::{ReplyId, ShardConfig};
    use allot_core::testkit::Harness;
    let mut h = Harness::new(ShardConfig::default());
    let by = |w: &str| {
        PartitionKey::new(
            WarehouseId::new(&format!("{w}-warehouse-with-a-long-name")).unwrap(),
            Sku::new("SKU-WITH-A-LONG-NAME-0000000000000000000000000000").unwrap(),
        )
    };
    let mut claims: Vec<Claim> = (0..10_000)
        .map(|i| Claim {
            id: OrderId::new(&format!("order-with-a-long-id-from-a-producer-{i:020}")).unwrap(),
            by: by("ams"),
        })
        .collect();
    claims.push(Claim {
        id: claims[7].id.clone(),
        by: by("fra"),
    });
    let before = h.batches().len();
    h.shard.handle_claims(&claims, ReplyId(1), h.now);
    h.flush();
    let appends = &h.batches()[before..];
    for events in appends {
        let bytes = crate::wire::log::encode_batch(0, 1, events).len();
        assert!(bytes < 1024 * 1024, "append of {bytes} bytes");
    }
    assert!(appends.len() > 1, "the claims went out in several appends");
    let (_, answers) = h.replies.last().expect("answered once durable");
    assert_eq!(answers.len(), 10_001);
    assert!(answers[..10_000].iter().all(|a| *a == ClaimAnswer::Granted));
    assert_eq!(answers[10_000], ClaimAnswer::Refused { holder: by("ams") });
    let recorded: usize = appends
        .iter()
        .flatten()
        .map(|e| match e {
            Event::IdsClaimed { claims } => claims.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(recorded, 10_000);
}
