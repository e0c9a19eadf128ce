//! The `jwt-auth` command line: `serve`, `migrate`, `user add|import`, `keys rotate|list|revoke`,
//! `clients add|list|remove`, `sessions revoke`, and `completions` and `man`, generated from the
//! same definitions. Each command parses its settings once, then runs; each that changes data
//! says what it did in one line.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use clap::{CommandFactory, Parser, Subcommand};
use jwt_auth_store::{ExistingEmails, Store};
use jwt_core::{Clock, SystemClock};

use crate::config::{ConfigError, KeyArgs, ServeArgs, StorageArgs, parse_algorithm};
use crate::database::open_store;
pub use crate::failure::CliError;
use crate::key_settings::{self, KeySettings};
use crate::passwords::{MAX_PASSWORD_BYTES, check_new_password};
use crate::startup::Application;
use jwt_auth_service::import;
use jwt_auth_service::keys::{Keys, ListedKey};
use jwt_auth_service::page::{MAX_OFFSET, Page};
use jwt_auth_service::users::{self, CutOff, ImportReport, Users};
use jwt_auth_service::{audit, clients};

/// The time a command acts at: the system's, read through its clock.
fn now() -> DateTime<Utc> {
    SystemClock.now()
}

/// JWT authentication server.
#[derive(Debug, Parser)]
#[command(name = "jwt-auth", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (applies pending migrations first).
    Serve(Box<ServeArgs>),
    /// Apply the database migrations.
    Migrate(StorageArgs),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Incident response on sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Manage service clients (OAuth client credentials).
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Read the security-event trail, newest first: logins and failures, refreshes, reuse
    /// detections, logouts, revocations and administrators' changes, with address and user
    /// agent.
    Events {
        /// Only this user's events (a user id).
        #[arg(long)]
        user: Option<String>,
        /// Only events of this kind (login_succeeded, login_failed, refresh_reuse_detected,
        /// logout, logout_all, admin_revoke, user_created, user_updated, token_revoked,
        /// tokens_voided, key_rotated, key_revoked, users_imported).
        #[arg(long)]
        kind: Option<String>,
        /// At most this many (1 to 10000).
        #[arg(long, default_value = "50")]
        limit: u32,
        /// Print one JSON object a line instead of columns.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Print a completion script for SHELL to standard output, e.g.
    /// `jwt-auth completions bash > /etc/bash_completion.d/jwt-auth`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to standard output (`jwt-auth man | man -l -`), or with
    /// `--dir` write one page per command into DIR (jwt-auth.1, jwt-auth-serve.1, …).
    Man {
        /// The directory to write the pages into (created if missing).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Register a service client; prints its client_id and client_secret once (only a
    /// digest of the secret is stored).
    Add {
        /// A name for people, unique.
        name: String,
        /// A role of its tokens (repeat for several; `service` when none is given).
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Print one JSON object instead of two lines.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// List the service clients: id, name, roles, created.
    List {
        /// Print a JSON array of objects instead of lines.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Remove a service client: its tokens are refused everywhere within a second.
    Remove {
        /// The client's id, as `clients list` shows it, or its name (names are unique).
        #[arg(value_name = "CLIENT")]
        client: String,
        /// The servers' access-token lifetime, if longer than any they recorded in the
        /// database: how long the revocation matters (the longest is taken; 30m when no
        /// server ever recorded one).
        #[arg(long = "token-expiry", env = "TOKEN_EXPIRY")]
        token_expiry: Option<String>,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input.
    Add {
        /// The user's email address, which is also the name they log in with.
        #[arg(long)]
        email: String,
        /// Read the password from standard input (required: passwords never go on the
        /// command line).
        #[arg(long = "password-stdin", required = true)]
        password_stdin: bool,
        /// Give the user the `admin` role.
        #[arg(long)]
        admin: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Set a user's password, read from standard input, and end every session of theirs:
    /// their tokens are refused everywhere within seconds, and they log in with the new one.
    SetPassword {
        /// The user: an id, or the email they log in with.
        user: String,
        /// Read the password from standard input (required: passwords never go on the
        /// command line).
        #[arg(long = "password-stdin", required = true)]
        password_stdin: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Disable a user: their sessions end, and their logins fail as a wrong password does.
    Disable {
        /// The user: an id, or the email they log in with.
        user: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Enable a disabled user again: they can log in.
    Enable {
        /// The user: an id, or the email they log in with.
        user: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Delete a user: every session and token of theirs is revoked everywhere within seconds,
    /// then the account is gone (the security-event trail keeps what it recorded).
    Delete {
        /// The user: an id, or the email they log in with.
        user: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// List users, oldest first: id, email, roles, disabled, created.
    List {
        /// Only the users whose email contains this text, without regard to case.
        #[arg(long)]
        email: Option<String>,
        /// At most this many (1 to 1000).
        #[arg(long, default_value = "100")]
        limit: u32,
        /// Skip this many first.
        #[arg(long, default_value = "0")]
        offset: u64,
        /// Print one JSON object a line instead.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Create users from FILE (`-` for standard input): one JSON object a line,
    /// `{"email", "password_hash", "roles"?}`, the hash made by another system (argon2, bcrypt,
    /// scrypt, PBKDF2, Django, passlib and Werkzeug forms; see docs/migrating-users.md). All or
    /// nothing: a bad line fails the import with its number, and so does an email that is
    /// registered already, unless --skip-existing. Each hash is replaced by an argon2id hash at
    /// the user's first login.
    Import {
        /// The JSON-lines file, or `-` for standard input.
        file: std::path::PathBuf,
        /// Skip (and count) the users whose email is registered already, instead of failing
        /// the import.
        #[arg(long)]
        skip_existing: bool,
        /// Print one JSON object instead of a line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

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

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// Void every token issued before TIME, for one user or for everyone. Running servers
    /// honour it within seconds; the users log in again.
    Revoke {
        /// Void the tokens issued before this time: RFC 3339 (2026-11-23T10:00:00Z) or a date
        /// (2026-11-23, midnight UTC); not later than now.
        #[arg(long = "issued-before", value_name = "TIME", value_parser = parse_cut_off)]
        issued_before: DateTime<Utc>,
        /// Only this user's tokens (a user id); without it, everyone's.
        #[arg(long, value_name = "ID")]
        user: Option<String>,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

/// `--issued-before`: an RFC 3339 time, or a date (midnight UTC).
fn parse_cut_off(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|midnight| midnight.and_utc())
        .ok_or_else(|| {
            "expected an RFC 3339 time (2026-11-23T10:00:00Z) or a date (2026-11-23)".to_owned()
        })
}

pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "jwt-auth", &mut std::io::stdout());
            return Ok(());
        }
        Command::Man { dir: None } => {
            return match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
                // `jwt-auth man | head`: the reader has what it wanted.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                done => Ok(done?),
            };
        }
        Command::Man { dir: Some(dir) } => {
            std::fs::create_dir_all(&dir)
                .map_err(|e| CliError::Usage(format!("--dir {}: {e}", dir.display())))?;
            clap_mangen::generate_to(Cli::command(), &dir)
                .map_err(|e| CliError::Usage(format!("--dir {}: {e}", dir.display())))?;
            let pages = std::fs::read_dir(&dir)?.count();
            println!("wrote {pages} manual pages into {}", dir.display());
            return Ok(());
        }
        _ => {}
    }
    let runtime = actix_web::rt::System::new();
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve(*args).await,
            Command::Migrate(storage) => {
                open_store(&storage).await?;
                println!("migrations applied");
                Ok(())
            }
            Command::User(UserCommand::Add { email, admin, storage, .. }) => {
                add_user(&storage, email, admin).await
            }
            Command::User(UserCommand::Import { file, skip_existing, json, storage }) => {
                import_users(&storage, &file, skip_existing, json).await
            }
            Command::User(UserCommand::SetPassword { user, storage, .. }) => {
                set_password(&storage, &user).await
            }
            Command::User(UserCommand::Disable { user, storage }) => {
                set_disabled(&storage, &user, true).await
            }
            Command::User(UserCommand::Enable { user, storage }) => {
                set_disabled(&storage, &user, false).await
            }
            Command::User(UserCommand::Delete { user, storage }) => {
                delete_user(&storage, &user).await
            }
            Command::User(UserCommand::List { email, limit, offset, json, storage }) => {
                list_users(&storage, email.as_deref(), limit, offset, json).await
            }
            Command::Keys(KeysCommand::Rotate { now, algorithm, keys, storage }) => {
                let algorithm = algorithm
                    .as_deref()
                    .map(|value| {
                        parse_algorithm(value)
                            .map_err(|e| CliError::Usage(format!("--algorithm {}", e.problem)))
                    })
                    .transpose()?;
                rotate_keys(&keys, &storage, now, algorithm).await
            }
            Command::Keys(KeysCommand::Rekey {
                new_key_encryption_key_file,
                new_key_encryption_key_stdin: _,
                keys,
                storage,
            }) => rekey(new_key_encryption_key_file.as_deref(), &keys, &storage).await,
            Command::Keys(KeysCommand::List { json, keys, storage }) => {
                list_keys(&keys, &storage, json).await
            }
            Command::Keys(KeysCommand::Revoke {
                kid,
                token_expiry,
                refresh_token_expiry,
                keys,
                storage,
            }) => {
                let given = given_lifetimes(token_expiry, refresh_token_expiry)?;
                revoke_key(&kid, given, &keys, &storage).await
            }
            Command::Clients(command) => clients(command).await,
            Command::Events { user, kind, limit, json, storage } => {
                events(&storage, user, kind.as_deref(), limit, json).await
            }
            Command::Completions { .. } | Command::Man { .. } => unreachable!("handled above"),
            Command::Sessions(SessionsCommand::Revoke { issued_before, user, storage }) => {
                revoke_sessions(&storage, issued_before, user).await
            }
        }
    })
}

/// `sessions revoke`: every token issued before the cut-off is void, of one user or of all.
async fn revoke_sessions(
    storage: &StorageArgs,
    issued_before: DateTime<Utc>,
    user: Option<String>,
) -> Result<(), CliError> {
    let cut_off = CutOff::new(issued_before, now())?;
    let store = open_store(storage).await?;
    let users = Users::command(&store, "jwt-auth sessions revoke");
    users.void_issued_before(user.as_deref(), cut_off, now()).await?;
    let whom = user.map_or_else(|| "every user".to_owned(), |id| format!("user {id}"));
    println!(
        "voided every token issued to {whom} before {}; running servers refuse them within \
         seconds",
        issued_before.to_rfc3339()
    );
    Ok(())
}

async fn clients(command: ClientsCommand) -> Result<(), CliError> {
    match command {
        ClientsCommand::Add { name, roles, json, storage } => {
            let new = clients::new_client(&name, &roles, now())?;
            clients::add(&open_store(&storage).await?, &new).await?;
            let (id, secret) = (&new.client.id, new.secret.expose());
            if json {
                let printed = serde_json::json!({
                    "client_id": id,
                    "client_secret": secret,
                    "name": new.client.name,
                    "roles": new.client.roles,
                });
                println!("{printed}");
            } else {
                println!("client_id: {id}");
                println!("client_secret: {secret}");
            }
            Ok(())
        }
        ClientsCommand::List { json, storage } => {
            let clients = clients::list(&open_store(&storage).await?).await?;
            if json {
                let listed: Vec<_> = clients
                    .iter()
                    .map(|c| {
                        serde_json::json!({
                            "client_id": c.id,
                            "name": c.name,
                            "roles": c.roles,
                            "created": c.created_at.to_rfc3339(),
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::from(listed));
                return Ok(());
            }
            for client in clients {
                println!(
                    "{}  {}  {}  {}",
                    client.id,
                    client.name,
                    client.roles.join(","),
                    client.created_at.to_rfc3339()
                );
            }
            Ok(())
        }
        ClientsCommand::Remove { client, token_expiry, storage } => {
            let (given, _) = given_lifetimes(token_expiry, None)?;
            let store = open_store(&storage).await?;
            let removed = clients::remove_named(&store, &client, given, now()).await?;
            println!(
                "removed client {} ({}): running servers refuse its tokens within a second",
                removed.id, removed.name
            );
            Ok(())
        }
    }
}

async fn events(
    storage: &StorageArgs,
    user: Option<String>,
    kind: Option<&str>,
    limit: u32,
    json: bool,
) -> Result<(), CliError> {
    let kind = kind.map(audit::recorded_kind).transpose()?;
    let page = Page::new(limit, 10_000, 0)?;
    let store = open_store(storage).await?;
    for recorded in audit::events(&store, user, kind, page).await? {
        let e = &recorded.event;
        let at = e.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        if json {
            let line = serde_json::json!({
                "id": recorded.id,
                "at": at,
                "kind": e.kind.as_str(),
                "user_id": e.user_id,
                "session_id": e.session_id,
                "ip": e.client.ip,
                "user_agent": e.client.user_agent,
                "detail": e.detail,
            });
            println!("{line}");
        } else {
            let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            println!(
                "{at}  {}  user={}  session={}  ip={}  ua={:?}{}",
                e.kind.as_str(),
                dash(&e.user_id),
                dash(&e.session_id),
                dash(&e.client.ip),
                e.client.user_agent.as_deref().unwrap_or("-"),
                e.detail.as_ref().map(|d| format!("  {d}")).unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// A new password from standard input (its last line break left out), checked.
fn read_new_password() -> Result<String, CliError> {
    let mut password = String::new();
    std::io::stdin().take(MAX_PASSWORD_BYTES as u64 + 2).read_to_string(&mut password)?;
    let password = password.trim_end_matches(['\r', '\n']).to_owned();
    check_new_password(&password).map_err(|e| CliError::Usage(format!("the {e}")))?;
    Ok(password)
}

async fn add_user(storage: &StorageArgs, email: String, admin: bool) -> Result<(), CliError> {
    let email = crate::email::checked(&email)
        .map_err(|e| CliError::Usage(format!("--email `{email}`: {e}")))?;
    let password = read_new_password()?;
    let store = open_store(storage).await?;
    let users = Users::command(&store, "jwt-auth user add");
    let user = users.add(email, password, admin, now()).await?;
    println!("created user {} <{}> with roles {:?}", user.id, user.email, user.roles);
    Ok(())
}

async fn set_password(storage: &StorageArgs, who: &str) -> Result<(), CliError> {
    let password = read_new_password()?;
    let store = open_store(storage).await?;
    let users = Users::command(&store, "jwt-auth user set-password");
    let user = users.set_password(who, password, now()).await?;
    println!(
        "set the password of user {} <{}> and ended every session of theirs; running servers \
         refuse their tokens within seconds",
        user.id, user.email
    );
    Ok(())
}

async fn set_disabled(storage: &StorageArgs, who: &str, disabled: bool) -> Result<(), CliError> {
    let store = open_store(storage).await?;
    let command = if disabled { "jwt-auth user disable" } else { "jwt-auth user enable" };
    let user = Users::command(&store, command).set_disabled(who, disabled, now()).await?;
    if disabled {
        println!(
            "disabled user {} <{}>: every session ended, and running servers refuse their \
             tokens within seconds",
            user.id, user.email
        );
    } else {
        println!("enabled user {} <{}>: they can log in again", user.id, user.email);
    }
    Ok(())
}

async fn delete_user(storage: &StorageArgs, who: &str) -> Result<(), CliError> {
    let store = open_store(storage).await?;
    let user = Users::command(&store, "jwt-auth user delete").delete(who, now()).await?;
    println!(
        "deleted user {} <{}>: every session and token of theirs is revoked, and running \
         servers refuse their tokens within seconds",
        user.id, user.email
    );
    Ok(())
}

async fn list_users(
    storage: &StorageArgs,
    email: Option<&str>,
    limit: u32,
    offset: u64,
    json: bool,
) -> Result<(), CliError> {
    // Past the largest offset the database counts, there is no user either.
    let page = Page::new(limit, 1000, offset.min(MAX_OFFSET))?;
    let store = open_store(storage).await?;
    let page = users::list(&store, email, page).await?;
    let mut out = std::io::stdout().lock();
    for user in &page.users {
        let line = if json {
            serde_json::json!({
                "id": user.id,
                "email": user.email,
                "roles": user.roles,
                "disabled": user.disabled,
                "created_at": user.created_at.to_rfc3339(),
            })
            .to_string()
        } else {
            let state = if user.disabled { "disabled" } else { "enabled" };
            format!(
                "{}  {}  {}  {state}  {}",
                user.id,
                user.email,
                user.roles.join(","),
                user.created_at.to_rfc3339()
            )
        };
        writeln!(out, "{line}")?;
    }
    if !json {
        writeln!(out, "{} of {} users", page.users.len(), page.total)?;
    }
    Ok(())
}

async fn import_users(
    storage: &StorageArgs,
    file: &std::path::Path,
    skip_existing: bool,
    json: bool,
) -> Result<(), CliError> {
    let name = file.display().to_string();
    let text = if file.as_os_str() == "-" {
        let mut text = Vec::new();
        std::io::stdin().read_to_end(&mut text)?;
        text
    } else {
        std::fs::read(file).map_err(|e| CliError::Usage(format!("{name}: {e}")))?
    };
    let batch = import::parse(&text).map_err(|e| CliError::unreadable_import(&name, e))?;
    let store = open_store(storage).await?;
    let existing = if skip_existing { ExistingEmails::Skip } else { ExistingEmails::Refuse };
    let users = Users::command(&store, "jwt-auth user import");
    let report = users.import(&batch, &name, existing, now()).await;
    let ImportReport { imported, families } =
        report.map_err(|e| CliError::refused_import(&name, e))?;
    let skipped = imported.skipped.len();
    if json {
        let printed = serde_json::json!({
            "created": imported.created,
            "skipped": skipped,
            "skipped_emails": imported.skipped,
            "families": families,
        });
        println!("{printed}");
    } else {
        let families: Vec<String> =
            families.iter().map(|(family, n)| format!("{family} {n}")).collect();
        println!(
            "imported {name}: created {} users, skipped {skipped} whose email exists already \
             (hashes: {}); each hash becomes argon2id at the user's first login",
            imported.created,
            families.join(", ")
        );
    }
    Ok(())
}

/// The keys service of a key command, and the store, once the settings are checked against
/// the stored keys (see [`Keys::check`]); a command `changing` the algorithm is not held to
/// the current one.
async fn key_command(
    args: &KeyArgs,
    storage: &StorageArgs,
    changing: bool,
) -> Result<(Keys, Arc<Store>), CliError> {
    let settings = KeySettings::read(args, storage.database_url.expose())?;
    let store = Arc::new(open_store(storage).await?);
    let keys = settings.keys(store.clone(), &storage.data_dir);
    let keys = if changing { keys.wanting(None) } else { keys };
    keys.check(now()).await?;
    Ok((keys, store))
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

async fn rotate_keys(
    args: &KeyArgs,
    storage: &StorageArgs,
    at_once: bool,
    algorithm: Option<jwt_core::Algorithm>,
) -> Result<(), CliError> {
    if args.secret.is_some() || args.private_key_file.is_some() {
        return Err(CliError::Usage(
            "JWT_SECRET or JWT_PRIVATE_KEY_FILE pins the signing key; unset it to rotate stored keys".into(),
        ));
    }
    let (keys, _) = key_command(args, storage, algorithm.is_some()).await?;
    let rotation = keys.rotate_by("jwt-auth keys rotate", algorithm, at_once, now()).await?;
    let (kid, alg) = (&rotation.record.kid, rotation.record.algorithm);
    if !keys.in_the_database() {
        let change = match rotation.changes_from {
            Some(from) => format!(" (the algorithm changes from {from})"),
            None => String::new(),
        };
        let path = keys.key_dir().path_of(&rotation.record);
        println!(
            "new {alg} signing key {kid} in {}{change}; running servers sharing this directory \
             switch to it within seconds",
            path.display()
        );
        return Ok(());
    }
    let change = match rotation.changes_from {
        Some(from) => format!("; the deployment's algorithm changes from {from} to {alg}"),
        None => String::new(),
    };
    if !rotation.replaces || at_once {
        let caveat = if rotation.replaces {
            "; verifiers holding a cached JWK set refuse its tokens until they fetch it again"
        } else {
            ""
        };
        println!("new {alg} signing key {kid}: published and signing now{caveat}{change}");
    } else {
        println!(
            "new {alg} signing key {kid}: published now, signs from {} (once every cached JWK set \
             has expired); the previous key signs until then{change}",
            time(rotation.record.activates_at)
        );
    }
    Ok(())
}

/// `keys rekey`: every stored key re-sealed under the new key-encryption key, in one
/// transaction.
async fn rekey(
    new_file: Option<&std::path::Path>,
    args: &KeyArgs,
    storage: &StorageArgs,
) -> Result<(), CliError> {
    let (setting, text) = match new_file {
        Some(path) => (
            "--new-key-encryption-key-file",
            zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                CliError::Usage(format!("--new-key-encryption-key-file {}: {e}", path.display()))
            })?),
        ),
        None => {
            let mut text = zeroize::Zeroizing::new(String::new());
            std::io::stdin().take(4096).read_to_string(&mut text)?;
            ("--new-key-encryption-key-stdin", text)
        }
    };
    let new = key_settings::parse_kek(setting, &text)?;
    let Some(current) = key_settings::key_encryption_key(args)? else {
        return Err(CliError::Config(ConfigError {
            setting: "KEY_ENCRYPTION_KEY",
            problem: "`keys rekey` needs the key-encryption key the stored keys are sealed under \
                      now (KEY_ENCRYPTION_KEY or KEY_ENCRYPTION_KEY_FILE)"
                .into(),
        }));
    };
    let (_, store) = key_command(args, storage, false).await?;
    let count = jwt_auth_service::keys::reseal(&store, &current, &new).await?;
    println!(
        "re-sealed {count} signing keys under the new key-encryption key; give every instance \
         KEY_ENCRYPTION_KEY=<new> (and KEY_ENCRYPTION_KEY_PREVIOUS=<old> until all have \
         restarted)"
    );
    Ok(())
}

async fn list_keys(args: &KeyArgs, storage: &StorageArgs, json: bool) -> Result<(), CliError> {
    let (keys, _) = key_command(args, storage, false).await?;
    let listed = keys.stored(now()).await?;
    let in_files = !keys.in_the_database();
    let path = |key: &ListedKey| key.path.as_ref().map(|p| p.display().to_string());
    if json {
        let view = |key: &ListedKey| match in_files {
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
        };
        println!("{}", serde_json::Value::from(listed.iter().map(view).collect::<Vec<_>>()));
        return Ok(());
    }
    match (listed.is_empty(), in_files) {
        (true, true) => println!("no stored keys in {}", keys.key_dir().path().display()),
        (true, false) => println!("no keys stored in the database yet"),
        _ => {}
    }
    for key in &listed {
        let (record, state) = (&key.record, key.state);
        match in_files {
            true => println!(
                "{}  {}  {}  {}",
                record.kid,
                record.algorithm,
                time(record.created_at),
                path(key).unwrap_or_default()
            ),
            false => println!(
                "{}  {}  {state}  created {}  signs from {}",
                record.kid,
                record.algorithm,
                time(record.created_at),
                time(record.activates_at)
            ),
        }
    }
    Ok(())
}

/// The token lifetimes given on the command line (`TOKEN_EXPIRY`, `REFRESH_TOKEN_EXPIRY`).
fn given_lifetimes(
    access: Option<String>,
    refresh: Option<String>,
) -> Result<(Option<chrono::TimeDelta>, Option<chrono::TimeDelta>), CliError> {
    let parse = |setting, value: Option<String>| {
        value.map(|v| crate::config::parse_duration(setting, &v)).transpose()
    };
    Ok((parse("TOKEN_EXPIRY", access)?, parse("REFRESH_TOKEN_EXPIRY", refresh)?))
}

async fn revoke_key(
    kid: &str,
    given: (Option<chrono::TimeDelta>, Option<chrono::TimeDelta>),
    args: &KeyArgs,
    storage: &StorageArgs,
) -> Result<(), CliError> {
    let (keys, _) = key_command(args, storage, false).await?;
    let revoked = keys.revoke_by("jwt-auth keys revoke", kid, given, now()).await?;
    println!(
        "revoked key {kid} (at {}): running servers refuse its tokens within a second and drop \
         it from the JWK set",
        revoked.revoked_at.map(|t| t.to_rfc3339()).unwrap_or_default()
    );
    Ok(())
}

async fn serve(args: ServeArgs) -> Result<(), CliError> {
    let config = args.validate()?;
    crate::telemetry::init(config.log_format);
    let listener = listen(config.bind).map_err(|e| {
        CliError::Config(ConfigError {
            setting: "BIND_ADDRESS",
            problem: format!("cannot listen on {}: {e}", config.bind),
        })
    })?;
    let address = listener.local_addr()?;
    let app = match Application::build(config.clone(), &args.keys, Arc::new(SystemClock)).await {
        Ok(app) => app,
        // A SQLite file that cannot be opened will not mend by waiting: only a PostgreSQL
        // server that is down (or still starting) is waited for.
        Err(e)
            if e.is_unreachable()
                && backend_of(&config) == jwt_auth_store::BackendKind::Postgres =>
        {
            // Start anyway, so that an orchestrator needs no start-up order: /health answers,
            // /ready says 503, and the rest 503 with a JSON error, until the database answers.
            tracing::error!(error = %e, "the database is unreachable; serving /health and a 503 /ready while retrying");
            let starting = crate::startup::starting(listener.try_clone()?)?;
            tracing::info!(address = %address, database = %format!("{:?}", backend_of(&config)), "jwt-auth listening");
            let built = tokio::select! {
                built = build_with_retries(&config, &args.keys) => built,
                _ = crate::startup::stop_requested() => None,
            };
            // In-flight answers finish first; connections arriving meanwhile wait in the
            // listening socket's queue for the real server.
            starting.stop(true).await;
            match built {
                Some(built) => built?,
                None => {
                    tracing::info!("jwt-auth stopped before the database answered");
                    return Ok(());
                }
            }
        }
        Err(e) => return Err(e),
    };
    let state = app.state();
    let keys = state.tokens().keys();
    let signing = keys.active().map(|k| (k.algorithm().as_str(), k.kid()));
    let (algorithm, kid) = signing.unwrap_or(("-", "-"));
    tracing::info!(address = %address, database = %format!("{:?}", state.store.backend()), algorithm, kid, "jwt-auth listening");
    let server = app.run(listener)?;
    server.await?;
    tracing::info!("jwt-auth stopped");
    Ok(())
}

/// The backend `config` names, for the log line.
fn backend_of(config: &crate::config::Config) -> jwt_auth_store::BackendKind {
    if key_settings::is_postgres(config.database_url.expose()) {
        jwt_auth_store::BackendKind::Postgres
    } else {
        jwt_auth_store::BackendKind::Sqlite
    }
}

/// Builds the application again and again while the database is unreachable, waiting 250 ms
/// after the first failure and doubling up to 10 s, with a tenth of jitter so that instances
/// restarted together do not knock in step. `Some` of the first answer that is not "the
/// database is unreachable": the application, or an error that retrying would not mend.
async fn build_with_retries(
    config: &crate::config::Config,
    keys: &KeyArgs,
) -> Option<Result<Application, CliError>> {
    const FIRST: std::time::Duration = std::time::Duration::from_millis(250);
    const MOST: std::time::Duration = std::time::Duration::from_secs(10);
    let mut wait = FIRST;
    let mut attempts = 1u32;
    loop {
        let random = (uuid::Uuid::new_v4().as_u128() & 0xffff) as f64 / 65_536.0;
        let jitter = wait.mul_f64(random / 10.0);
        tokio::time::sleep(wait + jitter).await;
        attempts += 1;
        match Application::build(config.clone(), keys, Arc::new(SystemClock)).await {
            Err(e) if e.is_unreachable() => {
                tracing::warn!(error = %e, attempts, next_in_ms = (wait * 2).min(MOST).as_millis() as u64, "the database is still unreachable");
                wait = (wait * 2).min(MOST);
            }
            Ok(app) => {
                tracing::info!(attempts, "the database answered; serving");
                return Some(Ok(app));
            }
            Err(e) => return Some(Err(e)),
        }
    }
}

/// How many connections the kernel may queue before the server accepts them. `std` listens
/// with 128: a burst of thousands of new connections then overflows the queue and the
/// dropped SYNs are retried a second later, which is a second of latency for those clients.
/// The kernel caps this at `net.core.somaxconn` (4096 by default since Linux 5.4).
pub const LISTEN_BACKLOG: i32 = 4096;

/// A listening socket on `addr` with [`LISTEN_BACKLOG`] (and `SO_REUSEADDR`, so a restart
/// does not wait for the old connections' `TIME_WAIT`).
pub fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kid is base64url and may begin with `-`: it is still the key id, not a flag.
    #[test]
    fn a_kid_that_begins_with_a_hyphen_is_the_key_id() {
        let parsed = Cli::try_parse_from(["jwt-auth", "keys", "revoke", "-q1x3SaKX5U2JbKbJwaE_A"]);
        match parsed.map(|cli| cli.command) {
            Ok(Command::Keys(KeysCommand::Revoke { kid, .. })) => {
                assert_eq!(kid, "-q1x3SaKX5U2JbKbJwaE_A")
            }
            other => panic!("{other:?}"),
        }
        // Its flags still read as flags, before the kid or after it.
        let args = ["jwt-auth", "keys", "revoke", "--token-expiry", "1h", "-abc"];
        assert!(Cli::try_parse_from(args).is_ok());
        let missing = Cli::try_parse_from(["jwt-auth", "keys", "revoke"]);
        assert!(missing.is_err(), "a kid is required");
    }
}
