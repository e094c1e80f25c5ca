//! The scenarios of issue 5 and the orders they send: the same order list,
//! in the same arrival order, goes to allot and to every baseline.

use allot::domain::{Fill, OrderId, PartitionKey, Priority, Quantity, Sku, WarehouseId};
use allot::wire::cart::{encode_cart, ValidatedCart, ValidatedLine};
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
    /// Orders, or carts when `lines` > 1.
    pub orders: u64,
    /// Lines of each order: 1 is a single order (envelope v1); more is an
    /// all-or-nothing cart (envelope v2) whose lines are in different
    /// partitions.
    pub lines: u32,
}

/// Every scenario's name, in run order.
pub const NAMES: [&str; 5] = [
    "hot_sku",
    "1k_skus_x4_warehouses",
    "10k_skus",
    "big_sale",
    "carts",
];

impl Scenario {
    /// The scenarios at full size, or each scaled to `orders` (smoke runs).
    /// Full size: 200,000 orders in the first three (the issue's figures)
    /// and 1,000,000 in `big_sale`. Stock keeps each scenario's ratio to
    /// the orders: 1 unit per 20 orders on the hot SKU; about half the
    /// demand met over 1k or 10k partitions; in `big_sale`, one warehouse
    /// with 1,000 SKUs and 1 unit per order per SKU (1,000 units each at
    /// full size), so about 99% of the orders are confirmed and the
    /// fulfilment path dominates. `carts` (issue 13) is
    /// `1k_skus_x4_warehouses` with the same number of lines in 3-line
    /// carts: a third as many orders, each line in its own partition.
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
                lines: 1,
            },
            Scenario {
                name: "1k_skus_x4_warehouses",
                skus: 1_000,
                warehouses: 4,
                stock: per(4_000),
                orders: base,
                lines: 1,
            },
            Scenario {
                name: "10k_skus",
                skus: 10_000,
                warehouses: 1,
                stock: per(10_000),
                orders: base,
                lines: 1,
            },
            Scenario {
                name: "big_sale",
                skus: 1_000,
                warehouses: 1,
                stock: (big / 1_000).max(1),
                orders: big,
                lines: 1,
            },
            Scenario {
                name: "carts",
                skus: 1_000,
                warehouses: 4,
                stock: per(4_000),
                orders: (base / 3).max(1),
                lines: 3,
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

    /// True when its orders are carts.
    pub fn carts(&self) -> bool {
        self.lines > 1
    }
}

/// One order as every system sees it.
#[derive(Debug, Clone)]
pub struct Order {
    pub id: String,
    /// Index into [`Workload::partitions`]: where it is published (a
    /// cart's first line).
    pub partition: u32,
    /// A cart's lines, by partition index (each one unit); empty for a
    /// single order.
    pub lines: Vec<u32>,
    /// The MessagePack order or cart (README "Wire format", "Carts").
    pub body: Bytes,
}

impl Order {
    /// The partition of each unit it asks for.
    pub fn partitions(&self) -> &[u32] {
        if self.lines.is_empty() {
            std::slice::from_ref(&self.partition)
        } else {
            &self.lines
        }
    }
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
    /// and every run gets the same list); a cart's lines pick distinct ones.
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
            if scenario.carts() {
                orders.push(cart(&partitions, scenario.lines, n, &mut rng)?);
                continue;
            }
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
                lines: vec![],
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
        for p in self.orders.iter().flat_map(Order::partitions) {
            demand[*p as usize] += 1;
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

/// Cart `o<n>`: `lines` lines of one unit each, in distinct partitions,
/// every line pinned to its warehouse, all or nothing.
fn cart(
    partitions: &[PartitionKey],
    lines: u32,
    n: u64,
    rng: &mut rand_chacha::ChaCha8Rng,
) -> anyhow::Result<Order> {
    let mut picked: Vec<u32> = Vec::with_capacity(lines as usize);
    while picked.len() < (lines as usize).min(partitions.len()) {
        let index = rng.gen_range(0..partitions.len()) as u32;
        if !picked.contains(&index) {
            picked.push(index);
        }
    }
    let cart = ValidatedCart {
        id: OrderId::new(&format!("o{n}"))?,
        lines: picked
            .iter()
            .map(|&i| ValidatedLine {
                sku: partitions[i as usize].sku.clone(),
                quantity: Quantity::ONE,
                warehouse: Some(partitions[i as usize].warehouse.clone()),
            })
            .collect(),
        region: None,
        fill: Fill::All,
        hold: None,
    };
    Ok(Order {
        id: cart.id.to_string(),
        partition: picked[0],
        body: Bytes::from(encode_cart(&cart)),
        lines: picked,
    })
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
        let big = Scenario::all(None)[3].clone();
        assert_eq!(big.name, "big_sale");
        assert_eq!(
            (big.orders, big.supplied(), big.partitions()),
            (1_000_000, 1_000_000, 1_000)
        );
        let small = Workload::build(&Scenario::all(Some(20_000))[3], 5).unwrap();
        // Nearly every order can be confirmed.
        assert!(small.sellable() * 10 >= small.orders.len() as u64 * 9);
    }

    #[test]
    fn carts_have_as_many_lines_as_the_1k_scenario_has_orders() {
        let all = Scenario::all(Some(3_000));
        let (single, carts) = (&all[1], &all[4]);
        assert_eq!(carts.name, "carts");
        assert_eq!(carts.orders * 3, single.orders);
        assert_eq!((carts.stock, carts.partitions()), (single.stock, 4_000));
        let w = Workload::build(carts, 2).unwrap();
        for o in &w.orders {
            let mut lines = o.lines.clone();
            lines.sort_unstable();
            lines.dedup();
            assert_eq!(lines.len(), 3, "{}: lines in distinct partitions", o.id);
            assert_eq!(o.partitions()[0], o.partition);
        }
        assert_eq!(w.demand().iter().sum::<u64>(), 3_000);
    }
}
