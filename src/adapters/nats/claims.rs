//! Claims between instances over core NATS: the instance running shard
//! `n` answers requests on `allot.claims.<n>` (MessagePack `{claims:
//! [{id, by}]}`, reply `{answers: [...]}`), and a shard whose ids are owned
//! elsewhere asks there. Core NATS stores nothing: a lost question or
//! answer is asked again by the runtime, and answered the same.

use std::time::Duration;

use async_nats::Client;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use crate::domain::{Claim, ClaimAnswer};
use crate::ports::ShardId;
use crate::runtime::claims::{ClaimError, ClaimRequest, RemoteClaims};

/// The subject the owner of shard `n` answers claims on.
pub fn claims_subject(shard: ShardId) -> String {
    format!("allot.claims.{shard}")
}

/// Nesting of a claims message: its map, the list, a claim, its partition.
const MAX_DEPTH: usize = 6;

#[derive(Serialize, Deserialize)]
struct Ask {
    claims: Vec<Claim>,
}

#[derive(Serialize, Deserialize)]
struct Answer {
    answers: Vec<ClaimAnswer>,
}

fn decode<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, rmp_serde::decode::Error> {
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    de.set_max_depth(MAX_DEPTH);
    T::deserialize(&mut de)
}

/// Claims over core NATS.
pub struct NatsClaims {
    client: Client,
    timeout: Duration,
}

impl NatsClaims {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            timeout: Duration::from_secs(2),
        }
    }
}

/// Stops a shard's claim subscription when dropped.
struct Subscribed(tokio::task::AbortHandle);

impl Drop for Subscribed {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl RemoteClaims for NatsClaims {
    fn claim(
        &self,
        owner: ShardId,
        claims: Vec<Claim>,
    ) -> BoxFuture<'_, Result<Vec<ClaimAnswer>, ClaimError>> {
        async move {
            let n = claims.len();
            let body = rmp_serde::to_vec_named(&Ask { claims }).expect("claims encode");
            let request = self.client.request(claims_subject(owner), body.into());
            let reply = match tokio::time::timeout(self.timeout, request).await {
                Err(_) => return Err(ClaimError::NoAnswer(owner)),
                Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                    return Err(ClaimError::NoOwner(owner))
                }
                Ok(Err(e)) => return Err(ClaimError::Transport(e.to_string())),
                Ok(Ok(reply)) => reply,
            };
            let answer: Answer =
                decode(&reply.payload).map_err(|e| ClaimError::Transport(e.to_string()))?;
            if answer.answers.len() != n {
                return Err(ClaimError::Transport(format!(
                    "{} answers to {n} claims",
                    answer.answers.len()
                )));
            }
            Ok(answer.answers)
        }
        .boxed()
    }

    fn serve(
        &self,
        shard: ShardId,
        to: mpsc::Sender<ClaimRequest>,
    ) -> BoxFuture<'_, Result<Box<dyn Send + Sync>, ClaimError>> {
        async move {
            let mut requests = self
                .client
                .subscribe(claims_subject(shard))
                .await
                .map_err(|e| ClaimError::Transport(e.to_string()))?;
            let client = self.client.clone();
            let task = tokio::spawn(async move {
                while let Some(message) = requests.next().await {
                    let Some(reply_to) = message.reply else {
                        continue;
                    };
                    let ask: Ask = match decode(&message.payload) {
                        Ok(ask) => ask,
                        Err(e) => {
                            warn!(shard, error = %e, "unreadable claim request; ignored");
                            continue;
                        }
                    };
                    let (reply, answer) = oneshot::channel();
                    let request = ClaimRequest {
                        claims: ask.claims,
                        reply,
                    };
                    if to.send(request).await.is_err() {
                        return;
                    }
                    let client = client.clone();
                    tokio::spawn(async move {
                        // Answered once durable; the shard stopping drops
                        // the sender and the asker asks again.
                        if let Ok(answers) = answer.await {
                            let body = rmp_serde::to_vec_named(&Answer { answers })
                                .expect("answers encode");
                            let _ = client.publish(reply_to, body.into()).await;
                        }
                    });
                }
            });
            Ok(Box::new(Subscribed(task.abort_handle())) as Box<dyn Send + Sync>)
        }
        .boxed()
    }
}
