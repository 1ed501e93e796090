//! Keyless verification CPU cost, no network: one Sigstore bundle checked
//! end to end (certificate chain, SCT, transparency-log SET and inclusion
//! proof, signature, identity) for an image digest, the way a cold
//! verification checks each bundle it fetches.
//!
//! - `keyless/cosign_v3_bundle_mock_root`: a cosign v3 signature bundle
//!   (DSSE, Rekor intoto entry) made by sigstore-js against the fixture
//!   mocks, P-256 CA.
//! - `keyless/cosign_v3_bundle_public_good`: a real cosign v3 image
//!   signature from the public-good instance (P-384 CA chain, TSA
//!   timestamp), with the embedded production root.
//! - `keyless/cosign_v2_sig_layer`: a real cosign v2 keyless `.sig` layer
//!   rewritten as a bundle and verified (production root).
//! - `keyless/trusted_root_load`: parsing and preparing a trusted root
//!   (once per policy load).

#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use imagegate::policy::{Identity, Keyless, Matcher, TrustRoot};
use imagegate::verify::keyless::{Trust, parse, verify};
use sigstore_verify::types::{Artifact, Sha256Hash};

fn fixture(path: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn keyless(issuer: &str, subject: &str, root: TrustRoot) -> Keyless {
    let id = Identity::new(
        Matcher::Exact(issuer.into()),
        Matcher::Exact(subject.into()),
        Vec::new(),
    );
    Keyless::new(vec![id], root)
}

fn digest(text: &str) -> Sha256Hash {
    Sha256Hash::from_hex(text.trim().trim_start_matches("sha256:")).unwrap()
}

/// Benches verifying the bundle in fixture `file` for `image` under
/// `trust`, once checked to verify outside the timed loop.
fn bundle(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    file: &str,
    image: Sha256Hash,
    trust: &Keyless,
) {
    let bundle = parse(&fixture(file)).unwrap();
    verify(&bundle, Artifact::from_digest(image), Trust::Keyless(trust)).unwrap();
    group.bench_function(name, |b| {
        b.iter(|| {
            verify(
                black_box(&bundle),
                Artifact::from_digest(image),
                Trust::Keyless(trust),
            )
            .unwrap();
        });
    });
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("keyless");

    let mock_root = fixture("verify/keyless/trusted_root.json");
    let mock = keyless(
        "https://token.actions.githubusercontent.com",
        "https://github.com/fixtures/app/.github/workflows/release.yml@refs/heads/main",
        TrustRoot::from_json(&mock_root).unwrap(),
    );
    bundle(
        &mut group,
        "cosign_v3_bundle_mock_root",
        "verify/keyless/app.sign.bundle.json",
        digest(&fixture("verify/images/app.digest")),
        &mock,
    );

    let public = keyless(
        "https://token.actions.githubusercontent.com",
        "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0",
        TrustRoot::production(),
    );
    bundle(
        &mut group,
        "cosign_v3_bundle_public_good",
        "sigstore/conformance/real/sigstore-rs__cosign-v3-image.sigstore.json",
        digest("c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172"),
        &public,
    );

    let v2 = keyless(
        "https://token.actions.githubusercontent.com",
        "https://github.com/salrashid123/go-bazel-github-workflow/.github/workflows/release.yaml@refs/tags/v0.0.30",
        TrustRoot::production(),
    );
    let payload = fixture("sigstore/cosign-v2/go-bazel-v0.0.30/payload.json");
    let annotations: std::collections::BTreeMap<String, String> = serde_json::from_str(&fixture(
        "sigstore/cosign-v2/go-bazel-v0.0.30/annotations.json",
    ))
    .unwrap();
    assert!(imagegate::verify::keyless::cosign_signature(
        payload.as_bytes(),
        &annotations,
        &v2
    ));
    group.bench_function("cosign_v2_sig_layer", |b| {
        b.iter(|| {
            assert!(imagegate::verify::keyless::cosign_signature(
                black_box(payload.as_bytes()),
                &annotations,
                &v2
            ));
        });
    });

    let production = fixture("sigstore/trusted_root.production.json");
    group.bench_function("trusted_root_load", |b| {
        b.iter(|| TrustRoot::from_json(black_box(&production)).unwrap());
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
