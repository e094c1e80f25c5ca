//! Carts through the ingress: a version-2 order (several lines) is
//! validated, each line routed, and filed under its id on the shard that
//! coordinates it (by a hash of the id); a confirm or cancel is filed on
//! that shard too.

use super::{Filed, Ingress, IngressError};
use crate::domain::{FieldError, OrderId};
use crate::ports::ShardId;
use crate::telemetry::Received;
use crate::wire::cart::{
    coordinator, decode_cart, decode_cart_json, placeholder_partition, CartOp, ValidatedCart,
};
use crate::wire::intake::encode_cart_item;
use crate::wire::Intake;

/// A cart filed on its coordinator's shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedCart {
    pub id: OrderId,
    pub shard: ShardId,
    /// Each line's warehouse and SKU, in line order.
    pub lines: Vec<(String, String)>,
    pub filed: Filed,
}

impl Ingress {
    /// A cart as JSON (`POST /v1/orders` with `"v": 2`), validated only.
    pub fn validate_cart_json(&self, body: &[u8]) -> Result<ValidatedCart, IngressError> {
        decode_cart_json(body, &self.limits).map_err(|e| {
            self.metrics.received(Received::Invalid);
            IngressError::Invalid(e.problems())
        })
    }

    /// A cart as MessagePack (`allot.submit`), validated only.
    pub fn validate_cart(
        &self,
        body: &[u8],
    ) -> Result<ValidatedCart, (Option<String>, IngressError)> {
        decode_cart(body, &self.limits).map_err(|e| {
            self.metrics.received(Received::Invalid);
            (
                e.id().map(str::to_owned),
                IngressError::Invalid(e.problems()),
            )
        })
    }

    /// Routes every line of a validated cart and files the cart under its
    /// id on its coordinator's shard; on error, the id and why.
    pub async fn place_cart(
        &self,
        cart: ValidatedCart,
    ) -> Result<PlacedCart, (String, IngressError)> {
        let id = cart.id.clone();
        let (cart, shard) = cart.route(&self.router, &self.limits).map_err(|errors| {
            self.metrics.received(Received::Unroutable);
            (id.to_string(), IngressError::Invalid(errors))
        })?;
        let lines = cart
            .lines()
            .iter()
            .map(|l| {
                (
                    l.partition.warehouse.to_string(),
                    l.partition.sku.to_string(),
                )
            })
            .collect();
        let partition = cart.lines()[0].partition.clone();
        let message = encode_cart_item(&Intake::Cart(cart)).expect("a cart encodes");
        match self
            .filer
            .file(shard, &partition, id.as_str(), message)
            .await
        {
            Ok(filed) => {
                self.metrics.received(Received::Accepted);
                Ok(PlacedCart {
                    id,
                    shard,
                    lines,
                    filed,
                })
            }
            Err(e) => {
                self.metrics.received(Received::NotFiled);
                Err((id.to_string(), e.into()))
            }
        }
    }

    /// Files a confirm or cancel of cart `id` on its coordinator's shard,
    /// under `key` (filing it again within the intake's duplicate window
    /// files nothing new; the coordinator applies each at most once).
    pub async fn cart_command(
        &self,
        id: &OrderId,
        op: CartOp,
        key: &str,
    ) -> Result<ShardId, IngressError> {
        if key.len() > 64 {
            return Err(IngressError::Invalid(vec![FieldError::new(
                "key",
                "is longer than 64 bytes",
            )]));
        }
        let shard = coordinator(id, self.router.shard_count());
        let item = Intake::CartCommand {
            cart: id.clone(),
            op,
        };
        let message = encode_cart_item(&item).expect("a cart command encodes");
        self.filer
            .file(shard, &placeholder_partition(), key, message)
            .await?;
        Ok(shard)
    }
}
