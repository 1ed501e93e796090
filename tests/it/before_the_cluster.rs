//! Before the cluster (CONTRACT §8), through the built binary: `check -f`
//! on real-world manifests compared with an independent extraction,
//! `replay` of audit logs and of `serve --record` files, `test` suites,
//! and bad input of every kind.

// In tests a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::cases::only;
use crate::support::server::*;
use serde_json::{Value, json};

const CORPUS: &str = "tests/fixtures/manifests/kubernetes-examples";
const KINDS: &str = "tests/fixtures/manifests/kinds";
const EXTRACTOR: &str = "tests/fixtures/manifests/extract_images.py";
const AUDIT: &str = "tests/fixtures/audit";

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_imagegate")
}

/// Runs the binary with `args` and `stdin`; (exit code, stdout, stderr).
fn run_with(args: &[&str], stdin: &[u8]) -> (Option<i32>, String, String) {
    let mut child = Command::new(binary())
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("IMAGEGATE_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        // A command that stops reading early closes the pipe: not a failure.
        let _ = input.write_all(&stdin);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    run_with(args, b"")
}

fn json_of(args: &[&str]) -> (Option<i32>, Value) {
    let (code, out, err) = run(args);
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    (code, v)
}

/// `replay --output json FILES...`: (exit code, the report).
fn replay_json(files: &[PathBuf]) -> (Option<i32>, Value) {
    let mut args = vec![
        "replay".to_owned(),
        "--output".to_owned(),
        "json".to_owned(),
    ];
    args.extend(files.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    json_of(&args)
}

fn write(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Objects as `(file, kind, name, namespace, [(container, image)])`.
type Extracted = Vec<(String, String, String, String, Vec<(String, String)>)>;

fn extracted(report: &Value) -> (Extracted, u64) {
    let objects = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let images = o["images"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| {
                    (
                        i["container"].as_str().unwrap().to_owned(),
                        i["image"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            let s = |k: &str| o[k].as_str().unwrap().to_owned();
            (s("file"), s("kind"), s("name"), s("namespace"), images)
        })
        .collect();
    (objects, report["skipped"].as_u64().unwrap())
}

/// The independent extraction (Python, PyYAML) of `paths`. Its test
/// carries `#[cfg_attr(not(have_pyyaml), ignore = ...)]` (`build.rs`).
fn python_extraction(paths: &[&str], namespace: &str) -> (Extracted, u64) {
    let out = Command::new("python3")
        .arg(EXTRACTOR)
        .args(["--namespace", namespace])
        .args(paths)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the extractor failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    extracted(&serde_json::from_slice(&out.stdout).unwrap())
}

// ------------------------------------------------------------ check -f

#[cfg_attr(
    not(have_pyyaml),
    ignore = "needs python3 with PyYAML (apt-get install python3-yaml)"
)]
#[test]
fn check_f_finds_the_images_an_independent_extraction_finds() {
    for (paths, namespace) in [(vec![CORPUS], "default"), (vec![KINDS], "ci")] {
        let (want, want_skipped) = python_extraction(&paths, namespace);
        let mut args = vec!["check", "--namespace", namespace, "--output", "json"];
        for p in &paths {
            args.extend(["-f", p]);
        }
        let (_, report) = json_of(&args);
        let (mut got, skipped) = extracted(&report);
        let mut want = want;
        // Path order differs between the two walks ("a-b/" and "a/"); the
        // objects of one file stay in document order under a stable sort.
        got.sort_by(|a, b| a.0.cmp(&b.0));
        want.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(got.len(), want.len(), "objects of {paths:?}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, w);
        }
        assert_eq!(skipped, want_skipped, "skipped objects of {paths:?}");
    }
}

/// Each image of the corpus judged by `check -f` gets the verdict `check
/// IMAGE` gives it in the same namespace, under two policies.
#[test]
fn check_f_agrees_with_check_image_under_two_policies() {
    for policy in ["examples/policy.yaml", "examples/policy-annotated.yaml"] {
        let (code, report) = json_of(&[
            "check", "--policy", policy, "--output", "json", "-f", CORPUS, "-f", KINDS,
        ]);
        let mut by_namespace: BTreeMap<String, BTreeMap<String, (String, String)>> =
            BTreeMap::new();
        let mut any_denied = false;
        for o in report["objects"].as_array().unwrap() {
            let mut object_allowed = true;
            for i in o["images"].as_array().unwrap() {
                let verdict = (
                    i["decision"].as_str().unwrap().to_owned(),
                    i["reason"].as_str().unwrap().to_owned(),
                );
                object_allowed &= verdict.0 == "allow";
                by_namespace
                    .entry(o["namespace"].as_str().unwrap().to_owned())
                    .or_default()
                    .insert(i["image"].as_str().unwrap().to_owned(), verdict);
            }
            assert_eq!(o["allowed"], object_allowed, "{o}");
            any_denied |= !object_allowed;
        }
        assert_eq!(report["allowed"], !any_denied);
        assert_eq!(code, Some(if any_denied { 1 } else { 0 }));
        for (namespace, images) in &by_namespace {
            let mut args = vec!["check", "--policy", policy, "--namespace", namespace];
            args.extend(["--output", "json"]);
            let names: Vec<&str> = images.keys().map(String::as_str).collect();
            args.extend(&names);
            let (_, single) = json_of(&args);
            for i in single["images"].as_array().unwrap() {
                let image = i["image"].as_str().unwrap();
                assert_eq!(
                    (
                        i["decision"].as_str().unwrap(),
                        i["reason"].as_str().unwrap()
                    ),
                    (images[image].0.as_str(), images[image].1.as_str()),
                    "{image} in {namespace} under {policy}"
                );
            }
        }
    }
}

#[test]
fn check_f_reads_standard_input_and_locates_images() {
    let stream = b"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: nginx:latest\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\n";
    let (code, out, _) = run_with(&["check", "-f", "-"], stream);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.starts_with("DENY  Deployment default/web  -:1\n"),
        "{out}"
    );
    assert!(
        out.contains("-:10: container \"web\": [tag_forbidden]"),
        "{out}"
    );
    assert!(out.contains("1 object checked"), "{out}");
    assert!(out.contains("1 object of other kinds skipped"), "{out}");

    let (code, out, _) = run_with(
        &["check", "--namespace", "ci", "--output", "json", "-f", "-"],
        stream,
    );
    assert_eq!(code, Some(1));
    let v: Value = serde_json::from_str(&out).unwrap();
    let o = &v["objects"][0];
    assert_eq!(o["namespace"], "ci");
    assert_eq!(o["images"][0]["line"], 10);
    assert_eq!(o["images"][0]["container"], "web");
    assert_eq!(o["images"][0]["decision"], "deny");
    assert_eq!(v["skipped"], 1);

    // Denied objects come first in the text output.
    let (code, out, _) = run(&["check", "-f", KINDS]);
    assert_eq!(code, Some(1));
    let first_allow = out.find("\nALLOW").unwrap();
    assert!(out.rfind("\nDENY").unwrap() < first_allow, "{out}");
}

#[test]
fn check_f_allows_a_clean_chart_and_namespaces_come_from_objects() {
    let (code, out, err) = run(&[
        "check",
        "--policy",
        "examples/policy-annotated.yaml",
        "-f",
        "examples/tests/manifests/web.yaml",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("ALLOW Deployment prod-web/web"), "{out}");
    assert!(out.contains("ALLOW CronJob prod-web/web-report"), "{out}");
}

#[test]
fn with_verify_rules_errors_come_in_input_order_too() {
    // An object without `kind` before a document that is not YAML: the
    // object's error, at its line, with and without `verify` rules (with
    // them every document is read before any is parsed).
    let dir = tempfile::tempdir().unwrap();
    let stream = write(
        dir.path(),
        "two.yaml",
        b"apiVersion: v1\nkind: Pod\nmetadata: {name: ok}\nspec:\n  containers: [{name: a, image: registry.k8s.io/pause:3.10}]\n---\napiVersion: v1\nmetadata: {name: nokind}\n---\nspec:\n  containers: [\n",
    );
    let policy = write(
        dir.path(),
        "verify.yaml",
        b"apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nspec:\n  verify:\n    - images: [\"127.0.0.1:1/**\"]\n      keys:\n        - file: tests/fixtures/verify/keys/cosign.pub\n  registries:\n    insecure: [\"127.0.0.1:1\"]\n",
    );
    let (code, _, plain) = run(&["check", "-f", stream.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{plain}");
    assert!(plain.contains("two.yaml:7"), "{plain}");
    let (code, _, verifying) = run(&[
        "check",
        "--policy",
        policy.to_str().unwrap(),
        "-f",
        stream.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{verifying}");
    assert_eq!(verifying, plain);
}

#[test]
fn bad_manifests_are_located_errors_and_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: [(&str, &[u8], &str); 6] = [
        ("broken.yaml", b"apiVersion: v1\nkind: Pod\nspec:\n  containers: [\n", "broken.yaml:"),
        ("scalar.yaml", b"just a string\n", "broken"),
        ("binary.yaml", b"\x7fELF\x02\x01\x01\x00\x00\xff\xfe\x00\x00", "binary.yaml"),
        ("wrongtype.yaml", b"apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - image: 7\n", "wrongtype.yaml:1: not a Kubernetes object"),
        ("nokind.yaml", b"apiVersion: v1\nmetadata: {name: x}\n", "nokind.yaml:1: not a Kubernetes object"),
        ("bomb.yaml", b"a: &a [x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f]\nh: [*g,*g,*g,*g,*g,*g,*g,*g]\n", "bomb.yaml"),
    ];
    for (name, text, want) in only("bad manifests", cases.to_vec(), |c| c.0) {
        let path = write(d, name, text);
        let (code, out, err) = run(&["check", "-f", path.to_str().unwrap()]);
        assert_eq!(code, Some(2), "{name}: {out}{err}");
        let want = if want == "broken" { name } else { want };
        assert!(err.contains(want), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: one line: {err}");
        assert!(!err.contains("panick"), "{name}: {err}");
    }
    // A directory with binaries and other files in it: only manifests are
    // read.
    let tree = d.join("tree");
    std::fs::create_dir_all(tree.join("nested/deeper")).unwrap();
    write(&tree, "app.bin", &[0u8, 159, 146, 150, 255, 0, 1]);
    write(&tree, "README.md", b"# not a manifest\n");
    write(&tree, "nested/logo.png", b"\x89PNG\r\n\x1a\n\x00\x00");
    write(&tree, "nested/deeper/pod.yml", b"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: 'nginx:1.27'}]\n");
    let (code, out, err) = run(&["check", "-f", tree.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("ALLOW Pod default/p"), "{out}");
    // A path that does not exist.
    let (code, _, err) = run(&["check", "-f", d.join("missing").to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("missing: cannot read"), "{err}");
    // Images and -f together are a usage error.
    let (code, _, _) = run(&["check", "-f", KINDS, "nginx:1"]);
    assert_eq!(code, Some(2));
}

// ------------------------------------------------------------ replay

/// An audit event of `verb` on `resource` holding `object` (or none).
fn event(
    id: &str,
    stage: &str,
    verb: &str,
    resource: &str,
    group: &str,
    object: Option<Value>,
) -> Value {
    let mut e = json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Request",
        "auditID": id, "stage": stage, "requestURI": "/api/v1/namespaces/prod/pods",
        "verb": verb, "user": {"username": "system:serviceaccount:kube-system:replicaset-controller", "groups": ["system:serviceaccounts"]},
        "objectRef": {"resource": resource, "namespace": "prod", "apiGroup": group, "apiVersion": "v1"},
        "requestReceivedTimestamp": "2026-12-01T10:00:00.000000Z", "stageTimestamp": "2026-12-01T10:00:00.010000Z",
    });
    if let Some(o) = object {
        e["requestObject"] = o;
    } else {
        e["level"] = json!("Metadata");
    }
    e
}

fn pod_object(name: &str, images: &[&str]) -> Value {
    let containers: Vec<Value> = images
        .iter()
        .enumerate()
        .map(|(i, image)| json!({"name": format!("c{i}"), "image": image}))
        .collect();
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "prod"},
        "spec": {"containers": containers}})
}

fn lines(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        out.extend_from_slice(v.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn synthetic_log() -> Vec<u8> {
    let bad = pod_object("bad", &["nginx:latest", "registry.k8s.io/pause:3.10"]);
    let good = pod_object("good", &["nginx:1.27"]);
    let mut v1beta1 = event(
        "b-1",
        "ResponseComplete",
        "create",
        "pods",
        "",
        Some(pod_object("old", &["busybox"])),
    );
    v1beta1["apiVersion"] = json!("audit.k8s.io/v1beta1");
    lines(&[
        event(
            "a-1",
            "RequestReceived",
            "create",
            "pods",
            "",
            Some(bad.clone()),
        ),
        event(
            "a-2",
            "RequestReceived",
            "create",
            "pods",
            "",
            Some(good.clone()),
        ),
        event("a-1", "ResponseComplete", "create", "pods", "", Some(bad)),
        event("a-2", "ResponseComplete", "create", "pods", "", Some(good)),
        event("a-3", "ResponseComplete", "get", "pods", "", None),
        event("a-4", "ResponseComplete", "create", "pods", "", None),
        event(
            "a-5",
            "ResponseComplete",
            "create",
            "configmaps",
            "",
            Some(json!({"kind": "ConfigMap"})),
        ),
        event("a-6", "ResponseComplete", "delete", "pods", "", None),
        v1beta1,
    ])
}

#[test]
fn replay_judges_each_audited_request_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = write(dir.path(), "audit.log", &synthetic_log());
    let gz = write(dir.path(), "audit.log.1.gz", &gzip(&synthetic_log()));
    let (code, v) = json_of(&["replay", "--output", "json", log.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["reviews"], 3, "{v}");
    assert_eq!(v["allowed"], 1);
    assert_eq!(v["denied"], 2);
    assert_eq!(v["skipped"], 6);
    assert_eq!(v["skippedBy"]["repeated_stage"], 2);
    assert_eq!(v["skippedBy"]["other_verb"], 2);
    assert_eq!(v["skippedBy"]["no_request_object"], 1);
    assert_eq!(v["skippedBy"]["other_resource"], 1);
    assert_eq!(v["deniedByNamespace"]["prod"], 2);
    assert_eq!(v["deniedByReason"]["tag_forbidden"], 1);
    assert_eq!(v["deniedByReason"]["tag_missing"], 1);
    let denials = v["denials"].as_array().unwrap();
    assert_eq!(denials.len(), 2);
    assert_eq!(denials[0]["name"], "bad");
    assert_eq!(denials[0]["kind"], "Pod");
    assert_eq!(denials[0]["source"], format!("{}:1", log.display()));

    // The same log gzip-compressed reads the same.
    let (_, z) = json_of(&["replay", "--output", "json", gz.to_str().unwrap()]);
    assert_eq!(z["reviews"], 3);
    assert_eq!(z["denied"], 2);

    // A baseline that forbids nothing: what the new policy newly denies.
    let base = write(
        dir.path(),
        "base.yaml",
        b"apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nspec:\n  tags:\n    requireTagOrDigest: true\n    forbid: []\n",
    );
    let (code, b) = json_of(&[
        "replay",
        "--baseline",
        base.to_str().unwrap(),
        "--output",
        "json",
        log.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1));
    assert_eq!(b["newlyDenied"], 1, "{b}");
    assert_eq!(b["newlyAllowed"], 0);
    let changes = b["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["name"], "bad");
    assert_eq!(changes[0]["before"], "allow");
    assert_eq!(changes[0]["after"], "deny");
    assert_eq!(changes[0]["namespace"], "prod");
    // The other way round: nothing newly denied, exit 0.
    let (code, out, _) = run(&[
        "replay",
        "--policy",
        base.to_str().unwrap(),
        "--baseline",
        "examples/policy.yaml",
        log.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("0 newly denied, 1 newly allowed"), "{out}");
    assert!(out.contains("NEWLY ALLOWED Pod prod/bad"), "{out}");

    // Markdown for a pull-request comment.
    let (_, md, _) = run(&["replay", "--output", "markdown", log.to_str().unwrap()]);
    assert!(md.starts_with("### imagegate replay"), "{md}");
    assert!(md.contains("| 3 | 1 | 2 | 6 |"), "{md}");
}

#[test]
fn replay_reads_event_lists_pretty_bodies_patches_and_impersonation() {
    let dir = tempfile::tempdir().unwrap();
    // An EventList (the audit webhook backend), with an impersonated
    // request: the webhook sees the impersonated user, so break-glass for
    // bob applies.
    let mut impersonated = event(
        "i-1",
        "ResponseComplete",
        "create",
        "pods",
        "",
        Some(pod_object("hotfix", &["nginx:latest"])),
    );
    impersonated["user"] = json!({"username": "alice", "groups": ["system:authenticated"]});
    impersonated["impersonatedUser"] = json!({"username": "bob", "groups": ["oncall"]});
    impersonated["requestObject"]["metadata"]["annotations"] =
        json!({"break-glass.image-policy.k8s.io/reason": "INC-1"});
    // A patch logged with its result is judged by the object it made.
    let mut patched = event(
        "p-1",
        "ResponseComplete",
        "patch",
        "deployments",
        "apps",
        None,
    );
    patched["level"] = json!("RequestResponse");
    patched["requestObject"] = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:latest"}]}}}});
    patched["responseStatus"] = json!({"code": 200});
    patched["responseObject"] = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "prod"},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:latest"}]}}}});
    let mut failed_patch = patched.clone();
    failed_patch["auditID"] = json!("p-2");
    failed_patch["responseStatus"] = json!({"code": 403});
    failed_patch["responseObject"] =
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure"});
    let mut request_level_patch = patched.clone();
    request_level_patch["auditID"] = json!("p-3");
    request_level_patch
        .as_object_mut()
        .unwrap()
        .remove("responseObject");
    let list = json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [impersonated, patched, failed_patch, request_level_patch]});
    let path = write(dir.path(), "webhook.log", &lines(&[list]));
    let policy = write(dir.path(), "policy.yaml", b"apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nspec:\n  tags:\n    forbid: [latest]\n  breakGlass:\n    enabled: true\n    annotation: break-glass.image-policy.k8s.io/reason\n    users: [bob]\n");
    let (code, v) = json_of(&[
        "replay",
        "--policy",
        policy.to_str().unwrap(),
        "--output",
        "json",
        path.to_str().unwrap(),
    ]);
    assert_eq!(v["reviews"], 2, "{v}");
    assert_eq!(v["allowed"], 1, "bob's break-glass applies: {v}");
    assert_eq!(v["denied"], 1, "{v}");
    assert_eq!(v["denials"][0]["kind"], "Deployment");
    assert_eq!(v["denials"][0]["name"], "web");
    assert_eq!(v["skippedBy"]["patch_without_result"], 2, "{v}");
    assert_eq!(code, Some(1));

    // A saved, pretty-printed AdmissionReview, and two concatenated ones.
    let review = |image: &str, op: &str| {
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "namespace": "dev",
            "operation": op, "object": pod_object("p", &[image])}})
    };
    let pretty = format!(
        "{}\n{}",
        serde_json::to_string_pretty(&review("nginx:latest", "CREATE")).unwrap(),
        serde_json::to_string_pretty(&review("nginx:1.27", "CREATE")).unwrap()
    );
    let saved = write(dir.path(), "saved.json", pretty.as_bytes());
    let (code, v) = json_of(&["replay", "--output", "json", saved.to_str().unwrap()]);
    assert_eq!(v["reviews"], 2, "{v}");
    assert_eq!(v["denied"], 1);
    assert_eq!(v["denials"][0]["source"], format!("{}#1", saved.display()));
    assert_eq!(code, Some(1));
    // A DELETE holds nothing to judge.
    let delete = write(
        dir.path(),
        "delete.json",
        &lines(&[review("nginx:latest", "DELETE")]),
    );
    let (code, v) = json_of(&["replay", "--output", "json", delete.to_str().unwrap()]);
    assert_eq!(v["skippedBy"]["not_judged"], 1, "{v}");
    assert_eq!(code, Some(0));
}

#[test]
fn terminal_output_escapes_what_it_echoes() {
    let stream = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: \"x\\e[31mred\\u202e\"\n  namespace: \"ns\\e]8;;http://evil\\a\"\nspec:\n  containers:\n  - name: c\n    image: \"nginx:latest\\e[2J\"\n";
    let (code, out, _) = run_with(&["check", "-f", "-"], stream.as_bytes());
    assert_eq!(code, Some(1), "{out}");
    assert!(!out.contains('\u{1b}'), "{out:?}");
    assert!(!out.contains('\u{7}'), "{out:?}");
    assert!(!out.contains('\u{202e}'), "{out:?}");
    assert!(out.contains("\\u{1b}[31mred\\u{202e}"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    let log = write(
        dir.path(),
        "a.log",
        &lines(&[event(
            "e-1",
            "ResponseComplete",
            "create",
            "pods",
            "",
            Some(pod_object("p|`x`", &["nginx:latest\u{1b}[2J|"])),
        )]),
    );
    let (_, text, _) = run(&["replay", log.to_str().unwrap()]);
    assert!(!text.contains('\u{1b}'), "{text:?}");
    let (_, md, _) = run(&["replay", "--output", "markdown", log.to_str().unwrap()]);
    assert!(!md.contains('\u{1b}'), "{md:?}");
    assert!(md.contains("`` Pod prod/p\\|`x` ``"), "{md}");
}

#[test]
fn manifests_keep_the_last_of_two_keys_and_refuse_alias_bombs() {
    let dir = tempfile::tempdir().unwrap();
    let dup = write(dir.path(), "dup.yaml", b"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: nginx:1.27\n    image: nginx:latest\n");
    let (code, v) = json_of(&["check", "--output", "json", "-f", dup.to_str().unwrap()]);
    assert_eq!(code, Some(1), "the last value is what runs: {v}");
    assert_eq!(v["objects"][0]["images"][0]["image"], "nginx:latest");
    assert_eq!(v["objects"][0]["images"][0]["line"], 8);
    // One 1 MiB anchor repeated 200 times: refused, not 200 MiB of memory.
    let mut bomb = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: m}}\ndata:\n  a: &a {}\n  b: [",
        "x".repeat(1 << 20)
    );
    bomb.push_str(&"*a,".repeat(200));
    bomb.push_str("*a]\n");
    let path = write(dir.path(), "bomb.yaml", bomb.as_bytes());
    let (code, _, err) = run(&["check", "-f", path.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("expands to more than"), "{err}");
    // Lists in Lists are judged, and an init container reusing the main
    // container's image is located at its own line.
    let nested = write(dir.path(), "nested.yaml", b"kind: List\napiVersion: v1\nitems:\n- kind: List\n  apiVersion: v1\n  items:\n  - apiVersion: v1\n    kind: Pod\n    metadata: {name: inner}\n    spec:\n      initContainers:\n      - name: migrate\n        image: app:latest\n      containers:\n      - name: main\n        image: app:latest\n");
    let (code, v) = json_of(&["check", "--output", "json", "-f", nested.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    let images = &v["objects"][0]["images"];
    assert_eq!(images[0]["container"], "main");
    assert_eq!(images[0]["line"], 16);
    assert_eq!(images[1]["container"], "migrate");
    assert_eq!(images[1]["line"], 13);
}

#[test]
fn replay_survives_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    // A truncated gzip file: what was read counts, the rest is reported.
    let whole = gzip(&synthetic_log().repeat(200));
    let cut = write(dir.path(), "cut.gz", &whole[..whole.len() / 2]);
    let (code, out, err) = run(&["replay", cut.to_str().unwrap()]);
    assert_eq!(
        code,
        Some(2),
        "incomplete input is not a verdict: {out}{err}"
    );
    assert!(err.contains("cut.gz: stopped reading early"), "{err}");
    assert!(out.contains("replayed"), "{out}");
    let (_, v) = json_of(&["replay", "--output", "json", cut.to_str().unwrap()]);
    assert!(
        v["readErrors"][0]["file"]
            .as_str()
            .unwrap()
            .ends_with("cut.gz"),
        "{v}"
    );
    assert!(
        v["reviews"].as_u64().unwrap() > 0,
        "what was read is judged: {v}"
    );
    // A file of garbage judges nothing: an error, not a clean bill.
    let junk = write(dir.path(), "junk.log", b"this is not\nan audit log\n");
    let (code, _, err) = run(&["replay", junk.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no review could be judged"), "{err}");
    // A 100 MB line between two events, broken lines, binary bytes.
    let mut mixed = synthetic_log();
    mixed.extend(std::iter::repeat_n(b'x', 100 * 1024 * 1024));
    mixed.extend_from_slice(b"\n{\"kind\":\n\x00\xff\xfe garbage\n[1,2,3]\n");
    mixed.extend(synthetic_log());
    let big = write(dir.path(), "mixed.log", &mixed);
    let (code, v) = json_of(&["replay", "--output", "json", big.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert_eq!(v["skippedBy"]["too_long"], 1, "{v}");
    assert_eq!(v["skippedBy"]["broken"], 3, "{v}");
    // The second copy repeats the first's audit IDs: judged once.
    assert_eq!(v["reviews"], 3, "{v}");
    // A file that does not exist is a usage error.
    let (code, _, err) = run(&["replay", dir.path().join("nope").to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("cannot read"), "{err}");
}

/// Real audit logs published by other projects (tests/fixtures/audit/real,
/// sources and licences in SOURCE.md): a v1beta1 `Metadata`-level log, and
/// falco's v1/v1beta1 events of pods, deployments and other resources, some
/// without `apiVersion` as the audit webhook backend stores them.
#[test]
fn replay_reads_real_audit_logs() {
    let real = Path::new(AUDIT).join("real");
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(real.join("expected.json")).unwrap())
            .unwrap();
    for (name, files) in [
        ("audit2rbac", vec![real.join("audit2rbac/demo-v1beta1.log")]),
        ("falco", {
            let mut f: Vec<PathBuf> = std::fs::read_dir(real.join("falco"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            f.sort();
            f
        }),
    ] {
        let (code, v) = replay_json(&files);
        let want = &expected[name];
        for key in ["reviews", "allowed", "denied", "skipped"] {
            assert_eq!(v[key], want[key], "{key} of {name}: {v}");
        }
        assert_eq!(v["malformed"], 0, "{name}: {v}");
        assert_eq!(
            code,
            Some(if want["denied"] == 0 { 0 } else { 1 }),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_record_files_replay_to_the_same_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("reviews.jsonl");
    let server = start(config(&[
        "--record",
        record.to_str().unwrap(),
        "--record-max-bytes",
        "4KiB",
        "--record-keep",
        "5",
    ]))
    .await;
    let mut answers = Vec::new();
    for i in 0..12 {
        let images: &[&str] = if i % 3 == 0 {
            &["nginx:latest"]
        } else {
            &["nginx:1.27", "busybox:1.36"]
        };
        let body = if i % 2 == 0 {
            admission_review(images)
        } else {
            image_review(images)
        };
        let (status, _, bytes) = once(
            server.addr,
            post(
                if i % 2 == 0 {
                    "/validate"
                } else {
                    "/imagepolicy"
                },
                body,
            ),
        )
        .await;
        assert_eq!(status, 200);
        answers.push(if i % 2 == 0 {
            admission_allowed(&bytes)
        } else {
            image_review_allowed(&bytes)
        });
    }
    // Not a review: answered 400 and not recorded.
    let (status, _, _) = once(server.addr, post("/validate", "{}")).await;
    assert_eq!(status, 400);
    let mut files = vec![record.clone()];
    eventually("the records are written and rotated", || {
        let record = record.clone();
        async move {
            let n: usize = (0..=5)
                .map(|k| {
                    let p = if k == 0 {
                        record.clone()
                    } else {
                        PathBuf::from(format!("{}.{k}", record.display()))
                    };
                    std::fs::read_to_string(p).map_or(0, |t| t.lines().count())
                })
                .sum();
            n == 12
        }
    })
    .await;
    server.stop().await;
    for k in 1..=5 {
        let p = PathBuf::from(format!("{}.{k}", record.display()));
        if p.exists() {
            assert!(std::fs::metadata(&p).unwrap().len() <= 4096 + 2048);
            files.push(p);
        }
    }
    assert!(files.len() > 1, "the 4 KiB cap rotates the file");
    let (code, v) = replay_json(&files);
    let denied = answers.iter().filter(|a| !**a).count() as u64;
    assert_eq!(v["reviews"], 12, "{v}");
    assert_eq!(v["denied"], denied, "{v}");
    assert_eq!(v["allowed"], 12 - denied);
    assert_eq!(v["skipped"], 0);
    assert_eq!(code, Some(1));
    let line: Value = serde_json::from_str(
        std::fs::read_to_string(&files[0])
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(line["kind"], "RecordedReview");
    use std::os::unix::fs::PermissionsExt as _;
    for f in &files {
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
    assert!(line["time"].as_str().unwrap().ends_with('Z'));
}

// ------------------------------------------------------------ test suites

#[test]
fn the_example_policies_pass_their_suites() {
    let (code, out, err) = run(&["test", "examples/tests"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("2 suites: 15 passed, 0 failed"), "{out}");
}

#[test]
fn a_failing_case_shows_what_was_expected_and_what_came() {
    let dir = tempfile::tempdir().unwrap();
    let policy = std::fs::canonicalize("examples/policy.yaml").unwrap();
    let manifest = std::fs::canonicalize("examples/tests/manifests/debug.yaml").unwrap();
    write(dir.path(), "nested.test.yaml", format!(
        "apiVersion: imagegate.dev/v1alpha1\nkind: PolicyTest\npolicy: {}\ntests:\n  - name: right\n    images: [nginx:1.27]\n    expect: allow\n  - name: wrong reason\n    images: [nginx:latest]\n    expect: deny\n    reason: tag_missing\n  - name: wrong decision\n    manifests: [{}]\n    expect: allow\n",
        policy.display(), manifest.display()
    ).as_bytes());
    write(dir.path(), "ignored.yaml", b"not: a suite\n");
    let (code, out, _) = run(&["test", dir.path().to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("PASS  "), "{out}");
    assert!(out.contains("nested.test.yaml:8  wrong reason\n      expected: deny (tag_missing)\n      got:      deny (tag_forbidden)\n        deny  nginx:latest [tag_forbidden]"), "{out}");
    assert!(
        out.contains("wrong decision\n      expected: allow\n      got:      deny (tag_forbidden)"),
        "{out}"
    );
    assert!(
        out.contains("image volume \\\"models\\\"") || out.contains("image volume \"models\""),
        "{out}"
    );
    assert!(out.contains("1 suite: 1 passed, 2 failed"), "{out}");

    // A malformed suite, and one whose policy is broken: exit 2, located.
    let bad = write(dir.path(), "bad.test.yaml", b"apiVersion: imagegate.dev/v1alpha1\nkind: PolicyTest\npolicy: p.yaml\ntests:\n  - name: x\n    images: [a:1]\n    expect: maybe\n");
    let (code, _, err) = run(&["test", bad.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("bad.test.yaml:7: unknown variant `maybe`"),
        "{err}"
    );
    write(
        dir.path(),
        "p.yaml",
        b"apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nspec:\n  tagz: {}\n",
    );
    let broken = write(dir.path(), "broken.test.yaml", b"apiVersion: imagegate.dev/v1alpha1\nkind: PolicyTest\npolicy: p.yaml\ntests:\n  - name: x\n    images: [a:1]\n    expect: allow\n");
    let (code, _, err) = run(&["test", broken.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("p.yaml:4:"), "{err}");
    let (code, _, err) = run(&["test", dir.path().join("nothing-here").to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");

    // A manifest named like a suite is not one; a case that judges no image
    // fails; an unknown reason and annotations on manifests are errors.
    let d2 = tempfile::tempdir().unwrap();
    write(d2.path(), "smoke-test.yaml", b"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: nginx}]\n");
    write(
        d2.path(),
        "cm.yaml",
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
    );
    write(
        d2.path(),
        "p.yaml",
        b"apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nspec: {}\n",
    );
    write(d2.path(), "x.test.yaml", b"apiVersion: imagegate.dev/v1alpha1\nkind: PolicyTest\npolicy: p.yaml\ntests:\n  - name: nothing\n    manifests: [cm.yaml]\n    expect: allow\n");
    let (code, out, err) = run(&["test", d2.path().to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("no image was judged"), "{out}");
    assert!(out.contains("1 suite: 0 passed, 1 failed"), "{out}");
    write(d2.path(), "x.test.yaml", b"apiVersion: imagegate.dev/v1alpha1\nkind: PolicyTest\npolicy: p.yaml\ntests:\n  - name: typo\n    images: [nginx:1]\n    expect: deny\n    reason: latest_forbidden\n");
    let (code, _, err) = run(&["test", d2.path().to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown reason \"latest_forbidden\""), "{err}");
    write(d2.path(), "x.test.yaml", b"apiVersion: imagegate.dev/v1alpha1\nkind: PolicyTest\npolicy: p.yaml\ntests:\n  - name: ann\n    manifests: [smoke-test.yaml]\n    annotations: {a: b}\n    expect: allow\n");
    let (code, _, err) = run(&["test", d2.path().to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("manifests carry their own"), "{err}");
}

// ------------------------------------------------------------ verify rules

/// `check -f`, `replay` and `test` verify at the registry as the server
/// does: a signed image passes, an unsigned one is `signature_missing`.
#[cfg_attr(
    not(have_docker_registry),
    ignore = "needs /usr/bin/docker-registry (apt-get install docker-registry)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_rules_apply_to_manifests_replays_and_suites() {
    use crate::support::registry::{populated, registry};
    let reg = registry!("verify_rules_apply_to_manifests_replays_and_suites");
    populated(&reg).await;
    let dir = tempfile::tempdir().unwrap();
    let key = std::fs::canonicalize("tests/fixtures/verify/keys/cosign.pub").unwrap();
    let addr = &reg.addr;
    let policy = write(
        dir.path(),
        "policy.yaml",
        format!(
            "apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nspec:\n  verify:\n    - images: [\"{addr}/**\"]\n      keys:\n        - file: {}\n      require:\n        signature: true\n  registries:\n    insecure: [\"{addr}\"]\n  verification:\n    timeout: 5s\n",
            key.display()
        )
        .as_bytes(),
    );
    let manifest = write(
        dir.path(),
        "deploy.yaml",
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: shop, namespace: prod}}\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: {addr}/fixtures/app:v1\n      - name: hello\n        image: {addr}/fixtures/hello:v1\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings}}\n---\napiVersion: batch/v1\nkind: Job\nmetadata: {{name: once, namespace: prod}}\nspec:\n  template:\n    spec:\n      initContainers:\n      - name: warm\n        image: {addr}/fixtures/hello:v1\n      containers:\n      - name: run\n        image: {addr}/fixtures/app:v1\n"
        )
        .as_bytes(),
    );
    let policy_arg = policy.to_str().unwrap().to_owned();
    let manifest_arg = manifest.to_str().unwrap().to_owned();
    let (code, v) = tokio::task::spawn_blocking(move || {
        json_of(&[
            "check",
            "--policy",
            &policy_arg,
            "--output",
            "json",
            "-f",
            &manifest_arg,
        ])
    })
    .await
    .unwrap();
    assert_eq!(code, Some(1), "{v}");
    let images = &v["objects"][0]["images"];
    assert_eq!(images[0]["decision"], "allow", "{v}");
    assert_eq!(images[1]["decision"], "deny", "{v}");
    assert_eq!(images[1]["reason"], "signature_missing", "{v}");
    // every document judged with the verification results and placed at
    // its line; the ConfigMap skipped
    assert_eq!(v["skipped"], 1, "{v}");
    let job = &v["objects"][1];
    assert_eq!(job["kind"], "Job", "{v}");
    assert_eq!(job["line"], 17, "{v}");
    assert_eq!(job["images"][0]["decision"], "allow", "{v}");
    assert_eq!(job["images"][0]["line"], 28, "{v}");
    assert_eq!(job["images"][1]["field"], "initContainer", "{v}");
    assert_eq!(job["images"][1]["line"], 25, "{v}");
    assert_eq!(job["images"][1]["reason"], "signature_missing", "{v}");

    // The same object replayed from an audit event.
    let object: Value = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "shop", "namespace": "prod"},
        "spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": format!("{addr}/fixtures/app:v1")}]}}}});
    let log = write(
        dir.path(),
        "audit.log",
        &lines(&[event(
            "v-1",
            "ResponseComplete",
            "create",
            "deployments",
            "apps",
            Some(object),
        )]),
    );
    let policy_arg = policy.to_str().unwrap().to_owned();
    let (code, v) = tokio::task::spawn_blocking(move || {
        json_of(&[
            "replay",
            "--policy",
            &policy_arg,
            "--output",
            "json",
            log.to_str().unwrap(),
        ])
    })
    .await
    .unwrap();
    assert_eq!(
        (v["reviews"].as_u64(), v["allowed"].as_u64()),
        (Some(1), Some(1)),
        "{v}"
    );
    assert_eq!(code, Some(0));

    // And a suite.
    write(
        dir.path(),
        "shop.test.yaml",
        format!(
            "apiVersion: imagegate.dev/v1alpha1\nkind: PolicyTest\npolicy: policy.yaml\ntests:\n  - name: signed\n    images: [\"{addr}/fixtures/app:v1\"]\n    expect: allow\n  - name: unsigned\n    images: [\"{addr}/fixtures/hello:v1\"]\n    expect: deny\n    reason: signature_missing\n"
        )
        .as_bytes(),
    );
    let suite_dir = dir.path().to_str().unwrap().to_owned();
    let (code, out, err) = tokio::task::spawn_blocking(move || run(&["test", &suite_dir]))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("1 suite: 2 passed, 0 failed"), "{out}");
}
