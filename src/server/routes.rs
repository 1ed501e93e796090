//! Routing and the request handler ([`App`]), callable without sockets.
//!
//! `POST /imagepolicy`, `POST /validate` and `POST /mutate` carry a review
//! body to [`review`](crate::review) with the current policy snapshot and
//! return
//! its answer; `GET /healthz`, `/readyz` and `/metrics` report on the
//! process. Errors are classified here: 404, 405 (with `Allow`), 415, 413,
//! 408, and 400 `{"error": "..."}` for a body that is not a review. The
//! decision work is CPU-only and short, so it runs inline on the request's
//! task. Nothing here decides about images.

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Body;

use crate::metrics::{Metrics, PathLabel};
use crate::policy::{Reason, Snapshot};
use crate::review::{self, AdmittedBy, Api, Checks, Mutated, Outcome, Reviewed};
use crate::verify::Outcome as VerifyOutcome;

use super::verification::{attach_verifier, verify_images};

/// Which review route a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    /// `POST /imagepolicy`.
    ImageReview,
    /// `POST /validate`.
    Validate,
    /// `POST /mutate`.
    Mutate,
}

impl Endpoint {
    fn api(self) -> Api {
        match self {
            Endpoint::ImageReview => Api::ImageReview,
            Endpoint::Validate | Endpoint::Mutate => Api::AdmissionReview,
        }
    }
}

/// A review route's answer.
enum Answer {
    Reviewed(Reviewed),
    Mutated(Mutated),
}

