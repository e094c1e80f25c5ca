//! Seeded fault simulation of the whole shard pipeline (intake, core, event
//! log, acks, workers, snapshots, forwards between shards) on the real
//! runtime. See RELIABILITY.md.
//!
//! - `cargo test --test faults` runs 1,000 seeds (`ALLOT_FAULT_SEEDS=N` for
//!   more, `ALLOT_FAULT_FIRST=N` to start elsewhere);
//! - `ALLOT_FAULT_SEED=N cargo test --test faults -- --nocapture` replays
//!   one seed and prints its whole trace;
//! - worker failures and timeouts may outrun the retry budget (the unknown
//!   outcome path); `ALLOT_FAULT_CAPPED_TIMEOUTS=1` caps them at the retry
//!   budget (both findings in RELIABILITY.md).
//!
//! A failing seed prints its replay command, the end of its trace and the
//! path of a file holding all of it.

mod fault_sim;

use std::path::PathBuf;
use std::time::Instant;

use fault_sim::driver::{run, Run};

const DEFAULT_SEEDS: u64 = 1_000;
/// Trace lines printed with a failure (the file has them all).
const TRACE_TAIL: usize = 60;

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|e| panic!("{name}={value:?} is not a seed count or number: {e}")),
    )
}

/// Writes the whole trace to a file and returns the failure report.
fn report(seed: u64, run: &Run) -> String {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("faults");
    let path = dir.join(format!("seed-{seed}.trace"));
    let saved = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&path, &run.trace))
        .map_or_else(
            |e| format!("(trace not saved: {e})"),
            |()| path.display().to_string(),
        );
    let lines: Vec<&str> = run.trace.lines().collect();
    let tail = lines[lines.len().saturating_sub(TRACE_TAIL)..].join("\n");
    format!(
        "seed {seed} broke an invariant:\n  {}\nreplay: ALLOT_FAULT_SEED={seed} cargo test --test faults -- --nocapture\nwhole trace: {saved}\nlast {TRACE_TAIL} trace lines:\n{tail}",
        run.violations.join("\n  ")
    )
}

/// Trace lines counted per kind in the summary: (label, what the line holds).
const KINDS: [(&str, &str); 19] = [
    ("crash at a port step", " at step: "),
    ("crash at a random moment", "at a random moment"),
    ("ack lost", "] lost"),
    ("delivered twice", "delivered twice"),
    ("redelivered after ack", "redelivered after its ack"),
    ("ack wait redelivery", "ack wait over"),
    ("append refused", "append refused"),
    ("append landed, error", "landed, answer lost"),
    ("append landed, timed out", "landed, times out"),
    ("append retried, deduped", "again (deduped)"),
    ("snapshot save failed", "not saved"),
    ("worker enacted, timed out", "done, answer times out"),
    ("worker slow", "slow, times out"),
    ("worker failed", "fails"),
    ("enactment replayed by id", "already enacted"),
    ("forward between shards", " forward "),
    (
        "another partition's copy refused",
        "copies refused as duplicates",
    ),
    ("cart confirmed", "cart confirmed"),
    ("cart rejected or cancelled", "cart rejected or cancelled"),
];

/// What a batch of seeds came to.
#[derive(Default)]
struct Tally {
    /// Failure reports, in seed order.
    failures: Vec<(u64, String)>,
    faults: usize,
    kinds: [usize; KINDS.len()],
}

impl Tally {
    fn add(mut self, seed: u64, run: &Run) -> Self {
        for line in run.trace.lines() {
            let crash = line.contains(" crash s");
            self.faults += usize::from(line.contains(" fault ") || crash);
            for (n, (_, needle)) in KINDS.iter().enumerate() {
                self.kinds[n] += usize::from(line.contains(needle));
            }
        }
        if !run.violations.is_empty() {
            self.failures.push((seed, report(seed, run)));
        }
        self
    }

