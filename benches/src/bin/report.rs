//! The load report: starts release builds of `jwt-auth serve` (SQLite, and PostgreSQL when
//! `REPORT_POSTGRES_URL` names a database) and of the bare Actix-web reference `bare_verify`
//! on 127.0.0.1, measures them with wrk, and writes `docs/performance.md` with the tables and
//! SVG plots. Run it through `benches/report.sh`, which builds the binaries first. Every run is
//! bounded in time and stays on 127.0.0.1; nothing here is typed by hand into the report.
//!
//! Measured, per backend:
//! - `GET /api/me` beside bare `GET /verify` (the same HS256 token) at 100, 1,000 and 10,000
//!   connections: requests per second, p99, errors;
//! - logins per second at 32 connections against the argon2 ceiling (one verification timed
//!   here with the server's parameters, times the cores);
//! - `/api/me` p99 at 100 connections idle and during a wrong-password flood;
//! - the server's peak RSS over the whole run.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use plotters::prelude::*;

const LEVELS: [u32; 3] = [100, 1_000, 10_000];
const PASSWORD: &str = "report load password";

struct Settings {
    bin_dir: PathBuf,
    out: PathBuf,
    duration: String,
    postgres: Option<String>,
}

/// One wrk run: requests per second, p99 in milliseconds, and the errors wrk reported.
#[derive(Clone, Default)]
struct Run {
    rps: f64,
    p99_ms: f64,
    errors: String,
}

struct Backend {
    name: &'static str,
    levels: Vec<(u32, Run, Run)>,
    logins: Run,
    ceiling: f64,
    idle_p99: f64,
    flood_p99: f64,
    flood_logins: f64,
    peak_rss_mb: f64,
}

fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("report: {message}");
    std::process::exit(1)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut settings = Settings {
        bin_dir: PathBuf::from(
            std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()),
        )
        .join("release"),
        out: PathBuf::from("docs"),
        duration: "8s".into(),
        postgres: std::env::var("REPORT_POSTGRES_URL").ok().filter(|u| !u.is_empty()),
    };
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--bin-dir", Some(v)) => settings.bin_dir = v.into(),
            ("--out", Some(v)) => settings.out = v.into(),
            ("--duration", Some(v)) => settings.duration = v,
            _ => fail("usage: report [--bin-dir DIR] [--out DIR] [--duration 8s]"),
        }
    }
    let machine = machine();
    eprintln!("report: on {machine}");
    let mut backends = vec![measure("SQLite", None, &settings)];
    if let Some(url) = settings.postgres.clone() {
        backends.push(measure("PostgreSQL", Some(url), &settings));
    }
    write_report(&settings.out, &machine, &backends);
}

