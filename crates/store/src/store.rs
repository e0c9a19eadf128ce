//! [`Store`]: one API over SQLite and PostgreSQL. `DATABASE_URL` parsing, migrations, and the
//! calls the server makes beyond jwt-core's traits (users, the admin view of sessions, the
//! audit trail, readiness, pruning), each one call for one handler.

use std::fmt;

use chrono::{DateTime, Utc};
use jwt_core::SessionRecord;
use uuid::Uuid;

use crate::error::StoreError;
use crate::model::{
    BackendKind, Credentials, EventQuery, ExistingEmails, Imported, NewUser, PasswordHash,
    RecordedEvent, SecurityEvent, StoreOptions, UpdatedUser, User, UserPage, UserUpdate,
};
use crate::rows::{EventRow, UserChanges, UserRow, db_time, roles_json};
use crate::{postgres, sqlite};

/// Runs `$call` (a call into `queries::…` on `$conn`) on whichever backend the store has:
/// on PostgreSQL with a pooled connection, on SQLite on a blocking thread with a connection of
/// `$lane` (`read` or `write`). The arguments it uses must be owned (they move to the thread).
macro_rules! on_backend {
    ($store:expr, $lane:ident, |$conn:ident| $call:expr) => {
        match &$store.backend {
            $crate::store::Backend::Postgres(db) => match db.connection().await {
                Ok(mut pooled) => {
                    use $crate::postgres::queries;
                    let $conn = &mut *pooled;
                    let result = $call.await;
                    db.observe(&mut pooled, result)
                }
                Err(err) => Err(err),
            },
            $crate::store::Backend::Sqlite(db) => {
                db.$lane(move |$conn| {
                    Box::pin(async move {
                        use $crate::sqlite::queries;
                        $call.await
                    })
                })
                .await
            }
        }
    };
}
pub(crate) use on_backend;

/// Users, sessions, refresh tokens, revocations and security events in SQLite or PostgreSQL.
///
/// Cloning is cheap and shares the connection pools. Every method is atomic: the ones that
/// change several rows do it in one transaction.
#[derive(Clone)]
pub struct Store {
    pub(crate) backend: Backend,
}

#[derive(Clone)]
pub(crate) enum Backend {
    Postgres(postgres::Database),
    Sqlite(sqlite::Database),
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password: only the kind is shown.
        f.debug_struct("Store").field("backend", &self.backend()).finish()
    }
}

/// A PostgreSQL URL naming database `name` on the server of `url` instead of its own, with the
/// same user, host and query parameters: to make, drop or reach another database of one
/// server (the tests' and the benchmarks' own).
///
/// ```
/// use jwt_auth_store::postgres_url_with_database;
/// let url = "postgres://app@db:5432/auth?sslmode=require";
/// assert_eq!(postgres_url_with_database(url, "postgres"), "postgres://app@db:5432/postgres?sslmode=require");
/// assert_eq!(postgres_url_with_database("postgres://db", "t1"), "postgres://db/t1");
/// ```
pub fn postgres_url_with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let authority = base.find("://").map_or(0, |i| i + 3);
    let base = base[authority..].find('/').map_or(base, |i| &base[..authority + i]);
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

/// Where `DATABASE_URL` points.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Sqlite(String),
    Postgres(String),
}

fn parse_url(url: &str) -> Result<Target, StoreError> {
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let path = rest.strip_prefix("//").unwrap_or(rest);
        if path.is_empty() {
            return Err(StoreError::InvalidUrl("`sqlite://` needs a file path".into()));
        }
        if path == ":memory:" || path.contains("mode=memory") {
            return Err(StoreError::InvalidUrl(
                "in-memory SQLite is not supported: every pooled connection would get its own \
                 empty database"
                    .into(),
            ));
        }
        if path.contains('?') {
            return Err(StoreError::InvalidUrl("`sqlite://PATH` takes no query parameters".into()));
        }
        return Ok(Target::Sqlite(path.to_owned()));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Target::Postgres(url.to_owned()));
    }
    let scheme = url.split_once(':').map_or("(none)", |(scheme, _)| scheme);
    Err(StoreError::InvalidUrl(format!(
        "scheme `{scheme}` is not supported; use `sqlite://PATH` or `postgres://…`"
    )))
}

