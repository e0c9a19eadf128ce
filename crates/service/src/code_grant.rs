//! The authorization code grant once the user has signed in and allowed the client (HTTP
//! contract v3, "Sign-in for apps"): the code sent back to the client's redirect URI, and its
//! exchange at the token endpoint for a token pair in a new session granted to that client.
//!
//! A code is 256 random bits; only its SHA-256 digest is stored. It lives
//! [`CODE_LIFETIME`], works once, and is bound to the client, the redirect URI and the PKCE
//! challenge of its request. A code presented again revokes the session its first exchange
//! started (RFC 6749 §4.1.2, RFC 9700 §4.5): whoever holds the copy may have stolen it.

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use jwt_auth_store::{AuthorizationCode, Redemption, ServiceClient};
use jwt_core::{ClientInfo, Grant, RevokeReason, Subject, TokenPair};

use crate::authorize::AuthorizationRequest;
use crate::error::ServiceError;
use crate::instance::Instance;
use crate::pkce::CodeChallenge;
use crate::secret::SecretString;

/// How long a code can be exchanged.
pub const CODE_LIFETIME: TimeDelta = TimeDelta::seconds(60);

/// Who signed in, for a code: the user, when they typed the password, and the browser
/// sign-in session they did it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// The user id.
    pub user_id: String,
    /// When the user typed the password (OpenID Connect `auth_time`).
    pub auth_time: DateTime<Utc>,
    /// The browser sign-in session.
    pub session_id: String,
}

/// Issues a code for `request`, which `who` has signed in for and allowed, at `now`; returns
/// the code. The access tokens of its exchange are for `request.audience`, stored only when it
/// is not `default_audience`.
pub async fn issue_code(
    instance: &Instance<'_>,
    request: &AuthorizationRequest,
    who: &SignedIn,
    default_audience: &str,
    now: DateTime<Utc>,
) -> Result<SecretString, ServiceError> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    aws_lc_rs::rand::fill(&mut *bytes).map_err(|_| ServiceError::NoRandomness)?;
    let code = SecretString::new(URL_SAFE_NO_PAD.encode(*bytes));
    let issued = AuthorizationCode {
        digest: code_digest(code.expose()),
        client_id: request.client_id.clone(),
        user_id: who.user_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        code_challenge: request.challenge.as_str().to_owned(),
        scope: request.scopes.join(" "),
        nonce: request.nonce.clone(),
        resource: (request.audience != default_audience).then(|| request.audience.clone()),
        auth_time: who.auth_time,
        created_at: now,
        expires_at: now + CODE_LIFETIME,
        sign_in_session: Some(who.session_id.clone()),
    };
    instance.store.add_authorization_code(&issued).await?;
    Ok(code)
}

/// The digest a code is stored under.
fn code_digest(code: &str) -> Vec<u8> {
    digest(&SHA256, code.as_bytes()).as_ref().to_vec()
}

/// The parameters of an exchange (`grant_type=authorization_code`), as the form gave them.
#[derive(Debug, Default)]
pub struct Exchange {
    /// `code`.
    pub code: Option<SecretString>,
    /// `redirect_uri`, which must be the authorization request's.
    pub redirect_uri: Option<String>,
    /// `code_verifier` (PKCE).
    pub code_verifier: Option<SecretString>,
}

/// What an exchange gives: the pair of the new session, and what the ID token needs.
#[derive(Debug)]
pub struct Exchanged {
    /// The token pair.
    pub pair: TokenPair,
    /// The scopes granted, space-separated.
    pub scope: String,
    /// The user.
    pub subject: Subject,
    /// The code as it was issued (its nonce, `auth_time` and sign-in session).
    pub code: AuthorizationCode,
}

