//! The memory of jwt-core's revocation set at 1,000,000 revoked sessions: this process's
//! resident memory before and after applying them (UUID session ids, as the server makes), in
//! batches whose input is dropped before the reading.

use chrono::TimeDelta;
use jwt_auth_benches::rss_mb;
use jwt_core::{Clock, Revocation, RevocationSet, SystemClock};

/// Revoked sessions held.
pub const SESSIONS: usize = 1_000_000;

/// Bytes per revoked session.
pub fn bytes_per_session() -> f64 {
    let set = RevocationSet::new();
    let before = rss_mb(std::process::id());
    let expires_at = SystemClock.now() + TimeDelta::days(1);
    for batch in 0..SESSIONS / 10_000 {
        let revocations: Vec<Revocation> = (0..10_000)
            .map(|i| Revocation::Session {
                id: uuid::Uuid::from_u128(
                    ((batch * 10_000 + i) as u128)
                        .wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835),
                )
                .to_string(),
                expires_at,
            })
            .collect();
        set.apply(&revocations);
    }
    let after = rss_mb(std::process::id());
    if set.revoked_sessions() != SESSIONS {
        jwt_auth_benches::fail("the revocation set lost sessions");
    }
    (after - before) * 1_000_000.0 / SESSIONS as f64
}

pub fn markdown(bytes: f64) -> String {
    format!(
        "\n### The revocation set's memory\n\njwt-core's `RevocationSet` holding {} revoked \
         sessions (UUID ids): {bytes:.0} bytes per session (this process's resident memory \
         before and after; the budget, `REVOKED_SESSION_BYTES`, is {}).\n",
        jwt_auth_benches::thousands(SESSIONS as u64),
        jwt_core::REVOKED_SESSION_BYTES
    )
}
