//! The servers under measurement (`jwt-auth serve`, bare `/verify`, the example resource
//! server) started on 127.0.0.1 and waited for, and the requests made with curl.

use std::path::Path;
use std::process::Command;

use jwt_auth_benches::{Process, fail, log_output, wait_until_ready};

/// A started server, stopped when dropped.
pub struct Server {
    pub process: Process,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

/// Starts `bin` (`jwt-auth` with `serve`) on `port` with `envs`, and waits until `path`
/// answers.
pub fn start(bin: &Path, envs: &[(&str, String)], port: u16, path: &str) -> Server {
    let mut command = Command::new(bin);
    if bin.ends_with("jwt-auth") {
        command.arg("serve");
    }
    command
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .env("BIND_ADDRESS", format!("127.0.0.1:{port}"));
    let name = bin.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let process = Process::spawn(log_output(&mut command, &format!("{name}-{port}")));
    let base = format!("http://127.0.0.1:{port}");
    let server = Server { process, base };
    let url = format!("{}{path}", server.base);
    wait_until_ready(
        || curl(&["-s", "-o", "/dev/null", "-w", "%{http_code}", &url]) != "000",
        || format!("{} did not answer in 30 s", bin.display()),
    );
    server
}

fn curl(args: &[&str]) -> String {
    let output =
        Command::new("curl").args(args).output().unwrap_or_else(|e| fail(format!("curl: {e}")));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// POSTs a JSON body with curl: the answer's body.
pub fn post_json(url: &str, body: &str) -> String {
    curl(&["-s", "-X", "POST", url, "-H", "content-type: application/json", "-d", body])
}
