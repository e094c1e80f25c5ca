//! A real nats-server with JetStream for one test: its own free loopback
//! port and temp store dir, stopped (or killed) by the test or on drop.
//!
//! ```ignore
//! let server = NatsServer::start();
//! let client = async_nats::connect(server.url()).await?;
//! ```
//!
//! The binary is `$ALLOT_NATS_SERVER` if set, else `.tools/bin/nats-server`
//! (installed by `scripts/setup.sh`), else `nats-server` on PATH. It must be
//! 2.10 or newer; `scripts/setup.sh` checks that and pins the version.
//!
//! Only the child process this harness spawned is ever signalled, by its
//! pid. Failures panic with the server's log: they are broken test setups,
//! not outcomes a test asserts on.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};
use tempfile::TempDir;

pub use super::netns::Netns;

/// How long a server may take to print "Server is ready".
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a SIGTERMed server may take to exit before it is SIGKILLed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Fresh ports tried when another process takes the one we picked between
/// releasing it and the server binding it.
const PORT_ATTEMPTS: usize = 5;
/// nats-server logs this once JetStream is up and clients are accepted.
const READY_LINE: &str = "Server is ready";

/// A nats-server child process with JetStream on `127.0.0.1:port()` (or
/// on another address inside a network namespace, see [`Netns`]).
pub struct NatsServer {
    bin: PathBuf,
    /// The client listen address.
    host: String,
    /// Run inside this network namespace (`ip netns exec`).
    netns: Option<String>,
    port: u16,
    /// Holds `store/` (JetStream's `-sd`) and, if any, `nats.conf`.
    dir: TempDir,
    config: Option<PathBuf>,
    run: Option<Running>,
}

struct Running {
    child: Child,
    log: Arc<Log>,
}

/// The server's stderr (where it logs), filled by a reader thread.
#[derive(Default)]
struct Log {
    state: Mutex<LogState>,
    changed: Condvar,
}

#[derive(Default)]
struct LogState {
    text: String,
    ready: bool,
    /// stderr reached EOF: the process has exited.
    closed: bool,
}

impl NatsServer {
    /// Starts a server with JetStream on a free loopback port and an empty
    /// temp store; returns once it accepts clients.
    pub fn start() -> NatsServer {
        Self::launch(None)
    }

    /// Like [`NatsServer::start`], with `config` (nats-server config syntax,
    /// e.g. an `authorization { ... }` or `tls { ... }` block) as its config
    /// file. The harness's command-line flags (`-js -a -p -sd`) win over the
    /// same settings in `config`. It must leave logging on stderr (no
    /// `log_file`, no `syslog`): readiness is read from there.
    pub fn start_with_config(config: &str) -> NatsServer {
        Self::launch(Some(config))
    }

    /// Like [`NatsServer::start_with_config`], inside `netns`, listening for
    /// clients on `netns.inside()`.
    pub fn start_in(netns: &Netns, config: &str) -> NatsServer {
        Self::launch_at(Some(config), netns.inside(), Some(netns.name.clone()))
    }

    fn launch(config: Option<&str>) -> NatsServer {
        Self::launch_at(config, "127.0.0.1", None)
    }

    fn launch_at(config: Option<&str>, host: &str, netns: Option<String>) -> NatsServer {
        let dir = tempfile::Builder::new()
            .prefix("allot-nats-")
            .tempdir()
            .expect("create a temp dir for nats-server");
        std::fs::create_dir(dir.path().join("store")).expect("create the store dir");
        let config = config.map(|text| {
            let path = dir.path().join("nats.conf");
            std::fs::write(&path, text).expect("write nats.conf");
            path
        });
        let mut server = NatsServer {
            bin: binary(),
            host: host.to_owned(),
            netns,
            port: 0,
            dir,
            config,
            run: None,
        };
        let mut last_error = String::new();
        for _ in 0..PORT_ATTEMPTS {
            server.port = free_port();
            match server.spawn() {
                Ok(run) => {
                    server.run = Some(run);
                    return server;
                }
                // Someone took the port after free_port released it.
                Err(log) if log.contains("address already in use") => last_error = log,
                Err(log) => panic!("{}", server.failure("did not start", &log)),
            }
        }
        panic!(
            "{}",
            server.failure(
                &format!("found no free port in {PORT_ATTEMPTS} attempts"),
                &last_error
            )
        )
    }

