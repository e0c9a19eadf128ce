//! Signing keys kept in the database, shared by every instance on it. The private halves are
//! sealed under the key-encryption key (`KEY_ENCRYPTION_KEY` or `KEY_ENCRYPTION_KEY_FILE`); a
//! rotation publishes the new key a JWK-set cache lifetime before it signs; a revoked key is
//! dropped by every instance at its next reload (every second).

use std::fmt;
use std::path::Path;

use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use jwt_auth_store::{Store, StoredSigningKey};
use jwt_core::{Algorithm, KeyEncryptionKey, KeySet, SigningKey, VerifyingKey};

use crate::config::{ConfigError, KeyArgs};

/// How long clients may cache `/.well-known/jwks.json` (its `Cache-Control: max-age`).
pub const JWKS_MAX_AGE: TimeDelta = TimeDelta::seconds(60);
/// How often every instance reloads the stored keys.
pub const RELOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// How far ahead of signing a rotated key is published: every instance has reloaded it and
/// every cached JWK set has expired by then.
/// (`JWKS_MAX_AGE` plus one reload.)
pub const PUBLISH_AHEAD: TimeDelta = TimeDelta::seconds(61);

fn problem(setting: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError { setting, problem: problem.into() }
}

/// Where the keys come from, decided once from the settings.
pub enum KeySource {
    /// `DATA_DIR/keys/`: SQLite without a key-encryption key (one process, zero configuration).
    Directory,
    /// The `signing_keys` table, private halves sealed under this key.
    Database(KeyEncryptionKey),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeySource::Directory => "Directory",
            KeySource::Database(_) => "Database",
        })
    }
}

/// The key-encryption key of `KEY_ENCRYPTION_KEY` or `KEY_ENCRYPTION_KEY_FILE`, if one is set:
/// 32 bytes, base64 (standard alphabet, padded or not); with the one of
/// `KEY_ENCRYPTION_KEY_PREVIOUS(_FILE)` as its previous, if that is set too.
pub fn key_encryption_key(args: &KeyArgs) -> Result<Option<KeyEncryptionKey>, ConfigError> {
    let current = read_kek(
        ("KEY_ENCRYPTION_KEY", &args.key_encryption_key),
        ("KEY_ENCRYPTION_KEY_FILE", &args.key_encryption_key_file),
    )?;
    let previous = read_kek(
        ("KEY_ENCRYPTION_KEY_PREVIOUS", &args.key_encryption_key_previous),
        ("KEY_ENCRYPTION_KEY_PREVIOUS_FILE", &args.key_encryption_key_previous_file),
    )?;
    match (current, previous) {
        (Some(current), Some(previous)) => Ok(Some(current.with_previous(previous))),
        (None, Some(_)) => Err(problem(
            "KEY_ENCRYPTION_KEY_PREVIOUS",
            "is only used with KEY_ENCRYPTION_KEY (or KEY_ENCRYPTION_KEY_FILE), the key new keys are \
             sealed under",
        )),
        (current, None) => Ok(current),
    }
}

/// A key-encryption key from a value setting or a file setting (not both), if either is set.
fn read_kek(
    (value_setting, value): (&'static str, &Option<crate::secret::SecretString>),
    (file_setting, file): (&'static str, &Option<std::path::PathBuf>),
) -> Result<Option<KeyEncryptionKey>, ConfigError> {
    let (setting, text) = match (value, file) {
        (Some(_), Some(_)) => {
            return Err(problem(
                value_setting,
                format!("set either {value_setting} or {file_setting}, not both"),
            ));
        }
        (Some(value), None) => (value_setting, zeroize::Zeroizing::new(value.expose_owned())),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                problem(file_setting, format!("cannot read {}: {e}", path.display()))
            })?;
            (file_setting, zeroize::Zeroizing::new(text))
        }
        (None, None) => return Ok(None),
    };
    parse_kek(setting, &text).map(Some)
}

