//! The producer's side of NATS, for allot's own tools (the demo, the
//! bench): requests to `allot.submit`, and orders published straight to
//! `orders.<warehouse>.<sku>` pipelined with their stream acknowledgements
//! awaited in windows, as a producer that routes itself would.

use std::time::Duration;

use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::Stream;
use async_nats::jetstream::Context;
use async_nats::Client;
use bytes::Bytes;

use crate::wire::{SubmitReply, SUBMIT_SUBJECT};

/// Why a producer's message did not go through.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    /// The broker did not take or answer it.
    #[error("NATS: {0}")]
    Broker(String),
    /// The submit reply was not one allot sends.
    #[error("unreadable submit reply: {0}")]
    Reply(String),
    /// The stream is not there: `allot serve` creates it at start.
    #[error("stream {0} not found after 20 s: is `allot serve` running?")]
    NoStream(String),
}

fn broker(e: impl std::fmt::Display) -> ProduceError {
    ProduceError::Broker(e.to_string())
}

/// A producer with pipelined publishes.
pub struct Producer {
    client: Client,
    js: Context,
    pending: Vec<PublishAckFuture>,
    /// Publishes in flight before their acks are awaited.
    window: usize,
}

impl Producer {
    pub fn new(client: Client) -> Self {
        Self {
            js: async_nats::jetstream::new(client.clone()),
            client,
            pending: Vec::new(),
            window: 2_000,
        }
    }

    /// The JetStream context, for the stream handles allot's tools read.
    pub fn jetstream(&self) -> &Context {
        &self.js
    }

    /// Waits up to 20 s for `allot serve` to have created stream `name`.
    pub async fn wait_for_stream(&self, name: &str) -> Result<Stream, ProduceError> {
        for _ in 0..100 {
            if let Ok(stream) = self.js.get_stream(name).await {
                return Ok(stream);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(ProduceError::NoStream(name.to_owned()))
    }

    /// An order (MessagePack) as a request to `allot.submit`.
    pub async fn submit(&self, order: Vec<u8>) -> Result<SubmitReply, ProduceError> {
        let reply = self
            .client
            .request(SUBMIT_SUBJECT, order.into())
            .await
            .map_err(broker)?;
        SubmitReply::decode(&reply.payload).map_err(ProduceError::Reply)
    }

    /// Publishes `payload` on `subject` (with `Nats-Msg-Id` = `msg_id` if
    /// given); its acknowledgement is awaited with the window's.
    pub async fn publish(
        &mut self,
        subject: String,
        msg_id: Option<&str>,
        payload: Bytes,
    ) -> Result<(), ProduceError> {
        let mut message = PublishMessage::build().payload(payload);
        if let Some(id) = msg_id {
            message = message.message_id(id);
        }
        let ack = self
            .js
            .send_publish(subject, message)
            .await
            .map_err(broker)?;
        self.pending.push(ack);
        if self.pending.len() >= self.window {
            self.flush().await?;
        }
        Ok(())
    }

    /// Waits until the stream stored everything published so far.
    pub async fn flush(&mut self) -> Result<(), ProduceError> {
        for ack in self.pending.drain(..) {
            ack.await.map_err(broker)?;
        }
        Ok(())
    }
}
