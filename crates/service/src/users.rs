//! User administration, whoever asks: the administrators' API and the `user` and `sessions`
//! commands. Every change is written to the database with the revocations it implies, in one
//! transaction, and recorded in the trail; made through a running server ([`Users::admin`]),
//! it also reaches what that instance holds at once: its user cache, its revocation set, the
//! revocation feed's readers. A command ([`Users::command`]) reaches the servers through the
//! database, within seconds.

use chrono::{DateTime, Utc};
use jwt_auth_store::{
    EventKind, ExistingEmails, Imported, NewUser, PasswordHash, Store, StoreError, User, UserPage,
    UserUpdate,
};
use jwt_core::{ClientInfo, Revocation, RevocationStore, RevokeReason, SessionRecord};

use crate::accounts::{Role, UserId};
use crate::audit::{self, Audit};
use crate::error::ServiceError;
use crate::import::Batch;
use crate::instance::Instance;
use crate::page::Page;
use crate::passwords::Passwords;

/// The user that `id_or_email` names, as an operator names them: by email when it holds an
/// `@` (compared without regard to case, as at login), by id otherwise;
/// [`ServiceError::UnknownUser`] if there is no such user.
pub async fn find(store: &Store, id_or_email: &str) -> Result<User, ServiceError> {
    let user = if id_or_email.contains('@') {
        store.user_by_email(id_or_email).await?.map(|credentials| credentials.user)
    } else {
        match UserId::parse(id_or_email) {
            Ok(id) => store.user_by_id(id.as_str()).await?,
            Err(_) => None,
        }
    };
    user.ok_or_else(|| ServiceError::UnknownUser(id_or_email.to_owned()))
}

/// The user with this id; [`ServiceError::UnknownUserId`] if there is none.
pub async fn get(store: &Store, id: &UserId) -> Result<User, ServiceError> {
    let user = store.user_by_id(id.as_str()).await?;
    user.ok_or_else(|| ServiceError::UnknownUserId(id.to_string()))
}

/// A page of users, oldest first, of those whose email contains `email_contains` (without
/// regard to case; `None`: every user), and how many such users there are.
pub async fn list(
    store: &Store,
    email_contains: Option<&str>,
    page: Page,
) -> Result<UserPage, ServiceError> {
    Ok(store.search_users(email_contains, page.limit(), page.offset()).await?)
}

/// A user's sessions that have not expired by `now`, newest first.
pub struct UserSessions {
    /// Those in use.
    pub active: Vec<SessionRecord>,
    /// Those revoked, with the reason.
    pub revoked: Vec<SessionRecord>,
}

/// The sessions of user `id` (see [`UserSessions`]); [`ServiceError::UnknownUserId`] if there
/// is no such user.
pub async fn sessions(
    store: &Store,
    id: &UserId,
    now: DateTime<Utc>,
) -> Result<UserSessions, ServiceError> {
    let user = get(store, id).await?;
    let (active, revoked) = store
        .sessions_of_user(&user.id, now)
        .await?
        .into_iter()
        .partition(|session| session.revoked_at.is_none());
    Ok(UserSessions { active, revoked })
}

/// A change to a user; an absent part is left as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    /// New roles, replacing the old ones.
    pub roles: Option<Vec<Role>>,
    /// `true` shuts the user out and ends their sessions; `false` lets them in again.
    pub disabled: Option<bool>,
}

impl UserChange {
    /// The change of `roles` (each a [`Role`], or [`ServiceError::InvalidRole`]) and
    /// `disabled`.
    pub fn parse(roles: Option<&[String]>, disabled: Option<bool>) -> Result<Self, ServiceError> {
        Ok(Self { roles: roles.map(Role::parse_all).transpose()?, disabled })
    }

    /// The change in words, for the trail: `roles: user,admin; disabled`.
    fn words(&self) -> String {
        let mut changes = Vec::new();
        if let Some(roles) = &self.roles {
            let names: Vec<&str> = roles.iter().map(Role::as_str).collect();
            changes.push(format!("roles: {}", names.join(",")));
        }
        if let Some(disabled) = self.disabled {
            changes.push(if disabled { "disabled" } else { "enabled" }.to_owned());
        }
        changes.join("; ")
    }
}

