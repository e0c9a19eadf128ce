//! Prometheus metrics: requests and latency per route and status, logins, refreshes, reuse
//! detections, revocations, the password-hashing queue, how long pushed revocations take to
//! arrive, and this instance's view: the key it signs with, the keys it accepts, its feed
//! cursor, its open feed streams and whether change notifications arrive. Rendered by
//! `GET /metrics`.

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
    /// The HTTP method.
    pub method: String,
    /// The matched route pattern.
    pub route: String,
    /// The status answered.
    pub status: u16,
}

/// Labels of outcome counters.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `ok`, `failed`, `reused`…
    pub outcome: &'static str,
}

/// Labels of the signing-key metric.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KeyLabels {
    /// The key id.
    pub kid: String,
    /// Its algorithm.
    pub algorithm: String,
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    /// Requests by route and status.
    pub requests: Family<RouteLabels, Counter>,
    /// Latency by route and status.
    pub latency: Family<RouteLabels, Histogram>,
    /// Login attempts by outcome.
    pub logins: Family<OutcomeLabels, Counter>,
    /// Refresh attempts by outcome.
    pub refreshes: Family<OutcomeLabels, Counter>,
    /// Refresh tokens replayed after their grace.
    pub reuse_detections: Counter,
    /// Sessions revoked.
    pub revocations: Counter,
    /// Password hash jobs waiting for a thread.
    pub hash_queue_depth: Gauge<i64, AtomicI64>,
    /// How long pushed revocations took to be applied here.
    pub revocation_feed_lag: Histogram,
    /// The key this instance signs with (value 1).
    pub signing_key: Family<KeyLabels, Gauge>,
    /// Keys this instance accepts.
    pub verifying_keys: Gauge,
    /// This instance's feed position.
    pub feed_cursor: Gauge,
    /// Open feed streams.
    pub feed_streams: Gauge,
    /// Registered on PostgreSQL only: SQLite has no change notifications.
    pub change_notifications: Option<Gauge>,
    /// Registered with `NATS_URL` only: whether the change stream is followed, and whether
    /// this instance leads its relay.
    pub change_stream: Option<(Gauge, Gauge)>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric, registered, at zero.
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
        let signing_key = Family::<KeyLabels, Gauge>::default();
        registry.register(
            "signing_key",
            "The key this instance signs with, by kid and algorithm (value 1)",
            signing_key.clone(),
        );
        let verifying_keys = Gauge::default();
        registry.register(
            "verifying_keys",
            "Keys this instance accepts tokens of, the signing key included",
            verifying_keys.clone(),
        );
        let feed_cursor = Gauge::default();
        registry.register(
            "feed_cursor",
            "The newest revocation-feed position this instance has read (its cursor)",
            feed_cursor.clone(),
        );
        let feed_streams = Gauge::default();
        registry.register(
            "feed_streams",
            "Revocation-feed streams (text/event-stream) open on this instance",
            feed_streams.clone(),
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
            signing_key,
            verifying_keys,
            feed_cursor,
            feed_streams,
            change_notifications: None,
            change_stream: None,
        }
    }

    /// With the gauges of the change stream on NATS JetStream.
    pub fn with_change_stream(mut self) -> Self {
        let (following, leading) = (Gauge::default(), Gauge::default());
        self.registry.register(
            "change_stream_following",
            "1 while this instance follows the change stream on NATS JetStream; 0 while NATS is \
             unreachable and it reads the database every second instead",
            following.clone(),
        );
        self.registry.register(
            "change_stream_relay_leader",
            "1 while this instance leads the relay that publishes the outbox to the stream",
            leading.clone(),
        );
        self.change_stream = Some((following, leading));
        self
    }

    /// Sets the change stream's gauges, when registered.
    pub fn observe_change_stream(&self, following: bool, leading: bool) {
        if let Some((following_gauge, leading_gauge)) = &self.change_stream {
            following_gauge.set(i64::from(following));
            leading_gauge.set(i64::from(leading));
        }
    }

    /// With the gauge of PostgreSQL's change notifications.
    pub fn with_change_notifications(mut self) -> Self {
        let gauge = Gauge::default();
        self.registry.register(
            "change_notifications_connected",
            "1 while PostgreSQL's change notifications arrive (LISTEN in place), else 0; \
             polling every second covers the gap",
            gauge.clone(),
        );
        self.change_notifications = Some(gauge);
        self
    }

    /// Sets the gauges of this instance's view: its `keys`, its feed's `cursor` and open
    /// `streams`, and whether change `notifications` arrive (`None` without any). Read when
    /// `/metrics` is.
    pub fn observe_instance(
        &self,
        keys: &jwt_core::KeySet,
        cursor: i64,
        streams: usize,
        notifications: Option<bool>,
    ) {
        let signing = keys.active().map(|k| KeyLabels {
            kid: k.kid().to_owned(),
            algorithm: k.algorithm().as_str().to_owned(),
        });
        if signing.as_ref().is_none_or(|labels| self.signing_key.get(labels).is_none()) {
            self.signing_key.clear();
        }
        if let Some(labels) = signing {
            self.signing_key.get_or_create(&labels).set(1);
        }
        self.verifying_keys.set(keys.verifying_keys().len() as i64);
        self.feed_cursor.set(cursor);
        self.feed_streams.set(streams as i64);
        if let (Some(gauge), Some(up)) = (&self.change_notifications, notifications) {
            gauge.set(i64::from(up));
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
