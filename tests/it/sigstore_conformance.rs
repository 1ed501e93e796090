//! `imagegate sigstore verify-bundle` against the sigstore-conformance
//! suite's bundle verification cases (every case, with the artifact given
//! as a path and as a `sha256:` digest, as the suite runs them) and against
//! real bundles from Sigstore clients: the exit code is the verdict, as the
//! suite judges it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::cases;

const DEFAULT_IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const DEFAULT_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// The `_fail` cases whose input files are unusable: a corrupt `key.pub`,
/// a trusted root missing a required field.
const USAGE_FAILURES: [&str; 2] = [
    "managed-key-wrong-key_fail",
    "trust-root-tlog-missing-validity-start_fail",
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sigstore/conformance")
}

fn verify_bundle(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imagegate"))
        .args(["sigstore", "verify-bundle"])
        .args(args)
        .output()
        .expect("run imagegate")
}

fn sha256_of(path: &Path) -> String {
    use sha2::Digest as _;
    let bytes = std::fs::read(path).expect("artifact");
    let digest = sha2::Sha256::digest(&bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The arguments for one case directory, in the suite's order.
fn case_args(dir: &Path, artifact: &str) -> Vec<String> {
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name))
            .ok()
            .map(|s| s.trim().to_owned())
    };
    let path = |name: &str| dir.join(name).display().to_string();
    let mut args = vec!["--bundle".to_owned(), path("bundle.sigstore.json")];
    if dir.join("key.pub").exists() {
        args.extend(["--key".to_owned(), path("key.pub")]);
    } else {
        args.extend([
            "--certificate-identity".to_owned(),
            read("identity").unwrap_or_else(|| DEFAULT_IDENTITY.to_owned()),
            "--certificate-oidc-issuer".to_owned(),
            read("issuer").unwrap_or_else(|| DEFAULT_ISSUER.to_owned()),
        ]);
    }
    if dir.join("trusted_root.json").exists() {
        args.extend(["--trusted-root".to_owned(), path("trusted_root.json")]);
    }
    args.push(artifact.to_owned());
    args
}

