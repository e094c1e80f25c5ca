//! The systems compared, each at two durability settings, and the order
//! they run in: every repeat runs every system once (allot, raw JetStream,
//! PostgreSQL, Redis, then again), each at maximum throughput and then open
//! loop at a fraction of that run's own maximum, so a machine that gets
//! busier during the bench slows every system alike.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::pg;
use crate::procs::{AllotSpec, NatsSync};
use crate::publish::Pace;
use crate::redis_lua::{self, Pipelining};
use crate::run_allot;
use crate::run_raw::{self, RawAck};
use crate::stats::Run;
use crate::workload::Workload;

/// One system at one durability setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    Allot(NatsSync),
    /// allot with its producer publishing [`Bench::batch`] orders per
    /// message (batched intake).
    AllotBatched(NatsSync),
    Raw(RawAck),
    Pg {
        sync_on: bool,
    },
    Redis {
        always: bool,
    },
}

impl System {
    /// Every system, in the order each repeat runs them.
    pub const ALL: [System; 10] = [
        System::Allot(NatsSync::Default),
        System::Allot(NatsSync::Always),
        System::AllotBatched(NatsSync::Default),
        System::AllotBatched(NatsSync::Always),
        System::Raw(RawAck::PerMessage),
        System::Raw(RawAck::Batched),
        System::Pg { sync_on: false },
        System::Pg { sync_on: true },
        System::Redis { always: false },
        System::Redis { always: true },
    ];

    /// The name in results.json and `--systems`.
    pub fn key(self) -> &'static str {
        match self {
            System::Allot(NatsSync::Default) => "allot",
            System::Allot(NatsSync::Always) => "allot_always",
            System::AllotBatched(NatsSync::Default) => "allot_batch",
            System::AllotBatched(NatsSync::Always) => "allot_always_batch",
            System::Raw(RawAck::PerMessage) => "raw_ack",
            System::Raw(RawAck::Batched) => "raw_batch_ack",
            System::Pg { sync_on: false } => "pg_sync_off",
            System::Pg { sync_on: true } => "pg_sync_on",
            System::Redis { always: false } => "redis_everysec",
            System::Redis { always: true } => "redis_always",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            System::Allot(NatsSync::Default) => "allot (nats defaults)",
            System::Allot(NatsSync::Always) => "allot (nats sync always)",
            System::AllotBatched(NatsSync::Default) => "allot batched (nats defaults)",
            System::AllotBatched(NatsSync::Always) => "allot batched (nats sync always)",
            System::Raw(RawAck::PerMessage) => "raw JetStream, per-message ack",
            System::Raw(RawAck::Batched) => "raw JetStream, batched ack",
            System::Pg { sync_on: false } => "PostgreSQL synchronous_commit=off",
            System::Pg { sync_on: true } => "PostgreSQL synchronous_commit=on",
            System::Redis { always: false } => "Redis AOF everysec",
            System::Redis { always: true } => "Redis AOF always",
        }
    }

    /// When an acknowledged order is on disk.
    pub fn durability(self) -> &'static str {
        match self {
            System::Allot(NatsSync::Default)
            | System::AllotBatched(NatsSync::Default)
            | System::Raw(_) => {
                "written before the ack, fsynced within 2 min (nats-server default)"
            }
            System::Pg { sync_on: false } => "WAL flushed within ~200 ms of the commit",
            System::Redis { always: false } => "AOF fsynced every second",
            System::Allot(NatsSync::Always)
            | System::AllotBatched(NatsSync::Always)
            | System::Pg { sync_on: true } => "fsynced before the ack",
            System::Redis { always: true } => "AOF fsynced before the reply",
        }
    }

    pub fn by_key(key: &str) -> Option<System> {
        System::ALL.into_iter().find(|s| s.key() == key)
    }
}

/// Every run of one system in one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct SystemRuns {
    pub key: &'static str,
    pub label: &'static str,
    pub durability: &'static str,
    /// One per repeat, at maximum throughput.
    pub max: Vec<Run>,
    /// One per repeat whose max run passed, open loop.
    pub open: Vec<Run>,
}

