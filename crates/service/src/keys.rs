//! The deployment's signing keys, whoever asks: the server's start and reload, the admin API
//! and the `keys` commands all go through [`Keys`]. The rules of the lifecycle (publish ahead,
//! one key signs, refuse to revoke it) are `jwt_core::KeyRing`'s; this holds where the keys
//! live: sealed in the database (under the key-encryption key), or in `DATA_DIR/keys/` (one
//! process on SQLite, zero configuration).

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use jwt_auth_store::{EventKind, ResealedKey, Store, StoredSigningKey};
use jwt_core::{
    Algorithm, KeyEncryptionKey, KeyRecord, KeyRing, KeySet, KeyState, Rotation, SigningKey,
    SigningKeyStore, StoredKey,
};

use crate::audit;
use crate::error::ConfigError;
use crate::key_files::KeyDir;

/// How often every instance reloads the stored keys.
pub const RELOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Why the keys could not be used or changed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A setting does not fit the stored keys (or cannot be read).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store failed, or a key could not be used.
    #[error("{}", core_message(.0))]
    Core(jwt_core::Error),
    /// A stored key was sealed under another key-encryption key.
    #[error(
        "KEY_ENCRYPTION_KEY: stored key {kid} does not decrypt with it; every instance needs the \
         key-encryption key the keys were stored with"
    )]
    WrongKek {
        /// The key that did not open.
        kid: String,
    },
    /// No stored key may sign, and none is pinned.
    #[error("no stored key may sign; run `jwt-auth keys rotate --now`")]
    NoSigningKey,
    /// No stored key has this kid.
    #[error("no stored key has the kid `{0}`; nothing changed")]
    UnknownKid(String),
    /// The key to revoke signs now.
    #[error(
        "key `{0}` signs now; rotate first (`jwt-auth keys rotate --now` for a compromised key), \
         then revoke it; nothing changed"
    )]
    RevokingActiveKey(String),
    /// The database holds no key to re-seal.
    #[error("no signing keys are stored in the database; nothing to re-seal")]
    NothingToReseal,
    /// The keys live in `DATA_DIR/keys/`, where a key is revoked by deleting its file.
    #[error("the keys are not in the database: revoke a key file by deleting it")]
    NotInDatabase,
}

/// A store's failure says what failed, not that it was wrapped.
fn core_message(e: &jwt_core::Error) -> String {
    match e {
        jwt_core::Error::Unavailable(source) | jwt_core::Error::Storage(source) => {
            source.to_string()
        }
        e => e.to_string(),
    }
}

impl KeyError {
    /// Whether the database was out of reach, which time may mend.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, KeyError::Core(jwt_core::Error::Unavailable(_)))
    }
}

/// `wanted` (`JWT_ALGORITHM`, or a pinned key's) refused: the stored keys sign with `stored`.
/// One deployment signs with one algorithm, so that every verifier can check every token.
pub fn algorithm_mismatch(wanted: Algorithm, stored: Algorithm) -> ConfigError {
    ConfigError::new(
        "JWT_ALGORITHM",
        format!(
            "is {wanted}, but the stored signing key is {stored}, the deployment's algorithm; \
             leave JWT_ALGORITHM unset (or set it to {stored}), or change the algorithm with \
             `jwt-auth keys rotate --algorithm {wanted}`"
        ),
    )
}

impl From<jwt_core::Error> for KeyError {
    fn from(e: jwt_core::Error) -> Self {
        match e {
            jwt_core::Error::SealedKey { kid } => KeyError::WrongKek { kid },
            jwt_core::Error::NoSigningKey => KeyError::NoSigningKey,
            jwt_core::Error::UnknownKid(kid) => KeyError::UnknownKid(kid),
            jwt_core::Error::RevokingActiveKey(kid) => KeyError::RevokingActiveKey(kid),
            e => KeyError::Core(e),
        }
    }
}

impl From<jwt_core::AlgorithmChange> for KeyError {
    fn from(e: jwt_core::AlgorithmChange) -> Self {
        KeyError::Config(algorithm_mismatch(e.wanted, e.signing))
    }
}

impl From<jwt_auth_store::StoreError> for KeyError {
    fn from(e: jwt_auth_store::StoreError) -> Self {
        KeyError::Core(e.into())
    }
}

/// Where the keys live: the database or the key directory.
#[derive(Debug)]
pub enum KeyStorage {
    /// `DATA_DIR/keys/`: SQLite without a key-encryption key.
    Directory(KeyDir),
    /// The `signing_keys` table.
    Database(Arc<Store>),
}