use super::config::Limits;
use super::limits::{BodyBudget, BodyError, GaugeGuard, isolate, panic_message, read_body};

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
    bodies: BodyBudget,
    recorder: Option<super::Recorder>,
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
        let snapshot = attach_verifier(snapshot, None, Some(metrics.registry_observer()));
        App {
            policy: ArcSwap::from_pointee(snapshot),
            draining: AtomicBool::new(false),
            metrics,
            bodies: BodyBudget::new(limits.max_buffered_body_bytes),
            limits,
            recorder: None,
        }
    }

    /// Records every review judged from now on (`serve --record`).
    #[must_use]
    pub fn with_recorder(mut self, recorder: super::Recorder) -> App {
        self.recorder = Some(recorder);
        self
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
    /// Its verifier (for `verify` rules) is the previous one when the
    /// registry and cache settings did not change, so cached verdicts
    /// survive the reload; otherwise a fresh one.
    pub fn swap_policy(&self, snapshot: Snapshot) {
        let previous = self.policy.load_full();
        let snapshot = attach_verifier(
            snapshot,
            Some(&previous),
            Some(self.metrics.registry_observer()),
        );
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
    pub fn handle<B>(&self, request: Request<B>) -> impl Future<Output = Response<Full<Bytes>>>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        App::serve(self, request, Routes::Webhook, |_, _| {})
    }

    /// Answers one request of a listener offering `routes`; `app` is the
    /// [`App`] itself or an owner of it (an `Arc`, for a `'static` future).
    /// `finish` sees every response last (the listener's own metrics and
    /// headers).
    ///
    /// The request head (path, method, headers) is handled before the
    /// future is made, so the future holds only the body: hyper moves it
    /// into a task per HTTP/2 stream and into its connection per HTTP/1.1
    /// request, and that copy grows with its size.
    pub(crate) fn serve<A, B, F>(
        app: A,
        request: Request<B>,
        routes: Routes,
        finish: F,
    ) -> impl Future<Output = Response<Full<Bytes>>>
    where
        A: Deref<Target = App>,
        F: FnOnce(&App, &mut Response<Full<Bytes>>),
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let started = Instant::now();
        let in_flight = GaugeGuard::new(app.metrics.requests_in_flight().clone());
        let path = match (routes, PathLabel::from_path(request.uri().path())) {
            (
                Routes::Observability,
                PathLabel::ImagePolicy | PathLabel::Validate | PathLabel::Mutate,
            ) => PathLabel::Other,
            (_, path) => path,
        };
        let routed = std::panic::catch_unwind(AssertUnwindSafe(|| app.route(request, path)))
            .map_err(|payload| panic_message(payload.as_ref()));
        async move {
            let _in_flight = in_flight;
            let answered = match routed {
                Ok(Routed::Answer(response)) => Ok(*response),
                Ok(Routed::Review(body, endpoint)) => isolate(app.review(body, endpoint)).await,
                Err(panic) => Err(panic),
            };
            let mut response = match answered {
                Ok(response) => response,
                Err(panic) => {
                    tracing::error!(path = path.as_str(), panic = %Clean(&panic), "request handler panicked");
                    error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
                }
            };
            app.metrics
                .observe_request(path, response.status().as_u16(), started.elapsed());
            finish(&app, &mut response);
            response
        }
    }

    /// Everything that needs only the request head: the answer, or the
    /// body to read for a review.
    fn route<B>(&self, request: Request<B>, path: PathLabel) -> Routed<B>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let endpoint = match path {
            PathLabel::ImagePolicy => Endpoint::ImageReview,
            PathLabel::Validate => Endpoint::Validate,
            PathLabel::Mutate => Endpoint::Mutate,
            _ => return Routed::Answer(Box::new(self.observe(request.method(), path))),
        };
        if request.method() != Method::POST {
            return Routed::Answer(Box::new(method_not_allowed("POST")));
        }
        if let Some(content_type) = request.headers().get(CONTENT_TYPE)
            && !is_json(content_type)
        {
            return Routed::Answer(Box::new(error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "content-type must be application/json",
            )));
        }
        Routed::Review(request.into_body(), endpoint)
    }

    /// The routes that are not reviews.
    fn observe(&self, method: &Method, path: PathLabel) -> Response<Full<Bytes>> {
        let readable = matches!(*method, Method::GET | Method::HEAD);
        match path {
            _ if path != PathLabel::Other && !readable => method_not_allowed("GET, HEAD"),
            PathLabel::Healthz => text(StatusCode::OK, "ok\n"),
            PathLabel::Readyz if self.is_ready() => text(StatusCode::OK, "ready\n"),
            PathLabel::Readyz => text(StatusCode::SERVICE_UNAVAILABLE, "draining\n"),
            PathLabel::Metrics => {
                self.sync_verifier_stats();
                response(
                    StatusCode::OK,
                    Metrics::content_type(),
                    self.metrics.render(),
                )
            }
            _ => error(StatusCode::NOT_FOUND, "not found"),
        }
    }

    fn sync_verifier_stats(&self) {
        if let Some(v) = self.policy.load().verifier() {
            let stats = v.stats();
            self.metrics.sync_verify_cache(
                Arc::as_ptr(v) as usize,
                stats.cache_hits.load(Ordering::Relaxed),
                stats.cache_misses.load(Ordering::Relaxed),
                stats.coalesced.load(Ordering::Relaxed),
            );
        }
    }

    /// Reads the body of a review and answers it.
    async fn review<B>(&self, body: B, endpoint: Endpoint) -> Response<Full<Bytes>>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let limits = &self.limits;
        let read = read_body(
            body,
            limits.max_body_bytes,
            limits.body_read_timeout,
            &self.bodies,
        );
        // Held until the answer is made: the budget counts this body's
        // memory for as long as it lives.
        let (body, _budget) = match read.await {
            Ok(read) => read.into_parts(),
            Err(e) => return body_error(&e),
        };
        let snapshot = self.policy.load_full();
        // The body as received (parsing rewrites it), when recording.
        let copy = match (&self.recorder, endpoint) {
            (Some(recorder), Endpoint::ImageReview | Endpoint::Validate)
                if recorder.reserve(body.len()) =>
            {
                Some(body.clone())
            }
            _ => None,
        };
        if endpoint == Endpoint::Mutate || snapshot.supply_chain().has_rules() {
            // Rare and large: boxed, so that the state of the verification
            // is allocated only by the requests that wait for it.
            return Box::pin(self.review_verified(body, snapshot, endpoint, copy)).await;
        }
        // The fast path: no rule can send this review to the network, so it
        // is decided here without waiting.
        let api = endpoint.api();
        let result = decide_now(body, &snapshot, api);
        self.answer(result.map(Answer::Reviewed), &snapshot, api, copy)
    }

    /// A body copied for the record that is not recorded (not a review).
    fn unrecorded(&self, copy: Option<Vec<u8>>) {
        if let (Some(recorder), Some(body)) = (&self.recorder, copy) {
            recorder.release(body.len());
        }
    }

    /// A review that may wait on the network: `/mutate`, or a policy with
    /// `verify` rules.
    async fn review_verified(
        &self,
        body: Vec<u8>,
        snapshot: Arc<Snapshot>,
        endpoint: Endpoint,
        copy: Option<Vec<u8>>,
    ) -> Response<Full<Bytes>> {
        let api = endpoint.api();
        let result = if endpoint == Endpoint::Mutate {
            self.mutate(body, &snapshot).await
        } else {
            self.verified_review(body, &snapshot, api)
                .await
                .map(Answer::Reviewed)
        };
        self.answer(result, &snapshot, api, copy)
    }

    /// The response to a decided review (or to a body that is not one),
    /// recorded in the metrics and the log.
    fn answer(
        &self,
        result: Result<Answer, review::DecodeError>,
        snapshot: &Snapshot,
        api: Api,
        copy: Option<Vec<u8>>,
    ) -> Response<Full<Bytes>> {
        match result {
            Ok(Answer::Reviewed(reviewed)) => {
                self.record(&reviewed.outcome, snapshot.generation());
                if let (Some(recorder), Some(body)) = (&self.recorder, copy) {
                    recorder.record(api, reviewed.outcome.allowed, snapshot.generation(), body);
                }
                response(StatusCode::OK, JSON, reviewed.body)
            }
            Ok(Answer::Mutated(mutated)) => {
                self.unrecorded(copy);
                tracing::debug!(pinned = mutated.pinned, "mutate answered");
                response(StatusCode::OK, JSON, mutated.body)
            }
            Err(e) => {
                self.unrecorded(copy);
                self.metrics.observe_decode_error(e.kind());
                tracing::debug!(api = api.as_str(), kind = e.kind().as_str(), error = %Clean(&e.to_string()), "not a review");
                error(StatusCode::BAD_REQUEST, &e.to_string())
            }
        }
    }

    /// A review under `verify` rules: the policy decides first (a policy
    /// deny never reaches the network), then every image that a rule
    /// applies to is verified, concurrently, under the policy's one
    /// deadline, and the review is decided with the outcomes.
    async fn verified_review(
        &self,
        mut body: Vec<u8>,
        snapshot: &Arc<Snapshot>,
        api: Api,
    ) -> Result<Reviewed, review::DecodeError> {
        let deadline = Instant::now() + snapshot.supply_chain().timeout();
        // simd-json parses in place: the second pass needs its own copy.
        let mut second = body.clone();
        let pending = match api {
            Api::ImageReview => review::image_review_pending(&mut body, snapshot)?,
            Api::AdmissionReview => review::admission_review_pending(&mut body, snapshot, false)?,
        };
        let checks = self.verify(snapshot, pending, deadline).await;
        match api {
            Api::ImageReview => review::image_review_checked(&mut second, snapshot, &checks),
            Api::AdmissionReview => {
                review::admission_review_checked(&mut second, snapshot, &checks)
            }
        }
    }

    /// `POST /mutate`: with `mutate.pinDigests`, the tag images are
    /// verified (or resolved) and pinned to their digest.
    async fn mutate(
        &self,
        mut body: Vec<u8>,
        snapshot: &Arc<Snapshot>,
    ) -> Result<Answer, review::DecodeError> {
        let supply = snapshot.supply_chain();
        let mut checks = Checks::new();
        if supply.pin_digests() {
            let deadline = Instant::now() + supply.timeout();
            let mut second = body.clone();
            let pending = review::admission_review_pending(&mut body, snapshot, true)?;
            checks = self.verify(snapshot, pending, deadline).await;
            body = std::mem::take(&mut second);
        }
        review::admission_review_mutate(&mut body, snapshot, &checks).map(Answer::Mutated)
    }

    async fn verify(
        &self,
        snapshot: &Arc<Snapshot>,
        images: Vec<String>,
        deadline: Instant,
    ) -> Checks {
        if images.is_empty() {
            return Checks::new();
        }
        let checks = verify_images(Arc::clone(snapshot), images.clone(), deadline).await;
        for image in &images {
            let outcome = checks
                .get(image)
                .map_or(VerifyOutcome::Unavailable, |c| c.outcome);
            self.metrics.observe_verification(outcome);
        }
        checks
    }

    fn record(&self, outcome: &Outcome, generation: u64) {
        // `denied` lists every image whose verdict is a deny (a
        // `verification_unavailable` admitted by `onError: allow` is not).
        let verdict_allowed = outcome.denied.is_empty();
        self.metrics
            .observe_review(outcome.api, verdict_allowed, outcome.mode);
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
        // What was admitted although the policy denied it is an audit
        // trail, logged whatever the log level filters out of the rest.
        for by in [AdmittedBy::BreakGlass, AdmittedBy::OnErrorAllow] {
            if outcome.admitted.iter().any(|a| a.by == by) {
                tracing::warn!(
                    api = %outcome.api.as_str(),
                    namespace = %Clean(&outcome.namespace),
                    user = %Clean(&outcome.user),
                    admitted_by = by.as_str(),
                    images = %Admitted(&outcome.admitted, by),
                    generation,
                    mode = %outcome.mode.as_str(),
                    "images admitted despite a deny verdict"
                );
            }
        }
    }
}

