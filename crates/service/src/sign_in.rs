//! Browser sign-in sessions (HTTP contract v3, "Sign-in for apps"), and what an authorization
//! request needs next: the sign-in page, the consent page, or a code.
//!
//! A browser that signed in on the sign-in page holds a sign-in token
//! ([`jwt_core::SignInClaims`]) in the sign-in cookie. Its session is stored like any other
//! (with no refresh token), so that logout-all, disabling the user and an administrator's
//! revoke end it too; and the token is checked against the revocation set like an access token,
//! so that every instance refuses it once the feed carries the revocation, without a database
//! read.

use chrono::{DateTime, TimeDelta, Utc};
use jwt_core::{ClientInfo, NewSession, SignInClaims, SignInToken};

use crate::authorize::{AuthorizationRequest, Prompt};
use crate::code_grant::SignedIn;
use crate::error::ServiceError;
use crate::instance::Instance;

/// The sign-in cookie's name: `__Host-` (RFC 6265bis §4.1.3.2): set only with `Secure`, from a
/// secure origin, for the whole host and no other, so that no sibling domain can plant one.
pub const SIGN_IN_COOKIE: &str = "__Host-jwt-auth-sign-in";

/// Browser sign-in sessions, as a server holds them.
pub struct SignInSessions<'a> {
    instance: Instance<'a>,
}

impl<'a> SignInSessions<'a> {
    /// The sign-in sessions of the server `instance`.
    pub fn new(instance: Instance<'a>) -> Self {
        Self { instance }
    }

    fn now(&self) -> DateTime<Utc> {
        self.instance.sessions.tokens().clock().now()
    }

    /// Starts a sign-in session for `user_id`, who has just typed the password, from
    /// `client`: the token for the cookie, and who signed in. It lasts `SESSION_MAX_AGE`.
    pub async fn start(
        &self,
        user_id: &str,
        client: &ClientInfo,
    ) -> Result<(SignInToken, SignedIn), ServiceError> {
        let now = self.now();
        let expires_at = now + self.instance.sessions.policy().max_age;
        let session = NewSession {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user_id.to_owned(),
            created_at: now,
            expires_at,
            client: client.clone(),
            grant: None,
            code: None,
        };
        self.instance.store.create_sign_in_session(&session).await?;
        let token =
            self.instance.sessions.tokens().issue_sign_in(user_id, &session.id, now, expires_at)?;
        Ok((
            token,
            SignedIn { user_id: user_id.to_owned(), auth_time: now, session_id: session.id },
        ))
    }

    /// Who the sign-in cookie's `token` says signed in, if it is valid and neither its session
    /// nor its user's tokens are revoked (no I/O), and its user is active.
    pub async fn check(&self, token: &str) -> Result<Option<SignedIn>, ServiceError> {
        let revocations = self.instance.sessions.revocations();
        let claims: SignInClaims =
            match self.instance.sessions.tokens().verify_sign_in(token, revocations) {
                Ok(claims) => claims,
                Err(e) if e.is_token_rejection() => return Ok(None),
                Err(e) => return Err(e.into()),
            };
        let active = self
            .instance
            .users
            .get(self.instance.store, &claims.sub)
            .await?
            .is_some_and(|user| !user.disabled);
        let Some(auth_time) = DateTime::from_timestamp(claims.iat, 0).filter(|_| active) else {
            return Ok(None);
        };
        Ok(Some(SignedIn { user_id: claims.sub, auth_time, session_id: claims.sid }))
    }

    /// Ends the sign-in session `session_id` and every session started under it, here at once
    /// and on other instances through the feed.
    pub async fn end(&self, session_id: &str) -> Result<(), ServiceError> {
        let now = self.now();
        let ended = self
            .instance
            .store
            .end_sign_in_session(session_id, jwt_core::RevokeReason::Logout, now)
            .await?;
        self.instance.sessions.revocations().apply(&ended);
        self.instance.feed_wake.notify_waiters();
        Ok(())
    }
}

/// What an authorization request needs next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// The sign-in page.
    SignIn,
    /// The consent page.
    Consent,
    /// A code, for who signed in.
    Code(SignedIn),
    /// `prompt=none` with a page to show: `login_required` or `consent_required`.
    Refuse(&'static str),
}

/// Where an authorization request stands.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// The user has just signed in on this request's sign-in page (so `prompt=login` and
    /// `max_age` are satisfied).
    pub just_signed_in: bool,
    /// The user has just allowed the client on this request's consent page (so
    /// `prompt=consent` is satisfied).
    pub just_consented: bool,
}

