//! Support for the property tests: scenario generators, the driver that
//! plays them on a harness, and the release-order model.

pub mod driver;
pub mod release;
pub mod scenario;
