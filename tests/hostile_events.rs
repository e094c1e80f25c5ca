//! Hostile messages on `events.*`, against a real nats-server: anyone
//! allowed to publish there can put anything in EVENTS. Each reader of it
//! (the `EventsReader` every reader uses, shard recovery, the views
//! follower) must report every message it cannot read, by subject and
//! sequence, apply nothing of it, and go on: no stack overflow on a batch
//! nested a hundred thousand levels deep, no garbage taken for a batch.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use allot::adapters::nats::events::EventsReader;
use allot::adapters::nats::{events_config, NatsDecisions, NatsFeed, NatsLog};
use allot::domain::{Command, Order, OrderId, Priority, Quantity};
use allot::ports::{EventLog, MemSnapshots};
use allot::runtime::views::{follow_views, CaughtUp, ViewsConfig};
use allot::runtime::{recover, OwnedShards};
use allot::scheduler::ShardConfig;
use allot::views::Views;
use allot::wire::log::{encode_batch, Chains};
use allot_core::testkit::Harness;
use tokio_util::sync::CancellationToken;

use common::allot::{jetstream, partition};
use common::nats::NatsServer;

/// What the readers log, to check what they report.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// The log so far, emptied.
    fn take(&self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut *self.0.lock().unwrap())).into_owned()
    }
}

/// A shard that sold `units` units of `sku` to as many orders.
fn sale(sku: &str, units: u64) -> Harness {
    let p = partition("ams", sku);
    let mut h = Harness::new(ShardConfig::default());
    h.command(Command::SetStock {
        partition: p.clone(),
        on_hand: units,
        expected_version: None,
    });
    for n in 0..units {
        h.place(Order {
            line: false,
            id: OrderId::new(&format!("{sku}-{n}")).unwrap(),
            partition: p.clone(),
            quantity: Quantity::ONE,
            region: None,
            priority: Priority(0),
            fallbacks: Vec::new(),
        });
    }
    h.fulfil_all();
    h
}

