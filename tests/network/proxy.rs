//! A TCP proxy the test controls, standing between one client (an allot
//! instance) and one server (nats-server): it accepts, connects upstream
//! and copies both ways, unless told otherwise. tc netem needs privileges
//! the CI machine does not give, so the network's faults are made here:
//!
//! - [`Proxy::partition`]: nothing crosses. With [`Partition::Hold`] every
//!   connection stays open and what arrives is held back (as a dead route
//!   does; TCP retransmits it once the route is back), and a new
//!   connection is accepted but not connected upstream; with
//!   [`Partition::Drop`] every connection is reset and new ones are refused.
//! - [`Proxy::degrade`]: each chunk is delivered after a random latency,
//!   some chunks after an extra delay (a lost segment's retransmit), and now
//!   and then a connection is reset.
//! - [`Proxy::heal`]: back to copying; held bytes go through in order.
//!
//! Every fault is counted ([`Proxy::stats`]), so a test can assert that it
//! happened, and every byte sent upstream is kept ([`Proxy::sent_msg_ids`]
//! tells which messages the client published).

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What a partition does to connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Partition {
    /// Connections stay open; bytes wait until the heal.
    Hold,
    /// Connections are reset; new ones are refused until the heal.
    Drop,
}

/// A slow, lossy link.
#[derive(Clone, Debug, PartialEq)]
pub struct Degrade {
    /// Every chunk is delayed by a uniformly random time in this range.
    pub latency: Range<Duration>,
    /// The chance that a chunk is delayed `extra` on top (a retransmit).
    pub extra_chance: f64,
    pub extra: Range<Duration>,
    /// The chance, per chunk, that its connection is reset.
    pub reset_chance: f64,
}

#[derive(Clone, Debug, PartialEq)]
enum Mode {
    Open,
    Partitioned(Partition),
    Degraded(Degrade),
}

/// What the proxy did, counted since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub connections: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// Chunks (and their bytes) that waited for a heal.
    pub held_chunks: u64,
    pub held_bytes: u64,
    /// Connections reset or refused by a `Drop` partition.
    pub dropped: u64,
    /// Chunks given latency, and those given extra delay on top.
    pub delayed_chunks: u64,
    pub extra_delayed_chunks: u64,
    /// Connections reset by a degraded link.
    pub resets: u64,
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    held_chunks: AtomicU64,
    held_bytes: AtomicU64,
    dropped: AtomicU64,
    delayed_chunks: AtomicU64,
    extra_delayed_chunks: AtomicU64,
    resets: AtomicU64,
}

struct Link {
    upstream: std::net::SocketAddr,
    mode: watch::Sender<Mode>,
    counters: Counters,
    rng: Mutex<rand_chacha::ChaCha8Rng>,
    /// Every byte written upstream, in order, per connection.
    sent_up: Mutex<Vec<Vec<u8>>>,
    /// The open connections, cancelled to reset them.
    conns: Mutex<Vec<CancellationToken>>,
}

/// The proxy, listening on a loopback port; it stops on drop.
pub struct Proxy {
    port: u16,
    link: Arc<Link>,
    stop: CancellationToken,
}

