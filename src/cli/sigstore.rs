//! `imagegate sigstore verify-bundle`: one Sigstore bundle verified by the
//! webhook's own verifier, in the sigstore-conformance suite's CLI
//! protocol (exit 0 verified, 1 not verified with one line saying why, 2
//! usage error), so the verifier can be checked against that suite and a
//! bundle debugged by hand.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use imagegate::policy::{Identity, Keyless, Matcher, TrustRoot};
use imagegate::verify::keyless::{self, Trust};
use sigstore_verify::trust_root::SIGSTORE_STAGING_TRUSTED_ROOT;
use sigstore_verify::types::{Artifact, DerPublicKey, Sha256Hash};

use super::{EXIT_DENIED, EXIT_ERROR, emit, shown};

/// Bounds on what is read: bundles and roots are small, artifacts are
/// hashed whole.
const MAX_BUNDLE_BYTES: u64 = 16 << 20;

#[derive(Debug, Subcommand)]
pub(crate) enum SigstoreCommand {
    /// Verify a Sigstore bundle for an artifact (file or sha256 digest).
    VerifyBundle(VerifyBundleArgs),
}

#[derive(Debug, Args)]
pub(crate) struct VerifyBundleArgs {
    /// Use the embedded Sigstore staging root instead of production.
    #[arg(long)]
    staging: bool,
    /// The bundle (`*.sigstore.json`).
    #[arg(long, value_name = "FILE")]
    bundle: PathBuf,
    /// The certificate's subject (SAN), compared for equality.
    #[arg(long, requires = "certificate_oidc_issuer", conflicts_with = "key")]
    certificate_identity: Option<String>,
    /// The certificate's OIDC issuer, compared for equality.
    #[arg(long, requires = "certificate_identity")]
    certificate_oidc_issuer: Option<String>,
    /// A PEM public key (a managed-key bundle) instead of an identity.
    #[arg(
        long,
        value_name = "PEM",
        required_unless_present = "certificate_identity"
    )]
    key: Option<PathBuf>,
    /// A `trusted_root.json` (the embedded public-good root when omitted).
    #[arg(long, value_name = "FILE")]
    trusted_root: Option<PathBuf>,
    /// The artifact: a file, or `sha256:<hex>` (for an in-toto statement,
    /// the digest of one of its subjects).
    #[arg(value_name = "FILE_OR_DIGEST")]
    artifact: String,
}

impl SigstoreCommand {
    pub(crate) fn run(&self) -> ExitCode {
        match self {
            SigstoreCommand::VerifyBundle(args) => verify_bundle(args),
        }
    }
}

fn usage(message: &str) -> ExitCode {
    eprintln!("imagegate sigstore verify-bundle: {message}");
    ExitCode::from(EXIT_ERROR)
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, ExitCode> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| {
        usage(&format!(
            "cannot read the {what} {}: {e}",
            shown(&path.display().to_string())
        ))
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_BUNDLE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| usage(&format!("cannot read the {what} {}: {e}", path.display())))?;
    if bytes.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(usage(&format!(
            "the {what} {} is over {MAX_BUNDLE_BYTES} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}

fn text(path: &Path, what: &str) -> Result<String, ExitCode> {
    String::from_utf8(read(path, what)?)
        .map_err(|_| usage(&format!("the {what} {} is not UTF-8", path.display())))
}

/// `sha256:<hex>` that is not a file on disk (the protocol's rule).
fn digest(arg: &str) -> Option<Sha256Hash> {
    let hex = arg.strip_prefix("sha256:")?;
    if hex.len() != 64 || Path::new(arg).exists() {
        return None;
    }
    Sha256Hash::from_hex(hex).ok()
}

fn root(args: &VerifyBundleArgs) -> Result<TrustRoot, ExitCode> {
    let (json, name) = match (&args.trusted_root, args.staging) {
        (Some(path), _) => (text(path, "trusted root")?, path.display().to_string()),
        (None, true) => (
            SIGSTORE_STAGING_TRUSTED_ROOT.to_owned(),
            "staging root".into(),
        ),
        (None, false) => return Ok(TrustRoot::production()),
    };
    TrustRoot::from_json(&json).map_err(|e| match e.at {
        Some((line, column)) => usage(&format!("{name}:{line}:{column}: {e}")),
        None => usage(&format!("{name}: {e}")),
    })
}

fn verify_bundle(args: &VerifyBundleArgs) -> ExitCode {
    match run(args) {
        Ok(Ok(())) => {
            emit("verified\n");
            ExitCode::SUCCESS
        }
        Ok(Err(why)) => {
            eprintln!("not verified: {}", shown(&why.to_string()));
            ExitCode::from(EXIT_DENIED)
        }
        Err(code) => code,
    }
}

fn run(args: &VerifyBundleArgs) -> Result<Result<(), keyless::Rejected>, ExitCode> {
    let root = root(args)?;
    let bundle_text = text(&args.bundle, "bundle")?;
    let artifact_bytes;
    let artifact = match digest(&args.artifact) {
        Some(d) => Artifact::from_digest(d),
        None => {
            artifact_bytes = read_artifact(Path::new(&args.artifact))?;
            Artifact::from_blob(&artifact_bytes)
        }
    };
    let bundle = match keyless::parse(&bundle_text) {
        Ok(b) => b,
        Err(e) => return Ok(Err(e)),
    };
    let key;
    let keyless_trust;
    let trust = match (
        &args.key,
        &args.certificate_identity,
        &args.certificate_oidc_issuer,
    ) {
        (Some(path), _, _) => {
            let pem = text(path, "key")?;
            key = DerPublicKey::from_pem(&pem)
                .map_err(|e| usage(&format!("{}: not a PEM public key: {e}", path.display())))?;
            Trust::Key(&key, &root)
        }
        (None, Some(subject), Some(issuer)) => {
            let identity = Identity::new(
                Matcher::Exact(issuer.clone()),
                Matcher::Exact(subject.clone()),
                Vec::new(),
            );
            keyless_trust = Keyless::new(vec![identity], root.clone());
            Trust::Keyless(&keyless_trust)
        }
        _ => {
            return Err(usage(
                "give --key, or --certificate-identity with --certificate-oidc-issuer",
            ));
        }
    };
    Ok(keyless::verify(&bundle, artifact, trust))
}

/// The artifact file, read whole (verification hashes it).
fn read_artifact(path: &Path) -> Result<Vec<u8>, ExitCode> {
    std::fs::read(path).map_err(|e| {
        usage(&format!(
            "cannot read the artifact {}: {e}",
            shown(&path.display().to_string())
        ))
    })
}
