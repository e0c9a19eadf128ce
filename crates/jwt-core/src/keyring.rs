//! The lifecycle of a deployment's signing keys, whatever holds them: a key is published
//! ahead, then signs, then is retired (it verifies until its last token has expired), and may
//! be revoked (refused everywhere). [`KeyRing`] applies these rules over any
//! [`SigningKeyStore`]; [`MemoryKeyStore`] is one.

use std::fmt;
use std::future::Future;
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::jwk::Jwk;

use crate::error::{Error, Result};
use crate::keys::{Algorithm, KeySet, SigningKey, VerifyingKey};
use crate::sealed::KeyEncryptionKey;

/// How long clients may cache a JWK set (its `Cache-Control: max-age`).
pub const JWKS_MAX_AGE: TimeDelta = TimeDelta::seconds(60);

/// How far ahead of signing a rotated key is published: every instance has reloaded it (they
/// reload every second) and every cached JWK set has expired by then ([`JWKS_MAX_AGE`] plus
/// one reload).
pub const PUBLISH_AHEAD: TimeDelta = TimeDelta::seconds(61);

/// What a stored key is doing at a time (see [`states`]).
///
/// ```
/// use jwt_core::KeyState;
/// assert_eq!(KeyState::Pending.to_string(), "pending");
/// ```
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

/// The lifecycle of one stored signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// The key's id.
    pub kid: String,
    /// What it signs with.
    pub algorithm: Algorithm,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it signs (or signed) from; it is published from `created_at`.
    pub activates_at: DateTime<Utc>,
    /// When another key replaced it, if one has.
    pub retired_at: Option<DateTime<Utc>>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The key itself, as a store holds it.
#[derive(Clone)]
pub enum KeyMaterial {
    /// The private half sealed under a [`KeyEncryptionKey`] (see [`KeyEncryptionKey::seal`]),
    /// and the public half as a JWK (none for an HS256 secret, which verifies with itself).
    Sealed {
        /// The sealed private half.
        private: Vec<u8>,
        /// The public half.
        public: Option<Jwk>,
    },
    /// The key in the clear: a store that keeps it so, such as files only the server reads.
    Clear(SigningKey),
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyMaterial::Sealed { .. } => "Sealed",
            KeyMaterial::Clear(_) => "Clear",
        })
    }
}

/// A stored signing key: its lifecycle and the key.
#[derive(Debug, Clone)]
pub struct StoredKey {
    /// Its lifecycle.
    pub record: KeyRecord,
    /// The key.
    pub material: KeyMaterial,
}

/// Where a deployment keeps its signing keys, for a [`KeyRing`]. Writers serialise their
/// changes (one winner among instances storing the first keys at once).
pub trait SigningKeyStore: Send + Sync {
    /// Every stored key, in the order they sign (by activation, then creation).
    fn signing_keys(&self) -> impl Future<Output = Result<Vec<StoredKey>>> + Send;

    /// Stores `first` if no key is stored yet, in one step; returns whether it did.
    fn add_first_keys(&self, first: &[StoredKey]) -> impl Future<Output = Result<bool>> + Send;

    /// Stores `next`, which signs from its `activates_at`; the key signing until then is
    /// retired at that time.
    fn add_key(&self, next: &StoredKey) -> impl Future<Output = Result<()>> + Send;

