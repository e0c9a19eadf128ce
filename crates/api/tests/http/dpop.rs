//! DPoP (RFC 9449, contract v3 "Sender-constrained tokens") against the real server: a token
//! request with a proof gets a pair bound to the proof's key, which `/api/me` takes only as
//! `Authorization: DPoP` with a proof of that key, and which refreshes only with such a proof;
//! nonces when `DPOP_NONCE` is on, good on every instance. Each refusal beside its positive
//! control.

use jsonwebtoken::EncodingKey;
use jwt_core::{Algorithm, SigningKey, access_token_hash};
use reqwest::StatusCode;
use serde_json::{Value, json};

use jwt_auth_service::clients;
use jwt_auth_testdb::Backend;

use crate::common::{
    PASSWORD, Reply, TestApp, TestDb, b64, decode, encoding_key, forge, jwt_alg, send,
};

crate::http_tests!(
    a_login_with_a_proof_gets_a_pair_bound_to_its_key,
    a_bound_token_is_taken_only_as_dpop_with_a_fresh_proof_of_its_key,
    an_unbound_token_is_refused_with_the_dpop_scheme,
    a_bound_refresh_token_refreshes_only_with_a_proof_of_its_key,
    invalid_proofs_at_token_requests_are_400_invalid_dpop_proof,
    a_service_client_gets_a_bound_token_with_a_proof,
    metadata_and_introspection_show_dpop,
    with_dpop_nonce_a_proof_needs_a_current_nonce_that_every_instance_accepts,
    a_proof_replayed_to_another_instance_is_refused_there_on_its_second_use,
    a_bound_token_logs_out_only_with_a_proof_of_its_key,
    a_client_that_requires_dpop_gets_a_token_only_with_a_proof,
);

/// A client's DPoP key, signing proofs through jsonwebtoken.
pub struct DpopKey {
    key: SigningKey,
    encoding: EncodingKey,
}

impl DpopKey {
    pub fn new(alg: Algorithm) -> Self {
        let key = SigningKey::generate(alg).expect("a key");
        let encoding = encoding_key(&key);
        Self { key, encoding }
    }

    /// The RFC 7638 thumbprint of the key: the `jkt` of tokens bound to it.
    pub fn jkt(&self) -> &str {
        self.key.kid()
    }

    fn header(&self) -> Value {
        let jwk = serde_json::to_value(self.key.verifying_key().to_jwk().expect("public")).unwrap();
        json!({"typ": "dpop+jwt", "alg": self.key.algorithm().as_str(), "jwk": jwk})
    }

    /// The claims of a proof of `method` `url` at `iat`, presenting `token` if any.
    pub fn claims(&self, method: &str, url: &str, iat: i64, token: Option<&str>) -> Value {
        let mut claims = json!({
            "jti": uuid::Uuid::new_v4().to_string(), "htm": method, "htu": url, "iat": iat,
        });
        if let Some(token) = token {
            claims["ath"] = access_token_hash(token).into();
        }
        claims
    }

    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        forge(header, claims, &self.encoding, jwt_alg(self.key.algorithm()))
    }

    pub fn sign_claims(&self, claims: &Value) -> String {
        self.sign(&self.header(), claims)
    }

    /// A proof for `method` `path` of `app` now, presenting `token` if any.
    pub fn proof(&self, app: &TestApp, method: &str, path: &str, token: Option<&str>) -> String {
        let claims = self.claims(method, &app.url(path), app.now().timestamp(), token);
        self.sign_claims(&claims)
    }

    /// [`DpopKey::proof`] with a server `nonce`.
    pub fn proof_with_nonce(&self, app: &TestApp, method: &str, path: &str, nonce: &str) -> String {
        let mut claims = self.claims(method, &app.url(path), app.now().timestamp(), None);
        claims["nonce"] = nonce.into();
        self.sign_claims(&claims)
    }
}

/// A service client stored with its secret.
struct ServiceClient {
    id: String,
    secret: String,
}

