//! The key task: RFC 8414 discovery, then the JWK set, refetched when its freshness
//! (`Cache-Control: max-age`, clamped) runs out, when a token names an unknown `kid` (at most
//! once per interval), and with backoff after a failure, all the while the held keys keep
//! verifying.

use std::sync::Arc;

use jwt_core::{JwkSet, KeySet, VerifyingKey};
use reqwest::Url;
use reqwest::header::ACCEPT;
use serde::Deserialize;
use tokio::time::{Instant, sleep_until};

use crate::config::check_url;
use crate::http::{Backoff, FetchError, MAX_BODY_BYTES, max_age, read_ok};
use crate::shared::{FeedEndpoints, Shared};

/// Where the JWK set is found.
pub(crate) enum Fetch {
    /// Through the issuer's metadata.
    Discovery(Url),
    /// At this URL.
    Jwks(Url),
}

/// The RFC 8414 fields used here.
#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    jwks_uri: String,
    token_endpoint: Option<String>,
}

/// The feed's token endpoint and URL as configured, overriding discovery.
type FeedOverrides = Option<(Option<String>, Option<String>)>;

pub(crate) async fn run(shared: Arc<Shared>, fetch: Fetch, feed: FeedOverrides) {
    let jwks_uri = match fetch {
        Fetch::Jwks(url) => url,
        Fetch::Discovery(issuer) => {
            let mut backoff = Backoff::new(&shared.timing);
            loop {
                match discover(&shared, &issuer, &feed).await {
                    Ok(url) => break url,
                    Err(e) => {
                        shared.keys_failed(format!("discovery: {e}"));
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                }
            }
        }
    };
    let timing = shared.timing.clone();
    let mut backoff = Backoff::new(&timing);
    loop {
        let fetched_at = Instant::now();
        let next = match fetch_jwks(&shared, &jwks_uri).await {
            Ok((keys, max_age)) => {
                backoff.reset();
                let fresh_for = timing.jwks_freshness(max_age);
                tracing::debug!(
                    keys = keys.verifying_keys().len(),
                    ?fresh_for,
                    "fetched the JWK set"
                );
                shared.install_keys(keys, fresh_for);
                fetched_at + fresh_for
            }
            Err(e) => {
                shared.keys_failed(format!("JWK set: {e}"));
                fetched_at + backoff.next_delay()
            }
        };
        tokio::select! {
            () = sleep_until(next) => {}
            () = shared.unknown_kid.notified() => {
                // However many tokens name unknown keys, one fetch per interval.
                sleep_until(fetched_at + timing.unknown_kid_refetch_interval).await;
            }
        }
    }
}

/// Fetches the metadata, checks its issuer, publishes the feed's endpoints; returns the JWK
/// set URL.
async fn discover(shared: &Shared, issuer: &Url, feed: &FeedOverrides) -> Result<Url, FetchError> {
    let configured = issuer.as_str().trim_end_matches('/');
    let url = format!("{configured}/.well-known/oauth-authorization-server");
    let response = shared
        .http
        .get(&url)
        .header(ACCEPT, "application/json")
        .timeout(shared.timing.request_timeout)
        .send()
        .await?;
    let body = read_ok(response, MAX_BODY_BYTES).await?;
    let metadata: Metadata = serde_json::from_slice(&body)
        .map_err(|e| FetchError::Body(format!("the metadata is not RFC 8414 JSON: {e}")))?;
    // RFC 8414 §3.3: the metadata's issuer must be identical to the one configured.
    let expected = shared.tokens.policy().issuer.as_str();
    if metadata.issuer != expected {
        return Err(FetchError::Body(format!(
            "the metadata names issuer `{}`, expected `{expected}`: the issuer must be the URL \
             its services reach it at (set PUBLIC_URL on the jwt-auth server, which makes it \
             the issuer, and discover with that URL)",
            metadata.issuer
        )));
    }
    let jwks_uri = check_url("jwks_uri", &metadata.jwks_uri, shared.urls)
        .map_err(|e| FetchError::Body(e.to_string()))?;
    if let Some((token_override, feed_override)) = feed {
        let token_endpoint = token_override.clone().or(metadata.token_endpoint);
        let Some(token_endpoint) = token_endpoint else {
            return Err(FetchError::Body("the metadata names no token_endpoint".into()));
        };
        let revocations_url = match feed_override {
            Some(url) => url.clone(),
            None => match token_endpoint.strip_suffix("/auth/token") {
                Some(base) => format!("{base}/auth/revocations"),
                None => {
                    return Err(FetchError::Body(format!(
                        "the feed's URL cannot be found beside token endpoint \
                         `{token_endpoint}`; configure it"
                    )));
                }
            },
        };
        for url in [&token_endpoint, &revocations_url] {
            check_url("feed URL", url, shared.urls).map_err(|e| FetchError::Body(e.to_string()))?;
        }
        shared.endpoints.send_replace(Some(FeedEndpoints { token_endpoint, revocations_url }));
    }
    Ok(jwks_uri)
}

/// Fetches the JWK set; returns the keys and the response's `max-age`.
async fn fetch_jwks(
    shared: &Shared,
    url: &Url,
) -> Result<(KeySet, Option<std::time::Duration>), FetchError> {
    let response = shared
        .http
        .get(url.clone())
        .header(ACCEPT, "application/jwk-set+json, application/json")
        .timeout(shared.timing.request_timeout)
        .send()
        .await?;
    let max_age = max_age(response.headers());
    let body = read_ok(response, MAX_BODY_BYTES).await?;
    let jwks: JwkSet = serde_json::from_slice(&body)
        .map_err(|e| FetchError::Body(format!("the JWK set is not RFC 7517 JSON: {e}")))?;
    Ok((key_set(&jwks), max_age))
}

/// The usable keys of a JWK set. A key of a type or algorithm this library does not verify
/// is skipped (a newer issuer may publish one), not a reason to drop the whole set.
fn key_set(jwks: &JwkSet) -> KeySet {
    let mut set = KeySet::from_jwks(&JwkSet { keys: vec![] }).expect("an empty set is valid");
    for jwk in &jwks.keys {
        let added = VerifyingKey::from_jwk(jwk).and_then(|key| set.clone().with_verifying_key(key));
        match added {
            Ok(with) => set = with,
            Err(e) => tracing::warn!(error = %e, "skipping a key of the JWK set"),
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwt_core::{Algorithm, SigningKey};

    #[test]
    fn unusable_keys_are_skipped_not_fatal() {
        let good = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let mut jwks = KeySet::new(good.clone()).jwks();
        jwks.keys.push(
            serde_json::from_value(serde_json::json!({"kty": "oct", "k": "AAAA", "kid": "sym"}))
                .unwrap(),
        );
        jwks.keys.push(jwks.keys[0].clone()); // a duplicate kid
        let set = key_set(&jwks);
        assert_eq!(set.verifying_keys().len(), 1);
        assert!(set.find(good.kid()).is_some());
        assert!(set.active().is_none(), "verify-only");
    }
}
