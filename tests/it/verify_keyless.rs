//! Keyless Sigstore signatures end to end, in a real registry (Debian's
//! `docker-registry`, which has no referrers API, so the bundles are found
//! through the `sha256-<hex>` fallback tag): bundles made by sigstore-js's
//! real Fulcio and Rekor clients against `@sigstore/mock`'s CA, CT log and
//! Rekor (`tests/fixtures/verify/keyless/generate.sh`), judged by the
//! verifier, by `/validate`, `/imagepolicy` and `/mutate`, and by `check`.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use crate::support::cases;
use crate::support::registry::{Fixtures, MISSING, Pusher, RegistryProcess};
use crate::support::server::{app_for, app_metrics, app_post};
use bytes::Bytes;
use imagegate::policy::{
    Claim, Identity, KeySet, Keyless, Matcher, Outcome, PublicKey, Requirement, SbomKind, TrustRoot,
};
use serde_json::{Value, json};

pub(crate) const SIGN: &str = "https://sigstore.dev/cosign/sign/v1";
const CDX: &str = "https://cyclonedx.org/bom";
pub(crate) const ISSUER: &str = "https://token.actions.githubusercontent.com";
pub(crate) const SUBJECT: &str =
    "https://github.com/fixtures/app/.github/workflows/release.yml@refs/heads/main";
const ROOT: &str = "tests/fixtures/verify/keyless/trusted_root.json";

fn root(fx: &Fixtures, name: &str) -> TrustRoot {
    TrustRoot::from_json(&fx.text(&format!("keyless/{name}"))).unwrap()
}

fn exact(issuer: &str, subject: &str) -> Identity {
    Identity::new(
        Matcher::Exact(issuer.into()),
        Matcher::Exact(subject.into()),
        Vec::new(),
    )
}

fn keyless(identities: Vec<Identity>, root: &TrustRoot) -> Requirement {
    Requirement::new(KeySet::new(Vec::new()), true, Vec::new(), None)
        .with_keyless(Keyless::new(identities, root.clone()))
}

use crate::support::registry::{outcome as check, verifier};

/// The registry for a test, the fixtures, and a pusher into it.
fn site(test: &str) -> (RegistryProcess, Fixtures, Pusher) {
    let reg = RegistryProcess::start(test).expect(MISSING);
    let push = Pusher {
        addr: reg.addr.clone(),
    };
    (reg, Fixtures::load(), push)
}

/// The app image pushed to `repo` with these bundles as its referrers.
pub(crate) async fn pushed(
    push: &Pusher,
    fx: &Fixtures,
    repo: &str,
    bundles: &[(&str, &str)],
) -> String {
    pushed_as(push, fx, "app", repo, "v1", bundles).await;
    format!("{}/{repo}:v1", push.addr)
}

/// The fixture image `name` pushed to `repo` at `tag` with these bundles
/// (files of `keyless/`, with their predicate types) as its referrers.
async fn pushed_as(
    push: &Pusher,
    fx: &Fixtures,
    name: &str,
    repo: &str,
    tag: &str,
    bundles: &[(&str, &str)],
) -> imagegate::verify::Digest {
    let d = push.image(fx, name, repo, tag).await;
    if !bundles.is_empty() {
        let size = fx.image(name).1.len();
        let bytes: Vec<(Vec<u8>, &str)> = bundles
            .iter()
            .map(|(file, ptype)| (fx.bytes(&format!("keyless/{file}")), *ptype))
            .collect();
        push.bundles(repo, d, size, &bytes).await;
    }
    d
}

/// One platform manifest of an OCI index.
fn platform(digest: &imagegate::verify::Digest, size: usize, arch: &str, os: &str) -> Value {
    json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest.to_string(),
        "size": size, "platform": {"architecture": arch, "os": os}})
}

