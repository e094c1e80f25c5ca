//! Orders on the wire: [`OrderMessage`] (what a producer sends),
//! [`decode_order`] / [`decode_order_json`] (untrusted bytes to a
//! [`ValidatedOrder`]), and [`encode_order`].

use serde::{Deserialize as _, Serialize};

use super::raw::{RawOrder, Scalar};
use super::{Limits, WireError, RESERVED_ID_PREFIX, VERSION};
use crate::config::{RouteError, Router};
use crate::domain::FieldError;
use crate::domain::{
    Order, OrderId, PartitionKey, Priority, Quantity, Region, Sku, ValueError, WarehouseId,
};

/// An order as a producer sends it (envelope version 1): a MessagePack map
/// with these names as keys (`rmp_serde::to_vec_named`), or the same as a
/// JSON object. Optional fields may be left out or sent as nil/null.
/// Unknown fields are ignored, so a producer may add its own.
///
/// | field | type | required | rules |
/// |---|---|---|---|
/// | `v` | integer | yes | `1`, the envelope version |
/// | `id` | string | yes | 1-64 bytes of printable ASCII (`!`..`~`), not starting with `invalid:`; the idempotency key |
/// | `sku` | string | yes | 1-64 of `A-Z a-z 0-9 _ -` |
/// | `quantity` | integer | yes | `1..=limits.max_quantity` (default 1000) |
/// | `warehouse` | string | no | like `sku`; the warehouse that must serve the order |
/// | `region` | string | no | like `sku`; a region of `routing.regions` |
/// | `priority` | integer | no | `0..=255`, higher is released first; default 0 |
///
/// Example: `{"v":1,"id":"o-1","sku":"MUG","quantity":2,"region":"eu"}` is
/// these 39 bytes of MessagePack:
///
/// ```text
/// 85 a1 76 01 a2 69 64 a3 6f 2d 31 a3 73 6b 75 a3 4d 55 47 a8 71 75 61 6e
/// 74 69 74 79 02 a6 72 65 67 69 6f 6e a2 65 75
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderMessage {
    /// Envelope version: [`VERSION`].
    pub v: u32,
    pub id: String,
    pub sku: String,
    pub quantity: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warehouse: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
}

impl OrderMessage {
    /// The message as MessagePack with named fields. Nothing is checked:
    /// tests and tools use this to send invalid orders on purpose.
    pub fn encode(&self) -> Vec<u8> {
        // Strings and integers into a Vec: rmp-serde cannot fail here.
        rmp_serde::to_vec_named(self).expect("an OrderMessage always encodes")
    }
}

impl From<&ValidatedOrder> for OrderMessage {
    fn from(o: &ValidatedOrder) -> Self {
        Self {
            v: VERSION,
            id: o.id.to_string(),
            sku: o.sku.to_string(),
            quantity: o.quantity.get().into(),
            warehouse: o.warehouse.as_ref().map(ToString::to_string),
            region: o.region.as_ref().map(ToString::to_string),
            priority: (o.priority != Priority::default()).then_some(o.priority.0),
        }
    }
}

/// An order message whose every field is valid; not yet routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedOrder {
    pub id: OrderId,
    pub sku: Sku,
    pub quantity: Quantity,
    pub warehouse: Option<WarehouseId>,
    pub region: Option<Region>,
    /// 0 when not sent.
    pub priority: Priority,
}

impl ValidatedOrder {
    /// Routes the order into a domain [`Order`] and its partition's shard.
    pub fn route(self, router: &Router) -> Result<(Order, u32), RouteError> {
        let route = router.route(&self.sku, self.warehouse.as_ref(), self.region.as_ref())?;
        let order = Order {
            id: self.id,
            partition: route.partition,
            quantity: self.quantity,
            region: self.region,
            priority: self.priority,
            fallbacks: route.fallbacks,
            line: false,
        };
        Ok((order, route.shard))
    }
}

/// The order as MessagePack with named fields: what [`decode_order`] reads.
pub fn encode_order(order: &ValidatedOrder) -> Vec<u8> {
    OrderMessage::from(order).encode()
}

/// Decodes and validates a MessagePack order message.
///
/// The size is checked first: a payload over `limits.max_payload_bytes` is
/// refused unread. The rest cannot allocate more than the payload's size
/// either, whatever lengths it claims: rmp-serde reading from a slice
/// checks every string and binary length against the bytes that are left
/// before reading them (so a string kept is a copy of bytes that are in the
/// payload), and counts of array and map items are only used to loop, one
/// item at a time, each of which needs at least one byte; nothing here
/// reserves capacity from a count. Nesting is capped at [`MAX_DEPTH`], so
/// skipping an unknown field cannot exhaust the stack. `tests/wire_alloc.rs`
/// holds all this for headers claiming 4 GiB.
pub fn decode_order(bytes: &[u8], limits: &Limits) -> Result<ValidatedOrder, WireError> {
    decode_order_for(bytes, limits, None)
}

