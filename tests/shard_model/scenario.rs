//! Random scenarios: a shard's policies and a sequence of steps (commands,
//! worker outcomes, time, deliveries and crashes) over a few partitions.

use std::time::Duration;

use allot::domain::{
    CancelConfirmed, Exhaustion, ExhaustionRules, OrderId, Outcome, PartitionKey, RetryPolicy,
    Rules, Sku, SkuPattern, WarehouseId,
};
use allot::scheduler::ShardConfig;
use allot_core::testkit::Forwarding;
use proptest::prelude::*;

pub const BIG_HORIZON: usize = 100_000;

/// A (warehouse, SKU) pair by number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part(pub u8, pub u8);

impl Part {
    pub fn key(self) -> PartitionKey {
        PartitionKey::new(wh(self.0), Sku::new(&format!("s{}", self.1)).unwrap())
    }
}

pub fn wh(n: u8) -> WarehouseId {
    WarehouseId::new(&format!("w{n}")).unwrap()
}

pub fn oid(n: u8) -> OrderId {
    OrderId::new(&format!("o{n}")).unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Fulfilled,
    Retryable,
    Permanent,
    /// No usable answer (a timeout, a lost reply): the work may be done.
    Unknown,
}

impl Kind {
    pub fn outcome(self) -> Outcome {
        match self {
            Kind::Fulfilled => Outcome::Fulfilled,
            Kind::Retryable => Outcome::Failed {
                reason: "timeout".into(),
                retryable: true,
            },
            Kind::Permanent => Outcome::Failed {
                reason: "declined".into(),
                retryable: false,
            },
            Kind::Unknown => Outcome::Unknown {
                reason: "no answer in time".into(),
            },
        }
    }
}

#[derive(Debug, Clone)]
pub enum Step {
    Place {
        id: u8,
        part: Part,
        qty: u8,
        prio: u8,
        fallbacks: Vec<u8>,
    },
    Cancel {
        id: u8,
    },
    /// An order that failed validation at the edge.
    Invalid {
        id: u8,
    },
    SetStock {
        part: Part,
        on_hand: u8,
    },
    Restock {
        part: Part,
        units: u8,
    },
    Adjust {
        part: Part,
        delta: i8,
    },
    /// Places and stock changes as one `Command::Batch`.
    Batch(Vec<Step>),
    /// A worker reports on the `pick`-th outstanding dispatch.
    Outcome {
        pick: usize,
        kind: Kind,
    },
    /// A late or repeated report on an earlier dispatch.
    Replay {
        pick: usize,
        kind: Kind,
    },
    Advance {
        ms: u16,
    },
    /// The intake delivers the `pick`-th forwarded copy in transit.
    Deliver {
        pick: usize,
    },
    /// Restart from the log (everything was durable).
    Crash,
    /// Deliver a place or cancel, run only `outputs` of the shard's
    /// outputs, crash, recover, and redeliver it unless it was acked.
    Torn {
        inner: Box<Step>,
        outputs: u8,
    },
}

#[derive(Debug, Clone)]
pub struct Scenario {
    /// Exhaustion policy per SKU.
    pub policies: Vec<Exhaustion>,
    pub max_retries: u32,
    pub backoff_ms: u64,
    pub cancel_confirmed: CancelConfirmed,
    pub max_wait_ms: u64,
    pub max_batch_events: usize,
    pub forwarding: Forwarding,
    pub steps: Vec<Step>,
}

impl Scenario {
    pub fn config(&self, horizon: usize) -> ShardConfig {
        let rules = (0..)
            .zip(&self.policies)
            .map(|(s, p)| (SkuPattern::new(&format!("s{s}")).unwrap(), p.clone()))
            .collect();
        ShardConfig {
            rules: Rules {
                exhaustion: ExhaustionRules {
                    rules,
                    default: Exhaustion::Reject,
                },
                retry: RetryPolicy {
                    max_retries: self.max_retries,
                    base_backoff: Duration::from_millis(self.backoff_ms),
                    max_backoff: Duration::from_millis(4 * self.backoff_ms),
                },
                cancel_confirmed: self.cancel_confirmed,
            },
            max_wait: Duration::from_millis(self.max_wait_ms),
            dedupe_horizon: horizon,
            max_batch_events: self.max_batch_events,
            ..ShardConfig::default()
        }
    }
}

/// Knobs of the generator.
#[derive(Debug, Clone, Copy)]
pub struct Gen {
    pub warehouses: u8,
    pub skus: u8,
    pub max_qty: u8,
    pub max_prio: u8,
    /// Weight of clean and torn crashes among the steps.
    pub crashes: u32,
    pub max_steps: usize,
    /// Order ids are drawn from `0..ids`, mostly from the first few so
    /// that duplicates are common.
    pub ids: u8,
}

