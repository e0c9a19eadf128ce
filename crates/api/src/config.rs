//! Configuration: every setting of the HTTP contract as a flag and an environment variable,
//! parsed once at start-up by clap, validated into [`Config`], then passed by reference.

use std::net::SocketAddr;
use std::path::PathBuf;

use chrono::TimeDelta;
use clap::{Args, ValueEnum};
use ipnet::IpNet;
use jwt_auth_store::StoreOptions;
use jwt_core::Algorithm;

use crate::config_values::{invalid, parse_public_url, positive};
pub use crate::config_values::{parse_algorithm, parse_cidrs, parse_duration};
use jwt_auth_service::secret::{DatabaseUrl, SecretString};

/// Where the data lives; shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// `sqlite://PATH` (embedded) or `postgres://...`.
    #[arg(
        long = "database-url",
        env = "DATABASE_URL",
        default_value = "sqlite://jwt-auth.db",
        hide_env_values = true
    )]
    pub database_url: DatabaseUrl,

    /// Directory for generated keys (the HS256 secret or the private key), kept with mode 0600.
    #[arg(long = "data-dir", env = "DATA_DIR", default_value = ".")]
    pub data_dir: PathBuf,

    /// How long one attempt to connect to PostgreSQL may take (TCP connect, start-up and
    /// authentication) before the database counts as unreachable: a command then fails with
    /// one line naming the server, and `serve` answers /ready with 503 while it retries.
    #[arg(
        long = "database-connect-timeout",
        env = "DATABASE_CONNECT_TIMEOUT",
        default_value = "5s"
    )]
    pub database_connect_timeout: String,
}

impl StorageArgs {
    /// The store's connection settings: the defaults, with `DATABASE_CONNECT_TIMEOUT` (one
    /// second to ten minutes).
    pub fn store_options(&self) -> Result<StoreOptions, ConfigError> {
        const SETTING: &str = "DATABASE_CONNECT_TIMEOUT";
        let timeout = positive(SETTING, &self.database_connect_timeout)?;
        if timeout > TimeDelta::minutes(10) {
            return Err(invalid(SETTING, "must be at most 10m"));
        }
        let connect_timeout = timeout.to_std().map_err(|_| invalid(SETTING, "is out of range"))?;
        Ok(StoreOptions { connect_timeout, ..StoreOptions::default() })
    }
}

/// Signing-key settings; shared by `serve` and `keys`. The default is none of them set.
#[derive(Debug, Clone, Default, Args)]
pub struct KeyArgs {
    /// `HS256`, `RS256`, `ES256` or `EdDSA`: the algorithm of a new deployment's first key
    /// (HS256 when unset). Once keys are stored, theirs is the deployment's: unset, it follows
    /// them; set to another, it is refused. `jwt-auth keys rotate --algorithm` changes it.
    #[arg(long = "jwt-algorithm", env = "JWT_ALGORITHM")]
    pub algorithm: Option<String>,

    /// HS256 secret (at least 32 bytes). Generated on first start when unset.
    #[arg(long = "jwt-secret", env = "JWT_SECRET", hide_env_values = true)]
    pub secret: Option<SecretString>,

    /// PEM private key for RS256/ES256/EdDSA. Generated on first start when unset.
    #[arg(long = "jwt-private-key-file", env = "JWT_PRIVATE_KEY_FILE")]
    pub private_key_file: Option<PathBuf>,

    /// Key-encryption key: 32 random bytes, base64 (`openssl rand -base64 32`). When set, the
    /// signing keys live in the database, their private halves encrypted under it, shared by
    /// every instance on it. Required with PostgreSQL unless JWT_SECRET or
    /// JWT_PRIVATE_KEY_FILE pins the signing key.
    #[arg(long = "key-encryption-key", env = "KEY_ENCRYPTION_KEY", hide_env_values = true)]
    pub key_encryption_key: Option<SecretString>,

