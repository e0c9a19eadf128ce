//! The example against a real `jwt-auth serve` (EdDSA, SQLite) on 127.0.0.1, both as
//! processes: 200 for a valid token, 401 for none or a bad one, 403 without the role; a logout
//! at the issuer refused here within a second (p99 over 100 logouts printed); a rotated key
//! verifying without a restart; with the issuer stopped, valid tokens verify and revoked ones
//! stay refused; and DPoP-bound tokens answered as the issuer answers them, byte for byte.
//!
//! The `jwt-auth` binary is the workspace's (`cargo build -p jwt-auth-api`, which the
//! workspace's test run builds), or `JWT_AUTH_BIN`.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

fn jwt_auth_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("JWT_AUTH_BIN") {
        return path.into();
    }
    // target/debug/deps/issuer-… → target/debug/jwt-auth
    let exe = std::env::current_exe().expect("the test's path");
    let bin = exe.parent().and_then(Path::parent).expect("target/debug").join("jwt-auth");
    assert!(bin.exists(), "{} is missing: run `cargo build -p jwt-auth-api` first", bin.display());
    bin
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("a port").local_addr().expect("an address").port()
}

/// A child process, killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("a client")
}

async fn wait_ready(url: &str, process: &mut Process) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(process.0.try_wait().expect("wait").is_none(), "{url} exited");
        if let Ok(reply) = client().get(format!("{url}/ready")).send().await
            && reply.status() == StatusCode::OK
        {
            return;
        }
        assert!(Instant::now() < deadline, "{url} was not ready in 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Issuer {
    url: String,
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

impl Issuer {
    fn command(&self, args: &[&str]) -> String {
        let output = Command::new(jwt_auth_bin())
            .args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("jwt-auth runs");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).expect("UTF-8")
    }

    async fn login(&self, email: &str) -> Value {
        let reply = client()
            .post(format!("{}/auth/login", self.url))
            .json(&json!({"username": email, "password": PASSWORD}))
            .send()
            .await
            .expect("login");
        assert_eq!(reply.status(), StatusCode::OK);
        reply.json().await.expect("a pair")
    }

    async fn logout(&self, access: &str) {
        let reply = client()
            .post(format!("{}/auth/logout", self.url))
            .bearer_auth(access)
            .send()
            .await
            .expect("logout");
        assert_eq!(reply.status(), StatusCode::NO_CONTENT);
    }
}

fn access(pair: &Value) -> &str {
    pair["access_token"].as_str().expect("access_token")
}

/// The `kid` in a token's header, read without verifying (what the test needs of it).
fn kid(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().expect("a header");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).expect("base64url");
    let header: Value = serde_json::from_slice(&bytes).expect("JSON");
    header["kid"].as_str().expect("kid").to_owned()
}

async fn stock(url: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut request = client().get(format!("{url}/stocks/acme"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let reply = request.send().await.expect("stock");
    let status = reply.status();
    (status, reply.json().await.unwrap_or(Value::Null))
}

/// A client's DPoP key (RFC 9449), signing proofs with jsonwebtoken.
struct DpopKey {
    key: jwt_core::SigningKey,
    encoding: jsonwebtoken::EncodingKey,
}

impl DpopKey {
    fn new() -> Self {
        let key = jwt_core::SigningKey::generate(jwt_core::Algorithm::ES256).expect("a key");
        let pem = key.to_pem().expect("PEM");
        let encoding = jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()).expect("P-256");
        Self { key, encoding }
    }

    /// A proof for `method` `url`, presenting `token` if any.
    fn proof(&self, method: &str, url: &str, token: Option<&str>) -> String {
        use base64::Engine;
        let b64 =
            |json: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.to_string());
        let jwk =
            serde_json::to_value(self.key.verifying_key().to_jwk().expect("public")).expect("JSON");
        let now = jwt_core::Clock::now(&jwt_core::SystemClock).timestamp();
        let mut claims = json!({
            "jti": uuid::Uuid::new_v4().to_string(), "htm": method, "htu": url, "iat": now,
        });
        if let Some(token) = token {
            claims["ath"] = jwt_core::access_token_hash(token).into();
        }
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk});
        let message = format!("{}.{}", b64(header), b64(claims));
        let signature = jsonwebtoken::crypto::sign(
            message.as_bytes(),
            &self.encoding,
            jsonwebtoken::Algorithm::ES256,
        )
        .expect("signed");
        format!("{message}.{signature}")
    }
}

/// What a request was answered: status, the body as JSON, and the challenge.
async fn answer(
    url: &str,
    authorization: &str,
    proofs: &[String],
) -> (StatusCode, Value, Option<String>) {
    let mut request = client().get(url).header("authorization", authorization);
    for proof in proofs {
        request = request.header("DPoP", proof.as_str());
    }
    let reply = request.send().await.expect("an answer");
    let status = reply.status();
    let challenge =
        reply.headers().get("www-authenticate").map(|v| v.to_str().expect("ASCII").to_owned());
    (status, reply.json().await.unwrap_or(Value::Null), challenge)
}

