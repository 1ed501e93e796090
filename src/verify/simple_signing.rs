//! cosign "simple signing" payloads (`.sig` tag layers): the signature is
//! over the exact payload bytes, and the payload must name the image digest.
//!
//! Go's JSON decoder matches object keys case-insensitively, so cosign
//! accepts `Docker-manifest-digest` as well as `docker-manifest-digest`; so
//! do we (an exact match wins).

use serde_json::{Map, Value};

use super::digest::Digest;
use super::dsse::decode_base64;
use crate::policy::KeySet;

/// `critical.type` of a cosign image signature.
pub(crate) const SIGNATURE_TYPE: &str = "cosign container image signature";

/// What one signature layer proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Signed by a trusted key, over this image's digest.
    Valid,
    /// Present but not acceptable (bad signature, unknown key, other digest,
    /// wrong type, malformed payload).
    Invalid,
}

/// Checks one simple-signing layer: `payload` is the blob (its descriptor
/// digest already checked), `signature_b64` the
/// `dev.cosignproject.cosign/signature` annotation.
pub(crate) fn check(payload: &[u8], signature_b64: &str, keys: &KeySet, digest: &Digest) -> Check {
    if signed_image_digest(payload, signature_b64, keys) == Some(*digest) {
        Check::Valid
    } else {
        Check::Invalid
    }
}

/// The image digest a cosign signature payload vouches for: `Some` only if
/// `signature_b64` (base64 of an ASN.1 DER ECDSA signature, the
/// `dev.cosignproject.cosign/signature` annotation) is a signature by one of
/// `keys` over exactly `payload`, and the payload is a cosign container
/// image signature naming a sha256 `critical.image.docker-manifest-digest`.
///
/// The payload is parsed only after its signature verifies. The caller still
/// compares the digest with the image under review.
pub fn signed_image_digest(payload: &[u8], signature_b64: &str, keys: &KeySet) -> Option<Digest> {
    let sig = decode_base64(signature_b64)?;
    if sig.is_empty() || !keys.verifies(payload, &sig) {
        return None;
    }
    payload_digest(payload)
}

/// The sha256 `critical.image.docker-manifest-digest` of a cosign container
/// image signature payload whose signature the caller has verified.
pub(crate) fn payload_digest(payload: &[u8]) -> Option<Digest> {
    let Ok(Value::Object(root)) = serde_json::from_slice::<Value>(payload) else {
        return None;
    };
    let Some(Value::Object(critical)) = field(&root, "critical") else {
        return None;
    };
    if !matches!(field(critical, "type"), Some(Value::String(t)) if t == SIGNATURE_TYPE) {
        return None;
    }
    match field(critical, "image") {
        Some(Value::Object(image)) => match field(image, "docker-manifest-digest") {
            Some(Value::String(d)) => Digest::parse(d).ok(),
            _ => None,
        },
        _ => None,
    }
}

/// `key` exactly, else the first case-insensitive match.
fn field<'m>(map: &'m Map<String, Value>, key: &str) -> Option<&'m Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PublicKey;

    const VECTORS: &str = include_str!("../../tests/fixtures/verify/cosign-test-vectors.json");

    fn setup() -> (Value, KeySet, Digest) {
        let v: Value = serde_json::from_str(VECTORS).unwrap();
        let keys = KeySet::new(vec![
            PublicKey::from_pem(v["public_key_pem"].as_str().unwrap()).unwrap(),
        ]);
        let d = Digest::parse(v["image_digest"].as_str().unwrap()).unwrap();
        (v, keys, d)
    }

    #[test]
    fn vector_valid_tampered_and_other_digest() {
        let (v, keys, d) = setup();
        let ss = &v["simple_signing"];
        let payload = ss["payload_utf8"].as_str().unwrap().as_bytes();
        let sig = ss["signature_annotation_b64"].as_str().unwrap();
        assert_eq!(check(payload, sig, &keys, &d), Check::Valid);
        assert_eq!(signed_image_digest(payload, sig, &keys), Some(d));
        let other = Digest::of(b"another image");
        assert_eq!(check(payload, sig, &keys, &other), Check::Invalid);
        let tampered = v["simple_signing_tampered"]["payload_utf8"]
            .as_str()
            .unwrap();
        assert_eq!(check(tampered.as_bytes(), sig, &keys, &d), Check::Invalid);
        assert_eq!(signed_image_digest(tampered.as_bytes(), sig, &keys), None);
        assert_eq!(check(payload, "", &keys, &d), Check::Invalid);
        assert_eq!(check(payload, "%%%", &keys, &d), Check::Invalid);
        assert_eq!(check(payload, sig, &KeySet::default(), &d), Check::Invalid);
    }

    #[test]
    fn key_lookup_is_case_insensitive_exact_first() {
        let mut m = Map::new();
        m.insert("Docker-manifest-digest".into(), Value::from("a"));
        assert_eq!(field(&m, "docker-manifest-digest"), Some(&Value::from("a")));
        m.insert("docker-manifest-digest".into(), Value::from("b"));
        assert_eq!(field(&m, "docker-manifest-digest"), Some(&Value::from("b")));
    }
}
