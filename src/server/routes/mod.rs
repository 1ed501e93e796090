//! Routing and the request handler ([`App`]), callable without sockets.
//!
//! `POST /imagepolicy`, `POST /validate` and `POST /mutate` carry a review
//! body to the decision pipeline ([`Engine::decide`]) of the engine in
//! force and return its answer (`review_flow.rs`); `GET /healthz`, `/readyz` and
//! `/metrics` report on the process. Errors are classified here: 404, 405
//! (with `Allow`), 415, 413, 408, and 400 `{"error": "..."}` for a body
//! that is not a review (`respond.rs` builds the answers). The decision
//! work is CPU-only and short, so it runs inline on the request's task.
//! Nothing here decides about images.

use std::future::Future;
use std::ops::Deref;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Body;

use crate::decide::{Engine, Request as Ask};
use crate::metrics::{Metrics, PathLabel};
use crate::policy::Snapshot;
use crate::review::Api;

mod respond;
mod review_flow;

use respond::{Clean, error, is_json, method_not_allowed, response, text};

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

    /// What the route asks of the pipeline.
    fn ask(self) -> Ask {
        match self {
            Endpoint::Mutate => Ask::Mutate,
            _ => Ask::Review(self.api()),
        }
    }
}

use super::config::Limits;
use super::limits::{BodyBudget, isolate, panic_message};

/// Which routes a listener offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Routes {
    /// Everything (the main listener).
    Webhook,
    /// `/metrics`, `/healthz` and `/readyz` only (`--metrics-listen`).
    Observability,
}

/// The server's shared state and its request handler: the one
/// `ArcSwap<Engine>` (policy and verifier), readiness, metrics and limits.
#[derive(Debug)]
pub struct App {
    engine: ArcSwap<Engine>,
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
        let engine = Engine::new(snapshot, None, Some(metrics.registry_observer()));
        App {
            engine: ArcSwap::from_pointee(engine),
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

    /// The policy and verifier in force.
    pub fn engine(&self) -> Arc<Engine> {
        self.engine.load_full()
    }

    /// Puts a new policy in force for every later request, atomically.
    /// Its verifier (for `verify` rules) is the previous one when the
    /// registry and cache settings did not change, so cached verdicts
    /// survive the reload; otherwise a fresh one.
    pub fn swap_policy(&self, snapshot: Snapshot) {
        let previous = self.engine.load_full();
        let observe = Some(self.metrics.registry_observer());
        let engine = Engine::new(snapshot, Some(&previous), observe);
        let generation = engine.policy().generation();
        self.engine.store(Arc::new(engine));
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
        let app = InFlight::new(app);
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
                    crate::review::body_bytes(self.metrics.render()),
                )
            }
            _ => error(StatusCode::NOT_FOUND, "not found"),
        }
    }

    fn sync_verifier_stats(&self) {
        if let Some(v) = self.engine.load().verifier() {
            let stats = v.stats();
            self.metrics.sync_verify_cache(
                v.id(),
                stats.cache_hits.load(Ordering::Relaxed),
                stats.cache_misses.load(Ordering::Relaxed),
                stats.coalesced.load(Ordering::Relaxed),
            );
        }
    }
}

/// The [`App`] (or an owner of it) as one request holds it: the request
/// is counted in `imagegate_requests_in_flight` from when it is taken in
/// until its future is dropped, answered or not. The app's own handle
/// carries the count, so no gauge handle is cloned per request.
struct InFlight<A: Deref<Target = App>>(A);

impl<A: Deref<Target = App>> InFlight<A> {
    fn new(app: A) -> InFlight<A> {
        app.metrics.requests_in_flight().inc();
        InFlight(app)
    }
}

impl<A: Deref<Target = App>> Deref for InFlight<A> {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}

impl<A: Deref<Target = App>> Drop for InFlight<A> {
    fn drop(&mut self) {
        self.0.metrics.requests_in_flight().dec();
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

    /// `imagegate_requests_in_flight` counts a request while its future
    /// lives, polled or not.
    #[tokio::test]
    async fn a_request_is_in_flight_until_answered_or_dropped() {
        use http_body_util::StreamBody;
        use hyper::body::Frame;

        let app = Arc::new(App::new(Snapshot::builtin(), Limits::default()));
        let in_flight = || app.metrics().requests_in_flight().get();
        // A body that never arrives keeps the request waiting.
        let waiting = || {
            let body = StreamBody::new(futures_util::stream::pending::<
                Result<Frame<Bytes>, std::convert::Infallible>,
            >());
            let request = Request::post("/imagepolicy")
                .header(CONTENT_TYPE, JSON)
                .body(body)
                .unwrap();
            Box::pin(App::serve(app.clone(), request, Routes::Webhook, |_, _| {}))
        };

        let unpolled = waiting();
        assert_eq!(in_flight(), 1);
        drop(unpolled);
        assert_eq!(in_flight(), 0, "dropped unpolled");

        let mut first = waiting();
        let mut second = waiting();
        assert!(futures_util::poll!(first.as_mut()).is_pending());
        assert!(futures_util::poll!(second.as_mut()).is_pending());
        assert_eq!(in_flight(), 2);
        drop(first);
        assert_eq!(in_flight(), 1, "dropped while waiting");

        let request = Request::post("/imagepolicy")
            .header(CONTENT_TYPE, JSON)
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        let answered = App::serve(app.clone(), request, Routes::Webhook, |app, _| {
            assert_eq!(
                app.metrics().requests_in_flight().get(),
                2,
                "in flight while answered"
            );
        })
        .await;
        assert_eq!(answered.status(), StatusCode::BAD_REQUEST);
        assert_eq!(in_flight(), 1);
        drop(second);
        assert_eq!(in_flight(), 0);
    }
}
