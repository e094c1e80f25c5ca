//! Shard leases and the instance registry in the KV bucket `allot_leases`.
//!
//! - `instances.<id>`: each live instance puts its id every heartbeat.
//! - `shards.<n>`: the instance that owns shard `n`, taken with `create`
//!   (only if absent) and renewed with `update` at the revision it last
//!   wrote (compare-and-set), so two instances can never both renew one
//!   lease.
//!
//! The bucket's `max_age` is the lease TTL: an entry not rewritten within
//! it is removed by the server (its clock, not ours), so the leases and
//! registration of a crashed instance lapse on their own and its shards can
//! be taken.

use std::time::Duration;

use async_nats::jetstream::kv::{self, CreateErrorKind, UpdateErrorKind};
use async_nats::jetstream::Context;
use futures::future::join_all;
use futures::TryStreamExt;

use crate::ports::{LeaseError, Leases, ShardId, Survey};

pub const LEASES_BUCKET: &str = "allot_leases";
const INSTANCE_PREFIX: &str = "instances.";
const SHARD_PREFIX: &str = "shards.";

/// One instance's handle on the lease bucket.
#[derive(Clone)]
pub struct NatsLeases {
    kv: kv::Store,
    me: String,
}

impl NatsLeases {
    /// Opens (or creates) the bucket with `ttl` as its entries' max age.
    pub async fn open(
        js: &Context,
        me: String,
        ttl: Duration,
        replicas: usize,
    ) -> Result<NatsLeases, LeaseError> {
        let kv = match js.get_key_value(LEASES_BUCKET).await {
            Ok(kv) => kv,
            Err(_) => js
                .create_key_value(kv::Config {
                    bucket: LEASES_BUCKET.into(),
                    history: 1,
                    max_age: ttl,
                    num_replicas: replicas,
                    storage: async_nats::jetstream::stream::StorageType::File,
                    ..Default::default()
                })
                .await
                .map_err(|e| LeaseError::Store(format!("creating {LEASES_BUCKET}: {e}")))?,
        };
        Ok(NatsLeases { kv, me })
    }
}

impl Leases for NatsLeases {
    fn me(&self) -> &str {
        &self.me
    }

    /// Puts this instance's registration (a heartbeat).
    async fn register(&self) -> Result<(), LeaseError> {
        self.kv
            .put(
                format!("{INSTANCE_PREFIX}{}", self.me),
                self.me.clone().into(),
            )
            .await
            .map(|_| ())
            .map_err(|e| LeaseError::Store(e.to_string()))
    }

    /// Removes this instance's registration (a clean stop).
    async fn deregister(&self) {
        let _ = self
            .kv
            .delete(format!("{INSTANCE_PREFIX}{}", self.me))
            .await;
    }

    /// The registered instances and the owner of every leased shard.
    async fn survey(&self) -> Result<Survey, LeaseError> {
        let store = |e: &dyn std::fmt::Display| LeaseError::Store(e.to_string());
        let keys: Vec<String> = self
            .kv
            .keys()
            .await
            .map_err(|e| store(&e))?
            .try_collect()
            .await
            .map_err(|e| store(&e))?;
        let mut survey = Survey::default();
        // The owners' entries are read at once: one round trip, not one
        // per shard (a survey must fit in a heartbeat on a slow link).
        let mut shards = Vec::new();
        for key in keys {
            if let Some(id) = key.strip_prefix(INSTANCE_PREFIX) {
                survey.instances.push(id.to_owned());
            } else if let Some(Ok(shard)) =
                key.strip_prefix(SHARD_PREFIX).map(str::parse::<ShardId>)
            {
                shards.push((shard, key));
            }
        }
        let entries = join_all(
            shards
                .into_iter()
                .map(|(shard, key)| async move { (shard, self.kv.entry(key).await) }),
        )
        .await;
        for (shard, entry) in entries {
            if let Some(entry) = entry.map_err(|e| store(&e))? {
                if entry.operation == kv::Operation::Put {
                    let owner = String::from_utf8_lossy(&entry.value).into_owned();
                    survey.owners.push((shard, owner));
                }
            }
        }
        survey.instances.sort();
        survey.owners.sort();
        Ok(survey)
    }

    /// Takes shard `n` if no one holds it, or if it is still leased to this
    /// instance's id from before a restart. Returns the lease revision.
    async fn acquire(&self, shard: ShardId) -> Result<u64, LeaseError> {
        let key = format!("{SHARD_PREFIX}{shard}");
        match self.kv.create(&key, self.me.clone().into()).await {
            Ok(revision) => Ok(revision),
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {
                let entry = self
                    .kv
                    .entry(key.clone())
                    .await
                    .map_err(|e| LeaseError::Store(e.to_string()))?;
                match entry {
                    Some(entry) if entry.value.as_ref() == self.me.as_bytes() => {
                        self.renew(shard, entry.revision).await
                    }
                    _ => Err(LeaseError::Taken),
                }
            }
            Err(e) => Err(LeaseError::Store(e.to_string())),
        }
    }

    /// Renews the lease at `revision`; the new revision, `Taken` when
    /// someone else wrote it since, or `Lapsed` when it is gone. A
    /// renewal of ours that went through after its caller gave up on it
    /// moved the revision on: the lease is still ours (no one else writes
    /// our id, and a lapsed key is re-created only with `create`), so it
    /// is renewed again at the revision found, fresh from this call.
    async fn renew(&self, shard: ShardId, revision: u64) -> Result<u64, LeaseError> {
        let key = format!("{SHARD_PREFIX}{shard}");
        let store = |e: &dyn std::fmt::Display| LeaseError::Store(e.to_string());
        let mut revision = revision;
        for _ in 0..2 {
            match self.kv.update(&key, self.me.clone().into(), revision).await {
                Ok(revision) => return Ok(revision),
                Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => {}
                Err(e) => return Err(store(&e)),
            }
            match self.kv.entry(key.clone()).await.map_err(|e| store(&e))? {
                Some(entry) if entry.operation == kv::Operation::Put => {
                    if entry.value.as_ref() != self.me.as_bytes() {
                        return Err(LeaseError::Taken);
                    }
                    revision = entry.revision;
                }
                _ => return Err(LeaseError::Lapsed),
            }
        }
        Err(LeaseError::Taken)
    }

    /// Gives shard `n` up, if the lease is still at `revision`.
    async fn release(&self, shard: ShardId, revision: u64) {
        let key = format!("{SHARD_PREFIX}{shard}");
        let _ = self.kv.delete_expect_revision(&key, Some(revision)).await;
    }
}
