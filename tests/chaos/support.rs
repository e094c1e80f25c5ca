//! The chaos tests' sale, instances and probes: the plan, the flags each
//! `allot serve` gets, `/metrics` scrapes, who holds which shard lease,
//! and which node leads a replicated stream.

use std::time::Duration;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use tokio::time::Instant;

use allot::adapters::nats::LEASES_BUCKET;
use allot::audit::Findings;
use allot::domain::{Cart, CartConfig, CartLine, Fill, OrderId, Quantity};
use allot::wire::cart::CartOp;
use rand::Rng;

use crate::common::allot::{
    one_warehouse, order_id, partition, publish_all, wait_for_streams, AllotProcess, ConfigFile,
    Ledger, Outgoing,
};

pub const SHARDS: u32 = 6;

pub fn config() -> ConfigFile {
    ConfigFile::new(&format!(
        "{}\n[workers]\ndefault_concurrency = 32\n",
        one_warehouse(SHARDS)
    ))
}

pub fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The sale: `orders` one-unit orders spread over `skus` SKUs in `ams`,
/// and carts of 1-5 one-unit lines mixed in (one per 20 orders by
/// default, `CHAOS_CARTS`; a fifth partial, a fifth held for 4 s with
/// half of those paid), each SKU stocked with three quarters of what is
/// asked of it.
pub struct Plan {
    pub stock: Vec<Outgoing>,
    pub orders: Vec<Outgoing>,
    /// Every order, and every cart's line (`<cart>#<i>`).
    pub ids: Vec<OrderId>,
    pub carts: Vec<OrderId>,
    /// Units the stock commands set, over all SKUs.
    pub supplied: i128,
}

pub fn plan(config: &ConfigFile, orders: usize, skus: usize, seed: u64) -> Plan {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let partitions: Vec<_> = (0..skus)
        .map(|i| partition("ams", &format!("CH-{i}")))
        .collect();
    let mut demand = vec![0u64; skus];
    let mut plan: Vec<(String, usize)> = (0..orders)
        .map(|i| (format!("ch-{seed}-{i}"), i % skus))
        .collect();
    plan.shuffle(&mut rng);
    let mut ids: Vec<OrderId> = plan.iter().map(|(id, _)| order_id(id)).collect();
    let mut sends: Vec<Vec<Outgoing>> = plan
        .iter()
        .map(|(id, p)| {
            demand[*p] += 1;
            vec![Outgoing::order(id, &partitions[*p], 1)]
        })
        .collect();
    let mut carts = Vec::new();
    for c in 0..env("CHAOS_CARTS", orders / 20) {
        let id = order_id(&format!("cart-{seed}-{c}"));
        let lines: Vec<CartLine> = (0..rng.gen_range(1..=5))
            .map(|_| {
                let p = rng.gen_range(0..skus);
                demand[p] += 1;
                CartLine {
                    partition: partitions[p].clone(),
                    quantity: Quantity::ONE,
                }
            })
            .collect();
        let (fill, hold) = match c % 5 {
            0 => (Fill::Partial, None),
            1 => (Fill::All, Some(Duration::from_secs(4))),
            _ => (Fill::All, None),
        };
        let cart = Cart::new(id.clone(), lines, fill, hold, &CartConfig::default()).expect("valid");
        ids.extend((0..cart.lines().len()).map(|i| cart.line_id(i).into()));
        let mut out = vec![Outgoing::cart(&config.config, cart)];
        if c % 10 == 1 {
            out.push(Outgoing::cart_command(&config.config, &id, CartOp::Confirm));
        }
        // Anywhere in the first four fifths of the sale.
        let at = rng.gen_range(0..=sends.len() * 4 / 5);
        sends.insert(at, out);
        carts.push(id);
    }
    let stock: Vec<_> = partitions
        .iter()
        .zip(&demand)
        .map(|(p, d)| Outgoing::set_stock(&config.config, p, d * 3 / 4))
        .collect();
    let supplied = demand.iter().map(|d| i128::from(d * 3 / 4)).sum();
    Plan {
        stock,
        orders: sends.into_iter().flatten().collect(),
        ids,
        carts,
        supplied,
    }
}

/// The flags every instance gets: fast, slightly failing workers, short
/// lease TTL and ack wait so takeovers take seconds.
pub fn flags(id: &str) -> Vec<String> {
    [
        "--latency-p50",
        "2ms",
        "--latency-p99",
        "20ms",
        "--failure-rate",
        "0.01",
        "--ack-wait",
        "3s",
        "--drain-deadline",
        "2s",
        "--set",
        "cluster.lease_ttl=2s",
        "--set",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("cluster.instance_id={id}")])
    .collect()
}

