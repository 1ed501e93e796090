//! Verification against a real registry (Debian's `docker-registry`,
//! distribution v2) holding fixtures signed by independent tools (OpenSSL,
//! securesystemslib, @sigstore/sign; see tests/fixtures/verify/generate.sh).
//! Each test starts its own registry on 127.0.0.1 and skips (with a notice)
//! when the binary is not installed.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::support::registry::proxy::Proxy;
use crate::support::registry::token::TokenGate;
use crate::support::registry::{
    Fixtures, HTPASSWD_PASSWORD, HTPASSWD_USER, Options, Pusher, RegistryProcess, registry,
};
use imagegate::policy::{
    CaBundle, CacheConfig, Credentials, KeySet, Outcome, PublicKey, Requirement, SbomKind,
    VulnLimits,
};
use imagegate::reference::Reference;
use imagegate::verify::{
    Digest, RegistryConfig, RegistryErrorKind, Repository, Verifier, VerifierConfig,
};

const CDX: &str = "https://cyclonedx.org/bom";
const SPDX: &str = "https://spdx.dev/Document";
const VULN: &str = "https://cosign.sigstore.dev/attestation/vuln/v1";
const SIGN: &str = "https://sigstore.dev/cosign/sign/v1";

fn keys(fx: &Fixtures, name: &str) -> KeySet {
    KeySet::new(vec![
        PublicKey::from_pem(&fx.text(&format!("keys/{name}.pub"))).unwrap(),
    ])
}

fn verifier_with(addr: &str, tune: impl FnOnce(&mut VerifierConfig)) -> Verifier {
    let mut config = VerifierConfig {
        registry: RegistryConfig {
            insecure: vec![addr.to_owned()],
            call_timeout: Duration::from_secs(2),
            ..RegistryConfig::default()
        },
        cache: CacheConfig::default(),
    };
    tune(&mut config);
    // The fixtures' scans finished on 2026-06-30 .. 2026-07-01.
    let now = humantime::parse_rfc3339("2026-07-02T00:00:00Z").unwrap();
    Verifier::new(config).with_clock(Arc::new(move || now))
}

fn verifier(addr: &str) -> Verifier {
    verifier_with(addr, |_| {})
}

fn sig_only(ks: &KeySet) -> Requirement {
    Requirement::new(ks.clone(), true, vec![], None)
}

fn sbom(ks: &KeySet, kinds: Vec<SbomKind>) -> Requirement {
    Requirement::new(ks.clone(), false, kinds, None)
}

fn vulns(ks: &KeySet, max_cvss: f64) -> Requirement {
    let limits = VulnLimits {
        max_cvss,
        max_age: Duration::from_secs(168 * 3600),
    };
    Requirement::new(ks.clone(), false, vec![], Some(limits))
}

async fn check(v: &Verifier, image: &str, req: &Requirement) -> Outcome {
    let r = Reference::parse(image).unwrap();
    v.verify(&r, req, Instant::now() + Duration::from_secs(5))
        .await
        .outcome
}

fn sig_layer(fx: &Fixtures, name: &str) -> (Vec<u8>, String) {
    (
        fx.bytes(&format!("sig/{name}.payload.json")),
        fx.text(&format!("sig/{name}.sig.b64")),
    )
}

fn env(fx: &Fixtures, name: &str) -> Vec<u8> {
    fx.bytes(&format!("att/{name}.dsse.json"))
}

