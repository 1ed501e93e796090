//! The ImageReview path on arbitrary bytes: never panics; a decoded review is
//! answered with valid JSON that echoes the API and whose verdict is a bool;
//! whenever the one-pass reading of plain bodies takes the input, the
//! general reading (simd-json and serde) reads it the same.

#![no_main]

use std::sync::LazyLock;

use imagegate::policy::Snapshot;
use libfuzzer_sys::fuzz_target;

static POLICY: LazyLock<Snapshot> = LazyLock::new(Snapshot::builtin);

fuzz_target!(|data: &[u8]| {
    if let Err(difference) = imagegate::review::check_image_review_one_pass(data) {
        panic!("the one-pass reading differs from the general one: {difference}");
    }
    let mut body = data.to_vec();
    if let Ok(reviewed) = imagegate::review::image_review(&mut body, &POLICY) {
        let v: serde_json::Value =
            serde_json::from_slice(&reviewed.body).expect("the answer is JSON");
        assert_eq!(v["apiVersion"], "imagepolicy.k8s.io/v1alpha1");
        assert_eq!(v["kind"], "ImageReview");
        assert_eq!(
            v["status"]["allowed"].as_bool(),
            Some(reviewed.outcome.allowed)
        );
    }
});