pub fn start(url: &str, config: &ConfigFile, id: &str, extra: &[String]) -> AllotProcess {
    let flags: Vec<String> = flags(id).into_iter().chain(extra.iter().cloned()).collect();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    AllotProcess::serve(url, config, &flags)
}

/// The address of an instance's `/metrics`, from its log.
pub fn ops_addr(log: &str) -> Option<String> {
    let line = log
        .lines()
        .find(|l| l.contains("operations endpoints listening"))?;
    let at = line.find("bound=")? + "bound=".len();
    Some(line[at..].split_whitespace().next()?.to_owned())
}

/// Sums of counters scraped from instances before they die.
#[derive(Default, Debug)]
pub struct Counters {
    pub redeliveries: f64,
    pub conflicts: f64,
}

pub async fn scrape(http: &reqwest::Client, allot: &AllotProcess, into: &mut Counters) {
    let Some(addr) = ops_addr(&allot.log()) else {
        return;
    };
    let Ok(r) = http.get(format!("http://{addr}/metrics")).send().await else {
        return;
    };
    let text = r.text().await.unwrap_or_default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let value = || line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
        if line.starts_with("allot_intake_redeliveries_total") {
            into.redeliveries += value().unwrap_or(0.0);
        } else if line.starts_with("allot_log_conflicts_total") {
            into.conflicts += value().unwrap_or(0.0);
        }
    }
}