    /// Marks key `kid` revoked at `at`, its revocation to be told to verifiers until `until`;
    /// `None` if no key has that kid.
    fn revoke_key(
        &self,
        kid: &str,
        at: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<KeyRecord>>> + Send;

    /// Whether a new key can wait to sign until [`PUBLISH_AHEAD`] has passed. A store that
    /// keeps no activation time signs with its newest key at once.
    fn publishes_ahead(&self) -> bool {
        true
    }
}

/// The key that signs at `now`: the last one activated that is neither revoked nor replaced
/// (the replacement decides when two keys activate at the same instant); failing that, the
/// last one activated that is not revoked (its replacement was revoked before it signed).
fn active_index(records: &[&KeyRecord], now: DateTime<Utc>) -> Option<usize> {
    let usable = |k: &KeyRecord| k.revoked_at.is_none() && k.activates_at <= now;
    records
        .iter()
        .rposition(|k| usable(k) && k.retired_at.is_none_or(|at| at > now))
        .or_else(|| records.iter().rposition(|k| usable(k)))
}

fn records(keys: &[StoredKey]) -> Vec<&KeyRecord> {
    keys.iter().map(|k| &k.record).collect()
}

/// The state of each key at `now`, in the store's order. Whatever their algorithms, at most
/// one key is active.
///
/// ```
/// use chrono::Utc;
/// use jwt_core::{Algorithm, KeyRecord, KeyState, PUBLISH_AHEAD, states};
///
/// let now = Utc::now();
/// let key = |kid: &str, activates_at| KeyRecord {
///     kid: kid.into(), algorithm: Algorithm::EdDSA, created_at: now, activates_at,
///     retired_at: None, revoked_at: None,
/// };
/// let mut old = key("old", now);
/// old.retired_at = Some(now + PUBLISH_AHEAD);
/// let keys = [old, key("new", now + PUBLISH_AHEAD)];
/// assert_eq!(states(&keys, now), [KeyState::Active, KeyState::Pending]);
/// assert_eq!(states(&keys, now + PUBLISH_AHEAD), [KeyState::Retired, KeyState::Active]);
/// ```
pub fn states(keys: &[KeyRecord], now: DateTime<Utc>) -> Vec<KeyState> {
    states_of(&keys.iter().collect::<Vec<_>>(), now)
}

fn states_of(keys: &[&KeyRecord], now: DateTime<Utc>) -> Vec<KeyState> {
    let active = active_index(keys, now);
    keys.iter()
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

/// The deployment's algorithm at `now`: that of the key that signs, if one does.
///
/// ```
/// use chrono::Utc;
/// use jwt_core::{Algorithm, KeyRecord, signing_algorithm};
/// let now = Utc::now();
/// let key = KeyRecord {
///     kid: "k".into(), algorithm: Algorithm::ES256, created_at: now, activates_at: now,
///     retired_at: None, revoked_at: None,
/// };
/// assert_eq!(signing_algorithm(&[key], now), Some(Algorithm::ES256));
/// assert_eq!(signing_algorithm(&[], now), None);
/// ```
pub fn signing_algorithm(keys: &[KeyRecord], now: DateTime<Utc>) -> Option<Algorithm> {
    let keys: Vec<_> = keys.iter().collect();
    active_index(&keys, now).map(|i| keys[i].algorithm)
}

/// Checks `wanted` (a configured algorithm, or a pinned key's) against the stored keys: one
/// deployment signs with one algorithm, so that every verifier can check every token. It must
/// be the signing key's, or that of a published key about to sign (a change of algorithm
/// under way). Anything goes while no key signs.
///
/// ```
/// use chrono::Utc;
/// use jwt_core::{Algorithm, AlgorithmChange, KeyRecord, check_algorithm};
/// let now = Utc::now();
/// let key = KeyRecord {
///     kid: "k".into(), algorithm: Algorithm::EdDSA, created_at: now, activates_at: now,
///     retired_at: None, revoked_at: None,
/// };
/// assert!(check_algorithm(&[key.clone()], Algorithm::EdDSA, now).is_ok());
/// assert_eq!(
///     check_algorithm(&[key], Algorithm::HS256, now),
///     Err(AlgorithmChange { wanted: Algorithm::HS256, signing: Algorithm::EdDSA })
/// );
/// ```
pub fn check_algorithm(
    keys: &[KeyRecord],
    wanted: Algorithm,
    now: DateTime<Utc>,
) -> std::result::Result<(), AlgorithmChange> {
    let Some(signing) = signing_algorithm(keys, now) else { return Ok(()) };
    let pending = |k: &KeyRecord| k.revoked_at.is_none() && k.activates_at > now;
    if signing == wanted || keys.iter().any(|k| pending(k) && k.algorithm == wanted) {
        Ok(())
    } else {
        Err(AlgorithmChange { wanted, signing })
    }
}

/// A configured algorithm (or a pinned key's) that is not the one the deployment's stored keys
/// sign with (see [`check_algorithm`]).
///
/// ```
/// use jwt_core::{AlgorithmChange, Algorithm};
/// let refused = AlgorithmChange { wanted: Algorithm::HS256, signing: Algorithm::EdDSA };
/// assert_eq!(refused.to_string(), "the algorithm is HS256, but the stored signing key is EdDSA");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the algorithm is {wanted}, but the stored signing key is {signing}")]
pub struct AlgorithmChange {
    /// The algorithm asked for.
    pub wanted: Algorithm,
    /// The algorithm of the key that signs.
    pub signing: Algorithm,
}

/// What [`KeyRing::rotate`] stored.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// The new key.
    pub record: KeyRecord,
    /// Whether another key was signing (and signs until the new key's `activates_at`).
    pub replaces: bool,
    /// The algorithm signing until then, when the rotation changes it.
    pub changes_from: Option<Algorithm>,
}

/// A deployment's signing keys over a [`SigningKeyStore`]: which key signs and which still
/// verify ([`KeyRing::key_set`]), rotation with the new key published ahead, and revocation,
/// refused for the key that signs.
///
/// The settings are given once: the key-encryption key new keys are sealed under (none for a
/// store that keeps keys in the clear), a pinned key that signs instead of the stored ones,
/// and how long a replaced key keeps verifying.
///
/// ```
/// use chrono::{TimeDelta, Utc};
/// use jwt_core::{Algorithm, Error, KeyRing, KeySet, MemoryKeyStore, PUBLISH_AHEAD};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let retention = KeySet::retention(TimeDelta::minutes(15), TimeDelta::days(7));
/// let ring = KeyRing::new(MemoryKeyStore::default(), retention);
/// let now = Utc::now();
/// let first = ring.rotate(Some(Algorithm::EdDSA), false, now).await?;
/// assert!(!first.replaces, "nothing signed: the first key signs at once");
///
/// let next = ring.rotate(None, false, now).await?;
/// assert_eq!(next.record.activates_at, now + PUBLISH_AHEAD);
/// let keys = ring.key_set(now).await?;
/// assert_eq!(keys.active().unwrap().kid(), first.record.kid, "the old key signs on");
/// assert!(keys.find(&next.record.kid).is_some(), "the new key is published ahead");
///
/// let later = now + PUBLISH_AHEAD;
/// assert_eq!(ring.key_set(later).await?.active().unwrap().kid(), next.record.kid);
/// assert!(matches!(
///     ring.revoke(&next.record.kid, later).await,
///     Err(Error::RevokingActiveKey(_))
/// ));
/// ring.revoke(&first.record.kid, later).await?;
/// assert!(ring.key_set(later).await?.find(&first.record.kid).is_none());
/// # Ok::<(), Error>(()) }).unwrap();
/// ```
pub struct KeyRing<S> {
    store: S,
    kek: Option<KeyEncryptionKey>,
    pinned: Option<SigningKey>,
    retention: TimeDelta,
    first_algorithm: Algorithm,
}

impl<S: fmt::Debug> fmt::Debug for KeyRing<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("store", &self.store)
            .field("sealed", &self.kek.is_some())
            .field("pinned", &self.pinned.as_ref().map(SigningKey::kid))
            .field("retention", &self.retention)
            .finish()
    }
}

