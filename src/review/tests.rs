//! Unit tests of the review internals: the JSON writer, the capped texts,
//! the narrow decoders and the second walk.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::json::{Clipped, Json, escape_into, join};
use super::*;

fn escaped(s: &str) -> String {
    let mut out = Vec::new();
    escape_into(&mut out, s);
    String::from_utf8(out).unwrap()
}

#[test]
fn escape_covers_json_specials_and_controls() {
    assert_eq!(escaped("plain/é:1"), "plain/é:1");
    assert_eq!(escaped("\"\\"), "\\\"\\\\");
    assert_eq!(escaped("\n\r\t\u{8}\u{c}"), "\\n\\r\\t\\b\\f");
    assert_eq!(
        escaped("\u{0}\u{1}\u{1f}\u{7f}"),
        "\\u0000\\u0001\\u001f\u{7f}"
    );
    for c in (0u8..0x20).map(char::from) {
        let s = format!("a{c}b");
        let back: String = serde_json::from_str(&format!("\"{}\"", escaped(&s))).unwrap();
        assert_eq!(back, s);
    }
}

#[test]
fn numbers() {
    for n in [0, 7, 10, 99, 12345, u64::MAX] {
        let mut json = Json::with_capacity(0);
        json.number(n);
        assert_eq!(json.finish(), n.to_string().into_bytes());
    }
}

fn text(limit: usize, write: impl FnOnce(&mut Clipped<'_>) -> std::fmt::Result) -> String {
    let mut json = Json::with_capacity(0);
    json.text(limit, write);
    serde_json::from_slice::<String>(&json.finish()).unwrap()
}

#[test]
fn text_is_capped_at_a_char_boundary() {
    assert_eq!(text(10, |o| o.write_str("short")), "short");
    assert_eq!(text(6, |o| o.write_str("123456")), "12345…");
    assert_eq!(text(6, |o| o.write_str("12345")), "12345");
    let long = text(5, |o| {
        o.write_str("ééé")?;
        o.write_str("\"\"\"")
    });
    assert_eq!(long, "ééé\"…");
    assert_eq!(long.chars().count(), 5);
    // Writes after the cut are dropped.
    let t = text(4, |o| {
        o.write_str("abcdef")?;
        o.write_str("ghi")
    });
    assert_eq!(t, "abc…");
}

#[test]
fn join_counts_what_it_leaves_out() {
    let mut out = String::new();
    join(&mut out, 1..=5, "; ", 3, |o, n| write!(o, "{n}")).unwrap();
    assert_eq!(out, "1; 2; 3; and 2 more");
    let mut out = String::new();
    join(&mut out, 1..=2, ", ", 3, |o, n| write!(o, "{n}")).unwrap();
    assert_eq!(out, "1, 2");
}

fn images_body(images: &[&str]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "imagepolicy.k8s.io/v1alpha1",
        "kind": "ImageReview",
        "spec": {"containers": images.iter().map(|i| json!({"image": i})).collect::<Vec<_>>()}
    }))
    .unwrap()
}

#[test]
fn reason_lists_at_most_max_listed_images() {
    let images: Vec<String> = (0..100).map(|i| format!("img{i}")).collect();
    let refs: Vec<&str> = images.iter().map(String::as_str).collect();
    let reviewed = image_review(&mut images_body(&refs), &Snapshot::builtin()).unwrap();
    let v: Value = serde_json::from_slice(&reviewed.body).unwrap();
    let reason = v["status"]["reason"].as_str().unwrap();
    assert!(reason.contains("\"img63\""), "{reason}");
    assert!(!reason.contains("\"img64\""), "{reason}");
    assert!(reason.ends_with("; and 36 more"), "{reason}");
    // The deny log has every image.
    assert_eq!(reviewed.outcome.denied.len(), 100);
}

#[test]
fn long_images_are_cut_in_texts_and_the_deny_log() {
    let long = format!("{}:1", "a".repeat(5000));
    let reviewed = image_review(&mut images_body(&[&long]), &Snapshot::builtin()).unwrap();
    let v: Value = serde_json::from_slice(&reviewed.body).unwrap();
    let reason = v["status"]["reason"].as_str().unwrap();
    assert!(reason.len() < 2000, "{} bytes: {reason}", reason.len());
    let (image, reason) = &reviewed.outcome.denied[0];
    assert_eq!(*reason, Reason::InvalidReference);
    assert_eq!(image.len(), 1024 + '…'.len_utf8());
}

