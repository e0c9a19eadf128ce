//! Signing keys on disk, for one process without a database to share keys through. Keys live
//! in `DATA_DIR/keys/`, one file each, named `<created-unix-milliseconds>.<ALG>.key` (PEM for
//! RS256/ES256/EdDSA, base64 for an HS256 secret), mode 0600. The newest key signs, and its
//! algorithm is the deployment's; older keys only verify, until every token they signed has
//! expired. Instances that share the directory share the keys, and pick up a rotation within
//! seconds.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use jwt_core::{Algorithm, KeyMaterial, KeyRecord, Secret, SigningKey, SigningKeyStore, StoredKey};

use crate::error::ConfigError;

/// A key file and what it holds.
#[derive(Debug)]
pub struct KeyFile {
    /// Where it is.
    pub path: PathBuf,
    /// When it was made (from its name).
    pub created: DateTime<Utc>,
    /// The key.
    pub key: SigningKey,
}

fn problem(setting: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::new(setting, problem)
}

/// `DATA_DIR/keys/`: signing keys in files, a [`SigningKeyStore`] whose newest key signs at once.
#[derive(Debug, Clone)]
pub struct KeyDir {
    dir: PathBuf,
}

impl KeyDir {
    /// The key directory of `data_dir`.
    pub fn of(data_dir: &Path) -> Self {
        Self { dir: data_dir.join("keys") }
    }

    /// The directory of the keys of OpenID Connect ID tokens of `data_dir`
    /// (`DATA_DIR/id-token-keys/`), kept beside an HS256 secret in `DATA_DIR/keys/`.
    pub fn of_id_tokens(data_dir: &Path) -> Self {
        Self { dir: data_dir.join("id-token-keys") }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The file of the key `record` describes.
    pub fn path_of(&self, record: &KeyRecord) -> PathBuf {
        self.dir.join(format!("{}.{}.key", record.created_at.timestamp_millis(), record.algorithm))
    }

    /// Every key file, oldest first. A file that does not parse is an error naming it.
    pub fn read(&self) -> Result<Vec<KeyFile>, ConfigError> {
        read_dir(&self.dir)
    }

    /// Writes a new key file with mode 0600 (see [`write_key`]).
    pub fn write(&self, key: &SigningKey, created: DateTime<Utc>) -> std::io::Result<PathBuf> {
        write_key(&self.dir, key, created)
    }
}

/// The keys of the directory: each replaced when the next one was made, the newest signing.
impl SigningKeyStore for KeyDir {
    async fn signing_keys(&self) -> jwt_core::Result<Vec<StoredKey>> {
        let files = self.read().map_err(|e| jwt_core::Error::InvalidConfig(e.to_string()))?;
        let next: Vec<_> = files.iter().skip(1).map(|f| Some(f.created)).chain([None]).collect();
        Ok(files
            .into_iter()
            .zip(next)
            .map(|(file, retired_at)| StoredKey {
                record: KeyRecord {
                    kid: file.key.kid().to_owned(),
                    algorithm: file.key.algorithm(),
                    created_at: file.created,
                    activates_at: file.created,
                    retired_at,
                    revoked_at: None,
                },
                material: KeyMaterial::Clear(file.key),
            })
            .collect())
    }

    async fn add_first_keys(&self, first: &[StoredKey]) -> jwt_core::Result<bool> {
        if !self.read().map_err(|e| jwt_core::Error::InvalidConfig(e.to_string()))?.is_empty() {
            return Ok(false);
        }
        for key in first {
            self.add_key(key).await?;
        }
        Ok(true)
    }

    async fn add_key(&self, next: &StoredKey) -> jwt_core::Result<()> {
        let KeyMaterial::Clear(key) = &next.material else {
            return Err(jwt_core::Error::InvalidKey("key files hold keys in the clear".into()));
        };
        self.write(key, next.record.created_at).map(drop).map_err(|e| {
            jwt_core::Error::InvalidConfig(format!(
                "DATA_DIR: cannot store a new key in {}: {e}",
                self.dir.display()
            ))
        })
    }

    async fn revoke_key(
        &self,
        _kid: &str,
        _at: DateTime<Utc>,
        _until: DateTime<Utc>,
    ) -> jwt_core::Result<Option<KeyRecord>> {
        Err(jwt_core::Error::InvalidConfig(
            "a key in DATA_DIR/keys/ is revoked by deleting its file".into(),
        ))
    }

