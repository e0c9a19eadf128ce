//! The signing-key settings, read once: where the keys live (the database when a
//! key-encryption key is set, `DATA_DIR/keys/` otherwise), the key-encryption key
//! (`KEY_ENCRYPTION_KEY` or `KEY_ENCRYPTION_KEY_FILE`, and a previous one), and a key that
//! `JWT_SECRET` or `JWT_PRIVATE_KEY_FILE` pins. What is done with the keys is the service's
//! ([`Keys`]).

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use jwt_auth_service::id_token_keys::IdTokenKeys;
use jwt_auth_service::keys::Keys;
use jwt_auth_store::Store;
use jwt_core::{Algorithm, KeyEncryptionKey, Secret, SigningKey};

use crate::config::{ConfigError, KeyArgs};

fn problem(setting: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError { setting, problem: problem.into() }
}

/// The key settings, parsed once: a key-encryption key if one is set (the keys then live in
/// the database), a pinned key, and `JWT_ALGORITHM`.
pub struct KeySettings {
    kek: Option<KeyEncryptionKey>,
    pinned: Option<SigningKey>,
    requested: Option<Algorithm>,
}

impl fmt::Debug for KeySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySettings")
            .field("in_database", &self.kek.is_some())
            .field("pinned", &self.pinned.as_ref().map(SigningKey::kid))
            .field("requested", &self.requested)
            .finish()
    }
}

impl KeySettings {
    /// The settings of `args` for a deployment on `database_url`. PostgreSQL (several
    /// instances) requires a key-encryption key unless `JWT_SECRET` / `JWT_PRIVATE_KEY_FILE`
    /// pins the signing key.
    pub fn read(args: &KeyArgs, database_url: &str) -> Result<Self, ConfigError> {
        let requested = args.requested_algorithm()?;
        let pinned = pinned_key(args, requested.unwrap_or(Algorithm::HS256))?;
        let kek = key_encryption_key(args)?;
        if kek.is_none() && is_postgres(database_url) && pinned.is_none() {
            return Err(problem(
                "KEY_ENCRYPTION_KEY",
                "is required with PostgreSQL: signing keys are stored in the database, encrypted \
                 under it (32 random bytes, base64: `openssl rand -base64 32`; or \
                 KEY_ENCRYPTION_KEY_FILE)",
            ));
        }
        Ok(Self { kek, pinned, requested })
    }

    /// Whether the keys live in the database.
    #[cfg(test)]
    pub fn in_database(&self) -> bool {
        self.kek.is_some()
    }

    /// Whether a key is pinned.
    #[cfg(test)]
    pub fn is_pinned(&self) -> bool {
        self.pinned.is_some()
    }

    /// The keys of OpenID Connect ID tokens beside an HS256 secret, read from `args` again:
    /// in the database under the key-encryption key, or under a key derived from a pinned
    /// HS256 secret (which every instance shares); otherwise in `DATA_DIR/id-token-keys/`.
    /// Replaced keys verify for `retention`.
    pub fn id_token_keys(
        &self,
        args: &KeyArgs,
        store: Arc<Store>,
        data_dir: &Path,
        retention: chrono::TimeDelta,
    ) -> Result<IdTokenKeys, ConfigError> {
        let sealing =
            match (key_encryption_key(args)?, self.pinned.as_ref().and_then(SigningKey::secret)) {
                (Some(kek), _) => Some(kek),
                (None, Some(secret)) => Some(
                    IdTokenKeys::sealing_key_of(secret)
                        .map_err(|e| problem("JWT_SECRET", e.to_string()))?,
                ),
                (None, None) => None,
            };
        Ok(match sealing {
            Some(kek) => IdTokenKeys::in_database(store, kek, retention),
            None => IdTokenKeys::in_directory(data_dir, retention),
        })
    }

