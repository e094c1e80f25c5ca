//! The flash sale's workload: every warehouse's partitions get stock,
//! and orders are generated (Zipf-popular SKUs, some pre-orders, a region
//! or a warehouse, mostly single units) and routed as the config says.

use std::time::Duration;

use rand::Rng;
use rand_distr::Distribution;

use super::{Happening, Sim};
use crate::domain::{Command, Order, OrderId, PartitionKey, Priority, Quantity, WarehouseId};

/// Share of orders for pre-order SKUs (when there are any).
const PREORDER_SHARE: f64 = 0.1;

impl Sim<'_> {
    /// Every partition a warehouse of the config could serve gets stock.
    pub(super) fn warehouses(&self) -> Vec<WarehouseId> {
        let mut ws: Vec<WarehouseId> = self
            .config
            .routing
            .regions
            .values()
            .flatten()
            .cloned()
            .collect();
        ws.extend(self.config.routing.pins.iter().map(|p| p.warehouse.clone()));
        if ws.is_empty() {
            ws.push(WarehouseId::new("main").expect("valid"));
        }
        ws.sort();
        ws.dedup();
        ws
    }

    pub(super) fn setup(&mut self) {
        for w in self.warehouses() {
            for sku in self.skus.clone() {
                let partition = PartitionKey::new(w.clone(), sku);
                let shard = self.router.shard_for(&partition);
                let cmd = Command::SetStock {
                    partition,
                    on_hand: self.opts.stock,
                    expected_version: None,
                };
                self.core_call(shard, |s, now| {
                    s.handle_command(cmd, None, now);
                });
            }
        }
        self.at(Duration::ZERO, Happening::NextArrival);
    }

    pub(super) fn next_order(&mut self) -> Order {
        let n = self.generated;
        self.generated += 1;
        let regular = self.opts.skus as usize;
        let sku =
            if regular < self.skus.len() && (regular == 0 || self.rng.gen_bool(PREORDER_SHARE)) {
                self.skus[self.rng.gen_range(regular..self.skus.len())].clone()
            } else {
                self.skus[self.zipf.sample(&mut self.rng) as usize - 1].clone()
            };
        let region = (!self.regions.is_empty())
            .then(|| self.regions[self.rng.gen_range(0..self.regions.len())].clone());
        let fallback = self.warehouses()[0].clone();
        let warehouse = region.is_none().then_some(&fallback);
        let route = self
            .router
            .route(&sku, warehouse, region.as_ref())
            .expect("the simulation routes by the config's own regions");
        let quantity = if self.rng.gen_bool(0.1) {
            self.rng.gen_range(2..=3)
        } else {
            1
        };
        Order {
            line: false,
            id: OrderId::new(&format!("o-{n}")).expect("valid"),
            partition: route.partition,
            quantity: Quantity::new(quantity, u32::MAX).expect("positive"),
            region,
            priority: Priority(0),
            fallbacks: route.fallbacks,
        }
    }
}
