use super::*;
use crate::policy::KeySet;
use crate::policy::{SbomKind, VulnLimits};
use std::time::Duration;

fn statement(ptype: &str, predicate: Value) -> Statement {
    Statement {
        kind: "https://in-toto.io/Statement/v0.1".into(),
        subject: Vec::new(),
        predicate_type: ptype.into(),
        predicate,
    }
}

fn scan(finished: &str, score: f64) -> Value {
    serde_json::json!({"scanner": {"result": {"matches": [{"vulnerability": {"cvss": [{"metrics": {"baseScore": score}}]}}]}},
                           "metadata": {"scanFinishedOn": finished}})
}

#[test]
fn judges_in_order_and_by_the_newest_scan() {
    let now = humantime::parse_rfc3339("2026-07-02T00:00:00Z").unwrap();
    let limits = VulnLimits {
        max_cvss: 7.0,
        max_age: Duration::from_secs(86_400 * 7),
    };
    let all = Requirement::new(KeySet::default(), true, vec![SbomKind::Spdx], Some(limits));
    let mut ev = Evidence::default();
    assert_eq!(judge(&ev, &all, now), Outcome::SignatureMissing);
    ev.signature_present = true;
    assert_eq!(judge(&ev, &all, now), Outcome::SignatureInvalid);
    ev.signature_valid = true;
    assert_eq!(judge(&ev, &all, now), Outcome::SbomMissing);
    // legacy cosign SPDX tag-value: the predicate is a string
    ev.statements.push(statement(
        "https://spdx.dev/Document",
        Value::from("SPDXVersion: SPDX-2.2\n"),
    ));
    assert_eq!(judge(&ev, &all, now), Outcome::VulnReportMissing);
    ev.statements.push(statement(
        vuln::VULN_PREDICATE,
        scan("2026-06-01T00:00:00Z", 1.0),
    ));
    assert_eq!(judge(&ev, &all, now), Outcome::VulnReportStale);
    ev.statements.push(statement(
        vuln::VULN_PREDICATE,
        scan("2026-07-01T00:00:00Z", 7.1),
    ));
    assert_eq!(judge(&ev, &all, now), Outcome::Vulnerable);
    ev.statements.push(statement(
        vuln::VULN_PREDICATE,
        scan("2026-07-01T12:00:00Z", 7.0),
    ));
    assert_eq!(judge(&ev, &all, now), Outcome::Verified);
    // a CycloneDX type with a predicate that is not a BOM does not count
    let cdx = Requirement::new(KeySet::default(), false, vec![SbomKind::CycloneDx], None);
    let fake = Evidence {
        statements: vec![statement("https://cyclonedx.org/bom", Value::Null)],
        ..Evidence::default()
    };
    assert_eq!(judge(&fake, &cdx, now), Outcome::SbomMissing);
}
