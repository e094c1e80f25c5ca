//! Adapters: the edges of allot. `nats` implements the ports on NATS
//! JetStream and serves `allot.submit` and the views over NATS; `http` is
//! the JSON API. Neither imports the other: both reach the service through
//! the transport-free `ingress` and `views`.

pub mod http;
pub mod nats;