    fn merge(mut self, other: Self) -> Self {
        self.failures.extend(other.failures);
        self.faults += other.faults;
        for (mine, theirs) in self.kinds.iter_mut().zip(other.kinds) {
            *mine += theirs;
        }
        self.failures.sort_by_key(|(seed, _)| *seed);
        self
    }
}

/// Runs seeds `first..first + count` over the machine's cores.
fn run_seeds(first: u64, count: u64) -> Tally {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (first + t..first + count)
                        .step_by(threads as usize)
                        .fold(Tally::default(), |tally, seed| tally.add(seed, &run(seed)))
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a seed runner panicked"))
            .fold(Tally::default(), Tally::merge)
    })
}

#[test]
fn every_seed_keeps_every_invariant() {
    if let Some(seed) = env_u64("ALLOT_FAULT_SEED") {
        let run = run(seed);
        println!("{}", run.trace);
        println!(
            "seed {seed}: {} virtual, {} violations",
            humantime::format_duration(run.virtual_time),
            run.violations.len()
        );
        assert!(run.violations.is_empty(), "{}", report(seed, &run));
        return;
    }
    let first = env_u64("ALLOT_FAULT_FIRST").unwrap_or(0);
    let count = env_u64("ALLOT_FAULT_SEEDS").unwrap_or(DEFAULT_SEEDS);
    let started = Instant::now();
    let tally = run_seeds(first, count);
    println!(
        "{count} seeds from {first} in {:.1?}: {} faults injected, {} failed",
        started.elapsed(),
        tally.faults,
        tally.failures.len(),
    );
    for ((label, _), n) in KINDS.iter().zip(tally.kinds) {
        println!("  {label:<26} {n:>8}");
    }
    assert!(
        tally.failures.is_empty(),
        "{} of {count} seeds failed; the first:\n{}",
        tally.failures.len(),
        tally.failures[0].1
    );
    // The faults it claims to inject happened, every kind of them.
    if count >= DEFAULT_SEEDS {
        for ((label, _), n) in KINDS.iter().zip(tally.kinds) {
            assert!(
                n > 0,
                "no {label} in {count} seeds: that fault is not injected"
            );
        }
    }
}

/// Seeds that found a bug, replayed on every run. The simulation's random
/// streams have changed since (mid-sale stock counts, uncapped timeouts), so
/// a seed no longer replays its old trace; each scenario is also pinned as a
/// unit test of the core, named here.
const FOUND: [(u64, &str); 3] = [
    // Enacted but rejected: a late stock set revoked a dispatched
    // reservation (`a_stock_cut_below_reservations_leaves_a_shortage_filled_first`).
    (6301, "revoked enactment"),
    // An append split one input's events, so a crash between two appends
    // left half a decision (`an_append_holds_whole_decisions`).
    (68, "append split a decision"),
    // Timeouts past the retry budget rejected an enacted order
    // (`unknown_outcomes_are_asked_again_past_the_retry_budget`).
    (85, "unknown outcome rejected"),
];

#[test]
fn seeds_that_found_bugs_stay_clean() {
    for (seed, bug) in FOUND {
        let run = run(seed);
        assert!(
            run.violations.is_empty(),
            "seed {seed} ({bug}) broke again:\n{}",
            report(seed, &run)
        );
    }
}

#[test]
fn a_seed_replays_exactly() {
    // Without `biased;` in the runtime's selects, seed 8 already diverged.
    for seed in 0..16 {
        let (a, b) = (run(seed), run(seed));
        assert!(
            a.trace.lines().count() > 50,
            "seed {seed} did too little to compare"
        );
        if a.trace != b.trace {
            let diverged = a
                .trace
                .lines()
                .zip(b.trace.lines())
                .position(|(x, y)| x != y)
                .unwrap_or(0);
            panic!(
                "seed {seed} ran differently twice, from trace line {diverged}:\n{}\n---\n{}",
                a.trace.lines().nth(diverged).unwrap_or(""),
                b.trace.lines().nth(diverged).unwrap_or("")
            );
        }
    }
}