impl ServiceClient {
    async fn add(app: &TestApp, name: &str, require_dpop: bool) -> Self {
        let roles = ["service".to_owned()];
        let mut new = clients::new_client(name, &roles, app.now()).expect("a client");
        new.client.require_dpop = require_dpop;
        app.state.store.add_client(&new.client).await.expect("stored");
        let secret = new.secret.as_ref().expect("a secret").expose().to_owned();
        Self { id: new.client.id, secret }
    }

    /// The client credentials grant, with `proof` if any.
    async fn grant(&self, app: &TestApp, proof: Option<String>) -> Reply {
        let mut request = app
            .post("/auth/token")
            .basic_auth(&self.id, Some(&self.secret))
            .form(&[("grant_type", "client_credentials")]);
        if let Some(proof) = proof {
            request = request.header("DPoP", proof);
        }
        send(request).await
    }
}

async fn login_with(app: &TestApp, proof: Option<&str>) -> Reply {
    let mut request = app
        .post("/auth/login")
        .json(&json!({"username": "alice@example.com", "password": PASSWORD}));
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    send(request).await
}

/// A user alice and a pair of hers bound to `key`.
async fn bound_login(app: &TestApp, key: &DpopKey) -> (String, String) {
    app.create_user("alice@example.com", &["user"]).await;
    let reply = login_with(app, Some(&key.proof(app, "POST", "/auth/login", None))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["token_type"], "DPoP", "{}", reply.text);
    let access = reply.body["access_token"].as_str().unwrap().to_owned();
    let refresh = reply.body["refresh_token"].as_str().unwrap().to_owned();
    (access, refresh)
}

/// `GET /api/me` as `scheme` `token`, with `proof` if any.
async fn me_as(app: &TestApp, scheme: &str, token: &str, proof: Option<&str>) -> Reply {
    let mut request = app.get("/api/me").header("authorization", format!("{scheme} {token}"));
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    send(request).await
}

