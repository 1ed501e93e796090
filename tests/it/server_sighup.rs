//! SIGHUP forces a policy reload (even of an unchanged file). It signals
//! the test process itself: its server installs the handler before the
//! signal is sent, and no other test's server handles signals.

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
    server.stop().await;
}
