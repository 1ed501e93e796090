//! Every Prometheus metric family of imagegate, with its closed label sets.
//!
//! Label values come only from the enums in this file and from the closed
//! enums of [`policy`](crate::policy) ([`Reason`], [`Mode`]) and
//! [`review`](crate::review) ([`Api`], [`DecodeErrorKind`]), never
//! from request strings, so the number of series is fixed at start-up. Every
//! child is resolved once in [`Metrics::new`]: recording on the hot path is
//! an array index and an atomic add, with no map lookup and no allocation.
//!
//! This module only counts; it must not decide anything or read requests.

use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

use crate::policy::{Mode, Reason};
use crate::review::{Api, DecodeErrorKind};
use crate::verify::Outcome;
use crate::verify::registry::{Observe, Operation};

/// Buckets of `imagegate_registry_request_duration_seconds`: 1 ms to 10 s.
pub const REGISTRY_BUCKETS: &[f64] = &[
    0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The `status` label of registry requests: the class of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusClass {
    /// 1xx and 2xx.
    Success,
    /// 3xx.
    Redirect,
    /// 4xx.
    ClientError,
    /// 5xx (and anything above).
    ServerError,
    /// No answer: connect failure, timeout, reset.
    None,
}

impl StatusClass {
    /// Every value, in label order.
    pub const ALL: [StatusClass; 5] = [
        StatusClass::Success,
        StatusClass::Redirect,
        StatusClass::ClientError,
        StatusClass::ServerError,
        StatusClass::None,
    ];

    /// The class of a status (`None`: no answer came).
    pub fn of(status: Option<u16>) -> StatusClass {
        match status {
            None => StatusClass::None,
            Some(s) if s < 300 => StatusClass::Success,
            Some(s) if s < 400 => StatusClass::Redirect,
            Some(s) if s < 500 => StatusClass::ClientError,
            Some(_) => StatusClass::ServerError,
        }
    }

    /// The label value: `2xx`, `3xx`, `4xx`, `5xx` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusClass::Success => "2xx",
            StatusClass::Redirect => "3xx",
            StatusClass::ClientError => "4xx",
            StatusClass::ServerError => "5xx",
            StatusClass::None => "none",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

fn operation_index(op: Operation) -> usize {
    Operation::ALL.iter().position(|o| *o == op).unwrap_or(0)
}

/// The registry families, shared with the registry client's observer.
#[derive(Debug)]
struct RegistryFamilies {
    requests: [[IntCounter; StatusClass::ALL.len()]; Operation::ALL.len()],
    duration: [Histogram; Operation::ALL.len()],
}

/// The verifier's cumulative counters as last seen, to turn them into
/// counter increments (a new verifier after a reload starts from zero).
#[derive(Debug, Default)]
struct SeenStats {
    verifier: usize,
    values: [u64; 3],
}

/// Histogram buckets of `imagegate_http_request_duration_seconds`: 25 µs to 10 s.
pub const DURATION_BUCKETS: &[f64] = &[
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The `path` label: one value per route, `other` for everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PathLabel {
    /// `POST /imagepolicy`.
    ImagePolicy,
    /// `POST /validate`.
    Validate,
    /// `POST /mutate`.
    Mutate,
    /// `GET /healthz`.
    Healthz,
    /// `GET /readyz`.
    Readyz,
    /// `GET /metrics`.
    Metrics,
    /// Any other path (404).
    Other,
}

impl PathLabel {
    /// Every value, in label order.
    pub const ALL: [PathLabel; 7] = [
        PathLabel::ImagePolicy,
        PathLabel::Validate,
        PathLabel::Mutate,
        PathLabel::Healthz,
        PathLabel::Readyz,
        PathLabel::Metrics,
        PathLabel::Other,
    ];

    /// Classifies a request path (query already stripped); exact matches only.
    pub fn from_path(path: &str) -> PathLabel {
        match path {
            "/imagepolicy" => PathLabel::ImagePolicy,
            "/validate" => PathLabel::Validate,
            "/mutate" => PathLabel::Mutate,
            "/healthz" => PathLabel::Healthz,
            "/readyz" => PathLabel::Readyz,
            "/metrics" => PathLabel::Metrics,
            _ => PathLabel::Other,
        }
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            PathLabel::ImagePolicy => "imagepolicy",
            PathLabel::Validate => "validate",
            PathLabel::Mutate => "mutate",
            PathLabel::Healthz => "healthz",
            PathLabel::Readyz => "readyz",
            PathLabel::Metrics => "metrics",
            PathLabel::Other => "other",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The `code` label: the status codes the server answers with, `other` for
/// anything else (so an unexpected status cannot grow the series set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeLabel {
    /// 200 OK.
    Ok,
    /// 400 Bad Request (the body is not a review).
    BadRequest,
    /// 404 Not Found.
    NotFound,
    /// 405 Method Not Allowed.
    MethodNotAllowed,
    /// 408 Request Timeout (the body did not arrive in time).
    RequestTimeout,
    /// 413 Content Too Large.
    PayloadTooLarge,
    /// 415 Unsupported Media Type.
    UnsupportedMediaType,
    /// 500 Internal Server Error (a handler panicked).
    InternalServerError,
    /// 503 Service Unavailable (`/readyz` while draining).
    ServiceUnavailable,
    /// Any other status.
    Other,
}

impl CodeLabel {
    /// Every value, in label order.
    pub const ALL: [CodeLabel; 10] = [
        CodeLabel::Ok,
        CodeLabel::BadRequest,
        CodeLabel::NotFound,
        CodeLabel::MethodNotAllowed,
        CodeLabel::RequestTimeout,
        CodeLabel::PayloadTooLarge,
        CodeLabel::UnsupportedMediaType,
        CodeLabel::InternalServerError,
        CodeLabel::ServiceUnavailable,
        CodeLabel::Other,
    ];

    /// Classifies a status code.
    pub fn from_status(status: u16) -> CodeLabel {
        match status {
            200 => CodeLabel::Ok,
            400 => CodeLabel::BadRequest,
            404 => CodeLabel::NotFound,
            405 => CodeLabel::MethodNotAllowed,
            408 => CodeLabel::RequestTimeout,
            413 => CodeLabel::PayloadTooLarge,
            415 => CodeLabel::UnsupportedMediaType,
            500 => CodeLabel::InternalServerError,
            503 => CodeLabel::ServiceUnavailable,
            _ => CodeLabel::Other,
        }
    }

    /// The label value: the decimal status code, or `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            CodeLabel::Ok => "200",
            CodeLabel::BadRequest => "400",
            CodeLabel::NotFound => "404",
            CodeLabel::MethodNotAllowed => "405",
            CodeLabel::RequestTimeout => "408",
            CodeLabel::PayloadTooLarge => "413",
            CodeLabel::UnsupportedMediaType => "415",
            CodeLabel::InternalServerError => "500",
            CodeLabel::ServiceUnavailable => "503",
            CodeLabel::Other => "other",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

const APIS: [Api; 2] = [Api::ImageReview, Api::AdmissionReview];

fn api_index(api: Api) -> usize {
    match api {
        Api::ImageReview => 0,
        Api::AdmissionReview => 1,
    }
}

/// The `decision` label: what the policy said (before audit mode; the `mode`
/// label of `imagegate_reviews_total` tells whether it was enforced).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecisionLabel {
    /// Allowed by the policy.
    Allow,
    /// Denied by the policy (admitted anyway in audit mode).
    Deny,
}

impl DecisionLabel {
    /// Every value, in label order.
    pub const ALL: [DecisionLabel; 2] = [DecisionLabel::Allow, DecisionLabel::Deny];

    /// `allow` when `allowed`, else `deny`.
    pub fn from_allowed(allowed: bool) -> DecisionLabel {
        if allowed {
            DecisionLabel::Allow
        } else {
            DecisionLabel::Deny
        }
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionLabel::Allow => "allow",
            DecisionLabel::Deny => "deny",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The `result` label of the reload counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReloadResult {
    /// The new file was loaded and is in force.
    Success,
    /// The new file was rejected; the previous one keeps serving.
    Error,
}

impl ReloadResult {
    /// Every value, in label order.
    pub const ALL: [ReloadResult; 2] = [ReloadResult::Success, ReloadResult::Error];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ReloadResult::Success => "success",
            ReloadResult::Error => "error",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The `transport` label: how a request or connection reached the server
/// (TCP for HTTP/1.1 and HTTP/2, QUIC for HTTP/3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportLabel {
    /// HTTP/1.1 or HTTP/2 over TCP (with or without TLS).
    Tcp,
    /// HTTP/3 over QUIC (`--http3-listen`).
    Quic,
}

impl TransportLabel {
    /// Every value, in label order.
    pub const ALL: [TransportLabel; 2] = [TransportLabel::Tcp, TransportLabel::Quic];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportLabel::Tcp => "tcp",
            TransportLabel::Quic => "quic",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

const MODES: [Mode; 2] = [Mode::Enforce, Mode::Audit];

fn mode_index(mode: Mode) -> usize {
    match mode {
        Mode::Enforce => 0,
        Mode::Audit => 1,
    }
}

/// One process's metric families, registered in a private [`Registry`].
///
/// Each server owns one, so tests running several servers in one process
/// see their own counts.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    registry_families: std::sync::Arc<RegistryFamilies>,
    /// Cache hits, misses and coalesced waits, in that order.
    verify_cache: [IntCounter; 3],
    seen_stats: std::sync::Mutex<SeenStats>,
    /// Indexed like [`Outcome::ALL`].
    verifications: [IntCounter; Outcome::ALL.len()],
    http_requests: [[IntCounter; CodeLabel::ALL.len()]; PathLabel::ALL.len()],
    http_duration: [Histogram; PathLabel::ALL.len()],
    reviews: [[[IntCounter; MODES.len()]; DecisionLabel::ALL.len()]; APIS.len()],
    /// Indexed like [`Reason::ALL`].
    image_decisions: Vec<IntCounter>,
    policy_reloads: [IntCounter; ReloadResult::ALL.len()],
    policy_generation: IntGauge,
    /// Indexed like [`DecodeErrorKind::ALL`].
    decode_errors: Vec<IntCounter>,
    connections_open: IntGauge,
    requests_in_flight: IntGauge,
    tls_reloads: [IntCounter; ReloadResult::ALL.len()],
    connections_rejected: IntCounter,
    transport_requests: [[IntCounter; CodeLabel::ALL.len()]; TransportLabel::ALL.len()],
    transport_connections_open: [IntGauge; TransportLabel::ALL.len()],
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every family and resolves every label child.
    pub fn new() -> Metrics {
        let registry = Registry::new();

        let http_requests_vec = register(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "imagegate_http_requests_total",
                    "HTTP requests answered, by route and status code.",
                ),
                &["path", "code"],
            ),
        );
        let http_requests = PathLabel::ALL.map(|path| {
            CodeLabel::ALL
                .map(|code| http_requests_vec.with_label_values(&[path.as_str(), code.as_str()]))
        });

        let http_duration_vec = register(
            &registry,
            HistogramVec::new(
                HistogramOpts::new(
                    "imagegate_http_request_duration_seconds",
                    "Time from request headers to response, by route.",
                )
                .buckets(DURATION_BUCKETS.to_vec()),
                &["path"],
            ),
        );
        let http_duration =
            PathLabel::ALL.map(|path| http_duration_vec.with_label_values(&[path.as_str()]));

        let reviews_vec = register(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "imagegate_reviews_total",
                    "Reviews answered, by API, policy verdict and mode (audit-mode denials are admitted).",
                ),
                &["api", "decision", "mode"],
            ),
        );
        let reviews = APIS.map(|api| {
            DecisionLabel::ALL.map(|decision| {
                MODES.map(|mode| {
                    reviews_vec.with_label_values(&[api.as_str(), decision.as_str(), mode.as_str()])
                })
            })
        });

        let image_decisions_vec = register(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "imagegate_image_decisions_total",
                    "Images judged, by policy verdict and reason code.",
                ),
                &["decision", "reason"],
            ),
        );
        let image_decisions = Reason::ALL
            .iter()
            .map(|reason| {
                image_decisions_vec.with_label_values(&[
                    DecisionLabel::from_allowed(reason.is_allow()).as_str(),
                    reason.as_str(),
                ])
            })
            .collect();

        let policy_reloads_vec = register(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "imagegate_policy_reloads_total",
                    "Policy file reloads, by result (an error keeps the previous policy).",
                ),
                &["result"],
            ),
        );
        let policy_reloads =
            ReloadResult::ALL.map(|r| policy_reloads_vec.with_label_values(&[r.as_str()]));

        let policy_generation = register(
            &registry,
            IntGauge::new(
                "imagegate_policy_generation",
                "Generation of the policy in force (1 at start-up, +1 per successful reload).",
            ),
        );

        let build_info_vec = register(
            &registry,
            prometheus::IntGaugeVec::new(
                Opts::new("imagegate_build_info", "Build information; always 1."),
                &["version"],
            ),
        );
        build_info_vec
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);

        let decode_errors_vec = register(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "imagegate_decode_errors_total",
                    "Request bodies rejected with 400, by kind of problem.",
                ),
                &["kind"],
            ),
        );
        let decode_errors = DecodeErrorKind::ALL
            .iter()
            .map(|kind| decode_errors_vec.with_label_values(&[kind.as_str()]))
            .collect();

        let connections_open = register(
            &registry,
            IntGauge::new(
                "imagegate_connections_open",
                "Client connections currently open (all listeners).",
            ),
        );
        let requests_in_flight = register(
            &registry,
            IntGauge::new(
                "imagegate_requests_in_flight",
                "Requests currently being handled.",
            ),
        );
        let tls_reloads_vec = register(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "imagegate_tls_reloads_total",
                    "Serving certificate reloads, by result (an error keeps the previous pair).",
                ),
                &["result"],
            ),
        );
        let tls_reloads =
            ReloadResult::ALL.map(|r| tls_reloads_vec.with_label_values(&[r.as_str()]));
        let connections_rejected = register(
            &registry,
            IntCounter::new(
                "imagegate_connections_rejected_total",
                "Connections closed at accept because --max-connections were open.",
            ),
        );

        // The contract families above keep their labels; these break the
        // same counts down by transport.
        let transport_requests_vec = register(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "imagegate_transport_requests_total",
                    "HTTP requests answered, by transport (tcp: HTTP/1.1 and HTTP/2, quic: HTTP/3) and status code.",
                ),
                &["transport", "code"],
            ),
        );
        let transport_requests = TransportLabel::ALL.map(|transport| {
            CodeLabel::ALL.map(|code| {
                transport_requests_vec.with_label_values(&[transport.as_str(), code.as_str()])
            })
        });
        let transport_connections_open_vec = register(
            &registry,
            prometheus::IntGaugeVec::new(
                Opts::new(
                    "imagegate_transport_connections_open",
                    "Client connections currently open, by transport.",
                ),
                &["transport"],
            ),
        );
        let transport_connections_open = TransportLabel::ALL.map(|transport| {
            transport_connections_open_vec.with_label_values(&[transport.as_str()])
        });

        let registry_requests_vec = register(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "imagegate_registry_requests_total",
                    "HTTP exchanges with container registries during verification, by operation and status class (none: no answer).",
                ),
                &["operation", "status"],
            ),
        );
        let registry_duration_vec = register(
            &registry,
            HistogramVec::new(
                HistogramOpts::new(
                    "imagegate_registry_request_duration_seconds",
                    "Duration of HTTP exchanges with container registries, by operation.",
                )
                .buckets(REGISTRY_BUCKETS.to_vec()),
                &["operation"],
            ),
        );
        let registry_families = std::sync::Arc::new(RegistryFamilies {
            requests: Operation::ALL.map(|op| {
                StatusClass::ALL.map(|class| {
                    registry_requests_vec.with_label_values(&[op.as_str(), class.as_str()])
                })
            }),
            duration: Operation::ALL
                .map(|op| registry_duration_vec.with_label_values(&[op.as_str()])),
        });
        let verify_cache_vec = register(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "imagegate_verify_cache_total",
                    "Verification cache lookups: hit, miss, and coalesced (a miss that waited on another review's registry round).",
                ),
                &["result"],
            ),
        );
        let verify_cache =
            ["hit", "miss", "coalesced"].map(|r| verify_cache_vec.with_label_values(&[r]));
        let verifications_vec = register(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "imagegate_verifications_total",
                    "Image verifications against verify rules, by the requirement concerned and the result (a reason code).",
                ),
                &["kind", "result"],
            ),
        );
        let verifications =
            Outcome::ALL.map(|o| verifications_vec.with_label_values(&[o.kind(), o.as_str()]));

        Metrics {
            registry,
            registry_families,
            verify_cache,
            seen_stats: std::sync::Mutex::new(SeenStats::default()),
            verifications,
            http_requests,
            http_duration,
            reviews,
            image_decisions,
            policy_reloads,
            policy_generation,
            decode_errors,
            connections_open,
            requests_in_flight,
            tls_reloads,
            connections_rejected,
            transport_requests,
            transport_connections_open,
        }
    }

    /// Counts one answered request by transport and status (the
    /// transport-less families are counted by [`Metrics::observe_request`]).
    pub fn observe_transport_request(&self, transport: TransportLabel, status: u16) {
        self.transport_requests[transport.index()][CodeLabel::from_status(status).index()].inc();
    }

    /// The open-connections gauge of one transport (next to the all-listener
    /// total of [`Metrics::connections_open`]).
    pub fn transport_connections_open(&self, transport: TransportLabel) -> &IntGauge {
        &self.transport_connections_open[transport.index()]
    }

    /// An observer for a registry client that counts its exchanges here.
    pub fn registry_observer(&self) -> Observe {
        let families = std::sync::Arc::clone(&self.registry_families);
        std::sync::Arc::new(move |op, status, elapsed: Duration| {
            let i = operation_index(op);
            families.requests[i][StatusClass::of(status).index()].inc();
            families.duration[i].observe(elapsed.as_secs_f64());
        })
    }

    /// Counts one image verification by its outcome.
    pub fn observe_verification(&self, outcome: Outcome) {
        if let Some(i) = Outcome::ALL.iter().position(|o| *o == outcome) {
            self.verifications[i].inc();
        }
    }

    /// Brings the cache counters up to the verifier's cumulative `hits`,
    /// `misses` and `coalesced` (`verifier` identifies the verifier; a new
    /// one after a reload counts from zero again).
    pub fn sync_verify_cache(&self, verifier: usize, hits: u64, misses: u64, coalesced: u64) {
        let Ok(mut seen) = self.seen_stats.lock() else {
            return;
        };
        if seen.verifier != verifier {
            *seen = SeenStats {
                verifier,
                values: [0; 3],
            };
        }
        for (i, now) in [hits, misses, coalesced].into_iter().enumerate() {
            let delta = now.saturating_sub(seen.values[i]);
            self.verify_cache[i].inc_by(delta);
            seen.values[i] = seen.values[i].max(now);
        }
    }

    /// Counts one answered request and its duration.
    pub fn observe_request(&self, path: PathLabel, status: u16, elapsed: Duration) {
        self.http_requests[path.index()][CodeLabel::from_status(status).index()].inc();
        self.http_duration[path.index()].observe(elapsed.as_secs_f64());
    }

    /// Counts one review. `verdict_allowed` is the policy's verdict before
    /// audit mode (every image allowed).
    pub fn observe_review(&self, api: Api, verdict_allowed: bool, mode: Mode) {
        let decision = DecisionLabel::from_allowed(verdict_allowed);
        self.reviews[api_index(api)][decision.index()][mode_index(mode)].inc();
    }

    /// Counts one judged image by its reason code.
    pub fn observe_image(&self, reason: Reason) {
        // Reason::ALL is short (about ten codes); a scan beats a map here.
        if let Some(i) = Reason::ALL.iter().position(|r| *r == reason)
            && let Some(counter) = self.image_decisions.get(i)
        {
            counter.inc();
        }
    }

    /// Counts one body rejected with 400.
    pub fn observe_decode_error(&self, kind: DecodeErrorKind) {
        if let Some(i) = DecodeErrorKind::ALL.iter().position(|k| *k == kind)
            && let Some(counter) = self.decode_errors.get(i)
        {
            counter.inc();
        }
    }

    /// Counts one policy reload attempt.
    pub fn observe_policy_reload(&self, result: ReloadResult) {
        self.policy_reloads[result.index()].inc();
    }

    /// Sets the generation of the policy in force.
    pub fn set_policy_generation(&self, generation: u64) {
        self.policy_generation
            .set(i64::try_from(generation).unwrap_or(i64::MAX));
    }

    /// Counts one serving-certificate reload attempt.
    pub fn observe_tls_reload(&self, result: ReloadResult) {
        self.tls_reloads[result.index()].inc();
    }

    /// Counts one connection closed at accept because the cap was reached.
    pub fn observe_connection_rejected(&self) {
        self.connections_rejected.inc();
    }

    /// The connections-rejected counter (shared with the accept loops).
    pub fn connections_rejected(&self) -> &IntCounter {
        &self.connections_rejected
    }

    /// The open-connections gauge (incremented and decremented by a guard).
    pub fn connections_open(&self) -> &IntGauge {
        &self.connections_open
    }

    /// The in-flight-requests gauge (incremented and decremented by a guard).
    pub fn requests_in_flight(&self) -> &IntGauge {
        &self.requests_in_flight
    }

    /// Renders every family in the Prometheus text exposition format.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 * 1024);
        // Encoding into a Vec cannot fail on I/O; an error would mean a
        // malformed family, which the unit tests rule out.
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(%error, "cannot encode metrics");
        }
        out
    }

    /// The `Content-Type` of [`Metrics::render`]'s output.
    pub fn content_type() -> &'static str {
        prometheus::TEXT_FORMAT
    }
}