#[cfg_attr(
    not(have_docker_registry),
    ignore = "needs /usr/bin/docker-registry (apt-get install docker-registry)"
)]
#[tokio::test]
async fn keyless_signatures_are_judged_by_identity_root_and_evidence() {
    let (reg, fx, push) = site("keyless_signatures_are_judged_by_identity_root_and_evidence");
    let trusted = root(&fx, "trusted_root.json");
    let good = exact(ISSUER, SUBJECT);
    let pattern = |issuer: &str, subject: &str| {
        Identity::new(
            Matcher::Exact(issuer.into()),
            Matcher::pattern(subject).unwrap(),
            Vec::new(),
        )
    };
    let claims = |claims: &[(Claim, &str)]| {
        Identity::new(
            Matcher::Exact(ISSUER.into()),
            Matcher::Exact(SUBJECT.into()),
            claims.iter().map(|(c, v)| (*c, (*v).to_owned())).collect(),
        )
    };
    let signed = pushed(
        &push,
        &fx,
        "keyless/signed",
        &[("app.sign.bundle.json", SIGN)],
    )
    .await;
    type Case = (
        &'static str,
        Vec<(&'static str, &'static str)>,
        Requirement,
        Outcome,
    );
    let table: Vec<Case> = vec![
        (
            "right identity",
            vec![("app.sign.bundle.json", SIGN)],
            keyless(vec![good.clone()], &trusted),
            Outcome::Verified,
        ),
        (
            "anchored expression",
            vec![],
            keyless(
                vec![pattern(
                    ISSUER,
                    r"https://github\.com/fixtures/[^/]+/\.github/workflows/release\.yml@refs/heads/main",
                )],
                &trusted,
            ),
            Outcome::Verified,
        ),
        (
            "expression matching a part only",
            vec![],
            keyless(vec![pattern(ISSUER, "fixtures")], &trusted),
            Outcome::SignatureInvalid,
        ),
        (
            "expression for tags only",
            vec![],
            keyless(
                vec![pattern(
                    ISSUER,
                    r"https://github\.com/fixtures/app/\.github/workflows/release\.yml@refs/tags/v.*",
                )],
                &trusted,
            ),
            Outcome::SignatureInvalid,
        ),
        (
            "claims that match",
            vec![],
            keyless(
                vec![claims(&[
                    (
                        Claim::SourceRepositoryUri,
                        "https://github.com/fixtures/app",
                    ),
                    (Claim::SourceRepositoryRef, "refs/heads/main"),
                    (Claim::RunnerEnvironment, "github-hosted"),
                ])],
                &trusted,
            ),
            Outcome::Verified,
        ),
        (
            "a claim that does not",
            vec![],
            keyless(
                vec![claims(&[(Claim::RunnerEnvironment, "self-hosted")])],
                &trusted,
            ),
            Outcome::SignatureInvalid,
        ),
        (
            "wrong subject",
            vec![],
            keyless(
                vec![exact(
                    ISSUER,
                    "https://github.com/fixtures/app/.github/workflows/other.yml@refs/heads/main",
                )],
                &trusted,
            ),
            Outcome::SignatureInvalid,
        ),
        (
            "wrong issuer",
            vec![],
            keyless(
                vec![exact("https://accounts.google.com", SUBJECT)],
                &trusted,
            ),
            Outcome::SignatureInvalid,
        ),
        (
            "any one identity suffices",
            vec![],
            keyless(
                vec![exact("https://accounts.google.com", SUBJECT), good.clone()],
                &trusted,
            ),
            Outcome::Verified,
        ),
        (
            "the public-good root does not trust the mocks",
            vec![],
            keyless(vec![good.clone()], &TrustRoot::production()),
            Outcome::SignatureInvalid,
        ),
        (
            "a root without the signing CA",
            vec![],
            keyless(vec![good.clone()], &root(&fx, "other_root.json")),
            Outcome::SignatureInvalid,
        ),
        (
            "untrusted CA",
            vec![("app.sign.untrusted-ca.bundle.json", SIGN)],
            keyless(vec![good.clone()], &trusted),
            Outcome::SignatureInvalid,
        ),
        (
            "tampered tlog entry",
            vec![("app.sign.tampered-tlog.bundle.json", SIGN)],
            keyless(vec![good.clone()], &trusted),
            Outcome::SignatureInvalid,
        ),
        (
            "bundle for another digest",
            vec![("hello.sign.bundle.json", SIGN)],
            keyless(vec![good.clone()], &trusted),
            Outcome::SignatureInvalid,
        ),
        (
            "expired certificate, no timestamp",
            vec![("app.sign.expired.bundle.json", SIGN)],
            keyless(vec![good.clone()], &trusted),
            Outcome::SignatureInvalid,
        ),
        (
            "no signature",
            vec![("none", "")],
            keyless(vec![good.clone()], &trusted),
            Outcome::SignatureMissing,
        ),
        (
            "a bad bundle beside a good one",
            vec![
                ("app.sign.tampered-tlog.bundle.json", SIGN),
                ("app.sign.bundle.json", SIGN),
            ],
            keyless(vec![good.clone()], &trusted),
            Outcome::Verified,
        ),
        (
            "keyless SBOM",
            vec![("app.sign.bundle.json", SIGN), ("app.cdx.bundle.json", CDX)],
            Requirement::new(
                KeySet::new(Vec::new()),
                true,
                vec![SbomKind::CycloneDx],
                None,
            )
            .with_keyless(Keyless::new(vec![good.clone()], trusted.clone())),
            Outcome::Verified,
        ),
        (
            "SBOM required, signature only",
            vec![("app.sign.bundle.json", SIGN)],
            Requirement::new(
                KeySet::new(Vec::new()),
                false,
                vec![SbomKind::CycloneDx],
                None,
            )
            .with_keyless(Keyless::new(vec![good.clone()], trusted.clone())),
            Outcome::SbomMissing,
        ),
        (
            "keys and identities: the identity suffices",
            vec![],
            Requirement::new(
                KeySet::new(vec![
                    PublicKey::from_pem(&fx.text("keys/other.pub")).unwrap(),
                ]),
                true,
                vec![],
                None,
            )
            .with_keyless(Keyless::new(vec![good.clone()], trusted.clone())),
            Outcome::Verified,
        ),
    ];
    let table = cases::only("keyless", table, |c| c.0);
    for (i, (name, bundles, req, want)) in table.iter().enumerate() {
        // A fresh repository when the case names its bundles, else the
        // signed one; a fresh verifier, so that no cached result answers.
        let image = if bundles.is_empty() {
            signed.clone()
        } else {
            let real: Vec<(&str, &str)> = bundles
                .iter()
                .copied()
                .filter(|(n, _)| *n != "none")
                .collect();
            pushed(&push, &fx, &format!("keyless/case{i}"), &real).await
        };
        let got = check(&verifier(&reg.addr), &image, req).await;
        assert_eq!(got, *want, "{name}");
    }
}

