//! The token lifetimes the servers issue with, recorded by each server so that commands that
//! revoke a key or a client know how long the revocation matters.

use chrono::{DateTime, TimeDelta, Utc};

use crate::error::StoreError;
use crate::rows::db_time;
use crate::store::{Store, on_backend};

/// The lifetimes of the tokens one server issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenLifetimes {
    /// Of access tokens (`TOKEN_EXPIRY`).
    pub access: TimeDelta,
    /// Of refresh tokens (`REFRESH_TOKEN_EXPIRY`).
    pub refresh: TimeDelta,
}

impl Store {
    /// Records that a server issues tokens with `lifetimes` at `at`, and drops the pairs no
    /// token can still be alive from: last seen longer ago than their refresh lifetime.
    pub async fn record_token_lifetimes(
        &self,
        lifetimes: TokenLifetimes,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (access, refresh) = (lifetimes.access.num_seconds(), lifetimes.refresh.num_seconds());
        on_backend!(self, write, |conn| queries::record_token_lifetimes(
            conn,
            access,
            refresh,
            db_time(at)
        ))
    }

    /// The lifetimes of the tokens that may still be alive at `now`: those of every pair a
    /// server recorded within its refresh lifetime; empty if no server recorded any.
    pub async fn token_lifetimes(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<TokenLifetimes>, StoreError> {
        let rows = on_backend!(self, read, |conn| queries::token_lifetimes(conn))?;
        Ok(rows
            .into_iter()
            .filter_map(|(access, refresh, seen_at)| {
                let lifetimes = TokenLifetimes {
                    access: TimeDelta::seconds(access),
                    refresh: TimeDelta::seconds(refresh),
                };
                (seen_at.and_utc() + lifetimes.refresh.max(lifetimes.access) >= now)
                    .then_some(lifetimes)
            })
            .collect())
    }
}
