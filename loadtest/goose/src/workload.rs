//! What the load test sends: the partitions orders are spread over, unique
//! order ids, and which orders are deliberately invalid. One [`Workload`] is
//! shared by every goose user, so ids stay unique across users and scenarios.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use allot::domain::{PartitionKey, Sku, WarehouseId};
use allot::wire::{OrderMessage, VERSION};
use anyhow::{bail, Context};

/// The workload's knobs, from the command line (see `main.rs`).
#[derive(Debug, Clone, clap::Args)]
pub struct WorkloadArgs {
    /// Orders are spread over this many SKUs, named LT-0, LT-1, ...
    #[arg(long, env = "ALLOT_LOADTEST_SKUS", default_value_t = 16)]
    pub skus: u32,
    /// Comma-separated warehouses every order names (`warehouse` field).
    #[arg(
        long,
        env = "ALLOT_LOADTEST_WAREHOUSES",
        default_value = "ams,fra",
        value_delimiter = ','
    )]
    pub warehouses: Vec<String>,
    /// Units each order asks for.
    #[arg(long, env = "ALLOT_LOADTEST_QUANTITY", default_value_t = 1)]
    pub quantity: u64,
    /// Stock set on every partition before the run, so orders get confirmed.
    #[arg(long, env = "ALLOT_LOADTEST_STOCK", default_value_t = 1_000_000)]
    pub stock: u64,
    /// Share of HTTP orders sent invalid on purpose (quantity 0), expected
    /// to answer 400; 0 sends none, at most 0.5.
    #[arg(long, env = "ALLOT_LOADTEST_INVALID_SHARE", default_value_t = 0.0)]
    pub invalid_share: f64,
    /// A sell-out: this share of orders goes to the hot partition (the
    /// first warehouse's LT-0); 0 spreads them evenly. At most 0.9.
    #[arg(long, env = "ALLOT_LOADTEST_HOT_SHARE", default_value_t = 0.0)]
    pub hot_share: f64,
    /// Units of the hot partition (instead of --stock); after the run the
    /// load test checks it sold out exactly, never past it.
    #[arg(long, env = "ALLOT_LOADTEST_HOT_STOCK")]
    pub hot_stock: Option<u64>,
}

/// The shared source of orders.
#[derive(Debug)]
pub struct Workload {
    /// Prefix of every id in this run, so a second run against the same allot
    /// files new orders instead of hitting "id already known".
    run: String,
    next: AtomicU64,
    partitions: Vec<PartitionKey>,
    quantity: u64,
    /// Every this many orders, one is invalid; `None`: none are.
    invalid_every: Option<u64>,
    /// Every this many orders, one goes to the hot partition; `None`:
    /// orders take the partitions in turn.
    hot_every: Option<u64>,
}

impl Workload {
    /// Checks the arguments: every SKU and warehouse must be a name allot
    /// accepts, and the invalid share a fraction it can honour.
    pub fn new(args: &WorkloadArgs) -> anyhow::Result<Self> {
        if args.skus == 0 {
            bail!("--skus 0: the load test needs at least one SKU");
        }
        if args.quantity == 0 {
            bail!("--quantity 0: every valid order needs at least one unit");
        }
        if !(0.0..=0.5).contains(&args.invalid_share) {
            bail!(
                "--invalid-share {}: must be 0..=0.5 (a fraction of HTTP orders)",
                args.invalid_share
            );
        }
        let mut partitions = Vec::new();
        for warehouse in &args.warehouses {
            let warehouse = WarehouseId::new(warehouse)
                .with_context(|| format!("--warehouses: {warehouse:?} is not a warehouse name"))?;
            for i in 0..args.skus {
                let sku = Sku::new(&format!("LT-{i}")).context("SKU name")?;
                partitions.push(PartitionKey::new(warehouse.clone(), sku));
            }
        }
        if partitions.is_empty() {
            bail!("--warehouses is empty: name at least one warehouse");
        }
        let invalid_every =
            (args.invalid_share > 0.0).then(|| (1.0 / args.invalid_share).round() as u64);
        if !(0.0..=0.9).contains(&args.hot_share) {
            bail!(
                "--hot-share {}: must be 0..=0.9 (a fraction of all orders)",
                args.hot_share
            );
        }
        let hot_every = (args.hot_share > 0.0).then(|| (1.0 / args.hot_share).round() as u64);
        Ok(Self {
            run: run_prefix(),
            next: AtomicU64::new(0),
            partitions,
            quantity: args.quantity,
            invalid_every,
            hot_every,
        })
    }

