//! `imagegate check`: image strings, or every image of manifests (`-f`).

use std::fmt::Write as _;
use std::process::ExitCode;

use imagegate::batch::manifests::{self, Judgement, Object};
use imagegate::policy::{Mode, User};
use imagegate::review::{Judged, JudgedImage};
use serde::Serialize;

use super::{CheckArgs, EXIT_ERROR, Output, emit, plural, shown, verdict};

pub(super) fn run(args: &CheckArgs) -> ExitCode {
    let (mut verifications, source) = match super::policy(args.policy.as_deref()) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let groups: Vec<&str> = args.groups.iter().map(String::as_str).collect();
    let user = args.user.as_deref().map(|name| User {
        name,
        groups: &groups,
    });
    if !args.files.is_empty() {
        return files(args, &mut verifications, &source, user);
    }
    let annotations: Vec<(&str, &str)> = args
        .annotations
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let judged = match imagegate::batch::images(
        &args.images,
        &args.namespace,
        &annotations,
        user,
        &mut verifications,
    ) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("cannot judge the images: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let images: Vec<ImageReport<'_>> = judged
        .images
        .iter()
        .map(|i| ImageReport::of(i, judged.mode))
        .collect();
    let allowed = images.iter().all(|i| i.decision == "allow");
    let report = Report {
        allowed,
        policy: &source,
        namespace: &args.namespace,
        images,
    };
    match args.output {
        Output::Json => {
            if !print_json(&report) {
                return ExitCode::from(EXIT_ERROR);
            }
        }
        Output::Text => print_text(&report),
    }
    verdict(!allowed)
}

#[derive(Serialize)]
struct Report<'a> {
    allowed: bool,
    policy: &'a str,
    namespace: &'a str,
    images: Vec<ImageReport<'a>>,
}

#[derive(Serialize)]
struct ImageReport<'a> {
    image: &'a str,
    /// `allow` or `deny`: the policy's verdict (audit mode does not change it).
    decision: &'static str,
    reason: &'static str,
    mode: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<&'a str>,
}

impl<'a> ImageReport<'a> {
    fn of(i: &'a JudgedImage, mode: Mode) -> ImageReport<'a> {
        ImageReport {
            image: &i.image,
            decision: decision(i.allowed),
            reason: i.reason.as_str(),
            mode: mode.as_str(),
            message: &i.message,
            warning: i.warning.as_deref(),
        }
    }
}

fn decision(allowed: bool) -> &'static str {
    if allowed { "allow" } else { "deny" }
}

/// Prints `value` as pretty JSON; false when it cannot be encoded.
pub(super) fn print_json(value: &impl Serialize) -> bool {
    match serde_json::to_string_pretty(value) {
        Ok(json) => {
            emit(&format!("{json}\n"));
            true
        }
        Err(e) => {
            eprintln!("cannot encode the report: {e}");
            false
        }
    }
}

/// `DENY`, `DENY (audit mode: would be admitted)` or `ALLOW`.
pub(super) fn verdict_word(allowed: bool, mode: Mode) -> &'static str {
    match (allowed, mode) {
        (true, _) => "ALLOW",
        (false, Mode::Audit) => "DENY (audit mode: would be admitted)",
        (false, _) => "DENY",
    }
}

fn print_text(report: &Report<'_>) {
    let mut text = String::new();
    for i in &report.images {
        let mode = if i.mode == "audit" {
            Mode::Audit
        } else {
            Mode::Enforce
        };
        let word = verdict_word(i.decision == "allow", mode);
        let _ = writeln!(
            text,
            "{word:5} {} [{}] {}",
            shown(i.image),
            i.reason,
            i.message
        );
        if let Some(w) = &i.warning {
            let _ = writeln!(text, "      warning: {w}");
        }
    }
    let n = report.images.len();
    let _ = writeln!(
        text,
        "{n} image{} checked in namespace {:?} against {}: {}",
        plural(n as u64),
        report.namespace,
        report.policy,
        if report.allowed { "allowed" } else { "denied" }
    );
    emit(&text);
}

