//! Adapters: the real implementations of the ports (NATS JetStream).

pub mod nats;
