//! `imagegate test`: policy test suites, for policy authors' CI.
//!
//! A suite is a YAML file naming a policy and cases; each case gives images
//! or manifests, the namespace, annotations and user they come with, and
//! the decision (and optionally the reason) the policy must reach. A
//! directory holds suites in files whose name ends in `test.yaml` or
//! `test.yml` (`policy.test.yaml`, `imagegate-test.yaml`).
//!
//! ```yaml
//! apiVersion: imagegate.dev/v1alpha1
//! kind: PolicyTest
//! policy: policy.yaml           # relative to this file
//! tests:
//!   - name: latest is refused
//!     images: [nginx:latest]
//!     expect: deny
//!     reason: tag_forbidden
//!   - name: the chart renders pinned images
//!     manifests: [chart.yaml]
//!     namespace: prod
//!     expect: allow
//! ```
//!
//! The decision is the policy's verdict (as `check` reports it: audit mode
//! does not turn a deny into an allow). A case expecting `deny` with a
//! `reason` passes when every denied image was denied for that reason; one
//! expecting `allow` with a `reason` when every image has it (`allowed`,
//! `exempt`, `break_glass`...).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::decide::Engine;
use crate::policy::{Snapshot, User};
use crate::review::{Judged, JudgedImage};

use super::manifests;
use super::verify::Verifications;

/// A suite file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SuiteFile {
    api_version: String,
    kind: String,
    policy: PathBuf,
    tests: Vec<serde_saphyr::Spanned<CaseFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    name: String,
    #[serde(default)]
    images: Vec<String>,
    #[serde(default)]
    manifests: Vec<PathBuf>,
    #[serde(default = "default_namespace")]
    namespace: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
    expect: Expect,
    #[serde(default)]
    reason: Option<String>,
}

fn default_namespace() -> String {
    "default".to_owned()
}

/// An expected decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// Every image allowed.
    Allow,
    /// Some image denied.
    Deny,
}

impl Expect {
    /// `allow` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Allow => "allow",
            Expect::Deny => "deny",
        }
    }
}

/// The result of one case.
#[derive(Debug)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// Its line in the suite.
    pub line: u64,
    /// The expected decision and reason.
    pub expected: (Expect, Option<String>),
    /// The decision reached.
    pub got: Expect,
    /// The distinct reasons of the images that decided it (the denied
    /// ones, or every one when allowed).
    pub got_reasons: Vec<&'static str>,
    /// Whether it matched.
    pub passed: bool,
    /// Every image judged, for the diff.
    pub images: Vec<JudgedImage>,
    /// Why the case failed when the decision is not the whole story.
    pub note: Option<&'static str>,
}

/// The result of one suite file.
#[derive(Debug)]
pub struct SuiteResult {
    /// The suite file.
    pub file: PathBuf,
    /// Its cases.
    pub cases: Vec<CaseResult>,
}

