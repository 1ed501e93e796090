//! Golden fixtures: apiserver-shaped ImageReview and AdmissionReview bodies
//! (tests/fixtures/review/, one file per case) in, full response JSON out.
//!
//! Denial texts are the policy's own sentences (`Decision::explain`), so the
//! expected values are computed from the policy for the images the review
//! must name, in the order it must name them.

use crate::support::cases::only;
use imagegate::policy::{Context, Mode, Reason, Snapshot};
use imagegate::review::{self, Api, Reviewed};
use serde_json::{Value, json};

const GENERATION: u64 = 7;

/// registry.example.com and Docker Hub official images; tags required,
/// `latest` forbidden; break-glass honoured in `team-*`.
const POLICY: &str = r#"
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
spec:
  registries:
    allow: [registry.example.com, docker.io/library]
  tags:
    requireTagOrDigest: true
    forbid: [latest]
  breakGlass:
    enabled: true
    namespaces: ["team-*"]
"#;

/// As [`POLICY`], but the migrate image (every workload's init container)
/// is denied, to prove each kind's init containers are read.
const NO_MIGRATE: &str = r#"
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
spec:
  registries:
    allow: [registry.example.com]
    deny: [registry.example.com/shop/migrate]
"#;

const AUDIT: &str = r#"
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
spec:
  mode: audit
  registries:
    allow: [registry.example.com]
  tags:
    forbid: [latest]
"#;

const WEB: &str = "registry.example.com/shop/web:1.4.2";
const MIGRATE: &str = "registry.example.com/shop/migrate:1.4.2";
const EVIL: &str = "evil.example.net/miner:1.0";

