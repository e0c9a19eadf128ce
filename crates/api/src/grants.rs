//! The two ways to get a token pair, shared by the JSON endpoints (`/auth/login`,
//! `/auth/refresh`) and the OAuth token endpoint (`/auth/token`): the password grant, with its
//! throttles and constant-cost failure, and the refresh grant (rotation), with its audit.

use jwt_auth_store::{EventKind, PasswordHash};
use jwt_core::{Error as CoreError, Subject, TokenPair};

use crate::audit::Audit;
use crate::error::ApiError;
use crate::extract::ClientContext;
use crate::passwords::check_password;
use crate::secret::SecretString;
use crate::state::AppState;

/// Counts an attempt on the login or token endpoint against the client IP's quota
/// (`LOGIN_RATE_LIMIT`).
pub fn count_attempt(state: &AppState, client: &ClientContext) -> Result<(), ApiError> {
    state.throttle.attempt(client.ip).map_err(|retry_after| ApiError::RateLimited { retry_after })
}

/// The password grant, for a client whose attempt [`count_attempt`] has already counted.
/// An unknown user and a wrong password fail alike, at the cost of one password
/// verification each.
pub async fn password_login(
    state: &AppState,
    client: &ClientContext,
    username: &str,
    password: SecretString,
) -> Result<TokenPair, ApiError> {
    let throttle = &state.throttle;
    throttle
        .check_pair(username, client.ip)
        .map_err(|retry_after| ApiError::RateLimited { retry_after })?;
    check_password(&password, false).map_err(ApiError::InvalidField)?;
    // A NUL cannot be in any stored email (PostgreSQL text refuses it): no such user, and no
    // query that would fail on it. The dummy verification below still runs.
    // Stored emails are NFC: look the username up the same way (as given if it is no valid
    // address, so that accounts made under an older rule can still log in).
    let credentials = if username.contains('\0') {
        None
    } else {
        let lookup = crate::email::checked(username).unwrap_or_else(|_| username.to_owned());
        state.store.user_by_email(&lookup).await?
    };
    state.metrics.hash_queue_depth.set(state.passwords.queue_depth() as i64);
    let phc = credentials.as_ref().map(|c| c.password_hash.expose().to_owned());
    let matches = state.passwords.verify(password.expose_owned(), phc.clone()).await?;
    let user = match credentials {
        Some(c) if matches && !c.user.disabled => c.user,
        other => {
            let user_id = other.map(|c| c.user.id);
            throttle.failed(username, client.ip);
            state
                .audit(
                    Audit::new(EventKind::LoginFailed, &client.info).maybe_user(user_id.as_deref()),
                )
                .await;
            return Err(ApiError::InvalidCredentials);
        }
    };
    throttle.succeeded(username, client.ip);
    if let Some(stored) = phc
        && !crate::passwords::is_current(&stored)
    {
        upgrade_hash(state, &user.id, stored, &password).await;
    }
    let subject = Subject { id: user.id.clone(), roles: user.roles, email: Some(user.email) };
    let pair = state.sessions.start(&subject, client.info.clone()).await?;
    state
        .audit(
            Audit::new(EventKind::LoginSucceeded, &client.info)
                .user(&user.id)
                .session(&pair.session_id),
        )
        .await;
    Ok(pair)
}

/// Replaces a stored hash made by another system, or with older parameters, with today's
/// argon2id hash of the password a login has just proved. A failure is logged and the login
/// stands: the old hash still works, and the next login tries again.
async fn upgrade_hash(state: &AppState, user_id: &str, stored: String, password: &SecretString) {
    let new = match state.passwords.hash(password.expose_owned()).await {
        Ok(new) => new,
        Err(e) => {
            tracing::warn!(user = user_id, error = %e, "could not upgrade a password hash");
            return;
        }
    };
    let (stored, new) = (PasswordHash::new(stored), PasswordHash::new(new));
    match state.store.replace_password_hash(user_id, &stored, &new).await {
        Ok(true) => tracing::info!(user = user_id, "password hash upgraded to argon2id"),
        // The password was changed meanwhile: that hash stays.
        Ok(false) => {}
        Err(e) => tracing::warn!(user = user_id, error = %e, "could not upgrade a password hash"),
    }
}

/// The refresh grant: rotates the token and audits what happened.
pub async fn rotate(
    state: &AppState,
    client: &ClientContext,
    token: &SecretString,
) -> Result<TokenPair, ApiError> {
    match state.sessions.refresh(token.expose(), client.info.clone()).await {
        Ok(pair) => {
            state
                .audit(Audit::new(EventKind::Refresh, &client.info).session(&pair.session_id))
                .await;
            Ok(pair)
        }
        Err(CoreError::RefreshReused(details)) => {
            let detail = format!(
                "replayed {} s after rotation; rotated by ip={} ua={}",
                details.seconds_since_rotation(),
                details.rotated_by.ip.as_deref().unwrap_or("-"),
                details.rotated_by.user_agent.as_deref().unwrap_or("-"),
            );
            let audit = Audit::new(EventKind::RefreshReuseDetected, &client.info)
                .user(&details.user_id)
                .session(&details.session_id)
                .detail(detail);
            state.audit(audit).await;
            Err(ApiError::Token(CoreError::RefreshReused(details)))
        }
        Err(e) => {
            state
                .metrics
                .refreshes
                .get_or_create(&crate::metrics::OutcomeLabels { outcome: "rejected" })
                .inc();
            tracing::warn!(reason = %e, ip = client.info.ip.as_deref(), "refresh rejected");
            Err(ApiError::from(e))
        }
    }
}
