//! SIGHUP forces a policy reload (even of an unchanged file) and a refresh
//! of every TUF source at once. It signals the test process itself: its
//! server installs the handler before the signal is sent, and no other
//! test's server handles signals.

// In tests a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use crate::support::server::*;
use imagegate::server::Signals;

async fn generation(addr: SocketAddr) -> Option<f64> {
    sample(&metrics_text(addr).await, "imagegate_policy_generation")
}

fn sighup_self() {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .expect("kill(1) available");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_forces_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, POLICY_ALLOW_ALL).unwrap();
    let mut config = config(&["--policy", policy.to_str().unwrap()]);
    // The server installs its handlers in bind(), before serving.
    config.signals = Signals::Handle;
    let server = start(config).await;
    let addr = server.addr;
    assert_eq!(generation(addr).await, Some(1.0));

    sighup_self();
    eventually("generation 2 after SIGHUP", || async move {
        generation(addr).await == Some(2.0)
    })
    .await;
    sighup_self();
    eventually("generation 3 after a second SIGHUP", || async move {
        generation(addr).await == Some(3.0)
    })
    .await;
    let text = metrics_text(addr).await;
    assert_eq!(
        sample(&text, "imagegate_policy_reloads_total{result=\"success\"}"),
        Some(2.0)
    );
    // Still serving, with the same (unchanged) policy.
    let (status, _, body) = once(addr, post("/imagepolicy", image_review(&["nginx:1.25"]))).await;
    assert_eq!(status, 200);
    assert!(image_review_allowed(&body));

    // A rule that refreshes its root from a TUF repository (the public-good
    // metadata of the fixtures, which has expired: every refresh fails, and
    // the next try is 10 s after a failure). SIGHUP refreshes at once.
    let fixtures = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tuf/public-good"
    ));
    let files = crate::support::files::FileServer::start(fixtures).await;
    let tuf_policy = format!(
        "apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nspec:\n  verify:\n    - images: [\"signed.example/**\"]\n      keyless:\n        - issuer: https://token.actions.githubusercontent.com\n          subject: https://github.com/o/r/.github/workflows/release.yml@refs/heads/main\n      tuf:\n        url: {}\n        root: {}\n        refresh: 1h\n",
        files.url(),
        fixtures.join("5.root.json").display()
    );
    replace_file(&policy, tuf_policy.as_bytes());
    eventually("the policy with the TUF rule is in force", || async move {
        generation(addr).await == Some(4.0)
    })
    .await;
    // Every refresh walks the root chain to its end (there is no
    // 16.root.json) and stops there: root 15 has expired too.
    let tried = || files.times_asked("/16.root.json");
    eventually("the first refresh", || async { tried() == 1 }).await;
    let failed = || async move {
        sample(
            &metrics_text(addr).await,
            "imagegate_trust_root_refreshes_total{result=\"error\"}",
        )
    };
    eventually("it fails", || async { failed().await == Some(1.0) }).await;
    let hup = std::time::Instant::now();
    sighup_self();
    eventually("a refresh at once after SIGHUP", || async { tried() == 2 }).await;
    assert!(
        hup.elapsed() < std::time::Duration::from_secs(5),
        "the refresh came with SIGHUP, not with the retry 10 s after the failure"
    );
    // The file server counts the request before the refresh has read the
    // answer and counted its failure.
    eventually("it fails again", || async { failed().await == Some(2.0) }).await;
    server.stop().await;
}
