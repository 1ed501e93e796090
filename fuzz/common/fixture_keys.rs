//! The test key pairs of `tests/fixtures/verify/keys`, shared by the fuzz
//! targets that sign their input so that verification is reached. Included
//! with `#[path]` (files in `fuzz_targets/` are targets).

use std::sync::LazyLock;

use imagegate::policy::{KeySet, PublicKey};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::DecodePrivateKey as _;

static SIGNER: LazyLock<SigningKey> = LazyLock::new(|| {
    SigningKey::from_pkcs8_pem(include_str!(
        "../../tests/fixtures/verify/keys/cosign.pkcs8.pem"
    ))
    .expect("fixture private key")
});

/// The public half of the signing key.
pub static TRUSTED: LazyLock<KeySet> =
    LazyLock::new(|| keys(include_str!("../../tests/fixtures/verify/keys/cosign.pub")));

/// A key that signed nothing here.
#[allow(dead_code)] // not every target needs it
pub static OTHER: LazyLock<KeySet> =
    LazyLock::new(|| keys(include_str!("../../tests/fixtures/verify/keys/other.pub")));

fn keys(pem: &str) -> KeySet {
    KeySet::new(vec![PublicKey::from_pem(pem).expect("fixture public key")])
}

/// An ECDSA P-256 / SHA-256 signature over `message`, DER-encoded.
pub fn sign(message: &[u8]) -> Vec<u8> {
    Signer::<Signature>::sign(&*SIGNER, message)
        .to_der()
        .as_bytes()
        .to_vec()
}
