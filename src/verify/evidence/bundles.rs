//! Sigstore bundles among a digest's referrers (cosign v3 signatures and
//! attestations): the referrers listed (API and fallback tag), then every
//! referrer's manifest and bundle blob fetched concurrently, so that a cold
//! look costs the listing and two round trips whatever the number of
//! referrers; each bundle then judged, keyless first, then by key.

use serde::Deserialize;

use super::{
    Evidence, MAX_ITEMS, SIGN_PREDICATE, keyless_statement, layer_blob, statement, untampered,
};
use crate::policy::Requirement;
use crate::verify::digest::Digest;
use crate::verify::dsse::Envelope;
use crate::verify::registry::{Descriptor, Manifest, Registry, RegistryError, Repository};

/// Artifact type of a Sigstore bundle v0.3 referrer.
pub(crate) const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// The parts of a bundle the keyed path reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bundle {
    #[serde(default)]
    media_type: String,
    #[serde(default)]
    dsse_envelope: Option<Envelope>,
}

/// What one referrer gave: whether its descriptor says it is a signature,
/// and its bundle blob, if it has one that is not tampered with.
type Fetched = (bool, Option<bytes::Bytes>);

pub(super) async fn bundles(
    registry: &Registry,
    repo: &Repository,
    digest: Digest,
    req: &Requirement,
) -> Result<Evidence, RegistryError> {
    let referrers =
        untampered(registry.referrers(repo, digest).await.map(Some))?.unwrap_or_default();
    // Whatever artifactType the index lists (clients and the fallback tag
    // differ): the layer's media type decides. Bundle-typed ones first,
    // within the bound on work per digest.
    let (typed, other): (Vec<&Descriptor>, Vec<&Descriptor>) = referrers
        .iter()
        .partition(|d| d.artifact_type.as_deref().is_some_and(is_bundle_type));
    let fetches = typed
        .into_iter()
        .chain(other)
        .take(MAX_ITEMS)
        .map(|desc| fetch(registry, repo, digest, desc));
    let fetched = futures_util::future::join_all(fetches).await;
    let mut ev = Evidence::default();
    let mut blobs = Vec::new();
    for item in fetched {
        match item {
            Ok((hinted_signature, blob)) => {
                ev.signature_present |= hinted_signature;
                blobs.extend(blob);
            }
            Err(e) => {
                ev.failed.get_or_insert(e);
            }
        }
    }
    if blobs.is_empty() {
        return Ok(ev);
    }
    // Checking a bundle is CPU work (up to a few milliseconds each, a
    // certificate chain, log and timestamp signatures): off the async
    // workers, so that other reviews keep being answered meanwhile. A
    // check that panicked counts as no evidence (a denial), never a pass.
    let req = req.clone();
    let judged = tokio::task::spawn_blocking(move || {
        let mut ev = Evidence::default();
        for blob in &blobs {
            judge(&mut ev, blob, &req, &digest);
        }
        ev
    })
    .await
    .unwrap_or_default();
    ev.merge(judged);
    Ok(ev)
}

/// One referrer's manifest, then its bundle layer.
async fn fetch(
    registry: &Registry,
    repo: &Repository,
    digest: Digest,
    desc: &Descriptor,
) -> Result<Fetched, RegistryError> {
    let Ok(manifest_digest) = Digest::parse(&desc.digest) else {
        return Ok((false, None));
    };
    let Some(fetched) = untampered(
        registry
            .manifest(repo, &desc.digest, Some(manifest_digest))
            .await,
    )?
    else {
        return Ok((false, None));
    };
    let Some(manifest) = Manifest::parse(&fetched.bytes, fetched.media_type.as_deref()) else {
        return Ok((false, None));
    };
    if manifest
        .subject
        .as_ref()
        .is_some_and(|s| Digest::parse(&s.digest).ok() != Some(digest))
    {
        return Ok((false, None));
    }
    let Some(layer) = manifest
        .layers
        .iter()
        .find(|l| is_bundle_type(&l.media_type))
    else {
        return Ok((false, None));
    };
    let hinted_signature = desc
        .annotations
        .get("dev.sigstore.bundle.predicateType")
        .is_some_and(|p| p == SIGN_PREDICATE);
    let limit = registry.config().max_blob_bytes;
    Ok((
        hinted_signature,
        layer_blob(registry, repo, layer, limit).await?,
    ))
}

/// One bundle's statement into `ev`, if it verifies for `digest`.
fn judge(ev: &mut Evidence, blob: &[u8], req: &Requirement, digest: &Digest) {
    if let Some(keyless) = req.keyless() {
        match keyless_statement(blob, keyless, digest) {
            Ok(st) => {
                ev.record(st);
                return;
            }
            // Keys may still verify it (any one listed key or identity
            // suffices); what it claims to be decides between a missing
            // and an invalid signature.
            Err(claims_signature) => ev.signature_present |= claims_signature,
        }
    }
    let Ok(bundle) = serde_json::from_slice::<Bundle>(blob) else {
        return;
    };
    let Some(envelope) = bundle
        .dsse_envelope
        .filter(|_| is_bundle_type(&bundle.media_type))
    else {
        return;
    };
    if let Some(st) = statement(&envelope, req, digest) {
        ev.record(st);
    }
}

pub(crate) fn is_bundle_type(media_type: &str) -> bool {
    media_type == BUNDLE_V03
        || media_type
            .strip_prefix("application/vnd.dev.sigstore.bundle+json;version=")
            .is_some_and(|v| matches!(v, "0.1" | "0.2" | "0.3"))
}
