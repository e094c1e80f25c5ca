//! Shard snapshots as stored (object `shard-<n>` of `allot_snapshots`,
//! after the 8-byte sequence): the shard's [`ShardState`] as MessagePack
//! with named fields. Recovery reads them back with their nesting capped:
//! a snapshot is allot's own, but whoever may write the object store can
//! put anything there, and recovery must refuse it by name, not overflow
//! the stack.

use crate::domain::ShardState;
use crate::saga::CartState;

use super::msgpack::{read_capped, why};

/// Deepest nesting in a snapshot. A state with every kind of entry (queued,
/// reserved, backordered and forwarding orders with fallbacks, decided and
/// claimed ids, keyed commands) goes 10 deep (measured by
/// `wire::tests::own_streams`); the rest is headroom for fields to come.
pub const MAX_SNAPSHOT_DEPTH: usize = 24;

/// A snapshot as the shard task saves it.
pub fn encode_snapshot(state: &ShardState) -> Vec<u8> {
    let mut bytes = Vec::new();
    encode_snapshot_with_carts(&mut bytes, state, std::iter::empty());
    bytes
}

/// Reads a snapshot back; the error says why it is not a state this build
/// reads.
pub fn decode_snapshot(bytes: &[u8]) -> Result<ShardState, String> {
    read_capped(bytes, MAX_SNAPSHOT_DEPTH).map_err(|e| why(&e, MAX_SNAPSHOT_DEPTH))
}

/// A snapshot with the shard's carts, written to the end of `bytes`: the
/// state, then (a second MessagePack value) every cart its coordinator
/// holds.
pub fn encode_snapshot_with_carts<'a>(
    bytes: &mut Vec<u8>,
    state: &ShardState,
    carts: impl Iterator<Item = &'a CartState>,
) {
    rmp_serde::encode::write_named(bytes, state).expect("a shard state always encodes");
    let carts: Vec<&CartState> = carts.collect();
    if !carts.is_empty() {
        rmp_serde::encode::write_named(bytes, &carts).expect("carts always encode");
    }
}

/// Reads a snapshot and its carts (none in a snapshot taken without).
pub fn decode_snapshot_with_carts(bytes: &[u8]) -> Result<(ShardState, Vec<CartState>), String> {
    use serde::Deserialize as _;
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    de.set_max_depth(MAX_SNAPSHOT_DEPTH + 1);
    let state = ShardState::deserialize(&mut de).map_err(|e| why(&e, MAX_SNAPSHOT_DEPTH))?;
    let carts = match Vec::<CartState>::deserialize(&mut de) {
        Ok(carts) => carts,
        Err(rmp_serde::decode::Error::InvalidMarkerRead(e))
            if e.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            Vec::new()
        }
        Err(e) => return Err(format!("its carts: {}", why(&e, MAX_SNAPSHOT_DEPTH))),
    };
    Ok((state, carts))
}
