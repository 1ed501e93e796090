//! cosign vulnerability predicates (a Grype or Trivy report inside) through
//! `Scan::from_predicate`.
//!
//! Properties: never panics; an accepted scan has a finite non-negative
//! highest score, 0.0 when it has no findings, and names the shape it read;
//! adding a scored finding and an unscored critical one to an accepted
//! report is never overlooked: two more findings, and the highest score
//! becomes at least that of the added ones.

#![no_main]

use imagegate::verify::{Scan, Scanner};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

const ADDED_SCORE: f64 = 9.9;
/// The floor of an unscored critical finding.
const CRITICAL_FLOOR: f64 = 9.0;

/// Appends `items` to the array at `key` of `object` (absent or null counts
/// as empty); `false` if that is not possible.
fn append(object: &mut Value, key: &str, items: [Value; 2]) -> bool {
    let Some(map) = object.as_object_mut() else {
        return false;
    };
    let slot = map.entry(key).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Array(Vec::new());
    }
    match slot.as_array_mut() {
        Some(list) => {
            list.extend(items);
            true
        }
        None => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(predicate) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Some(scan) = Scan::from_predicate(&predicate) else {
        return;
    };
    assert!(
        scan.max_cvss.is_finite() && scan.max_cvss >= 0.0,
        "{scan:?}"
    );
    if scan.findings == 0 {
        assert_eq!(scan.max_cvss, 0.0);
    }
    let result = &predicate["scanner"]["result"];
    let grype = result.get("matches").is_some();
    assert_eq!(scan.scanner == Scanner::Grype, grype);

    let mut more = predicate.clone();
    let added = {
        let result = &mut more["scanner"]["result"];
        if grype {
            append(
                result,
                "matches",
                [
                    json!({"vulnerability": {"id": "CVE-0-1", "cvss": [{"metrics": {"baseScore": ADDED_SCORE}}]}}),
                    json!({"vulnerability": {"id": "CVE-0-2", "severity": "Critical"}}),
                ],
            )
        } else {
            append(
                result,
                "Results",
                [
                    json!({"Target": "a", "Vulnerabilities": [{"VulnerabilityID": "CVE-0-1", "CVSS": {"nvd": {"V3Score": ADDED_SCORE}}}]}),
                    json!({"Target": "b", "Vulnerabilities": [{"VulnerabilityID": "CVE-0-2", "Severity": "CRITICAL"}]}),
                ],
            )
        }
    };
    if added {
        let worse = Scan::from_predicate(&more).expect("a report with added findings was refused");
        assert_eq!(worse.scanner, scan.scanner);
        assert_eq!(worse.finished, scan.finished);
        assert_eq!(worse.findings, scan.findings + 2);
        assert_eq!(
            worse.max_cvss,
            scan.max_cvss.max(ADDED_SCORE).max(CRITICAL_FLOOR)
        );
    }
});
