//! The one ingress: validate, route once, file on the partition's shard
//! intake. Every way in (HTTP, `allot.submit`, the CLI, the demo, the
//! bench, the tests) files through [`Ingress`]; the transport is the
//! [`Filer`] port (NATS JetStream in production). Nothing here knows
//! about a transport.
//!
//! Filing is idempotent by key: an order is filed under its id, a command
//! under its idempotency key, so a retry after an unanswered request files
//! nothing new (within the intake's duplicate window; the shard's dedupe
//! covers the rest).

mod carts;

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::config::Router;
use crate::domain::{Command, FieldError, OrderId, PartitionKey};
use crate::ports::ShardId;
use crate::telemetry::{IngressMetrics, Received};
use crate::wire::{
    decode_order, decode_order_json, encode_command, encode_routed, Encoded, Limits,
    ValidatedOrder, RESERVED_ID_PREFIX,
};
pub use carts::PlacedCart;

/// Where the intake put a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filed {
    /// The intake's sequence of the message.
    pub sequence: u64,
    /// The key was filed before (within the intake's duplicate window):
    /// this copy changed nothing.
    pub duplicate: bool,
}

/// The intake did not take a message; filing again with the same key is
/// safe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not filed, retry with the same id: {0}")]
pub struct NotFiled(pub String);

/// The port: puts an intake message on a shard's intake under a key.
pub trait Filer: Send + Sync {
    fn file<'a>(
        &'a self,
        shard: ShardId,
        partition: &'a PartitionKey,
        key: &'a str,
        message: Encoded,
    ) -> BoxFuture<'a, Result<Filed, NotFiled>>;
}

/// Why an order or command was not filed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngressError {
    /// It breaks the rules: every bad field.
    #[error("invalid: {}", list(.0))]
    Invalid(Vec<FieldError>),
    /// Valid, but the routing rules give it no warehouse.
    #[error("not routable: {0}")]
    Unroutable(FieldError),
    /// The intake did not take it; retry with the same id or key.
    #[error(transparent)]
    NotFiled(#[from] NotFiled),
}

impl IngressError {
    /// The bad fields, for a reply that lists them.
    pub fn errors(&self) -> Vec<FieldError> {
        match self {
            IngressError::Invalid(errors) => errors.clone(),
            IngressError::Unroutable(e) => vec![e.clone()],
            IngressError::NotFiled(NotFiled(why)) => vec![FieldError::new(
                "broker",
                format!("not filed, retry with the same id: {why}"),
            )],
        }
    }
}

fn list(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(FieldError::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// An order filed on its partition's shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub id: OrderId,
    pub partition: PartitionKey,
    pub shard: ShardId,
    pub filed: Filed,
}

/// A command filed on its partition's shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiledCommand {
    pub key: String,
    pub shard: u32,
    /// The intake sequence it was filed at.
    pub sequence: u64,
    /// The key was filed before (within the intake's duplicate window).
    pub duplicate: bool,
}

/// Validates, routes and files orders and commands.
pub struct Ingress {
    filer: Arc<dyn Filer>,
    router: Router,
    limits: Limits,
    metrics: IngressMetrics,
}

impl Ingress {
    pub fn new(filer: Arc<dyn Filer>, router: Router, limits: Limits) -> Self {
        Self {
            filer,
            router,
            limits,
            metrics: IngressMetrics::new(),
        }
    }

