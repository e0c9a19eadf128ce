//! DPoP-bound tokens (RFC 9449) at the actix-web and axum extractors, answered as the
//! `jwt-auth` server answers them at `/api/me`: a token with `cnf` passes only as
//! `Authorization: DPoP` with a fresh proof of its key for the request's method and URL; a
//! token without only as `Authorization: Bearer`; every refusal of a token presented as DPoP
//! is 401 with RFC 9449's challenge. Each refusal beside a request that passes, its status,
//! body and `WWW-Authenticate` compared to the byte.
//!
//! The routes are served on 127.0.0.1 by each framework (the URL a proof names is then
//! `http://` and the `Host` the client sends), or called in process where a request without a
//! host is wanted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{TimeDelta, Utc};
use jsonwebtoken::EncodingKey;
use jwt_auth_verifier::{KeySource, NoExtra, Verifier};
use jwt_core::{
    Algorithm, Confirmation, KeySet, ManualClock, Revocation, SigningKey, Subject, TokenPolicy,
    TokenService, access_token_hash,
};
use serde_json::{Value, json};

const ISSUER: &str = "https://auth.example";
const AUDIENCE: &str = "api";

/// The issuer's side: signs with the verifier's HS256 secret, now and two hours ago.
struct Issuer {
    secret: jwt_core::Secret,
    tokens: TokenService,
    past: TokenService,
}

impl Issuer {
    fn new() -> Self {
        let secret = jwt_core::Secret::generate();
        let keys = KeySet::new(SigningKey::from_secret(secret.clone()).unwrap());
        let tokens = TokenService::new(TokenPolicy::new(ISSUER, AUDIENCE), keys.clone()).unwrap();
        let clock = Arc::new(ManualClock::new(Utc::now() - TimeDelta::hours(2)));
        let past =
            TokenService::new(TokenPolicy::new(ISSUER, AUDIENCE), keys).unwrap().with_clock(clock);
        Self { secret, tokens, past }
    }

    /// A verifier of these tokens, ready at once; with `public_url` if given.
    fn verifier(&self, public_url: Option<&str>) -> Verifier {
        let mut builder =
            Verifier::builder(KeySource::hs256(ISSUER, self.secret.clone()), AUDIENCE);
        if let Some(url) = public_url {
            builder = builder.public_url(url);
        }
        builder.start().unwrap()
    }

    /// An access token of `sub` in session `sid`, bound to `key` if given.
    fn token(&self, sub: &str, sid: &str, roles: &[&str], key: Option<&DpopKey>) -> String {
        self.issue(&self.tokens, sub, sid, roles, key)
    }

    /// The same, issued two hours ago: expired.
    fn expired(&self, sub: &str, sid: &str, key: Option<&DpopKey>) -> String {
        self.issue(&self.past, sub, sid, &["user"], key)
    }

    fn issue(
        &self,
        service: &TokenService,
        sub: &str,
        sid: &str,
        roles: &[&str],
        key: Option<&DpopKey>,
    ) -> String {
        let subject = Subject {
            id: sub.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            email: None,
        };
        let issued = match key {
            Some(key) => {
                let cnf = Confirmation { jkt: key.jkt().to_owned() };
                service.issue_bound_access(&subject, sid, None, None, &cnf)
            }
            None => service.issue_access(&subject, sid, None),
        };
        issued.unwrap().token.into_string()
    }
}

/// A client's DPoP key, signing proofs through jsonwebtoken.
struct DpopKey {
    key: SigningKey,
    encoding: EncodingKey,
}

