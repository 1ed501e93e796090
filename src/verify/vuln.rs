//! cosign's vulnerability-scan predicate
//! (`https://cosign.sigstore.dev/attestation/vuln/v1`) with a Grype or
//! Trivy report inside, reduced to what a policy gates on: the highest CVSS
//! base score and when the scan finished.
//!
//! A finding without any CVSS score counts at the floor of its severity band
//! (critical 9.0, high 7.0, medium 4.0, low 0.1), so an unscored critical
//! finding is never read as harmless.

use std::time::SystemTime;

use serde_json::Value;

/// The predicate type of cosign's vulnerability attestation.
pub const VULN_PREDICATE: &str = "https://cosign.sigstore.dev/attestation/vuln/v1";

/// Which scanner wrote the embedded report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scanner {
    /// `grype -o json`.
    Grype,
    /// `trivy image -f json`.
    Trivy,
}

/// A vulnerability scan reduced for policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Scan {
    /// `metadata.scanFinishedOn`.
    pub finished: SystemTime,
    /// The highest base score of any finding; 0.0 with no findings.
    pub max_cvss: f64,
    /// Number of findings.
    pub findings: usize,
    /// The report's shape.
    pub scanner: Scanner,
}

impl Scan {
    /// Reads cosign's vuln predicate (a Grype or Trivy report inside);
    /// `None` when it lacks a finish time or holds neither known shape.
    pub fn from_predicate(predicate: &Value) -> Option<Scan> {
        parse(predicate)
    }
}

/// Reads a vuln predicate; `None` when it lacks a finish time or holds a
/// report of neither known shape.
pub(crate) fn parse(predicate: &Value) -> Option<Scan> {
    let finished = predicate.get("metadata")?.get("scanFinishedOn")?.as_str()?;
    let finished = humantime::parse_rfc3339_weak(finished).ok()?;
    let result = predicate.get("scanner")?.get("result")?;
    let (scanner, scores) = if result.get("matches").is_some() {
        (Scanner::Grype, grype_scores(result)?)
    } else if result.get("Results").is_some() || result.get("SchemaVersion").is_some() {
        (Scanner::Trivy, trivy_scores(result)?)
    } else {
        return None;
    };
    Some(Scan {
        finished,
        max_cvss: scores.iter().copied().fold(0.0, f64::max),
        findings: scores.len(),
        scanner,
    })
}

fn array(v: Option<&Value>) -> Option<&[Value]> {
    match v {
        None | Some(Value::Null) => Some(&[]),
        Some(Value::Array(a)) => Some(a),
        Some(_) => None,
    }
}

fn severity_floor(severity: Option<&Value>) -> f64 {
    match severity
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("critical") => 9.0,
        Some("high") => 7.0,
        Some("medium") => 4.0,
        Some("low") => 0.1,
        _ => 0.0,
    }
}

fn finite(score: Option<f64>) -> Option<f64> {
    score.filter(|s| s.is_finite() && *s >= 0.0)
}

fn grype_scores(doc: &Value) -> Option<Vec<f64>> {
    let mut out = Vec::new();
    for m in array(doc.get("matches"))? {
        let vuln = m.get("vulnerability")?;
        let related = array(m.get("relatedVulnerabilities")).unwrap_or(&[]);
        let best = std::iter::once(vuln)
            .chain(related)
            .flat_map(|v| array(v.get("cvss")).unwrap_or(&[]))
            .filter_map(|c| finite(c.get("metrics")?.get("baseScore")?.as_f64()))
            .reduce(f64::max);
        out.push(best.unwrap_or_else(|| severity_floor(vuln.get("severity"))));
    }
    Some(out)
}

fn trivy_scores(doc: &Value) -> Option<Vec<f64>> {
    let mut out = Vec::new();
    for result in array(doc.get("Results"))? {
        for v in array(result.get("Vulnerabilities"))? {
            let best = v
                .get("CVSS")
                .and_then(Value::as_object)
                .into_iter()
                .flat_map(|m| m.values())
                .filter_map(|c| {
                    ["V3Score", "V40Score", "V2Score"]
                        .iter()
                        .find_map(|k| finite(c.get(*k).and_then(Value::as_f64)))
                })
                .reduce(f64::max);
            out.push(best.unwrap_or_else(|| severity_floor(v.get("Severity"))));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[allow(clippy::needless_pass_by_value)] // reads like the JSON it builds
    fn wrap(result: Value, finished: &str) -> Value {
        json!({"invocation": {"parameters": null, "uri": "", "event_id": "", "builder.id": ""},
               "scanner": {"uri": "pkg:x", "version": "1", "db": {"uri": "", "version": ""}, "result": result},
               "metadata": {"scanStartedOn": finished, "scanFinishedOn": finished}})
    }

    #[test]
    fn trivy_shapes() {
        let r = json!({"SchemaVersion": 2, "Results": [
            {"Target": "a", "Class": "os-pkgs"},
            {"Target": "b", "Vulnerabilities": [
                {"VulnerabilityID": "CVE-1", "Severity": "MEDIUM", "CVSS": {"nvd": {"V2Score": 5, "V3Score": 5.3}, "redhat": {"V3Score": 7}}},
                {"VulnerabilityID": "CVE-2", "Severity": "CRITICAL"}]}]});
        let s = parse(&wrap(r, "2026-01-01T00:00:05Z")).unwrap();
        assert_eq!(s.scanner, Scanner::Trivy);
        assert_eq!(s.findings, 2);
        assert_eq!(s.max_cvss, 9.0);
        let empty = parse(&wrap(json!({"SchemaVersion": 2}), "2026-01-01T00:00:05Z")).unwrap();
        assert_eq!((empty.findings, empty.max_cvss), (0, 0.0));
    }

    #[test]
    fn grype_shapes() {
        let r = json!({"matches": [
            {"vulnerability": {"id": "GHSA-x", "severity": "High", "cvss": []},
             "relatedVulnerabilities": [{"id": "CVE-3", "cvss": [{"version": "3.1", "metrics": {"baseScore": 7.5}}]}]},
            {"vulnerability": {"id": "CVE-4", "severity": "Low", "cvss": [{"metrics": {"baseScore": 3}}]}}],
            "descriptor": {"name": "grype"}});
        let s = parse(&wrap(r, "2026-03-01T10:00:00Z")).unwrap();
        assert_eq!(
            (s.scanner, s.findings, s.max_cvss),
            (Scanner::Grype, 2, 7.5)
        );
        let none = parse(&wrap(json!({"matches": []}), "2026-03-01T10:00:00Z")).unwrap();
        assert_eq!(none.max_cvss, 0.0);
    }

    #[test]
    fn rejects_unknown_or_undated() {
        assert!(
            parse(&wrap(
                json!({"vulnerabilities": []}),
                "2026-01-01T00:00:00Z"
            ))
            .is_none()
        );
        assert!(parse(&wrap(json!({"matches": []}), "yesterday")).is_none());
        assert!(parse(&wrap(json!({"matches": 3}), "2026-01-01T00:00:00Z")).is_none());
        assert!(parse(&json!(null)).is_none());
    }
}
