//! Commands on the intake subjects (`Allot-Kind: command`): MessagePack of
//! [`Command`], which nests (`Batch`, `Keyed`). Decoding is recursive, so
//! nesting is capped before it can exhaust the stack: a few KiB of nested
//! batches published by anyone allowed on `orders.>` would otherwise abort
//! the whole process.

use crate::domain::Command;

/// Deepest nesting of MessagePack maps and arrays in a command, from
/// [`Command::MAX_NESTING`]: each `Batch` level costs two (its map and its
/// list) and a `Keyed` one or two, so four per level plus the innermost
/// command's own maps.
pub const MAX_COMMAND_DEPTH: usize = 4 * Command::MAX_NESTING;

/// Decodes a command, refusing nesting deeper than [`MAX_COMMAND_DEPTH`].
pub fn decode_command(bytes: &[u8]) -> Result<Command, super::msgpack::MsgpackError> {
    super::msgpack::read_capped(bytes, MAX_COMMAND_DEPTH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{OrderId, PartitionKey, Sku, WarehouseId};

    /// `levels` batches, each holding the next, by hand: encoding them
    /// with serde would recurse as deep as decoding does.
    fn nested_batches(levels: usize) -> Vec<u8> {
        let s = |x: &str| {
            let mut v = vec![0xa0 | x.len() as u8];
            v.extend_from_slice(x.as_bytes());
            v
        };
        let mut bytes = Vec::new();
        for level in 0..=levels {
            bytes.push(0x82);
            bytes.extend(s("type"));
            bytes.extend(s("batch"));
            bytes.extend(s("commands"));
            bytes.push(if level == levels { 0x90 } else { 0x91 });
        }
        bytes
    }

    #[test]
    fn deeply_nested_batches_are_refused_without_overflowing_the_stack() {
        // 300 levels in 6.6 KB overflowed the stack before the cap.
        for levels in [20, 300, 5_000] {
            let e = decode_command(&nested_batches(levels)).expect_err("too deep");
            assert!(e.to_string().contains("depth limit"), "{levels}: {e}");
        }
    }

    #[test]
    fn keyed_batches_nested_as_deep_as_http_allows_decode() {
        let partition =
            PartitionKey::new(WarehouseId::new("ams").unwrap(), Sku::new("MUG").unwrap());
        let mut command = Command::SetStock {
            partition,
            on_hand: 3,
            expected_version: None,
        };
        for _ in 0..Command::MAX_NESTING {
            command = Command::Batch {
                commands: vec![command],
            };
        }
        let command = Command::Keyed {
            id: OrderId::new("k-1").unwrap(),
            command: Box::new(command),
        };
        let bytes = rmp_serde::to_vec_named(&command).unwrap();
        assert_eq!(decode_command(&bytes).unwrap(), command);
        assert!(decode_command(&nested_batches(12)).is_ok());
    }
}