    /// `nats://127.0.0.1:<port>` (its own address in a namespace).
    pub fn url(&self) -> String {
        format!("nats://{}:{}", self.host, self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// JetStream's store directory; it outlives restarts.
    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// The running server's pid, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.run.as_ref().map(|r| r.child.id())
    }

    /// What the running server has logged so far (empty when stopped).
    pub fn log(&self) -> String {
        self.run
            .as_ref()
            .map(|r| r.log.state.lock().unwrap().text.clone())
            .unwrap_or_default()
    }

    /// Graceful shutdown: SIGTERM, then waits for the process to exit
    /// (SIGKILL, and a panic, if it takes longer than 20 s).
    pub fn stop(&mut self) {
        let Some(mut run) = self.run.take() else {
            return;
        };
        let pid = Pid::from_raw(run.child.id() as i32).expect("a child's pid is positive");
        // ESRCH cannot happen: the child is not reaped until we wait below.
        kill_process(pid, Signal::TERM).expect("SIGTERM nats-server");
        if !run.log.wait_for(STOP_TIMEOUT, |s| s.closed) {
            let _ = run.child.kill();
            let _ = run.child.wait();
            let log = run.log.state.lock().unwrap().text.clone();
            panic!(
                "{}",
                self.failure("ignored SIGTERM for 20 s; killed it", &log)
            );
        }
        run.child.wait().expect("wait for nats-server");
    }

    /// Crash: SIGKILL (no shutdown, no flush), then reaps the process.
    pub fn kill(&mut self) {
        if let Some(mut run) = self.run.take() {
            run.child.kill().expect("SIGKILL nats-server");
            run.child.wait().expect("wait for nats-server");
        }
    }

    /// Freezes the server (SIGSTOP), like a long GC pause or a disk stall:
    /// connections stay open, nothing is answered until
    /// [`NatsServer::resume`]. Resume it before stopping or restarting it.
    pub fn pause(&self) {
        self.signal(Signal::STOP);
    }

    /// Lets a paused server run again (SIGCONT).
    pub fn resume(&self) {
        self.signal(Signal::CONT);
    }

    fn signal(&self, signal: Signal) {
        let run = self.run.as_ref().expect("nats-server is running");
        let pid = Pid::from_raw(run.child.id() as i32).expect("a child's pid is positive");
        // ESRCH cannot happen: the child is not reaped until stop or kill.
        kill_process(pid, signal).expect("signal nats-server");
    }

    /// Starts the server again on the same port with the same store and
    /// config, stopping it gracefully first if it still runs. Panics if
    /// another process took the port meanwhile (unlikely on loopback).
    pub fn restart(&mut self) {
        self.stop();
        match self.spawn() {
            Ok(run) => self.run = Some(run),
            Err(log) => panic!("{}", self.failure("did not restart", &log)),
        }
    }

    /// Spawns the server on `self.port` and waits until it is ready. On
    /// failure the child is gone and the error is its log.
    fn spawn(&self) -> Result<Running, String> {
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut cmd = Command::new("ip");
                // `ip netns exec` execs the server: the child is the server.
                cmd.args(["netns", "exec", ns]).arg(&self.bin);
                cmd
            }
            None => Command::new(&self.bin),
        };
        cmd.args(["-js", "-a", &self.host, "-p"])
            .arg(self.port.to_string())
            .arg("-sd")
            .arg(self.store_dir());
        if let Some(config) = &self.config {
            cmd.arg("-c").arg(config);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {}: {e}; run scripts/setup.sh to install nats-server, \
                     or point ALLOT_NATS_SERVER at one",
                    self.bin.display()
                )
            });
        let log = Arc::new(Log::default());
        let stderr = child.stderr.take().expect("stderr is piped");
        let reader = Arc::clone(&log);
        std::thread::spawn(move || reader.fill(stderr));

        if log.wait_for(READY_TIMEOUT, |s| s.ready || s.closed) && !log.is_closed() {
            return Ok(Running { child, log });
        }
        let timed_out = !log.is_closed();
        let _ = child.kill();
        let status = child.wait();
        let mut text = log.state.lock().unwrap().text.clone();
        if timed_out {
            let _ = write!(text, "(not ready after {READY_TIMEOUT:?}; killed)");
        } else if let Ok(status) = status {
            let _ = write!(text, "(exited: {status})");
        }
        Err(text)
    }

    fn failure(&self, what: &str, log: &str) -> String {
        format!(
            "nats-server {} on {}:{} {what}. Its log:\n{log}",
            self.bin.display(),
            self.host,
            self.port
        )
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        // Killed, not stopped: a panicking test should not wait on a
        // graceful shutdown, and the store is deleted right after anyway.
        if let Some(mut run) = self.run.take() {
            let _ = run.child.kill();
            let _ = run.child.wait();
        }
    }
}

impl Log {
    /// Reads the server's stderr line by line until EOF.
    fn fill(&self, stderr: ChildStderr) {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let mut s = self.state.lock().unwrap();
            s.ready |= line.contains(READY_LINE);
            s.text.push_str(&line);
            s.text.push('\n');
            self.changed.notify_all();
        }
        self.state.lock().unwrap().closed = true;
        self.changed.notify_all();
    }

    /// Waits until `done` holds, for at most `timeout`; says whether it did.
    fn wait_for(&self, timeout: Duration, done: impl Fn(&LogState) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut s = self.state.lock().unwrap();
        while !done(&s) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            s = self.changed.wait_timeout(s, left).unwrap().0;
        }
        true
    }

    fn is_closed(&self) -> bool {
        self.state.lock().unwrap().closed
    }
}

/// The nats-server binary to run (see the module docs for the order).
fn binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("ALLOT_NATS_SERVER").filter(|v| !v.is_empty()) {
        return PathBuf::from(bin);
    }
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/bin/nats-server");
    if tools.is_file() {
        return tools;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no nats-server found (not in ALLOT_NATS_SERVER, {}, or PATH): \
                 run scripts/setup.sh to install the pinned version",
                tools.display()
            )
        })
}

/// A loopback port nobody listened on a moment ago. Another process may
/// take it before the server binds it; `launch` retries then.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A JetStream cluster of nats-server processes on loopback, each with its
/// own client port, cluster port and store, routed to the others.
pub struct NatsCluster {
    pub nodes: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts `n` nodes named `n0..`; returns once each accepts clients
    /// (JetStream's meta leader may take a moment more: callers retry).
    pub fn start(n: usize) -> NatsCluster {
        let cluster_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let nodes = (0..n)
            .map(|i| {
                let routes: Vec<String> = cluster_ports
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, p)| format!("nats-route://127.0.0.1:{p}"))
                    .collect();
                let config = format!(
                    "server_name: n{i}\ncluster {{\n  name: allot\n  listen: 127.0.0.1:{}\n  routes: [{}]\n}}\n",
                    cluster_ports[i],
                    routes.join(", ")
                );
                NatsServer::start_with_config(&config)
            })
            .collect();
        NatsCluster { nodes }
    }

    /// Every node's URL, comma-separated (a client's server list).
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }
}