/// A key-encryption key from its base64 text; errors name `setting`.
pub fn parse_kek(setting: &'static str, text: &str) -> Result<KeyEncryptionKey, ConfigError> {
    let trimmed = text.trim().trim_end_matches('=');
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(trimmed)
        .map(zeroize::Zeroizing::new)
        .map_err(|_| problem(setting, "is not base64 (make one with `openssl rand -base64 32`)"))?;
    KeyEncryptionKey::new(&bytes).map_err(|_| {
        problem(
            setting,
            format!(
                "must be 32 bytes, base64-encoded, got {} bytes (make one with `openssl rand \
                 -base64 32`)",
                bytes.len()
            ),
        )
    })
}

/// Every stored key opened under `current` (or its previous KEK) and sealed again under `new`,
/// ready for [`Store::reseal_signing_keys`]. A key that opens under neither fails the whole set, naming
/// it.
pub fn reseal(
    stored: &[StoredSigningKey],
    current: &KeyEncryptionKey,
    new: &KeyEncryptionKey,
) -> Result<Vec<jwt_auth_store::ResealedKey>, StoredKeyError> {
    stored
        .iter()
        .map(|key| {
            let opened = open(current, key)?;
            let resealed = new
                .seal(&opened)
                .map_err(|source| StoredKeyError::Key { kid: key.kid.clone(), source })?;
            Ok(jwt_auth_store::ResealedKey {
                kid: key.kid.clone(),
                sealed_before: key.sealed_private_key.clone(),
                sealed_now: resealed,
            })
        })
        .collect()
}

/// Keys live in the database when a key-encryption key is set; PostgreSQL (several instances)
/// requires one unless `JWT_SECRET` / `JWT_PRIVATE_KEY_FILE` pins the signing key.
pub fn key_source(
    args: &KeyArgs,
    database_url: &str,
    pinned: bool,
) -> Result<KeySource, ConfigError> {
    match key_encryption_key(args)? {
        Some(kek) => Ok(KeySource::Database(kek)),
        None if is_postgres(database_url) && !pinned => Err(problem(
            "KEY_ENCRYPTION_KEY",
            "is required with PostgreSQL: signing keys are stored in the database, encrypted \
             under it (32 random bytes, base64: `openssl rand -base64 32`; or \
             KEY_ENCRYPTION_KEY_FILE)",
        )),
        None => Ok(KeySource::Directory),
    }
}

pub fn is_postgres(database_url: &str) -> bool {
    database_url.starts_with("postgres:") || database_url.starts_with("postgresql:")
}

/// What a stored key is doing at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published (verifies, in the JWK set), not signing yet.
    Pending,
    /// Signs.
    Active,
    /// Replaced: verifies until its tokens have expired.
    Retired,
    /// Refused everywhere.
    Revoked,
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyState::Pending => "pending",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
            KeyState::Revoked => "revoked",
        })
    }
}

/// The key that signs at `now`: the last one activated that is neither revoked nor replaced
/// (the replacement decides when two keys activate at the same instant); failing that, the
/// last one activated that is not revoked (its replacement was revoked before it signed).
/// Whatever their algorithms, one key signs.
fn active_index(stored: &[StoredSigningKey], now: DateTime<Utc>) -> Option<usize> {
    let usable = |k: &StoredSigningKey| k.revoked_at.is_none() && k.activates_at <= now;
    stored
        .iter()
        .rposition(|k| usable(k) && k.retired_at.is_none_or(|at| at > now))
        .or_else(|| stored.iter().rposition(usable))
}

fn algorithm_of(stored: &StoredSigningKey) -> Option<Algorithm> {
    stored.algorithm.parse().ok()
}

/// The deployment's algorithm at `now`: that of the stored key that signs.
pub fn signing_algorithm(stored: &[StoredSigningKey], now: DateTime<Utc>) -> Option<Algorithm> {
    active_index(stored, now).and_then(|i| algorithm_of(&stored[i]))
}