    /// The keys service over `store` and `data_dir`.
    pub fn keys(self, store: Arc<Store>, data_dir: &Path) -> Keys {
        let keys = match self.kek {
            Some(kek) => Keys::in_database(store, kek, data_dir),
            None => Keys::in_directory(store, data_dir),
        };
        keys.pinned(self.pinned).wanting(self.requested)
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
    (value_setting, value): (&'static str, &Option<jwt_auth_service::secret::SecretString>),
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

/// Whether `database_url` is PostgreSQL's.
pub fn is_postgres(database_url: &str) -> bool {
    database_url.starts_with("postgres:") || database_url.starts_with("postgresql:")
}

/// The pinned key of `JWT_SECRET` or `JWT_PRIVATE_KEY_FILE`, if one is set.
pub fn pinned_key(args: &KeyArgs, alg: Algorithm) -> Result<Option<SigningKey>, ConfigError> {
    match (alg.is_symmetric(), &args.secret, &args.private_key_file) {
        (true, Some(secret), _) => {
            let secret = Secret::new(secret.expose().as_bytes().to_vec()).map_err(|e| match e {
                jwt_core::Error::WeakSecret { min, len } => problem(
                    "JWT_SECRET",
                    format!("must be at least {min} bytes, got {len}; refusing to start"),
                ),
                other => problem("JWT_SECRET", other.to_string()),
            })?;
            SigningKey::from_secret(secret)
                .map(Some)
                .map_err(|e| problem("JWT_SECRET", e.to_string()))
        }
        (true, None, Some(_)) => Err(problem(
            "JWT_PRIVATE_KEY_FILE",
            "is for RS256, ES256 and EdDSA; HS256 takes JWT_SECRET",
        )),
        (false, _, Some(path)) => {
            let text = std::fs::read(path).map_err(|e| {
                problem("JWT_PRIVATE_KEY_FILE", format!("cannot read {}: {e}", path.display()))
            })?;
            SigningKey::from_pem(alg, &text)
                .map(Some)
                .map_err(|e| problem("JWT_PRIVATE_KEY_FILE", format!("{}: {e}", path.display())))
        }
        (false, Some(_), None) => {
            Err(problem("JWT_SECRET", format!("is for HS256, but JWT_ALGORITHM is {alg}")))
        }
        (_, None, None) => Ok(None),
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use jwt_auth_service::secret::SecretString;

    #[test]
    fn postgres_without_a_kek_is_refused_naming_the_setting_unless_a_key_is_pinned() {
        let args = KeyArgs { algorithm: Some("EdDSA".into()), ..KeyArgs::default() };
        let err = KeySettings::read(&args, "postgres://db/auth").unwrap_err();
        assert_eq!(err.setting, "KEY_ENCRYPTION_KEY");
        let pinned = KeyArgs {
            algorithm: Some("HS256".into()),
            secret: Some(SecretString::new("a secret of at least thirty-two bytes")),
            ..KeyArgs::default()
        };
        let settings = KeySettings::read(&pinned, "postgres://db/auth").expect("pinned");
        assert!(settings.is_pinned() && !settings.in_database());
        let sqlite = KeySettings::read(&args, "sqlite://x.db").expect("files");
        assert!(!sqlite.in_database());
        let short =
            KeyArgs { key_encryption_key: Some(SecretString::new("c2hvcnQ=")), ..args.clone() };
        let err = KeySettings::read(&short, "sqlite://x.db").unwrap_err();
        assert_eq!(err.setting, "KEY_ENCRYPTION_KEY");
        let kek = STANDARD_NO_PAD_TEXT;
        let good = KeyArgs { key_encryption_key: Some(SecretString::new(kek)), ..args };
        let settings = KeySettings::read(&good, "sqlite://x.db").expect("a KEK");
        assert!(settings.in_database());
        assert!(!format!("{good:?} {settings:?}").contains(kek), "the KEK never shows in Debug");
    }

    #[test]
    fn short_secret_is_refused_naming_the_setting() {
        let args = KeyArgs {
            algorithm: Some("HS256".into()),
            secret: Some(SecretString::new("short")),
            ..KeyArgs::default()
        };
        let err = pinned_key(&args, Algorithm::HS256).unwrap_err();
        assert_eq!(err.setting, "JWT_SECRET");
        assert!(err.problem.contains("at least 32 bytes"), "{}", err.problem);
    }

    const STANDARD_NO_PAD_TEXT: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY";
}