#[cfg_attr(
    not(have_docker_registry),
    ignore = "needs /usr/bin/docker-registry (apt-get install docker-registry)"
)]
#[tokio::test]
async fn cosign_v2_keyless_layers_and_the_union_of_every_place() {
    let (reg, fx, push) = site("cosign_v2_keyless_layers_and_the_union_of_every_place");
    let trusted = root(&fx, "trusted_root.json");
    let good = keyless(vec![exact(ISSUER, SUBJECT)], &trusted);
    let stranger = keyless(
        vec![exact(
            ISSUER,
            "https://github.com/x/y/.github/workflows/z.yml@refs/heads/main",
        )],
        &trusted,
    );
    let sbom = Requirement::new(
        KeySet::new(Vec::new()),
        false,
        vec![SbomKind::CycloneDx],
        None,
    )
    .with_keyless(Keyless::new(vec![exact(ISSUER, SUBJECT)], trusted.clone()));
    let sig = fx.cosign_layer("app.sig.keyless.json", "payload");
    let hello_sig = fx.cosign_layer("hello.sig.keyless.json", "payload");
    let att = fx.cosign_layer("app.att.keyless.json", "envelope");

    // a `.sig` layer with certificate, chain and Rekor bundle
    let image = pushed(&push, &fx, "v2/signed", &[]).await;
    push.signature_layers("v2/signed", fx.app, std::slice::from_ref(&sig))
        .await;
    push.attestation_layers("v2/signed", fx.app, std::slice::from_ref(&att))
        .await;
    let v = verifier(&reg.addr);
    assert_eq!(check(&v, &image, &good).await, Outcome::Verified);
    assert_eq!(
        check(&verifier(&reg.addr), &image, &stranger).await,
        Outcome::SignatureInvalid
    );
    assert_eq!(check(&v, &image, &sbom).await, Outcome::Verified);
    // the production root does not trust the mock CA
    let public = keyless(vec![exact(ISSUER, SUBJECT)], &TrustRoot::production());
    assert_eq!(check(&v, &image, &public).await, Outcome::SignatureInvalid);

    // a valid signature of another image copied under this one's tag
    let image = pushed(&push, &fx, "v2/copied", &[]).await;
    push.signature_layers("v2/copied", fx.app, std::slice::from_ref(&hello_sig))
        .await;
    assert_eq!(
        check(&verifier(&reg.addr), &image, &good).await,
        Outcome::SignatureInvalid
    );

    // a tampered certificate annotation (another CA's root in its place)
    let mut forged = sig.clone();
    forged.1["dev.sigstore.cosign/certificate"] = forged.1["dev.sigstore.cosign/chain"].clone();
    let image = pushed(&push, &fx, "v2/forged", &[]).await;
    push.signature_layers("v2/forged", fx.app, &[forged]).await;
    assert_eq!(
        check(&verifier(&reg.addr), &image, &good).await,
        Outcome::SignatureInvalid
    );

    // a leaf from a CA nobody trusts, that CA's root in the chain
    // annotation: the layer cannot bring its own trust anchor
    let stranger = fx.cosign_layer("app.sig.untrusted-ca.keyless.json", "payload");
    let image = pushed(&push, &fx, "v2/stranger", &[]).await;
    push.signature_layers("v2/stranger", fx.app, std::slice::from_ref(&stranger))
        .await;
    assert_eq!(
        check(&verifier(&reg.addr), &image, &good).await,
        Outcome::SignatureInvalid
    );
    // ... nor with the trusted root's intermediates: a good layer whose
    // chain also carries that stranger's root still verifies (roots in a
    // chain are dropped, only the trusted root anchors)
    let mut extra = sig.clone();
    let chain = format!(
        "{}{}",
        extra.1["dev.sigstore.cosign/chain"].as_str().unwrap(),
        fx.text("keyless/other_ca.pem")
    );
    extra.1["dev.sigstore.cosign/chain"] = Value::String(chain);
    let image = pushed(&push, &fx, "v2/extra-root", &[]).await;
    push.signature_layers("v2/extra-root", fx.app, &[extra])
        .await;
    assert_eq!(
        check(&verifier(&reg.addr), &image, &good).await,
        Outcome::Verified
    );

    // every place is read: a bad `.sig` beside a good referrer bundle, and
    // a good `.sig` beside a bad referrer bundle, both verify
    let image = pushed(
        &push,
        &fx,
        "v2/union-a",
        &[("app.sign.tampered-tlog.bundle.json", SIGN)],
    )
    .await;
    push.signature_layers("v2/union-a", fx.app, std::slice::from_ref(&sig))
        .await;
    assert_eq!(
        check(&verifier(&reg.addr), &image, &good).await,
        Outcome::Verified
    );
    let image = pushed(&push, &fx, "v2/union-b", &[("app.sign.bundle.json", SIGN)]).await;
    push.signature_layers("v2/union-b", fx.app, &[hello_sig])
        .await;
    assert_eq!(
        check(&verifier(&reg.addr), &image, &good).await,
        Outcome::Verified
    );
}

