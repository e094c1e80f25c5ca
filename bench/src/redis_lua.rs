//! The Redis baseline, driven like allot's publisher: a Lua script (loaded
//! once, called with `EVALSHA`) checks and decrements the partition's stock
//! and appends the order with its outcome to a stream, atomically; 8
//! connections in their own tasks each keep 512 calls pipelined (about
//! 4,096 in flight). AOF on, `appendfsync` everysec or always for the run.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use redis::aio::MultiplexedConnection;

use crate::drive::{drive, Store};
use crate::gate::Answers;
use crate::publish::Pace;
use crate::stats::Run;
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

/// How the baseline connects: connections, and calls in flight on each.
#[derive(Debug, Clone, Copy)]
pub struct Pipelining {
    pub connections: usize,
    pub depth: usize,
}

struct Lua {
    con: MultiplexedConnection,
    sha: Arc<str>,
}

impl Store for Lua {
    async fn place(&self, id: &str, key: &str) -> anyhow::Result<bool> {
        // A clone is a handle onto the same pipelined connection.
        let mut con = self.con.clone();
        let sold: i64 = redis::cmd("EVALSHA")
            .arg(&*self.sha)
            .arg(2)
            .arg(key)
            .arg(STREAM)
            .arg(id)
            .query_async(&mut con)
            .await?;
        Ok(sold == 1)
    }
}

/// The server's user + system CPU seconds (`INFO cpu`).
async fn server_cpu(con: &mut MultiplexedConnection) -> anyhow::Result<f64> {
    Ok(info(con, "cpu", "used_cpu_user").await? + info(con, "cpu", "used_cpu_sys").await?)
}

/// One numeric field of `INFO section`.
async fn info(con: &mut MultiplexedConnection, section: &str, name: &str) -> anyhow::Result<f64> {
    let text: String = redis::cmd("INFO").arg(section).query_async(con).await?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .with_context(|| format!("INFO {section} has no {name}"))?
        .trim()
        .parse()
        .with_context(|| format!("INFO {section}: {name} not a number"))
}

/// Compacts the AOF after the set-up, so no run starts with (or runs into)
/// a rewrite left by the one before.
async fn rewrite_aof(con: &mut MultiplexedConnection) -> anyhow::Result<()> {
    redis::cmd("BGREWRITEAOF").query_async::<()>(con).await?;
    for _ in 0..600 {
        let busy = info(con, "persistence", "aof_rewrite_in_progress").await?
            + info(con, "persistence", "aof_rewrite_scheduled").await?;
        if busy == 0.0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the AOF rewrite took over 60 s")
}

/// Runs `workload` against the Redis at `url` (an AOF-enabled server) with
/// `appendfsync` set to `fsync`.
pub async fn run(
    url: &str,
    fsync: &str,
    workload: &Arc<Workload>,
    pipelining: Pipelining,
    pace: Pace,
) -> anyhow::Result<Run> {
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
    rewrite_aof(&mut admin).await?;
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(PLACE)
        .query_async(&mut admin)
        .await?;
    let sha: Arc<str> = sha.into();
    let mut stores = Vec::with_capacity(pipelining.connections);
    for _ in 0..pipelining.connections {
        stores.push(Lua {
            con: client.get_multiplexed_async_connection().await?,
            sha: sha.clone(),
        });
    }
    let cpu0 = server_cpu(&mut admin).await?;
    let keys = Arc::new(keys);
    let driven = drive(
        stores,
        pipelining.depth,
        workload.clone(),
        keys.clone(),
        pace,
    )
    .await?;
    let cpu = server_cpu(&mut admin).await? - cpu0;
    let answers = read_stream(&mut admin, workload.orders.len()).await?;
    let mut left = 0u64;
    let mut negative = 0;
    for chunk in keys.chunks(1_000) {
        let values: Vec<i64> = redis::cmd("MGET")
            .arg(chunk)
            .query_async(&mut admin)
            .await?;
        left += values.iter().map(|&v| v.max(0) as u64).sum::<u64>();
        negative += values.iter().filter(|&&v| v < 0).count();
    }
    let mut gate = answers.gate(workload, true);
    if negative > 0 {
        gate.problem(format!("{negative} stock keys went negative"));
    }
    let left = i64::try_from(left).unwrap_or(i64::MAX);
    Ok(driven
        .into_run(gate, left, "stream", pace, workload)
        .with_cpu(Some(cpu), None))
}

/// Every order the stream recorded, with its outcome.
async fn read_stream(con: &mut MultiplexedConnection, orders: usize) -> anyhow::Result<Answers> {
    let mut answers = Answers::new(orders);
    let mut from = "-".to_string();
    loop {
        let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
            .arg(STREAM)
            .arg(&from)
            .arg("+")
            .arg("COUNT")
            .arg(10_000)
            .query_async(con)
            .await?;
        let Some((last, _)) = entries.last() else {
            return Ok(answers);
        };
        from = format!("({last}");
        for (_, fields) in &entries {
            let field = |name: &str| {
                fields
                    .chunks(2)
                    .find(|kv| kv[0] == name)
                    .and_then(|kv| kv.get(1))
                    .map(String::as_str)
            };
            match field("id") {
                Some(id) => answers.record_id(id, field("sold") == Some("1")),
                None => answers.record(None, false),
            }
        }
    }
}
