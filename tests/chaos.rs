//! Chaos against real processes: a sale through 3 `allot serve` instances
//! sharing the shards by lease, with a random instance SIGKILLed (and
//! restarted) every few seconds and nats-server restarted now and then;
//! and a 3-node nats-server cluster with R3 streams losing a node mid-sale.
//! Afterwards EVENTS and the intake are audited: 0 units oversold, 0 orders
//! lost (every order has exactly one final decision), 0 decided twice,
//! stock conserved in every partition, no intake left unacked; and so
//! that a sale that sold nothing cannot pass, every unit set is supplied,
//! at least 95% of it sold, and the surplus rejected out of stock. Each
//! kill must interrupt work: the victim runs, holds a lease and orders are
//! undecided; SIGKILLs must cause intake redeliveries; the R3 test kills
//! the EVENTS stream's current leader.
//!
//! `cargo test --test chaos` runs a small sale (CI); `scripts/chaos.sh`
//! runs the full one (200,000 orders over 1,000 SKUs, 20 kills, 3 broker
//! restarts) in release. Sizes come from `CHAOS_*` environment variables.

mod common;
#[path = "chaos/support.rs"]
mod support;

use std::time::Duration;

use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use allot::adapters::nats::EVENTS_STREAM;
use common::allot::{
    jetstream, order_id, publish_all, wait_for_streams, wait_intake_drained, AllotProcess, Ledger,
};
use common::nats::{NatsCluster, NatsServer};
use support::{
    assert_promises, assert_worth_killing, config, env, plan, recovered, sale_under_way, scrape,
    start, stream_leader, views_converge, wait_for_jetstream_cluster, Counters, Samples, SHARDS,
};

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
    let mut sale = plan(&config, orders, skus, seed);
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
    // through broker restarts (the msg id makes a retry a no-op). Each
    // kill waits for its victim to hold a lease and for the takeover
    // (about the lease TTL, 2 s), so the window counts 4 s more per kill:
    // every kill must find orders undecided.
    let window = (every + Duration::from_secs(4)) * kills as u32 + every;
    let producer = {
        let (js, orders) = (js.clone(), std::mem::take(&mut sale.orders));
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
    let mut ledger = Ledger::default();
    let mut samples = Samples::from_env(started);
    for k in 0..kills {
        let live: Vec<(String, Option<u32>)> = instances
            .iter()
            .map(|(id, p)| (id.clone(), p.pid()))
            .chain([("nats-server".to_owned(), server.pid())])
            .collect();
        samples.wait(every, &live).await;
        let slot = rng.gen_range(0..instances.len());
        gen += 1;
        let (dead, mut victim) = instances.swap_remove(slot);
        let held = assert_worth_killing(&js, &dead, &mut victim, &mut ledger, &sale).await;
        let undecided = ledger.undecided(&sale.ids);
        scrape(&http, &victim, &mut counters).await;
        victim.kill();
        graveyard.push(victim);
        let id = format!("c{slot}-g{gen}");
        instances.push((id.clone(), start(&url, &config, &id, &[])));
        let took = recovered(&js, &dead).await;
        eprintln!(
            "kill {k}: {dead} SIGKILLed holding shards {held:?}, {undecided} orders undecided; \
             every shard owned again after {took:?}"
        );
        recoveries.push(took.expect("the shards were taken over within 60 s"));
        if restart_at.contains(&k) {
            eprintln!("restarting nats-server");
            server.restart();
        }
    }
    producer.await.expect("the producer finished");
    let undecided = ledger
        .wait_decided(&js, &sale.ids, Duration::from_secs(300))
        .await;
    let logs = || {
        instances
            .iter()
            .map(|(id, p)| format!("--- {id}\n{}", p.log()))
            .collect::<String>()
    };
    let missing: Vec<_> = sale
        .ids
        .iter()
        .filter(|id| ledger.finals(id) == 0)
        .take(10)
        .collect();
    assert_eq!(undecided, 0, "undecided {missing:?}; {}", logs());
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
    eprintln!(
        "carts: {} confirmed, {} rejected or cancelled, {} half sold",
        f.carts_confirmed, f.carts_rejected, f.broken_carts
    );
    assert_promises(&f, &ledger, &sale);
    // A SIGKILLed owner leaves its intake unacked: the new owner must
    // have had it redelivered.
    assert!(
        counters.redeliveries > 0.0,
        "no intake redelivered after {kills} SIGKILLs: {counters:?}"
    );
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
    let (mut ledger, half, under_way) = sale_under_way(&js, &sale, 50).await;
    assert!(under_way, "50 orders decided within 30 s: {}", allot.log());

    // The EVENTS stream's leader dies mid-sale, with a quorum of two left.
    let leader = stream_leader(&js, EVENTS_STREAM).await;
    assert!(
        cluster.nodes[leader].pid().is_some(),
        "the EVENTS leader n{leader} is alive"
    );
    // The second half is not yet published: the kill lands mid-sale.
    let undecided_at_kill = ledger.undecided(&sale.ids);
    assert!(
        undecided_at_kill > 0,
        "the sale was over before the leader's kill"
    );
    cluster.nodes[leader].kill();
    publish_all(&js, &sale.orders[half..]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.nodes[leader].restart();

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
    eprintln!(
        "R3 cluster, EVENTS leader n{leader} killed ({undecided_at_kill} orders undecided) \
         and restarted mid-sale: {f:?}"
    );
    assert_promises(&f, &ledger, &sale);
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
            let node = stream_leader(&js, EVENTS_STREAM).await;
            assert!(
                cluster.nodes[node].pid().is_some(),
                "the leader n{node} is alive"
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

    // The restarted node catches up (and the stream may elect again)
    // before the reads below, which then test the reader, not an election.
    if let Some((node, _)) = killed {
        if cluster.nodes[node].pid().is_none() {
            cluster.nodes[node].restart();
        }
    }
    replicas_current(&js).await;

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

/// Waits (up to 60 s) until EVENTS has a leader and every replica is
/// current.
async fn replicas_current(js: &async_nats::jetstream::Context) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let cluster = match js.get_stream(EVENTS_STREAM).await {
            Ok(mut s) => s.info().await.ok().and_then(|i| i.cluster.clone()),
            Err(_) => None,
        };
        let current = cluster.is_some_and(|c| {
            c.leader.is_some() && c.replicas.iter().all(|r| r.current && !r.offline)
        });
        if current {
            return;
        }
        assert!(Instant::now() < deadline, "EVENTS replicas never current");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
