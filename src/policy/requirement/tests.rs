use super::*;

#[test]
fn fingerprints_differ_by_demand() {
    let a = Requirement::new(KeySet::default(), true, vec![], None);
    let b = Requirement::new(KeySet::default(), true, vec![SbomKind::Spdx], None);
    let c = Requirement::new(
        KeySet::default(),
        true,
        vec![SbomKind::Spdx, SbomKind::Spdx],
        None,
    );
    let v = |x| {
        Requirement::new(
            KeySet::default(),
            true,
            vec![],
            Some(VulnLimits {
                max_cvss: x,
                max_age: Duration::from_secs(1),
            }),
        )
    };
    assert_ne!(a.fingerprint(), b.fingerprint());
    assert_eq!(b.fingerprint(), c.fingerprint());
    assert_ne!(v(7.0).fingerprint(), v(7.1).fingerprint());
}

#[test]
fn tampered_content_fails_the_first_demand() {
    let limits = VulnLimits {
        max_cvss: 7.0,
        max_age: Duration::from_secs(1),
    };
    let req = |signature, sbom, vulns| Requirement::new(KeySet::default(), signature, sbom, vulns);
    let spdx = || vec![SbomKind::Spdx];
    assert_eq!(
        req(true, spdx(), Some(limits)).tampered(),
        Outcome::SignatureInvalid
    );
    assert_eq!(
        req(false, spdx(), Some(limits)).tampered(),
        Outcome::SbomMissing
    );
    assert_eq!(
        req(false, vec![], Some(limits)).tampered(),
        Outcome::VulnReportMissing
    );
    assert_eq!(req(false, vec![], None).tampered(), Outcome::Unavailable);
}

#[test]
fn sbom_kinds_match_by_prefix_segment() {
    assert!(SbomKind::CycloneDx.matches("https://cyclonedx.org/bom"));
    assert!(SbomKind::CycloneDx.matches("https://cyclonedx.org/bom/v1.4"));
    assert!(!SbomKind::CycloneDx.matches("https://cyclonedx.org/bomb"));
    assert!(SbomKind::Spdx.matches("https://spdx.dev/Document/v2.3"));
    assert!(!SbomKind::Spdx.matches("https://slsa.dev/provenance/v1"));
}
