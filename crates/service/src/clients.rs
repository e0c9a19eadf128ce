//! Service clients (OAuth client credentials, RFC 6749 §4.4), whoever registers, lists or
//! removes them: a client's tokens carry its id as `sub`, its roles, and its session as `sid`,
//! so that removing the client revokes every token it holds, on every instance.
//!
//! A secret is 256 random bits, shown once when the client is made; only its SHA-256 digest
//! is stored (a slow hash adds nothing to a secret that cannot be guessed), and presented
//! secrets are compared by digest in constant time, an unknown client against a dummy digest.

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::net::IpAddr;

use chrono::{DateTime, TimeDelta, Utc};
use jwt_auth_store::{ServiceClient, Store, StoreError};
use jwt_core::{AccessToken, AuthStore, Issued, Revocation, Sessions, Subject};
use subtle::ConstantTimeEq;

use crate::accounts::Role;
use crate::error::ServiceError;
use crate::instance::Instance;
use crate::redirect::RedirectUri;
use crate::secret::SecretString;
use crate::throttle::LoginThrottle;

/// The role a client gets when none is given.
pub const DEFAULT_ROLE: &str = "service";
/// Every secret starts with this, so that a leaked one is easy to recognise (and to scan
/// for).
pub const SECRET_PREFIX: &str = "jas_";
/// The longest client name.
pub const MAX_NAME_BYTES: usize = 100;

/// The most redirect URIs, and the most post-logout redirect URIs, one client registers.
pub const MAX_REDIRECT_URIS: usize = 32;

/// A new client: what to store, and the secret to show once.
pub struct NewClient {
    /// The client as it is stored (with the digest of its secret, empty for a public one).
    pub client: ServiceClient,
    /// The secret, shown once; `None` for a public client, which has none.
    pub secret: Option<SecretString>,
}

/// How a client signs users in with the authorization code grant (HTTP contract v3, "Sign-in
/// for apps"), and whether its tokens are bound to a key; the default is a service client,
/// which only uses its own credentials, with bearer tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignIn {
    /// Where a user may be sent back with a code: each a [`RedirectUri`].
    pub redirect_uris: Vec<String>,
    /// Where `GET /auth/end-session` may send a user: each a [`RedirectUri`] too.
    pub post_logout_redirect_uris: Vec<String>,
    /// No secret: a single-page, mobile or desktop app, which identifies itself by its id.
    pub public: bool,
    /// Its users are never asked to consent.
    pub first_party: bool,
    /// Its token requests must carry a DPoP proof (RFC 9449): its tokens are then always
    /// bound to a key. Any client may be registered so, a service client too.
    pub require_dpop: bool,
}

impl SignIn {
    /// Checks the URIs and what goes together: a public client signs users in (it has no
    /// other use), and post-logout URIs need redirect URIs.
    fn check(&self) -> Result<(), ServiceError> {
        for (uris, what) in [
            (&self.redirect_uris, "redirect URIs"),
            (&self.post_logout_redirect_uris, "post-logout redirect URIs"),
        ] {
            if uris.len() > MAX_REDIRECT_URIS {
                return Err(ServiceError::InvalidField(format!(
                    "a client has at most {MAX_REDIRECT_URIS} {what}"
                )));
            }
            for uri in uris {
                RedirectUri::parse(uri)?;
            }
        }
        if self.redirect_uris.is_empty() {
            let needs = match (self.public, !self.post_logout_redirect_uris.is_empty()) {
                (true, _) => Some("a public client"),
                (false, true) => Some("a post-logout redirect URI"),
                (false, false) if self.first_party => Some("a first-party client"),
                _ => None,
            };
            if let Some(what) = needs {
                return Err(ServiceError::InvalidField(format!(
                    "{what} needs at least one redirect URI: it signs users in"
                )));
            }
        }
        Ok(())
    }
}

/// Makes a service client named `name` with `roles` (`service` when empty), at `now` (see
/// [`new_app_client`]).
pub fn new_client(
    name: &str,
    roles: &[String],
    now: DateTime<Utc>,
) -> Result<NewClient, ServiceError> {
    new_app_client(name, roles, &SignIn::default(), now)
}

