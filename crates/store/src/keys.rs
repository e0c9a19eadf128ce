//! Signing keys shared by every instance on one database: the records as stored (the private
//! key only sealed by the caller's key-encryption key, never in plain text), rotation, revocation
//! and pruning. What a record means (pending, active, retired) is decided by the caller.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::error::StoreError;
use crate::rows::{SigningKeyRow, db_time};
use crate::store::{Store, on_backend};

/// One signing key as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSigningKey {
    /// The key id (`kid`).
    pub kid: String,
    /// `HS256`, `RS256`, `ES256` or `EdDSA`.
    pub algorithm: String,
    /// When it was made, and published.
    pub created_at: DateTime<Utc>,
    /// When it may start signing; it is published (and verifies) from `created_at`.
    pub activates_at: DateTime<Utc>,
    /// When the next key replaced it.
    pub retired_at: Option<DateTime<Utc>>,
    /// When it was revoked: every token it signed is refused from then on.
    pub revoked_at: Option<DateTime<Utc>>,
    /// The public key as a JWK (JSON); `None` for an HS256 secret.
    pub public_jwk: Option<String>,
    /// The private key, encrypted by the caller; this crate never sees it in plain text.
    pub sealed_private_key: Vec<u8>,
}

impl fmt::Debug for StoredSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredSigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .field("retired_at", &self.retired_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

impl SigningKeyRow {
    pub(crate) fn activates_at(&self) -> NaiveDateTime {
        self.activates_at
    }
}

impl From<&StoredSigningKey> for SigningKeyRow {
    fn from(key: &StoredSigningKey) -> Self {
        Self {
            kid: key.kid.clone(),
            algorithm: key.algorithm.clone(),
            created_at: db_time(key.created_at),
            activates_at: db_time(key.activates_at),
            retired_at: key.retired_at.map(db_time),
            revoked_at: key.revoked_at.map(db_time),
            public_jwk: key.public_jwk.clone(),
            sealed_private_key: key.sealed_private_key.clone(),
            purpose: ACCESS.to_owned(),
        }
    }
}

impl From<SigningKeyRow> for StoredSigningKey {
    fn from(row: SigningKeyRow) -> Self {
        Self {
            kid: row.kid,
            algorithm: row.algorithm,
            created_at: row.created_at.and_utc(),
            activates_at: row.activates_at.and_utc(),
            retired_at: row.retired_at.map(|t| t.and_utc()),
            revoked_at: row.revoked_at.map(|t| t.and_utc()),
            public_jwk: row.public_jwk,
            sealed_private_key: row.sealed_private_key,
        }
    }
}

/// One stored private key sealed anew, for [`Store::reseal_signing_keys`].
#[derive(Clone, PartialEq, Eq)]
pub struct ResealedKey {
    /// The key's id.
    pub kid: String,
    /// Its sealed private key as read from the store.
    pub sealed_before: Vec<u8>,
    /// The same private key sealed under the new key-encryption key.
    pub sealed_now: Vec<u8>,
}

impl fmt::Debug for ResealedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResealedKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

/// The purpose of the deployment's signing keys.
const ACCESS: &str = "access";
/// The purpose of the keys of OpenID Connect ID tokens (beside an HS256 secret).
const ID_TOKEN: &str = "id_token";

impl Store {
    /// Every stored signing key, in the order they activate (oldest first).
    pub async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError> {
        self.keys_of(Some(ACCESS)).await
    }

    /// Every stored key of ID tokens, in the order they activate (oldest first).
    pub async fn id_token_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError> {
        self.keys_of(Some(ID_TOKEN)).await
    }

    /// Every stored key whatever it signs, signing keys and keys of ID tokens alike (all
    /// sealed under the key-encryption key), for [`Store::reseal_signing_keys`].
    pub async fn all_sealed_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError> {
        self.keys_of(None).await
    }

    async fn keys_of(
        &self,
        purpose: Option<&'static str>,
    ) -> Result<Vec<StoredSigningKey>, StoreError> {
        let rows = on_backend!(self, read, |conn| queries::signing_keys(conn, purpose))?;
        Ok(rows.into_iter().map(StoredSigningKey::from).collect())
    }

    /// Stores the keys of `first` only if no key is stored yet (a first start, or the import
    /// of a key directory); returns whether they were stored.
    pub async fn add_first_signing_keys(
        &self,
        first: &[StoredSigningKey],
    ) -> Result<bool, StoreError> {
        self.add_first_keys_of(first, ACCESS).await
    }

    async fn add_first_keys_of(
        &self,
        first: &[StoredSigningKey],
        purpose: &'static str,
    ) -> Result<bool, StoreError> {
        let rows: Vec<SigningKeyRow> = first
            .iter()
            .map(|key| SigningKeyRow { purpose: purpose.to_owned(), ..SigningKeyRow::from(key) })
            .collect();
        on_backend!(self, write, |conn| queries::add_first_signing_keys(conn, rows, purpose))
    }

    /// Re-seals every stored private key (a new key-encryption key): `resealed` holds one
    /// [`ResealedKey`] for each stored key. One
    /// transaction, serialized with every other key write: either every key is replaced, or,
    /// if the keys changed since they were read (a key added, or re-sealed by someone else),
    /// none is and the answer is [`StoreError::KeysChanged`].
    pub async fn reseal_signing_keys(&self, resealed: &[ResealedKey]) -> Result<(), StoreError> {
        let resealed = resealed.to_vec();
        on_backend!(self, write, |conn| queries::reseal_signing_keys(conn, resealed))
    }

    /// Stores `next` and marks every key it replaces (neither retired nor revoked) as retired
    /// at `next.activates_at`, in one transaction.
    pub async fn rotate_signing_key(&self, next: &StoredSigningKey) -> Result<(), StoreError> {
        self.rotate_key_of(next, ACCESS).await
    }

    async fn rotate_key_of(
        &self,
        next: &StoredSigningKey,
        purpose: &'static str,
    ) -> Result<(), StoreError> {
        let row = SigningKeyRow { purpose: purpose.to_owned(), ..SigningKeyRow::from(next) };
        on_backend!(self, write, |conn| queries::rotate_signing_key(conn, row))
    }

    /// Marks key `kid` revoked at `at` (an already revoked key keeps its first time) and
    /// records it in the revocation feed, where it matters until `tokens_expire_at` (when
    /// every token the key signed has expired); `None` if no key has that id.
    pub async fn revoke_signing_key(
        &self,
        kid: &str,
        at: DateTime<Utc>,
        tokens_expire_at: DateTime<Utc>,
    ) -> Result<Option<StoredSigningKey>, StoreError> {
        let kid = kid.to_owned();
        let row = on_backend!(self, write, |conn| queries::revoke_signing_key(
            conn,
            kid,
            at,
            tokens_expire_at
        ))?;
        Ok(row.map(StoredSigningKey::from))
    }

    /// Deletes the keys retired or revoked before `cut_off` (no token they signed can still be
    /// alive); returns how many went.
    pub async fn prune_signing_keys(&self, cut_off: DateTime<Utc>) -> Result<u64, StoreError> {
        on_backend!(self, write, |conn| queries::prune_signing_keys(conn, db_time(cut_off)))
    }
}

impl TryFrom<StoredSigningKey> for jwt_core::StoredKey {
    type Error = jwt_core::Error;

    fn try_from(key: StoredSigningKey) -> Result<Self, Self::Error> {
        let bad =
            |why: String| jwt_core::Error::InvalidKey(format!("stored key {}: {why}", key.kid));
        let algorithm = key.algorithm.parse().map_err(|e: jwt_core::Error| bad(e.to_string()))?;
        let public = match &key.public_jwk {
            Some(jwk) => Some(serde_json::from_str(jwk).map_err(|e| bad(e.to_string()))?),
            None => None,
        };
        Ok(jwt_core::StoredKey {
            record: jwt_core::KeyRecord {
                kid: key.kid,
                algorithm,
                created_at: key.created_at,
                activates_at: key.activates_at,
                retired_at: key.retired_at,
                revoked_at: key.revoked_at,
            },
            material: jwt_core::KeyMaterial::Sealed { private: key.sealed_private_key, public },
        })
    }
}

impl TryFrom<&jwt_core::StoredKey> for StoredSigningKey {
    type Error = jwt_core::Error;

    /// Only a sealed key is stored: the database never holds a private key in the clear.
    fn try_from(key: &jwt_core::StoredKey) -> Result<Self, Self::Error> {
        let record = &key.record;
        let jwt_core::KeyMaterial::Sealed { private, public } = &key.material else {
            return Err(jwt_core::Error::InvalidKey(format!(
                "key {}: the database stores keys sealed under a key-encryption key, never in the \
                 clear",
                record.kid
            )));
        };
        let public_jwk = match public {
            Some(jwk) => Some(
                serde_json::to_string(jwk)
                    .map_err(|e| jwt_core::Error::InvalidKey(e.to_string()))?,
            ),
            None => None,
        };
        Ok(StoredSigningKey {
            kid: record.kid.clone(),
            algorithm: record.algorithm.as_str().to_owned(),
            created_at: record.created_at,
            activates_at: record.activates_at,
            retired_at: record.retired_at,
            revoked_at: record.revoked_at,
            public_jwk,
            sealed_private_key: private.clone(),
        })
    }
}

fn record_of(key: StoredSigningKey) -> Result<jwt_core::KeyRecord, jwt_core::Error> {
    jwt_core::StoredKey::try_from(key).map(|stored| stored.record)
}

/// Sealed keys in the `signing_keys` table, shared by every instance on the database. Key
/// writes are serialised among instances (a transaction-scoped lock on PostgreSQL).
impl jwt_core::SigningKeyStore for Store {
    async fn signing_keys(&self) -> jwt_core::Result<Vec<jwt_core::StoredKey>> {
        Store::signing_keys(self).await?.into_iter().map(jwt_core::StoredKey::try_from).collect()
    }

    async fn add_first_keys(&self, first: &[jwt_core::StoredKey]) -> jwt_core::Result<bool> {
        let rows = first.iter().map(StoredSigningKey::try_from).collect::<Result<Vec<_>, _>>()?;
        Ok(self.add_first_signing_keys(&rows).await?)
    }

    async fn add_key(&self, next: &jwt_core::StoredKey) -> jwt_core::Result<()> {
        Ok(self.rotate_signing_key(&StoredSigningKey::try_from(next)?).await?)
    }

    async fn revoke_key(
        &self,
        kid: &str,
        at: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> jwt_core::Result<Option<jwt_core::KeyRecord>> {
        self.revoke_signing_key(kid, at, until).await?.map(record_of).transpose()
    }
}

/// The keys of OpenID Connect ID tokens in the `signing_keys` table (purpose `id_token`), a
/// lineage of their own beside the signing keys, sealed like them; shared by every instance on
/// the database.
#[derive(Debug, Clone)]
pub struct IdTokenKeyTable(pub std::sync::Arc<Store>);

impl jwt_core::SigningKeyStore for IdTokenKeyTable {
    async fn signing_keys(&self) -> jwt_core::Result<Vec<jwt_core::StoredKey>> {
        self.0.id_token_keys().await?.into_iter().map(jwt_core::StoredKey::try_from).collect()
    }

    async fn add_first_keys(&self, first: &[jwt_core::StoredKey]) -> jwt_core::Result<bool> {
        let rows = first.iter().map(StoredSigningKey::try_from).collect::<Result<Vec<_>, _>>()?;
        Ok(self.0.add_first_keys_of(&rows, ID_TOKEN).await?)
    }

    async fn add_key(&self, next: &jwt_core::StoredKey) -> jwt_core::Result<()> {
        Ok(self.0.rotate_key_of(&StoredSigningKey::try_from(next)?, ID_TOKEN).await?)
    }

    async fn revoke_key(
        &self,
        kid: &str,
        at: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> jwt_core::Result<Option<jwt_core::KeyRecord>> {
        self.0.revoke_signing_key(kid, at, until).await?.map(record_of).transpose()
    }
}
