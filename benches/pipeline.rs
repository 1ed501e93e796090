//! The whole in-process review path, request bytes in → response bytes out,
//! against the built-in default policy, with a naive baseline in each group.
//!
//! - `pipeline/imagereview_3`: a 3-container ImageReview through
//!   `review::image_review`.
//! - `pipeline/admission_deployment`: a Deployment AdmissionReview v1 (one
//!   init container, two containers, managed fields) through
//!   `review::admission_review`.
//!
//! The baseline `serde_json_value` only decodes the same body into a generic
//! `serde_json::Value` tree (what a naive webhook does before it even looks
//! at an image), so the ratio shows what the narrow in-place decode buys.
//!
//! simd-json parses in place, so every iteration first copies the fixed body
//! into a reused buffer; the baseline does the same copy to stay comparable.
//! The bodies are the ones `loadtest/run.sh` sends (compact JSON, as the
//! apiserver writes it).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use imagegate::policy::Snapshot;
use imagegate::review::{self, DecodeError, Reviewed};

const IMAGEREVIEW_3: &[u8] = include_bytes!("../loadtest/bodies/imagereview-3.json");
const ADMISSION_DEPLOYMENT: &[u8] = include_bytes!("../loadtest/bodies/admission-deployment.json");

type Pipeline = fn(&mut [u8], &Snapshot) -> Result<Reviewed, DecodeError>;

/// Checks once, outside the timed loop, that the body takes the allow path
/// with the expected number of images, so the bench measures what it claims.
fn check(name: &str, pipeline: Pipeline, body: &[u8], snapshot: &Snapshot, images: usize) {
    let mut buffer = body.to_vec();
    match pipeline(&mut buffer, snapshot) {
        Ok(reviewed) => {
            assert!(reviewed.outcome.allowed, "{name}: the body must be allowed");
            assert_eq!(
                reviewed.outcome.reasons.len(),
                images,
                "{name}: image count"
            );
            assert!(!reviewed.body.is_empty(), "{name}: empty response");
        }
        Err(error) => panic!("{name}: the body must decode: {error}"),
    }
}

fn group(c: &mut Criterion, name: &str, pipeline: Pipeline, body: &[u8], images: usize) {
    let snapshot = Snapshot::builtin();
    check(name, pipeline, body, &snapshot, images);

    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(body.len() as u64));
    let mut buffer = Vec::with_capacity(body.len());
    group.bench_function("imagegate", |b| {
        b.iter(|| {
            buffer.clear();
            buffer.extend_from_slice(black_box(body));
            black_box(pipeline(&mut buffer, &snapshot))
        });
    });
    group.bench_function("serde_json_value", |b| {
        b.iter(|| {
            buffer.clear();
            buffer.extend_from_slice(black_box(body));
            black_box(serde_json::from_slice::<serde_json::Value>(&buffer))
        });
    });
    group.finish();
}

fn pipelines(c: &mut Criterion) {
    group(
        c,
        "pipeline/imagereview_3",
        review::image_review,
        IMAGEREVIEW_3,
        3,
    );
    group(
        c,
        "pipeline/admission_deployment",
        review::admission_review,
        ADMISSION_DEPLOYMENT,
        3,
    );
}

criterion_group!(benches, pipelines);
criterion_main!(benches);