impl<S: SigningKeyStore> KeyRing<S> {
    /// A ring over `store` whose keys are kept in the clear, none pinned, whose replaced keys
    /// verify for `retention` (see [`KeySet::retention`]), and whose first key is HS256.
    pub fn new(store: S, retention: TimeDelta) -> Self {
        Self { store, kek: None, pinned: None, retention, first_algorithm: Algorithm::HS256 }
    }

    /// New keys are sealed under `kek`, and sealed keys opened with it.
    pub fn sealed_under(mut self, kek: KeyEncryptionKey) -> Self {
        self.kek = Some(kek);
        self
    }

    /// `key` signs instead of the stored keys, which only verify.
    pub fn pinned(mut self, key: Option<SigningKey>) -> Self {
        self.pinned = key;
        self
    }

    /// The algorithm of a rotation that names none while no key is stored.
    pub fn first_algorithm(mut self, algorithm: Algorithm) -> Self {
        self.first_algorithm = algorithm;
        self
    }

    /// Replaced keys verify for `retention` after they were replaced.
    pub fn with_retention(mut self, retention: TimeDelta) -> Self {
        self.retention = retention;
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The pinned key, if one is.
    pub fn pinned_key(&self) -> Option<&SigningKey> {
        self.pinned.as_ref()
    }

    /// How long replaced keys verify.
    pub fn retention(&self) -> TimeDelta {
        self.retention
    }

    /// Every stored key, in the order they sign.
    pub async fn keys(&self) -> Result<Vec<StoredKey>> {
        self.store.signing_keys().await
    }

    /// The private half of `key`.
    pub fn open(&self, key: &StoredKey) -> Result<SigningKey> {
        match (&key.material, &self.kek) {
            (KeyMaterial::Clear(clear), _) => Ok(clear.clone()),
            (KeyMaterial::Sealed { private, .. }, Some(kek)) => {
                kek.open(key.record.algorithm, &key.record.kid, private)
            }
            (KeyMaterial::Sealed { .. }, None) => {
                Err(Error::SealedKey { kid: key.record.kid.clone() })
            }
        }
    }

    /// The public half of `key`.
    pub fn verifying_key(&self, key: &StoredKey) -> Result<VerifyingKey> {
        match &key.material {
            KeyMaterial::Sealed { public: Some(jwk), .. } => VerifyingKey::from_jwk(jwk),
            // An HS256 secret verifies with itself.
            _ => Ok(self.open(key)?.verifying_key().clone()),
        }
    }

    /// `key` as this ring stores it: sealed when it has a key-encryption key.
    pub fn material(&self, key: &SigningKey) -> Result<KeyMaterial> {
        Ok(match &self.kek {
            Some(kek) => KeyMaterial::Sealed {
                private: kek.seal(key)?,
                public: key.verifying_key().to_jwk().cloned(),
            },
            None => KeyMaterial::Clear(key.clone()),
        })
    }

    /// The key set `keys` make at `now`: the pinned key or the key that signs signs; every
    /// other key that is not revoked verifies, a pending one from its creation (so it is
    /// published before it signs), a replaced one for the retention after it was replaced.
    pub fn key_set_of(&self, keys: &[StoredKey], now: DateTime<Utc>) -> Result<KeySet> {
        let active_at =
            if self.pinned.is_some() { None } else { active_index(&records(keys), now) };
        let active = match (&self.pinned, active_at) {
            (Some(key), _) => key.clone(),
            (None, Some(i)) => self.open(&keys[i])?,
            (None, None) => return Err(Error::NoSigningKey),
        };
        let mut replaced = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            if Some(i) == active_at || key.record.revoked_at.is_some() {
                continue;
            }
            // Pending keys, and keys no one marked as replaced, are kept ("replaced later").
            let replaced_at =
                key.record.retired_at.unwrap_or_else(|| key.record.activates_at.max(now));
            replaced.push((self.verifying_key(key)?, replaced_at));
        }
        Ok(KeySet::from_history(active, replaced, self.retention, now))
    }