impl SigningKeyStore for KeyStorage {
    async fn signing_keys(&self) -> jwt_core::Result<Vec<StoredKey>> {
        match self {
            KeyStorage::Directory(dir) => dir.signing_keys().await,
            KeyStorage::Database(store) => SigningKeyStore::signing_keys(&**store).await,
        }
    }

    async fn add_first_keys(&self, first: &[StoredKey]) -> jwt_core::Result<bool> {
        match self {
            KeyStorage::Directory(dir) => dir.add_first_keys(first).await,
            KeyStorage::Database(store) => store.add_first_keys(first).await,
        }
    }

    async fn add_key(&self, next: &StoredKey) -> jwt_core::Result<()> {
        match self {
            KeyStorage::Directory(dir) => dir.add_key(next).await,
            KeyStorage::Database(store) => store.add_key(next).await,
        }
    }

    async fn revoke_key(
        &self,
        kid: &str,
        at: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> jwt_core::Result<Option<KeyRecord>> {
        match self {
            KeyStorage::Directory(dir) => dir.revoke_key(kid, at, until).await,
            KeyStorage::Database(store) => store.revoke_key(kid, at, until).await,
        }
    }

    fn publishes_ahead(&self) -> bool {
        matches!(self, KeyStorage::Database(_))
    }
}

/// Where the keys an instance signs with come from, as an operator reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySourceKind {
    /// Sealed in the database: rotated and revoked there.
    Database,
    /// `DATA_DIR/keys/`: rotated there, revoked by deleting the file.
    Directory,
    /// `JWT_SECRET` or `JWT_PRIVATE_KEY_FILE`: neither.
    Pinned,
}

impl KeySourceKind {
    /// `database`, `directory` or `pinned`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeySourceKind::Database => "database",
            KeySourceKind::Directory => "directory",
            KeySourceKind::Pinned => "pinned",
        }
    }
}

/// One key as listed.
#[derive(Debug, Clone)]
pub struct ListedKey {
    /// Its lifecycle; `activates_at` is its creation for a key without one (a file, a pinned
    /// key).
    pub record: KeyRecord,
    /// What it does now.
    pub state: KeyState,
    /// Whether the record has an activation time of its own (keys in the database).
    pub scheduled: bool,
    /// Its file, for a key in `DATA_DIR/keys/`.
    pub path: Option<PathBuf>,
}

/// The deployment's signing keys: a [`KeyRing`] over where they live, with the settings read
/// once (the key-encryption key, a pinned key, the first algorithm, the retention).
#[derive(Debug)]
pub struct Keys {
    ring: KeyRing<KeyStorage>,
    /// The database, which may hold sealed keys even when the keys are read from files.
    database: Arc<Store>,
    /// The key files, imported into the database when it holds no key yet.
    files: KeyDir,
    /// The algorithm asked for (`JWT_ALGORITHM`, or the pinned key's), checked against the
    /// stored keys'.
    wanted: Option<Algorithm>,
    /// Woken by this instance's own key changes, so that it reloads its keys at once.
    reload: tokio::sync::Notify,
}

impl Keys {
    /// Keys in the database, sealed under `kek`; the key files of `data_dir` are imported when
    /// the database holds none.
    pub fn in_database(
        store: Arc<Store>,
        kek: KeyEncryptionKey,
        data_dir: &std::path::Path,
    ) -> Self {
        let ring =
            KeyRing::new(KeyStorage::Database(store.clone()), TimeDelta::zero()).sealed_under(kek);
        let files = KeyDir::of(data_dir);
        Self { ring, database: store, files, wanted: None, reload: tokio::sync::Notify::new() }
    }

    /// Keys in `DATA_DIR/keys/`; `database` is the store, checked for sealed keys that the
    /// files would silently replace.
    pub fn in_directory(database: Arc<Store>, data_dir: &std::path::Path) -> Self {
        let files = KeyDir::of(data_dir);
        let ring = KeyRing::new(KeyStorage::Directory(files.clone()), TimeDelta::zero());
        Self { ring, database, files, wanted: None, reload: tokio::sync::Notify::new() }
    }

    /// `key` signs instead of the stored keys.
    pub fn pinned(mut self, key: Option<SigningKey>) -> Self {
        self.ring = self.ring.pinned(key);
        self
    }

