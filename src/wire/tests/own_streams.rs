//! allot's own messages read back: EVENTS batches, shard snapshots,
//! commands, forwarded and routed orders, batches, decisions. Each decoder
//! caps nesting below what could exhaust the stack, above what its valid
//! messages need (measured on a shard that has seen one of everything),
//! and is fuzzed: arbitrary bytes and mutated valid ones never panic and
//! are refused by name.

use proptest::prelude::*;

use super::*;
use crate::config::Config;
use crate::domain::{Command, Event, ShardState};
use crate::wire::fuzz::{busy_shard, fuzzed, key, nested, with_unknown_field};
use crate::wire::log::{decode_batch, encode_batch, LogBatch, LogError, MAX_LOG_DEPTH};
use crate::wire::msgpack::depth_of;
use crate::wire::snapshot::{decode_snapshot, encode_snapshot, MAX_SNAPSHOT_DEPTH};

/// Every batch of the busy shard's log, as stored.
fn batches() -> Vec<Vec<u8>> {
    let h = busy_shard();
    (0..)
        .zip(h.batches())
        .map(|(seq, events)| encode_batch(0, seq, events))
        .collect()
}

fn snapshot() -> Vec<u8> {
    encode_snapshot(busy_shard().shard.state())
}

#[test]
fn the_busy_shard_has_one_of_everything() {
    let h = busy_shard();
    let kinds: std::collections::BTreeSet<String> = h
        .events()
        .map(|e| serde_json::to_value(e).unwrap()["type"].to_string())
        .collect();
    for kind in [
        "command_applied",
        "stock_set",
        "stock_restocked",
        "stock_adjusted",
        "order_queued",
        "order_reserved",
        "order_confirmed",
        "order_retrying",
        "order_released",
        "order_rejected",
        "order_rerouted",
        "order_backordered",
        "order_cancel_requested",
        "order_forwarded",
        "ids_claimed",
    ] {
        assert!(
            kinds.contains(&format!("{kind:?}")),
            "no {kind} in {kinds:?}"
        );
    }
    let state = h.shard.state();
    assert_eq!(state.live_orders().count(), 4, "{state:?}");
}

#[test]
fn valid_messages_sit_well_under_each_cap() {
    let log = batches().iter().map(|b| depth_of::<LogBatch>(b)).max();
    let snapshot = depth_of::<ShardState>(&snapshot());
    let keyed = Command::Keyed {
        id: crate::domain::OrderId::new("k").unwrap(),
        command: Box::new(Command::Batch { commands: vec![] }),
    };
    eprintln!("deepest valid: EVENTS batch {log:?}, snapshot {snapshot}");
    assert!(log.unwrap() + 2 <= MAX_LOG_DEPTH, "{log:?}");
    assert!(snapshot + 8 <= MAX_SNAPSHOT_DEPTH, "{snapshot}");
    assert!(depth_of::<Command>(&rmp_serde::to_vec_named(&keyed).unwrap()) <= 4);
}

#[test]
fn a_snapshot_round_trips_and_deep_ones_are_refused_by_name() {
    let state = busy_shard().shard.state().clone();
    assert_eq!(decode_snapshot(&encode_snapshot(&state)), Ok(state));
    // Past the cap inside a real snapshot, and a million levels on their
    // own: refused, the stack untouched.
    let fits = with_unknown_field(&snapshot(), &nested(MAX_SNAPSHOT_DEPTH - 1));
    assert!(decode_snapshot(&fits).is_ok());
    for levels in [MAX_SNAPSHOT_DEPTH, 1_000_000] {
        let deep = with_unknown_field(&snapshot(), &nested(levels));
        let why = decode_snapshot(&deep).unwrap_err();
        assert_eq!(
            why,
            format!("nested more than {MAX_SNAPSHOT_DEPTH} levels deep")
        );
    }
}

