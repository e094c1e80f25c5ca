//! What reaches the intake besides good orders, against a real
//! nats-server (each test starts its own, see `tests/common/nats.rs`):
//! bad messages on the order subject are rejected as invalid with their
//! reason, and an order sent twice (same msg id, through ingress and
//! straight, after its decision) is decided once.

mod common;

use std::time::Duration;

use allot::adapters::nats::ORDERS_STREAM;
use allot::domain::{Event, OrderId, RejectReason};
use allot::wire::OrderMessage;
use common::allot::{
    exact_fulfiller, ids, jetstream, one_warehouse, order_id, order_ids, partition, publish_all,
    submit, wait_for_streams, wait_intake_drained, ConfigFile, InProcess, Ledger, Outgoing,
};
use common::nats::NatsServer;

/// A bad message for the intake, and the rejection it must become.
struct Bad {
    payload: bytes::Bytes,
    /// The id the rejection is recorded under; `None`: `invalid:<seq>`.
    id: Option<&'static str>,
    field: &'static str,
    /// Part of the reason's text.
    why: String,
}

impl Bad {
    fn new(payload: &[u8], id: Option<&'static str>, field: &'static str, why: &str) -> Bad {
        Bad {
            payload: bytes::Bytes::copy_from_slice(payload),
            id,
            field,
            why: why.to_owned(),
        }
    }
}