#[cfg_attr(
    not(have_docker_registry),
    ignore = "needs /usr/bin/docker-registry (apt-get install docker-registry)"
)]
#[tokio::test]
async fn signed_image_passes_every_requirement() {
    let reg = registry!("signed_image_passes_every_requirement");
    let (fx, push) = (
        Fixtures::load(),
        Pusher {
            addr: reg.addr.clone(),
        },
    );
    let repo = "fixtures/app";
    let d = push.image(&fx, "app", repo, "v1").await;
    assert_eq!(d, fx.app);
    push.signatures(repo, d, &[sig_layer(&fx, "app")]).await;
    push.attestations(
        repo,
        d,
        &[
            (env(&fx, "app.cdx.v1"), CDX),
            (env(&fx, "app.spdx.v01"), SPDX),
            (env(&fx, "app.vuln-trivy-7.0.v01"), VULN),
        ],
    )
    .await;
    let ks = keys(&fx, "cosign");
    let v = verifier(&reg.addr);
    let by_tag = format!("{}/{repo}:v1", reg.addr);
    let by_digest = format!("{}/{repo}@{d}", reg.addr);
    assert_eq!(check(&v, &by_tag, &sig_only(&ks)).await, Outcome::Verified);
    assert_eq!(
        check(&v, &by_digest, &sig_only(&ks)).await,
        Outcome::Verified
    );
    assert_eq!(
        check(&v, &by_tag, &sbom(&ks, vec![SbomKind::CycloneDx])).await,
        Outcome::Verified
    );
    assert_eq!(
        check(&v, &by_tag, &sbom(&ks, vec![SbomKind::Spdx])).await,
        Outcome::Verified
    );
    // a score of exactly 7.0 passes maxCvss 7.0; 6.9 does not
    assert_eq!(
        check(&v, &by_tag, &vulns(&ks, 7.0)).await,
        Outcome::Verified
    );
    assert_eq!(
        check(&v, &by_tag, &vulns(&ks, 6.9)).await,
        Outcome::Vulnerable
    );
    let all = Requirement::new(
        ks.clone(),
        true,
        vec![SbomKind::CycloneDx],
        Some(VulnLimits {
            max_cvss: 7.0,
            max_age: Duration::from_secs(168 * 3600),
        }),
    );
    assert_eq!(check(&v, &by_tag, &all).await, Outcome::Verified);
    // the same evidence does not verify with another key
    let other = keys(&fx, "other");
    assert_eq!(
        check(&v, &by_tag, &sig_only(&other)).await,
        Outcome::SignatureInvalid
    );
    assert_eq!(
        check(&v, &by_tag, &sbom(&other, vec![SbomKind::CycloneDx])).await,
        Outcome::SbomMissing
    );
}

#[cfg_attr(
    not(have_docker_registry),
    ignore = "needs /usr/bin/docker-registry (apt-get install docker-registry)"
)]
#[tokio::test]
async fn sigstore_bundles_among_referrers() {
    let reg = registry!("sigstore_bundles_among_referrers");
    let (fx, push) = (
        Fixtures::load(),
        Pusher {
            addr: reg.addr.clone(),
        },
    );
    let repo = "fixtures/bundled";
    let d = push.image(&fx, "app", repo, "v1").await;
    let size = fx.image("app").1.len();
    push.bundles(
        repo,
        d,
        size,
        &[
            (fx.bytes("bundles/app.sign.bundle.json"), SIGN),
            (fx.bytes("bundles/app.cdx.bundle.json"), CDX),
        ],
    )
    .await;
    let ks = keys(&fx, "cosign");
    let v = verifier(&reg.addr);
    let image = format!("{}/{repo}:v1", reg.addr);
    assert_eq!(check(&v, &image, &sig_only(&ks)).await, Outcome::Verified);
    assert_eq!(
        check(&v, &image, &sbom(&ks, vec![SbomKind::CycloneDx])).await,
        Outcome::Verified
    );
    assert_eq!(
        check(&v, &image, &sbom(&ks, vec![SbomKind::Spdx])).await,
        Outcome::SbomMissing
    );
    assert_eq!(
        check(&v, &image, &sig_only(&keys(&fx, "other"))).await,
        Outcome::SignatureInvalid
    );
}

