//! Budget check: reads criterion's results and fails when a median breaks the users' budgets.
//!
//! Budgets: generating a token (or a refresh rotation, which generates two) under 100 ms,
//! validating one under 50 ms, as medians. Each expected result must exist, and with
//! `--newer-than FILE` must have been written after FILE was, so a renamed or skipped bench
//! fails the check instead of passing on an old result. Also prints jwt-core's time over
//! jsonwebtoken's for the same work, per algorithm.
//!
//! Usage: `budget [--dir CRITERION_DIR] [--newer-than FILE]`. Without `--dir`, the results
//! are looked for where criterion writes them: `$CRITERION_HOME`, else
//! `$CARGO_TARGET_DIR/criterion`, else the workspace's `target/criterion`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use serde::Deserialize;

const ALGORITHMS: [&str; 4] = ["HS256", "RS256", "ES256", "EdDSA"];
const GENERATION_BUDGET_NS: f64 = 100e6;
const VALIDATION_BUDGET_NS: f64 = 50e6;
/// What we aim for, not a budget: jwt-core's HS256 verify against jsonwebtoken's decode.
const HS256_VERIFY_AIM: f64 = 1.25;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Generation,
    Validation,
}

impl Kind {
    fn budget_ns(self) -> f64 {
        match self {
            Kind::Generation => GENERATION_BUDGET_NS,
            Kind::Validation => VALIDATION_BUDGET_NS,
        }
    }
}

/// One criterion result: `<dir>/<group>/<bench>/new/estimates.json`.
struct Expected {
    group: &'static str,
    bench: &'static str,
    kind: Kind,
    label: String,
}

fn expected() -> Vec<Expected> {
    let mut all = Vec::new();
    for alg in ALGORITHMS {
        for (bench, kind, what) in [
            ("issue", Kind::Generation, "issue"),
            ("raw_encode", Kind::Generation, "issue, jsonwebtoken"),
            ("verify", Kind::Validation, "verify"),
            ("raw_decode", Kind::Validation, "verify, jsonwebtoken"),
        ] {
            all.push(Expected { group: alg, bench, kind, label: format!("{alg} {what}") });
        }
    }
    all.push(Expected {
        group: "rotation",
        bench: "refresh",
        kind: Kind::Generation,
        label: "refresh rotation (HS256, memory)".into(),
    });
    all
}

#[derive(Deserialize)]
struct Estimates {
    median: Estimate,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
}

fn results_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target").join("criterion")
}

fn modified(path: &Path) -> Result<SystemTime, String> {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|e| format!("cannot read the time of {}: {e}", path.display()))
}

/// The median of one result, in nanoseconds.
fn read_median(path: &Path, newer_than: Option<SystemTime>) -> Result<f64, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "missing result {} (bench renamed, removed or not run?)",
                path.display()
            ));
        }
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    if let Some(start) = newer_than
        && modified(path)? < start
    {
        return Err(format!("stale result {} (not written by this run)", path.display()));
    }
    let estimates: Estimates = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not criterion's estimates.json: {e}", path.display()))?;
    let median = estimates.median.point_estimate;
    if !(median.is_finite() && median > 0.0) {
        return Err(format!("{}: median {median} ns is not a positive time", path.display()));
    }
    Ok(median)
}

/// A time with three significant digits and its unit.
fn time(ns: f64) -> String {
    let (value, unit) = if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "µs")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    let decimals = if value < 10.0 {
        2
    } else if value < 100.0 {
        1
    } else {
        0
    };
    format!("{value:.decimals$} {unit}")
}

fn margin(ratio: f64) -> String {
    if ratio >= 10.0 { format!("{ratio:.0}x") } else { format!("{ratio:.2}x") }
}

