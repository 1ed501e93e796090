//! Properties of the review decoders: no input panics them, every answer
//! is valid JSON, and the verdict is the policy's verdict on exactly the
//! images the body holds.

use imagegate::policy::{Context, Snapshot};
use imagegate::review::{self, Reviewed};
use proptest::prelude::*;
use serde_json::{Value, json};

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/review");
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .expect("fixture directory")
        .map(|entry| {
            let path = entry.expect("fixture entry").path();
            let name = path
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&path).expect("fixture file"))
        })
        .collect();
    out.sort();
    assert!(out.len() >= 20, "fixtures missing");
    out
}

/// Runs both decoders; an answer must be JSON of the right kind.
fn check(body: &[u8], snapshot: &Snapshot) {
    if let Ok(reviewed) = review::image_review(&mut body.to_vec(), snapshot) {
        let v = json_of(&reviewed);
        assert_eq!(v["kind"], "ImageReview");
        assert_eq!(v["status"]["allowed"], json!(reviewed.outcome.allowed));
    }
    if let Ok(reviewed) = review::admission_review(&mut body.to_vec(), snapshot) {
        let v = json_of(&reviewed);
        assert_eq!(v["kind"], "AdmissionReview");
        assert_eq!(v["response"]["allowed"], json!(reviewed.outcome.allowed));
        assert!(v["response"]["uid"].is_string());
    }
}

fn json_of(reviewed: &Reviewed) -> Value {
    serde_json::from_slice(&reviewed.body).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&reviewed.body)
        )
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Duplicate(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Flip(at, b)),
        (any::<usize>(), 0usize..64).prop_map(|(at, n)| Mutation::Delete(at, n)),
        (
            any::<usize>(),
            prop::collection::vec(
                prop_oneof![
                    Just(b'{'),
                    Just(b'}'),
                    Just(b'['),
                    Just(b']'),
                    Just(b'"'),
                    Just(b','),
                    Just(b':'),
                    Just(b'\\'),
                    any::<u8>()
                ],
                1..16
            )
        )
            .prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
        (any::<usize>(), 1usize..256).prop_map(|(at, n)| Mutation::Duplicate(at, n)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(body: &mut Vec<u8>, m: &Mutation) {
    let len = body.len().max(1);
    match m {
        Mutation::Flip(at, b) => {
            if let Some(x) = body.get_mut(at % len) {
                *x = *b;
            }
        }
        Mutation::Delete(at, n) => {
            let at = at % len;
            let end = (at + n).min(body.len());
            body.drain(at.min(end)..end);
        }
        Mutation::Insert(at, bytes) => {
            let at = at % (body.len() + 1);
            body.splice(at..at, bytes.iter().copied());
        }
        Mutation::Duplicate(at, n) => {
            let at = at % len;
            let end = (at + n).min(body.len());
            let copy = body[at.min(end)..end].to_vec();
            body.splice(end..end, copy);
        }
        Mutation::Truncate(at) => body.truncate(at % len),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        check(&body, &Snapshot::builtin());
    }

    #[test]
    fn json_shaped_noise_never_panics(body in "[\\[\\]{}\",:a-z0-9\\\\ ]{0,256}") {
        check(body.as_bytes(), &Snapshot::builtin());
    }

    #[test]
    fn mutated_fixtures_never_panic(
        pick in any::<usize>(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let all = fixtures();
        let (_, original) = &all[pick % all.len()];
        let mut body = original.clone();
        for m in &mutations {
            apply(&mut body, m);
        }
        check(&body, &Snapshot::builtin());
    }

    /// Any strings as images (control characters, quotes, non-ASCII...):
    /// the answer is the policy's verdict on exactly those strings.
    #[test]
    fn imagereview_verdict_is_the_policys(
        images in prop::collection::vec(
            prop_oneof![any::<String>(), "[a-z./:@-]{0,24}", Just("nginx:1.27".to_owned())],
            0..8,
        ),
        namespace in any::<String>(),
    ) {
        let snapshot = Snapshot::builtin();
        let body = json!({
            "apiVersion": "imagepolicy.k8s.io/v1alpha1",
            "kind": "ImageReview",
            "spec": {
                "containers": images.iter().map(|i| json!({"image": i})).collect::<Vec<_>>(),
                "namespace": namespace,
            }
        });
        let mut bytes = serde_json::to_vec(&body).unwrap();
        let reviewed = review::image_review(&mut bytes, &snapshot).unwrap();
        let scope = snapshot.scope(&Context { namespace: &namespace, annotations: &[], user: None });
        let decisions: Vec<_> = images.iter().map(|i| scope.evaluate(i)).collect();
        let reasons: Vec<_> = decisions.iter().map(|d| d.reason()).collect();
        prop_assert_eq!(&reviewed.outcome.reasons, &reasons);
        prop_assert_eq!(reviewed.outcome.allowed, decisions.iter().all(|d| d.allowed()));
        prop_assert_eq!(&reviewed.outcome.namespace, &namespace);
        let v = json_of(&reviewed);
        prop_assert_eq!(&v["status"]["allowed"], &json!(reviewed.outcome.allowed));
        if !reviewed.outcome.allowed {
            let reason = v["status"]["reason"].as_str().unwrap().to_owned();
            for (image, d) in images.iter().zip(&decisions) {
                if !d.allowed() {
                    let sentence = d.explain(image).to_string();
                    prop_assert!(reason.contains(&sentence), "{reason:?} lacks {sentence:?}");
                }
            }
        }
    }

    /// Any uid is echoed exactly, and any image lands in the response
    /// escaped correctly.
    #[test]
    fn admission_uid_is_echoed(uid in any::<String>(), image in any::<String>()) {
        let body = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": uid,
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "operation": "CREATE",
                "object": {"spec": {"containers": [{"image": image}]}}
            }
        });
        let mut bytes = serde_json::to_vec(&body).unwrap();
        let reviewed = review::admission_review(&mut bytes, &Snapshot::builtin()).unwrap();
        let v = json_of(&reviewed);
        prop_assert_eq!(&v["response"]["uid"], &json!(uid));
        for warning in v["response"]["warnings"].as_array().into_iter().flatten() {
            prop_assert!(warning.as_str().unwrap().chars().count() <= review::MAX_WARNING_CHARS);
        }
    }
}
