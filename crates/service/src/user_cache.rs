//! The user records `GET /api/me` answers from: a bounded in-memory copy, so that the
//! authenticated path needs no database, and keeps working for cached users while it is down.
//! Writes made here update it at once; writes made by other instances reach it through the
//! change feed (see `background::sync_revocations`).

use std::time::Duration;

use std::sync::Arc;

use jwt_auth_store::{Store, StoreError, User};

use crate::error::ServiceError;

/// At most this many users are kept (each a few hundred bytes: some tens of MB at most).
pub const USER_CACHE_CAPACITY: u64 = 100_000;
/// A user not asked for in this long is dropped.
pub const USER_CACHE_IDLE: Duration = Duration::from_secs(30 * 60);

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
        Self { users }
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
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // fixtures at the system's time
mod tests {
    use super::*;
    use chrono::Utc;
    use jwt_auth_store::{NewUser, PasswordHash, UserUpdate};

    #[tokio::test]
    async fn a_user_is_read_once_then_served_until_forgotten() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("cache.db").display());
        let store = Store::connect(&url).await.expect("the store opens");
        store.migrate().await.expect("migrated");
        let new = NewUser {
            email: "alice@example.com".into(),
            password_hash: PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
            roles: vec!["user".into()],
        };
        let alice = store.create_user(&new, Utc::now()).await.expect("created");
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
}
