//! Trusted cosign public keys ([`KeySet`]) and signature checks with them.
//!
//! ECDSA P-256 with SHA-256, ASN.1 DER signatures, as cosign's default key
//! type; the primitive is RustCrypto's `p256`. Keys are SubjectPublicKeyInfo
//! PEM (`-----BEGIN PUBLIC KEY-----`, cosign's `cosign.pub`).

use std::fmt;
use std::sync::Arc;

use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::{DecodePublicKey, EncodePublicKey};

use sha2::{Digest as _, Sha256};

/// Why a key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not a PEM `PUBLIC KEY` holding an ECDSA P-256 key.
    #[error("not an ECDSA P-256 public key in PEM (SubjectPublicKeyInfo) form")]
    Unsupported,
}

/// One trusted public key.
#[derive(Clone)]
pub struct PublicKey {
    key: VerifyingKey,
    /// sha256 of the SubjectPublicKeyInfo DER: identifies the key in
    /// requirement fingerprints and logs.
    id: [u8; 32],
}

impl PublicKey {
    /// Reads a PEM SubjectPublicKeyInfo (CRLF line ends tolerated).
    pub fn from_pem(pem: &str) -> Result<PublicKey, KeyError> {
        let clean: String = pem.replace('\r', "");
        let key =
            VerifyingKey::from_public_key_pem(clean.trim()).map_err(|_| KeyError::Unsupported)?;
        let der = key.to_public_key_der().map_err(|_| KeyError::Unsupported)?;
        Ok(PublicKey {
            key,
            id: Sha256::digest(der.as_bytes()).into(),
        })
    }

    /// sha256 of the key's SubjectPublicKeyInfo DER.
    pub fn id(&self) -> [u8; 32] {
        self.id
    }

    /// Whether `der_signature` (ASN.1 DER ECDSA) signs `message` (hashed
    /// with SHA-256 here) under this key.
    pub fn verifies(&self, message: &[u8], der_signature: &[u8]) -> bool {
        match Signature::from_der(der_signature) {
            Ok(sig) => self.key.verify(message, &sig).is_ok(),
            Err(_) => false,
        }
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PublicKey(sha256:")?;
        for b in self.id {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// The keys of one `verify` rule; any one of them suffices.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Arc<[PublicKey]>,
}

impl KeySet {
    /// A set of the given keys.
    pub fn new(keys: Vec<PublicKey>) -> KeySet {
        KeySet { keys: keys.into() }
    }

    /// The keys, in the order given.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// Whether any key verifies `der_signature` over `message`.
    pub fn verifies(&self, message: &[u8], der_signature: &[u8]) -> bool {
        self.keys.iter().any(|k| k.verifies(message, der_signature))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    const VECTORS: &str = include_str!("../../tests/fixtures/verify/cosign-test-vectors.json");

    #[test]
    fn spec_vectors_verify_and_tampered_fails() {
        let v: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
        let key = PublicKey::from_pem(v["public_key_pem"].as_str().unwrap()).unwrap();
        let ss = &v["simple_signing"];
        let sig = STANDARD
            .decode(ss["signature_annotation_b64"].as_str().unwrap())
            .unwrap();
        assert!(key.verifies(ss["payload_utf8"].as_str().unwrap().as_bytes(), &sig));
        let tampered = v["simple_signing_tampered"]["payload_utf8"]
            .as_str()
            .unwrap();
        assert!(!key.verifies(tampered.as_bytes(), &sig));
        assert!(!key.verifies(b"x", b"not der"));
    }

    #[test]
    fn rejects_non_keys() {
        assert!(PublicKey::from_pem("").is_err());
        assert!(
            PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")
                .is_err()
        );
    }
}
