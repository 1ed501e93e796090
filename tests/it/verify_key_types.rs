//! Keyed signatures with every key type cosign signs with (RSA 2048 to
//! 4096 with PKCS#1 v1.5 and PSS, ECDSA P-384 with SHA-384 and SHA-256,
//! Ed25519), made by OpenSSL (`tests/fixtures/verify/algorithms/`), as
//! `.sig` layers and `.att` DSSE envelopes in the real registry.

#![allow(clippy::unwrap_used)]

use crate::support::registry::{Fixtures, Pusher, outcome, registry, verifier};
use imagegate::policy::{KeySet, Outcome, PublicKey, Requirement, SbomKind};

const CDX: &str = "https://cyclonedx.org/bom";

fn key(fx: &Fixtures, name: &str) -> PublicKey {
    PublicKey::from_pem(&fx.text(&format!("algorithms/{name}.pub")))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

async fn check(addr: &str, image: &str, req: &Requirement) -> Outcome {
    outcome(&verifier(addr), image, req).await
}

#[test]
fn keys_too_weak_or_of_other_kinds_are_refused() {
    let fx = Fixtures::load();
    let e = PublicKey::from_pem(&fx.text("algorithms/rsa1024.pub")).unwrap_err();
    assert!(e.to_string().contains("RSA of 2048 bits or more"), "{e}");
    // a private key is not a public key
    assert!(PublicKey::from_pem(&fx.text("algorithms/ed25519.key.pem")).is_err());
    // two copies of one key are one key
    assert_eq!(key(&fx, "rsa3072").id(), key(&fx, "rsa3072-pss").id());
}

#[cfg_attr(
    not(have_docker_registry),
    ignore = "needs /usr/bin/docker-registry (apt-get install docker-registry)"
)]
#[tokio::test]
async fn every_key_type_cosign_signs_with_verifies() {
    let reg = registry!("every_key_type_cosign_signs_with_verifies");
    let fx = Fixtures::load();
    let push = Pusher {
        addr: reg.addr.clone(),
    };
    let payload = fx.bytes("sig/app.payload.json");
    let names = [
        "rsa2048",
        "rsa3072",
        "rsa4096",
        "rsa3072-pss",
        "p384",
        "p384-sha256",
        "ed25519",
    ];
    for (i, name) in names.iter().enumerate() {
        let repo = format!("types/{i}");
        let d = push.image(&fx, "app", &repo, "v1").await;
        let sig = fx.text(&format!("algorithms/{name}.payload.sig.b64"));
        push.signatures(&repo, d, &[(payload.clone(), sig)]).await;
        let envelope = fx.bytes(&format!("algorithms/{name}.cdx.dsse.json"));
        push.attestations(&repo, d, &[(envelope, CDX)]).await;
        let image = format!("{}/{repo}:v1", reg.addr);
        let own = KeySet::new(vec![key(&fx, name)]);
        let signature = Requirement::new(own.clone(), true, vec![], None);
        let sbom = Requirement::new(own, false, vec![SbomKind::CycloneDx], None);
        assert_eq!(
            check(&reg.addr, &image, &signature).await,
            Outcome::Verified,
            "{name}"
        );
        assert_eq!(
            check(&reg.addr, &image, &sbom).await,
            Outcome::Verified,
            "{name}"
        );
        // another key of the same kind, or of other kinds, does not verify
        let same_kind = match *name {
            "rsa2048" => "rsa4096",
            n if n.starts_with("rsa") => "rsa2048",
            n if n.starts_with("p384") => "p384-other",
            _ => "ed25519-other",
        };
        let mut others = vec![key(&fx, same_kind)];
        for kind in ["rsa2048", "p384", "ed25519"] {
            if !name.starts_with(&kind[..3]) {
                others.push(key(&fx, kind));
            }
        }
        let wrong = KeySet::new(others);
        let refused = Requirement::new(wrong, true, vec![], None);
        assert_eq!(
            check(&reg.addr, &image, &refused).await,
            Outcome::SignatureInvalid,
            "{name} with another key"
        );
    }
}