#[cfg_attr(
    not(have_docker_registry),
    ignore = "needs /usr/bin/docker-registry (apt-get install docker-registry)"
)]
#[tokio::test]
async fn signature_negatives() {
    let reg = registry!("signature_negatives");
    let (fx, push) = (
        Fixtures::load(),
        Pusher {
            addr: reg.addr.clone(),
        },
    );
    let ks = keys(&fx, "cosign");
    let v = verifier(&reg.addr);
    let at = |repo: &str| format!("{}/{repo}:v1", reg.addr);

    // unsigned
    push.image(&fx, "hello", "fixtures/unsigned", "v1").await;
    assert_eq!(
        check(&v, &at("fixtures/unsigned"), &sig_only(&ks)).await,
        Outcome::SignatureMissing
    );

    // signed with another key (valid under that key: the test fails for the right reason)
    let h = push.image(&fx, "hello", "fixtures/other-key", "v1").await;
    push.signatures(
        "fixtures/other-key",
        h,
        &[sig_layer(&fx, "hello-other-key")],
    )
    .await;
    assert_eq!(
        check(&v, &at("fixtures/other-key"), &sig_only(&ks)).await,
        Outcome::SignatureInvalid
    );
    assert_eq!(
        check(
            &v,
            &at("fixtures/other-key"),
            &sig_only(&keys(&fx, "other"))
        )
        .await,
        Outcome::Verified
    );

    // a valid signature for another digest
    let h = push.image(&fx, "hello", "fixtures/mismatch", "v1").await;
    push.signatures("fixtures/mismatch", h, &[sig_layer(&fx, "app")])
        .await;
    assert_eq!(
        check(&v, &at("fixtures/mismatch"), &sig_only(&ks)).await,
        Outcome::SignatureInvalid
    );

    // tampered payload (one character of the identity changed), original signature
    let d = push.image(&fx, "app", "fixtures/tampered", "v1").await;
    let (payload, sig) = sig_layer(&fx, "app");
    let tampered = String::from_utf8(payload)
        .unwrap()
        .replace("fixtures/app", "fixtures/apq")
        .into_bytes();
    push.signatures("fixtures/tampered", d, &[(tampered, sig)])
        .await;
    assert_eq!(
        check(&v, &at("fixtures/tampered"), &sig_only(&ks)).await,
        Outcome::SignatureInvalid
    );

    // `Docker-manifest-digest` casing, next to an invalid layer
    let d = push.image(&fx, "app", "fixtures/casing", "v1").await;
    push.signatures(
        "fixtures/casing",
        d,
        &[
            sig_layer(&fx, "hello-other-key"),
            sig_layer(&fx, "app-casing"),
        ],
    )
    .await;
    assert_eq!(
        check(&v, &at("fixtures/casing"), &sig_only(&ks)).await,
        Outcome::Verified
    );
}

