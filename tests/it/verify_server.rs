//! Supply-chain verification through the server's handler and the CLI,
//! against a real registry (Debian's `docker-registry`) holding the
//! committed, independently signed fixtures: signed images allowed,
//! unsigned denied with `signature_missing`, a registry that is down
//! denied with `verification_unavailable` (or admitted under
//! `onError: allow`), `/mutate` pinning digests, a reload that changes
//! keys, and `imagegate check` run as a program.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use crate::support::registry::{
    Fixtures, HTPASSWD_PASSWORD, HTPASSWD_USER, Options, RegistryProcess, populated, registry,
};
use crate::support::server::{app_for, app_metrics, app_post};
use base64::Engine as _;
use http::StatusCode;
use serde_json::{Value, json};

const KEY: &str = "tests/fixtures/verify/keys/cosign.pub";
const OTHER_KEY: &str = "tests/fixtures/verify/keys/other.pub";

fn policy(addr: &str, key: &str, extra: &str) -> String {
    format!(
        "apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nspec:\n  verify:\n    - images: [\"{addr}/**\"]\n      keys:\n        - file: {key}\n      require:\n        signature: true\n  registries:\n    insecure: [\"{addr}\"]\n  verification:\n    timeout: 3s\n{extra}"
    )
}

fn image_review(images: &[&str]) -> Value {
    let containers: Vec<Value> = images.iter().map(|i| json!({ "image": i })).collect();
    json!({"apiVersion": "imagepolicy.k8s.io/v1alpha1", "kind": "ImageReview",
        "spec": {"containers": containers, "namespace": "shop"}})
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).map(|v| v.trim().parse().unwrap()))
        .unwrap_or_else(|| panic!("{series} not in\n{text}"))
}

#[cfg_attr(
    not(have_docker_registry),
    ignore = "needs /usr/bin/docker-registry (apt-get install docker-registry)"
)]
#[tokio::test]
async fn image_reviews_are_verified_at_the_registry() {
    let reg = registry!("image_reviews_are_verified_at_the_registry");
    populated(&reg).await;
    let app = app_for(&policy(&reg.addr, KEY, ""));
    let signed = format!("{}/fixtures/app:v1", reg.addr);
    let unsigned = format!("{}/fixtures/hello:v1", reg.addr);

    let (status, body) = app_post(&app, "/imagepolicy", &image_review(&[&signed])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"]["allowed"], true, "{body}");

    // an image no rule applies to is judged by the policy alone
    let (_, body) = app_post(&app, "/imagepolicy", &image_review(&["nginx:1.25"])).await;
    assert_eq!(body["status"]["allowed"], true, "{body}");

    let (_, body) = app_post(&app, "/imagepolicy", &image_review(&[&signed, &unsigned])).await;
    assert_eq!(body["status"]["allowed"], false, "{body}");
    let reason = body["status"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("hello:v1") && reason.contains("no cosign signature"),
        "{reason}"
    );
    assert!(!reason.contains("app:v1"), "{reason}");

    // a policy deny stays a deny and never reaches the registry
    let latest = format!("{}/fixtures/app", reg.addr);
    let policy_deny = "  tags:\n    forbid: [latest]\n";
    let strict = app_for(&policy(&reg.addr, KEY, policy_deny));
    let (_, body) = app_post(&strict, "/imagepolicy", &image_review(&[&latest])).await;
    assert_eq!(body["status"]["allowed"], false, "{body}");
    assert!(
        body["status"]["reason"]
            .as_str()
            .unwrap()
            .contains("latest"),
        "{body}"
    );
    let text = app_metrics(&strict).await;
    assert_eq!(
        metric(
            &text,
            "imagegate_registry_requests_total{operation=\"resolve\",status=\"2xx\"}"
        ),
        0.0
    );

    // the same checks over AdmissionReview
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u-1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "namespace": "shop", "operation": "CREATE",
            "object": {"metadata": {"namespace": "shop"},
                "spec": {"containers": [{"name": "a", "image": signed}, {"name": "b", "image": unsigned}]}}}});
    let (_, body) = app_post(&app, "/validate", &review).await;
    assert_eq!(body["response"]["allowed"], false, "{body}");
    assert_eq!(body["response"]["uid"], "u-1");

    let text = app_metrics(&app).await;
    let deny = "imagegate_image_decisions_total{decision=\"deny\",reason=\"signature_missing\"}";
    assert_eq!(metric(&text, deny), 2.0, "{text}");
    assert_eq!(
        metric(
            &text,
            "imagegate_verifications_total{kind=\"signature\",result=\"signature_missing\"}"
        ),
        2.0
    );
    assert!(
        metric(
            &text,
            "imagegate_registry_requests_total{operation=\"resolve\",status=\"2xx\"}"
        ) >= 2.0
    );
    assert!(
        metric(&text, "imagegate_verify_cache_total{result=\"hit\"}") >= 1.0,
        "{text}"
    );
    assert!(
        text.contains("imagegate_registry_request_duration_seconds_bucket{operation=\"manifest\"")
    );
}

