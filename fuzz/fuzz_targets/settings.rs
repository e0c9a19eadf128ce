//! The server's setting parsers and the feed cursor, on the input as text: `parse_duration`
//! (`TOKEN_EXPIRY` and the other lifetimes), `parse_cidrs` (`TRUSTED_PROXIES`),
//! `parse_algorithm` (`JWT_ALGORITHM`) and `jwt_core::feed_position` (the feed's cursors,
//! `after=` and `Last-Event-ID`).
//!
//! Asserted: a duration is between zero and ten years and reads back from its seconds; a CIDR
//! list has one network per non-blank entry, and each network and the whole list read back
//! from their text; an algorithm is exactly its JOSE name; a cursor is a non-negative number
//! written in digits alone, the very number unless it is past `i64::MAX`; and every error
//! names the setting it is about.
#![no_main]

use ipnet::IpNet;
use jwt_auth_api::fuzzing::{parse_algorithm, parse_cidrs, parse_duration};
use jwt_core::feed_position;
use jwt_core::Algorithm;
use libfuzzer_sys::fuzz_target;

const TEN_YEARS: i64 = 10 * 365 * 86_400;

fn check_duration(text: &str) {
    match parse_duration("TOKEN_EXPIRY", text) {
        Ok(duration) => {
            let seconds = duration.num_seconds();
            assert!((0..=TEN_YEARS).contains(&seconds), "{text:?} is {seconds} s");
            let again = parse_duration("TOKEN_EXPIRY", &seconds.to_string());
            assert_eq!(again.ok(), Some(duration), "{text:?} reads back from its seconds");
            let unit = text.trim().trim_start_matches(|c: char| c.is_ascii_digit());
            assert!(["", "s", "m", "h", "d"].contains(&unit), "{text:?} has unit {unit:?}");
        }
        Err(e) => assert_eq!(e.setting, "TOKEN_EXPIRY"),
    }
}

fn check_cidrs(text: &str) {
    match parse_cidrs(text) {
        Ok(nets) => {
            let entries = text.split(',').map(str::trim).filter(|s| !s.is_empty()).count();
            assert_eq!(nets.len(), entries, "one network per entry of {text:?}");
            for net in &nets {
                assert_eq!(net.to_string().parse::<IpNet>().ok(), Some(*net), "{net} reads back");
            }
            let written: Vec<String> = nets.iter().map(IpNet::to_string).collect();
            let again = parse_cidrs(&written.join(", ")).expect("a written list reads back");
            assert_eq!(again, nets, "{text:?} reads back from its text");
        }
        Err(e) => assert_eq!(e.setting, "TRUSTED_PROXIES"),
    }
}

fn check_algorithm(text: &str) {
    match parse_algorithm(text) {
        Ok(alg) => assert_eq!(alg.as_str(), text, "only the exact JOSE name"),
        Err(e) => {
            assert_eq!(e.setting, "JWT_ALGORITHM");
            assert!(Algorithm::ALL.iter().all(|alg| alg.as_str() != text), "refused {text:?}");
        }
    }
}

fn check_cursor(text: &str) {
    let digits = text.trim();
    match feed_position(text) {
        Some(cursor) => {
            assert!(cursor >= 0, "{text:?} is cursor {cursor}");
            assert!(!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()), "{text:?}");
            if cursor < i64::MAX {
                assert_eq!(digits.parse::<i64>().ok(), Some(cursor), "{text:?} is its number");
            }
        }
        None => {
            assert!(digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()), "{text:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    check_duration(text);
    check_cidrs(text);
    check_algorithm(text);
    check_cursor(text);
});