#[test]
fn every_conformance_case_is_judged_as_the_suite_expects() {
    let root = fixtures().join("bundle-verify");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("cases")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), 70, "the suite's 70 cases are all here");
    let dirs = cases::only("sigstore conformance", dirs, |d| {
        d.file_name().and_then(|n| n.to_str()).unwrap_or("")
    });
    let mut wrong = Vec::new();
    let mut failing = 0;
    for dir in &dirs {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let must_fail = name.ends_with("_fail");
        failing += usize::from(must_fail);
        let artifact = if dir.join("artifact").exists() {
            dir.join("artifact")
        } else {
            fixtures().join("bundle-verify/a.txt")
        };
        for given in [artifact.display().to_string(), sha256_of(&artifact)] {
            let args = case_args(dir, &given);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = verify_bundle(&args);
            let code = out.status.code();
            // A case fails by exit 1 (not verified); only the cases whose
            // key or trusted root file is itself unusable fail by exit 2
            // (usage), before any bundle check.
            let right = if must_fail {
                code == Some(1) || (code == Some(2) && USAGE_FAILURES.contains(&name))
            } else {
                code == Some(0)
            };
            if !right {
                wrong.push(format!(
                    "{name} ({given}): exit {code:?}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            if must_fail && code == Some(1) {
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert!(
                    stderr.starts_with("not verified: ") && stderr.lines().count() == 1,
                    "{name}: one line saying why: {stderr:?}"
                );
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    if dirs.len() == 70 {
        assert_eq!(failing, 49, "49 of the cases must fail");
    }
}

/// Real bundles from Sigstore clients' test assets, each with its own
/// identity and root: verified; the same with another identity or another
/// artifact: not.
#[test]
fn real_client_bundles_verify_for_their_signer_only() {
    let real = fixtures().join("real");
    let p = |name: &str| real.join(name).display().to_string();
    let staging = p("trusted_root.staging.json");
    // (sigstore-js's DSSE bundle names its subject by sha512 only, which the
    // protocol's `sha256:` argument cannot name.)
    let cases: [(&str, &str, &str, &str, Option<&str>); 4] = [
        (
            "sigstore-rs__cosign-v3-image.sigstore.json",
            "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172",
            "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0",
            "https://token.actions.githubusercontent.com",
            None,
        ),
        (
            "sigstore-rust__cosign-v3-blob.sigstore.json",
            "sigstore-rust__cosign-v3-blob.txt",
            "w.vollprecht@gmail.com",
            "https://github.com/login/oauth",
            None,
        ),
        (
            "sigstore-rust__conda-attestation-rekor2.sigstore.json",
            "sigstore-rust__signed-package-2.1.0-hb0f4dca_0.conda",
            "jku@goto.fi",
            "https://github.com/login/oauth",
            Some(staging.as_str()),
        ),
        (
            "sigstore-python__bundle_v3.txt.sigstore.json",
            "sigstore-python__bundle_v3.txt",
            "william@yossarian.net",
            "https://github.com/login/oauth",
            Some(staging.as_str()),
        ),
    ];
    for (bundle, artifact, identity, issuer, root) in cases {
        let artifact = if artifact.starts_with("sha256:") {
            artifact.to_owned()
        } else {
            p(artifact)
        };
        let run = |identity: &str, issuer: &str, artifact: &str| {
            let bundle = p(bundle);
            let mut args = vec![
                "--bundle",
                &bundle,
                "--certificate-identity",
                identity,
                "--certificate-oidc-issuer",
                issuer,
            ];
            if let Some(root) = root {
                args.extend(["--trusted-root", root]);
            }
            args.push(artifact);
            verify_bundle(&args)
        };
        let ok = run(identity, issuer, &artifact);
        assert_eq!(
            ok.status.code(),
            Some(0),
            "{bundle}: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
        let wrong_subject = run(&format!("{identity}x"), issuer, &artifact);
        assert_eq!(
            wrong_subject.status.code(),
            Some(1),
            "{bundle}: other subject"
        );
        assert!(
            String::from_utf8_lossy(&wrong_subject.stderr).contains("not a trusted identity"),
            "{bundle}: {}",
            String::from_utf8_lossy(&wrong_subject.stderr)
        );
        let wrong_issuer = run(identity, "https://accounts.google.com", &artifact);
        assert_eq!(
            wrong_issuer.status.code(),
            Some(1),
            "{bundle}: other issuer"
        );
        let other = run(
            identity,
            issuer,
            "sha256:0000000000000000000000000000000000000000000000000000000000000000",
        );
        assert_eq!(other.status.code(), Some(1), "{bundle}: another artifact");
    }
}

#[test]
fn usage_errors_exit_2() {
    let real = fixtures().join("real");
    let bundle = real.join("sigstore-rs__cosign-v3-image.sigstore.json");
    let bundle = bundle.display().to_string();
    let digest = "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172";
    // No identity and no key.
    let out = verify_bundle(&["--bundle", &bundle, digest]);
    assert_eq!(out.status.code(), Some(2));
    // A trusted root that is not JSON names its line and column.
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("root.json");
    std::fs::write(&bad, "{\n  \"mediaType\": \n}").expect("write");
    let bad = bad.display().to_string();
    let out = verify_bundle(&[
        "--bundle",
        &bundle,
        "--certificate-identity",
        "x",
        "--certificate-oidc-issuer",
        "y",
        "--trusted-root",
        &bad,
        digest,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("root.json:3:1:"), "{stderr}");
    // A missing bundle file.
    let out = verify_bundle(&[
        "--bundle",
        "/nonexistent/bundle.json",
        "--certificate-identity",
        "x",
        "--certificate-oidc-issuer",
        "y",
        digest,
    ]);
    assert_eq!(out.status.code(), Some(2));
}
