//! Every query, written once and compiled once per backend: `postgres.rs` and `sqlite.rs`
//! each declare this file as their `queries` module, beside their own `Conn` type and
//! `write_transaction!` macro (`BEGIN` on PostgreSQL, `BEGIN IMMEDIATE` on SQLite). So both
//! backends run the same diesel statements, and a fix lands on both.
//!
//! Lookups by a unique key use `get_result`, never `first`: `first` adds `LIMIT ?`, and
//! SQLite re-prepares a statement whose `LIMIT` is a bound parameter every time it is bound
//! again, which made a cached point lookup cost a full parse and plan on every call.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::result::DatabaseErrorKind;
// Shadows the glob-imported sync `RunQueryDsl` of diesel's prelude.
use diesel_async::RunQueryDsl;
use jwt_core::{GraceOutcome, Revocation, RevokeReason, RotateOutcome, Subject};

use super::Conn;
use crate::codes::{CodeRow, Redemption};
use crate::error::StoreError;
use crate::model::{EventQuery, ExistingEmails};
use crate::rows::{
    ClientRow, EventRow, ISSUED_BEFORE, KEY, KEYS_CHANGED_KIND, REVOCATION_KINDS, RefreshTokenRow,
    Retirement, RevocationRow, RotationSeen, SESSION, SessionRow, SigningKeyRow, USER_CHANGED_KIND,
    UserChanges, UserRow, already_rotated, db_time, email_key, parse_roles,
};
use crate::schema::{
    authorization_codes, clients, consents, feed_relay, refresh_tokens, revocations,
    security_events, sessions, signing_keys, token_lifetimes, users,
};

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The kinds of change notified (see `changes.rs`): the revocation feed advanced, a user's
/// record changed.
const REVOCATIONS_CHANGED: &str = "r";
const USER_CHANGED: &str = "u";
const KEYS_CHANGED: &str = "k";

pub(crate) async fn ping(conn: &mut Conn) -> Result<()> {
    diesel::select(1_i32.into_sql::<diesel::sql_types::Integer>()).get_result::<i32>(conn).await?;
    Ok(())
}

pub(crate) async fn create_user(conn: &mut Conn, row: UserRow) -> Result<UserRow> {
    match diesel::insert_into(users::table).values(&row).execute(conn).await {
        Ok(_) => Ok(row),
        // The id is a fresh UUID: the one unique key that can clash is the email's.
        Err(diesel::result::Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            Err(StoreError::EmailTaken)
        }
        Err(e) => Err(e.into()),
    }
}

/// Inserts `rows` in one transaction, skipping those whose email exists already; returns the
/// skipped rows' emails.
pub(crate) async fn import_users(
    conn: &mut Conn,
    rows: Vec<UserRow>,
    existing: ExistingEmails,
) -> Result<Vec<String>> {
    write_transaction!(conn, async |conn| {
        let mut skipped = Vec::new();
        for (index, row) in rows.iter().enumerate() {
            let inserted = diesel::insert_into(users::table)
                .values(row)
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
            if inserted == 0 {
                if existing == ExistingEmails::Refuse {
                    // Rolls the whole batch back.
                    return Err(StoreError::ImportedEmailTaken { index });
                }
                skipped.push(row.email.clone());
            }
        }
        Ok(skipped)
    })
    .await
}

/// Replaces the password hash of user `id` if it is still `current`; whether it did.
pub(crate) async fn replace_password_hash(
    conn: &mut Conn,
    id: &str,
    current: &str,
    new: &str,
) -> Result<bool> {
    let updated = diesel::update(users::table.find(id).filter(users::password_hash.eq(current)))
        .set(users::password_hash.eq(new))
        .execute(conn)
        .await?;
    Ok(updated == 1)
}

pub(crate) async fn user_by_email(conn: &mut Conn, email: &str) -> Result<Option<UserRow>> {
    Ok(users::table
        .filter(users::email_key.eq(email_key(email)))
        .select(UserRow::as_select())
        .get_result(conn)
        .await
        .optional()?)
}

pub(crate) async fn user_by_id(conn: &mut Conn, id: &str) -> Result<Option<UserRow>> {
    Ok(users::table.find(id).select(UserRow::as_select()).get_result(conn).await.optional()?)
}

/// The ids of users whose record changed at or after `since`.
pub(crate) async fn users_changed_since(
    conn: &mut Conn,
    since: DateTime<Utc>,
) -> Result<Vec<String>> {
    Ok(users::table
        .filter(users::updated_at.ge(db_time(since)))
        .select(users::id)
        .load(conn)
        .await?)
}

