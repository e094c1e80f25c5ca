//! Tests of the cart coordinator. This file holds the helpers and the
//! tests of the cart value; the paths of the saga are in `paths` (fill,
//! compensation, holds), `enact` (enactment, retries, cancels, duplicates,
//! recovery), and the randomized model (`model`) with the invariants
//! checked over it (`invariants`).

mod enact;
mod invariants;
mod model;
mod paths;

use std::time::Duration;

use super::*;
use crate::domain::{FieldError, PartitionKey, Quantity, RejectReason, Sku, WarehouseId};

fn key(w: &str, s: &str) -> PartitionKey {
    PartitionKey::new(WarehouseId::new(w).unwrap(), Sku::new(s).unwrap())
}

fn wh(w: &str) -> WarehouseId {
    WarehouseId::new(w).unwrap()
}

fn id(s: &str) -> OrderId {
    OrderId::new(s).unwrap()
}

fn line(w: &str, s: &str, qty: u64) -> CartLine {
    CartLine {
        partition: key(w, s),
        quantity: Quantity::new(qty, u32::MAX).unwrap(),
    }
}

/// A cart of lines given as (warehouse, sku).
fn cart(cart_id: &str, lines: &[(&str, &str)], fill: Fill, hold: Option<u64>) -> Cart {
    let lines = lines.iter().map(|(w, s)| line(w, s, 1)).collect();
    Cart::new(
        id(cart_id),
        lines,
        fill,
        hold.map(Duration::from_millis),
        &CartConfig::default(),
    )
    .unwrap()
}

fn lid(cart_id: &str, i: u32) -> LineId {
    LineId::new(&id(cart_id), i).unwrap()
}

/// Drives a coordinator whose appends are durable at once, collecting the
/// effects and the log.
struct Drive {
    carts: Carts,
    log: Vec<CartEvent>,
    now: Timestamp,
}

impl Drive {
    fn new() -> Self {
        Self::with(CartConfig::default())
    }

    fn with(config: CartConfig) -> Self {
        Self {
            carts: Carts::new(config),
            log: Vec::new(),
            now: Timestamp(1_000),
        }
    }

    /// Every effect until nothing is left, appending as asked.
    fn pump(&mut self) -> Vec<Output> {
        let mut effects = Vec::new();
        while let Some(out) = self.carts.poll_output() {
            match out {
                Output::Append(events) => {
                    self.log.extend(events);
                    self.carts.handle_appended(self.now);
                }
                effect => effects.push(effect),
            }
        }
        effects
    }

    fn open(&mut self, cart: Cart) -> Vec<Output> {
        assert_eq!(
            self.carts.handle_cart(cart, None, self.now),
            CartReply::Accepted
        );
        self.pump()
    }

    fn answer(&mut self, cart_id: &str, i: u32, answer: LineAnswer) -> Vec<Output> {
        self.carts.handle_line(&lid(cart_id, i), answer, self.now);
        self.pump()
    }

    fn reserve(&mut self, cart_id: &str, i: u32) -> Vec<Output> {
        self.answer(cart_id, i, LineAnswer::Reserved)
    }

    fn enacted(&mut self, cart_id: &str, w: &str, attempt: u32, r: EnactResult) -> Vec<Output> {
        self.carts
            .handle_enacted(&id(cart_id), &wh(w), attempt, r, self.now);
        self.pump()
    }

    fn advance_to(&mut self, at: Timestamp) -> Vec<Output> {
        self.now = at;
        self.carts.handle_timeout(at);
        self.pump()
    }

    fn phase(&self, cart_id: &str) -> Phase {
        self.carts.cart(&id(cart_id)).unwrap().phase.clone()
    }
}

/// The (line, kind) of each Reserve/Release/Commit, in order.
fn line_effects(effects: &[Output]) -> Vec<(String, &'static str)> {
    effects
        .iter()
        .filter_map(|o| match o {
            Output::Reserve(l) => Some((l.line.to_string(), "reserve")),
            Output::Release { line, .. } => Some((line.to_string(), "release")),
            Output::Commit { line, .. } => Some((line.to_string(), "commit")),
            _ => None,
        })
        .collect()
}

