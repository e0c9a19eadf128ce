//! The authorization request of the code grant (`GET /auth/authorize`, HTTP contract v3,
//! "Sign-in for apps"), parsed and checked in the order that decides where a refusal goes:
//!
//! 1. the parameters are read once each (RFC 6749 §3.1: a parameter sent twice is refused),
//!    each within [`MAX_PARAMETER_BYTES`];
//! 2. `client_id` must name a client with redirect URIs, and `redirect_uri` must be one of
//!    them: otherwise the refusal is a page of this server, never a redirect to a URI nobody
//!    registered ([`Refusal::Page`]);
//! 3. every other refusal goes back to that redirect URI with `error`, `state` and `iss`
//!    ([`Refusal::Redirect`]).

use std::collections::HashMap;

use jwt_auth_store::ServiceClient;

use crate::pkce::CodeChallenge;
use crate::redirect::RedirectUri;

/// The longest value of any one parameter.
pub const MAX_PARAMETER_BYTES: usize = 2_048;

/// The scopes a client may ask for.
pub const SCOPES: [&str; 3] = ["openid", "email", "offline_access"];

/// Why an authorization request is refused, and where the refusal goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A page of this server, status 400: the client or the redirect URI is not known, or the
    /// request is too broken to tell where to send an error.
    Page(String),
    /// Back to the client's redirect URI (RFC 6749 §4.1.2.1, OpenID Connect Core §3.1.2.6).
    Redirect {
        /// The redirect URI, as the request gave it (it matched a registered one).
        redirect_uri: String,
        /// The error code: `invalid_request`, `unauthorized_client`, `access_denied`,
        /// `unsupported_response_type`, `invalid_scope`, `login_required` or
        /// `consent_required`.
        error: &'static str,
        /// Words for the developer.
        description: String,
        /// The request's `state`, echoed exactly.
        state: Option<String>,
    },
}

/// `prompt`: what the server must or must not show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// No page at all: `login_required` or `consent_required` instead.
    None,
    /// The sign-in page, even with a sign-in session.
    Login,
    /// The consent page, even for scopes allowed before.
    Consent,
}

/// What the server accepts beside the client's registration.
#[derive(Debug, Clone)]
pub struct AuthorizePolicy {
    /// The audience of access tokens when no `resource` is asked for (`JWT_AUDIENCE`).
    pub audience: String,
    /// The other audiences a `resource` may name (`RESOURCES`).
    pub resources: Vec<String>,
    /// Whether OpenID Connect is offered (the issuer is a URL): without it, `openid` is an
    /// invalid scope.
    pub openid: bool,
}

/// A checked authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    /// The client.
    pub client_id: String,
    /// The redirect URI, as presented (it matches a registered one).
    pub redirect_uri: String,
    /// The PKCE challenge.
    pub challenge: CodeChallenge,
    /// The scopes asked for, each one of [`SCOPES`], without repeats, in the order given.
    pub scopes: Vec<String>,
    /// `state`, echoed exactly.
    pub state: Option<String>,
    /// `nonce`, for the ID token.
    pub nonce: Option<String>,
    /// The access token's audience: the `resource` asked for, or the default.
    pub audience: String,
    /// `prompt`.
    pub prompt: Option<Prompt>,
    /// `max_age` in seconds.
    pub max_age: Option<u64>,
    /// `login_hint`, to fill in the sign-in page.
    pub login_hint: Option<String>,
}

/// The parameters of a request, each read once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parameters(HashMap<String, String>);

