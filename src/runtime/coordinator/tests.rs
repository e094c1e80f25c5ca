//! The coordinator against leases whose calls hang, fail or are taken
//! over, in virtual time: a shard runs only while its lease surely holds.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Coordinator, StartShard};
use crate::ports::{LeaseError, Leases, ShardId, Survey};
use crate::runtime::ShardExit;

const TTL: Duration = Duration::from_secs(2);

/// What a renewal of a shard's lease does.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Renewal {
    Ok,
    /// Never answers.
    Hang,
    /// Answers (renewed) this late, once, then as `Ok`.
    SlowOnce(Duration),
    Taken,
}

/// One instance alone with its leases; renewals per shard as the test
/// says.
#[derive(Clone, Default)]
struct Fake {
    renewals: Arc<Mutex<BTreeMap<ShardId, Renewal>>>,
    revisions: Arc<Mutex<BTreeMap<ShardId, u64>>>,
    /// How long every renewal takes (a round trip).
    latency: Arc<Mutex<Duration>>,
}

impl Fake {
    fn set(&self, shard: ShardId, renewal: Renewal) {
        self.renewals.lock().insert(shard, renewal);
    }
}

impl Leases for Fake {
    fn me(&self) -> &str {
        "me"
    }
    async fn register(&self) -> Result<(), LeaseError> {
        Ok(())
    }
    async fn deregister(&self) {}
    async fn survey(&self) -> Result<Survey, LeaseError> {
        Ok(Survey {
            instances: vec!["me".into()],
            owners: self
                .revisions
                .lock()
                .keys()
                .map(|&s| (s, "me".into()))
                .collect(),
        })
    }
    async fn acquire(&self, shard: ShardId) -> Result<u64, LeaseError> {
        let mut revisions = self.revisions.lock();
        if revisions.contains_key(&shard) {
            return Err(LeaseError::Taken);
        }
        revisions.insert(shard, 1);
        Ok(1)
    }
    async fn renew(&self, shard: ShardId, revision: u64) -> Result<u64, LeaseError> {
        let renewal = self
            .renewals
            .lock()
            .get(&shard)
            .copied()
            .unwrap_or(Renewal::Ok);
        let latency = *self.latency.lock();
        tokio::time::sleep(latency).await;
        match renewal {
            Renewal::Ok => {
                self.revisions.lock().insert(shard, revision + 1);
                Ok(revision + 1)
            }
            Renewal::Hang => std::future::pending().await,
            Renewal::SlowOnce(late) => {
                self.set(shard, Renewal::Ok);
                tokio::time::sleep(late).await;
                self.revisions.lock().insert(shard, revision + 1);
                Ok(revision + 1)
            }
            Renewal::Taken => Err(LeaseError::Taken),
        }
    }
    async fn release(&self, shard: ShardId, _revision: u64) {
        self.revisions.lock().remove(&shard);
    }
}

/// When each shard was aborted (or stopped), by shard.
type Ends = Arc<Mutex<BTreeMap<ShardId, Instant>>>;

fn start_recording(ends: &Ends, starts: &Arc<AtomicUsize>) -> StartShard {
    let (ends, starts) = (ends.clone(), starts.clone());
    Arc::new(
        move |shard, stop: CancellationToken, abort: CancellationToken| {
            let ends = ends.clone();
            starts.fetch_add(1, Ordering::Relaxed);
            Box::pin(async move {
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = abort.cancelled() => {}
                }
                ends.lock().entry(shard).or_insert_with(Instant::now);
                Ok(ShardExit::Stopped)
            })
        },
    )
}

/// Runs a coordinator over `shards` shards until every one is held;
/// returns its stop token and the recorded ends.
async fn running(fake: &Fake, shards: u32) -> (CancellationToken, Ends, Arc<AtomicUsize>) {
    let (ends, starts) = (Ends::default(), Arc::new(AtomicUsize::new(0)));
    let coordinator = Coordinator {
        leases: fake.clone(),
        shards,
        ttl: TTL,
        start: start_recording(&ends, &starts),
        target: Arc::new(AtomicUsize::new(0)),
    };
    let stop = CancellationToken::new();
    tokio::spawn(coordinator.run(stop.clone()));
    while starts.load(Ordering::Relaxed) < shards as usize {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (stop, ends, starts)
}

#[tokio::test(start_paused = true)]
async fn a_lease_whose_renewals_hang_stops_its_shard_before_it_can_lapse() {
    let fake = Fake::default();
    let (stop, ends, _) = running(&fake, 2).await;
    tokio::time::sleep(TTL * 2).await;
    assert!(
        ends.lock().is_empty(),
        "renewed shards stopped: {:?}",
        ends.lock()
    );
    // The last renewal that went through was sent before `hung`.
    let hung = Instant::now();
    fake.set(0, Renewal::Hang);
    tokio::time::sleep(TTL * 5).await;
    let ended = ends.lock().clone();
    let at = ended
        .get(&0)
        .expect("the shard whose renewals hang was stopped");
    assert!(
        *at <= hung + TTL * 3 / 4,
        "stopped {:?} after its renewals began to hang; the lease may lapse after {:?}",
        *at - hung,
        TTL
    );
    // Its neighbour's renewals did not wait for the hung one.
    assert!(!ended.contains_key(&1), "the renewed shard was stopped too");
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_lease_taken_over_stops_its_shard_at_once_and_it_is_taken_back_once_free() {
    let fake = Fake::default();
    let (stop, ends, starts) = running(&fake, 2).await;
    let taken = Instant::now();
    fake.set(1, Renewal::Taken);
    tokio::time::sleep(TTL / 3).await;
    let at = *ends.lock().get(&1).expect("the taken shard was stopped");
    // Renewals go every sixth of the TTL.
    assert!(
        at <= taken + TTL / 6 + Duration::from_millis(1),
        "{:?}",
        at - taken
    );
    assert!(!ends.lock().contains_key(&0));
    // Given back and free again (this fake has no other instance), it is
    // taken back at the next heartbeat: no cooling after a lost lease.
    fake.set(1, Renewal::Ok);
    tokio::time::sleep(TTL).await;
    assert_eq!(starts.load(Ordering::Relaxed), 3);
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn one_renewal_answered_late_or_not_at_all_costs_no_shard() {
    let fake = Fake::default();
    *fake.latency.lock() = TTL * 3 / 20;
    let (stop, ends, starts) = running(&fake, 2).await;
    // Later than a call may take: this renewal counts as failed, the
    // next one goes through in time.
    fake.set(0, Renewal::SlowOnce(TTL * 2 / 5));
    fake.set(1, Renewal::SlowOnce(TTL));
    tokio::time::sleep(TTL * 5).await;
    assert!(
        ends.lock().is_empty(),
        "a shard was stopped: {:?}",
        ends.lock()
    );
    assert_eq!(starts.load(Ordering::Relaxed), 2);
    stop.cancel();
}