pub(crate) async fn list_users(
    conn: &mut Conn,
    email_contains: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<UserRow>, i64)> {
    // `LIKE` on the lower-cased key, its own wildcards escaped: a substring, case aside.
    let pattern = email_contains.map(|part| {
        let escaped: String = email_key(part)
            .chars()
            .flat_map(|c| match c {
                '\\' | '%' | '_' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        format!("%{escaped}%")
    });
    let matching = || {
        let mut query = users::table.into_boxed();
        if let Some(pattern) = &pattern {
            query = query.filter(users::email_key.like(pattern.clone()).escape('\\'));
        }
        query
    };
    let total = matching().count().get_result(conn).await?;
    let rows = matching()
        .order((users::created_at, users::id))
        .limit(limit)
        .offset(offset)
        .select(UserRow::as_select())
        .load(conn)
        .await?;
    Ok((rows, total))
}

/// Applies `changes`; when `disable`, also revokes the user's sessions and tokens, all in one
/// transaction.
pub(crate) async fn update_user(
    conn: &mut Conn,
    id: &str,
    changes: &UserChanges,
    disable: bool,
    at: DateTime<Utc>,
) -> Result<Option<(UserRow, Vec<Revocation>)>> {
    write_transaction!(conn, async |conn| {
        let updated = diesel::update(users::table.find(id)).set(changes).execute(conn).await?;
        if updated == 0 {
            return Ok(None);
        }
        let revocations = if disable {
            revoke_user(conn, id, RevokeReason::UserDisabled, at).await?
        } else {
            Vec::new()
        };
        record_change(conn, Some(id), at).await?;
        super::notify_change(conn, USER_CHANGED, Some(id)).await?;
        let row = users::table.find(id).select(UserRow::as_select()).get_result(conn).await?;
        Ok(Some((row, revocations)))
    })
    .await
}

/// Sets user `id`'s password hash and ends every session of theirs, in one transaction.
pub(crate) async fn set_password_hash(
    conn: &mut Conn,
    id: &str,
    hash: &str,
    at: DateTime<Utc>,
) -> Result<Option<(UserRow, Vec<Revocation>)>> {
    write_transaction!(conn, async |conn| {
        let updated = diesel::update(users::table.find(id))
            .set((users::password_hash.eq(hash), users::updated_at.eq(db_time(at))))
            .execute(conn)
            .await?;
        if updated == 0 {
            return Ok(None);
        }
        let revocations = revoke_user(conn, id, RevokeReason::Admin, at).await?;
        record_change(conn, Some(id), at).await?;
        super::notify_change(conn, USER_CHANGED, Some(id)).await?;
        let row = users::table.find(id).select(UserRow::as_select()).get_result(conn).await?;
        Ok(Some((row, revocations)))
    })
    .await
}

/// Deletes user `id` (its sessions and refresh tokens with it), after revoking every session
/// and voiding every token issued to them, in one transaction: the revocations stay in the
/// feed, which has no reference to the user's row.
pub(crate) async fn delete_user(
    conn: &mut Conn,
    id: &str,
    at: DateTime<Utc>,
) -> Result<Option<(UserRow, Vec<Revocation>)>> {
    write_transaction!(conn, async |conn| {
        let Some(row) =
            users::table.find(id).select(UserRow::as_select()).get_result(conn).await.optional()?
        else {
            return Ok(None);
        };
        let revocations = revoke_user(conn, id, RevokeReason::Admin, at).await?;
        diesel::delete(users::table.find(id)).execute(conn).await?;
        record_change(conn, Some(id), at).await?;
        super::notify_change(conn, USER_CHANGED, Some(id)).await?;
        Ok(Some((row, revocations)))
    })
    .await
}

pub(crate) async fn active_subject(conn: &mut Conn, user_id: &str) -> Result<Option<Subject>> {
    let found: Option<(String, String, String)> = users::table
        .find(user_id)
        .filter(users::disabled.eq(false))
        .select((users::id, users::email, users::roles))
        .get_result(conn)
        .await
        .optional()?;
    found
        .map(|(id, email, roles)| {
            Ok(Subject { id, roles: parse_roles(&roles)?, email: Some(email) })
        })
        .transpose()
}

/// Creates a session and its first refresh token. A session started from an authorization
/// code (`code`, its digest) first claims the code: marks it used by this session, if it is
/// unused and unexpired, and takes its browser sign-in session; otherwise nothing is created
/// ([`StoreError::CodeUsed`]). One transaction, so a code starts at most one session.
pub(crate) async fn create_session(
    conn: &mut Conn,
    session: &SessionRow,
    first_token: &RefreshTokenRow,
    code: Option<&[u8]>,
) -> Result<()> {
    write_transaction!(conn, async |conn| {
        let mut session = session.clone();
        if let Some(digest) = code {
            let unused = authorization_codes::table
                .find(digest)
                .filter(authorization_codes::used_at.is_null())
                .filter(authorization_codes::expires_at.gt(session.created_at));
            let claimed: Option<Option<String>> = diesel::update(unused)
                .set((
                    authorization_codes::used_at.eq(session.created_at),
                    authorization_codes::session_id.eq(&session.id),
                ))
                .returning(authorization_codes::sign_in_session)
                .get_result(conn)
                .await
                .optional()?;
            let Some(sign_in_session) = claimed else { return Err(StoreError::CodeUsed) };
            session.sign_in_session = sign_in_session;
        }
        diesel::insert_into(sessions::table).values(&session).execute(conn).await?;
        diesel::insert_into(refresh_tokens::table).values(first_token).execute(conn).await?;
        Ok(())
    })
    .await
}

pub(crate) async fn session(conn: &mut Conn, id: &str) -> Result<Option<SessionRow>> {
    Ok(sessions::table
        .find(id)
        .select(SessionRow::as_select())
        .get_result(conn)
        .await
        .optional()?)
}

/// Sessions of a user that have not expired by `now`, revoked ones included, newest first.
pub(crate) async fn sessions_of_user(
    conn: &mut Conn,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<SessionRow>> {
    Ok(sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::expires_at.gt(db_time(now)))
        .order((sessions::created_at.desc(), sessions::id))
        .select(SessionRow::as_select())
        .load(conn)
        .await?)
}

/// Why a rotation rolled back without failing.
enum Abort {
    /// The presented token is not current (unknown, or already retired): nothing to do.
    NotCurrent,
    /// The token was current but its session is revoked.
    SessionRevoked,
    Failed(StoreError),
}

impl From<diesel::result::Error> for Abort {
    fn from(err: diesel::result::Error) -> Self {
        Abort::Failed(err.into())
    }
}

/// Retires `presented` and records `replacement` in one transaction, or changes nothing.
///
/// Three statements, sent together (PostgreSQL pipelines them in one round trip; SQLite runs
/// them in turn): retire the token with a conditional `UPDATE … WHERE rotated_at IS NULL`, so
/// that of concurrent rotations exactly one changes the row (the others wait on its lock, then
/// find it retired); mark its session used only if the session is not revoked, which also
/// locks the session against a concurrent revocation until the commit; insert the
/// replacement. Unless the first two each changed their row, the transaction rolls back.
pub(crate) async fn rotate(
    conn: &mut Conn,
    presented: &str,
    replacement: &RefreshTokenRow,
    retirement: &Retirement,
    at: DateTime<Utc>,
) -> Result<RotateOutcome> {
    let outcome = write_transaction!(conn, async |conn| {
        let retire = diesel::update(
            refresh_tokens::table
                .find(presented)
                .filter(refresh_tokens::session_id.eq(&replacement.session_id))
                .filter(refresh_tokens::rotated_at.is_null()),
        )
        .set(retirement);
        let its_session =
            refresh_tokens::table.find(presented).select(refresh_tokens::session_id).single_value();
        let touch = diesel::update(
            sessions::table
                .filter(sessions::id.nullable().eq(its_session))
                .filter(sessions::revoked_at.is_null()),
        )
        .set(sessions::last_used_at.eq(db_time(at)));
        let record = diesel::insert_into(refresh_tokens::table).values(replacement);
        let (retired, touched, recorded) = super::execute_pipelined(
            conn,
            |c| retire.execute(c),
            |c| touch.execute(c),
            |c| record.execute(c),
        )
        .await;
        if retired? == 0 {
            return Err(Abort::NotCurrent);
        }
        if touched? == 0 {
            return Err(Abort::SessionRevoked);
        }
        recorded?;
        Ok(RotateOutcome::Rotated)
    })
    .await;
    match outcome {
        Ok(outcome) => Ok(outcome),
        Err(Abort::SessionRevoked) => Ok(RotateOutcome::SessionRevoked),
        Err(Abort::Failed(err)) => Err(err),
        Err(Abort::NotCurrent) => {
            // Read after the rollback: once retired, a token stays retired.
            // A token of another session is `NotFound`, as if it did not exist.
            let seen: Option<RotationSeen> = refresh_tokens::table
                .find(presented)
                .filter(refresh_tokens::session_id.eq(&replacement.session_id))
                .select((
                    refresh_tokens::rotated_at,
                    refresh_tokens::rotated_ip,
                    refresh_tokens::rotated_user_agent,
                ))
                .get_result(conn)
                .await
                .optional()?;
            Ok(seen.and_then(already_rotated).unwrap_or(RotateOutcome::NotFound))
        }
    }
}

/// The `rotated_at` of token `jti` if it belongs to `session_id`: `None` if there is no such
/// token in that session.
pub(crate) async fn refresh_token(
    conn: &mut Conn,
    jti: &str,
    session_id: &str,
) -> Result<Option<Option<NaiveDateTime>>> {
    Ok(refresh_tokens::table
        .find(jti)
        .filter(refresh_tokens::session_id.eq(session_id))
        .select(refresh_tokens::rotated_at)
        .get_result(conn)
        .await
        .optional()?)
}

/// Records a further token in a live session (the grace path), or changes nothing.
///
/// One transaction: first mark the session used, only if it is not revoked (which, as in
/// [`rotate`], locks the session row until the commit, so a concurrent revocation either
/// committed before and is seen here, or waits and comes after the token is recorded); then
/// insert the token. SQLite's write transactions are serial anyway.
pub(crate) async fn add_refresh_token(
    conn: &mut Conn,
    token: &RefreshTokenRow,
    at: DateTime<Utc>,
) -> Result<GraceOutcome> {
    write_transaction!(conn, async |conn| {
        let touched = diesel::update(
            sessions::table.find(&token.session_id).filter(sessions::revoked_at.is_null()),
        )
        .set(sessions::last_used_at.eq(db_time(at)))
        .execute(conn)
        .await?;
        if touched == 0 {
            return Ok(GraceOutcome::SessionRevoked);
        }
        diesel::insert_into(refresh_tokens::table).values(token).execute(conn).await?;
        Ok(GraceOutcome::Recorded)
    })
    .await
}

async fn record_revocation(
    conn: &mut Conn,
    revocation: &Revocation,
    at: DateTime<Utc>,
) -> Result<()> {
    // Readers follow the feed by id: ids must become visible in the order they were given.
    super::serialize_feed_writes(conn).await?;
    diesel::insert_into(revocations::table)
        .values(RevocationRow::new(revocation, at))
        .execute(conn)
        .await?;
    Ok(())
}

/// Records in the feed table, the change stream's outbox, that user `user_id` (or the signing
/// keys, for `None`) changed: the relay publishes it in cursor order with the revocations.
async fn record_change(conn: &mut Conn, user_id: Option<&str>, at: DateTime<Utc>) -> Result<()> {
    super::serialize_feed_writes(conn).await?;
    diesel::insert_into(revocations::table)
        .values(RevocationRow::change(user_id, db_time(at)))
        .execute(conn)
        .await?;
    Ok(())
}

/// Moves a user's "tokens issued before" cut-off forward to `before` (never back).
async fn void_user_tokens(conn: &mut Conn, user_id: &str, before: NaiveDateTime) -> Result<()> {
    diesel::update(
        users::table
            .find(user_id)
            .filter(users::tokens_valid_after.is_null().or(users::tokens_valid_after.lt(before))),
    )
    .set(users::tokens_valid_after.eq(before))
    .execute(conn)
    .await?;
    Ok(())
}

pub(crate) async fn revoke_session(
    conn: &mut Conn,
    id: &str,
    reason: RevokeReason,
    at: DateTime<Utc>,
) -> Result<Option<Revocation>> {
    write_transaction!(conn, async |conn| {
        let expires_at: Option<NaiveDateTime> = sessions::table
            .find(id)
            .select(sessions::expires_at)
            .get_result(conn)
            .await
            .optional()?;
        let Some(expires_at) = expires_at else {
            return Ok(None);
        };
        // An already revoked session keeps its first time and reason.
        diesel::update(sessions::table.find(id).filter(sessions::revoked_at.is_null()))
            .set((
                sessions::revoked_at.eq(db_time(at)),
                sessions::revoke_reason.eq(reason.as_str()),
            ))
            .execute(conn)
            .await?;
        let revocation =
            Revocation::Session { id: id.to_owned(), expires_at: expires_at.and_utc() };
        record_revocation(conn, &revocation, at).await?;
        super::notify_change(conn, REVOCATIONS_CHANGED, None).await?;
        Ok(Some(revocation))
    })
    .await
}

/// Revokes every live session of a user and voids the user's tokens issued before `at`.
/// Runs inside the caller's transaction.
async fn revoke_user(
    conn: &mut Conn,
    user_id: &str,
    reason: RevokeReason,
    at: DateTime<Utc>,
) -> Result<Vec<Revocation>> {
    let revoked: Vec<(String, NaiveDateTime)> = diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::revoked_at.is_null()),
    )
    .set((sessions::revoked_at.eq(db_time(at)), sessions::revoke_reason.eq(reason.as_str())))
    .returning((sessions::id, sessions::expires_at))
    .load(conn)
    .await?;
    let mut revocations: Vec<Revocation> = revoked
        .into_iter()
        .map(|(id, expires_at)| Revocation::Session { id, expires_at: expires_at.and_utc() })
        .collect();
    revocations.push(Revocation::IssuedBefore {
        user_id: Some(user_id.to_owned()),
        before: db_time(at).and_utc(),
    });
    for revocation in &revocations {
        record_revocation(conn, revocation, at).await?;
    }
    void_user_tokens(conn, user_id, db_time(at)).await?;
    super::notify_change(conn, REVOCATIONS_CHANGED, None).await?;
    Ok(revocations)
}