#[test]
fn an_events_batch_nested_past_the_cap_names_its_sequence_and_depth() {
    // A valid batch with an unknown field nested just past the cap, and a
    // million levels deep.
    let batch = encode_batch(0, 0, &[]);
    for levels in [MAX_LOG_DEPTH, 1_000_000] {
        let e = decode_batch(41, &with_unknown_field(&batch, &nested(levels))).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("EVENTS sequence 41: nested more than {MAX_LOG_DEPTH} levels deep")
        );
    }
    assert!(decode_batch(41, &with_unknown_field(&batch, &nested(MAX_LOG_DEPTH - 1))).is_ok());
}

fn intake(kind: &str, payload: &[u8]) -> Vec<Intake> {
    let config = Config::default();
    let router = config.router();
    let limits = Limits::default();
    IntakeDecoder {
        router: &router,
        limits: &limits,
    }
    .decode_all("orders.0.ams.REJ", Some(kind), payload, 9)
}

/// The busy shard's orders and commands as the intake carries them.
fn intake_messages() -> Vec<(&'static str, Vec<u8>)> {
    let h = busy_shard();
    let orders: Vec<crate::domain::Order> = h
        .events()
        .filter_map(|e| match e {
            Event::OrderQueued { order } => Some(order.clone()),
            _ => None,
        })
        .collect();
    let mut out: Vec<(&str, Vec<u8>)> = orders
        .iter()
        .map(|o| (KIND_FORWARD, encode_forward_bytes(o)))
        .collect();
    out.push((KIND_ROUTED, encode_routed(&orders).body));
    let messages: Vec<OrderMessage> = orders.iter().map(message).collect();
    out.push((KIND_BATCH, encode_orders(&messages)));
    let command = Command::Keyed {
        id: crate::domain::OrderId::new("k-2").unwrap(),
        command: Box::new(Command::Batch {
            commands: vec![Command::AdjustStock {
                partition: key("ams", "REJ"),
                delta: -2,
            }],
        }),
    };
    out.push((KIND_COMMAND, encode_command(&command).body));
    out
}

fn message(o: &crate::domain::Order) -> OrderMessage {
    OrderMessage {
        v: 1,
        id: o.id.to_string(),
        sku: o.partition.sku.to_string(),
        quantity: o.quantity.get().into(),
        warehouse: Some(o.partition.warehouse.to_string()),
        region: None,
        priority: Some(o.priority.0),
    }
}

#[test]
fn valid_intake_messages_of_allot_decode() {
    for (kind, bytes) in intake_messages() {
        for item in intake(kind, &bytes) {
            assert!(!matches!(item, Intake::Invalid { .. }), "{kind}: {item:?}");
        }
    }
}

/// A refusal a user can act on: at least one problem, each naming a field
/// and saying why.
fn refused_by_name(items: &[Intake]) -> bool {
    items.iter().all(|item| match item {
        Intake::Invalid { errors, .. } => {
            !errors.is_empty()
                && errors
                    .iter()
                    .all(|e| !e.field.is_empty() && !e.why.trim().is_empty())
        }
        _ => true,
    })
}

fn decision_messages() -> Vec<Vec<u8>> {
    let p = key("ams", "REJ");
    busy_shard()
        .events()
        .filter_map(|e| DecisionMessage::from_event(e, &p))
        .map(|d| d.encode())
        .collect()
}

proptest! {
    #[test]
    fn events_batches_never_panic_and_are_refused_by_sequence(bytes in fuzzed(batches())) {
        if let Err(e) = decode_batch(77, &bytes) {
            let LogError::Unreadable { seq, why } = &e else { panic!("{e}") };
            prop_assert_eq!(*seq, 77);
            prop_assert!(!why.trim().is_empty() && e.to_string().starts_with("EVENTS sequence 77: "), "{}", e);
        }
    }

    #[test]
    fn snapshots_never_panic_and_are_refused_with_a_reason(bytes in fuzzed(vec![snapshot()])) {
        if let Err(why) = decode_snapshot(&bytes) {
            prop_assert!(!why.trim().is_empty());
        }
    }

    #[test]
    fn intake_messages_of_allot_never_panic_and_are_refused_by_field(
        (kind, bytes) in prop::sample::select(intake_messages()).prop_flat_map(|(kind, valid)| {
            (Just(kind), fuzzed(vec![valid]))
        })
    ) {
        let items = intake(kind, &bytes);
        prop_assert!(!items.is_empty());
        prop_assert!(refused_by_name(&items), "{}: {:?}", kind, items);
    }

    #[test]
    fn decisions_never_panic_and_are_refused_by_field(bytes in fuzzed(decision_messages())) {
        if let Err(e) = DecisionMessage::decode(&bytes) {
            prop_assert!(!e.problems().is_empty(), "{}", e);
            prop_assert!(e.problems().iter().all(|p| !p.why.trim().is_empty()), "{}", e);
        }
    }
}