/// Makes a client named `name` with `roles` (`service` when empty) that signs users in as
/// `sign_in` says, at `now`: a name of 1 to [`MAX_NAME_BYTES`] bytes without control
/// characters, roles that are [`Role`]s, and URIs that are [`RedirectUri`]s. A confidential
/// client gets a secret; a public one none.
pub fn new_app_client(
    name: &str,
    roles: &[String],
    sign_in: &SignIn,
    now: DateTime<Utc>,
) -> Result<NewClient, ServiceError> {
    if name.trim().is_empty() || name.len() > MAX_NAME_BYTES || name.chars().any(|c| c.is_control())
    {
        return Err(ServiceError::InvalidField(format!(
            "the client name must be 1 to {MAX_NAME_BYTES} bytes, without control characters"
        )));
    }
    let roles = match Role::parse_all(roles)? {
        roles if roles.is_empty() => vec![DEFAULT_ROLE.to_owned()],
        roles => Role::names(roles),
    };
    sign_in.check()?;
    let secret = match sign_in.public {
        true => None,
        false => {
            let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
            aws_lc_rs::rand::fill(&mut *bytes).map_err(|_| ServiceError::NoRandomness)?;
            Some(SecretString::new(format!("{SECRET_PREFIX}{}", URL_SAFE_NO_PAD.encode(*bytes))))
        }
    };
    let client = ServiceClient {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.to_owned(),
        secret_digest: secret.as_ref().map_or_else(Vec::new, |s| secret_digest(s.expose())),
        roles,
        session_id: uuid::Uuid::new_v4().to_string(),
        created_at: now,
        redirect_uris: sign_in.redirect_uris.clone(),
        post_logout_redirect_uris: sign_in.post_logout_redirect_uris.clone(),
        public: sign_in.public,
        first_party: sign_in.first_party,
        require_dpop: sign_in.require_dpop,
    };
    Ok(NewClient { client, secret })
}

/// The digest stored for `secret`.
pub fn secret_digest(secret: &str) -> Vec<u8> {
    digest(&SHA256, secret.as_bytes()).as_ref().to_vec()
}

/// Whether `secret` is the one `stored` is the digest of, in constant time; with no stored
/// digest (an unknown client) the work is the same and the answer `false`.
pub fn secret_matches(secret: &str, stored: Option<&[u8]>) -> bool {
    let presented = secret_digest(secret);
    let dummy = [0u8; 32];
    let equal: bool = presented.ct_eq(stored.unwrap_or(&dummy)).into();
    // A public client's digest is empty: no secret authenticates it.
    equal && stored.is_some_and(|digest| !digest.is_empty())
}

/// The client that `id` and `secret` authenticate, counting a failure against the pair of
/// client id and address like a failed login.
pub async fn authenticate(
    instance: &Instance<'_>,
    throttle: &LoginThrottle,
    ip: IpAddr,
    id: &str,
    secret: &SecretString,
) -> Result<ServiceClient, ServiceError> {
    // Keyed apart from accounts: an email has no space.
    let account = format!("client {id}");
    throttle
        .check_pair(&account, ip)
        .map_err(|retry_after| ServiceError::RateLimited { retry_after })?;
    let client = instance.clients.get(instance.store, instance.sessions.revocations(), id).await?;
    if secret_matches(secret.expose(), client.as_ref().map(|c| c.secret_digest.as_slice())) {
        throttle.succeeded(&account, ip);
        // Checked above: a match needs a stored client.
        return client.ok_or(ServiceError::ClientAuthenticationFailed);
    }
    throttle.failed(&account, ip);
    tracing::warn!(client_id = %id, %ip, "client authentication failed");
    Err(ServiceError::ClientAuthenticationFailed)
}

/// The client application that calls the token endpoint as `id`, with `secret` if it sent
/// one (RFC 6749 §2.3): a confidential client by its secret (as [`authenticate`]), a public
/// client by its id alone, and never a public client with a secret or a confidential one
/// without ([`ServiceError::ClientAuthenticationFailed`]).
pub async fn authenticate_app(
    instance: &Instance<'_>,
    throttle: &LoginThrottle,
    ip: IpAddr,
    id: &str,
    secret: Option<&SecretString>,
) -> Result<ServiceClient, ServiceError> {
    if let Some(secret) = secret {
        return authenticate(instance, throttle, ip, id, secret).await;
    }
    match instance.clients.get(instance.store, instance.sessions.revocations(), id).await? {
        Some(client) if client.public => Ok(client),
        _ => {
            tracing::warn!(client_id = %id, %ip, "client authentication failed");
            Err(ServiceError::ClientAuthenticationFailed)
        }
    }
}

/// The access token of `client`: `sub` its id, `roles` its roles, `sid` its session; bound
/// to the DPoP key the request proved, if any (`cnf`).
pub fn issue<S: AuthStore>(
    sessions: &Sessions<S>,
    client: &ServiceClient,
    proven_key: Option<&jwt_core::Confirmation>,
) -> Result<Issued<AccessToken>, ServiceError> {
    let subject = Subject { id: client.id.clone(), roles: client.roles.clone(), email: None };
    let sid = &client.session_id;
    Ok(match proven_key {
        Some(cnf) => sessions.issue_bound_access(&subject, sid, None, cnf)?,
        None => sessions.issue_access(&subject, sid, None)?,
    })
}