#[test]
fn many_warnings_are_capped() {
    let policy = Snapshot::from_yaml(
        "apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nspec:\n  mode: audit\n  tags:\n    forbid: [latest]\n",
    )
    .unwrap();
    let images: Vec<String> = (0..40)
        .map(|i| format!("registry.example.com/team/app{i}:latest"))
        .collect();
    let containers: Vec<Value> = images.iter().map(|i| json!({"image": i})).collect();
    let mut body = serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": "CREATE",
            "object": {"spec": {"containers": containers}}
        }
    }))
    .unwrap();
    let reviewed = admission_review(&mut body, &policy).unwrap();
    assert!(reviewed.outcome.allowed);
    let v: Value = serde_json::from_slice(&reviewed.body).unwrap();
    let warnings = v["response"]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 16);
    assert_eq!(warnings[15], json!("and 25 more warnings"));
    let total: usize = warnings
        .iter()
        .map(|w| w.as_str().unwrap().chars().count())
        .sum();
    assert!(total <= 4096, "{total}");
    assert!(
        warnings
            .iter()
            .all(|w| w.as_str().unwrap().chars().count() <= MAX_WARNING_CHARS)
    );
    assert!(warnings[0].as_str().unwrap().contains("app0:latest"));
}

#[test]
fn null_containers_and_images_read_as_empty_images() {
    let mut body = br#"{"apiVersion":"imagepolicy.k8s.io/v1alpha1","kind":"ImageReview",
        "spec":{"containers":[null,{"image":null},{"name":"x"}],"annotations":{"a":null},"namespace":null}}"#
        .to_vec();
    let reviewed = image_review(&mut body, &Snapshot::builtin()).unwrap();
    assert_eq!(reviewed.outcome.reasons, [Reason::InvalidReference; 3]);
    assert_eq!(reviewed.outcome.namespace, "");
}

#[test]
fn same_named_kinds_of_other_groups_are_not_judged() {
    for (group, kind) in [
        ("example.com", "Deployment"),
        ("apps", "Pod"),
        ("batch", "Deployment"),
    ] {
        let mut body = serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "u",
                "kind": {"group": group, "version": "v1", "kind": kind},
                "operation": "CREATE",
                "object": {"spec": {"containers": "not a list", "template": 5}}
            }
        }))
        .unwrap();
        let reviewed = admission_review(&mut body, &Snapshot::builtin()).unwrap();
        assert!(reviewed.outcome.allowed, "{group}/{kind}");
        assert!(reviewed.outcome.reasons.is_empty());
    }
}

#[test]
fn unknown_operation_is_judged() {
    let mut body = serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "object": {"spec": {"containers": [{"image": "busybox"}]}}
        }
    }))
    .unwrap();
    let reviewed = admission_review(&mut body, &Snapshot::builtin()).unwrap();
    assert!(!reviewed.outcome.allowed);
}

#[test]
fn second_walk_handles_every_shape() {
    // `object` before `kind`: read on the second walk.
    for (group, kind, object) in [
        (
            "",
            "Pod",
            json!({"spec": {"ephemeralContainers": [{"image": "busybox"}]}}),
        ),
        (
            "apps",
            "DaemonSet",
            json!({"spec": {"template": {"spec": {"containers": [{"image": "busybox"}]}}}}),
        ),
        (
            "batch",
            "CronJob",
            json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"initContainers": [{"image": "busybox"}]}}}}}}),
        ),
        (
            "",
            "PodTemplate",
            json!({"template": {"spec": {"containers": [{"image": "busybox"}]}}}),
        ),
    ] {
        let body = format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"object":{object},"uid":"u","kind":{{"group":"{group}","kind":"{kind}"}}}}}}"#
        );
        let reviewed = admission_review(&mut body.into_bytes(), &Snapshot::builtin()).unwrap();
        assert_eq!(reviewed.outcome.reasons, [Reason::TagMissing], "{kind}");
    }
}

#[test]
fn api_labels() {
    assert_eq!(Api::ImageReview.as_str(), "imagereview");
    assert_eq!(Api::AdmissionReview.as_str(), "admissionreview");
}

#[test]
fn large_bodies_use_fresh_buffers_and_thread_buffers_stay_usable() {
    let images: Vec<String> = (0..20_000)
        .map(|i| format!("registry.example.com/app{i}:1.0"))
        .collect();
    let refs: Vec<&str> = images.iter().map(String::as_str).collect();
    let mut big = images_body(&refs);
    assert!(big.len() > 256 * 1024);
    let reviewed = image_review(&mut big, &Snapshot::builtin()).unwrap();
    assert!(reviewed.outcome.allowed);
    assert_eq!(reviewed.outcome.reasons.len(), 20_000);
    let reviewed = image_review(&mut images_body(&["busybox"]), &Snapshot::builtin()).unwrap();
    assert!(!reviewed.outcome.allowed);
}

