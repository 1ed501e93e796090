#![allow(clippy::unwrap_used)]

use super::*;

fn recorder(dir: &Path, max_bytes: u64) -> Recorder {
    Recorder::start(
        RecordConfig {
            path: dir.join("r.jsonl"),
            max_bytes,
            keep: 1,
        },
        prometheus::IntCounter::new("dropped", "records dropped").unwrap(),
    )
    .unwrap()
}

#[test]
fn the_queue_is_bounded_by_bytes_and_copies_give_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let r = recorder(dir.path(), 1 << 30);
    let big = r.copy(&vec![b' '; QUEUE_BYTES - 10]).unwrap();
    assert!(
        r.copy(&[b' '; 11]).is_none(),
        "past the budget a record is dropped"
    );
    assert_eq!(r.dropped.get(), 1);
    let small = r.copy(&[b' '; 10]).unwrap();
    // A request that never gets its answer drops its copy: the bytes
    // come back.
    drop(big);
    drop(small);
    assert_eq!(r.queued.load(Ordering::Relaxed), 0);
    assert!(r.copy(&[b' '; 1024]).is_some());
}

#[test]
fn records_are_one_line_each_and_rotate() {
    let dir = tempfile::tempdir().unwrap();
    let r = recorder(dir.path(), 1000);
    for i in 0..6 {
        let body = format!("{{\n  \"apiVersion\": \"imagepolicy.k8s.io/v1alpha1\",\r\n  \"kind\": \"ImageReview\", \"n\": {i}\n}}").into_bytes();
        let copy = r.copy(&body).unwrap();
        r.record(Api::ImageReview, true, 7, copy);
    }
    drop(r);
    let path = dir.path().join("r.jsonl");
    let rotated = dir.path().join("r.jsonl.1");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let lines = || {
        [&path, &rotated]
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect::<String>()
    };
    while lines().lines().count() < 6 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let text = lines();
    assert_eq!(text.lines().count(), 6, "{text}");
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["kind"], "RecordedReview");
        assert_eq!(v["policyGeneration"], 7);
        assert_eq!(v["review"]["kind"], "ImageReview");
    }
    assert!(rotated.exists(), "1000 bytes hold fewer than 6 records");
    assert!(!dir.path().join("r.jsonl.2").exists(), "keep: 1");
}
