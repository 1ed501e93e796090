//! Regressions of the second hardening round (CONTRACT §9), each through
//! the public surface: HTTP for the server, the built binary for the CLI.
//! Every test here failed before its fix.

// In tests a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]
// Helpers take the JSON values they are given, as built in place.
#![allow(clippy::needless_pass_by_value)]

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::process::Serve;
use crate::support::registry::{populated, registry};
use crate::support::server::*;
use serde_json::{Value, json};

const KEY: &str = "tests/fixtures/verify/keys/cosign.pub";
const OTHER_KEY: &str = "tests/fixtures/verify/keys/other.pub";
const HEX64: &str = "4f3c9a0e1b2d3c4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f";

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_imagegate")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn policy_text(spec: &str) -> String {
    format!("apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nspec:\n{spec}")
}

/// A server on the policy `spec`, with its directory kept alive.
async fn serve(spec: &str) -> (Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "policy.yaml", &policy_text(spec));
    let server = start(config(&["--policy", path.to_str().unwrap()])).await;
    (server, dir)
}

async fn post_json(addr: SocketAddr, path: &str, body: &Value) -> Value {
    let (status, _, bytes) = once(addr, post(path, body.to_string())).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    serde_json::from_slice(&bytes).unwrap()
}

fn image_review_in(namespace: &str, images: &[&str], annotations: Value) -> Value {
    let containers: Vec<Value> = images.iter().map(|i| json!({ "image": i })).collect();
    json!({"apiVersion": "imagepolicy.k8s.io/v1alpha1", "kind": "ImageReview",
        "spec": {"containers": containers, "namespace": namespace, "annotations": annotations}})
}

/// An AdmissionReview of a CREATE of `object` (of `group`/`kind`).
fn admission(group: &str, kind: &str, namespace: &str, user: Value, object: Value) -> Value {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u-1", "kind": {"group": group, "version": "v1", "kind": kind},
            "namespace": namespace, "operation": "CREATE", "userInfo": user, "object": object}})
}

fn pod(spec: Value, annotations: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "annotations": annotations}, "spec": spec})
}