/// Waits until every shard is leased by an instance other than `dead`;
/// how long that took.
pub async fn recovered(js: &async_nats::jetstream::Context, dead: &str) -> Option<Duration> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(kv) = js.get_key_value(LEASES_BUCKET).await {
            let mut live = 0;
            for shard in 0..SHARDS {
                if let Ok(Some(owner)) = kv.get(format!("shards.{shard}")).await {
                    live += usize::from(owner.as_ref() != dead.as_bytes());
                }
            }
            if live == SHARDS as usize {
                return Some(started.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    None
}

/// The address of an instance's HTTP API, from its log.
pub fn api_addr(log: &str) -> Option<String> {
    let line = log.lines().find(|l| l.contains("HTTP API listening"))?;
    let at = line.find("bound=")? + "bound=".len();
    Some(line[at..].split_whitespace().next()?.to_owned())
}

/// Once everything is decided, an instance's views equal the replay of
/// EVENTS: every partition's stock, and every order's final status (each
/// instance keeps views of every shard, whoever owned them through the
/// kills).
pub async fn views_converge(
    http: &reqwest::Client,
    name: &str,
    allot: &AllotProcess,
    ledger: &Ledger,
    ids: &[OrderId],
) {
    let addr = api_addr(&allot.log()).expect("the API address is logged");
    let finals: std::collections::HashMap<&OrderId, &str> = ledger
        .events
        .iter()
        .filter_map(|e| match e {
            allot::domain::Event::OrderConfirmed { id } => Some((id, "confirmed")),
            allot::domain::Event::OrderRejected { id, .. } => Some((id, "rejected")),
            _ => None,
        })
        .collect();
    // Orders sampled: across the sale while the views hold it all; else
    // (the soak bounds them with ALLOT__VIEWS__MAX_ORDERS, so old decided
    // orders are forgotten by design) the last 200 decided.
    let bound: usize = env("ALLOT__VIEWS__MAX_ORDERS", 1_000_000);
    let sample: Vec<&OrderId> = if ids.len() <= bound / 2 {
        ids.iter().step_by(ids.len().div_ceil(200).max(1)).collect()
    } else {
        let mut last: Vec<&OrderId> = ledger
            .events
            .iter()
            .rev()
            .filter_map(|e| match e {
                allot::domain::Event::OrderConfirmed { id }
                | allot::domain::Event::OrderRejected { id, .. } => Some(id),
                _ => None,
            })
            .take(200)
            .collect();
        last.dedup();
        last
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut wrong = Vec::new();
    loop {
        wrong.clear();
        let board: serde_json::Value = match http
            .get(format!("http://{addr}/v1/partitions?limit=10000"))
            .send()
            .await
        {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => serde_json::Value::Null,
        };
        for v in board["partitions"].as_array().into_iter().flatten() {
            let p = partition(v["warehouse"].as_str().unwrap(), v["sku"].as_str().unwrap());
            let s = ledger.audit.stock(&p).unwrap_or_default();
            let got =
                [&v["available"], &v["reserved"], &v["sold"]].map(|x| x.as_i64().unwrap() as i128);
            if got != [s.available, s.reserved, s.sold] {
                wrong.push(format!("{p}: views {got:?}, EVENTS {s:?}"));
            }
        }
        if board["count"].as_u64().unwrap_or(0) == 0 {
            wrong.push("no partitions".into());
        }
        for id in &sample {
            let o: serde_json::Value = match http
                .get(format!("http://{addr}/v1/orders/{id}"))
                .send()
                .await
            {
                Ok(r) => r.json().await.unwrap_or_default(),
                Err(_) => serde_json::Value::Null,
            };
            if o["status"].as_str() != finals.get(id).copied() {
                wrong.push(format!(
                    "{id}: views {}, EVENTS {:?}",
                    o["status"],
                    finals.get(id)
                ));
            }
        }
        if wrong.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}'s views differ from EVENTS 30 s after the sale: {:#?}",
            &wrong[..wrong.len().min(20)]
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A fresh cluster elects its JetStream meta leader a moment after the
/// nodes are up: waits until an R3 stream can be made.
pub async fn wait_for_jetstream_cluster(js: &async_nats::jetstream::Context) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let made = js
            .create_stream(async_nats::jetstream::stream::Config {
                name: "PROBE".into(),
                subjects: vec!["probe".into()],
                num_replicas: 3,
                ..Default::default()
            })
            .await;
        if made.is_ok() {
            let _ = js.delete_stream("PROBE").await;
            return;
        }
        assert!(Instant::now() < deadline, "no JetStream cluster: {made:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The shards whose lease `instance` holds now, from the leases bucket
/// (`shards.<n>` holds the owner's id); `None` when it cannot be read.
pub async fn leases_held(js: &async_nats::jetstream::Context, instance: &str) -> Option<Vec<u32>> {
    let kv = js.get_key_value(LEASES_BUCKET).await.ok()?;
    let mut held = Vec::new();
    for shard in 0..SHARDS {
        if kv.get(format!("shards.{shard}")).await.ok()?.as_deref() == Some(instance.as_bytes()) {
            held.push(shard);
        }
    }
    Some(held)
}

/// Waits (up to `timeout`) until `instance` holds a shard lease: a
/// newcomer gets its fair share a few heartbeats after it starts.
pub async fn wait_leases(
    js: &async_nats::jetstream::Context,
    instance: &str,
    timeout: Duration,
) -> Vec<u32> {
    let deadline = Instant::now() + timeout;
    loop {
        let held = leases_held(js, instance).await.unwrap_or_default();
        if !held.is_empty() || Instant::now() >= deadline {
            return held;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The node (its index in the cluster, named `n0`..) leading `stream`'s
/// replicas now, from the stream info's `cluster.leader`.
pub async fn stream_leader(js: &async_nats::jetstream::Context, stream: &str) -> usize {
    let mut info = js.get_stream(stream).await.expect("the stream exists");
    let leader = info
        .info()
        .await
        .expect("stream info")
        .cluster
        .as_ref()
        .and_then(|c| c.leader.clone())
        .expect("the stream has a leader");
    leader[1..].parse::<usize>().expect("nodes are n0..n2")
}

/// The promises, and a lower bound so an empty sale cannot pass: every
/// unit the stock commands set is in EVENTS, nearly all of it sold (the
/// sale has a third more orders than units), and the surplus orders
/// rejected as out of stock.
pub fn assert_promises(f: &Findings, ledger: &Ledger, sale: &Plan) {
    assert_eq!(f.oversold_units, 0, "oversold: {f:?}");
    assert_eq!(f.duplicate_decisions, 0, "decided twice: {f:?}");
    assert_eq!(f.undecided, 0, "lost: {f:?}");
    assert_eq!(f.unconserved_partitions, 0, "stock not conserved: {f:?}");
    assert_eq!(f.illegal_transitions, 0, "illegal transitions: {f:?}");
    assert_eq!(
        f.confirmed + f.rejected_total(),
        sale.ids.len() as u64,
        "{f:?}"
    );
    assert!(sale.ids.iter().all(|id| ledger.finals(id) == 1));
    assert_eq!(
        f.units_supplied, sale.supplied,
        "units supplied differ from what the sale set: {f:?}"
    );
    assert!(
        i128::from(f.units_sold) * 100 >= sale.supplied * 95,
        "sold {} of {} units supplied (at least 95% expected): {f:?}",
        f.units_sold,
        sale.supplied
    );
    let out_of_stock = f.rejected.get("out_of_stock").copied().unwrap_or(0);
    assert!(out_of_stock > 0, "no order rejected out of stock: {f:?}");
    // Every cart decided once, none half sold.
    let carts = ledger.findings(&sale.carts);
    assert_eq!(carts.undecided, 0, "carts undecided: {carts:?}");
    assert_eq!(carts.broken_carts, 0, "carts half sold: {carts:?}");
    assert_eq!(
        carts.carts_confirmed + carts.carts_rejected,
        sale.carts.len() as u64,
        "{carts:?}"
    );
    assert!(
        sale.carts.is_empty() || carts.carts_confirmed > 0,
        "no cart sold: {carts:?}"
    );
}

/// Before a SIGKILL: the victim is running, owns shards, and the sale is
/// still being decided, so the kill interrupts real work.
pub async fn assert_worth_killing(
    js: &async_nats::jetstream::Context,
    id: &str,
    victim: &mut AllotProcess,
    ledger: &mut Ledger,
    sale: &Plan,
) -> Vec<u32> {
    assert!(victim.alive(), "the victim {id} is alive before its kill");
    let held = wait_leases(js, id, Duration::from_secs(20)).await;
    assert!(
        !held.is_empty(),
        "the victim {id} holds no shard lease: {:?}; its log's last 200 lines:\n{}",
        leases_held(js, id).await,
        victim.log_tail(200)
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(e) = ledger.catch_up(js).await {
        assert!(
            Instant::now() < deadline,
            "EVENTS not read before the kill: {e}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let undecided = ledger.undecided(&sale.ids);
    assert!(
        undecided > 0,
        "every order was decided before {id}'s kill: it lands after the sale"
    );
    held
}

/// Once allot made the streams: sets the sale's stock, publishes the first
/// half of its orders and waits (30 s) until `decided` orders are decided.
/// The ledger so far, the index of the second half, and whether the sale
/// got under way.
pub async fn sale_under_way(
    js: &async_nats::jetstream::Context,
    sale: &Plan,
    decided: usize,
) -> (Ledger, usize, bool) {
    wait_for_streams(js, Duration::from_secs(60)).await;
    publish_all(js, &sale.stock).await;
    let half = sale.orders.len() / 2;
    publish_all(js, &sale.orders[..half]).await;
    let mut ledger = Ledger::default();
    let under_way = ledger
        .wait_until(js, Duration::from_secs(30), |l| l.decided() >= decided)
        .await;
    (ledger, half, under_way)
}

/// A soak's record of each live process's resident memory and open file
/// descriptors (from /proc), one CSV line per process per sample:
/// `seconds,process,rss_kib,fds`. Kept only when `CHAOS_SAMPLES` names a
/// file.
pub struct Samples {
    out: Option<std::fs::File>,
    started: Instant,
}

impl Samples {
    pub fn from_env(started: Instant) -> Samples {
        let out = std::env::var("CHAOS_SAMPLES").ok().map(|path| {
            let mut f = std::fs::File::create(&path).expect("create the samples file");
            std::io::Write::write_all(&mut f, b"seconds,process,rss_kib,fds\n").expect("write");
            f
        });
        Samples { out, started }
    }

    /// Waits `total`, sampling every 2 s (once at the end when not kept).
    pub async fn wait(&mut self, total: Duration, processes: &[(String, Option<u32>)]) {
        let Some(out) = self.out.as_mut() else {
            tokio::time::sleep(total).await;
            return;
        };
        let until = Instant::now() + total;
        while Instant::now() < until {
            let at = self.started.elapsed().as_secs_f64();
            for (name, pid) in processes {
                let Some(pid) = pid else { continue };
                let status =
                    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                let rss = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok());
                let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
                    .map(|d| d.count())
                    .ok();
                if let (Some(rss), Some(fds)) = (rss, fds) {
                    let line = format!("{at:.1},{name},{rss},{fds}\n");
                    std::io::Write::write_all(out, line.as_bytes()).expect("write a sample");
                }
            }
            tokio::time::sleep((until - Instant::now()).min(Duration::from_secs(2))).await;
        }
    }
}
