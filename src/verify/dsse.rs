//! DSSE envelopes (`secure-systems-lab/dsse` v1.0.2) and the in-toto
//! Statements inside them (v0.1 and v1).
//!
//! A signature is checked over the Pre-Authentication Encoding of the
//! decoded payload, never over the base64 text; after that, exactly the
//! verified bytes are parsed as the statement.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde::Deserialize;

use super::digest::Digest;
use crate::policy::KeySet;

/// The payload type cosign requires for attestations.
pub(crate) const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
const STATEMENT_V01: &str = "https://in-toto.io/Statement/v0.1";
const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";

/// A DSSE envelope as found in a `.att` layer or a Sigstore bundle.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    /// The media type of the payload.
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// base64 of the payload.
    pub payload: String,
    /// The signatures; any one verified by a trusted key suffices.
    #[serde(default)]
    pub signatures: Vec<EnvelopeSignature>,
}

/// One DSSE signature.
#[derive(Debug, Deserialize)]
pub struct EnvelopeSignature {
    /// base64 of the signature over the PAE.
    #[serde(default)]
    pub sig: String,
}

/// `PAE(type, body)` = `DSSEv1 SP LEN(type) SP type SP LEN(body) SP body`.
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload_type.len() + body.len() + 32);
    out.extend_from_slice(
        format!(
            "DSSEv1 {} {} {} ",
            payload_type.len(),
            payload_type,
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(body);
    out
}

/// Decodes base64 in the standard or URL-safe alphabet, padded or not.
pub(crate) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let t = text.trim();
    [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(t).ok())
}

impl Envelope {
    /// The decoded payload if the envelope is an in-toto one and a trusted
    /// key signed its PAE; `None` otherwise.
    pub fn verified_payload(&self, keys: &KeySet) -> Option<Vec<u8>> {
        if self.payload_type != IN_TOTO_PAYLOAD_TYPE {
            return None;
        }
        let body = decode_base64(&self.payload)?;
        let message = pae(&self.payload_type, &body);
        let signed = self
            .signatures
            .iter()
            .filter_map(|s| decode_base64(&s.sig))
            .any(|sig| keys.verifies(&message, &sig));
        signed.then_some(body)
    }
}

/// An in-toto Statement, v0.1 or v1, with the predicate kept as JSON.
#[derive(Debug, Deserialize)]
pub struct Statement {
    /// `https://in-toto.io/Statement/v0.1` or `/v1`.
    #[serde(rename = "_type")]
    pub kind: String,
    /// The subjects; matched by `digest.sha256` only.
    #[serde(default)]
    pub subject: Vec<Subject>,
    /// The predicate type URI.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The predicate (absent = null).
    #[serde(default)]
    pub predicate: serde_json::Value,
}

/// A statement subject (ResourceDescriptor).
#[derive(Debug, Deserialize)]
pub struct Subject {
    /// Algorithm → lower-case hex.
    #[serde(default)]
    pub digest: std::collections::BTreeMap<String, String>,
}

impl Statement {
    /// Parses verified payload bytes; `None` if they are not a statement of
    /// a known version.
    pub fn parse(bytes: &[u8]) -> Option<Statement> {
        let s: Statement = serde_json::from_slice(bytes).ok()?;
        (s.kind == STATEMENT_V01 || s.kind == STATEMENT_V1).then_some(s)
    }

    /// Whether one subject's sha256 is `digest`.
    pub fn names(&self, digest: &Digest) -> bool {
        self.subject
            .iter()
            .filter_map(|s| s.digest.get("sha256"))
            .any(|hex| Digest::from_hex(hex).is_some_and(|d| d == *digest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PublicKey;

    const VECTORS: &str = include_str!("../../tests/fixtures/verify/cosign-test-vectors.json");

    #[test]
    fn spec_pae_example() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn spec_envelope_verifies() {
        let v: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
        let keys = KeySet::new(vec![
            PublicKey::from_pem(v["public_key_pem"].as_str().unwrap()).unwrap(),
        ]);
        let env: Envelope = serde_json::from_value(v["dsse"]["envelope"].clone()).unwrap();
        let body = env.verified_payload(&keys).unwrap();
        assert_eq!(
            body,
            v["dsse"]["statement_utf8"].as_str().unwrap().as_bytes()
        );
        let st = Statement::parse(&body).unwrap();
        assert!(st.names(&Digest::parse(v["image_digest"].as_str().unwrap()).unwrap()));
        assert_eq!(
            st.predicate_type,
            "https://cosign.sigstore.dev/attestation/vuln/v1"
        );

        // a changed payload type or payload breaks the signature
        let mut other: Envelope = serde_json::from_value(v["dsse"]["envelope"].clone()).unwrap();
        other.payload.replace_range(10..11, "A");
        assert!(other.verified_payload(&keys).is_none());
        let mut typ: Envelope = serde_json::from_value(v["dsse"]["envelope"].clone()).unwrap();
        typ.payload_type = "application/vnd.in-toto.x+json".into();
        assert!(typ.verified_payload(&keys).is_none());
    }

    #[test]
    fn statement_versions() {
        assert!(
            Statement::parse(br#"{"_type":"https://in-toto.io/Statement/v2","predicateType":"x"}"#)
                .is_none()
        );
        assert!(Statement::parse(b"[]").is_none());
        let s = Statement::parse(br#"{"_type":"https://in-toto.io/Statement/v1","predicateType":"x","subject":[{"digest":{"sha256":"AB"}}]}"#).unwrap();
        assert!(s.predicate.is_null());
    }
}
