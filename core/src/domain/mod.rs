//! The pure domain: validated values, commands, events, the shard state they
//! fold into, and the rules that decide. No I/O, no clock, no async; time
//! comes in as a value.

pub mod messages;
pub(crate) mod orders;
pub mod policy;
pub(crate) mod queue;
pub mod rules;
pub mod state;
pub mod types;

pub use messages::{Command, Event, FieldError, Order, Outcome, RejectReason};
pub use policy::{CancelConfirmed, Exhaustion, ExhaustionRules, RetryPolicy, SkuPattern};
pub use rules::{
    decide, Attempt, CommandError, Decider, Known, OutcomeEffect, Rules, Settled, Verdict,
};
pub use state::{Final, Live, Partition, PartitionIdx, ShardState, StateError, Status};
pub use types::{
    OrderId, PartitionKey, Priority, Quantity, Region, Sku, Timestamp, ValueError, WarehouseId,
};