#[tokio::test]
async fn a_registry_that_is_down_is_unavailable() {
    // a port with nothing listening
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let image = format!("{addr}/fixtures/app:v1");
    let closed = app_for(&policy(&addr, KEY, ""));
    let (_, body) = app_post(&closed, "/imagepolicy", &image_review(&[&image])).await;
    assert_eq!(body["status"]["allowed"], false, "{body}");
    let reason = body["status"]["reason"].as_str().unwrap();
    assert!(reason.contains("could not be verified"), "{reason}");
    let text = app_metrics(&closed).await;
    let series =
        "imagegate_image_decisions_total{decision=\"deny\",reason=\"verification_unavailable\"}";
    assert_eq!(metric(&text, series), 1.0);

    let open = app_for(&policy(&addr, KEY, "    onError: allow\n"));
    let (_, body) = app_post(&open, "/imagepolicy", &image_review(&[&image])).await;
    assert_eq!(body["status"]["allowed"], true, "{body}");
    let warnings = body["status"]["auditAnnotations"]["warnings"]
        .as_str()
        .unwrap_or("");
    assert!(warnings.contains("onError is allow"), "{body}");
    let text = app_metrics(&open).await;
    assert_eq!(metric(&text, series), 1.0, "the reason is still counted");
    assert_eq!(
        metric(
            &text,
            "imagegate_reviews_total{api=\"imagereview\",decision=\"allow\",mode=\"enforce\"}"
        ),
        1.0
    );
}

fn golden(name: &str, reg: &str, fx: &Fixtures) -> Value {
    let text = std::fs::read_to_string(format!("tests/fixtures/verify/mutate/{name}")).unwrap();
    serde_json::from_str(
        &text
            .replace("{REG}", reg)
            .replace("{APP}", &fx.app.to_string()),
    )
    .unwrap()
}

#[cfg_attr(
    not(have_docker_registry),
    ignore = "needs /usr/bin/docker-registry (apt-get install docker-registry)"
)]
#[tokio::test]
async fn mutate_pins_verified_tags_to_their_digest() {
    let reg = registry!("mutate_pins_verified_tags_to_their_digest");
    let fx = populated(&reg).await;
    let request = golden("deployment.request.json", &reg.addr, &fx);

    let pinning = app_for(&policy(&reg.addr, KEY, "  mutate:\n    pinDigests: true\n"));
    let (status, mut body) = app_post(&pinning, "/mutate", &request).await;
    assert_eq!(status, StatusCode::OK);
    let patch = base64::engine::general_purpose::STANDARD
        .decode(body["response"]["patch"].as_str().unwrap())
        .unwrap();
    body["response"]["patch"] = serde_json::from_slice(&patch).unwrap();
    assert_eq!(body, golden("deployment.expected.json", &reg.addr, &fx));

    let off = app_for(&policy(&reg.addr, KEY, ""));
    let (_, body) = app_post(&off, "/mutate", &request).await;
    assert_eq!(body, golden("deployment.off.expected.json", &reg.addr, &fx));
}