fn policy(addr: &str, root: &str) -> String {
    format!(
        "apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nspec:\n  verify:\n    - images: [\"{addr}/**\"]\n      keyless:\n        - issuer: {ISSUER}\n          subjectRegExp: 'https://github\\.com/fixtures/app/\\.github/workflows/release\\.yml@refs/heads/.*'\n          claims:\n            sourceRepositoryURI: https://github.com/fixtures/app\n      trustedRoot: {root}\n  registries:\n    insecure: [\"{addr}\"]\n  verification:\n    timeout: 3s\n  mutate:\n    pinDigests: true\n"
    )
}

fn admission(images: &[&str]) -> Value {
    let containers: Vec<Value> = images
        .iter()
        .enumerate()
        .map(|(i, image)| json!({"name": format!("c{i}"), "image": image}))
        .collect();
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u-1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "namespace": "shop", "operation": "CREATE",
            "object": {"metadata": {"namespace": "shop"}, "spec": {"containers": containers}}}})
}

#[cfg_attr(
    not(have_docker_registry),
    ignore = "needs /usr/bin/docker-registry (apt-get install docker-registry)"
)]
#[tokio::test]
async fn keyless_policies_through_every_endpoint_and_check() {
    let (reg, fx, push) = site("keyless_policies_through_every_endpoint_and_check");
    let signed = pushed(
        &push,
        &fx,
        "keyless/signed",
        &[("app.sign.bundle.json", SIGN)],
    )
    .await;
    let tampered = pushed(
        &push,
        &fx,
        "keyless/tampered",
        &[("app.sign.tampered-tlog.bundle.json", SIGN)],
    )
    .await;
    let unsigned = pushed(&push, &fx, "keyless/unsigned", &[]).await;
    let app = app_for(&policy(&reg.addr, ROOT));

    let review = json!({"apiVersion": "imagepolicy.k8s.io/v1alpha1", "kind": "ImageReview",
        "spec": {"containers": [{"image": signed}], "namespace": "shop"}});
    let (_, body) = app_post(&app, "/imagepolicy", &review).await;
    assert_eq!(body["status"]["allowed"], true, "{body}");

    let (_, body) = app_post(&app, "/validate", &admission(&[&signed])).await;
    assert_eq!(body["response"]["allowed"], true, "{body}");
    for (image, says) in [
        (
            &tampered,
            "none verifies for its digest with a key or keyless identity",
        ),
        (&unsigned, "has no cosign signature"),
    ] {
        let (_, body) = app_post(&app, "/validate", &admission(&[&signed, image])).await;
        assert_eq!(body["response"]["allowed"], false, "{body}");
        let message = body["response"]["status"]["message"].as_str().unwrap();
        assert!(
            message.contains(says) && message.contains(image.as_str()),
            "{message}"
        );
    }
    let metrics = app_metrics(&app).await;
    for reason in ["signature_invalid", "signature_missing"] {
        let series =
            format!("imagegate_image_decisions_total{{decision=\"deny\",reason=\"{reason}\"}} 1");
        assert!(metrics.contains(&series), "{series} in\n{metrics}");
    }

    // /mutate pins the tag to the digest that was verified
    let (_, body) = app_post(&app, "/mutate", &admission(&[&signed])).await;
    assert_eq!(body["response"]["allowed"], true, "{body}");
    let patch = body["response"]["patch"].as_str().expect("a patch");
    let patch = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, patch).unwrap();
    let patch = String::from_utf8(patch).unwrap();
    assert!(patch.contains(&format!("{signed}@{}", fx.app)), "{patch}");

    // `imagegate check` verifies keyless rules like the server
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(ROOT);
    std::fs::write(&file, policy(&reg.addr, &root.display().to_string())).unwrap();
    let run = |image: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_imagegate"))
            .args(["check", "--policy"])
            .arg(&file)
            .arg(image)
            .output()
            .unwrap()
    };
    let ok = run(&signed);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let bad = run(&tampered);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stdout).contains("signature_invalid"),
        "{}",
        String::from_utf8_lossy(&bad.stdout)
    );
}

