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
use crate::wire::msgpack::{read_capped, why};

/// The subject the owner of shard `n` answers claims on.
pub fn claims_subject(shard: ShardId) -> String {
    format!("allot.claims.{shard}")
}

/// Nesting of a claims message: its map, the list, a claim (or an
/// answer), its partition take four.
const MAX_DEPTH: usize = 6;

#[derive(Serialize, Deserialize)]
struct Ask {
    claims: Vec<Claim>,
}

#[derive(Serialize, Deserialize)]
struct Answer {
    answers: Vec<ClaimAnswer>,
}

/// A claims message, nesting capped (anyone allowed on `allot.claims.*`
/// can send one); the error says why it is unreadable.
fn decode<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, String> {
    read_capped(bytes, MAX_DEPTH).map_err(|e| why(&e, MAX_DEPTH))
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
            let answer: Answer = decode(&reply.payload)
                .map_err(|e| ClaimError::Transport(format!("unreadable answer: {e}")))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fuzz::{fuzzed, key, nested, with_unknown_field};
    use proptest::prelude::*;

    fn ask() -> Vec<u8> {
        let claims = ["c-1", "c-2"]
            .map(|id| Claim {
                id: crate::domain::OrderId::new(id).unwrap(),
                by: key("ams", "MUG"),
            })
            .to_vec();
        rmp_serde::to_vec_named(&Ask { claims }).unwrap()
    }

    fn answer() -> Vec<u8> {
        let answers = vec![
            ClaimAnswer::Granted,
            ClaimAnswer::Refused {
                holder: key("fra", "MUG"),
            },
        ];
        rmp_serde::to_vec_named(&Answer { answers }).unwrap()
    }

    #[test]
    fn claims_sit_under_the_cap_and_deeper_ones_are_refused_by_depth() {
        for valid in [ask(), answer()] {
            let depth = crate::wire::msgpack::depth_of::<serde::de::IgnoredAny>(&valid);
            assert!(depth < MAX_DEPTH, "{depth}");
        }
        assert!(decode::<Ask>(&ask()).is_ok() && decode::<Answer>(&answer()).is_ok());
        let deep = with_unknown_field(&ask(), &nested(1_000_000));
        let e = decode::<Ask>(&deep).err().unwrap();
        assert_eq!(e, format!("nested more than {MAX_DEPTH} levels deep"));
    }

    proptest! {
        #[test]
        fn claim_messages_never_panic_and_are_refused_with_a_reason(
            bytes in fuzzed(vec![ask(), answer()])
        ) {
            for e in [decode::<Ask>(&bytes).err(), decode::<Answer>(&bytes).err()].into_iter().flatten() {
                prop_assert!(!e.trim().is_empty());
            }
        }
    }
}