/// Garbage, oversized and invalid messages published straight to
/// `orders.<warehouse>.<sku>` among good orders: each becomes one
/// `OrderRejected { reason: Invalid { errors }, partition }`, under the
/// producer's id when it could be read and is valid, else
/// `invalid:<stream sequence>`, with the partition its subject named; the
/// good orders around them are all decided.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_on_the_order_subject_are_rejected_as_invalid_with_their_reason() {
    let server = NatsServer::start();
    let config = ConfigFile::new(&format!(
        "{}\n[limits]\nmax_payload_bytes = 1024\n",
        one_warehouse(4)
    ));
    let allot = InProcess::serve(&server.url(), &config.config, exact_fulfiller(5));
    let js = jetstream(&server.url()).await;
    wait_for_streams(&js, Duration::from_secs(20)).await;
    let mug = partition("ams", "T5-MUG");
    publish_all(&js, &[Outgoing::set_stock(&config.config, &mug, 150)]).await;

    let order = |id: &str, sku: &str, quantity: u64, v: u32| OrderMessage {
        v,
        id: id.to_owned(),
        sku: sku.to_owned(),
        quantity,
        warehouse: Some("ams".into()),
        region: None,
        priority: None,
    };
    let oversized = rmp_serde::to_vec_named(&serde_json::json!({
        "v": 1, "id": "t5-big", "sku": "T5-MUG", "quantity": 1, "warehouse": "ams",
        "note": "x".repeat(2_000),
    }))
    .expect("encode");
    let oversized_len = oversized.len();
    let bad = [
        Bad::new(
            b"\xc1 this is not msgpack",
            None,
            "payload",
            "not MessagePack",
        ),
        Bad::new(
            &oversized,
            None,
            "payload",
            &format!("{oversized_len} bytes, more than the 1024 allowed"),
        ),
        Bad::new(b"", None, "payload", "truncated"),
        Bad::new(
            &order("t5-q0", "T5-MUG", 0, 1).encode(),
            Some("t5-q0"),
            "quantity",
            "0 is out of range, must be 1..=1000",
        ),
        Bad::new(
            &order("t5-badsku", "BAD SKU!", 1, 1).encode(),
            Some("t5-badsku"),
            "sku",
            "has ' ' at byte 3",
        ),
        Bad::new(
            &order("t5-elsewhere", "T5-OTHER", 1, 1).encode(),
            Some("t5-elsewhere"),
            "sku",
            "the order names sku T5-OTHER but was published for T5-MUG",
        ),
        Bad::new(
            &order("t5-v3", "T5-MUG", 1, 3).encode(),
            Some("t5-v3"),
            "v",
            "version 3 is not supported; this allot reads 1 (an order) and 2 (a cart)",
        ),
        // Version 2 is a cart: an order's fields are not one.
        Bad::new(
            &order("t5-v2", "T5-MUG", 1, 2).encode(),
            Some("t5-v2"),
            "lines",
            "missing",
        ),
        Bad::new(
            &order("t5 spaced", "T5-MUG", 1, 1).encode(),
            None,
            "id",
            "has ' ' at byte 2",
        ),
        // String lengths: ids and SKUs are at most 64 bytes.
        Bad::new(
            &order(&"i".repeat(65), "T5-MUG", 1, 1).encode(),
            None,
            "id",
            "65 bytes long",
        ),
        Bad::new(
            &order("t5-longsku", &"S".repeat(65), 1, 1).encode(),
            Some("t5-longsku"),
            "sku",
            "65 bytes long",
        ),
    ];
    let names = ids("t5", 200);
    let mut outgoing = Vec::new();
    let mut bad_at = Vec::new();
    for (i, name) in names.iter().enumerate() {
        outgoing.push(Outgoing::order(name, &mug, 1));
        if i % 18 == 12 {
            bad_at.push(outgoing.len());
            outgoing.push(Outgoing::raw(&mug, bad[bad_at.len() - 1].payload.clone()));
        }
    }
    assert_eq!(bad_at.len(), bad.len());
    let seqs = publish_all(&js, &outgoing).await;

    let good = order_ids(&names);
    let mut expected: Vec<OrderId> = good.clone();
    for (b, at) in bad.iter().zip(&bad_at) {
        let id =
            b.id.map_or_else(|| format!("invalid:{}", seqs[*at]), str::to_owned);
        expected.push(order_id(&id));
    }
    let mut ledger = Ledger::default();
    let undecided = ledger
        .wait_decided(&js, &expected, Duration::from_secs(30))
        .await;
    assert_eq!(undecided, 0);
    assert!(
        wait_intake_drained(&js, 4, Duration::from_secs(10)).await,
        "intake left unacked"
    );
    allot.stop().await.expect("allot stops cleanly");
    ledger.catch_up(&js).await.expect("read EVENTS");

    let invalid: Vec<(&OrderId, &str, &str)> = ledger
        .events
        .iter()
        .filter_map(|e| match e {
            Event::OrderRejected {
                id,
                reason: RejectReason::Invalid { errors },
                partition,
            } => {
                assert_eq!(partition.as_ref(), Some(&mug), "{id}: {errors:?}");
                Some((id, errors[0].field.as_str(), errors[0].why.as_str()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(invalid.len(), bad.len(), "{invalid:#?}");
    for (b, id) in bad.iter().zip(&expected[good.len()..]) {
        let found: Vec<_> = invalid.iter().filter(|(i, ..)| *i == id).collect();
        assert_eq!(found.len(), 1, "{id}: {invalid:#?}");
        let (_, field, why) = found[0];
        assert_eq!(*field, b.field, "{id}: {why}");
        assert!(why.contains(&b.why), "{id}: {why:?} lacks {:?}", b.why);
    }
    let f = ledger.findings(&expected);
    assert!(f.clean(), "{f:?}");
    assert_eq!(f.confirmed, 150, "{f:?}");
    assert_eq!(f.rejected.get("out_of_stock"), Some(&50), "{f:?}");
    assert_eq!(
        f.rejected.get("invalid"),
        Some(&(bad.len() as u64)),
        "{f:?}"
    );
}

/// Duplicates: the same `Nats-Msg-Id` twice (the stream drops one); the
/// same order through ingress and straight to the subject under another
/// msg id, in either order (the shard dedupes a live order); and again after
/// it was decided (the shard dedupes a decided one). One decision each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_sent_twice_is_decided_once() {
    let server = NatsServer::start();
    let config = ConfigFile::new(&one_warehouse(4));
    let allot = InProcess::serve(&server.url(), &config.config, exact_fulfiller(6));
    let client = async_nats::connect(server.url()).await.expect("connect");
    let js = async_nats::jetstream::new(client.clone());
    wait_for_streams(&js, Duration::from_secs(20)).await;
    let mug = partition("ams", "T6-MUG");
    publish_all(&js, &[Outgoing::set_stock(&config.config, &mug, 30)]).await;

    // Same Nats-Msg-Id twice: the stream keeps one.
    let same_msg_id = ids("t6-a", 40);
    let twice: Vec<Outgoing> = same_msg_id
        .iter()
        .flat_map(|id| [Outgoing::order(id, &mug, 1), Outgoing::order(id, &mug, 1)])
        .collect();
    let seqs = publish_all(&js, &twice).await;
    for pair in seqs.chunks(2) {
        assert_eq!(pair[0], pair[1], "the second copy was stored");
    }
    // Once through ingress (msg id = order id) and once straight to the
    // subject under another msg id, in both orders: the stream keeps both.
    let two_ways = ids("t6-b", 40);
    for (i, id) in two_ways.iter().enumerate() {
        let mut straight = Outgoing::order(id, &mug, 1);
        straight.msg_id = Some(format!("{id}-straight"));
        if i % 2 == 1 {
            publish_all(&js, std::slice::from_ref(&straight)).await;
        }
        let reply = submit(&client, id, "T6-MUG", 1).await;
        assert!(reply.accepted, "{reply:?}");
        if i % 2 == 0 {
            publish_all(&js, std::slice::from_ref(&straight)).await;
        }
    }
    let mut all = same_msg_id.clone();
    all.extend(two_ways.iter().cloned());
    let all = order_ids(&all);
    let mut ledger = Ledger::default();
    let undecided = ledger
        .wait_decided(&js, &all, Duration::from_secs(30))
        .await;
    assert_eq!(undecided, 0);
    assert!(
        wait_intake_drained(&js, 4, Duration::from_secs(10)).await,
        "intake left unacked"
    );
    // And once more, straight, long after each was decided.
    let late: Vec<Outgoing> = two_ways
        .iter()
        .map(|id| {
            let mut again = Outgoing::order(id, &mug, 1);
            again.msg_id = Some(format!("{id}-late"));
            again
        })
        .collect();
    publish_all(&js, &late).await;
    assert!(
        wait_intake_drained(&js, 4, Duration::from_secs(10)).await,
        "the late copies were not taken"
    );
    let mut orders = js.get_stream(ORDERS_STREAM).await.expect("ORDERS");
    let stored = orders.info().await.expect("info").state.messages;
    assert_eq!(
        stored,
        1 + 40 + 2 * 40 + 40,
        "stock, A once, B twice, B late"
    );
    allot.stop().await.expect("allot stops cleanly");

    ledger.catch_up(&js).await.expect("read EVENTS");
    for id in &all {
        assert_eq!(ledger.finals(id), 1, "{id}");
        let queued = ledger
            .events
            .iter()
            .filter(|e| matches!(e, Event::OrderQueued { order } if order.id == *id))
            .count();
        assert_eq!(queued, 1, "{id}");
    }
    let f = ledger.findings(&all);
    assert!(f.clean(), "{f:?}");
    assert_eq!(f.confirmed, 30, "{f:?}");
    assert_eq!(f.rejected.get("out_of_stock"), Some(&50), "{f:?}");
}
