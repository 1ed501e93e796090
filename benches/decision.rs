//! Policy decision benchmarks (trie against a linear-scan baseline).

use criterion::{Criterion, criterion_group, criterion_main};

fn placeholder(c: &mut Criterion) {
    let snapshot = imagegate::policy::Snapshot::builtin();
    c.bench_function("builtin", |b| {
        b.iter(|| snapshot.scope(&Default::default()).evaluate("nginx:1.25").reason())
    });
}

criterion_group!(benches, placeholder);
criterion_main!(benches);
