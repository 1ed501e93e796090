//! Bodies that are not reviews: every class gets its [`DecodeErrorKind`]
//! and a message naming the problem; nothing panics, nothing overflows the
//! stack.

use imagegate::policy::Snapshot;
use imagegate::review::{self, DecodeError, DecodeErrorKind, MAX_DEPTH};

use DecodeErrorKind::*;

fn image_review(body: &[u8]) -> Result<(), DecodeError> {
    review::image_review(&mut body.to_vec(), &Snapshot::builtin()).map(|_| ())
}

fn admission_review(body: &[u8]) -> Result<(), DecodeError> {
    review::admission_review(&mut body.to_vec(), &Snapshot::builtin()).map(|_| ())
}

/// Both endpoints fail with `kind`; the message contains `needle`.
fn both(body: &[u8], kind: DecodeErrorKind, needle: &str) {
    for (api, result) in [
        ("imagereview", image_review(body)),
        ("admission", admission_review(body)),
    ] {
        let err = result.expect_err(api);
        assert_eq!(err.kind(), kind, "{api}: {err}");
        assert!(
            err.to_string().contains(needle),
            "{api}: {err:?} lacks {needle:?}"
        );
    }
}

fn ir(body: &str, kind: DecodeErrorKind, needle: &str) {
    let err = image_review(body.as_bytes()).expect_err(body);
    assert_eq!(err.kind(), kind, "{body}: {err}");
    assert!(err.to_string().contains(needle), "{err:?} lacks {needle:?}");
}

fn ar(body: &str, kind: DecodeErrorKind, needle: &str) {
    let err = admission_review(body.as_bytes()).expect_err(body);
    assert_eq!(err.kind(), kind, "{body}: {err}");
    assert!(err.to_string().contains(needle), "{err:?} lacks {needle:?}");
}

const IR: &str = r#""apiVersion":"imagepolicy.k8s.io/v1alpha1","kind":"ImageReview""#;
const AR: &str = r#""apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview""#;
const POD: &str = r#""kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE""#;

#[test]
fn not_json() {
    both(b"", NotJson, "empty");
    both(b" \r\n\t ", NotJson, "empty");
    both(b"{", NotJson, "not valid JSON");
    both(b"not json", NotJson, "not valid JSON");
    both(
        b"{\"apiVersion\":\"v1\"} trailing",
        NotJson,
        "not valid JSON",
    );
    both(b"{\"a\":tru}", NotJson, "not valid JSON");
    both(b"{\"a\":\"unterminated}", NotJson, "not valid JSON");
    both(b"{\"a\":1,}", NotJson, "not valid JSON");
    both(b"{'a':1}", NotJson, "not valid JSON");
    both(b"{\"a\":\"\\x\"}", NotJson, "not valid JSON");
    // Invalid UTF-8 inside a string (RFC 8259 requires UTF-8).
    both(
        b"{\"apiVersion\":\"\xff\xfe\",\"kind\":\"ImageReview\"}",
        NotJson,
        "not valid JSON",
    );
    both(b"{\"a\":\"\xc3\x28\"}", NotJson, "not valid JSON");
}

#[test]
fn too_deep_one_megabyte_of_brackets() {
    let brackets = vec![b'['; 1 << 20];
    both(&brackets, TooDeep, "deeper than");
    let mut objects = Vec::with_capacity(1 << 20);
    while objects.len() < 1 << 20 {
        objects.extend_from_slice(b"{\"a\":");
    }
    both(&objects, TooDeep, "deeper than");
    // Closed, so the JSON is complete: still too deep.
    let closed = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    both(closed.as_bytes(), TooDeep, "deeper than");
}

#[test]
fn depth_limit_is_exact() {
    // A review whose deepest value sits at depth MAX_DEPTH is read; one
    // level more is refused.
    let nest = |levels: usize| {
        format!(
            "{{{IR},\"spec\":{{\"x\":{}{}}}}}",
            "[".repeat(levels),
            "]".repeat(levels)
        )
    };
    // The body, `spec` and the arrays: 2 + n levels.
    image_review(nest(MAX_DEPTH - 2).as_bytes()).expect("at the limit");
    let err = image_review(nest(MAX_DEPTH - 1).as_bytes()).expect_err("past the limit");
    assert_eq!(err.kind(), TooDeep);
}

#[test]
fn wrong_api_version() {
    ir(
        &format!("{{{AR},\"spec\":{{}}}}"),
        WrongApiVersion,
        "\"admission.k8s.io/v1\"",
    );
    ir(
        r#"{"apiVersion":"imagepolicy.k8s.io/v1","kind":"ImageReview","spec":{}}"#,
        WrongApiVersion,
        "expected \"imagepolicy.k8s.io/v1alpha1\"",
    );
    ar(
        &format!("{{{IR},\"request\":{{\"uid\":\"u\"}}}}"),
        WrongApiVersion,
        "\"imagepolicy.k8s.io/v1alpha1\"",
    );
    ar(
        r#"{"apiVersion":"admission.k8s.io/v2","kind":"AdmissionReview","request":{"uid":"u"}}"#,
        WrongApiVersion,
        "admission.k8s.io/v1beta1",
    );
}