/// Checks `wanted` (`JWT_ALGORITHM`, or a pinned key's algorithm) against the stored keys: it
/// must be the signing key's, or that of a published key about to sign (a change of
/// algorithm under way). Anything goes while no key is stored.
pub fn check_algorithm(
    stored: &[StoredSigningKey],
    wanted: Algorithm,
    now: DateTime<Utc>,
) -> Result<(), ConfigError> {
    let Some(signing) = signing_algorithm(stored, now) else { return Ok(()) };
    let pending = |k: &StoredSigningKey| k.revoked_at.is_none() && k.activates_at > now;
    if signing == wanted || stored.iter().any(|k| pending(k) && algorithm_of(k) == Some(wanted)) {
        Ok(())
    } else {
        Err(crate::key_files::algorithm_mismatch(wanted, signing))
    }
}

/// The state of each stored key at `now` (in the store's order), for `keys list`.
pub fn states(stored: &[StoredSigningKey], now: DateTime<Utc>) -> Vec<KeyState> {
    let active = active_index(stored, now);
    stored
        .iter()
        .enumerate()
        .map(|(i, k)| match () {
            _ if k.revoked_at.is_some() => KeyState::Revoked,
            _ if active == Some(i) => KeyState::Active,
            _ if k.activates_at > now && k.retired_at.is_none_or(|at| at > now) => {
                KeyState::Pending
            }
            _ => KeyState::Retired,
        })
        .collect()
}

/// A record for `key`, its private half sealed.
pub fn record(
    kek: &KeyEncryptionKey,
    key: &SigningKey,
    created_at: DateTime<Utc>,
    activates_at: DateTime<Utc>,
) -> Result<StoredSigningKey, jwt_core::Error> {
    let public_jwk = match key.verifying_key().to_jwk() {
        Some(jwk) => Some(
            serde_json::to_string(jwk).map_err(|e| jwt_core::Error::InvalidKey(e.to_string()))?,
        ),
        None => None,
    };
    Ok(StoredSigningKey {
        kid: key.kid().to_owned(),
        algorithm: key.algorithm().as_str().to_owned(),
        created_at,
        activates_at,
        retired_at: None,
        revoked_at: None,
        public_jwk,
        sealed_private_key: kek.seal(key)?,
    })
}

/// Why the stored keys could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoredKeyError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Store(#[from] jwt_auth_store::StoreError),
    #[error("stored key {kid}: {source}")]
    Key { kid: String, source: jwt_core::Error },
    #[error(
        "KEY_ENCRYPTION_KEY: stored key {kid} does not decrypt with it; every instance needs the \
         key-encryption key the keys were stored with"
    )]
    WrongKek { kid: String },
    #[error("no stored key may sign; run `jwt-auth keys rotate --now`")]
    NoSigningKey,
    #[error("no stored key has the kid `{0}`; nothing changed")]
    UnknownKid(String),
    #[error(
        "key `{0}` signs now; rotate first (`jwt-auth keys rotate --now` for a compromised key), \
         then revoke it; nothing changed"
    )]
    RevokingActiveKey(String),
}

fn open(kek: &KeyEncryptionKey, stored: &StoredSigningKey) -> Result<SigningKey, StoredKeyError> {
    let alg: Algorithm = stored
        .algorithm
        .parse()
        .map_err(|source| StoredKeyError::Key { kid: stored.kid.clone(), source })?;
    kek.open(alg, &stored.kid, &stored.sealed_private_key).map_err(|source| match source {
        jwt_core::Error::SealedKey { kid } => StoredKeyError::WrongKek { kid },
        source => StoredKeyError::Key { kid: stored.kid.clone(), source },
    })
}

