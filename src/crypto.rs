//! The cryptography the Sigstore verifier runs on: `ring` (the TLS stack's
//! provider, so the binary carries one) for signatures over messages, and
//! RustCrypto's `p256`/`p384` for ECDSA over a digest the bundle gives
//! (message-signature bundles), which `ring` cannot verify.
//!
//! Verification only: this process never signs. Installed by the first
//! trusted root built ([`crate::policy::TrustRoot`]) or bundle verified.

use std::sync::Once;

use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use sha2::Digest as _;
use sigstore_verify::crypto::{CryptoProvider, Error, HashContext, Result, SigningScheme};
use sigstore_verify::types::HashAlgorithm;

/// The provider; installed once per process by [`install`].
#[derive(Debug)]
struct Provider;

static PROVIDER: Provider = Provider;
static INSTALL: Once = Once::new();

/// Installs the provider for the whole process (idempotent; every entry
/// point that verifies a bundle calls it first).
pub fn install() {
    INSTALL.call_once(|| {
        // Another provider can only be there if this process installed one
        // before `INSTALL` ran, which nothing does.
        let _ = sigstore_verify::crypto::install_default_provider(&PROVIDER);
    });
}

struct Hasher<D>(D);

impl<D: sha2::Digest + Send> HashContext for Hasher<D> {
    fn update(&mut self, data: &[u8]) {
        sha2::Digest::update(&mut self.0, data);
    }

    fn finalize(self: Box<Self>) -> Vec<u8> {
        self.0.finalize().to_vec()
    }
}

fn ring_algorithm(scheme: SigningScheme) -> Option<&'static dyn VerificationAlgorithm> {
    Some(match scheme {
        SigningScheme::EcdsaP256Sha256 => &signature::ECDSA_P256_SHA256_ASN1,
        SigningScheme::EcdsaP256Sha384 => &signature::ECDSA_P256_SHA384_ASN1,
        SigningScheme::EcdsaP384Sha256 => &signature::ECDSA_P384_SHA256_ASN1,
        SigningScheme::EcdsaP384Sha384 => &signature::ECDSA_P384_SHA384_ASN1,
        SigningScheme::Ed25519 => &signature::ED25519,
        SigningScheme::RsaPkcs1Sha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        SigningScheme::RsaPkcs1Sha384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        SigningScheme::RsaPkcs1Sha512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        SigningScheme::RsaPssSha256 => &signature::RSA_PSS_2048_8192_SHA256,
        SigningScheme::RsaPssSha384 => &signature::RSA_PSS_2048_8192_SHA384,
        SigningScheme::RsaPssSha512 => &signature::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

/// Whether `sig` is a signature by the raw public key `key` over `data`
/// under `scheme` (the key and signature encodings of [`CryptoProvider::verify_raw`]).
pub fn verifies(scheme: SigningScheme, key: &[u8], data: &[u8], sig: &[u8]) -> bool {
    verify_raw(scheme, key, data, sig).is_ok()
}

/// [`verifies`], saying why not: an unsupported scheme or a signature
/// that does not verify.
fn verify_raw(scheme: SigningScheme, key: &[u8], data: &[u8], sig: &[u8]) -> Result<()> {
    let algorithm = ring_algorithm(scheme).ok_or_else(|| unsupported(scheme, "signatures"))?;
    UnparsedPublicKey::new(algorithm, key)
        .verify(data, sig)
        .map_err(|_| invalid())
}

fn unsupported(scheme: SigningScheme, what: &str) -> Error {
    Error::UnsupportedAlgorithm(format!("{scheme:?} {what}"))
}

fn invalid() -> Error {
    Error::Verification("signature does not verify".into())
}

impl CryptoProvider for Provider {
    fn hash(&self, algorithm: HashAlgorithm) -> Result<Box<dyn HashContext>> {
        Ok(match algorithm {
            HashAlgorithm::Sha2256 => Box::new(Hasher(sha2::Sha256::new())),
            HashAlgorithm::Sha2384 => Box::new(Hasher(sha2::Sha384::new())),
            HashAlgorithm::Sha2512 => Box::new(Hasher(sha2::Sha512::new())),
            other => {
                return Err(Error::UnsupportedAlgorithm(format!("hash {other:?}")));
            }
        })
    }

    fn sha256(&self, data: &[u8]) -> [u8; 32] {
        sha2::Sha256::digest(data).into()
    }

    fn verify_raw(&self, scheme: SigningScheme, key: &[u8], data: &[u8], sig: &[u8]) -> Result<()> {
        verify_raw(scheme, key, data, sig)
    }

    fn verify_prehashed(
        &self,
        scheme: SigningScheme,
        key: &[u8],
        digest: &[u8],
        sig: &[u8],
    ) -> Result<()> {
        use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
        match scheme {
            SigningScheme::EcdsaP256Sha256 | SigningScheme::EcdsaP256Sha384 => {
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(key).map_err(|_| invalid())?;
                let sig = p256::ecdsa::Signature::from_der(sig).map_err(|_| invalid())?;
                key.verify_prehash(digest, &sig).map_err(|_| invalid())
            }
            SigningScheme::EcdsaP384Sha256 | SigningScheme::EcdsaP384Sha384 => {
                let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(key).map_err(|_| invalid())?;
                let sig = p384::ecdsa::Signature::from_der(sig).map_err(|_| invalid())?;
                key.verify_prehash(digest, &sig).map_err(|_| invalid())
            }
            _ => Err(unsupported(scheme, "signatures over a digest")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_sha2() {
        let mut h = PROVIDER.hash(HashAlgorithm::Sha2384).expect("sha384");
        h.update(b"ab");
        h.update(b"c");
        assert_eq!(h.finalize(), sha2::Sha384::digest(b"abc").to_vec());
        assert_eq!(
            PROVIDER.sha256(b"abc"),
            <[u8; 32]>::from(sha2::Sha256::digest(b"abc"))
        );
    }

    #[test]
    fn prehashed_p256_verifies_and_rejects() {
        use p256::ecdsa::signature::hazmat::PrehashSigner as _;
        let sk = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).expect("key");
        let digest = sha2::Sha256::digest(b"payload");
        let sig: p256::ecdsa::Signature = sk.sign_prehash(&digest).expect("sign");
        let der = sig.to_der();
        let point = sk.verifying_key().to_encoded_point(false);
        let scheme = SigningScheme::EcdsaP256Sha256;
        assert!(
            PROVIDER
                .verify_prehashed(scheme, point.as_bytes(), &digest, der.as_bytes())
                .is_ok()
        );
        let other = sha2::Sha256::digest(b"other");
        assert!(
            PROVIDER
                .verify_prehashed(scheme, point.as_bytes(), &other, der.as_bytes())
                .is_err()
        );
        // The same signature checked as a message signature over the payload.
        assert!(
            PROVIDER
                .verify_raw(scheme, point.as_bytes(), b"payload", der.as_bytes())
                .is_ok()
        );
        assert!(
            PROVIDER
                .verify_prehashed(
                    SigningScheme::Ed25519,
                    point.as_bytes(),
                    &digest,
                    der.as_bytes()
                )
                .is_err()
        );
    }
}