#[cfg_attr(
    not(have_docker_registry),
    ignore = "needs /usr/bin/docker-registry (apt-get install docker-registry)"
)]
#[tokio::test]
async fn a_reload_that_changes_keys_applies_at_once_and_keeps_the_cache() {
    let reg = registry!("a_reload_that_changes_keys_applies_at_once_and_keeps_the_cache");
    populated(&reg).await;
    let signed = format!("{}/fixtures/app:v1", reg.addr);
    let app = app_for(&policy(&reg.addr, KEY, ""));
    let (_, body) = app_post(&app, "/imagepolicy", &image_review(&[&signed])).await;
    assert_eq!(body["status"]["allowed"], true, "{body}");
    let before = Arc::clone(app.engine().verifier().unwrap());

    let other = imagegate::load::compile(&policy(&reg.addr, OTHER_KEY, "")).unwrap();
    app.swap_policy(other.with_generation(2));
    let (_, body) = app_post(&app, "/imagepolicy", &image_review(&[&signed])).await;
    assert_eq!(body["status"]["allowed"], false, "{body}");
    let reason = body["status"]["reason"].as_str().unwrap();
    assert!(reason.contains("none verifies"), "{reason}");
    let after = Arc::clone(app.engine().verifier().unwrap());
    assert!(
        Arc::ptr_eq(&before, &after),
        "same registry settings: the verifier survives"
    );

    // different registry settings: a new verifier
    let tuned = policy(&reg.addr, KEY, "    cache:\n      denyTtl: 1s\n");
    app.swap_policy(imagegate::load::compile(&tuned).unwrap().with_generation(3));
    assert!(!Arc::ptr_eq(&after, app.engine().verifier().unwrap()));
    let (_, body) = app_post(&app, "/imagepolicy", &image_review(&[&signed])).await;
    assert_eq!(body["status"]["allowed"], true, "{body}");
}

#[cfg_attr(
    not(have_docker_registry),
    ignore = "needs /usr/bin/docker-registry (apt-get install docker-registry)"
)]
#[tokio::test]
async fn check_verifies_like_the_server() {
    let reg = registry!("check_verifies_like_the_server");
    populated(&reg).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    let key = std::fs::canonicalize(KEY).unwrap();
    std::fs::write(&file, policy(&reg.addr, key.to_str().unwrap(), "")).unwrap();
    let run = |image: String| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_imagegate"))
            .arg("check")
            .arg("--policy")
            .arg(&file)
            .arg(image)
            .current_dir(dir.path())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = run(format!("{}/fixtures/app:v1", reg.addr));
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.starts_with("ALLOW") && out.contains("[allowed]"),
        "{out}"
    );
    let (code, out) = run(format!("{}/fixtures/hello:v1", reg.addr));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.starts_with("DENY") && out.contains("[signature_missing]"),
        "{out}"
    );
    assert!(out.contains("no cosign signature"), "{out}");
}