/// Runs the binary with `args`; (exit code, stdout, stderr).
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(binary())
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("IMAGEGATE_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// ------------------------------------------------------------ 1. image IDs

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_image_ids_are_invalid_references_even_in_exempt_namespaces() {
    let (server, _dir) = serve(
        "  registries:\n    allow: [\"docker.io/library/**\"]\n  exemptions:\n    namespaces: [kube-system]\n",
    )
    .await;
    let ids = [
        format!("sha256:{HEX64}"),
        "sha256:4f3c9a".to_owned(),
        "sha256:4".to_owned(),
        format!("sha512:{}", "c".repeat(128)),
        "sha384:abc".to_owned(),
        format!("sha256:4f3c@sha256:{HEX64}"),
    ];
    for id in &ids {
        for namespace in ["default", "kube-system"] {
            let body = image_review_in(namespace, &[id], json!({}));
            let v = post_json(server.addr, "/imagepolicy", &body).await;
            assert_eq!(v["status"]["allowed"], false, "{id} in {namespace}: {v}");
            let reason = v["status"]["reason"].as_str().unwrap();
            assert!(reason.contains("local image ID"), "{reason}");

            let object = pod(
                json!({"containers": [{"name": "c", "image": id}]}),
                json!({}),
            );
            let v = post_json(
                server.addr,
                "/validate",
                &admission("", "Pod", namespace, json!({"username": "u"}), object),
            )
            .await;
            assert_eq!(v["response"]["allowed"], false, "{id} in {namespace}: {v}");
        }
        let (code, out, _) = run(&["check", "--namespace", "kube-system", id]);
        assert_eq!(code, Some(1), "{out}");
        assert!(out.contains("[invalid_reference]"), "{out}");
    }
    // A name that only looks alike is still a name.
    let v = post_json(
        server.addr,
        "/imagepolicy",
        &image_review_in("default", &["library/sha256:4f3c"], json!({})),
    )
    .await;
    assert_eq!(v["status"]["allowed"], true, "{v}");
    server.stop().await;
}

// ------------------------------------------------------- 2. image volumes

/// Every pod-bearing kind, with `spec` as its pod spec.
fn every_kind(spec: &Value) -> Vec<(&'static str, &'static str, Value)> {
    let template = json!({"metadata": {}, "spec": spec});
    vec![
        ("", "Pod", pod(spec.clone(), json!({}))),
        (
            "apps",
            "Deployment",
            json!({"spec": {"template": template}}),
        ),
        (
            "apps",
            "ReplicaSet",
            json!({"spec": {"template": template}}),
        ),
        (
            "apps",
            "StatefulSet",
            json!({"spec": {"template": template}}),
        ),
        ("apps", "DaemonSet", json!({"spec": {"template": template}})),
        ("batch", "Job", json!({"spec": {"template": template}})),
        (
            "batch",
            "CronJob",
            json!({"spec": {"jobTemplate": {"spec": {"template": template}}}}),
        ),
        (
            "",
            "ReplicationController",
            json!({"spec": {"template": template}}),
        ),
        ("", "PodTemplate", json!({"template": template})),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_volumes_are_judged_in_every_pod_bearing_kind() {
    let (server, _dir) = serve("  registries:\n    deny: [evil.example.com]\n").await;
    let spec = json!({
        "containers": [{"name": "app", "image": "nginx:1.27"}],
        "volumes": [
            {"name": "cfg", "configMap": {"name": "x"}},
            {"name": "tools", "image": {"reference": "evil.example.com/tools:1", "pullPolicy": "IfNotPresent"}}
        ]
    });
    for (group, kind, object) in every_kind(&spec) {
        let v = post_json(
            server.addr,
            "/validate",
            &admission(group, kind, "prod", json!({"username": "u"}), object),
        )
        .await;
        assert_eq!(v["response"]["allowed"], false, "{kind}: {v}");
        let message = v["response"]["status"]["message"].as_str().unwrap();
        assert!(
            message.contains("image volume \"tools\"")
                && message.contains("evil.example.com/tools:1"),
            "{kind}: {message}"
        );
    }
    // An image volume without a reference is an empty image: denied.
    let spec = json!({"containers": [{"name": "app", "image": "nginx:1.27"}],
        "volumes": [{"name": "v", "image": {}}]});
    let v = post_json(
        server.addr,
        "/validate",
        &admission("", "Pod", "prod", json!({}), pod(spec, json!({}))),
    )
    .await;
    assert_eq!(v["response"]["allowed"], false, "{v}");
    // Other volumes alone change nothing.
    let spec = json!({"containers": [{"name": "app", "image": "nginx:1.27"}],
        "volumes": [{"name": "cfg", "configMap": {"name": "x"}}]});
    let v = post_json(
        server.addr,
        "/validate",
        &admission("", "Pod", "prod", json!({}), pod(spec, json!({}))),
    )
    .await;
    assert_eq!(v["response"]["allowed"], true, "{v}");
    server.stop().await;
}

fn verify_spec(addr: &str, key: &str, extra: &str) -> String {
    format!(
        "  verify:\n    - images: [\"{addr}/**\"]\n      keys:\n        - file: {key}\n      require:\n        signature: true\n  registries:\n    insecure: [\"{addr}\"]\n  verification:\n    timeout: 3s\n{extra}"
    )
}

#[cfg_attr(
    not(have_docker_registry),
    ignore = "needs /usr/bin/docker-registry (apt-get install docker-registry)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_volumes_are_verified_and_pinned() {
    let reg = registry!("image_volumes_are_verified_and_pinned");
    let fx = populated(&reg).await;
    let key = std::fs::canonicalize(KEY).unwrap();
    let (server, _dir) = serve(&verify_spec(
        &reg.addr,
        key.to_str().unwrap(),
        "  mutate:\n    pinDigests: true\n",
    ))
    .await;
    let app = format!("{}/fixtures/app:v1", reg.addr);
    let hello = format!("{}/fixtures/hello:v1", reg.addr);
    let spec = |volume: &str| {
        json!({"containers": [{"name": "c", "image": app}],
            "volumes": [{"name": "data", "image": {"reference": volume}}]})
    };
    // An unsigned image volume denies the pod, naming the volume.
    let review = admission("", "Pod", "shop", json!({}), pod(spec(&hello), json!({})));
    let v = post_json(server.addr, "/validate", &review).await;
    assert_eq!(v["response"]["allowed"], false, "{v}");
    let message = v["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("image volume \"data\"") && message.contains("no cosign signature"),
        "{message}"
    );
    // A signed one is allowed, and /mutate pins it like a container image.
    let review = admission("", "Pod", "shop", json!({}), pod(spec(&app), json!({})));
    let v = post_json(server.addr, "/validate", &review).await;
    assert_eq!(v["response"]["allowed"], true, "{v}");
    let v = post_json(server.addr, "/mutate", &review).await;
    use base64::Engine as _;
    let patch = base64::engine::general_purpose::STANDARD
        .decode(v["response"]["patch"].as_str().unwrap())
        .unwrap();
    let patch: Value = serde_json::from_slice(&patch).unwrap();
    let pinned = format!("{app}@{}", fx.app);
    assert_eq!(
        patch,
        json!([
            {"op": "replace", "path": "/spec/containers/0/image", "value": pinned},
            {"op": "replace", "path": "/spec/volumes/0/image/reference", "value": pinned},
        ])
    );
    server.stop().await;
}

// ------------------------------------------------------ 3. Docker Hub hosts

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_docker_hub_host_is_denied_by_a_docker_io_deny() {
    let (server, _dir) = serve("  registries:\n    deny: [docker.io]\n").await;
    for image in [
        "registry.hub.docker.com/library/nginx:1.27",
        "registry.hub.docker.com/nginx:1.27",
        "Registry.Hub.Docker.Com:443/bitnami/redis:7",
        "registry-1.docker.io/library/nginx:1.27",
        "index.docker.io/library/nginx:1.27",
        "nginx:1.27",
    ] {
        let v = post_json(
            server.addr,
            "/imagepolicy",
            &image_review_in("default", &[image], json!({})),
        )
        .await;
        assert_eq!(v["status"]["allowed"], false, "{image}: {v}");
        let reason = v["status"]["reason"].as_str().unwrap();
        assert!(reason.contains("\"docker.io\""), "{image}: {reason}");
    }
    server.stop().await;
}

// ----------------------------------------------- 4. match-everything traps

#[test]
fn a_wildcard_first_component_is_a_located_policy_error() {
    let dir = tempfile::tempdir().unwrap();
    for (pattern, column) in [("\"**\"", 12), ("\"*\"", 12), ("\"*/app\"", 12)] {
        let text = policy_text(&format!("  registries:\n    deny: [{pattern}]\n"));
        let path = write(dir.path(), "p.yaml", &text);
        let (code, _, err) = run(&["policy", "validate", path.to_str().unwrap()]);
        assert_eq!(code, Some(2), "{pattern}: {err}");
        let at = format!("{}:5:{column}:", path.display());
        assert!(err.contains(&at), "{pattern}: {err}");
        assert!(
            err.contains("ambiguous") && err.contains("\"docker.io/**\""),
            "{err}"
        );
        let (code, _, err) = run(&["check", "--policy", path.to_str().unwrap(), "nginx:1"]);
        assert_eq!(code, Some(2), "{err}");
    }
}

// ------------------------------------------------- 5. digests we can't check

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_that_cannot_be_checked_is_a_definite_failure_under_on_error_allow() {
    // The registry is never contacted: a sha512 digest cannot be checked
    // against content by imagegate, however healthy the registry is.
    let key = std::fs::canonicalize(KEY).unwrap();
    let addr = "127.0.0.1:9";
    let (server, _dir) = serve(&verify_spec(
        addr,
        key.to_str().unwrap(),
        "    onError: allow\n",
    ))
    .await;
    for digest in [
        format!("sha512:{}", "d".repeat(128)),
        format!("sha384:{}", "e".repeat(96)),
    ] {
        let image = format!("{addr}/app@{digest}");
        let v = post_json(
            server.addr,
            "/imagepolicy",
            &image_review_in("default", &[&image], json!({})),
        )
        .await;
        assert_eq!(v["status"]["allowed"], false, "{v}");
        let reason = v["status"]["reason"].as_str().unwrap();
        assert!(reason.contains("only sha256 can"), "{reason}");
    }
    let text = metrics_text(server.addr).await;
    assert_eq!(
        sample(
            &text,
            "imagegate_image_decisions_total{decision=\"deny\",reason=\"signature_invalid\"}"
        ),
        Some(2.0),
        "{text}"
    );
    server.stop().await;
}

// ------------------------------------------------------------ 6. revocation

#[cfg_attr(
    not(have_docker_registry),
    ignore = "needs /usr/bin/docker-registry (apt-get install docker-registry)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_a_key_file_revokes_the_old_key_without_a_restart() {
    let reg = registry!("replacing_a_key_file_revokes_the_old_key_without_a_restart");
    populated(&reg).await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("release.pub");
    std::fs::copy(KEY, &key).unwrap();
    let policy = write(
        dir.path(),
        "policy.yaml",
        &policy_text(&verify_spec(&reg.addr, key.to_str().unwrap(), "")),
    );
    let server = start(config(&[
        "--policy",
        policy.to_str().unwrap(),
        "--file-poll-interval",
        "1s",
    ]))
    .await;
    let signed = format!("{}/fixtures/app:v1", reg.addr);
    let body = image_review_in("default", &[&signed], json!({}));
    let v = post_json(server.addr, "/imagepolicy", &body).await;
    assert_eq!(v["status"]["allowed"], true, "{v}");

    // The Secret holding the key is updated; the policy file is not.
    replace_file(&key, &std::fs::read(OTHER_KEY).unwrap());
    let addr = server.addr;
    // Polls until the ImageReview answer's `allowed` is `want`.
    let answered = |what: &'static str, want: bool| {
        let body = body.clone();
        eventually(what, move || {
            let body = body.clone();
            async move {
                let v = post_json(addr, "/imagepolicy", &body).await;
                v["status"]["allowed"] == want
            }
        })
    };
    answered("the replaced key is in force", false).await;
    let text = metrics_text(server.addr).await;
    assert_eq!(sample(&text, "imagegate_policy_generation"), Some(2.0));
    assert_eq!(
        sample(&text, "imagegate_policy_reloads_total{result=\"success\"}"),
        Some(1.0)
    );
    // And back: the watch follows the file, not one inode.
    replace_file(&key, &std::fs::read(KEY).unwrap());
    answered("the original key is back", true).await;
    server.stop().await;
}

