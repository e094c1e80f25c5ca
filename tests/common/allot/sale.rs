//! The producer side: stock commands and orders for the ORDERS stream,
//! published the way a producer would, and sales built from them.

use std::time::Duration;

use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::Context;
use bytes::Bytes;
use tokio::time::Instant;

use allot::adapters::nats::{
    shard_consumer, shard_order_subject, EVENTS_STREAM, KIND_COMMAND, KIND_HEADER, ORDERS_STREAM,
};
use allot::config::Config;
use allot::domain::{Cart, Command, OrderId, PartitionKey};
use allot::wire::cart::{encode_cart_item, placeholder_partition, CartOp};
use allot::wire::Intake;
use allot::wire::{encode_command, order_subject, OrderMessage, SubmitReply, SUBMIT_SUBJECT};

use super::{order_id, partition, Ledger, POLL};

/// Waits until allot has set up its streams (it creates them at start).
pub async fn wait_for_streams(js: &Context, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let orders = js.get_stream(ORDERS_STREAM).await.is_ok();
        let events = js.get_stream(EVENTS_STREAM).await.is_ok();
        if orders && events {
            // The consumers come right after the streams.
            if let Ok(stream) = js.get_stream(ORDERS_STREAM).await {
                if stream.consumer_info(shard_consumer(0)).await.is_ok() {
                    return;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "allot did not create its streams in {timeout:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// One message for the ORDERS stream.
pub struct Outgoing {
    pub subject: String,
    pub msg_id: Option<String>,
    pub kind: Option<&'static str>,
    pub payload: Bytes,
}

impl Outgoing {
    /// A producer's order on `orders.<warehouse>.<sku>`, msg id = order id.
    pub fn order(id: &str, partition: &PartitionKey, quantity: u64) -> Outgoing {
        let body = OrderMessage {
            v: 1,
            id: id.to_owned(),
            sku: partition.sku.to_string(),
            quantity,
            warehouse: Some(partition.warehouse.to_string()),
            region: None,
            priority: None,
        };
        Outgoing {
            subject: order_subject(partition),
            msg_id: Some(id.to_owned()),
            kind: None,
            payload: body.encode().into(),
        }
    }

    /// Raw bytes on `orders.<warehouse>.<sku>`, no msg id.
    pub fn raw(partition: &PartitionKey, payload: impl Into<Bytes>) -> Outgoing {
        Outgoing {
            subject: order_subject(partition),
            msg_id: None,
            kind: None,
            payload: payload.into(),
        }
    }

    /// `SetStock` through the partition's shard, as `allot stock set` does.
    pub fn set_stock(config: &Config, partition: &PartitionKey, on_hand: u64) -> Outgoing {
        let shard = config.router().shard_for(partition);
        let command = Command::SetStock {
            partition: partition.clone(),
            on_hand,
            expected_version: None,
        };
        let encoded = encode_command(&command);
        Outgoing {
            subject: shard_order_subject(shard, partition),
            msg_id: Some(format!("stock-{partition}-{on_hand}")),
            kind: encoded.kind,
            payload: encoded.body.into(),
        }
    }

    /// A routed cart on its coordinator's shard, as the ingress files it
    /// (msg id = cart id).
    pub fn cart(config: &Config, cart: Cart) -> Outgoing {
        let shard = allot::wire::cart::coordinator(cart.id(), config.router().shard_count());
        let subject = shard_order_subject(shard, &cart.lines()[0].partition);
        let msg_id = Some(cart.id().to_string());
        let encoded = encode_cart_item(&Intake::Cart(cart)).expect("a cart encodes");
        Outgoing {
            subject,
            msg_id,
            kind: encoded.kind,
            payload: encoded.body.into(),
        }
    }

    /// A confirm or cancel of cart `id`, as the ingress files it.
    pub fn cart_command(config: &Config, id: &OrderId, op: CartOp) -> Outgoing {
        let shard = allot::wire::cart::coordinator(id, config.router().shard_count());
        let encoded = encode_cart_item(&Intake::CartCommand {
            cart: id.clone(),
            op,
        })
        .expect("a cart command encodes");
        Outgoing {
            subject: shard_order_subject(shard, &placeholder_partition()),
            msg_id: Some(format!("{op:?}-{id}")),
            kind: encoded.kind,
            payload: encoded.body.into(),
        }
    }

    fn build(&self) -> PublishMessage {
        let mut m = PublishMessage::build().payload(self.payload.clone());
        if let Some(id) = &self.msg_id {
            m = m.message_id(id.as_str());
        }
        if let Some(kind) = self.kind {
            m = m.header(KIND_HEADER, kind);
        }
        m
    }
}

/// Publishes every message and waits until the stream stored each one,
/// pipelined in windows; a message whose publish or ack fails (the broker
/// restarting) is sent again with the same msg id, as a producer would.
/// Returns the stream sequence of each message, in order.
pub async fn publish_all(js: &Context, messages: &[Outgoing]) -> Vec<u64> {
    const WINDOW: usize = 500;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seqs = vec![0; messages.len()];
    for (window, chunk) in messages.chunks(WINDOW).enumerate() {
        let mut todo: Vec<usize> = (0..chunk.len()).collect();
        while !todo.is_empty() {
            let mut acks = Vec::with_capacity(todo.len());
            for &i in &todo {
                acks.push((
                    i,
                    js.send_publish(chunk[i].subject.clone(), chunk[i].build()),
                ));
            }
            let mut failed = Vec::new();
            for (i, sent) in acks {
                match sent.await {
                    Ok(ack) => match ack.await {
                        Ok(ack) => seqs[window * WINDOW + i] = ack.sequence,
                        Err(_) => failed.push(i),
                    },
                    Err(_) => failed.push(i),
                }
            }
            assert!(
                Instant::now() < deadline,
                "{} messages not stored after 60 s of retries",
                failed.len()
            );
            if !failed.is_empty() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            todo = failed;
        }
    }
    seqs
}

/// A sale: `per_sku` orders of one unit for each partition, which holds
/// `stock` units, interleaved across partitions.
pub struct Sale {
    pub partitions: Vec<PartitionKey>,
    pub stock: u64,
    pub names: Vec<String>,
    pub ids: Vec<OrderId>,
}

impl Sale {
    /// One SKU per shard of `config` (named `<prefix>-<n>`), in `warehouse`.
    pub fn one_sku_per_shard(
        config: &Config,
        warehouse: &str,
        prefix: &str,
        per_sku: usize,
        stock: u64,
    ) -> Sale {
        let router = config.router();
        let shards = router.shard_count() as usize;
        let mut partitions: Vec<Option<PartitionKey>> = vec![None; shards];
        for n in 0.. {
            let p = partition(warehouse, &format!("{prefix}-{n}"));
            let slot = &mut partitions[router.shard_for(&p) as usize];
            if slot.is_none() {
                *slot = Some(p);
            }
            if partitions.iter().all(Option::is_some) {
                break;
            }
        }
        let partitions: Vec<PartitionKey> = partitions.into_iter().flatten().collect();
        let names: Vec<String> = (0..per_sku * partitions.len())
            .map(|i| format!("{}-o{i}", prefix.to_lowercase()))
            .collect();
        let ids = names.iter().map(|n| order_id(n)).collect();
        Sale {
            partitions,
            stock,
            names,
            ids,
        }
    }

    pub fn stock_commands(&self, config: &Config) -> Vec<Outgoing> {
        self.partitions
            .iter()
            .map(|p| Outgoing::set_stock(config, p, self.stock))
            .collect()
    }

    /// Orders `range` of the sale, order `i` for partition `i % n`.
    pub fn orders(&self, range: std::ops::Range<usize>) -> Vec<Outgoing> {
        range
            .map(|i| {
                let p = &self.partitions[i % self.partitions.len()];
                Outgoing::order(&self.names[i], p, 1)
            })
            .collect()
    }

    pub fn units(&self) -> u64 {
        self.stock * self.partitions.len() as u64
    }

    /// The promises, and a sell-out: with workers that never fail and more
    /// orders than units, every unit is sold and every other order is
    /// rejected out of stock.
    pub fn assert_sold_out(&self, ledger: &Ledger) {
        let f = ledger.findings(&self.ids);
        assert!(f.clean(), "a promise was broken: {f:?}");
        let total = self.ids.len() as u64;
        assert_eq!(f.confirmed, self.units(), "{f:?}");
        assert_eq!(
            f.rejected.get("out_of_stock").copied(),
            Some(total - self.units()),
            "{f:?}"
        );
        assert_eq!(f.rejected_total(), total - self.units(), "{f:?}");
        for p in &self.partitions {
            let stock = self.stock as i128;
            assert_eq!(
                ledger.audit.stock(p),
                Some(allot::audit::Stock {
                    supplied: stock,
                    available: 0,
                    reserved: 0,
                    sold: stock
                }),
                "{p}"
            );
        }
        for id in &self.ids {
            assert_eq!(ledger.finals(id), 1, "{id}");
        }
    }
}

/// Submits one order of `quantity` units for `sku` in region `eu` to
/// ingress, as a producer's NATS request, and returns the answer.
pub async fn submit(
    client: &async_nats::Client,
    id: &str,
    sku: &str,
    quantity: u64,
) -> SubmitReply {
    let body = OrderMessage {
        v: 1,
        id: id.to_owned(),
        sku: sku.to_owned(),
        quantity,
        warehouse: None,
        region: Some("eu".into()),
        priority: None,
    };
    let reply = client
        .request(SUBMIT_SUBJECT, body.encode().into())
        .await
        .expect("ingress answers");
    rmp_serde::from_slice(&reply.payload).expect("a submit reply")
}
