//! The AdmissionReview path on arbitrary bytes: never panics; a decoded
//! review is answered with valid JSON carrying a response with a uid and a
//! bool verdict that agrees with the outcome.

#![no_main]

use std::sync::LazyLock;

use imagegate::policy::Snapshot;
use libfuzzer_sys::fuzz_target;

static POLICY: LazyLock<Snapshot> = LazyLock::new(Snapshot::builtin);

fuzz_target!(|data: &[u8]| {
    let mut body = data.to_vec();
    if let Ok(reviewed) = imagegate::review::admission_review(&mut body, &POLICY) {
        let v: serde_json::Value =
            serde_json::from_slice(&reviewed.body).expect("the answer is JSON");
        assert_eq!(v["kind"], "AdmissionReview");
        assert!(v["response"]["uid"].is_string());
        assert_eq!(
            v["response"]["allowed"].as_bool(),
            Some(reviewed.outcome.allowed)
        );
    }
});
