//! allot as a child process (its log collected, SIGKILLed or SIGTERMed by
//! pid, killed on drop) or as `allot::service::serve` in-process.

use std::io::{BufRead, BufReader};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::process::{kill_process, Pid, Signal};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use allot::config::Config;
use allot::runtime::RuntimeConfig;
use allot::service::{FulfillerChoice, NatsOptions, ServeOptions};

use super::{ConfigFile, POLL};

/// `allot serve` as a child process, its stderr (the log) collected.
pub struct AllotProcess {
    child: Option<Child>,
    log: Arc<Mutex<String>>,
}

impl AllotProcess {
    /// Starts `allot serve` against `url` with the simulated fulfiller
    /// (unless `extra` names `--fulfiller`), `extra` flags appended.
    pub fn serve(url: &str, config: &ConfigFile, extra: &[&str]) -> AllotProcess {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_allot"));
        cmd.arg("serve")
            .arg("--nats-url")
            .arg(url)
            .arg("--config")
            .arg(config.path())
            .args(["--http-bind", "127.0.0.1:0", "--ops-bind", "127.0.0.1:0"])
            .args(extra)
            .env("ALLOT__LOG__FILTER", "info,async_nats=warn")
            .env("ALLOT__LOG__FORMAT", "pretty")
            .env("NO_COLOR", "1")
            .env_remove("ALLOT_ENV")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // clap refuses a flag given twice: only one --fulfiller.
        if !extra.contains(&"--fulfiller") {
            cmd.args(["--fulfiller", "simulated"]);
        }
        let mut child = cmd.spawn().expect("spawn the allot binary");
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
        AllotProcess {
            child: Some(child),
            log,
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The last `n` lines of the log so far (a long run's log is large).
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log.lock().unwrap();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Lines of the log so far containing `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Waits until `needle` was logged `times` times; false at the timeout.
    pub async fn wait_logged(&self, needle: &str, times: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.count(needle) < times {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(POLL).await;
        }
        true
    }

    /// Where `what` (`"HTTP API"`, `"operations endpoints"`) listens, from
    /// its "listening" log line, once logged (within `timeout`).
    pub async fn bound(&self, what: &str, timeout: Duration) -> String {
        let needle = format!("{what} listening");
        assert!(
            self.wait_logged(&needle, 1, timeout).await,
            "allot logged no {needle:?} in {timeout:?}; its log:\n{}",
            self.log()
        );
        let log = self.log();
        let line = log.lines().find(|l| l.contains(&needle)).expect("logged");
        let at = line.find("bound=").expect("the line names bound=") + "bound=".len();
        line[at..]
            .split_whitespace()
            .next()
            .expect("an address")
            .to_owned()
    }

    /// Its process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process runs: started, not killed, not exited.
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Crash: SIGKILL, then reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL allot");
            child.wait().expect("reap allot");
        }
    }

    /// Graceful stop: SIGTERM, then waits for the exit (it drains first).
    pub async fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("allot is running");
        let pid = Pid::from_raw(child.id() as i32).expect("a child's pid is positive");
        kill_process(pid, Signal::TERM).expect("SIGTERM allot");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("poll allot") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "allot ignored SIGTERM for {timeout:?}; killed it. Its log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for AllotProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `allot::service::serve` on the test's runtime, stopped on drop.
pub struct InProcess {
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<(), allot::service::ServeError>>>,
    listening: Arc<std::sync::OnceLock<allot::adapters::http::Listening>>,
}

impl InProcess {
    pub fn serve(url: &str, config: &Config, fulfiller: FulfillerChoice) -> InProcess {
        Self::serve_with(url, config, fulfiller, None)
    }

    /// Serves with `/metrics` rendering `metrics`; [`InProcess::listening`]
    /// tells where the HTTP servers are.
    pub fn serve_with(
        url: &str,
        config: &Config,
        fulfiller: FulfillerChoice,
        metrics: Option<allot::adapters::http::RenderMetrics>,
    ) -> InProcess {
        let mut config = config.clone();
        config.http.bind = "127.0.0.1:0".parse().unwrap();
        config.http.ops_bind = Some("127.0.0.1:0".parse().unwrap());
        let mut options = ServeOptions::from_config(&config, 7);
        options.nats = NatsOptions {
            url: url.to_owned(),
            name: Some("allot-test".into()),
            ..Default::default()
        };
        options.fulfiller = fulfiller;
        options.runtime = RuntimeConfig::default();
        options.ack_wait = Duration::from_secs(5);
        options.metrics = metrics;
        let listening = options.listening.clone();
        let stop = CancellationToken::new();
        let task = tokio::spawn(allot::service::serve(config, options, stop.clone()));
        InProcess {
            stop,
            task: Some(task),
            listening,
        }
    }

    /// Where the HTTP servers listen, once they do (within 30 s).
    pub async fn listening(&self) -> allot::adapters::http::Listening {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(l) = self.listening.get() {
                return *l;
            }
            assert!(Instant::now() < deadline, "allot did not start listening");
            tokio::time::sleep(POLL).await;
        }
    }

    /// Cancels, waits for the drain, and returns what `serve` returned.
    pub async fn stop(mut self) -> Result<(), allot::service::ServeError> {
        self.stop.cancel();
        let task = self.task.take().expect("stopped once");
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("allot drains within 30 s")
            .expect("the serve task does not panic")
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
