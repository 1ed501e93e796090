//! `POST /mutate`: an AdmissionReview answered with a JSONPatch that pins
//! each tag reference to the digest that was verified (or resolved), as
//! `name:tag@sha256:...`, when the policy sets `mutate.pinDigests`.
//!
//! The answer is always `allowed: true`: admission decisions are the
//! validating webhook's (`/validate`), which runs after mutation and then
//! sees, and verifies, the pinned digest. An image is pinned only when its
//! check verified and named a digest; everything else is left as written.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::policy::Snapshot;
use crate::reference::Reference;

use super::admission;
use super::checks::Checks;
use super::extract::{PodSpec, Shape};
use super::json::Json;

/// The answer to a `/mutate` review.
#[derive(Debug, Clone)]
pub struct Mutated {
    /// The JSON response body.
    pub body: Vec<u8>,
    /// How many images the patch pins (0: no patch).
    pub pinned: usize,
}

/// Whether `image` is a valid reference without a digest (a tag, or the
/// implied `latest`), i.e. one that pinning would change.
pub(super) fn pinnable(image: &str) -> bool {
    Reference::parse(image).is_ok_and(|r| r.digest().is_none())
}

/// Where a shape keeps its pod spec, as a JSON pointer.
fn spec_pointer(shape: Shape) -> &'static str {
    match shape {
        Shape::Pod => "/spec",
        Shape::Template => "/spec/template/spec",
        Shape::CronJob => "/spec/jobTemplate/spec/template/spec",
        Shape::PodTemplate => "/template/spec",
    }
}

/// `replace` operations for every pinnable container image and image
/// volume reference with a verified digest in `checks`.
fn operations(shape: Shape, spec: &PodSpec<'_>, checks: &Checks) -> Vec<serde_json::Value> {
    let base = spec_pointer(shape);
    let lists = [
        ("containers", &spec.containers),
        ("initContainers", &spec.init_containers),
        ("ephemeralContainers", &spec.ephemeral_containers),
    ];
    let mut ops = Vec::new();
    let mut pin = |image: &str, path: String| {
        if !pinnable(image) {
            return;
        }
        let Some(check) = checks.get(image) else {
            return;
        };
        if let (true, Some(digest)) = (check.outcome.is_verified(), check.digest) {
            ops.push(serde_json::json!({
                "op": "replace",
                "path": path,
                "value": format!("{image}@{digest}"),
            }));
        }
    };
    for (name, list) in lists {
        let Some(list) = list else { continue };
        for (i, image) in list.0.iter().enumerate() {
            pin(image.image, format!("{base}/{name}/{i}/image"));
        }
    }
    if let Some(volumes) = &spec.volumes {
        for (i, volume) in volumes.0.iter().enumerate() {
            if let Some((_, image)) = volume.0 {
                pin(image, format!("{base}/volumes/{i}/image/reference"));
            }
        }
    }
    ops
}