#[cfg_attr(
    not(have_docker_registry),
    ignore = "needs /usr/bin/docker-registry (apt-get install docker-registry)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_root_replaced_on_disk_is_reloaded_without_a_restart() {
    use crate::support::server::{
        allows, config, eventually, image_review, metrics_text, replace_file, sample, start,
    };
    let (reg, fx, push) = site("a_trusted_root_replaced_on_disk_is_reloaded_without_a_restart");
    let signed = pushed(
        &push,
        &fx,
        "keyless/signed",
        &[("app.sign.bundle.json", SIGN)],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    // at first the root names another CA: the signature does not verify
    let root_file = dir.path().join("trusted_root.json");
    std::fs::write(&root_file, fx.bytes("keyless/other_root.json")).unwrap();
    let policy_file = dir.path().join("policy.yaml");
    std::fs::write(
        &policy_file,
        policy(&reg.addr, &root_file.display().to_string()),
    )
    .unwrap();
    let server = start(config(&[
        "--policy",
        policy_file.to_str().unwrap(),
        "--file-poll-interval",
        "1s",
    ]))
    .await;
    let addr = server.addr;
    let review = image_review(&[&signed]);
    let allowed = || allows(addr, review.clone());
    assert!(!allowed().await, "the root without the signing CA");
    // the root is replaced (a ConfigMap update): in force without a restart
    replace_file(&root_file, &fx.bytes("keyless/trusted_root.json"));
    eventually("the new root is in force", || async { allowed().await }).await;
    // a broken root is a failed reload: the last good policy keeps serving
    replace_file(&root_file, b"{\"mediaType\": ");
    eventually("the failed reload is counted", || async {
        let text = metrics_text(addr).await;
        sample(&text, "imagegate_policy_reloads_total{result=\"error\"}") == Some(1.0)
    })
    .await;
    assert!(allowed().await, "the last good root still verifies");
    server.stop().await;
}