    pub fn router(&self) -> &Router {
        &self.router
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// An order as MessagePack (`allot.submit`).
    pub async fn submit(&self, payload: &[u8]) -> Result<Placed, (Option<String>, IngressError)> {
        match decode_order(payload, &self.limits) {
            Ok(order) => self.place(order).await.map_err(|(id, e)| (Some(id), e)),
            Err(e) => {
                self.metrics.received(Received::Invalid);
                Err((
                    e.id().map(str::to_owned),
                    IngressError::Invalid(e.problems()),
                ))
            }
        }
    }

    /// An order as JSON (`POST /v1/orders`), validated only.
    pub fn validate_json(&self, body: &[u8]) -> Result<ValidatedOrder, IngressError> {
        decode_order_json(body, &self.limits).map_err(|e| {
            self.metrics.received(Received::Invalid);
            IngressError::Invalid(e.problems())
        })
    }

    /// Routes a validated order and files it, routed, under its id on its
    /// partition's shard; on error, the id and why.
    pub async fn place(&self, order: ValidatedOrder) -> Result<Placed, (String, IngressError)> {
        let id = order.id.clone();
        let (routed, shard) = match order.route(&self.router) {
            Ok(r) => r,
            Err(e) => {
                self.metrics.received(Received::Unroutable);
                return Err((
                    id.to_string(),
                    IngressError::Unroutable(FieldError::new("region", e.to_string())),
                ));
            }
        };
        // Routed once: the intake takes it as it is.
        let message = encode_routed(std::slice::from_ref(&routed));
        match self
            .filer
            .file(shard, &routed.partition, id.as_str(), message)
            .await
        {
            Ok(f) => {
                self.metrics.received(Received::Accepted);
                Ok(Placed {
                    id,
                    partition: routed.partition,
                    shard,
                    filed: f,
                })
            }
            Err(e) => {
                self.metrics.received(Received::NotFiled);
                Err((id.to_string(), e.into()))
            }
        }
    }

    /// Routes and files many validated orders: one message per shard,
    /// under a key made of the ids it carries (a retried request files
    /// nothing new). The answer of each order, in order.
    pub async fn place_many(
        &self,
        orders: Vec<ValidatedOrder>,
    ) -> Vec<Result<Placed, (String, IngressError)>> {
        let mut answers: Vec<Option<Result<Placed, (String, IngressError)>>> =
            (0..orders.len()).map(|_| None).collect();
        let mut by_shard: Vec<(ShardId, Vec<(usize, crate::domain::Order)>)> = Vec::new();
        for (i, order) in orders.into_iter().enumerate() {
            let id = order.id.to_string();
            match order.route(&self.router) {
                Ok((routed, shard)) => match by_shard.iter_mut().find(|(s, _)| *s == shard) {
                    Some((_, list)) => list.push((i, routed)),
                    None => by_shard.push((shard, vec![(i, routed)])),
                },
                Err(e) => {
                    self.metrics.received(Received::Unroutable);
                    let e = IngressError::Unroutable(FieldError::new("region", e.to_string()));
                    answers[i] = Some(Err((id, e)));
                }
            }
        }
        let filings = by_shard.into_iter().map(|(shard, list)| async move {
            let orders: Vec<crate::domain::Order> = list.iter().map(|(_, o)| o.clone()).collect();
            let key = batch_key(&orders);
            let filed = self
                .filer
                .file(shard, &orders[0].partition, &key, encode_routed(&orders))
                .await;
            (shard, list, filed)
        });
        for (shard, list, filed) in futures::future::join_all(filings).await {
            for (i, order) in list {
                answers[i] = Some(match &filed {
                    Ok(f) => {
                        self.metrics.received(Received::Accepted);
                        Ok(Placed {
                            id: order.id,
                            partition: order.partition,
                            shard,
                            filed: *f,
                        })
                    }
                    Err(e) => {
                        self.metrics.received(Received::NotFiled);
                        Err((order.id.to_string(), e.clone().into()))
                    }
                });
            }
        }
        answers
            .into_iter()
            .map(|a| a.expect("every order answered"))
            .collect()
    }

    /// Files a partition command (a cancel or a stock change) as
    /// `Command::Keyed { key, command }`: applied at most once however
    /// often it is filed.
    pub async fn command(&self, key: &str, command: Command) -> Result<FiledCommand, IngressError> {
        let Some(partition) = command.partition().cloned() else {
            return Err(IngressError::Invalid(vec![FieldError::new(
                "command",
                "not a single-partition command (cancel_order, set_stock, restock, adjust_stock)",
            )]));
        };
        let id = OrderId::new(key)
            .map_err(|e| IngressError::Invalid(vec![FieldError::new("key", e.to_string())]))?;
        if key.starts_with(RESERVED_ID_PREFIX) {
            return Err(IngressError::Invalid(vec![FieldError::new(
                "key",
                format!("starts with {RESERVED_ID_PREFIX:?}, which is reserved for commands filed without a key"),
            )]));
        }
        let keyed = Command::Keyed {
            id,
            command: Box::new(command),
        };
        let shard = self.router.shard_for(&partition);
        let filed = self
            .filer
            .file(shard, &partition, key, encode_command(&keyed))
            .await?;
        Ok(FiledCommand {
            key: key.to_owned(),
            shard,
            sequence: filed.sequence,
            duplicate: filed.duplicate,
        })
    }
}

/// The key of a batch of orders: a hash of their ids in order, so the same
/// batch filed again is the same message to the intake's dedupe.
fn batch_key(orders: &[crate::domain::Order]) -> String {
    let hash = orders
        .iter()
        .flat_map(|o| o.id.as_str().bytes().chain([0]))
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("batch-{hash:016x}-{}", orders.len())
}
