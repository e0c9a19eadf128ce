//! The values settings take: durations, algorithms, the public URL, lists of CIDRs; each
//! refused with the setting's name and what is wrong.

use std::net::IpAddr;

use chrono::TimeDelta;
use ipnet::IpNet;
use jwt_core::Algorithm;

use jwt_auth_service::ConfigError;

pub(crate) fn invalid(setting: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError { setting, problem: problem.into() }
}

/// `JWT_ALGORITHM`: one of the four algorithms.
pub fn parse_algorithm(value: &str) -> Result<Algorithm, ConfigError> {
    value.parse().map_err(|_| {
        invalid("JWT_ALGORITHM", format!("`{value}` is not one of HS256, RS256, ES256, EdDSA"))
    })
}

/// `900`, `900s`, `15m`, `1h`, `7d`.
pub fn parse_duration(setting: &'static str, value: &str) -> Result<TimeDelta, ConfigError> {
    let value = value.trim();
    let split = value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len());
    let (digits, unit) = value.split_at(split);
    let bad = || invalid(setting, format!("`{value}` is not a duration like 900, 15m, 1h or 7d"));
    let n: i64 = digits.parse().map_err(|_| bad())?;
    let seconds_per_unit = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let seconds = n.checked_mul(seconds_per_unit).filter(|s| *s <= 10 * 365 * 86_400);
    seconds.map(TimeDelta::seconds).ok_or_else(|| invalid(setting, "is longer than ten years"))
}

pub(crate) fn positive(setting: &'static str, value: &str) -> Result<TimeDelta, ConfigError> {
    let duration = parse_duration(setting, value)?;
    if duration <= TimeDelta::zero() {
        return Err(invalid(setting, "must be longer than zero"));
    }
    Ok(duration)
}

/// `PUBLIC_URL`: an absolute `http` or `https` URL with a host and nothing after the path
/// (RFC 8414 §2: the issuer has no query or fragment); returned without a trailing slash.
pub(crate) fn parse_public_url(value: &str) -> Result<String, ConfigError> {
    let bad = |why: &str| invalid("PUBLIC_URL", format!("`{value}` {why}"));
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .ok_or_else(|| bad("must start with https:// (or http:// for local development)"))?;
    if value.contains(['?', '#']) {
        return Err(bad("must not have a query or a fragment"));
    }
    let host = rest.split('/').next().unwrap_or_default();
    let plain = |c: char| c.is_ascii_alphanumeric() || ".-:[]".contains(c);
    if host.is_empty() || !host.chars().all(plain) {
        return Err(bad("must name a host (letters, digits, dots, hyphens, an optional port)"));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("must not contain spaces or control characters"));
    }
    Ok(value.trim_end_matches('/').to_owned())
}

/// `TRUSTED_PROXIES`: a comma-separated list of CIDRs or plain IPs (a host each), blanks
/// skipped.
pub fn parse_cidrs(value: &str) -> Result<Vec<IpNet>, ConfigError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| invalid("TRUSTED_PROXIES", format!("`{s}` is not a CIDR or an IP")))
        })
        .collect()
}
