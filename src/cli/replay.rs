//! `imagegate replay`: recorded reviews judged again.

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::process::ExitCode;

use imagegate::batch::records::{self, Skip};
use imagegate::batch::replay::{Listed, Replay};
use serde::Serialize;

use super::check::print_json;
use super::{EXIT_ERROR, ReplayArgs, ReplayOutput, code, emit, plural, shown, verdict};

pub(super) fn run(args: &ReplayArgs) -> ExitCode {
    let (mut policy, source) = match super::policy(args.policy.as_deref()) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let mut baseline = match &args.baseline {
        Some(path) => match super::policy(Some(path)) {
            Ok((v, name)) => Some((v, name)),
            Err(code) => return code,
        },
        None => None,
    };
    let mut files = Vec::with_capacity(args.files.len());
    for file in &args.files {
        let opened = if file == "-" {
            records::open(std::io::stdin())
        } else {
            std::fs::File::open(file).and_then(records::open)
        };
        match opened {
            Ok(reader) => files.push((file.clone(), reader)),
            Err(e) => {
                eprintln!("{file}: cannot read: {e}");
                return ExitCode::from(EXIT_ERROR);
            }
        }
    }
    let terminal = std::io::stderr().is_terminal();
    let replay = imagegate::batch::replay::replay(
        &mut files,
        &mut policy,
        baseline.as_mut().map(|(v, _)| v),
        |n| {
            if terminal {
                eprint!("\r{n} reviews read");
            }
        },
    );
    if terminal {
        eprint!("\r\x1b[K");
    }
    for (file, error) in &replay.read_errors {
        eprintln!(
            "{}: stopped reading early: {} (what was read before is counted)",
            shown(file),
            shown(error)
        );
    }
    let broken = replay.skipped.get(&Skip::Broken).copied().unwrap_or(0);
    let unreadable = replay.reviews == 0 && broken > 0;
    if unreadable {
        eprintln!(
            "no review could be judged: {broken} line{} not JSON (expected one audit event or review per line)",
            plural(broken)
        );
    }
    let base = baseline.as_ref().map(|(_, name)| name.as_str());
    match args.output {
        ReplayOutput::Json => {
            if !print_json(&JsonReport::of(&replay, base.is_some())) {
                return ExitCode::from(EXIT_ERROR);
            }
        }
        ReplayOutput::Text => emit(&text(&replay, &source, base)),
        ReplayOutput::Markdown => emit(&markdown(&replay, &source, base)),
    }
    // Incomplete input is not a verdict: a gate must not pass on it.
    if !replay.read_errors.is_empty() || unreadable {
        return ExitCode::from(EXIT_ERROR);
    }
    verdict(if base.is_some() {
        replay.newly_denied > 0
    } else {
        replay.denied > 0
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonReport<'a> {
    reviews: u64,
    allowed: u64,
    denied: u64,
    denied_in_audit_mode: u64,
    skipped: u64,
    skipped_by: std::collections::BTreeMap<&'static str, u64>,
    malformed: u64,
    denied_by_namespace: &'a std::collections::BTreeMap<String, u64>,
    denied_by_reason: &'a std::collections::BTreeMap<&'static str, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    newly_denied: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    newly_allowed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    changes: Option<Vec<Change<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    denials: Option<Vec<Change<'a>>>,
    unlisted: u64,
    read_errors: Vec<ReadError<'a>>,
}

#[derive(Serialize)]
struct ReadError<'a> {
    file: &'a str,
    error: &'a str,
}

#[derive(Serialize)]
struct Change<'a> {
    source: &'a str,
    namespace: &'a str,
    kind: &'a str,
    name: &'a str,
    images: Vec<ChangedImage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    before: Option<&'static str>,
    after: &'static str,
    count: u64,
}

#[derive(Serialize)]
struct ChangedImage<'a> {
    container: &'a str,
    image: &'a str,
    decision: &'static str,
    reason: &'static str,
    message: &'a str,
}

fn word(allowed: bool) -> &'static str {
    if allowed { "allow" } else { "deny" }
}

