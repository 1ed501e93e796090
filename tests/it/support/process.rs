//! `imagegate serve` as a child process, its JSON log lines read as they
//! come; killed if the test ends first.

#![allow(unreachable_pub, clippy::unwrap_used)]

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::server::DEADLINE;

/// The binary under test; `IMAGEGATE_TEST_BIN` points the tests at another
/// build (a release binary, say).
pub fn binary() -> String {
    std::env::var("IMAGEGATE_TEST_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_imagegate").to_owned())
}

/// The child process, killed if the test fails before it exits.
pub struct Serve {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Serve {
    pub fn spawn(args: &[&str]) -> Serve {
        let mut child = Command::new(binary())
            .arg("serve")
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("IMAGEGATE_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn imagegate");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Serve {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The next JSON log line whose message is `message`.
    pub fn wait_for_log(&mut self, message: &str) -> serde_json::Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!("no {message:?} log line; saw:\n{}", self.seen.join("\n"))
            });
            self.seen.push(line.clone());
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["message"] == message
            {
                return v;
            }
        }
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "imagegate did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
