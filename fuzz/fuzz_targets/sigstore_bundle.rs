//! Sigstore bundles and cosign v2 keyless layers from a registry: arbitrary
//! bytes parsed as a bundle and, when they parse, verified against the
//! fixture root for a fixed digest never panic; cosign layer annotations
//! built from the input never panic either.

#![no_main]

use std::collections::BTreeMap;
use std::sync::LazyLock;

use imagegate::policy::{Identity, Keyless, Matcher, TrustRoot};
use imagegate::verify::keyless::{Trust, cosign_signature, parse, verify};
use libfuzzer_sys::fuzz_target;
use sigstore_verify::types::{Artifact, Sha256Hash};

static KEYLESS: LazyLock<Keyless> = LazyLock::new(|| {
    let root = include_str!("../../tests/fixtures/verify/keyless/trusted_root.json");
    let id = Identity::new(
        Matcher::Exact("https://token.actions.githubusercontent.com".into()),
        Matcher::pattern("https://github\\.com/fixtures/.*").expect("pattern"),
        Vec::new(),
    );
    Keyless::new(vec![id], TrustRoot::from_json(root).expect("root"))
});

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(bundle) = parse(text)
    {
        let digest = Sha256Hash::new([7; 32]);
        let _ = verify(
            &bundle,
            Artifact::from_digest(digest),
            Trust::Keyless(&KEYLESS),
        );
        let _ = verify(&bundle, Artifact::from_blob(data), Trust::Keyless(&KEYLESS));
    }
    // the input split into a payload and cosign's annotations
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(5, '\u{1f}');
    let payload = parts.next().unwrap_or("");
    let mut annotations = BTreeMap::new();
    for key in [
        "dev.sigstore.cosign/certificate",
        "dev.sigstore.cosign/chain",
        "dev.sigstore.cosign/bundle",
        "dev.cosignproject.cosign/signature",
    ] {
        if let Some(value) = parts.next() {
            annotations.insert(key.to_owned(), value.to_owned());
        }
    }
    let _ = cosign_signature(payload.as_bytes(), &annotations, &KEYLESS);
});
