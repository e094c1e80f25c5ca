//! Pass/fail rules: `--p95-ms` and `--max-error-rate` become goose
//! thresholds (`p95<=Nms`, `error-rate<=N%`) over every request, judged when
//! the run ends (`--no-threshold-abort` by default, so a slow warm-up second
//! does not cut the run short). goose's own `--threshold` rules, when given,
//! replace these. A failed rule makes the run exit non-zero.

use anyhow::bail;
use goose::prelude::*;
use goose::threshold::ThresholdResult;

/// The limits a run must stay within.
#[derive(Debug, Clone, clap::Args)]
pub struct ThresholdArgs {
    /// Fail the run if the 95th percentile response time exceeds this (ms).
    #[arg(long, env = "ALLOT_LOADTEST_P95_MS", default_value_t = 50.0)]
    pub p95_ms: f64,
    /// Fail the run if more than this fraction of requests failed (0..1).
    #[arg(long, env = "ALLOT_LOADTEST_MAX_ERROR_RATE", default_value_t = 0.01)]
    pub max_error_rate: f64,
}

impl ThresholdArgs {
    /// The rules in goose's threshold syntax, after checking the limits.
    pub fn rules(&self) -> anyhow::Result<Vec<String>> {
        if !(self.p95_ms.is_finite() && self.p95_ms > 0.0) {
            bail!(
                "--p95-ms {}: must be a positive number of milliseconds",
                self.p95_ms
            );
        }
        if !(0.0..1.0).contains(&self.max_error_rate) {
            bail!(
                "--max-error-rate {}: must be a fraction in 0..1 (0.01 is 1%)",
                self.max_error_rate
            );
        }
        Ok(vec![
            format!("p95<={}ms", self.p95_ms),
            format!("error-rate<={}%", self.max_error_rate * 100.0),
        ])
    }

    /// Sets the rules as `attack`'s defaults, judged at the end of the run.
    pub fn apply(&self, attack: GooseAttack) -> anyhow::Result<GooseAttack> {
        let mut attack = *attack.set_default(GooseDefault::NoThresholdAbort, true)?;
        for rule in self.rules()? {
            attack = *attack.set_default(GooseDefault::Threshold, rule.as_str())?;
        }
        Ok(attack)
    }
}

/// Prints one line per rule: the verdict, the rule and what was observed.
pub fn print(results: &[ThresholdResult]) {
    for r in results {
        let verdict = if r.passed { "passed" } else { "FAILED" };
        println!("threshold {verdict}: {} (observed {})", r.rule, r.observed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_become_goose_rules_that_parse() {
        let args = ThresholdArgs {
            p95_ms: 50.0,
            max_error_rate: 0.01,
        };
        let rules = args.rules().unwrap();
        assert_eq!(rules, ["p95<=50ms", "error-rate<=1%"]);
        for rule in rules {
            rule.parse::<goose::threshold::Threshold>().unwrap();
        }
    }

    #[test]
    fn out_of_range_limits_are_named() {
        let bad = ThresholdArgs {
            p95_ms: 0.0,
            max_error_rate: 0.01,
        };
        assert!(bad.rules().unwrap_err().to_string().contains("--p95-ms 0"));
        let bad = ThresholdArgs {
            p95_ms: 5.0,
            max_error_rate: 1.5,
        };
        let err = bad.rules().unwrap_err().to_string();
        assert!(err.contains("--max-error-rate 1.5"), "{err}");
    }
}
