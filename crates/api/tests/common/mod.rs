//! What every HTTP test shares: the real server, started in-process on an ephemeral port of
//! 127.0.0.1 by `startup::run`, on a database of its own (a temporary SQLite file or a fresh
//! PostgreSQL database, `jwt-auth-testdb`'s `TestDb`), with a manual clock and a signing key
//! the test knows; a reqwest client; and `http_tests!` (`jwt-auth-testdb`'s `backend_tests!`),
//! which instantiates each test body once per backend.
//!
//! When PostgreSQL is unreachable, its tests fail if `CI` is set and are otherwise skipped
//! with a loud line on stderr (the same rule as the store's tests).
//!
//! Also here for the suites that run the `jwt-auth` binary: `process`, the binary as a child
//! process, and `jwt-auth-testdb`'s `pg` (a fresh PostgreSQL database) and `cluster` (a private
//! PostgreSQL cluster to stop and start).
#![allow(clippy::disallowed_methods)] // test fixtures at the system's time
#![allow(dead_code)] // each test module uses its own part of this module

pub mod process;

pub use jwt_auth_testdb::{Backend, TestDb, cluster, pg};

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::web;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use jwt_auth_api::AppState;
use jwt_auth_api::{Config, KeyArgs, LogFormat};
use jwt_auth_store::{NewUser, PasswordHash};
use jwt_core::{Algorithm, Clock, ManualClock, Secret, SigningKey};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

/// The password of every user the tests create.
pub const PASSWORD: &str = "correct horse battery staple";

/// The settings of `jwt-auth serve` with the contract's defaults, except that the per-IP login
/// quota is off (every test client is 127.0.0.1; the rate-limit tests set their own).
pub fn default_config(database_url: &str, data_dir: PathBuf) -> Config {
    Config {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: jwt_auth_service::secret::DatabaseUrl::new(database_url),
        data_dir,
        store_options: jwt_auth_store::StoreOptions::default(),
        algorithm: Some(Algorithm::HS256),
        issuer: "jwt-auth".into(),
        audience: "api".into(),
        resources: Vec::new(),
        token_expiry: TimeDelta::minutes(30),
        refresh_token_expiry: TimeDelta::days(7),
        refresh_reuse_grace: TimeDelta::seconds(10),
        session_max_age: TimeDelta::days(30),
        trusted_proxies: Vec::new(),
        login_rate_limit: 0,
        login_failure_backoff: 5,
        public_url: None,
        cookie_secure: true,
        allow_registration: true,
        admin: None,
        token_include_email: false,
        log_format: LogFormat::Pretty,
        dpop_nonce: false,
        nats: None,
    }
}

/// A running server and what a test needs to talk to it and to forge tokens for it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub clock: ManualClock,
    pub state: web::Data<AppState>,
    /// The server's signing key (pinned through `JWT_SECRET` / `JWT_PRIVATE_KEY_FILE`).
    pub key: SigningKey,
    pub http: reqwest::Client,
    handle: ServerHandle,
    config: Config,
    key_args: KeyArgs,
    db: TestDb,
    data_dir: Arc<tempfile::TempDir>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // `stop` sends the command at once; the returned future only waits for the outcome,
        // which the server task reaches in the background.
        drop(self.handle.stop(false));
    }
}

impl TestApp {
    /// Starts a server on `db` with the default settings.
    pub async fn start(db: TestDb) -> TestApp {
        Self::start_with(db, |_| {}).await
    }

    /// Starts a server on `db` with the default settings changed by `configure`; the key of
    /// `config.algorithm` is made here and pinned, so the test can sign with it.
    pub async fn start_with(db: TestDb, configure: impl FnOnce(&mut Config)) -> TestApp {
        Self::start_listening(db, None, configure).await
    }

