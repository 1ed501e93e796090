//! ImageReview `imagepolicy.k8s.io/v1alpha1`, as the apiserver's
//! ImagePolicyWebhook plugin sends it (spec/imagereview.md).
//!
//! Read: `apiVersion`, `kind`, `spec.containers[].image` (containers, then
//! init containers, or the ephemeral containers, in one list; `{}` is an
//! empty image), `spec.annotations`, `spec.namespace`. `metadata` and the
//! request's `status` are skipped.

use crate::policy::Snapshot;

use super::error::DecodeError;
use super::extract::ImageOf;
use super::verdict::Verdicts;
use super::wire::{self, Annotations, List, Str, wire_object};
use super::{Api, Reviewed, respond};

/// The only version the plugin sends.
pub(super) const API_VERSION: &str = "imagepolicy.k8s.io/v1alpha1";
const KIND: &str = "ImageReview";

wire_object! {
    struct ImageReview<'a> {
        api_version: Str<'a> = "apiVersion",
        kind: Str<'a> = "kind",
        spec: Spec<'a> = "spec",
    }
}

wire_object! {
    struct Spec<'a> {
        containers: List<ImageOf<'a>> = "containers",
        annotations: Annotations<'a> = "annotations",
        namespace: Str<'a> = "namespace",
    }
}

pub(super) fn review(body: &mut [u8], snapshot: &Snapshot) -> Result<Reviewed, DecodeError> {
    let mut de = wire::tape(body)?;
    let review: ImageReview<'_> = wire::decode(&mut de)?;
    match review.api_version {
        Some(Str(API_VERSION)) => {}
        Some(Str(other)) => {
            return Err(DecodeError::wrong_api_version(
                other,
                "\"imagepolicy.k8s.io/v1alpha1\"",
            ));
        }
        None => return Err(DecodeError::missing("apiVersion")),
    }
    match review.kind {
        Some(Str(KIND)) => {}
        Some(Str(other)) => return Err(DecodeError::wrong_kind(other, "\"ImageReview\"")),
        None => return Err(DecodeError::missing("kind")),
    }
    let spec = review.spec.ok_or_else(|| DecodeError::missing("spec"))?;
    let namespace = spec.namespace.map_or("", |s| s.0);
    let annotations = spec.annotations.unwrap_or_default();
    let images = spec.containers.unwrap_or_default();
    let verdicts = Verdicts::judge(
        snapshot,
        namespace,
        &annotations.0,
        images.0.iter().map(|image| image.0),
    );
    Ok(Reviewed {
        body: respond::image_review(&verdicts),
        outcome: verdicts.outcome(Api::ImageReview, namespace),
    })
}
