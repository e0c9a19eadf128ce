//! The HTTP requests of the report's own tokio + reqwest driver (the refresh chains and the
//! revocation lag): a JSON POST, a login, the tokens of an answer.

use std::time::Duration;

use serde_json::{Value, json};

use jwt_auth_benches::fail;

use crate::PASSWORD;

/// A client whose requests give up after 30 s.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_else(|e| fail(format!("an HTTP client: {e}")))
}

/// POSTs JSON, optionally with a bearer token: the status and the JSON answer (or null).
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    body: &Value,
) -> Result<(u16, Value), reqwest::Error> {
    let mut request = client.post(url).json(body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let body = response.bytes().await?;
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

/// The access and refresh tokens of a token-pair answer.
pub fn tokens(pair: &Value) -> Option<(String, String)> {
    Some((pair["access_token"].as_str()?.to_owned(), pair["refresh_token"].as_str()?.to_owned()))
}

/// Logs `email` in with `PASSWORD`: its access and refresh tokens.
pub async fn login(client: &reqwest::Client, base: &str, email: &str) -> (String, String) {
    let body = json!({"username": email, "password": PASSWORD});
    match post(client, &format!("{base}/auth/login"), None, &body).await {
        Ok((200, pair)) => tokens(&pair).unwrap_or_else(|| fail(format!("login: {pair}"))),
        Ok((status, body)) => fail(format!("login of {email}: {status} {body}")),
        Err(e) => fail(format!("login of {email}: {e}")),
    }
}
