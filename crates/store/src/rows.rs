//! Rows as diesel reads and writes them, and their conversion to and from the public records.
//! Times are stored as UTC `NaiveDateTime` truncated to microseconds, the precision both
//! backends keep, so a time read back equals the time written on either.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SubsecRound, Utc};
use diesel::prelude::*;
use jwt_core::{
    ClientInfo, Grant, NewRefreshToken, NewSession, Revocation, RevokeReason, SessionRecord,
};

use crate::error::StoreError;
use crate::model::{RecordedEvent, SecurityEvent, User};
use crate::schema::{
    clients, refresh_tokens, revocations, security_events, sessions, signing_keys, users,
};

/// A time as stored: UTC, microseconds, clamped to years 1..=9999 (PostgreSQL's `timestamp`
/// refuses chrono's extremes, which callers use as "since forever").
pub(crate) fn db_time(t: DateTime<Utc>) -> NaiveDateTime {
    let lowest = NaiveDate::from_ymd_opt(1, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0));
    let highest = NaiveDate::from_ymd_opt(9999, 12, 31).and_then(|d| d.and_hms_opt(23, 59, 59));
    let (lowest, highest) = (lowest.expect("a valid time"), highest.expect("a valid time"));
    t.naive_utc().clamp(lowest, highest).trunc_subsecs(6)
}

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// The key that makes emails unique without regard to case.
pub(crate) fn email_key(email: &str) -> String {
    email.to_lowercase()
}

pub(crate) const SESSION: &str = "session";
pub(crate) const ISSUED_BEFORE: &str = "issued_before";
pub(crate) const KEY: &str = "key";
/// Outbox kinds of the feed table, on the change stream only (never in the revocation feed).
pub(crate) const USER_CHANGED_KIND: &str = "user_changed";
pub(crate) const KEYS_CHANGED_KIND: &str = "keys_changed";
/// The kinds the revocation feed serves.
pub(crate) const REVOCATION_KINDS: [&str; 3] = [SESSION, ISSUED_BEFORE, KEY];
/// How long a `user_changed` or `keys_changed` row is kept: for a reader catching up from the
/// database after the change stream was unreachable.
pub const CHANGE_KEPT: chrono::TimeDelta = chrono::TimeDelta::days(1);

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub(crate) struct UserRow {
    pub id: String,
    pub email: String,
    pub email_key: String,
    pub password_hash: String,
    pub roles: String,
    pub disabled: bool,
    pub tokens_valid_after: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl UserRow {
    pub fn new(
        id: String,
        email: &str,
        password_hash: &str,
        roles: &[String],
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            email: email.to_owned(),
            email_key: email_key(email),
            password_hash: password_hash.to_owned(),
            roles: roles_json(roles),
            disabled: false,
            tokens_valid_after: None,
            created_at: db_time(at),
            updated_at: db_time(at),
        }
    }

    pub fn into_user(self) -> Result<User, StoreError> {
        Ok(User {
            roles: parse_roles(&self.roles)?,
            id: self.id,
            email: self.email,
            disabled: self.disabled,
            tokens_valid_after: self.tokens_valid_after.map(utc),
            created_at: utc(self.created_at),
            updated_at: utc(self.updated_at),
        })
    }
}

pub(crate) fn roles_json(roles: &[String]) -> String {
    serde_json::to_string(roles).expect("a list of strings serializes")
}

pub(crate) fn parse_roles(json: &str) -> Result<Vec<String>, StoreError> {
    parse_strings(json, "users", "roles")
}

/// A column holding a JSON list of strings (`what` names it in the error).
pub(crate) fn parse_strings(
    json: &str,
    table: &'static str,
    what: &str,
) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::corrupt(table, format!("{what} are not a JSON list: {e}")))
}

/// The columns an update may change; `None` leaves a column as it is.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = users)]
pub(crate) struct UserChanges {
    pub roles: Option<String>,
    pub disabled: Option<bool>,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub(crate) struct SessionRow {
    pub id: String,
    pub user_id: String,
    pub created_at: NaiveDateTime,
    pub last_used_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
    pub revoke_reason: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub client_id: Option<String>,
    pub scope: Option<String>,
    pub audience: Option<String>,
    pub sign_in_session: Option<String>,
    pub sign_in: bool,
}

impl SessionRow {
    pub fn new(session: &NewSession) -> Self {
        let grant = session.grant.as_ref();
        Self {
            id: session.id.clone(),
            user_id: session.user_id.clone(),
            created_at: db_time(session.created_at),
            last_used_at: db_time(session.created_at),
            expires_at: db_time(session.expires_at),
            revoked_at: None,
            revoke_reason: None,
            ip: session.client.ip.clone(),
            user_agent: session.client.user_agent.clone(),
            client_id: grant.map(|g| g.client_id.clone()),
            scope: grant.map(|g| g.scope.clone()),
            audience: grant.and_then(|g| g.audience.clone()),
            sign_in_session: None,
            sign_in: false,
        }
    }