#[cfg_attr(
    not(have_docker_registry),
    ignore = "needs /usr/bin/docker-registry (apt-get install docker-registry)"
)]
#[tokio::test]
async fn private_ca_and_registry_credentials_from_the_policy() {
    let test = "private_ca_and_registry_credentials_from_the_policy";
    let open = registry!(test);
    let locked = RegistryProcess::start_with(
        test,
        &Options {
            tls: true,
            htpasswd: true,
            storage: Some(open.data.clone()),
        },
    )
    .expect(crate::support::registry::MISSING);
    populated(&open).await;
    let dir = tempfile::tempdir().unwrap();
    let auth_file = |name: &str, password: &str| {
        let auth =
            base64::engine::general_purpose::STANDARD.encode(format!("{HTPASSWD_USER}:{password}"));
        let path = dir.path().join(name);
        let text = json!({"auths": {locked.addr.clone(): {"auth": auth}}}).to_string();
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let policy = |ca: bool, auth: &str| {
        let ca = if ca {
            "    ca: tests/fixtures/tls/ca.pem\n"
        } else {
            ""
        };
        format!(
            "apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nspec:\n  verify:\n    - images: [\"{}/**\"]\n      keys:\n        - file: {KEY}\n  registries:\n{ca}    auth: {auth}\n  verification:\n    timeout: 3s\n",
            locked.addr
        )
    };
    let good = auth_file("good.json", HTPASSWD_PASSWORD);
    let bad = auth_file("bad.json", "wrong");
    let signed = format!("{}/fixtures/app:v1", locked.addr);
    let unsigned = format!("{}/fixtures/hello:v1", locked.addr);

    let ok = app_for(&policy(true, &good));
    let (_, body) = app_post(&ok, "/imagepolicy", &image_review(&[&signed])).await;
    assert_eq!(body["status"]["allowed"], true, "{body}");
    let (_, body) = app_post(&ok, "/imagepolicy", &image_review(&[&unsigned])).await;
    assert_eq!(body["status"]["allowed"], false, "{body}");
    assert!(
        body["status"]["reason"]
            .as_str()
            .unwrap()
            .contains("no cosign signature"),
        "{body}"
    );

    // a wrong password or an untrusted certificate: verification_unavailable
    for policy in [policy(true, &bad), policy(false, &good)] {
        let app = app_for(&policy);
        let (_, body) = app_post(&app, "/imagepolicy", &image_review(&[&signed])).await;
        assert_eq!(body["status"]["allowed"], false, "{body}");
        let reason = body["status"]["reason"].as_str().unwrap();
        assert!(reason.contains("could not be verified"), "{reason}");
        let series = "imagegate_image_decisions_total{decision=\"deny\",reason=\"verification_unavailable\"}";
        assert_eq!(metric(&app_metrics(&app).await, series), 1.0);
    }
}

/// Two rules apply to one image: the first resolves the tag, the second
/// verifies that very digest (`Verifier::verify_at`); the first definite
/// failure decides.
#[cfg_attr(
    not(have_docker_registry),
    ignore = "needs /usr/bin/docker-registry (apt-get install docker-registry)"
)]
#[tokio::test]
async fn every_rule_that_applies_is_checked_against_one_digest() {
    let reg = registry!("every_rule_that_applies_is_checked_against_one_digest");
    populated(&reg).await;
    let addr = &reg.addr;
    let two_rules = |second_key: &str| {
        format!(
            "apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nspec:\n  verify:\n    - images: [\"{addr}/**\"]\n      keys:\n        - file: {KEY}\n    - images: [\"{addr}/fixtures/**\"]\n      keys:\n        - file: {second_key}\n  registries:\n    insecure: [\"{addr}\"]\n  verification:\n    timeout: 3s\n"
        )
    };
    let signed = format!("{addr}/fixtures/app:v1");
    let unsigned = format!("{addr}/fixtures/hello:v1");

    let both = app_for(&two_rules(KEY));
    let (_, body) = app_post(&both, "/imagepolicy", &image_review(&[&signed])).await;
    assert_eq!(body["status"]["allowed"], true, "{body}");
    let (_, body) = app_post(&both, "/imagepolicy", &image_review(&[&unsigned])).await;
    assert_eq!(body["status"]["allowed"], false, "{body}");
    let reason = body["status"]["reason"].as_str().unwrap();
    assert!(reason.contains("no cosign signature"), "{reason}");

    // The second rule trusts another key: its check of the digest the
    // first rule resolved fails, and denies.
    let second_fails = app_for(&two_rules(OTHER_KEY));
    let (_, body) = app_post(&second_fails, "/imagepolicy", &image_review(&[&signed])).await;
    assert_eq!(body["status"]["allowed"], false, "{body}");
    let reason = body["status"]["reason"].as_str().unwrap();
    assert!(reason.contains("none verifies"), "{reason}");
}