    /// [`TestApp::start_with`], with its own address as `PUBLIC_URL` (and so as the issuer),
    /// as an operator trying OpenID Connect locally sets it: `http://127.0.0.1:PORT`.
    pub async fn start_at_own_url(db: TestDb, configure: impl FnOnce(&mut Config)) -> TestApp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("an ephemeral port");
        let url = format!("http://{}", listener.local_addr().expect("a local address"));
        let configured = |config: &mut Config| {
            config.public_url = Some(url.clone());
            config.issuer = url.clone();
            configure(config);
        };
        Self::start_listening(db, Some(listener), configured).await
    }

    async fn start_listening(
        db: TestDb,
        listener: Option<TcpListener>,
        configure: impl FnOnce(&mut Config),
    ) -> TestApp {
        let data_dir = Arc::new(tempfile::tempdir().expect("a data directory"));
        let mut config = default_config(&db.url, data_dir.path().to_owned());
        configure(&mut config);
        let (key, key_args) = pinned_key(config.algorithm.unwrap_or(Algorithm::HS256), &data_dir);
        // Whole seconds, like the claims, so that tests can reason about `iat` and `exp`.
        let now = Utc::now();
        let start = now - TimeDelta::nanoseconds(now.timestamp_subsec_nanos().into());
        let clock = ManualClock::new(start);
        let app = Self::launch_on(db, config, key, key_args, clock, data_dir, listener).await;
        app.wait_ready().await;
        app
    }

    /// Starts a server whose signing keys live in the database, sealed under `kek` (base64),
    /// with nothing pinned; `key` is the key it signs with at start.
    pub async fn start_with_stored_keys(db: TestDb, alg: Algorithm, kek: &str) -> TestApp {
        Self::start_with_stored_keys_and(db, alg, kek, |_| {}).await
    }

    /// [`TestApp::start_with_stored_keys`] with the settings changed by `configure`.
    pub async fn start_with_stored_keys_and(
        db: TestDb,
        alg: Algorithm,
        kek: &str,
        configure: impl FnOnce(&mut Config),
    ) -> TestApp {
        let data_dir = Arc::new(tempfile::tempdir().expect("a data directory"));
        let mut config = default_config(&db.url, data_dir.path().to_owned());
        config.algorithm = Some(alg);
        configure(&mut config);
        let key_args = KeyArgs {
            algorithm: Some(alg.as_str().into()),
            key_encryption_key: Some(kek.to_owned().into()),
            ..KeyArgs::default()
        };
        let now = Utc::now();
        let start = now - TimeDelta::nanoseconds(now.timestamp_subsec_nanos().into());
        let placeholder = SigningKey::generate(alg).expect("a key");
        let clock = ManualClock::new(start);
        let mut app = Self::launch(db, config, placeholder, key_args, clock, data_dir).await;
        app.wait_ready().await;
        app.key = app.state.tokens().keys().active().expect("a signing key").clone();
        app
    }

    /// The settings this instance was built with.
    pub fn settings(&self) -> (&Config, &KeyArgs) {
        (&self.config, &self.key_args)
    }

    /// A second instance on the same database, keys, settings and clock, as behind a load
    /// balancer.
    pub async fn sibling(&self) -> TestApp {
        let app = self.sibling_unready().await;
        app.wait_ready().await;
        app
    }

    /// [`sibling`](Self::sibling), returned as soon as it listens, ready or not.
    pub async fn sibling_unready(&self) -> TestApp {
        let db = self.db.shared();
        let (config, key_args) = (self.config.clone(), self.key_args.clone());
        let data_dir = Arc::clone(&self.data_dir);
        Self::launch(db, config, self.key.clone(), key_args, self.clock.clone(), data_dir).await
    }

    async fn launch(
        db: TestDb,
        config: Config,
        key: SigningKey,
        key_args: KeyArgs,
        clock: ManualClock,
        data_dir: Arc<tempfile::TempDir>,
    ) -> TestApp {
        Self::launch_on(db, config, key, key_args, clock, data_dir, None).await
    }

    /// Builds and starts the server, on `listener` if given (else an ephemeral port).
    async fn launch_on(
        db: TestDb,
        config: Config,
        key: SigningKey,
        key_args: KeyArgs,
        clock: ManualClock,
        data_dir: Arc<tempfile::TempDir>,
        listener: Option<TcpListener>,
    ) -> TestApp {
        let application = jwt_auth_api::Application::build(
            config.clone(),
            &key_args,
            Arc::new(clock.clone()) as Arc<dyn Clock>,
        )
        .await
        .unwrap_or_else(|e| panic!("the server state builds: {e}"));
        let state = application.state().clone();
        let listener = listener
            .unwrap_or_else(|| TcpListener::bind("127.0.0.1:0").expect("an ephemeral port"));
        let addr = listener.local_addr().expect("a local address");
        let server = application.run(listener).expect("the server starts");
        let handle = server.handle();
        tokio::spawn(server);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent("jwt-auth-tests/1")
            .build()
            .expect("a client");
        TestApp { addr, clock, state, key, http, handle, config, key_args, db, data_dir }
    }

    pub fn backend(&self) -> Backend {
        self.db.backend
    }

    /// Drops the database under the running server (PostgreSQL only).
    pub fn drop_database(&mut self) {
        assert_eq!(self.db.backend, Backend::Postgres, "only a PostgreSQL database can go away");
        self.db.drop_database();
    }

    pub async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(response) = self.http.get(self.url("/ready")).send().await
                && response.status() == StatusCode::OK
            {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "the server was not ready in 20 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Moves the server's clock forward.
    pub fn advance(&self, seconds: i64) {
        self.clock.advance(TimeDelta::seconds(seconds));
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path))
    }

    /// The value of one series of `/metrics`, by its full name (a gauge, a counter, or a
    /// histogram's `_count`), if the server shows it.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let metrics = send(self.get("/metrics")).await;
        metrics
            .text
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(self.url(path))
    }

    /// `POST /auth/register`; asserts 201 and returns the user.
    pub async fn register(&self, email: &str) -> Value {
        let reply =
            send(self.post("/auth/register").json(&json!({"email": email, "password": PASSWORD})))
                .await;
        assert_eq!(reply.status, StatusCode::CREATED, "register {email}: {}", reply.text);
        reply.body
    }

    /// Creates a user with `roles` directly in the store (the HTTP API has no first admin);
    /// returns its id.
    pub async fn create_user(&self, email: &str, roles: &[&str]) -> String {
        let hash = self.state.passwords.hash(PASSWORD.into()).await.expect("a hash");
        let user = NewUser {
            email: email.into(),
            password_hash: PasswordHash::new(hash),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        };
        self.state.store.create_user(&user, self.now()).await.expect("the user is created").id
    }

    /// An administrator, logged in.
    pub async fn admin(&self) -> Pair {
        self.create_user("admin@example.com", &["user", "admin"]).await;
        self.login("admin@example.com").await
    }

    pub async fn try_login(&self, email: &str, password: &str) -> Reply {
        send(self.post("/auth/login").json(&json!({"username": email, "password": password}))).await
    }

    /// `POST /auth/login` with the right password; asserts 200 and returns the pair.
    pub async fn login(&self, email: &str) -> Pair {
        let reply = self.try_login(email, PASSWORD).await;
        assert_eq!(reply.status, StatusCode::OK, "login of {email}: {}", reply.text);
        Pair::from_reply(&reply)
    }

    /// `POST /auth/refresh` with the token in the JSON body.
    pub async fn refresh(&self, refresh_token: &str) -> Reply {
        send(self.post("/auth/refresh").json(&json!({"refresh_token": refresh_token}))).await
    }

    /// `GET /api/me` with a bearer token.
    pub async fn me(&self, access_token: &str) -> Reply {
        send(self.get("/api/me").bearer_auth(access_token)).await
    }

    /// Asserts that `access_token` is accepted on `GET /api/me`.
    pub async fn assert_accepted(&self, access_token: &str) {
        let reply = self.me(access_token).await;
        assert_eq!(reply.status, StatusCode::OK, "the token was refused: {}", reply.text);
    }

    /// The server's key as jsonwebtoken signs with it.
    pub fn encoding_key(&self) -> jsonwebtoken::EncodingKey {
        encoding_key(&self.key)
    }

    /// `token` with its header and claims changed by `edit`, signed again with the server's key.
    pub fn resign(&self, token: &str, edit: impl FnOnce(&mut Value, &mut Value)) -> String {
        let (mut header, mut claims) = decode(token);
        edit(&mut header, &mut claims);
        let alg = jwt_alg(self.key.algorithm());
        forge(&header, &claims, &self.encoding_key(), alg)
    }
}

