//! The Rust `openidconnect` crate, a relying party as Rust applications use it, against the
//! server at its own URL (`PUBLIC_URL=http://127.0.0.1:PORT`, as the getting-started page
//! shows for trying OpenID Connect locally): discovery, the authorization URL with PKCE and a
//! nonce, the code exchange, the ID token checked with the published keys, and UserInfo. The
//! browser between them is the tests' own, signing in on the server's pages.

use openidconnect::core::{CoreClient, CoreIdTokenClaims, CoreProviderMetadata, CoreResponseType};
use openidconnect::{
    AuthenticationFlow, AuthorizationCode, ClientId, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};

use jwt_auth_service::clients::SignIn;

use crate::common::{TestApp, TestDb};
use crate::http::apps::{Browser, add_app, allow, sign_in};

crate::http_tests!(the_openidconnect_crate_discovers_signs_in_and_verifies_the_id_token);

async fn the_openidconnect_crate_discovers_signs_in_and_verifies_the_id_token(db: TestDb) {
    let app = TestApp::start_at_own_url(db, |_| {}).await;
    app.register("alice@example.com").await;
    let registration = SignIn {
        redirect_uris: vec!["http://127.0.0.1/callback".into()],
        public: true,
        ..SignIn::default()
    };
    let client_app = add_app(&app, "Rust app", registration).await;

    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let issuer = IssuerUrl::new(app.url("")).expect("the issuer");
    let metadata = CoreProviderMetadata::discover_async(issuer, &http)
        .await
        .unwrap_or_else(|e| panic!("discovery: {e:?}"));
    let redirect = RedirectUrl::new("http://127.0.0.1:50123/callback".into()).expect("a URL");
    let client = CoreClient::from_provider_metadata(metadata, ClientId::new(client_app.id), None)
        .set_redirect_uri(redirect);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    assert!(url.as_str().starts_with(&app.url("/auth/authorize?")), "{url}");

    // The user signs in and allows the app on the server's pages.
    let mut browser = Browser::new(&app);
    let query = format!("/auth/authorize?{}", url.query().expect("a query"));
    let page = browser.get(&query).await;
    let consent = sign_in(&mut browser, &query, &page, "alice@example.com").await;
    let done = allow(&mut browser, &query, &consent).await;
    let location = done.header("location").expect("back to the app");
    let back = url::Url::parse(location).expect("a URL");
    let param =
        |name: &str| back.query_pairs().find(|(n, _)| n == name).map(|(_, v)| v.into_owned());
    assert_eq!(param("state").as_deref(), Some(state.secret().as_str()));
    assert_eq!(param("iss").as_deref(), Some(app.url("").as_str()));
    let code = AuthorizationCode::new(param("code").expect("a code"));

    let tokens = client
        .exchange_code(code)
        .expect("a token endpoint")
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap_or_else(|e| panic!("the code exchange: {e:?}"));
    let id_token = tokens.id_token().expect("an ID token");
    let claims: &CoreIdTokenClaims = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .unwrap_or_else(|e| panic!("the ID token: {e:?}"));
    assert_eq!(claims.email().map(|e| e.as_str()), Some("alice@example.com"));
    assert!(claims.auth_time().is_some());
    // A wrong nonce is refused: the control of the check above.
    assert!(id_token.claims(&client.id_token_verifier(), &Nonce::new("other".into())).is_err());

    let info: openidconnect::core::CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)
        .expect("a UserInfo endpoint")
        .request_async(&http)
        .await
        .unwrap_or_else(|e| panic!("UserInfo: {e:?}"));
    assert_eq!(info.subject(), claims.subject());
    assert_eq!(info.email().map(|e| e.as_str()), Some("alice@example.com"));
    assert!(tokens.refresh_token().is_some());
}