fn verifying(
    kek: &KeyEncryptionKey,
    stored: &StoredSigningKey,
) -> Result<VerifyingKey, StoredKeyError> {
    match &stored.public_jwk {
        Some(jwk) => {
            let bad = |source| StoredKeyError::Key { kid: stored.kid.clone(), source };
            let jwk: jwt_core::Jwk = serde_json::from_str(jwk)
                .map_err(|e| bad(jwt_core::Error::InvalidKey(e.to_string())))?;
            VerifyingKey::from_jwk(&jwk).map_err(bad)
        }
        // An HS256 secret verifies with itself.
        None => Ok(open(kek, stored)?.verifying_key().clone()),
    }
}

/// On a first start with a key-encryption key: stores the keys of `DATA_DIR/keys/` (each
/// retired when the next one was made, the newest signing) or, if there are none and no key
/// is pinned, a new key of `first`; returns how many keys were stored. Nothing happens if the
/// database holds any key already.
pub async fn store_first_keys(
    store: &Store,
    kek: &KeyEncryptionKey,
    first_algorithm: Algorithm,
    pinned: bool,
    data_dir: &Path,
    now: DateTime<Utc>,
) -> Result<usize, StoredKeyError> {
    if !store.signing_keys().await?.is_empty() {
        return Ok(0);
    }
    let files = crate::key_files::read_dir(&crate::key_files::key_dir(data_dir))?;
    let mut first = Vec::new();
    for file in &files {
        let sealed = record(kek, &file.key, file.created, file.created)
            .map_err(|source| StoredKeyError::Key { kid: file.key.kid().to_owned(), source })?;
        first.push(sealed);
    }
    if !pinned && files.is_empty() {
        let key = SigningKey::generate(first_algorithm)
            .map_err(|e| ConfigError { setting: "JWT_ALGORITHM", problem: e.to_string() })?;
        // Nothing signs yet, so the first key may sign at once.
        let sealed = record(kek, &key, now, now)
            .map_err(|source| StoredKeyError::Key { kid: key.kid().to_owned(), source })?;
        first.push(sealed);
    }
    // Each key was replaced when the next one was made.
    let next_times: Vec<_> = first.iter().skip(1).map(|k| k.created_at).collect();
    for (key, replaced) in first.iter_mut().zip(next_times) {
        key.retired_at = Some(replaced);
    }
    let count = first.len();
    Ok(if count > 0 && store.add_first_signing_keys(&first).await? { count } else { 0 })
}

/// The key set the stored keys make at `now`: the pinned key or the last activated key
/// signs; every other key that is not revoked verifies, a pending key from its creation
/// (so it is published before it signs), a retired one for `retention` after it was replaced.
pub fn key_set(
    stored: &[StoredSigningKey],
    kek: &KeyEncryptionKey,
    pinned: Option<SigningKey>,
    retention: TimeDelta,
    now: DateTime<Utc>,
) -> Result<KeySet, StoredKeyError> {
    let active_at = if pinned.is_some() { None } else { active_index(stored, now) };
    let active = match (pinned, active_at) {
        (Some(key), _) => key,
        (None, Some(i)) => open(kek, &stored[i])?,
        (None, None) => return Err(StoredKeyError::NoSigningKey),
    };
    let mut replaced = Vec::new();
    for (i, key) in stored.iter().enumerate() {
        if Some(i) == active_at || key.revoked_at.is_some() {
            continue;
        }
        // Pending keys and keys no one marked as replaced are kept (replaced "later").
        let replaced_at = match key.retired_at {
            Some(at) => at,
            None => key.activates_at.max(now),
        };
        replaced.push((verifying(kek, key)?, replaced_at));
    }
    Ok(KeySet::from_history(active, replaced, retention, now))
}

/// Loads the stored keys into a key set (see [`key_set`]); a running instance follows them
/// whatever their algorithm (a change of algorithm is a rotation like any other).
pub async fn load(
    store: &Store,
    kek: &KeyEncryptionKey,
    args: &KeyArgs,
    retention: TimeDelta,
    now: DateTime<Utc>,
) -> Result<KeySet, StoredKeyError> {
    let pinned = pinned(args)?;
    let stored = store.signing_keys().await?;
    key_set(&stored, kek, pinned, retention, now)
}

