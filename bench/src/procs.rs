//! The processes a run measures: a nats-server with a fresh temp store and
//! `allot serve`, each started here and stopped by its own PID, plus their
//! CPU time and peak memory read from `/proc`.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// A free loopback TCP port (bound, then released for the child to take).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// CPU time and peak resident memory of one process, from `/proc/<pid>`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// User plus system CPU seconds since the process started.
    pub cpu_secs: f64,
    /// Peak resident set (VmHWM), in MiB.
    pub peak_rss_mib: f64,
}

/// Reads `pid`'s CPU seconds (utime + stime) and VmHWM.
pub fn usage(pid: u32) -> anyhow::Result<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; fields after it are plain.
    let after = stat
        .rsplit_once(')')
        .with_context(|| format!("/proc/{pid}/stat has no ')': {stat:?}"))?
        .1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after the name.
    let ticks = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .with_context(|| format!("/proc/{pid}/stat: field {} missing", i + 3))?
            .parse()
            .with_context(|| format!("/proc/{pid}/stat: field {} not a number", i + 3))
    };
    let hz = rustix::param::clock_ticks_per_second() as f64;
    let cpu_secs = (ticks(11)? + ticks(12)?) as f64 / hz;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("/proc/{pid}/status has no VmHWM line"))?;
    Ok(Usage {
        cpu_secs,
        peak_rss_mib: kib / 1024.0,
    })
}

/// A child process this program started; stopped (SIGTERM, then SIGKILL
/// after 15 s) when dropped.
pub struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &'static str, mut command: Command, log: PathBuf) -> anyhow::Result<Proc> {
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {name}: {command:?}"))?;
        Ok(Proc { name, child, log })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn usage(&self) -> anyhow::Result<Usage> {
        usage(self.pid())
    }

    /// Waits until the log holds `needle`, failing if the process exits.
    fn wait_for_log(&mut self, needle: &str, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if std::fs::read_to_string(&self.log)?.contains(needle) {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited ({status}) before it was ready; log {}",
                    self.name,
                    self.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "{} not ready after {within:?}; log {}",
            self.name,
            self.log.display()
        )
    }

    /// Stops the process: SIGTERM, then SIGKILL if it lingers.
    pub fn stop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// When nats-server fsyncs its JetStream store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum NatsSync {
    /// The server's default: `sync_interval` 2 min, so a publish ack means
    /// written to the OS, not fsynced.
    Default,
    /// `jetstream { sync_interval: always }`: every write is fsynced before
    /// it is acknowledged.
    Always,
}

/// A nats-server with JetStream on a free loopback port and a temp store,
/// or a cluster of several on loopback (`peers`: the nodes after the
/// first; `url` names them all).
pub struct Nats {
    pub url: String,
    pub proc: Proc,
    pub peers: Vec<Proc>,
    _store: tempfile::TempDir,
}

/// A temp dir for nats stores and logs, kept (and named) when
/// `ALLOT_BENCH_KEEP` is set: for a run to look into, the store, the
/// nats-server logs and allot.log stay.
fn temp_store() -> anyhow::Result<tempfile::TempDir> {
    let mut store = tempfile::tempdir().context("creating a temp dir for the nats store")?;
    if std::env::var_os("ALLOT_BENCH_KEEP").is_some() {
        store.disable_cleanup(true);
        eprintln!("keeping {}", store.path().display());
    }
    Ok(store)
}

/// The JetStream block of a node's config.
fn jetstream_block(js: &Path, sync: NatsSync) -> String {
    let sync = match sync {
        NatsSync::Default => "",
        NatsSync::Always => "\n  sync_interval: always",
    };
    format!(
        "jetstream {{\n  store_dir: {:?}{sync}\n}}\n",
        js.display().to_string()
    )
}