fn policy(yaml: &str) -> Snapshot {
    imagegate::load::compile(yaml)
        .unwrap_or_else(|e| panic!("test policy: {e}"))
        .with_generation(GENERATION)
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/review/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn image_review(name: &str, snapshot: &Snapshot) -> (Value, Reviewed) {
    let mut body = fixture(name);
    let reviewed =
        review::image_review(&mut body, snapshot).unwrap_or_else(|e| panic!("{name}: {e}"));
    (parse(&reviewed), reviewed)
}

fn admission_review(name: &str, snapshot: &Snapshot) -> (Value, Reviewed) {
    let mut body = fixture(name);
    let reviewed =
        review::admission_review(&mut body, snapshot).unwrap_or_else(|e| panic!("{name}: {e}"));
    (parse(&reviewed), reviewed)
}

fn parse(reviewed: &Reviewed) -> Value {
    serde_json::from_slice(&reviewed.body).unwrap_or_else(|e| {
        panic!(
            "response is not JSON ({e}): {}",
            String::from_utf8_lossy(&reviewed.body)
        )
    })
}

/// The policy's sentence for `image` in `namespace`.
fn explain(
    snapshot: &Snapshot,
    namespace: &str,
    annotations: &[(&str, &str)],
    image: &str,
) -> String {
    let scope = snapshot.scope(&Context {
        namespace,
        annotations,
        user: None,
    });
    let decision = scope.evaluate(image);
    decision.explain(image).to_string()
}

fn generation_only() -> Value {
    json!({"policy-generation": GENERATION.to_string()})
}

// ---------------------------------------------------------------- ImageReview

/// The upstream documentation's example: its digest has 63 hex digits, so
/// that image is not a valid reference either.
const SHORT_DIGEST: &str =
    "myrepo/myimage@sha256:beb6bd6a68f114c1dc2ea4b28db81bdf91de202a9014972bec5e4d9171d90ed";

#[test]
fn imagereview_pod_create_names_every_denied_image() {
    let snapshot = Snapshot::builtin().with_generation(GENERATION);
    let (got, reviewed) = image_review("imagereview-pod-create.json", &snapshot);
    let annotations = [("mycluster.image-policy.k8s.io/ticket-1234", "break-glass")];
    let reason = format!(
        "{}; {}",
        explain(&snapshot, "mynamespace", &annotations, SHORT_DIGEST),
        explain(&snapshot, "mynamespace", &annotations, "busybox")
    );
    assert_eq!(
        got,
        json!({
            "apiVersion": "imagepolicy.k8s.io/v1alpha1",
            "kind": "ImageReview",
            "status": {
                "allowed": false,
                "reason": reason,
                "auditAnnotations": generation_only(),
            }
        })
    );
    let outcome = reviewed.outcome;
    assert_eq!(outcome.api, Api::ImageReview);
    assert!(!outcome.allowed);
    assert_eq!(outcome.mode, Mode::Enforce);
    assert_eq!(
        outcome.reasons,
        [
            Reason::Allowed,
            Reason::InvalidReference,
            Reason::TagMissing
        ]
    );
    assert_eq!(outcome.namespace, "mynamespace");
    assert_eq!(
        outcome.denied,
        [
            (SHORT_DIGEST.to_owned(), Reason::InvalidReference),
            ("busybox".to_owned(), Reason::TagMissing)
        ]
    );
}

#[test]
fn imagereview_containers_and_init_containers_allowed() {
    let (got, reviewed) = image_review("imagereview-init-containers.json", &policy(POLICY));
    assert_eq!(
        got,
        json!({
            "apiVersion": "imagepolicy.k8s.io/v1alpha1",
            "kind": "ImageReview",
            "status": {"allowed": true, "auditAnnotations": generation_only()}
        })
    );
    assert_eq!(reviewed.outcome.reasons, [Reason::Allowed; 3]);
    assert!(reviewed.outcome.denied.is_empty());
}

#[test]
fn imagereview_ephemeral_container_call_is_judged() {
    let snapshot = policy(POLICY);
    let (got, reviewed) = image_review("imagereview-ephemeral.json", &snapshot);
    assert_eq!(got["status"]["allowed"], json!(false));
    assert_eq!(
        got["status"]["reason"],
        json!(explain(&snapshot, "shop", &[], "busybox:latest"))
    );
    assert_eq!(
        reviewed.outcome.reasons,
        [Reason::Allowed, Reason::TagForbidden]
    );
}

#[test]
fn imagereview_empty_image_is_a_deny_not_an_error() {
    let snapshot = policy(POLICY);
    let (got, reviewed) = image_review("imagereview-empty-image.json", &snapshot);
    assert_eq!(
        got,
        json!({
            "apiVersion": "imagepolicy.k8s.io/v1alpha1",
            "kind": "ImageReview",
            "status": {
                "allowed": false,
                "reason": explain(&snapshot, "shop", &[], ""),
                "auditAnnotations": generation_only(),
            }
        })
    );
    assert_eq!(
        reviewed.outcome.reasons,
        [Reason::Allowed, Reason::InvalidReference]
    );
    assert_eq!(
        reviewed.outcome.denied,
        [(String::new(), Reason::InvalidReference)]
    );
}

#[test]
fn imagereview_annotations_reach_the_policy() {
    // The break-glass annotation admits the forbidden tag in team-a...
    let snapshot = policy(POLICY);
    let (got, reviewed) = image_review("imagereview-annotations.json", &snapshot);
    assert_eq!(
        got,
        json!({
            "apiVersion": "imagepolicy.k8s.io/v1alpha1",
            "kind": "ImageReview",
            "status": {
                "allowed": true,
                "auditAnnotations": {
                    "policy-generation": "7",
                    "break-glass": "\"docker.io/library/nginx:latest\"",
                }
            }
        })
    );
    assert_eq!(
        reviewed.outcome.reasons,
        [Reason::Allowed, Reason::BreakGlass]
    );
    assert_eq!(reviewed.outcome.namespace, "team-a");

    // ...and without break-glass in the policy the same body is denied.
    let strict = policy(&POLICY.replace("enabled: true", "enabled: false"));
    let (got, _) = image_review("imagereview-annotations.json", &strict);
    assert_eq!(got["status"]["allowed"], json!(false));
}

#[test]
fn imagereview_without_containers_has_no_images() {
    let (got, reviewed) = image_review("imagereview-no-containers.json", &policy(POLICY));
    assert_eq!(
        got["status"],
        json!({"allowed": true, "auditAnnotations": generation_only()})
    );
    assert!(reviewed.outcome.reasons.is_empty());
    assert_eq!(reviewed.outcome.namespace, "shop");
}

#[test]
fn imagereview_bypass_in_the_last_entry_is_denied() {
    let snapshot = policy(POLICY);
    let (got, reviewed) = image_review("imagereview-bypass-init.json", &snapshot);
    assert_eq!(got["status"]["allowed"], json!(false));
    assert_eq!(
        got["status"]["reason"],
        json!(explain(&snapshot, "shop", &[], EVIL))
    );
    assert_eq!(
        reviewed.outcome.denied,
        [(EVIL.to_owned(), Reason::RegistryNotAllowed)]
    );
}

// ----------------------------------------------------------- AdmissionReview

fn allowed(api_version: &str, uid: &str) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "response": {"uid": uid, "allowed": true, "auditAnnotations": generation_only()}
    })
}

