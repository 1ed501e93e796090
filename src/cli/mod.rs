//! Command-line interface: clap structs turned into actions in one step.
//!
//! `check`, `replay`, `test` and `policy validate` judge with the server's
//! engine (every image through [`imagegate::review`], as `/validate` does),
//! so a policy author sees exactly what the webhook will answer. Exit
//! codes: 0 allowed / valid / passed, 1 denied / failed, 2 usage, policy or
//! input error. When `verify` rules apply, images are verified at their
//! registries as the server does (same rules, same deadline, same reason
//! codes).

// The CLI's whole job is to print results.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod check;
mod replay;
pub(crate) mod serve;
mod sigstore;
mod test;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use imagegate::batch::Verifications;
use imagegate::decide::Engine;
use imagegate::policy::{CompileErrors, Snapshot};

/// Kubernetes image admission webhook (ImageReview and AdmissionReview).
#[derive(Debug, Parser)]
#[command(name = "imagegate", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the webhook server.
    Serve(Box<serve::ServeArgs>),
    /// Evaluate images, or every image of Kubernetes manifests (-f),
    /// against a policy without a server.
    Check(CheckArgs),
    /// Judge recorded reviews (audit logs, recorded or saved
    /// AdmissionReview/ImageReview bodies) again under a policy.
    Replay(ReplayArgs),
    /// Run policy test suites.
    Test(TestArgs),
    /// Work with policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Sigstore bundles, checked by the webhook's verifier.
    #[command(subcommand)]
    Sigstore(sigstore::SigstoreCommand),
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Parse and compile a policy, reporting every error with its location.
    Validate {
        /// The policy file.
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// Policy file (the built-in default policy when omitted).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Namespace the images would run in (for manifests: of objects that
    /// name none).
    #[arg(long, default_value = "default")]
    namespace: String,
    /// A pod annotation, as KEY=VALUE (repeatable), e.g. a break-glass key
    /// (manifests carry their own).
    #[arg(long = "annotation", value_parser = parse_annotation, conflicts_with = "files")]
    annotations: Vec<(String, String)>,
    /// The requesting user, as an AdmissionReview's `userInfo.username`
    /// (for break-glass restricted to users or groups).
    #[arg(long)]
    user: Option<String>,
    /// A group of the requesting user (repeatable).
    #[arg(long = "group", requires = "user")]
    groups: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
    /// Kubernetes manifests to check (repeatable): a YAML or JSON file, a
    /// directory (recursively: *.yaml, *.yml, *.json), or - for standard
    /// input.
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    files: Vec<String>,
    /// Image references to check.
    #[arg(required_unless_present = "files", conflicts_with = "files")]
    images: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// The policy to judge with (the built-in default policy when omitted).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// A second policy to compare with: lists what changes verdict from it
    /// to --policy.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReplayOutput::Text)]
    output: ReplayOutput,
    /// Files of recorded reviews, one JSON object per line (plain or gzip):
    /// audit logs, `serve --record` files, review bodies; - for standard
    /// input.
    #[arg(required = true)]
    files: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReplayOutput {
    Text,
    Json,
    Markdown,
}

#[derive(Debug, Args)]
struct TestArgs {
    /// A suite file, or a directory of them (*test.yaml, *test.yml).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

fn parse_annotation(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("annotation {s:?} is not KEY=VALUE")),
    }
}

impl Cli {
    /// Runs the chosen command and returns the process exit code.
    pub(crate) fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Serve(args) => crate::serve(*args),
            Command::Check(args) => Ok(check::run(&args)),
            Command::Replay(args) => Ok(replay::run(&args)),
            Command::Test(args) => Ok(test::run(&args)),
            Command::Policy(PolicyCommand::Validate { file }) => Ok(validate(&file)),
            Command::Sigstore(command) => Ok(command.run()),
        }
    }
}

const EXIT_DENIED: u8 = 1;
const EXIT_ERROR: u8 = 2;

/// Writes `text` to standard output. A reader that went away (`check ... |
/// head -1`) is not an error: the rest is dropped and the command still
/// exits with its verdict's code. Other write errors are reported.
fn emit(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let written = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    if let Err(e) = written
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("cannot write the report: {e}");
    }
}

/// The policy named, or the built-in one, with its verifier, and how to
/// name it in reports.
fn policy(path: Option<&Path>) -> Result<(Verifications, String), ExitCode> {
    let (snapshot, source) = match path {
        Some(path) => (load(path)?, path.display().to_string()),
        None => (Snapshot::builtin(), "built-in default policy".to_owned()),
    };
    let engine = Engine::new(snapshot, None, None);
    match Verifications::new(Arc::new(engine)) {
        Ok(v) => Ok((v, source)),
        Err(e) => {
            eprintln!("cannot start the verification runtime: {e}");
            Err(ExitCode::from(EXIT_ERROR))
        }
    }
}

/// Loads a policy file, or reports its errors as `FILE:LINE:COLUMN: message`.
fn load(path: &Path) -> Result<Snapshot, ExitCode> {
    let text = imagegate::load::read_policy_file(path).map_err(|e| {
        match std::error::Error::source(&e) {
            Some(cause) => eprintln!("{e}: {cause}"),
            None => eprintln!("{e}"),
        }
        ExitCode::from(EXIT_ERROR)
    })?;
    imagegate::load::compile(&text).map_err(|errors| {
        report(path, &errors);
        ExitCode::from(EXIT_ERROR)
    })
}

fn report(path: &Path, errors: &CompileErrors) {
    for e in errors {
        eprintln!("{}:{}:{}: {}", path.display(), e.line, e.column, e.message);
    }
    eprintln!(
        "{}: {} error{}, policy rejected",
        path.display(),
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
}

fn validate(path: &Path) -> ExitCode {
    match load(path) {
        Ok(_) => {
            emit(&format!("{}: valid\n", path.display()));
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// 0, or [`EXIT_DENIED`] when `denied`.
fn verdict(denied: bool) -> ExitCode {
    if denied {
        ExitCode::from(EXIT_DENIED)
    } else {
        ExitCode::SUCCESS
    }
}

/// `s` when `n` is not 1.
fn plural(n: impl Into<u64>) -> &'static str {
    if n.into() == 1 { "" } else { "s" }
}

/// `s` for a terminal: control characters and invisible direction or
/// width overrides escaped (`\u{1b}`), so that a name, image or path taken
/// from a manifest or a log cannot drive the terminal or hide text.
fn shown(s: &str) -> std::borrow::Cow<'_, str> {
    fn hidden(c: char) -> bool {
        c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
    }
    if !s.chars().any(hidden) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if hidden(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `s` as a Markdown code span fit for a table cell: [`shown`], `|`
/// escaped, fenced by more backticks than it holds in a row.
fn code(s: &str) -> String {
    let text = shown(s).replace('|', "\\|");
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    format!("{fence} {text} {fence}")
}
