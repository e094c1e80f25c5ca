//! A sale under way for the fault tests to break, and its end: `allot
//! serve` flags with slow, never-failing workers, a config with few
//! workers, the first half of a sale published and confirming, and the
//! check that every order was decided and the sale sold out exactly.

use std::time::Duration;

use super::{
    jetstream, one_warehouse, publish_all, wait_for_streams, wait_intake_drained, AllotProcess,
    ConfigFile, Ledger, Sale,
};
use crate::common::nats::NatsServer;

/// `allot serve` flags for the fault tests: workers slow enough that a
/// sale is still running when the fault strikes, never failing (exact
/// counts), and a short ack wait so intake held by a dead or fenced
/// instance comes back in seconds, not 30.
pub const SLOW_EXACT: &[&str] = &[
    "--latency-p50",
    "100ms",
    "--latency-p99",
    "500ms",
    "--failure-rate",
    "0",
    "--ack-wait",
    "3s",
];

/// [`one_warehouse`] (4 shards) with few workers, so a sale of a few
/// hundred units takes seconds and a fault lands with orders queued and in flight.
pub fn few_workers() -> ConfigFile {
    ConfigFile::new(&format!(
        "{}\n[workers]\ndefault_concurrency = 8\n",
        one_warehouse(4)
    ))
}

/// [`SLOW_EXACT`] and `extra` flags.
pub fn slow_exact_and(extra: &[&'static str]) -> Vec<&'static str> {
    SLOW_EXACT.iter().chain(extra).copied().collect()
}

/// The end of a fault test: every order decided, the intake drained,
/// `allot` stopped cleanly (exit 0), and the sale sold out exactly.
pub async fn sold_out_after(
    allot: &mut AllotProcess,
    js: &async_nats::jetstream::Context,
    ledger: &mut Ledger,
    sale: &Sale,
) {
    let undecided = ledger
        .wait_decided(js, &sale.ids, Duration::from_secs(40))
        .await;
    assert_eq!(undecided, 0, "allot's log:\n{}", allot.log());
    assert!(
        wait_intake_drained(js, 4, Duration::from_secs(15)).await,
        "intake left unacked. allot's log:\n{}",
        allot.log()
    );
    let status = allot.terminate(Duration::from_secs(20)).await;
    assert!(status.success(), "{status}; log:\n{}", allot.log());
    ledger.catch_up(js).await.expect("read EVENTS");
    sale.assert_sold_out(ledger);
}

/// Starts an `allot` process on `server`, stocks `sale`, publishes the first
/// half of its orders and waits for the first confirmations: a sale under
/// way, for the fault tests to break. Returns the process, a JetStream
/// context, the ledger following EVENTS, and where the second half starts.
pub async fn first_half_under_way(
    server: &NatsServer,
    config: &ConfigFile,
    sale: &Sale,
    flags: &[&str],
) -> (AllotProcess, async_nats::jetstream::Context, Ledger, usize) {
    let allot = AllotProcess::serve(&server.url(), config, flags);
    let js = jetstream(&server.url()).await;
    wait_for_streams(&js, Duration::from_secs(20)).await;
    publish_all(&js, &sale.stock_commands(&config.config)).await;
    let half = sale.names.len() / 2;
    publish_all(&js, &sale.orders(0..half)).await;
    let mut ledger = Ledger::default();
    let started = ledger
        .wait_until(&js, Duration::from_secs(20), |l| {
            l.findings(&[]).confirmed >= 10
        })
        .await;
    assert!(
        started,
        "no confirmations in 20 s. allot's log:\n{}",
        allot.log()
    );
    (allot, js, ledger, half)
}