impl DpopKey {
    fn new(alg: Algorithm) -> Self {
        let key = SigningKey::generate(alg).unwrap();
        let pem = key.to_pem().unwrap();
        let encoding = match alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()),
            Algorithm::RS256 => EncodingKey::from_rsa_pem(pem.as_bytes()),
            _ => EncodingKey::from_ed_pem(pem.as_bytes()),
        }
        .unwrap();
        Self { key, encoding }
    }

    /// The RFC 7638 thumbprint of the key: the `jkt` of tokens bound to it.
    fn jkt(&self) -> &str {
        self.key.kid()
    }

    /// The claims of a proof of `method` `url` at `iat`, naming `token` in `ath` if given.
    fn claims(&self, method: &str, url: &str, iat: i64, token: Option<&str>) -> Value {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let jti = format!("proof-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let mut claims = json!({"jti": jti, "htm": method, "htu": url, "iat": iat});
        if let Some(token) = token {
            claims["ath"] = access_token_hash(token).into();
        }
        claims
    }

    fn sign(&self, claims: &Value) -> String {
        let jwk = serde_json::to_value(self.key.verifying_key().to_jwk().unwrap()).unwrap();
        let header = json!({"typ": "dpop+jwt", "alg": self.key.algorithm().as_str(), "jwk": jwk});
        let b64 = |value: &Value| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
        };
        let message = format!("{}.{}", b64(&header), b64(claims));
        let alg = self.key.algorithm().as_str().parse().unwrap();
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &self.encoding, alg).unwrap();
        format!("{message}.{signature}")
    }

    /// A proof of `method` `url` now, for `token`.
    fn proof(&self, method: &str, url: &str, token: &str) -> String {
        self.sign(&self.claims(method, url, Utc::now().timestamp(), Some(token)))
    }
}

/// A response as seen by a client.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    status: u16,
    body: String,
    challenge: Option<String>,
    cache_control: Option<String>,
    content_type: Option<String>,
    retry_after: Option<String>,
}

/// The routes both frameworks serve:
///
/// - `/me` (`Authenticated`), `/admin` (`RequireRole<Admin>`), `/with`
///   (`AuthenticatedWith<NoExtra>`), answering the subject;
/// - `/maybe`, the optional caller, answering the subject or `anonymous`;
/// - `/v1/me`: `/me` in a scope (actix-web) or a nested router (axum).
struct Served {
    url: String,
    client: reqwest::Client,
}

impl Served {
    fn new(url: String) -> Self {
        Self { url, client: reqwest::Client::builder().no_proxy().build().unwrap() }
    }