    /// Every (warehouse, SKU) the orders go to.
    pub fn partitions(&self) -> &[PartitionKey] {
        &self.partitions
    }

    /// The next order: a fresh id, partitions taken in turn.
    pub fn next_order(&self) -> Order {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.partitions.len() as u64;
        let index = match self.hot_every {
            Some(every) if seq.is_multiple_of(every) => 0,
            Some(_) if n > 1 => 1 + seq % (n - 1),
            _ => seq % n,
        };
        let partition = &self.partitions[index as usize];
        let message = OrderMessage {
            v: VERSION,
            id: format!("{}-{seq}", self.run),
            sku: partition.sku.to_string(),
            quantity: self.quantity,
            warehouse: Some(partition.warehouse.to_string()),
            region: None,
            priority: None,
        };
        Order {
            seq,
            partition: partition.clone(),
            message,
        }
    }

    /// Whether order `seq` should be sent invalid (HTTP only: JetStream
    /// acks any payload, so over NATS the rejection would not be seen).
    pub fn invalid_turn(&self, seq: u64) -> bool {
        self.invalid_every
            .is_some_and(|every| seq.is_multiple_of(every))
    }
}

/// One order of the workload.
#[derive(Debug, Clone)]
pub struct Order {
    pub seq: u64,
    pub partition: PartitionKey,
    pub message: OrderMessage,
}

/// `lt<milliseconds since the epoch, base 36>`: distinct per run.
fn run_prefix() -> String {
    let mut millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut digits = Vec::new();
    while millis > 0 {
        digits.push(char::from_digit((millis % 36) as u32, 36).unwrap_or('0'));
        millis /= 36;
    }
    format!("lt{}", digits.iter().rev().collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> WorkloadArgs {
        WorkloadArgs {
            skus: 2,
            warehouses: vec!["ams".into(), "fra".into()],
            quantity: 1,
            stock: 10,
            invalid_share: 0.25,
            hot_share: 0.0,
            hot_stock: None,
        }
    }

    #[test]
    fn ids_are_unique_and_partitions_taken_in_turn() {
        let w = Workload::new(&args()).unwrap();
        let orders: Vec<Order> = (0..8).map(|_| w.next_order()).collect();
        let ids: std::collections::HashSet<_> = orders.iter().map(|o| &o.message.id).collect();
        assert_eq!(ids.len(), 8);
        let first: Vec<_> = orders[..4]
            .iter()
            .map(|o| (o.message.warehouse.clone().unwrap(), o.message.sku.clone()))
            .collect();
        let second: Vec<_> = orders[4..]
            .iter()
            .map(|o| (o.message.warehouse.clone().unwrap(), o.message.sku.clone()))
            .collect();
        assert_eq!(first, second);
        assert_eq!(
            first.iter().collect::<std::collections::HashSet<_>>().len(),
            4
        );
    }

    #[test]
    fn invalid_share_picks_that_fraction() {
        let w = Workload::new(&args()).unwrap();
        let invalid = (0..100).filter(|&s| w.invalid_turn(s)).count();
        assert_eq!(invalid, 25);
    }

    #[test]
    fn a_hot_share_sends_that_fraction_to_the_first_partition() {
        let mut a = args();
        a.hot_share = 0.5;
        let w = Workload::new(&a).unwrap();
        let hot = &w.partitions()[0];
        let orders: Vec<Order> = (0..100).map(|_| w.next_order()).collect();
        assert_eq!(orders.iter().filter(|o| &o.partition == hot).count(), 50);
        let cold: std::collections::HashSet<_> = orders
            .iter()
            .filter(|o| &o.partition != hot)
            .map(|o| o.partition.clone())
            .collect();
        assert_eq!(cold.len(), 3);
    }

    #[test]
    fn bad_arguments_are_named() {
        let mut a = args();
        a.warehouses = vec!["a b".into()];
        let err = format!("{:#}", Workload::new(&a).unwrap_err());
        assert!(err.contains("\"a b\" is not a warehouse name"), "{err}");
        let mut a = args();
        a.invalid_share = 0.9;
        let err = Workload::new(&a).unwrap_err().to_string();
        assert!(err.contains("--invalid-share 0.9"), "{err}");
    }
}
