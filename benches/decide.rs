//! Criterion benchmarks of the decision path's functions: token verification per algorithm (cached:
//! the same token each time; `fast_path.rs` has cached and uncached side by side), request
//! building + Cedar evaluation for one check, and a 100-check batch against one snapshot.
#![allow(missing_docs)] // criterion_group! generates undocumented items

mod common;

use std::path::Path;

use common::{keys, token, verifier};
use criterion::{criterion_group, criterion_main, Criterion};
use legate::testing::{
    audit::Audit,
    decide::Decider,
    entities::{EntitySource, FileSource},
    policy,
    request::Check,
};
use serde_json::json;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let keys = keys();
    let verifier = verifier(&keys);
    let mut group = c.benchmark_group("verify");
    for key in &keys {
        let t = token(key);
        group.bench_function(format!("{:?}", key.alg), |b| {
            b.iter(|| rt.block_on(verifier.verify(&t)).unwrap())
        });
    }
    group.finish();

    let snapshot = std::sync::Arc::new(
        policy::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"),
            "Shop",
        )
        .unwrap(),
    );
    let verified = rt.block_on(verifier.verify(&token(&keys[0]))).unwrap();
    let audit = Audit::disabled();
    let data = rt
        .block_on(FileSource.assignments(&snapshot, &verified.customer))
        .into();
    let decider = Decider::new(snapshot.clone(), data, &verified, Some(&audit));
    let order: Check = serde_json::from_value(json!({"action": "viewOrder", "resource": {"type": "Order", "id": "O-1",
        "attrs": {"owner": {"type": "Customer", "id": "C-2"}, "legalEntity": {"type": "LegalEntity", "id": "LE-1"}}}}))
    .unwrap();
    c.bench_function("decide/order", |b| {
        b.iter(|| decider.decide(&order).unwrap())
    });
    let products: Vec<Check> = (0..100)
        .map(|i| {
            let seg = ["wholesale", "retail"][i % 2];
            serde_json::from_value(json!({"action": "viewProduct", "resource": {"type": "Product", "id": format!("P-{i}"),
                "attrs": {"segments": [{"type": "Segment", "id": seg}]}}}))
            .unwrap()
        })
        .collect();
    c.bench_function("decide/batch_100_products", |b| {
        b.iter(|| {
            products
                .iter()
                .filter(|c| decider.decide(c).unwrap().allow)
                .count()
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
