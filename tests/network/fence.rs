//! Who wrote each EVENTS batch, and whether they held the shard's lease
//! when it was stored: the leases bucket watched through the sale (every
//! put on `shards.<n>` with the server's time), EVENTS read back with each
//! batch's `Nats-Msg-Id` and stored time, and the ids the proxied instance
//! published (from the proxy). All times are the one machine's clock, as
//! Unix nanoseconds: the server's for puts and batches, allot's log
//! timestamps, the test's own for the faults.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::kv::Operation;
use async_nats::jetstream::Context;
use futures::StreamExt;
use tokio::time::Instant;

use allot::adapters::nats::{EVENTS_STREAM, LEASES_BUCKET};

pub fn now() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos() as i128
}

/// A put on `shards.<shard>`: `owner` took or renewed the lease at `at`.
#[derive(Clone, Debug)]
pub struct Put {
    pub shard: u32,
    pub owner: String,
    pub at: i128,
}

/// Every lease put seen since [`watch_leases`].
#[derive(Clone, Default)]
pub struct Puts(Arc<Mutex<Vec<Put>>>);

impl Puts {
    pub fn all(&self) -> Vec<Put> {
        self.0.lock().unwrap().clone()
    }

    /// The first put by someone other than `owner` on `shard` after `since`.
    pub fn taken_from(&self, owner: &str, shard: u32, since: i128) -> Option<Put> {
        self.all()
            .into_iter()
            .find(|p| p.shard == shard && p.at > since && p.owner != owner)
    }
}

/// Watches `shards.*` in the leases bucket (once allot made it), from its
/// history on, in a task that runs until the bucket goes.
pub async fn watch_leases(js: &Context) -> Puts {
    let deadline = Instant::now() + Duration::from_secs(30);
    let kv = loop {
        if let Ok(kv) = js.get_key_value(LEASES_BUCKET).await {
            break kv;
        }
        assert!(Instant::now() < deadline, "allot made no leases bucket");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut watch = kv
        .watch_with_history("shards.*")
        .await
        .expect("watch the leases");
    let puts = Puts::default();
    let sink = puts.clone();
    tokio::spawn(async move {
        while let Some(Ok(entry)) = watch.next().await {
            let Some(shard) = entry
                .key
                .strip_prefix("shards.")
                .and_then(|n| n.parse().ok())
            else {
                continue;
            };
            if entry.operation == Operation::Put {
                sink.0.lock().unwrap().push(Put {
                    shard,
                    owner: String::from_utf8_lossy(&entry.value).into_owned(),
                    at: entry.created.unix_timestamp_nanos(),
                });
            }
        }
    });
    puts
}

/// One EVENTS batch as stored.
#[derive(Clone, Debug)]
pub struct Stored {
    pub shard: u32,
    pub seq: u64,
    pub at: i128,
    pub msg_id: String,
}

/// Every batch in EVENTS, in stream order.
pub async fn stored_batches(js: &Context) -> Vec<Stored> {
    let mut events = js.get_stream(EVENTS_STREAM).await.expect("EVENTS");
    let last = events
        .info()
        .await
        .expect("EVENTS info")
        .state
        .last_sequence;
    let mut batches = Vec::new();
    for seq in 1..=last {
        let Ok(m) = events.get_raw_message(seq).await else {
            continue;
        };
        let Some(shard) = m
            .subject
            .strip_prefix("events.")
            .and_then(|n| n.parse().ok())
        else {
            continue;
        };
        let msg_id = m
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default();
        batches.push(Stored {
            shard,
            seq,
            at: m.time.unix_timestamp_nanos(),
            msg_id,
        });
    }
    batches
}

/// A batch stored while another instance held the lease its writer had.
#[derive(Debug)]
pub struct Stale {
    pub batch: Stored,
    pub writer: String,
    pub owner: Put,
}

/// What the ownership check found.
#[derive(Debug, Default)]
pub struct Fencing {
    /// Batches written by the proxied instance, and by the other one.
    pub proxied: usize,
    pub direct: usize,
    /// Batches stored before any lease put was seen on their shard.
    pub unchecked: usize,
    pub stale: Vec<Stale>,
}

/// Attributes each batch to its writer (the proxied instance if it
/// published the batch id through the proxy, else the direct one) and
/// checks that the last lease put on the shard before the batch was
/// stored was the writer's own: a writer whose lease was taken wrote
/// nothing more.
pub fn check(batches: &[Stored], puts: &[Put], sent: &HashSet<String>, ids: [&str; 2]) -> Fencing {
    let [proxied, direct] = ids;
    let mut f = Fencing::default();
    for b in batches {
        let writer = if sent.contains(&b.msg_id) {
            f.proxied += 1;
            proxied
        } else {
            f.direct += 1;
            direct
        };
        let owner = puts
            .iter()
            .filter(|p| p.shard == b.shard && p.at < b.at)
            .max_by_key(|p| p.at);
        match owner {
            None => f.unchecked += 1,
            Some(p) if p.owner != writer => f.stale.push(Stale {
                batch: b.clone(),
                writer: writer.to_owned(),
                owner: p.clone(),
            }),
            Some(_) => {}
        }
    }
    f
}

/// The lines of an allot log containing any of `needles`, with their
/// timestamps (the first word of each line).
pub fn logged(log: &str, needles: &[&str]) -> Vec<(i128, String)> {
    log.lines()
        .filter(|l| needles.iter().any(|n| l.contains(n)))
        .filter_map(|l| {
            let (stamp, rest) = l.split_once(' ')?;
            let at = async_nats::datetime::parse_rfc3339(stamp).ok()?;
            Some((at.unix_timestamp_nanos(), rest.trim().to_owned()))
        })
        .collect()
}

/// `at` in seconds after `origin`, for the timeline.
pub fn secs(at: i128, origin: i128) -> f64 {
    (at - origin) as f64 / 1e9
}

/// The check itself can fail: a batch stored after another instance put
/// the lease is flagged, one stored before is not, and a writer's own
/// later put clears it again.
#[test]
fn a_batch_stored_after_the_lease_was_taken_is_stale() {
    let put = |owner: &str, at| Put {
        shard: 1,
        owner: owner.into(),
        at,
    };
    let batch = |seq, at, msg_id: &str| Stored {
        shard: 1,
        seq,
        at,
        msg_id: msg_id.into(),
    };
    let puts = [put("p", 10), put("d", 20), put("p", 40)];
    let batches = [
        batch(1, 15, "p-1"),
        batch(2, 25, "p-2"),
        batch(3, 30, "d-1"),
        batch(4, 45, "p-3"),
        batch(5, 5, "d-0"),
    ];
    let sent: HashSet<String> = ["p-1", "p-2", "p-3"].map(String::from).into();
    let f = check(&batches, &puts, &sent, ["p", "d"]);
    assert_eq!((f.proxied, f.direct, f.unchecked), (3, 2, 1));
    let stale: Vec<u64> = f.stale.iter().map(|s| s.batch.seq).collect();
    assert_eq!(stale, [2]);
}
