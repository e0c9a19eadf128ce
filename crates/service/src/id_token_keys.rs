//! The keys of OpenID Connect ID tokens when the deployment signs with an HS256 secret, which
//! no client may hold (HTTP contract v3: "an RS256 key that the server keeps, rotates and
//! publishes beside the HS256 secret"). They are a lineage of their own, with the lifecycle of
//! the signing keys ([`KeyRing`]): in the database, sealed under the key-encryption key (or,
//! when an HS256 secret is pinned instead, under a key derived from that secret, which every
//! instance shares); otherwise in `DATA_DIR/id-token-keys/`.

use std::sync::Arc;

use aws_lc_rs::hkdf;
use chrono::{DateTime, TimeDelta, Utc};
use jwt_auth_store::{IdTokenKeyTable, Store};
use jwt_core::{
    Algorithm, KEK_BYTES, KeyEncryptionKey, KeyRecord, KeyRing, KeySet, Rotation, SigningKeyStore,
    StoredKey,
};

use crate::key_files::KeyDir;
use crate::keys::KeyError;

/// The algorithm of ID-token keys.
pub const ID_TOKEN_ALGORITHM: Algorithm = Algorithm::RS256;

/// Where the keys of ID tokens live.
#[derive(Debug)]
pub enum IdKeyStorage {
    /// `DATA_DIR/id-token-keys/`.
    Directory(KeyDir),
    /// The `signing_keys` table, purpose `id_token`.
    Database(IdTokenKeyTable),
}

impl SigningKeyStore for IdKeyStorage {
    async fn signing_keys(&self) -> jwt_core::Result<Vec<StoredKey>> {
        match self {
            IdKeyStorage::Directory(dir) => dir.signing_keys().await,
            IdKeyStorage::Database(table) => table.signing_keys().await,
        }
    }

    async fn add_first_keys(&self, first: &[StoredKey]) -> jwt_core::Result<bool> {
        match self {
            IdKeyStorage::Directory(dir) => dir.add_first_keys(first).await,
            IdKeyStorage::Database(table) => table.add_first_keys(first).await,
        }
    }

    async fn add_key(&self, next: &StoredKey) -> jwt_core::Result<()> {
        match self {
            IdKeyStorage::Directory(dir) => dir.add_key(next).await,
            IdKeyStorage::Database(table) => table.add_key(next).await,
        }
    }

    async fn revoke_key(
        &self,
        kid: &str,
        at: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> jwt_core::Result<Option<KeyRecord>> {
        match self {
            IdKeyStorage::Directory(dir) => dir.revoke_key(kid, at, until).await,
            IdKeyStorage::Database(table) => table.revoke_key(kid, at, until).await,
        }
    }

    fn publishes_ahead(&self) -> bool {
        matches!(self, IdKeyStorage::Database(_))
    }
}

/// The keys of ID tokens.
#[derive(Debug)]
pub struct IdTokenKeys {
    ring: KeyRing<IdKeyStorage>,
}

impl IdTokenKeys {
    /// Keys in the database, sealed under `kek`; replaced keys verify for `retention`.
    pub fn in_database(store: Arc<Store>, kek: KeyEncryptionKey, retention: TimeDelta) -> Self {
        let storage = IdKeyStorage::Database(IdTokenKeyTable(store));
        let ring =
            KeyRing::new(storage, retention).sealed_under(kek).first_algorithm(ID_TOKEN_ALGORITHM);
        Self { ring }
    }

    /// Keys in `DATA_DIR/id-token-keys/`.
    pub fn in_directory(data_dir: &std::path::Path, retention: TimeDelta) -> Self {
        let storage = IdKeyStorage::Directory(KeyDir::of_id_tokens(data_dir));
        let ring = KeyRing::new(storage, retention).first_algorithm(ID_TOKEN_ALGORITHM);
        Self { ring }
    }

    /// The key that seals ID-token keys in the database when an HS256 `secret` is pinned
    /// instead of a key-encryption key: HKDF-SHA256 of the secret, so that every instance
    /// with the secret opens them, and nobody without it.
    ///
    /// ```
    /// use jwt_auth_service::id_token_keys::IdTokenKeys;
    /// let a = IdTokenKeys::sealing_key_of(&[7; 32]);
    /// assert!(a.is_ok());
    /// ```
    pub fn sealing_key_of(secret: &[u8]) -> Result<KeyEncryptionKey, KeyError> {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"jwt-auth id-token keys");
        let prk = salt.extract(secret);
        let mut bytes = zeroize::Zeroizing::new([0u8; KEK_BYTES]);
        prk.expand(&[b"seal"], hkdf::HKDF_SHA256)
            .and_then(|okm| okm.fill(&mut bytes[..]))
            .map_err(|_| KeyError::Core(jwt_core::Error::InvalidConfig("HKDF failed".into())))?;
        Ok(KeyEncryptionKey::new(&bytes[..])?)
    }

    /// The keys to start with: a first key is made (signing at once) if none is stored.
    pub async fn start(&self, now: DateTime<Utc>) -> Result<KeySet, KeyError> {
        if self.ring.store().signing_keys().await?.is_empty() {
            let rotation = self.ring.rotate(Some(ID_TOKEN_ALGORITHM), true, now).await?;
            tracing::info!(kid = %rotation.record.kid, "made the first RS256 key of ID tokens (the signing key is an HMAC secret, which no client may hold)");
        }
        self.load(now).await
    }

    /// The key set at `now`, for the start and every reload.
    pub async fn load(&self, now: DateTime<Utc>) -> Result<KeySet, KeyError> {
        Ok(self.ring.key_set(now).await?)
    }

    /// Stores a new key, published ahead in the database (see [`KeyRing::rotate`]).
    pub async fn rotate(&self, now: DateTime<Utc>) -> Result<Rotation, KeyError> {
        Ok(self.ring.rotate(Some(ID_TOKEN_ALGORITHM), false, now).await?)
    }

    /// Whether any key is stored.
    pub async fn any(&self) -> Result<bool, KeyError> {
        Ok(!self.ring.store().signing_keys().await?.is_empty())
    }
}
