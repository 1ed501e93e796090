//! Policy decision benchmarks. Every group puts the naive linear scan of the
//! same patterns next to the trie, so a regression shows as a ratio.
//!
//! - `decide/3_images`: parse and judge three images against a 200-pattern
//!   policy (scope resolution included).
//! - `patterns/N`: one decision against a policy of N allow patterns; the
//!   image matches the last pattern added, the linear scan's worst case.
//! - `compile/100000`: compiling a 100 000-pattern policy, from generated
//!   YAML (`yaml`, parse included) and through the builder (`builder`).
//! - `reference/parse_3`: parsing the three images of the load test's
//!   ImageReview (`loadtest/bodies/imagereview-3.json`), as every review of
//!   images the thread has seen before: answered from the thread's memo of
//!   parsed strings (`src/reference/memo.rs`).
//! - `reference/parse_3_unseen`: the same three images each made new
//!   (a tag from a counter over 65 536 values, far more than the memo
//!   holds): every parse runs the grammar and is then remembered, the cost
//!   of an image the thread has not parsed lately.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use imagegate::policy::{Context, MatchStrategy, PatternSetBuilder, Snapshot};

/// The i-th generated pattern: a mix of bare domains, org paths, wildcard
/// domains and Docker Hub names.
fn pattern(i: usize) -> String {
    match i % 4 {
        0 => format!("r{i}.example.com"),
        1 => format!("ghcr.io/org{i}"),
        2 => format!("*.r{i}.example.net/team"),
        _ => format!("org{i}/app"),
    }
}

/// An image matched by pattern `i` (and by no earlier one).
fn image_for(i: usize) -> String {
    match i % 4 {
        0 => format!("r{i}.example.com/team/app:1.2.3"),
        1 => format!("ghcr.io/org{i}/svc:v2.0.1"),
        2 => format!("eu.r{i}.example.net/team/api:1.0.0"),
        _ => format!("org{i}/app:2024.1"),
    }
}

fn policy_yaml(n: usize) -> String {
    let mut text = String::with_capacity(n * 32 + 256);
    text.push_str(
        "apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nspec:\n  tags:\n    requireTagOrDigest: true\n    forbid: [latest]\n  exemptions:\n    namespaces: [kube-system]\n  registries:\n    deny: [ghcr.io/evil, quay.io]\n    allow:\n",
    );
    for i in 0..n {
        text.push_str("      - \"");
        text.push_str(&pattern(i));
        text.push_str("\"\n");
    }
    text
}

fn compile(n: usize, strategy: MatchStrategy) -> Snapshot {
    Snapshot::from_yaml_with(&policy_yaml(n), strategy).expect("generated policy compiles")
}

fn decide(c: &mut Criterion) {
    let images = [
        image_for(42),
        "nginx:1.25".to_owned(),
        format!(
            "{}@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            image_for(199)
        ),
    ];
    let mut yaml = policy_yaml(200);
    yaml.push_str("      - nginx\n");
    let mut group = c.benchmark_group("decide/3_images");
    for (name, strategy) in [
        ("trie", MatchStrategy::Trie),
        ("linear", MatchStrategy::LinearScan),
    ] {
        let snapshot = Snapshot::from_yaml_with(&yaml, strategy).expect("compiles");
        for image in &images {
            let d = snapshot.scope(&Context::default()).evaluate(image);
            assert!(d.verdict_allowed(), "{image}: {}", d.explain(image));
        }
        group.bench_function(name, |b| {
            b.iter(|| {
                let ctx = Context {
                    namespace: black_box("default"),
                    annotations: &[],
                    user: None,
                };
                let scope = snapshot.scope(&ctx);
                for image in &images {
                    black_box(scope.evaluate(black_box(image)).reason());
                }
            });
        });
    }
    group.finish();
}

fn reference(c: &mut Criterion) {
    let images = [
        "registry.k8s.io/ingress-nginx/controller:v1.10.1",
        "ghcr.io/mycorp/payments-api:v2.14.3",
        "docker.io/library/busybox:1.36@sha256:9d75f0d7c398df565d7ac04c6819b62d6d8f9560f5eb4672596ecd8f7e96ae91",
    ];
    c.bench_function("reference/parse_3", |b| {
        b.iter(|| {
            for image in images {
                let parsed = imagegate::reference::Reference::parse(black_box(image));
                black_box(parsed.is_ok());
            }
        });
    });
    let unseen: Vec<[String; 3]> = (0..65_536)
        .map(|n| {
            [
                format!("registry.k8s.io/ingress-nginx/controller:v1.10.{n}"),
                format!("ghcr.io/mycorp/payments-api:v2.14.{n}"),
                format!("docker.io/library/busybox:1.{n}@sha256:9d75f0d7c398df565d7ac04c6819b62d6d8f9560f5eb4672596ecd8f7e96ae91"),
            ]
        })
        .collect();
    let mut next = unseen.iter().cycle();
    c.bench_function("reference/parse_3_unseen", |b| {
        b.iter(|| {
            for image in next.next().into_iter().flatten() {
                let parsed = imagegate::reference::Reference::parse(black_box(image));
                black_box(parsed.is_ok());
            }
        });
    });
}

fn patterns(c: &mut Criterion) {
    for n in [10, 1_000, 100_000] {
        let image = image_for(n - 1);
        let mut group = c.benchmark_group(format!("patterns/{n}"));
        for (name, strategy) in [
            ("trie", MatchStrategy::Trie),
            ("linear", MatchStrategy::LinearScan),
        ] {
            let snapshot = compile(n, strategy);
            let scope = snapshot.scope(&Context::default());
            assert!(scope.evaluate(&image).verdict_allowed());
            group.bench_function(name, |b| {
                b.iter(|| black_box(scope.evaluate(black_box(&image)).reason()));
            });
        }
        group.finish();
    }
}

fn compile_bench(c: &mut Criterion) {
    let n = 100_000;
    let yaml = policy_yaml(n);
    let patterns: Vec<String> = (0..n).map(pattern).collect();
    let mut group = c.benchmark_group(format!("compile/{n}"));
    group.sample_size(10);
    group.bench_function("yaml", |b| {
        b.iter(|| Snapshot::from_yaml(black_box(&yaml)).expect("compiles"));
    });
    group.bench_function("builder", |b| {
        b.iter(|| {
            let mut builder = PatternSetBuilder::new();
            for p in &patterns {
                builder.add(p).expect("valid pattern");
            }
            builder.build()
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = decide, reference, patterns, compile_bench
}
criterion_main!(benches);
