//! The user records `GET /api/me` answers from: a bounded in-memory copy, so that the
//! authenticated path needs no database, and keeps working for cached users while it is down.
//! Writes made here update it at once; writes made by other instances reach it through the
//! change feed, and [`UserCache::forget_changed`] catches up with whatever that missed.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use jwt_auth_store::{Store, StoreError, User};

use crate::error::ServiceError;

/// At most this many users are kept (each a few hundred bytes: some tens of MB at most).
pub const USER_CACHE_CAPACITY: u64 = 100_000;
/// A user not asked for in this long is dropped.
pub const USER_CACHE_IDLE: Duration = Duration::from_secs(30 * 60);

/// How far each read of the changed users reaches back before the start of the previous one:
/// far enough for a change whose transaction committed after that read, and for clocks that
/// differ a little between instances. Forgetting a user twice costs one read.
pub const CHANGE_OVERLAP: TimeDelta = TimeDelta::seconds(10);

/// Why a user could not be loaded.
#[derive(Debug)]
enum Miss {
    NoSuchUser,
    Store(Arc<StoreError>),
}

/// User records by id, loaded from the store on a miss; concurrent misses for one user share
/// one read.
pub struct UserCache {
    users: moka::future::Cache<String, User>,
    /// Where the next [`UserCache::forget_changed`] reads from.
    changed_since: Mutex<Option<DateTime<Utc>>>,
}

impl Default for UserCache {
    fn default() -> Self {
        Self::new(USER_CACHE_CAPACITY, USER_CACHE_IDLE)
    }
}

impl UserCache {
    /// A cache of at most `capacity` users, each dropped when not asked for in `idle`.
    pub fn new(capacity: u64, idle: Duration) -> Self {
        let users =
            moka::future::Cache::builder().max_capacity(capacity).time_to_idle(idle).build();
        Self { users, changed_since: Mutex::default() }
    }

    /// The user with this id, from memory or else from `store`; `None` if there is none (not
    /// remembered: a user created later is found).
    pub async fn get(&self, store: &Store, id: &str) -> Result<Option<User>, ServiceError> {
        let load = async {
            match store.user_by_id(id).await {
                Ok(Some(user)) => Ok(user),
                Ok(None) => Err(Miss::NoSuchUser),
                Err(e) => Err(Miss::Store(Arc::new(e))),
            }
        };
        match self.users.try_get_with_by_ref(id, load).await {
            Ok(user) => Ok(Some(user)),
            // Shared by every caller that waited on the same load.
            Err(miss) => match &*miss {
                Miss::NoSuchUser => Ok(None),
                Miss::Store(e) => Err(ServiceError::SharedStore(Arc::clone(e))),
            },
        }
    }

    /// Remembers `user` as it is now (after a write made here).
    pub async fn put(&self, user: User) {
        self.users.insert(user.id.clone(), user).await;
    }

    /// Forgets one user: their record changed elsewhere.
    pub async fn forget(&self, id: &str) {
        self.users.invalidate(id).await;
    }

    /// Forgets every user changed since the previous call began, less [`CHANGE_OVERLAP`]
    /// (since `now` less the overlap, the first time: the cache starts empty). Covers a change
    /// whose notification was lost, and a load that read a record just before it changed.
    /// Returns how many users were forgotten; on an error the next call reads from the same
    /// point.
    pub async fn forget_changed(
        &self,
        store: &Store,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let since = self.since().unwrap_or(now - CHANGE_OVERLAP);
        let changed = store.users_changed_since(since).await?;
        for id in &changed {
            self.forget(id).await;
        }
        let next = now - CHANGE_OVERLAP;
        let mut cursor = self.changed_since.lock().unwrap_or_else(PoisonError::into_inner);
        *cursor = Some(cursor.map_or(next, |current| current.max(next)));
        Ok(changed.len())
    }

    fn since(&self) -> Option<DateTime<Utc>> {
        *self.changed_since.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // fixtures at the system's time
mod tests {
    use super::*;
    use chrono::Utc;
    use jwt_auth_store::{NewUser, PasswordHash, UserUpdate};

    /// A migrated SQLite store in `dir`.
    async fn store_in(dir: &tempfile::TempDir) -> Store {
        let url = format!("sqlite://{}", dir.path().join("cache.db").display());
        let store = Store::connect(&url).await.expect("the store opens");
        store.migrate().await.expect("migrated");
        store
    }

    /// A new user with `email`.
    fn new_user(email: &str) -> NewUser {
        NewUser {
            email: email.into(),
            password_hash: PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
            roles: vec!["user".into()],
        }
    }

    #[tokio::test]
    async fn a_user_is_read_once_then_served_until_forgotten() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = store_in(&dir).await;
        let alice = store.create_user(&new_user("alice@example.com"), Utc::now()).await;
        let alice = alice.expect("created");
        let cache = UserCache::new(10, Duration::from_secs(60));

        assert_eq!(cache.get(&store, "nobody").await.expect("read"), None);
        assert_eq!(cache.get(&store, &alice.id).await.expect("read").as_ref(), Some(&alice));
        // Changed behind the cache's back: the copy is served until forgotten.
        let update = UserUpdate { roles: Some(vec!["admin".into()]), disabled: None };
        store.update_user(&alice.id, &update, Utc::now()).await.expect("updated");
        let cached = cache.get(&store, &alice.id).await.expect("read").expect("alice");
        assert_eq!(cached.roles, ["user"]);
        cache.forget(&alice.id).await;
        let fresh = cache.get(&store, &alice.id).await.expect("read").expect("alice");
        assert_eq!(fresh.roles, ["admin"]);
        // A write made here replaces the copy at once.
        let mut renamed = fresh.clone();
        renamed.roles = vec!["auditor".into()];
        cache.put(renamed.clone()).await;
        assert_eq!(cache.get(&store, &alice.id).await.expect("read"), Some(renamed));
    }

    #[tokio::test]
    async fn users_changed_elsewhere_are_forgotten_by_the_next_catch_up() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = store_in(&dir).await;
        let t0 = Utc::now();
        let alice = store.create_user(&new_user("alice@example.com"), t0).await.expect("created");
        let bob = store.create_user(&new_user("bob@example.com"), t0).await.expect("created");
        let cache = UserCache::new(10, Duration::from_secs(60));
        // Long after both were made: nothing to forget.
        let later = t0 + TimeDelta::minutes(5);
        assert_eq!(cache.forget_changed(&store, later).await.expect("read"), 0);
        cache.get(&store, &alice.id).await.expect("read");
        cache.get(&store, &bob.id).await.expect("read");

        // Alice changes on another instance; bob, the control, does not.
        let update = UserUpdate { roles: Some(vec!["admin".into()]), disabled: None };
        let changed_at = later + TimeDelta::seconds(1);
        store.update_user(&alice.id, &update, changed_at).await.expect("updated");
        assert_eq!(
            cache.get(&store, &alice.id).await.expect("read").expect("alice").roles,
            ["user"]
        );
        assert_eq!(cache.forget_changed(&store, changed_at).await.expect("read"), 1);
        assert_eq!(
            cache.get(&store, &alice.id).await.expect("read").expect("alice").roles,
            ["admin"]
        );
        // Read again within the overlap, then past it.
        let next = changed_at + CHANGE_OVERLAP + TimeDelta::seconds(2);
        assert_eq!(cache.forget_changed(&store, next).await.expect("read"), 1);
        assert_eq!(cache.forget_changed(&store, next).await.expect("read"), 0);
    }
}
