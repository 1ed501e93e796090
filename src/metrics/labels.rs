//! The closed label sets of the metric families: every value a label can
//! take, and each value's index in the families' arrays.

use crate::policy::Mode;
use crate::review::Api;
use crate::verify::registry::Operation;

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

    pub(super) fn index(self) -> usize {
        self as usize
    }
}

pub(super) fn operation_index(op: Operation) -> usize {
    Operation::ALL.iter().position(|o| *o == op).unwrap_or(0)
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

    pub(super) fn index(self) -> usize {
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

    pub(super) fn index(self) -> usize {
        self as usize
    }
}

pub(super) const APIS: [Api; 2] = [Api::ImageReview, Api::AdmissionReview];

pub(super) fn api_index(api: Api) -> usize {
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

    pub(super) fn index(self) -> usize {
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

    pub(crate) fn index(self) -> usize {
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

    pub(super) fn index(self) -> usize {
        self as usize
    }
}

pub(super) const MODES: [Mode; 2] = [Mode::Enforce, Mode::Audit];

pub(super) fn mode_index(mode: Mode) -> usize {
    match mode {
        Mode::Enforce => 0,
        Mode::Audit => 1,
    }
}