/// What the report says of the machine: processor, cores, memory, kernel, load at the start.
fn machine() -> String {
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
    let load = read("/proc/loadavg").split_whitespace().next().unwrap_or("?").to_owned();
    format!(
        "{cpu}, {cores} cores, {:.0} GiB, Linux {kernel}, load average {load} at the start",
        memory_kb / 1_048_576.0
    )
}

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(bin: &Path, envs: &[(&str, String)], port: u16, path: &str) -> Server {
    let mut command = Command::new(bin);
    if bin.ends_with("jwt-auth") {
        command.arg("serve");
    }
    command
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .env("BIND_ADDRESS", format!("127.0.0.1:{port}"));
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| fail(format!("cannot start {}: {e}", bin.display())));
    let base = format!("http://127.0.0.1:{port}");
    let server = Server { child, base };
    let deadline = Instant::now() + Duration::from_secs(30);
    while curl(&["-s", "-o", "/dev/null", "-w", "%{http_code}", &format!("{}{path}", server.base)])
        == "000"
    {
        if Instant::now() > deadline {
            fail(format!("{} did not answer in 30 s", bin.display()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

fn curl(args: &[&str]) -> String {
    let output =
        Command::new("curl").args(args).output().unwrap_or_else(|e| fail(format!("curl: {e}")));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn post_json(url: &str, body: &str) -> String {
    curl(&["-s", "-X", "POST", url, "-H", "content-type: application/json", "-d", body])
}

/// Runs wrk and reads its summary.
fn wrk(
    connections: u32,
    duration: &str,
    script: Option<&Path>,
    headers: &[String],
    url: &str,
) -> Run {
    let threads = connections.min(2).to_string();
    let mut command = Command::new("wrk");
    command.args([
        "--latency",
        "-t",
        &threads,
        "-c",
        &connections.to_string(),
        "-d",
        duration,
        "--timeout",
        "10s",
    ]);
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    for header in headers {
        command.args(["-H", header]);
    }
    let output = command
        .arg(url)
        .output()
        .unwrap_or_else(|e| fail(format!("wrk: {e} (apt-get install wrk)")));
    let text = String::from_utf8_lossy(&output.stdout);
    let mut run = Run::default();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", rps] => run.rps = rps.parse().unwrap_or(0.0),
            ["99%", latency] => run.p99_ms = millis(latency),
            _ if line.contains("Socket errors") || line.contains("Non-2xx") => {
                run.errors.push_str(line.trim());
                run.errors.push(' ');
            }
            _ => {}
        }
    }
    run
}

fn millis(latency: &str) -> f64 {
    let (number, factor) = if let Some(v) = latency.strip_suffix("us") {
        (v, 0.001)
    } else if let Some(v) = latency.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = latency.strip_suffix('s') {
        (v, 1_000.0)
    } else {
        (latency, 1.0)
    };
    number.parse::<f64>().unwrap_or(f64::NAN) * factor
}

/// The peak resident memory of a process, in MB.
fn peak_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1_000.0)
}

/// Logins per second the machine's cores can verify: one argon2id verification with the
/// server's parameters (m = 19 MiB, t = 2, p = 1), timed as the median of 15, times the cores.
fn argon2_ceiling() -> f64 {
    use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
    let argon2 = argon2::Argon2::default();
    let salt = SaltString::from_b64("c2FsdHNhbHRzYWx0c2FsdA").expect("a valid salt");
    let hash = argon2.hash_password(PASSWORD.as_bytes(), &salt).expect("a hash");
    let mut times: Vec<f64> = (0..15)
        .map(|_| {
            let started = Instant::now();
            let _ = argon2.verify_password(b"wrong password", &hash);
            started.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    cores / times[times.len() / 2]
}

fn lua(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    let script = format!(
        "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = '{body}'\n"
    );
    std::fs::write(&path, script).unwrap_or_else(|e| fail(e));
    path
}

fn measure(name: &'static str, postgres: Option<String>, settings: &Settings) -> Backend {
    eprintln!("report: {name}");
    let work = std::env::temp_dir().join(format!("jwt-auth-report-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap_or_else(|e| fail(e));
    let secret: String = (0..48)
        .map(|i| char::from(b'a' + ((i * 7 + std::process::id() as usize) % 26) as u8))
        .collect();
    let database =
        postgres.unwrap_or_else(|| format!("sqlite://{}", work.join("jwt-auth.db").display()));
    let envs = [
        ("DATABASE_URL", database),
        ("DATA_DIR", work.display().to_string()),
        ("JWT_SECRET", secret.clone()),
        ("LOGIN_RATE_LIMIT", "0".to_owned()),
        ("LOGIN_FAILURE_BACKOFF", "0".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ];
    let server = start(&settings.bin_dir.join("jwt-auth"), &envs, 18_280, "/ready");
    let bare =
        start(&settings.bin_dir.join("bare_verify"), &[("JWT_SECRET", secret)], 18_281, "/verify");
    let email = format!("report-{}@example.com", std::process::id());
    let user = format!(r#"{{"email":"{email}","password":"{PASSWORD}"}}"#);
    post_json(&format!("{}/auth/register", server.base), &user);
    let login = format!(r#"{{"username":"{email}","password":"{PASSWORD}"}}"#);
    let pair = post_json(&format!("{}/auth/login", server.base), &login);
    let token = pair
        .split("\"access_token\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| fail(format!("login failed: {pair}")))
        .to_owned();
    let bearer = vec![format!("Authorization: Bearer {token}")];
    let duration = settings.duration.as_str();

    let mut levels = Vec::new();
    for connections in LEVELS {
        eprintln!("report: {name}: {connections} connections");
        let verify = wrk(connections, duration, None, &bearer, &format!("{}/verify", bare.base));
        let me = wrk(connections, duration, None, &bearer, &format!("{}/api/me", server.base));
        levels.push((connections, verify, me));
    }
    drop(bare);

    eprintln!("report: {name}: logins");
    let ceiling = argon2_ceiling();
    let login_script = lua(&work, "login.lua", &login);
    let logins =
        wrk(32, duration, Some(&login_script), &[], &format!("{}/auth/login", server.base));

    eprintln!("report: {name}: a wrong-password flood beside /api/me");
    let idle = wrk(100, duration, None, &bearer, &format!("{}/api/me", server.base));
    let wrong = format!(r#"{{"username":"{email}","password":"not the password"}}"#);
    let flood_script = lua(&work, "flood.lua", &wrong);
    let flood_url = format!("{}/auth/login", server.base);
    let flood_duration = duration.to_owned();
    let flood =
        std::thread::spawn(move || wrk(64, &flood_duration, Some(&flood_script), &[], &flood_url));
    std::thread::sleep(Duration::from_millis(500));
    let during = wrk(100, duration, None, &bearer, &format!("{}/api/me", server.base));
    let flood = flood.join().unwrap_or_default();

    let peak_rss_mb = peak_rss_mb(server.child.id());
    drop(server);
    let _ = std::fs::remove_dir_all(&work);
    Backend {
        name,
        levels,
        logins,
        ceiling,
        idle_p99: idle.p99_ms,
        flood_p99: during.p99_ms,
        flood_logins: flood.rps,
        peak_rss_mb,
    }
}

fn write_report(out: &Path, machine: &str, backends: &[Backend]) {
    std::fs::create_dir_all(out.join("performance")).unwrap_or_else(|e| fail(e));
    let mut md = String::new();
    let _ = writeln!(md, "# Performance\n");
    let _ = writeln!(
        md,
        "Generated by `benches/report.sh` on {machine}. Do not edit: run the command again.\n"
    );
    let _ = writeln!(md, "Server, reference and wrk share the machine's cores, on 127.0.0.1.\n");
    for b in backends {
        let _ = writeln!(md, "## {}\n", b.name);
        let _ = writeln!(md, "### `GET /api/me` beside bare Actix-web `GET /verify`\n");
        let _ = writeln!(
            md,
            "| connections | bare /verify req/s | p99 | /api/me req/s | p99 | ratio | errors |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|");
        for (connections, verify, me) in &b.levels {
            let _ = writeln!(
                md,
                "| {connections} | {:.0} | {:.1} ms | {:.0} | {:.1} ms | {:.2}× | {} |",
                verify.rps,
                verify.p99_ms,
                me.rps,
                me.p99_ms,
                me.rps / verify.rps,
                format!("{}{}", verify.errors, me.errors)
                    .trim()
                    .to_owned()
                    .chars()
                    .take(80)
                    .collect::<String>()
                    .replace('|', "/")
            );
        }
        let _ = writeln!(md);
        let _ = writeln!(
            md,
            "![requests per second](performance/{}-throughput.svg)\n",
            b.name.to_lowercase()
        );
        let _ = writeln!(md, "### Logins, flood isolation, memory\n");
        let _ = writeln!(md, "| measure | value |");
        let _ = writeln!(md, "|---|---|");
        let _ = writeln!(md, "| logins/s at 32 connections | {:.1} |", b.logins.rps);
        let _ = writeln!(md, "| argon2 ceiling (cores ÷ one verification) | {:.1} |", b.ceiling);
        let _ = writeln!(md, "| logins ÷ ceiling | {:.2} |", b.logins.rps / b.ceiling);
        let _ = writeln!(md, "| `/api/me` p99 at 100 connections, idle | {:.1} ms |", b.idle_p99);
        let _ = writeln!(
            md,
            "| the same during a wrong-password flood (64 connections) | {:.1} ms |",
            b.flood_p99
        );
        let _ = writeln!(md, "| flood ÷ idle p99 | {:.2} |", b.flood_p99 / b.idle_p99);
        let _ =
            writeln!(md, "| failed logins/s answered during the flood | {:.1} |", b.flood_logins);
        let _ = writeln!(md, "| server peak RSS over the run | {:.1} MB |\n", b.peak_rss_mb);
        plot(&out.join(format!("performance/{}-throughput.svg", b.name.to_lowercase())), b);
    }
    let path = out.join("performance.md");
    std::fs::write(&path, md).unwrap_or_else(|e| fail(e));
    eprintln!("report: wrote {}", path.display());
}

fn plot(path: &Path, backend: &Backend) {
    let max = backend.levels.iter().flat_map(|(_, v, m)| [v.rps, m.rps]).fold(1.0, f64::max) * 1.1;
    let root = SVGBackend::new(path, (720, 360)).into_drawing_area();
    let draw = || -> Result<(), Box<dyn std::error::Error>> {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{}: requests per second by connections", backend.name),
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(0..backend.levels.len(), 0.0..max)?;
        let labels: Vec<String> = backend.levels.iter().map(|(c, _, _)| c.to_string()).collect();
        chart
            .configure_mesh()
            .x_labels(labels.len())
            .x_label_formatter(&|i| labels.get(*i).cloned().unwrap_or_default())
            .x_desc("connections")
            .y_desc("requests/s")
            .draw()?;
        for (series, color) in [("bare /verify", &BLUE), ("/api/me", &RED)] {
            let points: Vec<(usize, f64)> = backend
                .levels
                .iter()
                .enumerate()
                .map(|(i, (_, v, m))| (i, if series == "/api/me" { m.rps } else { v.rps }))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                .label(series)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
            chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
        }
        chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw()?;
        root.present()?;
        Ok(())
    };
    if let Err(e) = draw() {
        fail(format!("plot {}: {e}", path.display()));
    }
}
