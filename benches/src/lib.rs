//! What the report programs (`report` and `edge`) share: where the binaries they start are,
//! the processes they start, stopped when a run fails, and the wait until a server answers;
//! their tokio runtime; readings of `/proc`, once or as the most over a run; a quantile; the
//! formatting of counts and of the machine in a report's heading.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The processes this run started and has not stopped yet, stopped by [`fail`] (which exits
/// without running their `Drop`).
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Prints `PROGRAM: message`, stops every process the run still has, and exits with 1.
pub fn fail(message: impl std::fmt::Display) -> ! {
    let program = std::env::args()
        .next()
        .and_then(|p| {
            std::path::Path::new(&p).file_name().map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "bench".into());
    eprintln!("{program}: {message}");
    let children = CHILDREN.lock().map(|c| c.clone()).unwrap_or_default();
    for pid in children {
        let _ = Command::new("kill").arg(pid.to_string()).status();
    }
    std::process::exit(1)
}

/// Counts `pid` among the processes [`fail`] stops.
pub fn track(pid: u32) {
    if let Ok(mut children) = CHILDREN.lock() {
        children.push(pid);
    }
}

/// No longer counts `pid` among the processes [`fail`] stops (it has exited).
pub fn untrack(pid: u32) {
    if let Ok(mut children) = CHILDREN.lock() {
        children.retain(|&p| p != pid);
    }
}

/// A started process, stopped by [`fail`] and killed when dropped.
pub struct Process {
    child: Child,
}

impl Process {
    /// Spawns `command`; a process that cannot start fails the run.
    pub fn spawn(command: &mut Command) -> Process {
        let child = command.spawn().unwrap_or_else(|e| {
            fail(format!("cannot start {}: {e}", command.get_program().to_string_lossy()))
        });
        track(child.id());
        Process { child }
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Kills it (SIGKILL) and waits for it; nothing happens the second time.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        untrack(self.child.id());
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// 32 random bytes, base64: a key-encryption key for the instances of one run, which share
/// their stored keys under it.
pub fn key_encryption_key() -> String {
    use base64::Engine as _;
    let mut bytes = [0_u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .unwrap_or_else(|e| fail(format!("/dev/urandom: {e}")));
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Where a process of a run writes its output: with `BENCH_LOG_DIR` set, to the file
/// `DIR/NAME.log` (appended: a restarted process goes on writing there), for looking into a
/// failed run; otherwise nowhere. Applied to `command`'s standard output and error.
pub fn log_output<'a>(command: &'a mut Command, name: &str) -> &'a mut Command {
    let Some(dir) = std::env::var_os("BENCH_LOG_DIR") else {
        return command.stdout(Stdio::null()).stderr(Stdio::null());
    };
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| fail(format!("{}: {e}", dir.display())));
    let path = dir.join(format!("{name}.log"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| fail(format!("{}: {e}", path.display())));
    let copy = file.try_clone().unwrap_or_else(|e| fail(format!("{}: {e}", path.display())));
    command.stdout(copy).stderr(file)
}

/// Where the release binaries are: `$CARGO_TARGET_DIR/release`, else `target/release`.
pub fn release_dir() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()))
        .join("release")
}

/// A tokio runtime of `workers` threads; one that cannot be built fails the run.
pub fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(format!("a tokio runtime: {e}")))
}

/// Asks `ready` every 100 ms until it says yes; fails the run with `late()` after 30 s.
pub fn wait_until_ready(mut ready: impl FnMut() -> bool, late: impl FnOnce() -> String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        if Instant::now() > deadline {
            fail(late());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The resident memory of a process now, in MB.
pub fn rss_mb(pid: u32) -> f64 {
    proc_status(pid, "VmRSS:").map_or(f64::NAN, |kb| kb / 1_000.0)
}

/// The peak resident memory of a process, in MB.
pub fn peak_rss_mb(pid: u32) -> f64 {
    proc_status(pid, "VmHWM:").map_or(f64::NAN, |kb| kb / 1_000.0)
}

/// The most a reading reached, read every so often on a thread of its own until stopped.
pub struct Most {
    sampling: Arc<AtomicBool>,
    thread: JoinHandle<u64>,
}

impl Most {
    /// Starts reading `read` every `every`.
    pub fn sample(every: Duration, read: impl Fn() -> u64 + Send + 'static) -> Most {
        let sampling = Arc::new(AtomicBool::new(true));
        let thread = {
            let sampling = sampling.clone();
            std::thread::spawn(move || {
                let mut most = 0;
                while sampling.load(Ordering::Relaxed) {
                    most = most.max(read());
                    std::thread::sleep(every);
                }
                most
            })
        };
        Most { sampling, thread }
    }

    /// Stops reading: the most read.
    pub fn stop(self) -> u64 {
        self.sampling.store(false, Ordering::Relaxed);
        self.thread.join().unwrap_or(0)
    }
}

/// What a report says of the machine: processor, cores, memory, kernel, load at the start.
pub fn machine() -> String {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown processor".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory_kb: f64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let kernel = read("/proc/sys/kernel/osrelease").trim().to_owned();
    format!(
        "{cpu}, {cores} cores, {:.0} GiB, Linux {kernel}, load average {} at the start",
        memory_kb / 1_048_576.0,
        load_average()
    )
}

/// The load average now: over 1, 5 and 15 minutes (`/proc/loadavg`).
pub fn load_average() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// A number of `/proc/PID/status`: the first word after `field`.
pub fn proc_status(pid: u32, field: &str) -> Option<f64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
}

/// `q` (0 to 1) of sorted samples: the smallest sample at or above that share of them.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// A count with thousands separators: 100,000.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_samples() {
        let sorted = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&sorted, 0.5), 2.0);
        assert_eq!(quantile(&sorted, 0.99), 4.0);
        assert_eq!(quantile(&sorted, 0.0), 1.0);
        assert!(quantile(&[], 0.5).is_nan());
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(100_000), "100,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