    /// The URL of `path`, as the client addresses it (and a proof names it).
    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// `GET path` with `Authorization: {authorization}` and a `DPoP` header per proof.
    async fn get(&self, path: &str, authorization: Option<&str>, proofs: &[&str]) -> Seen {
        let url = self.at(path);
        let mut request = self.client.get(&url);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        for proof in proofs {
            request = request.header("DPoP", *proof);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let header =
            |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
        let (challenge, cache_control, content_type, retry_after) = (
            header("www-authenticate"),
            header("cache-control"),
            header("content-type"),
            header("retry-after"),
        );
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        Seen { status, body, challenge, cache_control, content_type, retry_after }
    }

    /// `GET path` as `DPoP token` with a fresh proof of `key` for it.
    async fn get_dpop(&self, path: &str, token: &str, key: &DpopKey) -> Seen {
        let proof = key.proof("GET", &self.at(path), token);
        self.get(path, Some(&format!("DPoP {token}")), &[&proof]).await
    }
}

/// RFC 9449's challenge, as the server writes it.
fn dpop_challenge(error: &str, description: &str) -> String {
    format!(
        r#"DPoP realm="jwt-auth", error="{error}", error_description="{description}", algs="ES256 EdDSA RS256""#
    )
}

/// Asserts a 401 with `{"error": code, "message": message}`, to the byte, and RFC 9449's
/// challenge naming `challenge_error` and the message.
fn assert_dpop_refused(what: &str, seen: &Seen, code: &str, challenge_error: &str, message: &str) {
    let body = json!({"error": code, "message": message}).to_string();
    assert_eq!((seen.status, seen.body.as_str()), (401, body.as_str()), "{what}: {seen:?}");
    let challenge = dpop_challenge(challenge_error, message);
    assert_eq!(seen.challenge.as_deref(), Some(challenge.as_str()), "{what}: {seen:?}");
    assert_eq!(seen.cache_control.as_deref(), Some("no-store"), "{what}: {seen:?}");
    assert_eq!(seen.content_type.as_deref(), Some("application/json"), "{what}: {seen:?}");
    assert_eq!(seen.retry_after, None, "{what}: {seen:?}");
}

/// A refused proof: 401 `invalid_dpop_proof`, "DPoP proof refused: {why}".
fn assert_proof_refused(what: &str, seen: &Seen, why: &str) {
    let message = format!("DPoP proof refused: {why}");
    assert_dpop_refused(what, seen, "invalid_dpop_proof", "invalid_dpop_proof", &message);
}

/// A bound token presented as a bearer token.
fn assert_bound_as_bearer(what: &str, seen: &Seen) {
    let message = "token is bound to a key: present it with the DPoP scheme and a proof";
    assert_dpop_refused(what, seen, "invalid_token", "invalid_token", message);
}

/// Asserts a 200 with this body.
fn assert_ok(what: &str, seen: &Seen, body: &str) {
    assert_eq!((seen.status, seen.body.as_str()), (200, body), "{what}: {seen:?}");
}

/// A bound token passes every extractor as DPoP with a fresh proof of its key, and is refused
/// as the server refuses it: as a bearer token, without a proof, with another key's proof, a
/// proof used already, or one for another method, URL or token, each beside a request that
/// passes.
async fn bound_tokens(framework: &str, served: &Served, issuer: &Issuer) {
    let what = |case: &str| format!("{framework}: {case}");
    let key = DpopKey::new(Algorithm::EdDSA);
    let alice = issuer.token("alice", "s-alice", &["user"], Some(&key));
    let root = issuer.token("root", "s-root", &["admin"], Some(&key));
    let dpop = format!("DPoP {alice}");
    let bearer = format!("Bearer {alice}");

    // Every extractor takes it with a proof of its key, and a route in a scope or nested
    // router with a proof of its whole path.
    for (path, token, body) in [
        ("/me", &alice, "alice"),
        ("/with", &alice, "alice"),
        ("/maybe", &alice, "alice"),
        ("/admin", &root, "root"),
        ("/v1/me", &alice, "alice"),
    ] {
        let seen = served.get_dpop(path, token, &key).await;
        assert_ok(&what(&format!("{path}, DPoP with a proof")), &seen, body);
    }
    // The role is checked after the proof: a bound token without it is a 403 still.
    let seen = served.get_dpop("/admin", &alice, &key).await;
    assert_eq!(seen.status, 403, "{}: {seen:?}", what("/admin without the role"));

    // The same proof again.
    let proof = key.proof("GET", &served.at("/me"), &alice);
    assert_ok(&what("a fresh proof"), &served.get("/me", Some(&dpop), &[&proof]).await, "alice");
    let seen = served.get("/me", Some(&dpop), &[&proof]).await;
    assert_proof_refused(&what("a replayed proof"), &seen, "its `jti` was used already");

    // As a bearer token, with or without a proof, at every extractor: no downgrade.
    for path in ["/me", "/with", "/maybe", "/admin", "/v1/me"] {
        let seen = served.get(path, Some(&bearer), &[]).await;
        assert_bound_as_bearer(&what(&format!("{path} as Bearer")), &seen);
        let fresh = key.proof("GET", &served.at(path), &alice);
        let seen = served.get(path, Some(&bearer), &[&fresh]).await;
        assert_bound_as_bearer(&what(&format!("{path} as Bearer with a proof")), &seen);
        // Without a proof: never anonymous, not even where anonymous callers are served.
        let seen = served.get(path, Some(&dpop), &[]).await;
        assert_proof_refused(
            &what(&format!("{path} without a proof")),
            &seen,
            "the request has no DPoP proof",
        );
    }

    // Another key's proof, naming the token.
    let thief = DpopKey::new(Algorithm::EdDSA);
    let stolen = thief.proof("GET", &served.at("/me"), &alice);
    let seen = served.get("/me", Some(&dpop), &[&stolen]).await;
    assert_proof_refused(
        &what("another key's proof"),
        &seen,
        "its key is not the key the access token is bound to",
    );

    // Another method, another URL, another token, no token, a stale or future `iat`.
    let now = Utc::now().timestamp();
    let me = served.at("/me");
    let https = me.replacen("http://", "https://", 1);
    let wrong = [
        (
            "another method",
            key.claims("POST", &me, now, Some(&alice)),
            "its `htm` is not the request's method",
        ),
        (
            "another path",
            key.claims("GET", &served.at("/with"), now, Some(&alice)),
            "its `htu` is not the request's URL",
        ),
        (
            "https",
            key.claims("GET", &https, now, Some(&alice)),
            "its `htu` is not the request's URL",
        ),
        (
            "the path without its scope",
            key.claims("GET", &me, now, Some(&alice)),
            "its `htu` is not the request's URL",
        ),
        (
            "another token's hash",
            key.claims("GET", &me, now, Some("another.access.token")),
            "its `ath` is not the hash of the access token",
        ),
        ("no `ath`", key.claims("GET", &me, now, None), "its claim `ath` is missing"),
        ("a stale `iat`", key.claims("GET", &me, now - 61, Some(&alice)), "its `iat` is too old"),
        (
            "a future `iat`",
            key.claims("GET", &me, now + 61, Some(&alice)),
            "its `iat` is in the future",
        ),
    ];
    for (case, claims, why) in wrong {
        let path = if case == "the path without its scope" { "/v1/me" } else { "/me" };
        let seen = served.get(path, Some(&dpop), &[&key.sign(&claims)]).await;
        assert_proof_refused(&what(case), &seen, why);
    }
    let two = [key.proof("GET", &me, &alice), key.proof("GET", &me, &alice)];
    let seen = served.get("/me", Some(&dpop), &[&two[0], &two[1]]).await;
    assert_proof_refused(&what("two proofs"), &seen, "the request has more than one DPoP header");

    // The control again: a fresh proof of the key, within the window's edge, still passes. The
    // edge is taken from the time now: the cases above took seconds on a busy machine.
    let edge = key.sign(&key.claims("GET", &me, Utc::now().timestamp() - 58, Some(&alice)));
    assert_ok(
        &what("at the window's edge"),
        &served.get("/me", Some(&dpop), &[&edge]).await,
        "alice",
    );
}

/// A token bound to no key is refused as DPoP, with or without a proof, and passes as a
/// bearer token even with a proof beside it; whatever is refused of a token presented as DPoP
/// (malformed, expired, revoked) is answered with RFC 9449's challenge, the body's code the
/// reason's; presented as a bearer token, the same tokens keep their bearer answers.
async fn unbound_and_refused_tokens(
    framework: &str,
    served: &Served,
    issuer: &Issuer,
    verifier: &Verifier,
) {
    let what = |case: &str| format!("{framework}: {case}");
    let key = DpopKey::new(Algorithm::ES256);
    let plain = issuer.token("alice", "s-plain", &["user"], None);
    let proof = key.proof("GET", &served.at("/me"), &plain);
    let unbound = "token is not bound to a key: present it with the Bearer scheme";
    for path in ["/me", "/with", "/maybe"] {
        let proof = key.proof("GET", &served.at(path), &plain);
        let seen = served.get(path, Some(&format!("DPoP {plain}")), &[&proof]).await;
        assert_dpop_refused(
            &what(&format!("{path}, unbound as DPoP")),
            &seen,
            "invalid_token",
            "invalid_token",
            unbound,
        );
        let seen = served.get(path, Some(&format!("DPoP {plain}")), &[]).await;
        assert_dpop_refused(
            &what(&format!("{path}, unbound as DPoP without a proof")),
            &seen,
            "invalid_token",
            "invalid_token",
            unbound,
        );
        let seen = served.get(path, Some(&format!("Bearer {plain}")), &[&proof]).await;
        assert_ok(&what(&format!("{path}, unbound as Bearer with a proof")), &seen, "alice");
    }
    let seen = served.get("/me", Some(&format!("Bearer {plain}")), &[&proof]).await;
    assert_ok(&what("the same proof beside a bearer token"), &seen, "alice");

    // Malformed tokens, as DPoP and as Bearer.
    let malformed = "token is malformed: expected three dot-separated parts";
    let seen = served.get("/me", Some("DPoP not-a-token"), &[]).await;
    assert_dpop_refused(
        &what("DPoP not-a-token"),
        &seen,
        "invalid_token",
        "invalid_token",
        malformed,
    );
    let seen = served.get("/maybe", Some("DPoP not-a-token"), &[]).await;
    assert_dpop_refused(
        &what("/maybe, DPoP not-a-token"),
        &seen,
        "invalid_token",
        "invalid_token",
        malformed,
    );
    let seen = served.get("/me", Some("Bearer not-a-token"), &[]).await;
    assert_eq!(
        seen.challenge.as_deref(),
        Some(
            format!(
                r#"Bearer realm="jwt-auth", error="invalid_token", error_description="{malformed}""#
            )
            .as_str()
        ),
        "{}",
        what("Bearer not-a-token")
    );

    // An expired bound token with a valid proof, as DPoP: the body says `token_expired`.
    let expired = issuer.expired("alice", "s-old", Some(&key));
    let seen = served.get_dpop("/me", &expired, &key).await;
    assert_dpop_refused(
        &what("expired, as DPoP"),
        &seen,
        "token_expired",
        "invalid_token",
        "token has expired",
    );
    // As Bearer, the bearer answer of an expired token: it is refused before its binding.
    let seen = served.get("/me", Some(&format!("Bearer {expired}")), &[]).await;
    let body = json!({"error": "token_expired", "message": "token has expired"}).to_string();
    assert_eq!(
        (seen.status, seen.body.as_str()),
        (401, body.as_str()),
        "{}",
        what("expired, as Bearer")
    );
    assert_eq!(
        seen.challenge.as_deref(),
        Some(
            r#"Bearer realm="jwt-auth", error="invalid_token", error_description="token has expired""#
        ),
        "{}",
        what("expired, as Bearer")
    );

    // A logout: the bound token passes before, and is refused after.
    let leaving = issuer.token("bob", &format!("s-logout-{framework}"), &["user"], Some(&key));
    assert_ok(&what("before the logout"), &served.get_dpop("/me", &leaving, &key).await, "bob");
    verifier.revocations().apply(&[Revocation::Session {
        id: format!("s-logout-{framework}"),
        expires_at: Utc::now() + TimeDelta::hours(1),
    }]);
    let seen = served.get_dpop("/me", &leaving, &key).await;
    assert_dpop_refused(
        &what("after the logout"),
        &seen,
        "token_revoked",
        "invalid_token",
        "token has been revoked",
    );

    // No token at all: anonymous where that is served, `missing_token` elsewhere.
    assert_ok(
        &what("/maybe, no header"),
        &served.get("/maybe", None, &[&proof]).await,
        "anonymous",
    );
    let seen = served.get("/me", None, &[&proof]).await;
    assert_eq!(seen.status, 401, "{}", what("/me, no header"));
    assert_eq!(
        seen.challenge.as_deref(),
        Some(r#"Bearer realm="jwt-auth""#),
        "{}",
        what("/me, no header")
    );
}

/// Behind a public URL, a proof names it (and the path), never the address the request came
/// to; one verifier keeps one replay cache, whichever framework or route the proof comes to.
async fn behind_a_public_url(actix: &Served, axum: &Served, issuer: &Issuer) {
    let key = DpopKey::new(Algorithm::RS256);
    let alice = issuer.token("alice", "s-public", &["user"], Some(&key));
    let dpop = format!("DPoP {alice}");
    let public = "https://api.example.com/orders/me";
    for served in [actix, axum] {
        let proof = key.proof("GET", public, &alice);
        assert_ok(
            &format!("{}: the public URL", served.url),
            &served.get("/me", Some(&dpop), &[&proof]).await,
            "alice",
        );
        let direct = key.proof("GET", &served.at("/me"), &alice);
        let seen = served.get("/me", Some(&dpop), &[&direct]).await;
        assert_proof_refused(
            &format!("{}: the address", served.url),
            &seen,
            "its `htu` is not the request's URL",
        );
    }
    let proof = key.proof("GET", public, &alice);
    assert_ok(
        "the first use, at actix-web",
        &actix.get("/me", Some(&dpop), &[&proof]).await,
        "alice",
    );
    let seen = axum.get("/me", Some(&dpop), &[&proof]).await;
    assert_proof_refused("the second use, at axum", &seen, "its `jti` was used already");
}

mod with_actix {
    use super::*;
    use actix_web::dev::ServerHandle;
    use actix_web::{App, HttpResponse, HttpServer, test, web};
    use jwt_auth_verifier::Admin;
    use jwt_auth_verifier::actix::{
        Authenticated, AuthenticatedWith, MaybeAuthenticated, RequireRole,
    };

    async fn me(caller: Authenticated) -> HttpResponse {
        HttpResponse::Ok().body(caller.claims.sub)
    }

    async fn admin(caller: RequireRole<Admin>) -> HttpResponse {
        HttpResponse::Ok().body(caller.caller.claims.sub)
    }

    async fn with(caller: AuthenticatedWith<NoExtra>) -> HttpResponse {
        HttpResponse::Ok().body(caller.claims.sub)
    }

    async fn maybe(MaybeAuthenticated(caller): MaybeAuthenticated) -> HttpResponse {
        HttpResponse::Ok().body(caller.map_or("anonymous".to_owned(), |c| c.claims.sub))
    }

    fn routes(config: &mut web::ServiceConfig) {
        config
            .route("/me", web::get().to(me))
            .route("/admin", web::get().to(admin))
            .route("/with", web::get().to(with))
            .route("/maybe", web::get().to(maybe))
            .service(web::scope("/v1").route("/me", web::get().to(me)));
    }

    pub(super) fn start(verifier: Verifier) -> (Served, ServerHandle) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let verifier = web::Data::new(verifier);
        let server =
            HttpServer::new(move || App::new().app_data(verifier.clone()).configure(routes))
                .workers(1)
                .disable_signals()
                .listen(listener)
                .unwrap()
                .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        (Served::new(url), handle)
    }

    #[actix_web::test]
    async fn a_bound_token_passes_only_as_dpop_with_a_fresh_proof_of_its_key() {
        let issuer = Issuer::new();
        let (served, handle) = start(issuer.verifier(None));
        bound_tokens("actix", &served, &issuer).await;
        handle.stop(false).await;
    }

    #[actix_web::test]
    async fn an_unbound_token_passes_only_as_bearer_and_refusals_of_dpop_get_its_challenge() {
        let issuer = Issuer::new();
        let verifier = issuer.verifier(None);
        let (served, handle) = start(verifier.clone());
        unbound_and_refused_tokens("actix", &served, &issuer, &verifier).await;
        handle.stop(false).await;
    }

    /// Without a public URL, a request without a `Host` has no URL for the proof to name:
    /// its proof is refused, saying so; the same request with one passes.
    #[actix_web::test]
    async fn without_a_host_the_proof_of_a_bound_token_is_refused() {
        let issuer = Issuer::new();
        let key = DpopKey::new(Algorithm::EdDSA);
        let alice = issuer.token("alice", "s1", &["user"], Some(&key));
        let app = test::init_service(
            App::new().app_data(web::Data::new(issuer.verifier(None))).configure(routes),
        )
        .await;
        let request = |host: Option<&str>| {
            let proof = key.proof("GET", "http://api.example/me", &alice);
            let mut request = test::TestRequest::get()
                .uri("/me")
                .insert_header(("Authorization", format!("DPoP {alice}")))
                .insert_header(("DPoP", proof));
            if let Some(host) = host {
                request = request.insert_header(("Host", host));
            }
            request.to_request()
        };
        let response = test::call_service(&app, request(Some("api.example"))).await;
        assert_eq!(response.status(), 200);
        for host in [None, Some("api.example/x")] {
            let response = test::call_service(&app, request(host)).await;
            assert_eq!(response.status(), 401, "{host:?}");
            let message = "DPoP proof refused: the request has no Host header naming a plain \
                           host[:port] to check its `htu` against (behind a proxy, set the \
                           verifier's public URL)";
            let challenge =
                response.headers().get("www-authenticate").unwrap().to_str().unwrap().to_owned();
            assert_eq!(challenge, dpop_challenge("invalid_dpop_proof", message), "{host:?}");
            let body = test::read_body(response).await;
            let expected = json!({"error": "invalid_dpop_proof", "message": message}).to_string();
            assert_eq!(body, expected.as_bytes(), "{host:?}");
        }
    }

    /// Both frameworks behind one public URL, with one verifier: see [`behind_a_public_url`].
    #[actix_web::test]
    async fn behind_a_public_url_proofs_name_it_and_one_verifier_remembers_them_once() {
        let issuer = Issuer::new();
        let verifier = issuer.verifier(Some("https://api.example.com/orders/"));
        let (actix, handle) = start(verifier.clone());
        let (axum, server) = super::with_axum::start(verifier).await;
        behind_a_public_url(&actix, &axum, &issuer).await;
        handle.stop(false).await;
        server.abort();
    }
}

mod with_axum {
    use super::*;
    use ::axum::Router;
    use ::axum::body::Body;
    use ::axum::http::Request;
    use ::axum::routing::get;
    use jwt_auth_verifier::Admin;
    use jwt_auth_verifier::axum::{Authenticated, AuthenticatedWith, RequireRole, VerifierLayer};
    use tower::ServiceExt;