#[cfg_attr(
    not(have_docker_registry),
    ignore = "needs /usr/bin/docker-registry (apt-get install docker-registry)"
)]
#[tokio::test]
async fn multi_arch_images_carry_evidence_where_the_policy_says() {
    use crate::support::registry::OCI_INDEX;
    use imagegate::policy::MultiArch;
    let (reg, fx, push) = site("multi_arch_images_carry_evidence_where_the_policy_says");
    let (app_size, hello_size) = (fx.image("app").1.len(), fx.image("hello").1.len());
    let (app_signed, hello_signed) = (
        [("app.sign.bundle.json", SIGN)],
        [("hello.sign.bundle.json", SIGN)],
    );
    let trusted = root(&fx, "trusted_root.json");
    let on_index = keyless(vec![exact(ISSUER, SUBJECT)], &trusted);
    let all = on_index.clone().with_multi_arch(MultiArch::AllPlatforms);
    assert_ne!(on_index.fingerprint(), all.fingerprint());
    let check_both = |image: String| {
        let (on_index, all) = (on_index.clone(), all.clone());
        let addr = reg.addr.clone();
        async move {
            (
                check(&verifier(&addr), &image, &on_index).await,
                check(&verifier(&addr), &image, &all).await,
            )
        }
    };

    // an index of two platform manifests (app for amd64, hello for arm64)
    // of which only the amd64 one is signed: an attacker who can push
    // could pair a signed manifest with an unsigned one; no policy admits it
    let repo = "multi/half";
    let app = pushed_as(&push, &fx, "app", repo, "amd64", &app_signed).await;
    let hello = pushed_as(&push, &fx, "hello", repo, "arm64", &[]).await;
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        platform(&app, app_size, "amd64", "linux"), platform(&hello, hello_size, "arm64", "linux")]})
    .to_string();
    push.manifest(repo, "v1", OCI_INDEX, index.as_bytes()).await;
    let image = format!("{}/{repo}:v1", reg.addr);
    assert_eq!(
        check_both(image).await,
        (Outcome::SignatureMissing, Outcome::SignatureMissing)
    );

    // every platform signed (`cosign sign --recursive`), the index not:
    // allPlatforms admits it, the default does not; a build attestation
    // entry (unknown/unknown), which no runtime runs, needs no signature
    let repo = "multi/all";
    pushed_as(&push, &fx, "app", repo, "amd64", &app_signed).await;
    pushed_as(&push, &fx, "hello", repo, "arm64", &hello_signed).await;
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        platform(&app, app_size, "amd64", "linux"), platform(&hello, hello_size, "arm64", "linux"),
        platform(&hello, hello_size, "unknown", "unknown")]})
    .to_string();
    let index_digest = push.manifest(repo, "v1", OCI_INDEX, index.as_bytes()).await;
    let image = format!("{}/{repo}:v1", reg.addr);
    assert_eq!(
        check_both(image).await,
        (Outcome::SignatureMissing, Outcome::Verified)
    );
    let by_digest = format!("{}/{repo}@{index_digest}", reg.addr);
    assert_eq!(check_both(by_digest).await.1, Outcome::Verified);

    // a signed single-platform manifest is judged by its own evidence
    let image = format!("{}/{repo}:amd64", reg.addr);
    assert_eq!(
        check_both(image).await,
        (Outcome::Verified, Outcome::Verified)
    );

    // the policy spelling
    let text = format!(
        "apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nspec:\n  verify:\n    - images: [\"x/**\"]\n      keyless:\n        - issuer: {ISSUER}\n          subject: {SUBJECT}\n      trustedRoot: {ROOT}\n      multiArch: allPlatforms\n"
    );
    let s = imagegate::load::compile(&text).unwrap();
    assert_eq!(
        s.supply_chain().rules()[0].requirement().multi_arch(),
        MultiArch::AllPlatforms
    );
    for bad in ["anyPlatform", "every"] {
        let e = imagegate::load::compile(&text.replace("allPlatforms", bad)).unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("multiArch: unknown value \"{bad}\"")),
            "{e}"
        );
    }
}

