//! The `jwt-auth` command line: `serve`, `migrate`, `user add`, `keys rotate|list` and
//! `sessions revoke`. Each command parses its settings once, then runs.

use std::io::Read;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use actix_web::web;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use jwt_auth_store::{NewUser, PasswordHash, Store, StoreOptions};
use jwt_core::{Clock, SessionPolicy, Sessions, SystemClock, TokenPolicy, TokenService};

use crate::config::{Config, ConfigError, KeyArgs, ServeArgs, StorageArgs, parse_algorithm};
use crate::metrics::Metrics;
use crate::passwords::{MAX_PASSWORD_BYTES, MIN_PASSWORD_BYTES, Passwords};
use crate::rate_limit::LoginThrottle;
use crate::state::AppState;

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
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input.
    Add {
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
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new signing key active; tokens of the old key stay valid until they expire.
    Rotate {
        #[command(flatten)]
        keys: KeyArgs,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// List the stored keys.
    List {
        #[command(flatten)]
        storage: StorageArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// Void every token issued before TIME (RFC 3339, e.g. 2026-11-23T10:00:00Z), for one
    /// user or for everyone. Running servers honour it within seconds.
    Revoke {
        #[arg(long = "issued-before")]
        issued_before: DateTime<Utc>,
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

/// Any failure of a command, printed as one line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Store(#[from] jwt_auth_store::StoreError),
    #[error("{0}")]
    Core(#[from] jwt_core::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Usage(String),
}

pub fn run(cli: Cli) -> Result<(), CliError> {
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
            Command::Keys(KeysCommand::Rotate { keys, storage }) => rotate_keys(&keys, &storage),
            Command::Keys(KeysCommand::List { storage }) => list_keys(&storage),
            Command::Sessions(SessionsCommand::Revoke { issued_before, user, storage }) => {
                let store = open_store(&storage).await?;
                if let Some(id) = &user
                    && store.user_by_id(id).await?.is_none()
                {
                    return Err(CliError::Usage(format!("--user: no user has the id `{id}`")));
                }
                jwt_core::RevocationStore::void_issued_before(
                    &store,
                    user.as_deref(),
                    issued_before,
                    Utc::now(),
                )
                .await?;
                let whom = match &user {
                    Some(id) => format!("user {id}"),
                    None => "every user".to_owned(),
                };
                println!(
                    "voided every token issued to {whom} before {}; running servers refuse \
                     them within seconds",
                    issued_before.to_rfc3339()
                );
                Ok(())
            }
        }
    })
}

/// Opens the store and applies pending migrations.
async fn open_store(storage: &StorageArgs) -> Result<Store, CliError> {
    // Connections are made lazily: an unreachable database shows at the first migration.
    let unreachable = |e: jwt_auth_store::StoreError| match e {
        jwt_auth_store::StoreError::InvalidUrl(_) | jwt_auth_store::StoreError::Unavailable(_) => {
            CliError::Config(ConfigError { setting: "DATABASE_URL", problem: e.to_string() })
        }
        other => other.into(),
    };
    let store = Store::connect_with(&storage.database_url, StoreOptions::default())
        .await
        .map_err(unreachable)?;
    store.migrate().await.map_err(unreachable)?;
    Ok(store)
}

async fn add_user(storage: &StorageArgs, email: String, admin: bool) -> Result<(), CliError> {
    let mut password = String::new();
    std::io::stdin().take(MAX_PASSWORD_BYTES as u64 + 2).read_to_string(&mut password)?;
    let password = password.trim_end_matches(['\r', '\n']).to_owned();
    if !(MIN_PASSWORD_BYTES..=MAX_PASSWORD_BYTES).contains(&password.len()) {
        return Err(CliError::Usage(format!(
            "the password must be {MIN_PASSWORD_BYTES} to {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    let store = open_store(storage).await?;
    let hash = Passwords::new(1)
        .map_err(|e| CliError::Usage(e.to_string()))?
        .hash(password)
        .await
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let roles = if admin { vec!["user".into(), "admin".into()] } else { vec!["user".into()] };
    let user = store
        .create_user(&NewUser { email, password_hash: PasswordHash::new(hash), roles }, Utc::now())
        .await?;
    println!("created user {} <{}> with roles {:?}", user.id, user.email, user.roles);
    Ok(())
}

fn rotate_keys(args: &KeyArgs, storage: &StorageArgs) -> Result<(), CliError> {
    let alg = parse_algorithm(&args.algorithm)?;
    if args.secret.is_some() || args.private_key_file.is_some() {
        return Err(CliError::Usage(
            "JWT_SECRET or JWT_PRIVATE_KEY_FILE pins the signing key; unset it to rotate stored keys".into(),
        ));
    }
    let key = jwt_core::SigningKey::generate(alg)?;
    let path = crate::keys::write_key(&crate::keys::key_dir(&storage.data_dir), &key, Utc::now())?;
    println!("new {alg} signing key {} in {}", key.kid(), path.display());
    println!("running servers sharing this directory switch to it within seconds");
    Ok(())
}

fn list_keys(storage: &StorageArgs) -> Result<(), CliError> {
    let stored = crate::keys::read_dir(&crate::keys::key_dir(&storage.data_dir))?;
    if stored.is_empty() {
        println!("no stored keys in {}", crate::keys::key_dir(&storage.data_dir).display());
    }
    for key in stored {
        println!(
            "{}  {}  {}  {}",
            key.created.to_rfc3339(),
            key.key.algorithm(),
            key.key.kid(),
            key.path.display()
        );
    }
    Ok(())
}

/// Builds the state of a server from validated settings: store (migrated), keys, sessions.
pub async fn build_state(config: Config, keys: &KeyArgs) -> Result<AppState, CliError> {
    build_state_with_clock(config, keys, Arc::new(SystemClock)).await
}

/// [`build_state`] on a given clock (tests move time instead of sleeping).
pub async fn build_state_with_clock(
    config: Config,
    keys: &KeyArgs,
    clock: Arc<dyn Clock>,
) -> Result<AppState, CliError> {
    let store = Arc::new(
        open_store(&StorageArgs {
            database_url: config.database_url.clone(),
            data_dir: config.data_dir.clone(),
        })
        .await?,
    );
    let retention = jwt_core::KeySet::retention(config.token_expiry, config.refresh_token_expiry);
    let loaded =
        crate::keys::load(keys, config.algorithm, &config.data_dir, retention, clock.now())?;
    if let Some(path) = &loaded.generated {
        tracing::info!(path = %path.display(), algorithm = %config.algorithm, "generated a new signing key and stored it (mode 0600)");
    }
    let mut policy = TokenPolicy::new(config.issuer.clone(), config.audience.clone());
    policy.access_ttl = config.token_expiry;
    policy.refresh_ttl = config.refresh_token_expiry;
    policy.include_email = config.token_include_email;
    let tokens = Arc::new(TokenService::new(policy, loaded.keys)?.with_clock(clock));
    let sessions = Sessions::new(
        tokens,
        store.clone(),
        SessionPolicy { max_age: config.session_max_age, reuse_grace: config.refresh_reuse_grace },
    );
    let passwords = Passwords::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let throttle = LoginThrottle::new(config.login_rate_limit);
    Ok(AppState {
        config,
        store,
        sessions,
        passwords,
        throttle,
        metrics: Metrics::new(),
        revocations_loaded: AtomicBool::new(false),
        key_args: keys.clone(),
    })
}

async fn ensure_admin(state: &AppState) -> Result<(), CliError> {
    let Some((email, password)) = state.config.admin.clone() else { return Ok(()) };
    if state.store.user_by_email(&email).await?.is_some() {
        return Ok(());
    }
    let hash = state.passwords.hash(password).await.map_err(|e| CliError::Usage(e.to_string()))?;
    let roles = vec!["user".into(), "admin".into()];
    match state
        .store
        .create_user(&NewUser { email, password_hash: PasswordHash::new(hash), roles }, state.now())
        .await
    {
        Ok(user) => {
            tracing::info!(user_id = %user.id, "created the admin account from ADMIN_EMAIL")
        }
        Err(jwt_auth_store::StoreError::EmailTaken) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

async fn serve(args: ServeArgs) -> Result<(), CliError> {
    let config = args.validate()?;
    crate::telemetry::init(config.log_format);
    let listener = TcpListener::bind(config.bind).map_err(|e| {
        CliError::Config(ConfigError {
            setting: "BIND_ADDRESS",
            problem: format!("cannot listen on {}: {e}", config.bind),
        })
    })?;
    let state = build_state(config, &args.keys).await?;
    ensure_admin(&state).await?;
    tracing::info!(address = %listener.local_addr()?, database = %format!("{:?}", state.store.backend()), algorithm = %state.config.algorithm, "jwt-auth listening");
    let server = crate::startup::run(web::Data::new(state), listener)?;
    server.await?;
    tracing::info!("jwt-auth stopped");
    Ok(())
}