pub const GEN: Gen = Gen {
    warehouses: 3,
    skus: 2,
    max_qty: 5,
    max_prio: 2,
    crashes: 2,
    max_steps: 60,
    ids: 24,
};

/// Few partitions, unit quantities, long runs: many orders wait on each
/// other.
pub const CROWDED: Gen = Gen {
    warehouses: 2,
    skus: 1,
    max_qty: 1,
    max_steps: 150,
    ids: 80,
    ..GEN
};

fn part(g: Gen) -> impl Strategy<Value = Part> {
    (0..g.warehouses, 0..g.skus).prop_map(|(w, s)| Part(w, s))
}

fn id(g: Gen) -> impl Strategy<Value = u8> {
    prop_oneof![0..g.ids.min(8), 0..g.ids]
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        3 => Just(Kind::Fulfilled),
        2 => Just(Kind::Retryable),
        1 => Just(Kind::Permanent),
        2 => Just(Kind::Unknown),
    ]
}

fn place(g: Gen) -> impl Strategy<Value = Step> {
    (
        id(g),
        part(g),
        1..=g.max_qty,
        prop_oneof![2 => Just(0u8), 1 => 0..=g.max_prio],
        prop::collection::vec(0..g.warehouses, 0..=2),
    )
        .prop_map(|(id, part, qty, prio, fallbacks)| Step::Place {
            id,
            part,
            qty,
            prio,
            fallbacks,
        })
}

fn stock(g: Gen) -> impl Strategy<Value = Step> {
    prop_oneof![
        (part(g), prop_oneof![0..=2u8, 0..=8u8])
            .prop_map(|(part, on_hand)| Step::SetStock { part, on_hand }),
        (part(g), 1..=5u8).prop_map(|(part, units)| Step::Restock { part, units }),
        (part(g), -6..=4i8).prop_map(|(part, delta)| Step::Adjust { part, delta }),
    ]
}

fn step(g: Gen) -> impl Strategy<Value = Step> {
    let torn = (
        prop_oneof![place(g), id(g).prop_map(|id| Step::Cancel { id })],
        0..4u8,
    )
        .prop_map(|(inner, outputs)| Step::Torn {
            inner: Box::new(inner),
            outputs,
        });
    prop_oneof![
        30 => place(g),
        5 => id(g).prop_map(|id| Step::Cancel { id }),
        2 => id(g).prop_map(|id| Step::Invalid { id }),
        15 => stock(g),
        3 => prop::collection::vec(prop_oneof![place(g), stock(g)], 1..5).prop_map(Step::Batch),
        18 => (any::<usize>(), kind()).prop_map(|(pick, kind)| Step::Outcome { pick, kind }),
        4 => (any::<usize>(), kind()).prop_map(|(pick, kind)| Step::Replay { pick, kind }),
        10 => prop_oneof![0..200u16, 0..5000u16].prop_map(|ms| Step::Advance { ms }),
        4 => any::<usize>().prop_map(|pick| Step::Deliver { pick }),
        g.crashes => Just(Step::Crash),
        g.crashes => torn,
    ]
}

fn policy() -> impl Strategy<Value = Exhaustion> {
    prop_oneof![
        Just(Exhaustion::Reject),
        (100..3000u64).prop_map(|ms| Exhaustion::Backorder {
            ttl: Duration::from_millis(ms)
        }),
        Just(Exhaustion::Reroute),
    ]
}

pub fn scenario(g: Gen) -> impl Strategy<Value = Scenario> {
    let initial = prop::collection::vec((part(g), 0..=8u8), 0..=6).prop_map(|v| {
        v.into_iter()
            .map(|(part, on_hand)| Step::SetStock { part, on_hand })
    });
    (
        prop::collection::vec(policy(), g.skus as usize),
        0..=2u32,
        prop_oneof![Just(10u64), Just(200)],
        prop_oneof![
            Just(CancelConfirmed::Restock),
            Just(CancelConfirmed::Refuse)
        ],
        prop_oneof![Just(100u64), Just(1000), Just(5000)],
        prop_oneof![Just(1usize), Just(3), Just(4096)],
        prop_oneof![
            Just(Forwarding::ReportFirst),
            Just(Forwarding::CopyFirst),
            Just(Forwarding::Held)
        ],
        initial,
        prop::collection::vec(step(g), 1..g.max_steps),
    )
        .prop_map(
            |(policies, max_retries, backoff_ms, cc, max_wait_ms, batch, fwd, init, steps)| {
                Scenario {
                    policies,
                    max_retries,
                    backoff_ms,
                    cancel_confirmed: cc,
                    max_wait_ms,
                    max_batch_events: batch,
                    forwarding: fwd,
                    steps: init.chain(steps).collect(),
                }
            },
        )
}

pub fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}
