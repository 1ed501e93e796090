//! Judging outside the server, with the server's engine: Kubernetes
//! manifests (`check -f`), recorded reviews (`replay`) and policy test
//! suites (`test`).
//!
//! Every object goes through [`crate::review`], the code `/validate` and
//! `/imagepolicy` run; this module only reads files and streams, verifies
//! at registries when `verify` rules apply, and tallies.

pub mod manifests;
pub mod records;
pub mod replay;
pub mod suite;
pub mod verify;
pub mod yaml;

pub use verify::Verifications;

use crate::policy::User;
use crate::review::{self, DecodeError, Judged, ObjectContext};

/// Judges image strings as the containers of one Pod in `namespace` with
/// the pod `annotations`, through the `/validate` path (so `check IMAGE`
/// and a manifest agree), verifying them first when `verify` rules apply.
pub fn images(
    images: &[String],
    namespace: &str,
    annotations: &[(&str, &str)],
    user: Option<User<'_>>,
    verifications: &mut Verifications,
) -> Result<Judged, DecodeError> {
    let annotations: serde_json::Map<String, serde_json::Value> = annotations
        .iter()
        .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
        .collect();
    let containers: Vec<serde_json::Value> = images
        .iter()
        .map(|image| serde_json::json!({ "image": image }))
        .collect();
    let pod = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "namespace": namespace, "annotations": annotations },
        "spec": { "containers": containers },
    });
    let body = serde_json::to_vec(&pod).unwrap_or_default();
    let ctx = ObjectContext { namespace, user };
    let engine = std::sync::Arc::clone(verifications.engine());
    let snapshot = engine.policy();
    let mut body = body;
    let parsed = review::parse_object(&mut body)?;
    if verifications.needed() {
        verifications.verify(parsed.pending(snapshot, &ctx));
    }
    Ok(parsed.judged(snapshot, &ctx, verifications.checks()))
}