#[cfg_attr(
    not(have_docker_registry),
    ignore = "needs /usr/bin/docker-registry (apt-get install docker-registry)"
)]
#[tokio::test]
async fn attestation_negatives() {
    let reg = registry!("attestation_negatives");
    let (fx, push) = (
        Fixtures::load(),
        Pusher {
            addr: reg.addr.clone(),
        },
    );
    let ks = keys(&fx, "cosign");
    let v = verifier(&reg.addr);
    let at = |repo: &str| format!("{}/{repo}:v1", reg.addr);
    let cdx = sbom(&ks, vec![SbomKind::CycloneDx]);

    // a provenance statement whose layer annotation claims CycloneDX
    let d = push.image(&fx, "app", "fixtures/wrong-type", "v1").await;
    push.attestations(
        "fixtures/wrong-type",
        d,
        &[(env(&fx, "app.provenance.v1"), CDX)],
    )
    .await;
    assert_eq!(
        check(&v, &at("fixtures/wrong-type"), &cdx).await,
        Outcome::SbomMissing
    );

    // an SBOM whose subject is another image; one signed by another key
    let d = push.image(&fx, "app", "fixtures/other-subject", "v1").await;
    push.attestations(
        "fixtures/other-subject",
        d,
        &[
            (env(&fx, "app.cdx-for-hello.v1"), CDX),
            (env(&fx, "app.cdx.other-key.v1"), CDX),
        ],
    )
    .await;
    assert_eq!(
        check(&v, &at("fixtures/other-subject"), &cdx).await,
        Outcome::SbomMissing
    );

    // no attestations at all
    push.image(&fx, "app", "fixtures/bare", "v1").await;
    assert_eq!(
        check(&v, &at("fixtures/bare"), &cdx).await,
        Outcome::SbomMissing
    );
    assert_eq!(
        check(&v, &at("fixtures/bare"), &vulns(&ks, 7.0)).await,
        Outcome::VulnReportMissing
    );

    // a finding above the threshold (Grype, CVSS 9.8)
    let d = push.image(&fx, "app", "fixtures/vulnerable", "v1").await;
    push.attestations(
        "fixtures/vulnerable",
        d,
        &[(env(&fx, "app.vuln-grype-9.8.v01"), VULN)],
    )
    .await;
    assert_eq!(
        check(&v, &at("fixtures/vulnerable"), &vulns(&ks, 7.0)).await,
        Outcome::Vulnerable
    );
    assert_eq!(
        check(&v, &at("fixtures/vulnerable"), &vulns(&ks, 9.8)).await,
        Outcome::Verified
    );

    // the newest scan decides: a clean Trivy scan after the Grype one
    let d = push.image(&fx, "app", "fixtures/rescanned", "v1").await;
    push.attestations(
        "fixtures/rescanned",
        d,
        &[
            (env(&fx, "app.vuln-grype-9.8.v01"), VULN),
            (env(&fx, "app.vuln-trivy-7.0.v01"), VULN),
        ],
    )
    .await;
    assert_eq!(
        check(&v, &at("fixtures/rescanned"), &vulns(&ks, 7.0)).await,
        Outcome::Verified
    );

    // a stale scan (finished 2026-01-01, maxAge 168h)
    let d = push.image(&fx, "app", "fixtures/stale", "v1").await;
    push.attestations(
        "fixtures/stale",
        d,
        &[(env(&fx, "app.vuln-trivy-stale.v01"), VULN)],
    )
    .await;
    assert_eq!(
        check(&v, &at("fixtures/stale"), &vulns(&ks, 7.0)).await,
        Outcome::VulnReportStale
    );
}

#[tokio::test]
async fn registry_down_is_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let fx = Fixtures::load();
    let v = verifier(&addr);
    let started = Instant::now();
    let out = check(
        &v,
        &format!("{addr}/fixtures/app:v1"),
        &sig_only(&keys(&fx, "cosign")),
    )
    .await;
    assert_eq!(out, Outcome::Unavailable);
    assert!(started.elapsed() < Duration::from_secs(2));
    let by_digest = format!("{addr}/fixtures/app@{}", fx.app);
    assert_eq!(
        check(&v, &by_digest, &sig_only(&keys(&fx, "cosign"))).await,
        Outcome::Unavailable
    );
}

async fn signed_app(push: &Pusher, fx: &Fixtures, repo: &str) -> Digest {
    let d = push.image(fx, "app", repo, "v1").await;
    push.signatures(repo, d, &[sig_layer(fx, "app")]).await;
    d
}