struct Args {
    dir: PathBuf,
    newer_than: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { dir: results_dir(), newer_than: None };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--dir" => args.dir = PathBuf::from(value()?),
            "--newer-than" => args.newer_than = Some(PathBuf::from(value()?)),
            "-h" | "--help" => {
                return Err("usage: budget [--dir CRITERION_DIR] [--newer-than FILE]".into());
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(args)
}

/// What one look at the results found: the report to print, and every reason to fail.
struct Check {
    report: String,
    failures: Vec<String>,
}

fn check(dir: &Path, newer_than: Option<SystemTime>) -> Check {
    let mut report = format!("criterion results in {}\n", dir.display());
    let mut failures = Vec::new();
    let mut medians = HashMap::new();
    for e in expected() {
        let path = dir.join(e.group).join(e.bench).join("new").join("estimates.json");
        let median = match read_median(&path, newer_than) {
            Ok(median) => median,
            Err(message) => {
                let status = if message.starts_with("stale") { "STALE" } else { "MISSING" };
                let _ = writeln!(report, "{:<36} {:>10}", e.label, status);
                failures.push(message);
                continue;
            }
        };
        let budget = e.kind.budget_ns();
        let verdict = if median >= budget {
            failures.push(format!("{}: median {} is over its budget", e.label, time(median)));
            "  OVER BUDGET"
        } else {
            ""
        };
        let _ = writeln!(
            report,
            "{:<36} {:>10}  budget {:>3} ms  margin {:>7}{verdict}",
            e.label,
            time(median),
            budget / 1e6,
            margin(budget / median),
        );
        medians.insert((e.group, e.bench), median);
    }

    let _ = writeln!(report, "\njwt-core / jsonwebtoken (median over median):");
    let _ = writeln!(report, "{:<8} {:>8} {:>8}", "", "issue", "verify");
    let ratio = |alg, ours, raw| match (medians.get(&(alg, ours)), medians.get(&(alg, raw))) {
        (Some(ours), Some(raw)) => Some(ours / raw),
        _ => None,
    };
    for alg in ALGORITHMS {
        let show = |r: Option<f64>| r.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x"));
        let _ = writeln!(
            report,
            "{alg:<8} {:>8} {:>8}",
            show(ratio(alg, "issue", "raw_encode")),
            show(ratio(alg, "verify", "raw_decode")),
        );
    }
    if let Some(r) = ratio("HS256", "verify", "raw_decode") {
        let verdict = if r <= HS256_VERIFY_AIM { "met" } else { "NOT met" };
        let _ = writeln!(
            report,
            "aim: HS256 verify within {HS256_VERIFY_AIM}x of jsonwebtoken's decode: {verdict} ({r:.2}x)"
        );
    }
    if failures.is_empty() {
        let _ = writeln!(
            report,
            "\nbudget: OK, {} medians within budget (generation < {} ms, validation < {} ms)",
            medians.len(),
            GENERATION_BUDGET_NS / 1e6,
            VALIDATION_BUDGET_NS / 1e6,
        );
    }
    Check { report, failures }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("budget: {message}");
            return ExitCode::from(2);
        }
    };
    let newer_than = match args.newer_than.as_deref().map(modified).transpose() {
        Ok(time) => time,
        Err(message) => {
            eprintln!("budget: {message}");
            return ExitCode::from(2);
        }
    };
    let Check { report, failures } = check(&args.dir, newer_than);
    print!("{report}");
    if failures.is_empty() {
        return ExitCode::SUCCESS;
    }
    for message in &failures {
        eprintln!("budget: {message}");
    }
    eprintln!("budget: FAILED");
    ExitCode::FAILURE
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // file times are the system's
mod tests {
    use std::time::Duration;

    use super::*;

    /// A fresh directory of criterion results, every expected one at `ns`.
    fn results(name: &str, ns: f64) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("budget-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for e in expected() {
            write_result(&dir, e.group, e.bench, ns);
        }
        dir
    }

    fn write_result(dir: &Path, group: &str, bench: &str, ns: f64) {
        let new = dir.join(group).join(bench).join("new");
        std::fs::create_dir_all(&new).unwrap();
        let json = format!(
            r#"{{"mean":{{"point_estimate":{ns}}},"median":{{"confidence_interval":{{}},"point_estimate":{ns},"standard_error":1.0}}}}"#
        );
        std::fs::write(new.join("estimates.json"), json).unwrap();
    }

    #[test]
    fn passes_within_budget_and_prints_margins_and_ratios() {
        let dir = results("ok", 2_000.0);
        let c = check(&dir, None);
        assert!(c.failures.is_empty(), "{:?}", c.failures);
        assert!(c.report.contains("HS256 verify"), "{}", c.report);
        assert!(c.report.contains("2.00 µs  budget  50 ms  margin  25000x"), "{}", c.report);
        assert!(c.report.contains("HS256       1.00x    1.00x"), "{}", c.report);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn fails_at_the_budget_of_each_kind() {
        let dir = results("over", 2_000.0);
        write_result(&dir, "ES256", "verify", 50e6);
        write_result(&dir, "RS256", "issue", 99.9e6);
        let c = check(&dir, None);
        assert_eq!(c.failures.len(), 1, "{:?}", c.failures);
        assert!(c.failures[0].starts_with("ES256 verify:"));
        write_result(&dir, "rotation", "refresh", 100e6);
        assert_eq!(check(&dir, None).failures.len(), 2);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn fails_on_a_missing_or_stale_result() {
        let dir = results("missing", 2_000.0);
        std::fs::remove_dir_all(dir.join("EdDSA").join("raw_decode")).unwrap();
        let c = check(&dir, None);
        assert_eq!(c.failures.len(), 1, "{:?}", c.failures);
        assert!(c.failures[0].contains("missing result"), "{:?}", c.failures);
        assert!(c.report.contains("MISSING"));

        let later = SystemTime::now() + Duration::from_secs(60);
        let stale = check(&dir, Some(later)).failures;
        assert_eq!(stale.len(), expected().len());
        assert!(stale.iter().filter(|m| m.contains("stale result")).count() == stale.len() - 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn times_keep_three_significant_digits() {
        assert_eq!(time(850.0), "850 ns");
        assert_eq!(time(1_900.0), "1.90 µs");
        assert_eq!(time(48_400.0), "48.4 µs");
        assert_eq!(time(2_000_000.0), "2.00 ms");
        assert_eq!(margin(26_315.8), "26316x");
        assert_eq!(margin(1.234), "1.23x");
    }
}
