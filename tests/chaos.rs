//! Chaos against real processes: a sale through 3 `allot serve` instances
//! sharing the shards by lease, with a random instance SIGKILLed (and
//! restarted) every few seconds and nats-server restarted now and then;
//! and a 3-node nats-server cluster with R3 streams losing a node mid-sale.
//! Afterwards EVENTS and the intake are audited: 0 units oversold, 0 orders
//! lost (every order has exactly one final decision), 0 decided twice,
//! stock conserved in every partition, no intake left unacked.
//!
//! `cargo test --test chaos` runs a small sale (CI); `scripts/chaos.sh`
//! runs the full one (200,000 orders over 1,000 SKUs, 20 kills, 3 broker
//! restarts) in release. Sizes come from `CHAOS_*` environment variables.

mod common;

use std::time::Duration;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use allot::adapters::nats::LEASES_BUCKET;
use allot::audit::Findings;
use allot::domain::OrderId;
use common::allot::{
    jetstream, one_warehouse, order_id, partition, publish_all, wait_for_streams,
    wait_intake_drained, AllotProcess, ConfigFile, Ledger, Outgoing,
};
use common::nats::{NatsCluster, NatsServer};

const SHARDS: u32 = 6;

fn config() -> ConfigFile {
    ConfigFile::new(&format!(
        "{}\n[workers]\ndefault_concurrency = 32\n",
        one_warehouse(SHARDS)
    ))
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The sale: `orders` one-unit orders spread over `skus` SKUs in `ams`,
/// each SKU stocked with three quarters of its orders.
struct Plan {
    stock: Vec<Outgoing>,
    orders: Vec<Outgoing>,
    ids: Vec<OrderId>,
}

fn plan(config: &ConfigFile, orders: usize, skus: usize, seed: u64) -> Plan {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let partitions: Vec<_> = (0..skus)
        .map(|i| partition("ams", &format!("CH-{i}")))
        .collect();
    let per_sku = orders.div_ceil(skus) as u64;
    let stock = partitions
        .iter()
        .map(|p| Outgoing::set_stock(&config.config, p, per_sku * 3 / 4))
        .collect();
    let mut orders: Vec<(String, usize)> = (0..orders)
        .map(|i| (format!("ch-{seed}-{i}"), i % skus))
        .collect();
    orders.shuffle(&mut rng);
    let ids = orders.iter().map(|(id, _)| order_id(id)).collect();
    let orders = orders
        .iter()
        .map(|(id, p)| Outgoing::order(id, &partitions[*p], 1))
        .collect();
    Plan { stock, orders, ids }
}

/// The flags every instance gets: fast, slightly failing workers, short
/// lease TTL and ack wait so takeovers take seconds.
fn flags(id: &str) -> Vec<String> {
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

fn start(url: &str, config: &ConfigFile, id: &str, extra: &[String]) -> AllotProcess {
    let flags: Vec<String> = flags(id).into_iter().chain(extra.iter().cloned()).collect();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    AllotProcess::serve(url, config, &flags)
}

/// The address of an instance's `/metrics`, from its log.
fn ops_addr(log: &str) -> Option<String> {
    let line = log
        .lines()
        .find(|l| l.contains("operations endpoints listening"))?;
    let at = line.find("bound=")? + "bound=".len();
    Some(line[at..].split_whitespace().next()?.to_owned())
}

/// Sums of counters scraped from instances before they die.
#[derive(Default, Debug)]
struct Counters {
    redeliveries: f64,
    conflicts: f64,
}

async fn scrape(http: &reqwest::Client, allot: &AllotProcess, into: &mut Counters) {
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
async fn recovered(js: &async_nats::jetstream::Context, dead: &str) -> Option<Duration> {
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
fn api_addr(log: &str) -> Option<String> {
    let line = log.lines().find(|l| l.contains("HTTP API listening"))?;
    let at = line.find("bound=")? + "bound=".len();
    Some(line[at..].split_whitespace().next()?.to_owned())
}

/// Once everything is decided, an instance's views equal the replay of
/// EVENTS: every partition's stock, and every order's final status (each
/// instance keeps views of every shard, whoever owned them through the
/// kills).
async fn views_converge(
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
        for id in ids.iter().step_by(ids.len().div_ceil(200).max(1)) {
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

fn assert_promises(f: &Findings, total: usize, ledger: &Ledger, ids: &[OrderId]) {
    assert_eq!(f.oversold_units, 0, "oversold: {f:?}");
    assert_eq!(f.duplicate_decisions, 0, "decided twice: {f:?}");
    assert_eq!(f.undecided, 0, "lost: {f:?}");
    assert_eq!(f.unconserved_partitions, 0, "stock not conserved: {f:?}");
    assert_eq!(f.confirmed + f.rejected_total(), total as u64, "{f:?}");
    assert!(ids.iter().all(|id| ledger.finals(id) == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_survive_sigkills_and_broker_restarts() {
    let orders: usize = env("CHAOS_ORDERS", 3_000);
    let skus: usize = env("CHAOS_SKUS", 60);
    let kills: usize = env("CHAOS_KILLS", 4);
    let nats_restarts: usize = env("CHAOS_NATS_RESTARTS", 1);
    let every = Duration::from_millis(env("CHAOS_KILL_EVERY_MS", 2_000));
    let seed: u64 = env("CHAOS_SEED", 7);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);

    let mut server = NatsServer::start();
    let url = server.url();
    let config = config();
    let sale = plan(&config, orders, skus, seed);
    let mut gen = 0;
    let mut instances: Vec<(String, AllotProcess)> = (0..3)
        .map(|slot| {
            let id = format!("c{slot}-g0");
            let p = start(&url, &config, &id, &[]);
            (id, p)
        })
        .collect();
    let mut graveyard = Vec::new();
    let js = jetstream(&url).await;
    wait_for_streams(&js, Duration::from_secs(30)).await;
    publish_all(&js, &sale.stock).await;

    // The producer publishes the sale over the whole chaos, retrying
    // through broker restarts (the msg id makes a retry a no-op).
    let window = every * (kills + nats_restarts) as u32;
    let producer = {
        let (js, orders) = (js.clone(), sale.orders);
        tokio::spawn(async move {
            let chunk = orders
                .len()
                .div_ceil(window.as_millis().max(1) as usize / 100)
                .max(1);
            for part in orders.chunks(chunk) {
                publish_all(&js, part).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let started = Instant::now();
    let http = reqwest::Client::new();
    let mut counters = Counters::default();
    let mut recoveries = Vec::new();
    let restart_at: Vec<usize> = (0..nats_restarts)
        .map(|i| (i + 1) * kills / (nats_restarts + 1))
        .collect();
    for k in 0..kills {
        tokio::time::sleep(every).await;
        let slot = rng.gen_range(0..instances.len());
        gen += 1;
        let (dead, mut victim) = instances.swap_remove(slot);
        scrape(&http, &victim, &mut counters).await;
        victim.kill();
        graveyard.push(victim);
        let id = format!("c{slot}-g{gen}");
        instances.push((id.clone(), start(&url, &config, &id, &[])));
        let took = recovered(&js, &dead).await;
        eprintln!("kill {k}: {dead} SIGKILLed; every shard owned again after {took:?}");
        recoveries.push(took.expect("the shards were taken over within 60 s"));
        if restart_at.contains(&k) {
            eprintln!("restarting nats-server");
            server.restart();
        }
    }
    producer.await.expect("the producer finished");
    let mut ledger = Ledger::default();
    let undecided = ledger
        .wait_decided(&js, &sale.ids, Duration::from_secs(300))
        .await;
    let logs = || {
        instances
            .iter()
            .map(|(id, p)| format!("--- {id}\n{}", p.log()))
            .collect::<String>()
    };
    assert_eq!(undecided, 0, "{}", logs());
    assert!(
        wait_intake_drained(&js, SHARDS, Duration::from_secs(60)).await,
        "intake left unacked: {}",
        logs()
    );
    for (_, p) in &instances {
        scrape(&http, p, &mut counters).await;
    }
    ledger.catch_up(&js).await.expect("read EVENTS");
    for (id, p) in &instances {
        views_converge(&http, id, p, &ledger, &sale.ids).await;
    }
    for (id, p) in &mut instances {
        let status = p.terminate(Duration::from_secs(30)).await;
        assert!(status.success(), "{id}: {status}");
    }
    ledger.catch_up(&js).await.expect("read EVENTS");
    let f = ledger.findings(&sale.ids);
    let fenced: usize = graveyard
        .iter()
        .chain(instances.iter().map(|(_, p)| p))
        .map(|p| p.count("shard fenced"))
        .sum();
    recoveries.sort();
    eprintln!(
        "chaos: {orders} orders over {skus} SKUs, {kills} SIGKILLs, {nats_restarts} nats-server restarts, {:.1}s\n\
         confirmed {}, rejected {:?}\n\
         oversold {}, lost {}, decided twice {}, unconserved partitions {}\n\
         redeliveries {} and log conflicts {} (scraped before each kill and at the end), shards fenced {fenced}\n\
         recovery (kill to every shard leased again): min {:?}, median {:?}, max {:?}",
        started.elapsed().as_secs_f64(),
        f.confirmed,
        f.rejected,
        f.oversold_units,
        f.undecided,
        f.duplicate_decisions,
        f.unconserved_partitions,
        counters.redeliveries,
        counters.conflicts,
        recoveries.first(),
        recoveries.get(recoveries.len() / 2),
        recoveries.last(),
    );
    assert_promises(&f, orders, &ledger, &sale.ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r3_cluster_loses_a_node_mid_sale_and_no_order() {
    let orders: usize = env("CHAOS_CLUSTER_ORDERS", 2_000);
    let mut cluster = NatsCluster::start(3);
    let urls = cluster.urls();
    let js = jetstream(&urls).await;
    wait_for_jetstream_cluster(&js).await;
    let config = config();
    let sale = plan(&config, orders, 40, 11);
    let replicated = ["--set".to_owned(), "nats.replicas=3".to_owned()];
    let allot = start(&urls, &config, "r3-a", &replicated);
    wait_for_streams(&js, Duration::from_secs(60)).await;
    publish_all(&js, &sale.stock).await;
    let half = sale.orders.len() / 2;
    publish_all(&js, &sale.orders[..half]).await;
    let mut ledger = Ledger::default();
    ledger
        .wait_until(&js, Duration::from_secs(30), |l| l.decided() >= 50)
        .await;

    // A node dies mid-sale, with a quorum of two left.
    cluster.nodes[1].kill();
    publish_all(&js, &sale.orders[half..]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.nodes[1].restart();

    let undecided = ledger
        .wait_decided(&js, &sale.ids, Duration::from_secs(120))
        .await;
    assert_eq!(undecided, 0, "{}", allot.log());
    assert!(
        wait_intake_drained(&js, SHARDS, Duration::from_secs(60)).await,
        "intake left unacked: {}",
        allot.log()
    );
    let mut allot = allot;
    let status = allot.terminate(Duration::from_secs(30)).await;
    assert!(status.success(), "{status}: {}", allot.log());
    ledger.catch_up(&js).await.expect("read EVENTS");
    let f = ledger.findings(&sale.ids);
    eprintln!("R3 cluster, node n1 killed and restarted mid-sale: {f:?}");
    assert_promises(&f, orders, &ledger, &sale.ids);
    let info = js
        .get_stream(allot::adapters::nats::EVENTS_STREAM)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    assert_eq!(info.config.num_replicas, 3, "EVENTS is replicated");
}

/// A fresh cluster elects its JetStream meta leader a moment after the
/// nodes are up: waits until an R3 stream can be made.
async fn wait_for_jetstream_cluster(js: &async_nats::jetstream::Context) {
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

/// Issue 10, bug 3: the ordered consumer may deliver a stretch of EVENTS
/// again after the stream's leader dies. Batches are appended to two
/// shards of an R3 EVENTS stream; a reader reads them back slowly while
/// the stream leader is SIGKILLed (and restarted) mid-read, retrying like
/// the views do. Every batch must come out exactly once, in each shard's
/// order, whatever the consumer delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_events_reader_applies_each_batch_once_when_the_stream_leader_dies() {
    use allot::adapters::nats::events::EventsReader;
    use allot::adapters::nats::NatsLog;
    use allot::domain::Event;
    use allot::ports::EventLog;
    use allot::wire::log::Chains;

    let batches: usize = env("CHAOS_READER_BATCHES", 1_000);
    let mut cluster = NatsCluster::start(3);
    let js = jetstream(&cluster.urls()).await;
    wait_for_jetstream_cluster(&js).await;
    let events = js
        .create_stream(async_nats::jetstream::stream::Config {
            num_replicas: 3,
            ..allot::adapters::nats::events_config(Duration::from_secs(120))
        })
        .await
        .expect("an R3 EVENTS stream");
    let log = NatsLog::new(js.clone(), events.clone());
    let mut written: Vec<(u32, u64)> = Vec::new();
    let mut last = [0u64; 2];
    for i in 0..batches {
        let shard = (i % 2) as u32;
        let event = Event::OrderConfirmed {
            id: order_id(&format!("r-{i}")),
        };
        let seq = log
            .append(shard, last[shard as usize], &format!("b-{i}"), &[event])
            .await
            .expect("append");
        last[shard as usize] = seq;
        written.push((shard, seq));
    }

    let mut reader = EventsReader::new(events.clone(), "events.*", Chains::from_start(), 1);
    let mut read: Vec<(u32, u64)> = Vec::new();
    let mut killed = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    while read.len() < written.len() {
        assert!(
            Instant::now() < deadline,
            "read {} of {}",
            read.len(),
            written.len()
        );
        if killed.is_none() && read.len() >= written.len() / 3 {
            let mut info = js.get_stream("EVENTS").await.expect("EVENTS");
            let leader = info
                .info()
                .await
                .expect("stream info")
                .cluster
                .as_ref()
                .and_then(|c| c.leader.clone())
                .expect("the stream has a leader");
            let node = leader[1..].parse::<usize>().expect("nodes are n0..n2");
            assert!(
                cluster.nodes[node].pid().is_some(),
                "the leader {leader} is alive"
            );
            cluster.nodes[node].kill();
            killed = Some((node, Instant::now()));
        }
        if let Some((node, at)) = killed {
            if at.elapsed() > Duration::from_secs(2) && cluster.nodes[node].pid().is_none() {
                cluster.nodes[node].restart();
            }
        }
        match reader.next(Duration::from_secs(2)).await {
            Ok(Some(b)) => {
                read.push((b.batch.shard, b.seq));
                // Slow, so the kill lands mid-read.
                if read.len().is_multiple_of(100) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Ok(None) => {}
            Err(e) => {
                eprintln!("reader: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    let stats = reader.stats();
    eprintln!(
        "EVENTS read back with the leader killed mid-read: {} batches, {stats:?}",
        read.len()
    );
    assert!(killed.is_some(), "the stream leader was killed mid-read");
    assert_eq!(read, written, "each batch once, in order");

    // The broker delivering everything again (as the ordered consumer did
    // after a node loss): nothing is applied twice.
    let chains = std::mem::take(&mut reader.chains);
    let mut again = EventsReader::new(events.clone(), "events.*", chains, 1);
    let twice = again
        .read_until(written.last().unwrap().1)
        .await
        .expect("read again");
    assert!(twice.is_empty(), "{} batches applied twice", twice.len());
    assert_eq!(again.stats().seen_again, written.len() as u64);

    // A consumer that skips batches: the gap is found, and the batches
    // are read again from the last one applied.
    let mut skipping = EventsReader::new(events, "events.*", Chains::from_start(), written[10].1);
    let healed: Vec<(u32, u64)> = skipping
        .read_until(written.last().unwrap().1)
        .await
        .expect("read after the gap")
        .into_iter()
        .map(|b| (b.batch.shard, b.seq))
        .collect();
    assert!(skipping.stats().gaps >= 1, "{:?}", skipping.stats());
    assert_eq!(healed, written, "the skipped batches read again, in order");
}