/// Stores `new`; [`ServiceError::ClientNameTaken`] if another client has its name.
pub async fn add(store: &Store, new: &NewClient) -> Result<(), ServiceError> {
    store.add_client(&new.client).await.map_err(|e| match e {
        StoreError::NameTaken => ServiceError::ClientNameTaken(new.client.name.clone()),
        e => e.into(),
    })
}

/// Every client, oldest first.
pub async fn list(store: &Store) -> Result<Vec<ServiceClient>, ServiceError> {
    Ok(store.clients().await?)
}

/// The client that `id_or_name` names: the one with that id, or else the one with that name
/// (names are unique); `None` if there is neither.
async fn named(store: &Store, id_or_name: &str) -> Result<Option<ServiceClient>, StoreError> {
    if let Some(client) = store.client(id_or_name).await? {
        return Ok(Some(client));
    }
    Ok(store.clients().await?.into_iter().find(|client| client.name == id_or_name))
}

/// A removed client, and the revocations its removal recorded.
#[derive(Debug)]
pub struct RemovedClient {
    /// The client as it was.
    pub client: ServiceClient,
    /// Its own session's first, then those of the sessions users granted it.
    pub revocations: Vec<Revocation>,
}

/// Removes a client; `None` if there is none with that id. Its tokens, which live
/// `token_lifetime` at most, are refused everywhere once the revocations are read, and so
/// are those of the sessions users granted it.
pub async fn remove(
    store: &Store,
    id: &str,
    token_lifetime: TimeDelta,
    now: DateTime<Utc>,
) -> Result<Option<RemovedClient>, StoreError> {
    let tokens_expire_at = now + token_lifetime + jwt_core::MAX_LEEWAY;
    let removed = store.remove_client(id, now, tokens_expire_at).await?;
    Ok(removed.map(|(client, revocations)| RemovedClient { client, revocations }))
}

/// Removes client `id` through a running server (an administrator's request): as
/// [`remove_named`] does, for the client with this id alone, and its revocations are in force
/// on this instance at once, counted, and told to the readers of its feed; other instances
/// read them from the database. `own_lifetime` is this server's access-token lifetime, taken
/// if it is longer than any the servers recorded. `None` if no client has this id.
pub async fn remove_here(
    instance: &Instance<'_>,
    id: &str,
    own_lifetime: TimeDelta,
    now: DateTime<Utc>,
) -> Result<Option<ServiceClient>, ServiceError> {
    let store = instance.store;
    let lifetime = crate::keys::longest_lifetimes(store, (Some(own_lifetime), None), now).await?;
    let Some(removed) = remove(store, id, lifetime.access, now).await? else {
        return Ok(None);
    };
    instance.sessions.revocations().apply(&removed.revocations);
    instance.metrics.revocations.inc();
    instance.feed_wake.notify_one();
    Ok(Some(removed.client))
}

