//! Policy hot reload: atomic rename and ConfigMap `..data` swap under
//! traffic with zero failed requests, a bad policy keeps the last good one,
//! and start-up refuses a bad policy.

// In tests a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::support::server::*;

async fn generation(addr: SocketAddr) -> f64 {
    sample(&metrics_text(addr).await, "imagegate_policy_generation").unwrap()
}

async fn reloads(addr: SocketAddr, result: &str) -> f64 {
    sample(
        &metrics_text(addr).await,
        &format!("imagegate_policy_reloads_total{{result=\"{result}\"}}"),
    )
    .unwrap()
}

async fn nginx_allowed(addr: SocketAddr) -> bool {
    let (status, _, body) = once(addr, post("/imagepolicy", image_review(&["nginx:1.25"]))).await;
    assert_eq!(status, 200);
    image_review_allowed(&body)
}

/// Clients that loop until told to stop; every answer must be a 200.
struct Traffic {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Traffic {
    fn start(addr: SocketAddr) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let tasks = [Proto::H1, Proto::H2]
            .into_iter()
            .map(|proto| {
                let (stop, ok) = (stop.clone(), ok.clone());
                tokio::spawn(async move {
                    let mut conn = connect(addr, None, proto).await.unwrap();
                    while !stop.load(Ordering::Relaxed) {
                        let (status, _, body) = conn
                            .send(post("/validate", admission_review(&["nginx:1.25"])))
                            .await
                            .expect("request during reload");
                        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Traffic { stop, ok, tasks }
    }

    async fn wait_for_more(&self, n: usize) {
        let target = self.ok.load(Ordering::Relaxed) + n;
        let ok = self.ok.clone();
        eventually("traffic", || {
            let ok = ok.clone();
            async move { ok.load(Ordering::Relaxed) >= target }
        })
        .await;
    }

    async fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            tokio::time::timeout(DEADLINE, task)
                .await
                .expect("client stops")
                .expect("no failed request");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_by_atomic_rename_under_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, POLICY_ALLOW_ALL).unwrap();
    let server = start(config(&["--policy", policy.to_str().unwrap()])).await;
    let addr = server.addr;
    assert_eq!(generation(addr).await, 1.0);
    assert!(nginx_allowed(addr).await);

    let traffic = Traffic::start(addr);
    traffic.wait_for_more(20).await;

    replace_file(&policy, POLICY_DENY_DOCKER_HUB.as_bytes());
    eventually("new policy in force", || async move {
        !nginx_allowed(addr).await
    })
    .await;
    assert_eq!(generation(addr).await, 2.0);
    assert_eq!(reloads(addr, "success").await, 1.0);
    traffic.wait_for_more(20).await;

    // A broken policy: rejected, counted, the last good one keeps serving.
    replace_file(&policy, POLICY_BROKEN.as_bytes());
    eventually("error counted", || async move {
        reloads(addr, "error").await == 1.0
    })
    .await;
    assert_eq!(generation(addr).await, 2.0);
    assert!(!nginx_allowed(addr).await);
    traffic.wait_for_more(20).await;

    // Fixed again: in force.
    replace_file(&policy, POLICY_ALLOW_ALL.as_bytes());
    eventually("fixed policy in force", || async move {
        nginx_allowed(addr).await
    })
    .await;
    assert_eq!(generation(addr).await, 3.0);

    traffic.finish().await;
    server.stop().await;
}

/// A mounted ConfigMap: `policy.yaml -> ..data/policy.yaml`, `..data ->
/// ..<timestamp>`; the kubelet swaps `..data`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_by_configmap_symlink_swap() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let publish = |version: &str, text: &str| {
        std::fs::create_dir(d.join(version)).unwrap();
        std::fs::write(d.join(version).join("policy.yaml"), text).unwrap();
        let tmp = d.join("..data_tmp");
        std::os::unix::fs::symlink(version, &tmp).unwrap();
        std::fs::rename(&tmp, d.join("..data")).unwrap();
    };
    publish("..2024_01", POLICY_ALLOW_ALL);
    std::os::unix::fs::symlink("..data/policy.yaml", d.join("policy.yaml")).unwrap();
    let server = start(config(&[
        "--policy",
        d.join("policy.yaml").to_str().unwrap(),
    ]))
    .await;
    let addr = server.addr;
    assert!(nginx_allowed(addr).await);

    let traffic = Traffic::start(addr);
    traffic.wait_for_more(10).await;
    publish("..2024_02", POLICY_DENY_DOCKER_HUB);
    std::fs::remove_dir_all(d.join("..2024_01")).unwrap();
    eventually("swapped policy in force", || async move {
        !nginx_allowed(addr).await
    })
    .await;
    assert_eq!(generation(addr).await, 2.0);

    publish("..2024_03", POLICY_BROKEN);
    eventually("error counted", || async move {
        reloads(addr, "error").await == 1.0
    })
    .await;
    assert!(!nginx_allowed(addr).await);
    assert_eq!(generation(addr).await, 2.0);
    traffic.wait_for_more(10).await;
    traffic.finish().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_policy_file_keeps_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, POLICY_DENY_DOCKER_HUB).unwrap();
    let server = start(config(&["--policy", policy.to_str().unwrap()])).await;
    let addr = server.addr;
    std::fs::remove_file(&policy).unwrap();
    eventually("error counted", || async move {
        reloads(addr, "error").await == 1.0
    })
    .await;
    assert!(!nginx_allowed(addr).await);
    assert_eq!(generation(addr).await, 1.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_policy_is_a_start_up_error_with_its_location() {
    use imagegate::server::{PolicyError, ServeError, Server};
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, POLICY_BROKEN).unwrap();
    let err = Server::bind(config(&["--policy", policy.to_str().unwrap()]))
        .await
        .expect_err("bad policy refused");
    let text = err.to_string();
    assert!(
        matches!(err, ServeError::Policy(PolicyError::Invalid { .. })),
        "{text}"
    );
    assert!(text.contains("line 5"), "location named: {text}");
    assert!(!text.contains('\n'), "one line: {text}");

    let missing = Server::bind(config(&["--policy", "/nonexistent/policy.yaml"]))
        .await
        .expect_err("missing policy refused");
    assert!(matches!(
        missing,
        ServeError::Policy(PolicyError::File(
            imagegate::load::PolicyFileError::Read { .. }
        ))
    ));
}
