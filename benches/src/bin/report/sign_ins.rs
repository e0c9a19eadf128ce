//! Sign-ins of applications for a browser signed in at the server already (its sign-in cookie
//! present): `GET /auth/authorize` answered with a code at once (a first-party public client),
//! then the code exchange at `/auth/token`, per second and p99. `CLIENTS` browsers, each signed
//! in once through the pages, chain these for the window, beside the refresh chains.

use std::process::Command;
use std::time::{Duration, Instant};

use jwt_auth_benches::{fail, quantile};

use crate::PASSWORD;
use crate::seed::seeded_email;

/// Browsers chaining sign-ins at once.
pub const CLIENTS: usize = 32;

/// The PKCE pair of RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const REDIRECT_URI: &str = "http://127.0.0.1/callback";

/// Sign-ins completed (a code, then its tokens) per second over the window, their p99, the
/// rest.
#[derive(Default)]
pub struct SignIns {
    pub count: usize,
    pub rps: f64,
    pub p99_ms: f64,
    pub errors: usize,
}

/// Registers the first-party public client the sign-ins use, with the server's own command
/// line and settings; its id.
pub fn register_app(binary: &std::path::Path, envs: &[(&str, String)]) -> String {
    let out = Command::new(binary)
        .args(["clients", "add", "report-app", "--redirect-uri", REDIRECT_URI])
        .args(["--public", "--first-party", "--json"])
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap_or_else(|e| fail(format!("jwt-auth clients add: {e}")));
    if !out.status.success() {
        fail(format!("jwt-auth clients add: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let client: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| fail(format!("jwt-auth clients add --json: {e}")));
    client["client_id"].as_str().unwrap_or_else(|| fail("no client_id")).to_owned()
}

/// The `name=value` of a `Set-Cookie` header, and the name.
fn cookie_pair(set: &str) -> Option<(String, String)> {
    let pair = set.split(';').next()?;
    let (name, value) = pair.split_once('=')?;
    Some((name.to_owned(), value.to_owned()))
}

/// A browser of its own: no redirects followed, cookies sent by hand (they are `Secure`).
struct Browser {
    http: reqwest::Client,
    cookies: Vec<(String, String)>,
}

impl Browser {
    fn new() -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_else(|e| fail(format!("an HTTP client: {e}")));
        Self { http, cookies: Vec::new() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn keep(&mut self, response: &reqwest::Response) {
        for set in response.headers().get_all("set-cookie") {
            if let Some((name, value)) = set.to_str().ok().and_then(cookie_pair) {
                self.cookies.retain(|(n, _)| *n != name);
                self.cookies.push((name, value));
            }
        }
    }

    /// GET or POST (with `form`) `url`: the status, the `Location`, the body.
    async fn send(&mut self, url: &str, form: Option<&[(&str, &str)]>) -> (u16, String, String) {
        let request = match form {
            Some(form) => self.http.post(url).form(form),
            None => self.http.get(url),
        };
        let response = request
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap_or_else(|e| fail(format!("{url}: {e}")));
        self.keep(&response);
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (status, location, response.text().await.unwrap_or_default())
    }
}

/// The code of a redirect back to the client.
fn code_of(location: &str) -> Option<String> {
    let query = location.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "code")
        .map(|(_, code)| code.into_owned())
}

/// `CLIENTS` browsers (seeded accounts) sign in once on the pages, then, all at once, each
/// chains sign-ins of the client `client_id` for `window`: the authorization request, answered
/// with a code, then the exchange. A failed one ends that browser's chain and counts as an
/// error.
pub async fn code_flows(base: &str, client_id: &str, window: Duration) -> SignIns {
    let authorize = format!(
        "{base}/auth/authorize?response_type=code&client_id={client_id}&redirect_uri={REDIRECT_URI}\
         &code_challenge={CHALLENGE}&code_challenge_method=S256&state=report"
    );
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(CLIENTS + 1));
    let mut chains = tokio::task::JoinSet::new();
    for n in 1..=CLIENTS {
        let (start, base, authorize) = (start.clone(), base.to_owned(), authorize.clone());
        let client_id = client_id.to_owned();
        chains.spawn(async move {
            let mut browser = Browser::new();
            let (_, _, page) = browser.send(&authorize, None).await;
            let csrf = page
                .split("name=\"csrf\" value=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_else(|| fail(format!("no sign-in page: {page}")))
                .to_owned();
            let email = seeded_email(n);
            let form = [
                ("csrf", csrf.as_str()),
                ("action", "sign_in"),
                ("username", email.as_str()),
                ("password", PASSWORD),
            ];
            let (status, _, body) = browser.send(&authorize, Some(&form)).await;
            if status != 302 {
                fail(format!("the sign-in of {email}: {status} {body}"));
            }
            let token_url = format!("{base}/auth/token");
            start.wait().await;
            let deadline = Instant::now() + window;
            let (mut times, mut errors) = (Vec::new(), 0);
            while Instant::now() < deadline {
                let sent = Instant::now();
                let (_, location, _) = browser.send(&authorize, None).await;
                let Some(code) = code_of(&location) else {
                    errors += 1;
                    break;
                };
                let form = [
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", REDIRECT_URI),
                    ("code_verifier", VERIFIER),
                    ("client_id", client_id.as_str()),
                ];
                let (status, _, _) = browser.send(&token_url, Some(&form)).await;
                if status != 200 {
                    errors += 1;
                    break;
                }
                times.push(sent.elapsed().as_secs_f64() * 1_000.0);
            }
            (times, errors)
        });
    }
    start.wait().await;
    let started = Instant::now();
    let mut result = SignIns::default();
    let mut times = Vec::new();
    while let Some(chain) = chains.join_next().await {
        let (chain_times, errors) = chain.unwrap_or_else(|e| fail(format!("a sign-in chain: {e}")));
        times.extend(chain_times);
        result.errors += errors;
    }
    let elapsed = started.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    result.count = times.len();
    result.rps = times.len() as f64 / elapsed;
    result.p99_ms = quantile(&times, 0.99);
    result
}
