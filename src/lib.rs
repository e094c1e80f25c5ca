//! allot: an inventory-aware concurrent order scheduler.
//!
//! # Layout
//!
//! In layer order: each module may use the ones above it, never one below
//! (`docs/architecture.md` has the rules and one order's path through them).
//!
//! - [`domain`], [`scheduler`], [`audit`] (the `allot-core` crate): the pure
//!   domain (values, commands, events, rules), the sans-IO scheduler of one
//!   shard, and the log-only audit of the promises. No I/O, no async, no clock.
//! - [`config`]: the layered TOML config, its validation, and the [`config::Router`].
//! - [`wire`]: every format on the wire: orders, decisions, intake messages,
//!   EVENTS batches, submit replies; untrusted bytes to validated values or
//!   rejections naming every bad field.
//! - [`cluster`]: which shards an instance should own (pure lease planning).
//! - [`views`]: the read model of orders and stock, folded from EVENTS (pure).
//! - [`ports`]: the traits the runtime and the ingress drive (event log,
//!   intake, snapshots, checkpoints, log feed, leases, fulfiller), with
//!   in-memory implementations.
//! - [`telemetry`]: every metric's name and buckets, and the handles that count.
//! - [`ingress`]: validate, route once, file: the one way in, transport-free.
//! - [`runtime`]: every async loop: one actor task per shard, claims between
//!   shards, the worker pool, the views follower, the lease coordinator.
//! - [`adapters`]: the edges: `nats` (the ports on JetStream, `allot.submit`,
//!   claims and reads over core NATS) and `http` (the JSON API). Neither uses
//!   the other.
//! - [`service`]: the composition root of `allot serve`.
//! - [`sim`]: a deterministic flash sale over every shard on a virtual clock.
#![forbid(unsafe_code)]

pub use allot_core::{audit, domain, saga, scheduler};

pub mod config;
pub mod wire;

pub mod cluster;
pub mod views;

pub mod ports;
pub mod telemetry;

pub mod ingress;
pub mod runtime;

pub mod adapters;

pub mod service;
pub mod sim;