/// A fresh key of `alg`, pinned the way an operator pins one: `JWT_SECRET` for HS256, a PEM
/// file for the others.
fn pinned_key(alg: Algorithm, dir: &tempfile::TempDir) -> (SigningKey, KeyArgs) {
    let mut args = KeyArgs { algorithm: Some(alg.as_str().into()), ..KeyArgs::default() };
    let key = if alg.is_symmetric() {
        let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let key =
            SigningKey::from_secret(Secret::new(secret.clone().into_bytes()).expect("64 bytes"))
                .expect("an HS256 key");
        args.secret = Some(secret.into());
        key
    } else {
        let key = SigningKey::generate(alg).expect("a key");
        let path = dir.path().join("signing-key.pem");
        std::fs::write(&path, key.to_pem().expect("PEM").as_bytes()).expect("write the key");
        args.private_key_file = Some(path);
        key
    };
    (key, args)
}

/// The same algorithm in jsonwebtoken's terms: both use the JOSE names.
pub fn jwt_alg(alg: Algorithm) -> jsonwebtoken::Algorithm {
    alg.as_str().parse().expect("jsonwebtoken knows every algorithm jwt-core has")
}

/// A jwt-core key as jsonwebtoken signs with it.
pub fn encoding_key(key: &SigningKey) -> jsonwebtoken::EncodingKey {
    use jsonwebtoken::EncodingKey;
    match key.algorithm() {
        Algorithm::HS256 => EncodingKey::from_secret(key.secret().expect("an HS256 secret")),
        alg => {
            let pem = key.to_pem().expect("PEM");
            match alg {
                Algorithm::RS256 => EncodingKey::from_rsa_pem(pem.as_bytes()),
                Algorithm::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()),
                _ => EncodingKey::from_ed_pem(pem.as_bytes()),
            }
            .expect("a PEM key jsonwebtoken reads")
        }
    }
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS of `header` and `claims`, signed with `key` under `alg`.
pub fn forge(
    header: &Value,
    claims: &Value,
    key: &jsonwebtoken::EncodingKey,
    alg: jsonwebtoken::Algorithm,
) -> String {
    let message =
        format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).expect("signed");
    format!("{message}.{signature}")
}

