//! Sessions: login, refresh-token rotation with reuse detection, refresh-token introspection,
//! logout, and the per-request check of access tokens against the in-memory revocation set.
//!
//! The rules, as the HTTP contract states them: a refresh returns a new pair and retires the
//! presented token; a retired token presented again within the grace period gets a fresh pair
//! in the same session; after it, the whole session is revoked; no refresh carries a session
//! past its absolute maximum age.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde::de::DeserializeOwned;

use aws_lc_rs::constant_time;

use crate::claims::{AccessClaims, NoExtra, RefreshClaims};
use crate::error::{DpopRefusal, Error, Result, ReuseDetails};
use crate::follower::{FeedFollower, StoreFeed};
use crate::revocation::RevocationSet;
use crate::store::{
    AuthStore, GraceOutcome, NewRefreshToken, NewSession, RefreshTokenState, RevokeReason,
    RotateOutcome, SessionRecord,
};
use crate::tokens::{AccessToken, Issued, TokenPair, TokenService};
use crate::values::{ClientInfo, Confirmation, Grant, Subject};

/// How long sessions live and how forgiving refresh is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Absolute session lifetime from login (default 30 days).
    pub max_age: TimeDelta,
    /// How long after its rotation a refresh token may be presented again and still get a
    /// pair (default 10 s). Zero makes any reuse revoke the session.
    pub reuse_grace: TimeDelta,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self { max_age: TimeDelta::days(30), reuse_grace: TimeDelta::seconds(10) }
    }
}

/// Login, refresh, logout and authentication over a store `S`. The crate documentation has a
/// complete example.
#[derive(Debug)]
pub struct Sessions<S> {
    tokens: Arc<TokenService>,
    store: S,
    revocations: Arc<RevocationSet>,
    policy: SessionPolicy,
}

/// A refresh token bound to a key (`cnf`) is refreshed only by a request that proved that key
/// (RFC 9449 §5); an unbound one by any, which binds the new pair to the key it proved, if
/// any: a binding is never dropped.
fn check_refresh_binding(
    bound: Option<&Confirmation>,
    proven: Option<&Confirmation>,
) -> Result<()> {
    match (bound, proven) {
        (None, _) => Ok(()),
        (Some(_), None) => Err(Error::InvalidDpopProof(DpopRefusal::Missing)),
        (Some(bound), Some(proven)) => {
            constant_time::verify_slices_are_equal(bound.jkt.as_bytes(), proven.jkt.as_bytes())
                .map_err(|_| Error::InvalidDpopProof(DpopRefusal::WrongKey))
        }
    }
}

/// Whether a token retired at `rotated_at` and presented again at `seen_at` is inside the
/// reuse grace. A zero grace is never inside: any reuse revokes. A negative elapsed time (the
/// rotation was recorded by a clock ahead of this one, another instance's or a caller's that
/// read it later) counts as no time at all, so it is inside any positive grace and never turns
/// a reuse into a grace hit by itself.
fn within_grace(rotated_at: DateTime<Utc>, seen_at: DateTime<Utc>, grace: TimeDelta) -> bool {
    let elapsed = (seen_at - rotated_at).max(TimeDelta::zero());
    grace > TimeDelta::zero() && elapsed < grace
}

impl<S: AuthStore> Sessions<S> {
    /// Sessions over `store`, issuing with `tokens`, with an empty revocation set.
    pub fn new(tokens: Arc<TokenService>, store: S, policy: SessionPolicy) -> Self {
        Self { tokens, store, revocations: Arc::new(RevocationSet::new()), policy }
    }

    /// The same, sharing an existing revocation set.
    pub fn with_revocations(mut self, revocations: Arc<RevocationSet>) -> Self {
        self.revocations = revocations;
        self
    }