    /// A file holding the key-encryption key (base64), instead of KEY_ENCRYPTION_KEY.
    #[arg(long = "key-encryption-key-file", env = "KEY_ENCRYPTION_KEY_FILE")]
    pub key_encryption_key_file: Option<PathBuf>,

    /// The key-encryption key the stored keys were sealed under before KEY_ENCRYPTION_KEY,
    /// while they are re-sealed (`jwt-auth keys rekey`): stored keys open under either, new
    /// ones are sealed under KEY_ENCRYPTION_KEY only. Drop it once every instance has the new
    /// one and the keys are re-sealed.
    #[arg(
        long = "key-encryption-key-previous",
        env = "KEY_ENCRYPTION_KEY_PREVIOUS",
        hide_env_values = true
    )]
    pub key_encryption_key_previous: Option<SecretString>,

    /// A file holding the previous key-encryption key, instead of KEY_ENCRYPTION_KEY_PREVIOUS.
    #[arg(long = "key-encryption-key-previous-file", env = "KEY_ENCRYPTION_KEY_PREVIOUS_FILE")]
    pub key_encryption_key_previous_file: Option<PathBuf>,
}

/// The settings of `jwt-auth serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Listen address.
    #[arg(long = "bind", env = "BIND_ADDRESS", default_value = "127.0.0.1:8080")]
    pub bind: String,

    #[command(flatten)]
    pub storage: StorageArgs,

    #[command(flatten)]
    pub keys: KeyArgs,

    /// `iss` claim, checked on every token [default: `PUBLIC_URL` when set, else `jwt-auth`].
    #[arg(long = "jwt-issuer", env = "JWT_ISSUER")]
    pub issuer: Option<String>,

    /// `aud` claim, checked on every access token.
    #[arg(long = "jwt-audience", env = "JWT_AUDIENCE", default_value = "api")]
    pub audience: String,

    /// Comma-separated audiences, besides `JWT_AUDIENCE`, that a client application may ask for
    /// with `resource` (RFC 8707); the access tokens it gets are for that audience.
    #[arg(long = "resources", env = "RESOURCES", default_value = "")]
    pub resources: String,

    /// Access-token lifetime: seconds, or with a unit (`15m`, `1h`).
    #[arg(long = "token-expiry", env = "TOKEN_EXPIRY", default_value = "30m")]
    pub token_expiry: String,

    /// Refresh-token lifetime.
    #[arg(long = "refresh-token-expiry", env = "REFRESH_TOKEN_EXPIRY", default_value = "7d")]
    pub refresh_token_expiry: String,

    /// How long a rotated refresh token may be presented again and still get a pair.
    #[arg(long = "refresh-reuse-grace", env = "REFRESH_REUSE_GRACE", default_value = "10s")]
    pub refresh_reuse_grace: String,

    /// Absolute session lifetime from login.
    #[arg(long = "session-max-age", env = "SESSION_MAX_AGE", default_value = "30d")]
    pub session_max_age: String,

    /// Comma-separated CIDRs whose `X-Forwarded-For` is believed.
    #[arg(long = "trusted-proxies", env = "TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,

    /// Login and token-endpoint attempts per minute per client IP (0 disables).
    #[arg(long = "login-rate-limit", env = "LOGIN_RATE_LIMIT", default_value = "10")]
    pub login_rate_limit: u32,

    /// Failed logins of one account (case-folded username, known or not) from one client IP
    /// before growing delays start (0 disables).
    #[arg(long = "login-failure-backoff", env = "LOGIN_FAILURE_BACKOFF", default_value = "5")]
    pub login_failure_backoff: u32,

    /// The external base URL clients use (`https://auth.example.com`): every published
    /// absolute URL starts with it, and `JWT_ISSUER` defaults to it.
    #[arg(long = "public-url", env = "PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Set `Secure` on the refresh cookie.
    #[arg(long = "cookie-secure", env = "COOKIE_SECURE", default_value = "true", action = clap::ArgAction::Set)]
    pub cookie_secure: bool,

    /// Whether `POST /auth/register` is open.
    #[arg(long = "allow-registration", env = "ALLOW_REGISTRATION", default_value = "true", action = clap::ArgAction::Set)]
    pub allow_registration: bool,

    /// Admin account created at start if missing (with `ADMIN_PASSWORD`).
    #[arg(long = "admin-email", env = "ADMIN_EMAIL")]
    pub admin_email: Option<String>,

    /// Password of the admin account created at start.
    #[arg(long = "admin-password", env = "ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<SecretString>,

    /// Put the `email` claim in access tokens.
    #[arg(long = "token-include-email", env = "TOKEN_INCLUDE_EMAIL", default_value = "false", action = clap::ArgAction::Set)]
    pub token_include_email: bool,

    /// `pretty` or `json`; the level comes from `RUST_LOG`.
    #[arg(long = "log-format", env = "LOG_FORMAT", default_value = "pretty")]
    pub log_format: LogFormat,

    /// Require a server nonce in DPoP proofs (RFC 9449 §8); every instance accepts the nonces
    /// of every other.
    #[arg(long = "dpop-nonce", env = "DPOP_NONCE", default_value = "false", action = clap::ArgAction::Set)]
    pub dpop_nonce: bool,

    /// NATS server(s) carrying the change feed between instances, regions and services
    /// (comma-separated URLs); unset, instances on one PostgreSQL use the database alone.
    #[arg(long = "nats-url", env = "NATS_URL")]
    pub nats_url: Option<String>,

    /// The JetStream stream this instance reads the change feed from (a region's mirror, for
    /// example).
    #[arg(long = "nats-stream", env = "NATS_STREAM", default_value = jwt_auth_nats::DEFAULT_STREAM)]
    pub nats_stream: String,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// For people.
    Pretty,
    /// One JSON object per line, for machines.
    Json,
}

