//! The story of a fault, told in seconds after it began: lease puts,
//! EVENTS batches and what each instance logged, merged in time order.

use std::collections::HashSet;

use crate::fence::{logged, secs, Puts, Stored};
use crate::{DIRECT, PROXIED};

/// What the proxied instance logs about its leases and shards.
pub const LEASE_LINES: [&str; 8] = [
    "shard lease",
    "stopping the shard",
    "stopping it",
    "stopped on its own",
    "shard fenced",
    "giving the shard up",
    "NATS disconnected",
    "NATS connected",
];

/// A log line's message, without its level, spans and target.
fn message(line: &str) -> &str {
    line.find("allot::")
        .and_then(|i| line[i..].split_once(": "))
        .map_or(line, |(_, m)| m)
}

/// Prints, in seconds after the partition, what happened to the shards
/// the proxied instance held: its last batch before the cut, the direct
/// instance's takeover (lease put, log line, first batch), what the
/// proxied instance logged about its leases, shards and appends, and the
/// heal; then, per shard, when the proxied instance stopped it against
/// when its lease was taken. Returns the shards it did not stop before
/// their lease was taken, each with what happened.
pub fn print_timeline(
    direct: &str,
    proxied: &str,
    held: &[u32],
    batches: &[Stored],
    sent: &HashSet<String>,
    puts: &Puts,
    [cut, healed]: [i128; 2],
) -> Vec<String> {
    let window = |at: i128| at > cut - 500_000_000 && at < healed + 4_000_000_000;
    let mut lines: Vec<(i128, String)> = vec![
        (cut, "test: partition starts".into()),
        (healed, "test: heal".into()),
    ];
    let mut taken = Vec::new();
    for &shard in held {
        let ours = |b: &&Stored| b.shard == shard && sent.contains(&b.msg_id);
        if let Some(b) = batches.iter().filter(ours).rfind(|b| b.at < healed) {
            let line = format!(
                "EVENTS: shard {shard}'s last batch by {PROXIED}, seq {}",
                b.seq
            );
            lines.push((b.at, line));
        }
        if let Some(p) = puts.taken_from(PROXIED, shard, cut) {
            lines.push((p.at, format!("leases: shards.{shard} put by {}", p.owner)));
            if let Some(b) = batches.iter().find(|b| b.shard == shard && b.at > p.at) {
                let line = format!(
                    "EVENTS: shard {shard}'s first batch after that, seq {}",
                    b.seq
                );
                lines.push((b.at, line));
            }
            taken.push((shard, p.at));
        }
    }
    for (at, line) in logged(direct, &["shard lease acquired"]) {
        lines.push((at, format!("{DIRECT}: {}", message(&line))));
    }
    let mut seen = HashSet::new();
    let proxied_lines = logged(
        proxied,
        &[&LEASE_LINES[..], &["append", "heartbeat"]].concat(),
    );
    for (at, line) in proxied_lines.iter().filter(|(at, _)| window(*at)) {
        // Retries repeat their message: the first of each is enough.
        let msg = message(line);
        let retry = msg.contains("retrying") || msg.contains("heartbeat");
        if !retry || seen.insert(msg.split(" error=").next().unwrap_or(msg).to_owned()) {
            lines.push((*at, format!("{PROXIED}: {msg}")));
        }
    }
    lines.retain(|(at, _)| window(*at));
    lines.sort_by_key(|(at, _)| *at);
    for (at, line) in lines {
        eprintln!("  {:>7.3}  {line}", secs(at, cut));
    }
    let mut late = Vec::new();
    for (shard, at) in taken {
        let stopped = proxied_lines.iter().find(|(t, l)| {
            *t > cut && l.contains(&format!("shard={shard}")) && l.contains("stopping")
        });
        let line = match stopped {
            Some((t, _)) => format!(
                "shard {shard}: {PROXIED} stopped it at {:.3} s, {:.3} s {} {DIRECT} took its lease",
                secs(*t, cut),
                secs((t - at).abs(), 0),
                if *t < at { "before" } else { "after" }
            ),
            None => format!("shard {shard}: {PROXIED} logged no stop after the partition"),
        };
        eprintln!("  {line}");
        if stopped.is_none_or(|(t, _)| *t >= at) {
            late.push(line);
        }
    }
    late
}

/// Prints the lease changes both instances logged while the link was
/// degraded (and 3 s after), in seconds after it began.
pub fn print_leases(direct: &str, proxied: &str, [from, until]: [i128; 2]) {
    eprintln!("leases while the link was degraded (seconds after it began):");
    let lines = logged(direct, &["shard lease acquired"])
        .into_iter()
        .map(|(at, l)| (at, format!("{DIRECT}: {}", message(&l))))
        .chain(
            logged(proxied, &LEASE_LINES)
                .into_iter()
                .map(|(at, l)| (at, format!("{PROXIED}: {}", message(&l)))),
        );
    let mut lines: Vec<_> = lines
        .filter(|(at, _)| (from..until + 3_000_000_000).contains(at))
        .collect();
    lines.sort_by_key(|(at, _)| *at);
    for (at, line) in lines {
        eprintln!("  {:>7.3}  {line}", secs(at, from));
    }
}
