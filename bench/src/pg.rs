//! The PostgreSQL baseline: one transaction per order that locks the
//! partition's stock row (`SELECT ... FOR UPDATE`), checks it, decrements it
//! if a unit is left, and inserts the order with its outcome.

use anyhow::Context as _;
use tokio_postgres::{Client, NoTls, Statement};

use crate::closed_loop::{drive, Store, StoreRun};
use crate::stats::Gate;
use crate::workload::Workload;

struct Pg {
    client: Client,
    select: Statement,
    update: Statement,
    insert: Statement,
}

impl Store for Pg {
    async fn place(&mut self, id: &str, key: &str) -> anyhow::Result<bool> {
        let tx = self.client.transaction().await?;
        let on_hand: i32 = tx.query_one(&self.select, &[&key]).await?.get(0);
        let sold = on_hand >= 1;
        if sold {
            tx.execute(&self.update, &[&key]).await?;
        }
        tx.execute(&self.insert, &[&id, &key, &sold]).await?;
        tx.commit().await?;
        Ok(sold)
    }
}

async fn connect(conninfo: &str) -> anyhow::Result<Client> {
    let (client, connection) = tokio_postgres::connect(conninfo, NoTls)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {conninfo:?}"))?;
    tokio::spawn(connection);
    Ok(client)
}

fn keys(workload: &Workload) -> Vec<String> {
    workload
        .partitions
        .iter()
        .map(|p| format!("{}/{}", p.warehouse, p.sku))
        .collect()
}

/// Runs `workload` against the PostgreSQL at `conninfo` from `clients`
/// connections, on fresh tables.
pub async fn run(conninfo: &str, workload: &Workload, clients: usize) -> anyhow::Result<StoreRun> {
    let admin = connect(conninfo).await?;
    admin
        .batch_execute(
            "DROP TABLE IF EXISTS orders, stock;
             CREATE TABLE stock (p text PRIMARY KEY, on_hand int NOT NULL CHECK (on_hand >= 0));
             CREATE TABLE orders (id text PRIMARY KEY, p text NOT NULL, sold bool NOT NULL);",
        )
        .await
        .context("creating the baseline tables")?;
    let keys = keys(workload);
    let stock = i32::try_from(workload.scenario.stock).context("stock per partition over i32")?;
    admin
        .execute(
            "INSERT INTO stock SELECT unnest($1::text[]), $2",
            &[&keys, &stock],
        )
        .await?;
    let mut stores = Vec::with_capacity(clients);
    for _ in 0..clients {
        let client = connect(conninfo).await?;
        stores.push(Pg {
            select: client
                .prepare("SELECT on_hand FROM stock WHERE p = $1 FOR UPDATE")
                .await?,
            update: client
                .prepare("UPDATE stock SET on_hand = on_hand - 1 WHERE p = $1")
                .await?,
            insert: client
                .prepare("INSERT INTO orders (id, p, sold) VALUES ($1, $2, $3)")
                .await?,
            client,
        });
    }
    let driven = drive(stores, workload, &keys).await?;
    let row = admin
        .query_one(
            "SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE sold),
                    (SELECT sum(on_hand) FROM stock)
             FROM orders",
            &[],
        )
        .await?;
    let (rows, distinct, sold, left): (i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let n = workload.orders.len() as i64;
    let supplied = (workload.scenario.stock * workload.partitions.len() as u64) as i64;
    let mut gate = Gate {
        oversold: (sold - workload.sellable() as i64).max(0) as u64,
        lost: (n - distinct).max(0) as u64,
        duplicates: (rows - distinct) as u64,
        sellable: workload.sellable(),
        ..Gate::default()
    };
    if sold + left != supplied {
        gate.problems.push(format!(
            "stock not conserved: {sold} sold + {left} left != {supplied} supplied"
        ));
    }
    Ok(driven.report("PostgreSQL", clients, gate, None))
}