impl Parameters {
    /// The parameters of a query string's pairs (decoded). A parameter given twice, or a value
    /// over [`MAX_PARAMETER_BYTES`], is a [`Refusal::Page`] if it is `client_id` or
    /// `redirect_uri` (where an error would go is not known); any other is remembered, and
    /// [`check`] refuses it towards the redirect URI.
    pub fn read(pairs: impl IntoIterator<Item = (String, String)>) -> Result<Self, Refusal> {
        let mut map = HashMap::new();
        let mut problem = None;
        for (name, value) in pairs {
            let locates = matches!(name.as_str(), "client_id" | "redirect_uri");
            let trouble = if value.len() > MAX_PARAMETER_BYTES {
                Some(format!("`{name}` is over {MAX_PARAMETER_BYTES} bytes"))
            } else if map.contains_key(&name) {
                Some(format!("`{name}` is given more than once"))
            } else {
                None
            };
            match trouble {
                Some(why) if locates => return Err(Refusal::Page(why)),
                Some(why) => {
                    problem.get_or_insert(why);
                }
                None => {
                    map.insert(name, value);
                }
            }
        }
        if let Some(why) = problem {
            // Refused by [`check`] towards the redirect URI, once it is known.
            map.insert(PROBLEM.to_owned(), why);
        }
        Ok(Self(map))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// The `client_id` asked for, to look the client up.
    pub fn client_id(&self) -> Option<&str> {
        self.get("client_id")
    }
}

/// Where [`Parameters::read`] remembers the first parameter it refused (not a name a client
/// can send: it starts with a space).
const PROBLEM: &str = " problem";

/// Checks `params` for `client` (looked up by [`Parameters::client_id`]; `None` if there is
/// no such client) under `policy`.
pub fn check(
    params: &Parameters,
    client: Option<&ServiceClient>,
    policy: &AuthorizePolicy,
) -> Result<AuthorizationRequest, Refusal> {
    let client = match (params.client_id(), client) {
        (None, _) => return Err(Refusal::Page("`client_id` is required".into())),
        (Some(_), Some(client)) if !client.redirect_uris.is_empty() => client,
        (Some(id), _) => {
            return Err(Refusal::Page(format!("no client `{id}` signs users in here")));
        }
    };
    let Some(redirect_uri) = params.get("redirect_uri") else {
        return Err(Refusal::Page("`redirect_uri` is required".into()));
    };
    let registered = client
        .redirect_uris
        .iter()
        .filter_map(|uri| RedirectUri::parse(uri).ok())
        .any(|uri| uri.matches(redirect_uri));
    if !registered {
        return Err(Refusal::Page(
            "`redirect_uri` is not registered for this client (it is matched exactly)".into(),
        ));
    }
    let state = params.get("state").map(str::to_owned);
    let refuse = |error: &'static str, description: String| Refusal::Redirect {
        redirect_uri: redirect_uri.to_owned(),
        error,
        description,
        state: state.clone(),
    };
    if let Some(why) = params.get(PROBLEM) {
        return Err(refuse("invalid_request", why.to_owned()));
    }
    match params.get("response_type") {
        Some("code") => {}
        None => return Err(refuse("invalid_request", "`response_type` is required".into())),
        Some(_) => {
            return Err(refuse(
                "unsupported_response_type",
                "the only response type is `code`".into(),
            ));
        }
    }
    let challenge =
        CodeChallenge::parse(params.get("code_challenge"), params.get("code_challenge_method"))
            .map_err(|e| refuse("invalid_request", e.to_string()))?;
    let mut scopes: Vec<String> = Vec::new();
    for scope in params.get("scope").unwrap_or_default().split(' ').filter(|s| !s.is_empty()) {
        let known = SCOPES.contains(&scope) && (scope != "openid" || policy.openid);
        if !known {
            return Err(refuse("invalid_scope", format!("scope `{scope}` is not offered")));
        }
        if !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_owned());
        }
    }
    let audience = match params.get("resource") {
        None => policy.audience.clone(),
        Some(r) if *r == policy.audience || policy.resources.iter().any(|k| k == r) => r.into(),
        Some(r) => {
            return Err(refuse("invalid_request", format!("`{r}` is not a resource here")));
        }
    };
    let prompt = match params.get("prompt") {
        None => None,
        Some("none") => Some(Prompt::None),
        Some("login") => Some(Prompt::Login),
        Some("consent") => Some(Prompt::Consent),
        Some(other) => {
            return Err(refuse("invalid_request", format!("prompt `{other}` is not supported")));
        }
    };
    let max_age = match params.get("max_age") {
        None => None,
        Some(text) => Some(
            text.parse::<u64>()
                .ok()
                .filter(|_| text.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| {
                    refuse("invalid_request", "`max_age` is a number of seconds".into())
                })?,
        ),
    };
    Ok(AuthorizationRequest {
        client_id: client.id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        challenge,
        scopes,
        state: state.clone(),
        nonce: params.get("nonce").map(str::to_owned),
        audience,
        prompt,
        max_age,
        login_hint: params.get("login_hint").map(str::to_owned),
    })
}