    pub fn into_record(self) -> Result<SessionRecord, StoreError> {
        let revoke_reason = self
            .revoke_reason
            .map(|r| r.parse::<RevokeReason>())
            .transpose()
            .map_err(|e| StoreError::corrupt("sessions", e.to_string()))?;
        Ok(SessionRecord {
            id: self.id,
            user_id: self.user_id,
            created_at: utc(self.created_at),
            last_used_at: utc(self.last_used_at),
            expires_at: utc(self.expires_at),
            revoked_at: self.revoked_at.map(utc),
            revoke_reason,
            client: ClientInfo { ip: self.ip, user_agent: self.user_agent, proven_key: None },
            grant: self.client_id.map(|client_id| Grant {
                client_id,
                scope: self.scope.unwrap_or_default(),
                audience: self.audience,
            }),
        })
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub(crate) struct RefreshTokenRow {
    pub jti: String,
    pub session_id: String,
    pub parent_jti: Option<String>,
    pub issued_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl RefreshTokenRow {
    pub fn new(token: &NewRefreshToken) -> Self {
        Self {
            jti: token.jti.clone(),
            session_id: token.session_id.clone(),
            parent_jti: token.parent_jti.clone(),
            issued_at: db_time(token.issued_at),
            expires_at: db_time(token.expires_at),
            ip: token.client.ip.clone(),
            user_agent: token.client.user_agent.clone(),
        }
    }
}

/// What a rotation records on the token it retires.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = refresh_tokens)]
pub(crate) struct Retirement {
    pub rotated_at: NaiveDateTime,
    pub replaced_by: String,
    pub rotated_ip: Option<String>,
    pub rotated_user_agent: Option<String>,
}

impl Retirement {
    pub fn new(replacement: &NewRefreshToken, at: DateTime<Utc>) -> Self {
        Self {
            rotated_at: db_time(at),
            replaced_by: replacement.jti.clone(),
            rotated_ip: replacement.client.ip.clone(),
            rotated_user_agent: replacement.client.user_agent.clone(),
        }
    }
}

/// A retired token's `rotated_at`, `rotated_ip`, `rotated_user_agent`.
pub(crate) type RotationSeen = (Option<NaiveDateTime>, Option<String>, Option<String>);

pub(crate) fn already_rotated(seen: RotationSeen) -> Option<jwt_core::RotateOutcome> {
    let (rotated_at, ip, user_agent) = seen;
    Some(jwt_core::RotateOutcome::AlreadyRotated {
        rotated_at: utc(rotated_at?),
        rotated_by: ClientInfo { ip, user_agent, proven_key: None },
    })
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = revocations)]
pub(crate) struct RevocationRow {
    pub recorded_at: NaiveDateTime,
    pub kind: String,
    pub session_id: Option<String>,
    pub user_id: Option<String>,
    pub cut_off: Option<NaiveDateTime>,
    /// When the tokens a `session` or `key` entry voids have all expired.
    pub session_expires_at: Option<NaiveDateTime>,
    pub key_id: Option<String>,
}

impl RevocationRow {
    pub fn new(revocation: &Revocation, at: DateTime<Utc>) -> Self {
        let recorded_at = db_time(at);
        match revocation {
            Revocation::Session { id, expires_at } => Self {
                recorded_at,
                kind: SESSION.to_owned(),
                session_id: Some(id.clone()),
                user_id: None,
                cut_off: None,
                session_expires_at: Some(db_time(*expires_at)),
                key_id: None,
            },
            Revocation::IssuedBefore { user_id, before } => Self {
                recorded_at,
                kind: ISSUED_BEFORE.to_owned(),
                session_id: None,
                user_id: user_id.clone(),
                cut_off: Some(db_time(*before)),
                session_expires_at: None,
                key_id: None,
            },
            Revocation::Key { kid, expires_at } => Self {
                recorded_at,
                kind: KEY.to_owned(),
                session_id: None,
                user_id: None,
                cut_off: None,
                session_expires_at: Some(db_time(*expires_at)),
                key_id: Some(kid.clone()),
            },
        }
    }

    /// The outbox row of a change that voids nothing: a user's record (`user_id`) or the
    /// signing keys (`None`) changed at `at`.
    pub fn change(user_id: Option<&str>, at: NaiveDateTime) -> Self {
        Self {
            recorded_at: at,
            kind: if user_id.is_some() { USER_CHANGED_KIND } else { KEYS_CHANGED_KIND }.to_owned(),
            session_id: None,
            user_id: user_id.map(str::to_owned),
            cut_off: None,
            session_expires_at: Some(at + CHANGE_KEPT),
            key_id: None,
        }
    }

    /// Any row of the feed table, as the change it records.
    pub fn into_outbox(self) -> Result<crate::model::OutboxChange, StoreError> {
        use crate::model::OutboxChange;
        match (self.kind.as_str(), &self.user_id) {
            (USER_CHANGED_KIND, Some(id)) => Ok(OutboxChange::UserChanged(id.clone())),
            (KEYS_CHANGED_KIND, _) => Ok(OutboxChange::KeysChanged),
            _ => Ok(OutboxChange::Revocation(self.into_revocation()?)),
        }
    }

    pub fn into_revocation(self) -> Result<Revocation, StoreError> {
        let expires_at = self.session_expires_at;
        match (self.kind.as_str(), self.session_id, expires_at, self.cut_off, self.key_id) {
            (SESSION, Some(id), Some(expires_at), _, _) => {
                Ok(Revocation::Session { id, expires_at: utc(expires_at) })
            }
            (ISSUED_BEFORE, _, _, Some(before), _) => {
                Ok(Revocation::IssuedBefore { user_id: self.user_id, before: utc(before) })
            }
            (KEY, _, Some(expires_at), _, Some(kid)) => {
                Ok(Revocation::Key { kid, expires_at: utc(expires_at) })
            }
            (kind, ..) => Err(StoreError::corrupt(
                "revocations",
                format!("a `{kind}` entry without the fields it needs"),
            )),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = security_events)]
pub(crate) struct EventRow {
    /// Assigned by the database on insertion.
    #[diesel(skip_insertion)]
    pub id: i64,
    pub at: NaiveDateTime,
    pub kind: String,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub detail: Option<String>,
}

impl EventRow {
    pub fn new(event: &SecurityEvent) -> Self {
        Self {
            id: 0,
            at: db_time(event.at),
            kind: event.kind.as_str().to_owned(),
            user_id: event.user_id.clone(),
            session_id: event.session_id.clone(),
            ip: event.client.ip.clone(),
            user_agent: event.client.user_agent.clone(),
            detail: event.detail.clone(),
        }
    }

    pub fn into_event(self) -> Result<RecordedEvent, StoreError> {
        Ok(RecordedEvent {
            id: self.id,
            event: SecurityEvent {
                kind: self.kind.parse()?,
                at: utc(self.at),
                user_id: self.user_id,
                session_id: self.session_id,
                client: ClientInfo { ip: self.ip, user_agent: self.user_agent, proven_key: None },
                detail: self.detail,
            },
        })
    }
}

/// A service client as its table holds it.
#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = clients)]
pub(crate) struct ClientRow {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) secret_digest: Vec<u8>,
    pub(crate) roles: String,
    pub(crate) session_id: String,
    pub(crate) created_at: NaiveDateTime,
    pub(crate) redirect_uris: String,
    pub(crate) post_logout_redirect_uris: String,
    pub(crate) public: bool,
    pub(crate) first_party: bool,
    pub(crate) require_dpop: bool,
}

/// A signing key as its table holds it.
#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys)]
pub(crate) struct SigningKeyRow {
    pub(crate) kid: String,
    pub(crate) algorithm: String,
    pub(crate) created_at: NaiveDateTime,
    pub(crate) activates_at: NaiveDateTime,
    pub(crate) retired_at: Option<NaiveDateTime>,
    pub(crate) revoked_at: Option<NaiveDateTime>,
    pub(crate) public_jwk: Option<String>,
    pub(crate) sealed_private_key: Vec<u8>,
    pub(crate) purpose: String,
}
