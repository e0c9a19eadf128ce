//! Memory held by password hashing under load: a few hundred concurrent hashes and
//! verifications must stay within the hashing threads' working memory (argon2's 19 MiB each),
//! not grow with every hash. Alone in its own binary so that no other test's allocations
//! count against the bound.

use std::time::Duration;

use jwt_auth_service::passwords::Passwords;

/// Hashing threads in the pool under test: more than this machine may have cores, so that
/// several hashes are always in flight.
const THREADS: usize = 4;
/// Concurrent callers, each running its share of the jobs.
const CALLERS: usize = 16;
/// Hashes plus verifications in all.
const JOBS: usize = 300;
const MIB: u64 = 1024 * 1024;

/// A field of `/proc/self/status` (`VmRSS`, `VmHWM`) in bytes.
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"));
    let kib: u64 = line.trim().trim_end_matches("kB").trim().parse().expect("a number of kB");
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_stays_within_the_hashing_threads_working_memory() {
    let baseline = status_bytes("VmRSS");
    let passwords = Passwords::new(THREADS).expect("a hashing pool");
    let phc = passwords.hash("correct horse battery".into()).await.expect("a hash");

    let mut callers = tokio::task::JoinSet::new();
    for caller in 0..CALLERS {
        let passwords = passwords.clone();
        let phc = phc.clone();
        callers.spawn(async move {
            for job in (caller..JOBS).step_by(CALLERS) {
                if job % 2 == 0 {
                    passwords.hash(format!("password {job}")).await.expect("a hash");
                } else {
                    let password = if job % 3 == 0 { "correct horse battery" } else { "wrong" };
                    let known = Some(phc.clone());
                    passwords.verify(password.into(), known).await.expect("a verification");
                }
            }
        });
    }
    while let Some(done) = callers.join_next().await {
        done.expect("a caller finished");
    }
    // Whatever was freed has had its chance to go back to the system.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let (rss, peak) = (status_bytes("VmRSS"), status_bytes("VmHWM"));
    let bound = baseline + THREADS as u64 * 20 * MIB + 64 * MIB;
    eprintln!(
        "baseline {} MiB, after {JOBS} jobs {} MiB, peak {} MiB, bound {} MiB",
        baseline / MIB,
        rss / MIB,
        peak / MIB,
        bound / MIB
    );
    assert!(peak <= bound, "peak RSS {} MiB over the bound {} MiB", peak / MIB, bound / MIB);
    assert!(rss <= bound, "RSS {} MiB over the bound {} MiB", rss / MIB, bound / MIB);
}
