//! Ingress on NATS: a request to `allot.submit` carries one order; allot
//! validates and routes it, files it on its shard's intake subject with
//! `Nats-Msg-Id` = the order id, and answers "accepted" with the partition,
//! or the validation errors. Instances share the subject as a queue group.

use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::Context;
use async_nats::Client;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::shard_order_subject;
use crate::config::Router;
use crate::telemetry::{IngressMetrics, Received};
use crate::wire::{decode_order, Limits, SUBMIT_SUBJECT};

/// The answer to a submit request (MessagePack, named fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitReply {
    pub accepted: bool,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub warehouse: Option<String>,
    #[serde(default)]
    pub sku: Option<String>,
    #[serde(default)]
    pub shard: Option<u32>,
    /// Why it was not accepted: one entry per bad field.
    #[serde(default)]
    pub errors: Vec<FieldError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub why: String,
}

impl SubmitReply {
    fn refused(id: Option<String>, errors: Vec<FieldError>) -> Self {
        Self {
            accepted: false,
            id,
            warehouse: None,
            sku: None,
            shard: None,
            errors,
        }
    }
}

/// Validates, routes and files one submitted order.
pub async fn submit(js: &Context, router: &Router, limits: &Limits, payload: &[u8]) -> SubmitReply {
    submit_received(js, router, limits, payload).await.0
}

/// [`submit`], also saying how it ended, for [`IngressMetrics::received`].
pub async fn submit_received(
    js: &Context,
    router: &Router,
    limits: &Limits,
    payload: &[u8],
) -> (SubmitReply, Received) {
    let order = match decode_order(payload, limits) {
        Ok(order) => order,
        Err(e) => {
            let errors = e
                .problems()
                .into_iter()
                .map(|p| FieldError {
                    field: p.field.to_owned(),
                    why: p.why,
                })
                .collect();
            let reply = SubmitReply::refused(e.id().map(str::to_owned), errors);
            return (reply, Received::Invalid);
        }
    };
    let id = order.id.to_string();
    let mut filed = order.clone();
    let (routed, shard) = match order.route(router) {
        Ok(r) => r,
        Err(e) => {
            let error = FieldError {
                field: "region".into(),
                why: e.to_string(),
            };
            return (
                SubmitReply::refused(Some(id), vec![error]),
                Received::Unroutable,
            );
        }
    };
    // The producer's message, with the warehouse routing chose.
    filed.warehouse = Some(routed.partition.warehouse.clone());
    let body = crate::wire::encode_order(&filed);
    let publish = PublishMessage::build()
        .message_id(id.clone())
        .payload(body.into());
    let filed = match js
        .send_publish(shard_order_subject(shard, &routed.partition), publish)
        .await
    {
        Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(why) = filed {
        let error = FieldError {
            field: "broker".into(),
            why: format!("not filed, retry with the same id: {why}"),
        };
        return (
            SubmitReply::refused(Some(id), vec![error]),
            Received::NotFiled,
        );
    }
    let reply = SubmitReply {
        accepted: true,
        id: Some(id),
        warehouse: Some(routed.partition.warehouse.to_string()),
        sku: Some(routed.partition.sku.to_string()),
        shard: Some(shard),
        errors: Vec::new(),
    };
    (reply, Received::Accepted)
}

/// Answers submit requests until `stop`.
pub async fn serve_ingress(
    client: Client,
    js: Context,
    router: Router,
    limits: Limits,
    stop: CancellationToken,
) -> Result<(), async_nats::SubscribeError> {
    let metrics = IngressMetrics::new();
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
        let (client, js, router) = (client.clone(), js.clone(), router.clone());
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let (answer, outcome) = submit_received(&js, &router, &limits, &request.payload).await;
            metrics.received(outcome);
            let bytes = rmp_serde::to_vec_named(&answer).expect("replies encode");
            if let Err(e) = client.publish(reply_to, bytes.into()).await {
                warn!(error = %e, "submit reply not sent");
            }
        });
    }
}
