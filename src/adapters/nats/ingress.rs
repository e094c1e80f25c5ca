//! Ingress on NATS: [`NatsFiler`] puts intake messages on the ORDERS
//! stream (`orders.<shard>.<warehouse>.<sku>`, `Nats-Msg-Id` = the key, so
//! the stream drops a retried copy within its duplicate window), and
//! [`serve_submit`] answers requests on `allot.submit` through the
//! transport-free [`Ingress`]. Instances share the subject as a queue
//! group.

use std::sync::Arc;

use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::Context;
use async_nats::Client;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::shard_order_subject;
use crate::domain::PartitionKey;
use crate::ingress::{Filed, Filer, Ingress, NotFiled};
use crate::ports::ShardId;
use crate::wire::{Encoded, SubmitReply, KIND_HEADER, SUBMIT_SUBJECT};

/// Files intake messages on the ORDERS stream.
#[derive(Clone)]
pub struct NatsFiler {
    js: Context,
}

impl NatsFiler {
    pub fn new(js: Context) -> Self {
        Self { js }
    }

    /// A filer on `client`'s account.
    pub fn for_client(client: Client) -> Self {
        Self::new(async_nats::jetstream::new(client))
    }
}

impl Filer for NatsFiler {
    fn file<'a>(
        &'a self,
        shard: ShardId,
        partition: &'a PartitionKey,
        key: &'a str,
        message: Encoded,
    ) -> BoxFuture<'a, Result<Filed, NotFiled>> {
        async move {
            let mut publish = PublishMessage::build()
                .message_id(key)
                .payload(message.body.into());
            if let Some(kind) = message.kind {
                publish = publish.header(KIND_HEADER, kind);
            }
            let ack = self
                .js
                .send_publish(shard_order_subject(shard, partition), publish)
                .await
                .map_err(|e| NotFiled(e.to_string()))?
                .await
                .map_err(|e| NotFiled(e.to_string()))?;
            Ok(Filed {
                sequence: ack.sequence,
                duplicate: ack.duplicate,
            })
        }
        .boxed()
    }
}

/// Answers one submit request's payload.
pub async fn submit(ingress: &Ingress, payload: &[u8]) -> SubmitReply {
    if crate::wire::cart::is_cart(payload, false) {
        let placed = match ingress.validate_cart(payload) {
            Ok(cart) => ingress
                .place_cart(cart)
                .await
                .map_err(|(id, e)| (Some(id), e)),
            Err(e) => Err(e),
        };
        return match placed {
            Ok(placed) => SubmitReply {
                accepted: true,
                id: Some(placed.id.to_string()),
                warehouse: None,
                sku: None,
                shard: Some(placed.shard),
                duplicate: placed.filed.duplicate,
                errors: Vec::new(),
                kind: Some("cart".into()),
            },
            Err((id, e)) => SubmitReply::refused(id, e.errors()),
        };
    }
    match ingress.submit(payload).await {
        Ok(placed) => SubmitReply {
            accepted: true,
            id: Some(placed.id.to_string()),
            warehouse: Some(placed.partition.warehouse.to_string()),
            sku: Some(placed.partition.sku.to_string()),
            shard: Some(placed.shard),
            duplicate: placed.filed.duplicate,
            errors: Vec::new(),
            kind: None,
        },
        Err((id, e)) => SubmitReply::refused(id, e.errors()),
    }
}

/// Answers submit requests until `stop`.
pub async fn serve_submit(
    client: Client,
    ingress: Arc<Ingress>,
    stop: CancellationToken,
) -> Result<(), async_nats::SubscribeError> {
    let mut requests = client
        .queue_subscribe(SUBMIT_SUBJECT, "allot-ingress".into())
        .await?;
    loop {
        let request = tokio::select! {
            r = requests.next() => match r { Some(r) => r, None => return Ok(()) },
            () = stop.cancelled() => return Ok(()),
        };
        let Some(reply_to) = request.reply.clone() else {
            warn!("submit without a reply subject; ignored (use a request)");
            continue;
        };
        let (client, ingress) = (client.clone(), ingress.clone());
        tokio::spawn(async move {
            let answer = submit(&ingress, &request.payload).await;
            let bytes = rmp_serde::to_vec_named(&answer).expect("replies encode");
            if let Err(e) = client.publish(reply_to, bytes.into()).await {
                warn!(error = %e, "submit reply not sent");
            }
        });
    }
}