/// Cart mail: several cart items in one message, each read back on its
/// own; a bad item is rejected by its place and the rest still read;
/// truncated or lying bytes are refused, never a panic.
#[test]
fn cart_mail_reads_back_item_by_item() {
    use crate::domain::LineId;
    use crate::saga::LineAnswer;
    use crate::wire::cart::{encode_cart_mail, KIND_CART_MAIL};
    let config = Config::default();
    let router = config.router();
    let limits = limits();
    let decoder = IntakeDecoder {
        router: &router,
        limits: &limits,
    };
    let line = |i| LineId::new(&OrderId::new("c-1").unwrap(), i).unwrap();
    let items = vec![
        Intake::Answer {
            line: line(0),
            answer: LineAnswer::Rejected(RejectReason::OutOfStock),
        },
        Intake::Settle {
            line: line(1).as_order_id().clone(),
            commit: true,
            reason: String::new(),
        },
    ];
    let mail = encode_cart_mail(&items).unwrap();
    assert_eq!(mail.kind, Some(KIND_CART_MAIL));
    let read = decoder.decode_all("orders.0.ams.PEN", mail.kind, &mail.body, 5);
    assert_eq!(read, items);
    // Not cart traffic: nothing to encode.
    let other = Intake::Invalid {
        id: OrderId::new("o-1").unwrap(),
        errors: vec![],
        partition: None,
    };
    assert!(encode_cart_mail([&items[0], &other]).is_none());
    // A bad item among good ones: rejected by its place, the rest read.
    let mut body = Vec::new();
    rmp::encode::write_array_len(&mut body, 2).unwrap();
    rmp::encode::write_array_len(&mut body, 2).unwrap();
    rmp::encode::write_str(&mut body, "settle").unwrap();
    rmp::encode::write_bin(&mut body, b"\xc1").unwrap();
    body.extend_from_slice(&mail.body[1..]);
    let read = decoder.decode_all("orders.0.ams.PEN", mail.kind, &body, 6);
    assert!(
        matches!(&read[0], Intake::Invalid { id, .. } if id.as_str() == "invalid:6.0"),
        "{read:?}"
    );
    assert_eq!(read[1], items[0]);
    // Every truncation, and arbitrary bytes, are refused by name.
    for n in 0..mail.body.len() {
        let read = decoder.decode_all("orders.0.ams.PEN", mail.kind, &mail.body[..n], 7);
        assert!(
            read.iter().any(|i| matches!(i, Intake::Invalid { .. })),
            "{n}: {read:?}"
        );
    }
    let lying = [0xdd, 0xff, 0xff, 0xff, 0xff];
    let read = decoder.decode_all("orders.0.ams.PEN", mail.kind, &lying, 8);
    assert!(matches!(&read[..], [Intake::Invalid { .. }]), "{read:?}");
}

/// A batch or routed message of no orders is refused by its payload (one
/// rejection under the message's reserved id), not read as nothing: the
/// fuzzer found `routed` `[]` decoding to no items at all.
#[test]
fn an_empty_batch_is_refused_by_its_payload() {
    for kind in [KIND_BATCH, KIND_ROUTED] {
        let items = intake(kind, &[0x90]);
        assert_eq!(items.len(), 1, "{kind}: {items:?}");
        assert!(
            matches!(&items[0], Intake::Invalid { errors, .. } if errors[0].field == "payload" && errors[0].why == "holds no orders"),
            "{kind}: {items:?}"
        );
    }
}