/// A time before which every token is void: no later than now (see
/// [`jwt_core::check_cut_off`]), or it would refuse tokens as soon as they are issued.
#[derive(Debug, Clone, Copy)]
pub struct CutOff(DateTime<Utc>);

impl CutOff {
    /// `before`, if it is no later than `now` (with the clock leeway).
    pub fn new(before: DateTime<Utc>, now: DateTime<Utc>) -> Result<Self, ServiceError> {
        jwt_core::check_cut_off(before, now)?;
        Ok(Self(before))
    }

    /// The time.
    pub fn time(self) -> DateTime<Utc> {
        self.0
    }
}

/// What an import did: the store's count, and the hash families of the users it created.
pub struct ImportReport {
    /// How many users were created, and the emails skipped.
    pub imported: Imported,
    /// How many created users each hash family has (`bcrypt`, `django-pbkdf2_sha256`, …).
    pub families: std::collections::BTreeMap<&'static str, u64>,
}

/// Who changes users, as the trail names them, and what the change reaches.
enum By<'a> {
    /// A command of the command line (`jwt-auth user disable`), on the database alone.
    Command(&'static str),
    /// Someone calling from `client`, through a server: an administrator (the id their token
    /// names), or, with no id, a person signing up.
    Server { admin: Option<&'a str>, client: &'a ClientInfo, instance: Instance<'a> },
}

/// Whom an event is about.
struct Target<'a> {
    user: Option<&'a str>,
    session: Option<&'a str>,
}

/// Users as someone changes them: a command, or an administrator through a running server.
pub struct Users<'a> {
    store: &'a Store,
    by: By<'a>,
}

impl<'a> Users<'a> {
    /// Users as `command` (its words: `jwt-auth user disable`) changes them in `store`; what
    /// it did is recorded under its words, and a failure to record fails it.
    pub fn command(store: &'a Store, command: &'static str) -> Self {
        Self { store, by: By::Command(command) }
    }

    /// Users as administrator `admin` (the id their token names), calling from `client`,
    /// changes them through the server `instance`.
    pub fn admin(instance: Instance<'a>, admin: &'a str, client: &'a ClientInfo) -> Self {
        Self { store: instance.store, by: By::Server { admin: Some(admin), client, instance } }
    }

    /// Users as a person calling from `client` signs up through the server `instance`
    /// (`POST /auth/register`): only [`Users::add`] is theirs to call.
    pub fn signing_up(instance: Instance<'a>, client: &'a ClientInfo) -> Self {
        Self { store: instance.store, by: By::Server { admin: None, client, instance } }
    }

    /// Creates a user with `email` (as [`email::checked`](crate::email::checked) gives it)
    /// and `password` (one that [`check_new_password`](crate::passwords::check_new_password)
    /// takes), with the role `user`, and `admin` too if `admin`.
    pub async fn add(
        &self,
        email: String,
        password: String,
        admin: bool,
        now: DateTime<Utc>,
    ) -> Result<User, ServiceError> {
        let password_hash = self.hash(password).await?;
        let roles = if admin { vec!["user".into(), "admin".into()] } else { vec!["user".into()] };
        let user = self.store.create_user(&NewUser { email, password_hash, roles }, now).await?;
        let detail = match &self.by {
            By::Command(command) => Some((*command).to_owned()),
            By::Server { admin, .. } => admin.map(|id| format!("by {id}")),
        };
        if let By::Server { instance, .. } = &self.by {
            instance.users.put(user.clone()).await;
        }
        let target = Target { user: Some(&user.id), session: None };
        self.audit_target(EventKind::UserCreated, target, detail, now).await?;
        Ok(user)
    }

    /// Sets the password of the user `who` names (see [`find`]) and ends every session of
    /// theirs; [`ServiceError::UserGone`] if they were deleted meanwhile.
    pub async fn set_password(
        &self,
        who: &str,
        password: String,
        now: DateTime<Utc>,
    ) -> Result<User, ServiceError> {
        let user = find(self.store, who).await?;
        let hash = self.hash(password).await?;
        let updated = self.store.set_password(&user.id, &hash, now).await?;
        let updated = updated.ok_or(ServiceError::UserGone(user.id))?;
        self.reach(&updated.user.id, Some(&updated.user), &updated.revocations).await;
        let detail = format!("password set by {}; every session ended", self.who());
        self.audit(EventKind::UserUpdated, Some(&updated.user.id), detail, now).await?;
        Ok(updated.user)
    }