#[cfg_attr(
    not(have_docker_registry),
    ignore = "needs /usr/bin/docker-registry (apt-get install docker-registry)"
)]
#[tokio::test]
async fn slow_registry_misses_the_deadline_and_is_not_cached() {
    let reg = registry!("slow_registry_misses_the_deadline_and_is_not_cached");
    let (fx, push) = (
        Fixtures::load(),
        Pusher {
            addr: reg.addr.clone(),
        },
    );
    let d = signed_app(&push, &fx, "fixtures/slow").await;
    let proxy = Proxy::start(&reg.addr).await;
    *proxy.behaviour.delay.lock().unwrap() = Duration::from_secs(3);
    let v = verifier(&proxy.addr);
    let req = sig_only(&keys(&fx, "cosign"));
    let image = format!("{}/fixtures/slow@{d}", proxy.addr);
    let r = Reference::parse(&image).unwrap();
    let started = Instant::now();
    let got = v
        .verify(&r, &req, Instant::now() + Duration::from_millis(300))
        .await;
    assert_eq!(got.outcome, Outcome::Unavailable);
    assert!(
        started.elapsed() < Duration::from_millis(800),
        "{:?}",
        started.elapsed()
    );
    assert!(v.cached(&r, &req).is_none());
    *proxy.behaviour.delay.lock().unwrap() = Duration::ZERO;
    assert_eq!(check(&v, &image, &req).await, Outcome::Verified);
}

#[cfg_attr(
    not(have_docker_registry),
    ignore = "needs /usr/bin/docker-registry (apt-get install docker-registry)"
)]
#[tokio::test]
async fn rate_limited_then_success() {
    let reg = registry!("rate_limited_then_success");
    let (fx, push) = (
        Fixtures::load(),
        Pusher {
            addr: reg.addr.clone(),
        },
    );
    signed_app(&push, &fx, "fixtures/limited").await;
    let proxy = Proxy::start(&reg.addr).await;
    proxy.behaviour.too_many.store(1, Ordering::SeqCst);
    let v = verifier(&proxy.addr);
    let started = Instant::now();
    let out = check(
        &v,
        &format!("{}/fixtures/limited:v1", proxy.addr),
        &sig_only(&keys(&fx, "cosign")),
    )
    .await;
    assert_eq!(out, Outcome::Verified);
    // the first HEAD was answered 429 + Retry-After: 1, and retried
    assert_eq!(proxy.count("HEAD /v2/fixtures/limited/manifests/v1"), 2);
    assert!(started.elapsed() >= Duration::from_secs(1));

    // more 429s than retries: unavailable, not a success
    proxy.behaviour.too_many.store(10, Ordering::SeqCst);
    let v = verifier_with(&proxy.addr, |c| {
        c.registry.max_retry_wait = Duration::from_millis(10);
    });
    let out = check(
        &v,
        &format!("{}/fixtures/limited:v1", proxy.addr),
        &sig_only(&keys(&fx, "cosign")),
    )
    .await;
    assert_eq!(out, Outcome::Unavailable);
}

#[cfg_attr(
    not(have_docker_registry),
    ignore = "needs /usr/bin/docker-registry (apt-get install docker-registry)"
)]
#[tokio::test]
async fn oversized_manifest_is_unavailable() {
    let reg = registry!("oversized_manifest_is_unavailable");
    let (fx, push) = (
        Fixtures::load(),
        Pusher {
            addr: reg.addr.clone(),
        },
    );
    let d = push.image(&fx, "app", "fixtures/big", "v1").await;
    let (payload, sig) = sig_layer(&fx, "app");
    let filler = "x".repeat(40 << 10);
    push.signatures(
        "fixtures/big",
        d,
        &[(payload, sig.clone()), (b"{}".to_vec(), filler)],
    )
    .await;
    let v = verifier_with(&reg.addr, |c| c.registry.max_manifest_bytes = 32 << 10);
    let req = sig_only(&keys(&fx, "cosign"));
    assert_eq!(
        check(&v, &format!("{}/fixtures/big:v1", reg.addr), &req).await,
        Outcome::Unavailable
    );
    let roomy = verifier(&reg.addr);
    assert_eq!(
        check(&roomy, &format!("{}/fixtures/big:v1", reg.addr), &req).await,
        Outcome::Verified
    );
}

