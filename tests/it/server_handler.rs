//! The request handler called directly, without sockets: routing, every
//! error status, content types, limits, readiness and metrics.

// In tests a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::support::server::*;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use imagegate::policy::Snapshot;
use imagegate::server::{App, Limits};

fn app() -> App {
    App::new(Snapshot::builtin().with_generation(1), Limits::default())
}

async fn call(app: &App, request: Request<Full<Bytes>>) -> Answer {
    let response = app.handle(request).await;
    let (parts, body) = response.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    )
}

fn request(
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(ct) = content_type {
        builder = builder.header("content-type", ct);
    }
    builder
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

fn error_message(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).expect("error body is JSON");
    v["error"].as_str().expect("error field").to_owned()
}

#[tokio::test]
async fn reviews_are_answered_on_both_endpoints() {
    let app = app();
    let (status, headers, body) =
        call(&app, post("/imagepolicy", image_review(&["nginx:1.25"]))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    assert!(image_review_allowed(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["apiVersion"], "imagepolicy.k8s.io/v1alpha1");
    assert_eq!(v["kind"], "ImageReview");

    // The built-in policy forbids an implicit latest: a deny, still 200.
    let (status, _, body) = call(&app, post("/imagepolicy", image_review(&["nginx"]))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!image_review_allowed(&body));

    let (status, _, body) = call(&app, post("/validate", admission_review(&["nginx:1.25"]))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(admission_allowed(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["response"]["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");

    let (status, _, body) =
        call(&app, post("/validate", admission_review(&["nginx:latest"]))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!admission_allowed(&body));
}

#[tokio::test]
async fn query_strings_are_ignored() {
    let app = app();
    let (status, _, body) = call(
        &app,
        post("/imagepolicy?timeout=30s", image_review(&["nginx:1.25"])),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(image_review_allowed(&body));
    let (status, _, _) = call(&app, get("/healthz?verbose=1")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let app = app();
    for path in [
        "/",
        "/imagepolicy/",
        "/IMAGEPOLICY",
        "/validate/x",
        "/mutate/x",
        "/metricsx",
    ] {
        let (status, headers, body) = call(&app, post(path, image_review(&["nginx:1.25"]))).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(error_message(&body), "not found");
    }
}

#[tokio::test]
async fn wrong_methods_are_405_with_allow() {
    let app = app();
    for (method, path, allow) in [
        (Method::GET, "/imagepolicy", "POST"),
        (Method::PUT, "/validate", "POST"),
        (Method::DELETE, "/imagepolicy", "POST"),
        (Method::POST, "/healthz", "GET, HEAD"),
        (Method::POST, "/readyz", "GET, HEAD"),
        (Method::PUT, "/metrics", "GET, HEAD"),
    ] {
        let (status, headers, body) = call(&app, request(method.clone(), path, None, "")).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(headers["allow"], allow, "{method} {path}");
        assert!(!error_message(&body).is_empty());
    }
    let (status, _, _) = call(&app, request(Method::HEAD, "/healthz", None, "")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn content_type_is_checked() {
    let app = app();
    let body = image_review(&["nginx:1.25"]);
    for ok in [
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        Some("Application/JSON ;charset=UTF-8"),
        None,
    ] {
        let (status, _, _) = call(&app, request(Method::POST, "/imagepolicy", ok, &body)).await;
        assert_eq!(status, StatusCode::OK, "{ok:?}");
    }
    for bad in [
        "text/plain",
        "application/yaml",
        "application/jsonx",
        "application/x-www-form-urlencoded",
        "",
        "multipart/form-data; boundary=x",
    ] {
        let (status, _, body) =
            call(&app, request(Method::POST, "/validate", Some(bad), &body)).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{bad:?}");
        assert!(error_message(&body).contains("application/json"));
    }
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let limits = Limits {
        max_body_bytes: 1024,
        ..Limits::default()
    };
    let app = app_with(POLICY_ALLOW_ALL, limits);
    let exactly = format!("{:<1024}", image_review(&["nginx:1.25"]));
    assert_eq!(exactly.len(), 1024);
    let (status, _, _) = call(&app, post("/imagepolicy", exactly)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a body of exactly the limit is fine"
    );
    let over = format!("{:<1025}", image_review(&["nginx:1.25"]));
    let (status, _, body) = call(&app, post("/imagepolicy", over)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(error_message(&body).contains("1024"));
}

/// One body per DecodeError class; each is a 400 with a message, counted
/// under its own `kind`.
#[tokio::test]
async fn bodies_that_are_not_reviews_are_400_by_kind() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let cases: Vec<(&str, String, &str)> = vec![
        ("/imagepolicy", String::new(), "not_json"),
        ("/imagepolicy", "{".into(), "not_json"),
        ("/validate", "not json at all".into(), "not_json"),
        ("/imagepolicy", "\u{0}\u{1}\u{2}".into(), "not_json"),
        ("/imagepolicy", deep.clone(), "too_deep"),
        (
            "/imagepolicy",
            r#"{"apiVersion":"imagepolicy.k8s.io/v1","kind":"ImageReview","spec":{"containers":[]}}"#.into(),
            "wrong_api_version",
        ),
        (
            "/validate",
            r#"{"apiVersion":"admission.k8s.io/v2","kind":"AdmissionReview","request":{"uid":"x"}}"#.into(),
            "wrong_api_version",
        ),
        (
            "/imagepolicy",
            r#"{"apiVersion":"imagepolicy.k8s.io/v1alpha1","kind":"AdmissionReview","spec":{"containers":[]}}"#.into(),
            "wrong_kind",
        ),
        (
            "/validate",
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.into(),
            "missing_field",
        ),
        (
            "/imagepolicy",
            r#"{"apiVersion":"imagepolicy.k8s.io/v1alpha1","kind":"ImageReview","spec":{"containers":"nginx"}}"#.into(),
            "wrong_type",
        ),
        (
            "/imagepolicy",
            r#"{"apiVersion":"imagepolicy.k8s.io/v1alpha1","apiVersion":"imagepolicy.k8s.io/v1alpha1","kind":"ImageReview","spec":{"containers":[]}}"#.into(),
            "duplicate_field",
        ),
    ];
    let app = app();
    for (path, body, kind) in &cases {
        let before = sample(
            &String::from_utf8(app.metrics().render()).unwrap(),
            &format!("imagegate_decode_errors_total{{kind=\"{kind}\"}}"),
        )
        .unwrap_or(0.0);
        let (status, headers, answer) = call(&app, post(path, body.clone())).await;
        let shown: String = body.chars().take(60).collect();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {shown:?}");
        assert_eq!(headers["content-type"], "application/json");
        assert!(!error_message(&answer).is_empty());
        let after = sample(
            &String::from_utf8(app.metrics().render()).unwrap(),
            &format!("imagegate_decode_errors_total{{kind=\"{kind}\"}}"),
        );
        assert_eq!(
            after,
            Some(before + 1.0),
            "{path} {shown:?} counted as {kind}"
        );
    }
}

#[tokio::test]
async fn readyz_turns_503_when_draining_and_healthz_stays_200() {
    let app = app();
    assert_eq!(call(&app, get("/readyz")).await.0, StatusCode::OK);
    app.start_draining();
    let (status, _, body) = call(&app, get("/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, "draining\n");
    assert_eq!(call(&app, get("/healthz")).await.0, StatusCode::OK);
    // Reviews are still answered while draining.
    let (status, _, _) = call(&app, post("/imagepolicy", image_review(&["nginx:1.25"]))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn metrics_count_requests_reviews_and_images() {
    let app = app();
    call(
        &app,
        post("/imagepolicy", image_review(&["nginx:1.25", "nginx"])),
    )
    .await;
    call(&app, post("/validate", admission_review(&["nginx:1.25"]))).await;
    call(&app, get("/nope")).await;
    let (status, headers, body) = call(&app, get("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = String::from_utf8(body.to_vec()).unwrap();
    let want = [
        (
            "imagegate_http_requests_total{code=\"200\",path=\"imagepolicy\"}",
            1.0,
        ),
        (
            "imagegate_http_requests_total{code=\"200\",path=\"validate\"}",
            1.0,
        ),
        (
            "imagegate_http_requests_total{code=\"404\",path=\"other\"}",
            1.0,
        ),
        (
            "imagegate_http_request_duration_seconds_count{path=\"imagepolicy\"}",
            1.0,
        ),
        (
            "imagegate_reviews_total{api=\"imagereview\",decision=\"deny\",mode=\"enforce\"}",
            1.0,
        ),
        (
            "imagegate_reviews_total{api=\"admissionreview\",decision=\"allow\",mode=\"enforce\"}",
            1.0,
        ),
        (
            "imagegate_image_decisions_total{decision=\"allow\",reason=\"allowed\"}",
            2.0,
        ),
        (
            "imagegate_image_decisions_total{decision=\"deny\",reason=\"tag_missing\"}",
            1.0,
        ),
        ("imagegate_policy_generation", 1.0),
        ("imagegate_requests_in_flight", 1.0), // this /metrics request itself
    ];
    for (series, value) in want {
        assert_eq!(sample(&text, series), Some(value), "{series}\n{text}");
    }
}

#[tokio::test]
async fn swapping_the_policy_changes_answers_and_generation() {
    let app = app_with(POLICY_ALLOW_ALL, Limits::default());
    let (_, _, body) = call(&app, post("/imagepolicy", image_review(&["nginx:1.25"]))).await;
    assert!(image_review_allowed(&body));
    app.swap_policy(
        imagegate::load::compile(POLICY_DENY_DOCKER_HUB)
            .unwrap()
            .with_generation(2),
    );
    let (_, _, body) = call(&app, post("/imagepolicy", image_review(&["nginx:1.25"]))).await;
    assert!(!image_review_allowed(&body));
    assert_eq!(app.engine().policy().generation(), 2);
    let text = String::from_utf8(app.metrics().render()).unwrap();
    assert_eq!(sample(&text, "imagegate_policy_generation"), Some(2.0));
}

#[tokio::test]
async fn a_body_that_never_arrives_is_408() {
    struct Stalled;
    impl hyper::body::Body for Stalled {
        type Data = Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
            std::task::Poll::Pending
        }
    }
    let app = App::new(
        Snapshot::builtin(),
        Limits {
            body_read_timeout: Duration::from_millis(50),
            ..Limits::default()
        },
    );
    let response = app
        .handle(Request::post("/imagepolicy").body(Stalled).unwrap())
        .await;
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
}
