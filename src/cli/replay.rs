//! `imagegate replay`: recorded reviews judged again.

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::process::ExitCode;

use imagegate::batch::records::{self, Skip};
use imagegate::batch::replay::{Listed, Replay};
use serde::Serialize;

use super::check::print_json;
use super::{EXIT_ERROR, ReplayArgs, ReplayOutput, emit, plural, verdict};

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
        eprintln!("{file}: stopped reading early: {error} (what was read before is counted)");
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
    format!("{} {}/{}", j.kind, j.namespace, name)
}

fn denied_images(l: &Listed) -> String {
    let parts: Vec<String> = l
        .judged
        .images
        .iter()
        .filter(|i| !i.allowed)
        .map(|i| format!("{} [{}]", i.image, i.reason.as_str()))
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
            let _ = writeln!(t, "  {ns:30} {n}");
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
                    l.source,
                    l.count,
                    denied_images(l)
                );
            }
        }
        None => {
            for l in &r.listed {
                let _ = writeln!(
                    t,
                    "  DENY {} ({}, {}x) {}",
                    object_name(l),
                    l.source,
                    l.count,
                    denied_images(l)
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
    let _ = writeln!(t, "### imagegate replay: `{policy}`\n");
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
            "Compared with `{base}`: **{} newly denied**, {} newly allowed.\n",
            r.newly_denied, r.newly_allowed
        );
    }
    if !r.denied_by_namespace.is_empty() {
        let _ = writeln!(t, "| namespace | denied reviews |\n| --- | ---: |");
        for (ns, n) in &r.denied_by_namespace {
            let _ = writeln!(t, "| `{ns}` | {n} |");
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
            let _ = writeln!(
                t,
                "| {change} | `{}` | {} | {} |",
                object_name(l),
                denied_images(l).replace('|', "\\|"),
                l.count
            );
        }
    }
    if r.unlisted > 0 {
        let _ = writeln!(t, "\n{} more objects not listed.", r.unlisted);
    }
    t
}