// ------------------------------------------------------------ 7. audit trail

fn log_field(line: &Value, name: &str) -> Value {
    line["fields"]
        .get(name)
        .or_else(|| line.get(name))
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_glass_and_on_error_admissions_are_logged_at_the_default_level() {
    let dir = tempfile::tempdir().unwrap();
    let key = std::fs::canonicalize(KEY).unwrap();
    let spec = format!(
        "  registries:\n    deny: [evil.example.com]\n    insecure: [\"127.0.0.1:9\"]\n  breakGlass:\n    enabled: true\n  verify:\n    - images: [\"127.0.0.1:9/**\"]\n      keys:\n        - file: {}\n      require:\n        signature: true\n  verification:\n    timeout: 2s\n    onError: allow\n",
        key.display()
    );
    let policy = write(dir.path(), "policy.yaml", &policy_text(&spec));
    // At the default log level (no filter given).
    let mut process = Serve::spawn(&[
        "--listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
        "--policy",
        policy.to_str().unwrap(),
    ]);
    let started = process.wait_for_log("imagegate serving");
    let addr: SocketAddr = started["listen"].as_str().unwrap().parse().unwrap();

    let glass = json!({"break-glass.image-policy.k8s.io/reason": "INC-1234 hotfix"});
    let object = pod(
        json!({"containers": [{"name": "c", "image": "evil.example.com/fix:1"}]}),
        glass,
    );
    let review = admission("", "Pod", "payments", json!({"username": "alice"}), object);
    let v = post_json(addr, "/validate", &review).await;
    assert_eq!(v["response"]["allowed"], true, "{v}");
    let line = process.wait_for_log("images admitted despite a deny verdict");
    assert_eq!(line["level"], "WARN", "{line}");
    let field = |name: &str| log_field(&line, name);
    assert_eq!(field("admitted_by"), "break-glass", "{line}");
    assert_eq!(field("namespace"), "payments", "{line}");
    assert_eq!(field("user"), "alice", "{line}");
    let images = field("images").as_str().unwrap().to_owned();
    assert!(
        images.contains("evil.example.com/fix:1") && images.contains("registry_denied"),
        "{line}"
    );

    let unreachable = "127.0.0.1:9/app:1";
    let v = post_json(
        addr,
        "/imagepolicy",
        &image_review_in("shop", &[unreachable], json!({})),
    )
    .await;
    assert_eq!(v["status"]["allowed"], true, "{v}");
    let line = process.wait_for_log("images admitted despite a deny verdict");
    let field = |name: &str| log_field(&line, name);
    assert_eq!(field("admitted_by"), "onError-allow", "{line}");
    assert_eq!(field("namespace"), "shop", "{line}");
    let images = field("images").as_str().unwrap().to_owned();
    assert!(
        images.contains(unreachable) && images.contains("verification_unavailable"),
        "{line}"
    );
}

// --------------------------------------------------------------- 8. limits

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_policy_size_limit_and_message_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let limit = imagegate::policy::MAX_POLICY_BYTES;
    // A valid policy just over the limit: comments pad it.
    let mut text = policy_text("  mode: enforce\n");
    let pad = format!("# {}\n", "x".repeat(1000));
    while text.len() <= limit {
        text.push_str(&pad);
    }
    let big = write(dir.path(), "big.yaml", &text);
    let want = "policy is larger than 8 MiB, the limit for policy files";
    let (code, _, err) = run(&["policy", "validate", big.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(err.contains(want), "{err}");
    let (code, _, err) = run(&["check", "--policy", big.to_str().unwrap(), "nginx:1"]);
    assert_eq!(code, Some(2));
    assert!(err.contains(want), "{err}");
    let (code, _, err) = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--policy",
        big.to_str().unwrap(),
    ]);
    assert_ne!(code, Some(0));
    assert!(err.contains(want), "{err}");

    // Just under the limit is accepted by all three.
    let mut text = policy_text("  mode: enforce\n");
    while text.len() + pad.len() <= limit {
        text.push_str(&pad);
    }
    let fits = write(dir.path(), "fits.yaml", &text);
    let (code, _, err) = run(&["policy", "validate", fits.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = run(&["check", "--policy", fits.to_str().unwrap(), "nginx:1"]);
    assert_eq!(code, Some(0), "{err}");
    let server = start(config(&["--policy", fits.to_str().unwrap()])).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_update_with_two_large_objects_fits_the_default_body_limit() {
    let (server, _dir) = serve("  registries:\n    deny: [evil.example.com]\n").await;
    // Two objects of 1.5 MiB of annotations each (the etcd limit as
    // stored), as a pod UPDATE sends them.
    let big = "a".repeat(1536 * 1024);
    let object = |image: &str| {
        pod(
            json!({"containers": [{"name": "c", "image": image}]}),
            json!({"big": big}),
        )
    };
    let mut review = admission("", "Pod", "prod", json!({}), object("evil.example.com/x:1"));
    review["request"]["operation"] = json!("UPDATE");
    review["request"]["oldObject"] = object("nginx:1.27");
    let body = review.to_string();
    assert!(body.len() > 3 * 1024 * 1024, "{}", body.len());
    let v = post_json(server.addr, "/validate", &review).await;
    assert_eq!(v["response"]["allowed"], false, "judged, not refused: {v}");
    server.stop().await;
}

// ------------------------------------------------------ 9. closed stdout

#[test]
fn check_on_a_closed_pipe_exits_with_the_verdicts_code() {
    for (images, want) in [(vec!["nginx:1.27"; 2000], 0), (vec!["nginx"; 2000], 1)] {
        let mut child = Command::new(binary())
            .arg("check")
            .args(&images)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Read one line, then close the pipe (`| head -1`).
        let mut stdout = child.stdout.take().unwrap();
        let mut first = [0u8; 16];
        stdout.read_exact(&mut first).unwrap();
        drop(stdout);
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(want), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

// -------------------------------------------- 10. break-glass by whom

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_glass_can_be_restricted_to_users_and_groups() {
    let (server, _dir) = serve(
        "  registries:\n    deny: [evil.example.com]\n  breakGlass:\n    enabled: true\n    users: [alice]\n    groups: [sre-oncall]\n",
    )
    .await;
    let glass = json!({"break-glass.image-policy.k8s.io/reason": "INC-1"});
    let object = || {
        pod(
            json!({"containers": [{"name": "c", "image": "evil.example.com/fix:1"}]}),
            glass.clone(),
        )
    };
    for (user, allowed) in [
        (json!({"username": "alice"}), true),
        (
            json!({"username": "bob", "groups": ["dev", "sre-oncall"]}),
            true,
        ),
        (json!({"username": "bob", "groups": ["dev"]}), false),
        (json!({"username": "Alice"}), false),
        (json!({}), false),
        (Value::Null, false),
    ] {
        let v = post_json(
            server.addr,
            "/validate",
            &admission("", "Pod", "prod", user.clone(), object()),
        )
        .await;
        assert_eq!(v["response"]["allowed"], allowed, "{user}: {v}");
    }
    // ImageReview carries no user: a restricted break-glass never applies.
    let v = post_json(
        server.addr,
        "/imagepolicy",
        &image_review_in("prod", &["evil.example.com/fix:1"], glass.clone()),
    )
    .await;
    assert_eq!(v["status"]["allowed"], false, "{v}");
    server.stop().await;

    // An empty list is a located error, not "nobody" or "everybody".
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "p.yaml",
        &policy_text("  breakGlass:\n    enabled: true\n    users: []\n"),
    );
    let (code, _, err) = run(&["policy", "validate", path.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(":6:") && err.contains("users is empty"),
        "{err}"
    );
    // The CLI can say who asks.
    let path = write(
        dir.path(),
        "q.yaml",
        &policy_text(
            "  registries:\n    deny: [evil.example.com]\n  breakGlass:\n    enabled: true\n    users: [alice]\n",
        ),
    );
    let p = path.to_str().unwrap();
    let annotation = "break-glass.image-policy.k8s.io/reason=INC-1";
    let (code, out, _) = run(&[
        "check",
        "--policy",
        p,
        "--annotation",
        annotation,
        "--user",
        "alice",
        "evil.example.com/fix:1",
    ]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out, _) = run(&[
        "check",
        "--policy",
        p,
        "--annotation",
        annotation,
        "--user",
        "bob",
        "evil.example.com/fix:1",
    ]);
    assert_eq!(code, Some(1), "{out}");
}
