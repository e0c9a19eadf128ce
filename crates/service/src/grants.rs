//! The two ways to get a token pair, whoever asks (the JSON endpoints `/auth/login` and
//! `/auth/refresh`, and the OAuth token endpoint `/auth/token`): the password grant, with its
//! throttles and its constant-cost failure, and the refresh grant (rotation), with its audit.

use std::net::IpAddr;

use jwt_auth_store::{EventKind, PasswordHash, User};
use jwt_core::{ClientInfo, Error as CoreError, Subject, TokenPair};

use crate::audit::Audit;
use crate::error::ServiceError;
use crate::instance::Instance;
use crate::metrics::OutcomeLabels;
use crate::passwords::{check_password, is_current};
use crate::secret::SecretString;
use crate::throttle::LoginThrottle;

/// Token pairs as a client at one address asks for them, through a server.
pub struct Grants<'a> {
    instance: Instance<'a>,
    throttle: &'a LoginThrottle,
    ip: IpAddr,
    client: &'a ClientInfo,
}

impl<'a> Grants<'a> {
    /// The grants of the server `instance`, under its login `throttle`, for the client
    /// `client` calling from `ip` (the address the throttle counts).
    pub fn new(
        instance: Instance<'a>,
        throttle: &'a LoginThrottle,
        ip: IpAddr,
        client: &'a ClientInfo,
    ) -> Self {
        Self { instance, throttle, ip, client }
    }

    /// Counts an attempt on the login or token endpoint against the address's quota
    /// (`LOGIN_RATE_LIMIT`): [`ServiceError::RateLimited`] past it.
    pub fn count_attempt(&self) -> Result<(), ServiceError> {
        self.throttle
            .attempt(self.ip)
            .map_err(|retry_after| ServiceError::RateLimited { retry_after })
    }

    /// The password grant, for an attempt [`Grants::count_attempt`] has already counted. An
    /// unknown user, a wrong password and a disabled account fail alike
    /// ([`ServiceError::InvalidCredentials`]), at the cost of one password verification each.
    pub async fn password(
        &self,
        username: &str,
        password: SecretString,
    ) -> Result<TokenPair, ServiceError> {
        let user = self.check_password(username, password).await?;
        let subject = Subject { id: user.id.clone(), roles: user.roles, email: Some(user.email) };
        let pair = self.instance.sessions.start(&subject, self.client.clone()).await?;
        let event = Audit::new(EventKind::LoginSucceeded, self.client);
        self.audit(event.user(&user.id).session(&pair.session_id)).await;
        Ok(pair)
    }

    /// The user that `username` and `password` prove, with the throttles, the backoff and the
    /// constant-cost failure of the password grant (see [`Grants::password`]), for an attempt
    /// already counted: what the password grant and the sign-in page of the code grant share.
    /// A failure is audited; a success is the caller's to audit with what it starts.
    pub async fn check_password(
        &self,
        username: &str,
        password: SecretString,
    ) -> Result<User, ServiceError> {
        let (ip, instance) = (self.ip, &self.instance);
        self.throttle
            .check_pair(username, ip)
            .map_err(|retry_after| ServiceError::RateLimited { retry_after })?;
        check_password(&password, false).map_err(ServiceError::InvalidField)?;
        // A NUL cannot be in any stored email (PostgreSQL text refuses it): no such user, and
        // no query that would fail on it. The dummy verification below still runs.
        // Stored emails are NFC: look the username up the same way (as given if it is no valid
        // address, so that accounts made under an older rule can still log in).
        let credentials = if username.contains('\0') {
            None
        } else {
            let lookup = crate::email::checked(username).unwrap_or_else(|_| username.to_owned());
            instance.store.user_by_email(&lookup).await?
        };
        instance.metrics.hash_queue_depth.set(instance.passwords.queue_depth() as i64);
        let phc = credentials.as_ref().map(|c| c.password_hash.expose().to_owned());
        let matches = instance.passwords.verify(password.expose_owned(), phc.clone()).await?;
        let user = match credentials {
            Some(c) if matches && !c.user.disabled => c.user,
            other => {
                let user_id = other.map(|c| c.user.id);
                self.throttle.failed(username, ip);
                let event = Audit::new(EventKind::LoginFailed, self.client);
                self.audit(event.maybe_user(user_id.as_deref())).await;
                return Err(ServiceError::InvalidCredentials);
            }
        };
        self.throttle.succeeded(username, ip);
        if let Some(stored) = phc
            && !is_current(&stored)
        {
            self.upgrade_hash(&user.id, stored, &password).await;
        }
        Ok(user)
    }

    /// Replaces a stored hash made by another system, or with older parameters, with today's
    /// argon2id hash of the password a login has just proved. A failure is logged and the
    /// login stands: the old hash still works, and the next login tries again.
    async fn upgrade_hash(&self, user_id: &str, stored: String, password: &SecretString) {
        let new = match self.instance.passwords.hash(password.expose_owned()).await {
            Ok(new) => new,
            Err(e) => {
                tracing::warn!(user = user_id, error = %e, "could not upgrade a password hash");
                return;
            }
        };
        let (stored, new) = (PasswordHash::new(stored), PasswordHash::new(new));
        match self.instance.store.replace_password_hash(user_id, &stored, &new).await {
            Ok(true) => tracing::info!(user = user_id, "password hash upgraded to argon2id"),
            // The password was changed meanwhile: that hash stays.
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(user = user_id, error = %e, "could not upgrade a password hash")
            }
        }
    }

    /// The refresh grant: rotates the token and audits what happened; a replayed token
    /// ([`jwt_core::Error::RefreshReused`]) is recorded with who rotated it.
    pub async fn refresh(&self, token: &SecretString) -> Result<TokenPair, ServiceError> {
        self.refresh_by(token, None).await
    }

    /// [`Grants::refresh`] by the client application `client_id`, which the caller has
    /// authenticated: a session granted to another client (or to none) is refused
    /// ([`jwt_core::Error::WrongClient`]) and nothing changes.
    pub async fn refresh_by(
        &self,
        token: &SecretString,
        client_id: Option<&str>,
    ) -> Result<TokenPair, ServiceError> {
        let sessions = self.instance.sessions;
        match sessions.refresh_by(token.expose(), self.client.clone(), client_id).await {
            Ok(pair) => {
                let event = Audit::new(EventKind::Refresh, self.client);
                self.audit(event.session(&pair.session_id)).await;
                Ok(pair)
            }
            Err(CoreError::RefreshReused(details)) => {
                let detail = format!(
                    "replayed {} s after rotation; rotated by ip={} ua={}",
                    details.seconds_since_rotation(),
                    details.rotated_by.ip.as_deref().unwrap_or("-"),
                    details.rotated_by.user_agent.as_deref().unwrap_or("-"),
                );
                let event = Audit::new(EventKind::RefreshReuseDetected, self.client)
                    .user(&details.user_id)
                    .session(&details.session_id)
                    .detail(detail);
                self.audit(event).await;
                Err(CoreError::RefreshReused(details).into())
            }
            Err(e) => {
                let rejected = OutcomeLabels { outcome: "rejected" };
                self.instance.metrics.refreshes.get_or_create(&rejected).inc();
                tracing::warn!(reason = %e, ip = self.client.ip.as_deref(), "refresh rejected");
                Err(e.into())
            }
        }
    }

    /// Records `event` in the instance's trail, at the time on the tokens' clock.
    async fn audit(&self, event: Audit<'_>) {
        let now = self.instance.sessions.tokens().clock().now();
        self.instance.trail().audit(event, now).await;
    }
}
