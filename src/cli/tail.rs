//! `allot tail`: follows the decision feed (EVENTS) in a terminal, one
//! line per event, filtered by warehouse, SKU or order id. Events that
//! name only an order id are placed by the partition the order was last
//! queued in (or its rejection named), as seen since the tail started.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use allot::adapters::nats::events::{open_events, EventsReader};
use allot::adapters::nats::{Broker, NatsOptions};
use allot::domain::{Event, OrderId, PartitionKey};
use allot::wire::log::Chains;

use super::ConfigArgs;

#[derive(clap::Args)]
pub struct TailArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Only events about this warehouse's partitions.
    #[arg(long)]
    warehouse: Option<String>,
    /// Only events about this SKU's partitions.
    #[arg(long)]
    sku: Option<String>,
    /// Only events about this order id.
    #[arg(long)]
    id: Option<String>,
    /// Start at this EVENTS sequence (1: the whole log); default: new
    /// events only.
    #[arg(long)]
    since: Option<u64>,
    /// Stop after printing this many lines.
    #[arg(long)]
    max: Option<u64>,
}

/// What the filters ask for.
struct Filter {
    warehouse: Option<String>,
    sku: Option<String>,
    id: Option<String>,
}

impl Filter {
    fn keeps(&self, id: Option<&OrderId>, partition: Option<&PartitionKey>) -> bool {
        let id_ok = self
            .id
            .as_deref()
            .is_none_or(|want| id.is_some_and(|id| id.as_str() == want));
        let at = |want: &Option<String>, got: fn(&PartitionKey) -> &str| {
            want.as_deref()
                .is_none_or(|w| partition.is_some_and(|p| got(p) == w))
        };
        id_ok && at(&self.warehouse, |p| p.warehouse.as_str()) && at(&self.sku, |p| p.sku.as_str())
    }
}

/// The partition an event is about, remembering where orders were queued.
fn place(event: &Event, placed: &mut HashMap<OrderId, PartitionKey>) -> Option<PartitionKey> {
    match event {
        Event::OrderQueued { order } => {
            placed.insert(order.id.clone(), order.partition.clone());
            Some(order.partition.clone())
        }
        Event::OrderRejected {
            partition: Some(p), ..
        } => Some(p.clone()),
        Event::StockSet { partition, .. }
        | Event::StockRestocked { partition, .. }
        | Event::StockAdjusted { partition, .. }
        | Event::StockShort { partition, .. }
        | Event::DuplicateRefused { partition, .. } => Some(partition.clone()),
        other => placed.get(other.order_id()?).cloned(),
    }
}

/// `<type> {fields}`: the event as it is on the wire, less its tag.
fn describe(event: &Event) -> String {
    let mut value = serde_json::to_value(event).expect("events encode");
    let kind = value["type"].as_str().unwrap_or("?").to_owned();
    if let Some(map) = value.as_object_mut() {
        map.remove("type");
    }
    format!("{kind} {value}")
}

pub async fn run(a: TailArgs) -> anyhow::Result<ExitCode> {
    let config = a.config.load().context("loading the config")?;
    let broker = Broker::connect(&NatsOptions::from(&config.nats)).await?;
    let (events, last) = open_events(broker.jetstream()).await?;
    let from = a.since.unwrap_or(last + 1);
    let filter = Filter {
        warehouse: a.warehouse,
        sku: a.sku,
        id: a.id,
    };
    let mut reader = EventsReader::new(events, "events.*", Chains::from_anywhere(), from);
    let mut placed: HashMap<OrderId, PartitionKey> = HashMap::new();
    let mut printed = 0;
    loop {
        let Some(batch) = reader.next(Duration::from_secs(1)).await? else {
            continue;
        };
        for event in &batch.batch.events {
            let partition = place(event, &mut placed);
            if !filter.keeps(event.order_id(), partition.as_ref()) {
                continue;
            }
            let at = partition.map_or_else(|| "-".to_owned(), |p| p.to_string());
            let id = event.order_id().map_or("-", OrderId::as_str);
            println!(
                "#{:<8} {:<24} {:<20} {}",
                batch.seq,
                at,
                id,
                describe(event)
            );
            printed += 1;
            if a.max.is_some_and(|max| printed >= max) {
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
}
