//! Runs one seed: the real `run_shard` for every shard on the faulty ports,
//! a producer, and a crasher, under a paused current-thread tokio runtime
//! whose only randomness is the seed. Faults stop after the last send plus
//! a while; then the system must settle, stop cleanly and pass the checks.

use std::sync::Arc;
use std::time::Duration;

use allot::domain::Timestamp;
use allot::ports::{MemSnapshots, ShardId};
use allot::runtime::{run_shard, Clock, Ports, RuntimeConfig, ShardExit, Workers};
use allot::scheduler::ShardConfig;
use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{sleep, Instant};
use tokio_util::sync::CancellationToken;

use super::check;
use super::intake::FaultIntake;
use super::ports::{FaultFulfiller, FaultLog, FaultSnapshots, DEDUPE_HORIZON};
use super::scenario::{self, rules, Scenario};
use super::world::{Rates, World};

pub type FaultPorts = Ports<FaultLog, FaultIntake, FaultSnapshots, FaultFulfiller>;

/// How long faults go on after the producer's last send.
const STORM_AFTER_SENDS: Duration = Duration::from_millis(1_500);
/// Virtual time the system gets to settle once faults stop.
const SETTLE_WITHIN: Duration = Duration::from_secs(120);

/// What one seed's run came to.
pub struct Run {
    pub violations: Vec<String>,
    pub trace: String,
    pub virtual_time: Duration,
}

fn runtime_config(rng: &mut ChaCha8Rng) -> RuntimeConfig {
    RuntimeConfig {
        shard: ShardConfig {
            rules: rules(),
            max_wait: Duration::from_millis(rng.gen_range(50..500)),
            dedupe_horizon: DEDUPE_HORIZON,
            max_batch_events: rng.gen_range(2..64),
            ..ShardConfig::default()
        },
        fetch_batch: rng.gen_range(1..16),
        idle_poll: Duration::from_millis(rng.gen_range(10..50)),
        snapshot_every_events: rng.gen_range(4..40),
        snapshot_every: Some(Duration::from_millis(rng.gen_range(50..1_000))),
        append_timeout: Duration::from_millis(100),
        worker_timeout: Duration::from_millis(50),
        drain_deadline: Duration::from_secs(5),
        ..RuntimeConfig::default()
    }
}

/// Failed or unanswered worker calls injected per order: uncapped (so an
/// order's unknown outcomes may outrun the retry budget, the path that
/// must never reject possibly enacted work), unless
/// `ALLOT_FAULT_CAPPED_TIMEOUTS=1` caps them at what the retry policy
/// retries.
fn failures_per_order(config: &RuntimeConfig) -> Option<u32> {
    let capped = std::env::var("ALLOT_FAULT_CAPPED_TIMEOUTS").is_ok_and(|v| v == "1");
    capped.then_some(config.shard.rules.retry.max_retries)
}

/// Runs one seed to the end on the current thread.
pub fn run(seed: u64) -> Run {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime");
    rt.block_on(run_seed(seed))
}

struct Shards {
    ports: Arc<FaultPorts>,
    config: RuntimeConfig,
    world: Arc<World>,
    tasks: Vec<Option<JoinHandle<Result<ShardExit, allot::runtime::RuntimeError>>>>,
    restart_at: Vec<Option<Instant>>,
    stops: Vec<CancellationToken>,
}

impl Shards {
    fn start(&mut self, id: ShardId) {
        self.world.note(format_args!("start s{id}"));
        let stop = CancellationToken::new();
        self.stops[id as usize] = stop.clone();
        self.tasks[id as usize] = Some(tokio::spawn(run_shard(
            id,
            self.ports.clone(),
            self.config.clone(),
            stop,
        )));
        self.restart_at[id as usize] = None;
    }

    /// Kills the shard's task where it stands (its workers and appends go
    /// with it) and schedules a new one on the same ports.
    fn crash(&mut self, id: ShardId, why: &str, restart_after: Duration) {
        if let Some(task) = self.tasks[id as usize].take() {
            task.abort();
            self.world.note(format_args!(
                "killed s{id} ({why}); restart in {restart_after:?}"
            ));
            self.restart_at[id as usize] = Some(Instant::now() + restart_after);
        }
    }

    fn all_running(&self) -> bool {
        self.tasks.iter().all(Option::is_some)
    }

    /// Restarts due shards; a task that ended on its own is a violation.
    fn supervise(&mut self) {
        for id in 0..self.tasks.len() {
            if self.restart_at[id].is_some_and(|at| at <= Instant::now()) {
                self.start(id as ShardId);
            }
            if self.tasks[id].as_ref().is_some_and(JoinHandle::is_finished) {
                let task = self.tasks[id].take().expect("present");
                let exit = allot::ports::now_or_never(task);
                self.world
                    .violation(format!("s{id} stopped on its own: {exit:?}"));
                self.start(id as ShardId);
            }
        }
    }
}

async fn produce(world: Arc<World>, ports: Arc<FaultPorts>, scenario: Arc<Scenario>) {
    for send in &scenario.sends {
        sleep(send.after).await;
        world.note(format_args!(
            "publish s{} {}",
            send.shard,
            describe(&send.item)
        ));
        ports.intake.publish(send.shard, send.item.clone());
    }
    world.note(format_args!("producer done"));
}

