//! Routing and the request handler ([`App`]), callable without sockets.
//!
//! `POST /imagepolicy` and `POST /validate` carry a review body to
//! [`review`](crate::review) with the current policy snapshot and return
//! its answer; `GET /healthz`, `/readyz` and `/metrics` report on the
//! process. Errors are classified here: 404, 405 (with `Allow`), 415, 413,
//! 408, and 400 `{"error": "..."}` for a body that is not a review. The
//! decision work is CPU-only and short, so it runs inline on the request's
//! task. Nothing here decides about images.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Body;

use crate::metrics::{ApiLabel, Metrics, PathLabel};
use crate::policy::{Reason, Snapshot};
use crate::review::{self, Api, DecodeErrorKind, Outcome};

use super::config::Limits;
use super::limits::{BodyError, GaugeGuard, isolate, read_body};

/// Which routes a listener offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Routes {
    /// Everything (the main listener).
    Webhook,
    /// `/metrics`, `/healthz` and `/readyz` only (`--metrics-listen`).
    Observability,
}

/// The server's shared state and its request handler: the one
/// `ArcSwap<Snapshot>`, readiness, metrics and limits.
#[derive(Debug)]
pub struct App {
    policy: ArcSwap<Snapshot>,
    draining: AtomicBool,
    metrics: Metrics,
    limits: Limits,
}

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";
/// Images named in one deny log line; the rest are counted.
const MAX_LOGGED_IMAGES: usize = 16;

impl App {
    /// State serving `snapshot` (its generation is taken as is).
    pub fn new(snapshot: Snapshot, limits: Limits) -> App {
        let metrics = Metrics::new();
        metrics.set_policy_generation(snapshot.generation());
        let kinds: Vec<&'static str> = DecodeErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        metrics.declare_decode_error_kinds(&kinds);
        App {
            policy: ArcSwap::from_pointee(snapshot),
            draining: AtomicBool::new(false),
            metrics,
            limits,
        }
    }

