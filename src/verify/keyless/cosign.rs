//! cosign v2 keyless signatures and attestations, as cosign stores them in
//! `.sig` and `.att` images: the signature in the layer's
//! `dev.cosignproject.cosign/signature` annotation, the Fulcio certificate
//! and its chain in `dev.sigstore.cosign/certificate` and `.../chain`, the
//! Rekor entry's SET in `dev.sigstore.cosign/bundle`, and an optional RFC
//! 3161 timestamp in `dev.sigstore.cosign/rfc3161timestamp`. They are
//! rewritten as the Sigstore bundle v0.1 they are equivalent to, so that
//! the one verifier checks them (the layer annotations are the evidence;
//! nothing in them is believed before it verifies).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use sigstore_verify::types::{Bundle, DerCertificate};
use x509_cert::der::Decode as _;

/// The annotations of cosign's keyless material.
pub(crate) const CERTIFICATE: &str = "dev.sigstore.cosign/certificate";
const CHAIN: &str = "dev.sigstore.cosign/chain";
const REKOR_BUNDLE: &str = "dev.sigstore.cosign/bundle";
const TIMESTAMP: &str = "dev.sigstore.cosign/rfc3161timestamp";
const SIGNATURE: &str = "dev.cosignproject.cosign/signature";

/// Certificates read from one annotation, at most.
const MAX_CHAIN: usize = 8;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RekorBundle {
    signed_entry_timestamp: String,
    payload: RekorPayload,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RekorPayload {
    body: String,
    integrated_time: i64,
    log_index: i64,
    #[serde(rename = "logID")]
    log_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Timestamp {
    #[serde(rename = "SignedRFC3161Timestamp")]
    signed_rfc3161_timestamp: String,
}

/// Whether a layer carries keyless material (a certificate).
pub(crate) fn is_keyless(annotations: &BTreeMap<String, String>) -> bool {
    annotations.contains_key(CERTIFICATE)
}

/// The bundle a `.sig` layer is: a message signature over `payload`.
pub(crate) fn signature_bundle(
    payload: &[u8],
    annotations: &BTreeMap<String, String>,
) -> Option<Bundle> {
    let signature = annotations.get(SIGNATURE)?;
    let content = json!({
        "messageDigest": {"algorithm": "SHA2_256", "digest": STANDARD.encode(Sha256::digest(payload))},
        "signature": signature,
    });
    bundle(annotations, "messageSignature", content)
}

/// The bundle an `.att` layer is: its DSSE envelope (`envelope`, the layer
/// blob) with the layer's keyless material.
pub(crate) fn attestation_bundle(
    envelope: &[u8],
    annotations: &BTreeMap<String, String>,
) -> Option<Bundle> {
    let envelope: Value = serde_json::from_slice(envelope).ok()?;
    bundle(annotations, "dsseEnvelope", envelope)
}

/// A v0.1 bundle of the layer's material and `content` (its
/// `messageSignature` or `dsseEnvelope`, by `kind`).
fn bundle(annotations: &BTreeMap<String, String>, kind: &str, content: Value) -> Option<Bundle> {
    let leaf = DerCertificate::from_pem(annotations.get(CERTIFICATE)?).ok()?;
    let mut certificates = vec![json!({"rawBytes": STANDARD.encode(leaf.as_bytes())})];
    // The chain's intermediates; its self-signed root is the trusted
    // root's to give, never the signature's.
    for pem in pem_blocks(annotations.get(CHAIN).map_or("", String::as_str)).take(MAX_CHAIN) {
        let der = DerCertificate::from_pem(pem).ok()?;
        let cert = x509_cert::Certificate::from_der(der.as_bytes()).ok()?;
        if cert.tbs_certificate.issuer != cert.tbs_certificate.subject {
            certificates.push(json!({"rawBytes": STANDARD.encode(der.as_bytes())}));
        }
    }
    let rekor: RekorBundle = serde_json::from_str(annotations.get(REKOR_BUNDLE)?).ok()?;
    let body = STANDARD.decode(&rekor.payload.body).ok()?;
    let body: Value = serde_json::from_slice(&body).ok()?;
    let log_id = hex_decode(&rekor.payload.log_id)?;
    let mut material = json!({
        "x509CertificateChain": {"certificates": certificates},
        "tlogEntries": [{
            "logIndex": rekor.payload.log_index.to_string(),
            "logId": {"keyId": STANDARD.encode(log_id)},
            "kindVersion": {"kind": body.get("kind")?, "version": body.get("apiVersion")?},
            "integratedTime": rekor.payload.integrated_time.to_string(),
            "inclusionPromise": {"signedEntryTimestamp": rekor.signed_entry_timestamp},
            "canonicalizedBody": rekor.payload.body,
        }],
    });
    if let Some(ts) = annotations.get(TIMESTAMP) {
        let ts: Timestamp = serde_json::from_str(ts).ok()?;
        material["timestampVerificationData"] =
            json!({"rfc3161Timestamps": [{"signedTimestamp": ts.signed_rfc3161_timestamp}]});
    }
    let mut bundle = json!({
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "verificationMaterial": material,
    });
    bundle[kind] = content;
    Bundle::from_json(&bundle.to_string()).ok()
}

fn pem_blocks(text: &str) -> impl Iterator<Item = &str> {
    const END: &str = "-----END CERTIFICATE-----";
    let mut rest = text;
    std::iter::from_fn(move || {
        let start = rest.find("-----BEGIN CERTIFICATE-----")?;
        let end = rest[start..].find(END)? + start + END.len();
        let block = &rest[start..end];
        rest = &rest[end..];
        Some(block)
    })
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2)
        || text.len() > 128
        || !text.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Identity, Keyless, Matcher, TrustRoot};
    use crate::verify::keyless::{Rejected, Trust, verify};
    use crate::verify::simple_signing::payload_digest;
    use sigstore_verify::types::Artifact;

    /// (payload, annotations, digest, subject, issuer) of a real sample.
    fn sample(dir: &str) -> (Vec<u8>, BTreeMap<String, String>) {
        let base = format!(
            "{}/tests/fixtures/sigstore/cosign-v2/{dir}",
            env!("CARGO_MANIFEST_DIR")
        );
        let payload = std::fs::read(format!("{base}/payload.json")).expect("payload");
        let annotations =
            std::fs::read_to_string(format!("{base}/annotations.json")).expect("annotations");
        (payload, serde_json::from_str(&annotations).expect("json"))
    }

    fn identity(issuer: &str, subject: &str) -> Keyless {
        let id = Identity::new(
            Matcher::Exact(issuer.into()),
            Matcher::Exact(subject.into()),
            Vec::new(),
        );
        Keyless::new(vec![id], TrustRoot::production())
    }

    #[test]
    fn real_cosign_v2_keyless_signatures_verify_with_the_embedded_root() {
        let cases = [
            (
                "containers-image",
                "sha256:0489474d",
                "https://github.com/login/oauth",
                "mitr@redhat.com",
            ),
            (
                "go-bazel-v0.0.30",
                "sha256:c05263d2ff654c3a94243662440913f045075d59c436e2c69e9145ec2b87a321",
                "https://token.actions.githubusercontent.com",
                "https://github.com/salrashid123/go-bazel-github-workflow/.github/workflows/release.yaml@refs/tags/v0.0.30",
            ),
        ];
        for (dir, digest, issuer, subject) in cases {
            let (payload, annotations) = sample(dir);
            assert!(is_keyless(&annotations));
            let bundle = signature_bundle(&payload, &annotations).expect("a bundle");
            let trust = identity(issuer, subject);
            verify(
                &bundle,
                Artifact::from_blob(&payload),
                Trust::Keyless(&trust),
            )
            .unwrap_or_else(|e| panic!("{dir}: {e}"));
            let named = payload_digest(&payload).expect("digest").to_string();
            assert!(named.starts_with(digest), "{dir}: {named}");
            // another identity: verified, then refused
            let other = identity(issuer, "someone@example.com");
            assert!(matches!(
                verify(
                    &bundle,
                    Artifact::from_blob(&payload),
                    Trust::Keyless(&other)
                ),
                Err(Rejected::Identity { .. })
            ));
            // a payload changed by one byte
            let mut changed = payload.clone();
            changed[10] ^= 1;
            let bundle = signature_bundle(&changed, &annotations).expect("a bundle");
            assert!(
                verify(
                    &bundle,
                    Artifact::from_blob(&changed),
                    Trust::Keyless(&trust)
                )
                .is_err()
            );
            // the Rekor bundle of another signature
            let (_, theirs) = sample(if dir == "containers-image" {
                "go-bazel-v0.0.30"
            } else {
                "containers-image"
            });
            let mut mixed = annotations.clone();
            mixed.insert(REKOR_BUNDLE.into(), theirs[REKOR_BUNDLE].clone());
            let bundle = signature_bundle(&payload, &mixed).expect("a bundle");
            assert!(
                verify(
                    &bundle,
                    Artifact::from_blob(&payload),
                    Trust::Keyless(&trust)
                )
                .is_err(),
                "{dir}"
            );
            // no certificate: not keyless material
            let mut bare = annotations.clone();
            bare.remove(CERTIFICATE);
            assert!(!is_keyless(&bare) && signature_bundle(&payload, &bare).is_none());
        }
    }

    #[test]
    fn hostile_annotations_are_no_bundle() {
        let (payload, annotations) = sample("go-bazel-v0.0.30");
        for (key, value) in [
            (CERTIFICATE, "not a pem"),
            (REKOR_BUNDLE, "{}"),
            (
                REKOR_BUNDLE,
                "{\"SignedEntryTimestamp\":\"\",\"Payload\":{\"body\":\"!!\",\"integratedTime\":1,\"logIndex\":1,\"logID\":\"zz\"}}",
            ),
            (
                CHAIN,
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            ),
            (TIMESTAMP, "[]"),
        ] {
            let mut a = annotations.clone();
            a.insert(key.into(), value.into());
            assert!(signature_bundle(&payload, &a).is_none(), "{key}: {value}");
        }
        assert_eq!(hex_decode("0aff"), Some(vec![10, 255]));
        assert_eq!(hex_decode("0"), None);
        assert_eq!(hex_decode("zz"), None);
        assert_eq!(hex_decode("+a"), None);
    }
}