fn decisions(effects: &[Output]) -> Vec<&Decision> {
    effects
        .iter()
        .filter_map(|o| match o {
            Output::Decided(d) => Some(d),
            _ => None,
        })
        .collect()
}

fn enacts(effects: &[Output]) -> Vec<(String, Vec<String>, u32)> {
    effects
        .iter()
        .filter_map(|o| match o {
            Output::Enact {
                warehouse,
                lines,
                attempt,
                ..
            } => Some((
                warehouse.to_string(),
                lines.iter().map(|l| l.line.to_string()).collect(),
                *attempt,
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn cart_is_refused_naming_each_bad_field() {
    let config = CartConfig {
        max_lines: 3,
        max_quantity: 10,
        max_hold: Duration::from_secs(60),
        ..CartConfig::default()
    };
    let fields = |r: Result<Cart, Vec<FieldError>>| -> Vec<String> {
        r.unwrap_err().into_iter().map(|e| e.field).collect()
    };
    let none = Cart::new(id("c"), Vec::new(), Fill::All, None, &config);
    assert_eq!(fields(none.clone()), ["lines"]);
    assert_eq!(
        none.unwrap_err()[0].to_string(),
        "lines: has 0 lines, must have 1..=3"
    );
    let four = vec![line("w", "s", 1); 4];
    assert_eq!(
        fields(Cart::new(id("c"), four, Fill::All, None, &config)),
        ["lines"]
    );
    let lines = vec![line("w", "a", 1), line("w", "b", 10), line("w", "c", 11)];
    let bad = Cart::new(
        id("c"),
        lines,
        Fill::Partial,
        Some(Duration::from_secs(61)),
        &config,
    );
    assert_eq!(fields(bad), ["lines[2].quantity", "hold"]);
    let zero_hold = Cart::new(
        id("c"),
        vec![line("w", "a", 1)],
        Fill::All,
        Some(Duration::ZERO),
        &config,
    );
    assert_eq!(fields(zero_hold), ["hold"]);
    // 62 bytes + "#0" fits an order id; 63 does not.
    let ok = Cart::new(
        id(&"x".repeat(62)),
        vec![line("w", "a", 1)],
        Fill::All,
        None,
        &config,
    );
    assert_eq!(ok.unwrap().line_id(0).as_order_id().as_str().len(), 64);
    let long = Cart::new(
        id(&"x".repeat(63)),
        vec![line("w", "a", 1)],
        Fill::All,
        None,
        &config,
    );
    assert_eq!(fields(long), ["id"]);
}

#[test]
fn line_ids_are_cart_hash_index_and_parse_back() {
    let c = cart("ord:7#x", &[("w1", "a"), ("w2", "b")], Fill::All, None);
    let l = c.line_id(1);
    assert_eq!(l.to_string(), "ord:7#x#1");
    assert_eq!(l.parts(), (id("ord:7#x"), 1));
    assert!(LineId::try_from(id("c#01")).is_err());
    assert!(LineId::try_from(id("c#")).is_err());
    assert!(LineId::try_from(id("#3")).is_err());
    assert!(LineId::try_from(id("c")).is_err());
    assert_eq!(LineId::try_from(id("c#10")).unwrap().parts(), (id("c"), 10));
}

#[test]
fn events_round_trip_through_serde() {
    let events = vec![
        CartEvent::Opened {
            cart: cart("c", &[("w1", "a")], Fill::Partial, Some(500)),
            at: Timestamp(7),
        },
        CartEvent::LineRejected {
            line: lid("c", 0),
            reason: RejectReason::OutOfStock,
        },
        CartEvent::Rejected {
            cart: id("c"),
            reason: CartReason::HoldExpired,
        },
        CartEvent::EnactFailed {
            cart: id("c"),
            warehouse: wh("w1"),
            attempt: 2,
            reason: "busy".into(),
            retry_at: Some(Timestamp(9)),
        },
        CartEvent::Delivered,
    ];
    for e in events {
        let value = toml::Value::try_from(&e).unwrap();
        let back: CartEvent = value.try_into().unwrap();
        assert_eq!(back, e);
    }
}