#[cfg_attr(
    not(have_docker_registry),
    ignore = "needs /usr/bin/docker-registry (apt-get install docker-registry)"
)]
#[tokio::test]
async fn moved_tag_is_judged_by_its_new_digest() {
    let reg = registry!("moved_tag_is_judged_by_its_new_digest");
    let (fx, push) = (
        Fixtures::load(),
        Pusher {
            addr: reg.addr.clone(),
        },
    );
    let repo = "fixtures/moving";
    signed_app(&push, &fx, repo).await;
    let v = verifier_with(&reg.addr, |c| c.cache.tag_ttl = Duration::from_millis(200));
    let req = sig_only(&keys(&fx, "cosign"));
    let image = format!("{}/{repo}:v1", reg.addr);
    assert_eq!(check(&v, &image, &req).await, Outcome::Verified);
    assert!(v.cached(&Reference::parse(&image).unwrap(), &req).is_some());
    // the tag now points at an unsigned image
    let h = push.image(&fx, "hello", repo, "v1").await;
    assert_eq!(h, fx.hello);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let got = v
        .verify(
            &Reference::parse(&image).unwrap(),
            &req,
            Instant::now() + Duration::from_secs(5),
        )
        .await;
    assert_eq!(got.outcome, Outcome::SignatureMissing);
    assert_eq!(got.digest, Some(fx.hello));
    // the signed digest keeps its own (cached) verdict
    assert_eq!(
        check(&v, &format!("{}/{repo}@{}", reg.addr, fx.app), &req).await,
        Outcome::Verified
    );
}

#[cfg_attr(
    not(have_docker_registry),
    ignore = "needs /usr/bin/docker-registry (apt-get install docker-registry)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_checks_share_one_registry_round() {
    let reg = registry!("concurrent_checks_share_one_registry_round");
    let (fx, push) = (
        Fixtures::load(),
        Pusher {
            addr: reg.addr.clone(),
        },
    );
    let d = signed_app(&push, &fx, "fixtures/popular").await;
    let proxy = Proxy::start(&reg.addr).await;
    *proxy.behaviour.delay.lock().unwrap() = Duration::from_millis(50);
    let v = Arc::new(verifier(&proxy.addr));
    let req = Arc::new(sig_only(&keys(&fx, "cosign")));
    let image = Arc::new(format!("{}/fixtures/popular@{d}", proxy.addr));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let (v, req, image) = (v.clone(), req.clone(), image.clone());
        set.spawn(async move {
            let r = Reference::parse(&image).unwrap();
            v.verify(&r, &req, Instant::now() + Duration::from_secs(10))
                .await
                .outcome
        });
    }
    let mut verified = 0;
    while let Some(out) = set.join_next().await {
        assert_eq!(out.unwrap(), Outcome::Verified);
        verified += 1;
    }
    assert_eq!(verified, 200);
    assert_eq!(proxy.count(".sig"), 1, "{:?}", proxy.paths.lock().unwrap());
    let stats = v.stats();
    assert_eq!(stats.rounds.load(Ordering::Relaxed), 1);
    // later checks are answered from the cache, without the network
    let before = proxy.paths.lock().unwrap().len();
    let r = Reference::parse(&image).unwrap();
    assert!(
        v.verify(&r, &req, Instant::now() + Duration::from_secs(1))
            .await
            .cached
    );
    assert_eq!(proxy.paths.lock().unwrap().len(), before);
}

/// An open registry to push through, and a second process serving the same
/// storage with `options` (TLS, htpasswd).
fn registry_pair(test: &str, tls: bool, htpasswd: bool) -> (RegistryProcess, RegistryProcess) {
    let open = registry!(test);
    let served = RegistryProcess::start_with(
        test,
        &Options {
            tls,
            htpasswd,
            storage: Some(open.data.clone()),
        },
    )
    .expect(crate::support::registry::MISSING);
    (open, served)
}

fn tls_fixture(name: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/tls")
            .join(name),
    )
    .unwrap()
}