fn denied(api_version: &str, uid: &str, message: &str) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "response": {
            "uid": uid,
            "allowed": false,
            "status": {"status": "Failure", "code": 403, "reason": "Forbidden", "message": message},
            "auditAnnotations": generation_only(),
        }
    })
}

#[test]
fn admission_v1_pod_create_allowed() {
    let (got, reviewed) = admission_review("admission-v1-pod-create.json", &policy(POLICY));
    assert_eq!(
        got,
        allowed(
            "admission.k8s.io/v1",
            "705ab4f5-6393-11e8-b7cc-42010a800002"
        )
    );
    let outcome = reviewed.outcome;
    assert_eq!(outcome.api, Api::AdmissionReview);
    assert!(outcome.allowed);
    assert_eq!(outcome.reasons, [Reason::Allowed]);
    assert_eq!(outcome.namespace, "shop");
}

#[test]
fn admission_v1beta1_is_answered_in_v1beta1() {
    let (got, _) = admission_review("admission-v1beta1-pod-create.json", &policy(POLICY));
    assert_eq!(
        got,
        allowed(
            "admission.k8s.io/v1beta1",
            "9e4f1d2a-0b3c-4d5e-8f60-7a8b9c0d1e2f"
        )
    );

    let snapshot = policy(NO_MIGRATE.replace("shop/migrate", "shop/web").as_str());
    let (got, _) = admission_review("admission-v1beta1-pod-create.json", &snapshot);
    let message = explain(&snapshot, "shop", &[], WEB);
    assert_eq!(
        got,
        denied(
            "admission.k8s.io/v1beta1",
            "9e4f1d2a-0b3c-4d5e-8f60-7a8b9c0d1e2f",
            &message
        )
    );
}

#[test]
fn admission_pod_ephemeralcontainers_subresource_is_judged() {
    let (got, reviewed) =
        admission_review("admission-v1-pod-ephemeralcontainers.json", &policy(POLICY));
    assert_eq!(
        got,
        allowed(
            "admission.k8s.io/v1",
            "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"
        )
    );
    // containers, then ephemeral containers
    assert_eq!(reviewed.outcome.reasons, [Reason::Allowed, Reason::Allowed]);
}

const WORKLOADS: &[(&str, &str)] = &[
    (
        "admission-v1-deployment.json",
        "1a2b3c4d-0001-4000-8000-000000000001",
    ),
    (
        "admission-v1-replicaset.json",
        "1a2b3c4d-0002-4000-8000-000000000002",
    ),
    (
        "admission-v1-statefulset.json",
        "1a2b3c4d-0003-4000-8000-000000000003",
    ),
    (
        "admission-v1-daemonset.json",
        "1a2b3c4d-0004-4000-8000-000000000004",
    ),
    (
        "admission-v1-job.json",
        "1a2b3c4d-0005-4000-8000-000000000005",
    ),
    (
        "admission-v1-cronjob.json",
        "1a2b3c4d-0006-4000-8000-000000000006",
    ),
    (
        "admission-v1-replicationcontroller.json",
        "1a2b3c4d-0007-4000-8000-000000000007",
    ),
    (
        "admission-v1-podtemplate.json",
        "1a2b3c4d-0008-4000-8000-000000000008",
    ),
];

