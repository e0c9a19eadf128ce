//! Authorization codes of the code grant (HTTP contract v3, "Sign-in for apps"): what a code
//! was issued for, kept under the SHA-256 digest of the code (computed by the caller), used
//! once. A second exchange of a used code is recorded, so that the session the first one
//! started is revoked, even when the second comes while the first is still starting it.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use jwt_core::{NewSession, Revocation, RevokeReason, Subject};

use crate::error::StoreError;
use crate::rows::{SessionRow, db_time};
use crate::schema::authorization_codes;
use crate::store::{Store, on_backend};

/// An authorization code as issued.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthorizationCode {
    /// The SHA-256 digest of the code.
    pub digest: Vec<u8>,
    /// The client it was issued to.
    pub client_id: String,
    /// The user who signed in.
    pub user_id: String,
    /// The redirect URI of the authorization request, as presented.
    pub redirect_uri: String,
    /// The PKCE challenge (S256).
    pub code_challenge: String,
    /// The scopes granted, space-separated.
    pub scope: String,
    /// The `nonce` of the request, for the ID token.
    pub nonce: Option<String>,
    /// The `resource` of the request (RFC 8707), the access token's audience.
    pub resource: Option<String>,
    /// When the user last signed in (the ID token's `auth_time`).
    pub auth_time: DateTime<Utc>,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// The browser sign-in session it was issued under: the session its exchange starts is
    /// ended with it (OpenID Connect RP-initiated logout).
    pub sign_in_session: Option<String>,
}

impl std::fmt::Debug for AuthorizationCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizationCode")
            .field("client_id", &self.client_id)
            .field("user_id", &self.user_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("scope", &self.scope)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What [`Store::redeem_authorization_code`] found: it uses a code up when an exchange is
/// refused, and names the session to revoke when a code comes back (a successful exchange
/// claims its code as it starts the session instead: [`jwt_core::NewSession::code`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption {
    /// The code was fresh, and is used up now.
    Fresh(Box<AuthorizationCode>),
    /// The code was used before: the session its first exchange started, if any, is to be
    /// revoked.
    Replayed {
        /// That session; `None` if the code was used up by a refused exchange.
        session_id: Option<String>,
    },
    /// No such code, or it has expired.
    Unknown,
}

/// An authorization code as its table holds it.
#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = authorization_codes)]
pub(crate) struct CodeRow {
    pub(crate) code_digest: Vec<u8>,
    pub(crate) client_id: String,
    pub(crate) user_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) code_challenge: String,
    pub(crate) scope: String,
    pub(crate) nonce: Option<String>,
    pub(crate) resource: Option<String>,
    pub(crate) auth_time: chrono::NaiveDateTime,
    pub(crate) created_at: chrono::NaiveDateTime,
    pub(crate) expires_at: chrono::NaiveDateTime,
    pub(crate) used_at: Option<chrono::NaiveDateTime>,
    pub(crate) session_id: Option<String>,
    pub(crate) replayed_at: Option<chrono::NaiveDateTime>,
    pub(crate) sign_in_session: Option<String>,
}

impl From<&AuthorizationCode> for CodeRow {
    fn from(code: &AuthorizationCode) -> Self {
        Self {
            code_digest: code.digest.clone(),
            client_id: code.client_id.clone(),
            user_id: code.user_id.clone(),
            redirect_uri: code.redirect_uri.clone(),
            code_challenge: code.code_challenge.clone(),
            scope: code.scope.clone(),
            nonce: code.nonce.clone(),
            resource: code.resource.clone(),
            auth_time: db_time(code.auth_time),
            created_at: db_time(code.created_at),
            expires_at: db_time(code.expires_at),
            used_at: None,
            session_id: None,
            replayed_at: None,
            sign_in_session: code.sign_in_session.clone(),
        }
    }
}

impl CodeRow {
    pub(crate) fn into_code(self) -> AuthorizationCode {
        AuthorizationCode {
            digest: self.code_digest,
            client_id: self.client_id,
            user_id: self.user_id,
            redirect_uri: self.redirect_uri,
            code_challenge: self.code_challenge,
            scope: self.scope,
            nonce: self.nonce,
            resource: self.resource,
            auth_time: self.auth_time.and_utc(),
            created_at: self.created_at.and_utc(),
            expires_at: self.expires_at.and_utc(),
            sign_in_session: self.sign_in_session,
        }
    }
}

impl Store {
    /// Starts a browser sign-in session: a session of `session.user_id` with no refresh token,
    /// ended like any other (its revocation reaches every instance through the feed).
    pub async fn create_sign_in_session(&self, session: &NewSession) -> Result<(), StoreError> {
        let row = SessionRow { sign_in: true, ..SessionRow::new(session) };
        on_backend!(self, write, |conn| queries::create_sign_in_session(conn, row))
    }

    /// Ends the browser sign-in session `id` and every session started under it, at `at`;
    /// the revocations to apply. Ending an ended or unknown session again changes nothing.
    pub async fn end_sign_in_session(
        &self,
        id: &str,
        reason: RevokeReason,
        at: DateTime<Utc>,
    ) -> Result<Vec<Revocation>, StoreError> {
        let id = id.to_owned();
        on_backend!(self, write, |conn| queries::end_sign_in_session(conn, &id, reason, at))
    }

    /// The scopes `user_id` has allowed `client_id`, space-separated, if any.
    pub async fn consent(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let (user_id, client_id) = (user_id.to_owned(), client_id.to_owned());
        on_backend!(self, read, |conn| queries::consent(conn, &user_id, &client_id))
    }

    /// Records that `user_id` allowed `client_id` the scopes `scope` (space-separated),
    /// replacing what was allowed before.
    pub async fn record_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (user_id, client_id, scope) =
            (user_id.to_owned(), client_id.to_owned(), scope.to_owned());
        let at = db_time(at);
        on_backend!(self, write, |conn| queries::record_consent(
            conn, &user_id, &client_id, &scope, at
        ))
    }

    /// Stores an issued code.
    pub async fn add_authorization_code(&self, code: &AuthorizationCode) -> Result<(), StoreError> {
        let row = CodeRow::from(code);
        on_backend!(self, write, |conn| queries::add_authorization_code(conn, row))
    }

    /// Exchanges the code with this digest at `now`, in one transaction: a fresh code becomes
    /// used; a used one records the replay and names the session to revoke; an expired or
    /// unknown one is [`Redemption::Unknown`].
    pub async fn redeem_authorization_code(
        &self,
        digest: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Redemption, StoreError> {
        let (digest, now) = (digest.to_vec(), db_time(now));
        on_backend!(self, write, |conn| queries::redeem_authorization_code(conn, &digest, now))
    }

    /// The code with this digest as issued, if it is unused and unexpired at `now`, with its
    /// user as a token subject if the user is active (as
    /// [`SessionStore::active_subject`](jwt_core::SessionStore::active_subject) reads it), in
    /// one read, which changes nothing: the exchange claims the code when it starts its session
    /// ([`jwt_core::NewSession::code`]), and
    /// [`redeem_authorization_code`](Store::redeem_authorization_code) uses it up otherwise.
    pub async fn fresh_authorization_code(
        &self,
        digest: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<(AuthorizationCode, Option<Subject>)>, StoreError> {
        let (digest, now) = (digest.to_vec(), db_time(now));
        let found =
            on_backend!(self, read, |conn| queries::fresh_authorization_code(conn, &digest, now))?;
        Ok(found.map(|(row, subject)| (row.into_code(), subject)))
    }
}
