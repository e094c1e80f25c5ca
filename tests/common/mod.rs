//! Helpers shared by the integration tests. Each test binary includes this
//! module (`mod common;`) and uses only part of it, so unused items and
//! re-exports are expected rather than dead.
#![allow(dead_code, unused_imports)]

pub mod allot;
pub mod nats;
pub mod netns;
pub mod prometheus;