/// [`decode_order`] for an order published on the subject of `published`:
/// a body `sku` or `warehouse` that names another partition is one more
/// bad field, reported with every other.
pub fn decode_order_for(
    bytes: &[u8],
    limits: &Limits,
    published: Option<&PartitionKey>,
) -> Result<ValidatedOrder, WireError> {
    check_size(bytes, limits)?;
    let mut raw = RawOrder::default();
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    // rmp-serde counts the message's own map as a level and fails on
    // reaching 0.
    de.set_max_depth(MAX_DEPTH + 1);
    if let Err(e) = raw.fill(&mut de) {
        let why = if bytes.first() == Some(&b'{') {
            "not MessagePack: this looks like JSON".to_owned()
        } else {
            msgpack_why(&e)
        };
        return Err(malformed(&raw, why));
    }
    // A second value where the message should end: reading a marker at the
    // end of input is the only way rmp-serde can tell us it is the end.
    match serde::de::IgnoredAny::deserialize(&mut de) {
        Err(rmp_serde::decode::Error::InvalidMarkerRead(e))
            if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
        _ => return Err(malformed(&raw, "trailing bytes after the message")),
    }
    validate_for(raw, limits, published)
}

/// Decodes and validates a JSON order message (the HTTP body), with the
/// same rules and limits as [`decode_order`].
pub fn decode_order_json(bytes: &[u8], limits: &Limits) -> Result<ValidatedOrder, WireError> {
    check_size(bytes, limits)?;
    let mut raw = RawOrder::default();
    // No lengths to distrust in JSON; nesting is capped by the raw reader.
    let mut de = serde_json::Deserializer::from_slice(bytes);
    if let Err(e) = raw.fill(&mut de).and_then(|()| de.end()) {
        return Err(malformed(&raw, e.to_string()));
    }
    validate(raw, limits)
}

/// Deepest nesting of maps and arrays in a message (either format),
/// counting the message's own map.
pub const MAX_DEPTH: usize = 32;

fn check_size(bytes: &[u8], limits: &Limits) -> Result<(), WireError> {
    if bytes.len() > limits.max_payload_bytes {
        return Err(WireError::TooLarge {
            size: bytes.len(),
            max: limits.max_payload_bytes,
        });
    }
    Ok(())
}

fn malformed(raw: &RawOrder, why: impl Into<String>) -> WireError {
    WireError::Malformed {
        id: raw.id(),
        field: raw.reading.unwrap_or("payload"),
        why: why.into(),
    }
}

pub(super) fn msgpack_why(e: &rmp_serde::decode::Error) -> String {
    use rmp_serde::decode::Error as E;
    match e {
        E::InvalidMarkerRead(io) | E::InvalidDataRead(io)
            if io.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            "truncated: the payload ends inside a value, or a length claims more bytes than are left"
                .to_owned()
        }
        E::DepthLimitExceeded => format!("nested more than {MAX_DEPTH} levels deep"),
        E::Utf8Error(_) => "a key is not valid UTF-8".to_owned(),
        E::TypeMismatch(marker) => format!("not MessagePack (marker {marker:?})"),
        other => other.to_string(),
    }
}

/// Step 2: raw fields to domain values, every problem collected.
pub(super) fn validate(raw: RawOrder, limits: &Limits) -> Result<ValidatedOrder, WireError> {
    validate_for(raw, limits, None)
}

/// [`validate`], and a `sku` or `warehouse` that differs from the
/// partition the order was `published` for is a bad field too.
fn validate_for(
    mut raw: RawOrder,
    limits: &Limits,
    published: Option<&PartitionKey>,
) -> Result<ValidatedOrder, WireError> {
    let id_sent = raw.id();
    let fail = |problems| WireError::Invalid {
        id: id_sent.clone(),
        problems,
    };
    let v = raw.take("v");
    let another_version = matches!(v, Some(Scalar::UInt(n)) if n != u64::from(VERSION));
    let mut problems: Vec<FieldError> = Vec::new();
    if let Err(p) = super::cart::order_version(v) {
        // Another version's fields may mean something else: it is
        // reported alone. A `v` that is missing or of the wrong type (1.0
        // from a JSON client) hides no other bad field.
        if another_version {
            return Err(fail(vec![p]));
        }
        problems.push(p);
    }
    problems.extend(
        raw.repeated
            .iter()
            .map(|&i| FieldError::new(super::raw::FIELDS[i], "given more than once")),
    );
    let p = &mut problems;
    let id = keep(p, "id", required(raw.take("id")).and_then(order_id));
    let sku = keep(
        p,
        "sku",
        required(raw.take("sku")).and_then(|s| name(s, Sku::new)),
    );
    let max = limits.max_quantity;
    let quantity = keep(
        p,
        "quantity",
        required(raw.take("quantity")).and_then(|s| quantity(s, max)),
    );
    let warehouse = keep(
        p,
        "warehouse",
        optional(raw.take("warehouse"), |s| name(s, WarehouseId::new)),
    );
    let region = keep(
        p,
        "region",
        optional(raw.take("region"), |s| name(s, Region::new)),
    );
    let priority = keep(p, "priority", optional(raw.take("priority"), priority));
    if let Some(published) = published {
        differs(
            p,
            published,
            sku.as_ref(),
            warehouse.as_ref().and_then(Option::as_ref),
        );
    }
    match (id, sku, quantity, warehouse, region, priority) {
        (Some(id), Some(sku), Some(quantity), Some(warehouse), Some(region), Some(priority))
            if problems.is_empty() =>
        {
            Ok(ValidatedOrder {
                id,
                sku,
                quantity,
                warehouse,
                region,
                priority: priority.unwrap_or_default(),
            })
        }
        _ => {
            problems.sort_by_key(|p| super::raw::FIELDS.iter().position(|f| *f == p.field));
            Err(fail(problems))
        }
    }
}

