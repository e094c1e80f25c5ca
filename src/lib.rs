//! allot: an inventory-aware concurrent order scheduler.
//!
//! # Layout
//!
//! - [`domain`]: pure types and rules (orders, commands, events, policies).
//! - [`config`]: the TOML config file, its validation, and the order router.
#![forbid(unsafe_code)]

pub mod config;
pub mod domain;
