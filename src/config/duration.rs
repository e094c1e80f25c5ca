//! Durations in config files: humantime strings such as "250ms", "5s",
//! "10m", "24h" in, the same style out (the largest unit that is exact, so
//! 24h prints as "24h", not humantime's "1day"). A bad value's error says
//! what is accepted.

use std::fmt;
use std::time::Duration;

use humantime_serde::re::humantime;
use serde::de::{self, Deserializer, Visitor};
use serde::Serializer;

/// `d` in the largest unit that divides it exactly: "24h", "90s", "1500ms".
pub fn format(d: Duration) -> String {
    const UNITS: [(&str, u128); 6] = [
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ];
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_owned();
    }
    let (unit, per) = UNITS
        .into_iter()
        .find(|(_, per)| ns.is_multiple_of(*per))
        .unwrap_or(("ns", 1));
    format!("{}{unit}", ns / per)
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration string such as \"250ms\", \"5s\", \"10m\" or \"24h\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        humantime::parse_duration(v).map_err(|e| {
            E::custom(format_args!(
                "invalid duration {v:?} ({e}); write a number and a unit, e.g. \"250ms\", \"5s\", \"10m\", \"24h\""
            ))
        })
    }
}

pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*d))
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_str(DurationVisitor)
}

/// The same for an optional duration; use with `#[serde(default)]` and
/// `skip_serializing_if = "Option::is_none"`.
pub mod option {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_in_the_largest_exact_unit_and_parses_back() {
        for (d, s) in [
            (Duration::ZERO, "0s"),
            (Duration::from_secs(86_400), "24h"),
            (Duration::from_secs(600), "10m"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_micros(7), "7us"),
            (Duration::from_nanos(3), "3ns"),
        ] {
            assert_eq!(format(d), s);
            assert_eq!(humantime::parse_duration(s).unwrap(), d);
        }
    }
}