/// The key `JWT_SECRET` or `JWT_PRIVATE_KEY_FILE` pins, read as `JWT_ALGORITHM` says (HS256
/// when unset).
fn pinned(args: &KeyArgs) -> Result<Option<SigningKey>, ConfigError> {
    crate::key_files::pinned_key(args, args.requested_algorithm()?.unwrap_or(Algorithm::HS256))
}

/// Refuses `stored`, the keys a database holds, when no key-encryption key is set: the key
/// files of `DATA_DIR/keys/` would sign instead, voiding every token the stored keys signed.
pub fn refuse_sealed_without_kek(stored: &[StoredSigningKey]) -> Result<(), ConfigError> {
    if stored.is_empty() {
        return Ok(());
    }
    Err(problem(
        "KEY_ENCRYPTION_KEY",
        format!(
            "is not set, but the database holds {} signing keys sealed under one; set \
             KEY_ENCRYPTION_KEY_FILE (or KEY_ENCRYPTION_KEY) to the key they were stored with \
             (the key files of DATA_DIR/keys/ are not used once keys are in the database)",
            stored.len()
        ),
    ))
}

/// The key source of the settings and the key set to start with, once `JWT_ALGORITHM` (or
/// the pinned key's algorithm) is checked against the stored keys'. With the database: stores
/// the first keys if there are none (see [`store_first_keys`]), then loads them.
pub async fn initial(
    source: &KeySource,
    store: &Store,
    args: &KeyArgs,
    config: &crate::config::Config,
    retention: TimeDelta,
    now: DateTime<Utc>,
) -> Result<KeySet, StoredKeyError> {
    match source {
        KeySource::Directory => {
            refuse_sealed_without_kek(&store.signing_keys().await?)?;
            crate::key_files::check_algorithm(args, &config.data_dir)?;
            let loaded = crate::key_files::load(args, &config.data_dir, retention, now)?;
            if let Some(path) = &loaded.generated {
                let alg = loaded.keys.active().map(SigningKey::algorithm);
                tracing::info!(path = %path.display(), algorithm = ?alg, "generated a new signing key and stored it (mode 0600)");
            }
            Ok(loaded.keys)
        }
        KeySource::Database(kek) => {
            let pinned = pinned(args)?;
            let wanted = pinned.as_ref().map(SigningKey::algorithm).or(config.algorithm);
            if store.signing_keys().await?.is_empty() {
                // The key files about to be imported decide, as they would without the database.
                crate::key_files::check_algorithm(args, &config.data_dir)?;
            }
            let first = wanted.unwrap_or(Algorithm::HS256);
            let count =
                store_first_keys(store, kek, first, pinned.is_some(), &config.data_dir, now)
                    .await?;
            if count > 0 {
                tracing::info!(
                    keys = count,
                    "stored the first signing keys in the database (the key files of DATA_DIR/keys/, or a new key of JWT_ALGORITHM if there were none), encrypted under the key-encryption key"
                );
            }
            let stored = store.signing_keys().await?;
            if let Some(wanted) = wanted {
                check_algorithm(&stored, wanted, now)?;
            }
            key_set(&stored, kek, pinned, retention, now)
        }
    }
}

/// What [`rotate`] stored.
#[derive(Debug)]
pub struct Rotation {
    pub kid: String,
    pub algorithm: Algorithm,
    pub activates_at: DateTime<Utc>,
    /// Whether another key was signing (and signs until `activates_at`).
    pub replaces: bool,
    /// The algorithm signing until `activates_at`, when the rotation changes it.
    pub changes_from: Option<Algorithm>,
}

