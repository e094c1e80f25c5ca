//! `allot dlq list` and `allot dlq replay`: the dead letters of
//! `allot::adapters::nats::dlq` for an operator.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;

use allot::adapters::nats::dlq::{
    dead_letter_at, dead_letters, dlq_stream, replay, DeadLetter, DELIVERIES_HEADER, REASON_HEADER,
    SEQ_HEADER, SUBJECT_HEADER, TIME_HEADER,
};
use allot::adapters::nats::{Broker, NatsOptions};
use allot::wire::{decode_order, Limits};

use super::ConfigArgs;

#[derive(Subcommand)]
pub enum DlqCmd {
    /// Print the dead letters, oldest first.
    List {
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Put dead letters back on their original subject, then delete them.
    Replay {
        #[command(flatten)]
        config: ConfigArgs,
        /// The DLQ sequence of one dead letter (as `list` prints it).
        #[arg(long, conflicts_with = "all", required_unless_present = "all")]
        seq: Option<u64>,
        /// Every dead letter.
        #[arg(long)]
        all: bool,
    },
}

pub async fn run(command: DlqCmd) -> anyhow::Result<ExitCode> {
    let lines = match command {
        DlqCmd::List { config, limit } => {
            let config = config.load().context("loading the config")?;
            list(&NatsOptions::from(&config.nats), limit).await?
        }
        DlqCmd::Replay {
            config,
            seq,
            all: _,
        } => {
            let config = config.load().context("loading the config")?;
            let which = seq.map_or(Replay::All, Replay::One);
            replay_letters(&NatsOptions::from(&config.nats), which).await?
        }
    };
    for line in lines {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Which dead letters to replay.
#[derive(Debug, Clone, Copy)]
pub enum Replay {
    One(u64),
    All,
}

/// One line per dead letter, oldest first, at most `limit`.
pub async fn list(nats: &NatsOptions, limit: usize) -> anyhow::Result<Vec<String>> {
    let js = Broker::connect(nats).await?.jetstream().clone();
    let mut dlq = dlq_stream(&js).await?;
    let letters = dead_letters(&mut dlq, limit)
        .await
        .map_err(anyhow::Error::msg)
        .context("reading the dead letters")?;
    Ok(letters.iter().map(describe).collect())
}

/// `#<dlq seq> <subject> (ORDERS #<seq>) <time> <deliveries> deliveries:
/// <reason>: <order id or payload preview>`.
pub fn describe(letter: &DeadLetter) -> String {
    format!(
        "#{} {} (ORDERS #{}) at {}, {} deliveries: {}: {}",
        letter.seq,
        letter.header(SUBJECT_HEADER),
        letter.header(SEQ_HEADER),
        letter.header(TIME_HEADER),
        letter.header(DELIVERIES_HEADER),
        letter.header(REASON_HEADER),
        preview(&letter.payload),
    )
}

/// The order id if the payload is a valid order, else its first bytes.
fn preview(payload: &[u8]) -> String {
    match decode_order(payload, &Limits::default()) {
        Ok(order) => format!("order {}", order.id),
        Err(_) => {
            let head = &payload[..payload.len().min(32)];
            let more = if payload.len() > head.len() {
                "..."
            } else {
                ""
            };
            format!(
                "{} bytes {}{more}",
                payload.len(),
                String::from_utf8_lossy(head).escape_debug()
            )
        }
    }
}

/// Replays the chosen dead letters; one line per letter replayed. A letter
/// asked for by `--seq` that is not there is an error naming it.
pub async fn replay_letters(nats: &NatsOptions, which: Replay) -> anyhow::Result<Vec<String>> {
    let js = Broker::connect(nats).await?.jetstream().clone();
    let mut dlq = dlq_stream(&js).await?;
    let letters = match which {
        Replay::One(seq) => vec![dead_letter_at(&dlq, seq)
            .await
            .map_err(anyhow::Error::msg)?
            .with_context(|| {
                format!("no dead letter #{seq} (replayed already, or never there)")
            })?],
        Replay::All => dead_letters(&mut dlq, usize::MAX)
            .await
            .map_err(anyhow::Error::msg)?,
    };
    let mut done = Vec::with_capacity(letters.len());
    for letter in &letters {
        let seq = replay(&js, &dlq, letter)
            .await
            .map_err(anyhow::Error::msg)?;
        done.push(format!(
            "#{} replayed to {} as ORDERS #{seq}",
            letter.seq,
            letter.header(SUBJECT_HEADER)
        ));
    }
    Ok(done)
}
