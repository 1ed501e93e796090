//! Trusted roots refreshed from a TUF repository (`verify[].tuf`): a real
//! repository made and changed by python-tuf (`tests/fixtures/tuf/repo.py`,
//! the TUF reference implementation), served on loopback. The client
//! follows new targets and root rotations and refuses rollback, expiry,
//! tampered targets, targets that are not trusted roots and foreign roots;
//! the server puts a refreshed root in force without a restart (both ways:
//! a CA added and a CA taken away), keeps the last verified root when a
//! refresh fails, and counts every refresh.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use crate::support::files::FileServer;
use imagegate::policy::{CaBundle, TufSource};
use imagegate::verify::tuf::{TufClient, TufStore};

const KEYLESS_ROOT: &str = "tests/fixtures/verify/keyless/trusted_root.json";
const OTHER_ROOT: &str = "tests/fixtures/verify/keyless/other_root.json";
const MISSING_TUF: &str = "needs python-tuf with cryptography (pip install tuf 'securesystemslib[crypto]'; .ci/run installs them)";

/// A python-tuf repository in a directory of its own.
struct Repo {
    dir: PathBuf,
}

impl Repo {
    fn script(&self, args: &[&str]) {
        let out = Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/tuf/repo.py"
            ))
            .args(args)
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "repo.py {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn init(dir: &Path, target: &str) -> Repo {
        let repo = Repo {
            dir: dir.to_owned(),
        };
        repo.script(&["init", dir.to_str().unwrap(), target]);
        repo
    }

    fn publish(&self, target: &str) {
        self.script(&["publish", self.dir.to_str().unwrap(), target]);
    }

    fn run(&self, command: &str) {
        self.script(&[command, self.dir.to_str().unwrap()]);
    }

    /// What is served.
    fn served(&self) -> PathBuf {
        self.dir.join("repo")
    }

    /// The first root, which a client is given.
    fn root(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("root.json")).unwrap()
    }
}

fn text(path: &str) -> String {
    std::fs::read_to_string(path).unwrap()
}

fn client(files: &FileServer, root: &[u8], store: &Arc<TufStore>) -> TufClient {
    let source = TufSource::new(
        &files.url(),
        root,
        "trusted_root.json",
        Duration::from_secs(3600),
    );
    TufClient::new(source, &CaBundle::default(), store.clone())
}

#[cfg_attr(
    not(have_python_tuf),
    ignore = "needs python-tuf with cryptography (pip install tuf 'securesystemslib[crypto]')"
)]
#[tokio::test]
async fn a_tuf_repository_is_followed_and_its_attacks_refused() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::init(&dir.path().join("a"), KEYLESS_ROOT);
    let files = FileServer::start(&repo.served()).await;
    let store = Arc::new(TufStore::default());
    let c = client(&files, &repo.root(), &store);
    assert_eq!(c.refresh().await.expect(MISSING_TUF), text(KEYLESS_ROOT));
    // nothing changed: the same root again
    assert_eq!(c.refresh().await.unwrap(), text(KEYLESS_ROOT));

    // a new target
    repo.publish(OTHER_ROOT);
    assert_eq!(c.refresh().await.unwrap(), text(OTHER_ROOT));

    // root rotation: new keys for every role, root 2 signed by old and new
    repo.run("rotate");
    assert_eq!(c.refresh().await.unwrap(), text(OTHER_ROOT));
    assert!(files.was_asked("/2.root.json"), "the root chain was walked");
    repo.publish(KEYLESS_ROOT);
    assert_eq!(c.refresh().await.unwrap(), text(KEYLESS_ROOT));

    // rollback: an older timestamp than the one seen, served again
    let timestamp = repo.served().join("timestamp.json");
    let older = std::fs::read(&timestamp).unwrap();
    repo.publish(OTHER_ROOT);
    assert_eq!(c.refresh().await.unwrap(), text(OTHER_ROOT));
    let newest = std::fs::read(&timestamp).unwrap();
    std::fs::write(&timestamp, &older).unwrap();
    let e = c.refresh().await.unwrap_err();
    assert!(e.contains("rollback"), "{e}");
    // a new client for the source (another interval, another CA) keeps the
    // floor: what the source verified so far is kept apart from the client
    let again = client(&files, &repo.root(), &store);
    let e = again.refresh().await.unwrap_err();
    assert!(e.contains("rollback"), "{e}");
    // while a client starting from nothing would have taken it
    let fresh = client(&files, &repo.root(), &Arc::default());
    assert_eq!(fresh.refresh().await.unwrap(), text(KEYLESS_ROOT));
    std::fs::write(&timestamp, &newest).unwrap();
    assert_eq!(c.refresh().await.unwrap(), text(OTHER_ROOT));

    // an expired timestamp is refused; the next good one recovers
    repo.run("expire");
    let e = c.refresh().await.unwrap_err();
    assert!(e.contains("expired"), "{e}");
    repo.publish(KEYLESS_ROOT);
    assert_eq!(c.refresh().await.unwrap(), text(KEYLESS_ROOT));

    // a mirror that redirects every file elsewhere (an object store, say)
    let mirror = FileServer::redirecting_to(&files.url()).await;
    let redirected = client(&mirror, &repo.root(), &Arc::default());
    assert_eq!(redirected.refresh().await.unwrap(), text(KEYLESS_ROOT));
    assert!(mirror.was_asked("/timestamp.json"));
    // and one that redirects to itself: bounded
    let looping = FileServer::redirecting_to("/again").await;
    let e = client(&looping, &repo.root(), &Arc::default())
        .refresh()
        .await
        .unwrap_err();
    assert!(e.contains("redirects"), "{e}");

    // a target whose bytes are not what the metadata signed
    let production = dir.path().join("production.json");
    std::fs::write(
        &production,
        sigstore_verify::trust_root::SIGSTORE_PRODUCTION_TRUSTED_ROOT,
    )
    .unwrap();
    repo.publish(production.to_str().unwrap());
    repo.run("corrupt");
    let e = c.refresh().await.unwrap_err();
    assert!(e.contains("integrity") || e.contains("hash"), "{e}");

    // a signed target that is not a Sigstore trusted root
    repo.publish(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));
    let e = c.refresh().await.unwrap_err();
    assert!(e.contains("not a usable Sigstore trusted root"), "{e}");

    // another repository's root does not trust this one's metadata
    let other = Repo::init(&dir.path().join("b"), KEYLESS_ROOT);
    let stranger = client(&files, &other.root(), &Arc::default());
    let e = stranger.refresh().await.unwrap_err();
    assert!(e.contains("threshold"), "{e}");

    // a repository that does not answer
    drop(files);
    let e = c.refresh().await.unwrap_err();
    assert!(e.contains("transport"), "{e}");
}

