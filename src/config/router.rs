//! Routing rules applied at ingress: which (warehouse, SKU) partition an
//! order belongs to, which warehouses it may be rerouted to, and which shard
//! owns the partition. Built once from a validated [`Config`]; lookups are
//! pure and allocate only the returned route.

use std::collections::BTreeMap;

use super::validate::known_regions;
use super::Config;
use crate::domain::{PartitionKey, Region, Sku, SkuPattern, WarehouseId};

/// Where an order goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The partition that serves the order.
    pub partition: PartitionKey,
    /// Warehouses to try next, in order, if the partition reroutes it.
    pub fallbacks: Vec<WarehouseId>,
    /// The shard that owns `partition` (`Router::shard_for`).
    pub shard: u32,
}

/// Why an order cannot be routed. Ingress answers these to the producer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// No warehouse, no region, and no default region to fall back on.
    #[error("order has no warehouse and no region, and routing.default_region is not set")]
    NoDestination,
    /// The order (or `routing.default_region`) names a region the routing
    /// rules do not have.
    #[error("unknown region {region:?}; {}", known_regions(known.iter()))]
    UnknownRegion { region: Region, known: Vec<Region> },
}

/// The routing and shard rules of one config.
#[derive(Debug, Clone)]
pub struct Router {
    regions: BTreeMap<Region, Vec<WarehouseId>>,
    default_region: Option<Region>,
    warehouse_pins: Vec<(SkuPattern, WarehouseId)>,
    shard_pins: Vec<(SkuPattern, u32)>,
    shard_count: u32,
}

impl Router {
    /// Takes the rules of `config`, which should have passed validation.
    /// Should it not have, the router stays total: empty regions count as
    /// unknown, shard pins past the shard count are ignored, and a shard
    /// count of 0 is taken as 1.
    pub fn new(config: &Config) -> Self {
        let shard_count = config.shards.count.max(1);
        Self {
            regions: config
                .routing
                .regions
                .iter()
                .filter(|(_, ws)| !ws.is_empty())
                .map(|(r, ws)| (r.clone(), ws.clone()))
                .collect(),
            default_region: config.routing.default_region.clone(),
            warehouse_pins: config
                .routing
                .pins
                .iter()
                .map(|p| (p.sku.clone(), p.warehouse.clone()))
                .collect(),
            shard_pins: config
                .shards
                .pins
                .iter()
                .filter(|p| p.shard < shard_count)
                .map(|p| (p.sku.clone(), p.shard))
                .collect(),
            shard_count,
        }
    }

    /// Routes an order for `sku` that names `warehouse` and/or `region`.
    ///
    /// A region, if given, must be known. Then, first rule that applies:
    /// 1. the order's own warehouse; fallbacks are its region's list
    ///    without that warehouse (none without a region);
    /// 2. the first `routing.pins` entry matching the SKU; no fallbacks;
    /// 3. the order's region: its first warehouse, the rest as fallbacks;
    /// 4. the same with `routing.default_region`;
    /// 5. else [`RouteError::NoDestination`].
    pub fn route(
        &self,
        sku: &Sku,
        warehouse: Option<&WarehouseId>,
        region: Option<&Region>,
    ) -> Result<Route, RouteError> {
        let listed = region.map(|r| self.region(r)).transpose()?;
        let (warehouse, fallbacks) = if let Some(w) = warehouse {
            let rest = listed.unwrap_or_default().iter().filter(|x| *x != w);
            (w.clone(), rest.cloned().collect())
        } else if let Some(w) = first_match(&self.warehouse_pins, sku) {
            (w.clone(), Vec::new())
        } else {
            let list = match (listed, &self.default_region) {
                (Some(list), _) => list,
                (None, Some(default)) => self.region(default)?,
                (None, None) => return Err(RouteError::NoDestination),
            };
            // Non-empty: Router::new drops empty regions, so region() never
            // returns one.
            (list[0].clone(), list[1..].to_vec())
        };
        let partition = PartitionKey::new(warehouse, sku.clone());
        let shard = self.shard_for(&partition);
        Ok(Route {
            partition,
            fallbacks,
            shard,
        })
    }

    /// The shard that owns partition `p`, in `0..shards.count`: the first
    /// `shards.pins` entry matching the SKU, else
    /// [`nats_partition`]`(&[warehouse, sku], shards.count)`, which is what
    /// the intake stream's subject transform ([`Router::intake_transform`])
    /// computes on the broker for `orders.<warehouse>.<sku>`.
    ///
    /// The broker cannot apply pins (subject transforms match whole tokens,
    /// not globs), so a pinned SKU must reach its shard some other way,
    /// e.g. ingress publishing to the shard's subject directly.
    pub fn shard_for(&self, p: &PartitionKey) -> u32 {
        match first_match(&self.shard_pins, &p.sku) {
            Some(&shard) => shard,
            None => nats_partition(&[p.warehouse.as_str(), p.sku.as_str()], self.shard_count),
        }
    }

