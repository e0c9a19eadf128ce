//! A private PostgreSQL cluster for tests that stop and start the server: made with `initdb` in
//! a temporary directory, listening on 127.0.0.1 only, on a free port of its own, so that the
//! shared server is never touched. Stopped (and its files removed) when the value is dropped.
//! Shared by the store's and the server's outage tests.
//!
//! PostgreSQL refuses to run as root; when the tests do, the cluster runs as the `postgres`
//! user through `runuser`.

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;

pub struct Cluster {
    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub url: String,
    port: u16,
    bin: PathBuf,
    dir: tempfile::TempDir,
    running: bool,
}

impl Cluster {
    /// Makes and starts a cluster; `Err` says why it could not be (no PostgreSQL binaries,
    /// no `postgres` user, `initdb` or `pg_ctl` failed).
    pub fn create() -> Result<Self, String> {
        let bin = bin_dir().ok_or("no PostgreSQL binaries in /usr/lib/postgresql/*/bin")?;
        let dir = tempfile::tempdir().map_err(|e| format!("a temporary directory: {e}"))?;
        if running_as_root() {
            // The data directory must belong to the user the server runs as.
            run(Command::new("chown").arg("postgres:").arg(dir.path()))?;
        }
        let port = free_port()?;
        let mut cluster = Cluster {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            port,
            bin,
            dir,
            running: false,
        };
        let data = cluster.data_dir();
        run(cluster
            .command("initdb")
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "-D"])
            .arg(&data))?;
        cluster.try_start()?;
        Ok(cluster)
    }

    /// [`Cluster::create`] for a test: `None`, after a loud `SKIPPED` line, when no cluster
    /// can be made; but with `CI` set, that fails the test instead.
    pub fn for_test() -> Option<Self> {
        match Self::create() {
            Ok(cluster) => Some(cluster),
            Err(why) if std::env::var_os("CI").is_some() => {
                panic!("a private PostgreSQL cluster could not be made ({why}) and CI is set")
            }
            Err(why) => {
                eprintln!(
                    "SKIPPED: a private PostgreSQL cluster could not be made ({why}); install \
                     PostgreSQL's server binaries, or set CI=1 to make this a failure"
                );
                None
            }
        }
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(&mut self) {
        if let Err(why) = self.try_start() {
            panic!("the private PostgreSQL cluster did not start: {why}");
        }
    }

    fn try_start(&mut self) -> Result<(), String> {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories={} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        let started = run(self
            .command("pg_ctl")
            .args(["start", "-w", "-t", "30", "-D"])
            .arg(self.data_dir())
            .arg("-l")
            .arg(&log)
            .args(["-o", &options]));
        if let Err(why) = started {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("{why}\n{log}"));
        }
        self.running = true;
        Ok(())
    }

    /// Stops the server at once, as a crash or a lost host would: `pg_ctl stop -m immediate`
    /// (no shutdown checkpoint; the next start recovers).
    pub fn stop(&mut self) {
        if let Err(why) = self.pg_ctl_stop() {
            panic!("the private PostgreSQL cluster did not stop: {why}");
        }
        self.running = false;
    }

    fn pg_ctl_stop(&self) -> Result<(), String> {
        run(self
            .command("pg_ctl")
            .args(["stop", "-m", "immediate", "-w", "-t", "30", "-D"])
            .arg(self.data_dir()))
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// One of PostgreSQL's programs, run as `postgres` when the tests run as root.
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if running_as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.running
            && let Err(why) = self.pg_ctl_stop()
        {
            eprintln!("warning: the private PostgreSQL cluster did not stop: {why}");
        }
    }
}

/// The `bin` directory of the newest PostgreSQL installed.
fn bin_dir() -> Option<PathBuf> {
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .max()
        .map(|(_, bin)| bin)
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A port nobody listens on now (the cluster binds it a moment later).
fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("a free local port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| format!("a free local port: {e}"))
}

fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    let output = command.output().map_err(|e| format!("{shown}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{shown}: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}