    /// Disables (ending their sessions) or enables the user `who` names (see [`find`]);
    /// [`ServiceError::UserGone`] if they were deleted meanwhile.
    pub async fn set_disabled(
        &self,
        who: &str,
        disabled: bool,
        now: DateTime<Utc>,
    ) -> Result<User, ServiceError> {
        let user = find(self.store, who).await?;
        let change = UserChange { roles: None, disabled: Some(disabled) };
        self.change(&user.id, &change, now).await?.ok_or(ServiceError::UserGone(user.id))
    }

    /// Changes user `id` (roles, disabled); [`ServiceError::UnknownUserId`] if there is none.
    pub async fn update(
        &self,
        id: &UserId,
        change: UserChange,
        now: DateTime<Utc>,
    ) -> Result<User, ServiceError> {
        let updated = self.change(id.as_str(), &change, now).await?;
        updated.ok_or_else(|| ServiceError::UnknownUserId(id.to_string()))
    }

    /// Deletes the user `who` names (see [`find`]), after revoking every session and token of
    /// theirs; returns them as they were. [`ServiceError::UserGone`] if they were deleted
    /// meanwhile.
    pub async fn delete(&self, who: &str, now: DateTime<Utc>) -> Result<User, ServiceError> {
        let user = find(self.store, who).await?;
        let deleted = self.store.delete_user(&user.id, now).await?;
        let deleted = deleted.ok_or(ServiceError::UserGone(user.id))?;
        self.reach(&deleted.user.id, None, &deleted.revocations).await;
        let detail = format!("<{}> deleted by {}", deleted.user.email, self.who());
        self.audit(EventKind::UserDeleted, Some(&deleted.user.id), detail, now).await?;
        Ok(deleted.user)
    }

    /// Ends every session of user `id`; [`ServiceError::UnknownUserId`] if there is none.
    pub async fn revoke_sessions(
        &self,
        id: &UserId,
        now: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        let user = get(self.store, id).await?;
        match &self.by {
            By::Server { instance, .. } => {
                instance.sessions.end_all(&user.id, RevokeReason::Admin).await?;
                instance.users.forget(&user.id).await;
            }
            By::Command(_) => {
                self.store.revoke_user(&user.id, RevokeReason::Admin, now).await?;
            }
        }
        let detail = format!("by {}", self.who());
        self.audit(EventKind::AdminRevoke, Some(&user.id), detail, now).await
    }

    /// Ends session `session_id` of user `user` (already ended, it stays as it was, and the
    /// request is still recorded); [`ServiceError::UnknownSession`] if the user has no such
    /// session, which includes a user id that is not one.
    pub async fn revoke_session(
        &self,
        user: &str,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        let unknown = || ServiceError::UnknownSession {
            user: user.to_owned(),
            session: session_id.to_owned(),
        };
        let user = UserId::parse(user).map_err(|_| unknown())?;
        let sessions = self.store.sessions_of_user(user.as_str(), now).await?;
        let session = sessions.iter().find(|s| s.id == session_id).ok_or_else(unknown)?;
        if session.revoked_at.is_none() {
            match &self.by {
                By::Server { instance, .. } => {
                    instance.sessions.end(&session.id, RevokeReason::Admin).await?;
                }
                By::Command(_) => {
                    self.store.revoke_session(&session.id, RevokeReason::Admin, now).await?;
                }
            }
        }
        let detail = format!("by {}", self.who());
        let target = Target { user: Some(user.as_str()), session: Some(&session.id) };
        self.audit_target(EventKind::AdminRevoke, target, Some(detail), now).await
    }

    /// Voids every token issued before `cut_off`, to the user with id `user` or to everyone;
    /// [`ServiceError::UnknownUserId`] if there is no such user.
    pub async fn void_issued_before(
        &self,
        user: Option<&str>,
        cut_off: CutOff,
        now: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        if let Some(id) = user {
            get(self.store, &UserId::parse(id)?).await?;
        }
        match &self.by {
            By::Server { instance, .. } => {
                instance.sessions.void_issued_before(user, cut_off.time()).await?;
            }
            By::Command(_) => {
                self.store.void_issued_before(user, cut_off.time(), now).await?;
            }
        }
        let whom = user.map_or_else(|| "every user".to_owned(), |id| format!("user {id}"));
        let detail = format!(
            "tokens of {whom} issued before {} voided by {}",
            cut_off.time().to_rfc3339(),
            self.who()
        );
        self.audit(EventKind::TokensVoided, user, detail, now).await
    }