    async fn me(caller: Authenticated) -> String {
        caller.claims.sub
    }

    async fn admin(caller: RequireRole<Admin>) -> String {
        caller.caller.claims.sub
    }

    async fn with(caller: AuthenticatedWith<NoExtra>) -> String {
        caller.claims.sub
    }

    async fn maybe(caller: Option<Authenticated>) -> String {
        caller.map_or("anonymous".to_owned(), |c| c.claims.sub)
    }

    fn app(verifier: Verifier) -> Router {
        Router::new()
            .route("/me", get(me))
            .route("/admin", get(admin))
            .route("/with", get(with))
            .route("/maybe", get(maybe))
            .nest("/v1", Router::new().route("/me", get(me)))
            .layer(VerifierLayer::new(verifier))
    }

    pub(super) async fn start(verifier: Verifier) -> (Served, tokio::task::JoinHandle<()>) {
        let app = app(verifier);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move { ::axum::serve(listener, app).await.unwrap() });
        (Served::new(url), server)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bound_token_passes_only_as_dpop_with_a_fresh_proof_of_its_key() {
        let issuer = Issuer::new();
        let (served, server) = start(issuer.verifier(None)).await;
        bound_tokens("axum", &served, &issuer).await;
        server.abort();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unbound_token_passes_only_as_bearer_and_refusals_of_dpop_get_its_challenge() {
        let issuer = Issuer::new();
        let verifier = issuer.verifier(None);
        let (served, server) = start(verifier.clone()).await;
        unbound_and_refused_tokens("axum", &served, &issuer, &verifier).await;
        server.abort();
    }

    /// Without a public URL, a request without a `Host` names its host in its URI (as HTTP/2
    /// does), or has no URL for the proof to name: its proof is refused, saying so.
    #[tokio::test]
    async fn without_a_host_the_proof_of_a_bound_token_is_refused() {
        let issuer = Issuer::new();
        let key = DpopKey::new(Algorithm::EdDSA);
        let alice = issuer.token("alice", "s1", &["user"], Some(&key));
        let app = app(issuer.verifier(None));
        let request = |uri: &str, host: Option<&str>| {
            let proof = key.proof("GET", "http://api.example/me", &alice);
            let mut request = Request::get(uri)
                .header("Authorization", format!("DPoP {alice}"))
                .header("DPoP", proof);
            if let Some(host) = host {
                request = request.header("Host", host);
            }
            request.body(Body::empty()).unwrap()
        };
        for (uri, host) in [("/me", Some("api.example")), ("http://api.example/me", None)] {
            let response = app.clone().oneshot(request(uri, host)).await.unwrap();
            assert_eq!(response.status(), 200, "{uri} {host:?}");
        }
        for host in [None, Some("api.example/x")] {
            let response = app.clone().oneshot(request("/me", host)).await.unwrap();
            assert_eq!(response.status(), 401, "{host:?}");
            let message = "DPoP proof refused: the request has no Host header naming a plain \
                           host[:port] to check its `htu` against (behind a proxy, set the \
                           verifier's public URL)";
            let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
            assert_eq!(challenge, dpop_challenge("invalid_dpop_proof", message), "{host:?}");
            let body = ::axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
            let expected = json!({"error": "invalid_dpop_proof", "message": message}).to_string();
            assert_eq!(body, expected.as_bytes(), "{host:?}");
        }
    }
}
