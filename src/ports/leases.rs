//! The shard leases port: instances register, survey who owns what, and
//! take, renew (compare-and-set by revision) and give back shard leases
//! that lapse on their own after a TTL. `adapters::nats::NatsLeases` keeps
//! them in a KV bucket; `runtime::coordinator` drives them.

use std::future::Future;

use super::ShardId;

/// Why a lease operation did not go through.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Another instance holds it, or it moved on since our revision: the
    /// shard is not ours.
    #[error("held by another instance")]
    Taken,
    /// It lapsed (not renewed within the TTL) and no one holds it now.
    #[error("lapsed")]
    Lapsed,
    /// The store did not answer; ownership is unknown.
    #[error("lease store: {0}")]
    Store(String),
}

/// Who is there and who owns what, at one moment.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Survey {
    /// Registered instance ids, sorted.
    pub instances: Vec<String>,
    /// `(shard, owner)` of every leased shard, by shard.
    pub owners: Vec<(ShardId, String)>,
}

/// One instance's handle on the shard leases.
pub trait Leases: Send + Sync + 'static {
    /// This instance's id.
    fn me(&self) -> &str;
    /// Puts this instance's registration (a heartbeat).
    fn register(&self) -> impl Future<Output = Result<(), LeaseError>> + Send;
    /// Removes this instance's registration (a clean stop).
    fn deregister(&self) -> impl Future<Output = ()> + Send;
    /// The registered instances and the owner of every leased shard.
    fn survey(&self) -> impl Future<Output = Result<Survey, LeaseError>> + Send;
    /// Takes shard `n` if no one holds it, or if it is still leased to this
    /// instance's id from before a restart. Returns the lease revision.
    fn acquire(&self, shard: ShardId) -> impl Future<Output = Result<u64, LeaseError>> + Send;
    /// Renews the lease at `revision`; the new revision, `Taken` when
    /// someone else wrote it since, or `Lapsed` when it is gone. A
    /// renewal of ours that went through after its caller gave up on it
    /// moved the revision on: the lease is still ours, and is renewed
    /// again from there.
    fn renew(
        &self,
        shard: ShardId,
        revision: u64,
    ) -> impl Future<Output = Result<u64, LeaseError>> + Send;
    /// Gives shard `n` up, if the lease is still at `revision`.
    fn release(&self, shard: ShardId, revision: u64) -> impl Future<Output = ()> + Send;
}