fn files(
    args: &CheckArgs,
    verifications: &mut imagegate::batch::Verifications,
    source: &str,
    user: Option<User<'_>>,
) -> ExitCode {
    let judgement = manifests::inputs(&args.files).and_then(|(inputs, _ignored)| {
        manifests::judge(&inputs, verifications, &args.namespace, user)
    });
    let judgement = match judgement {
        Ok(j) => j,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let denied = judgement.objects.iter().any(|o| o.judged.verdict_denied());
    match args.output {
        Output::Json => {
            if !print_json(&ManifestReport::of(&judgement, source)) {
                return ExitCode::from(EXIT_ERROR);
            }
        }
        Output::Text => emit(&manifest_text(&judgement, source)),
    }
    verdict(denied)
}

#[derive(Serialize)]
struct ManifestReport<'a> {
    allowed: bool,
    policy: &'a str,
    objects: Vec<ObjectReport<'a>>,
    skipped: usize,
}

#[derive(Serialize)]
struct ObjectReport<'a> {
    file: &'a str,
    line: u64,
    kind: &'a str,
    name: &'a str,
    namespace: &'a str,
    allowed: bool,
    mode: &'static str,
    images: Vec<ManifestImage<'a>>,
}

#[derive(Serialize)]
struct ManifestImage<'a> {
    container: &'a str,
    field: &'static str,
    image: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
    decision: &'static str,
    reason: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<&'a str>,
}

impl<'a> ManifestReport<'a> {
    fn of(j: &'a Judgement, policy: &'a str) -> ManifestReport<'a> {
        let objects: Vec<ObjectReport<'a>> = j.objects.iter().map(ObjectReport::of).collect();
        ManifestReport {
            allowed: objects.iter().all(|o| o.allowed),
            policy,
            objects,
            skipped: j.skipped,
        }
    }
}

impl<'a> ObjectReport<'a> {
    fn of(o: &'a Object) -> ObjectReport<'a> {
        let j: &Judged = &o.judged;
        ObjectReport {
            file: &o.file,
            line: o.line,
            kind: &j.kind,
            name: &j.name,
            namespace: &j.namespace,
            allowed: !j.verdict_denied(),
            mode: j.mode.as_str(),
            images: j
                .images
                .iter()
                .zip(&o.image_lines)
                .map(|(i, line)| ManifestImage {
                    container: &i.name,
                    field: i.field.as_str(),
                    image: &i.image,
                    line: *line,
                    decision: decision(i.allowed),
                    reason: i.reason.as_str(),
                    message: &i.message,
                    warning: i.warning.as_deref(),
                })
                .collect(),
        }
    }
}

/// Objects grouped, denied first, each image with `FILE:LINE` where known.
fn manifest_text(j: &Judgement, policy: &str) -> String {
    let mut text = String::new();
    let mut order: Vec<&Object> = j.objects.iter().collect();
    order.sort_by_key(|o| !o.judged.verdict_denied());
    let mut denied = 0usize;
    for o in order {
        let d = &o.judged;
        let allowed = !d.verdict_denied();
        denied += usize::from(!allowed);
        let _ = writeln!(
            text,
            "{:5} {} {}/{}  {}:{}",
            verdict_word(allowed, d.mode),
            shown(&d.kind),
            shown(&d.namespace),
            shown(if d.name.is_empty() {
                "(unnamed)"
            } else {
                &d.name
            }),
            shown(&o.file),
            o.line
        );
        for (i, line) in d.images.iter().zip(&o.image_lines) {
            if allowed && i.warning.is_none() {
                continue;
            }
            let file = shown(&o.file);
            let at = line.map_or_else(|| file.to_string(), |l| format!("{file}:{l}"));
            let what = if i.name.is_empty() {
                i.field.as_str().to_owned()
            } else {
                format!("{} {:?}", i.field.as_str(), i.name)
            };
            if i.allowed {
                if let Some(w) = &i.warning {
                    let _ = writeln!(text, "      {at}: {what}: warning: {w}");
                }
            } else {
                let _ = writeln!(text, "      {at}: {what}: [{}] {}", i.reason, i.message);
            }
        }
    }
    let n = j.objects.len();
    let _ = writeln!(
        text,
        "{n} object{} checked against {policy}: {}; {} object{} of other kinds skipped",
        plural(n as u64),
        if denied == 0 {
            "all allowed".to_owned()
        } else {
            format!("{denied} denied")
        },
        j.skipped,
        plural(j.skipped as u64),
    );
    text
}