/// Stores a new key (after importing the key files if the database holds none), once `kek`
/// has opened a stored key: the one every server holds. Its algorithm is `algorithm`, or the
/// newest stored key's when `None` (HS256 if there is none). It signs [`PUBLISH_AHEAD`] from
/// `now`, once every instance publishes it and every cached JWK set has it, or at once when
/// `at_once` or when no key signs. A change of algorithm is a rotation like any other: the new
/// key is published ahead, then the one key that signs.
pub async fn rotate(
    store: &Store,
    kek: &KeyEncryptionKey,
    algorithm: Option<Algorithm>,
    data_dir: &Path,
    at_once: bool,
    now: DateTime<Utc>,
) -> Result<Rotation, StoredKeyError> {
    // Key files not yet imported become the history the new key follows.
    store_first_keys(store, kek, Algorithm::HS256, true, data_dir, now).await?;
    let stored = store.signing_keys().await?;
    // A key sealed under another KEK than the servers' would stop them when it activates.
    if let Some(last) = stored.last() {
        open(kek, last)?;
    }
    let newest = stored.iter().rev().find(|k| k.revoked_at.is_none()).and_then(algorithm_of);
    let alg = algorithm.or(newest).unwrap_or(Algorithm::HS256);
    let key = SigningKey::generate(alg)
        .map_err(|e| ConfigError { setting: "JWT_ALGORITHM", problem: e.to_string() })?;
    let signing = signing_algorithm(&stored, now);
    let replaces = signing.is_some();
    let activates_at = if at_once || !replaces { now } else { now + PUBLISH_AHEAD };
    let record = record(kek, &key, now, activates_at)
        .map_err(|source| StoredKeyError::Key { kid: key.kid().to_owned(), source })?;
    store.rotate_signing_key(&record).await?;
    Ok(Rotation {
        kid: record.kid,
        algorithm: alg,
        activates_at,
        replaces,
        changes_from: signing.filter(|&from| from != alg),
    })
}