    /// The algorithm asked for: new keys have it while none is stored, and the stored keys
    /// must sign with it (the pinned key's, when one is, wins).
    pub fn wanting(mut self, algorithm: Option<Algorithm>) -> Self {
        self.wanted = self.ring.pinned_key().map(SigningKey::algorithm).or(algorithm);
        self.ring = self.ring.first_algorithm(self.wanted.unwrap_or(Algorithm::HS256));
        self
    }

    /// Replaced keys verify for `retention` (see [`KeySet::retention`]), and a revoked key's
    /// revocation is told to verifiers as long.
    pub fn retention(mut self, retention: TimeDelta) -> Self {
        self.ring = self.ring.with_retention(retention);
        self
    }

    /// Asks the instance's key reloader to reload now rather than at its next tick.
    pub fn reload_soon(&self) {
        self.reload.notify_one();
    }

    /// Resolves when [`Keys::reload_soon`] was called.
    pub async fn reload_wanted(&self) {
        self.reload.notified().await
    }

    /// Whether a pinned key signs.
    pub fn is_pinned(&self) -> bool {
        self.ring.pinned_key().is_some()
    }

    /// Whether the keys live in the database.
    pub fn in_the_database(&self) -> bool {
        matches!(self.ring.store(), KeyStorage::Database(_))
    }

    /// The key directory.
    pub fn key_dir(&self) -> &KeyDir {
        &self.files
    }

    /// Checks the settings against the stored keys, changing nothing: keys in files while the
    /// database holds sealed keys are refused (the files would void every token the stored
    /// keys signed), and so is an algorithm other than the deployment's (that of the database's
    /// keys, or of the key files while the database holds none).
    pub async fn check(&self, now: DateTime<Utc>) -> Result<(), KeyError> {
        let stored = self.database.signing_keys().await?;
        if !self.in_the_database() {
            refuse_sealed_without_kek(&stored)?;
        }
        let Some(wanted) = self.wanted else { return Ok(()) };
        // The database's keys as already read; the key files while it holds none.
        let records: Vec<KeyRecord> = if self.in_the_database() && !stored.is_empty() {
            let keys = stored.into_iter().map(StoredKey::try_from);
            keys.map(|key| key.map(|k| k.record)).collect::<Result<_, _>>()?
        } else {
            SigningKeyStore::signing_keys(&self.files)
                .await?
                .into_iter()
                .map(|k| k.record)
                .collect()
        };
        Ok(jwt_core::check_algorithm(&records, wanted, now)?)
    }

    /// The keys to start serving with, once the settings are checked against the stored
    /// keys. A first start stores its first keys: in the database, the key files (or a new
    /// key, unless one is pinned); in the directory, a new key unless one is pinned.
    pub async fn start(&self, now: DateTime<Utc>) -> Result<KeySet, KeyError> {
        self.check(now).await?;
        match self.ring.store() {
            KeyStorage::Directory(dir) => {
                if !self.is_pinned() && dir.read()?.is_empty() {
                    let rotation = self.ring.rotate(None, true, now).await?;
                    let path = dir.path_of(&rotation.record);
                    tracing::info!(path = %path.display(), algorithm = ?rotation.record.algorithm, "generated a new signing key and stored it (mode 0600)");
                }
            }
            KeyStorage::Database(_) => {
                let count = self.store_first_keys(!self.is_pinned(), now).await?;
                if count > 0 {
                    tracing::info!(
                        keys = count,
                        "stored the first signing keys in the database (the key files of DATA_DIR/keys/, or a new key of JWT_ALGORITHM if there were none), encrypted under the key-encryption key"
                    );
                }
                // Another instance may have stored other first keys meanwhile.
                self.check(now).await?;
            }
        }
        self.load(now).await
    }

    /// When the database holds no key: stores the key files (each retired when the next one
    /// was made, the newest signing) or, if there are none and `generate`, a new key of the
    /// first algorithm; returns how many keys were stored.
    async fn store_first_keys(
        &self,
        generate: bool,
        now: DateTime<Utc>,
    ) -> Result<usize, KeyError> {
        if !self.database.signing_keys().await?.is_empty() {
            return Ok(0);
        }
        let mut first: Vec<_> =
            self.files.read()?.into_iter().map(|file| (file.key, file.created)).collect();
        if first.is_empty() && generate {
            let algorithm = self.wanted.unwrap_or(Algorithm::HS256);
            let key = SigningKey::generate(algorithm)
                .map_err(|e| ConfigError::new("JWT_ALGORITHM", e.to_string()))?;
            first.push((key, now));
        }
        Ok(self.ring.add_first_keys(&first).await?)
    }