pub use jwt_auth_service::ConfigError;

/// Validated settings of `serve`.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub database_url: DatabaseUrl,
    pub data_dir: PathBuf,
    /// The store's connection settings (`DATABASE_CONNECT_TIMEOUT`).
    pub store_options: StoreOptions,
    /// `JWT_ALGORITHM` as set: the first key's algorithm, and checked against the stored keys'.
    pub algorithm: Option<Algorithm>,
    pub issuer: String,
    pub audience: String,
    pub resources: Vec<String>,
    pub token_expiry: TimeDelta,
    pub refresh_token_expiry: TimeDelta,
    pub refresh_reuse_grace: TimeDelta,
    pub session_max_age: TimeDelta,
    pub trusted_proxies: Vec<IpNet>,
    pub login_rate_limit: u32,
    pub login_failure_backoff: u32,
    /// `PUBLIC_URL` without a trailing slash.
    pub public_url: Option<String>,
    pub cookie_secure: bool,
    pub allow_registration: bool,
    pub admin: Option<(String, SecretString)>,
    pub token_include_email: bool,
    pub log_format: LogFormat,
    /// `DPOP_NONCE`.
    pub dpop_nonce: bool,
    /// `NATS_URL` and `NATS_STREAM`, when the change feed goes through NATS JetStream.
    pub nats: Option<NatsSettings>,
}

/// Where the change feed goes past the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsSettings {
    /// `NATS_URL`: one or more servers, comma-separated.
    pub url: String,
    /// `NATS_STREAM`: the stream (or mirror) this instance reads.
    pub stream: String,
}