/// Revokes stored key `kid`; refused for the key that signs at `now` unless a key is
/// `pinned` (which signs instead). Its entry in the revocation feed matters for `retention`
/// (see [`KeySet::retention`]). Returns the record (already revoked keys are left as they
/// are).
pub async fn revoke(
    store: &Store,
    kid: &str,
    pinned: bool,
    retention: TimeDelta,
    now: DateTime<Utc>,
) -> Result<StoredSigningKey, StoredKeyError> {
    let stored = store.signing_keys().await?;
    let Some(i) = stored.iter().position(|k| k.kid == kid) else {
        return Err(StoredKeyError::UnknownKid(kid.to_owned()));
    };
    if !pinned && states(&stored, now)[i] == KeyState::Active {
        return Err(StoredKeyError::RevokingActiveKey(kid.to_owned()));
    }
    if stored[i].revoked_at.is_some() {
        return Ok(stored[i].clone());
    }
    store
        .revoke_signing_key(kid, now, now + retention)
        .await?
        .ok_or_else(|| StoredKeyError::UnknownKid(kid.to_owned()))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // fixtures at the system's time
mod tests {
    use super::*;
    use crate::secret::SecretString;

    fn stored(kid: &str, activates_at: DateTime<Utc>) -> StoredSigningKey {
        StoredSigningKey {
            kid: kid.into(),
            algorithm: "EdDSA".into(),
            created_at: activates_at,
            activates_at,
            retired_at: None,
            revoked_at: None,
            public_jwk: None,
            sealed_private_key: Vec::new(),
        }
    }

    #[test]
    fn states_follow_activation_replacement_and_revocation() {
        let t = Utc::now();
        let (mut a, b) = (stored("a", t), stored("b", t + PUBLISH_AHEAD));
        a.retired_at = Some(b.activates_at);
        let keys = [a, b];
        use KeyState::*;
        assert_eq!(states(&keys, t), [Active, Pending]);
        assert_eq!(states(&keys, t + PUBLISH_AHEAD), [Retired, Active]);
        let mut revoked = keys.clone();
        revoked[1].revoked_at = Some(t);
        assert_eq!(states(&revoked, t + PUBLISH_AHEAD), [Active, Revoked], "the old key signs on");
    }

    #[test]
    fn a_replacement_made_in_the_same_instant_signs_whatever_the_kid_order() {
        let t = Utc::now();
        // `rotate --now` in the instant the first key was made: equal times, kids in either
        // order; the replaced key is the one with `retired_at`.
        for (old, new) in [("a", "b"), ("b", "a")] {
            let mut first = stored(old, t);
            first.retired_at = Some(t);
            let mut keys = vec![first, stored(new, t)];
            keys.sort_by(|x, y| x.kid.cmp(&y.kid));
            let states = states(&keys, t);
            let active = keys.iter().zip(states).find(|(_, s)| *s == KeyState::Active);
            assert_eq!(active.map(|(k, _)| k.kid.as_str()), Some(new));
        }
    }

    #[test]
    fn one_key_signs_whatever_the_algorithms_and_another_algorithm_is_refused() {
        let t = Utc::now();
        // An HS256 key replaced by an EdDSA key published ahead: one active key throughout.
        let (mut old, mut new) = (stored("h", t), stored("e", t + PUBLISH_AHEAD));
        old.algorithm = "HS256".into();
        old.retired_at = Some(new.activates_at);
        let keys = [old, new.clone()];
        use KeyState::*;
        assert_eq!(states(&keys, t), [Active, Pending]);
        assert_eq!(states(&keys, t + PUBLISH_AHEAD), [Retired, Active]);
        assert_eq!(signing_algorithm(&keys, t), Some(Algorithm::HS256));
        assert_eq!(signing_algorithm(&keys, t + PUBLISH_AHEAD), Some(Algorithm::EdDSA));
        // Before the switch either algorithm of the change is accepted; after it, only EdDSA.
        check_algorithm(&keys, Algorithm::HS256, t).expect("signs now");
        check_algorithm(&keys, Algorithm::EdDSA, t).expect("about to sign");
        check_algorithm(&keys, Algorithm::EdDSA, t + PUBLISH_AHEAD).expect("signs");
        let err = check_algorithm(&keys, Algorithm::HS256, t + PUBLISH_AHEAD).unwrap_err();
        assert!(err.problem.contains("is HS256, but the stored signing key is EdDSA"), "{err}");
        let err = check_algorithm(&keys, Algorithm::ES256, t).unwrap_err();
        assert!(err.problem.contains("is ES256, but the stored signing key is HS256"), "{err}");
        // A revoked pending key does not make its algorithm acceptable.
        new.revoked_at = Some(t);
        let keys = [keys[0].clone(), new];
        assert!(check_algorithm(&keys, Algorithm::EdDSA, t).is_err());
        check_algorithm(&[], Algorithm::ES256, t).expect("nothing stored yet");
    }

    #[test]
    fn postgres_without_a_kek_is_refused_naming_the_setting_unless_a_key_is_pinned() {
        let args = KeyArgs { algorithm: Some("EdDSA".into()), ..KeyArgs::default() };
        let err = key_source(&args, "postgres://db/auth", false).unwrap_err();
        assert_eq!(err.setting, "KEY_ENCRYPTION_KEY");
        assert!(matches!(key_source(&args, "postgres://db/auth", true), Ok(KeySource::Directory)));
        assert!(matches!(key_source(&args, "sqlite://x.db", false), Ok(KeySource::Directory)));
        let short =
            KeyArgs { key_encryption_key: Some(SecretString::new("c2hvcnQ=")), ..args.clone() };
        assert_eq!(
            key_source(&short, "sqlite://x.db", false).unwrap_err().setting,
            "KEY_ENCRYPTION_KEY"
        );
        let kek = STANDARD_NO_PAD_TEXT;
        let good = KeyArgs { key_encryption_key: Some(SecretString::new(kek)), ..args };
        assert!(matches!(key_source(&good, "sqlite://x.db", false), Ok(KeySource::Database(_))));
        assert!(!format!("{good:?}").contains(kek), "the KEK never shows in Debug");
    }

    const STANDARD_NO_PAD_TEXT: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY";
}
