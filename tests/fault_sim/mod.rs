//! Deterministic fault simulation of the whole shard pipeline: the real
//! runtime on in-memory ports that inject crashes, lost acks, duplicate
//! deliveries, landed-but-failed appends, worker timeouts after the work
//! was done and reordered forwards, all drawn from one seed.

pub mod check;
pub mod driver;
pub mod intake;
pub mod ports;
pub mod scenario;
pub mod world;
