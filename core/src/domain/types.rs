//! Validated value types. Each has a fallible constructor; once a value
//! exists it is valid, so code past the edge never checks it again.
//! Serde goes through the same constructors (`try_from`), so a value read off
//! the wire or out of the log is as valid as one built in code.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

/// Why a raw value is not a valid domain value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// The value is empty.
    #[error("{what} is empty, must be 1..={max} characters")]
    Empty { what: &'static str, max: usize },
    /// The value is longer than its limit.
    #[error("{what} is {len} bytes long, must be at most {max}")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    /// The value holds a character it may not.
    #[error("{what} has {found:?} at byte {at}; allowed: {allowed}")]
    BadChar {
        what: &'static str,
        found: char,
        at: usize,
        allowed: &'static str,
    },
    /// A quantity outside its range.
    #[error("quantity {got} is out of range, must be 1..={max}")]
    QuantityRange { got: u64, max: u32 },
}

/// Longest id, SKU, warehouse or region, in bytes.
pub const MAX_NAME_LEN: usize = 64;

fn check_name(
    what: &'static str,
    s: &str,
    ok: fn(char) -> bool,
    allowed: &'static str,
) -> Result<(), ValueError> {
    if s.is_empty() {
        return Err(ValueError::Empty {
            what,
            max: MAX_NAME_LEN,
        });
    }
    if s.len() > MAX_NAME_LEN {
        return Err(ValueError::TooLong {
            what,
            len: s.len(),
            max: MAX_NAME_LEN,
        });
    }
    match s.char_indices().find(|&(_, c)| !ok(c)) {
        Some((at, found)) => Err(ValueError::BadChar {
            what,
            found,
            at,
            allowed,
        }),
        None => Ok(()),
    }
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// A name that is safe as one NATS subject token: 1-64 of `[A-Za-z0-9_-]`.
/// Cloning is a reference-count increment.
macro_rules! token_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates `s`: 1-64 characters of `[A-Za-z0-9_-]`.
            pub fn new(s: &str) -> Result<Self, ValueError> {
                check_name($what, s, is_token_char, "A-Z a-z 0-9 _ -")?;
                Ok(Self(Arc::from(s)))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValueError;
            fn try_from(s: String) -> Result<Self, ValueError> {
                Self::new(&s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0.to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", &*self.0)
            }
        }
    };
}

token_type!(
    /// A stock keeping unit.
    Sku,
    "sku"
);
token_type!(
    /// A warehouse that holds stock and fulfils orders.
    WarehouseId,
    "warehouse"
);
token_type!(
    /// A customer region, used by routing rules to pick warehouses.
    Region,
    "region"
);

/// An order's id: 1-64 bytes of printable ASCII without whitespace. It is the
/// idempotency key everywhere (dedupe, `Nats-Msg-Id`, the fulfiller).
/// Ids up to 24 bytes are stored inline, so cloning one does not allocate.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "CompactString", into = "CompactString")]
pub struct OrderId(CompactString);