/// A verifier reaching every registry over HTTPS.
fn tls_verifier(tune: impl FnOnce(&mut RegistryConfig)) -> Verifier {
    verifier_with("", |c| {
        c.registry.insecure.clear();
        tune(&mut c.registry);
    })
}

fn dockerconfig(host: &str, user: &str, password: &str) -> Credentials {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let text = serde_json::json!({"auths": {host: {"auth": auth}}}).to_string();
    Credentials::from_dockerconfigjson(&text).unwrap()
}

#[cfg_attr(
    not(have_docker_registry),
    ignore = "needs /usr/bin/docker-registry (apt-get install docker-registry)"
)]
#[tokio::test]
async fn private_ca_registry_is_trusted_only_with_its_ca() {
    let (open, tls) = registry_pair(
        "private_ca_registry_is_trusted_only_with_its_ca",
        true,
        false,
    );
    let fx = Fixtures::load();
    let push = Pusher {
        addr: open.addr.clone(),
    };
    let d = signed_app(&push, &fx, "fixtures/private").await;
    let req = sig_only(&keys(&fx, "cosign"));
    let image = format!("{}/fixtures/private:v1", tls.addr);
    let ca = CaBundle::from_pem(&tls_fixture("ca.pem")).unwrap();

    let v = tls_verifier(|r| r.ca = ca.clone());
    assert_eq!(check(&v, &image, &req).await, Outcome::Verified);
    assert_eq!(
        check(&v, &format!("{}/fixtures/private@{d}", tls.addr), &req).await,
        Outcome::Verified
    );

    // without the CA (Mozilla roots only), or with an unrelated CA: the
    // handshake fails, verification is unavailable
    for bundle in [
        CaBundle::default(),
        CaBundle::from_pem(&tls_fixture("other-ca.pem")).unwrap(),
    ] {
        let v = tls_verifier(|r| r.ca = bundle.clone());
        assert_eq!(check(&v, &image, &req).await, Outcome::Unavailable);
        let err = v
            .registry()
            .resolve(&repository(&tls.addr, "fixtures/private"), "v1")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), RegistryErrorKind::Connect, "{err}");
        assert!(err.to_string().contains("TLS"), "{err}");
    }
}

fn repository(domain: &str, path: &str) -> Repository {
    Repository {
        domain: domain.to_owned(),
        path: path.to_owned(),
    }
}

#[cfg_attr(
    not(have_docker_registry),
    ignore = "needs /usr/bin/docker-registry (apt-get install docker-registry)"
)]
#[tokio::test]
async fn htpasswd_registry_with_dockerconfigjson_credentials() {
    let (open, locked) = registry_pair(
        "htpasswd_registry_with_dockerconfigjson_credentials",
        true,
        true,
    );
    let fx = Fixtures::load();
    let push = Pusher {
        addr: open.addr.clone(),
    };
    signed_app(&push, &fx, "fixtures/locked").await;
    let req = sig_only(&keys(&fx, "cosign"));
    let image = format!("{}/fixtures/locked:v1", locked.addr);
    let ca = CaBundle::from_pem(&tls_fixture("ca.pem")).unwrap();

    let v = tls_verifier(|r| {
        r.ca = ca.clone();
        r.credentials = dockerconfig(&locked.addr, HTPASSWD_USER, HTPASSWD_PASSWORD);
    });
    assert_eq!(check(&v, &image, &req).await, Outcome::Verified);

    // a wrong password, no credentials, credentials for another host: the
    // registry refuses (401), which is "cannot verify", never a pass
    for credentials in [
        dockerconfig(&locked.addr, HTPASSWD_USER, "wrong"),
        Credentials::default(),
        dockerconfig(&open.addr, HTPASSWD_USER, HTPASSWD_PASSWORD),
    ] {
        let v = tls_verifier(|r| {
            r.ca = ca.clone();
            r.credentials = credentials;
        });
        assert_eq!(check(&v, &image, &req).await, Outcome::Unavailable);
        let err = v
            .registry()
            .resolve(&repository(&locked.addr, "fixtures/locked"), "v1")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), RegistryErrorKind::Auth, "{err}");
    }
}

