//! Service clients (OAuth 2.0 client credentials, RFC 6749 §4.4): a name, roles, a digest of
//! the secret (computed by the caller; this crate never sees a secret) and the session every
//! token of the client belongs to, so that removing the client revokes that session in the
//! revocation feed, and with it every token the client holds.

use std::fmt;

use chrono::{DateTime, Utc};
use jwt_core::Revocation;

use crate::error::StoreError;
use crate::rows::{ClientRow, db_time, parse_roles, parse_strings, roles_json};
use crate::store::{Store, on_backend};

/// A service client as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceClient {
    /// The client id: the `sub` of its tokens.
    pub id: String,
    /// A name for people, unique.
    pub name: String,
    /// The digest of the secret, as the caller computed it.
    pub secret_digest: Vec<u8>,
    /// The roles its tokens carry.
    pub roles: Vec<String>,
    /// The `sid` of its tokens.
    pub session_id: String,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// Where the authorization code grant may send a user back (empty for a client that
    /// only uses its own credentials).
    pub redirect_uris: Vec<String>,
    /// Where `GET /auth/end-session` may send a user after signing out.
    pub post_logout_redirect_uris: Vec<String>,
    /// Whether it has no secret (a single-page, mobile or desktop app): its digest is empty.
    pub public: bool,
    /// Whether its users are never asked to consent.
    pub first_party: bool,
    /// Whether its token requests must carry a DPoP proof (RFC 9449): its tokens are then
    /// always bound to a key.
    pub require_dpop: bool,
}

impl fmt::Debug for ServiceClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceClient")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("roles", &self.roles)
            .field("created_at", &self.created_at)
            .field("redirect_uris", &self.redirect_uris)
            .field("post_logout_redirect_uris", &self.post_logout_redirect_uris)
            .field("public", &self.public)
            .field("first_party", &self.first_party)
            .field("require_dpop", &self.require_dpop)
            .finish_non_exhaustive()
    }
}

impl ClientRow {
    pub(crate) fn session_id(&self) -> &str {
        &self.session_id
    }

    fn into_client(self) -> Result<ServiceClient, StoreError> {
        Ok(ServiceClient {
            roles: parse_roles(&self.roles)?,
            id: self.id,
            name: self.name,
            secret_digest: self.secret_digest,
            session_id: self.session_id,
            created_at: self.created_at.and_utc(),
            redirect_uris: parse_strings(&self.redirect_uris, "clients", "redirect URIs")?,
            post_logout_redirect_uris: parse_strings(
                &self.post_logout_redirect_uris,
                "clients",
                "post-logout redirect URIs",
            )?,
            public: self.public,
            first_party: self.first_party,
            require_dpop: self.require_dpop,
        })
    }
}

impl From<&ServiceClient> for ClientRow {
    fn from(client: &ServiceClient) -> Self {
        Self {
            id: client.id.clone(),
            name: client.name.clone(),
            secret_digest: client.secret_digest.clone(),
            roles: roles_json(&client.roles),
            session_id: client.session_id.clone(),
            created_at: db_time(client.created_at),
            redirect_uris: roles_json(&client.redirect_uris),
            post_logout_redirect_uris: roles_json(&client.post_logout_redirect_uris),
            public: client.public,
            first_party: client.first_party,
            require_dpop: client.require_dpop,
        }
    }
}

impl Store {
    /// Stores a new client; [`StoreError::NameTaken`] if another client has its name.
    pub async fn add_client(&self, client: &ServiceClient) -> Result<(), StoreError> {
        let row = ClientRow::from(client);
        on_backend!(self, write, |conn| queries::add_client(conn, row))
    }

    /// The client with this id.
    pub async fn client(&self, id: &str) -> Result<Option<ServiceClient>, StoreError> {
        let id = id.to_owned();
        let row = on_backend!(self, read, |conn| queries::client(conn, &id))?;
        row.map(ClientRow::into_client).transpose()
    }

    /// Every client, oldest first.
    pub async fn clients(&self) -> Result<Vec<ServiceClient>, StoreError> {
        let rows = on_backend!(self, read, |conn| queries::clients(conn))?;
        rows.into_iter().map(ClientRow::into_client).collect()
    }

    /// Removes client `id` and revokes its session in the revocation feed, where the entry
    /// matters until `tokens_expire_at` (when its last token has expired), with the sessions
    /// users granted it, in one transaction. Returns the client and the revocations recorded:
    /// its own session's first, then those of the sessions it was granted. `None` if there is
    /// no such client.
    pub async fn remove_client(
        &self,
        id: &str,
        at: DateTime<Utc>,
        tokens_expire_at: DateTime<Utc>,
    ) -> Result<Option<(ServiceClient, Vec<Revocation>)>, StoreError> {
        let id = id.to_owned();
        let removed = on_backend!(self, write, |conn| queries::remove_client(
            conn,
            &id,
            at,
            tokens_expire_at
        ))?;
        removed.map(|(row, revocations)| Ok((row.into_client()?, revocations))).transpose()
    }
}