impl ServeArgs {
    /// Checks every setting; the first bad one is reported by name.
    pub fn validate(&self) -> Result<Config, ConfigError> {
        let bind = self
            .bind
            .parse()
            .map_err(|_| invalid("BIND_ADDRESS", format!("`{}` is not HOST:PORT", self.bind)))?;
        let algorithm = self.keys.requested_algorithm()?;
        let trusted_proxies = parse_cidrs(&self.trusted_proxies)?;
        let admin = match (&self.admin_email, &self.admin_password) {
            (Some(email), Some(password)) => {
                let email = jwt_auth_service::email::checked(email)
                    .map_err(|e| invalid("ADMIN_EMAIL", format!("`{email}`: {e}")))?;
                jwt_auth_service::passwords::check_password(password, true)
                    .map_err(|e| invalid("ADMIN_PASSWORD", e))?;
                Some((email, password.clone()))
            }
            (None, None) => None,
            _ => {
                return Err(invalid(
                    "ADMIN_EMAIL",
                    "ADMIN_EMAIL and ADMIN_PASSWORD must be set together",
                ));
            }
        };
        let public_url = self.public_url.as_deref().map(parse_public_url).transpose()?;
        let issuer = match (&self.issuer, &public_url) {
            (Some(issuer), _) => issuer.clone(),
            (None, Some(url)) => url.clone(),
            (None, None) => "jwt-auth".to_owned(),
        };
        if issuer.is_empty() {
            return Err(invalid("JWT_ISSUER", "must not be empty"));
        }
        if self.audience.is_empty() {
            return Err(invalid("JWT_AUDIENCE", "must not be empty"));
        }
        let resources = parse_resources(&self.resources)?;
        let nats = self.nats_settings()?;
        // With the change stream, nothing listens to the database's notifications: writers
        // skip them, and the database-wide lock a notifying transaction takes at commit.
        let store_options =
            StoreOptions { notify_changes: nats.is_none(), ..self.storage.store_options()? };
        Ok(Config {
            bind,
            database_url: self.storage.database_url.clone(),
            data_dir: self.storage.data_dir.clone(),
            store_options,
            algorithm,
            issuer,
            audience: self.audience.clone(),
            resources,
            token_expiry: positive("TOKEN_EXPIRY", &self.token_expiry)?,
            refresh_token_expiry: positive("REFRESH_TOKEN_EXPIRY", &self.refresh_token_expiry)?,
            refresh_reuse_grace: parse_duration("REFRESH_REUSE_GRACE", &self.refresh_reuse_grace)?,
            session_max_age: positive("SESSION_MAX_AGE", &self.session_max_age)?,
            trusted_proxies,
            login_rate_limit: self.login_rate_limit,
            login_failure_backoff: self.login_failure_backoff,
            public_url,
            cookie_secure: self.cookie_secure,
            allow_registration: self.allow_registration,
            admin,
            token_include_email: self.token_include_email,
            log_format: self.log_format,
            dpop_nonce: self.dpop_nonce,
            nats,
        })
    }

    /// `NATS_URL` (blank counts as unset) and `NATS_STREAM`, a JetStream stream name.
    fn nats_settings(&self) -> Result<Option<NatsSettings>, ConfigError> {
        let Some(url) = self.nats_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let stream = self.nats_stream.trim();
        let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if stream.is_empty() || stream.len() > 255 || !stream.chars().all(valid) {
            return Err(invalid(
                "NATS_STREAM",
                format!("`{stream}` is not a stream name (letters, digits, `_` and `-`)"),
            ));
        }
        Ok(Some(NatsSettings { url: url.to_owned(), stream: stream.to_owned() }))
    }
}

/// `RESOURCES`: comma-separated audiences, each without whitespace or control characters.
fn parse_resources(text: &str) -> Result<Vec<String>, ConfigError> {
    let mut resources: Vec<String> = Vec::new();
    for resource in text.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        if resource.len() > 512 || resource.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                "RESOURCES",
                format!("`{resource}` is not an audience (no spaces, at most 512 bytes)"),
            ));
        }
        if !resources.iter().any(|r| r == resource) {
            resources.push(resource.to_owned());
        }
    }
    Ok(resources)
}