#[cfg_attr(
    not(all(have_python_tuf, have_docker_registry)),
    ignore = "needs python-tuf with cryptography (pip install tuf 'securesystemslib[crypto]') and /usr/bin/docker-registry (apt-get install docker-registry)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_refreshed_over_tuf_is_in_force_without_a_restart() {
    use crate::support::registry::{Fixtures, MISSING, Pusher, RegistryProcess};
    use crate::support::server::{
        allows, config, eventually, image_review, metrics_text, sample, start,
    };
    let reg = RegistryProcess::start("a_root_refreshed_over_tuf_is_in_force_without_a_restart")
        .expect(MISSING);
    let (fx, push) = (
        Fixtures::load(),
        Pusher {
            addr: reg.addr.clone(),
        },
    );
    let signed = crate::verify_keyless::pushed(
        &push,
        &fx,
        "keyless/signed",
        &[("app.sign.bundle.json", crate::verify_keyless::SIGN)],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    // The repository starts with a root of another CA; without a refresh
    // the embedded public-good root is in force: neither trusts the mocks.
    let repo = Repo::init(&dir.path().join("tuf"), OTHER_ROOT);
    let files = FileServer::start(&repo.served()).await;
    let root_file = dir.path().join("root.json");
    std::fs::write(&root_file, repo.root()).unwrap();
    let policy_file = dir.path().join("policy.yaml");
    std::fs::write(
        &policy_file,
        format!(
            "apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nspec:\n  verify:\n    - images: [\"{addr}/**\"]\n      keyless:\n        - issuer: {issuer}\n          subject: {subject}\n      tuf:\n        url: {url}\n        root: {root}\n        refresh: 1s\n  registries:\n    insecure: [\"{addr}\"]\n  verification:\n    timeout: 3s\n",
            addr = reg.addr,
            issuer = crate::verify_keyless::ISSUER,
            subject = crate::verify_keyless::SUBJECT,
            url = files.url(),
            root = root_file.display(),
        ),
    )
    .unwrap();
    let server = start(config(&["--policy", policy_file.to_str().unwrap()])).await;
    let addr = server.addr;
    let review = image_review(&[&signed]);
    let allowed = || allows(addr, review.clone());
    let counted = |result: &'static str| async move {
        let text = metrics_text(addr).await;
        sample(
            &text,
            &format!("imagegate_trust_root_refreshes_total{{result=\"{result}\"}}"),
        )
        .unwrap_or(0.0)
    };
    let generation = || async move {
        sample(&metrics_text(addr).await, "imagegate_policy_generation").unwrap_or(0.0)
    };
    eventually("the first refresh", || async {
        counted("success").await >= 1.0
    })
    .await;
    eventually("its root is in force", || async {
        generation().await >= 2.0
    })
    .await;
    assert!(!allowed().await, "the refreshed root names another CA");

    // the repository publishes the root of the signing CA
    repo.publish(KEYLESS_ROOT);
    eventually("the new root is in force", || async { allowed().await }).await;

    let in_force = generation().await;

    // a refresh that fails (an expired timestamp) keeps the last root
    let failed = counted("error").await;
    repo.run("expire");
    eventually("the failed refresh is counted", || async {
        counted("error").await > failed
    })
    .await;
    let failing = || async move {
        sample(
            &metrics_text(addr).await,
            "imagegate_trust_root_sources_failing",
        )
        .unwrap_or(-1.0)
    };
    assert_eq!(failing().await, 1.0);
    assert_eq!(generation().await, in_force, "nothing was recompiled");
    assert!(allowed().await, "the last verified root still verifies");

    // a policy edit recompiles with the refreshed root, not the starting one
    // (which would be another requirement, verified afresh, and denied)
    let mut edited = std::fs::read_to_string(&policy_file).unwrap();
    edited.push_str("# edited\n");
    crate::support::server::replace_file(&policy_file, edited.as_bytes());
    eventually("the edit is in force", || async {
        generation().await > in_force
    })
    .await;
    assert!(allowed().await, "the refreshed root survives the edit");

    // the repository takes the CA away again: no longer trusted
    repo.publish(OTHER_ROOT);
    eventually("the CA is no longer trusted", || async { !allowed().await }).await;
    assert_eq!(failing().await, 0.0, "the source recovered");
    server.stop().await;
}