/// What the request head led to.
enum Routed<B> {
    /// Answered from the head alone (boxed: rare, and kept out of the
    /// request future's size).
    Answer(Box<Response<Full<Bytes>>>),
    /// A review whose body is still to be read.
    Review(B, Endpoint),
}

/// Decides a review that no `verify` rule applies to.
fn decide_now(
    mut body: Vec<u8>,
    snapshot: &Snapshot,
    api: Api,
) -> Result<Reviewed, review::DecodeError> {
    match api {
        Api::ImageReview => review::image_review(&mut body, snapshot),
        Api::AdmissionReview => review::admission_review(&mut body, snapshot),
    }
}

/// The answer to a body that could not be read.
fn body_error(e: &BodyError) -> Response<Full<Bytes>> {
    let status = match e {
        BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        BodyError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
        BodyError::Read(_) => StatusCode::BAD_REQUEST,
        BodyError::Busy { .. } => {
            let mut response = error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
    };
    error(status, &e.to_string())
}

/// `application/json`, with or without parameters, in any letter case.
fn is_json(value: &HeaderValue) -> bool {
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case(JSON)
}

fn response(
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
) -> Response<Full<Bytes>> {
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

/// The images one kind of admission let through, with the reason each was
/// denied for, capped like [`Denied`].
struct Admitted<'a>(&'a [review::Admitted], AdmittedBy);

impl fmt::Display for Admitted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pairs = self.0.iter().filter(|a| a.by == self.1);
        let total = pairs.clone().count();
        for (i, a) in pairs.take(MAX_LOGGED_IMAGES).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{} ({})", Clean(&a.image), a.reason.as_str())?;
        }
        if total > MAX_LOGGED_IMAGES {
            write!(f, ", and {} more", total - MAX_LOGGED_IMAGES)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// hyper moves the request future into a task per HTTP/2 stream (and
    /// into its connection per HTTP/1.1 request): its size is copied on
    /// every request. It was 3.7 KiB when the whole handler, verification
    /// included, sat in one state machine.
    #[test]
    fn the_request_future_stays_small() {
        let app = Arc::new(App::new(Snapshot::builtin(), Limits::default()));
        let request = Request::post("/imagepolicy")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let served = App::serve(app, request, Routes::Webhook, |_, _| {});
        let size = size_of_val(&served);
        assert!(size <= 512, "the request future is {size} bytes");
    }
}
