//! allot: an inventory-aware concurrent order scheduler.
//!
//! # Layout
//!
//! - [`domain`]: pure types and rules (orders, commands, events, policies).
#![forbid(unsafe_code)]

pub mod domain;
