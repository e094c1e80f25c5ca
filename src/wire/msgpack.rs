//! MessagePack read with its nesting capped, for every decoder of bytes
//! that arrive from outside this process: allot's own messages too (EVENTS
//! batches, snapshots, view checkpoints, forwards, claims, replies), since
//! anyone allowed to publish on their subjects or write the object store
//! can put anything there. rmp-serde's own cap is 1,024 levels, and serde
//! recurses once per level (more for internally tagged enums, which buffer
//! what they read): deep enough to overflow a thread's stack and abort the
//! whole process. Each format caps at the deepest its valid values go, with
//! room to spare, and reads from a slice (lengths are checked against the
//! bytes left before anything is allocated).

use serde::Deserialize;

pub use rmp_serde::decode::Error as MsgpackError;

/// Reads a `T` from `bytes`, refusing maps and arrays nested more than
/// `max_depth` levels (the outermost value is level 1).
pub fn read_capped<'de, T: Deserialize<'de>>(
    bytes: &'de [u8],
    max_depth: usize,
) -> Result<T, MsgpackError> {
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    // rmp-serde fails on reaching 0, so it allows one level less than set.
    de.set_max_depth(max_depth + 1);
    T::deserialize(&mut de)
}

/// Why a read with [`read_capped`] at `max_depth` failed, in words.
pub fn why(e: &MsgpackError, max_depth: usize) -> String {
    match e {
        MsgpackError::DepthLimitExceeded => format!("nested more than {max_depth} levels deep"),
        MsgpackError::TypeMismatch(marker) => {
            format!("a value of the wrong type (MessagePack marker {marker:?})")
        }
        other => super::order::msgpack_why(other),
    }
}

/// The smallest cap [`read_capped`] reads `bytes` as a `T` with: how deep
/// a valid value goes, for the tests that keep each format's cap above it.
#[cfg(test)]
pub fn depth_of<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> usize {
    (1..=1024)
        .find(|&d| read_capped::<T>(bytes, d).is_ok())
        .expect("a valid value reads with rmp-serde's own cap")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_counts_the_outermost_value_as_level_one() {
        let three = [0x91, 0x91, 0x90]; // [[[]]]
        assert!(read_capped::<serde::de::IgnoredAny>(&three, 3).is_ok());
        let e = read_capped::<serde::de::IgnoredAny>(&three, 2).unwrap_err();
        assert_eq!(why(&e, 2), "nested more than 2 levels deep");
        assert_eq!(depth_of::<serde::de::IgnoredAny>(&three), 3);
    }

    #[test]
    fn far_deeper_than_the_stack_allows_is_refused_at_the_cap() {
        let deep = vec![0x91; 1_000_000];
        let e = read_capped::<serde::de::IgnoredAny>(&deep, 64).unwrap_err();
        assert!(matches!(e, MsgpackError::DepthLimitExceeded), "{e}");
    }
}
