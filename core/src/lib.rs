//! allot's core: everything that decides, and nothing that waits. No I/O,
//! no async, no clock: time comes in as a value, and every input and output
//! is plain data, so the same code runs under the service, the simulation
//! and the tests.
//!
//! # Layout
//!
//! - [`domain`]: validated values, commands, events, the shard state they
//!   fold into, and the rules that decide.
//! - [`scheduler`]: the sans-IO scheduler of one shard (`handle_*` inputs
//!   with `now`, `poll_output()` outputs): group commit, acks after
//!   durability, dispatch, timers.
//! - [`saga`]: the sans-IO cart coordinator of one shard: reserves a
//!   cart's lines in their partitions, holds, enacts per warehouse and
//!   compensates, all or nothing or line by line; its state is a fold of
//!   its events.
//! - [`audit`]: checks the promises (no oversell, one decision per order,
//!   stock conserved) from event logs alone.
//! - `testkit` (feature `testkit`): a synchronous single-shard driver for
//!   tests.
#![forbid(unsafe_code)]

pub mod audit;
pub mod domain;
pub mod saga;
pub mod scheduler;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