    /// The key set the stored keys make at `now` (see [`KeyRing::key_set_of`]).
    pub async fn key_set(&self, now: DateTime<Utc>) -> Result<KeySet> {
        self.key_set_of(&self.keys().await?, now)
    }

    /// Stores `first`, each replaced when the next was made and the last signing, if no key
    /// is stored yet; returns how many it stored (0 if keys were there already).
    pub async fn add_first_keys(&self, first: &[(SigningKey, DateTime<Utc>)]) -> Result<usize> {
        let mut stored = Vec::with_capacity(first.len());
        for (i, (key, created_at)) in first.iter().enumerate() {
            stored.push(StoredKey {
                record: KeyRecord {
                    kid: key.kid().to_owned(),
                    algorithm: key.algorithm(),
                    created_at: *created_at,
                    activates_at: *created_at,
                    retired_at: first.get(i + 1).map(|(_, next)| *next),
                    revoked_at: None,
                },
                material: self.material(key)?,
            });
        }
        let count = stored.len();
        Ok(if count > 0 && self.store.add_first_keys(&stored).await? { count } else { 0 })
    }

    /// Stores a new key of `algorithm` (by default the newest key's, or the first algorithm
    /// when none is stored), once this ring has opened the newest stored key: a key sealed
    /// under another key-encryption key than the servers' would stop them when it signs. It
    /// signs [`PUBLISH_AHEAD`] from `now`, once every instance publishes it and every cached
    /// JWK set has it; or at once when `at_once`, when no key signs, or when the store keeps
    /// no activation time. A change of algorithm is a rotation like any other.
    pub async fn rotate(
        &self,
        algorithm: Option<Algorithm>,
        at_once: bool,
        now: DateTime<Utc>,
    ) -> Result<Rotation> {
        let keys = self.keys().await?;
        if let Some(last) = keys.last() {
            self.open(last)?;
        }
        let records = records(&keys);
        let newest = records.iter().rev().find(|k| k.revoked_at.is_none()).map(|k| k.algorithm);
        let algorithm = algorithm.or(newest).unwrap_or(self.first_algorithm);
        let key = SigningKey::generate(algorithm)?;
        let signing = active_index(&records, now).map(|i| records[i].algorithm);
        let replaces = signing.is_some();
        let ahead = replaces && !at_once && self.store.publishes_ahead();
        let record = KeyRecord {
            kid: key.kid().to_owned(),
            algorithm,
            created_at: now,
            activates_at: if ahead { now + PUBLISH_AHEAD } else { now },
            retired_at: None,
            revoked_at: None,
        };
        let next = StoredKey { record, material: self.material(&key)? };
        self.store.add_key(&next).await?;
        Ok(Rotation {
            record: next.record,
            replaces,
            changes_from: signing.filter(|&from| from != algorithm),
        })
    }