/// Removes the client `id_or_name` names (see [`ServiceError::UnknownClient`]) and returns
/// it. Its tokens are refused everywhere as long as they may live: the longest access-token
/// lifetime the servers recorded, or `given` if longer (see
/// [`longest_lifetimes`](crate::keys::longest_lifetimes)).
pub async fn remove_named(
    store: &Store,
    id_or_name: &str,
    given: Option<TimeDelta>,
    now: DateTime<Utc>,
) -> Result<ServiceClient, ServiceError> {
    let lifetime = crate::keys::longest_lifetimes(store, (given, None), now).await?.access;
    let Some(named) = named(store, id_or_name).await? else {
        return Err(ServiceError::UnknownClient(id_or_name.to_owned()));
    };
    // `None`: removed meanwhile by someone else.
    let removed = remove(store, &named.id, lifetime, now).await?;
    removed.map(|removed| removed.client).ok_or(ServiceError::ClientGone(named.id))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // fixtures at the system's time
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_prefixed_and_match_only_their_digest() {
        let now = Utc::now();
        let a = new_client("billing", &[], now).expect("a client");
        let b = new_client("billing", &[], now).expect("a client");
        let (a_secret, b_secret) = (a.secret.expect("a secret"), b.secret.expect("a secret"));
        assert!(a_secret.expose().starts_with(SECRET_PREFIX));
        assert_ne!(a_secret.expose(), b_secret.expose());
        assert_ne!(a.client.id, b.client.id);
        assert_eq!(a.client.roles, [DEFAULT_ROLE]);
        assert!(secret_matches(a_secret.expose(), Some(&a.client.secret_digest)));
        assert!(!secret_matches(b_secret.expose(), Some(&a.client.secret_digest)));
        assert!(!secret_matches(a_secret.expose(), None));
        assert!(!format!("{a_secret:?}").contains(SECRET_PREFIX));
    }

    fn app(redirect: &[&str], post_logout: &[&str], public: bool, first_party: bool) -> SignIn {
        let owned = |uris: &[&str]| uris.iter().map(|u| (*u).to_owned()).collect();
        SignIn {
            redirect_uris: owned(redirect),
            post_logout_redirect_uris: owned(post_logout),
            public,
            first_party,
            require_dpop: false,
        }
    }

    #[test]
    fn a_public_app_has_no_secret_and_no_secret_authenticates_it() {
        let now = Utc::now();
        let sign_in = app(&["com.example.app:/cb"], &[], true, true);
        let public = new_app_client("phone", &[], &sign_in, now).expect("a public client");
        assert!(public.secret.is_none() && public.client.secret_digest.is_empty());
        assert!((public.client.public, public.client.first_party) == (true, true));
        assert!(!secret_matches("", Some(&public.client.secret_digest)), "not even an empty one");
        // The positive control: a confidential app gets a secret that authenticates it.
        let sign_in =
            app(&["https://app.example.com/cb"], &["https://app.example.com/"], false, false);
        let web = new_app_client("web", &[], &sign_in, now).expect("a confidential client");
        let secret = web.secret.expect("a secret");
        assert!(secret_matches(secret.expose(), Some(&web.client.secret_digest)));
        assert_eq!(web.client.redirect_uris, ["https://app.example.com/cb"]);
        assert_eq!(web.client.post_logout_redirect_uris, ["https://app.example.com/"]);
    }

    #[test]
    fn an_apps_uris_and_what_goes_together_are_checked() {
        let now = Utc::now();
        for (sign_in, why) in [
            (app(&["http://app.example.com/cb"], &[], false, false), "loopback"),
            (
                app(&["https://app.example.com/cb"], &["https://x.example/#f"], false, false),
                "fragment",
            ),
            (app(&[], &[], true, false), "a public client needs"),
            (app(&[], &[], false, true), "a first-party client needs"),
            (
                app(&[], &["https://app.example.com/"], false, false),
                "a post-logout redirect URI needs",
            ),
        ] {
            let refused = new_app_client("app", &[], &sign_in, now).err().map(|e| e.to_string());
            assert!(
                refused.as_deref().is_some_and(|e| e.contains(why)),
                "{sign_in:?}: {refused:?}"
            );
        }
        let many: Vec<String> =
            (0..=MAX_REDIRECT_URIS).map(|i| format!("https://app.example.com/{i}")).collect();
        let sign_in = SignIn { redirect_uris: many, ..SignIn::default() };
        assert!(new_app_client("app", &[], &sign_in, now).is_err(), "too many URIs");
        let ok = app(&["https://app.example.com/cb"], &[], false, false);
        assert!(new_app_client("app", &[], &ok, now).is_ok(), "the positive control");
    }

    #[test]
    fn any_client_may_require_dpop_and_none_does_unless_asked() {
        let now = Utc::now();
        let web = app(&["https://app.example.com/cb"], &[], false, false);
        let phone = app(&["com.example.app:/cb"], &[], true, true);
        for sign_in in [SignIn::default(), web, phone] {
            let plain = new_app_client("app", &[], &sign_in, now).expect("a client");
            assert!(!plain.client.require_dpop, "{sign_in:?}: not unless asked");
            let bound = SignIn { require_dpop: true, ..sign_in };
            let made = new_app_client("app", &[], &bound, now).expect("a client");
            assert!(made.client.require_dpop, "{bound:?}");
            assert_eq!(made.secret.is_some(), !bound.public, "{bound:?}: as without the flag");
        }
    }

    #[test]
    fn names_and_roles_are_checked() {
        let now = Utc::now();
        assert!(new_client("", &[], now).is_err());
        assert!(new_client("a\nb", &[], now).is_err());
        assert!(new_client(&"x".repeat(MAX_NAME_BYTES + 1), &[], now).is_err());
        let refused = new_client("ok", &["two words".into()], now).err().map(|e| e.to_string());
        assert_eq!(
            refused.as_deref(),
            Some("`two words` is not a role name (1 to 64 characters, no whitespace)")
        );
        let roles = new_client("ok", &["service".into(), "reports".into()], now).unwrap();
        assert_eq!(roles.client.roles, ["service", "reports"]);
    }
}