fn register<C>(registry: &Registry, collector: prometheus::Result<C>) -> C
where
    C: prometheus::core::Collector + Clone + 'static,
{
    let collector = collector.expect("metric names, help texts and labels are static and valid");
    registry
        .register(Box::new(collector.clone()))
        .expect("each family is registered once in a fresh registry");
    collector
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(m: &Metrics) -> String {
        String::from_utf8(m.render()).unwrap()
    }

    #[test]
    fn every_contract_family_is_rendered_before_any_traffic() {
        let m = Metrics::new();
        let t = text(&m);
        for family in [
            "imagegate_http_requests_total",
            "imagegate_http_request_duration_seconds",
            "imagegate_reviews_total",
            "imagegate_image_decisions_total",
            "imagegate_policy_reloads_total",
            "imagegate_policy_generation",
            "imagegate_build_info",
            "imagegate_connections_open",
            "imagegate_requests_in_flight",
            "imagegate_tls_reloads_total",
            "imagegate_connections_rejected_total",
            "imagegate_transport_requests_total",
            "imagegate_transport_connections_open",
        ] {
            assert!(t.contains(&format!("# TYPE {family} ")), "{family} missing");
        }
        assert!(t.contains(&format!(
            "imagegate_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )));
    }

    #[test]
    fn buckets_span_25us_to_10s() {
        assert_eq!(DURATION_BUCKETS.first(), Some(&0.000_025));
        assert_eq!(DURATION_BUCKETS.last(), Some(&10.0));
        assert!(DURATION_BUCKETS.windows(2).all(|w| w[0] < w[1]));
        let t = text(&Metrics::new());
        assert!(t.contains("le=\"0.000025\""));
        assert!(t.contains("le=\"10\""));
    }

    #[test]
    fn counters_land_on_their_labels() {
        let m = Metrics::new();
        m.observe_request(PathLabel::ImagePolicy, 200, Duration::from_micros(30));
        m.observe_request(PathLabel::Other, 418, Duration::from_micros(30));
        m.observe_review(Api::AdmissionReview, false, Mode::Audit);
        m.observe_image(Reason::TagMissing);
        m.observe_policy_reload(ReloadResult::Error);
        m.set_policy_generation(7);
        m.observe_decode_error(DecodeErrorKind::NotJson);
        let t = text(&m);
        assert!(t.contains("imagegate_http_requests_total{code=\"200\",path=\"imagepolicy\"} 1"));
        assert!(t.contains("imagegate_http_requests_total{code=\"other\",path=\"other\"} 1"));
        assert!(t.contains(
            "imagegate_reviews_total{api=\"admissionreview\",decision=\"deny\",mode=\"audit\"} 1"
        ));
        assert!(t.contains(
            "imagegate_image_decisions_total{decision=\"deny\",reason=\"tag_missing\"} 1"
        ));
        assert!(
            t.contains("imagegate_image_decisions_total{decision=\"allow\",reason=\"allowed\"} 0")
        );
        assert!(t.contains("imagegate_policy_reloads_total{result=\"error\"} 1"));
        assert!(t.contains("imagegate_policy_reloads_total{result=\"success\"} 0"));
        assert!(t.contains("imagegate_policy_generation 7"));
        assert!(t.contains("imagegate_decode_errors_total{kind=\"not_json\"} 1"));
        assert!(t.contains("imagegate_decode_errors_total{kind=\"too_deep\"} 0"));
    }

    #[test]
    fn path_and_code_labels_are_closed() {
        for p in [
            "/",
            "/imagepolicy/",
            "/IMAGEPOLICY",
            "/validate?x",
            "//validate",
        ] {
            assert_eq!(PathLabel::from_path(p), PathLabel::Other, "{p}");
        }
        for (i, p) in PathLabel::ALL.iter().enumerate() {
            assert_eq!(p.index(), i);
        }
        for (i, c) in CodeLabel::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
            if *c != CodeLabel::Other {
                let code: u16 = c.as_str().parse().unwrap();
                assert_eq!(CodeLabel::from_status(code), *c);
            }
        }
        assert_eq!(CodeLabel::from_status(599), CodeLabel::Other);
    }

    #[test]
    fn transport_families_are_closed_and_separate() {
        let m = Metrics::new();
        m.observe_transport_request(TransportLabel::Quic, 200);
        m.observe_transport_request(TransportLabel::Quic, 999);
        m.transport_connections_open(TransportLabel::Tcp).inc();
        let t = text(&m);
        assert!(
            t.contains("imagegate_transport_requests_total{code=\"200\",transport=\"quic\"} 1")
        );
        assert!(
            t.contains("imagegate_transport_requests_total{code=\"other\",transport=\"quic\"} 1")
        );
        assert!(t.contains("imagegate_transport_requests_total{code=\"200\",transport=\"tcp\"} 0"));
        assert!(t.contains("imagegate_transport_connections_open{transport=\"tcp\"} 1"));
        assert!(t.contains("imagegate_transport_connections_open{transport=\"quic\"} 0"));
        // The transport-less contract families are untouched by these.
        assert!(t.contains("imagegate_connections_open 0"));
        assert!(t.contains("imagegate_connections_rejected_total 0"));
        for (i, transport) in TransportLabel::ALL.iter().enumerate() {
            assert_eq!(transport.index(), i);
        }
    }

    #[test]
    fn two_instances_do_not_share_counts() {
        let a = Metrics::new();
        let b = Metrics::new();
        a.observe_connection_rejected();
        assert!(text(&a).contains("imagegate_connections_rejected_total 1"));
        assert!(text(&b).contains("imagegate_connections_rejected_total 0"));
    }
}
