//! A test model of one shard, the support for the property tests
//! (`tests/properties.rs`): scenario generators, the driver that plays them
//! on a harness, and the release-order model. Not to be confused with
//! `src/sim`, the `allot simulate` flash sale.

pub mod driver;
pub mod release;
pub mod scenario;
