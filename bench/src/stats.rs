//! Figures every run reports: latency percentiles from an HdrHistogram,
//! throughput split at the sell-out moment, and [`Run`], the one record
//! every system's run produces (so every system is reported the same way).

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::time::Instant;

use crate::gate::Gate;

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

/// One run of one system, max or open loop. Speeds and latencies are
/// `None` when the gate failed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Run {
    /// 1-based repeat this run belongs to.
    pub repeat: usize,
    /// "max" or "open".
    pub mode: &'static str,
    /// The open-loop offered rate (orders/s).
    pub target_rate: Option<f64>,
    pub orders: u64,
    pub throughput: Option<Throughput>,
    /// Intended send time to the first durable answer (allot: reserved or
    /// rejected; a store: its one answer; raw: the consumer has it).
    pub admission: Option<Latency>,
    /// Intended send time to the final durable answer (allot: confirmed or
    /// rejected; the others: the same as admission).
    pub final_decision: Option<Latency>,
    /// CPU seconds over the measured window of the system's own server
    /// process (allot serve; redis-server; none for PostgreSQL and raw).
    pub server_cpu_s: Option<f64>,
    /// nats-server's CPU seconds over the window (allot and raw runs).
    pub nats_cpu_s: Option<f64>,
    pub server_cpu_s_per_1k: Option<f64>,
    pub nats_cpu_s_per_1k: Option<f64>,
    /// allot's peak resident set (VmHWM) in MiB.
    pub allot_peak_rss_mib: Option<f64>,
    pub gate: Gate,
    /// `/proc/loadavg` (1, 5, 15 min) when the run started.
    pub load: String,
}

impl Run {
    /// CPU seconds per 1,000 orders of this run.
    pub fn per_1k(&self, cpu_s: Option<f64>) -> Option<f64> {
        cpu_s.map(|s| s / self.orders.max(1) as f64 * 1000.0)
    }

    /// Sets both CPU figures and their per-1,000 forms.
    pub fn with_cpu(mut self, server: Option<f64>, nats: Option<f64>) -> Run {
        self.server_cpu_s = server;
        self.nats_cpu_s = nats;
        self.server_cpu_s_per_1k = self.per_1k(server);
        self.nats_cpu_s_per_1k = self.per_1k(nats);
        self
    }

    pub fn per_s(&self) -> Option<f64> {
        self.throughput.map(|t| t.per_s)
    }

    /// One line for the console.
    pub fn line(&self) -> String {
        let lat = |l: Option<Latency>| l.map_or("—".into(), |l| format!("{:.2}", l.p99_ms));
        format!(
            "{}{}: {}/s, admission p99 {} ms, final p99 {} ms, {}",
            self.mode,
            self.target_rate
                .map_or(String::new(), |r| format!(" at {r:.0}/s")),
            self.per_s().map_or("—".into(), |v| format!("{v:.0}")),
            lat(self.admission),
            lat(self.final_decision),
            self.gate.summary()
        )
    }
}

/// Min, median and max of one figure over the repeats that measured it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spread {
    pub n: usize,
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Spread {
    /// `None` when no run measured it. An even count's median is the mean
    /// of the middle two.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Spread {
            n,
            min: v[0],
            median,
            max: v[n - 1],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_takes_the_middle_value() {
        let s = Spread::of([3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.min, s.median, s.max), (1.0, 2.0, 3.0));
        assert_eq!(Spread::of([1.0, 4.0]).unwrap().median, 2.5);
        assert!(Spread::of([]).is_none());
    }
}
