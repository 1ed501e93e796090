//! Command-line interface: clap structs turned into actions in one step.
//!
//! `check` and `policy validate` use the same engine as the server, so a
//! policy author sees exactly what the webhook will answer. Exit codes:
//! 0 allowed / valid, 1 denied, 2 usage or policy error. When `verify`
//! rules apply, `check` verifies the images at their registries as the
//! server does (same rules, same deadline, same reason codes).

// The CLI's whole job is to print results.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, Parser, Subcommand, ValueEnum};
use imagegate::policy::{CompileErrors, Context, Scope, Snapshot, User};
use imagegate::review::Checks;
use serde::Serialize;

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
    Serve(Box<imagegate::server::ServeArgs>),
    /// Evaluate images against a policy without a server.
    Check(CheckArgs),
    /// Work with policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
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
    /// Namespace the images would run in.
    #[arg(long, default_value = "default")]
    namespace: String,
    /// A pod annotation, as KEY=VALUE (repeatable), e.g. a break-glass key.
    #[arg(long = "annotation", value_parser = parse_annotation)]
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
    /// Image references to check.
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Json,
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
            Command::Check(args) => Ok(check(&args)),
            Command::Policy(PolicyCommand::Validate { file }) => Ok(validate(&file)),
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

/// Loads a policy file, or reports its errors as `FILE:LINE:COLUMN: message`.
fn load(path: &Path) -> Result<Snapshot, ExitCode> {
    let text = imagegate::policy::read_policy_file(path).map_err(|e| {
        match std::error::Error::source(&e) {
            Some(cause) => eprintln!("{e}: {cause}"),
            None => eprintln!("{e}"),
        }
        ExitCode::from(EXIT_ERROR)
    })?;
    Snapshot::from_yaml(&text).map_err(|errors| {
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
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<String>,
}

fn check(args: &CheckArgs) -> ExitCode {
    let (snapshot, source) = match &args.policy {
        Some(path) => match load(path) {
            Ok(s) => (s, path.display().to_string()),
            Err(code) => return code,
        },
        None => (Snapshot::builtin(), "built-in default policy".to_owned()),
    };
    let annotations: Vec<(&str, &str)> = args
        .annotations
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let groups: Vec<&str> = args.groups.iter().map(String::as_str).collect();
    let ctx = Context {
        namespace: &args.namespace,
        annotations: &annotations,
        user: args.user.as_deref().map(|name| User {
            name,
            groups: &groups,
        }),
    };
    let snapshot = Arc::new(imagegate::server::attach_verifier(snapshot, None, None));
    let checks = match verify(&snapshot, &ctx, &args.images) {
        Ok(checks) => checks,
        Err(e) => {
            eprintln!("cannot start the verification runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let scope = snapshot.scope(&ctx);
    let supply = snapshot.supply_chain();
    let images: Vec<ImageReport<'_>> = args
        .images
        .iter()
        .map(|image| {
            let mut d = scope.evaluate(image);
            if supply.has_rules() && Scope::needs_verification(&d) && supply.applies_to(image) {
                let outcome = checks
                    .get(image)
                    .map_or(imagegate::verify::Outcome::Unavailable, |c| c.outcome);
                d = scope.verified(d, outcome);
            }
            ImageReport {
                image,
                decision: if d.verdict_allowed() { "allow" } else { "deny" },
                reason: d.reason().as_str(),
                mode: d.mode().as_str(),
                message: d.explain(image).to_string(),
                warning: d.warning().map(|w| w.to_string()),
            }
        })
        .collect();
    let allowed = images.iter().all(|i| i.decision == "allow");
    let report = Report {
        allowed,
        policy: &source,
        namespace: &args.namespace,
        images,
    };
    match args.output {
        Output::Json => match serde_json::to_string_pretty(&report) {
            Ok(json) => emit(&format!("{json}\n")),
            Err(e) => {
                eprintln!("cannot encode the report: {e}");
                return ExitCode::from(EXIT_ERROR);
            }
        },
        Output::Text => print_text(&report),
    }
    if allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_DENIED)
    }
}

/// Verifies, at their registries, the images the policy allows and a
/// `verify` rule applies to (none: no runtime, no network).
fn verify(
    snapshot: &Arc<Snapshot>,
    ctx: &Context<'_>,
    images: &[String],
) -> std::io::Result<Checks> {
    let supply = snapshot.supply_chain();
    if !supply.has_rules() {
        return Ok(Checks::new());
    }
    let scope = snapshot.scope(ctx);
    let mut pending: Vec<String> = Vec::new();
    for image in images {
        let d = scope.evaluate(image);
        if Scope::needs_verification(&d) && supply.applies_to(image) && !pending.contains(image) {
            pending.push(image.clone());
        }
    }
    if pending.is_empty() {
        return Ok(Checks::new());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let deadline = Instant::now() + supply.timeout();
    Ok(runtime.block_on(imagegate::server::verify_images(
        Arc::clone(snapshot),
        pending,
        deadline,
    )))
}

fn print_text(report: &Report<'_>) {
    use std::fmt::Write as _;
    let mut text = String::new();
    for i in &report.images {
        let verdict = match (i.decision, i.mode) {
            ("allow", _) => "ALLOW",
            (_, "audit") => "DENY (audit mode: would be admitted)",
            _ => "DENY",
        };
        let _ = writeln!(text, "{verdict:5} {} [{}] {}", i.image, i.reason, i.message);
        if let Some(w) = &i.warning {
            let _ = writeln!(text, "      warning: {w}");
        }
    }
    let _ = writeln!(
        text,
        "{} image{} checked in namespace {:?} against {}: {}",
        report.images.len(),
        if report.images.len() == 1 { "" } else { "s" },
        report.namespace,
        report.policy,
        if report.allowed { "allowed" } else { "denied" }
    );
    emit(&text);
}
