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

use crate::wire::{KIND_COMMAND, KIND_HEADER};
use super::shard_order_subject;
use crate::config::Router;
use crate::domain::{Command, OrderId};
use crate::telemetry::{IngressMetrics, Received};
use crate::wire::{decode_order, Limits, ValidatedOrder, SUBMIT_SUBJECT};

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
    /// The id was filed before (the stream's duplicate window dropped this
    /// copy): the order already exists and this one changed nothing.
    #[serde(default)]
    pub duplicate: bool,
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
            duplicate: false,
            errors,
        }
    }

    /// The refusal for an order that failed validation.
    pub fn invalid(e: &crate::wire::WireError) -> Self {
        let errors = e
            .problems()
            .into_iter()
            .map(|p| FieldError {
                field: p.field.to_owned(),
                why: p.why,
            })
            .collect();
        SubmitReply::refused(e.id().map(str::to_owned), errors)
    }
}

/// Validates, routes and files one submitted order (MessagePack).
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
    match decode_order(payload, limits) {
        Ok(order) => file_order(js, router, order).await,
        Err(e) => (SubmitReply::invalid(&e), Received::Invalid),
    }
}

/// Routes a validated order and files it on its shard's intake subject,
/// with `Nats-Msg-Id` = its id so a repeat within the stream's duplicate
/// window is dropped (and reported as `duplicate`).
pub async fn file_order(
    js: &Context,
    router: &Router,
    order: ValidatedOrder,
) -> (SubmitReply, Received) {
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
        Ok(ack) => ack.await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let ack = match filed {
        Ok(ack) => ack,
        Err(why) => {
            let error = FieldError {
                field: "broker".into(),
                why: format!("not filed, retry with the same id: {why}"),
            };
            return (
                SubmitReply::refused(Some(id), vec![error]),
                Received::NotFiled,
            );
        }
    };
    let reply = SubmitReply {
        accepted: true,
        duplicate: ack.duplicate,
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

/// A stock change or cancel filed on its shard's intake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FiledCommand {
    pub key: String,
    pub shard: u32,
    /// The ORDERS stream sequence it was filed at.
    pub sequence: u64,
    /// The key was filed before (within the stream's duplicate window).
    pub duplicate: bool,
}

/// Files one partition command (cancel or stock change) on its shard's
/// intake as `Command::Keyed { key, command }`, with `Nats-Msg-Id` = `key`:
/// applied at most once however often it is sent.
pub async fn file_command(
    js: &Context,
    router: &Router,
    key: &str,
    command: Command,
) -> Result<FiledCommand, String> {
    let partition = match &command {
        Command::CancelOrder { partition, .. }
        | Command::SetStock { partition, .. }
        | Command::Restock { partition, .. }
        | Command::AdjustStock { partition, .. } => partition.clone(),
        other => return Err(format!("not a single-partition command: {other:?}")),
    };
    let id = OrderId::new(key).map_err(|e| format!("key {key:?}: {e}"))?;
    let keyed = Command::Keyed {
        id,
        command: Box::new(command),
    };
    let body = rmp_serde::to_vec_named(&keyed).map_err(|e| e.to_string())?;
    let shard = router.shard_for(&partition);
    let message = PublishMessage::build()
        .message_id(key)
        .header(KIND_HEADER, KIND_COMMAND)
        .payload(body.into());
    let ack = js
        .send_publish(shard_order_subject(shard, &partition), message)
        .await
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())?;
    Ok(FiledCommand {
        key: key.to_owned(),
        shard,
        sequence: ack.sequence,
        duplicate: ack.duplicate,
    })
}
