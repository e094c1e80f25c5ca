//! The demo's carts: orders of 1-5 lines over the sale's SKUs, filed
//! through the ingress like `POST /v1/orders` files them. Every fifth is
//! partial; every fifth is held for a moment, and half of those are paid
//! (confirmed) while the rest expire.

use std::time::Duration;

use allot::domain::{OrderId, Region, Sku};
use allot::ingress::Ingress;
use allot::wire::cart::{CartOp, ValidatedCart, ValidatedLine};

/// How long the demo's held carts wait for payment.
pub const HOLD: Duration = Duration::from_secs(2);

/// Files `n` carts (`cart<run>-<n>`); returns their ids.
pub async fn send_carts(
    ingress: &Ingress,
    run: u32,
    skus: &[Sku],
    regions: &[Region],
    n: u64,
) -> anyhow::Result<Vec<OrderId>> {
    let mut ids = Vec::with_capacity(n as usize);
    let mut paying = Vec::new();
    for c in 0..n {
        let id = OrderId::new(&format!("cart{run}-{c}")).expect("valid");
        let lines = (0..1 + c % 5)
            .map(|i| ValidatedLine {
                sku: skus[((c * 7 + i * 3) as usize) % skus.len()].clone(),
                quantity: allot::domain::Quantity::ONE,
                warehouse: None,
            })
            .collect();
        let held = c % 5 == 2;
        let cart = ValidatedCart {
            id: id.clone(),
            lines,
            region: Some(regions[c as usize % regions.len()].clone()),
            fill: if c % 5 == 4 {
                allot::domain::Fill::Partial
            } else {
                allot::domain::Fill::All
            },
            hold: held.then_some(HOLD),
        };
        ingress
            .place_cart(cart)
            .await
            .map_err(|(id, e)| anyhow::anyhow!("ingress refused demo cart {id}: {e}"))?;
        if held && c % 10 == 2 {
            paying.push(id.clone());
        }
        ids.push(id);
    }
    for id in paying {
        ingress
            .cart_command(&id, CartOp::Confirm, &format!("confirm-{id}"))
            .await?;
    }
    Ok(ids)
}
