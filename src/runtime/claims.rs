//! Claims between shards: before a shard decides a producer's order whose
//! id another shard owns (`Shard::claim_owner`), it asks that shard to
//! grant the id to the order's partition. [`ClaimRouter`] carries the
//! question to the owner's task, in this process when the owner runs here
//! and through [`RemoteClaims`] (core NATS request-reply) when it runs in
//! another instance. The owner answers only once the claim is durable in
//! its log, so an answer never outlives a crash of the owner; a question
//! without an answer (the owner moving, a lost reply) is asked again, and
//! answered the same, since a claim is idempotent per (id, partition).

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

use crate::domain::{Claim, ClaimAnswer};
use crate::ports::ShardId;

/// A question to the owner: grant these ids to these partitions?
#[derive(Debug)]
pub struct ClaimRequest {
    pub claims: Vec<Claim>,
    /// One answer per claim, in order.
    pub reply: oneshot::Sender<Vec<ClaimAnswer>>,
}

/// Why a claim was not answered; it is asked again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    /// No instance serves the owner shard right now (it is moving).
    #[error("no instance serves shard {0} right now")]
    NoOwner(ShardId),
    /// The owner did not answer in time.
    #[error("shard {0} did not answer in time")]
    NoAnswer(ShardId),
    /// The transport failed.
    #[error("claim transport: {0}")]
    Transport(String),
}

/// Claims to owners in other instances.
pub trait RemoteClaims: Send + Sync {
    /// Asks the instance serving `owner`.
    fn claim(
        &self,
        owner: ShardId,
        claims: Vec<Claim>,
    ) -> BoxFuture<'_, Result<Vec<ClaimAnswer>, ClaimError>>;

    /// Starts taking other instances' questions for `shard` into `to`,
    /// until the returned guard drops.
    fn serve(
        &self,
        shard: ShardId,
        to: mpsc::Sender<ClaimRequest>,
    ) -> BoxFuture<'_, Result<Box<dyn Send + Sync>, ClaimError>>;
}

/// Routes claims to the shard tasks that own them.
pub struct ClaimRouter {
    local: DashMap<ShardId, mpsc::Sender<ClaimRequest>>,
    remote: Option<Arc<dyn RemoteClaims>>,
    /// Longest wait for an answer before asking again.
    timeout: Duration,
}

impl ClaimRouter {
    /// Owners in this process only (tests, the simulation).
    pub fn local() -> Self {
        Self {
            local: DashMap::new(),
            remote: None,
            timeout: Duration::from_secs(2),
        }
    }

    /// Owners here, or in other instances through `remote`.
    pub fn with_remote(remote: Arc<dyn RemoteClaims>) -> Self {
        Self {
            remote: Some(remote),
            ..Self::local()
        }
    }

    /// Asks `owner` to grant `claims`: one answer per claim, each durable
    /// at the owner.
    pub async fn claim(
        &self,
        owner: ShardId,
        claims: Vec<Claim>,
    ) -> Result<Vec<ClaimAnswer>, ClaimError> {
        let here = self.local.get(&owner).map(|tx| tx.clone());
        match (here, &self.remote) {
            (Some(tx), _) => {
                let (reply, answer) = oneshot::channel();
                tx.send(ClaimRequest { claims, reply })
                    .await
                    .map_err(|_| ClaimError::NoOwner(owner))?;
                match tokio::time::timeout(self.timeout, answer).await {
                    Ok(Ok(answers)) => Ok(answers),
                    Ok(Err(_)) => Err(ClaimError::NoOwner(owner)),
                    Err(_) => Err(ClaimError::NoAnswer(owner)),
                }
            }
            (None, Some(remote)) => remote.claim(owner, claims).await,
            (None, None) => Err(ClaimError::NoOwner(owner)),
        }
    }

    /// This process now answers for `shard`: its questions arrive on the
    /// returned [`Serving`] until it drops.
    pub async fn serve(self: &Arc<Self>, shard: ShardId) -> Result<Serving, ClaimError> {
        let (tx, rx) = mpsc::channel(1024);
        let remote = match &self.remote {
            Some(r) => Some(r.serve(shard, tx.clone()).await?),
            None => None,
        };
        self.local.insert(shard, tx.clone());
        Ok(Serving {
            router: self.clone(),
            shard,
            tx,
            rx,
            _remote: remote,
        })
    }
}

/// The questions to one owned shard; dropping it stops answering.
pub struct Serving {
    router: Arc<ClaimRouter>,
    shard: ShardId,
    tx: mpsc::Sender<ClaimRequest>,
    pub rx: mpsc::Receiver<ClaimRequest>,
    _remote: Option<Box<dyn Send + Sync>>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        // Only our registration: a new task for the shard may have
        // replaced it already.
        self.router
            .local
            .remove_if(&self.shard, |_, tx| tx.same_channel(&self.tx));
    }
}