#[cfg_attr(
    not(have_docker_registry),
    ignore = "needs /usr/bin/docker-registry (apt-get install docker-registry)"
)]
#[tokio::test]
async fn bearer_tokens_against_the_real_registry() {
    let reg = registry!("bearer_tokens_against_the_real_registry");
    let fx = Fixtures::load();
    let push = Pusher {
        addr: reg.addr.clone(),
    };
    let a = signed_app(&push, &fx, "fixtures/tok-a").await;
    signed_app(&push, &fx, "fixtures/tok-b").await;
    // blobs are redirected to another host (a recording proxy), as
    // registries do with storage URLs
    let storage = Proxy::start(&reg.addr).await;
    let gate = TokenGate::start(&reg.addr, "robot", "s3cret", Some(&storage.addr)).await;
    let tune = |credentials: Credentials| {
        let (g, s) = (gate.addr.clone(), storage.addr.clone());
        move |c: &mut VerifierConfig| {
            c.registry.insecure = vec![g, s];
            c.registry.credentials = credentials;
        }
    };
    let v = verifier_with("", tune(dockerconfig(&gate.addr, "robot", "s3cret")));
    let ks = keys(&fx, "cosign");
    let image_a = format!("{}/fixtures/tok-a:v1", gate.addr);
    assert_eq!(check(&v, &image_a, &sig_only(&ks)).await, Outcome::Verified);
    assert_eq!(gate.issued_for("repository:fixtures/tok-a:pull"), 1);
    assert_eq!(gate.state.challenged.load(Ordering::SeqCst), 1);
    // another requirement on the same repository: more requests, the
    // cached token
    let passed = gate.state.passed.load(Ordering::SeqCst);
    assert_eq!(
        check(
            &v,
            &format!("{}/fixtures/tok-a@{a}", gate.addr),
            &sig_only(&keys(&fx, "other"))
        )
        .await,
        Outcome::SignatureInvalid
    );
    assert!(gate.state.passed.load(Ordering::SeqCst) > passed);
    assert_eq!(gate.issued_for("repository:fixtures/tok-a:pull"), 1);
    assert_eq!(gate.state.challenged.load(Ordering::SeqCst), 1);
    // another repository needs its own token (the gate scopes tokens)
    let image_b = format!("{}/fixtures/tok-b:v1", gate.addr);
    assert_eq!(check(&v, &image_b, &sig_only(&ks)).await, Outcome::Verified);
    assert_eq!(gate.issued_for("repository:fixtures/tok-b:pull"), 1);
    assert_eq!(gate.state.issued.lock().unwrap().len(), 2);
    assert_eq!(gate.state.challenged.load(Ordering::SeqCst), 2);
    // blobs were fetched from the storage host, never with the token
    assert!(storage.count("GET /v2/fixtures/tok-a/blobs/") > 0);
    assert!(storage.count("GET /v2/fixtures/tok-b/blobs/") > 0);
    assert_eq!(storage.authorized.load(Ordering::SeqCst), 0);
    assert_eq!(gate.state.refused.load(Ordering::SeqCst), 0);

    // a wrong password or none: the token service refuses, unavailable
    for (credentials, refused) in [
        (dockerconfig(&gate.addr, "robot", "wrong"), 1),
        (Credentials::default(), 2),
    ] {
        let v = verifier_with("", tune(credentials));
        assert_eq!(
            check(&v, &image_a, &sig_only(&ks)).await,
            Outcome::Unavailable
        );
        assert_eq!(gate.state.refused.load(Ordering::SeqCst), refused);
    }
    assert_eq!(gate.state.issued.lock().unwrap().len(), 2);
}
