//! Cold verification latency in registry round trips: a real
//! `docker-registry` on loopback behind a proxy that holds every request
//! 20 ms, and a fresh verifier (empty caches, new connections) per try.
//! Prints a Markdown table: for each evidence layout, the median time of a
//! cold verification with the proxy holding requests 20 ms and with it
//! holding none, the round trips that difference is (the chain of requests
//! that wait on one another), and the requests the registry saw. `loadtest/discovery.sh` writes it to
//! `loadtest/RESULTS-discovery.md`.
//!
//! cargo run --release --example discovery

#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

#[path = "../tests/it/support/registry/mod.rs"]
mod support_registry;

use std::time::{Duration, Instant};

use imagegate::policy::{Identity, KeySet, Keyless, Matcher, Requirement, SbomKind, TrustRoot};
use imagegate::reference::Reference;
use imagegate::verify::{RegistryConfig, Verifier, VerifierConfig};
use support_registry::proxy::Proxy;
use support_registry::{Fixtures, Pusher, RegistryProcess};

const DELAY: Duration = Duration::from_millis(20);
const TRIES: usize = 7;
const SIGN: &str = "https://sigstore.dev/cosign/sign/v1";
const CDX: &str = "https://cyclonedx.org/bom";

fn main() {
    let Some(reg) = RegistryProcess::start("loadtest/discovery") else {
        eprintln!("discovery: not run, {}", support_registry::MISSING);
        std::process::exit(2);
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(&reg));
}

async fn run(reg: &RegistryProcess) {
    let fx = Fixtures::load();
    let push = Pusher {
        addr: reg.addr.clone(),
    };
    let size = fx.image("app").1.len();
    // cosign v3: bundles among the referrers (fallback tag on this registry)
    let d = push.image(&fx, "app", "v3/app", "v1").await;
    let bundles = [
        (fx.bytes("keyless/app.sign.bundle.json"), SIGN),
        (fx.bytes("keyless/app.cdx.bundle.json"), CDX),
    ];
    push.bundles("v3/app", d, size, &bundles).await;
    // cosign v2: keyless `.sig` and `.att` layers
    push.image(&fx, "app", "v2/app", "v1").await;
    push.signature_layers(
        "v2/app",
        d,
        &[fx.cosign_layer("app.sig.keyless.json", "payload")],
    )
    .await;
    push.attestation_layers(
        "v2/app",
        d,
        &[fx.cosign_layer("app.att.keyless.json", "envelope")],
    )
    .await;

    let proxy = Proxy::start(&reg.addr).await;
    let root = TrustRoot::from_json(&fx.text("keyless/trusted_root.json")).unwrap();
    let identity = Identity::new(
        Matcher::Exact("https://token.actions.githubusercontent.com".into()),
        Matcher::Exact(
            "https://github.com/fixtures/app/.github/workflows/release.yml@refs/heads/main".into(),
        ),
        Vec::new(),
    );
    let keyless = Keyless::new(vec![identity], root);
    let signature =
        Requirement::new(KeySet::new(Vec::new()), true, vec![], None).with_keyless(keyless.clone());
    let with_sbom = Requirement::new(
        KeySet::new(Vec::new()),
        true,
        vec![SbomKind::CycloneDx],
        None,
    )
    .with_keyless(keyless);

    println!(
        "| evidence | reference | requirement | cold, {} ms per request | cold, no delay | round trips | registry requests |",
        DELAY.as_millis()
    );
    println!("| --- | --- | --- | ---: | ---: | ---: | ---: |");
    for (layout, repo) in [
        ("cosign v3 bundles (referrers, fallback tag)", "v3/app"),
        ("cosign v2 keyless `.sig`/`.att` layers", "v2/app"),
    ] {
        for (form, image) in [
            ("tag", format!("{}/{repo}:v1", proxy.addr)),
            ("digest", format!("{}/{repo}@{d}", proxy.addr)),
        ] {
            for (what, req) in [("signature", &signature), ("signature + SBOM", &with_sbom)] {
                let mut medians = [Duration::ZERO; 2];
                let mut requests = 0;
                for (i, delay) in [DELAY, Duration::ZERO].into_iter().enumerate() {
                    *proxy.behaviour.delay.lock().unwrap() = delay;
                    let mut times = Vec::new();
                    for _ in 0..TRIES {
                        let v = Verifier::new(VerifierConfig {
                            registry: RegistryConfig {
                                insecure: vec![proxy.addr.clone()],
                                ..RegistryConfig::default()
                            },
                            ..VerifierConfig::default()
                        });
                        let before = proxy.paths.lock().unwrap().len();
                        let r = Reference::parse(&image).unwrap();
                        let start = Instant::now();
                        let got = v
                            .verify(&r, req, Instant::now() + Duration::from_secs(10))
                            .await;
                        times.push(start.elapsed());
                        let paths = proxy.paths.lock().unwrap();
                        requests = paths.len() - before;
                        if std::env::var_os("DISCOVERY_PATHS").is_some() {
                            eprintln!("{layout} {form} {what}: {:?}", &paths[before..]);
                        }
                        assert!(
                            got.outcome.is_verified(),
                            "{layout} {form} {what}: {:?}",
                            got.outcome
                        );
                    }
                    times.sort();
                    medians[i] = times[TRIES / 2];
                }
                let trips =
                    (medians[0].saturating_sub(medians[1])).as_secs_f64() / DELAY.as_secs_f64();
                println!(
                    "| {layout} | {form} | {what} | {:.1} ms | {:.1} ms | {trips:.1} | {requests} |",
                    medians[0].as_secs_f64() * 1e3,
                    medians[1].as_secs_f64() * 1e3
                );
            }
        }
    }
}
