//! `keys rotate|list|revoke|rekey`: the signing keys through the service's `Keys`, whether
//! they live in the database or in `DATA_DIR/keys/`.

use chrono::{DateTime, Utc};
use clap::Subcommand;
use jwt_auth_service::keys::{Keys, ListedKey};
use jwt_core::{Algorithm, Rotation};

use super::context::{given_lifetimes, now};
use super::key_command::open_keys;
use super::rekey::rekey;
use crate::config::{KeyArgs, StorageArgs, parse_algorithm};
use crate::failure::CliError;
use crate::key_settings::KeySettings;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Re-seal every stored private key under a new key-encryption key, in one transaction
    /// (the keys themselves, their kids and their tokens do not change). Needs the current
    /// key-encryption key (KEY_ENCRYPTION_KEY, with KEY_ENCRYPTION_KEY_PREVIOUS if a rekey
    /// was left half done). Running instances keep the keys they hold; give them
    /// KEY_ENCRYPTION_KEY=NEW and KEY_ENCRYPTION_KEY_PREVIOUS=OLD at their next restart,
    /// then drop the previous one.
    #[command(group(clap::ArgGroup::new("new_kek").required(true).args(["new_key_encryption_key_file", "new_key_encryption_key_stdin"])))]
    Rekey {
        /// A file holding the new key-encryption key (base64, 32 bytes: `openssl rand -base64
        /// 32`).
        #[arg(long = "new-key-encryption-key-file", value_name = "FILE")]
        new_key_encryption_key_file: Option<std::path::PathBuf>,
        /// Read the new key-encryption key (base64) from standard input instead.
        #[arg(long = "new-key-encryption-key-stdin")]
        new_key_encryption_key_stdin: bool,
        #[command(flatten)]
        keys: KeyArgs,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Make a new signing key, of the deployment's algorithm (the newest stored key's) unless
    /// --algorithm changes it. With the keys in the database (KEY_ENCRYPTION_KEY set), it is
    /// published at once and signs 61 s later, once every cached JWK set (max-age 60 s) has
    /// expired; the previous key signs until then. Tokens of the old key stay valid until
    /// they expire.
    Rotate {
        /// Sign with the new key at once (a compromised key): verifiers holding a cached JWK
        /// set refuse the new tokens until they fetch it again.
        #[arg(long)]
        now: bool,
        /// Change the deployment's algorithm (`HS256`, `RS256`, `ES256` or `EdDSA`): the new
        /// key is of this one, published ahead like any rotation; once it signs, every
        /// instance signs with it, and JWT_ALGORITHM, if set, must say it at their next start.
        #[arg(long = "algorithm", id = "new_algorithm", value_name = "ALGORITHM")]
        algorithm: Option<String>,
        #[command(flatten)]
        keys: KeyArgs,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// List the stored keys: kid, algorithm, state (pending, active, retired, revoked),
    /// created.
    List {
        /// Print a JSON array of objects instead of lines.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        keys: KeyArgs,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Revoke a stored key: every server refuses its tokens within a second and drops it from
    /// the JWK set. The key that signs now cannot be revoked: rotate first (`--now` for a
    /// compromised key).
    Revoke {
        /// The key id, as `keys list` shows it (it may begin with `-`).
        #[arg(allow_hyphen_values = true)]
        kid: String,
        /// The servers' access-token lifetime, if longer than any they recorded in the
        /// database: with the refresh-token lifetime, how long the key's entry in the
        /// revocation feed matters (the longest is taken; 30m when no server ever recorded
        /// one).
        #[arg(long = "token-expiry", env = "TOKEN_EXPIRY")]
        token_expiry: Option<String>,
        /// The servers' refresh-token lifetime, likewise (7d when none was recorded).
        #[arg(long = "refresh-token-expiry", env = "REFRESH_TOKEN_EXPIRY")]
        refresh_token_expiry: Option<String>,
        #[command(flatten)]
        keys: KeyArgs,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

pub(super) async fn run(command: KeysCommand) -> Result<(), CliError> {
    match command {
        KeysCommand::Rotate { now, algorithm, keys, storage } => {
            let algorithm = algorithm
                .as_deref()
                .map(|value| {
                    parse_algorithm(value)
                        .map_err(|e| CliError::Usage(format!("--algorithm {}", e.problem)))
                })
                .transpose()?;
            rotate(&keys, &storage, now, algorithm).await
        }
        KeysCommand::Rekey { new_key_encryption_key_file, keys, storage, .. } => {
            rekey(new_key_encryption_key_file.as_deref(), &keys, &storage).await
        }
        KeysCommand::List { json, keys, storage } => list(&keys, &storage, json).await,
        KeysCommand::Revoke { kid, token_expiry, refresh_token_expiry, keys, storage } => {
            let given = given_lifetimes(token_expiry, refresh_token_expiry)?;
            revoke(&kid, given, &keys, &storage).await
        }
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

async fn rotate(
    args: &KeyArgs,
    storage: &StorageArgs,
    at_once: bool,
    algorithm: Option<Algorithm>,
) -> Result<(), CliError> {
    if args.secret.is_some() || args.private_key_file.is_some() {
        return Err(CliError::Usage(
            "JWT_SECRET or JWT_PRIVATE_KEY_FILE pins the signing key; unset it to rotate stored keys".into(),
        ));
    }
    let (keys, store) = open_keys(args, storage, algorithm.is_some()).await?;
    let rotation = keys.rotate_by("jwt-auth keys rotate", algorithm, at_once, now()).await?;
    println!("{}", rotated(&keys, &rotation, at_once));
    // The keys of ID tokens beside an HS256 secret, if the servers made any, turn too.
    let settings = KeySettings::read(args, storage.database_url.expose())?;
    let id_keys =
        settings.id_token_keys(args, store, &storage.data_dir, chrono::TimeDelta::zero())?;
    if id_keys.any().await? {
        let rotation = id_keys.rotate(now()).await?;
        println!(
            "new RS256 key of ID tokens {}: published now, signs from {}",
            rotation.record.kid,
            time(rotation.record.activates_at)
        );
    }
    Ok(())
}

/// What a rotation did, in one line: where the new key is and when it signs.
fn rotated(keys: &Keys, rotation: &Rotation, at_once: bool) -> String {
    let (kid, alg) = (&rotation.record.kid, rotation.record.algorithm);
    if !keys.in_the_database() {
        let change = match rotation.changes_from {
            Some(from) => format!(" (the algorithm changes from {from})"),
            None => String::new(),
        };
        let path = keys.key_dir().path_of(&rotation.record);
        return format!(
            "new {alg} signing key {kid} in {}{change}; running servers sharing this directory \
             switch to it within seconds",
            path.display()
        );
    }
    let change = match rotation.changes_from {
        Some(from) => format!("; the deployment's algorithm changes from {from} to {alg}"),
        None => String::new(),
    };
    if rotation.replaces && !at_once {
        return format!(
            "new {alg} signing key {kid}: published now, signs from {} (once every cached JWK set \
             has expired); the previous key signs until then{change}",
            time(rotation.record.activates_at)
        );
    }
    let caveat = match rotation.replaces {
        true => "; verifiers holding a cached JWK set refuse its tokens until they fetch it again",
        false => "",
    };
    format!("new {alg} signing key {kid}: published and signing now{caveat}{change}")
}

async fn list(args: &KeyArgs, storage: &StorageArgs, json: bool) -> Result<(), CliError> {
    let (keys, _) = open_keys(args, storage, false).await?;
    let listed = keys.stored(now()).await?;
    let in_files = !keys.in_the_database();
    if json {
        let view = |key: &ListedKey| key_json(key, in_files);
        println!("{}", serde_json::Value::from(listed.iter().map(view).collect::<Vec<_>>()));
        return Ok(());
    }
    match (listed.is_empty(), in_files) {
        (true, true) => println!("no stored keys in {}", keys.key_dir().path().display()),
        (true, false) => println!("no keys stored in the database yet"),
        _ => {}
    }
    for key in &listed {
        println!("{}", key_line(key, in_files));
    }
    Ok(())
}

/// The file of a key kept in `DATA_DIR/keys/`.
fn path(key: &ListedKey) -> Option<String> {
    key.path.as_ref().map(|p| p.display().to_string())
}

/// A key as `keys list --json` prints it: with its file, or its state and activation.
fn key_json(key: &ListedKey, in_files: bool) -> serde_json::Value {
    match in_files {
        true => serde_json::json!({
            "kid": key.record.kid,
            "algorithm": key.record.algorithm.as_str(),
            "created": time(key.record.created_at),
            "path": path(key),
        }),
        false => serde_json::json!({
            "kid": key.record.kid,
            "algorithm": key.record.algorithm.as_str(),
            "state": key.state.to_string(),
            "created": time(key.record.created_at),
            "signs_from": time(key.record.activates_at),
        }),
    }
}

/// A key as `keys list` prints it, in columns.
fn key_line(key: &ListedKey, in_files: bool) -> String {
    let (record, state) = (&key.record, key.state);
    match in_files {
        true => format!(
            "{}  {}  {}  {}",
            record.kid,
            record.algorithm,
            time(record.created_at),
            path(key).unwrap_or_default()
        ),
        false => format!(
            "{}  {}  {state}  created {}  signs from {}",
            record.kid,
            record.algorithm,
            time(record.created_at),
            time(record.activates_at)
        ),
    }
}

async fn revoke(
    kid: &str,
    given: (Option<chrono::TimeDelta>, Option<chrono::TimeDelta>),
    args: &KeyArgs,
    storage: &StorageArgs,
) -> Result<(), CliError> {
    let (keys, _) = open_keys(args, storage, false).await?;
    let revoked = keys.revoke_by("jwt-auth keys revoke", kid, given, now()).await?;
    println!(
        "revoked key {kid} (at {}): running servers refuse its tokens within a second and drop \
         it from the JWK set",
        revoked.revoked_at.map(|t| t.to_rfc3339()).unwrap_or_default()
    );
    Ok(())
}