/// The suite files under `path` (itself when it is a file), in path order.
pub fn discover(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        std::fs::metadata(path)?;
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let p = entry.path();
            if entry.file_type()?.is_dir() {
                stack.push(p);
            } else if is_suite_name(&p) && is_suite(&p) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Whether the file says it is a suite (`kind: PolicyTest`); a manifest
/// named like one (`smoke-test.yaml`) is not.
fn is_suite(path: &Path) -> bool {
    #[derive(Deserialize)]
    struct Kind {
        kind: Option<String>,
    }
    std::fs::read_to_string(path).is_ok_and(|text| {
        serde_saphyr::from_str::<Kind>(&text).is_ok_and(|k| k.kind.as_deref() == Some("PolicyTest"))
    })
}

fn is_suite_name(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.ends_with("test.yaml") || name.ends_with("test.yml")
}

/// Runs one suite: `load` compiles the policy file it names (reporting its
/// errors). An `Err` is a suite that cannot run (unreadable, malformed, its
/// policy or a manifest broken), as one located line.
pub fn run(
    file: &Path,
    load: impl FnOnce(&Path) -> Result<Snapshot, String>,
) -> Result<SuiteResult, String> {
    let shown = file.display();
    let text = std::fs::read_to_string(file).map_err(|e| format!("{shown}: cannot read: {e}"))?;
    let options = serde_saphyr::options! { with_snippet: false };
    let suite: SuiteFile = serde_saphyr::from_str_with_options(&text, options).map_err(|e| {
        let rendered = e.render_with_formatter(&serde_saphyr::UserMessageFormatter);
        match e.location() {
            Some(l) => {
                let suffix = format!(" at line {}, column {}", l.line(), l.column());
                let message = rendered.strip_suffix(&suffix).unwrap_or(&rendered);
                format!("{shown}:{}: {message}", l.line())
            }
            None => format!("{shown}: {rendered}"),
        }
    })?;
    if suite.api_version != "imagegate.dev/v1alpha1" || suite.kind != "PolicyTest" {
        return Err(format!(
            "{shown}:1: a policy test suite has apiVersion imagegate.dev/v1alpha1 and kind PolicyTest"
        ));
    }
    let base = file.parent().unwrap_or(Path::new("."));
    let engine = Engine::new(load(&base.join(&suite.policy))?, None, None);
    let mut verifications =
        Verifications::new(Arc::new(engine)).map_err(|e| format!("{shown}: cannot start: {e}"))?;
    let mut cases = Vec::with_capacity(suite.tests.len());
    for case in &suite.tests {
        let line = case.referenced.line();
        let case = &case.value;
        if case.images.is_empty() == case.manifests.is_empty() {
            return Err(format!(
                "{shown}:{line}: test {:?} needs either images or manifests",
                case.name
            ));
        }
        if !case.manifests.is_empty() && !case.annotations.is_empty() {
            return Err(format!(
                "{shown}:{line}: test {:?}: annotations apply to images; manifests carry their own",
                case.name
            ));
        }
        if let Some(reason) = &case.reason
            && !crate::policy::Reason::ALL
                .iter()
                .any(|r| r.as_str() == reason)
        {
            let known: Vec<&str> = crate::policy::Reason::ALL
                .iter()
                .map(|r| r.as_str())
                .collect();
            return Err(format!(
                "{shown}:{line}: test {:?}: unknown reason {reason:?} (one of {})",
                case.name,
                known.join(", ")
            ));
        }
        let groups: Vec<&str> = case.groups.iter().map(String::as_str).collect();
        let user = case.user.as_deref().map(|name| User {
            name,
            groups: &groups,
        });
        let judged: Vec<Judged> = if case.images.is_empty() {
            let paths: Vec<String> = case
                .manifests
                .iter()
                .map(|m| base.join(m).display().to_string())
                .collect();
            manifests::inputs(&paths)
                .and_then(|(inputs, _)| {
                    manifests::judge(&inputs, &mut verifications, &case.namespace, user)
                })
                .map_err(|e| format!("{shown}:{line}: {e}"))?
                .objects
                .into_iter()
                .map(|o| o.judged)
                .collect()
        } else {
            let annotations: Vec<(&str, &str)> = case
                .annotations
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            vec![
                super::images(
                    &case.images,
                    &case.namespace,
                    &annotations,
                    user,
                    &mut verifications,
                )
                .map_err(|e| format!("{shown}:{line}: {e}"))?,
            ]
        };
        let images: Vec<JudgedImage> = judged.into_iter().flat_map(|j| j.images).collect();
        let got = if images.iter().all(|i| i.allowed) {
            Expect::Allow
        } else {
            Expect::Deny
        };
        let mut got_reasons: Vec<&'static str> = Vec::new();
        for i in images.iter().filter(|i| got == Expect::Allow || !i.allowed) {
            if !got_reasons.contains(&i.reason.as_str()) {
                got_reasons.push(i.reason.as_str());
            }
        }
        let reason_ok = case
            .reason
            .as_deref()
            .is_none_or(|want| got_reasons.iter().all(|r| *r == want));
        let note = images
            .is_empty()
            .then_some("no image was judged: the manifests hold no pod-bearing object");
        cases.push(CaseResult {
            name: case.name.clone(),
            line,
            expected: (case.expect, case.reason.clone()),
            got,
            got_reasons,
            passed: got == case.expect && reason_ok && note.is_none(),
            images,
            note,
        });
    }
    Ok(SuiteResult {
        file: file.to_path_buf(),
        cases,
    })
}
