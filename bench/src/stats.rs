//! Figures every run reports: latency percentiles from an HdrHistogram,
//! throughput split at the sell-out moment, and the correctness gate.

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::time::Instant;

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// A histogram of microseconds, 1 µs to 10 min, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Records `to - from` (0 if `to` is earlier) in microseconds.
pub fn record(h: &mut Histogram<u64>, from: Instant, to: Instant) {
    let us = to.saturating_duration_since(from).as_micros() as u64;
    h.saturating_record(us.max(1));
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Latency {
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        Latency {
            count: h.len(),
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: h.max() as f64 / 1000.0,
        }
    }
}

/// Throughput of one run, whole and on each side of the sell-out moment.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Throughput {
    pub orders: u64,
    pub elapsed_s: f64,
    /// Orders decided per second, first send to last decision.
    pub per_s: f64,
    /// Orders decided per second until the last unit was sold.
    pub contended_per_s: f64,
    /// Orders decided per second after that (nothing left to sell).
    pub sold_out_per_s: f64,
}

impl Throughput {
    /// From the start, each order's decision time, and the sell-out moment.
    pub fn of(start: Instant, decided: &[Instant], sellout: Option<Instant>) -> Throughput {
        let end = decided.iter().copied().max().unwrap_or(start);
        let secs = |a: Instant, b: Instant| b.saturating_duration_since(a).as_secs_f64();
        let rate = |n: usize, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
        let (contended_per_s, sold_out_per_s) = match sellout {
            Some(cut) => {
                let before = decided.iter().filter(|&&t| t <= cut).count();
                (
                    rate(before, secs(start, cut)),
                    rate(decided.len() - before, secs(cut, end)),
                )
            }
            None => (0.0, 0.0),
        };
        Throughput {
            orders: decided.len() as u64,
            elapsed_s: secs(start, end),
            per_s: rate(decided.len(), secs(start, end)),
            contended_per_s,
            sold_out_per_s,
        }
    }
}

/// The correctness gate: a run that fails it reports no speed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Gate {
    pub oversold: u64,
    /// Orders without exactly one final decision recorded.
    pub lost: u64,
    pub duplicates: u64,
    pub sold: u64,
    /// min(stock, demand) summed over partitions: what must be sold.
    pub sellable: u64,
    /// Anything else found wrong, in words.
    pub problems: Vec<String>,
}

impl Gate {
    pub fn passed(&self) -> bool {
        self.oversold == 0 && self.lost == 0 && self.duplicates == 0 && self.problems.is_empty()
    }

    /// One line for the console and the tables.
    pub fn summary(&self) -> String {
        if self.passed() {
            format!("PASS (sold {} of {} sellable)", self.sold, self.sellable)
        } else {
            format!(
                "FAIL: oversold {}, lost {}, duplicates {}, sold {} of {} sellable {}",
                self.oversold,
                self.lost,
                self.duplicates,
                self.sold,
                self.sellable,
                self.problems.join("; ")
            )
        }
    }
}