/// Header and claims of a token, unverified.
pub fn decode(token: &str) -> (Value, Value) {
    jwt_core::dangerous::decode_unverified(token).expect("a compact JWS")
}

/// An answer: status, headers and body (JSON when it parses, else `Null`), read in full.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every `Set-Cookie` header.
    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).collect()
    }

    /// Asserts the contract's error format: `status`, a JSON body of exactly `error` = `code`
    /// and a non-empty `message`; 401s carry the RFC 6750 challenge.
    pub fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "expected {status} {code}, got {}", self.text);
        let media = self.header("content-type").unwrap_or_default();
        assert!(media.starts_with("application/json"), "an error is JSON, got `{media}`");
        let object =
            self.body.as_object().unwrap_or_else(|| panic!("a JSON object: {}", self.text));
        assert_eq!(object.len(), 2, "exactly error and message: {}", self.text);
        assert_eq!(self.body["error"], code, "{}", self.text);
        let message = self.body["message"].as_str().expect("a message");
        assert!(!message.is_empty(), "an empty message");
        if status == StatusCode::UNAUTHORIZED {
            let challenge = self.header("www-authenticate").expect("WWW-Authenticate on a 401");
            assert!(challenge.starts_with(r#"Bearer realm="jwt-auth""#), "{challenge}");
        }
    }

    /// Asserts a refused token: 401, `code`, and the RFC 6750 §3 challenge naming
    /// `invalid_token` with a description.
    pub fn assert_token_refused(&self, code: &str) {
        self.assert_error(StatusCode::UNAUTHORIZED, code);
        let challenge = self.header("www-authenticate").expect("WWW-Authenticate");
        assert!(challenge.contains(r#"error="invalid_token""#), "{challenge}");
        assert!(challenge.contains(r#"error_description=""#), "{challenge}");
    }

    /// Asserts an OAuth error (RFC 6749 §5.2): 400, `error` = `code`, a description, and no
    /// caching.
    pub fn assert_oauth_error(&self, code: &str) {
        self.assert_oauth_error_status(StatusCode::BAD_REQUEST, code);
    }

    /// An RFC 6749 §5.2 error body, `{"error", "error_description"}`, with this status.
    pub fn assert_oauth_error_status(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "expected {status} {code}, got {}", self.text);
        let media = self.header("content-type").unwrap_or_default();
        assert!(media.starts_with("application/json"), "an error is JSON, got `{media}`");
        let object =
            self.body.as_object().unwrap_or_else(|| panic!("a JSON object: {}", self.text));
        assert_eq!(object.len(), 2, "exactly error and error_description: {}", self.text);
        assert_eq!(self.body["error"], code, "{}", self.text);
        let description = self.body["error_description"].as_str().expect("error_description");
        assert!(!description.is_empty(), "an empty error_description");
        assert_eq!(self.header("cache-control"), Some("no-store"));
        assert_eq!(self.header("pragma"), Some("no-cache"));
    }
}

/// Sends a request and reads the whole answer; a dropped connection fails the test.
pub async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("the server answers");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a complete body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply { status, headers, text, body }
}

/// A token pair as the login and refresh endpoints return it.
#[derive(Debug, Clone)]
pub struct Pair {
    pub access: String,
    pub refresh: String,
    pub body: Value,
}

impl Pair {
    /// Asserts a 200 token response in the contract's shape and returns the pair.
    pub fn from_reply(reply: &Reply) -> Pair {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert_eq!(
            reply.header("cache-control"),
            Some("no-store"),
            "token responses are not cached"
        );
        let body = &reply.body;
        let mut keys: Vec<_> = body.as_object().expect("an object").keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            ["access_token", "expires_in", "refresh_expires_in", "refresh_token", "token_type"],
            "{body}"
        );
        assert_eq!(body["token_type"], "Bearer");
        assert!(body["expires_in"].as_i64().is_some_and(|s| s > 0), "{body}");
        assert!(body["refresh_expires_in"].as_i64().is_some_and(|s| s > 0), "{body}");
        Pair {
            access: body["access_token"].as_str().expect("access_token").to_owned(),
            refresh: body["refresh_token"].as_str().expect("refresh_token").to_owned(),
            body: body.clone(),
        }
    }

    /// The session of the pair (`sid` of the access token).
    pub fn sid(&self) -> String {
        decode(&self.access).1["sid"].as_str().expect("sid").to_owned()
    }

    pub fn sub(&self) -> String {
        decode(&self.access).1["sub"].as_str().expect("sub").to_owned()
    }
}
