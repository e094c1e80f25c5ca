//! Workers over NATS request-reply: each released order is a request to
//! `allot.fulfil.<warehouse>`, answered by the user's own service. The order
//! id is the idempotency key; no answer in time is an unknown outcome,
//! retried with the same key.

use std::time::Duration;

use async_nats::Client;
use serde::{Deserialize, Serialize};

use crate::domain::{Attempt, Order, Outcome};
use crate::ports::{Fulfiller, SimulatedFulfiller};
use crate::wire::msgpack::{read_capped, why};

/// What a worker service receives (MessagePack, named fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FulfilRequest {
    pub v: u32,
    /// The idempotency key: enact each id at most once.
    pub id: String,
    pub warehouse: String,
    pub sku: String,
    pub quantity: u32,
    /// 0 on the first attempt.
    pub attempt: u32,
}

/// What a worker service answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FulfilReply {
    pub ok: bool,
    #[serde(default)]
    pub reason: Option<String>,
    /// For a failure: may a later attempt succeed?
    #[serde(default)]
    pub retryable: bool,
}

pub fn fulfil_subject(order: &Order) -> String {
    format!("allot.fulfil.{}", order.partition.warehouse)
}

/// Enacts orders by NATS request to the user's workers.
pub struct NatsFulfiller {
    client: Client,
    timeout: Duration,
}

impl NatsFulfiller {
    pub fn new(client: Client, timeout: Duration) -> Self {
        Self { client, timeout }
    }
}

impl Fulfiller for NatsFulfiller {
    async fn fulfil(&self, order: &Order, attempt: Attempt) -> Outcome {
        let request = FulfilRequest {
            v: 1,
            id: order.id.to_string(),
            warehouse: order.partition.warehouse.to_string(),
            sku: order.partition.sku.to_string(),
            quantity: order.quantity.get(),
            attempt: attempt.retry,
        };
        let payload = match rmp_serde::to_vec_named(&request) {
            Ok(p) => p,
            Err(e) => return failed(format!("request not encodable: {e}"), false),
        };
        let sent = self.client.request(fulfil_subject(order), payload.into());
        match tokio::time::timeout(self.timeout, sent).await {
            Err(_) => unknown(format!("no answer from a worker in {:?}", self.timeout)),
            // No worker got the request: certainly not enacted.
            Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                failed(format!("no worker for {}", fulfil_subject(order)), true)
            }
            Ok(Err(e)) => unknown(format!("worker request failed: {e}")),
            Ok(Ok(reply)) => answered(&reply.payload),
        }
    }
}

/// Nesting of a worker's answer: its map, and room for fields of the
/// worker's own (skipped unread beyond this).
const MAX_REPLY_DEPTH: usize = 8;

/// What a worker's answer says; an unreadable one is an unknown outcome.
fn answered(payload: &[u8]) -> Outcome {
    match read_capped::<FulfilReply>(payload, MAX_REPLY_DEPTH) {
        Ok(FulfilReply { ok: true, .. }) => Outcome::Fulfilled,
        Ok(FulfilReply {
            reason, retryable, ..
        }) => failed(reason.unwrap_or_else(|| "worker refused".into()), retryable),
        Err(e) => unknown(format!(
            "unreadable worker answer: {}",
            why(&e, MAX_REPLY_DEPTH)
        )),
    }
}

fn failed(reason: String, retryable: bool) -> Outcome {
    Outcome::Failed { reason, retryable }
}

/// The request went out and no usable answer came back: the worker may have
/// enacted the order.
fn unknown(reason: String) -> Outcome {
    Outcome::Unknown { reason }
}

/// The fulfiller chosen by configuration.
pub enum AnyFulfiller {
    Simulated(Box<SimulatedFulfiller>),
    Nats(NatsFulfiller),
}

impl Fulfiller for AnyFulfiller {
    async fn fulfil(&self, order: &Order, attempt: Attempt) -> Outcome {
        match self {
            AnyFulfiller::Simulated(f) => f.fulfil(order, attempt).await,
            AnyFulfiller::Nats(f) => f.fulfil(order, attempt).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fuzz::{fuzzed, nested, with_unknown_field};
    use proptest::prelude::*;

    fn reply(ok: bool) -> Vec<u8> {
        rmp_serde::to_vec_named(&FulfilReply {
            ok,
            reason: (!ok).then(|| "out of paper".into()),
            retryable: true,
        })
        .unwrap()
    }

    #[test]
    fn an_answer_nested_past_the_cap_is_an_unknown_outcome_saying_so() {
        assert_eq!(answered(&reply(true)), Outcome::Fulfilled);
        let deep = with_unknown_field(&reply(true), &nested(1_000_000));
        assert_eq!(
            answered(&deep),
            Outcome::Unknown {
                reason: format!(
                    "unreadable worker answer: nested more than {MAX_REPLY_DEPTH} levels deep"
                )
            }
        );
    }

    proptest! {
        #[test]
        fn worker_answers_never_panic_and_unreadable_ones_are_unknown(
            bytes in fuzzed(vec![reply(true), reply(false)])
        ) {
            match answered(&bytes) {
                Outcome::Unknown { reason } => {
                    prop_assert!(reason.starts_with("unreadable worker answer: "), "{}", reason);
                }
                Outcome::Fulfilled | Outcome::Failed { .. } => {}
            }
        }
    }
}
