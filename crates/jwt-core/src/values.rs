//! The value types every other module speaks of, below all of them: who a token is about,
//! where a request came from, the key a token is bound to, an entry of the revocation feed,
//! and the clock leeway's bound.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

/// The largest clock leeway a policy accepts.
pub const MAX_LEEWAY: TimeDelta = TimeDelta::seconds(30);

/// Who a token is about: the user id and what the access token says of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The user id (`sub`).
    pub id: String,
    /// The roles (`roles`).
    pub roles: Vec<String>,
    /// The email, included in access tokens only when the policy says so.
    pub email: Option<String>,
}

/// Where a request came from, as far as the server could tell. Recorded with sessions and
/// refresh tokens so that a reuse report can name both parties.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's IP address.
    pub ip: Option<String>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
    /// The key the request proved it holds with a DPoP proof that was verified
    /// ([`DpopVerifier`](crate::DpopVerifier)), as its thumbprint. The tokens a session hands
    /// out to such a request are bound to it (`cnf`, `token_type: DPoP`), and a refresh token
    /// bound to a key is refreshed only by a request that proved the same key. The tokens
    /// carry the binding: a store need not keep it.
    pub proven_key: Option<Confirmation>,
}

/// What a session was granted to a client application through the authorization code grant
/// (OAuth 2.1): the access tokens of such a session carry `client_id` and `scope` (RFC 9068
/// §2.2), their audience is the resource asked for (RFC 8707), and only that client refreshes
/// them. A session started by a login has none.
///
/// ```
/// use jwt_core::Grant;
/// let grant = Grant {
///     client_id: "spa".into(),
///     scope: "openid email".into(),
///     audience: Some("https://reports.example.com".into()),
/// };
/// assert!(grant.has_scope("email") && !grant.has_scope("offline_access"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The client the session was granted to (`client_id`).
    pub client_id: String,
    /// The scopes granted, space-separated (`scope`).
    pub scope: String,
    /// The access tokens' audience, when not the policy's.
    pub audience: Option<String>,
}

impl Grant {
    /// Whether `scope` was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.split(' ').any(|s| s == scope)
    }
}

/// One entry of the revocation feed that keeps every instance's
/// [`RevocationSet`](crate::RevocationSet) current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// A session was revoked: its tokens stop working.
    Session {
        /// The session id.
        id: String,
        /// When the session would have ended anyway; the entry can be forgotten after.
        expires_at: DateTime<Utc>,
    },
    /// Tokens issued before `before` are void: for one user, or for everyone (`user_id: None`).
    IssuedBefore {
        /// The user, or `None` for all users.
        user_id: Option<String>,
        /// The cut-off.
        before: DateTime<Utc>,
    },
    /// Every token signed with key `kid` is void (the key was revoked).
    Key {
        /// The key id.
        kid: String,
        /// When the last token the key signed has expired; the entry can be forgotten after.
        expires_at: DateTime<Utc>,
    },
}

/// The `cnf` claim of a DPoP-bound access token (RFC 9449 §6.1): the RFC 7638 SHA-256
/// thumbprint of the key its proofs must be signed with. Check a proof against it with
/// [`VerifiedProof::check_binding`](crate::VerifiedProof::check_binding).
///
/// ```
/// use jwt_core::Confirmation;
/// let cnf: Confirmation =
///     serde_json::from_str(r#"{"jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}"#)?;
/// assert_eq!(cnf.jkt, "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The base64url SHA-256 JWK thumbprint of the key.
    pub jkt: String,
}