/// The tape a thread keeps between parses carries nothing from one body
/// to the next: bodies of other sizes, and ones that fail midway, in turn
/// each read as they would alone.
#[test]
fn a_kept_tape_carries_nothing_into_the_next_body() {
    let snapshot = Snapshot::builtin();
    let many: Vec<String> = (0..300).map(|i| format!("img{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let bad_api = br#"{"apiVersion":"v9","kind":"ImageReview","spec":{"containers":[{"image":"a"},{"image":"b"}]}}"#;
    let broken = br#"{"apiVersion":"imagepolicy.k8s.io/v1alpha1","kind":"ImageReview","spec":{"containers":[{"image":"a"}"#;
    for _ in 0..3 {
        let reviewed = image_review(&mut images_body(&many), &snapshot).unwrap();
        assert_eq!(reviewed.outcome.reasons.len(), 300);
        // The 300 images' tape went back to the thread...
        let kept = wire::kept_tape_capacity();
        assert!(kept > 600, "{kept}");
        let err = image_review(&mut bad_api.to_vec(), &snapshot).unwrap_err();
        assert!(err.to_string().contains("v9"), "{err}");
        assert!(image_review(&mut broken.to_vec(), &snapshot).is_err());
        // ...and is reused, also after a body that is not JSON.
        assert_eq!(wire::kept_tape_capacity(), kept);
        let reviewed =
            image_review(&mut images_body(&["registry.k8s.io/pause:3.9"]), &snapshot).unwrap();
        assert_eq!(reviewed.outcome.reasons.len(), 1);
        assert!(reviewed.outcome.allowed, "{:?}", reviewed.outcome);
        let reviewed = image_review(&mut images_body(&[]), &snapshot).unwrap();
        assert!(reviewed.outcome.reasons.is_empty());
    }
}

#[test]
fn connect_and_delete_are_allowed_in_the_namespace_mode() {
    let policy = Snapshot::from_yaml(
        "apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nspec:\n  overrides:\n    - namespaces: [\"sandbox-*\"]\n      mode: audit\n",
    )
    .unwrap();
    for (operation, kind, namespace, mode) in [
        ("CONNECT", "PodExecOptions", "shop", Mode::Enforce),
        ("DELETE", "Pod", "sandbox-1", Mode::Audit),
    ] {
        let mut body = serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "u",
                "kind": {"group": "", "version": "v1", "kind": kind},
                "subResource": if operation == "CONNECT" { "exec" } else { "" },
                "namespace": namespace,
                "operation": operation,
                "object": {"spec": {"containers": [{"image": "busybox"}]}},
                "oldObject": {"spec": {"containers": [{"image": "busybox"}]}}
            }
        }))
        .unwrap();
        let reviewed = admission_review(&mut body, &policy).unwrap();
        assert!(reviewed.outcome.allowed, "{operation}");
        assert!(reviewed.outcome.reasons.is_empty(), "{operation}");
        assert_eq!(reviewed.outcome.mode, mode, "{operation}");
        assert_eq!(reviewed.outcome.namespace, namespace);
    }
}

/// An allowed ImageReview with nothing to add has one answer per policy
/// generation, which the thread keeps: it must be that answer, for each
/// generation, and never the answer to a review with something to say.
#[test]
fn the_kept_allowed_answer_is_the_one_for_its_generation() {
    const ALLOWED: &[u8] = include_bytes!("../../loadtest/bodies/imagereview-3.json");
    let plain = |generation: u64| {
        format!(
            r#"{{"apiVersion":"imagepolicy.k8s.io/v1alpha1","kind":"ImageReview","status":{{"allowed":true,"auditAnnotations":{{"policy-generation":"{generation}"}}}}}}"#
        )
    };
    let answer = |body: &[u8], snapshot: &Snapshot| {
        let reviewed = image_review(&mut body.to_vec(), snapshot).unwrap();
        String::from_utf8(reviewed.body.to_vec()).unwrap()
    };
    let audit = || {
        Snapshot::from_yaml(
            "apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nspec:\n  mode: audit\n  tags:\n    forbid: [latest]\n",
        )
        .unwrap()
    };
    let would_deny = images_body(&["registry.example.com/team/app:latest"]);
    let denied = images_body(&["payments-api:latest"]);
    for generation in [1, 2, 2, 1, 0, u64::MAX] {
        let builtin = Snapshot::builtin().with_generation(generation);
        assert_eq!(answer(ALLOWED, &builtin), plain(generation));
        assert_eq!(answer(ALLOWED, &builtin), plain(generation));
        // Allowed by audit mode, with the would-deny note: not the kept one.
        let audit = audit().with_generation(generation);
        let noted: Value = serde_json::from_str(&answer(&would_deny, &audit)).unwrap();
        assert_eq!(noted["status"]["allowed"], json!(true));
        assert!(
            noted["status"]["auditAnnotations"]["audit-would-deny"].is_string(),
            "{noted}"
        );
        let refused: Value = serde_json::from_str(&answer(&denied, &builtin)).unwrap();
        assert_eq!(refused["status"]["allowed"], json!(false), "{refused}");
        assert_eq!(answer(ALLOWED, &builtin), plain(generation));
    }
}
