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
    /// Starts `allot serve` against `url` with the simulated fulfiller,
    /// `extra` flags appended (they may repeat a flag to override it).
    pub fn serve(url: &str, config: &ConfigFile, extra: &[&str]) -> AllotProcess {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_allot"));
        cmd.arg("serve")
            .arg("--nats-url")
            .arg(url)
            .arg("--config")
            .arg(config.path())
            .args(["--fulfiller", "simulated"])
            .args(extra)
            .env("ALLOT_LOG", "info,async_nats=warn")
            .env("NO_COLOR", "1")
            .env_remove("ALLOT_LOG_FORMAT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
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
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl InProcess {
    pub fn serve(url: &str, config: &Config, fulfiller: FulfillerChoice) -> InProcess {
        let options = ServeOptions {
            nats: NatsOptions {
                url: url.to_owned(),
                name: Some("allot-test".into()),
                ..Default::default()
            },
            fulfiller,
            runtime: RuntimeConfig::default(),
            max_deliver: 20,
            ack_wait: Duration::from_secs(5),
        };
        let stop = CancellationToken::new();
        let task = tokio::spawn(allot::service::serve(config.clone(), options, stop.clone()));
        InProcess {
            stop,
            task: Some(task),
        }
    }

    /// Cancels, waits for the drain, and returns what `serve` returned.
    pub async fn stop(mut self) -> anyhow::Result<()> {
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
