//! NATS servers of the run's own: `nats-server` with JetStream on a free port of 127.0.0.1,
//! its storage in a fresh folder, stopped when dropped.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;

use jwt_auth_benches::{Process, fail, log_output, wait_until_ready};

/// A running NATS server.
pub struct Nats {
    _process: Process,
    pub url: String,
    storage: PathBuf,
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.storage);
    }
}

/// A free port of 127.0.0.1 (the listener is closed before the port is used).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| fail(format!("a free port: {e}")))
        .port()
}

/// Starts one, and waits until it accepts connections.
pub fn start(name: &str) -> Nats {
    let port = free_port();
    let storage =
        std::env::temp_dir().join(format!("jwt-auth-scale-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&storage);
    let mut command = Command::new("nats-server");
    command.args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"]).arg(&storage);
    let process = Process::spawn(log_output(&mut command, &format!("nats-{name}")));
    wait_until_ready(
        || TcpStream::connect(("127.0.0.1", port)).is_ok(),
        || "nats-server did not listen in 30 s".to_owned(),
    );
    Nats { _process: process, url: format!("nats://127.0.0.1:{port}"), storage }
}
