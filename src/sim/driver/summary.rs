//! The end of a run: every shard's log is audited and folded into a
//! rebuilt state that must equal the live one, and the run's counts go
//! into the [`SimReport`].

use std::time::Duration;

use super::{shard_config, Sim};
use crate::audit::Audit;
use crate::ports::ShardId;
use crate::sim::report::SimReport;

impl Sim<'_> {
    pub(super) fn report(&self, wall: Duration) -> SimReport {
        let mut audit = Audit::default();
        let mut decisions = 0u64;
        let mut rebuild_mismatches = 0;
        let mut unacked = 0;
        for (i, shard) in self.shards.iter().enumerate() {
            let events = self.log.events(i as ShardId);
            let mut rebuilt = shard_config(self.config, i as ShardId).empty_state();
            for e in &events {
                audit.apply(e);
                decisions += u64::from(e.is_final());
                if rebuilt.evolve(e).is_err() {
                    rebuild_mismatches += 1;
                }
            }
            if &rebuilt != shard.state() {
                rebuild_mismatches += 1;
            }
            unacked += self.intake.unacked(i as ShardId);
        }
        let findings = audit.finish(&self.submitted);
        SimReport {
            options: self.opts.clone(),
            shards: self.shards.len() as u32,
            partitions: self
                .shards
                .iter()
                .map(|s| s.state().partitions().len())
                .sum(),
            submitted: self.submitted.len() as u64,
            duplicates_sent: self.duplicates_sent,
            carts: self.carts_sent,
            cart_outcomes: self.cart_outcomes.clone(),
            cart_revokes: self.cart_revokes,
            enactments: self.fulfiller.enactments(),
            findings,
            rebuild_mismatches,
            unacked: unacked as u64,
            appends: self.shards.iter().map(|s| s.stats().appends).sum(),
            decisions,
            virtual_time: Duration::from_micros(self.now_us),
            core_time: self.core,
            wall_time: wall,
            events: self
                .shards
                .iter()
                .enumerate()
                .map(|(i, _)| self.log.events(i as ShardId).len() as u64)
                .sum(),
        }
    }
}
