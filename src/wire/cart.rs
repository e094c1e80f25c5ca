//! Carts on the wire: the version-2 envelope a producer sends (one order
//! of several lines, [`decode_cart_json`] / [`decode_cart`]), and allot's
//! own intake messages between a cart's coordinator and the partitions of
//! its lines (`Allot-Kind` `cart`, `line`, `answer`, `settle`,
//! `cart-command`, and `cart-mail` holding several of them; see
//! `intake.rs`).
//!
//! | field | type | required | rules |
//! |---|---|---|---|
//! | `v` | integer | yes | `2` |
//! | `id` | string | yes | like a v1 order's id; the cart's idempotency key; its lines are `<id>#0`, `<id>#1`, ... |
//! | `lines` | array | yes | `1..=limits.max_cart_lines` lines, each `{sku, quantity, warehouse?}` with a v1 order's rules |
//! | `region` | string | no | routes every line without a `warehouse` |
//! | `priority` | integer | no | `0..=255`; accepted for v1 compatibility (lines queue at 0) |
//! | `fill` | string | no | `all` (default): every line or none; `partial`: each line on its own |
//! | `hold` | string or integer | no | `"15m"`, `"90s"` or seconds: hold the reserved lines until `POST /v1/orders/{id}/confirm`, at most `limits.max_hold` |

use std::time::Duration;

use serde_json::Value;

use super::msgpack::read_capped;
use super::raw::Scalar;
use super::{Limits, WireError, MAX_DEPTH, RESERVED_ID_PREFIX};
use crate::config::Router;
use crate::domain::{
    Cart, CartConfig, CartLine, FieldError, Fill, Fingerprint, OrderId, Quantity, Region, Sku,
    WarehouseId,
};

/// A cart's envelope version.
pub const CART_VERSION: u64 = 2;

/// A routed cart for its coordinator's shard: MessagePack of a domain [`Cart`].
pub const KIND_CART: &str = "cart";
/// A cart's line for its partition's shard: MessagePack of a domain order.
pub const KIND_LINE: &str = "line";
/// A partition's answer for a line: MessagePack of an [`AnswerMessage`].
pub const KIND_ANSWER: &str = "answer";
/// A coordinator's commit or release of a line: a [`SettleMessage`].
pub const KIND_SETTLE: &str = "settle";
/// A confirm or cancel of a cart: a [`CartCommandMessage`].
pub const KIND_CART_COMMAND: &str = "cart-command";

mod mail;
mod message;
mod traffic;
pub(super) use mail::decode_cart_mail;
pub use mail::{encode_cart_mail, KIND_CART_MAIL};
pub use message::{encode_cart, CartMessage, LineMessage};
pub(super) use traffic::decode_item;
pub use traffic::{
    encode_cart_item, placeholder_partition, AnswerMessage, CartCommandMessage, CartOp,
    SettleMessage, CART_KINDS,
};

/// One line as sent, every field valid; not yet routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedLine {
    pub sku: Sku,
    pub quantity: Quantity,
    pub warehouse: Option<WarehouseId>,
}

/// A cart whose every field is valid; not yet routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedCart {
    pub id: OrderId,
    pub lines: Vec<ValidatedLine>,
    pub region: Option<Region>,
    pub fill: Fill,
    pub hold: Option<Duration>,
}