    /// The key set the stored keys make at `now`, for the start and every reload.
    pub async fn load(&self, now: DateTime<Utc>) -> Result<KeySet, KeyError> {
        Ok(self.ring.key_set(now).await?)
    }

    /// Stores a new key of `algorithm` (the deployment's when `None`), published ahead unless
    /// `at_once` (see [`KeyRing::rotate`]). In the database, the key files not yet imported
    /// become the history the new key follows.
    pub async fn rotate(
        &self,
        algorithm: Option<Algorithm>,
        at_once: bool,
        now: DateTime<Utc>,
    ) -> Result<Rotation, KeyError> {
        if self.in_the_database() {
            self.store_first_keys(false, now).await?;
        }
        Ok(self.ring.rotate(algorithm, at_once, now).await?)
    }

    /// Revokes stored key `kid` (see [`KeyRing::revoke`]).
    pub async fn revoke(&self, kid: &str, now: DateTime<Utc>) -> Result<KeyRecord, KeyError> {
        Ok(self.ring.revoke(kid, now).await?)
    }

    /// [`Keys::rotate`] by `command` (its words: `jwt-auth keys rotate`), recorded in the
    /// trail when the keys are in the database.
    pub async fn rotate_by(
        &self,
        command: &str,
        algorithm: Option<Algorithm>,
        at_once: bool,
        now: DateTime<Utc>,
    ) -> Result<Rotation, KeyError> {
        let rotation = self.rotate(algorithm, at_once, now).await?;
        if self.in_the_database() {
            let detail = format!("key {} rotated by {command}", rotation.record.kid);
            audit::record(&self.database, EventKind::KeyRotated, None, None, detail, now).await?;
        }
        Ok(rotation)
    }

    /// Revokes stored key `kid` by `command` (its words: `jwt-auth keys revoke`), with no
    /// server's settings at hand: keys in the database only ([`KeyError::NotInDatabase`]), the
    /// revocation told as long as the servers' tokens may live (see [`longest_lifetimes`],
    /// with the lifetimes `given`), and recorded in the trail.
    pub async fn revoke_by(
        self,
        command: &str,
        kid: &str,
        given: (Option<TimeDelta>, Option<TimeDelta>),
        now: DateTime<Utc>,
    ) -> Result<KeyRecord, KeyError> {
        if !self.in_the_database() {
            return Err(KeyError::NotInDatabase);
        }
        let lifetimes = longest_lifetimes(&self.database, given, now).await?;
        let keys = self.retention(KeySet::retention(lifetimes.access, lifetimes.refresh));
        let revoked = keys.revoke(kid, now).await?;
        let detail = format!("key {kid} revoked by {command}");
        audit::record(&keys.database, EventKind::KeyRevoked, None, None, detail, now).await?;
        Ok(revoked)
    }

    /// Every stored key (the database's, or the directory's), with what it does at `now`.
    pub async fn stored(&self, now: DateTime<Utc>) -> Result<Vec<ListedKey>, KeyError> {
        let keys = self.ring.keys().await?;
        let records: Vec<KeyRecord> = keys.into_iter().map(|k| k.record).collect();
        let states = jwt_core::states(&records, now);
        let scheduled = self.in_the_database();
        Ok(records
            .into_iter()
            .zip(states)
            .map(|(record, state)| ListedKey {
                path: (!scheduled).then(|| self.files.path_of(&record)),
                record,
                state,
                scheduled,
            })
            .collect())
    }

    /// The keys as this instance works with them, oldest first, and where they come from: the
    /// stored keys in the database; otherwise those of `held` (the key set it signs and
    /// verifies with), each active or retired, created when its file was.
    pub async fn view(
        &self,
        held: &KeySet,
        now: DateTime<Utc>,
    ) -> Result<(KeySourceKind, Vec<ListedKey>), KeyError> {
        if self.in_the_database() && !self.is_pinned() {
            return Ok((KeySourceKind::Database, self.stored(now).await?));
        }
        let (source, files) = match self.is_pinned() {
            true => (KeySourceKind::Pinned, Vec::new()),
            false => (KeySourceKind::Directory, self.files.read()?),
        };
        let active = held.active().map(SigningKey::kid);
        let mut keys: Vec<ListedKey> = held
            .verifying_keys()
            .iter()
            .map(|key| {
                let created = files.iter().find(|f| f.key.kid() == key.kid()).map(|f| f.created);
                let created_at = created.unwrap_or(now);
                ListedKey {
                    record: KeyRecord {
                        kid: key.kid().to_owned(),
                        algorithm: key.algorithm(),
                        created_at,
                        activates_at: created_at,
                        retired_at: None,
                        revoked_at: None,
                    },
                    state: if active == Some(key.kid()) {
                        KeyState::Active
                    } else {
                        KeyState::Retired
                    },
                    scheduled: false,
                    path: None,
                }
            })
            .collect();
        keys.sort_by_key(|k| k.record.created_at);
        Ok((source, keys))
    }
}