impl Proxy {
    /// Listens on a free loopback port, forwarding to `upstream`
    /// (`127.0.0.1:<port>`); `seed` drives the degraded link's dice.
    pub async fn start(upstream_port: u16, seed: u64) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().expect("the proxy's address").port();
        let link = Arc::new(Link {
            upstream: ([127, 0, 0, 1], upstream_port).into(),
            mode: watch::Sender::new(Mode::Open),
            counters: Counters::default(),
            rng: Mutex::new(rand_chacha::ChaCha8Rng::seed_from_u64(seed)),
            sent_up: Mutex::new(Vec::new()),
            conns: Mutex::new(Vec::new()),
        });
        let stop = CancellationToken::new();
        tokio::spawn(accept_loop(listener, link.clone(), stop.clone()));
        Proxy { port, link, stop }
    }

    /// `nats://127.0.0.1:<port>`: where the proxied client connects.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn partition(&self, how: Partition) {
        self.link.mode.send_replace(Mode::Partitioned(how));
        if how == Partition::Drop {
            for conn in self.link.conns.lock().unwrap().drain(..) {
                self.link.counters.dropped.fetch_add(1, Relaxed);
                conn.cancel();
            }
        }
    }

    pub fn degrade(&self, how: Degrade) {
        self.link.mode.send_replace(Mode::Degraded(how));
    }

    /// Resets every open connection now (the client reconnects).
    pub fn reset(&self) {
        for conn in self.link.conns.lock().unwrap().drain(..) {
            self.link.counters.resets.fetch_add(1, Relaxed);
            conn.cancel();
        }
    }

    pub fn heal(&self) {
        self.link.mode.send_replace(Mode::Open);
    }

    pub fn stats(&self) -> Stats {
        let c = &self.link.counters;
        Stats {
            connections: c.connections.load(Relaxed),
            bytes_up: c.bytes_up.load(Relaxed),
            bytes_down: c.bytes_down.load(Relaxed),
            held_chunks: c.held_chunks.load(Relaxed),
            held_bytes: c.held_bytes.load(Relaxed),
            dropped: c.dropped.load(Relaxed),
            delayed_chunks: c.delayed_chunks.load(Relaxed),
            extra_delayed_chunks: c.extra_delayed_chunks.load(Relaxed),
            resets: c.resets.load(Relaxed),
        }
    }

    /// The `Nats-Msg-Id` of every message the client published through
    /// the proxy (the header lines of its HPUBs, read from the bytes sent
    /// upstream).
    pub fn sent_msg_ids(&self) -> std::collections::HashSet<String> {
        const HEADER: &[u8] = b"nats-msg-id:";
        let sent = self.link.sent_up.lock().unwrap();
        sent.iter()
            .flat_map(|conn| conn.split(|b| *b == b'\n'))
            .filter(|line| {
                line.len() > HEADER.len() && line[..HEADER.len()].eq_ignore_ascii_case(HEADER)
            })
            .map(|line| {
                String::from_utf8_lossy(&line[HEADER.len()..])
                    .trim()
                    .to_owned()
            })
            .collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
        for conn in self.link.conns.lock().unwrap().drain(..) {
            conn.cancel();
        }
    }
}

async fn accept_loop(listener: TcpListener, link: Arc<Link>, stop: CancellationToken) {
    while let Some(Ok((client, _))) = stop.run_until_cancelled(listener.accept()).await {
        link.counters.connections.fetch_add(1, Relaxed);
        if *link.mode.borrow() == Mode::Partitioned(Partition::Drop) {
            link.counters.dropped.fetch_add(1, Relaxed);
            let _ = client.set_zero_linger();
            continue;
        }
        let conn = stop.child_token();
        link.conns.lock().unwrap().push(conn.clone());
        let index = {
            let mut sent = link.sent_up.lock().unwrap();
            sent.push(Vec::new());
            sent.len() - 1
        };
        tokio::spawn(connection(client, link.clone(), conn, index));
    }
}

/// One proxied connection: upstream is connected once no partition holds
/// it, then both directions run until both ends close or `conn` is
/// cancelled (a reset).
async fn connection(client: TcpStream, link: Arc<Link>, conn: CancellationToken, index: usize) {
    let connected = conn
        .run_until_cancelled(async {
            link.wait_open().await;
            TcpStream::connect(link.upstream).await
        })
        .await;
    let Some(Ok(upstream)) = connected else {
        let _ = client.set_zero_linger();
        return;
    };
    let _ = (client.set_nodelay(true), upstream.set_nodelay(true));
    let (client_r, client_w) = client.into_split();
    let (up_r, up_w) = upstream.into_split();
    tokio::join!(
        direction(client_r, up_w, Some(index), &link, &conn),
        direction(up_r, client_w, None, &link, &conn),
    );
    conn.cancel();
    link.conns.lock().unwrap().retain(|c| !c.is_cancelled());
}