    /// The token service.
    pub fn tokens(&self) -> &Arc<TokenService> {
        &self.tokens
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The revocation set consulted by [`Sessions::authenticate`].
    pub fn revocations(&self) -> &Arc<RevocationSet> {
        &self.revocations
    }

    /// The session policy.
    pub fn policy(&self) -> &SessionPolicy {
        &self.policy
    }

    fn now(&self) -> DateTime<Utc> {
        self.tokens.clock().now()
    }

    /// Starts a session for an authenticated `subject` and returns its first pair.
    pub async fn start(&self, subject: &Subject, client: ClientInfo) -> Result<TokenPair> {
        self.start_session(subject, client, None, None).await
    }

    /// Starts a session granted to a client application (the authorization code grant) and
    /// returns its first pair: its access tokens carry the grant's `client_id`, `scope` and
    /// audience, and only that client refreshes them ([`Sessions::refresh_by`]).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use jwt_core::{Algorithm, ClientInfo, Error, Grant, KeySet, MemoryStore, SessionPolicy,
    /// #     Sessions, SigningKey, Subject, TokenPolicy, TokenService};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let keys = KeySet::new(SigningKey::generate(Algorithm::EdDSA)?);
    /// # let tokens = Arc::new(TokenService::new(TokenPolicy::new("https://auth.example", "api"), keys)?);
    /// # let store = MemoryStore::new();
    /// # let alice = Subject { id: "alice".into(), roles: vec![], email: None };
    /// # store.put_user(alice.clone());
    /// let sessions = Sessions::new(tokens, store, SessionPolicy::default());
    /// let grant = Grant { client_id: "spa".into(), scope: "offline_access".into(), audience: None };
    /// let pair = sessions.start_granted(&alice, ClientInfo::default(), grant).await?;
    /// let claims = sessions.authenticate(pair.access_token.expose())?;
    /// assert_eq!(claims.client_id.as_deref(), Some("spa"));
    ///
    /// // Another client, or none, cannot refresh it; its own client can.
    /// let refresh = pair.refresh_token.expose();
    /// let other = sessions.refresh_by(refresh, ClientInfo::default(), Some("other")).await;
    /// assert!(matches!(other, Err(Error::WrongClient)));
    /// assert!(matches!(sessions.refresh(refresh, ClientInfo::default()).await, Err(Error::WrongClient)));
    /// assert!(sessions.refresh_by(refresh, ClientInfo::default(), Some("spa")).await.is_ok());
    /// # Ok::<(), jwt_core::Error>(()) }).unwrap();
    /// ```
    pub async fn start_granted(
        &self,
        subject: &Subject,
        client: ClientInfo,
        grant: Grant,
    ) -> Result<TokenPair> {
        self.start_session(subject, client, Some(grant), None).await
    }

    /// [`Sessions::start_granted`] for the exchange of a single-use authorization code, whose
    /// digest `code` the store claims in the transaction that creates the session
    /// ([`NewSession::code`]): a code already claimed is [`Error::CodeUsed`], and no session
    /// is created.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use jwt_core::{Algorithm, ClientInfo, Error, Grant, KeySet, MemoryStore, SessionPolicy,
    /// #     Sessions, SigningKey, Subject, TokenPolicy, TokenService};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let keys = KeySet::new(SigningKey::generate(Algorithm::EdDSA)?);
    /// # let tokens = Arc::new(TokenService::new(TokenPolicy::new("https://auth.example", "api"), keys)?);
    /// # let store = MemoryStore::new();
    /// # let alice = Subject { id: "alice".into(), roles: vec![], email: None };
    /// # store.put_user(alice.clone());
    /// let sessions = Sessions::new(tokens, store, SessionPolicy::default());
    /// let grant = Grant { client_id: "spa".into(), scope: "email".into(), audience: None };
    /// let digest = b"the code's SHA-256".to_vec();
    /// let first = sessions.start_from_code(&alice, ClientInfo::default(), grant.clone(), digest.clone());
    /// assert!(first.await.is_ok());
    /// let again = sessions.start_from_code(&alice, ClientInfo::default(), grant, digest).await;
    /// assert!(matches!(again, Err(Error::CodeUsed)));
    /// # Ok::<(), jwt_core::Error>(()) }).unwrap();
    /// ```
    pub async fn start_from_code(
        &self,
        subject: &Subject,
        client: ClientInfo,
        grant: Grant,
        code: Vec<u8>,
    ) -> Result<TokenPair> {
        self.start_session(subject, client, Some(grant), Some(code)).await
    }

    async fn start_session(
        &self,
        subject: &Subject,
        client: ClientInfo,
        grant: Option<Grant>,
        code: Option<Vec<u8>>,
    ) -> Result<TokenPair> {
        let now = self.now();
        let expires_at = now.checked_add_signed(self.policy.max_age).ok_or_else(|| {
            Error::InvalidConfig("the session maximum age is out of range".into())
        })?;
        let session = NewSession {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: subject.id.clone(),
            created_at: now,
            expires_at,
            client,
            grant,
            code,
        };
        let (pair, first) = self.pair(subject, &session, None)?;
        self.store.create_session(&session, &first).await?;
        Ok(pair)
    }

    /// Verifies an access token and checks it against the revocation set, without I/O.
    pub fn authenticate(&self, access_token: &str) -> Result<AccessClaims<NoExtra>> {
        self.authenticate_with(access_token)
    }

    /// [`Sessions::authenticate`] for access tokens that carry the caller's own claims.
    pub fn authenticate_with<X: DeserializeOwned>(
        &self,
        access_token: &str,
    ) -> Result<AccessClaims<X>> {
        self.tokens.verify_access_with::<X>(access_token, &self.revocations)
    }

    /// Rotates a refresh token: see the module documentation for the rules.
    ///
    /// Signature and revocation are checked before the store is asked anything, so a forged
    /// or revoked token costs no I/O. An expired token costs one read of its session, to tell
    /// a token that ran out ([`Error::Expired`]) from a session that ended
    /// ([`Error::SessionExpired`]).
    /// A session granted to a client application is refreshed only by that client
    /// ([`Sessions::refresh_by`]): here it is [`Error::WrongClient`].
    pub async fn refresh(&self, refresh_token: &str, client: ClientInfo) -> Result<TokenPair> {
        self.refresh_by(refresh_token, client, None).await
    }

    /// [`Sessions::refresh`] by the client application `client_id` (authenticated by the
    /// caller): a session granted to another client, or a session of a login (granted to none)
    /// presented by a client, is [`Error::WrongClient`], and nothing changes.
    pub async fn refresh_by(
        &self,
        refresh_token: &str,
        client: ClientInfo,
        client_id: Option<&str>,
    ) -> Result<TokenPair> {
        let (claims, expired) = self.tokens.verify_refresh_even_expired(refresh_token)?;
        check_refresh_binding(claims.cnf.as_ref(), client.proven_key.as_ref())?;
        if expired {
            return Err(self.why_expired(&claims).await?);
        }
        let now = self.now();
        let (session, subject) = self.live_session(&claims, now).await?;
        if session.grant.as_ref().map(|g| g.client_id.as_str()) != client_id {
            return Err(Error::WrongClient);
        }
        let new = NewSession {
            id: session.id.clone(),
            user_id: session.user_id.clone(),
            created_at: session.created_at,
            expires_at: session.expires_at,
            client,
            grant: session.grant.clone(),
            code: None,
        };
        let (pair, replacement) = self.pair(&subject, &new, Some(&claims.jti))?;
        match self.store.rotate(&claims.jti, &replacement, now).await? {
            RotateOutcome::Rotated => Ok(pair),
            RotateOutcome::AlreadyRotated { rotated_at, rotated_by } => {
                // `now` was read before the rotation: a caller that lost the race may have
                // read it before the winner did, which would put its request before the
                // rotation it lost to. Judge the reuse by the clock as it is now.
                let seen_at = self.now();
                if within_grace(rotated_at, seen_at, self.policy.reuse_grace) {
                    // Recorded only if the session is still live at that moment, in one step
                    // with the check: a reuse after the grace that revoked it meanwhile wins.
                    return match self.store.add_refresh_token(&replacement).await? {
                        GraceOutcome::Recorded => Ok(pair),
                        GraceOutcome::SessionRevoked => Err(Error::SessionRevoked),
                    };
                }
                self.revoke(&session.id, RevokeReason::RefreshReuse).await?;
                Err(Error::RefreshReused(Box::new(ReuseDetails {
                    session_id: session.id,
                    user_id: session.user_id,
                    rotated_at,
                    detected_at: seen_at,
                    rotated_by,
                })))
            }
            RotateOutcome::SessionRevoked => Err(Error::SessionRevoked),
            RotateOutcome::NotFound => Err(Error::UnknownRefreshToken),
        }
    }

    /// Whether presenting `refresh_token` now would get a pair, without presenting it: its
    /// claims if so, `None` if not. Nothing changes either way: a token retired longer ago than
    /// the grace is `None` here, where [`Sessions::refresh`] would revoke its session.
    ///
    /// The checks are refresh's: a valid signature and claims, not revoked in the revocation
    /// set, a session of the token's user that is neither revoked nor ended, an active user,
    /// and a token that is current or was retired within the reuse grace. `Err` only when the
    /// store fails. For RFC 7662 introspection of refresh tokens.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use jwt_core::{Algorithm, ClientInfo, KeySet, MemoryStore, SessionPolicy, Sessions,
    /// #     SigningKey, Subject, TokenPolicy, TokenService};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let keys = KeySet::new(SigningKey::generate(Algorithm::EdDSA)?);
    /// # let tokens = Arc::new(TokenService::new(TokenPolicy::new("https://auth.example", "api"), keys)?);
    /// # let store = MemoryStore::new();
    /// # let alice = Subject { id: "alice".into(), roles: vec![], email: None };
    /// # store.put_user(alice.clone());
    /// let sessions = Sessions::new(tokens, store, SessionPolicy::default());
    /// let pair = sessions.start(&alice, ClientInfo::default()).await?;
    /// let claims = sessions.introspect_refresh(pair.refresh_token.expose()).await?;
    /// assert_eq!(claims.map(|c| c.sub).as_deref(), Some("alice"));
    /// assert!(sessions.introspect_refresh("not.a.token").await?.is_none());
    /// # Ok::<(), jwt_core::Error>(()) }).unwrap();
    /// ```
    pub async fn introspect_refresh(&self, refresh_token: &str) -> Result<Option<RefreshClaims>> {
        let claims = match self.tokens.verify_refresh(refresh_token) {
            Ok(claims) => claims,
            Err(e) if e.is_token_rejection() => return Ok(None),
            Err(e) => return Err(e),
        };
        let now = self.now();
        match self.live_session(&claims, now).await {
            Ok(_) => {}
            Err(e) if e.is_token_rejection() => return Ok(None),
            Err(e) => return Err(e),
        }
        let usable = match self.store.refresh_token_state(&claims.jti, &claims.sid).await? {
            Some(RefreshTokenState::Current) => true,
            Some(RefreshTokenState::Retired { rotated_at }) => {
                within_grace(rotated_at, now, self.policy.reuse_grace)
            }
            None => false,
        };
        Ok(usable.then_some(claims))
    }

    /// What a refresh token needs besides its own state in the store: not revoked in the
    /// revocation set (checked first, without I/O), a session of its user that is neither
    /// revoked nor ended at `now`, and an active user. The session and the user as they are.
    async fn live_session(
        &self,
        claims: &RefreshClaims,
        now: DateTime<Utc>,
    ) -> Result<(SessionRecord, Subject)> {
        if self.revocations.is_revoked(&claims.sid, &claims.sub, claims.iat) {
            return Err(Error::Revoked);
        }
        let session = self.store.session(&claims.sid).await?.ok_or(Error::UnknownRefreshToken)?;
        if session.user_id != claims.sub {
            return Err(Error::UnknownRefreshToken);
        }
        if session.revoked_at.is_some() {
            return Err(Error::SessionRevoked);
        }
        if now >= session.expires_at {
            return Err(Error::SessionExpired);
        }
        let subject =
            self.store.active_subject(&claims.sub).await?.ok_or(Error::InactiveSubject)?;
        Ok((session, subject))
    }

    /// Why an expired refresh token is refused: [`Error::SessionExpired`] only if its session
    /// has really ended, [`Error::Expired`] if the token ran out while its session lives.
    ///
    /// The store decides, not the token: a token's lifetime says nothing sure about its
    /// session's end once the configured lifetimes change. A session that is missing or of
    /// another user is answered as [`Error::Expired`], so nothing is revealed about it.
    async fn why_expired(&self, claims: &RefreshClaims) -> Result<Error> {
        let session = self.store.session(&claims.sid).await?;
        Ok(match session {
            Some(s) if s.user_id == claims.sub && s.expires_at <= self.now() => {
                Error::SessionExpired
            }
            _ => Error::Expired,
        })
    }

    /// Ends one session (logout): its access and refresh tokens all stop working, here at
    /// once and on other instances when their [`FeedFollower`] next reads the feed. Ending an
    /// unknown or already ended session is not an error.
    pub async fn end(&self, session_id: &str, reason: RevokeReason) -> Result<()> {
        self.revoke(session_id, reason).await
    }

    /// Ends every session of a user and voids every token issued to them before now.
    pub async fn end_all(&self, user_id: &str, reason: RevokeReason) -> Result<()> {
        let revocations = self.store.revoke_user(user_id, reason, self.now()).await?;
        self.revocations.apply(&revocations);
        Ok(())
    }

    /// Voids tokens issued before `before`, for one user or for everyone (incident response).
    pub async fn void_issued_before(
        &self,
        user_id: Option<&str>,
        before: DateTime<Utc>,
    ) -> Result<()> {
        crate::revocation::check_cut_off(before, self.now())?;
        let revocation = self.store.void_issued_before(user_id, before, self.now()).await?;
        self.revocations.apply(&[revocation]);
        Ok(())
    }

    /// A follower of a revocation feed into this instance's revocation set, on the token
    /// service's clock. With [`Sessions::store_feed`], it honours the revocations other
    /// instances record in the same store. See [`FeedFollower`].
    pub fn revocation_follower(&self) -> FeedFollower {
        FeedFollower::new(self.revocations.clone(), self.tokens.clock().clone())
    }

    /// The store's revocation feed, read on the token service's clock, for access tokens of
    /// this service's lifetime (with its leeway). See [`StoreFeed`].
    pub fn store_feed(&self) -> StoreFeed<S>
    where
        S: Clone,
    {
        let policy = self.tokens.policy();
        StoreFeed::new(
            self.store.clone(),
            self.tokens.clock().clone(),
            policy.access_ttl + policy.leeway,
        )
    }

    async fn revoke(&self, session_id: &str, reason: RevokeReason) -> Result<()> {
        if let Some(revocation) = self.store.revoke_session(session_id, reason, self.now()).await? {
            self.revocations.apply(&[revocation]);
        }
        Ok(())
    }

    /// Signs an access token for `subject` in session `session_id` (see
    /// [`TokenService::issue_access`]), for tokens outside a refresh-token session such as a
    /// service client's. The invariant of every token these sessions hand out holds here too:
    /// a token that the revocation set voids already is never issued
    /// ([`Error::VoidAtIssuance`]).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use chrono::{TimeDelta, Utc};
    /// # use jwt_core::{Algorithm, Error, KeySet, MemoryStore, Revocation, SessionPolicy,
    /// #     Sessions, SigningKey, Subject, TokenPolicy, TokenService};
    /// # let keys = KeySet::new(SigningKey::generate(Algorithm::EdDSA)?);
    /// # let tokens = Arc::new(TokenService::new(TokenPolicy::new("https://auth.example", "api"), keys)?);
    /// let sessions = Sessions::new(tokens, MemoryStore::new(), SessionPolicy::default());
    /// let billing = Subject { id: "billing".into(), roles: vec![], email: None };
    /// let issued = sessions.issue_access(&billing, "client-session", None)?;
    /// assert!(sessions.authenticate(issued.token.expose()).is_ok());
    ///
    /// // Once its session is revoked, no token of it is handed out.
    /// let expires_at = Utc::now() + TimeDelta::hours(1);
    /// sessions.revocations().apply(&[Revocation::Session { id: "client-session".into(), expires_at }]);
    /// let refused = sessions.issue_access(&billing, "client-session", None);
    /// assert!(matches!(refused, Err(Error::VoidAtIssuance)));
    /// # Ok::<(), jwt_core::Error>(())
    /// ```
    pub fn issue_access(
        &self,
        subject: &Subject,
        session_id: &str,
        not_after: Option<DateTime<Utc>>,
    ) -> Result<Issued<AccessToken>> {
        let access = self.tokens.issue_access(subject, session_id, not_after)?;
        self.unless_void(access, session_id, subject)
    }

    /// [`Sessions::issue_access`] bound to a DPoP key: the token carries `cnf` (see
    /// [`TokenService::issue_bound_access`]).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use jwt_core::{Algorithm, Confirmation, KeySet, MemoryStore, SessionPolicy, Sessions,
    /// #     SigningKey, Subject, TokenPolicy, TokenService};
    /// # let keys = KeySet::new(SigningKey::generate(Algorithm::EdDSA)?);
    /// # let tokens = Arc::new(TokenService::new(TokenPolicy::new("https://auth.example", "api"), keys)?);
    /// let sessions = Sessions::new(tokens, MemoryStore::new(), SessionPolicy::default());
    /// let billing = Subject { id: "billing".into(), roles: vec![], email: None };
    /// let cnf = Confirmation { jkt: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into() };
    /// let issued = sessions.issue_bound_access(&billing, "client-session", None, &cnf)?;
    /// assert_eq!(sessions.authenticate(issued.token.expose())?.cnf, Some(cnf));
    /// # Ok::<(), jwt_core::Error>(())
    /// ```
    pub fn issue_bound_access(
        &self,
        subject: &Subject,
        session_id: &str,
        not_after: Option<DateTime<Utc>>,
        cnf: &Confirmation,
    ) -> Result<Issued<AccessToken>> {
        let access = self.tokens.issue_bound_access(subject, session_id, not_after, None, cnf)?;
        self.unless_void(access, session_id, subject)
    }

    /// `access`, a token of `subject` in `session_id`, unless the revocation set voids it
    /// already.
    fn unless_void(
        &self,
        access: Issued<AccessToken>,
        session_id: &str,
        subject: &Subject,
    ) -> Result<Issued<AccessToken>> {
        let iat = access.issued_at.timestamp();
        if self.revocations.is_revoked(session_id, &subject.id, iat) {
            return Err(Error::VoidAtIssuance);
        }
        Ok(access)
    }

    /// Signs a pair for `subject` in `session` (its client being the one asking now), and the
    /// record of its refresh token.
    fn pair(
        &self,
        subject: &Subject,
        session: &NewSession,
        parent_jti: Option<&str>,
    ) -> Result<(TokenPair, NewRefreshToken)> {
        let (session_id, session_end) = (session.id.as_str(), session.expires_at);
        let client = &session.client;
        // The key the request proved: both tokens are bound to it.
        let cnf = client.proven_key.as_ref();
        let grant = session.grant.as_ref();
        let issued = self
            .tokens
            .issue(subject, session_id, Some(session_end), grant, cnf, NoExtra {})
            .and_then(|access| self.unless_void(access, session_id, subject));
        let access = match issued {
            // A refresh racing the reuse that revoked its session is refused as the session
            // is, whenever the revocation landed.
            Err(Error::VoidAtIssuance) if self.revocations.is_session_revoked(session_id) => {
                return Err(Error::SessionRevoked);
            }
            issued => issued?,
        };
        let refresh = self.tokens.sign_refresh(&subject.id, session_id, Some(session_end), cnf)?;
        let record = NewRefreshToken {
            jti: refresh.jti,
            session_id: session_id.to_owned(),
            parent_jti: parent_jti.map(str::to_owned),
            issued_at: refresh.issued_at,
            expires_at: refresh.expires_at,
            client: client.clone(),
        };
        let pair = TokenPair {
            access_token: access.token,
            refresh_token: refresh.token,
            token_type: if cnf.is_some() { "DPoP" } else { "Bearer" },
            expires_in: (access.expires_at - access.issued_at).num_seconds(),
            refresh_expires_in: (refresh.expires_at - refresh.issued_at).num_seconds(),
            session_id: session_id.to_owned(),
        };
        Ok((pair, record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_grace_is_never_a_grace_hit_whatever_the_clocks_say() {
        let rotated_at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        for elapsed_ms in [-5_000, -1, 0, 1, 5_000] {
            let seen_at = rotated_at + TimeDelta::milliseconds(elapsed_ms);
            assert!(!within_grace(rotated_at, seen_at, TimeDelta::zero()), "{elapsed_ms} ms");
        }
    }

    #[test]
    fn a_positive_grace_counts_a_clock_behind_the_rotation_as_no_time() {
        let rotated_at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let grace = TimeDelta::seconds(10);
        let after = |ms| rotated_at + TimeDelta::milliseconds(ms);
        assert!(within_grace(rotated_at, after(-250), grace), "another clock a little ahead");
        assert!(within_grace(rotated_at, after(0), grace));
        assert!(within_grace(rotated_at, after(9_999), grace));
        assert!(!within_grace(rotated_at, after(10_000), grace), "the grace is half-open");
        assert!(!within_grace(rotated_at, after(60_000), grace));
    }
}
