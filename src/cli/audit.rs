//! `allot audit`: checks a live deployment's EVENTS against every promise
//! the tests check, with [`allot::audit::Audit`] (no unit oversold, no
//! order decided twice, every order's events in a legal order, every
//! partition's stock conserved) plus what only a reader of the whole
//! stream can see: each shard's chain unbroken, every batch readable, and
//! no order left undecided longer than `--settle`. The command an
//! operator runs after an incident: exit 0 when every promise held, 1
//! naming the first violations, 2 when the log could not be read.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use allot::adapters::nats::events::{open_events, EventsReader, ReadError};
use allot::adapters::nats::{Broker, NatsOptions};
use allot::audit::{Audit, Findings};
use allot::domain::{Event, OrderId};
use allot::wire::log::Chains;

use super::ConfigArgs;

#[derive(clap::Args)]
pub struct AuditArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Audit this shard only (default: every shard).
    #[arg(long)]
    shard: Option<u32>,
    /// Count only violations at or after this EVENTS sequence or RFC 3339
    /// time. The log is still read from its start: the stock of every
    /// partition and the past of every order come from there.
    #[arg(long)]
    since: Option<String>,
    /// An order not final this long after it was queued (as of the last
    /// batch) is undecided: a lost order. Backordered orders wait until
    /// their `until`.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5m")]
    settle: Duration,
}

/// Where the audit starts counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Since {
    All,
    Seq(u64),
    Time(SystemTime),
}

fn since(text: Option<&str>) -> anyhow::Result<Since> {
    let Some(text) = text else {
        return Ok(Since::All);
    };
    if let Ok(seq) = text.parse::<u64>() {
        return Ok(Since::Seq(seq));
    }
    let time = humantime::parse_rfc3339_weak(text)
        .with_context(|| format!("--since {text:?}: neither a sequence nor an RFC 3339 time"))?;
    Ok(Since::Time(time))
}

/// What the read saw besides the audit's findings.
#[derive(Debug, Default)]
pub struct Read {
    pub batches: u64,
    pub events: u64,
    /// Batches that were not batches this allot reads.
    pub unreadable: u64,
    /// A shard's chain broken for good (batches missing).
    pub broken_chain: Option<String>,
    /// Where counting started (the first batch at or after `--since`).
    pub counted_from: u64,
}

/// Orders not final yet: when queued, and a backorder's `until` (ms).
#[derive(Default)]
struct Open(HashMap<OrderId, (SystemTime, Option<u64>)>);

impl Open {
    fn see(&mut self, event: &Event, stored: SystemTime) {
        match event {
            Event::OrderQueued { order } => {
                self.0.entry(order.id.clone()).or_insert((stored, None));
            }
            Event::OrderBackordered { id, until } => {
                if let Some(o) = self.0.get_mut(id) {
                    o.1 = Some(until.0);
                }
            }
            Event::OrderReserved { id } => {
                if let Some(o) = self.0.get_mut(id) {
                    o.1 = None;
                }
            }
            Event::OrderConfirmed { id } | Event::OrderRejected { id, .. } => {
                self.0.remove(id);
            }
            _ => {}
        }
    }

    /// Orders that should have been decided by `end`.
    fn overdue(&self, end: SystemTime, settle: Duration) -> Vec<OrderId> {
        let cutoff = end.checked_sub(settle).unwrap_or(SystemTime::UNIX_EPOCH);
        let ms = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64)
        };
        let mut ids: Vec<OrderId> = self
            .0
            .iter()
            .filter(|(_, (queued, until))| {
                *queued <= cutoff && until.is_none_or(|u| u <= ms(cutoff))
            })
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }
}

pub async fn run(a: AuditArgs) -> anyhow::Result<ExitCode> {
    let config = a.config.load().context("loading the config")?;
    let since = since(a.since.as_deref())?;
    let broker = Broker::connect(&NatsOptions::from(&config.nats)).await?;
    let (events, last) = open_events(broker.jetstream()).await?;
    let filter = a
        .shard
        .map_or_else(|| "events.*".to_owned(), |s| format!("events.{s}"));
    let reader = EventsReader::new(events, filter.clone(), Chains::from_start(), 1);
    let (findings, read) = audit(reader, last, since, a.settle).await?;
    println!(
        "{}",
        Report {
            filter: &filter,
            last,
            findings: &findings,
            read: &read
        }
    );
    Ok(
        if findings.clean() && read.unreadable == 0 && read.broken_chain.is_none() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        },
    )
}

