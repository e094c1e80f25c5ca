//! The client examples in `examples/` against a real allot (the binary,
//! `--fulfiller nats`, on a nats-server the test starts): `producer.py`
//! sends orders both ways, `worker.py` enacts them, and both events
//! consumers (`events_consumer.py`, `events_consumer.rs`) print every
//! decision exactly once across a crash between apply and ack and a
//! restart. The outcomes are checked against EVENTS read by the harness.
//! `cart.py` places the README's carts (held and confirmed over HTTP,
//! partial and published on an order subject).
//!
//! Python comes from `.tools/py`, made by `scripts/setup-python.sh`
//! (nats-py and msgpack, pinned); the test runs it and fails naming it if
//! it cannot.

#[path = "carts_running/mod.rs"]
mod carts_running;
mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::allot::{
    jetstream, one_warehouse, order_ids, partition, publish_all, wait_for_streams, AllotProcess,
    ConfigFile, Ledger, Outgoing,
};
use common::nats::NatsServer;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The venv's python, made (or checked) by `scripts/setup-python.sh`, once
/// per test binary: two tests making it at once on a fresh clone would
/// each remove and create the other's venv.
fn python() -> PathBuf {
    static PYTHON: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PYTHON.get_or_init(setup_python).clone()
}

fn setup_python() -> PathBuf {
    let out = Command::new(Path::new(ROOT).join("scripts/setup-python.sh"))
        .output()
        .expect("run scripts/setup-python.sh");
    assert!(
        out.status.success(),
        "scripts/setup-python.sh failed, so the Python examples cannot run (it needs python3 \
         with venv and pip, and network access to PyPI once):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Path::new(ROOT).join(".tools/py/bin/python")
}

/// Builds `examples/events_consumer.rs` (`cargo build --example`) and
/// returns the executable cargo reports.
fn rust_consumer() -> PathBuf {
    let mut cargo = Command::new(env!("CARGO"));
    // What cargo set for this test (CARGO_PKG_NAME, CARGO_MANIFEST_DIR,
    // ...) would make build scripts that watch them (ring's) run again,
    // rebuilding half the tree here and again on the next plain build.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let kept = ["CARGO_HOME", "CARGO_TARGET_DIR"].contains(&key.as_ref())
            || key.starts_with("CARGO_BUILD_")
            || key.starts_with("CARGO_NET_")
            || key.starts_with("CARGO_REGISTR");
        if (key.starts_with("CARGO_") && !kept) || key == "OUT_DIR" {
            cargo.env_remove(key.as_ref());
        }
    }
    let out = cargo
        .current_dir(ROOT)
        .args(["build", "--locked", "--example", "events_consumer"])
        .arg("--message-format=json")
        .stderr(Stdio::inherit())
        .output()
        .expect("run cargo build --example events_consumer");
    assert!(
        out.status.success(),
        "cargo build --example events_consumer failed"
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["target"]["name"] == "events_consumer")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo names the example's executable")
}

/// A long-running example (the worker) with its stdout collected, killed
/// by its pid on drop.
struct Background {
    child: Child,
    out: Arc<Mutex<String>>,
}