impl Nats {
    /// One server (`nodes` 1) or an R3-capable cluster of `nodes` on
    /// loopback, ready once its JetStream meta leader is elected.
    pub fn start_nodes(binary: &Path, sync: NatsSync, nodes: usize) -> anyhow::Result<Nats> {
        if nodes <= 1 {
            return Nats::start(binary, sync);
        }
        let store = temp_store()?;
        let ports: Vec<(u16, u16)> = (0..nodes)
            .map(|_| Ok((free_port()?, free_port()?)))
            .collect::<anyhow::Result<_>>()?;
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, c)| format!("\"nats-route://127.0.0.1:{c}\""))
            .collect();
        let mut procs = Vec::new();
        for (i, (port, cport)) in ports.iter().enumerate() {
            let conf = store.path().join(format!("n{i}.conf"));
            let text = format!(
                "server_name: n{i}\nlisten: \"127.0.0.1:{port}\"\n{}cluster {{\n  name: bench\n  listen: \"127.0.0.1:{cport}\"\n  routes: [{}]\n}}\n",
                jetstream_block(&store.path().join(format!("js{i}")), sync),
                routes.join(", ")
            );
            std::fs::write(&conf, text).with_context(|| format!("writing {}", conf.display()))?;
            let mut command = Command::new(binary);
            command.arg("-c").arg(&conf);
            let log = store.path().join(format!("nats-n{i}.log"));
            procs.push(Proc::spawn("nats-server", command, log)?);
        }
        for p in &mut procs {
            p.wait_for_log("metadata leader", Duration::from_secs(60))?;
        }
        let url = ports
            .iter()
            .map(|(p, _)| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut procs = procs.into_iter();
        Ok(Nats {
            url,
            proc: procs.next().expect("nodes > 1"),
            peers: procs.collect(),
            _store: store,
        })
    }

    /// CPU seconds of every node, summed; peak RSS of the largest.
    pub fn usage(&self) -> anyhow::Result<Usage> {
        let mut total = self.proc.usage()?;
        for p in &self.peers {
            let u = p.usage()?;
            total.cpu_secs += u.cpu_secs;
            total.peak_rss_mib = total.peak_rss_mib.max(u.peak_rss_mib);
        }
        Ok(total)
    }

    pub fn start(binary: &Path, sync: NatsSync) -> anyhow::Result<Nats> {
        let store = temp_store()?;
        let port = free_port()?;
        let mut command = Command::new(binary);
        command.args(["-a", "127.0.0.1", "-p", &port.to_string()]);
        let js = store.path().join("js");
        match sync {
            NatsSync::Default => {
                command.args(["-js", "-sd"]).arg(&js);
            }
            NatsSync::Always => {
                let conf = store.path().join("nats.conf");
                std::fs::write(&conf, jetstream_block(&js, sync))
                    .with_context(|| format!("writing {}", conf.display()))?;
                command.arg("-c").arg(conf);
            }
        }
        let mut proc = Proc::spawn("nats-server", command, store.path().join("nats.log"))?;
        proc.wait_for_log("Server is ready", Duration::from_secs(20))?;
        Ok(Nats {
            url: format!("nats://127.0.0.1:{port}"),
            proc,
            peers: Vec::new(),
            _store: store,
        })
    }

    pub fn log_dir(&self) -> &Path {
        self._store.path()
    }
}

/// How `allot serve` runs: its binary, config and simulated fulfiller.
#[derive(Debug, Clone)]
pub struct AllotSpec {
    pub binary: PathBuf,
    pub config: PathBuf,
    pub latency_p50: String,
    pub latency_p99: String,
    pub failure_rate: f64,
    /// Orders per published message (1: one each).
    pub batch: usize,
    /// nats-server nodes (1, or a loopback cluster with R3 streams).
    pub nats_nodes: usize,
}

/// Starts `allot serve` against `nats`, logging next to the nats store.
pub fn start_allot(spec: &AllotSpec, nats: &Nats) -> anyhow::Result<Proc> {
    let mut command = Command::new(&spec.binary);
    command
        .arg("serve")
        .arg("--nats-url")
        .arg(&nats.url)
        .arg("--config")
        .arg(&spec.config)
        .args(["--fulfiller", "simulated"])
        .args(["--latency-p50", &spec.latency_p50])
        .args(["--latency-p99", &spec.latency_p99])
        .args(["--failure-rate", &spec.failure_rate.to_string()])
        .args(if spec.nats_nodes > 1 {
            vec![
                "--set".to_owned(),
                format!("nats.replicas={}", spec.nats_nodes.min(3)),
            ]
        } else {
            Vec::new()
        })
        .env("RUST_LOG", "warn");
    Proc::spawn("allot serve", command, nats.log_dir().join("allot.log"))
}