/// Asserts a 401 with RFC 9449's challenge naming `challenge_error`, and the body `code`.
fn assert_dpop_refused(reply: &Reply, code: &str, challenge_error: &str) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    assert_eq!(reply.body["error"], code, "{}", reply.text);
    let challenge = reply.header("www-authenticate").expect("a challenge");
    assert!(challenge.starts_with(r#"DPoP realm="jwt-auth", "#), "{challenge}");
    assert!(challenge.contains(&format!(r#"error="{challenge_error}""#)), "{challenge}");
    assert!(challenge.ends_with(r#"algs="ES256 EdDSA RS256""#), "{challenge}");
}

/// Asserts a 400 `code` in the contract's JSON error format.
fn assert_proof_refused(reply: &Reply, code: &str) {
    reply.assert_error(StatusCode::BAD_REQUEST, code);
}

async fn a_login_with_a_proof_gets_a_pair_bound_to_its_key(db: TestDb) {
    let app = TestApp::start(db).await;
    let key = DpopKey::new(Algorithm::ES256);
    let (access, refresh) = bound_login(&app, &key).await;
    assert_eq!(decode(&access).1["cnf"], json!({"jkt": key.jkt()}));
    assert_eq!(decode(&refresh).1["cnf"], json!({"jkt": key.jkt()}));

    // The control: without a proof, a bearer pair with no `cnf`.
    let reply = login_with(&app, None).await;
    assert_eq!(reply.body["token_type"], "Bearer", "{}", reply.text);
    let plain = reply.body["access_token"].as_str().unwrap();
    assert_eq!(decode(plain).1.get("cnf"), None);
    app.assert_accepted(plain).await;
}

async fn a_bound_token_is_taken_only_as_dpop_with_a_fresh_proof_of_its_key(db: TestDb) {
    let app = TestApp::start(db).await;
    let key = DpopKey::new(Algorithm::EdDSA);
    let (access, _) = bound_login(&app, &key).await;
    let token = Some(access.as_str());

    let proof = key.proof(&app, "GET", "/api/me", token);
    let reply = me_as(&app, "DPoP", &access, Some(&proof)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["email"], "alice@example.com");

    // The same proof again.
    assert_dpop_refused(
        &me_as(&app, "DPoP", &access, Some(&proof)).await,
        "invalid_dpop_proof",
        "invalid_dpop_proof",
    );
    // As a bearer token, with or without a proof: no downgrade.
    let fresh = key.proof(&app, "GET", "/api/me", token);
    assert_dpop_refused(
        &me_as(&app, "Bearer", &access, None).await,
        "invalid_token",
        "invalid_token",
    );
    assert_dpop_refused(
        &me_as(&app, "Bearer", &access, Some(&fresh)).await,
        "invalid_token",
        "invalid_token",
    );
    // No proof.
    assert_dpop_refused(
        &me_as(&app, "DPoP", &access, None).await,
        "invalid_dpop_proof",
        "invalid_dpop_proof",
    );
    // Another key's proof, with the right `ath`.
    let thief = DpopKey::new(Algorithm::EdDSA);
    let stolen = thief.proof(&app, "GET", "/api/me", token);
    assert_dpop_refused(
        &me_as(&app, "DPoP", &access, Some(&stolen)).await,
        "invalid_dpop_proof",
        "invalid_dpop_proof",
    );
    // Another method, another URL, a wrong `ath`, a stale `iat`, one from the future.
    let now = app.now().timestamp();
    let me = app.url("/api/me");
    let wrong = [
        key.claims("POST", &me, now, token),
        key.claims("GET", &app.url("/api/sessions"), now, token),
        key.claims("GET", &me, now, Some("another.access.token")),
        key.claims("GET", &me, now, None),
        key.claims("GET", &me, now - 61, token),
        key.claims("GET", &me, now + 61, token),
    ];
    for claims in wrong {
        let reply = me_as(&app, "DPoP", &access, Some(&key.sign_claims(&claims))).await;
        assert_dpop_refused(&reply, "invalid_dpop_proof", "invalid_dpop_proof");
    }
    // Two proofs.
    let request = app
        .get("/api/me")
        .header("authorization", format!("DPoP {access}"))
        .header("DPoP", key.proof(&app, "GET", "/api/me", token))
        .header("DPoP", key.proof(&app, "GET", "/api/me", token));
    assert_dpop_refused(&send(request).await, "invalid_dpop_proof", "invalid_dpop_proof");

    // The control again: a fresh proof of the key, within the window's edge, still works.
    let edge = key.sign_claims(&key.claims("GET", &me, now - 59, token));
    let reply = me_as(&app, "DPoP", &access, Some(&edge)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

async fn an_unbound_token_is_refused_with_the_dpop_scheme(db: TestDb) {
    let app = TestApp::start(db).await;
    app.create_user("alice@example.com", &["user"]).await;
    let pair = app.login("alice@example.com").await;
    let key = DpopKey::new(Algorithm::ES256);
    let proof = key.proof(&app, "GET", "/api/me", Some(&pair.access));
    assert_dpop_refused(
        &me_as(&app, "DPoP", &pair.access, Some(&proof)).await,
        "invalid_token",
        "invalid_token",
    );
    // The control: as a bearer token, even with a proof beside it.
    let reply = me_as(&app, "Bearer", &pair.access, Some(&proof)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    // Whatever is refused of a token presented as DPoP is answered with the DPoP challenge.
    let reply = send(app.get("/api/me").header("authorization", "DPoP not-a-token")).await;
    assert_dpop_refused(&reply, "invalid_token", "invalid_token");
}

async fn a_bound_refresh_token_refreshes_only_with_a_proof_of_its_key(db: TestDb) {
    let app = TestApp::start(db).await;
    let key = DpopKey::new(Algorithm::ES256);
    let (_, refresh) = bound_login(&app, &key).await;
    let json_refresh = |proof: Option<String>| {
        let mut request = app.post("/auth/refresh").json(&json!({"refresh_token": refresh}));
        if let Some(proof) = proof {
            request = request.header("DPoP", proof);
        }
        send(request)
    };
    assert_proof_refused(&json_refresh(None).await, "invalid_dpop_proof");
    let thief = DpopKey::new(Algorithm::ES256);
    let other = thief.proof(&app, "POST", "/auth/refresh", None);
    assert_proof_refused(&json_refresh(Some(other)).await, "invalid_dpop_proof");
    // At the token endpoint too, in RFC 6749's format.
    let form_refresh = |proof: Option<String>, token: &str| {
        let mut request = app
            .post("/auth/token")
            .form(&[("grant_type", "refresh_token"), ("refresh_token", token)]);
        if let Some(proof) = proof {
            request = request.header("DPoP", proof);
        }
        send(request)
    };
    form_refresh(None, &refresh).await.assert_oauth_error("invalid_dpop_proof");
    let other = thief.proof(&app, "POST", "/auth/token", None);
    form_refresh(Some(other), &refresh).await.assert_oauth_error("invalid_dpop_proof");

    // The control: its own key, and the new pair is bound to it again.
    let reply = json_refresh(Some(key.proof(&app, "POST", "/auth/refresh", None))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["token_type"], "DPoP");
    let next = reply.body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(decode(&next).1["cnf"], json!({"jkt": key.jkt()}));
    let reply = form_refresh(Some(key.proof(&app, "POST", "/auth/token", None)), &next).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["token_type"], "DPoP");
}

async fn invalid_proofs_at_token_requests_are_400_invalid_dpop_proof(db: TestDb) {
    let app = TestApp::start(db).await;
    app.create_user("alice@example.com", &["user"]).await;
    let key = DpopKey::new(Algorithm::ES256);
    let now = app.now().timestamp();
    let login = app.url("/auth/login");
    let claims = key.claims("POST", &login, now, None);

    let mut private_jwk = key.header();
    private_jwk["jwk"]["d"] = b64(&[7; 32]).into();
    let mut mismatched = key.header();
    mismatched["alg"] = "EdDSA".into();
    let none = format!(
        "{}.{}.",
        b64(json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.header()["jwk"]})
            .to_string()
            .as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let hs256 = forge(
        &json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": key.header()["jwk"]}),
        &claims,
        &EncodingKey::from_secret(&[1; 32]),
        jsonwebtoken::Algorithm::HS256,
    );
    let mut untyped = key.header();
    untyped["typ"] = "JWT".into();
    let refused = [
        key.sign(&private_jwk, &claims),
        key.sign(&mismatched, &claims),
        none,
        hs256,
        key.sign(&untyped, &claims),
        key.sign_claims(&key.claims("GET", &login, now, None)),
        key.sign_claims(&key.claims("POST", &app.url("/auth/token"), now, None)),
        key.sign_claims(&key.claims("POST", &login, now - 120, None)),
        "not a proof".to_owned(),
        format!("{}.{}", "e".repeat(9000), "x"),
    ];
    for proof in refused {
        let reply = login_with(&app, Some(&proof)).await;
        assert_proof_refused(&reply, "invalid_dpop_proof");
    }
    let token = send(app.post("/auth/token").header("DPoP", "not a proof").form(&[
        ("grant_type", "password"),
        ("username", "alice@example.com"),
        ("password", PASSWORD),
    ]))
    .await;
    token.assert_oauth_error("invalid_dpop_proof");
    // The control: the same claims, properly signed.
    let reply = login_with(&app, Some(&key.sign_claims(&claims))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let reply = send(
        app.post("/auth/token").header("DPoP", key.proof(&app, "POST", "/auth/token", None)).form(
            &[
                ("grant_type", "password"),
                ("username", "alice@example.com"),
                ("password", PASSWORD),
            ],
        ),
    )
    .await;
    assert_eq!(reply.body["token_type"], "DPoP", "{}", reply.text);
}

async fn a_service_client_gets_a_bound_token_with_a_proof(db: TestDb) {
    let app = TestApp::start(db).await;
    let client = ServiceClient::add(&app, "billing", false).await;
    let grant = |proof: Option<String>| client.grant(&app, proof);
    let key = DpopKey::new(Algorithm::EdDSA);
    let reply = grant(Some(key.proof(&app, "POST", "/auth/token", None))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["token_type"], "DPoP");
    let token = reply.body["access_token"].as_str().unwrap();
    assert_eq!(decode(token).1["cnf"], json!({"jkt": key.jkt()}));
    assert_dpop_refused(
        &me_as(&app, "Bearer", token, None).await,
        "invalid_token",
        "invalid_token",
    );
    // The control: without a proof, a bearer token.
    let reply = grant(None).await;
    assert_eq!(reply.body["token_type"], "Bearer", "{}", reply.text);
}

async fn metadata_and_introspection_show_dpop(db: TestDb) {
    let app = TestApp::start(db).await;
    let metadata = send(app.get("/.well-known/oauth-authorization-server")).await;
    assert_eq!(
        metadata.body["dpop_signing_alg_values_supported"],
        json!(["ES256", "EdDSA", "RS256"])
    );

    let key = DpopKey::new(Algorithm::ES256);
    let (access, refresh) = bound_login(&app, &key).await;
    let admin = app.admin().await;
    let introspect = |token: &str| {
        send(app.post("/auth/introspect").bearer_auth(&admin.access).form(&[("token", token)]))
    };
    for token in [&access, &refresh] {
        let reply = introspect(token).await;
        assert_eq!(reply.body["active"], true, "{}", reply.text);
        assert_eq!(reply.body["cnf"], json!({"jkt": key.jkt()}), "{}", reply.text);
    }
    // The control: an unbound token has no `cnf`.
    let reply = introspect(&admin.access).await;
    assert_eq!(reply.body["active"], true);
    assert_eq!(reply.body.get("cnf"), None, "{}", reply.text);
}

async fn with_dpop_nonce_a_proof_needs_a_current_nonce_that_every_instance_accepts(db: TestDb) {
    let app = TestApp::start_with(db, |config| config.dpop_nonce = true).await;
    app.create_user("alice@example.com", &["user"]).await;
    let key = DpopKey::new(Algorithm::ES256);

    // Without a nonce: 400 use_dpop_nonce, and the nonce to use.
    let reply = login_with(&app, Some(&key.proof(&app, "POST", "/auth/login", None))).await;
    assert_proof_refused(&reply, "use_dpop_nonce");
    let nonce = reply.header("dpop-nonce").expect("a DPoP-Nonce header").to_owned();

    // Another instance of the deployment accepts it.
    let sibling = app.sibling().await;
    let reply =
        login_with(&sibling, Some(&key.proof_with_nonce(&sibling, "POST", "/auth/login", &nonce)))
            .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let access = reply.body["access_token"].as_str().unwrap().to_owned();

    // At the API: 401 use_dpop_nonce without one, with the nonce to use.
    let proof = key.proof(&app, "GET", "/api/me", Some(&access));
    let reply = me_as(&app, "DPoP", &access, Some(&proof)).await;
    assert_dpop_refused(&reply, "use_dpop_nonce", "use_dpop_nonce");
    assert!(reply.header("dpop-nonce").is_some());
    let mut claims = key.claims("GET", &app.url("/api/me"), app.now().timestamp(), Some(&access));
    claims["nonce"] = nonce.clone().into();
    let reply = me_as(&app, "DPoP", &access, Some(&key.sign_claims(&claims))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);

    // A nonce of another deployment, and a stale one.
    let other_db = TestDb::open(Backend::Sqlite).await.expect("a SQLite file");
    let elsewhere = TestApp::start_with(other_db, |config| config.dpop_nonce = true).await;
    let foreign = login_with(&elsewhere, Some(&key.proof(&elsewhere, "POST", "/auth/login", None)))
        .await
        .header("dpop-nonce")
        .expect("a nonce")
        .to_owned();
    let reply =
        login_with(&app, Some(&key.proof_with_nonce(&app, "POST", "/auth/login", &foreign))).await;
    assert_proof_refused(&reply, "use_dpop_nonce");
    app.advance(15 * 60);
    let reply =
        login_with(&app, Some(&key.proof_with_nonce(&app, "POST", "/auth/login", &nonce))).await;
    assert_proof_refused(&reply, "use_dpop_nonce");
    let fresh = reply.header("dpop-nonce").expect("a fresh nonce").to_owned();
    assert_ne!(fresh, nonce);
    let reply =
        login_with(&app, Some(&key.proof_with_nonce(&app, "POST", "/auth/login", &fresh))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

/// Each instance remembers the proofs it accepted: a proof replayed to another instance of
/// the deployment within its minute is accepted there once (the cross-instance bound of
/// `docs/security.md`), and only for what it was made for: the same method, URL and access
/// token. Here both instances are reached at one public URL, as behind a load balancer.
async fn a_proof_replayed_to_another_instance_is_refused_there_on_its_second_use(db: TestDb) {
    const PUBLIC: &str = "http://auth.test";
    let app = TestApp::start_with(db, |config| config.public_url = Some(PUBLIC.into())).await;
    app.create_user("alice@example.com", &["user"]).await;
    let key = DpopKey::new(Algorithm::ES256);
    let login = key.sign_claims(&key.claims(
        "POST",
        &format!("{PUBLIC}/auth/login"),
        app.now().timestamp(),
        None,
    ));
    let reply = login_with(&app, Some(&login)).await;
    assert_eq!(reply.body["token_type"], "DPoP", "{}", reply.text);
    let access = reply.body["access_token"].as_str().unwrap().to_owned();
    let sibling = app.sibling().await;

    let claims =
        key.claims("GET", &format!("{PUBLIC}/api/me"), app.now().timestamp(), Some(&access));
    let proof = key.sign_claims(&claims);
    let reply = me_as(&app, "DPoP", &access, Some(&proof)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_dpop_refused(
        &me_as(&app, "DPoP", &access, Some(&proof)).await,
        "invalid_dpop_proof",
        "invalid_dpop_proof",
    );
    let reply = me_as(&sibling, "DPoP", &access, Some(&proof)).await;
    assert_eq!(reply.status, StatusCode::OK, "the bound: once on another instance: {}", reply.text);
    assert_dpop_refused(
        &me_as(&sibling, "DPoP", &access, Some(&proof)).await,
        "invalid_dpop_proof",
        "invalid_dpop_proof",
    );
    // Past its minute, nowhere.
    app.advance(62);
    assert_dpop_refused(
        &me_as(&sibling, "DPoP", &access, Some(&proof)).await,
        "invalid_dpop_proof",
        "invalid_dpop_proof",
    );
}

async fn a_bound_token_logs_out_only_with_a_proof_of_its_key(db: TestDb) {
    let app = TestApp::start(db).await;
    let key = DpopKey::new(Algorithm::ES256);
    let (access, _) = bound_login(&app, &key).await;
    let logout = |scheme: &str, proof: Option<String>| {
        let mut request =
            app.post("/auth/logout").header("authorization", format!("{scheme} {access}"));
        if let Some(proof) = proof {
            request = request.header("DPoP", proof);
        }
        send(request)
    };
    // A thief with the token alone, or with a key of their own, ends nothing.
    assert_dpop_refused(&logout("Bearer", None).await, "invalid_token", "invalid_token");
    let thief = DpopKey::new(Algorithm::ES256);
    let stolen = thief.proof(&app, "POST", "/auth/logout", Some(&access));
    assert_dpop_refused(
        &logout("DPoP", Some(stolen)).await,
        "invalid_dpop_proof",
        "invalid_dpop_proof",
    );
    let me = key.proof(&app, "GET", "/api/me", Some(&access));
    assert_eq!(me_as(&app, "DPoP", &access, Some(&me)).await.status, StatusCode::OK);
    // The control: its holder logs out, and the token stops working.
    let reply = logout("DPoP", Some(key.proof(&app, "POST", "/auth/logout", Some(&access)))).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    let me = key.proof(&app, "GET", "/api/me", Some(&access));
    assert_dpop_refused(
        &me_as(&app, "DPoP", &access, Some(&me)).await,
        "token_revoked",
        "invalid_token",
    );
}

async fn a_client_that_requires_dpop_gets_a_token_only_with_a_proof(db: TestDb) {
    let app = TestApp::start(db).await;
    let client = ServiceClient::add(&app, "strict", true).await;
    let grant = |proof: Option<String>| client.grant(&app, proof);
    grant(None).await.assert_oauth_error("invalid_dpop_proof");
    // The control: with a proof, a bound token.
    let key = DpopKey::new(Algorithm::ES256);
    let reply = grant(Some(key.proof(&app, "POST", "/auth/token", None))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["token_type"], "DPoP");
}
