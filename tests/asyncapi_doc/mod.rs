//! Reading `docs/asyncapi.yaml` for `tests/asyncapi.rs`, and one value of
//! every event, reject reason and command the code has (the matches
//! below have no wildcard: a new variant does not compile until it is
//! listed, and then documented).

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU64;

use serde_json::Value;

use allot::domain::{
    Cart, CartConfig, CartEvent, CartLine, CartReason, Claim, Command, Event, FieldError, Fill,
    LineId, Order, OrderId, PartitionKey, Priority, Quantity, Region, RejectReason, Sku, Timestamp,
    WarehouseId,
};

/// The document, as JSON values.
pub struct Doc(Value);

impl Doc {
    pub fn load() -> Doc {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/asyncapi.yaml");
        let text = std::fs::read_to_string(path).expect("read docs/asyncapi.yaml");
        Doc(serde_yaml::from_str(&text).expect("docs/asyncapi.yaml is YAML"))
    }

    /// Every message example: (message, example name, payload, headers).
    pub fn examples(&self) -> Vec<(String, String, Value, Option<Value>)> {
        let messages = self.0["components"]["messages"]
            .as_object()
            .expect("messages");
        let mut out = Vec::new();
        for (message, m) in messages {
            let examples = m["examples"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            assert!(!examples.is_empty(), "message {message} has no example");
            for (i, x) in examples.iter().enumerate() {
                let name = x["name"]
                    .as_str()
                    .map_or_else(|| i.to_string(), str::to_owned);
                let payload = x.get("payload").cloned().expect("an example has a payload");
                out.push((message.clone(), name, payload, x.get("headers").cloned()));
            }
        }
        out
    }

    /// (channel, address) of every channel with an address.
    pub fn addresses(&self) -> Vec<(String, String)> {
        self.0["channels"]
            .as_object()
            .expect("channels")
            .iter()
            .filter_map(|(c, v)| Some((c.clone(), v["address"].as_str()?.to_owned())))
            .collect()
    }

    /// Every `Allot-Kind` a message's headers allow.
    pub fn kinds(&self) -> BTreeSet<String> {
        let mut kinds = BTreeSet::new();
        for m in self.0["components"]["messages"]
            .as_object()
            .unwrap()
            .values()
        {
            let kind = &m["headers"]["properties"]["Allot-Kind"];
            kinds.extend(kind["const"].as_str().map(str::to_owned));
        }
        kinds
    }

    /// The description of channel `name`.
    pub fn channel_description(&self, name: &str) -> String {
        self.0["channels"][name]["description"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn schema(&self, name: &str) -> &Value {
        let s = &self.0["components"]["schemas"][name];
        assert!(s.is_object(), "schema {name} is not documented");
        s
    }

    fn resolve<'a>(&'a self, v: &'a Value) -> &'a Value {
        match v["$ref"].as_str() {
            Some(r) => self.schema(r.trim_start_matches("#/components/schemas/")),
            None => v,
        }
    }

    /// The schema `name` is a `oneOf` tagged by `tag`: every value's tag
    /// is documented, every documented tag is one of `values`, and each
    /// value has every required field and no undocumented one.
    pub fn covers(&self, name: &str, tag: &str, values: &[Value]) {
        let mut documented: BTreeMap<String, &Value> = BTreeMap::new();
        for entry in self.schema(name)["oneOf"].as_array().expect("a oneOf") {
            let entry = self.resolve(entry);
            let t = entry["properties"][tag]["const"]
                .as_str()
                .expect("a tag const");
            documented.insert(t.to_owned(), entry);
        }
        let mut seen = BTreeSet::new();
        for v in values {
            let t = v[tag].as_str().expect("tagged");
            seen.insert(t.to_owned());
            let entry = documented
                .get(t)
                .unwrap_or_else(|| panic!("{name} {t} is not documented"));
            let props = entry["properties"].as_object().expect("properties");
            for key in v.as_object().unwrap().keys() {
                assert!(
                    props.contains_key(key),
                    "{name} {t}: field {key} is not documented"
                );
            }
            for key in entry["required"].as_array().into_iter().flatten() {
                let key = key.as_str().unwrap();
                assert!(
                    v.get(key).is_some(),
                    "{name} {t}: documented {key} is not sent"
                );
            }
        }
        let extra: Vec<&String> = documented.keys().filter(|t| !seen.contains(*t)).collect();
        assert!(
            extra.is_empty(),
            "{name}: documented but not in the code: {extra:?}"
        );
    }

    /// The `enum` of the Decision schema's `field`.
    pub fn decision_enum(&self, field: &str) -> BTreeSet<String> {
        self.schema("Decision")["properties"][field]["enum"]
            .as_array()
            .expect("an enum")
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    }
}

fn id(s: &str) -> OrderId {
    OrderId::new(s).unwrap()
}

fn p(w: &str) -> PartitionKey {
    PartitionKey::new(WarehouseId::new(w).unwrap(), Sku::new("MUG").unwrap())
}

fn order() -> Order {
    Order {
        line: false,
        id: id("o-1"),
        partition: p("ams"),
        quantity: Quantity::ONE,
        region: Some(Region::new("eu").unwrap()),
        priority: Priority(0),
        fallbacks: vec![WarehouseId::new("fra").unwrap()],
    }
}

/// The type of each event, by an exhaustive match.
fn named(e: &Event) -> &'static str {
    match e {
        Event::OrderQueued { .. } => "order_queued",
        Event::OrderReserved { .. } => "order_reserved",
        Event::OrderConfirmed { .. } => "order_confirmed",
        Event::OrderRetrying { .. } => "order_retrying",
        Event::OrderReleased { .. } => "order_released",
        Event::OrderRejected { .. } => "order_rejected",
        Event::OrderBackordered { .. } => "order_backordered",
        Event::OrderRerouted { .. } => "order_rerouted",
        Event::OrderForwarded { .. } => "order_forwarded",
        Event::OrderCancelRequested { .. } => "order_cancel_requested",
        Event::OrderCancelled { .. } => "order_cancelled",
        Event::StockShort { .. } => "stock_short",
        Event::CommandRefused { .. } => "command_refused",
        Event::StockSet { .. } => "stock_set",
        Event::StockRestocked { .. } => "stock_restocked",
        Event::StockAdjusted { .. } => "stock_adjusted",
        Event::CommandApplied { .. } => "command_applied",
        Event::IdsClaimed { .. } => "ids_claimed",
        Event::DuplicateRefused { .. } => "duplicate_refused",
        Event::EpochStarted { .. } => "epoch_started",
        Event::Cart { .. } => "cart",
    }
}

/// One of every event, in an order a shard could log them (o-1 sells).
pub fn every_event() -> Vec<Event> {
    let events = vec![
        Event::CommandApplied { id: id("k-1") },
        Event::StockSet {
            partition: p("ams"),
            on_hand: 3,
        },
        Event::StockRestocked {
            partition: p("ams"),
            units: 2,
        },
        Event::StockAdjusted {
            partition: p("ams"),
            delta: -1,
        },
        Event::IdsClaimed {
            claims: vec![Claim {
                id: id("o-1"),
                by: p("ams"),
            }],
        },
        Event::OrderQueued { order: order() },
        Event::OrderReserved { id: id("o-1") },
        Event::OrderRetrying {
            id: id("o-1"),
            attempt: 1,
            reason: "busy".into(),
        },
        Event::OrderCancelRequested { id: id("o-1") },
        Event::OrderConfirmed { id: id("o-1") },
        Event::OrderCancelled { id: id("o-1") },
        Event::OrderReleased {
            id: id("o-2"),
            reason: "declined".into(),
        },
        Event::OrderRejected {
            id: id("o-3"),
            reason: RejectReason::Invalid {
                errors: vec![FieldError::new("quantity", "0")],
            },
            partition: Some(p("ams")),
        },
        Event::OrderBackordered {
            id: id("o-4"),
            until: Timestamp(1),
        },
        Event::OrderRerouted {
            id: id("o-5"),
            to: WarehouseId::new("fra").unwrap(),
        },
        Event::OrderForwarded { id: id("o-5") },
        Event::StockShort {
            partition: p("ams"),
            units: 1,
        },
        Event::CommandRefused {
            id: id("k-2"),
            reason: "stale".into(),
        },
        Event::DuplicateRefused {
            id: id("o-1"),
            partition: p("fra"),
            holder: p("ams"),
        },
        Event::EpochStarted { epoch: 2 },
        cart_event(held_cart_events().remove(0)),
    ];
    let names: BTreeSet<&str> = events.iter().map(named).collect();
    assert_eq!(names.len(), events.len(), "one of each");
    events
}

/// One of every reject reason, by an exhaustive match.
pub fn every_reason() -> Vec<RejectReason> {
    let all = vec![
        RejectReason::OutOfStock,
        RejectReason::Invalid {
            errors: vec![FieldError::new("sku", "bad")],
        },
        RejectReason::Cancelled,
        RejectReason::RetriesExhausted {
            last: "busy".into(),
        },
        RejectReason::FulfilmentFailed {
            reason: "declined".into(),
        },
        RejectReason::BackorderExpired,
    ];
    for r in &all {
        match r {
            RejectReason::OutOfStock
            | RejectReason::Invalid { .. }
            | RejectReason::Cancelled
            | RejectReason::RetriesExhausted { .. }
            | RejectReason::FulfilmentFailed { .. }
            | RejectReason::BackorderExpired => {}
        }
    }
    all
}

/// One of every command (optional fields set), by an exhaustive match.
pub fn every_command() -> Vec<Command> {
    let set = Command::SetStock {
        partition: p("ams"),
        on_hand: 5,
        expected_version: Some(2),
    };
    let all = vec![
        Command::PlaceOrder(order()),
        Command::CancelOrder {
            id: id("o-1"),
            partition: p("ams"),
        },
        set.clone(),
        Command::Restock {
            partition: p("ams"),
            units: NonZeroU64::MIN,
        },
        Command::AdjustStock {
            partition: p("ams"),
            delta: -1,
        },
        Command::Batch {
            commands: vec![set.clone()],
        },
        Command::Keyed {
            id: id("k-1"),
            command: Box::new(set),
        },
    ];
    for c in &all {
        match c {
            Command::PlaceOrder(_)
            | Command::CancelOrder { .. }
            | Command::SetStock { .. }
            | Command::Restock { .. }
            | Command::AdjustStock { .. }
            | Command::Batch { .. }
            | Command::Keyed { .. } => {}
        }
    }
    all
}

fn cart_event(event: CartEvent) -> Event {
    Event::Cart {
        event: Box::new(event),
    }
}

fn line(cart: &str, i: u32) -> LineId {
    LineId::new(&id(cart), i).unwrap()
}

/// Cart c-1 of two lines, opened, both lines reserved, held for payment.
pub fn held_cart_events() -> Vec<CartEvent> {
    let cart = Cart::new(
        id("c-1"),
        vec![
            CartLine {
                partition: p("ams"),
                quantity: Quantity::ONE,
            },
            CartLine {
                partition: p("fra"),
                quantity: Quantity::ONE,
            },
        ],
        Fill::All,
        Some(std::time::Duration::from_secs(600)),
        &CartConfig::default(),
    )
    .expect("a valid cart");
    vec![
        CartEvent::Opened {
            cart,
            at: Timestamp(1),
        },
        CartEvent::Delivered,
        CartEvent::LineReserved {
            line: line("c-1", 0),
            at: None,
        },
        CartEvent::LineReserved {
            line: line("c-1", 1),
            at: Some(p("fra")),
        },
        CartEvent::Held {
            cart: id("c-1"),
            until: Timestamp(600_001),
        },
    ]
}

/// One of every cart event (optional fields set), by an exhaustive match.
pub fn every_cart_event() -> Vec<CartEvent> {
    let mut all = held_cart_events();
    all.extend([
        CartEvent::Paid { cart: id("c-1") },
        CartEvent::EnactStarted {
            cart: id("c-1"),
            warehouse: WarehouseId::new("ams").unwrap(),
            attempt: 1,
        },
        CartEvent::EnactFailed {
            cart: id("c-1"),
            warehouse: WarehouseId::new("ams").unwrap(),
            attempt: 1,
            reason: "busy".into(),
            retry_at: Some(Timestamp(2)),
        },
        CartEvent::EnactSucceeded {
            cart: id("c-1"),
            warehouse: WarehouseId::new("ams").unwrap(),
            attempt: 2,
        },
        CartEvent::Confirmed { cart: id("c-1") },
        CartEvent::LineRejected {
            line: line("c-2", 0),
            reason: RejectReason::OutOfStock,
        },
        CartEvent::Rejected {
            cart: id("c-2"),
            reason: CartReason::HoldExpired,
        },
        CartEvent::Cancelled { cart: id("c-3") },
    ]);
    for e in &all {
        match e {
            CartEvent::Opened { .. }
            | CartEvent::LineReserved { .. }
            | CartEvent::LineRejected { .. }
            | CartEvent::Held { .. }
            | CartEvent::Paid { .. }
            | CartEvent::EnactStarted { .. }
            | CartEvent::EnactSucceeded { .. }
            | CartEvent::EnactFailed { .. }
            | CartEvent::Confirmed { .. }
            | CartEvent::Rejected { .. }
            | CartEvent::Cancelled { .. }
            | CartEvent::Delivered => {}
        }
    }
    all
}

/// One of every cart reason, by an exhaustive match.
pub fn every_cart_reason() -> Vec<CartReason> {
    let all = vec![
        CartReason::LineRejected {
            line: line("c-2", 0),
            reason: RejectReason::OutOfStock,
        },
        CartReason::NothingReserved,
        CartReason::HoldExpired,
        CartReason::Cancelled,
        CartReason::EnactFailed {
            warehouse: WarehouseId::new("ams").unwrap(),
            reason: RejectReason::FulfilmentFailed {
                reason: "declined".into(),
            },
        },
    ];
    for r in &all {
        match r {
            CartReason::LineRejected { .. }
            | CartReason::NothingReserved
            | CartReason::HoldExpired
            | CartReason::Cancelled
            | CartReason::EnactFailed { .. } => {}
        }
    }
    all
}