#[cfg_attr(
    not(have_docker_registry),
    ignore = "needs /usr/bin/docker-registry (apt-get install docker-registry)"
)]
#[tokio::test]
async fn hostile_listings_cannot_admit_or_stall() {
    use crate::support::registry::OCI_INDEX;
    use crate::support::registry::proxy::Proxy;
    use imagegate::policy::MultiArch;
    let (reg, fx, push) = site("hostile_listings_cannot_admit_or_stall");
    let proxy = Proxy::start(&reg.addr).await;
    let (app_size, hello_size) = (fx.image("app").1.len(), fx.image("hello").1.len());
    let trusted = root(&fx, "trusted_root.json");
    let all =
        keyless(vec![exact(ISSUER, SUBJECT)], &trusted).with_multi_arch(MultiArch::AllPlatforms);

    // an index whose platforms are all signed, served with one byte more
    // than its digest covers: the listing does not count, the index's own
    // (missing) evidence decides; never "unavailable", never a pass
    let repo = "hostile/multi";
    let app = pushed_as(
        &push,
        &fx,
        "app",
        repo,
        "amd64",
        &[("app.sign.bundle.json", SIGN)],
    )
    .await;
    let hello = pushed_as(
        &push,
        &fx,
        "hello",
        repo,
        "arm64",
        &[("hello.sign.bundle.json", SIGN)],
    )
    .await;
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        platform(&app, app_size, "amd64", "linux"), platform(&hello, hello_size, "arm64", "linux")]})
    .to_string();
    let index_digest = push.manifest(repo, "v1", OCI_INDEX, index.as_bytes()).await;
    let direct = format!("{}/{repo}@{index_digest}", reg.addr);
    let proxied = format!("{}/{repo}@{index_digest}", proxy.addr);
    assert_eq!(
        check(&verifier(&reg.addr), &direct, &all).await,
        Outcome::Verified
    );
    proxy.behaviour.rewrite.lock().unwrap().push((
        format!("/manifests/{index_digest}"),
        200,
        Bytes::from(format!("{index} ")),
    ));
    assert_eq!(
        check(&verifier(&proxy.addr), &proxied, &all).await,
        Outcome::SignatureMissing
    );
    proxy.behaviour.rewrite.lock().unwrap().clear();

    // referrers listings of 40 000 entries each from the API and the
    // fallback tag, the real bundle among them: bounded work, and the
    // signature still found among the first ones read
    let repo = "hostile/flood";
    let d = pushed_as(
        &push,
        &fx,
        "app",
        repo,
        "v1",
        &[("app.sign.bundle.json", SIGN)],
    )
    .await;
    let tag = push_tag_index(&reg.addr, repo, d).await;
    let flood = |first: &Value| {
        let mut manifests = vec![first.clone()];
        manifests.extend((0..40_000).map(|i| json!({"digest": format!("sha256:{i:064x}")})));
        Bytes::from(
            json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).to_string(),
        )
    };
    let real = tag["manifests"][0].clone();
    proxy.behaviour.rewrite.lock().unwrap().extend([
        (format!("/referrers/{d}"), 200, flood(&real)),
        (format!("/manifests/{}", d.tag()), 200, flood(&real)),
    ]);
    let image = format!("{}/{repo}:v1", proxy.addr);
    let started = Instant::now();
    let outcome = check(
        &verifier(&proxy.addr),
        &image,
        &keyless(vec![exact(ISSUER, SUBJECT)], &trusted),
    )
    .await;
    let paths: Vec<String> = proxy
        .paths
        .lock()
        .unwrap()
        .iter()
        .rev()
        .take(12)
        .cloned()
        .collect();
    assert_eq!(outcome, Outcome::Verified, "{paths:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

/// The fallback-tag index of `digest` as the registry holds it.
async fn push_tag_index(addr: &str, repo: &str, digest: imagegate::verify::Digest) -> Value {
    let answer = crate::support::registry::http::request(
        addr,
        "GET",
        &format!("/v2/{repo}/manifests/{}", digest.tag()),
        &[("accept", "application/vnd.oci.image.index.v1+json")],
        Vec::new(),
    )
    .await;
    serde_json::from_slice(&answer.body).unwrap()
}
