//! Shard snapshots and view checkpoints in a JetStream object store (they
//! outgrow a KV value): object `shard-<n>` (`views.<n>`) holds the log sequence (8 bytes, big-endian)
//! followed by the MessagePack state (views).

use async_nats::jetstream::object_store::{GetErrorKind, ObjectStore};
use tokio::io::AsyncReadExt;

use crate::ports::{AppendError, Checkpoints, ShardId, Snapshots};

#[derive(Clone)]
pub struct NatsSnapshots {
    store: ObjectStore,
}

impl NatsSnapshots {
    pub fn new(store: ObjectStore) -> Self {
        Self { store }
    }
}

fn name(shard: ShardId) -> String {
    format!("shard-{shard}")
}

impl NatsSnapshots {
    /// The object `name`: a sequence (8 bytes, big-endian) and bytes.
    async fn load_named(&self, name: &str) -> Result<Option<(u64, Vec<u8>)>, AppendError> {
        let unavailable =
            |e: &dyn std::fmt::Display| AppendError::Unavailable(format!("object {name}: {e}"));
        let mut object = match self.store.get(name).await {
            Ok(object) => object,
            Err(e) if e.kind() == GetErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(unavailable(&e)),
        };
        let mut bytes = Vec::new();
        object
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| unavailable(&e))?;
        if bytes.len() < 8 {
            return Err(unavailable(&"shorter than its header"));
        }
        let seq = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
        Ok(Some((seq, bytes.split_off(8))))
    }

    /// Saves `bytes` under `name` after its sequence, read from where they
    /// are: a snapshot is the size of its shard's state, not copied again.
    async fn save_named(&self, name: &str, seq: u64, bytes: Vec<u8>) -> Result<(), AppendError> {
        let header = seq.to_be_bytes();
        let mut data = header.as_slice().chain(bytes.as_slice());
        self.store
            .put(name, &mut data)
            .await
            .map(|_| ())
            .map_err(|e| AppendError::Unavailable(format!("saving object {name}: {e}")))
    }
}

impl Snapshots for NatsSnapshots {
    async fn load(&self, shard: ShardId) -> Result<Option<(u64, Vec<u8>)>, AppendError> {
        self.load_named(&name(shard)).await
    }

    async fn save(&self, shard: ShardId, seq: u64, bytes: Vec<u8>) -> Result<(), AppendError> {
        self.save_named(&name(shard), seq, bytes).await
    }
}

impl Checkpoints for NatsSnapshots {
    async fn load_checkpoint(&self, name: &str) -> Result<Option<(u64, Vec<u8>)>, AppendError> {
        self.load_named(name).await
    }

    async fn save_checkpoint(
        &self,
        name: &str,
        seq: u64,
        bytes: Vec<u8>,
    ) -> Result<(), AppendError> {
        self.save_named(name, seq, bytes).await
    }
}