pub(crate) async fn revoke_user_sessions(
    conn: &mut Conn,
    user_id: &str,
    reason: RevokeReason,
    at: DateTime<Utc>,
) -> Result<Vec<Revocation>> {
    write_transaction!(conn, async |conn| revoke_user(conn, user_id, reason, at).await).await
}

pub(crate) async fn void_issued_before(
    conn: &mut Conn,
    user_id: Option<&str>,
    before: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Result<Revocation> {
    write_transaction!(conn, async |conn| {
        let before = db_time(before);
        let revocation = Revocation::IssuedBefore {
            user_id: user_id.map(str::to_owned),
            before: before.and_utc(),
        };
        record_revocation(conn, &revocation, at).await?;
        if let Some(user_id) = user_id {
            void_user_tokens(conn, user_id, before).await?;
        }
        super::notify_change(conn, REVOCATIONS_CHANGED, None).await?;
        Ok(revocation)
    })
    .await
}

/// The feed by position: the entries after id `after`, oldest first, that still matter at
/// `now`.
pub(crate) async fn revocation_feed(
    conn: &mut Conn,
    after: i64,
    now: NaiveDateTime,
) -> Result<Vec<(i64, RevocationRow)>> {
    Ok(revocations::table
        .filter(revocations::id.gt(after))
        .filter(revocations::kind.eq_any(REVOCATION_KINDS))
        .filter(revocations::kind.eq(ISSUED_BEFORE).or(revocations::session_expires_at.gt(now)))
        .order(revocations::id)
        .select((revocations::id, RevocationRow::as_select()))
        .load(conn)
        .await?)
}

/// The outbox by position: every row of the feed table after id `after` (revocations, user
/// changes, key changes), oldest first, at most `limit`.
pub(crate) async fn outbox_after(
    conn: &mut Conn,
    after: i64,
    limit: i64,
) -> Result<Vec<(i64, RevocationRow)>> {
    Ok(revocations::table
        .filter(revocations::id.gt(after))
        .order(revocations::id)
        .limit(limit)
        .select((revocations::id, RevocationRow::as_select()))
        .load(conn)
        .await?)
}

/// How far the relay has published the outbox; 0 before it ever has.
pub(crate) async fn relay_published(conn: &mut Conn) -> Result<i64> {
    Ok(feed_relay::table
        .find(1i16)
        .select(feed_relay::published)
        .get_result::<i64>(conn)
        .await
        .optional()?
        .unwrap_or(0))
}

/// Records that the relay has published the outbox up to `position` (never moves back).
pub(crate) async fn set_relay_published(conn: &mut Conn, position: i64) -> Result<()> {
    let updated = diesel::update(feed_relay::table.find(1i16))
        .filter(feed_relay::published.lt(position))
        .set(feed_relay::published.eq(position))
        .execute(conn)
        .await?;
    if updated == 0 {
        diesel::insert_into(feed_relay::table)
            .values((feed_relay::id.eq(1i16), feed_relay::published.eq(position)))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// The id of the newest feed entry, 0 if there is none.
pub(crate) async fn revocation_feed_head(conn: &mut Conn) -> Result<i64> {
    use diesel::dsl::max;
    Ok(revocations::table
        .select(max(revocations::id))
        .first::<Option<i64>>(conn)
        .await?
        .unwrap_or(0))
}

pub(crate) async fn record_event(conn: &mut Conn, event: &EventRow) -> Result<()> {
    diesel::insert_into(security_events::table).values(event).execute(conn).await?;
    Ok(())
}

pub(crate) async fn events(conn: &mut Conn, query: &EventQuery) -> Result<Vec<EventRow>> {
    let mut select = security_events::table
        .order((security_events::at.desc(), security_events::id.desc()))
        .limit(query.limit.into())
        .select(EventRow::as_select())
        .into_boxed();
    if let Some(user_id) = &query.user_id {
        select = select.filter(security_events::user_id.eq(user_id));
    }
    if let Some(kind) = query.kind {
        select = select.filter(security_events::kind.eq(kind.as_str()));
    }
    Ok(select.load(conn).await?)
}

/// Deletes at most `batch` rows from each of: expired refresh tokens, expired sessions, and
/// feed entries of expired sessions. Each `DELETE` is one short statement, so the write lock
/// is never held for long. Sessions wait until no expired token is left: a session's tokens
/// expire with it at the latest, so deleting it then cascades to nothing and the batch bound
/// holds.
pub(crate) async fn prune_expired(conn: &mut Conn, now: DateTime<Utc>, batch: i64) -> Result<u64> {
    let now = db_time(now);
    let tokens = prune_tokens(conn, now, batch).await?;
    let sessions = if tokens < batch { prune_sessions(conn, now, batch).await? } else { 0 };
    let feed = prune_feed(conn, now, batch).await?;
    let codes = prune_codes(conn, now, batch).await?;
    Ok((tokens + sessions + feed + codes).unsigned_abs())
}

/// `DELETE FROM table WHERE key IN (SELECT key FROM table WHERE … LIMIT batch)`, the number
/// of rows deleted. The subquery names its table through the alias `$expired`, which diesel
/// needs to tell it from the table being deleted from.
macro_rules! delete_batch {
    ($conn:expr, $table:ident.$key:ident, $batch:expr, |$expired:ident| $filter:expr) => {{
        let $expired = diesel::alias!($table as expired);
        let keys = $expired.select($expired.field($table::$key)).filter($filter).limit($batch);
        let deleted =
            diesel::delete($table::table.filter($table::$key.eq_any(keys))).execute($conn).await?;
        i64::try_from(deleted).unwrap_or(i64::MAX)
    }};
}

async fn prune_tokens(conn: &mut Conn, now: NaiveDateTime, batch: i64) -> Result<i64> {
    Ok(delete_batch!(conn, refresh_tokens.jti, batch, |expired| expired
        .field(refresh_tokens::expires_at)
        .le(now)))
}

async fn prune_sessions(conn: &mut Conn, now: NaiveDateTime, batch: i64) -> Result<i64> {
    Ok(delete_batch!(conn, sessions.id, batch, |expired| expired
        .field(sessions::expires_at)
        .le(now)))
}

async fn prune_feed(conn: &mut Conn, now: NaiveDateTime, batch: i64) -> Result<i64> {
    Ok(delete_batch!(conn, revocations.id, batch, |expired| expired
        .field(revocations::kind)
        .eq_any([SESSION, KEY, USER_CHANGED_KIND, KEYS_CHANGED_KIND])
        .and(expired.field(revocations::session_expires_at).le(now))))
}

/// How long a code is kept past its expiry: a replay within it still revokes the session
/// the code's first exchange started.
const CODES_KEPT_AFTER_EXPIRY: chrono::TimeDelta = chrono::TimeDelta::hours(1);

async fn prune_codes(conn: &mut Conn, now: NaiveDateTime, batch: i64) -> Result<i64> {
    let cut_off = now - CODES_KEPT_AFTER_EXPIRY;
    Ok(delete_batch!(conn, authorization_codes.code_digest, batch, |expired| expired
        .field(authorization_codes::expires_at)
        .le(cut_off)))
}

/// The stored keys of `purpose` (all of them for `None`), in the order they activate.
pub(crate) async fn signing_keys(
    conn: &mut Conn,
    purpose: Option<&str>,
) -> Result<Vec<SigningKeyRow>> {
    let mut query = signing_keys::table
        .order((signing_keys::activates_at, signing_keys::created_at, signing_keys::kid))
        .select(SigningKeyRow::as_select())
        .into_boxed();
    if let Some(purpose) = purpose {
        query = query.filter(signing_keys::purpose.eq(purpose));
    }
    Ok(query.load(conn).await?)
}

pub(crate) async fn add_first_signing_keys(
    conn: &mut Conn,
    rows: Vec<SigningKeyRow>,
    purpose: &str,
) -> Result<bool> {
    write_transaction!(conn, async |conn| {
        // Single winner across instances: the count below is read under the lock.
        super::serialize_key_writes(conn).await?;
        let stored: i64 = signing_keys::table
            .filter(signing_keys::purpose.eq(purpose))
            .count()
            .get_result(conn)
            .await?;
        if stored > 0 {
            return Ok(false);
        }
        // One statement per row: SQLite has no DEFAULT keyword for diesel's batch insert.
        for row in &rows {
            diesel::insert_into(signing_keys::table).values(row).execute(conn).await?;
        }
        if let Some(row) = <[SigningKeyRow]>::first(&rows) {
            record_change(conn, None, row.created_at.and_utc()).await?;
        }
        super::notify_change(conn, KEYS_CHANGED, None).await?;
        Ok(true)
    })
    .await
}

/// Replaces the sealed private key of each [`ResealedKey`](crate::keys::ResealedKey), in one transaction under the
/// key lock, or changes nothing: every stored key must be listed, each still holding what it held when read.
pub(crate) async fn reseal_signing_keys(
    conn: &mut Conn,
    resealed: Vec<crate::keys::ResealedKey>,
) -> Result<()> {
    write_transaction!(conn, async |conn| {
        super::serialize_key_writes(conn).await?;
        let stored: i64 = signing_keys::table.count().get_result(conn).await?;
        if stored != resealed.len() as i64 {
            return Err(StoreError::KeysChanged);
        }
        for key in &resealed {
            let changed = diesel::update(
                signing_keys::table
                    .find(&key.kid)
                    .filter(signing_keys::sealed_private_key.eq(&key.sealed_before)),
            )
            .set(signing_keys::sealed_private_key.eq(&key.sealed_now))
            .execute(conn)
            .await?;
            if changed != 1 {
                return Err(StoreError::KeysChanged);
            }
        }
        Ok(())
    })
    .await
}

pub(crate) async fn rotate_signing_key(conn: &mut Conn, row: SigningKeyRow) -> Result<()> {
    write_transaction!(conn, async |conn| {
        super::serialize_key_writes(conn).await?;
        diesel::update(
            signing_keys::table
                .filter(signing_keys::purpose.eq(&row.purpose))
                .filter(signing_keys::retired_at.is_null())
                .filter(signing_keys::revoked_at.is_null()),
        )
        .set(signing_keys::retired_at.eq(row.activates_at()))
        .execute(conn)
        .await?;
        diesel::insert_into(signing_keys::table).values(&row).execute(conn).await?;
        record_change(conn, None, row.created_at.and_utc()).await?;
        super::notify_change(conn, KEYS_CHANGED, None).await?;
        Ok(())
    })
    .await
}

pub(crate) async fn revoke_signing_key(
    conn: &mut Conn,
    kid: String,
    at: DateTime<Utc>,
    tokens_expire_at: DateTime<Utc>,
) -> Result<Option<SigningKeyRow>> {
    write_transaction!(conn, async |conn| {
        super::serialize_key_writes(conn).await?;
        let key_revocation = Revocation::Key { kid: kid.clone(), expires_at: tokens_expire_at };
        let at_db = db_time(at);
        let revoked = diesel::update(
            signing_keys::table.find(&kid).filter(signing_keys::revoked_at.is_null()),
        )
        .set(signing_keys::revoked_at.eq(at_db))
        .execute(conn)
        .await?;
        if revoked > 0 {
            // In the revocation feed too, for the services that verify with a cached JWK set.
            record_revocation(conn, &key_revocation, at).await?;
            record_change(conn, None, at).await?;
            super::notify_change(conn, KEYS_CHANGED, None).await?;
            super::notify_change(conn, REVOCATIONS_CHANGED, None).await?;
        }
        Ok(signing_keys::table
            .find(&kid)
            .select(SigningKeyRow::as_select())
            .get_result(conn)
            .await
            .optional()?)
    })
    .await
}

pub(crate) async fn prune_signing_keys(conn: &mut Conn, cut_off: NaiveDateTime) -> Result<u64> {
    let deleted = diesel::delete(
        signing_keys::table
            .filter(signing_keys::retired_at.lt(cut_off).or(signing_keys::revoked_at.lt(cut_off))),
    )
    .execute(conn)
    .await?;
    Ok(deleted as u64)
}

pub(crate) async fn add_client(conn: &mut Conn, row: ClientRow) -> Result<()> {
    match diesel::insert_into(clients::table).values(&row).execute(conn).await {
        Ok(_) => Ok(()),
        // The id is fresh: the one unique key that can clash is the name's.
        Err(diesel::result::Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            Err(StoreError::NameTaken)
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn client(conn: &mut Conn, id: &str) -> Result<Option<ClientRow>> {
    Ok(clients::table.find(id).select(ClientRow::as_select()).get_result(conn).await.optional()?)
}

pub(crate) async fn clients(conn: &mut Conn) -> Result<Vec<ClientRow>> {
    Ok(clients::table
        .order((clients::created_at, clients::id))
        .select(ClientRow::as_select())
        .load(conn)
        .await?)
}

pub(crate) async fn remove_client(
    conn: &mut Conn,
    id: &str,
    at: DateTime<Utc>,
    tokens_expire_at: DateTime<Utc>,
) -> Result<Option<(ClientRow, Vec<Revocation>)>> {
    write_transaction!(conn, async |conn| {
        let removed: Option<ClientRow> = diesel::delete(clients::table.find(id))
            .returning(ClientRow::as_returning())
            .get_result(conn)
            .await
            .optional()?;
        let Some(row) = removed else { return Ok(None) };
        let revocation =
            Revocation::Session { id: row.session_id().to_owned(), expires_at: tokens_expire_at };
        record_revocation(conn, &revocation, at).await?;
        // The sessions users granted it end with it, and what they allowed it is forgotten.
        let granted: Vec<String> = sessions::table
            .filter(sessions::client_id.assume_not_null().eq(id))
            .filter(sessions::revoked_at.is_null())
            .select(sessions::id)
            .load(conn)
            .await?;
        let ended = revoke_sessions(conn, granted, RevokeReason::ClientRemoved, at).await?;
        diesel::delete(consents::table.filter(consents::client_id.eq(id))).execute(conn).await?;
        super::notify_change(conn, REVOCATIONS_CHANGED, None).await?;
        Ok(Some((row, std::iter::once(revocation).chain(ended).collect())))
    })
    .await
}

pub(crate) async fn record_token_lifetimes(
    conn: &mut Conn,
    access: i64,
    refresh: i64,
    at: NaiveDateTime,
) -> Result<()> {
    write_transaction!(conn, async |conn| {
        diesel::insert_into(token_lifetimes::table)
            .values((
                token_lifetimes::access_seconds.eq(access),
                token_lifetimes::refresh_seconds.eq(refresh),
                token_lifetimes::seen_at.eq(at),
            ))
            .on_conflict((token_lifetimes::access_seconds, token_lifetimes::refresh_seconds))
            .do_update()
            .set(token_lifetimes::seen_at.eq(at))
            .execute(conn)
            .await?;
        // Pairs no token can still be alive from (a few rows: filtered here, not in SQL).
        let rows: Vec<(i64, i64, NaiveDateTime)> = token_lifetimes::table.load(conn).await?;
        for (a, r, seen_at) in rows {
            if seen_at + chrono::TimeDelta::seconds(a.max(r)) < at {
                diesel::delete(token_lifetimes::table.find((a, r))).execute(conn).await?;
            }
        }
        Ok(())
    })
    .await
}

pub(crate) async fn token_lifetimes(conn: &mut Conn) -> Result<Vec<(i64, i64, NaiveDateTime)>> {
    Ok(token_lifetimes::table.load(conn).await?)
}

pub(crate) async fn add_authorization_code(conn: &mut Conn, row: CodeRow) -> Result<()> {
    diesel::insert_into(authorization_codes::table).values(&row).execute(conn).await?;
    Ok(())
}

/// Redeems a code. Each step is an update that takes the row's lock before anything is read,
/// so that two exchanges at once (PostgreSQL runs them side by side, at read committed) see
/// each other: one marks the code used, the other then finds it used.
pub(crate) async fn redeem_authorization_code(
    conn: &mut Conn,
    digest: &[u8],
    now: NaiveDateTime,
) -> Result<Redemption> {
    write_transaction!(conn, async |conn| {
        let unused = authorization_codes::table
            .find(digest)
            .filter(authorization_codes::used_at.is_null())
            .filter(authorization_codes::expires_at.gt(now));
        let fresh = diesel::update(unused)
            .set(authorization_codes::used_at.eq(now))
            .returning(CodeRow::as_returning())
            .get_result(conn)
            .await
            .optional()?;
        if let Some(row) = fresh {
            return Ok(Redemption::Fresh(Box::new(row.into_code())));
        }
        // Used before (or expired, or never issued): the first replay is recorded under the
        // row's lock, and the session the first exchange started is read after it.
        let first_replay = authorization_codes::table
            .find(digest)
            .filter(authorization_codes::used_at.is_not_null())
            .filter(authorization_codes::replayed_at.is_null());
        let marked = diesel::update(first_replay)
            .set(authorization_codes::replayed_at.eq(now))
            .execute(conn)
            .await?;
        let found: Option<(Option<NaiveDateTime>, Option<String>)> = authorization_codes::table
            .find(digest)
            .select((authorization_codes::used_at, authorization_codes::session_id))
            .get_result(conn)
            .await
            .optional()?;
        let session_id = match found {
            Some((Some(_), session_id)) => session_id,
            _ if marked > 0 => None,
            _ => return Ok(Redemption::Unknown),
        };
        Ok(Redemption::Replayed { session_id })
    })
    .await
}

pub(crate) async fn fresh_authorization_code(
    conn: &mut Conn,
    digest: &[u8],
    now: NaiveDateTime,
) -> Result<Option<(CodeRow, Option<Subject>)>> {
    let row = authorization_codes::table
        .find(digest)
        .filter(authorization_codes::used_at.is_null())
        .filter(authorization_codes::expires_at.gt(now))
        .select(CodeRow::as_select())
        .get_result(conn)
        .await
        .optional()?;
    let Some(row) = row else { return Ok(None) };
    let subject = active_subject(conn, &row.user_id).await?;
    Ok(Some((row, subject)))
}

pub(crate) async fn create_sign_in_session(conn: &mut Conn, session: SessionRow) -> Result<()> {
    diesel::insert_into(sessions::table).values(&session).execute(conn).await?;
    Ok(())
}

/// Revokes the live sessions among `ids`, recording a revocation for each. Runs inside the
/// caller's transaction.
async fn revoke_sessions(
    conn: &mut Conn,
    ids: Vec<String>,
    reason: RevokeReason,
    at: DateTime<Utc>,
) -> Result<Vec<Revocation>> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let revoked: Vec<(String, NaiveDateTime)> = diesel::update(
        sessions::table.filter(sessions::id.eq_any(ids)).filter(sessions::revoked_at.is_null()),
    )
    .set((sessions::revoked_at.eq(db_time(at)), sessions::revoke_reason.eq(reason.as_str())))
    .returning((sessions::id, sessions::expires_at))
    .load(conn)
    .await?;
    let revocations: Vec<Revocation> = revoked
        .into_iter()
        .map(|(id, expires_at)| Revocation::Session { id, expires_at: expires_at.and_utc() })
        .collect();
    for revocation in &revocations {
        record_revocation(conn, revocation, at).await?;
    }
    if !revocations.is_empty() {
        super::notify_change(conn, REVOCATIONS_CHANGED, None).await?;
    }
    Ok(revocations)
}

pub(crate) async fn end_sign_in_session(
    conn: &mut Conn,
    id: &str,
    reason: RevokeReason,
    at: DateTime<Utc>,
) -> Result<Vec<Revocation>> {
    write_transaction!(conn, async |conn| {
        let ids: Vec<String> = sessions::table
            .filter(sessions::id.eq(id).or(sessions::sign_in_session.assume_not_null().eq(id)))
            .filter(sessions::revoked_at.is_null())
            .select(sessions::id)
            .load(conn)
            .await?;
        revoke_sessions(conn, ids, reason, at).await
    })
    .await
}

pub(crate) async fn consent(
    conn: &mut Conn,
    user_id: &str,
    client_id: &str,
) -> Result<Option<String>> {
    Ok(consents::table
        .find((user_id, client_id))
        .select(consents::scope)
        .get_result(conn)
        .await
        .optional()?)
}

pub(crate) async fn record_consent(
    conn: &mut Conn,
    user_id: &str,
    client_id: &str,
    scope: &str,
    at: NaiveDateTime,
) -> Result<()> {
    diesel::insert_into(consents::table)
        .values((
            consents::user_id.eq(user_id),
            consents::client_id.eq(client_id),
            consents::scope.eq(scope),
            consents::granted_at.eq(at),
        ))
        .on_conflict((consents::user_id, consents::client_id))
        .do_update()
        .set((consents::scope.eq(scope), consents::granted_at.eq(at)))
        .execute(conn)
        .await?;
    Ok(())
}
