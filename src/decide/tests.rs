use std::collections::HashMap;

use super::*;
use crate::policy::SideFiles;

const KEY: &str = include_str!("../../tests/fixtures/verify/keys/cosign.pub");

fn files() -> HashMap<String, String> {
    HashMap::from([("cosign.pub".to_owned(), KEY.to_owned())])
}

fn policy(extra: &str) -> Snapshot {
    let text = format!(
        "apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nspec:\n  registries:\n    allow: [\"registry.example\", \"127.0.0.1:1\"]\n{extra}"
    );
    Snapshot::compile(&text, &files() as &dyn SideFiles).unwrap()
}

const VERIFY: &str = "  verify:\n    - images: [\"registry.example/signed/**\", \"127.0.0.1:1/signed/**\"]\n      keys: [{file: cosign.pub}]\n";

fn image_review(image: &str) -> Vec<u8> {
    format!(
        r#"{{"apiVersion":"imagepolicy.k8s.io/v1alpha1","kind":"ImageReview","spec":{{"containers":[{{"image":"{image}"}}],"namespace":"default"}}}}"#
    )
    .into_bytes()
}

#[test]
fn a_verifier_only_when_the_policy_needs_one() {
    let plain = Engine::new(policy(""), None, None);
    assert!(plain.verifier().is_none());
    assert!(!plain.waits(Request::Review(Api::ImageReview)));
    assert!(plain.waits(Request::Mutate));
    let verifying = Engine::new(policy(VERIFY), None, None);
    assert!(verifying.verifier().is_some());
    assert!(verifying.waits(Request::Review(Api::AdmissionReview)));
}

#[test]
fn a_reload_keeps_the_verifier_while_its_settings_hold() {
    let first = Engine::new(policy(VERIFY), None, None);
    let same = Engine::new(policy(VERIFY), Some(&first), None);
    assert_eq!(
        first.verifier().unwrap().id(),
        same.verifier().unwrap().id()
    );
    let insecure = format!("{VERIFY}  verification:\n    cache:\n      allowTtl: 1m\n");
    let changed = Engine::new(policy(&insecure), Some(&same), None);
    assert_ne!(
        same.verifier().unwrap().id(),
        changed.verifier().unwrap().id()
    );
}

#[tokio::test(start_paused = true)]
async fn decide_agrees_with_decide_now_when_nothing_waits() {
    let engine = Arc::new(Engine::new(policy(""), None, None));
    for image in ["registry.example/app:1.0", "evil.example/app:1.0", "x"] {
        let now = engine
            .decide_now(Api::ImageReview, image_review(image))
            .unwrap();
        let request = Request::Review(Api::ImageReview);
        let observe = |_| panic!("nothing is verified");
        let Answer::Reviewed(piped) = engine
            .decide(request, image_review(image), observe)
            .await
            .unwrap()
        else {
            panic!("a review answers a review");
        };
        assert_eq!(now.body, piped.body, "{image}");
        assert_eq!(now.outcome, piped.outcome, "{image}");
    }
}

#[tokio::test]
async fn a_policy_deny_never_reaches_the_network_and_an_unreachable_registry_is_unavailable() {
    // Nothing listens on port 1 of this machine: the verification can
    // only fail to reach the registry.
    let engine = Arc::new(Engine::new(policy(VERIFY), None, None));
    let observed = std::sync::Mutex::new(Vec::new());
    let observe = |o| observed.lock().unwrap().push(o);
    let request = Request::Review(Api::ImageReview);
    let denied = engine
        .decide(request, image_review("evil.example/signed/app:1"), &observe)
        .await
        .unwrap();
    let Answer::Reviewed(denied) = denied else {
        panic!()
    };
    assert!(!denied.outcome.allowed);
    assert!(observed.lock().unwrap().is_empty());
    let waited = engine
        .decide(request, image_review("127.0.0.1:1/signed/app:1"), &observe)
        .await
        .unwrap();
    let Answer::Reviewed(waited) = waited else {
        panic!()
    };
    assert!(!waited.outcome.allowed);
    assert_eq!(
        waited.outcome.reasons,
        [crate::policy::Reason::VerificationUnavailable]
    );
    assert_eq!(*observed.lock().unwrap(), [Outcome::Unavailable]);
}

#[tokio::test]
async fn mutate_needs_an_admission_review() {
    let engine = Arc::new(Engine::new(policy(""), None, None));
    let err = engine
        .decide(
            Request::Mutate,
            image_review("registry.example/a:1"),
            |_| {},
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("admission.k8s.io/v1"), "{err}");
}