/// The mutating answer to a parsed AdmissionReview.
pub(super) fn answer(
    parts: &admission::Parts<'_>,
    snapshot: &Snapshot,
    checks: &Checks,
) -> Mutated {
    let ops = match (&parts.object, snapshot.supply_chain().pin_digests()) {
        (Some((shape, object)), true) => operations(*shape, &object.spec, checks),
        _ => Vec::new(),
    };
    let mut json = Json::with_capacity(256);
    json.raw(r#"{"apiVersion":"#);
    json.string(parts.api_version);
    json.raw(r#","kind":"AdmissionReview","response":{"uid":"#);
    json.string(parts.uid);
    json.raw(r#","allowed":true"#);
    if !ops.is_empty() {
        let patch = serde_json::to_vec(&ops).unwrap_or_default();
        json.raw(r#","patchType":"JSONPatch","patch":"#);
        json.string(&STANDARD.encode(patch));
    }
    json.raw("}}");
    Mutated {
        body: json.finish(),
        pinned: ops.len(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::policy::Outcome;
    use crate::review::Check;
    use crate::verify::Digest;

    #[allow(
        clippy::needless_pass_by_value,
        reason = "test helper taking built values"
    )]
    fn pointers(kind: (&str, &str), object: serde_json::Value) -> Vec<(String, String)> {
        let policy = "apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nspec:\n  mutate:\n    pinDigests: true\n";
        let snapshot = Snapshot::from_yaml(policy).unwrap();
        let digest = Digest::of(b"x");
        let mut checks = Checks::new();
        for (image, outcome) in [
            ("r.example/app:1", Outcome::Verified),
            ("r.example/bad:1", Outcome::SignatureMissing),
        ] {
            checks.insert(
                image.to_owned(),
                Check {
                    outcome,
                    digest: Some(digest),
                },
            );
        }
        let review = serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u", "kind": {"group": kind.0, "version": "v1", "kind": kind.1},
                "namespace": "ns", "operation": "CREATE", "object": object}});
        let mut body = serde_json::to_vec(&review).unwrap();
        let out = review_body(&mut body, &snapshot, &checks);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["response"]["allowed"], true);
        let Some(patch) = v["response"]["patch"].as_str() else {
            return Vec::new();
        };
        assert_eq!(v["response"]["patchType"], "JSONPatch");
        let ops: serde_json::Value =
            serde_json::from_slice(&STANDARD.decode(patch).unwrap()).unwrap();
        ops.as_array()
            .unwrap()
            .iter()
            .map(|op| {
                assert_eq!(op["op"], "replace");
                let value = op["value"].as_str().unwrap();
                assert_eq!(value, format!("r.example/app:1@{digest}"));
                (op["path"].as_str().unwrap().to_owned(), value.to_owned())
            })
            .collect()
    }

    fn review_body(body: &mut [u8], snapshot: &Snapshot, checks: &Checks) -> Vec<u8> {
        answer(&admission::parse(body).unwrap(), snapshot, checks).body
    }

    fn spec() -> serde_json::Value {
        serde_json::json!({
            "containers": [{"image": "r.example/bad:1"}, {"image": "r.example/app:1"}],
            "initContainers": [{"image": "r.example/app:1"}],
            "ephemeralContainers": [{"image": "r.example/app@sha256:0000000000000000000000000000000000000000000000000000000000000000"}, {"image": "r.example/app:1"}],
            "volumes": [{"name": "cfg", "configMap": {"name": "x"}}, {"name": "bad", "image": {"reference": "r.example/bad:1"}}, {"name": "data", "image": {"reference": "r.example/app:1", "pullPolicy": "IfNotPresent"}}]
        })
    }

    #[test]
    fn every_container_kind_of_every_shape_is_pinned_at_its_pointer() {
        let paths = |kind, object| -> Vec<String> {
            pointers(kind, object).into_iter().map(|(p, _)| p).collect()
        };
        let lists = |base: &str| {
            vec![
                format!("{base}/containers/1/image"),
                format!("{base}/initContainers/0/image"),
                format!("{base}/ephemeralContainers/1/image"),
                format!("{base}/volumes/2/image/reference"),
            ]
        };
        let pod = serde_json::json!({"metadata": {}, "spec": spec()});
        assert_eq!(paths(("", "Pod"), pod), lists("/spec"));
        let template = serde_json::json!({"spec": {"template": {"spec": spec()}}});
        assert_eq!(
            paths(("apps", "Deployment"), template.clone()),
            lists("/spec/template/spec")
        );
        assert_eq!(
            paths(("batch", "Job"), template),
            lists("/spec/template/spec")
        );
        let cron =
            serde_json::json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": spec()}}}}});
        assert_eq!(
            paths(("batch", "CronJob"), cron),
            lists("/spec/jobTemplate/spec/template/spec")
        );
        let pt = serde_json::json!({"template": {"spec": spec()}});
        assert_eq!(paths(("", "PodTemplate"), pt), lists("/template/spec"));
        // kinds without pods get no patch
        assert!(paths(("", "ConfigMap"), serde_json::json!({"data": {}})).is_empty());
    }

    #[test]
    fn pinnable_means_a_valid_reference_without_digest() {
        assert!(pinnable("nginx"));
        assert!(pinnable("r.example/app:1"));
        assert!(!pinnable(
            "r.example/app:1@sha256:0000000000000000000000000000000000000000000000000000000000000000"
        ));
        assert!(!pinnable(""));
        assert!(!pinnable("a b"));
    }
}
