//! The Redis baseline: a Lua script that checks and decrements the
//! partition's stock and appends the order with its outcome to a stream,
//! atomically, run with AOF `appendfsync everysec` or `always`.

use anyhow::Context as _;
use redis::aio::MultiplexedConnection;

use crate::closed_loop::{drive, Store, StoreRun};
use crate::stats::Gate;
use crate::workload::Workload;

const PLACE: &str = r"
local left = tonumber(redis.call('GET', KEYS[1]) or '0')
local sold = 0
if left >= 1 then
  redis.call('DECR', KEYS[1])
  sold = 1
end
redis.call('XADD', KEYS[2], '*', 'id', ARGV[1], 'sold', sold)
return sold
";

const STREAM: &str = "bench:orders";

struct Lua {
    con: MultiplexedConnection,
    script: redis::Script,
}

impl Store for Lua {
    async fn place(&mut self, id: &str, key: &str) -> anyhow::Result<bool> {
        let sold: i64 = self
            .script
            .key(key)
            .key(STREAM)
            .arg(id)
            .invoke_async(&mut self.con)
            .await?;
        Ok(sold == 1)
    }
}

/// The server's user + system CPU seconds (`INFO cpu`).
async fn server_cpu(con: &mut MultiplexedConnection) -> anyhow::Result<f64> {
    let info: String = redis::cmd("INFO").arg("cpu").query_async(con).await?;
    let field = |name: &str| -> anyhow::Result<f64> {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .with_context(|| format!("INFO cpu has no {name}"))?
            .trim()
            .parse()
            .with_context(|| format!("INFO cpu: {name} not a number"))
    };
    Ok(field("used_cpu_user")? + field("used_cpu_sys")?)
}

/// Runs `workload` against the Redis at `url` (an AOF-enabled server) with
/// `appendfsync` set to `fsync`, from `clients` connections.
pub async fn run(
    url: &str,
    fsync: &str,
    workload: &Workload,
    clients: usize,
) -> anyhow::Result<StoreRun> {
    let client = redis::Client::open(url).with_context(|| format!("Redis URL {url:?}"))?;
    let mut admin = client
        .get_multiplexed_async_connection()
        .await
        .with_context(|| format!("connecting to Redis at {url}"))?;
    redis::cmd("FLUSHALL").query_async::<()>(&mut admin).await?;
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("appendfsync")
        .arg(fsync)
        .query_async::<()>(&mut admin)
        .await
        .with_context(|| format!("setting appendfsync {fsync}"))?;
    let keys: Vec<String> = workload
        .partitions
        .iter()
        .map(|p| format!("stock:{}/{}", p.warehouse, p.sku))
        .collect();
    for chunk in keys.chunks(1_000) {
        let mut mset = redis::cmd("MSET");
        for key in chunk {
            mset.arg(key).arg(workload.scenario.stock);
        }
        mset.query_async::<()>(&mut admin).await?;
    }
    let mut stores = Vec::with_capacity(clients);
    for _ in 0..clients {
        stores.push(Lua {
            con: client.get_multiplexed_async_connection().await?,
            script: redis::Script::new(PLACE),
        });
    }
    let cpu0 = server_cpu(&mut admin).await?;
    let driven = drive(stores, workload, &keys).await?;
    let cpu = server_cpu(&mut admin).await? - cpu0;
    let appended: u64 = redis::cmd("XLEN")
        .arg(STREAM)
        .query_async(&mut admin)
        .await?;
    let mut left = 0u64;
    for chunk in keys.chunks(1_000) {
        let values: Vec<i64> = redis::cmd("MGET")
            .arg(chunk)
            .query_async(&mut admin)
            .await?;
        left += values.iter().map(|&v| v.max(0) as u64).sum::<u64>();
        anyhow::ensure!(values.iter().all(|&v| v >= 0), "a stock key went negative");
    }
    let n = workload.orders.len() as u64;
    let supplied = workload.scenario.stock * workload.partitions.len() as u64;
    let mut gate = Gate {
        oversold: (supplied - left).saturating_sub(workload.sellable()),
        lost: n.saturating_sub(appended),
        duplicates: appended.saturating_sub(n),
        sellable: workload.sellable(),
        ..Gate::default()
    };
    if driven.sold != supplied - left {
        gate.problems.push(format!(
            "clients saw {} sold, stock keys say {}",
            driven.sold,
            supplied - left
        ));
    }
    Ok(driven.report(&format!("Redis AOF {fsync}"), clients, gate, Some(cpu)))
}
