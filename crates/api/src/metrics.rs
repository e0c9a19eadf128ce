//! Prometheus metrics: requests and latency per route and status, logins, refreshes, reuse
//! detections, revocations, the password-hashing queue, and how long pushed revocations take
//! to arrive. Rendered by `GET /metrics`.

use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of the per-request metrics. `route` is the matched pattern, never the raw path, so
/// ids in paths cannot blow up the label set.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

/// Labels of outcome counters.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RouteLabels, Counter>,
    pub latency: Family<RouteLabels, Histogram>,
    pub logins: Family<OutcomeLabels, Counter>,
    pub refreshes: Family<OutcomeLabels, Counter>,
    pub reuse_detections: Counter,
    pub revocations: Counter,
    pub hash_queue_depth: Gauge<i64, AtomicI64>,
    pub revocation_feed_lag: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("jwt_auth");
        let requests = Family::<RouteLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            // 50 µs to about 1.6 s.
            Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
        });
        let logins = Family::<OutcomeLabels, Counter>::default();
        let refreshes = Family::<OutcomeLabels, Counter>::default();
        let reuse_detections = Counter::default();
        let revocations = Counter::default();
        let hash_queue_depth = Gauge::<i64, AtomicI64>::default();
        // 1 ms to about 8 s.
        let revocation_feed_lag = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        registry.register("http_requests", "HTTP requests by route and status", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route and status",
            latency.clone(),
        );
        registry.register("logins", "Login attempts by outcome", logins.clone());
        registry.register("refreshes", "Refresh attempts by outcome", refreshes.clone());
        registry.register(
            "refresh_reuse_detections",
            "Refresh tokens replayed after their grace period",
            reuse_detections.clone(),
        );
        registry.register("session_revocations", "Sessions revoked", revocations.clone());
        registry.register(
            "password_hash_queue_depth",
            "Password hash jobs waiting for a thread",
            hash_queue_depth.clone(),
        );
        registry.register(
            "revocation_feed_lag_seconds",
            "From a revocation's notification by the writing instance (database clock) to its \
             application here (this host's clock), for revocations pushed by PostgreSQL",
            revocation_feed_lag.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            logins,
            refreshes,
            reuse_detections,
            revocations,
            hash_queue_depth,
            revocation_feed_lag,
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
