//! Signing keys on disk. Keys live in `DATA_DIR/keys/`, one file each, named
//! `<created-unix-milliseconds>.<ALG>.key` (PEM for RS256/ES256/EdDSA, base64 for an HS256 secret),
//! mode 0600. The newest key signs, and its algorithm is the deployment's; older keys only
//! verify, until every token they signed has expired. `JWT_SECRET` / `JWT_PRIVATE_KEY_FILE` pin the signing
//! key instead. Instances that share the directory share the keys, and pick up a rotation
//! within seconds.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, TimeDelta, Utc};
use jwt_core::{Algorithm, KeySet, Secret, SigningKey};

use crate::config::{ConfigError, KeyArgs};

/// A key file and what it holds.
#[derive(Debug)]
pub struct KeyFile {
    pub path: PathBuf,
    pub created: DateTime<Utc>,
    pub key: SigningKey,
}

/// What [`load`] found or made.
pub struct LoadedKeys {
    pub keys: KeySet,
    /// Set when a key was generated because none existed: the path, for the log line.
    pub generated: Option<PathBuf>,
}

fn problem(setting: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError { setting, problem: problem.into() }
}

pub fn key_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("keys")
}

/// Every key file in `dir`, oldest first. A file that does not parse is an error naming it.
pub fn read_dir(dir: &Path) -> Result<Vec<KeyFile>, ConfigError> {
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
            let text = fs::read(path).map_err(|e| {
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

/// `wanted` (`JWT_ALGORITHM`, or a pinned key's) refused: the stored keys sign with `stored`.
/// One deployment signs with one algorithm, so that every verifier can check every token.
pub fn algorithm_mismatch(wanted: Algorithm, stored: Algorithm) -> ConfigError {
    problem(
        "JWT_ALGORITHM",
        format!(
            "is {wanted}, but the stored signing key is {stored}, the deployment's algorithm; \
             leave JWT_ALGORITHM unset (or set it to {stored}), or change the algorithm with \
             `jwt-auth keys rotate --algorithm {wanted}`"
        ),
    )
}

/// The algorithm the keys of `dir` sign with: the newest file's.
pub fn newest_algorithm(files: &[KeyFile]) -> Option<Algorithm> {
    files.last().map(|file| file.key.algorithm())
}

/// Checks `JWT_ALGORITHM` (or the pinned key's algorithm) against the newest key file: a
/// different one is refused, before anything signs.
pub fn check_algorithm(args: &KeyArgs, data_dir: &Path) -> Result<(), ConfigError> {
    let requested = args.requested_algorithm()?;
    let pinned = pinned_key(args, requested.unwrap_or(Algorithm::HS256))?;
    let wanted = pinned.as_ref().map(SigningKey::algorithm).or(requested);
    match (wanted, newest_algorithm(&read_dir(&key_dir(data_dir))?)) {
        (Some(wanted), Some(stored)) if wanted != stored => Err(algorithm_mismatch(wanted, stored)),
        _ => Ok(()),
    }
}

/// The key set to serve with: the pinned key or the newest stored key signs (one of
/// `JWT_ALGORITHM`, HS256 when unset, is generated and stored if there is none), and every
/// stored key that may still have live tokens verifies. A key may have live tokens until
/// `max_token_life` after the next key replaced it.
pub fn load(
    args: &KeyArgs,
    data_dir: &Path,
    max_token_life: TimeDelta,
    now: DateTime<Utc>,
) -> Result<LoadedKeys, ConfigError> {
    let first = args.requested_algorithm()?.unwrap_or(Algorithm::HS256);
    let dir = key_dir(data_dir);
    let mut stored = read_dir(&dir)?;
    // A key stopped signing when the next one was made; its tokens die `max_token_life` later.
    // The newest stored key is taken as replaced now (by a pinned key, or still signing).
    let mut replaced_at: Vec<DateTime<Utc>> = stored.iter().skip(1).map(|k| k.created).collect();
    replaced_at.push(now);
    let mut generated = None;
    let active = match pinned_key(args, first)? {
        Some(key) => key,
        None => match stored.pop() {
            Some(newest) => {
                replaced_at.pop();
                newest.key
            }
            None => {
                let key = SigningKey::generate(first)
                    .map_err(|e| problem("JWT_ALGORITHM", e.to_string()))?;
                let path = write_key(&dir, &key, now).map_err(|e| {
                    problem("DATA_DIR", format!("cannot store a new key in {}: {e}", dir.display()))
                })?;
                generated = Some(path);
                key
            }
        },
    };
    let replaced = stored.iter().map(|k| k.key.verifying_key().clone()).zip(replaced_at);
    let keys = KeySet::from_history(active, replaced, max_token_life, now);
    Ok(LoadedKeys { keys, generated })
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // fixtures at the system's time
mod tests {
    use super::*;
    use crate::secret::SecretString;

    fn args() -> KeyArgs {
        KeyArgs { algorithm: Some("EdDSA".into()), ..KeyArgs::default() }
    }

    #[test]
    fn first_load_generates_a_private_file_and_later_loads_reuse_it() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let first = load(&args(), dir.path(), TimeDelta::days(7), now).unwrap();
        let path = first.generated.expect("a key was generated");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let again = load(&args(), dir.path(), TimeDelta::days(7), now).unwrap();
        assert!(again.generated.is_none());
        assert_eq!(again.keys.active().unwrap().kid(), first.keys.active().unwrap().kid());
    }

    #[test]
    fn newest_key_signs_and_old_ones_verify_until_their_tokens_expire() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = Utc::now() - TimeDelta::days(30);
        let old = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let new = SigningKey::generate(Algorithm::EdDSA).unwrap();
        write_key(&key_dir(dir.path()), &old, t0).unwrap();
        write_key(&key_dir(dir.path()), &new, t0 + TimeDelta::days(20)).unwrap();
        let now = t0 + TimeDelta::days(21);
        let loaded = load(&args(), dir.path(), TimeDelta::days(7), now).unwrap();
        assert_eq!(loaded.keys.active().unwrap().kid(), new.kid());
        assert!(loaded.keys.find(old.kid()).is_some(), "replaced a day ago: still verifies");
        let later = t0 + TimeDelta::days(28);
        let loaded = load(&args(), dir.path(), TimeDelta::days(7), later).unwrap();
        assert!(loaded.keys.find(old.kid()).is_none(), "its tokens have all expired");
    }

    #[test]
    fn the_newest_file_decides_the_algorithm_and_another_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = Utc::now() - TimeDelta::days(1);
        let hs = SigningKey::generate(Algorithm::HS256).unwrap();
        let ed = SigningKey::generate(Algorithm::EdDSA).unwrap();
        write_key(&key_dir(dir.path()), &hs, t0).unwrap();
        write_key(&key_dir(dir.path()), &ed, t0 + TimeDelta::hours(1)).unwrap();
        let unset = KeyArgs { algorithm: None, ..args() };
        check_algorithm(&unset, dir.path()).expect("unset follows the keys");
        check_algorithm(&args(), dir.path()).expect("the newest key's algorithm");
        let loaded = load(&unset, dir.path(), TimeDelta::days(7), Utc::now()).unwrap();
        assert_eq!(loaded.keys.active().unwrap().kid(), ed.kid(), "the newest signs");
        assert!(loaded.keys.find(hs.kid()).is_some(), "the older still verifies");
        let other = KeyArgs { algorithm: Some("HS256".into()), ..args() };
        let err = check_algorithm(&other, dir.path()).unwrap_err();
        assert_eq!(err.setting, "JWT_ALGORITHM");
        assert!(err.problem.contains("is HS256, but the stored signing key is EdDSA"), "{err}");
        assert!(err.problem.contains("keys rotate --algorithm HS256"), "{err}");
    }

    #[test]
    fn short_secret_is_refused_naming_the_setting() {
        let args = KeyArgs {
            algorithm: Some("HS256".into()),
            secret: Some(SecretString::new("short")),
            private_key_file: None,
            key_encryption_key: None,
            key_encryption_key_file: None,
            key_encryption_key_previous: None,
            key_encryption_key_previous_file: None,
        };
        let err = pinned_key(&args, Algorithm::HS256).unwrap_err();
        assert_eq!(err.setting, "JWT_SECRET");
        assert!(err.problem.contains("at least 32 bytes"), "{}", err.problem);
    }
}