#[test]
fn admission_every_workload_template_allowed() {
    for (name, uid) in only("workloads", WORKLOADS.to_vec(), |c| c.0) {
        let (got, reviewed) = admission_review(name, &policy(POLICY));
        assert_eq!(got, allowed("admission.k8s.io/v1", uid), "{name}");
        // web and sidecar, then the migrate init container
        assert_eq!(reviewed.outcome.reasons, [Reason::Allowed; 3], "{name}");
        assert_eq!(reviewed.outcome.namespace, "shop", "{name}");
    }
}

#[test]
fn admission_every_workload_template_init_container_denied() {
    let snapshot = policy(NO_MIGRATE);
    for (name, uid) in only("workloads", WORKLOADS.to_vec(), |c| c.0) {
        let (got, reviewed) = admission_review(name, &snapshot);
        let message = explain(&snapshot, "shop", &[], MIGRATE);
        assert_eq!(got, denied("admission.k8s.io/v1", uid, &message), "{name}");
        assert_eq!(
            reviewed.outcome.reasons,
            [Reason::Allowed, Reason::Allowed, Reason::RegistryDenied],
            "{name}"
        );
        assert_eq!(
            reviewed.outcome.denied,
            [(MIGRATE.to_owned(), Reason::RegistryDenied)]
        );
    }
}

#[test]
fn admission_bypass_through_every_container_kind_is_denied() {
    let snapshot = policy(POLICY);
    for name in [
        "admission-v1-pod-bypass-init.json",
        "admission-v1-pod-bypass-ephemeral.json",
        "admission-v1-deployment-bypass-init.json",
        "admission-v1-cronjob-bypass-init.json",
    ] {
        let (got, reviewed) = admission_review(name, &snapshot);
        let response = &got["response"];
        assert_eq!(response["allowed"], json!(false), "{name}");
        assert_eq!(
            response["status"]["message"],
            json!(explain(&snapshot, "shop", &[], EVIL)),
            "{name}"
        );
        assert_eq!(response["status"]["code"], json!(403), "{name}");
        assert!(!reviewed.outcome.allowed, "{name}");
        assert_eq!(
            reviewed.outcome.denied,
            [(EVIL.to_owned(), Reason::RegistryNotAllowed)],
            "{name}"
        );
    }
}

#[test]
fn admission_delete_is_allowed_without_looking() {
    // oldObject holds busybox, which the built-in policy denies.
    let snapshot = Snapshot::builtin().with_generation(GENERATION);
    let (got, reviewed) = admission_review("admission-v1-pod-delete.json", &snapshot);
    assert_eq!(
        got,
        allowed(
            "admission.k8s.io/v1",
            "2b3c4d5e-0003-4000-8000-000000000003"
        )
    );
    assert!(reviewed.outcome.reasons.is_empty());
    assert_eq!(reviewed.outcome.namespace, "shop");
}

#[test]
fn admission_pod_status_update_is_not_judged() {
    let snapshot = Snapshot::builtin().with_generation(GENERATION);
    let (got, reviewed) = admission_review("admission-v1-pod-status.json", &snapshot);
    assert_eq!(
        got,
        allowed(
            "admission.k8s.io/v1",
            "2b3c4d5e-0004-4000-8000-000000000004"
        )
    );
    assert!(reviewed.outcome.reasons.is_empty());
}

#[test]
fn admission_configmap_has_no_images() {
    let snapshot = Snapshot::builtin().with_generation(GENERATION);
    let (got, reviewed) = admission_review("admission-v1-configmap.json", &snapshot);
    assert_eq!(
        got,
        allowed(
            "admission.k8s.io/v1",
            "3c4d5e6f-0001-4000-8000-000000000001"
        )
    );
    assert!(reviewed.outcome.reasons.is_empty());
}

