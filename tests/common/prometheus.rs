//! A real Prometheus for one test: the `prometheus` binary with a config
//! the test writes into a temp dir (with its TSDB), on a free loopback
//! port, stopped by its pid (SIGTERM, then SIGKILL) on drop; and its HTTP
//! API. `promtool` runs beside it.
//!
//! The binaries are `$ALLOT_PROMETHEUS` / `$ALLOT_PROMTOOL` if set, else
//! `prometheus` / `promtool` on PATH (`scripts/setup-prometheus.sh`, run by
//! `scripts/setup.sh`, installs Debian's package). When they are missing,
//! [`tools_or_skip`] says so on the terminal and the test returns early,
//! unless `CI` is set: in CI a missing Prometheus fails the test.

use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::process::{kill_process, Pid, Signal};
use serde_json::Value;
use tempfile::TempDir;
use tokio::time::Instant;

/// The two binaries.
pub struct Tools {
    pub prometheus: PathBuf,
    pub promtool: PathBuf,
}

fn find(env: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// The tools, or `None` after telling the terminal (past the test
/// harness's capture) why `test` is skipped. Under `CI` it panics instead.
pub fn tools_or_skip(test: &str) -> Option<Tools> {
    let prometheus = find("ALLOT_PROMETHEUS", "prometheus");
    let promtool = find("ALLOT_PROMTOOL", "promtool");
    if let (Some(prometheus), Some(promtool)) = (prometheus, promtool) {
        return Some(Tools {
            prometheus,
            promtool,
        });
    }
    let why = "prometheus and promtool are not both on PATH (Debian: apt-get install \
               prometheus; scripts/setup-prometheus.sh tries that and says why it could not)";
    assert!(std::env::var_os("CI").is_none(), "{test}: {why}");
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
    None
}

/// A running Prometheus.
pub struct Prometheus {
    child: Option<Child>,
    log: Arc<Mutex<String>>,
    base: String,
    http: reqwest::Client,
    _dir: TempDir,
}

impl Prometheus {
    /// Starts `bin` with `config` (prometheus.yml text) and `files` (name,
    /// text) beside it, on a free loopback port; returns once it is ready.
    pub async fn start(bin: &Path, config: &str, files: &[(&str, String)]) -> Prometheus {
        let dir = tempfile::Builder::new()
            .prefix("allot-prometheus-")
            .tempdir()
            .expect("a temp dir for Prometheus");
        std::fs::write(dir.path().join("prometheus.yml"), config).expect("write prometheus.yml");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write a file beside it");
        }
        let port = super::nats::free_port();
        let mut child = Command::new(bin)
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        let prometheus = Prometheus {
            child: Some(child),
            log,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            _dir: dir,
        };
        prometheus.wait_ready().await;
        prometheus
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = self.http.get(format!("{}/-/ready", self.base)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus not ready in 30 s; its log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// GET `path` of the HTTP API with `query` parameters: the `data` of a
    /// `"status": "success"` answer, or the error it gave.
    pub async fn api(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, String> {
        let url = reqwest::Url::parse_with_params(&format!("{}{path}", self.base), query)
            .map_err(|e| format!("{path}: {e}"))?;
        let answer = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        let body: Value = answer
            .json()
            .await
            .map_err(|e| format!("GET {path}: not JSON: {e}"))?;
        match body["status"].as_str() {
            Some("success") => Ok(body["data"].clone()),
            _ => Err(format!("{}: {}", body["errorType"], body["error"])),
        }
    }

    /// An instant query at the current time: its result, or the error.
    pub async fn query(&self, promql: &str) -> Result<Value, String> {
        self.api("/api/v1/query", &[("query", promql)])
            .await
            .map(|data| data["result"].clone())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = Pid::from_raw(child.id() as i32) {
            let _ = kill_process(pid, Signal::TERM);
        }
        for _ in 0..100 {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Runs `promtool check metrics` on `exposition`: its report on failure.
pub fn check_metrics(promtool: &Path, exposition: &str) -> Result<(), String> {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", promtool.display()));
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(exposition.as_bytes())
        .expect("write the exposition to promtool");
    let out = child.wait_with_output().expect("promtool runs");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
