//! allot: an inventory-aware concurrent order scheduler.
//!
//! # Layout
//!
//! - [`domain`]: pure types and rules (orders, commands, events, policies).
//! - [`adapters`]: NATS JetStream implementations of the ports, and the broker set-up.
//! - [`config`]: the TOML config file, its validation, and the order router.
//! - [`audit`]: checks the promises (no oversell, one decision per order, stock conserved) from event logs alone.
//! - [`ports`]: traits the runtime drives (event log, intake queue, fulfiller) and in-memory implementations.
//! - [`runtime`]: the async loop: one actor task per shard drives its scheduler through the ports.
//! - [`scheduler`]: the sans-IO core of one shard: releases orders within stock, group-commits decisions, drives acks, dispatches and timers.
//! - [`service`]: wiring for `allot serve` (NATS connection, streams, ingress, shard tasks) and the live demo.
//! - [`sim`]: a deterministic flash sale over every shard on a virtual clock, audited at the end.
//! - [`wire`]: the versioned MessagePack/JSON formats of orders and decisions; decodes untrusted bytes into validated orders or structured rejections.
//! - [`telemetry`]: Prometheus metrics: the recorder, every metric's name and buckets, and the handles the runtime and adapters count with.
//! - [`testkit`]: a synchronous single-shard driver and log-only invariant checks, for tests.
#![forbid(unsafe_code)]

pub mod adapters;
pub mod cluster;
pub mod config;
pub mod ingress;
pub mod ports;
pub mod runtime;
pub mod service;
pub mod sim;
pub mod telemetry;
pub mod views;
pub mod wire;

pub use allot_core::{audit, domain, scheduler};
