//! The `jwt-auth` binary as operators run it: started with no settings, stopped with SIGTERM
//! and started again on the same data, refusing bad settings with one line, its commands
//! (`migrate`, `user add`, `keys rotate|list|revoke`, `sessions revoke`), and two or three server
//! processes on one PostgreSQL database sharing users, revocations and keys within a second (the
//! contract), a restarted one included.
#![allow(clippy::disallowed_methods)] // test fixtures at the system's time

use crate::common::{cluster, pg, process};

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use process::{BIN, Server, jwt_auth};

const PASSWORD: &str = "correct horse battery staple";
/// A key-encryption key (32 bytes, base64).
const KEK: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("a client")
}

async fn register(server: &Server, email: &str) -> Value {
    let response = client()
        .post(server.url("/auth/register"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("register");
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.expect("a user")
}

/// Logs in; returns the token pair.
async fn login(server: &Server, email: &str) -> Value {
    let response = client()
        .post(server.url("/auth/login"))
        .json(&json!({"username": email, "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), StatusCode::OK, "login of {email}");
    response.json().await.expect("a token pair")
}

fn access(pair: &Value) -> &str {
    pair["access_token"].as_str().expect("access_token")
}

fn refresh_token(pair: &Value) -> &str {
    pair["refresh_token"].as_str().expect("refresh_token")
}

/// `GET /api/me` with a bearer token: the status and the error code, if any.
async fn me(server: &Server, token: &str) -> (StatusCode, Option<String>) {
    let response =
        client().get(server.url("/api/me")).bearer_auth(token).send().await.expect("/api/me");
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body["error"].as_str().map(str::to_owned))
}

async fn refresh(server: &Server, refresh_token: &str) -> (StatusCode, Value) {
    let response = client()
        .post(server.url("/auth/refresh"))
        .json(&json!({"refresh_token": refresh_token}))
        .send()
        .await
        .expect("refresh");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn logout(server: &Server, token: &str) {
    let response =
        client().post(server.url("/auth/logout")).bearer_auth(token).send().await.expect("logout");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

/// Polls `/api/me` until `token` is refused as revoked; returns how long that took.
async fn refused_within(server: &Server, token: &str, limit: Duration) -> Duration {
    refused_as_within(server, token, "token_revoked", limit).await
}

/// Polls `/api/me` until `token` is refused with error `code`; returns how long that took.
async fn refused_as_within(server: &Server, token: &str, code: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let (status, refused) = me(server, token).await;
        if status == StatusCode::UNAUTHORIZED {
            assert_eq!(refused.as_deref(), Some(code));
            return started.elapsed();
        }
        assert_eq!(status, StatusCode::OK);
        assert!(started.elapsed() < limit, "still accepted after {limit:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn run(command: &mut Command, stdin: Option<&str>) -> Output {
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("jwt-auth runs");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin
        && let Err(e) = input.write_all(text.as_bytes())
    {
        // A command that fails on its arguments exits without reading: the pipe is closed.
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
    }
    drop(input);
    // Read both pipes while the command runs: an output over the pipe's buffer (64 KiB; the
    // bash completion script is past it) would otherwise block the command forever.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                pipe.read_to_end(&mut bytes).expect("read the command's output");
            }
            bytes
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    // A command that should fail but serves instead must fail the test, not hang it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("jwt-auth can be waited on") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = String::from_utf8_lossy(&err.join().expect("stderr")).into_owned();
            panic!("jwt-auth did not exit within 60 s; stderr: {stderr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().expect("the stdout reader"),
        stderr: err.join().expect("the stderr reader"),
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn starts_with_no_settings_and_keeps_its_data_and_key_across_a_restart() {
    let dir = tempfile::tempdir().expect("a directory");
    let server = Server::start(dir.path(), &[]).await;
    assert!(dir.path().join("jwt-auth.db").is_file(), "the embedded database is in the cwd");
    let keys: Vec<_> = std::fs::read_dir(dir.path().join("keys")).expect("keys").collect();
    assert_eq!(keys.len(), 1, "one generated key");
    #[cfg(unix)]
    {
        // The key, and the database that holds password hashes, its WAL and shared memory
        // files too: the owner's alone.
        use std::os::unix::fs::PermissionsExt;
        let key = keys[0].as_ref().expect("entry").path();
        let db = |suffix: &str| dir.path().join(format!("jwt-auth.db{suffix}"));
        for file in [key, db(""), db("-wal"), db("-shm")] {
            let mode = std::fs::metadata(&file).expect("metadata").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", file.display());
        }
    }
    assert!(server.log().contains("generated a new signing key"), "{}", server.log());

    register(&server, "alice@example.com").await;
    let revoked = login(&server, "alice@example.com").await;
    logout(&server, access(&revoked)).await;
    let kept = login(&server, "alice@example.com").await;
    assert_eq!(me(&server, access(&revoked)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&server, access(&kept)).await.0, StatusCode::OK);
    // The refusal is logged with whose token it was and where it came from.
    let claims = jwt_core::dangerous::decode_unverified(access(&revoked)).expect("a JWT").1;
    let sid = claims["sid"].as_str().expect("sid");
    let sub = claims["sub"].as_str().expect("sub");
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("rejected access token"))
        .unwrap_or_else(|| panic!("a WARN line for the revoked token:\n{log}"));
    assert!(line.contains("WARN") && line.contains(sid) && line.contains(sub), "{line}");
    assert!(line.contains("127.0.0.1"), "{line}");
    // A malformed request gets its 400 without an ERROR line: clients cannot fill the log.
    let mut raw = std::net::TcpStream::connect(server.addr).expect("connect");
    raw.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Odd: a\x7f\r\n\r\n").expect("send");
    let mut answer = String::new();
    let _ = std::io::Read::read_to_string(&mut raw, &mut answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(!server.log().contains("ERROR"), "{}", server.log());

    let (status, log) = server.terminate();
    assert!(status.success(), "SIGTERM is a clean stop: {status:?}\n{log}");
    assert!(log.contains("jwt-auth stopped"), "{log}");
    for secret in [PASSWORD, access(&kept), refresh_token(&kept), access(&revoked)] {
        assert!(!log.contains(secret), "the log holds a password or a token");
    }

    let server = Server::start(dir.path(), &[]).await;
    assert!(!server.log().contains("generated a new signing key"), "the key was kept");
    assert_eq!(
        me(&server, access(&revoked)).await,
        (StatusCode::UNAUTHORIZED, Some("token_revoked".into())),
        "revoked before the restart, revoked after it"
    );
    assert_eq!(refresh(&server, refresh_token(&revoked)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&server, access(&kept)).await.0, StatusCode::OK, "signed before the restart");
    let (status, pair) = refresh(&server, refresh_token(&kept)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me(&server, access(&pair)).await.0, StatusCode::OK);
}

/// The first lines `command` prints, up to the one that says the server listens; then it is
/// killed.
fn lines_until_listening(command: &mut Command) -> String {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("listening") {
                break;
            }
        }
        let _ = tx.send(seen);
    });
    let seen = rx.recv_timeout(Duration::from_secs(60));
    let _ = child.kill();
    let _ = child.wait();
    seen.expect("the server said it listens")
}

#[test]
fn the_log_is_coloured_only_on_a_terminal() {
    let dir = tempfile::tempdir().expect("a directory");
    let env = [("BIND_ADDRESS", "127.0.0.1:0"), ("LOG_FORMAT", "pretty")];
    // Redirected (to a pipe here, to a file or a supervisor in production): plain text.
    let piped = lines_until_listening(jwt_auth(dir.path(), &env).arg("serve"));
    assert!(piped.contains("INFO"), "{piped}");
    assert!(!piped.contains('\u{1b}'), "escape codes in a redirected log: {piped:?}");
    // The control: on a terminal (a pseudo-terminal made by script(1)), colours.
    let mut script = Command::new("script");
    script.current_dir(dir.path()).env_clear().envs(env);
    if let Some(path) = std::env::var_os("PATH") {
        script.env("PATH", path);
    }
    script.args(["-qfec", &format!("exec {BIN} serve"), "/dev/null"]);
    let coloured = lines_until_listening(&mut script);
    assert!(coloured.contains('\u{1b}'), "no colour on a terminal: {coloured:?}");
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish() {
    let dir = tempfile::tempdir().expect("a directory");
    let server = Server::start(dir.path(), &[]).await;
    let url = server.url("/auth/register");
    // Registration hashes a password on a hashing thread: long enough to be in flight.
    let in_flight = tokio::spawn(async move {
        client()
            .post(url)
            .json(&json!({"email": "late@example.com", "password": PASSWORD}))
            .send()
            .await
            .map(|r| r.status())
    });
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");
    let answered = in_flight.await.expect("the task");
    // Either the request was accepted before the signal and completed, or it arrived after
    // the listener closed and was refused: it is never cut off half-way.
    match answered {
        Ok(status) => assert_eq!(status, StatusCode::CREATED),
        Err(e) => assert!(e.is_connect(), "the request was cut off: {e}"),
    }
}

#[test]
fn bad_settings_stop_start_up_with_one_line_naming_the_setting() {
    let dir = tempfile::tempdir().expect("a directory");
    let db = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("JWT_SECRET", "too-short")], "JWT_SECRET"),
        (&[("JWT_ALGORITHM", "HS512")], "JWT_ALGORITHM"),
        (
            &[("JWT_ALGORITHM", "RS256"), ("JWT_PRIVATE_KEY_FILE", "/nonexistent/key.pem")],
            "JWT_PRIVATE_KEY_FILE",
        ),
        (
            &[("JWT_ALGORITHM", "ES256"), ("JWT_PRIVATE_KEY_FILE", "Cargo.toml")],
            "JWT_PRIVATE_KEY_FILE",
        ),
        (&[("DATABASE_CONNECT_TIMEOUT", "0")], "DATABASE_CONNECT_TIMEOUT"),
        (&[("DATABASE_CONNECT_TIMEOUT", "1h")], "DATABASE_CONNECT_TIMEOUT"),
        // PostgreSQL keeps the keys in the database: a key-encryption key is required.
        (&[("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")], "KEY_ENCRYPTION_KEY"),
        (&[("KEY_ENCRYPTION_KEY", "c2hvcnQ=")], "KEY_ENCRYPTION_KEY"),
        (&[("KEY_ENCRYPTION_KEY_FILE", "/nonexistent/kek")], "KEY_ENCRYPTION_KEY_FILE"),
        (&[("DATABASE_URL", "mysql://localhost/x")], "DATABASE_URL"),
        // A SQLite file in a directory that does not exist: the path is named.
        (
            &[("DATABASE_URL", "sqlite:///nonexistent/dir/jwt-auth.db")],
            "/nonexistent/dir/jwt-auth.db",
        ),
        (&[("TOKEN_EXPIRY", "soon")], "TOKEN_EXPIRY"),
        (&[("SESSION_MAX_AGE", "0")], "SESSION_MAX_AGE"),
        (&[("TRUSTED_PROXIES", "10.0.0.0/33")], "TRUSTED_PROXIES"),
        (&[("ADMIN_EMAIL", "root@example.com")], "ADMIN_EMAIL"),
        (&[("BIND_ADDRESS", "nowhere")], "BIND_ADDRESS"),
        (&[("PUBLIC_URL", "auth.example.com")], "PUBLIC_URL"),
        (&[("PUBLIC_URL", "https://auth.example.com/?x=1")], "PUBLIC_URL"),
        (
            &[("ADMIN_EMAIL", "root@example..com"), ("ADMIN_PASSWORD", "long enough pw")],
            "ADMIN_EMAIL",
        ),
    ];
    std::fs::write(dir.path().join("Cargo.toml"), "not a key").expect("write");
    for (env, setting) in cases {
        let mut env = env.to_vec();
        if !env.iter().any(|(k, _)| *k == "DATABASE_URL") {
            env.push(("DATABASE_URL", &db));
        }
        if !env.iter().any(|(k, _)| *k == "BIND_ADDRESS") {
            env.push(("BIND_ADDRESS", "127.0.0.1:0"));
        }
        let started = Instant::now();
        let output = run(jwt_auth(dir.path(), &env).arg("serve"), None);
        assert!(!output.status.success(), "{setting}: started anyway");
        assert!(started.elapsed() < Duration::from_secs(20), "{setting}: slow to fail");
        let err = stderr(&output);
        let lines: Vec<_> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{setting}: one line, got {err:?}");
        assert!(lines[0].contains(setting), "{setting} is not named in {:?}", lines[0]);
    }
}

/// Runs `command`, and checks that it failed with one line holding each of `expected`;
/// returns how long it took.
fn fails_with_one_line_naming(command: &mut Command, expected: &[&str]) -> Duration {
    let started = Instant::now();
    let output = run(command, None);
    let took = started.elapsed();
    assert!(!output.status.success(), "succeeded: {}", stdout(&output));
    let err = stderr(&output);
    let lines: Vec<_> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line, got {err:?}");
    for part in expected {
        assert!(lines[0].contains(part), "{part:?} is not in {:?}", lines[0]);
    }
    took
}

/// A PostgreSQL server that accepts connections and never answers (the kernel completes the
/// handshake; nothing reads): every command gives up within DATABASE_CONNECT_TIMEOUT (5 s
/// unless set) with one line naming the server, where it used to wait for ever.
#[test]
fn commands_give_up_on_a_server_that_never_answers_within_the_connect_timeout() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let server = silent.local_addr().expect("an address").to_string();
    let url = format!("postgres://postgres@{server}/auth");
    let dir = tempfile::tempdir().expect("a directory");
    let env = [("DATABASE_URL", url.as_str()), ("DATABASE_CONNECT_TIMEOUT", "1s")];
    let revoke = ["sessions", "revoke", "--issued-before", "2026-01-01"];
    for args in [&["migrate"][..], &["user", "list"], &revoke, &["clients", "list"]] {
        let took = fails_with_one_line_naming(
            jwt_auth(dir.path(), &env).args(args),
            &["DATABASE_URL", &server, "did not answer within 1s"],
        );
        assert!(took >= Duration::from_secs(1), "{args:?} gave up after {took:?}");
        assert!(took < Duration::from_secs(4), "{args:?} gave up after {took:?}");
    }
    // The default bound.
    let took = fails_with_one_line_naming(
        jwt_auth(dir.path(), &[("DATABASE_URL", url.as_str())]).arg("migrate"),
        &[&server, "did not answer within 5s"],
    );
    eprintln!("`jwt-auth migrate` against a server that never answers failed after {took:?}");
    assert!((Duration::from_secs(5)..Duration::from_secs(8)).contains(&took), "{took:?}");
    drop(silent);
}

/// `serve` started while its PostgreSQL server is down (a private cluster, stopped): it
/// listens at once, /health answers 200, /ready 503 and every other route 503 with a JSON
/// error and Retry-After, and once the server is started it becomes ready by itself and
/// works. Beside it: a command fails at once with one line naming the server, and a server
/// that answers and refuses (an unknown role) stops `serve` with one line instead of retries.
#[tokio::test]
async fn serve_starts_while_postgres_is_down_and_becomes_ready_when_it_answers() {
    let Some(mut cluster) = cluster::Cluster::for_test() else { return };
    let dir = tempfile::tempdir().expect("a directory");
    let server = cluster.url.split('@').nth(1).and_then(|r| r.split('/').next()).expect("host");
    let server = server.to_owned();

    // Up, but refusing this role: not worth retrying.
    let unknown_role = cluster.url.replace("postgres://postgres@", "postgres://nobody@");
    let env = [("DATABASE_URL", unknown_role.as_str()), ("KEY_ENCRYPTION_KEY", KEK)];
    let mut serve = jwt_auth(dir.path(), &env);
    serve.args(["serve", "--bind", "127.0.0.1:0"]);
    fails_with_one_line_naming(&mut serve, &["DATABASE_URL", &server, "refused", "nobody"]);

    cluster.stop();
    let env = [
        ("DATABASE_URL", cluster.url.as_str()),
        ("KEY_ENCRYPTION_KEY", KEK),
        ("JWT_ALGORITHM", "EdDSA"),
    ];
    let took = fails_with_one_line_naming(
        jwt_auth(dir.path(), &env).arg("migrate"),
        &["DATABASE_URL", &server, "refused"],
    );
    assert!(took < Duration::from_secs(3), "a refused connection fails at once: {took:?}");

    let app = Server::listening(dir.path(), &env);
    let health = client().get(app.url("/health")).send().await.expect("GET /health");
    assert_eq!(health.status(), StatusCode::OK);
    let ready = client().get(app.url("/ready")).send().await.expect("GET /ready");
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = ready.json().await.expect("JSON");
    assert_eq!(body["database"], false, "{body}");
    let login = client()
        .post(app.url("/auth/login"))
        .json(&json!({"username": "alice@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("POST /auth/login");
    assert_eq!(login.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(login.headers().contains_key("retry-after"));
    let body: Value = login.json().await.expect("a JSON error");
    assert_eq!(body["error"], "unavailable", "{body}");

    // Some retries later, the database comes up: the instance gets ready by itself.
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.start();
    let came_up = Instant::now();
    app.wait_ready().await;
    eprintln!("ready {:?} after the database came up", came_up.elapsed());
    register(&app, "alice@example.com").await;
    let pair = login_with(&app, "alice@example.com", PASSWORD).await;
    assert_eq!(me(&app, access(&pair)).await.0, StatusCode::OK);
    let log = app.log();
    assert!(log.contains("the database is unreachable"), "{log}");
    assert!(log.contains("the database answered"), "{log}");
    assert!(!log.contains(KEK), "the key-encryption key is never logged");
}

#[tokio::test]
async fn commands_migrate_add_users_rotate_keys_and_void_sessions() {
    let dir = tempfile::tempdir().expect("a directory");
    let env = [("JWT_ALGORITHM", "EdDSA"), ("COOKIE_SECURE", "false")];

    let output = run(jwt_auth(dir.path(), &env).arg("migrate"), None);
    assert!(output.status.success(), "{}", stderr(&output));
    let output = run(
        jwt_auth(dir.path(), &env).args(["user", "add", "--email", "root@example.com"]),
        Some(PASSWORD),
    );
    assert!(!output.status.success(), "--password-stdin is required");
    let add = |email: &str, admin: bool, password: &str| {
        let mut command = jwt_auth(dir.path(), &env);
        command.args(["user", "add", "--email", email, "--password-stdin"]);
        if admin {
            command.arg("--admin");
        }
        run(&mut command, Some(&format!("{password}\n")))
    };
    let output = add("root@example.com", true, PASSWORD);
    assert!(output.status.success(), "{}", stderr(&output));
    let output = add("ROOT@example.com", false, PASSWORD);
    assert!(!output.status.success(), "the email is taken");
    assert_eq!(stderr(&output).lines().count(), 1, "{}", stderr(&output));
    let output = add("short@example.com", false, "short");
    assert!(!output.status.success(), "a short password is refused");
    assert!(stderr(&output).contains("8 to 256 characters"), "{}", stderr(&output));
    // Counted in characters as at registration: 7 `é` (14 bytes) are too few, 8 are enough.
    let output = add("seven@example.com", false, &"é".repeat(7));
    assert!(!output.status.success(), "seven characters are refused");
    let output = add("eight@example.com", false, &"é".repeat(8));
    assert!(output.status.success(), "{}", stderr(&output));
    for bad in ["dots@example..com", "rlo\u{202E}@example.com"] {
        let output = add(bad, false, PASSWORD);
        assert!(!output.status.success(), "{bad}: a bad email is refused");
        let err = stderr(&output);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("--email"), "{err}");
    }
    let output = add("good.dots@example.com", false, PASSWORD);
    assert!(output.status.success(), "{}", stderr(&output));

    let server = Server::start(dir.path(), &env).await;
    let admin = login(&server, "root@example.com").await;
    let users = client()
        .get(server.url("/api/users"))
        .bearer_auth(access(&admin))
        .send()
        .await
        .expect("users");
    assert_eq!(users.status(), StatusCode::OK, "the added user is an admin");

    // keys: one generated key, then a rotation that the running server picks up while it
    // keeps accepting tokens of the old key.
    let before = published_kids(&server).await;
    assert_eq!(before.len(), 1);
    let listed = run(jwt_auth(dir.path(), &env).args(["keys", "list"]), None);
    assert!(stdout(&listed).contains(&before[0]), "{}", stdout(&listed));
    let rotated = run(jwt_auth(dir.path(), &env).args(["keys", "rotate"]), None);
    assert!(rotated.status.success(), "{}", stderr(&rotated));
    let listed = stdout(&run(jwt_auth(dir.path(), &env).args(["keys", "list"]), None));
    assert_eq!(listed.lines().count(), 2, "{listed}");
    let deadline = Instant::now() + Duration::from_secs(15);
    let after = loop {
        let after = published_kids(&server).await;
        if after.len() == 2 {
            break after;
        }
        assert!(Instant::now() < deadline, "the rotated key was not picked up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(after.contains(&before[0]), "the old public key stays published");
    assert_eq!(me(&server, access(&admin)).await.0, StatusCode::OK, "old-key token still valid");
    let fresh = login(&server, "root@example.com").await;
    let (header, _) = jwt_core::dangerous::decode_unverified(access(&fresh)).expect("a JWS");
    let new_kid = after.iter().find(|k| **k != before[0]).expect("a new kid");
    assert_eq!(header["kid"], new_kid.as_str(), "new tokens use the new key");

    // sessions revoke --issued-before: bearer checks, refresh and introspection all refuse
    // what was issued before the cut-off, within seconds, on the running server.
    let user_id = me_id(&server, access(&fresh)).await;
    let unknown = run(
        jwt_auth(dir.path(), &env).args([
            "sessions",
            "revoke",
            "--issued-before",
            "2026-01-01T00:00:00Z",
            "--user",
            "no-such-user",
        ]),
        None,
    );
    assert!(!unknown.status.success(), "an unknown user is an error, not a silent no-op");
    assert!(stderr(&unknown).contains("--user"), "{}", stderr(&unknown));
    let cut_off = (chrono::Utc::now() + chrono::TimeDelta::seconds(1)).to_rfc3339();
    let output = run(
        jwt_auth(dir.path(), &env).args([
            "sessions",
            "revoke",
            "--issued-before",
            &cut_off,
            "--user",
            &user_id,
        ]),
        None,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains(&user_id), "{}", stdout(&output));
    refused_within(&server, access(&fresh), Duration::from_secs(3)).await;
    assert_eq!(me(&server, access(&admin)).await.0, StatusCode::UNAUTHORIZED);
    let (status, body) = refresh(&server, refresh_token(&fresh)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    tokio::time::sleep(Duration::from_millis(1_100)).await; // past the cut-off
    let again = login(&server, "root@example.com").await;
    let introspected: Value = client()
        .post(server.url("/auth/introspect"))
        .bearer_auth(access(&again))
        .form(&[("token", access(&fresh))])
        .send()
        .await
        .expect("introspect")
        .json()
        .await
        .expect("json");
    assert_eq!(introspected, json!({"active": false}));
    assert_eq!(me(&server, access(&again)).await.0, StatusCode::OK, "issued after the cut-off");
}

async fn me_id(server: &Server, token: &str) -> String {
    let me: Value = client()
        .get(server.url("/api/me"))
        .bearer_auth(token)
        .send()
        .await
        .expect("/api/me")
        .json()
        .await
        .expect("json");
    me["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn two_instances_on_one_postgres_database_honour_each_others_revocations() {
    let Some(db) = pg::PgDatabase::for_test("jwt_api_test").await else { return };
    let dir = tempfile::tempdir().expect("a directory");
    // Both instances share the keys of the database; any reuse revokes the session.
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("REFRESH_REUSE_GRACE", "0"),
        ("KEY_ENCRYPTION_KEY", KEK),
    ];
    let a = Server::start(dir.path(), &env).await;
    let b = Server::start(dir.path(), &env).await;

    register(&a, "alice@example.com").await;
    let first = login(&a, "alice@example.com").await;
    assert_eq!(me(&b, access(&first)).await.0, StatusCode::OK, "B verifies what A signed");
    let second = login(&b, "alice@example.com").await;

    logout(&a, access(&first)).await;
    let took = refused_within(&b, access(&first), Duration::from_secs(1)).await;
    eprintln!("a logout on A was refused on B after {took:?}");
    assert_eq!(me(&b, access(&second)).await.0, StatusCode::OK, "other sessions go on");

    // A refresh token replayed on the other instance: reuse detected, session revoked on both.
    let (status, rotated) = refresh(&a, refresh_token(&second)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = refresh(&b, refresh_token(&second)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "refresh_token_reused");
    assert_eq!(me(&b, access(&rotated)).await.0, StatusCode::UNAUTHORIZED);
    let took = refused_within(&a, access(&rotated), Duration::from_secs(1)).await;
    eprintln!("a reuse detected on B was honoured on A after {took:?}");
    drop((a, b));
}

/// The `kid` in the header of `token`.
fn kid_of(token: &str) -> String {
    let (header, _) = jwt_core::dangerous::decode_unverified(token).expect("a JWT");
    header["kid"].as_str().expect("a kid").to_owned()
}

fn sid_of(token: &str) -> String {
    let (_, claims) = jwt_core::dangerous::decode_unverified(token).expect("a JWT");
    claims["sid"].as_str().expect("a sid").to_owned()
}

/// Polls `GET /api/me` until `roles` are the user's; returns how long that took.
async fn roles_within(server: &Server, token: &str, roles: &[&str], limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let response = client().get(server.url("/api/me")).bearer_auth(token).send().await;
        let me: Value = response.expect("/api/me").json().await.expect("json");
        if me["roles"] == json!(roles) {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "roles still {} after {limit:?}", me["roles"]);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Polls `/.well-known/jwks.json` until it lists `kid`; returns how long that took.
async fn published_within(server: &Server, kid: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let response = client().get(server.url("/.well-known/jwks.json")).send().await;
        let jwks: Value = response.expect("the JWK set").json().await.expect("json");
        let keys = jwks["keys"].as_array().expect("keys");
        if keys.iter().any(|k| k["kid"] == kid) {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{kid} not published after {limit:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Three `jwt-auth serve` processes on one PostgreSQL database, as behind a load balancer,
/// with keys kept in the database: what one does, the others honour within the contract's
/// second (pushed by PostgreSQL, with a poll every second behind it), and a restarted one
/// starts with all of it.
#[tokio::test]
async fn three_instances_on_one_postgres_database_share_users_revocations_and_keys() {
    const WITHIN: Duration = Duration::from_secs(1);
    let Some(db) = pg::PgDatabase::for_test("jwt_api_test").await else { return };
    let dir = tempfile::tempdir().expect("a directory");
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("KEY_ENCRYPTION_KEY", KEK),
        ("JWT_ALGORITHM", "EdDSA"),
        ("ADMIN_EMAIL", "admin@example.com"),
        ("ADMIN_PASSWORD", PASSWORD),
        ("LOGIN_RATE_LIMIT", "0"),
        ("REFRESH_REUSE_GRACE", "2s"),
    ];
    let a = Server::start(dir.path(), &env).await;
    let b = Server::start(dir.path(), &env).await;
    let c = Server::start(dir.path(), &env).await;

    // Login on A, /api/me on B and C.
    register(&a, "alice@example.com").await;
    let alice = login(&a, "alice@example.com").await;
    for server in [&a, &b, &c] {
        assert_eq!(me(server, access(&alice)).await.0, StatusCode::OK);
    }
    let id = me_id(&b, access(&alice)).await;

    // A role change on A is seen on B and C (which have alice cached) within a second.
    let admin = login(&a, "admin@example.com").await;
    let changed = client()
        .patch(a.url(&format!("/api/admin/users/{id}")))
        .bearer_auth(access(&admin))
        .json(&json!({"roles": ["user", "editor"]}))
        .send()
        .await
        .expect("PATCH");
    assert_eq!(changed.status(), StatusCode::OK);
    for server in [&b, &c] {
        let took = roles_within(server, access(&alice), &["user", "editor"], WITHIN).await;
        eprintln!("a role change on A was seen on another instance after {took:?}");
    }

    // A logout on A is refused on B and C within a second; other sessions go on.
    let other = login(&c, "alice@example.com").await;
    logout(&a, access(&alice)).await;
    for server in [&b, &c] {
        let took = refused_within(server, access(&alice), WITHIN).await;
        eprintln!("a logout on A was refused on another instance after {took:?}");
        assert_eq!(me(server, access(&other)).await.0, StatusCode::OK);
    }

    // `keys rotate`: every instance publishes the new key within a second (it signs only
    // a JWK-set lifetime later, so every verifier has it before any token does).
    let keys = |args: &[&str]| {
        let output = run(jwt_auth(dir.path(), &env).arg("keys").args(args), None);
        assert!(output.status.success(), "keys {args:?}: {}", stderr(&output));
        stdout(&output)
    };
    let before = login(&b, "alice@example.com").await;
    let first_kid = kid_of(access(&before));
    keys(&["rotate"]);
    let listed = keys(&["list"]);
    let pending = listed
        .lines()
        .find(|l| l.split_whitespace().nth(2) == Some("pending"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no pending key in {listed}"))
        .to_owned();
    for server in [&a, &b, &c] {
        let took = published_within(server, &pending, WITHIN).await;
        eprintln!("a rotated key was published by an instance after {took:?}");
    }
    // `keys rotate --now` (a compromised key): a token signed with the new key on A verifies
    // on B and C at once.
    keys(&["rotate", "--now"]);
    let started = Instant::now();
    let rotated = loop {
        let pair = login(&a, "alice@example.com").await;
        if kid_of(access(&pair)) != first_kid {
            break pair;
        }
        assert!(started.elapsed() < WITHIN, "A still signs with {first_kid} after {WITHIN:?}");
    };
    for server in [&b, &c] {
        assert_eq!(me(server, access(&rotated)).await.0, StatusCode::OK, "verified at once");
    }
    // `keys revoke` of the old key: its tokens are refused everywhere within a second.
    assert_eq!(me(&c, access(&before)).await.0, StatusCode::OK, "the old key verifies");
    keys(&["revoke", &first_kid]);
    for server in [&a, &b, &c] {
        let took = refused_as_within(server, access(&before), "invalid_token", WITHIN).await;
        eprintln!("a revoked key's token was refused by an instance after {took:?}");
        assert_eq!(me(server, access(&rotated)).await.0, StatusCode::OK);
    }

    // 50 concurrent refreshes of one token, split across the instances: all within the
    // grace, so every one gets a working pair of the same session, and the token was
    // retired once: presented after the grace, it is reuse on any instance.
    let pair = login(&a, "alice@example.com").await;
    let servers = [&a, &b, &c];
    let replies = futures_util::future::join_all(
        (0..50).map(|i| refresh(servers[i % 3], refresh_token(&pair))),
    )
    .await;
    for (i, (status, next)) in replies.iter().enumerate() {
        assert_eq!(*status, StatusCode::OK, "refresh {i}: {next}");
        assert_eq!(sid_of(access(next)), sid_of(access(&pair)));
        let elsewhere = servers[(i + 1) % 3];
        assert_eq!(me(elsewhere, access(next)).await.0, StatusCode::OK);
        let (status, _) = refresh(elsewhere, refresh_token(next)).await;
        assert_eq!(status, StatusCode::OK, "the pair of refresh {i} refreshes");
    }
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let (status, body) = refresh(&c, refresh_token(&pair)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("refresh_token_reused"))
    );

    // B restarted loses nothing: what happened while it was down is honoured at its first
    // answer, and tokens from before verify.
    let (status, _) = b.terminate();
    assert!(status.success());
    let kept = login(&a, "alice@example.com").await;
    let ended = login(&a, "alice@example.com").await;
    logout(&c, access(&ended)).await;
    // (The admin's first token was signed with the revoked key.)
    let admin = login(&c, "admin@example.com").await;
    let changed = client()
        .patch(c.url(&format!("/api/admin/users/{id}")))
        .bearer_auth(access(&admin))
        .json(&json!({"roles": ["user"]}))
        .send()
        .await
        .expect("PATCH");
    assert_eq!(changed.status(), StatusCode::OK);
    let b = Server::start(dir.path(), &env).await;
    assert_eq!(
        me(&b, access(&ended)).await,
        (StatusCode::UNAUTHORIZED, Some("token_revoked".into()))
    );
    // At the first ask: a zero bound fails unless the first answer has them.
    roles_within(&b, access(&kept), &["user"], Duration::ZERO).await;
    assert_eq!(me(&b, access(&rotated)).await.0, StatusCode::OK);
    drop((a, b, c));
}

/// The kids `server` publishes, sorted.
async fn published_kids(server: &Server) -> Vec<String> {
    let jwks: Value = client()
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("GET jwks")
        .json()
        .await
        .expect("a JWK set");
    let mut kids: Vec<String> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("a kid").to_owned())
        .collect();
    kids.sort();
    kids
}

/// Four instances started at once on one empty PostgreSQL database, each with its own data
/// directory (so each would make a key of its own): exactly one first key is stored, every
/// instance signs with it and publishes it alone, and a token from one verifies on all.
#[tokio::test]
async fn instances_started_together_on_an_empty_database_store_one_first_key() {
    const INSTANCES: usize = 4;
    let Some(db) = pg::PgDatabase::for_test("jwt_api_test").await else { return };
    let dirs: Vec<_> = (0..INSTANCES).map(|_| tempfile::tempdir().expect("a directory")).collect();
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("KEY_ENCRYPTION_KEY", KEK),
        ("JWT_ALGORITHM", "EdDSA"),
        ("LOGIN_RATE_LIMIT", "0"),
    ];
    let servers =
        futures_util::future::join_all(dirs.iter().map(|dir| Server::start(dir.path(), &env)))
            .await;

    let listed = run(jwt_auth(dirs[0].path(), &env).args(["keys", "list", "--json"]), None);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let listed: Value = serde_json::from_str(&stdout(&listed)).expect("JSON");
    let kids: Vec<&str> = listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|k| k["kid"].as_str().expect("a kid"))
        .collect();
    assert_eq!(kids.len(), 1, "one stored key: {listed}");
    for server in &servers {
        assert_eq!(published_kids(server).await, [kids[0]], "{listed}");
    }
    register(&servers[0], "alice@example.com").await;
    for (i, server) in servers.iter().enumerate() {
        let pair = login(server, "alice@example.com").await;
        assert_eq!(kid_of(access(&pair)), kids[0], "instance {i} signs with the stored key");
        for other in &servers {
            assert_eq!(me(other, access(&pair)).await.0, StatusCode::OK);
        }
    }
}

/// Another key-encryption key than [`KEK`] (32 bytes, base64).
const NEW_KEK: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

/// `keys rekey` under two running instances on one PostgreSQL database: both keep signing and
/// verifying throughout (a rolling restart onto the new KEK with the old one as previous, then
/// the re-seal, then a restart with only the new one), and after it nothing is lost: the same
/// keys sign, tokens from before verify. Beside it: after the re-seal an instance given only
/// the old KEK refuses to start naming the setting, a rekey without the current KEK is
/// refused, and one with a malformed new KEK changes nothing.
#[tokio::test]
async fn keys_rekey_under_two_running_instances_loses_nothing() {
    let Some(db) = pg::PgDatabase::for_test("jwt_api_test").await else { return };
    let dir = tempfile::tempdir().expect("a directory");
    let old_env = [
        ("DATABASE_URL", db.url.as_str()),
        ("KEY_ENCRYPTION_KEY", KEK),
        ("JWT_ALGORITHM", "EdDSA"),
        ("LOGIN_RATE_LIMIT", "0"),
    ];
    let both_env = [
        ("DATABASE_URL", db.url.as_str()),
        ("KEY_ENCRYPTION_KEY", NEW_KEK),
        ("KEY_ENCRYPTION_KEY_PREVIOUS", KEK),
        ("JWT_ALGORITHM", "EdDSA"),
        ("LOGIN_RATE_LIMIT", "0"),
    ];
    let new_env = [
        ("DATABASE_URL", db.url.as_str()),
        ("KEY_ENCRYPTION_KEY", NEW_KEK),
        ("JWT_ALGORITHM", "EdDSA"),
        ("LOGIN_RATE_LIMIT", "0"),
    ];
    let works = |a: &Server, b: &Server, what: &str| {
        let (a, b, what) = (a.url(""), b.url(""), what.to_owned());
        async move {
            for (from, to) in [(&a, &b), (&b, &a)] {
                let login: Value = client()
                    .post(format!("{from}/auth/login"))
                    .json(&json!({"username": "alice@example.com", "password": PASSWORD}))
                    .send()
                    .await
                    .expect("login")
                    .json()
                    .await
                    .expect("JSON");
                let token =
                    login["access_token"].as_str().unwrap_or_else(|| panic!("{what}: {login}"));
                let me = client().get(format!("{to}/api/me")).bearer_auth(token).send().await;
                assert_eq!(me.expect("me").status(), StatusCode::OK, "{what}");
            }
        }
    };
    let a = Server::start(dir.path(), &old_env).await;
    let b = Server::start(dir.path(), &old_env).await;
    register(&a, "alice@example.com").await;
    let before = login(&a, "alice@example.com").await;
    let kid = kid_of(access(&before));
    works(&a, &b, "before").await;

    // Refused, changing nothing: no current KEK; a new KEK that is not 32 bytes of base64.
    let new_kek_file = dir.path().join("new-kek");
    std::fs::write(&new_kek_file, format!("{NEW_KEK}\n")).expect("write");
    let rekey = |env: &[(&str, &str)], args: &[&str], stdin: Option<&str>| {
        run(jwt_auth(dir.path(), env).args(["keys", "rekey"]).args(args), stdin)
    };
    let file_arg = ["--new-key-encryption-key-file", new_kek_file.to_str().expect("utf-8")];
    let no_kek = [("DATABASE_URL", db.url.as_str())];
    fails_with_one_line(&rekey(&no_kek, &file_arg, None), "KEY_ENCRYPTION_KEY");
    let bad = rekey(&old_env, &["--new-key-encryption-key-stdin"], Some("c2hvcnQ="));
    fails_with_one_line(&bad, "--new-key-encryption-key-stdin");

    // Rolling restart onto the new KEK, the old one as previous: B opens the old-sealed keys.
    b.terminate();
    let b = Server::start(dir.path(), &both_env).await;
    works(&a, &b, "B on both KEKs, keys still under the old").await;

    let resealed = rekey(&old_env, &file_arg, None);
    assert!(resealed.status.success(), "{}", stderr(&resealed));
    assert!(stdout(&resealed).starts_with("re-sealed 1 signing keys"), "{}", stdout(&resealed));
    works(&a, &b, "A on the old KEK (keys in memory), B on both, after the re-seal").await;

    // Only the old KEK can no longer start; the new one alone can.
    let mut serve_old = jwt_auth(dir.path(), &old_env);
    serve_old.args(["serve", "--bind", "127.0.0.1:0"]);
    fails_with_one_line(&run(&mut serve_old, None), "KEY_ENCRYPTION_KEY");
    a.terminate();
    b.terminate();
    let a = Server::start(dir.path(), &new_env).await;
    let b = Server::start(dir.path(), &new_env).await;
    works(&a, &b, "both on the new KEK alone").await;
    assert_eq!(me(&b, access(&before)).await.0, StatusCode::OK, "a token from before verifies");
    let after = login(&b, "alice@example.com").await;
    assert_eq!(kid_of(access(&after)), kid, "the same key signs");
    // The re-seal read back through `keys list` under the new KEK alone.
    let listed = run(jwt_auth(dir.path(), &new_env).args(["keys", "list"]), None);
    assert!(stdout(&listed).contains(&kid), "{}", stdout(&listed));
    // A second rekey from stdin, back to the first KEK, works the same way.
    let back = rekey(&new_env, &["--new-key-encryption-key-stdin"], Some(KEK));
    assert!(back.status.success(), "{}", stderr(&back));
}

/// `jwt-auth clients add|list|remove` as operators run them, against two servers on one
/// PostgreSQL database: the secret is printed once and works for the client credentials grant
/// on either instance; a taken name or an unknown id fails with one line; removing the client
/// voids its tokens on both within a second.
#[tokio::test]
async fn clients_commands_and_their_tokens_across_two_instances() {
    let Some(db) = pg::PgDatabase::for_test("jwt_api_test").await else { return };
    let dir = tempfile::tempdir().expect("a directory");
    let env = [("DATABASE_URL", db.url.as_str()), ("KEY_ENCRYPTION_KEY", KEK)];
    let clients = |args: &[&str]| run(jwt_auth(dir.path(), &env).arg("clients").args(args), None);

    let added = clients(&["add", "billing", "--role", "service", "--role", "admin"]);
    assert!(added.status.success(), "{}", stderr(&added));
    let printed = stdout(&added);
    let line = |name: &str| {
        printed
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} in {printed}"))
            .to_owned()
    };
    let (id, secret) = (line("client_id"), line("client_secret"));
    let json = clients(&["add", "reports", "--json"]);
    let reports: Value = serde_json::from_str(&stdout(&json)).expect("one JSON object");
    assert_eq!(reports["roles"], json!(["service"]));
    assert!(reports["client_secret"].as_str().is_some_and(|s| s.starts_with("jas_")));
    fails_with_one_line(&clients(&["add", "billing"]), "billing");
    fails_with_one_line(&clients(&["add", "x", "--role", "two words"]), "two words");
    let listed = stdout(&clients(&["list"]));
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(listed.contains(&id) && listed.contains("service,admin"), "{listed}");
    assert!(!listed.contains(&secret), "the secret is never shown again");

    let a = Server::start(dir.path(), &env).await;
    let b = Server::start(dir.path(), &env).await;
    let token_on = |server: &Server| {
        client()
            .post(server.url("/auth/token"))
            .basic_auth(&id, Some(&secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    let reply: Value = token_on(&a).await.expect("token").json().await.expect("json");
    let token = reply["access_token"].as_str().expect("a token").to_owned();
    let users = |server: &Server| client().get(server.url("/api/users")).bearer_auth(&token).send();
    for server in [&a, &b] {
        assert_eq!(users(server).await.expect("users").status(), StatusCode::OK);
    }

    fails_with_one_line(&clients(&["remove", "no-such-client"]), "no-such-client");
    let removed = clients(&["remove", &id]);
    assert!(removed.status.success(), "{}", stderr(&removed));
    for server in [&a, &b] {
        let started = Instant::now();
        loop {
            let status = users(server).await.expect("users").status();
            if status == StatusCode::UNAUTHORIZED {
                break;
            }
            assert_eq!(status, StatusCode::OK);
            assert!(started.elapsed() < Duration::from_secs(1), "still accepted after 1 s");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        eprintln!("a removed client's token was refused after {:?}", started.elapsed());
        let refused = token_on(server).await.expect("token");
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    }
    drop((a, b));
}

/// `jwt-auth clients add --require-dpop`, for a service client and an app alike: `--json`
/// shows `"require_dpop": true`, `clients list --json` lists it so, and the listing's line
/// says `DPoP required`; a client added without the flag shows `false` and no such words.
#[tokio::test]
async fn clients_add_require_dpop_is_shown_by_add_and_list() {
    let dir = tempfile::tempdir().expect("a directory");
    let env = [("KEY_ENCRYPTION_KEY", KEK)];
    let clients = |args: &[&str]| {
        let output = run(jwt_auth(dir.path(), &env).arg("clients").args(args), None);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        stdout(&output)
    };
    let add = |args: &[&str]| -> Value {
        serde_json::from_str(&clients(&[&["add"], args, &["--json"]].concat())).expect("JSON")
    };
    let plain = add(&["billing"]);
    let bound = add(&["signer", "--require-dpop"]);
    let app =
        add(&["phone", "--redirect-uri", "com.example.app:/cb", "--public", "--require-dpop"]);
    assert_eq!(plain["require_dpop"], json!(false), "not unless asked: {plain}");
    assert_eq!(bound["require_dpop"], json!(true), "{bound}");
    assert_eq!((&app["require_dpop"], &app["public"]), (&json!(true), &json!(true)), "{app}");
    // Its own flag: neither first-party nor public because of it.
    assert_eq!((&bound["first_party"], &bound["public"]), (&json!(false), &json!(false)));
    assert_eq!(app["first_party"], json!(false), "{app}");

    let listed: Value = serde_json::from_str(&clients(&["list", "--json"])).expect("JSON");
    let listed = listed.as_array().expect("an array");
    assert_eq!(listed.len(), 3, "{listed:?}");
    // Listed as added, but for the secret (and the time, which the database keeps to the
    // microsecond).
    let but_time = |client: &Value| {
        let mut client = client.clone();
        let fields = client.as_object_mut().expect("an object");
        fields.remove("client_secret");
        fields.remove("created");
        client
    };
    let listed: Vec<Value> = listed.iter().map(but_time).collect();
    for added in [plain, bound, app] {
        assert!(listed.contains(&but_time(&added)), "{added} in {listed:?}");
    }
    let lines = clients(&["list"]);
    let line = |name: &str| {
        let named = format!("  {name}  ");
        lines.lines().find(|l| l.contains(&named)).unwrap_or_else(|| panic!("{name}: {lines}"))
    };
    assert!(!line("billing").contains("DPoP"), "{lines}");
    assert!(line("signer").ends_with("  DPoP required"), "{lines}");
    assert!(line("phone").ends_with("  public, DPoP required  com.example.app:/cb"), "{lines}");
}

/// The cross-instance revocation lag between two `jwt-auth serve` processes over 1,000
/// logouts on A, each timed from the moment A answered the logout until B's `/api/me` refuses
/// the token (asked again as soon as it answers). A measurement, not a test of a figure: run
/// it with `CI=1 cargo test -p jwt-auth-api --test main -- --ignored --nocapture
/// processes::revocation_lag`.
#[tokio::test]
#[ignore = "a measurement; run by hand"]
async fn revocation_lag_between_two_processes() {
    const LOGOUTS: usize = 1_000;
    let Some(db) = pg::PgDatabase::for_test("jwt_api_test").await else { return };
    let dir = tempfile::tempdir().expect("a directory");
    let env =
        [("DATABASE_URL", db.url.as_str()), ("LOGIN_RATE_LIMIT", "0"), ("KEY_ENCRYPTION_KEY", KEK)];
    let a = Server::start(dir.path(), &env).await;
    let b = Server::start(dir.path(), &env).await;
    register(&a, "alice@example.com").await;
    let mut lags = Vec::with_capacity(LOGOUTS);
    for _ in 0..LOGOUTS {
        let pair = login(&a, "alice@example.com").await;
        assert_eq!(me(&b, access(&pair)).await.0, StatusCode::OK, "accepted on B before");
        logout(&a, access(&pair)).await;
        let answered = Instant::now();
        loop {
            let (status, _) = me(&b, access(&pair)).await;
            if status == StatusCode::UNAUTHORIZED {
                break;
            }
            assert!(answered.elapsed() < Duration::from_secs(5), "never refused on B");
        }
        lags.push(answered.elapsed());
    }
    lags.sort();
    let at = |q: f64| lags[((lags.len() as f64 * q).ceil() as usize).clamp(1, lags.len()) - 1];
    eprintln!(
        "revocation lag between two processes over {LOGOUTS} logouts: p50 {:?}, p99 {:?}, max {:?}",
        at(0.50),
        at(0.99),
        lags[lags.len() - 1]
    );
    drop((a, b));
}

/// Exactly one non-empty line on stderr, naming `what`, and a failure exit.
fn fails_with_one_line(output: &Output, what: &str) {
    assert!(!output.status.success(), "succeeded: {}", stdout(output));
    let err = stderr(output);
    let lines: Vec<_> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line, got {err:?}");
    assert!(lines[0].contains(what), "`{what}` is not in {:?}", lines[0]);
}

#[tokio::test]
async fn keys_rotate_list_and_revoke_on_postgres_exit_codes_and_one_line_errors() {
    let Some(db) = pg::PgDatabase::for_test("jwt_api_test").await else { return };
    let dir = tempfile::tempdir().expect("a directory");
    let env = [("DATABASE_URL", db.url.as_str()), ("KEY_ENCRYPTION_KEY", KEK)];
    let keys = |args: &[&str], env: &[(&str, &str)]| {
        run(jwt_auth(dir.path(), env).arg("keys").args(args), None)
    };
    let list = || {
        let output = keys(&["list"], &env);
        assert!(output.status.success(), "{}", stderr(&output));
        stdout(&output)
    };
    let kid_in = |state: &str, listed: &str| -> String {
        let line = listed.lines().find(|l| l.split_whitespace().nth(2) == Some(state));
        let line = line.unwrap_or_else(|| panic!("no {state} key in {listed}"));
        line.split_whitespace().next().expect("a kid").to_owned()
    };

    // Without the key-encryption key, rotating on PostgreSQL is refused, naming it.
    let no_kek = [("DATABASE_URL", db.url.as_str())];
    fails_with_one_line(&keys(&["rotate"], &no_kek), "KEY_ENCRYPTION_KEY");

    let first = keys(&["rotate"], &env);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(stdout(&first).contains("signing now"), "{}", stdout(&first));
    let active = kid_in("active", &list());
    let second = keys(&["rotate"], &env);
    assert!(stdout(&second).contains("signs from"), "{}", stdout(&second));
    let listed = list();
    assert_eq!(listed.lines().count(), 2, "{listed}");
    let pending = kid_in("pending", &listed);
    assert_eq!(kid_in("active", &listed), active, "the old key signs until the new one activates");

    fails_with_one_line(&keys(&["revoke", &active], &env), "rotate first");
    fails_with_one_line(&keys(&["revoke", "no-such-kid"], &env), "no-such-kid");
    assert_eq!(list(), listed, "nothing changed");

    let revoked = keys(&["revoke", &pending], &env);
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    assert_eq!(kid_in("revoked", &list()), pending);

    // A server given another key-encryption key refuses to start with one line.
    let other = [
        ("DATABASE_URL", db.url.as_str()),
        ("KEY_ENCRYPTION_KEY", "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="),
    ];
    let mut serve = jwt_auth(dir.path(), &other);
    serve.arg("serve").env("BIND_ADDRESS", "127.0.0.1:0");
    fails_with_one_line(&run(&mut serve, None), "KEY_ENCRYPTION_KEY");
}

#[test]
fn keys_revoke_on_sqlite_without_a_key_encryption_key_names_the_setting() {
    let dir = tempfile::tempdir().expect("a directory");
    let db = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let output =
        run(jwt_auth(dir.path(), &[("DATABASE_URL", &db)]).args(["keys", "revoke", "x"]), None);
    fails_with_one_line(&output, "KEY_ENCRYPTION_KEY");
}

/// The `ADMIN_EMAIL` account is created once, with its `user_created` event; a later start
/// with another `ADMIN_PASSWORD` leaves the password as it is and says so in the log, naming
/// the command that changes it.
#[tokio::test]
async fn admin_email_creates_the_account_once_and_a_later_password_is_said_to_be_ignored() {
    let dir = tempfile::tempdir().expect("a directory");
    let first = [("ADMIN_EMAIL", "root@example.com"), ("ADMIN_PASSWORD", PASSWORD)];
    let server = Server::start(dir.path(), &first).await;
    assert_eq!(login_status(&server, "root@example.com", PASSWORD).await, StatusCode::OK);
    let (_, log) = server.terminate();
    assert!(log.contains("created the admin account from ADMIN_EMAIL"), "{log}");
    assert!(!log.contains("ADMIN_PASSWORD is ignored"), "{log}");
    let created = || {
        let args = ["events", "--kind", "user_created", "--json"];
        let output = run(jwt_auth(dir.path(), &[]).args(args), None);
        assert!(output.status.success(), "{}", stderr(&output));
        stdout(&output)
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON"))
            .collect::<Vec<Value>>()
    };
    let events = created();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0]["user_id"].is_string(), "{events:?}");

    let other = "another password entirely";
    let again = [("ADMIN_EMAIL", "root@example.com"), ("ADMIN_PASSWORD", other)];
    let server = Server::start(dir.path(), &again).await;
    assert_eq!(login_status(&server, "root@example.com", other).await, StatusCode::UNAUTHORIZED);
    assert_eq!(login_status(&server, "root@example.com", PASSWORD).await, StatusCode::OK);
    let (_, log) = server.terminate();
    let line = log
        .lines()
        .find(|l| l.contains("ADMIN_PASSWORD is ignored"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("jwt-auth user set-password"), "{line}");
    assert!(!line.contains(other) && !line.contains(PASSWORD), "no password in the log: {line}");
    assert_eq!(created().len(), 1, "no second account, no second event");
}

/// `keys revoke` and `clients remove` read how long their revocation matters from the token
/// lifetimes the servers recorded in the database: run without `TOKEN_EXPIRY`, beside
/// servers with longer lifetimes than the defaults, the revocations last as long as those
/// servers' tokens.
#[tokio::test]
async fn keys_revoke_and_clients_remove_take_the_token_lifetimes_the_servers_recorded() {
    let dir = tempfile::tempdir().expect("a directory");
    let with_kek = [("KEY_ENCRYPTION_KEY", KEK)];
    let serve_env =
        [("KEY_ENCRYPTION_KEY", KEK), ("TOKEN_EXPIRY", "2h"), ("REFRESH_TOKEN_EXPIRY", "30d")];
    let server = Server::start(dir.path(), &serve_env).await;
    let cli = |args: &[&str]| {
        let output = run(jwt_auth(dir.path(), &with_kek).args(args), None);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        stdout(&output)
    };
    cli(&["keys", "rotate", "--now"]);
    let old = key_ids(dir.path(), &with_kek, "retired");
    let started = chrono::Utc::now();
    cli(&["keys", "revoke", &old[0]]);
    let added = cli(&["clients", "add", "billing", "--json"]);
    let client: Value = serde_json::from_str(&added).expect("JSON");
    cli(&["clients", "remove", client["client_id"].as_str().expect("an id")]);
    drop(server);

    let url = format!("sqlite://{}", dir.path().join("jwt-auth.db").display());
    let store = jwt_auth_store::Store::connect(&url).await.expect("the store");
    let feed =
        jwt_core::RevocationStore::revocation_feed(&store, 0, started).await.expect("the feed");
    let days = |t: chrono::DateTime<chrono::Utc>| (t - started).num_minutes() as f64 / 1440.0;
    let key = feed.iter().find_map(|e| match &e.revocation {
        jwt_core::Revocation::Key { expires_at, .. } => Some(*expires_at),
        _ => None,
    });
    // 30 days of refresh tokens (the default would be 7).
    let key = days(key.expect("the key's revocation"));
    assert!((30.0..31.0).contains(&key), "the key's revocation lasts {key} days");
    let session = feed.iter().find_map(|e| match &e.revocation {
        jwt_core::Revocation::Session { expires_at, .. } => Some(*expires_at),
        _ => None,
    });
    // Two hours of access tokens, and the leeway (the default would be 30 minutes).
    let minutes = (session.expect("the client's revocation") - started).num_minutes();
    assert!((120..=135).contains(&minutes), "the client's revocation lasts {minutes} minutes");
}

/// The kids `keys list --json` shows in `state`.
fn key_ids(dir: &Path, env: &[(&str, &str)], state: &str) -> Vec<String> {
    let output = run(jwt_auth(dir, env).args(["keys", "list", "--json"]), None);
    assert!(output.status.success(), "{}", stderr(&output));
    let listed: Vec<Value> = serde_json::from_str(&stdout(&output)).expect("a JSON array");
    listed
        .iter()
        .filter(|k| k["state"] == state)
        .map(|k| k["kid"].as_str().expect("a kid").to_owned())
        .collect()
}

/// The `alg` of a token's header.
fn alg_of(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().expect("a header");
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).expect("base64");
    let header: Value = serde_json::from_slice(&json).expect("a JSON header");
    header["alg"].as_str().expect("alg").to_owned()
}

/// The states `keys list --json` gives, in its order, with their algorithms.
fn key_states(dir: &Path, env: &[(&str, &str)]) -> Vec<(String, String)> {
    let output = run(jwt_auth(dir, env).args(["keys", "list", "--json"]), None);
    assert!(output.status.success(), "{}", stderr(&output));
    let listed: Vec<Value> = serde_json::from_str(&stdout(&output)).expect("a JSON array");
    listed
        .iter()
        .map(|k| {
            (
                k["state"].as_str().expect("state").into(),
                k["algorithm"].as_str().expect("alg").into(),
            )
        })
        .collect()
}

/// The deployment's algorithm is that of its stored keys: `serve` and every key command
/// refuse another `JWT_ALGORITHM` with one line; unset, they follow the keys; a change is
/// `keys rotate --algorithm`, after which the running instances sign with the new algorithm
/// and tokens of the old keep verifying; never more than one active key.
#[tokio::test]
async fn the_deployments_algorithm_is_its_stored_keys_and_a_change_is_one_command() {
    let Some(db) = pg::PgDatabase::for_test("jwt_api_test").await else { return };
    let dir = tempfile::tempdir().expect("a directory");
    let url = db.url.as_str();
    let plain = [("DATABASE_URL", url), ("KEY_ENCRYPTION_KEY", KEK)];
    let eddsa = [("DATABASE_URL", url), ("KEY_ENCRYPTION_KEY", KEK), ("JWT_ALGORITHM", "EdDSA")];
    let hs256 = [("DATABASE_URL", url), ("KEY_ENCRYPTION_KEY", KEK), ("JWT_ALGORITHM", "HS256")];
    let first = Server::start(dir.path(), &eddsa).await;
    register(&first, "ann@example.com").await;
    let old = login(&first, "ann@example.com").await;
    assert_eq!(alg_of(access(&old)), "EdDSA");

    // Unset, a rotation keeps the stored keys' algorithm; set to another, it is refused.
    let rotated = run(jwt_auth(dir.path(), &plain).args(["keys", "rotate", "--now"]), None);
    assert!(rotated.status.success(), "{}", stderr(&rotated));
    assert!(stdout(&rotated).starts_with("new EdDSA signing key"), "{}", stdout(&rotated));
    let refused = run(jwt_auth(dir.path(), &hs256).args(["keys", "rotate"]), None);
    fails_with_one_line(&refused, "JWT_ALGORITHM: is HS256, but the stored signing key is EdDSA");
    for command in [&["keys", "list"][..], &["keys", "revoke", "x"]] {
        let refused = run(jwt_auth(dir.path(), &hs256).args(command), None);
        fails_with_one_line(&refused, "JWT_ALGORITHM: is HS256");
    }
    let mut serve = jwt_auth(dir.path(), &hs256);
    serve.arg("serve").env("BIND_ADDRESS", "127.0.0.1:0");
    fails_with_one_line(&run(&mut serve, None), "keys rotate --algorithm HS256");
    let states = key_states(dir.path(), &plain);
    assert_eq!(states.iter().filter(|(s, _)| s == "active").count(), 1, "{states:?}");
    assert!(states.iter().all(|(_, alg)| alg == "EdDSA"), "{states:?}");

    // An instance started without JWT_ALGORITHM signs with the stored keys' algorithm.
    let second = Server::start(dir.path(), &plain).await;
    let pair = login(&second, "ann@example.com").await;
    assert_eq!(alg_of(access(&pair)), "EdDSA");

    // The change: published ahead like any rotation, one active key throughout.
    let change = ["keys", "rotate", "--algorithm", "ES256"];
    let changed = run(jwt_auth(dir.path(), &eddsa).args(change), None);
    assert!(changed.status.success(), "{}", stderr(&changed));
    let said = stdout(&changed);
    assert!(said.contains("signs from") && said.contains("from EdDSA to ES256"), "{said}");
    let states = key_states(dir.path(), &plain);
    assert_eq!(states.iter().filter(|(s, _)| s == "active").count(), 1, "{states:?}");
    assert!(states.contains(&("pending".into(), "ES256".into())), "{states:?}");
    // While it is under way, either algorithm of the change is accepted, and no other.
    let es256 = [("DATABASE_URL", url), ("KEY_ENCRYPTION_KEY", KEK), ("JWT_ALGORITHM", "ES256")];
    assert_eq!(key_states(dir.path(), &es256).len(), states.len());
    let rs256 = [("DATABASE_URL", url), ("KEY_ENCRYPTION_KEY", KEK), ("JWT_ALGORITHM", "RS256")];
    fails_with_one_line(&run(jwt_auth(dir.path(), &rs256).args(["keys", "list"]), None), "RS256");
    let bad =
        run(jwt_auth(dir.path(), &plain).args(["keys", "rotate", "--algorithm", "none"]), None);
    fails_with_one_line(&bad, "--algorithm");

    // Signing now: both running instances switch, and the EdDSA tokens keep verifying.
    let now = run(jwt_auth(dir.path(), &plain).args(["keys", "rotate", "--now"]), None);
    assert!(stdout(&now).starts_with("new ES256 signing key"), "{}", stdout(&now));
    for server in [&first, &second] {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let pair = login(server, "ann@example.com").await;
            if alg_of(access(&pair)) == "ES256" {
                assert_eq!(me(server, access(&pair)).await.0, StatusCode::OK);
                break;
            }
            assert!(Instant::now() < deadline, "still signing {}", alg_of(access(&pair)));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(me(server, access(&old)).await.0, StatusCode::OK, "an EdDSA token verifies");
    }
    let states = key_states(dir.path(), &plain);
    assert_eq!(
        states.iter().filter(|(s, _)| s == "active").collect::<Vec<_>>(),
        [&("active".to_owned(), "ES256".to_owned())]
    );
    // The first instance's own setting is now the wrong one.
    let mut serve = jwt_auth(dir.path(), &eddsa);
    serve.arg("serve").env("BIND_ADDRESS", "127.0.0.1:0");
    fails_with_one_line(&run(&mut serve, None), "is EdDSA, but the stored signing key is ES256");
}

/// Once the database holds sealed keys, `serve` and every key command refuse to run without
/// the key-encryption key, with one line, instead of falling back to the key files (which
/// would void every token, and a rotation no server would follow).
#[tokio::test]
async fn sealed_keys_without_the_key_encryption_key_refuse_serve_and_every_key_command() {
    let dir = tempfile::tempdir().expect("a directory");
    let kek_file = dir.path().join("kek");
    std::fs::write(&kek_file, format!("{KEK}\n")).expect("the KEK file");
    let kek_path = kek_file.display().to_string();
    let with_kek = [("KEY_ENCRYPTION_KEY_FILE", kek_path.as_str())];
    let server = Server::start(dir.path(), &with_kek).await;
    register(&server, "ann@example.com").await;
    let pair = login(&server, "ann@example.com").await;
    drop(server);
    let key_files = || match std::fs::read_dir(dir.path().join("keys")) {
        Ok(entries) => entries.count(),
        Err(_) => 0,
    };
    assert_eq!(key_files(), 0, "the keys are in the database");

    let mut serve = jwt_auth(dir.path(), &[]);
    serve.arg("serve").env("BIND_ADDRESS", "127.0.0.1:0");
    fails_with_one_line(
        &run(&mut serve, None),
        "KEY_ENCRYPTION_KEY: is not set, but the database holds",
    );
    for command in [&["keys", "rotate", "--now"][..], &["keys", "list"], &["keys", "revoke", "x"]] {
        let refused = run(jwt_auth(dir.path(), &[]).args(command), None);
        fails_with_one_line(&refused, "KEY_ENCRYPTION_KEY");
    }
    assert_eq!(key_files(), 0, "no key file was written");

    // With the key-encryption key, the same commands work and the tokens live on.
    let listed = run(jwt_auth(dir.path(), &with_kek).args(["keys", "list"]), None);
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert_eq!(stdout(&listed).lines().count(), 1, "{}", stdout(&listed));
    let server = Server::start(dir.path(), &with_kek).await;
    assert_eq!(me(&server, access(&pair)).await.0, StatusCode::OK, "the stored key verifies");
    let rotated = run(jwt_auth(dir.path(), &with_kek).args(["keys", "rotate", "--now"]), None);
    assert!(rotated.status.success(), "{}", stderr(&rotated));
    assert_eq!(key_files(), 0, "rotated in the database");
}

/// The login status of `email` with `password`.
async fn login_status(server: &Server, email: &str, password: &str) -> StatusCode {
    client()
        .post(server.url("/auth/login"))
        .json(&json!({"username": email, "password": password}))
        .send()
        .await
        .expect("login")
        .status()
}

/// `jwt-auth user set-password|disable|enable|delete|list` on the database at `env`, beside a
/// running server: each says what it did in one line and records a security event; the
/// server refuses the user's tokens within seconds, and another user is never touched.
async fn user_commands(dir: &Path, env: &[(&str, &str)]) {
    let mut serve_env = env.to_vec();
    serve_env.push(("LOGIN_RATE_LIMIT", "0"));
    let server = Server::start(dir, &serve_env).await;
    let cli = |args: &[&str], stdin: Option<&str>| {
        let output = run(jwt_auth(dir, env).args(args), stdin);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        stdout(&output)
    };
    register(&server, "ann@example.com").await;
    register(&server, "bob@example.com").await;
    let bob = login(&server, "bob@example.com").await;
    let ann = login(&server, "ann@example.com").await;
    let ann_id = me_id(&server, access(&ann)).await;

    let listed = cli(&["user", "list", "--json"], None);
    let users: Vec<Value> =
        listed.lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
    assert_eq!(users.len(), 2, "{listed}");
    assert!(users.iter().any(|u| u["id"] == ann_id.as_str() && u["disabled"] == false));
    let found = cli(&["user", "list", "--email", "ANN@"], None);
    assert!(found.contains("ann@example.com") && !found.contains("bob@"), "{found}");
    assert!(found.trim_end().ends_with("1 of 1 users"), "{found}");

    // A new password ends her sessions; the old one no longer logs in, the new one does.
    let said = cli(
        &["user", "set-password", "ann@example.com", "--password-stdin"],
        Some("a whole new secret\n"),
    );
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(said.contains(&ann_id), "{said}");
    refused_within(&server, access(&ann), Duration::from_secs(5)).await;
    assert_eq!(login_status(&server, "ann@example.com", PASSWORD).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        login_status(&server, "ann@example.com", "a whole new secret").await,
        StatusCode::OK
    );
    let output = run(
        jwt_auth(dir, env).args(["user", "set-password", "ann@example.com", "--password-stdin"]),
        Some("short\n"),
    );
    fails_with_one_line(&output, "8 to 256 characters");

    // Disabled by id: her new session ends and logins fail; enabled: she logs in again.
    let again = login_with(&server, "ann@example.com", "a whole new secret").await;
    assert!(cli(&["user", "disable", &ann_id], None).contains("disabled user"));
    refused_within(&server, access(&again), Duration::from_secs(5)).await;
    assert_eq!(
        login_status(&server, "ann@example.com", "a whole new secret").await,
        StatusCode::UNAUTHORIZED
    );
    assert!(cli(&["user", "enable", "ann@example.com"], None).contains("enabled user"));
    let last = login_with(&server, "ann@example.com", "a whole new secret").await;

    // Deleted: her tokens are refused, she cannot log in, and the list no longer has her.
    let said = cli(&["user", "delete", "ann@example.com"], None);
    assert_eq!(said.lines().count(), 1, "{said}");
    // `/api/me` may say she is gone (404) before the server has read the revocation (a
    // command on SQLite is another process, read within a second); then her token is refused.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match me(&server, access(&last)).await {
            (StatusCode::UNAUTHORIZED, code) => {
                assert_eq!(code.as_deref(), Some("token_revoked"));
                break;
            }
            (status, _) => assert!([StatusCode::OK, StatusCode::NOT_FOUND].contains(&status)),
        }
        assert!(Instant::now() < deadline, "the deleted user's token is still accepted");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        login_status(&server, "ann@example.com", "a whole new secret").await,
        StatusCode::UNAUTHORIZED
    );
    assert!(!cli(&["user", "list"], None).contains("ann@example.com"));
    for (args, what) in [
        (&["user", "delete", "ann@example.com"][..], "no user has the id or the email"),
        (&["user", "disable", "no-such-id"][..], "no user has the id or the email"),
        (&["user", "list", "--limit", "0"][..], "--limit"),
    ] {
        fails_with_one_line(&run(jwt_auth(dir, env).args(args), None), what);
    }

    // The control: bob was never touched.
    assert_eq!(me(&server, access(&bob)).await.0, StatusCode::OK);
    // And the trail has each change.
    let trail = cli(&["events", "--user", &ann_id, "--json"], None);
    let kinds: Vec<String> = trail
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("JSON")["kind"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "user_updated").count(), 3, "{kinds:?}");
    assert_eq!(kinds.first().map(String::as_str), Some("user_deleted"), "{kinds:?}");
}

/// Logs in with `password`; returns the token pair.
async fn login_with(server: &Server, email: &str, password: &str) -> Value {
    let response = client()
        .post(server.url("/auth/login"))
        .json(&json!({"username": email, "password": password}))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), StatusCode::OK, "login of {email}");
    response.json().await.expect("a token pair")
}

#[tokio::test]
async fn user_commands_on_sqlite() {
    let dir = tempfile::tempdir().expect("a directory");
    user_commands(dir.path(), &[]).await;
}

#[tokio::test]
async fn user_commands_on_postgres() {
    let Some(db) = pg::PgDatabase::for_test("jwt_api_test").await else { return };
    let dir = tempfile::tempdir().expect("a directory");
    user_commands(dir.path(), &[("DATABASE_URL", db.url.as_str()), ("KEY_ENCRYPTION_KEY", KEK)])
        .await;
}

/// `jwt-auth user import` on the database at `env`: a bad file changes nothing and names its
/// line; a good file creates every user, each logging in over HTTP with the password its
/// hash was made from (made by Django, passlib, Werkzeug, bcrypt and argon2-cffi, see
/// `scripts/legacy-hash-vectors.py`); importing it again fails on the first existing email,
/// naming its line, unless `--skip-existing`, which skips and counts them all.
async fn user_import(dir: &Path, env: &[(&str, &str)]) {
    #[derive(serde::Deserialize)]
    struct Vector {
        family: String,
        password: String,
        hash: String,
    }
    let vectors: Vec<Vector> = include_str!("fixtures/legacy-hashes.jsonl")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a vector"))
        .collect();
    let email = |i: usize| format!("imported-{i}@example.com");
    let lines: Vec<String> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            json!({"email": email(i), "password_hash": v.hash, "roles": ["user", "migrated"]})
                .to_string()
        })
        .collect();
    let import_with = |file: &Path, flags: &[&str]| {
        let mut command = jwt_auth(dir, env);
        command.args(["user", "import"]).arg(file).args(flags);
        run(&mut command, None)
    };
    let import = |file: &Path, json: bool| import_with(file, if json { &["--json"] } else { &[] });

    // A bad line anywhere fails the whole file, naming the line; nothing is imported.
    let bad_file = dir.join("bad.jsonl");
    let mut bad = lines.clone();
    bad.insert(
        5,
        json!({"email": "x@example.com", "password_hash": "md5$salt$0123456789abcdef"}).to_string(),
    );
    std::fs::write(&bad_file, bad.join("\n")).expect("written");
    let output = import(&bad_file, false);
    fails_with_one_line(&output, "line 6: password_hash");
    assert!(stderr(&output).contains("nothing was imported"), "{}", stderr(&output));
    assert!(!stderr(&output).contains("0123456789abcdef"), "the hash is not echoed");
    let output = import(&dir.join("missing.jsonl"), false);
    fails_with_one_line(&output, "missing.jsonl");

    let good_file = dir.join("users.jsonl");
    std::fs::write(&good_file, lines.join("\n") + "\n").expect("written");
    let output = import(&good_file, true);
    assert!(output.status.success(), "{}", stderr(&output));
    let report: Value = serde_json::from_str(stdout(&output).trim()).expect("one JSON object");
    assert_eq!(report["created"], vectors.len(), "{report}");
    assert_eq!(report["skipped"], 0, "{report}");
    assert_eq!(report["families"]["bcrypt"], 6, "{report}");

    // Again: the first line's email is registered now, so the file fails as a whole, naming
    // that line, unless the existing emails are to be skipped.
    let output = import(&good_file, false);
    fails_with_one_line(&output, "line 1: email `imported-0@example.com` is registered already");
    assert!(stderr(&output).contains("nothing was imported"), "{}", stderr(&output));
    let mut extended = lines.clone();
    extended
        .push(json!({"email": "late@example.com", "password_hash": vectors[0].hash}).to_string());
    let extended_file = dir.join("extended.jsonl");
    std::fs::write(&extended_file, extended.join("\n")).expect("written");
    let output = import(&extended_file, false);
    fails_with_one_line(&output, "line 1: email");
    let output = import_with(&extended_file, &["--skip-existing"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let said = stdout(&output);
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(said.contains(&format!("created 1 users, skipped {}", vectors.len())), "{said}");
    let output = import_with(&extended_file, &["--skip-existing", "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report: Value = serde_json::from_str(stdout(&output).trim()).expect("one JSON object");
    assert_eq!(report["created"], 0, "{report}");
    assert_eq!(report["skipped"], vectors.len() + 1, "{report}");

    // Nothing of the refused file was imported, and every imported user logs in (from one
    // address: without the per-address login quota).
    let mut serve_env = env.to_vec();
    serve_env.push(("LOGIN_RATE_LIMIT", "0"));
    let server = Server::start(dir, &serve_env).await;
    let reply = client()
        .post(server.url("/auth/login"))
        .json(&json!({"username": "x@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(reply.status(), StatusCode::UNAUTHORIZED);
    for (i, v) in vectors.iter().enumerate() {
        let reply = client()
            .post(server.url("/auth/login"))
            .json(&json!({"username": email(i), "password": v.password}))
            .send()
            .await
            .expect("login");
        assert_eq!(reply.status(), StatusCode::OK, "{}", v.family);
        let pair: Value = reply.json().await.expect("a pair");
        let (_, claims) = jwt_core::dangerous::decode_unverified(access(&pair)).expect("a JWS");
        assert_eq!(claims["roles"], json!(["user", "migrated"]), "{}", v.family);
    }
}

#[tokio::test]
async fn user_import_on_sqlite() {
    let dir = tempfile::tempdir().expect("a directory");
    user_import(dir.path(), &[]).await;
}

#[tokio::test]
async fn user_import_on_postgres() {
    let Some(db) = pg::PgDatabase::for_test("jwt_api_test").await else { return };
    let dir = tempfile::tempdir().expect("a directory");
    user_import(dir.path(), &[("DATABASE_URL", db.url.as_str()), ("KEY_ENCRYPTION_KEY", KEK)])
        .await;
}

#[test]
fn completions_and_manual_pages_come_from_the_command_definitions() {
    use clap::CommandFactory;
    let dir = tempfile::tempdir().expect("a directory");
    for shell in ["bash", "zsh", "fish"] {
        let output = run(jwt_auth(dir.path(), &[]).args(["completions", shell]), None);
        assert!(output.status.success(), "{shell}: {}", stderr(&output));
        let script = stdout(&output);
        for word in ["serve", "import", "rotate", "revoke", "json"] {
            assert!(script.contains(word), "{shell} completion without `{word}`");
        }
    }
    let output = run(jwt_auth(dir.path(), &[]).args(["completions", "tcsh"]), None);
    assert!(!output.status.success(), "an unknown shell is refused");
    assert!(stderr(&output).contains("possible values: bash"), "{}", stderr(&output));

    let output = run(jwt_auth(dir.path(), &[]).arg("man"), None);
    assert!(output.status.success(), "{}", stderr(&output));
    let page = stdout(&output);
    assert!(page.contains(".TH jwt-auth 1"), "a roff page: {}", &page[..page.len().min(300)]);

    // One page per command, named after its path: every command the definitions hold.
    let pages = dir.path().join("man");
    let output = run(jwt_auth(dir.path(), &[]).args(["man", "--dir"]).arg(&pages), None);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output).lines().count(), 1, "{}", stdout(&output));
    fn names(command: &clap::Command, prefix: &str, into: &mut Vec<String>) {
        let name = format!("{prefix}{}", command.get_name());
        into.push(format!("{name}.1"));
        for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
            names(sub, &format!("{name}-"), into);
        }
    }
    let mut expected = Vec::new();
    names(&jwt_auth_api::Cli::command(), "", &mut expected);
    let mut written: Vec<String> = std::fs::read_dir(&pages)
        .expect("the pages")
        .map(|e| e.expect("an entry").file_name().to_string_lossy().into_owned())
        .collect();
    expected.sort();
    written.sort();
    assert_eq!(written, expected);
    assert!(written.contains(&"jwt-auth-user-import.1".to_owned()));
}

/// Every command that changes data says what it did in one line of standard output (and
/// `clients add`, the contract's two lines, or one JSON object with `--json`); the listing
/// commands give JSON with `--json`.
#[tokio::test]
async fn each_command_that_changes_data_says_what_it_did_in_one_line() {
    let dir = tempfile::tempdir().expect("a directory");
    let env = [("KEY_ENCRYPTION_KEY", KEK)];
    let cli = |args: &[&str], stdin: Option<&str>| {
        let output = run(jwt_auth(dir.path(), &env).args(args), stdin);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        stdout(&output)
    };
    let one_line = |args: &[&str], stdin: Option<&str>| {
        let said = cli(args, stdin);
        assert_eq!(said.lines().count(), 1, "{args:?} said {said:?}");
        said
    };
    one_line(&["migrate"], None);
    one_line(&["user", "add", "--email", "ann@example.com", "--password-stdin"], Some(PASSWORD));
    let file = dir.path().join("users.jsonl");
    std::fs::write(
        &file,
        r#"{"email":"bob@example.com","password_hash":"$2b$04$9QDUPpAk3.61ygHPnbnlaeo.BtX3tqfJuIZ0noKv0E8g6CbHkcxxi"}"#,
    )
    .expect("written");
    one_line(&["user", "import", file.to_str().expect("UTF-8")], None);
    // Again, skipping: nothing created, and the hash families count only what was created.
    let report: Value = serde_json::from_str(&one_line(
        &["user", "import", file.to_str().expect("UTF-8"), "--skip-existing", "--json"],
        None,
    ))
    .expect("JSON");
    assert_eq!((report["created"].as_u64(), report["skipped"].as_u64()), (Some(0), Some(1)));
    assert_eq!(report["families"], json!({}), "{report}");
    one_line(&["keys", "rotate"], None);
    one_line(&["keys", "rotate", "--now"], None);
    let keys: Value = serde_json::from_str(&cli(&["keys", "list", "--json"], None)).expect("JSON");
    let keys = keys.as_array().expect("an array");
    assert_eq!(keys.len(), 2, "{keys:?}");
    for key in keys {
        for member in ["kid", "algorithm", "state", "created", "signs_from"] {
            assert!(key[member].is_string(), "{member} in {key}");
        }
    }
    let retired = keys.iter().find(|k| k["state"] == "retired").expect("a retired key");
    one_line(&["keys", "revoke", retired["kid"].as_str().expect("a kid")], None);
    let now = chrono::Utc::now().to_rfc3339();
    one_line(&["sessions", "revoke", "--issued-before", &now], None);
    // A bare date is a time too (midnight UTC).
    one_line(&["sessions", "revoke", "--issued-before", "2026-01-01"], None);
    // A time in the future would void every token issued until then as soon as it is issued,
    // a lock-out no login ends: refused, with nothing recorded. So is what is no time at all,
    // with the forms that are.
    let output = run(
        jwt_auth(dir.path(), &env).args(["sessions", "revoke", "--issued-before", "2030-01-01"]),
        None,
    );
    fails_with_one_line(&output, "is in the future");
    for bad in ["2030-01-01 00:00", "yesterday", ""] {
        let output = run(
            jwt_auth(dir.path(), &env).args(["sessions", "revoke", "--issued-before", bad]),
            None,
        );
        assert!(!output.status.success(), "{bad}");
        let err = stderr(&output);
        assert!(err.contains("RFC 3339 time (2026-11-23T10:00:00Z) or a date"), "{bad}: {err}");
    }

    let added = cli(&["clients", "add", "billing"], None);
    assert_eq!(added.lines().count(), 2, "the contract's two lines: {added}");
    let added: Value =
        serde_json::from_str(&one_line(&["clients", "add", "reports", "--json"], None))
            .expect("JSON");
    let listed: Value =
        serde_json::from_str(&cli(&["clients", "list", "--json"], None)).expect("JSON");
    let listed = listed.as_array().expect("an array");
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.iter().any(|c| c["client_id"] == added["client_id"] && c["name"] == "reports"));
    assert!(listed.iter().all(|c| c.get("client_secret").is_none()), "no secret is listed");
    one_line(&["clients", "remove", added["client_id"].as_str().expect("an id")], None);
    // By its name too (names are unique); a name or an id that names no client is refused
    // with one line, and changes nothing.
    let output = run(jwt_auth(dir.path(), &env).args(["clients", "remove", "no-such"]), None);
    fails_with_one_line(&output, "no client has the id or the name `no-such`");
    assert!(one_line(&["clients", "remove", "billing"], None).contains("(billing)"));
    let listed: Value =
        serde_json::from_str(&cli(&["clients", "list", "--json"], None)).expect("JSON");
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "{listed}");

    // The trail of what the commands did: `user add` created a user, and each `user import`
    // left one event with its honest counts (the second created nobody).
    let trail = cli(&["events", "--kind", "user_created", "--json"], None);
    let events: Vec<Value> =
        trail.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_eq!(events.len(), 1, "{trail}");
    assert!(events.iter().all(|e| e["kind"] == "user_created" && e["at"].is_string()), "{trail}");
    let trail = cli(&["events", "--kind", "users_imported", "--json"], None);
    let imports: Vec<String> = trail
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line")["detail"].to_string())
        .collect();
    assert_eq!(imports.len(), 2, "{trail}");
    assert!(imports[0].contains("created 0 users, skipped 1"), "newest first: {imports:?}");
    assert!(imports[1].contains("created 1 users, skipped 0"), "{imports:?}");
    // And `sessions revoke`, `keys rotate` and `keys revoke` left their trace.
    for kind in ["tokens_voided", "key_rotated", "key_revoked"] {
        let trail = cli(&["events", "--kind", kind, "--json"], None);
        assert!(trail.lines().count() >= 1, "no {kind} event: {trail}");
    }
    let output = run(jwt_auth(dir.path(), &env).args(["events", "--kind", "nope"]), None);
    fails_with_one_line(&output, "--kind `nope`");
    // Refreshes are counted, never stored: asking the trail for them is refused, not answered
    // with nothing.
    let output = run(jwt_auth(dir.path(), &env).args(["events", "--kind", "refresh"]), None);
    fails_with_one_line(&output, "counted (GET /metrics), never stored");
}