/// A token bound to a DPoP key, presented every way the issuer refuses it: the example (the
/// verifier's actix extractors) answers each exactly as the issuer's `/api/me` does, with a
/// proof made for its own URL; and both take it with a fresh proof of its key.
async fn dpop_answers_are_the_issuers(issuer: &Issuer, rs: &str) {
    let key = DpopKey::new();
    let login = format!("{}/auth/login", issuer.url);
    let reply = client()
        .post(&login)
        .header("DPoP", key.proof("POST", &login, None))
        .json(&json!({"username": "alice@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(reply.status(), StatusCode::OK);
    let pair: Value = reply.json().await.expect("a pair");
    assert_eq!(pair["token_type"], "DPoP");
    let token = access(&pair).to_owned();
    let bound = Some(token.as_str());
    let unbound = issuer.login("alice@example.com").await;
    let unbound = access(&unbound).to_owned();
    let thief = DpopKey::new();

    let (me, stock) = (format!("{}/api/me", issuer.url), format!("{rs}/stocks/acme"));
    for (case, authorization, proofs) in [
        (
            "as a bearer token",
            format!("Bearer {token}"),
            &(|_: &str| vec![]) as &dyn Fn(&str) -> Vec<String>,
        ),
        ("without a proof", format!("DPoP {token}"), &|_: &str| vec![]),
        ("with another key's proof", format!("DPoP {token}"), &|url: &str| {
            vec![thief.proof("GET", url, bound)]
        }),
        ("with a proof of another method", format!("DPoP {token}"), &|url: &str| {
            vec![key.proof("POST", url, bound)]
        }),
        ("with a proof of another URL", format!("DPoP {token}"), &|url: &str| {
            vec![key.proof("GET", &format!("{url}x"), bound)]
        }),
        ("with a proof without ath", format!("DPoP {token}"), &|url: &str| {
            vec![key.proof("GET", url, None)]
        }),
        ("with two proofs", format!("DPoP {token}"), &|url: &str| {
            vec![key.proof("GET", url, bound), key.proof("GET", url, bound)]
        }),
        ("with a proof that is no JWS", format!("DPoP {token}"), &|_: &str| {
            vec!["not.a.proof".to_owned()]
        }),
        ("unbound, as DPoP", format!("DPoP {unbound}"), &|url: &str| {
            vec![key.proof("GET", url, Some(&unbound))]
        }),
        ("tampered, as DPoP", format!("DPoP {token}x"), &|url: &str| {
            vec![key.proof("GET", url, bound)]
        }),
    ] {
        let at_issuer = answer(&me, &authorization, &proofs(&me)).await;
        let here = answer(&stock, &authorization, &proofs(&stock)).await;
        assert_eq!(at_issuer.0, StatusCode::UNAUTHORIZED, "{case}: {at_issuer:?}");
        let challenge = at_issuer.2.as_deref().unwrap_or_default();
        assert!(challenge.starts_with("DPoP realm=\"jwt-auth\", error="), "{case}: {challenge}");
        assert_eq!(here, at_issuer, "{case}");
    }
    // The control: a fresh proof of its key, at each; then that proof again, refused alike.
    let (me_proof, stock_proof) = (key.proof("GET", &me, bound), key.proof("GET", &stock, bound));
    let at_issuer = answer(&me, &format!("DPoP {token}"), std::slice::from_ref(&me_proof)).await;
    let here = answer(&stock, &format!("DPoP {token}"), std::slice::from_ref(&stock_proof)).await;
    assert_eq!((at_issuer.0, here.0), (StatusCode::OK, StatusCode::OK), "{at_issuer:?} {here:?}");
    let at_issuer = answer(&me, &format!("DPoP {token}"), &[me_proof]).await;
    let here = answer(&stock, &format!("DPoP {token}"), &[stock_proof]).await;
    assert_eq!(at_issuer.0, StatusCode::UNAUTHORIZED, "a replay: {at_issuer:?}");
    assert_eq!(here, at_issuer, "a replay");
}

#[tokio::test]
async fn the_example_accepts_tokens_honours_logouts_rotations_and_outages() {
    let dir = tempfile::tempdir().expect("a directory");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let env: Vec<(String, String)> = [
        ("PATH", std::env::var("PATH").unwrap_or_default()),
        ("DATABASE_URL", format!("sqlite://{}", dir.path().join("jwt-auth.db").display())),
        ("DATA_DIR", dir.path().display().to_string()),
        ("JWT_ALGORITHM", "EdDSA".into()),
        ("PUBLIC_URL", url.clone()),
        ("ADMIN_EMAIL", "admin@example.com".into()),
        ("ADMIN_PASSWORD", PASSWORD.into()),
        ("LOGIN_RATE_LIMIT", "0".into()),
        ("LOGIN_FAILURE_BACKOFF", "0".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let issuer = Issuer { url: url.clone(), env, dir };
    let mut issuer_process = Process(
        Command::new(jwt_auth_bin())
            .arg("serve")
            .current_dir(issuer.dir.path())
            .env_clear()
            .envs(issuer.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("BIND_ADDRESS", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("jwt-auth serve starts"),
    );
    wait_ready(&issuer.url, &mut issuer_process).await;
    let client_json: Value =
        serde_json::from_str(&issuer.command(&["clients", "add", "stocks-api", "--json"]))
            .expect("the client as JSON");

    let mut example = Command::new(env!("CARGO_BIN_EXE_resource-server"));
    example
        .env("JWT_AUTH_URL", &issuer.url)
        .env("CLIENT_ID", client_json["client_id"].as_str().expect("client_id"))
        .env("CLIENT_SECRET", client_json["client_secret"].as_str().expect("client_secret"))
        .env("BIND_ADDRESS", "127.0.0.1:0")
        // Proofs name the URL the requests show, and no origin is let in, whatever this
        // process's environment says.
        .env_remove("PUBLIC_URL")
        .env_remove("CORS_ORIGINS")
        .stdout(Stdio::piped());
    let mut example = Process(example.spawn().expect("the example starts"));
    let stdout = example.0.stdout.take().expect("stdout");
    let line = BufReader::new(stdout).lines().next().expect("a line").expect("UTF-8");
    let rs = format!("http://{}", line.strip_prefix("listening on ").expect("the address"));
    wait_ready(&rs, &mut example).await;

    // 200 for a valid token; 401 for none or a bad one; 403 without the role.
    let register = client()
        .post(format!("{}/auth/register", issuer.url))
        .json(&json!({"email": "alice@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("register");
    assert_eq!(register.status(), StatusCode::CREATED);
    let alice = issuer.login("alice@example.com").await;
    let (status, body) = stock(&rs, Some(access(&alice))).await;
    assert_eq!((status, body["symbol"].as_str()), (StatusCode::OK, Some("ACME")));
    let (status, body) = stock(&rs, None).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("missing_token")));
    let tampered = format!("{}x", access(&alice));
    for bad in ["garbage", tampered.as_str(), alice["refresh_token"].as_str().expect("refresh")] {
        let (status, body) = stock(&rs, Some(bad)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_token"))
        );
    }
    let refresh_as = |token: String| {
        let rs = rs.clone();
        async move {
            client()
                .post(format!("{rs}/admin/stocks/refresh"))
                .bearer_auth(token)
                .send()
                .await
                .expect("refresh")
        }
    };
    let denied = refresh_as(access(&alice).to_owned()).await;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    let denied: Value = denied.json().await.expect("json");
    assert_eq!(denied["error"], "insufficient_role");
    let admin = issuer.login("admin@example.com").await;
    assert_eq!(refresh_as(access(&admin).to_owned()).await.status(), StatusCode::OK);

    dpop_answers_are_the_issuers(&issuer, &rs).await;

    // A logout at the issuer is refused here within a second: 100 logouts, p99 printed.
    let mut lags = Vec::new();
    for _ in 0..100 {
        let pair = issuer.login("alice@example.com").await;
        assert_eq!(stock(&rs, Some(access(&pair))).await.0, StatusCode::OK);
        issuer.logout(access(&pair)).await;
        let answered = Instant::now();
        loop {
            let (status, body) = stock(&rs, Some(access(&pair))).await;
            if status == StatusCode::UNAUTHORIZED {
                assert_eq!(body["error"], "token_revoked");
                break;
            }
            assert!(answered.elapsed() < Duration::from_secs(1), "still accepted after 1 s");
        }
        lags.push(answered.elapsed());
    }
    lags.sort();
    let p = |q: f64| lags[((lags.len() as f64 * q).ceil() as usize).clamp(1, lags.len()) - 1];
    eprintln!(
        "logout at the issuer to refusal at the resource server over {} logouts: p50 {:?}, p99 {:?}, max {:?}",
        lags.len(),
        p(0.50),
        p(0.99),
        lags[lags.len() - 1]
    );

    // `jwt-auth keys rotate`: new tokens verify without a restart.
    let before = issuer.login("alice@example.com").await;
    issuer.command(&["keys", "rotate"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    let after = loop {
        let pair = issuer.login("alice@example.com").await;
        if kid(access(&pair)) != kid(access(&before)) {
            break pair;
        }
        assert!(Instant::now() < deadline, "the issuer never signed with the new key");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The unknown kid makes the verifier fetch the JWK set again, at most once per interval.
    let deadline = Instant::now() + Duration::from_secs(15);
    while stock(&rs, Some(access(&after))).await.0 != StatusCode::OK {
        assert!(Instant::now() < deadline, "the rotated key never verified");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(stock(&rs, Some(access(&before))).await.0, StatusCode::OK, "the old key too");

    // With the issuer stopped: valid tokens verify, revoked ones stay refused.
    let ended = issuer.login("alice@example.com").await;
    issuer.logout(access(&ended)).await;
    let deadline = Instant::now() + Duration::from_secs(1);
    while stock(&rs, Some(access(&ended))).await.0 != StatusCode::UNAUTHORIZED {
        assert!(Instant::now() < deadline, "the logout was not honoured");
    }
    drop(issuer_process);
    assert_eq!(stock(&rs, Some(access(&after))).await.0, StatusCode::OK);
    let (status, body) = stock(&rs, Some(access(&ended))).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("token_revoked")));
}