/// What `request` needs next, with the browser's sign-in (`signed_in`, checked), whether the
/// client is first-party, the scopes the user allowed the client before (`allowed`), and
/// `progress`, at `now`.
pub fn next_step(
    request: &AuthorizationRequest,
    signed_in: Option<SignedIn>,
    first_party: bool,
    allowed: Option<&str>,
    progress: Progress,
    now: DateTime<Utc>,
) -> Next {
    let quiet = request.prompt == Some(Prompt::None);
    let too_old = |who: &SignedIn| {
        // A `max_age` too large for a time is no limit.
        let end = request.max_age.and_then(|max_age| {
            let max_age = TimeDelta::try_seconds(i64::try_from(max_age).ok()?)?;
            who.auth_time.checked_add_signed(max_age)
        });
        request.max_age.is_some() && end.is_some_and(|end| end < now)
    };
    let signed_in = match signed_in {
        Some(who) if progress.just_signed_in => who,
        Some(who) if request.prompt != Some(Prompt::Login) && !too_old(&who) => who,
        _ if quiet => return Next::Refuse("login_required"),
        _ => return Next::SignIn,
    };
    let covered = allowed.is_some_and(|allowed| {
        request.scopes.iter().all(|scope| allowed.split(' ').any(|a| a == scope))
    });
    let consented = first_party
        || progress.just_consented
        || (covered && request.prompt != Some(Prompt::Consent));
    match (consented, quiet) {
        (true, _) => Next::Code(signed_in),
        (false, true) => Next::Refuse("consent_required"),
        (false, false) => Next::Consent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pkce::CodeChallenge;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).expect("a time")
    }

    fn request(prompt: Option<Prompt>, max_age: Option<u64>) -> AuthorizationRequest {
        AuthorizationRequest {
            client_id: "app".into(),
            redirect_uri: "https://app.example/cb".into(),
            challenge: CodeChallenge::from_stored("c".into()),
            scopes: vec!["openid".into(), "email".into()],
            state: None,
            nonce: None,
            audience: "api".into(),
            prompt,
            max_age,
            login_hint: None,
        }
    }

    fn alice() -> SignedIn {
        SignedIn { user_id: "alice".into(), auth_time: at(0), session_id: "b".into() }
    }

    const NONE: Progress = Progress { just_signed_in: false, just_consented: false };

    #[test]
    fn a_signed_in_browser_that_allowed_the_scopes_gets_a_code() {
        let step = |req, allowed| next_step(&req, Some(alice()), false, allowed, NONE, at(10));
        assert_eq!(step(request(None, None), Some("openid email")), Next::Code(alice()));
        assert_eq!(
            step(request(None, None), Some("email openid offline_access")),
            Next::Code(alice())
        );
        assert_eq!(
            step(request(None, None), Some("openid")),
            Next::Consent,
            "more scopes ask again"
        );
        assert_eq!(step(request(None, None), None), Next::Consent);
        let first_party = next_step(&request(None, None), Some(alice()), true, None, NONE, at(10));
        assert_eq!(first_party, Next::Code(alice()), "no consent for a first-party client");
    }

    #[test]
    fn the_sign_in_page_shows_without_a_session_on_prompt_login_and_past_max_age() {
        let allowed = Some("openid email");
        let step = |req, who| next_step(&req, who, false, allowed, NONE, at(10));
        assert_eq!(step(request(None, None), None), Next::SignIn);
        assert_eq!(step(request(Some(Prompt::Login), None), Some(alice())), Next::SignIn);
        assert_eq!(step(request(None, Some(9)), Some(alice())), Next::SignIn, "10 s ago > 9 s");
        assert_eq!(step(request(None, Some(10)), Some(alice())), Next::Code(alice()));
        assert_eq!(step(request(None, Some(u64::MAX)), Some(alice())), Next::Code(alice()));
        // Once signed in on this request's page, neither asks again.
        let fresh = Progress { just_signed_in: true, ..NONE };
        for req in [request(Some(Prompt::Login), None), request(None, Some(0))] {
            assert_eq!(
                next_step(&req, Some(alice()), false, allowed, fresh, at(10)),
                Next::Code(alice())
            );
        }
    }

    #[test]
    fn prompt_none_never_shows_a_page_and_prompt_consent_asks_again() {
        let none = request(Some(Prompt::None), None);
        assert_eq!(
            next_step(&none, None, false, None, NONE, at(10)),
            Next::Refuse("login_required")
        );
        assert_eq!(
            next_step(&none, Some(alice()), false, None, NONE, at(10)),
            Next::Refuse("consent_required")
        );
        assert_eq!(
            next_step(&none, Some(alice()), false, Some("openid email"), NONE, at(10)),
            Next::Code(alice()),
            "the positive control"
        );
        let consent = request(Some(Prompt::Consent), None);
        let allowed = Some("openid email");
        assert_eq!(next_step(&consent, Some(alice()), false, allowed, NONE, at(10)), Next::Consent);
        let done = Progress { just_consented: true, ..NONE };
        assert_eq!(
            next_step(&consent, Some(alice()), false, allowed, done, at(10)),
            Next::Code(alice())
        );
    }
}