impl ValidatedCart {
    /// Routes each line (its warehouse, or the cart's region) into a
    /// domain [`Cart`], and the shard that coordinates it (by a hash of
    /// its id). Every line that cannot be routed is named.
    pub fn route(self, router: &Router, limits: &Limits) -> Result<(Cart, u32), Vec<FieldError>> {
        let mut lines = Vec::with_capacity(self.lines.len());
        let mut errors = Vec::new();
        for (i, line) in self.lines.into_iter().enumerate() {
            match router.route(&line.sku, line.warehouse.as_ref(), self.region.as_ref()) {
                Ok(route) => lines.push(CartLine {
                    partition: route.partition,
                    quantity: line.quantity,
                }),
                Err(e) => errors.push(FieldError::new(format!("lines[{i}]"), e.to_string())),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let shard = coordinator(&self.id, router.shard_count());
        let cart = Cart::new(self.id, lines, self.fill, self.hold, &cart_config(limits))?;
        Ok((cart, shard))
    }
}

/// The shard that coordinates cart `id`: a hash of the id.
pub fn coordinator(id: &OrderId, shards: u32) -> u32 {
    Fingerprint::of(id).owner(shards)
}

/// The limits a cart is checked against, from `[limits]`.
pub fn cart_config(limits: &Limits) -> CartConfig {
    CartConfig {
        max_lines: limits.max_cart_lines,
        max_quantity: limits.max_quantity,
        max_hold: limits.max_hold,
        ..CartConfig::default()
    }
}

/// The envelope version of a JSON or MessagePack body, if it has one: how
/// a reader of v1 orders tells a cart apart.
pub fn envelope_version(bytes: &[u8], json: bool) -> Option<u64> {
    let value = parse(bytes, json).ok()?;
    value.get("v")?.as_u64()
}

/// True when a body says it is a cart (`"v": 2`): JSON when `json`, else
/// MessagePack. Cheap when it is not: a v1 body is not parsed twice.
pub fn is_cart(bytes: &[u8], json: bool) -> bool {
    let may_be = if json {
        mentions_version_2(bytes)
    } else {
        // The key `v` (a 1-character string) with the value 2, in any of
        // MessagePack's integer encodings (0x02, 0xcc 0x02, ...).
        bytes.windows(2).enumerate().any(|(at, w)| {
            w == [0xa1, b'v']
                && rmp::decode::read_int::<u64, _>(&mut &bytes[at + 2..]).ok() == Some(2)
        })
    };
    may_be && envelope_version(bytes, json) == Some(CART_VERSION)
}

/// True if the JSON text has a `"v"` key whose value starts with `2`.
fn mentions_version_2(bytes: &[u8]) -> bool {
    let skip = |mut i: usize| {
        while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        i
    };
    bytes.windows(3).enumerate().any(|(at, w)| {
        if w != b"\"v\"" {
            return false;
        }
        let i = skip(at + 3);
        if bytes.get(i) != Some(&b':') {
            return false;
        }
        let i = skip(i + 1);
        bytes.get(i) == Some(&b'2') && !bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
    })
}

/// An order's `v`: 1; a 2 is a cart, which comes alone, not in a batch.
pub(super) fn order_version(v: Option<Scalar>) -> Result<(), FieldError> {
    let order = u64::from(super::VERSION);
    let why = match v {
        Some(Scalar::UInt(CART_VERSION)) => {
            "version 2 is a cart: send it in a message of its own, not in a batch".to_owned()
        }
        Some(Scalar::UInt(n)) if n != order => format!(
            "version {n} is not supported; this allot reads {order} (an order) and {CART_VERSION} (a cart)"
        ),
        v => return super::order::version(v),
    };
    Err(FieldError::new("v", why))
}

/// Decodes and validates a cart sent as JSON (the HTTP body).
pub fn decode_cart_json(bytes: &[u8], limits: &Limits) -> Result<ValidatedCart, WireError> {
    decode(bytes, limits, true)
}

/// Decodes and validates a cart sent as MessagePack (NATS).
pub fn decode_cart(bytes: &[u8], limits: &Limits) -> Result<ValidatedCart, WireError> {
    decode(bytes, limits, false)
}

fn parse(bytes: &[u8], json: bool) -> Result<Value, String> {
    if json {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    } else {
        read_capped(bytes, MAX_DEPTH).map_err(|e| super::msgpack::why(&e, MAX_DEPTH))
    }
}

fn decode(bytes: &[u8], limits: &Limits, json: bool) -> Result<ValidatedCart, WireError> {
    if bytes.len() > limits.max_payload_bytes {
        return Err(WireError::TooLarge {
            size: bytes.len(),
            max: limits.max_payload_bytes,
        });
    }
    let value = parse(bytes, json).map_err(|why| WireError::Malformed {
        id: None,
        field: "payload",
        why,
    })?;
    let Value::Object(map) = value else {
        return Err(WireError::Malformed {
            id: None,
            field: "payload",
            why: "must be a map of fields".into(),
        });
    };
    let mut p = Vec::new();
    let id_sent = map.get("id").and_then(Value::as_str).map(str::to_owned);
    match map.get("v").map(|v| (v, v.as_u64())) {
        Some((_, Some(CART_VERSION))) => {}
        Some((v, _)) => p.push(FieldError::new(
            "v",
            format!("must be {CART_VERSION} for a cart, got {v}"),
        )),
        None => p.push(FieldError::new("v", "missing; a cart is version 2")),
    }
    let id = field(&mut p, "id", map.get("id"), true, |v| {
        let id = OrderId::new(text(v)?).map_err(|e| e.to_string())?;
        if id.as_str().starts_with(RESERVED_ID_PREFIX) {
            return Err(format!(
                "starts with {RESERVED_ID_PREFIX:?}, which is reserved"
            ));
        }
        Ok(id)
    });
    let region = field(&mut p, "region", map.get("region"), false, |v| {
        Region::new(text(v)?).map_err(|e| e.to_string())
    });
    field(&mut p, "priority", map.get("priority"), false, |v| {
        v.as_u64()
            .filter(|n| *n <= 255)
            .ok_or_else(|| format!("must be an integer 0..=255, got {v}"))
    });
    let fill = field(&mut p, "fill", map.get("fill"), false, |v| match text(v)? {
        "all" => Ok(Fill::All),
        "partial" => Ok(Fill::Partial),
        other => Err(format!("{other:?} is not all or partial")),
    });
    let hold = field(&mut p, "hold", map.get("hold"), false, |v| hold(v, limits));
    let lines = lines(&mut p, map.get("lines"), limits);
    match (id, lines) {
        (Some(id), Some(lines)) if p.is_empty() => Ok(ValidatedCart {
            id,
            lines,
            region,
            fill: fill.unwrap_or_default(),
            hold,
        }),
        _ => Err(WireError::Invalid {
            id: id_sent,
            problems: p,
        }),
    }
}

fn lines(
    p: &mut Vec<FieldError>,
    v: Option<&Value>,
    limits: &Limits,
) -> Option<Vec<ValidatedLine>> {
    let Some(list) = v.filter(|v| !v.is_null()) else {
        p.push(FieldError::new("lines", "missing"));
        return None;
    };
    let Some(list) = list.as_array() else {
        p.push(FieldError::new(
            "lines",
            format!("must be an array, got {list}"),
        ));
        return None;
    };
    if list.is_empty() || list.len() > limits.max_cart_lines {
        p.push(FieldError::new(
            "lines",
            format!(
                "has {} lines, must have 1..={}",
                list.len(),
                limits.max_cart_lines
            ),
        ));
        return None;
    }
    let before = p.len();
    let mut out = Vec::with_capacity(list.len());
    for (i, line) in list.iter().enumerate() {
        let at = |f: &str| format!("lines[{i}].{f}");
        let Some(m) = line.as_object() else {
            p.push(FieldError::new(
                format!("lines[{i}]"),
                "must be a map {sku, quantity, warehouse?}",
            ));
            continue;
        };
        let sku = field(p, &at("sku"), m.get("sku"), true, |v| {
            Sku::new(text(v)?).map_err(|e| e.to_string())
        });
        let quantity = field(p, &at("quantity"), m.get("quantity"), true, |v| {
            let n = v.as_u64().ok_or_else(|| {
                format!("must be an integer 1..={}, got {v}", limits.max_quantity)
            })?;
            Quantity::new(n, limits.max_quantity).map_err(|e| e.to_string())
        });
        let warehouse = field(p, &at("warehouse"), m.get("warehouse"), false, |v| {
            WarehouseId::new(text(v)?).map_err(|e| e.to_string())
        });
        if let (Some(sku), Some(quantity)) = (sku, quantity) {
            out.push(ValidatedLine {
                sku,
                quantity,
                warehouse,
            });
        }
    }
    (p.len() == before).then_some(out)
}

/// A field's value checked by `check`; a missing (or null) required one is
/// a problem, a missing optional one `None`.
fn field<T>(
    p: &mut Vec<FieldError>,
    name: &str,
    v: Option<&Value>,
    required: bool,
    check: impl FnOnce(&Value) -> Result<T, String>,
) -> Option<T> {
    match v.filter(|v| !v.is_null()) {
        None if required => {
            p.push(FieldError::new(name, "missing"));
            None
        }
        None => None,
        Some(v) => check(v)
            .map_err(|why| p.push(FieldError::new(name, why)))
            .ok(),
    }
}

fn text(v: &Value) -> Result<&str, String> {
    v.as_str()
        .ok_or_else(|| format!("must be a string, got {v}"))
}

fn hold(v: &Value, limits: &Limits) -> Result<Duration, String> {
    let d = match v {
        Value::String(s) => humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e}"))?,
        Value::Number(n) => Duration::from_secs(
            n.as_u64()
                .ok_or_else(|| format!("{n} must be whole seconds"))?,
        ),
        other => {
            return Err(format!(
                "must be a duration (\"15m\") or seconds, got {other}"
            ))
        }
    };
    if d.is_zero() || d > limits.max_hold {
        return Err(format!(
            "{} is out of range, must be 1s..={}",
            humantime::format_duration(d),
            humantime::format_duration(limits.max_hold)
        ));
    }
    Ok(d)
}
