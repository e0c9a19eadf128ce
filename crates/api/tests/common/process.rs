//! The `jwt-auth` binary as a child process, for the suites that test it as operators run it:
//! a command with a clean environment, and a running `jwt-auth serve` on an ephemeral port of
//! 127.0.0.1 whose log is collected, stopped with SIGTERM or killed with SIGKILL.

#![allow(dead_code)] // each suite uses its own part of this module

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_jwt-auth");

/// A `jwt-auth` command in `dir`, with no settings but those given (the environment of the
/// test run is not inherited, so a developer's own `DATABASE_URL` cannot leak in).
pub fn jwt_auth(dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BIN);
    command.current_dir(dir).env_clear().envs(env.iter().copied());
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    command
}

/// A running `jwt-auth serve`; killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `jwt-auth serve` on an ephemeral port of 127.0.0.1 and waits until it is ready.
    pub async fn start(dir: &Path, env: &[(&str, &str)]) -> Server {
        let server = Self::listening(dir, env);
        server.wait_ready().await;
        server
    }

    /// Starts `jwt-auth serve` on an ephemeral port of 127.0.0.1 and waits until it listens
    /// (ready or not).
    #[allow(dead_code)] // not every test binary starts a server that cannot be ready
    pub fn listening(dir: &Path, env: &[(&str, &str)]) -> Server {
        let mut env = env.to_vec();
        // No RUST_LOG: the default filter is part of what is tested.
        env.extend([("BIND_ADDRESS", "127.0.0.1:0"), ("LOG_FORMAT", "json")]);
        let mut child = jwt_auth(dir, &env)
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("jwt-auth starts");
        let log = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        for (stream, addr_tx) in [
            (Box::new(stdout) as Box<dyn std::io::Read + Send>, Some(addr_tx)),
            (Box::new(stderr), None),
        ] {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(tx) = &addr_tx
                        && let Ok(event) = serde_json::from_str::<Value>(&line)
                        && event["message"] == "jwt-auth listening"
                        && let Some(addr) = event["address"].as_str()
                    {
                        let _ = tx.send(addr.parse::<SocketAddr>().expect("an address"));
                    }
                    let mut log = log.lock().expect("log");
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        let addr = match addr_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("the server did not start; log:\n{}", log.lock().expect("log"));
            }
        };
        Server { child, addr, log }
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Everything the process wrote so far, stdout and stderr.
    pub fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }

    /// Waits until `/ready` answers 200, for at most 30 s.
    pub async fn wait_ready(&self) {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .no_proxy()
            .build()
            .expect("an HTTP client");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = client.get(self.url("/ready")).send().await
                && response.status() == StatusCode::OK
            {
                return;
            }
            assert!(Instant::now() < deadline, "not ready in 30 s; log:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the process is still the one that was started (it has not exited).
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("the server can be waited on").is_none()
    }

    /// Sends SIGTERM and waits for the process to exit; returns its status and its log.
    pub fn terminate(mut self) -> (ExitStatus, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // Let the reader threads drain what the process wrote last.
                std::thread::sleep(Duration::from_millis(100));
                return (status, self.log());
            }
            assert!(Instant::now() < deadline, "no exit 30 s after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process with SIGKILL (what `Child::kill` sends on Unix, as `kill -KILL PID`
    /// would): no signal handler runs, nothing is flushed or closed by the server itself.
    /// Returns its log.
    pub fn sigkill(mut self) -> String {
        self.child.kill().expect("SIGKILL is sent");
        let status = self.child.wait().expect("the server is reaped");
        assert_eq!(status.signal(), Some(9), "the server died of SIGKILL: {status:?}");
        self.log()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