    /// This server's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<Snapshot> {
        self.policy.load_full()
    }

    /// Puts a new policy in force for every later request, atomically.
    pub fn swap_policy(&self, snapshot: Snapshot) {
        let generation = snapshot.generation();
        self.policy.store(Arc::new(snapshot));
        self.metrics.set_policy_generation(generation);
    }

    /// Whether `/readyz` answers 200. A policy is always loaded (the server
    /// does not start without one), so this is "not draining".
    pub fn is_ready(&self) -> bool {
        !self.draining.load(Ordering::Relaxed)
    }

    /// Turns readiness off for good (the start of a drain).
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Answers one request of the main listener. Never panics: a panic in
    /// the handling becomes a 500 for this request only.
    pub async fn handle<B>(&self, request: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.serve(request, Routes::Webhook).await
    }

    pub(crate) async fn serve<B>(&self, request: Request<B>, routes: Routes) -> Response<Full<Bytes>>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let started = Instant::now();
        let _in_flight = GaugeGuard::new(self.metrics.requests_in_flight().clone());
        let path = match (routes, PathLabel::from_path(request.uri().path())) {
            (Routes::Observability, PathLabel::ImagePolicy | PathLabel::Validate) => {
                PathLabel::Other
            }
            (_, path) => path,
        };
        let response = match isolate(self.route(request, path)).await {
            Ok(response) => response,
            Err(panic) => {
                tracing::error!(path = path.as_str(), %panic, "request handler panicked");
                error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        };
        self.metrics
            .observe_request(path, response.status().as_u16(), started.elapsed());
        response
    }

    async fn route<B>(&self, request: Request<B>, path: PathLabel) -> Response<Full<Bytes>>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let readable = matches!(*request.method(), Method::GET | Method::HEAD);
        match path {
            PathLabel::ImagePolicy => self.review(request, Api::ImageReview).await,
            PathLabel::Validate => self.review(request, Api::AdmissionReview).await,
            _ if path != PathLabel::Other && !readable => {
                method_not_allowed("GET, HEAD")
            }
            PathLabel::Healthz => text(StatusCode::OK, "ok\n"),
            PathLabel::Readyz if self.is_ready() => text(StatusCode::OK, "ready\n"),
            PathLabel::Readyz => text(StatusCode::SERVICE_UNAVAILABLE, "draining\n"),
            PathLabel::Metrics => response(
                StatusCode::OK,
                Metrics::content_type(),
                self.metrics.render(),
            ),
            PathLabel::Other => error(StatusCode::NOT_FOUND, "not found"),
        }
    }

    async fn review<B>(&self, request: Request<B>, api: Api) -> Response<Full<Bytes>>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if request.method() != Method::POST {
            return method_not_allowed("POST");
        }
        if let Some(content_type) = request.headers().get(CONTENT_TYPE)
            && !is_json(content_type)
        {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "content-type must be application/json",
            );
        }
        let limits = &self.limits;
        let mut body = match read_body(
            request.into_body(),
            limits.max_body_bytes,
            limits.body_read_timeout,
        )
        .await
        {
            Ok(body) => body,
            Err(e @ BodyError::TooLarge { .. }) => {
                return error(StatusCode::PAYLOAD_TOO_LARGE, &e.to_string());
            }
            Err(e @ BodyError::Timeout(_)) => {
                return error(StatusCode::REQUEST_TIMEOUT, &e.to_string());
            }
            Err(e @ BodyError::Read(_)) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
        };
        let snapshot = self.policy.load();
        let result = match api {
            Api::ImageReview => review::image_review(&mut body, &snapshot),
            Api::AdmissionReview => review::admission_review(&mut body, &snapshot),
        };
        match result {
            Ok(reviewed) => {
                self.record(&reviewed.outcome, snapshot.generation());
                response(StatusCode::OK, JSON, reviewed.body)
            }
            Err(e) => {
                self.metrics.observe_decode_error(e.kind().as_str());
                tracing::debug!(api = api.as_str(), kind = e.kind().as_str(), error = %Clean(&e.to_string()), "not a review");
                error(StatusCode::BAD_REQUEST, &e.to_string())
            }
        }
    }

    fn record(&self, outcome: &Outcome, generation: u64) {
        let verdict_allowed = outcome.reasons.iter().all(|r| r.is_allow());
        let api = match outcome.api {
            Api::ImageReview => ApiLabel::ImageReview,
            Api::AdmissionReview => ApiLabel::AdmissionReview,
        };
        self.metrics
            .observe_review(api, verdict_allowed, outcome.mode);
        for reason in &outcome.reasons {
            self.metrics.observe_image(*reason);
        }
        if verdict_allowed {
            tracing::debug!(
                api = %outcome.api.as_str(),
                namespace = %Clean(&outcome.namespace),
                images = outcome.reasons.len(),
                generation,
                mode = %outcome.mode.as_str(),
                "review allowed"
            );
        } else {
            tracing::info!(
                api = %outcome.api.as_str(),
                namespace = %Clean(&outcome.namespace),
                denied = %Denied(&outcome.denied),
                generation,
                mode = %outcome.mode.as_str(),
                allowed = outcome.allowed,
                "review denied"
            );
        }
    }
}

/// `application/json`, with or without parameters, in any letter case.
fn is_json(value: &HeaderValue) -> bool {
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case(JSON)
}

fn response(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT));
    response
}

/// `{"error": "..."}` with the given status.
fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(&serde_json::json!({ "error": message }))
        .unwrap_or_else(|_| b"{\"error\":\"internal error\"}".to_vec());
    response(status, JSON, body)
}

fn method_not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

/// Displays request-supplied text with control characters escaped, so a
/// hostile namespace or image cannot forge log lines.
struct Clean<'a>(&'a str);

impl fmt::Display for Clean<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

/// `"image" (reason), ...`, at most [`MAX_LOGGED_IMAGES`] of them.
struct Denied<'a>(&'a [(String, Reason)]);

impl fmt::Display for Denied<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (image, reason)) in self.0.iter().take(MAX_LOGGED_IMAGES).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{} ({})", Clean(image), reason.as_str())?;
        }
        if self.0.len() > MAX_LOGGED_IMAGES {
            write!(f, ", and {} more", self.0.len() - MAX_LOGGED_IMAGES)?;
        }
        Ok(())
    }
}