#[test]
fn admission_workloads_use_the_pod_template_annotations() {
    let snapshot = policy(POLICY);
    let (got, reviewed) = admission_review("admission-v1-deployment-break-glass.json", &snapshot);
    assert_eq!(
        got,
        json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {
                "uid": "1a2b3c4d-0001-4000-8000-000000000011",
                "allowed": true,
                "auditAnnotations": {
                    "policy-generation": "7",
                    "break-glass": format!("{EVIL:?}"),
                }
            }
        })
    );
    assert_eq!(
        reviewed.outcome.reasons,
        [Reason::Allowed, Reason::Allowed, Reason::BreakGlass]
    );
    // A break-glass verdict is an allow: nothing for the deny log.
    assert!(reviewed.outcome.denied.is_empty());

    // The same annotation on the Deployment itself does not reach the pods.
    let (got, _) = admission_review(
        "admission-v1-deployment-glass-on-deployment.json",
        &snapshot,
    );
    assert_eq!(got["response"]["allowed"], json!(false));
}

#[test]
fn admission_audit_mode_allows_and_reports() {
    let snapshot = policy(AUDIT);
    let (got, reviewed) = admission_review("admission-v1-pod-bypass-init.json", &snapshot);
    let would = explain(&snapshot, "shop", &[], EVIL);
    assert!(would.contains(EVIL), "{would}");
    assert_eq!(
        got,
        json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {
                "uid": "2b3c4d5e-0001-4000-8000-000000000001",
                "allowed": true,
                "warnings": [would],
                "auditAnnotations": {"policy-generation": "7", "audit-would-deny": would},
            }
        })
    );
    let outcome = reviewed.outcome;
    assert!(outcome.allowed);
    assert_eq!(outcome.mode, Mode::Audit);
    // The verdict reason stays a deny reason, and the deny log has the image.
    assert_eq!(
        outcome.reasons,
        [Reason::Allowed, Reason::RegistryNotAllowed]
    );
    assert_eq!(
        outcome.denied,
        [(EVIL.to_owned(), Reason::RegistryNotAllowed)]
    );

    // ImageReview: the same, in auditAnnotations only.
    let (got, _) = image_review("imagereview-bypass-init.json", &snapshot);
    assert_eq!(
        got["status"],
        json!({"allowed": true, "auditAnnotations": {"policy-generation": "7", "audit-would-deny": would}})
    );
}

const PINNED: &str = "registry.example.com/shop/web:latest@sha256:beb6bd6a68f114c1dc2ea4b28db81bdf91de202a9014972bec5e4d9171d90ed0";

#[test]
fn forbidden_tag_next_to_a_digest_is_a_warning() {
    let snapshot = policy(POLICY);
    let warning = explain(&snapshot, "shop", &[], PINNED);

    let mut body = fixture("admission-v1-pod-create.json");
    let text = String::from_utf8(body.clone())
        .unwrap()
        .replace(WEB, PINNED);
    body = text.into_bytes();
    let reviewed = review::admission_review(&mut body, &snapshot).unwrap();
    let got = parse(&reviewed);
    let response = &got["response"];
    assert_eq!(response["allowed"], json!(true));
    assert_eq!(response["warnings"], json!([warning]));
    assert_eq!(
        response["auditAnnotations"],
        json!({"policy-generation": "7", "warnings": warning})
    );
    assert!(response.get("status").is_none());

    let mut body = fixture("imagereview-init-containers.json");
    let text = String::from_utf8(body.clone())
        .unwrap()
        .replace(WEB, PINNED);
    body = text.into_bytes();
    let got = parse(&review::image_review(&mut body, &snapshot).unwrap());
    assert_eq!(
        got["status"],
        json!({"allowed": true, "auditAnnotations": {"policy-generation": "7", "warnings": warning}})
    );
}

