//! The pure domain: validated values, commands, events, the shard state they
//! fold into, and the rules that decide. No I/O, no clock, no async; time
//! comes in as a value.

pub mod cart;
pub mod cart_events;
pub mod dedupe;
pub mod messages;
pub mod orders;
pub mod policy;
pub(crate) mod queue;
pub mod reroute;
pub mod rules;
pub mod state;
pub mod types;

pub use cart::{Cart, CartConfig, CartLine, Fill, LineId};
pub use cart_events::{CartEvent, CartReason};
pub use dedupe::{DedupeConfig, Fingerprint, IdTable, Ids, Window};
pub use messages::{Claim, ClaimAnswer, Command, Event, FieldError, Order, Outcome, RejectReason};
pub use orders::{Final, Live, Status};
pub use policy::{CancelConfirmed, Exhaustion, ExhaustionRules, RetryPolicy, SkuPattern};
pub use rules::{
    decide, Attempt, CommandError, Decider, Known, Origin, OutcomeEffect, Rules, Settled, Verdict,
};
pub use state::{Partition, PartitionIdx, ShardState, StateError};
pub use types::{
    OrderId, PartitionKey, Priority, Quantity, Region, Sku, Timestamp, ValueError, WarehouseId,
};