    /// Revokes key `kid`, its revocation told to verifiers for the retention. Refused for the
    /// key that signs at `now` unless a key is pinned (which signs instead). A key revoked
    /// already is left as it is.
    pub async fn revoke(&self, kid: &str, now: DateTime<Utc>) -> Result<KeyRecord> {
        let keys = self.keys().await?;
        let records = records(&keys);
        let Some(i) = records.iter().position(|k| k.kid == kid) else {
            return Err(Error::UnknownKid(kid.to_owned()));
        };
        if self.pinned.is_none() && states_of(&records, now)[i] == KeyState::Active {
            return Err(Error::RevokingActiveKey(kid.to_owned()));
        }
        if records[i].revoked_at.is_some() {
            return Ok(records[i].clone());
        }
        self.store
            .revoke_key(kid, now, now + self.retention)
            .await?
            .ok_or_else(|| Error::UnknownKid(kid.to_owned()))
    }
}

/// Signing keys in memory: for tests, examples, and a single process that may lose its keys.
///
/// ```
/// use chrono::{TimeDelta, Utc};
/// use jwt_core::{KeyRing, MemoryKeyStore};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let ring = KeyRing::new(MemoryKeyStore::default(), TimeDelta::days(7));
/// ring.rotate(None, false, Utc::now()).await?;
/// assert_eq!(ring.keys().await?.len(), 1);
/// # Ok::<(), jwt_core::Error>(()) }).unwrap();
/// ```
#[derive(Debug, Default)]
pub struct MemoryKeyStore {
    keys: Mutex<Vec<StoredKey>>,
}

