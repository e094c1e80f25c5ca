//! A cart as a validated value: its id, its lines (each already routed to
//! a partition), how it is filled and how long it may be held; the id of
//! each line; and the limits a cart is checked against.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::types::{DEFAULT_MAX_QUANTITY, MAX_NAME_LEN};
use super::{FieldError, OrderId, PartitionKey, Quantity, RetryPolicy, ValueError};

/// What the coordinator needs to know, as plain values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartConfig {
    /// Most lines in one cart (the issue's `limits.max_lines`).
    pub max_lines: usize,
    /// Largest quantity of one line.
    pub max_quantity: u32,
    /// Longest hold a cart may ask for.
    pub max_hold: Duration,
    /// Retries of failed enactments (the shard's `[retry]`).
    pub retry: RetryPolicy,
    /// How long a line waits for its partition's answer before its
    /// reserve is sent again (and again, as long as it waits): an answer
    /// lost in a partition's crash is asked for again.
    pub resend_every: Duration,
}

impl Default for CartConfig {
    fn default() -> Self {
        Self {
            max_lines: 50,
            max_quantity: DEFAULT_MAX_QUANTITY,
            max_hold: Duration::from_secs(15 * 60),
            retry: RetryPolicy::default(),
            resend_every: Duration::from_secs(5),
        }
    }
}

/// How much of a cart must be reserved for any of it to be sold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fill {
    /// Every line is sold or none is.
    #[default]
    All,
    /// Each line is decided on its own; what is reserved is sold.
    Partial,
}

/// One line of a cart: `quantity` units of the partition's SKU, from the
/// partition's warehouse (routing happened before the cart got here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartLine {
    pub partition: PartitionKey,
    pub quantity: Quantity,
}

/// A validated cart. Built with [`Cart::new`], which checks it against the
/// configured limits; a cart read back from the log is trusted as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cart {
    id: OrderId,
    lines: Vec<CartLine>,
    #[serde(default)]
    fill: Fill,
    /// In the log as whole milliseconds (`hold_ms`).
    #[serde(
        default,
        rename = "hold_ms",
        with = "millis",
        skip_serializing_if = "Option::is_none"
    )]
    hold: Option<Duration>,
}

/// An optional duration as whole milliseconds.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis().min(u64::MAX as u128) as u64)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

impl Cart {
    /// Checks a cart, reporting every bad field by path: `id` (no room
    /// for the line suffix), `lines` (none, or more than `max_lines`),
    /// `lines[2].quantity` (over `max_quantity`), `hold` (zero or over
    /// `max_hold`).
    pub fn new(
        id: OrderId,
        lines: Vec<CartLine>,
        fill: Fill,
        hold: Option<Duration>,
        config: &CartConfig,
    ) -> Result<Cart, Vec<FieldError>> {
        let mut errors = Vec::new();
        if lines.is_empty() || lines.len() > config.max_lines {
            errors.push(FieldError::new(
                "lines",
                format!(
                    "has {} lines, must have 1..={}",
                    lines.len(),
                    config.max_lines
                ),
            ));
        }
        let room = MAX_NAME_LEN.saturating_sub(LineId::suffix_len(lines.len()));
        if id.as_str().len() > room {
            errors.push(FieldError::new(
                "id",
                format!(
                    "is {} bytes long; a cart of {} lines must have an id of at most {room} bytes \
                     (its line ids are `<id>#<index>`)",
                    id.as_str().len(),
                    lines.len()
                ),
            ));
        }
        for (i, line) in lines.iter().enumerate() {
            if let Err(e) = Quantity::new(line.quantity.get().into(), config.max_quantity) {
                errors.push(FieldError::new(
                    format!("lines[{i}].quantity"),
                    e.to_string(),
                ));
            }
        }
        if let Some(h) = hold {
            if h.is_zero() || h > config.max_hold {
                errors.push(FieldError::new(
                    "hold",
                    format!(
                        "is {} ms, must be 1..={} ms",
                        h.as_millis(),
                        config.max_hold.as_millis()
                    ),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Cart {
            id,
            lines,
            fill,
            hold,
        })
    }

    pub fn id(&self) -> &OrderId {
        &self.id
    }

    pub fn lines(&self) -> &[CartLine] {
        &self.lines
    }

    pub fn fill(&self) -> Fill {
        self.fill
    }

    /// How long the cart waits for payment once its lines are reserved.
    pub fn hold(&self) -> Option<Duration> {
        self.hold
    }

    /// The id of line `index`.
    /// Line `index` is reserved at `partition` (its own rerouted it).
    pub(crate) fn move_line(&mut self, index: usize, partition: PartitionKey) {
        if let Some(line) = self.lines.get_mut(index) {
            line.partition = partition;
        }
    }

    pub fn line_id(&self, index: usize) -> LineId {
        LineId::new(&self.id, index as u32).expect("Cart::new left room for every line id")
    }
}

/// A line's id: `<cart id>#<index>`, the index 0-based decimal (`c-17#0`,
/// `c-17#1`, ...). It is a valid [`OrderId`] (the partition places the line
/// as an order under it, and dedupes Reserve/Release/Commit by it); the
/// cart id is everything before the last `#`, so cart ids may hold `#`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "OrderId", into = "OrderId")]
pub struct LineId(OrderId);

impl LineId {
    /// The id of line `index` of cart `cart`; fails if it would be longer
    /// than an order id may be.
    pub fn new(cart: &OrderId, index: u32) -> Result<LineId, ValueError> {
        OrderId::new(&format!("{cart}#{index}")).map(LineId)
    }

    /// Bytes the longest line id of a cart with `lines` lines adds.
    fn suffix_len(lines: usize) -> usize {
        1 + lines.saturating_sub(1).max(1).ilog10() as usize + 1
    }

    /// The cart and the line's index.
    pub fn parts(&self) -> (OrderId, u32) {
        let (cart, index) = self
            .0
            .as_str()
            .rsplit_once('#')
            .expect("checked on creation");
        (
            OrderId::new(cart).expect("a prefix of a valid id"),
            index.parse().expect("checked on creation"),
        )
    }

    pub fn as_order_id(&self) -> &OrderId {
        &self.0
    }
}

impl TryFrom<OrderId> for LineId {
    type Error = ValueError;
    fn try_from(id: OrderId) -> Result<Self, ValueError> {
        let bad = || ValueError::BadChar {
            what: "line id",
            found: '#',
            at: id.as_str().len(),
            allowed: "<cart id>#<index>",
        };
        let (cart, index) = id.as_str().rsplit_once('#').ok_or_else(bad)?;
        let canonical = !index.is_empty()
            && index.bytes().all(|b| b.is_ascii_digit())
            && (index == "0" || !index.starts_with('0'))
            && index.parse::<u32>().is_ok();
        if cart.is_empty() || !canonical {
            return Err(bad());
        }
        Ok(LineId(id))
    }
}

impl From<LineId> for OrderId {
    fn from(l: LineId) -> OrderId {
        l.0
    }
}

impl fmt::Display for LineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for LineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}