/// What the bench runs against, fixed for the whole bench.
pub struct Bench {
    pub nats_server: PathBuf,
    /// allot's config (the raw baselines read its router from it too).
    pub config: PathBuf,
    pub allot: AllotSpec,
    pub pg: Option<String>,
    pub redis_url: Option<String>,
    pub pg_clients: usize,
    pub redis_pipelining: Pipelining,
    pub open_fraction: f64,
    pub repeats: usize,
    pub systems: Vec<System>,
    /// Orders per message of the batched allot systems.
    pub batch: usize,
}

impl Bench {
    /// Runs one system once; a run that errors is reported as failed.
    async fn run(&self, system: System, workload: &Arc<Workload>, pace: Pace) -> Run {
        let result = match system {
            System::Allot(sync) => {
                run_allot::run(&self.nats_server, sync, &self.allot, workload, pace).await
            }
            System::AllotBatched(sync) => {
                let spec = AllotSpec {
                    batch: self.batch,
                    ..self.allot.clone()
                };
                run_allot::run(&self.nats_server, sync, &spec, workload, pace).await
            }
            System::Raw(ack) => {
                run_raw::run(&self.nats_server, &self.config, workload, ack, pace).await
            }
            System::Pg { sync_on } => {
                let conninfo = self.pg.as_deref().expect("PostgreSQL systems need --pg");
                pg::run(conninfo, sync_on, workload, self.pg_clients, pace).await
            }
            System::Redis { always } => {
                let url = self
                    .redis_url
                    .as_deref()
                    .expect("Redis systems need --redis");
                let fsync = if always { "always" } else { "everysec" };
                redis_lua::run(url, fsync, workload, self.redis_pipelining, pace).await
            }
        };
        result.unwrap_or_else(|e| {
            let mut run = Run {
                mode: pace.mode(),
                target_rate: pace.rate(),
                orders: workload.orders.len() as u64,
                ..Run::default()
            };
            run.gate.problem(format!("the run failed: {e:#}"));
            run
        })
    }

    /// The systems that run `workload`: carts only in allot, one per
    /// message (the baselines have no multi-line order, and a cart is
    /// never batched; `carts` is held against allot's own single-order
    /// rate instead).
    fn systems_for(&self, workload: &Workload) -> Vec<System> {
        let carts = workload.scenario.carts();
        let (run, skip): (Vec<System>, Vec<System>) = self
            .systems
            .iter()
            .copied()
            .partition(|s| !carts || matches!(s, System::Allot(_)));
        for s in skip {
            eprintln!(
                "[{}] skipping {}: no carts",
                workload.scenario.name,
                s.label()
            );
        }
        run
    }

    /// Every repeat of every system on `full` (max) and `open` (open loop).
    pub async fn scenario(&self, full: Workload, open: Workload) -> Vec<SystemRuns> {
        let name = full.scenario.name;
        let systems = self.systems_for(&full);
        let (full, open) = (Arc::new(full), Arc::new(open));
        let mut all: Vec<SystemRuns> = systems
            .iter()
            .map(|&s| SystemRuns {
                key: s.key(),
                label: s.label(),
                durability: s.durability(),
                max: vec![],
                open: vec![],
            })
            .collect();
        for repeat in 1..=self.repeats {
            for (i, &system) in systems.iter().enumerate() {
                let tag = format!("[{name} {repeat}/{}] {}", self.repeats, system.label());
                eprintln!("{tag}: max, {} orders", full.orders.len());
                let load = load_average();
                let mut max = self.run(system, &full, Pace::Max).await;
                (max.repeat, max.load) = (repeat, load);
                eprintln!("{tag}:   {}", max.line());
                if let Some(per_s) = max.per_s() {
                    let per_sec = per_s * self.open_fraction;
                    eprintln!(
                        "{tag}: open loop at {per_sec:.0}/s, {} orders",
                        open.orders.len()
                    );
                    let load = load_average();
                    let mut run = self.run(system, &open, Pace::Rate { per_sec }).await;
                    (run.repeat, run.load) = (repeat, load);
                    eprintln!("{tag}:   {}", run.line());
                    all[i].open.push(run);
                }
                all[i].max.push(max);
            }
        }
        all
    }
}

/// The 1, 5 and 15 minute load averages: the machine is shared, and the
/// figures mean little when it is busy.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|e| format!("unknown ({e})"))
}
