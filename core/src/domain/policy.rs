//! Policies as plain values: what happens to orders a partition cannot
//! serve, how failed enactments are retried, how long orders wait. Config
//! builds these; the core only reads them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::types::Sku;

/// What a partition does with its queued orders once it is out of stock and
/// nothing in flight can free a unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Exhaustion {
    /// Reject every queued order with `OutOfStock`.
    Reject,
    /// Hold orders until restock (released FIFO), rejecting each one still
    /// held `ttl` after it was backordered.
    Backorder { ttl: Duration },
    /// Send each order to the next warehouse of its routing rule; reject
    /// once no warehouse is left.
    Reroute,
}

/// Retries of failed enactments: `max_retries` more attempts after the
/// first, waiting `base * 2^(attempt-1)` capped at `max_backoff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            base_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// How long to wait before retry number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base_backoff
            .checked_mul(factor)
            .map_or(self.max_backoff, |d| d.min(self.max_backoff))
    }
}

/// What cancelling an already confirmed order does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelConfirmed {
    /// Compensate: the order's units go back to its partition's stock.
    #[default]
    Restock,
    /// Refuse the cancel: a confirmed order stays confirmed.
    Refuse,
}

/// A SKU glob: `*` matches any run of characters (also none), `?` exactly
/// one; everything else matches itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SkuPattern(String);

/// A pattern with a character no SKU can hold, so it could never match.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SKU pattern {pattern:?} has {found:?}; allowed: A-Z a-z 0-9 _ - and the wildcards * ?")]
pub struct PatternError {
    pub pattern: String,
    pub found: char,
}

impl SkuPattern {
    pub fn new(p: &str) -> Result<Self, PatternError> {
        let bad = p
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '*' | '?')));
        match bad {
            Some(found) => Err(PatternError {
                pattern: p.to_owned(),
                found,
            }),
            None if p.is_empty() => Err(PatternError {
                pattern: String::new(),
                found: ' ',
            }),
            None => Ok(Self(p.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn matches(&self, sku: &Sku) -> bool {
        glob(self.0.as_bytes(), sku.as_str().as_bytes())
    }
}

/// Iterative glob with single-star backtracking: linear in practice, never
/// exponential.
fn glob(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pat.len() && (pat[p] == b'?' || pat[p] == s[i]) {
            p += 1;
            i += 1;
        } else if p < pat.len() && pat[p] == b'*' {
            star = Some((p, i));
            p += 1;
        } else if let Some((sp, si)) = star {
            p = sp + 1;
            i = si + 1;
            star = Some((sp, si + 1));
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

impl TryFrom<String> for SkuPattern {
    type Error = PatternError;
    fn try_from(s: String) -> Result<Self, PatternError> {
        Self::new(&s)
    }
}

impl From<SkuPattern> for String {
    fn from(p: SkuPattern) -> String {
        p.0
    }
}

/// The exhaustion policy per SKU pattern: the first pattern that matches
/// wins, else the default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExhaustionRules {
    pub rules: Vec<(SkuPattern, Exhaustion)>,
    pub default: Exhaustion,
}

impl Default for ExhaustionRules {
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            default: Exhaustion::Reject,
        }
    }
}

impl ExhaustionRules {
    pub fn for_sku(&self, sku: &Sku) -> &Exhaustion {
        self.rules
            .iter()
            .find(|(p, _)| p.matches(sku))
            .map_or(&self.default, |(_, e)| e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sku(s: &str) -> Sku {
        Sku::new(s).unwrap()
    }

    #[test]
    fn glob_matches_stars_and_marks() {
        let p = SkuPattern::new("FLASH-*").unwrap();
        assert!(p.matches(&sku("FLASH-1")));
        assert!(p.matches(&sku("FLASH-")));
        assert!(!p.matches(&sku("XFLASH-1")));
        let q = SkuPattern::new("A?C*Z").unwrap();
        assert!(q.matches(&sku("ABCZ")));
        assert!(q.matches(&sku("AbC-long-Z")));
        assert!(!q.matches(&sku("ACZ")));
        assert!(SkuPattern::new("*").unwrap().matches(&sku("anything")));
        assert!(SkuPattern::new("a.b").is_err());
        assert!(SkuPattern::new("").is_err());
    }

    #[test]
    fn first_matching_rule_wins() {
        let rules = ExhaustionRules {
            rules: vec![
                (SkuPattern::new("PRE-*").unwrap(), Exhaustion::Reroute),
                (SkuPattern::new("*").unwrap(), Exhaustion::Reject),
            ],
            default: Exhaustion::Backorder {
                ttl: Duration::from_secs(1),
            },
        };
        assert_eq!(rules.for_sku(&sku("PRE-9")), &Exhaustion::Reroute);
        assert_eq!(rules.for_sku(&sku("X")), &Exhaustion::Reject);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let r = RetryPolicy {
            max_retries: 10,
            base_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
        };
        assert_eq!(r.backoff(1), Duration::from_millis(10));
        assert_eq!(r.backoff(2), Duration::from_millis(20));
        assert_eq!(r.backoff(3), Duration::from_millis(40));
        assert_eq!(r.backoff(4), Duration::from_millis(50));
        assert_eq!(r.backoff(200), Duration::from_millis(50));
    }
}