/// Refuses `stored`, the keys a database holds, when no key-encryption key is set: the key
/// files of `DATA_DIR/keys/` would sign instead, voiding every token the stored keys signed.
pub fn refuse_sealed_without_kek(stored: &[StoredSigningKey]) -> Result<(), ConfigError> {
    if stored.is_empty() {
        return Ok(());
    }
    Err(ConfigError::new(
        "KEY_ENCRYPTION_KEY",
        format!(
            "is not set, but the database holds {} signing keys sealed under one; set \
             KEY_ENCRYPTION_KEY_FILE (or KEY_ENCRYPTION_KEY) to the key they were stored with \
             (the key files of DATA_DIR/keys/ are not used once keys are in the database)",
            stored.len()
        ),
    ))
}

/// Re-seals every key the database holds under `new`, each opened under `current` (or its
/// previous key-encryption key), in one transaction; returns how many. Nothing changes if a
/// key opens under neither (the error names it), or if the keys changed meanwhile.
pub async fn reseal(
    store: &Store,
    current: &KeyEncryptionKey,
    new: &KeyEncryptionKey,
) -> Result<usize, KeyError> {
    let stored = store.all_sealed_keys().await?;
    if stored.is_empty() {
        return Err(KeyError::NothingToReseal);
    }
    let mut resealed = Vec::with_capacity(stored.len());
    for row in &stored {
        let algorithm: Algorithm = row.algorithm.parse()?;
        let opened = current.open(algorithm, &row.kid, &row.sealed_private_key)?;
        resealed.push(ResealedKey {
            kid: row.kid.clone(),
            sealed_before: row.sealed_private_key.clone(),
            sealed_now: new.seal(&opened)?,
        });
    }
    store.reseal_signing_keys(&resealed).await?;
    Ok(resealed.len())
}

/// The longest token lifetimes that may still be alive: those the servers recorded in the
/// database and those `given`; the servers' defaults (30m, 7d) when there are none. A key's
/// revocation must outlive every token it signed.
pub async fn longest_lifetimes(
    store: &Store,
    given: (Option<TimeDelta>, Option<TimeDelta>),
    now: DateTime<Utc>,
) -> Result<jwt_auth_store::TokenLifetimes, jwt_auth_store::StoreError> {
    let recorded = store.token_lifetimes(now).await?;
    let longest = |pick: fn(&jwt_auth_store::TokenLifetimes) -> TimeDelta,
                   given: Option<TimeDelta>,
                   default: TimeDelta| {
        recorded.iter().map(pick).chain(given).max().unwrap_or(default)
    };
    Ok(jwt_auth_store::TokenLifetimes {
        access: longest(|l| l.access, given.0, TimeDelta::minutes(30)),
        refresh: longest(|l| l.refresh, given.1, TimeDelta::days(7)),
    })
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // fixtures at the system's time
mod tests {
    use super::*;

    async fn empty_database(dir: &std::path::Path) -> Arc<Store> {
        let url = format!("sqlite://{}", dir.join("keys.db").display());
        let store = Store::connect(&url).await.expect("a SQLite store");
        store.migrate().await.expect("migrated");
        Arc::new(store)
    }

    #[tokio::test]
    async fn a_first_rotation_into_an_empty_database_takes_the_algorithm_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let store = empty_database(dir.path()).await;
        let kek = || KeyEncryptionKey::new(&[3; 32]).unwrap();
        // Nothing asked for: HS256, the default.
        let unset = Keys::in_database(store.clone(), kek(), dir.path()).wanting(None);
        let first = unset.rotate(None, false, Utc::now()).await.expect("rotates");
        assert_eq!(first.record.algorithm, Algorithm::HS256);
        // On another empty database, JWT_ALGORITHM's algorithm.
        let other = tempfile::tempdir().unwrap();
        let store = empty_database(other.path()).await;
        let asked = Keys::in_database(store, kek(), other.path()).wanting(Some(Algorithm::EdDSA));
        let first = asked.rotate(None, false, Utc::now()).await.expect("rotates");
        assert_eq!(first.record.algorithm, Algorithm::EdDSA);
        assert!(!first.replaces, "nothing signed before: it signs at once");
    }
}