impl OrderId {
    /// Validates `s`: 1-64 bytes of printable ASCII (`!` to `~`).
    pub fn new(s: &str) -> Result<Self, ValueError> {
        check_name(
            "order id",
            s,
            |c| c.is_ascii_graphic(),
            "printable ASCII, no whitespace",
        )?;
        Ok(Self(CompactString::new(s)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<CompactString> for OrderId {
    type Error = ValueError;
    fn try_from(s: CompactString) -> Result<Self, ValueError> {
        Self::new(&s)
    }
}

impl From<OrderId> for CompactString {
    fn from(v: OrderId) -> CompactString {
        v.0
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0.as_str())
    }
}

/// Default upper bound of one order's quantity (`limits.max_quantity`).
pub const DEFAULT_MAX_QUANTITY: u32 = 1000;

/// How many units an order asks for: at least 1. The upper bound is a config
/// value, checked by [`Quantity::new`] at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Quantity(NonZeroU32);

impl Quantity {
    /// One unit.
    pub const ONE: Quantity = Quantity(NonZeroU32::MIN);

    /// Validates `n` against `1..=max`.
    pub fn new(n: u64, max: u32) -> Result<Self, ValueError> {
        match u32::try_from(n).ok().and_then(NonZeroU32::new) {
            Some(q) if q.get() <= max => Ok(Self(q)),
            _ => Err(ValueError::QuantityRange { got: n, max }),
        }
    }

    pub fn get(self) -> u32 {
        self.0.get()
    }
}

impl TryFrom<u32> for Quantity {
    type Error = ValueError;
    /// Only checks `>= 1`: the configured maximum is enforced at the edge.
    fn try_from(n: u32) -> Result<Self, ValueError> {
        Quantity::new(n.into(), u32::MAX)
    }
}

impl From<Quantity> for u32 {
    fn from(q: Quantity) -> u32 {
        q.get()
    }
}

/// Release priority within a partition: higher goes first, FIFO among equals.
/// Orders without one have priority 0.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct Priority(pub u8);

/// Milliseconds since the Unix epoch. The core never reads a clock: the
/// runtime passes `now` in, and deadlines that must survive a restart (a
/// backorder's expiry) are stored in events as this type.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub fn plus(self, d: std::time::Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_add(d.as_millis().min(u64::MAX as u128) as u64),
        )
    }
}

/// A (warehouse, SKU) pair: the unit of stock and of ordering.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PartitionKey {
    pub warehouse: WarehouseId,
    pub sku: Sku,
}

impl PartitionKey {
    pub fn new(warehouse: WarehouseId, sku: Sku) -> Self {
        Self { warehouse, sku }
    }
}

impl fmt::Display for PartitionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.warehouse, self.sku)
    }
}

impl fmt::Debug for PartitionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sku_accepts_subject_safe_names_only() {
        assert!(Sku::new("TSHIRT-red_XL9").is_ok());
        let err = Sku::new("a.b").unwrap_err();
        assert_eq!(
            err.to_string(),
            "sku has '.' at byte 1; allowed: A-Z a-z 0-9 _ -"
        );
        assert!(matches!(Sku::new(""), Err(ValueError::Empty { .. })));
        assert!(matches!(
            WarehouseId::new(&"w".repeat(65)),
            Err(ValueError::TooLong { len: 65, .. })
        ));
        assert!(WarehouseId::new(&"w".repeat(64)).is_ok());
        assert!(Sku::new("sku*").is_err());
        assert!(Sku::new("sku>").is_err());
        assert!(Sku::new("é").is_err());
    }

    #[test]
    fn order_id_is_printable_ascii_without_whitespace() {
        assert!(OrderId::new("ord:2026/11/23#17").is_ok());
        assert!(OrderId::new("has space").is_err());
        assert!(OrderId::new("tab\t").is_err());
        assert!(OrderId::new("").is_err());
        assert!(OrderId::new(&"x".repeat(65)).is_err());
        assert!(OrderId::new("ü").is_err());
    }

    #[test]
    fn quantity_checks_range() {
        assert_eq!(Quantity::new(1000, 1000).unwrap().get(), 1000);
        assert_eq!(
            Quantity::new(1001, 1000).unwrap_err().to_string(),
            "quantity 1001 is out of range, must be 1..=1000"
        );
        assert!(Quantity::new(0, 1000).is_err());
        assert!(Quantity::new(u64::from(u32::MAX) + 1, u32::MAX).is_err());
    }

    #[test]
    fn serde_goes_through_validation() {
        let ok: Result<Sku, _> = toml::from_str::<toml::Value>("v = 'A-1'")
            .unwrap()
            .get("v")
            .unwrap()
            .clone()
            .try_into();
        assert!(ok.is_ok());
        let bad: Result<Sku, _> = toml::Value::String("a b".into()).try_into();
        assert!(bad.is_err());
        let zero: Result<Quantity, _> = toml::Value::Integer(0).try_into();
        assert!(zero.is_err());
    }
}