/// Copies `from` to `to` through a delay line: the reader stamps each
/// chunk with when it is due (never before the one ahead of it), the
/// writer delivers it then. `up` is the connection's index when `to` is
/// the server.
async fn direction(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    up: Option<usize>,
    link: &Link,
    conn: &CancellationToken,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Bytes)>();
    let reading = async move {
        let mut buf = vec![0u8; 16 * 1024];
        let mut last_due = Instant::now();
        while let Some(Ok(n @ 1..)) = conn.run_until_cancelled(from.read(&mut buf)).await {
            let chunk = Bytes::copy_from_slice(&buf[..n]);
            let Some(delay) = conn.run_until_cancelled(link.admit(n, conn)).await else {
                break;
            };
            last_due = last_due.max(Instant::now() + delay);
            if tx.send((last_due, chunk)).is_err() {
                break;
            }
        }
    };
    let writing = async {
        while let Some(Some((due, chunk))) = conn.run_until_cancelled(rx.recv()).await {
            let sent = conn
                .run_until_cancelled(async {
                    tokio::time::sleep_until(due).await;
                    // A partition that began while the chunk was on its way.
                    link.hold(chunk.len()).await;
                    to.write_all(&chunk).await
                })
                .await;
            match sent {
                Some(Ok(())) => link.forwarded(up, &chunk),
                // The other end is gone: so is the connection.
                Some(Err(_)) => conn.cancel(),
                None => break,
            }
        }
        if conn.is_cancelled() {
            let _ = to.as_ref().set_zero_linger();
        } else {
            let _ = to.shutdown().await;
        }
    };
    tokio::join!(reading, writing);
}

impl Link {
    /// Waits while a partition holds the link.
    async fn wait_open(&self) {
        let mut mode = self.mode.subscribe();
        while matches!(*mode.borrow_and_update(), Mode::Partitioned(_)) {
            if mode.changed().await.is_err() {
                break;
            }
        }
    }

    /// Holds a chunk of `n` bytes until no partition holds the link,
    /// counted as held as soon as it waits.
    async fn hold(&self, n: usize) {
        if matches!(*self.mode.borrow(), Mode::Partitioned(_)) {
            self.counters.held_chunks.fetch_add(1, Relaxed);
            self.counters.held_bytes.fetch_add(n as u64, Relaxed);
        }
        self.wait_open().await;
    }

    /// Lets a chunk of `n` bytes that just arrived onto the link (after
    /// any partition) and says how long it is delayed; may reset `conn`.
    async fn admit(&self, n: usize, conn: &CancellationToken) -> Duration {
        self.hold(n).await;
        let Mode::Degraded(d) = self.mode.borrow().clone() else {
            return Duration::ZERO;
        };
        let mut rng = self.rng.lock().unwrap();
        if rng.gen_bool(d.reset_chance) {
            self.counters.resets.fetch_add(1, Relaxed);
            conn.cancel();
        }
        let mut delay = rng.gen_range(d.latency.clone());
        self.counters.delayed_chunks.fetch_add(1, Relaxed);
        if rng.gen_bool(d.extra_chance) {
            delay += rng.gen_range(d.extra.clone());
            self.counters.extra_delayed_chunks.fetch_add(1, Relaxed);
        }
        delay
    }

    fn forwarded(&self, up: Option<usize>, chunk: &[u8]) {
        if let Some(index) = up {
            self.counters
                .bytes_up
                .fetch_add(chunk.len() as u64, Relaxed);
            self.sent_up.lock().unwrap()[index].extend_from_slice(chunk);
        } else {
            self.counters
                .bytes_down
                .fetch_add(chunk.len() as u64, Relaxed);
        }
    }
}