impl KeyArgs {
    /// `JWT_ALGORITHM`, if it is set.
    pub fn requested_algorithm(&self) -> Result<Option<Algorithm>, ConfigError> {
        self.algorithm.as_deref().map(parse_algorithm).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_seconds_or_a_unit() {
        let d = |v| parse_duration("X", v).map(|d| d.num_seconds()).ok();
        assert_eq!(d("900"), Some(900));
        assert_eq!(d("15m"), Some(900));
        assert_eq!(d("1h"), Some(3600));
        assert_eq!(d("7d"), Some(604_800));
        assert_eq!(d("0"), Some(0));
        assert_eq!(d("10x"), None);
        assert_eq!(d("m"), None);
        assert_eq!(d("-5"), None);
        assert_eq!(d("99999999999999999d"), None);
    }

    #[test]
    fn public_urls_are_absolute_http_urls_without_query() {
        let ok = |v| parse_public_url(v).ok();
        assert_eq!(ok("https://auth.example.com/").as_deref(), Some("https://auth.example.com"));
        assert_eq!(
            ok("https://auth.example.com:8443/id").as_deref(),
            Some("https://auth.example.com:8443/id")
        );
        assert_eq!(ok("http://127.0.0.1:8080").as_deref(), Some("http://127.0.0.1:8080"));
        for bad in [
            "auth.example.com",
            "ftp://x.io",
            "https://",
            "https://x.io/?a=1",
            "https://x.io/#f",
            "https://a b.io",
            "https://x.io/a b",
        ] {
            assert_eq!(parse_public_url(bad).unwrap_err().setting, "PUBLIC_URL", "{bad}");
        }
    }

    #[test]
    fn settings_never_debug_their_secrets() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from([
            "jwt-auth",
            "serve",
            "--jwt-secret",
            "s3cret-s3cret-s3cret-s3cret-s3cret",
            "--admin-email",
            "root@example.com",
            "--admin-password",
            "hunter2-hunter2",
            "--database-url",
            "postgres://app:db-pa55word@db.internal/auth",
        ])
        .expect("parses");
        let crate::cli::Command::Serve(args) = &cli.command else { panic!("serve") };
        let config = args.validate().expect("valid");
        for shown in [format!("{cli:?}"), format!("{args:?}"), format!("{config:?}")] {
            for secret in ["s3cret", "hunter2", "db-pa55word"] {
                assert!(!shown.contains(secret), "{secret} shows in {shown}");
            }
            assert!(shown.contains("postgres://app:***@db.internal/auth"), "{shown}");
        }
    }

    #[test]
    fn the_admin_password_follows_the_rule_of_registration() {
        use clap::Parser;
        let validate = |password: &str| {
            let cli = crate::cli::Cli::try_parse_from([
                "jwt-auth",
                "serve",
                "--admin-email",
                "root@example.com",
                "--admin-password",
                password,
            ])
            .expect("parses");
            let crate::cli::Command::Serve(args) = &cli.command else { panic!("serve") };
            args.validate().map(|_| ()).map_err(|e| e.setting)
        };
        // 8 to 256 characters, whatever their bytes.
        assert_eq!(validate(&"é".repeat(8)), Ok(()));
        assert_eq!(validate(&"😀".repeat(256)), Ok(()));
        assert_eq!(validate(&"é".repeat(7)), Err("ADMIN_PASSWORD"));
        assert_eq!(validate(&"x".repeat(257)), Err("ADMIN_PASSWORD"));
    }

    #[test]
    fn proxies_take_cidrs_and_plain_ips() {
        let nets = parse_cidrs("10.0.0.0/8, 127.0.0.1 ,::1").unwrap();
        assert_eq!(nets.len(), 3);
        let err = parse_cidrs("10.0.0.0/33").unwrap_err();
        assert_eq!(err.setting, "TRUSTED_PROXIES");
    }
}
