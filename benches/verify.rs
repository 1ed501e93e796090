//! Verification benchmarks against a real `docker-registry` on loopback
//! (skipped with a notice when it is not installed).
//!
//! - `verify/warm_digest`, `verify/warm_tag`: a cached verified decision
//!   through the async `Verifier::verify` (tag resolution cached too).
//! - `verify/cached_lookup`: the synchronous, network-free `cached` path.
//! - `verify/warm_keyless_tag`: the same warm decision for a keyless rule
//!   (a cosign v3 bundle among the referrers): a cached keyless verdict
//!   costs what a keyed one does.
//! - `verify/cold_signature`: a first check with empty caches and new
//!   connections: resolve the tag, read `.sig` and referrers, fetch the
//!   payload, verify ECDSA. The baseline the warm numbers are read against.

#![allow(clippy::unwrap_used)]

#[path = "../tests/it/support/registry/mod.rs"]
mod support_registry;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use imagegate::policy::{Identity, KeySet, Keyless, Matcher, PublicKey, Requirement, TrustRoot};
use imagegate::reference::Reference;
use imagegate::verify::{RegistryConfig, Verifier, VerifierConfig};
use support_registry::{Fixtures, Pusher, RegistryProcess};

fn verifier(addr: &str) -> Verifier {
    Verifier::new(VerifierConfig {
        registry: RegistryConfig {
            insecure: vec![addr.to_owned()],
            ..RegistryConfig::default()
        },
        ..VerifierConfig::default()
    })
}

fn bench(c: &mut Criterion) {
    let Some(reg) = RegistryProcess::start("benches/verify") else {
        #[allow(clippy::print_stderr, reason = "a benchmark that cannot run says why")]
        {
            eprintln!("benches/verify: not run, {}", support_registry::MISSING);
        }
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fx = Fixtures::load();
    let push = Pusher {
        addr: reg.addr.clone(),
    };
    let digest = rt.block_on(async {
        let d = push.image(&fx, "app", "bench/app", "v1").await;
        let sig = (fx.bytes("sig/app.payload.json"), fx.text("sig/app.sig.b64"));
        push.signatures("bench/app", d, &[sig]).await;
        push.image(&fx, "app", "bench/keyless", "v1").await;
        let bundle = fx.bytes("keyless/app.sign.bundle.json");
        let size = fx.image("app").1.len();
        push.bundles(
            "bench/keyless",
            d,
            size,
            &[(bundle, "https://sigstore.dev/cosign/sign/v1")],
        )
        .await;
        d
    });
    let identity = Identity::new(
        Matcher::Exact("https://token.actions.githubusercontent.com".into()),
        Matcher::Exact(
            "https://github.com/fixtures/app/.github/workflows/release.yml@refs/heads/main".into(),
        ),
        Vec::new(),
    );
    let root = TrustRoot::from_json(&fx.text("keyless/trusted_root.json")).unwrap();
    let keyless = Requirement::new(KeySet::default(), true, vec![], None)
        .with_keyless(Keyless::new(vec![identity], root));
    let keyless_tag = format!("{}/bench/keyless:v1", reg.addr);
    let keys = KeySet::new(vec![
        PublicKey::from_pem(&fx.text("keys/cosign.pub")).unwrap(),
    ]);
    let req = Requirement::new(keys, true, vec![], None);
    let by_tag = format!("{}/bench/app:v1", reg.addr);
    let by_digest = format!("{}/bench/app@{digest}", reg.addr);
    let v = verifier(&reg.addr);
    let far = || Instant::now() + Duration::from_secs(5);
    rt.block_on(async {
        let r = Reference::parse(&by_tag).unwrap();
        assert!(v.verify(&r, &req, far()).await.outcome.is_verified());
        let r = Reference::parse(&by_digest).unwrap();
        assert!(v.verify(&r, &req, far()).await.outcome.is_verified());
        let r = Reference::parse(&keyless_tag).unwrap();
        assert!(v.verify(&r, &keyless, far()).await.outcome.is_verified());
    });

    let mut group = c.benchmark_group("verify");
    for (name, image, req) in [
        ("warm_digest", &by_digest, &req),
        ("warm_tag", &by_tag, &req),
        ("warm_keyless_tag", &keyless_tag, &keyless),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let r = Reference::parse(black_box(image)).unwrap();
                        black_box(v.verify(&r, req, far()).await);
                    }
                    start.elapsed()
                })
            });
        });
    }
    group.bench_function("cached_lookup", |b| {
        b.iter(|| {
            let r = Reference::parse(black_box(&by_tag)).unwrap();
            black_box(v.cached(&r, &req))
        });
    });
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("cold_signature", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let fresh = verifier(&reg.addr);
                let r = Reference::parse(&by_tag).unwrap();
                total += rt.block_on(async {
                    let start = Instant::now();
                    assert!(fresh.verify(&r, &req, far()).await.outcome.is_verified());
                    start.elapsed()
                });
            }
            total
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