#[test]
fn echoed_values_are_truncated_and_escaped() {
    let long = "x".repeat(10_000);
    let body = format!(r#"{{"apiVersion":"{long}","kind":"ImageReview","spec":{{}}}}"#);
    let err = image_review(body.as_bytes()).unwrap_err();
    assert_eq!(err.kind(), WrongApiVersion);
    assert!(
        err.to_string().len() < 300,
        "{} bytes",
        err.to_string().len()
    );
    assert!(err.to_string().contains('…'));

    let body = r#"{"apiVersion":"imagepolicy.k8s.io/v1alpha1","kind":"Image\"Review\n\u0000\u001b[31m","spec":{}}"#;
    let err = image_review(body.as_bytes()).unwrap_err();
    assert_eq!(err.kind(), WrongKind);
    let text = err.to_string();
    assert!(text.contains(r#"Image\"Review\n\0\u{1b}[31m"#), "{text}");
    assert!(!text.chars().any(char::is_control), "{text:?}");
}

#[test]
fn wrong_kind() {
    ir(
        r#"{"apiVersion":"imagepolicy.k8s.io/v1alpha1","kind":"AdmissionReview","spec":{}}"#,
        WrongKind,
        "expected \"ImageReview\"",
    );
    ir(
        r#"{"apiVersion":"imagepolicy.k8s.io/v1alpha1","kind":"imagereview","spec":{}}"#,
        WrongKind,
        "\"imagereview\"",
    );
    ar(
        r#"{"apiVersion":"admission.k8s.io/v1","kind":"ImageReview","request":{"uid":"u"}}"#,
        WrongKind,
        "expected \"AdmissionReview\"",
    );
}

#[test]
fn missing_fields() {
    both(b"{}", MissingField, "apiVersion");
    ir(
        r#"{"apiVersion":"imagepolicy.k8s.io/v1alpha1","spec":{}}"#,
        MissingField,
        "kind",
    );
    ir(&format!("{{{IR}}}"), MissingField, "spec");
    ir(&format!("{{{IR},\"spec\":null}}"), MissingField, "spec");
    ar(
        r#"{"apiVersion":"admission.k8s.io/v1","request":{"uid":"u"}}"#,
        MissingField,
        "kind",
    );
    ar(&format!("{{{AR}}}"), MissingField, "request");
    ar(
        &format!("{{{AR},\"request\":null}}"),
        MissingField,
        "request",
    );
    ar(
        &format!("{{{AR},\"request\":{{{POD}}}}}"),
        MissingField,
        "request.uid",
    );
    ar(
        &format!("{{{AR},\"request\":{{\"uid\":null,{POD}}}}}"),
        MissingField,
        "request.uid",
    );
    ar(
        &format!("{{{AR},\"request\":{{\"uid\":\"u\",\"operation\":\"CREATE\"}}}}"),
        MissingField,
        "request.kind",
    );
    ar(
        &format!("{{{AR},\"request\":{{\"uid\":\"u\",{POD}}}}}"),
        MissingField,
        "request.object",
    );
    ar(
        &format!("{{{AR},\"request\":{{\"uid\":\"u\",{POD},\"object\":null}}}}"),
        MissingField,
        "request.object",
    );
}

#[test]
fn wrong_types_name_the_field() {
    both(b"[]", WrongType, "request body");
    both(b"\"ImageReview\"", WrongType, "request body");
    both(b"42", WrongType, "request body");
    both(b"null", WrongType, "request body");
    both(b"{\"apiVersion\":1}", WrongType, "field apiVersion");
    ir(&format!("{{{IR},\"spec\":\"x\"}}"), WrongType, "field spec");
    ir(&format!("{{{IR},\"spec\":[]}}"), WrongType, "field spec");
    ir(
        &format!("{{{IR},\"spec\":{{\"containers\":{{}}}}}}"),
        WrongType,
        "field spec.containers",
    );
    ir(
        &format!("{{{IR},\"spec\":{{\"containers\":[{{\"image\":\"a:1\"}},{{\"image\":5}}]}}}}"),
        WrongType,
        "field spec.containers[1].image",
    );
    ir(
        &format!("{{{IR},\"spec\":{{\"containers\":[[\"a:1\"]]}}}}"),
        WrongType,
        "field spec.containers[0]",
    );
    ir(
        &format!("{{{IR},\"spec\":{{\"annotations\":{{\"a\":1}}}}}}"),
        WrongType,
        "field spec.annotations",
    );
    ir(
        &format!("{{{IR},\"spec\":{{\"annotations\":[]}}}}"),
        WrongType,
        "field spec.annotations",
    );
    ir(
        &format!("{{{IR},\"spec\":{{\"namespace\":true}}}}"),
        WrongType,
        "field spec.namespace",
    );
    ar(
        &format!("{{{AR},\"request\":[]}}"),
        WrongType,
        "field request",
    );
    ar(
        &format!("{{{AR},\"request\":{{\"uid\":5}}}}"),
        WrongType,
        "field request.uid",
    );
    ar(
        &format!("{{{AR},\"request\":{{\"uid\":\"u\",\"kind\":\"Pod\"}}}}"),
        WrongType,
        "field request.kind",
    );
    ar(
        &format!(
            "{{{AR},\"request\":{{\"uid\":\"u\",{POD},\"object\":{{\"spec\":{{\"initContainers\":[{{\"image\":[]}}]}}}}}}}}"
        ),
        WrongType,
        "field request.object.spec.initContainers[0].image",
    );
    ar(
        &format!(
            "{{{AR},\"request\":{{\"uid\":\"u\",{POD},\"object\":{{\"metadata\":{{\"annotations\":\"x\"}}}}}}}}"
        ),
        WrongType,
        "field request.object.metadata.annotations",
    );
}

#[test]
fn duplicate_keys() {
    ir(
        &format!("{{{IR},\"spec\":{{}},\"spec\":{{}}}}"),
        DuplicateField,
        "duplicate key \"spec\"",
    );
    ir(
        &format!("{{{IR},\"spec\":{{\"containers\":[],\"containers\":[]}}}}"),
        DuplicateField,
        "field spec: duplicate key \"containers\"",
    );
    ir(
        &format!("{{{IR},\"spec\":{{\"containers\":[{{\"image\":\"a:1\",\"image\":\"b\"}}]}}}}"),
        DuplicateField,
        "field spec.containers[0]: duplicate key \"image\"",
    );
    ir(
        &format!("{{{IR},\"spec\":{{\"annotations\":{{\"k\":\"1\",\"j\":\"2\",\"k\":\"3\"}}}}}}"),
        DuplicateField,
        "field spec.annotations: duplicate key \"k\"",
    );
    // Many annotations (the sorted path).
    let many: Vec<String> = (0..40).map(|i| format!("\"k{i}\":\"v\"")).collect();
    let body = format!(
        "{{{IR},\"spec\":{{\"annotations\":{{{},\"k17\":\"w\"}}}}}}",
        many.join(",")
    );
    ir(&body, DuplicateField, "duplicate key \"k17\"");
    let body = format!(
        "{{{IR},\"spec\":{{\"annotations\":{{{}}}}}}}",
        many.join(",")
    );
    image_review(body.as_bytes()).expect("40 distinct annotations");
    // An escaped key is the same key.
    ir(
        &format!("{{{IR},\"spec\":{{}},\"sp\\u0065c\":{{}}}}"),
        DuplicateField,
        "duplicate key",
    );
    ar(
        &format!("{{{AR},\"request\":{{\"uid\":\"u\"}},\"request\":{{\"uid\":\"v\"}}}}"),
        DuplicateField,
        "duplicate key \"request\"",
    );
    ar(
        &format!("{{{AR},\"request\":{{\"uid\":\"u\",\"uid\":\"v\"}}}}"),
        DuplicateField,
        "field request: duplicate key \"uid\"",
    );
    ar(
        &format!("{{{AR},\"request\":{{\"uid\":\"u\",{POD},\"object\":{{}},\"object\":{{}}}}}}"),
        DuplicateField,
        "duplicate key \"object\"",
    );
    ar(
        &format!(
            "{{{AR},\"request\":{{\"uid\":\"u\",{POD},\"object\":{{\"spec\":{{\"containers\":[],\"containers\":[{{\"image\":\"x\"}}]}}}}}}}}"
        ),
        DuplicateField,
        "field request.object.spec: duplicate key \"containers\"",
    );
}

#[test]
fn every_kind_has_a_label() {
    let labels: Vec<_> = DecodeErrorKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(
        labels,
        [
            "not_json",
            "too_deep",
            "wrong_api_version",
            "wrong_kind",
            "missing_field",
            "wrong_type",
            "duplicate_field"
        ]
    );
}

#[test]
fn bad_images_are_verdicts_not_errors() {
    // Parses as a review: the images are the policy's business.
    for image in ["", " ", "Uppercase:tag", "a\u{7}b:1", "::::", "x@sha256:zz"] {
        let body = serde_json::json!({
            "apiVersion": "imagepolicy.k8s.io/v1alpha1",
            "kind": "ImageReview",
            "spec": {"containers": [{"image": image}]}
        });
        let mut bytes = serde_json::to_vec(&body).unwrap();
        let reviewed = review::image_review(&mut bytes, &Snapshot::builtin()).unwrap();
        assert!(!reviewed.outcome.allowed, "{image:?}");
    }
}
