//! Logins per second against the argon2 ceiling of the machine, and `/api/me`'s p99 at 100
//! connections, idle and during a wrong-password flood (64 connections).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::PASSWORD;
use crate::servers::Server;
use crate::wrk::{Run, lua, wrk};

/// What the logins and the flood measured.
pub struct Logins {
    /// Logins at 32 connections.
    pub logins: Run,
    /// Logins per second the cores can verify (see [`argon2_ceiling`]).
    pub ceiling: f64,
    /// `/api/me` p99 at 100 connections, idle and during the flood, in milliseconds.
    pub idle_p99: f64,
    pub flood_p99: f64,
    /// Failed logins per second answered during the flood.
    pub flood_logins: f64,
}

/// Logins of `email` (`login`: its JSON body) at 32 connections, then `/api/me` (with
/// `bearer`) idle and beside a flood of wrong passwords; wrk's scripts go in `work`.
pub fn measure(
    name: &str,
    server: &Server,
    work: &Path,
    email: &str,
    login: &str,
    bearer: &[String],
    duration: &str,
) -> Logins {
    eprintln!("report: {name}: logins");
    let ceiling = argon2_ceiling();
    let login_script = lua(work, "login.lua", login);
    let logins =
        wrk(32, duration, Some(&login_script), &[], &format!("{}/auth/login", server.base));

    eprintln!("report: {name}: a wrong-password flood beside /api/me");
    let idle = wrk(100, duration, None, bearer, &format!("{}/api/me", server.base));
    let wrong = format!(r#"{{"username":"{email}","password":"not the password"}}"#);
    let flood_script = lua(work, "flood.lua", &wrong);
    let flood_url = format!("{}/auth/login", server.base);
    let flood_duration = duration.to_owned();
    let flood =
        std::thread::spawn(move || wrk(64, &flood_duration, Some(&flood_script), &[], &flood_url));
    std::thread::sleep(Duration::from_millis(500));
    let during = wrk(100, duration, None, bearer, &format!("{}/api/me", server.base));
    let flood = flood.join().unwrap_or_default();
    Logins {
        logins,
        ceiling,
        idle_p99: idle.p99_ms,
        flood_p99: during.p99_ms,
        flood_logins: flood.rps,
    }
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