    fn publishes_ahead(&self) -> bool {
        false
    }
}

/// Every key file in `dir`, oldest first. A file that does not parse is an error naming it.
fn read_dir(dir: &Path) -> Result<Vec<KeyFile>, ConfigError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(problem("DATA_DIR", format!("cannot read {}: {e}", dir.display()))),
    };
    let mut keys = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| problem("DATA_DIR", e.to_string()))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        let mut parts = name.split('.');
        let (Some(created), Some(alg), Some("key"), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let bad = |why: String| problem("DATA_DIR", format!("key file {}: {why}", path.display()));
        let created = created
            .parse::<i64>()
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .ok_or_else(|| bad("the name does not start with a time".into()))?;
        let alg: Algorithm = alg.parse().map_err(|e: jwt_core::Error| bad(e.to_string()))?;
        let text = fs::read(&path).map_err(|e| bad(e.to_string()))?;
        let key = parse_key(alg, &text).map_err(|e| bad(e.to_string()))?;
        keys.push(KeyFile { path, created, key });
    }
    keys.sort_by_key(|k| k.created);
    Ok(keys)
}

fn parse_key(alg: Algorithm, text: &[u8]) -> Result<SigningKey, jwt_core::Error> {
    if alg.is_symmetric() {
        let decoded = STANDARD
            .decode(text.trim_ascii())
            .map_err(|_| jwt_core::Error::InvalidKey("the secret is not base64".into()))?;
        SigningKey::from_secret(Secret::new(decoded)?)
    } else {
        SigningKey::from_pem(alg, text)
    }
}

/// Writes a new key file with mode 0600 (created with that mode, never readable by others).
pub fn write_key(dir: &Path, key: &SigningKey, created: DateTime<Utc>) -> std::io::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    let path = dir.join(format!("{}.{}.key", created.timestamp_millis(), key.algorithm()));
    let contents: zeroize::Zeroizing<String> = match key.secret() {
        Some(secret) => zeroize::Zeroizing::new(STANDARD.encode(secret)),
        None => key.to_pem().map_err(std::io::Error::other)?,
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    Ok(path)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // fixtures at the system's time
mod tests {
    use chrono::TimeDelta;
    use jwt_core::{KeyRing, KeySet};

    use super::*;

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(future)
    }

    #[test]
    fn a_rotation_writes_a_private_file_that_signs_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::new(KeyDir::of(dir.path()), TimeDelta::days(7))
            .first_algorithm(Algorithm::EdDSA);
        let now = Utc::now();
        let first = block_on(ring.rotate(None, false, now)).unwrap().record;
        let path = KeyDir::of(dir.path()).path_of(&first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let later = now + TimeDelta::milliseconds(5);
        let next = block_on(ring.rotate(None, false, later)).unwrap();
        assert_eq!(next.record.activates_at, later, "files keep no activation time");
        let keys = block_on(ring.key_set(later)).unwrap();
        assert_eq!(keys.active().unwrap().kid(), next.record.kid);
        assert!(keys.find(&first.kid).is_some());
    }

    #[test]
    fn newest_key_signs_and_old_ones_verify_until_their_tokens_expire() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeyDir::of(dir.path());
        let t0 = Utc::now() - TimeDelta::days(30);
        let old = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let new = SigningKey::generate(Algorithm::EdDSA).unwrap();
        keys.write(&old, t0).unwrap();
        keys.write(&new, t0 + TimeDelta::days(20)).unwrap();
        let ring = KeyRing::new(keys, KeySet::retention(TimeDelta::days(1), TimeDelta::days(6)));
        let set = block_on(ring.key_set(t0 + TimeDelta::days(21))).unwrap();
        assert_eq!(set.active().unwrap().kid(), new.kid());
        assert!(set.find(old.kid()).is_some(), "replaced a day ago: still verifies");
        let set = block_on(ring.key_set(t0 + TimeDelta::days(28))).unwrap();
        assert!(set.find(old.kid()).is_none(), "its tokens have all expired");
    }

    #[test]
    fn a_file_that_does_not_parse_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeyDir::of(dir.path());
        fs::create_dir_all(keys.path()).unwrap();
        fs::write(keys.path().join("1700000000000.EdDSA.key"), "not a key").unwrap();
        let err = keys.read().unwrap_err();
        assert_eq!(err.setting, "DATA_DIR");
        assert!(err.problem.contains("1700000000000.EdDSA.key"), "{err}");
    }
}
