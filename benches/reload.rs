//! Reload cost: reading, parsing and strictly validating a policy directory of 1,000 and 10,000
//! generated policies (what every hot reload does before it swaps), and the content hash the
//! periodic safety net computes instead when nothing changed.
//!
//! `cargo bench --bench reload`

// `criterion_group!` generates a public function that cannot carry a doc comment.
#![allow(missing_docs)]

use std::{path::Path, time::Duration};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use legate::testing::policy;

/// Policies per generated file.
const PER_FILE: usize = 100;

/// A policy directory with the shipped schema and entities and `n` generated policies, each with a
/// condition on the selected legal entity and the order status, so validation has work to do.
fn generate(dir: &Path, n: usize) {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    for f in [policy::SCHEMA_FILE, policy::ENTITIES_FILE] {
        std::fs::copy(shipped.join(f), dir.join(f)).unwrap();
    }
    for file in 0..n.div_ceil(PER_FILE) {
        let mut text = String::new();
        for i in file * PER_FILE..((file + 1) * PER_FILE).min(n) {
            let action = ["viewOrder", "listOrders", "cancelOrder"][i % 3];
            text.push_str(&format!(
                "@id(\"gen-{i}\")\npermit (\n  principal,\n  action == Shop::Action::\"{action}\",\n  \
                 resource is Shop::Order\n)\nwhen {{\n  context has legalEntity &&\n  \
                 principal in context.legalEntity &&\n  resource has status &&\n  \
                 resource.status == \"status-{i}\"\n}};\n\n"
            ));
        }
        std::fs::write(dir.join(format!("generated-{file:03}.cedar")), text).unwrap();
    }
}

fn reload(c: &mut Criterion) {
    let mut group = c.benchmark_group("reload");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for n in [1_000, 10_000] {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), n);
        let loaded = policy::load(dir.path(), "Shop").expect("generated policies are valid");
        assert_eq!(loaded.files().len(), n);
        group.bench_with_input(BenchmarkId::new("load_validate", n), &n, |b, _| {
            b.iter(|| policy::load(dir.path(), "Shop").unwrap())
        });
        group.bench_with_input(BenchmarkId::new("fingerprint", n), &n, |b, _| {
            b.iter(|| policy::fingerprint(dir.path()).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, reload);
criterion_main!(benches);
