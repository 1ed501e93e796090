//! Trusted cosign public keys ([`KeySet`]) and signature checks with them.
//!
//! The key types cosign signs with: ECDSA P-256 (its default, SHA-256),
//! ECDSA P-384 (SHA-384 as cosign v3 signs, or SHA-256 as cosign v2 did),
//! RSA of 2048 bits or more (PKCS#1 v1.5 or PSS with a salt as long as the
//! hash, SHA-256) and Ed25519; ASN.1 DER ECDSA signatures. Keys are
//! SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`, cosign's
//! `cosign.pub`). The primitives are `ring`'s, the TLS stack's provider.

use std::fmt;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};
use sigstore_verify::crypto::{KeyAlgorithm, SigningScheme, VerificationKey};
use sigstore_verify::types::DerPublicKey;

/// Why a key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not a PEM `PUBLIC KEY` of a kind cosign signs with.
    #[error(
        "not a cosign public key (ECDSA P-256 or P-384, RSA of 2048 bits or more, Ed25519) in PEM (SubjectPublicKeyInfo) form"
    )]
    Unsupported,
}

/// One trusted public key.
#[derive(Clone)]
pub struct PublicKey {
    /// The raw subjectPublicKey (SEC1 point, PKCS#1 RSAPublicKey, or the
    /// Ed25519 key).
    raw: Arc<[u8]>,
    /// The signature schemes a signature by this key may use.
    schemes: &'static [SigningScheme],
    /// sha256 of the SubjectPublicKeyInfo DER: identifies the key in
    /// requirement fingerprints and logs.
    id: [u8; 32],
}

impl PublicKey {
    /// Reads a PEM SubjectPublicKeyInfo (CRLF line ends tolerated).
    pub fn from_pem(pem: &str) -> Result<PublicKey, KeyError> {
        let clean: String = pem.replace('\r', "");
        let der = DerPublicKey::from_pem(clean.trim()).map_err(|_| KeyError::Unsupported)?;
        let schemes: &'static [SigningScheme] =
            match KeyAlgorithm::from_spki(&der).map_err(|_| KeyError::Unsupported)? {
                KeyAlgorithm::EcdsaP256 => &[SigningScheme::EcdsaP256Sha256],
                KeyAlgorithm::EcdsaP384 => &[
                    SigningScheme::EcdsaP384Sha384,
                    SigningScheme::EcdsaP384Sha256,
                ],
                KeyAlgorithm::Rsa => &[SigningScheme::RsaPkcs1Sha256, SigningScheme::RsaPssSha256],
                KeyAlgorithm::Ed25519 => &[SigningScheme::Ed25519],
                _ => return Err(KeyError::Unsupported),
            };
        // The raw key, checked for its scheme (uncompressed points, RSA
        // modulus size) before any signature is.
        let key = VerificationKey::from_spki_with_scheme(&der, schemes[0])
            .map_err(|_| KeyError::Unsupported)?;
        sigstore_verify::crypto::validate_raw_public_key(schemes[0], key.as_bytes())
            .map_err(|_| KeyError::Unsupported)?;
        Ok(PublicKey {
            raw: key.as_bytes().into(),
            schemes,
            id: Sha256::digest(der.as_bytes()).into(),
        })
    }

    /// sha256 of the key's SubjectPublicKeyInfo DER.
    pub fn id(&self) -> [u8; 32] {
        self.id
    }

    /// Whether `signature` (ASN.1 DER for ECDSA) signs `message` under
    /// this key, in one of the schemes cosign uses with its kind.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        self.schemes
            .iter()
            .any(|&scheme| crate::crypto::verifies(scheme, &self.raw, message, signature))
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

    /// Whether any key verifies `signature` over `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        self.keys.iter().any(|k| k.verifies(message, signature))
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