/// A batch of shard 0 after its sequence 3 whose event carries a field
/// nested `levels` deep: well-formed but for the depth.
fn nested_batch(levels: usize) -> Vec<u8> {
    let mut deep = vec![0x91; levels];
    deep.push(0x90);
    let head = encode_batch(0, 3, &[]);
    // {v, shard, prev, events: [{type: order_confirmed, id: "h", x: deep}]}
    let events = [
        &[0x91, 0x83, 0xa4][..],
        b"type",
        &[0xaf],
        b"order_confirmed",
        &[0xa2],
        b"id",
        &[0xa1, b'h', 0xa1, b'x'],
        &deep,
    ]
    .concat();
    let at = head.len() - 1; // the empty events list, last
    [&head[..at], &events].concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_events_messages_are_reported_by_every_reader_and_never_applied() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_env_filter("warn,allot=info")
        .init();

    let server = NatsServer::start();
    let js = jetstream(&server.url()).await;
    let events = js
        .create_stream(events_config(Duration::from_secs(120)))
        .await
        .expect("EVENTS");
    let log = NatsLog::new(js.clone(), events.clone());

    // Two shards' logs, interleaved, then hostile messages at the end of
    // both subjects and on a shard of their own.
    let shards = [sale("MUG", 3), sale("CUP", 2)];
    let mut last = [0u64; 2];
    let mut written = Vec::new();
    let longest = shards.iter().map(|h| h.batches().len()).max().unwrap();
    for i in 0..longest {
        for (shard, h) in shards.iter().enumerate() {
            if let Some(batch) = h.batches().get(i) {
                let id = format!("b-{shard}-{i}");
                last[shard] = log
                    .append(shard as u32, last[shard], &id, batch)
                    .await
                    .expect("append");
                written.push((shard as u32, last[shard]));
            }
        }
    }
    let garbage: &[u8] = b"\xc1 not MessagePack";
    let newer = [&[0x84, 0xa1, b'v', 0x02][..], &encode_batch(1, 0, &[])[4..]].concat();
    let hostile: [(&str, Vec<u8>); 4] = [
        ("events.0", nested_batch(100_000)),
        ("events.1", garbage.to_vec()),
        ("events.1", newer),
        (
            "events.2",
            rmp_serde::to_vec_named(&shards[0].log()).unwrap(),
        ),
    ];
    let mut hostile_seqs = Vec::new();
    for (subject, payload) in hostile {
        let ack = js.publish(subject, payload.into()).await.unwrap();
        hostile_seqs.push(ack.await.expect("stored").sequence);
    }
    let end = *hostile_seqs.last().unwrap();
    // Every hostile message named, by its sequence and why.
    let reported = |log: &str, reader: &str| {
        for seq in &hostile_seqs {
            assert!(
                log.contains(&format!("EVENTS sequence {seq}: ")),
                "{reader} did not report sequence {seq}:\n{log}"
            );
        }
        assert!(log.contains("nested more than 12 levels deep"), "{log}");
        assert!(log.contains("batch version 2 is not supported"), "{log}");
        assert!(log.contains("written by allot 0.1"), "{log}");
    };

    // The reader every other one uses: each batch once, nothing else.
    let mut reader = EventsReader::new(events.clone(), "events.*", Chains::from_start(), 1);
    let read: Vec<(u32, u64)> = reader
        .read_until(end)
        .await
        .expect("EVENTS read")
        .into_iter()
        .map(|b| (b.batch.shard, b.seq))
        .collect();
    assert_eq!(read, written);
    assert_eq!(reader.stats().unreadable, 4, "{:?}", reader.stats());
    reported(&captured.take(), "the EventsReader");

    // Recovery: each shard's state is its own batches', nothing more.
    let config = ShardConfig::default();
    let snapshots = MemSnapshots::default();
    for (shard, h) in shards.iter().enumerate() {
        let (state, seq) = recover(shard as u32, &log, &snapshots, &config)
            .await
            .expect("the shard recovers");
        assert_eq!(seq, last[shard], "shard {shard}");
        assert!(&state == h.shard.state(), "shard {shard}'s state differs");
    }
    let (empty, seq) = recover(2, &log, &snapshots, &config)
        .await
        .expect("shard 2");
    assert_eq!((seq, empty == config.empty_state()), (0, true));
    reported(&captured.take(), "recovery");

    // The views follower: the views of every shard as folded from its
    // own batches.
    let views = Arc::new(Views::new(3, 1_000));
    let caught_up = Arc::new(CaughtUp::default());
    let stop = CancellationToken::new();
    let client = async_nats::connect(server.url()).await.unwrap();
    let follower = tokio::spawn(follow_views(
        NatsFeed::new(events.clone(), &[(0, 0), (1, 0), (2, 0)]),
        views.clone(),
        Arc::new(MemSnapshots::default()),
        Arc::new(NatsDecisions::new(client)),
        Arc::new(OwnedShards::default()),
        caught_up.clone(),
        ViewsConfig::default(),
        stop.clone(),
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !caught_up.get() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "views never caught up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    follower.await.expect("the follower ends, not panics");
    for (shard, h) in shards.iter().enumerate() {
        let folded = Views::new(3, 1_000);
        for (batch, (_, seq)) in h
            .batches()
            .iter()
            .zip(written.iter().filter(|w| w.0 == shard as u32))
        {
            folded.apply(shard as u32, *seq, batch);
        }
        assert_eq!(views.last_seq(shard as u32), last[shard]);
        let sku = ["MUG", "CUP"][shard];
        let folded_stock = folded.stock(&partition("ams", sku));
        assert!(folded_stock.is_some(), "shard {shard} sold {sku}");
        assert_eq!(views.stock(&partition("ams", sku)), folded_stock);
    }
    assert_eq!(
        (views.last_seq(2), views.order(&OrderId::new("h").unwrap())),
        (0, None)
    );
    reported(&captured.take(), "the views follower");
}