    /// Number of shards.
    pub fn shard_count(&self) -> u32 {
        self.shard_count
    }

    /// The intake stream's subject transform as `(source, destination)`:
    /// `orders.<warehouse>.<sku>` gains the shard as its second token.
    pub fn intake_transform(&self) -> (&'static str, String) {
        (
            "orders.*.*",
            format!(
                "orders.{{{{partition({},1,2)}}}}.{{{{wildcard(1)}}}}.{{{{wildcard(2)}}}}",
                self.shard_count
            ),
        )
    }

    fn region(&self, r: &Region) -> Result<&[WarehouseId], RouteError> {
        self.regions
            .get(r)
            .map(Vec::as_slice)
            .ok_or_else(|| RouteError::UnknownRegion {
                region: r.clone(),
                known: self.regions.keys().cloned().collect(),
            })
    }
}

fn first_match<'a, T>(pins: &'a [(SkuPattern, T)], sku: &Sku) -> Option<&'a T> {
    pins.iter().find(|(p, _)| p.matches(sku)).map(|(_, t)| t)
}

/// nats-server's `{{partition(n, ...)}}` subject-transform function: 32-bit
/// FNV-1a over the selected tokens' bytes, concatenated with no separator,
/// modulo `n` (taken as 1 if 0).
///
/// Source: nats-io/nats-server `server/subject_transform.go`,
/// `TransformTokenizedSubject` (case `Partition`: appends each selected
/// token's bytes to `keyForHashing`) and `getHashPartition`
/// (`fnv.New32a()`, `h.Sum32() % uint32(numBuckets)`). The wildcard indexes
/// in `partition(n,1,2)` count the source filter's `*` tokens, so for
/// `orders.*.*` they are the warehouse and the SKU.
pub fn nats_partition(tokens: &[&str], n: u32) -> u32 {
    const OFFSET_BASIS: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;
    let hash = tokens
        .iter()
        .flat_map(|t| t.bytes())
        .fold(OFFSET_BASIS, |h, b| (h ^ u32::from(b)).wrapping_mul(PRIME));
    hash % n.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = r#"
        [shards]
        count = 4
        [[shards.pins]]
        sku = "PS5-*"
        shard = 3
        [routing]
        default_region = "eu"
        [routing.regions]
        eu = ["ams", "fra"]
        us = ["nyc", "sfo", "chi"]
        [[routing.pins]]
        sku = "FRIDGE-*"
        warehouse = "fra"
    "#;

    fn router(text: &str) -> Router {
        Router::new(&Config::from_toml(text, "t.toml").unwrap())
    }
    fn sku(s: &str) -> Sku {
        Sku::new(s).unwrap()
    }
    fn w(s: &str) -> WarehouseId {
        WarehouseId::new(s).unwrap()
    }
    fn r(s: &str) -> Region {
        Region::new(s).unwrap()
    }
    fn ws(names: &[&str]) -> Vec<WarehouseId> {
        names.iter().map(|n| w(n)).collect()
    }
    /// (warehouse, fallbacks) of a successful route.
    fn dest(
        rt: &Router,
        s: &str,
        wh: Option<&str>,
        reg: Option<&str>,
    ) -> (String, Vec<WarehouseId>) {
        let route = rt
            .route(&sku(s), wh.map(w).as_ref(), reg.map(r).as_ref())
            .unwrap();
        assert_eq!(route.shard, rt.shard_for(&route.partition));
        assert_eq!(route.partition.sku, sku(s));
        (route.partition.warehouse.to_string(), route.fallbacks)
    }

    #[test]
    fn explicit_warehouse_wins_and_its_region_gives_fallbacks() {
        let rt = router(RULES);
        assert_eq!(
            dest(&rt, "MUG", Some("sfo"), Some("us")),
            ("sfo".into(), ws(&["nyc", "chi"]))
        );
        assert_eq!(dest(&rt, "MUG", Some("sfo"), None), ("sfo".into(), vec![]));
        // A warehouse outside the region: the whole region is the fallback.
        assert_eq!(
            dest(&rt, "MUG", Some("lon"), Some("eu")),
            ("lon".into(), ws(&["ams", "fra"]))
        );
        // It beats a SKU pin too.
        assert_eq!(
            dest(&rt, "FRIDGE-1", Some("ams"), None),
            ("ams".into(), vec![])
        );
    }

    #[test]
    fn pin_beats_region_and_has_no_fallbacks() {
        let rt = router(RULES);
        assert_eq!(
            dest(&rt, "FRIDGE-1", None, Some("us")),
            ("fra".into(), vec![])
        );
        assert_eq!(dest(&rt, "FRIDGE-1", None, None), ("fra".into(), vec![]));
    }

    #[test]
    fn region_list_then_default_region() {
        let rt = router(RULES);
        assert_eq!(
            dest(&rt, "MUG", None, Some("us")),
            ("nyc".into(), ws(&["sfo", "chi"]))
        );
        assert_eq!(dest(&rt, "MUG", None, None), ("ams".into(), ws(&["fra"])));
    }

    #[test]
    fn missing_or_unknown_region_is_an_error_that_says_why() {
        let rt = router("[routing.regions]\neu = [\"ams\"]\nus = [\"nyc\"]");
        let e = rt.route(&sku("MUG"), None, None).unwrap_err();
        assert_eq!(e, RouteError::NoDestination);
        assert_eq!(
            e.to_string(),
            "order has no warehouse and no region, and routing.default_region is not set"
        );
        let e = rt.route(&sku("MUG"), None, Some(&r("mars"))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown region \"mars\"; known regions: eu, us"
        );
        // Even next to an explicit warehouse: a region the rules do not know
        // is a producer's mistake worth surfacing.
        assert!(rt
            .route(&sku("MUG"), Some(&w("ams")), Some(&r("mars")))
            .is_err());
        let e = router("")
            .route(&sku("MUG"), None, Some(&r("eu")))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown region \"eu\"; no regions are configured (routing.regions is empty)"
        );
    }

    #[test]
    fn nats_partition_matches_independent_fnv1a() {
        // Expected values from an independent FNV-1a (not this code):
        //   python3 -c 'def f(b):
        //     h=0x811c9dc5
        //     for c in b: h=((h^c)*0x01000193)&0xffffffff
        //     return h
        //   print(f(b"amsPS5-DISC") % 4)'            # 0xc7b6ae3a -> 2
        // and the table in nats-io/nats.docs nats-concepts/subject_mapping.md
        // for "foo.*.*" -> "...{{partition(10,1,2)}}": foo.1.a -> 1,
        // foo.1.b -> 0, foo.2.b -> 9, foo.2.a -> 2. Those need the tokens
        // concatenated with no separator ("1.a" would give 3 and "1.b" 6).
        for (tokens, n, want) in [
            (["1", "a"], 10, 1),
            (["1", "b"], 10, 0),
            (["2", "b"], 10, 9),
            (["2", "a"], 10, 2),
            (["ams", "PS5-DISC"], 4, 2),
            (["fra", "FRIDGE-X1"], 4, 3),
            (["nyc", "TSHIRT-red_XL"], 16, 8),
            (["sfo", "A"], 1024, 1000),
            (["ams", "B"], 7, 6),
        ] {
            assert_eq!(nats_partition(&tokens, n), want, "{tokens:?} over {n}");
        }
        assert_eq!(nats_partition(&[], u32::MAX), 0x811c_9dc5);
        assert_eq!(nats_partition(&["x"], 0), 0);
    }

    #[test]
    fn shard_for_prefers_pins_then_hashes_like_the_broker() {
        let rt = router(RULES);
        let key = |wh: &str, s: &str| PartitionKey::new(w(wh), sku(s));
        // Unpinned: FNV-1a("amsTSHIRT-red_XL") % 4 = 3, ("fraMUG-01") % 4 = 1
        // (python as above).
        assert_eq!(rt.shard_for(&key("ams", "TSHIRT-red_XL")), 3);
        assert_eq!(rt.shard_for(&key("fra", "MUG-01")), 1);
        // Pinned: shard 3 whatever the warehouse, though the hash says
        // 2 for ams ("amsPS5-DISC") and 3 for nyc.
        assert_eq!(rt.shard_for(&key("ams", "PS5-DISC")), 3);
        assert_eq!(rt.shard_for(&key("nyc", "PS5-DISC")), 3);
        let unpinned = router("[shards]\ncount = 4");
        assert_eq!(unpinned.shard_for(&key("ams", "PS5-DISC")), 2);
        for i in 0..500 {
            let shard = rt.shard_for(&key("ams", &format!("SKU-{i}")));
            assert!(shard < rt.shard_count());
        }
    }

    #[test]
    fn intake_transform_is_the_partition_function_shard_for_uses() {
        let (src, dest) = router("[shards]\ncount = 16").intake_transform();
        assert_eq!(src, "orders.*.*");
        assert_eq!(
            dest,
            "orders.{{partition(16,1,2)}}.{{wildcard(1)}}.{{wildcard(2)}}"
        );
    }

    #[test]
    fn unvalidated_config_still_routes_totally() {
        let mut c = Config::default();
        c.shards.count = 0;
        c.shards.pins.push(crate::config::ShardPin {
            sku: SkuPattern::new("*").unwrap(),
            shard: 9,
        });
        c.routing.regions.insert(r("eu"), vec![]);
        let rt = Router::new(&c);
        assert_eq!(rt.shard_for(&PartitionKey::new(w("a"), sku("b"))), 0);
        assert!(matches!(
            rt.route(&sku("b"), None, Some(&r("eu"))),
            Err(RouteError::UnknownRegion { .. })
        ));
    }
}
