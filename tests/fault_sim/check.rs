//! The invariants, checked from the logs once a run settled: the audit
//! (no unit oversold, stock conserved per partition, every submitted order
//! decided exactly once), the fulfiller agreeing with the log (an order was
//! enacted if and only if it is confirmed), and every shard's recovery
//! (snapshot plus log tail) equal to a full replay of its log.

use std::sync::Arc;

use allot::audit::Audit;
use allot::domain::{CartEvent, CartReason, Event, LineId, OrderId};
use allot::ports::{now_or_never, EventLog, ShardId};
use allot::runtime::recover;
use allot::scheduler::ShardConfig;
use rustc_hash::FxHashSet;

use super::driver::FaultPorts;
use super::ports::DEDUPE_HORIZON;
use super::scenario::Scenario;
use super::world::World;

fn shard_ids(scenario: &Scenario) -> impl Iterator<Item = ShardId> {
    0..scenario.shards
}

/// Every order decided and every intake message acked.
pub fn quiet(world: &World, ports: &FaultPorts, scenario: &Scenario) -> bool {
    let decided = world.decided.lock();
    scenario.orders.iter().all(|id| decided.contains(id))
        && shard_ids(scenario).all(|s| ports.intake.pending(s) == 0)
}

/// What keeps the run from settling, for the failure message.
pub fn unsettled(world: &World, ports: &FaultPorts, scenario: &Scenario) -> String {
    let decided = world.decided.lock();
    let undecided: Vec<&OrderId> = scenario
        .orders
        .iter()
        .filter(|id| !decided.contains(*id))
        .collect();
    let pending: Vec<usize> = shard_ids(scenario)
        .map(|s| ports.intake.pending(s))
        .collect();
    format!(
        "undecided {undecided:?}, intake pending per shard {pending:?}; their events:{}",
        history(world, scenario, &undecided)
    )
}

/// Every logged event about these orders, one per line.
fn history(world: &World, scenario: &Scenario, ids: &[&OrderId]) -> String {
    let mut history = String::new();
    for shard in shard_ids(scenario) {
        for entry in now_or_never(world.log.read(shard, 0)).unwrap_or_default() {
            let seq = entry.seq;
            for e in entry
                .events
                .iter()
                .filter(|e| e.order_id().is_some_and(|id| ids.contains(&id)))
            {
                history.push_str(&format!("\n    s{shard} #{seq} {e:?}"));
            }
        }
    }
    history
}

pub fn after_run(world: &World, ports: &Arc<FaultPorts>, scenario: &Scenario) {
    audit(world, scenario);
    let refused: usize = shard_ids(scenario)
        .map(|shard| {
            world
                .log
                .events(shard)
                .iter()
                .filter(|e| matches!(e, Event::DuplicateRefused { .. }))
                .count()
        })
        .sum();
    if refused > 0 {
        world.note(format_args!(
            "claims: {refused} copies refused as duplicates"
        ));
    }
    enactments_match_the_log(world, scenario);
    for shard in shard_ids(scenario) {
        recovery_equals_replay(world, ports, shard, scenario.shards);
    }
}

/// The log-only audit over every shard's log.
fn audit(world: &World, scenario: &Scenario) {
    let mut audit = Audit::default();
    for shard in shard_ids(scenario) {
        world.log.events(shard).iter().for_each(|e| audit.apply(e));
    }
    let f = audit.finish(&scenario.orders);
    if !f.clean() {
        world.violation(format!("audit: {f:?}"));
    }
    for _ in 0..f.carts_confirmed {
        world.note(format_args!("cart confirmed"));
    }
    for _ in 0..f.carts_rejected {
        world.note(format_args!("cart rejected or cancelled"));
    }
}

/// The lines of carts that failed after a warehouse began enacting them:
/// enacted there, then released (allot asks for a revoke).
fn revoked_lines(world: &World, scenario: &Scenario) -> FxHashSet<OrderId> {
    let mut failed = FxHashSet::default();
    for shard in shard_ids(scenario) {
        for e in world.log.events(shard) {
            if let Event::Cart { event } = e {
                if let CartEvent::Rejected {
                    cart,
                    reason: CartReason::EnactFailed { .. },
                } = *event
                {
                    failed.insert(cart);
                }
            }
        }
    }
    let enacted = world.enacted.lock();
    enacted
        .keys()
        .filter(|id| LineId::try_from((*id).clone()).is_ok_and(|l| failed.contains(&l.parts().0)))
        .cloned()
        .collect()
}

/// An order the fulfiller enacted is confirmed, and a confirmed one was
/// enacted: no customer charged for an order the log rejected.
fn enactments_match_the_log(world: &World, scenario: &Scenario) {
    let mut confirmed = FxHashSet::default();
    for shard in shard_ids(scenario) {
        for e in world.log.events(shard) {
            if let Event::OrderConfirmed { id } = e {
                confirmed.insert(id);
            }
        }
    }
    let revoked = revoked_lines(world, scenario);
    if !revoked.is_empty() {
        world.note(format_args!(
            "carts: {} lines enacted then revoked",
            revoked.len()
        ));
    }
    let enacted = world.enacted.lock().clone();
    for (id, times) in &enacted {
        if *times > 1 {
            world.violation(format!("{id} enacted {times} times"));
        }
        // A reservation with a worker is never taken back (a stock count
        // below it leaves the partition short), so whatever was enacted is
        // a sale.
        if !confirmed.contains(id) && !revoked.contains(id) {
            world.violation(format!(
                "{id} enacted but not confirmed in the log:{}",
                history(world, scenario, &[id])
            ));
        }
    }
    for id in confirmed {
        if !enacted.contains_key(&id) {
            world.violation(format!("{id} confirmed in the log but never enacted"));
        }
    }
}

/// What a restart would rebuild (latest snapshot plus the log after it)
/// equals the whole log replayed.
fn recovery_equals_replay(world: &World, ports: &Arc<FaultPorts>, shard: ShardId, shards: u32) {
    let config = ShardConfig {
        dedupe_horizon: DEDUPE_HORIZON,
        shard,
        shards,
        ..ShardConfig::default()
    };
    let recovered = match now_or_never(recover(shard, &ports.log, &ports.snapshots, &config)) {
        Ok((state, _)) => state,
        Err(e) => return world.violation(format!("s{shard} does not recover: {e}")),
    };
    let mut full = config.empty_state();
    for e in world.log.events(shard) {
        if let Err(err) = full.evolve(&e) {
            return world.violation(format!("s{shard} log does not replay: {err}"));
        }
    }
    if recovered != full {
        world.violation(format!(
            "s{shard} recovered from snapshot + tail differs from a full replay"
        ));
    }
}
