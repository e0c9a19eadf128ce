//! A NATS server with JetStream of the test's own: `nats-server` on a free port of
//! 127.0.0.1, its storage in a temporary folder, killed when the value goes. A test may kill
//! it and start it again on the same port and storage, as an outage.
//!
//! When `nats-server` is not installed, the test fails if `CI` is set and is otherwise
//! skipped with a loud line on stderr.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running (or killed) NATS server.
pub struct NatsServer {
    port: u16,
    storage: tempfile::TempDir,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts one; `None` if `nats-server` is missing and `CI` is unset.
    pub fn start() -> Option<NatsServer> {
        if Command::new("nats-server").arg("--version").output().is_err() {
            if std::env::var_os("CI").is_some() {
                panic!("nats-server is not installed and CI is set");
            }
            eprintln!(
                "SKIPPED: nats-server is not installed (Debian: apt-get install nats-server)"
            );
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let storage = tempfile::tempdir().expect("a storage folder");
        let mut server = NatsServer { port, storage, child: None };
        server.resume();
        Some(server)
    }

    /// The client URL: `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server at once (SIGKILL), as a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again, on the same port and storage, and waits until it accepts
    /// connections.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-js", "-sd"])
            .arg(self.storage.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
