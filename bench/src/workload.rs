//! The scenarios of issue 5 and the orders they send: the same order list,
//! in the same arrival order, goes to allot and to every baseline.

use allot::domain::{OrderId, PartitionKey, Priority, Quantity, Sku, WarehouseId};
use allot::wire::{encode_order, order_subject, ValidatedOrder};
use bytes::Bytes;
use rand::{Rng as _, SeedableRng as _};
use serde::Serialize;

/// One scenario: partitions (warehouses x SKUs), units each, orders.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    pub name: &'static str,
    pub skus: u32,
    pub warehouses: u32,
    /// Units of each SKU in each warehouse.
    pub stock: u64,
    pub orders: u64,
}

/// Every scenario's name, in run order.
pub const NAMES: [&str; 4] = ["hot_sku", "1k_skus_x4_warehouses", "10k_skus", "big_sale"];

impl Scenario {
    /// The scenarios at full size, or each scaled to `orders` (smoke runs).
    /// Full size: 200,000 orders in the first three (the issue's figures)
    /// and 1,000,000 in `big_sale`. Stock keeps each scenario's ratio to
    /// the orders: 1 unit per 20 orders on the hot SKU; about half the
    /// demand met over 1k or 10k partitions; in `big_sale`, one warehouse
    /// with 1,000 SKUs and 1 unit per order per SKU (1,000 units each at
    /// full size), so about 99% of the orders are confirmed and the
    /// fulfilment path dominates.
    pub fn all(orders: Option<u64>) -> Vec<Scenario> {
        let base = orders.unwrap_or(200_000);
        let per = |partitions: u64| (base / partitions / 2).max(1);
        let big = orders.unwrap_or(1_000_000);
        vec![
            Scenario {
                name: "hot_sku",
                skus: 1,
                warehouses: 1,
                stock: (base / 20).max(1),
                orders: base,
            },
            Scenario {
                name: "1k_skus_x4_warehouses",
                skus: 1_000,
                warehouses: 4,
                stock: per(4_000),
                orders: base,
            },
            Scenario {
                name: "10k_skus",
                skus: 10_000,
                warehouses: 1,
                stock: per(10_000),
                orders: base,
            },
            Scenario {
                name: "big_sale",
                skus: 1_000,
                warehouses: 1,
                stock: (big / 1_000).max(1),
                orders: big,
            },
        ]
    }

    pub fn partitions(&self) -> u64 {
        u64::from(self.skus) * u64::from(self.warehouses)
    }

    /// Units on hand at the start, over all partitions.
    pub fn supplied(&self) -> u64 {
        self.stock * self.partitions()
    }
}

/// One order as every system sees it.
#[derive(Debug, Clone)]
pub struct Order {
    pub id: String,
    /// Index into [`Workload::partitions`].
    pub partition: u32,
    /// The MessagePack order (README "Wire format").
    pub body: Bytes,
}

/// A scenario's partitions and orders, built before any clock starts.
pub struct Workload {
    pub scenario: Scenario,
    pub partitions: Vec<PartitionKey>,
    /// allot's intake subject `orders.<warehouse>.<sku>` of each partition.
    pub subjects: Vec<String>,
    pub orders: Vec<Order>,
}

/// Order ids are `o<n>`: every system's check maps an answer back to its
/// order (and its intended send time) by parsing `n`.
pub fn order_index(id: &str) -> Option<usize> {
    id.strip_prefix('o')?.parse().ok()
}

impl Workload {
    /// Orders pick a partition uniformly at random (seeded, so every system
    /// and every run gets the same list).
    pub fn build(scenario: &Scenario, seed: u64) -> anyhow::Result<Workload> {
        let mut partitions = Vec::with_capacity(scenario.partitions() as usize);
        for w in 1..=scenario.warehouses {
            let warehouse = WarehouseId::new(&format!("w{w}"))?;
            for s in 0..scenario.skus {
                partitions.push(PartitionKey::new(
                    warehouse.clone(),
                    Sku::new(&format!("SKU-{s}"))?,
                ));
            }
        }
        let subjects = partitions.iter().map(order_subject).collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut orders = Vec::with_capacity(scenario.orders as usize);
        for n in 0..scenario.orders {
            let index = rng.gen_range(0..partitions.len());
            let partition = &partitions[index];
            let order = ValidatedOrder {
                id: OrderId::new(&format!("o{n}"))?,
                sku: partition.sku.clone(),
                quantity: Quantity::ONE,
                warehouse: Some(partition.warehouse.clone()),
                region: None,
                priority: Priority(0),
            };
            orders.push(Order {
                id: order.id.to_string(),
                partition: index as u32,
                body: Bytes::from(encode_order(&order)),
            });
        }
        Ok(Workload {
            scenario: scenario.clone(),
            partitions,
            subjects,
            orders,
        })
    }

    /// The first `n` orders only (the open-loop latency runs).
    pub fn truncated(&self, n: usize) -> Workload {
        let n = n.min(self.orders.len());
        let mut scenario = self.scenario.clone();
        scenario.orders = n as u64;
        Workload {
            scenario,
            partitions: self.partitions.clone(),
            subjects: self.subjects.clone(),
            orders: self.orders[..n].to_vec(),
        }
    }

    /// Orders per partition.
    pub fn demand(&self) -> Vec<u64> {
        let mut demand = vec![0u64; self.partitions.len()];
        for o in &self.orders {
            demand[o.partition as usize] += 1;
        }
        demand
    }

    /// Units each partition can sell to this order list: min(stock, demand).
    pub fn sellable(&self) -> u64 {
        self.demand()
            .iter()
            .map(|&d| d.min(self.scenario.stock))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids_map_back_to_their_index() {
        let w = Workload::build(&Scenario::all(Some(100))[1], 7).unwrap();
        for (n, o) in w.orders.iter().enumerate() {
            assert_eq!(order_index(&o.id), Some(n));
        }
        assert_eq!(order_index("x1"), None);
    }

    #[test]
    fn hot_sku_keeps_the_issue_ratio() {
        let hot = &Scenario::all(None)[0];
        assert_eq!((hot.stock, hot.partitions()), (10_000, 1));
        let w = Workload::build(&Scenario::all(Some(1_000))[0], 1).unwrap();
        assert_eq!(w.sellable(), 50);
    }

    #[test]
    fn big_sale_is_a_million_units_over_a_thousand_skus() {
        let big = Scenario::all(None).pop().unwrap();
        assert_eq!(big.name, "big_sale");
        assert_eq!(
            (big.orders, big.supplied(), big.partitions()),
            (1_000_000, 1_000_000, 1_000)
        );
        let small = Workload::build(&Scenario::all(Some(20_000))[3], 5).unwrap();
        // Nearly every order can be confirmed.
        assert!(small.sellable() * 10 >= small.orders.len() as u64 * 9);
    }
}
