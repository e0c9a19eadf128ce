//! jwt-core's storage traits on [`Store`]: what [`jwt_core::Sessions`] runs login, refresh
//! rotation, logout and the revocation feed on. Each method is one call into the shared
//! queries; the semantics are the traits' (and `MemoryStore`'s).

use chrono::{DateTime, Utc};
use jwt_core::{
    FeedEntry, GraceOutcome, NewRefreshToken, NewSession, RefreshTokenState, RefreshTokenStore,
    Result, Revocation, RevocationStore, RevokeReason, RotateOutcome, SessionRecord, SessionStore,
    Subject,
};

use crate::rows::{RefreshTokenRow, Retirement, SessionRow};
use crate::store::{Store, on_backend};

impl SessionStore for Store {
    async fn create_session(
        &self,
        session: &NewSession,
        first_token: &NewRefreshToken,
    ) -> Result<()> {
        let code = session.code.clone();
        let (session, first) = (SessionRow::new(session), RefreshTokenRow::new(first_token));
        Ok(on_backend!(self, write, |conn| queries::create_session(
            conn,
            &session,
            &first,
            code.as_deref()
        ))?)
    }

    async fn session(&self, id: &str) -> Result<Option<SessionRecord>> {
        let id = id.to_owned();
        let row = on_backend!(self, read, |conn| queries::session(conn, &id))?;
        Ok(row.map(SessionRow::into_record).transpose()?)
    }

    async fn active_subject(&self, user_id: &str) -> Result<Option<Subject>> {
        let user_id = user_id.to_owned();
        Ok(on_backend!(self, read, |conn| queries::active_subject(conn, &user_id))?)
    }
}

impl RefreshTokenStore for Store {
    async fn rotate(
        &self,
        presented_jti: &str,
        replacement: &NewRefreshToken,
        at: DateTime<Utc>,
    ) -> Result<RotateOutcome> {
        let presented = presented_jti.to_owned();
        let retirement = Retirement::new(replacement, at);
        let replacement = RefreshTokenRow::new(replacement);
        Ok(on_backend!(self, write, |conn| queries::rotate(
            conn,
            &presented,
            &replacement,
            &retirement,
            at
        ))?)
    }

    async fn add_refresh_token(&self, token: &NewRefreshToken) -> Result<GraceOutcome> {
        let at = token.issued_at;
        let token = RefreshTokenRow::new(token);
        Ok(on_backend!(self, write, |conn| queries::add_refresh_token(conn, &token, at))?)
    }

    async fn refresh_token_state(
        &self,
        jti: &str,
        session_id: &str,
    ) -> Result<Option<RefreshTokenState>> {
        let (jti, session_id) = (jti.to_owned(), session_id.to_owned());
        let rotated_at =
            on_backend!(self, read, |conn| queries::refresh_token(conn, &jti, &session_id))?;
        Ok(rotated_at.map(|rotated_at| match rotated_at {
            None => RefreshTokenState::Current,
            Some(at) => RefreshTokenState::Retired { rotated_at: at.and_utc() },
        }))
    }
}

impl RevocationStore for Store {
    async fn revoke_session(
        &self,
        id: &str,
        reason: RevokeReason,
        at: DateTime<Utc>,
    ) -> Result<Option<Revocation>> {
        let id = id.to_owned();
        Ok(on_backend!(self, write, |conn| queries::revoke_session(conn, &id, reason, at))?)
    }

    async fn revoke_user(
        &self,
        user_id: &str,
        reason: RevokeReason,
        at: DateTime<Utc>,
    ) -> Result<Vec<Revocation>> {
        let user_id = user_id.to_owned();
        Ok(on_backend!(self, write, |conn| queries::revoke_user_sessions(
            conn, &user_id, reason, at
        ))?)
    }

    async fn void_issued_before(
        &self,
        user_id: Option<&str>,
        before: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<Revocation> {
        let user_id = user_id.map(str::to_owned);
        Ok(on_backend!(self, write, |conn| queries::void_issued_before(
            conn,
            user_id.as_deref(),
            before,
            at
        ))?)
    }

    async fn revocation_feed(&self, after: i64, now: DateTime<Utc>) -> Result<Vec<FeedEntry>> {
        let now = crate::rows::db_time(now);
        let rows = on_backend!(self, read, |conn| queries::revocation_feed(conn, after, now))?;
        let entries = rows.into_iter().map(|(position, row)| {
            let recorded_at = row.recorded_at.and_utc();
            Ok(FeedEntry { position, recorded_at, revocation: row.into_revocation()? })
        });
        Ok(entries.collect::<std::result::Result<_, crate::StoreError>>()?)
    }

    async fn revocation_feed_head(&self) -> Result<i64> {
        Ok(on_backend!(self, read, |conn| queries::revocation_feed_head(conn))?)
    }
}
