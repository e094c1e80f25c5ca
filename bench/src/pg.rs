//! The PostgreSQL baseline as a competent user writes it: one prepared
//! autocommit statement per order that takes a unit if one is left and
//! records the order with its outcome, in one round trip (the stock row is
//! locked only for that statement), from `--clients` connections with
//! `synchronous_commit` off or on for the session.

use std::sync::Arc;

use anyhow::Context as _;
use futures::{pin_mut, TryStreamExt as _};
use tokio_postgres::{Client, NoTls, Statement};

use crate::drive::{drive, Store};
use crate::gate::Answers;
use crate::publish::Pace;
use crate::stats::Run;
use crate::workload::Workload;

/// `$1` partition, `$2` order id; answers whether the order got a unit.
/// Quantity is 1 in every scenario (`- 1`, `> 0`).
const PLACE: &str =
    "WITH r AS (UPDATE stock SET on_hand = on_hand - 1 WHERE p = $1 AND on_hand > 0 RETURNING 1) \
     INSERT INTO orders (id, p, sold) SELECT $2, $1, EXISTS (SELECT 1 FROM r) RETURNING sold";

struct Pg {
    client: Client,
    place: Statement,
}

impl Store for Pg {
    async fn place(&self, id: &str, key: &str) -> anyhow::Result<bool> {
        let row = self.client.query_one(&self.place, &[&key, &id]).await?;
        Ok(row.get(0))
    }
}

async fn connect(conninfo: &str) -> anyhow::Result<Client> {
    let (client, connection) = tokio_postgres::connect(conninfo, NoTls)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {conninfo:?}"))?;
    tokio::spawn(connection);
    Ok(client)
}

/// Runs `workload` against the PostgreSQL at `conninfo` from `clients`
/// connections, on fresh tables, with `synchronous_commit` = `sync_on`.
pub async fn run(
    conninfo: &str,
    sync_on: bool,
    workload: &Arc<Workload>,
    clients: usize,
    pace: Pace,
) -> anyhow::Result<Run> {
    let admin = connect(conninfo).await?;
    admin
        .batch_execute(
            "DROP TABLE IF EXISTS orders, stock;
             CREATE TABLE stock (p text PRIMARY KEY, on_hand int NOT NULL CHECK (on_hand >= 0));
             CREATE TABLE orders (id text PRIMARY KEY, p text NOT NULL, sold bool NOT NULL);",
        )
        .await
        .context("creating the baseline tables")?;
    let keys: Vec<String> = workload
        .partitions
        .iter()
        .map(|p| format!("{}/{}", p.warehouse, p.sku))
        .collect();
    let stock = i32::try_from(workload.scenario.stock).context("stock per partition over i32")?;
    admin
        .execute(
            "INSERT INTO stock SELECT unnest($1::text[]), $2",
            &[&keys, &stock],
        )
        .await?;
    // Start every run from a clean checkpoint, not in the middle of one
    // (one statement per call: VACUUM may not run in a transaction block).
    admin.batch_execute("VACUUM ANALYZE stock").await?;
    admin.batch_execute("CHECKPOINT").await?;
    let setting = if sync_on { "on" } else { "off" };
    let mut stores = Vec::with_capacity(clients);
    for _ in 0..clients {
        let client = connect(conninfo).await?;
        client
            .batch_execute(&format!("SET synchronous_commit = {setting}"))
            .await?;
        let shown: String = client
            .query_one("SHOW synchronous_commit", &[])
            .await?
            .get(0);
        anyhow::ensure!(
            shown == setting,
            "synchronous_commit is {shown}, not {setting}"
        );
        stores.push(Pg {
            place: client.prepare(PLACE).await?,
            client,
        });
    }
    let driven = drive(stores, 1, workload.clone(), Arc::new(keys), pace).await?;
    let mut answers = Answers::new(workload.orders.len());
    let rows = admin
        .query_raw("SELECT id, sold FROM orders", std::iter::empty::<&str>())
        .await?;
    pin_mut!(rows);
    while let Some(row) = rows.try_next().await? {
        answers.record_id(row.get(0), row.get(1));
    }
    let left: i64 = admin
        .query_one("SELECT coalesce(sum(on_hand), 0) FROM stock", &[])
        .await?
        .get(0);
    let gate = answers.gate(workload, true);
    Ok(driven.into_run(gate, left, "table", pace, workload))
}
