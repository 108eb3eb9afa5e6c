//! Criterion benchmarks of `/v1/plan`'s work (partial evaluation, translation, simplification, SQL)
//! beside one decision of the same action, for the shipped policies and with +1,000 generated ones.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::{path::Path, sync::Arc};

use criterion::{criterion_group, criterion_main, Criterion};
use legate::testing::{
    decide::Decider,
    entities::FileSource,
    plan::{self, PlanBody, PlanConfig},
    policy::{self, Snapshot},
    request::Check,
    toolkit,
    verify::ClaimNames,
};
use serde_json::json;

/// The shipped policies plus `n` generated ones: one in ten applies to every customer (a residual
/// on `status`), the others name one customer each (false at once for C-1).
fn snapshot_with(n: usize) -> (tempfile::TempDir, Snapshot) {
    let dir = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    for e in std::fs::read_dir(&shipped).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
        }
    }
    let mut text = String::new();
    for i in 0..n {
        let principal = if i % 10 == 0 {
            "principal".to_string()
        } else {
            format!("principal == Shop::Customer::\"G-{i}\"")
        };
        text.push_str(&format!(
            "@id(\"gen-{i}\")\npermit ({principal}, action == Shop::Action::\"listOrders\", resource is Shop::Order)\nwhen {{ resource has status && resource.status == \"s-{i}\" }};\n"
        ));
    }
    std::fs::write(dir.path().join("generated.cedar"), text).unwrap();
    let s = policy::load(dir.path(), "Shop").unwrap();
    (dir, s)
}

fn bench(c: &mut Criterion) {
    let tables: PlanConfig = toml::from_str(
        r#"[tables.Order]
columns = { owner = "owner_id", legalEntity = "legal_entity_id", status = "status" }"#,
    )
    .unwrap();
    let names = ClaimNames {
        customer: "sub".into(),
        legal_entity: "legalEntityId".into(),
    };
    let claims = json!({"sub": "C-1", "legalEntityId": "LE-1"});
    let token = toolkit::token(claims.as_object().unwrap(), &names).unwrap();
    let body: PlanBody =
        serde_json::from_value(json!({"action": "listOrders", "resource": {"type": "Order"}}))
            .unwrap();
    let check: Check = serde_json::from_value(json!({"action": "listOrders",
        "resource": {"type": "Order", "id": "O-1", "attrs": {
            "owner": {"type": "Customer", "id": "C-2"},
            "legalEntity": {"type": "LegalEntity", "id": "LE-1"}, "status": "open"}}}))
    .unwrap();
    let mut group = c.benchmark_group("plan");
    for (name, n) in [("shipped", 0), ("plus_1000", 1000)] {
        let (_dir, snapshot) = snapshot_with(n);
        let snapshot = Arc::new(snapshot);
        // Both through the one entry point, unrecorded: the same snapshot and entity data.
        let data = FileSource::lookup(&snapshot, &token.customer).into();
        let decider = Decider::new(snapshot, data, &token, None);
        let answer = plan::plan(&decider, &body, &tables, true).unwrap();
        assert!(answer.errors.is_empty(), "{:?}", answer.errors);
        group.bench_function(format!("{name}/plan_with_sql"), |b| {
            b.iter(|| plan::plan(&decider, &body, &tables, true).unwrap())
        });
        group.bench_function(format!("{name}/decision"), |b| {
            b.iter(|| decider.decide(&check).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
