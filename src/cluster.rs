//! Which shards an instance should own when several `allot serve` share
//! them: the pure part of the lease protocol (`runtime::coordinator` runs
//! it; the leases themselves are a port, `ports::Leases`). Each instance's
//! fair share is an even split of the shards over the live instances, and
//! each instance ranks shards by a hash of (instance, shard), so instances
//! prefer different shards and rarely race for the same one.

use std::collections::BTreeSet;

use crate::ports::{ShardId, Survey};

/// How many of `shards` the instance `me` should own among `instances`
/// (sorted ids): an even split, the first `shards % n` get one more.
pub fn fair_share(shards: u32, instances: &[String], me: &str) -> usize {
    let n = instances.len().max(1);
    let index = instances.iter().position(|i| i == me).unwrap_or(n - 1);
    let base = shards as usize / n;
    base + usize::from(index < shards as usize % n)
}

/// What one heartbeat does about ownership.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Owned shards to drain and give up.
    pub release: Vec<ShardId>,
    /// Free shards to try to take, best first.
    pub acquire: Vec<ShardId>,
    /// This instance's fair share.
    pub target: usize,
}

/// Decides which shards `me` gives up or tries to take, given the survey,
/// what it owns, and shards it must leave alone for now (`cooling`: those
/// it is still giving up or stopping, and those it stopped lately).
/// Shards are ranked per instance by a hash of (instance, shard), so
/// instances prefer different shards and rarely race for the same one.
pub fn plan(
    shards: u32,
    me: &str,
    survey: &Survey,
    owned: &BTreeSet<ShardId>,
    cooling: &BTreeSet<ShardId>,
) -> Plan {
    let mut instances = survey.instances.clone();
    if !instances.iter().any(|i| i == me) {
        instances.push(me.to_owned());
        instances.sort();
    }
    let target = fair_share(shards, &instances, me);
    let mut plan = Plan {
        target,
        ..Plan::default()
    };
    if owned.len() > target {
        let mut mine: Vec<ShardId> = owned.iter().copied().collect();
        mine.sort_by_key(|&s| rank(me, s));
        plan.release = mine[..owned.len() - target].to_vec();
    } else if owned.len() < target {
        // A lease still under this instance's id that it does not hold
        // (taken by a call that timed out here, or before a restart) is
        // free to it: `acquire` takes it back.
        let leased: BTreeSet<ShardId> = survey
            .owners
            .iter()
            .filter(|(_, owner)| owner != me)
            .map(|(s, _)| *s)
            .collect();
        let mut free: Vec<ShardId> = (0..shards)
            .filter(|s| !leased.contains(s) && !owned.contains(s) && !cooling.contains(s))
            .collect();
        free.sort_by_key(|&s| std::cmp::Reverse(rank(me, s)));
        free.truncate(target - owned.len());
        plan.acquire = free;
    }
    plan
}

/// The rendezvous rank of `shard` for `instance` (FNV-1a).
fn rank(instance: &str, shard: ShardId) -> u64 {
    instance
        .bytes()
        .chain(shard.to_le_bytes())
        .fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("i{i}")).collect()
    }

    #[test]
    fn fair_shares_add_up_and_differ_by_at_most_one() {
        for shards in [1u32, 4, 7, 16] {
            for n in 1..6 {
                let instances = ids(n);
                let shares: Vec<usize> = instances
                    .iter()
                    .map(|me| fair_share(shards, &instances, me))
                    .collect();
                assert_eq!(shares.iter().sum::<usize>(), shards as usize);
                let (min, max) = (shares.iter().min().unwrap(), shares.iter().max().unwrap());
                assert!(max - min <= 1, "{shards} shards over {n}: {shares:?}");
            }
        }
    }

    /// Instances that each follow their plan, taking free shards in turn,
    /// end up owning every shard, each its fair share, and no shard twice.
    #[test]
    fn plans_converge_to_a_fair_disjoint_split() {
        let shards = 10u32;
        let instances = ids(3);
        let mut owned: BTreeMap<String, BTreeSet<ShardId>> = BTreeMap::new();
        owned.insert("i0".into(), (0..shards).collect());
        for _ in 0..10 {
            for me in &instances {
                let survey = Survey {
                    instances: instances.clone(),
                    owners: owned
                        .iter()
                        .flat_map(|(o, s)| s.iter().map(move |s| (*s, o.clone())))
                        .collect(),
                };
                let mine = owned.get(me).cloned().unwrap_or_default();
                let p = plan(shards, me, &survey, &mine, &BTreeSet::new());
                let entry = owned.entry(me.clone()).or_default();
                for s in p.release {
                    entry.remove(&s);
                }
                entry.extend(p.acquire);
            }
        }
        let all: Vec<ShardId> = owned.values().flatten().copied().collect();
        let unique: BTreeSet<ShardId> = all.iter().copied().collect();
        assert_eq!(all.len(), shards as usize, "{owned:?}");
        assert_eq!(unique.len(), shards as usize, "{owned:?}");
        for (me, s) in &owned {
            assert_eq!(s.len(), fair_share(shards, &instances, me), "{owned:?}");
        }
    }

    #[test]
    fn cooling_shards_are_not_taken() {
        let survey = Survey {
            instances: ids(1),
            owners: Vec::new(),
        };
        let cooling: BTreeSet<ShardId> = [2].into();
        let p = plan(4, "i0", &survey, &BTreeSet::new(), &cooling);
        assert_eq!(p.target, 4);
        let mut got = p.acquire.clone();
        got.sort();
        assert_eq!(got, [0, 1, 3]);
    }

    #[test]
    fn a_lease_under_my_id_that_i_do_not_hold_is_taken_back() {
        let survey = Survey {
            instances: ids(2),
            owners: vec![(0, "i0".into()), (1, "i1".into())],
        };
        let p = plan(2, "i0", &survey, &BTreeSet::new(), &BTreeSet::new());
        assert_eq!(p.acquire, [0]);
    }
}