impl MemoryKeyStore {
    fn lock(&self) -> MutexGuard<'_, Vec<StoredKey>> {
        self.keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl SigningKeyStore for MemoryKeyStore {
    async fn signing_keys(&self) -> Result<Vec<StoredKey>> {
        Ok(self.lock().clone())
    }

    async fn add_first_keys(&self, first: &[StoredKey]) -> Result<bool> {
        let mut keys = self.lock();
        if !keys.is_empty() {
            return Ok(false);
        }
        keys.extend_from_slice(first);
        Ok(true)
    }

    async fn add_key(&self, next: &StoredKey) -> Result<()> {
        let mut keys = self.lock();
        for key in keys.iter_mut() {
            let signing = key.record.retired_at.is_none() && key.record.revoked_at.is_none();
            if signing && key.record.activates_at <= next.record.activates_at {
                key.record.retired_at = Some(next.record.activates_at);
            }
        }
        keys.push(next.clone());
        keys.sort_by(|a, b| {
            (a.record.activates_at, a.record.created_at, &a.record.kid).cmp(&(
                b.record.activates_at,
                b.record.created_at,
                &b.record.kid,
            ))
        });
        Ok(())
    }

    async fn revoke_key(
        &self,
        kid: &str,
        at: DateTime<Utc>,
        _until: DateTime<Utc>,
    ) -> Result<Option<KeyRecord>> {
        let mut keys = self.lock();
        let Some(key) = keys.iter_mut().find(|k| k.record.kid == kid) else { return Ok(None) };
        key.record.revoked_at.get_or_insert(at);
        Ok(Some(key.record.clone()))
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // fixtures at the system's time
mod tests {
    use super::*;

    fn record(kid: &str, activates_at: DateTime<Utc>) -> KeyRecord {
        KeyRecord {
            kid: kid.into(),
            algorithm: Algorithm::EdDSA,
            created_at: activates_at,
            activates_at,
            retired_at: None,
            revoked_at: None,
        }
    }

    #[test]
    fn states_follow_activation_replacement_and_revocation() {
        let t = Utc::now();
        let (mut a, b) = (record("a", t), record("b", t + PUBLISH_AHEAD));
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
        // A rotation at once in the instant the first key was made: equal times, kids in
        // either order; the replaced key is the one with `retired_at`.
        for (old, new) in [("a", "b"), ("b", "a")] {
            let mut first = record(old, t);
            first.retired_at = Some(t);
            let mut keys = vec![first, record(new, t)];
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
        let (mut old, mut new) = (record("h", t), record("e", t + PUBLISH_AHEAD));
        old.algorithm = Algorithm::HS256;
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
        let refused = |wanted, at| check_algorithm(&keys, wanted, at).unwrap_err();
        assert_eq!(
            refused(Algorithm::HS256, t + PUBLISH_AHEAD),
            AlgorithmChange { wanted: Algorithm::HS256, signing: Algorithm::EdDSA }
        );
        assert_eq!(
            refused(Algorithm::ES256, t),
            AlgorithmChange { wanted: Algorithm::ES256, signing: Algorithm::HS256 }
        );
        // A revoked pending key does not make its algorithm acceptable.
        new.revoked_at = Some(t);
        let keys = [keys[0].clone(), new];
        assert!(check_algorithm(&keys, Algorithm::EdDSA, t).is_err());
        check_algorithm(&[], Algorithm::ES256, t).expect("nothing stored yet");
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(future)
    }

    #[test]
    fn sealed_keys_open_only_under_their_key_encryption_key() {
        block_on(async {
            let kek = KeyEncryptionKey::new(&[7; 32]).unwrap();
            let ring = KeyRing::new(MemoryKeyStore::default(), TimeDelta::days(1))
                .sealed_under(kek)
                .first_algorithm(Algorithm::ES256);
            let now = Utc::now();
            let first = ring.rotate(None, false, now).await.unwrap();
            assert_eq!(first.record.algorithm, Algorithm::ES256);
            let stored = ring.keys().await.unwrap();
            assert!(matches!(stored[0].material, KeyMaterial::Sealed { public: Some(_), .. }));
            assert_eq!(ring.key_set(now).await.unwrap().active().unwrap().kid(), first.record.kid);
            let other = KeyRing::new(MemoryKeyStore::default(), TimeDelta::days(1))
                .sealed_under(KeyEncryptionKey::new(&[8; 32]).unwrap());
            assert!(matches!(other.open(&stored[0]), Err(Error::SealedKey { .. })));
            let clear = KeyRing::new(MemoryKeyStore::default(), TimeDelta::days(1));
            assert!(matches!(clear.open(&stored[0]), Err(Error::SealedKey { .. })));
        });
    }

    #[test]
    fn a_pinned_key_signs_and_lets_the_stored_signing_key_be_revoked() {
        block_on(async {
            let pinned = SigningKey::generate(Algorithm::EdDSA).unwrap();
            let ring = KeyRing::new(MemoryKeyStore::default(), TimeDelta::days(1));
            let now = Utc::now();
            let stored = ring.rotate(None, false, now).await.unwrap().record;
            let ring = ring.pinned(Some(pinned.clone()));
            let keys = ring.key_set(now).await.unwrap();
            assert_eq!(keys.active().unwrap().kid(), pinned.kid());
            assert!(keys.find(&stored.kid).is_some(), "the stored key verifies");
            let revoked = ring.revoke(&stored.kid, now).await.unwrap();
            assert_eq!(revoked.revoked_at, Some(now));
            assert!(ring.key_set(now).await.unwrap().find(&stored.kid).is_none());
            assert!(matches!(ring.revoke("nope", now).await, Err(Error::UnknownKid(_))));
        });
    }

    #[test]
    fn first_keys_are_stored_once_each_replaced_by_the_next() {
        block_on(async {
            let ring = KeyRing::new(MemoryKeyStore::default(), TimeDelta::days(30));
            let t0 = Utc::now() - TimeDelta::days(2);
            let (a, b) = (
                SigningKey::generate(Algorithm::EdDSA).unwrap(),
                SigningKey::generate(Algorithm::EdDSA).unwrap(),
            );
            let first = [(a.clone(), t0), (b.clone(), t0 + TimeDelta::days(1))];
            assert_eq!(ring.add_first_keys(&first).await.unwrap(), 2);
            assert_eq!(ring.add_first_keys(&first).await.unwrap(), 0, "only once");
            let keys = ring.key_set(Utc::now()).await.unwrap();
            assert_eq!(keys.active().unwrap().kid(), b.kid());
            assert!(keys.find(a.kid()).is_some());
        });
    }
}
