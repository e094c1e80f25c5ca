//! allot: an inventory-aware concurrent order scheduler.
//!
//! # Layout
//!
//! - [`domain`]: pure types and rules (orders, commands, events, policies).
//! - [`config`]: the TOML config file, its validation, and the order router.
//! - [`ports`]: traits the runtime drives (event log, intake queue, fulfiller) and in-memory implementations.
//! - [`scheduler`]: the sans-IO core of one shard: releases orders within stock, group-commits decisions, drives acks, dispatches and timers.
//! - [`testkit`]: a synchronous single-shard driver and log-only invariant checks, for tests.
#![forbid(unsafe_code)]

pub mod config;
pub mod domain;
pub mod ports;
pub mod scheduler;
pub mod testkit;
