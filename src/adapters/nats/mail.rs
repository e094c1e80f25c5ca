//! The cart traffic a process sends to each shard, batched: while one
//! message to a shard is being filed, what else is sent to it waits and
//! goes in the next one (`Allot-Kind: cart-mail`), like a group commit.
//! A send returns once the message holding its item is in the stream,
//! so a coordinator still knows when its messages were taken.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::oneshot;
use tracing::warn;

use super::NatsFiler;
use crate::domain::PartitionKey;
use crate::ingress::Filer;
use crate::ports::{Intake, ShardId};
use crate::wire::cart::encode_cart_mail;
use crate::wire::intake::{encode_cart_item, Encoded};

/// Most items in one message (a line is under 200 bytes: well within
/// the broker's 1 MiB message limit).
const MOST: usize = 256;

/// One item waiting for its shard's next message.
struct Letter {
    partition: PartitionKey,
    item: Intake,
    taken: oneshot::Sender<()>,
}

/// Flushers filing one shard's mail at once. One: what waits while it
/// files makes the next message bigger. (Two ran the bench's carts at
/// 5,495 carts/s against 8,062 with one: smaller messages, more of them.)
const FLUSHERS: usize = 1;

#[derive(Default)]
struct Mailbox {
    waiting: Vec<Letter>,
    /// Flushers filing this shard's mail.
    flushing: usize,
}

/// Every shard's mailbox.
#[derive(Clone)]
pub struct Mail {
    filer: NatsFiler,
    boxes: Arc<Vec<Mutex<Mailbox>>>,
}

impl Mail {
    pub fn new(filer: NatsFiler, shards: u32) -> Self {
        Self {
            filer,
            boxes: Arc::new((0..shards).map(|_| Mutex::default()).collect()),
        }
    }

    /// Sends `item` of cart traffic to `shard`'s intake; returns once the
    /// stream has it.
    pub async fn send(&self, shard: ShardId, partition: PartitionKey, item: Intake) {
        let Some(mailbox) = self.boxes.get(shard as usize) else {
            warn!(shard, "no such shard; cart message not sent");
            return;
        };
        let (taken, filed) = oneshot::channel();
        let start = {
            let mut mailbox = mailbox.lock();
            mailbox.waiting.push(Letter {
                partition,
                item,
                taken,
            });
            let start = mailbox.flushing < FLUSHERS;
            mailbox.flushing += usize::from(start);
            start
        };
        if start {
            let mail = self.clone();
            tokio::spawn(async move { mail.flush(shard).await });
        }
        // A flusher files every letter before it stops.
        let _ = filed.await;
    }

    /// Files `shard`'s mail until none is waiting.
    async fn flush(&self, shard: ShardId) {
        let mailbox = &self.boxes[shard as usize];
        loop {
            let letters: Vec<Letter> = {
                let mut mailbox = mailbox.lock();
                if mailbox.waiting.is_empty() {
                    mailbox.flushing -= 1;
                    return;
                }
                let n = mailbox.waiting.len().min(MOST);
                mailbox.waiting.drain(..n).collect()
            };
            let items: Vec<&Intake> = letters.iter().map(|l| &l.item).collect();
            let message = match items.as_slice() {
                [one] => encode_cart_item(one),
                _ => encode_cart_mail(items.iter().copied()),
            };
            match message {
                Some(message) => self.file(shard, &letters[0].partition, message).await,
                None => warn!(shard, "not cart traffic; not sent"),
            }
            for letter in letters {
                let _ = letter.taken.send(());
            }
        }
    }

    /// Files one message, retrying until the stream has it.
    async fn file(&self, shard: ShardId, partition: &PartitionKey, message: Encoded) {
        // A key of its own per message: a resent reserve must reach the
        // partition (it answers again), not be dropped as a duplicate.
        let key = format!(
            "{}-{:016x}",
            message.kind.unwrap_or("cart"),
            rand::random::<u64>()
        );
        let mut backoff = Duration::from_millis(50);
        loop {
            match self
                .filer
                .file(shard, partition, &key, message.clone())
                .await
            {
                Ok(_) => return,
                Err(e) => warn!(shard, error = %e, "cart message not filed; retrying"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }
}