#[test]
fn every_denied_image_is_named_once_in_order() {
    let snapshot = Snapshot::builtin();
    let mut body = br#"{"apiVersion":"imagepolicy.k8s.io/v1alpha1","kind":"ImageReview","spec":{"containers":[
        {"image":"busybox"},{"image":"nginx:1.27"},{"image":"redis:latest"},{"image":"busybox"},{"image":"a b"}]}}"#
        .to_vec();
    let reviewed = review::image_review(&mut body, &snapshot).unwrap();
    let got = parse(&reviewed);
    let expected = ["busybox", "redis:latest", "a b"]
        .map(|image| explain(&snapshot, "", &[], image))
        .join("; ");
    assert_eq!(got["status"]["reason"], json!(expected));
    assert_eq!(
        reviewed.outcome.reasons,
        [
            Reason::TagMissing,
            Reason::Allowed,
            Reason::TagForbidden,
            Reason::TagMissing,
            Reason::InvalidReference
        ]
    );
    // The deny log keeps every occurrence.
    assert_eq!(reviewed.outcome.denied.len(), 4);
}

#[test]
fn object_before_request_kind_is_still_judged() {
    // Go writes request.kind before request.object; a body in the other
    // order takes the second walk and must reach the same verdict.
    let snapshot = Snapshot::builtin();
    let mut body =
        br#"{"request":{"object":{"metadata":{"namespace":"ns1","annotations":{"a":"b"}},
        "spec":{"containers":[{"image":"nginx:1.27"}],"initContainers":[{"image":"busybox"}]}},
        "operation":"CREATE","uid":"u-1","kind":{"group":"","version":"v1","kind":"Pod"}},
        "kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1"}"#
            .to_vec();
    let reviewed = review::admission_review(&mut body, &snapshot).unwrap();
    let got = parse(&reviewed);
    assert_eq!(got["response"]["allowed"], json!(false));
    assert_eq!(got["response"]["uid"], json!("u-1"));
    assert_eq!(
        reviewed.outcome.reasons,
        [Reason::Allowed, Reason::TagMissing]
    );
    // request.namespace is absent: the object's namespace is used.
    assert_eq!(reviewed.outcome.namespace, "ns1");
}

#[test]
fn escaped_json_strings_are_read_unescaped() {
    // `\/` and `\u0061` are the same characters to the apiserver.
    let snapshot = policy(POLICY);
    let mut body = br#"{"apiVersion":"imagepolicy.k8s.io\/v1alpha1","kind":"ImageReview","spec":{"containers":[
        {"im\u0061ge":"registry.example.com\/shop\/web:1.4.2"}],"namespace":"sh\u006fp"}}"#
        .to_vec();
    let reviewed = review::image_review(&mut body, &snapshot).unwrap();
    assert_eq!(reviewed.outcome.reasons, [Reason::Allowed]);
    assert_eq!(reviewed.outcome.namespace, "shop");
}

#[test]
fn hostile_image_strings_come_out_as_valid_json() {
    let snapshot = Snapshot::builtin();
    for image in [
        r#"quote\"d:1"#,
        r#"back\\slash:1"#,
        r#"ctl\u0000\u0001\u001f\n\r\t:1"#,
        r#"uni\u2028\ud83d\ude00é:1"#,
        r#"</script><b>:1"#,
    ] {
        let mut body = format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"{image}","kind":{{"group":"","version":"v1","kind":"Pod"}},"operation":"CREATE","object":{{"spec":{{"containers":[{{"image":"{image}"}}]}}}}}}}}"#
        )
        .into_bytes();
        let raw: Value = serde_json::from_slice(&body).unwrap();
        let judged = raw["request"]["object"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap()
            .to_owned();
        let reviewed = review::admission_review(&mut body, &snapshot).unwrap();
        let got = parse(&reviewed);
        assert_eq!(got["response"]["uid"], json!(judged), "uid echoed exactly");
        assert_eq!(got["response"]["allowed"], json!(false));
        assert_eq!(
            got["response"]["status"]["message"],
            json!(explain(&snapshot, "", &[], &judged))
        );
        assert_eq!(
            reviewed.outcome.denied,
            [(judged.clone(), Reason::InvalidReference)]
        );
    }
}