/// Reads `reader` up to sequence `last` into an audit, counting
/// violations from `since`.
async fn audit(
    mut reader: EventsReader,
    last: u64,
    since: Since,
    settle: Duration,
) -> anyhow::Result<(Findings, Read)> {
    let bar = ProgressBar::new(last);
    bar.set_style(
        ProgressStyle::with_template("{spinner} EVENTS {pos}/{len} [{bar:40}] {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let mut audit = Audit::default();
    let mut open = Open::default();
    let mut read = Read::default();
    // Findings before counting starts, taken away at the end.
    let mut before: Option<Findings> = (since == Since::All).then(Findings::default);
    let mut end = SystemTime::UNIX_EPOCH;
    while reader.position() <= last {
        let batch = match reader.next(Duration::from_secs(5)).await {
            Ok(Some(b)) => b,
            Ok(None) => anyhow::bail!("EVENTS stalled at sequence {}", reader.position()),
            Err(ReadError::Gap(gap, tries)) => {
                read.broken_chain = Some(format!("{gap} (read again {tries} times)"));
                break;
            }
            Err(e) => return Err(e).context("reading EVENTS"),
        };
        if before.is_none() {
            let counting = match since {
                Since::All => true,
                Since::Seq(s) => batch.seq >= s,
                Since::Time(t) => batch.stored >= t,
            };
            if counting {
                before = Some(audit.finish(std::iter::empty()));
                read.counted_from = batch.seq;
            }
        }
        read.batches += 1;
        read.events += batch.batch.events.len() as u64;
        end = end.max(batch.stored);
        for event in &batch.batch.events {
            audit.apply(event);
            open.see(event, batch.stored);
        }
        bar.set_position(batch.seq);
    }
    bar.finish_and_clear();
    read.unreadable = reader.stats().unreadable;
    let overdue = open.overdue(end, settle);
    let mut findings = audit.finish(overdue.iter());
    // Nothing at or after `--since`: nothing counted.
    let before = before.unwrap_or_else(|| audit.finish(std::iter::empty()));
    {
        findings.oversold_units -= before.oversold_units;
        findings.duplicate_decisions -= before.duplicate_decisions;
        findings.illegal_transitions -= before.illegal_transitions;
        findings.broken_carts = findings.broken_carts.saturating_sub(before.broken_carts);
        findings.unconserved_partitions = findings
            .unconserved_partitions
            .saturating_sub(before.unconserved_partitions);
        findings
            .examples
            .drain(..before.examples.len().min(findings.examples.len()));
    }
    Ok((findings, read))
}

/// The summary table.
struct Report<'a> {
    filter: &'a str,
    last: u64,
    findings: &'a Findings,
    read: &'a Read,
}

impl std::fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (x, r) = (self.findings, self.read);
        writeln!(
            f,
            "audit of {} up to EVENTS sequence {}",
            self.filter, self.last
        )?;
        let row =
            |f: &mut std::fmt::Formatter<'_>, k: &str, v: String| writeln!(f, "  {k:<38} {v:>12}");
        row(f, "batches read", r.batches.to_string())?;
        row(f, "events", r.events.to_string())?;
        if r.counted_from > 1 {
            row(
                f,
                "violations counted from sequence",
                r.counted_from.to_string(),
            )?;
        }
        row(f, "confirmed", x.confirmed.to_string())?;
        for (reason, n) in &x.rejected {
            row(f, &format!("rejected: {reason}"), n.to_string())?;
        }
        row(f, "rerouted", x.rerouted.to_string())?;
        row(f, "backordered (ever)", x.backordered.to_string())?;
        row(
            f,
            "cancelled after confirmation",
            x.cancelled_after_confirm.to_string(),
        )?;
        row(
            f,
            "duplicate copies refused",
            x.duplicates_refused.to_string(),
        )?;
        row(f, "stock shortages", x.shortages.to_string())?;
        row(f, "commands refused", x.commands_refused.to_string())?;
        row(f, "units supplied", x.units_supplied.to_string())?;
        row(f, "units sold", x.units_sold.to_string())?;
        row(
            f,
            "oversold units (must be 0)",
            x.oversold_units.to_string(),
        )?;
        row(
            f,
            "decided twice (must be 0)",
            x.duplicate_decisions.to_string(),
        )?;
        row(
            f,
            "illegal transitions (must be 0)",
            x.illegal_transitions.to_string(),
        )?;
        row(f, "carts confirmed", x.carts_confirmed.to_string())?;
        row(
            f,
            "carts rejected or cancelled",
            x.carts_rejected.to_string(),
        )?;
        row(f, "carts half sold (must be 0)", x.broken_carts.to_string())?;
        row(
            f,
            "unconserved partitions (must be 0)",
            x.unconserved_partitions.to_string(),
        )?;
        row(
            f,
            "undecided past --settle (must be 0)",
            x.undecided.to_string(),
        )?;
        row(
            f,
            "unreadable batches (must be 0)",
            r.unreadable.to_string(),
        )?;
        row(
            f,
            "broken chains (must be 0)",
            u8::from(r.broken_chain.is_some()).to_string(),
        )?;
        if let Some(gap) = &r.broken_chain {
            writeln!(f, "  - {gap}")?;
        }
        for example in &x.examples {
            writeln!(f, "  - {example}")?;
        }
        let clean = x.clean() && r.unreadable == 0 && r.broken_chain.is_none();
        write!(
            f,
            "{}",
            if clean {
                "PASS: every promise held"
            } else {
                "FAIL: a promise was broken"
            }
        )
    }
}