    /// Creates the users of `batch`, read from `file`, in one transaction: all of them, or
    /// none and [`ServiceError::ImportedEmailTaken`] naming the first whose email is
    /// registered already, unless `existing` skips them.
    pub async fn import(
        &self,
        batch: &Batch,
        file: &str,
        existing: ExistingEmails,
        now: DateTime<Utc>,
    ) -> Result<ImportReport, ServiceError> {
        let imported = match self.store.import_users(&batch.users, now, existing).await {
            Err(StoreError::ImportedEmailTaken { index }) => {
                return Err(ServiceError::ImportedEmailTaken {
                    line: batch.lines.get(index).copied().unwrap_or_default(),
                    email: batch.users.get(index).map_or("", |u| u.email.as_str()).to_owned(),
                });
            }
            other => other?,
        };
        let detail = format!(
            "{} {file}: created {} users, skipped {} whose email exists already",
            self.who(),
            imported.created,
            imported.skipped.len()
        );
        self.audit(EventKind::UsersImported, None, detail, now).await?;
        let families = batch.families_created(&imported.skipped);
        Ok(ImportReport { imported, families })
    }

    /// Writes `change` of user `id`; `None` if there is no such user.
    async fn change(
        &self,
        id: &str,
        change: &UserChange,
        now: DateTime<Utc>,
    ) -> Result<Option<User>, ServiceError> {
        let roles = change.roles.clone().map(Role::names);
        let update = UserUpdate { roles, disabled: change.disabled };
        let Some(updated) = self.store.update_user(id, &update, now).await? else {
            return Ok(None);
        };
        self.reach(&updated.user.id, Some(&updated.user), &updated.revocations).await;
        let detail = match &self.by {
            By::Command(command) => format!("{} by {command}", change.words()),
            By::Server { .. } => format!("by {}; {}", self.who(), change.words()),
        };
        self.audit(EventKind::UserUpdated, Some(&updated.user.id), detail, now).await?;
        Ok(Some(updated.user))
    }

    /// Through a server, its cache holds user `id` as they now are (`None`: deleted), and the
    /// `revocations` the change made are in force there at once, counted, and told to the
    /// feed's readers.
    async fn reach(&self, id: &str, user: Option<&User>, revocations: &[Revocation]) {
        let By::Server { instance, .. } = &self.by else { return };
        match user {
            Some(user) => instance.users.put(user.clone()).await,
            None => instance.users.forget(id).await,
        }
        if !revocations.is_empty() {
            instance.sessions.revocations().apply(revocations);
            instance.metrics.revocations.inc();
            instance.feed_wake.notify_one();
        }
    }

    /// The argon2id hash of a new password: on the server's threads, or a command's own.
    async fn hash(&self, password: String) -> Result<PasswordHash, ServiceError> {
        let hash = match &self.by {
            By::Server { instance, .. } => instance.passwords.hash(password).await?,
            By::Command(_) => Passwords::new(1)?.hash(password).await?,
        };
        Ok(PasswordHash::new(hash))
    }

    /// Who acts, as the trail names them: the command's words, or the administrator's id.
    fn who(&self) -> &str {
        match &self.by {
            By::Command(command) => command,
            By::Server { admin, .. } => admin.unwrap_or("the user signing up"),
        }
    }

    /// Records what was done: through a server, into its trail (a failure to record is
    /// logged); by a command, into the database (a failure fails the command).
    async fn audit(
        &self,
        kind: EventKind,
        user: Option<&str>,
        detail: String,
        now: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        self.audit_target(kind, Target { user, session: None }, Some(detail), now).await
    }

    async fn audit_target(
        &self,
        kind: EventKind,
        target: Target<'_>,
        detail: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        match &self.by {
            By::Command(_) => {
                let Target { user, session } = target;
                let detail = detail.unwrap_or_default();
                Ok(audit::record(self.store, kind, user, session, detail, now).await?)
            }
            By::Server { client, instance, .. } => {
                let mut event = Audit::new(kind, client).maybe_user(target.user);
                event.session_id = target.session;
                event.detail = detail;
                instance.trail().audit(event, now).await;
                Ok(())
            }
        }
    }
}
