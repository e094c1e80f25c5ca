//! Step 1 of decoding an order: a map of fields, each read as whatever type
//! the producer sent ([`Scalar`]), so that step 2 can say which field has
//! the wrong type instead of failing the whole message. Format-agnostic:
//! the same code reads MessagePack and JSON through serde.
//!
//! The fields are filled in as they are read ([`RawOrder::fill`]), so when
//! decoding breaks halfway the id read so far, and the field being read,
//! are still there to name the rejection.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::MAX_DEPTH;

/// One field's value as sent.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Scalar {
    /// MessagePack nil, JSON null: the same as leaving the field out.
    Nil,
    Bool(bool),
    /// A non-negative integer.
    UInt(u64),
    /// A negative integer.
    NegInt(i64),
    Float(f64),
    Str(String),
    /// Anything else (array, map, binary, extension), named for messages.
    Other(&'static str),
}

impl Scalar {
    /// The type's name, for "must be an integer, got a string".
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Scalar::Nil => "nil",
            Scalar::Bool(_) => "a boolean",
            Scalar::UInt(_) | Scalar::NegInt(_) => "an integer",
            Scalar::Float(_) => "a float",
            Scalar::Str(_) => "a string",
            Scalar::Other(kind) => kind,
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_unit<E>(self) -> Result<Scalar, E> {
        Ok(Scalar::Nil)
    }
    fn visit_none<E>(self) -> Result<Scalar, E> {
        Ok(Scalar::Nil)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Scalar, D::Error> {
        Scalar::deserialize(d)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(b))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Scalar, E> {
        Ok(Scalar::UInt(n))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Scalar, E> {
        Ok(u64::try_from(n).map_or(Scalar::NegInt(n), Scalar::UInt))
    }
    fn visit_f64<E>(self, x: f64) -> Result<Scalar, E> {
        Ok(Scalar::Float(x))
    }
    fn visit_str<E>(self, s: &str) -> Result<Scalar, E> {
        // The string is already in the payload, so its length is bounded
        // by the payload's: this copies what is there, never a length
        // read off the wire.
        Ok(Scalar::Str(s.to_owned()))
    }
    fn visit_bytes<E>(self, _: &[u8]) -> Result<Scalar, E> {
        // MessagePack binary, or a string that is not UTF-8.
        Ok(Scalar::Other("bytes (binary or not UTF-8)"))
    }
    // A field's value is at level 2 (the message's map is 1).
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Scalar, A::Error> {
        Skip(2).visit_seq(seq)?;
        Ok(Scalar::Other("an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Scalar, A::Error> {
        Skip(2).visit_map(map)?;
        Ok(Scalar::Other("a map"))
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Scalar, D::Error> {
        // rmp-serde hands MessagePack extension types over this way.
        Skip(2).deserialize(d)?;
        Ok(Scalar::Other("an extension type"))
    }
}

/// The schema's field names, in schema order.
pub(super) const FIELDS: [&str; 7] = [
    "v",
    "id",
    "sku",
    "quantity",
    "warehouse",
    "region",
    "priority",
];

/// The known fields of an order message as sent (`None`: not sent).
#[derive(Debug, Default)]
pub(super) struct RawOrder {
    /// Indexed like [`FIELDS`].
    pub(super) fields: [Option<Scalar>; FIELDS.len()],
    /// Fields given more than once (index into [`FIELDS`]).
    pub(super) repeated: Vec<usize>,
    /// The field whose value is being read; set when decoding broke there.
    pub(super) reading: Option<&'static str>,
}

impl RawOrder {
    /// Reads one map from `d` into `self`. On error, what was read before
    /// stays in `self`.
    pub(super) fn fill<'de, D: Deserializer<'de>>(&mut self, d: D) -> Result<(), D::Error> {
        Fill(self).deserialize(d)
    }

    /// The `id` field, if it was read as a string.
    pub(super) fn id(&self) -> Option<String> {
        match &self.fields[1] {
            Some(Scalar::Str(s)) => Some(s.clone()),
            _ => None,
        }
    }

    /// Takes field `name` out, treating nil as not sent.
    pub(super) fn take(&mut self, name: &str) -> Option<Scalar> {
        let i = FIELDS.iter().position(|f| *f == name)?;
        self.fields[i].take().filter(|s| *s != Scalar::Nil)
    }
}

struct Fill<'r>(&'r mut RawOrder);

impl<'de> DeserializeSeed<'de> for Fill<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Fill<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of order fields")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(
            "an array, not a map: fields go by name (rmp_serde::to_vec_named; a dict in Python)",
        ))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let raw = self.0;
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Known(i) => {
                    raw.reading = Some(FIELDS[i]);
                    let value = map.next_value::<Scalar>()?;
                    raw.reading = None;
                    if raw.fields[i].is_some() {
                        raw.repeated.push(i);
                    } else {
                        raw.fields[i] = Some(value);
                    }
                }
                // Unknown fields are skipped: see "Version policy" in the
                // README.
                Key::Unknown => map.next_value_seed(Skip(2))?,
            }
        }
        Ok(())
    }
}

/// A map key: one of [`FIELDS`] (its index) or another string.
enum Key {
    Known(usize),
    Unknown,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Key, E> {
        Ok(FIELDS
            .iter()
            .position(|f| *f == s)
            .map_or(Key::Unknown, Key::Known))
    }
}

/// Skips a value at nesting level `.0` (the message's map is level 1)
/// without keeping it, and fails on a map or array deeper than
/// [`MAX_DEPTH`], the same in every format. (`IgnoredAny` would not do:
/// serde_json skips it without counting levels.)
struct Skip(usize);

impl Skip {
    fn deeper<E: de::Error>(&self) -> Result<Skip, E> {
        if self.0 > MAX_DEPTH {
            return Err(E::custom(format_args!(
                "nested more than {MAX_DEPTH} levels deep"
            )));
        }
        Ok(Skip(self.0 + 1))
    }
}

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_bytes<E>(self, _: &[u8]) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.deeper()?;
        while seq.next_element_seed(Skip(inner.0))?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.deeper()?;
        while map.next_key_seed(Skip(inner.0))?.is_some() {
            map.next_value_seed(Skip(inner.0))?;
        }
        Ok(())
    }
}
