//! `imagegate test`: policy test suites.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use imagegate::batch::suite::{self, CaseResult, Expect};
use imagegate::policy::Snapshot;

use super::{EXIT_ERROR, TestArgs, emit, plural, shown, verdict};

pub(super) fn run(args: &TestArgs) -> ExitCode {
    let mut suites = Vec::new();
    for path in &args.paths {
        match suite::discover(path) {
            Ok(found) if found.is_empty() => {
                eprintln!(
                    "{}: no test suites (files named *test.yaml)",
                    path.display()
                );
                return ExitCode::from(EXIT_ERROR);
            }
            Ok(found) => suites.extend(found),
            Err(e) => {
                eprintln!("{}: cannot read: {e}", path.display());
                return ExitCode::from(EXIT_ERROR);
            }
        }
    }
    let (mut passed, mut failed) = (0u64, 0u64);
    let mut text = String::new();
    for file in &suites {
        let result = match suite::run(file, load) {
            Ok(r) => r,
            Err(e) => {
                emit(&text);
                eprintln!("{e}");
                return ExitCode::from(EXIT_ERROR);
            }
        };
        for case in &result.cases {
            if case.passed {
                passed += 1;
                let _ = writeln!(
                    text,
                    "PASS  {}:{}  {}",
                    file.display(),
                    case.line,
                    case.name
                );
            } else {
                failed += 1;
                let _ = writeln!(
                    text,
                    "FAIL  {}:{}  {}",
                    file.display(),
                    case.line,
                    case.name
                );
                diff(&mut text, case);
            }
        }
    }
    let _ = writeln!(
        text,
        "{} suite{}: {passed} passed, {failed} failed",
        suites.len(),
        plural(suites.len() as u64)
    );
    emit(&text);
    verdict(failed > 0)
}

fn load(path: &Path) -> Result<Snapshot, String> {
    // `load` reports the policy's errors itself.
    super::load(path).map_err(|_| format!("{}: policy rejected", path.display()))
}

fn expectation(expect: Expect, reason: Option<&str>) -> String {
    match reason {
        Some(r) => format!("{} ({r})", expect.as_str()),
        None => expect.as_str().to_owned(),
    }
}

/// What was expected, what came, and each image's verdict.
fn diff(text: &mut String, case: &CaseResult) {
    let (expect, reason) = &case.expected;
    if let Some(note) = case.note {
        let _ = writeln!(text, "      {note}");
    }
    let _ = writeln!(
        text,
        "      expected: {}",
        expectation(*expect, reason.as_deref())
    );
    let _ = writeln!(
        text,
        "      got:      {} ({})",
        case.got.as_str(),
        case.got_reasons.join(", ")
    );
    for i in &case.images {
        let mark = if i.allowed { "allow" } else { "deny " };
        let _ = writeln!(
            text,
            "        {mark} {} [{}] {}",
            shown(&i.image),
            i.reason.as_str(),
            i.message
        );
    }
}
