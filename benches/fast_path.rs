//! Criterion benchmarks of the decision fast path (`BENCHMARKS.md`, "Decision fast path"): token
//! verification cached and uncached per algorithm, one decision against the shipped set and against
//! the shipped set plus 10,000 and 100,000 generated per-customer policies in one file, a batch of
//! 100 checks as the HTTP handler runs it, the stages of one `/v1/authorize` request on their own
//! (body JSON, shared and per-check request build, evaluation, answer JSON; the token is `verify`),
//! and loading 10,000 and 100,000 policies from one file and from 100.
#![allow(missing_docs)] // criterion_group! generates undocumented items

mod common;

use std::{fmt::Write as _, path::Path, sync::Arc};

use common::{keys, token, verifier};
use criterion::{criterion_group, criterion_main, Criterion};
use legate::testing::{
    audit::Audit,
    decide::{batch, Decider, EntityData},
    entities::{EntitySource, FileSource},
    policy,
    request::{self, Check},
};
use serde_json::{json, value::RawValue};

/// The shipped policy directory plus `n` generated per-customer policies in `files` files.
pub fn policy_dir(n: usize, files: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    for e in std::fs::read_dir(shipped).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
        }
    }
    if n > 0 {
        let per = n.div_ceil(files);
        for f in 0..files {
            let mut text = String::new();
            for i in f * per..((f + 1) * per).min(n) {
                let _ = writeln!(
                    text,
                    "@id(\"gen-{i}\")\npermit (principal == Shop::Customer::\"C-{i}\", action == Shop::Action::\"viewOrder\", resource)\nwhen {{ resource.owner == principal }};"
                );
            }
            std::fs::write(dir.path().join(format!("generated-{f}.cedar")), text).unwrap();
        }
    }
    dir
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let keys = keys();
    let verifier = verifier(&keys);
    let mut group = c.benchmark_group("verify");
    for key in &keys {
        let t = token(key);
        group.bench_function(format!("{:?}/uncached", key.alg), |b| {
            b.iter(|| rt.block_on(verifier.verify_uncached(&t)).unwrap())
        });
        group.bench_function(format!("{:?}/cached", key.alg), |b| {
            b.iter(|| rt.block_on(verifier.verify(&t)).unwrap())
        });
    }
    group.finish();

    let verified = rt.block_on(verifier.verify(&token(&keys[0]))).unwrap();
    let audit = Audit::disabled();
    let order: Check = serde_json::from_value(json!({"action": "viewOrder", "resource": {"type": "Order", "id": "O-1",
        "attrs": {"owner": {"type": "Customer", "id": "C-2"}, "legalEntity": {"type": "LegalEntity", "id": "LE-1"}}}}))
    .unwrap();
    let mut group = c.benchmark_group("decide");
    for n in [0, 10_000, 100_000] {
        let dir = policy_dir(n, 1);
        let snapshot = Arc::new(policy::load(dir.path(), "Shop").unwrap());
        let data: EntityData = rt
            .block_on(FileSource.assignments(&snapshot, &verified.customer))
            .into();
        // A decider per iteration: what one `/v1/authorize` request does after verification.
        group.bench_function(format!("order/+{n}_policies"), |b| {
            b.iter(|| {
                Decider::new(snapshot.clone(), data.clone(), &verified, Some(&audit))
                    .decide(&order)
                    .unwrap()
            })
        });
    }
    group.finish();

    let snapshot = Arc::new(
        policy::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"),
            "Shop",
        )
        .unwrap(),
    );
    let data: EntityData = rt
        .block_on(FileSource.assignments(&snapshot, &verified.customer))
        .into();
    let products: Vec<Box<RawValue>> = (0..100)
        .map(|i| {
            let seg = ["wholesale", "retail"][i % 2];
            let check = json!({"action": "viewProduct", "resource": {"type": "Product", "id": format!("P-{i}"),
                "attrs": {"segments": [{"type": "Segment", "id": seg}]}}});
            RawValue::from_string(check.to_string()).unwrap()
        })
        .collect();
    // As the handler does for a batch of 100 (which it decides in chunks of 8, yielding between
    // them): one decider, each raw check parsed once.
    c.bench_function("batch/100_products", |b| {
        b.iter(|| {
            Decider::new(snapshot.clone(), data.clone(), &verified, Some(&audit))
                .decide_each(batch::parse(&products))
                .iter()
                .filter(|d| d.allow)
                .count()
        })
    });

    // The stages of one `/v1/authorize` after the token (`verify/*/cached` above), each on its own:
    // microseconds to put beside the instruction counts of benches/callgrind_stages.sh; same
    // shipped snapshot and entity data as the batch.
    let body = serde_json::to_vec(&json!({"action": "viewOrder", "resource": {"type": "Order", "id": "O-1",
        "attrs": {"owner": {"type": "Customer", "id": "C-2"}, "legalEntity": {"type": "LegalEntity", "id": "LE-1"}}}}))
    .unwrap();
    let principal = request::Principal::from(&verified);
    let base = request::Base::new(&snapshot, &principal, data.known()).unwrap();
    let (req, entities) = base.build(&snapshot, &order).unwrap();
    let decision = policy::evaluate(&snapshot, &req, &entities);
    let mut group = c.benchmark_group("stage");
    group.bench_function("body_json", |b| {
        b.iter(|| serde_json::from_slice::<Check>(&body).unwrap())
    });
    group.bench_function("request_shared", |b| {
        b.iter(|| request::Base::new(&snapshot, &principal, data.known()).unwrap())
    });
    group.bench_function("request_check", |b| {
        b.iter(|| base.build(&snapshot, &order).unwrap())
    });
    group.bench_function("evaluate", |b| {
        b.iter(|| policy::evaluate(&snapshot, &req, &entities))
    });
    group.bench_function("answer_json", |b| {
        b.iter(|| serde_json::to_vec(&decision).unwrap())
    });
    group.finish();

    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    for (n, files) in [(10_000, 1), (10_000, 100), (100_000, 1), (100_000, 100)] {
        let dir = policy_dir(n, files);
        group.bench_function(format!("{n}_policies_{files}_files"), |b| {
            b.iter(|| policy::load(dir.path(), "Shop").unwrap())
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