impl Background {
    fn spawn(cmd: &mut Command) -> Background {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn an example");
        let out = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&out);
        let stdout = child.stdout.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        Background { child, out }
    }

    fn output(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    async fn wait_for(&self, needle: &str, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.output().contains(needle) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {needle:?} within {timeout:?}; output:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("run an example")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// One events consumer: the Python or the Rust one, its own durable and
/// state file.
struct Consumer {
    program: Vec<PathBuf>,
    durable: &'static str,
    state: PathBuf,
    /// Every line it printed on stdout, over all its runs.
    printed: String,
}

impl Consumer {
    /// Runs it once; `extra` adds `--crash-after` and the like.
    fn run(&mut self, url: &str, extra: &[&str]) -> Output {
        let mut cmd = Command::new(&self.program[0]);
        cmd.args(&self.program[1..])
            .args(["--nats-url", url, "--durable", self.durable])
            .arg("--state")
            .arg(&self.state)
            .args(["--ack-wait", "2"])
            .args(extra);
        let out = run(&mut cmd);
        self.printed.push_str(&text(&out.stdout));
        out
    }

    /// The decisions it printed, by order id: `<type> [<detail>]` each.
    fn decisions(&self) -> BTreeMap<String, Vec<String>> {
        let mut by_id: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for line in self.printed.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            assert!(
                fields.len() >= 4,
                "{}: unexpected line {line:?}",
                self.durable
            );
            by_id.entry(fields[3].to_owned()).or_default().push(
                fields[2..]
                    .iter()
                    .filter(|f| **f != fields[3])
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
        by_id
    }
}

/// producer.py sends 12 orders (half by `allot.submit`, half straight to
/// JetStream), worker.py enacts each once and refuses the two `bad-` ones;
/// both events consumers print each of the 12 decisions exactly once,
/// though each crashes after its first batch (unacked) and restarts twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn examples_decide_every_order_and_consumers_print_each_decision_once() {
    let python = python();
    let rust_consumer = rust_consumer();
    let examples = Path::new(ROOT).join("examples");
    let server = NatsServer::start();
    let url = server.url();
    let config = ConfigFile::new(&one_warehouse(2));
    let allot = AllotProcess::serve(&url, &config, &["--fulfiller", "nats"]);
    let js = jetstream(&url).await;
    assert!(
        allot
            .wait_logged("serving", 1, Duration::from_secs(20))
            .await,
        "allot did not start; its log:\n{}",
        allot.log()
    );
    wait_for_streams(&js, Duration::from_secs(20)).await;
    let mug = partition("ams", "MUG");
    publish_all(&js, &[Outgoing::set_stock(&config.config, &mug, 12)]).await;

    let worker = Background::spawn(Command::new(&python).arg(examples.join("worker.py")).args([
        "--nats-url",
        &url,
        "--warehouse",
        "ams",
        "--refuse-prefix",
        "bad-",
    ]));
    worker
        .wait_for("ready: allot.fulfil.ams", Duration::from_secs(10))
        .await;

    let produce = |prefix: &str, start: u32, count: u32| {
        let out = run(Command::new(&python)
            .arg(examples.join("producer.py"))
            .args(["--nats-url", &url, "--warehouse", "ams", "--sku", "MUG"])
            .args(["--prefix", prefix, "--start", &start.to_string()])
            .args(["--count", &count.to_string()]));
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "producer.py failed:\n{stdout}\n{}",
            text(&out.stderr)
        );
        let (submitted, published) = (
            stdout.matches("submitted ").count() as u32,
            stdout.matches("published ").count() as u32,
        );
        assert_eq!(
            (submitted, published),
            (count - count / 2, count / 2),
            "{stdout}"
        );
        assert!(!stdout.contains("duplicate=True"), "{stdout}");
    };
    let dir = tempfile::tempdir().expect("a temp dir for consumer state");
    let mut consumers = [
        Consumer {
            program: vec![python.clone(), examples.join("events_consumer.py")],
            durable: "example-py",
            state: dir.path().join("py.json"),
            printed: String::new(),
        },
        Consumer {
            program: vec![rust_consumer],
            durable: "example-rs",
            state: dir.path().join("rs.json"),
            printed: String::new(),
        },
    ];
    let mut ledger = Ledger::default();

    // First round: 6 orders, decided; each consumer crashes after applying
    // its first batch (not acked), then restarts and must skip it when it
    // comes again after the ack wait.
    produce("ex", 0, 6);
    let first = order_ids(&(0..6).map(|i| format!("ex-{i}")).collect::<Vec<_>>());
    assert_eq!(
        ledger
            .wait_decided(&js, &first, Duration::from_secs(20))
            .await,
        0,
        "first round undecided"
    );
    for c in &mut consumers {
        let crash = c.run(&url, &["--crash-after", "1", "--idle", "5"]);
        assert_eq!(
            crash.status.code(),
            Some(3),
            "{}: {}",
            c.durable,
            text(&crash.stderr)
        );
        let again = c.run(&url, &["--idle", "4"]);
        assert!(
            again.status.success(),
            "{}: {}",
            c.durable,
            text(&again.stderr)
        );
        assert!(
            text(&again.stderr).contains("skip "),
            "{}: the unacked batch came again and was not skipped by the chain rule: {}",
            c.durable,
            text(&again.stderr)
        );
    }

    // Second round: 4 more orders and 2 the worker refuses; each consumer
    // resumes where it stopped.
    produce("ex", 6, 4);
    produce("bad", 0, 2);
    let mut names: Vec<String> = (0..10).map(|i| format!("ex-{i}")).collect();
    names.extend(["bad-0".to_owned(), "bad-1".to_owned()]);
    let ids = order_ids(&names);
    assert_eq!(
        ledger
            .wait_decided(&js, &ids, Duration::from_secs(20))
            .await,
        0,
        "orders undecided"
    );
    let f = ledger.findings(&ids);
    assert!(f.clean(), "{f:?}");
    assert_eq!(f.confirmed, 10, "{f:?}");
    assert_eq!(f.rejected.get("fulfilment_failed"), Some(&2), "{f:?}");

    for c in &mut consumers {
        let last = c.run(&url, &["--idle", "2"]);
        assert!(
            last.status.success(),
            "{}: {}",
            c.durable,
            text(&last.stderr)
        );
        let decisions = c.decisions();
        for name in &names {
            let want = if name.starts_with("bad-") {
                "order_rejected fulfilment_failed"
            } else {
                "order_confirmed"
            };
            assert_eq!(
                decisions.get(name).map(Vec::as_slice),
                Some(&[want.to_owned()][..]),
                "{}: {name} printed otherwise than once; all it printed:\n{}",
                c.durable,
                c.printed
            );
        }
        assert_eq!(
            decisions.len(),
            names.len(),
            "{}:\n{}",
            c.durable,
            c.printed
        );
    }

    // The worker enacted each id once (allot asked each once here; a
    // repeat would be answered from its memory, printed `repeat`).
    let enacted = worker.output();
    for name in &names {
        assert_eq!(
            enacted.matches(&format!("enacted {name} ")).count(),
            1,
            "worker.py output:\n{enacted}"
        );
    }
}

/// examples/cart.py, the README's carts from a client's side: a held cart
/// through `allot.submit`, confirmed over HTTP once held; a partial cart
/// published on an order subject. Both are decided; the held one sold both
/// its lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cart_example_holds_confirms_and_publishes_carts() {
    let python = python();
    let r = carts_running::Running::start().await;
    for (w, s) in [
        ("ams", "MUG"),
        ("fra", "TEA"),
        ("ams", "CUP"),
        ("fra", "CUP"),
    ] {
        r.stock(w, s, 5).await;
    }
    let (url, api) = (r.url.clone(), format!("http://{}", r.at.api));
    let out = tokio::task::spawn_blocking(move || {
        run(Command::new(python)
            .arg(Path::new(ROOT).join("examples/cart.py"))
            .args(["--nats-url", &url, "--api", &api, "--hold", "30s"]))
    })
    .await
    .expect("cart.py ran");
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "cart.py failed:\n{stdout}\n{}",
        text(&out.stderr)
    );
    let views: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON view"))
        .collect();
    assert_eq!(views.len(), 2, "{stdout}");
    assert_eq!(views[0]["id"], "c-held");
    assert_eq!(views[0]["status"], "confirmed", "{stdout}");
    assert_eq!(views[0]["paid"], true, "{stdout}");
    assert_eq!(views[1]["id"], "c-partial");
    assert_eq!(views[1]["fill"], "partial", "{stdout}");
    assert_eq!(views[1]["final"], true, "{stdout}");
    // The held cart's units are sold: 2 MUG at ams, 1 TEA at fra.
    r.available("fra", "TEA", 4).await;
    r.allot.stop().await.expect("allot stops cleanly");
}