fn describe(item: &allot::ports::Intake) -> String {
    match item {
        allot::ports::Intake::Order(o) | allot::ports::Intake::Forwarded(o) => {
            format!("{} {} x{}", o.id, o.partition, o.quantity.get())
        }
        allot::ports::Intake::Command(c) => format!("{c:?}"),
        allot::ports::Intake::Invalid { id, .. } => format!("invalid {id}"),
        other => format!("{other:?}"),
    }
}

async fn run_seed(seed: u64) -> Run {
    let started = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let scenario = Arc::new(scenario::draw(&mut rng));
    let rates = Rates::draw(&mut rng);
    let mut config = runtime_config(&mut rng);
    config.shard.shards = scenario.shards;
    config.clock = Clock::tokio(Timestamp(1_700_000_000_000));
    let route = scenario::shard_of(scenario.shards);
    let fault_rng = ChaCha8Rng::seed_from_u64(rng.gen());
    let (world, mut crash_requests) = World::new(fault_rng, rates, Box::new(route.clone()));
    world.note(format_args!(
        "seed {seed}: {} shards, {} orders, {:?}, {:?}",
        scenario.shards,
        scenario.orders.len(),
        world.rates,
        config
    ));
    let ports = Arc::new(Ports {
        log: FaultLog {
            world: world.clone(),
            append_timeout: config.append_timeout,
        },
        intake: FaultIntake::new(world.clone()),
        snapshots: FaultSnapshots {
            world: world.clone(),
            inner: MemSnapshots::default(),
            replayed: Mutex::default(),
            shards: scenario.shards,
        },
        workers: Workers::new(
            FaultFulfiller::new(
                world.clone(),
                config.worker_timeout,
                failures_per_order(&config),
            ),
            |_| 4,
            config.worker_timeout,
        ),
        shard_of: Box::new(route),
        claims: Arc::new(allot::runtime::claims::ClaimRouter::local()),
    });
    let n = scenario.shards as usize;
    let mut shards = Shards {
        ports: ports.clone(),
        config,
        world: world.clone(),
        tasks: (0..n).map(|_| None).collect(),
        restart_at: vec![None; n],
        stops: vec![CancellationToken::new(); n],
    };
    for id in 0..n {
        shards.start(id as ShardId);
    }
    let producer = tokio::spawn(produce(world.clone(), ports.clone(), scenario.clone()));
    let settled = storm_then_settle(&mut shards, &mut crash_requests, &producer, &scenario).await;
    if settled {
        stop_all(&mut shards).await;
        check::after_run(&world, &ports, &scenario);
    }
    let violations = world.violations.lock().clone();
    Run {
        violations,
        trace: world.trace(),
        virtual_time: started.elapsed(),
    }
}

/// Injects crashes while the producer runs and a while after, then lets the
/// system settle. False (with a violation) if it never does.
async fn storm_then_settle(
    shards: &mut Shards,
    crash_requests: &mut mpsc::UnboundedReceiver<(ShardId, &'static str)>,
    producer: &JoinHandle<()>,
    scenario: &Scenario,
) -> bool {
    let world = shards.world.clone();
    let mut storm_ends: Option<Instant> = None;
    let mut settle_by: Option<Instant> = None;
    let mut next_crash = Instant::now() + world.delay(world.rates.crash_every * 2);
    loop {
        tokio::select! {
            biased;
            Some((id, step)) = crash_requests.recv() => {
                let after = world.delay(Duration::from_millis(300));
                shards.crash(id, step, after);
            }
            () = sleep(Duration::from_millis(10)) => {}
        }
        shards.supervise();
        let now = Instant::now();
        if world.faults_on() && now >= next_crash {
            let id = world.below(shards.tasks.len() as u64) as ShardId;
            let after = world.delay(Duration::from_millis(300));
            world.note(format_args!("crash s{id} at a random moment"));
            shards.crash(id, "random moment", after);
            next_crash = now + world.delay(world.rates.crash_every * 2);
        }
        if storm_ends.is_none() && producer.is_finished() {
            storm_ends = Some(now + STORM_AFTER_SENDS);
        }
        if world.faults_on() && storm_ends.is_some_and(|at| now >= at) {
            world.stop_faults();
            settle_by = Some(now + SETTLE_WITHIN);
        }
        if settle_by.is_some()
            && shards.all_running()
            && check::quiet(&world, &shards.ports, scenario)
        {
            return true;
        }
        if settle_by.is_some_and(|at| now >= at) {
            world.violation(format!(
                "not settled {SETTLE_WITHIN:?} after faults stopped: {}",
                check::unsettled(&world, &shards.ports, scenario)
            ));
            return false;
        }
    }
}

/// Stops every shard as the service does and expects a clean stop.
async fn stop_all(shards: &mut Shards) {
    for stop in &shards.stops {
        stop.cancel();
    }
    for (id, task) in shards.tasks.iter_mut().enumerate() {
        let Some(task) = task.take() else {
            continue;
        };
        match tokio::time::timeout(Duration::from_secs(30), task).await {
            Ok(Ok(Ok(ShardExit::Stopped))) => {}
            other => shards
                .world
                .violation(format!("s{id} did not stop cleanly: {other:?}")),
        }
    }
    shards.world.note(format_args!("all shards stopped"));
}