/// Whether `issuer` can be an OpenID Connect issuer (OpenID Connect Discovery 1.0 §2: a URL,
/// with no query or fragment): an `https` URL, or an `http` URL on a loopback IP address for
/// trying it locally. With another issuer the code grant still works, without `openid`.
///
/// ```
/// use jwt_auth_service::authorize::is_openid_issuer;
///
/// assert!(is_openid_issuer("https://auth.example.com"));
/// assert!(is_openid_issuer("http://127.0.0.1:8080"));
/// assert!(!is_openid_issuer("jwt-auth"));
/// assert!(!is_openid_issuer("http://auth.example.com"));
/// ```
pub fn is_openid_issuer(issuer: &str) -> bool {
    let Ok(url) = url::Url::parse(issuer) else { return false };
    let plain = url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    };
    plain
        && match url.scheme() {
            "https" => url.host().is_some(),
            "http" => loopback,
            _ => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn client() -> ServiceClient {
        ServiceClient {
            id: "app".into(),
            name: "app".into(),
            secret_digest: vec![],
            roles: vec![],
            session_id: "s".into(),
            created_at: DateTime::from_timestamp(1_700_000_000, 0).expect("a time"),
            redirect_uris: vec!["https://app.example.com/cb".into(), "http://127.0.0.1/cb".into()],
            post_logout_redirect_uris: vec![],
            public: true,
            first_party: false,
            require_dpop: false,
        }
    }

    fn policy() -> AuthorizePolicy {
        AuthorizePolicy {
            audience: "api".into(),
            resources: vec!["https://reports.example.com".into()],
            openid: true,
        }
    }

    fn good() -> Vec<(String, String)> {
        [
            ("response_type", "code"),
            ("client_id", "app"),
            ("redirect_uri", "https://app.example.com/cb"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("scope", "openid email"),
            ("state", "xyz ABC/=?"),
            ("nonce", "n-0S6"),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
    }

    fn with(changes: &[(&str, Option<&str>)]) -> Vec<(String, String)> {
        let mut pairs = good();
        for (name, value) in changes {
            pairs.retain(|(n, _)| n != name);
            if let Some(value) = value {
                pairs.push(((*name).to_owned(), (*value).to_owned()));
            }
        }
        pairs
    }

    fn run(pairs: Vec<(String, String)>) -> Result<AuthorizationRequest, Refusal> {
        let params = Parameters::read(pairs)?;
        let found = client();
        let client = (params.client_id() == Some("app")).then_some(&found);
        check(&params, client, &policy())
    }

    fn redirected(pairs: Vec<(String, String)>) -> &'static str {
        match run(pairs) {
            Err(Refusal::Redirect { error, state, redirect_uri, .. }) => {
                assert_eq!(state.as_deref(), Some("xyz ABC/=?"), "state echoed exactly");
                assert_eq!(redirect_uri, "https://app.example.com/cb");
                error
            }
            other => panic!("expected a redirect, got {other:?}"),
        }
    }

    #[test]
    fn a_good_request_is_read_whole() {
        let request = run(good()).expect("the positive control");
        assert_eq!(request.scopes, ["openid", "email"]);
        assert_eq!(
            (request.audience.as_str(), request.state.as_deref()),
            ("api", Some("xyz ABC/=?"))
        );
        assert_eq!(request.challenge.as_str(), CHALLENGE);
        let loopback = run(with(&[("redirect_uri", Some("http://127.0.0.1:49152/cb"))]));
        assert_eq!(loopback.expect("any port").redirect_uri, "http://127.0.0.1:49152/cb");
        let resource = run(with(&[("resource", Some("https://reports.example.com"))]));
        assert_eq!(resource.expect("a resource").audience, "https://reports.example.com");
    }

    #[test]
    fn an_unknown_client_or_redirect_uri_is_a_page_never_a_redirect() {
        for pairs in [
            with(&[("client_id", None)]),
            with(&[("client_id", Some("other"))]),
            with(&[("redirect_uri", None)]),
            with(&[("redirect_uri", Some("https://evil.example/cb"))]),
            with(&[("redirect_uri", Some("https://app.example.com/cb/extra"))]),
            with(&[("redirect_uri", Some("https://app.example.com:8443/cb"))]),
            with(&[("redirect_uri", Some("https://app.example.com@evil.example/cb"))]),
            with(&[("redirect_uri", Some("http://app.example.com/cb"))]),
            [good(), vec![("redirect_uri".into(), "https://evil.example/cb".into())]].concat(),
            [good(), vec![("client_id".into(), "app".into())]].concat(),
            with(&[(
                "redirect_uri",
                Some(&format!("https://app.example.com/{}", "a".repeat(3000))),
            )]),
        ] {
            assert!(matches!(run(pairs.clone()), Err(Refusal::Page(_))), "{pairs:?}");
        }
    }

    #[test]
    fn other_errors_go_back_to_the_redirect_uri_with_the_state() {
        assert_eq!(
            redirected(with(&[("response_type", Some("token"))])),
            "unsupported_response_type"
        );
        assert_eq!(redirected(with(&[("response_type", None)])), "invalid_request");
        assert_eq!(redirected(with(&[("code_challenge", None)])), "invalid_request");
        assert_eq!(
            redirected(with(&[("code_challenge_method", Some("plain"))])),
            "invalid_request"
        );
        assert_eq!(redirected(with(&[("code_challenge_method", None)])), "invalid_request");
        assert_eq!(redirected(with(&[("scope", Some("openid admin"))])), "invalid_scope");
        assert_eq!(
            redirected(with(&[("resource", Some("https://other.example"))])),
            "invalid_request"
        );
        assert_eq!(redirected(with(&[("prompt", Some("select_account"))])), "invalid_request");
        assert_eq!(redirected(with(&[("max_age", Some("-1"))])), "invalid_request");
        assert_eq!(redirected(with(&[("max_age", Some("+5"))])), "invalid_request");
        let twice = [good(), vec![("scope".into(), "email".into())]].concat();
        assert_eq!(redirected(twice), "invalid_request", "RFC 6749 §3.1");
        let long = "n".repeat(MAX_PARAMETER_BYTES + 1);
        assert_eq!(redirected(with(&[("nonce", Some(&long))])), "invalid_request");
    }

    #[test]
    fn openid_is_offered_only_with_a_url_issuer() {
        let params = Parameters::read(good()).expect("read");
        let no_oidc = AuthorizePolicy { openid: false, ..policy() };
        let refused = check(&params, Some(&client()), &no_oidc);
        assert!(matches!(refused, Err(Refusal::Redirect { error: "invalid_scope", .. })));
        let email_only = Parameters::read(with(&[("scope", Some("email"))])).expect("read");
        assert!(
            check(&email_only, Some(&client()), &no_oidc).is_ok(),
            "the code grant still works"
        );
    }

    #[test]
    fn a_client_without_redirect_uris_signs_no_one_in() {
        let service = ServiceClient { redirect_uris: vec![], ..client() };
        let params = Parameters::read(good()).expect("read");
        assert!(matches!(check(&params, Some(&service), &policy()), Err(Refusal::Page(_))));
    }

    #[test]
    fn an_issuer_is_an_https_url_or_a_loopback_http_one() {
        for good in [
            "https://auth.example.com",
            "https://auth.example.com/tenant",
            "http://127.0.0.1:8080",
            "http://[::1]:8080",
        ] {
            assert!(is_openid_issuer(good), "{good}");
        }
        for bad in [
            "jwt-auth",
            "",
            "http://auth.example.com",
            "http://localhost:8080",
            "https://auth.example.com?x=1",
            "https://auth.example.com#x",
            "https://user@auth.example.com",
            "ftp://auth.example.com",
            "urn:example:issuer",
        ] {
            assert!(!is_openid_issuer(bad), "{bad}");
        }
    }
}
