//! `allot audit` and `allot tail`, the binary, against a real EVENTS: a
//! small sale decided by allot in-process, then audited clean (exit 0);
//! then a well-formed batch planted on the order's shard, chained right
//! after its last (`prev` correct), confirming an order a second time:
//! the audit must exit 1 naming the double decision. `allot tail --id`
//! shows that order's decisions and nothing about others.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use allot::domain::{Event, Order, Priority, Quantity};
use allot::wire::log::{decode_batch, encode_batch};
use async_nats::jetstream::Context;
use common::allot::{
    exact_fulfiller, ids, jetstream, one_warehouse, order_id, order_ids, partition, publish_all,
    wait_for_streams, ConfigFile, InProcess, Ledger, Outgoing,
};
use common::nats::NatsServer;

/// Runs `allot <args>` against `url`, killing it (by its pid) after
/// `timeout`.
fn allot(url: &str, config: &ConfigFile, args: &[&str], timeout: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_allot"))
        .args(args)
        .args(["--nats-url", url])
        .arg("--config")
        .arg(config.path())
        .env("NO_COLOR", "1")
        .env_remove("ALLOT_ENV")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the allot binary");
    let deadline = std::time::Instant::now() + timeout;
    while child.try_wait().expect("poll allot").is_none() {
        if std::time::Instant::now() >= deadline {
            child.kill().expect("kill allot");
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("allot's output")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The shard whose EVENTS confirmed `id`, and that shard's last batch.
async fn shard_of_confirmation(js: &Context, id: &str) -> (u32, u64) {
    let stream = js.get_stream("EVENTS").await.expect("EVENTS");
    let last = stream
        .get_info()
        .await
        .expect("EVENTS info")
        .state
        .last_sequence;
    let mut shard_last = std::collections::HashMap::new();
    let mut found = None;
    for seq in 1..=last {
        let message = stream
            .get_raw_message(seq)
            .await
            .expect("an EVENTS message");
        let batch = decode_batch(seq, &message.payload).expect("allot's own batch");
        shard_last.insert(batch.shard, seq);
        if batch
            .events
            .iter()
            .any(|e| matches!(e, Event::OrderConfirmed { id: got } if got.as_str() == id))
        {
            found = Some(batch.shard);
        }
    }
    let shard = found.expect("the order was confirmed");
    (shard, shard_last[&shard])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_passes_a_clean_log_and_fails_a_planted_double_confirmation_and_oversold_unit() {
    let server = NatsServer::start();
    let url = server.url();
    let config = ConfigFile::new(&one_warehouse(2));
    let serving = InProcess::serve(&url, &config.config, exact_fulfiller(3));
    let js = jetstream(&url).await;
    wait_for_streams(&js, Duration::from_secs(20)).await;
    let cup = partition("ams", "CUP");
    let names = ids("au", 5);
    let mut messages = vec![Outgoing::set_stock(&config.config, &cup, 3)];
    messages.extend(names.iter().map(|id| Outgoing::order(id, &cup, 1)));
    publish_all(&js, &messages).await;
    let mut ledger = Ledger::default();
    let ids = order_ids(&names);
    assert_eq!(
        ledger
            .wait_decided(&js, &ids, Duration::from_secs(20))
            .await,
        0
    );
    serving.stop().await.expect("allot stops cleanly");
    let f = ledger.findings(&ids);
    assert!(f.clean() && f.confirmed == 3, "{f:?}");
    let audit = |url: String| {
        let config = &config;
        move || allot(&url, config, &["audit"], Duration::from_secs(30))
    };

    let clean = audit(url.clone())();
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean));
    assert!(
        String::from_utf8_lossy(&clean.stdout).contains("PASS"),
        "{}",
        text(&clean)
    );

    // allot tail: the whole log (--since 1), one order's events only.
    let confirmed = ledger
        .events
        .iter()
        .find_map(|e| match e {
            Event::OrderConfirmed { id } => Some(id.as_str().to_owned()),
            _ => None,
        })
        .expect("a confirmed order");
    let tail = allot(
        &url,
        &config,
        &["tail", "--since", "1", "--id", &confirmed, "--max", "3"],
        Duration::from_secs(20),
    );
    let shown = String::from_utf8_lossy(&tail.stdout).into_owned();
    assert_eq!(tail.status.code(), Some(0), "{}", text(&tail));
    assert!(shown.contains("order_confirmed"), "{}", text(&tail));
    assert_eq!(shown.lines().count(), 3, "{}", text(&tail));
    assert!(
        shown.lines().all(|l| l.contains(&confirmed)),
        "{}",
        text(&tail)
    );

    // The planted fault: a second confirmation, chained right.
    let (shard, last) = shard_of_confirmation(&js, &confirmed).await;
    let twice = encode_batch(
        shard,
        last,
        &[Event::OrderConfirmed {
            id: order_id(&confirmed),
        }],
    );
    js.publish(format!("events.{shard}"), twice.into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    let broken = audit(url.clone())();
    let report = String::from_utf8_lossy(&broken.stdout).into_owned();
    assert_eq!(broken.status.code(), Some(1), "{}", text(&broken));
    assert!(report.contains("FAIL"), "{}", text(&broken));
    let row = report
        .lines()
        .find(|l| l.contains("decided twice"))
        .expect("the report has the decided-twice row");
    assert!(row.trim_end().ends_with(" 1"), "{}", text(&broken));
    assert!(
        report.contains(&confirmed),
        "the report names the order: {}",
        text(&broken)
    );
    assert!(
        report.contains("broken chains (must be 0)                         0"),
        "the planted batch is chained right, so only the double decision shows: {}",
        text(&broken)
    );

    // A second plant: a fourth unit of the three sold, to a new order.
    let (shard, last) = shard_of_confirmation(&js, &confirmed).await;
    let extra = order_id("au-extra");
    let oversell = encode_batch(
        shard,
        last,
        &[
            Event::OrderQueued {
                order: Order {
                    line: false,
                    id: extra.clone(),
                    partition: cup.clone(),
                    quantity: Quantity::ONE,
                    region: None,
                    priority: Priority(0),
                    fallbacks: Vec::new(),
                },
            },
            Event::OrderReserved { id: extra.clone() },
            Event::OrderConfirmed { id: extra },
        ],
    );
    js.publish(format!("events.{shard}"), oversell.into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    let oversold = audit(url.clone())();
    let report = String::from_utf8_lossy(&oversold.stdout).into_owned();
    assert_eq!(oversold.status.code(), Some(1), "{}", text(&oversold));
    let row = report
        .lines()
        .find(|l| l.contains("oversold units"))
        .expect("the report has the oversold row");
    assert!(row.trim_end().ends_with(" 1"), "{}", text(&oversold));
}
