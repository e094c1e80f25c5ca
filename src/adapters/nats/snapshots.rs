//! Shard snapshots in a JetStream object store (snapshots outgrow a KV
//! value): object `shard-<n>` holds the log sequence (8 bytes, big-endian)
//! followed by the MessagePack state.

use async_nats::jetstream::object_store::{GetErrorKind, ObjectStore};
use tokio::io::AsyncReadExt;

use crate::ports::{AppendError, ShardId, Snapshots};

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

impl Snapshots for NatsSnapshots {
    async fn load(&self, shard: ShardId) -> Result<Option<(u64, Vec<u8>)>, AppendError> {
        let unavailable = |e: &dyn std::fmt::Display| {
            AppendError::Unavailable(format!("snapshot of shard {shard}: {e}"))
        };
        let mut object = match self.store.get(name(shard)).await {
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

    async fn save(&self, shard: ShardId, seq: u64, bytes: Vec<u8>) -> Result<(), AppendError> {
        let mut data = Vec::with_capacity(8 + bytes.len());
        data.extend_from_slice(&seq.to_be_bytes());
        data.extend_from_slice(&bytes);
        self.store
            .put(name(shard).as_str(), &mut data.as_slice())
            .await
            .map(|_| ())
            .map_err(|e| AppendError::Unavailable(format!("saving snapshot of shard {shard}: {e}")))
    }
}
