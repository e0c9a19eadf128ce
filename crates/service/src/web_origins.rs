//! The web origins that may call the token, revocation and UserInfo endpoints, and `/api/me`,
//! from a browser (CORS): the origins of the registered redirect URIs of the clients that sign
//! users in. A single-page app calls these endpoints from its own origin, and the browser reads
//! an answer only when it names that origin in `Access-Control-Allow-Origin`.
//!
//! - An `https` redirect URI allows its origin exactly (scheme, host and port).
//! - A loopback redirect URI (`http://127.0.0.1/callback`) allows that loopback host on any
//!   port, as it matches a redirect on any port (RFC 8252 §7.3).
//! - A private-use scheme (`com.example.app:/callback`) has no web origin and allows none.
//!
//! The set is read from the store: at start-up, after this instance adds or removes a client,
//! every [`RELOAD_EVERY`], and when an unknown origin asks (at most once per
//! [`RELOAD_ON_MISS_AFTER`], so that a client added on another instance works at once while a
//! flood of unknown origins costs at most one query a second).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jwt_auth_store::{ServiceClient, Store, StoreError};
use tokio::sync::Mutex;
use url::{Host, Url};

/// How often the background job reloads the set, so that a client removed on another
/// instance stops being allowed.
pub const RELOAD_EVERY: Duration = Duration::from_secs(30);
/// The least time between two reloads that unknown origins cause.
pub const RELOAD_ON_MISS_AFTER: Duration = Duration::from_secs(1);
/// The longest `Origin` header considered; a longer one is no registered origin.
const MAX_ORIGIN_BYTES: usize = 300;

/// The origins of registered redirect URIs, as a set that answers without a query.
///
/// ```
/// use jwt_auth_service::web_origins::Origins;
///
/// let origins = Origins::of(["https://app.example.com/callback", "http://127.0.0.1/cb",
///                            "com.example.app:/callback"]);
/// assert!(origins.allows("https://app.example.com"));
/// assert!(!origins.allows("https://app.example.com:8443"), "another port");
/// assert!(!origins.allows("http://app.example.com"), "another scheme");
/// assert!(origins.allows("http://127.0.0.1:5173"), "loopback: any port");
/// assert!(!origins.allows("http://[::1]:5173"), "another loopback host");
/// assert!(!origins.allows("null"));
/// ```
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Origins {
    /// Serialized origins (`https://app.example.com`, `https://app.example.com:8443`).
    exact: HashSet<String>,
    /// Loopback hosts as they appear in an origin (`127.0.0.1`, `[::1]`), any port.
    loopback_hosts: HashSet<String>,
}

impl Origins {
    /// The origins of these redirect URIs (those that are no web URI are skipped).
    pub fn of<'a>(redirect_uris: impl IntoIterator<Item = &'a str>) -> Self {
        let mut origins = Self::default();
        for uri in redirect_uris {
            let Ok(url) = Url::parse(uri) else { continue };
            match (url.scheme(), url.host()) {
                ("https", Some(_)) => {
                    origins.exact.insert(url.origin().ascii_serialization());
                }
                ("http", Some(Host::Ipv4(ip))) if ip.is_loopback() => {
                    origins.loopback_hosts.insert(ip.to_string());
                }
                ("http", Some(Host::Ipv6(ip))) if ip.is_loopback() => {
                    origins.loopback_hosts.insert(format!("[{ip}]"));
                }
                _ => {}
            }
        }
        origins
    }

    /// The origins of every client's redirect URIs.
    pub fn of_clients(clients: &[ServiceClient]) -> Self {
        Self::of(clients.iter().flat_map(|c| c.redirect_uris.iter().map(String::as_str)))
    }

    /// Whether the value of a request's `Origin` header is one of these origins. Compared as
    /// the browser serializes an origin (lowercase host, no default port, no path).
    pub fn allows(&self, origin: &str) -> bool {
        if origin.len() > MAX_ORIGIN_BYTES {
            return false;
        }
        if self.exact.contains(origin) {
            return true;
        }
        let Some(rest) = origin.strip_prefix("http://") else { return false };
        let host = match rest.rsplit_once(':') {
            // `[::1]` alone has colons but ends with `]`.
            Some((host, port)) if !rest.ends_with(']') => {
                let valid = !port.is_empty()
                    && !port.starts_with('0')
                    && port.bytes().all(|b| b.is_ascii_digit())
                    && port.parse::<u16>().is_ok();
                if !valid {
                    return false;
                }
                host
            }
            _ => rest,
        };
        self.loopback_hosts.contains(host)
    }

    /// Whether no origin is allowed.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.loopback_hosts.is_empty()
    }
}

/// The allowed origins as this instance holds them, kept in step with the store.
pub struct WebOrigins {
    store: Arc<Store>,
    current: ArcSwap<Origins>,
    /// When the set was last read; held while a reload runs, so that misses wait for it
    /// instead of querying again.
    loaded_at: Mutex<Option<Instant>>,
}

impl WebOrigins {
    /// An empty set over `store`: [`WebOrigins::reload`] fills it.
    pub fn new(store: Arc<Store>) -> Self {
        Self {
            store,
            current: ArcSwap::from_pointee(Origins::default()),
            loaded_at: Mutex::new(None),
        }
    }

    /// Reads every client's redirect URIs from the store and swaps the set in.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let mut loaded_at = self.loaded_at.lock().await;
        self.load(&mut loaded_at).await
    }

    async fn load(&self, loaded_at: &mut Option<Instant>) -> Result<(), StoreError> {
        let clients = self.store.clients().await?;
        self.current.store(Arc::new(Origins::of_clients(&clients)));
        *loaded_at = Some(Instant::now());
        Ok(())
    }

    /// Whether `origin` may call from a browser. An origin not in the set reloads it first
    /// if it is older than [`RELOAD_ON_MISS_AFTER`] (a client may have just been added on
    /// another instance); a store error answers no.
    pub async fn allows(&self, origin: &str) -> bool {
        if self.current.load().allows(origin) {
            return true;
        }
        if origin.len() > MAX_ORIGIN_BYTES || !origin.starts_with("http") {
            return false;
        }
        let mut loaded_at = self.loaded_at.lock().await;
        let fresh = loaded_at.is_some_and(|at| at.elapsed() < RELOAD_ON_MISS_AFTER);
        if !fresh && let Err(e) = self.load(&mut loaded_at).await {
            tracing::warn!(error = %e, "could not reload the web origins of clients");
            return false;
        }
        drop(loaded_at);
        self.current.load().allows(origin)
    }
}