/// Notes a body `sku` or `warehouse` that names another partition than
/// the one the order was `published` for.
fn differs(
    problems: &mut Vec<FieldError>,
    published: &PartitionKey,
    sku: Option<&Sku>,
    warehouse: Option<&WarehouseId>,
) {
    let named = [
        (
            "warehouse",
            warehouse.map(|w| w.as_str()),
            published.warehouse.as_str(),
        ),
        ("sku", sku.map(|s| s.as_str()), published.sku.as_str()),
    ];
    for (field, body, subject) in named {
        if let Some(body) = body.filter(|b| *b != subject) {
            let why = format!("the order names {field} {body} but was published for {subject}");
            problems.push(FieldError::new(field, why));
        }
    }
}

pub(super) fn version(v: Option<Scalar>) -> Result<(), FieldError> {
    let why = match v {
        Some(Scalar::UInt(n)) if n == u64::from(VERSION) => return Ok(()),
        Some(Scalar::UInt(n)) => {
            format!("version {n} is not supported; this allot reads {VERSION}")
        }
        None => format!("missing; this allot reads version {VERSION}"),
        Some(other) => format!("must be an integer, got {}", other.kind()),
    };
    Err(FieldError::new("v", why))
}

/// `r`'s value, or `None` with its error noted under `field`.
fn keep<T>(problems: &mut Vec<FieldError>, field: &'static str, r: Result<T, String>) -> Option<T> {
    r.map_err(|why| problems.push(FieldError::new(field, why)))
        .ok()
}

fn required(s: Option<Scalar>) -> Result<Scalar, String> {
    s.ok_or_else(|| "missing".to_owned())
}

fn optional<T>(
    s: Option<Scalar>,
    check: impl FnOnce(Scalar) -> Result<T, String>,
) -> Result<Option<T>, String> {
    s.map(check).transpose()
}

fn string(s: Scalar) -> Result<String, String> {
    match s {
        Scalar::Str(s) => Ok(s),
        other => Err(format!("must be a string, got {}", other.kind())),
    }
}

fn name<T>(s: Scalar, new: fn(&str) -> Result<T, ValueError>) -> Result<T, String> {
    new(&string(s)?).map_err(|e| why(&e))
}

fn order_id(s: Scalar) -> Result<OrderId, String> {
    let id = name(s, OrderId::new)?;
    if id.as_str().starts_with(RESERVED_ID_PREFIX) {
        return Err(format!(
            "starts with {RESERVED_ID_PREFIX:?}, which is reserved for rejections of unreadable messages"
        ));
    }
    Ok(id)
}

fn quantity(s: Scalar, max: u32) -> Result<Quantity, String> {
    match s {
        Scalar::UInt(n) => Quantity::new(n, max).map_err(|e| why(&e)),
        Scalar::NegInt(n) => Err(format!("{n} is out of range, must be 1..={max}")),
        other => Err(format!("must be an integer, got {}", other.kind())),
    }
}

fn priority(s: Scalar) -> Result<Priority, String> {
    match s {
        Scalar::UInt(n) => u8::try_from(n)
            .map(Priority)
            .map_err(|_| format!("{n} is out of range, must be 0..=255")),
        Scalar::NegInt(n) => Err(format!("{n} is out of range, must be 0..=255")),
        other => Err(format!("must be an integer, got {}", other.kind())),
    }
}

/// A domain error without the field's name, which [`FieldError`] already has.
fn why(e: &ValueError) -> String {
    match e {
        ValueError::Empty { max, .. } => format!("is empty, must be 1..={max} characters"),
        ValueError::TooLong { len, max, .. } => {
            format!("is {len} bytes long, must be at most {max}")
        }
        ValueError::BadChar {
            found, at, allowed, ..
        } => format!("has {found:?} at byte {at} (allowed: {allowed})"),
        ValueError::QuantityRange { got, max } => {
            format!("{got} is out of range, must be 1..={max}")
        }
    }
}