/// The Sigstore public-good repository as published (its real metadata, a
/// snapshot of 2026-08-21: `tests/fixtures/tuf/public-good/SOURCE.md`),
/// served on loopback: from root 5 (2022, the first a TUF 1.0 client
/// reads), the client walks ten root rotations (the key type changes from
/// `ecdsa-sha2-nistp256` to `ecdsa` on the way), the real timestamp,
/// snapshot and targets, and gets the public-good `trusted_root.json`;
/// once the timestamp has expired, it is refused.
#[tokio::test]
async fn the_public_good_repository_verifies_from_an_old_root() {
    let served = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tuf/public-good"
    ));
    let files = FileServer::start(served).await;
    let first = std::fs::read(served.join("5.root.json")).unwrap();
    let c = client(&files, &first, &Arc::default());
    let before_expiry: jiff::Timestamp = "2026-08-22T00:00:00Z".parse().unwrap();
    let root = c.refresh_at(before_expiry).await.unwrap();
    assert_eq!(
        root,
        sigstore_verify::trust_root::SIGSTORE_PRODUCTION_TRUSTED_ROOT,
        "the target is the embedded production root"
    );
    for path in [
        "/15.root.json",
        "/16.root.json",
        "/timestamp.json",
        "/165.snapshot.json",
    ] {
        assert!(files.was_asked(path), "{path} not asked for");
    }
    // from the root built into the binary (version 16, newer than the
    // snapshot's 15), as a policy without `root` starts
    let builtin = client(
        &files,
        imagegate::policy::SIGSTORE_TUF_ROOT.as_bytes(),
        &Arc::default(),
    );
    assert_eq!(
        builtin.refresh_at(before_expiry).await.unwrap(),
        sigstore_verify::trust_root::SIGSTORE_PRODUCTION_TRUSTED_ROOT
    );
    assert!(files.was_asked("/17.root.json"));
    let after_expiry: jiff::Timestamp = "2026-09-01T00:00:00Z".parse().unwrap();
    let fresh = client(&files, &first, &Arc::default());
    let e = fresh.refresh_at(after_expiry).await.unwrap_err();
    assert!(e.contains("expired"), "{e}");
}

/// The TUF root built into the binary (version 16, used when a policy names
/// the public-good repository without `root`) is signed by version 15 of
/// the real chain: it is the genuine next root.
#[test]
fn the_embedded_public_good_tuf_root_continues_the_real_chain() {
    imagegate::crypto::install();
    let served = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tuf/public-good"
    ));
    let fifteen = std::fs::read(served.join("15.root.json")).unwrap();
    let mut set = sigstore_tuf::TrustedMetadataSet::from_root(&fifteen).unwrap();
    set.update_root(imagegate::policy::SIGSTORE_TUF_ROOT.as_bytes())
        .expect("root 15 signs the embedded root 16");
    assert_eq!(set.root().version, 16);
}