impl Store {
    /// Connects with the default [`StoreOptions`]. See [`Store::connect_with`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, StoreOptions::default()).await
    }

    /// Connects to `url`: `sqlite://PATH` or `sqlite:PATH` (the file is created if missing)
    /// or `postgres://…`/`postgresql://…`. SQLite is opened at once, so a bad path fails here;
    /// PostgreSQL connects on first use, so a server can start while its database is down
    /// ([`Store::ping`] tells when it is up). Does not migrate: see [`Store::migrate`].
    pub async fn connect_with(url: &str, options: StoreOptions) -> Result<Self, StoreError> {
        let backend = match parse_url(url)? {
            Target::Sqlite(path) => Backend::Sqlite(sqlite::Database::open(path, &options).await?),
            Target::Postgres(url) => Backend::Postgres(postgres::Database::connect(&url, &options)),
        };
        Ok(Self { backend })
    }

    /// Applies the pending migrations (embedded in the binary) and returns their versions.
    pub async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        match &self.backend {
            Backend::Postgres(db) => db.migrate().await,
            Backend::Sqlite(db) => db.migrate().await,
        }
    }

    /// Which database this is.
    pub fn backend(&self) -> BackendKind {
        match self.backend {
            Backend::Postgres(_) => BackendKind::Postgres,
            Backend::Sqlite(_) => BackendKind::Sqlite,
        }
    }

    /// The changes that every instance's writes notify (revocations recorded, users changed),
    /// pushed by PostgreSQL as they commit, from one dedicated connection that reconnects by
    /// itself (after which a [`Change::Resync`](crate::changes::Change::Resync) arrives). `None` on
    /// SQLite, where one process writes and applies its own writes, and outside a tokio
    /// runtime. The feeds stay the source of truth: keep polling them, less often.
    pub fn changes(&self) -> Option<crate::changes::Changes> {
        match &self.backend {
            Backend::Postgres(db) => db.changes(),
            Backend::Sqlite(_) => None,
        }
    }

    /// Whether the changes of [`Store::changes`] arrive now (PostgreSQL's dedicated connection
    /// has `LISTEN` in place); `None` on SQLite, which has no change feed. While it is
    /// `false`, polling alone keeps an instance current.
    pub fn change_notifications(&self) -> Option<bool> {
        match &self.backend {
            Backend::Postgres(db) => Some(db.is_listening()),
            Backend::Sqlite(_) => None,
        }
    }

    /// Succeeds when the database answers a query: for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_backend!(self, read, |conn| queries::ping(conn))
    }

    /// Creates a user with a new UUID. [`StoreError::EmailTaken`] if another user has the
    /// same email without regard to case.
    /// The email must pass [`normalize_email`](crate::email::normalize_email)
    /// ([`StoreError::InvalidEmail`]) and is stored normalized.
    pub async fn create_user(&self, user: &NewUser, at: DateTime<Utc>) -> Result<User, StoreError> {
        let id = Uuid::new_v4().to_string();
        let email = crate::email::normalize_email(&user.email)?;
        let row = UserRow::new(id, &email, user.password_hash.expose(), &user.roles, at);
        on_backend!(self, write, |conn| queries::create_user(conn, row))?.into_user()
    }

    /// Creates `users`, each with a new UUID, in one transaction: all of them, or none if the
    /// call fails. A user whose email exists already (without regard to case) fails the call
    /// ([`StoreError::ImportedEmailTaken`], naming its position) or is skipped, as `existing`
    /// says. Every email must pass [`normalize_email`](crate::email::normalize_email)
    /// ([`StoreError::InvalidEmail`], and nothing is created); two users of `users` with the
    /// same email are the caller's to refuse (the second would be skipped).
    pub async fn import_users(
        &self,
        users: &[NewUser],
        at: DateTime<Utc>,
        existing: ExistingEmails,
    ) -> Result<Imported, StoreError> {
        let rows = users
            .iter()
            .map(|user| {
                let email = crate::email::normalize_email(&user.email)?;
                let id = Uuid::new_v4().to_string();
                Ok(UserRow::new(id, &email, user.password_hash.expose(), &user.roles, at))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let total = rows.len() as u64;
        let skipped = on_backend!(self, write, |conn| queries::import_users(conn, rows, existing))?;
        Ok(Imported { created: total - skipped.len() as u64, skipped })
    }

    /// Replaces the password hash of user `id` by `new`, if it is still `current` (a password
    /// changed meanwhile is kept); whether it did. Used to upgrade a hash at login.
    pub async fn replace_password_hash(
        &self,
        id: &str,
        current: &PasswordHash,
        new: &PasswordHash,
    ) -> Result<bool, StoreError> {
        let (id, current, new) =
            (id.to_owned(), current.expose().to_owned(), new.expose().to_owned());
        on_backend!(self, write, |conn| queries::replace_password_hash(conn, &id, &current, &new))
    }

    /// The user with this email (compared without regard to case) and the password hash,
    /// for login. Disabled users are returned too: the caller decides what to say.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<Credentials>, StoreError> {
        let email = email.to_owned();
        let row = on_backend!(self, read, |conn| queries::user_by_email(conn, &email))?;
        row.map(|row| {
            let password_hash = PasswordHash::new(row.password_hash.clone());
            Ok(Credentials { user: row.into_user()?, password_hash })
        })
        .transpose()
    }

    /// The user with this id.
    pub async fn user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        let id = id.to_owned();
        on_backend!(self, read, |conn| queries::user_by_id(conn, &id))?
            .map(UserRow::into_user)
            .transpose()
    }

    /// The ids of the users whose record (roles, disabled flag) changed at or after `since`,
    /// by their `updated_at`: how an instance that caches users learns what to drop, whether
    /// or not the change was pushed ([`Store::changes`]).
    pub async fn users_changed_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        on_backend!(self, read, |conn| queries::users_changed_since(conn, since))
    }

    /// A page of users, oldest first, and how many there are.
    pub async fn list_users(&self, limit: u32, offset: u64) -> Result<UserPage, StoreError> {
        self.search_users(None, limit, offset).await
    }

    /// Like [`Store::list_users`], of the users whose email contains `email_contains`
    /// (without regard to case; `None`: every user), with their total.
    pub async fn search_users(
        &self,
        email_contains: Option<&str>,
        limit: u32,
        offset: u64,
    ) -> Result<UserPage, StoreError> {
        // No stored email holds a NUL (PostgreSQL's text cannot): no query that would fail.
        if email_contains.is_some_and(|part| part.contains('\0')) {
            return Ok(UserPage { users: Vec::new(), total: 0 });
        }
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let part = email_contains.map(str::to_owned);
        let (rows, total) = on_backend!(self, read, |conn| queries::list_users(
            conn,
            part.as_deref(),
            limit.into(),
            offset
        ))?;
        Ok(UserPage {
            users: rows.into_iter().map(UserRow::into_user).collect::<Result<_, _>>()?,
            total: u64::try_from(total).unwrap_or_default(),
        })
    }

    /// Changes a user's roles and/or disabled flag; `None` if there is no such user.
    /// Disabling also revokes every session of the user and voids their tokens issued before
    /// `at`, in the same transaction; the revocations come back for the local revocation set.
    pub async fn update_user(
        &self,
        id: &str,
        update: &UserUpdate,
        at: DateTime<Utc>,
    ) -> Result<Option<UpdatedUser>, StoreError> {
        let id = id.to_owned();
        let changes = UserChanges {
            roles: update.roles.as_deref().map(roles_json),
            disabled: update.disabled,
            updated_at: db_time(at),
        };
        let disable = update.disabled == Some(true);
        let updated = on_backend!(self, write, |conn| queries::update_user(
            conn, &id, &changes, disable, at
        ))?;
        updated
            .map(|(row, revocations)| Ok(UpdatedUser { user: row.into_user()?, revocations }))
            .transpose()
    }

    /// Sets user `id`'s password hash to `hash` and ends every session of theirs (every token
    /// issued to them before `at` is void), in one transaction: what an operator does for an
    /// account whose password leaked. `None` if there is no such user.
    pub async fn set_password(
        &self,
        id: &str,
        hash: &PasswordHash,
        at: DateTime<Utc>,
    ) -> Result<Option<UpdatedUser>, StoreError> {
        let (id, hash) = (id.to_owned(), hash.expose().to_owned());
        let updated =
            on_backend!(self, write, |conn| queries::set_password_hash(conn, &id, &hash, at))?;
        updated
            .map(|(row, revocations)| Ok(UpdatedUser { user: row.into_user()?, revocations }))
            .transpose()
    }

    /// Deletes user `id` with their sessions and refresh tokens, after revoking every session
    /// and voiding every token issued to them before `at`, in one transaction; the revocations
    /// stay in the feed, so that every instance refuses their tokens. Returns the user as they
    /// were, and the revocations; `None` if there is no such user. The audit trail keeps what
    /// it recorded of them.
    pub async fn delete_user(
        &self,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<UpdatedUser>, StoreError> {
        let id = id.to_owned();
        let deleted = on_backend!(self, write, |conn| queries::delete_user(conn, &id, at))?;
        deleted
            .map(|(row, revocations)| Ok(UpdatedUser { user: row.into_user()?, revocations }))
            .transpose()
    }

    /// A user's sessions that have not expired by `now`, newest first: the live ones and the
    /// revoked ones with their reason (filter on `revoked_at` for the active ones).
    pub async fn sessions_of_user(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let user_id = user_id.to_owned();
        on_backend!(self, read, |conn| queries::sessions_of_user(conn, &user_id, now))?
            .into_iter()
            .map(|row| row.into_record())
            .collect()
    }

    /// Appends an event to the audit trail.
    pub async fn record_event(&self, event: &SecurityEvent) -> Result<(), StoreError> {
        let row = EventRow::new(event);
        on_backend!(self, write, |conn| queries::record_event(conn, &row))
    }

    /// Events of the audit trail, newest first, filtered by `query`.
    pub async fn events(&self, query: &EventQuery) -> Result<Vec<RecordedEvent>, StoreError> {
        let query = query.clone();
        on_backend!(self, read, |conn| queries::events(conn, &query))?
            .into_iter()
            .map(|row| row.into_event())
            .collect()
    }

    /// Deletes what has expired by `now`: at most `batch_size` rows each of refresh tokens,
    /// sessions and the revocation feed's session entries, one short statement each. Returns
    /// how many rows went; a background task calls it again while that is not zero. Never on
    /// the request path. (Security events are kept: they are the audit trail.)
    pub async fn prune_expired(
        &self,
        now: DateTime<Utc>,
        batch_size: u32,
    ) -> Result<u64, StoreError> {
        let batch = i64::from(batch_size.max(1));
        on_backend!(self, write, |conn| queries::prune_expired(conn, now, batch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_url_ok(url: &str) -> Option<Target> {
        parse_url(url).ok()
    }

    #[test]
    fn database_urls() {
        let sqlite = |p: &str| Some(Target::Sqlite(p.to_owned()));
        assert_eq!(parse_url_ok("sqlite://jwt-auth.db"), sqlite("jwt-auth.db"));
        assert_eq!(parse_url_ok("sqlite:///var/lib/jwt.db"), sqlite("/var/lib/jwt.db"));
        assert_eq!(parse_url_ok("sqlite:data/jwt.db"), sqlite("data/jwt.db"));
        let pg = "postgres://u:secret@db:5432/auth";
        assert_eq!(parse_url_ok(pg), Some(Target::Postgres(pg.to_owned())));
        let pg = "postgresql://db/auth";
        assert_eq!(parse_url_ok(pg), Some(Target::Postgres(pg.to_owned())));
        for bad in
            ["sqlite://", "sqlite::memory:", "sqlite://x.db?mode=rwc", "mysql://u:secret@h/d", ""]
        {
            match parse_url(bad) {
                Err(StoreError::InvalidUrl(msg)) => assert!(!msg.contains("secret"), "{msg}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