/// Exchanges a code for `client`, authenticated by the caller, calling as `caller`, at `now`.
/// Every refusal of the code itself is [`ServiceError::InvalidGrant`]; a missing parameter is
/// [`ServiceError::InvalidField`]. The code is used up by the first attempt, whatever its
/// outcome.
pub async fn exchange(
    instance: &Instance<'_>,
    client: &ServiceClient,
    exchange: Exchange,
    caller: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<Exchanged, ServiceError> {
    let (Some(code), Some(redirect_uri), Some(verifier)) =
        (exchange.code, exchange.redirect_uri, exchange.code_verifier)
    else {
        return Err(ServiceError::InvalidField(
            "code, redirect_uri and code_verifier are required".into(),
        ));
    };
    let digest = code_digest(code.expose());
    // A read: the success path writes once, when the session starts and claims the code.
    let Some((issued, subject)) = instance.store.fresh_authorization_code(&digest, now).await?
    else {
        return Err(used_up(instance, client, &digest, now).await);
    };
    let refused = if issued.client_id != client.id {
        Some("the code was issued to another client")
    } else if issued.redirect_uri != redirect_uri {
        Some("redirect_uri is not the one of the authorization request")
    } else if !CodeChallenge::from_stored(issued.code_challenge.clone()).verify(verifier.expose()) {
        Some("code_verifier does not match the code_challenge")
    } else {
        None
    };
    if let Some(why) = refused {
        // A failed exchange uses the code up (a wrong verifier is not tried again).
        instance.store.redeem_authorization_code(&digest, now).await?;
        return Err(invalid_grant(why));
    }
    let subject = subject.ok_or_else(|| invalid_grant("the user is disabled or gone"))?;
    let grant = Grant {
        client_id: client.id.clone(),
        scope: issued.scope.clone(),
        audience: issued.resource.clone(),
    };
    let started =
        instance.sessions.start_from_code(&subject, caller.clone(), grant, digest.clone()).await;
    let pair = match started {
        Ok(pair) => pair,
        // Claimed by another exchange since it was read: two exchanges of one code.
        Err(jwt_core::Error::CodeUsed) => return Err(used_up(instance, client, &digest, now).await),
        Err(e) => return Err(e.into()),
    };
    Ok(Exchanged { pair, scope: issued.scope.clone(), subject, code: issued })
}

/// The refusal of a code that is not fresh: unknown or expired, or used already, in which case
/// this presentation is a replay and the session its first exchange started is revoked.
async fn used_up(
    instance: &Instance<'_>,
    client: &ServiceClient,
    digest: &[u8],
    now: DateTime<Utc>,
) -> ServiceError {
    match instance.store.redeem_authorization_code(digest, now).await {
        Ok(Redemption::Unknown) => invalid_grant("the code is unknown or has expired"),
        // Fresh again: only if it was never claimed and was read wrong; used up now.
        Ok(Redemption::Fresh(_)) => invalid_grant("the code is unknown or has expired"),
        Ok(Redemption::Replayed { session_id }) => {
            if let Some(session_id) = session_id {
                if let Err(e) = instance.sessions.end(&session_id, RevokeReason::CodeReplay).await {
                    return e.into();
                }
                instance.feed_wake.notify_waiters();
                tracing::warn!(client_id = %client.id, "an authorization code was replayed; its session is revoked");
            }
            invalid_grant("the code was used already")
        }
        Err(e) => e.into(),
    }
}

fn invalid_grant(why: &str) -> ServiceError {
    ServiceError::InvalidGrant(why.to_owned())
}

/// Where a browser goes back to the client: `redirect_uri` (registered, so without a
/// fragment) with `params` added to its query (RFC 6749 §4.1.2: the URI's own query is kept),
/// each form-urlencoded.
pub fn redirect_location(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        serializer.append_pair(name, value);
    }
    let query = serializer.finish();
    let joiner = match redirect_uri.split_once('?') {
        Some((_, "")) => "",
        Some(_) => "&",
        None => "?",
    };
    format!("{redirect_uri}{joiner}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_join_the_redirect_uris_own_query() {
        let to = |uri| redirect_location(uri, &[("code", "a b"), ("state", "x&y=z")]);
        assert_eq!(to("https://app.example/cb"), "https://app.example/cb?code=a+b&state=x%26y%3Dz");
        assert_eq!(
            to("https://app.example/cb?tenant=1"),
            "https://app.example/cb?tenant=1&code=a+b&state=x%26y%3Dz"
        );
        assert_eq!(
            to("https://app.example/cb?"),
            "https://app.example/cb?code=a+b&state=x%26y%3Dz"
        );
        assert_eq!(to("com.example.app:/cb"), "com.example.app:/cb?code=a+b&state=x%26y%3Dz");
    }

    #[test]
    fn codes_are_stored_by_digest() {
        let digest = code_digest("abc");
        assert_eq!(digest.len(), 32);
        assert_ne!(digest, code_digest("abd"));
    }
}