impl<'a> Change<'a> {
    fn of(l: &'a Listed) -> Change<'a> {
        let j = &l.judged;
        Change {
            source: &l.source,
            namespace: &j.namespace,
            kind: &j.kind,
            name: &j.name,
            images: j
                .images
                .iter()
                .map(|i| ChangedImage {
                    container: &i.name,
                    image: &i.image,
                    decision: word(i.allowed),
                    reason: i.reason.as_str(),
                    message: &i.message,
                })
                .collect(),
            before: l.before.map(word),
            after: word(!j.verdict_denied()),
            count: l.count,
        }
    }
}

impl<'a> JsonReport<'a> {
    fn of(r: &'a Replay, baseline: bool) -> JsonReport<'a> {
        let listed: Vec<Change<'a>> = r.listed.iter().map(Change::of).collect();
        let (changes, denials) = if baseline {
            (Some(listed), None)
        } else {
            (None, Some(listed))
        };
        JsonReport {
            reviews: r.reviews,
            allowed: r.allowed,
            denied: r.denied,
            denied_in_audit_mode: r.denied_in_audit,
            skipped: r.skipped_total(),
            skipped_by: r.skipped.iter().map(|(k, v)| (k.as_str(), *v)).collect(),
            malformed: r.malformed,
            denied_by_namespace: &r.denied_by_namespace,
            denied_by_reason: &r.denied_by_reason,
            newly_denied: baseline.then_some(r.newly_denied),
            newly_allowed: baseline.then_some(r.newly_allowed),
            changes,
            denials,
            unlisted: r.unlisted,
            read_errors: r
                .read_errors
                .iter()
                .map(|(file, error)| ReadError { file, error })
                .collect(),
        }
    }
}

fn skipped_line(r: &Replay) -> String {
    let parts: Vec<String> = Skip::ALL
        .iter()
        .filter_map(|s| r.skipped.get(s).map(|n| format!("{} {n}", s.as_str())))
        .collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(", ")
    }
}

fn object_name(l: &Listed) -> String {
    let j = &l.judged;
    let name = if j.name.is_empty() {
        "(unnamed)"
    } else {
        &j.name
    };
    format!("{} {}/{}", shown(&j.kind), shown(&j.namespace), shown(name))
}

/// The denied images of `l` and their reasons, each image through `show`.
fn denied_images(l: &Listed, show: impl Fn(&str) -> String) -> String {
    let parts: Vec<String> = l
        .judged
        .images
        .iter()
        .filter(|i| !i.allowed)
        .map(|i| format!("{} [{}]", show(&i.image), i.reason.as_str()))
        .collect();
    parts.join(", ")
}

fn text(r: &Replay, policy: &str, baseline: Option<&str>) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{} review{} replayed against {policy}: {} allowed, {} denied ({} of them in audit mode); {} line{} skipped ({}); {} malformed",
        r.reviews,
        plural(r.reviews),
        r.allowed,
        r.denied,
        r.denied_in_audit,
        r.skipped_total(),
        plural(r.skipped_total()),
        skipped_line(r),
        r.malformed,
    );
    if !r.denied_by_namespace.is_empty() {
        let _ = writeln!(t, "denied by namespace:");
        for (ns, n) in &r.denied_by_namespace {
            let _ = writeln!(t, "  {:30} {n}", shown(ns));
        }
        let _ = writeln!(t, "denied images by reason:");
        for (reason, n) in &r.denied_by_reason {
            let _ = writeln!(t, "  {reason:30} {n}");
        }
    }
    match baseline {
        Some(base) => {
            let _ = writeln!(
                t,
                "compared with {base}: {} newly denied, {} newly allowed",
                r.newly_denied, r.newly_allowed
            );
            for l in &r.listed {
                let change = if l.before == Some(true) {
                    "NEWLY DENIED "
                } else {
                    "NEWLY ALLOWED"
                };
                let _ = writeln!(
                    t,
                    "  {change} {} ({}, {}x) {}",
                    object_name(l),
                    shown(&l.source),
                    l.count,
                    denied_images(l, |i| shown(i).into_owned())
                );
            }
        }
        None => {
            for l in &r.listed {
                let _ = writeln!(
                    t,
                    "  DENY {} ({}, {}x) {}",
                    object_name(l),
                    shown(&l.source),
                    l.count,
                    denied_images(l, |i| shown(i).into_owned())
                );
            }
        }
    }
    if r.unlisted > 0 {
        let _ = writeln!(t, "  ... and {} more objects not listed", r.unlisted);
    }
    t
}

/// A pull-request comment: a summary table and the objects that change.
fn markdown(r: &Replay, policy: &str, baseline: Option<&str>) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "### imagegate replay: {}\n", code(policy));
    let _ = writeln!(t, "| reviews | allowed | denied | skipped |");
    let _ = writeln!(t, "| ---: | ---: | ---: | ---: |");
    let _ = writeln!(
        t,
        "| {} | {} | {} | {} |\n",
        r.reviews,
        r.allowed,
        r.denied,
        r.skipped_total()
    );
    if let Some(base) = baseline {
        let _ = writeln!(
            t,
            "Compared with {}: **{} newly denied**, {} newly allowed.\n",
            code(base),
            r.newly_denied,
            r.newly_allowed
        );
    }
    if !r.denied_by_namespace.is_empty() {
        let _ = writeln!(t, "| namespace | denied reviews |\n| --- | ---: |");
        for (ns, n) in &r.denied_by_namespace {
            let _ = writeln!(t, "| {} | {n} |", code(ns));
        }
        let _ = writeln!(t);
    }
    if !r.listed.is_empty() {
        let _ = writeln!(
            t,
            "| change | object | images | reviews |\n| --- | --- | --- | ---: |"
        );
        for l in &r.listed {
            let change = match l.before {
                Some(true) => "newly denied",
                Some(false) => "newly allowed",
                None => "denied",
            };
            let j = &l.judged;
            let name = if j.name.is_empty() {
                "(unnamed)"
            } else {
                &j.name
            };
            let _ = writeln!(
                t,
                "| {change} | {} | {} | {} |",
                code(&format!("{} {}/{}", j.kind, j.namespace, name)),
                denied_images(l, code),
                l.count
            );
        }
    }
    if r.unlisted > 0 {
        let _ = writeln!(t, "\n{} more objects not listed.", r.unlisted);
    }
    t
}
