//! Shared by the fuzz targets in `fuzz_targets/` and the seed generator in `src/bin/seeds.rs`:
//! the fixed keys and services ([`fixture`]), the oracle for compact tokens ([`tokens`]),
//! request building for the server's extractors ([`http`]) and the DPoP requests ([`dpop`]).
//!
//! Targets that need several inputs (a header and a body, a key and a mode) take them from one
//! fuzz input cut at NUL bytes ([`fields`]): no JSON text, header value or form body can
//! contain a raw NUL, so nothing reachable is lost, and the seed files stay readable.

pub mod dpop;
pub mod fixture;
pub mod http;
pub mod tokens;

/// `data` cut at every NUL byte.
pub fn fields(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|b| *b == 0)
}

/// `data` cut at its first NUL byte: before it, and after it (empty without one).
pub fn split_once(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[]),
    }
}
