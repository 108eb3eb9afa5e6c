//! Property tests of the check → Cedar request builder against the shipped schema and policies:
//! whatever JSON a caller sends as a check, and whatever ids and claims a token carries, [`build`]
//! answers `Ok` or a 400-kind [`Error`], and never panics.

use std::{path::Path, sync::OnceLock};

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::*;
use crate::policy;

/// The shipped policies and schema, loaded once.
fn shipped() -> &'static Snapshot {
    static SNAPSHOT: OnceLock<Snapshot> = OnceLock::new();
    SNAPSHOT.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        policy::load(&dir, "Shop").expect("the shipped policies load")
    })
}

/// Any JSON value, a few levels deep, with strings that look like ids, types and Cedar syntax.
fn json_value() -> impl Strategy<Value = Value> {
    let text = prop_oneof![
        prop::sample::select(vec![
            "",
            "O-1",
            "LE-1",
            "C-1",
            "Order",
            "Shop::Order",
            "LegalEntity",
            "Customer",
            "Product",
            "Shop::Customer",
            "Action",
            "::",
            "Order::\"O-1\"",
            "__entity",
            "__extn",
            "legalEntity",
            "owner",
            "segments",
            "type",
            "id",
            "attrs",
            "\u{0}",
            "é",
        ])
        .prop_map(str::to_string),
        "\\PC{0,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        text.clone().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((text.clone(), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A check body: mostly the right shape with wild contents, sometimes anything at all.
fn check_body(actions: Vec<String>) -> impl Strategy<Value = Value> {
    let action = prop_oneof![prop::sample::select(actions), "\\PC{0,10}"];
    let kind = prop_oneof![
        prop::sample::select(vec![
            "Order",
            "Shop::Order",
            "Product",
            "LegalEntity",
            "Customer",
            "Nope",
            "Shop::",
            "Other::Order",
            "",
        ])
        .prop_map(str::to_string),
        "\\PC{0,10}",
    ];
    let id = prop_oneof![
        prop::sample::select(vec![
            "",
            "O-1",
            "LE-1",
            "\u{0}",
            "a\"b",
            "Order::\"O-1\"",
            "é"
        ])
        .prop_map(str::to_string),
        "\\PC{0,10}",
    ];
    let shaped = (
        action,
        kind,
        id,
        prop::option::of(json_value()),
        prop::option::of(json_value()),
    )
        .prop_map(|(action, kind, id, attrs, context)| {
            let mut resource = json!({"type": kind, "id": id});
            if let Some(a) = attrs {
                resource["attrs"] = a;
            }
            let mut body = json!({"action": action, "resource": resource});
            if let Some(c) = context {
                body["context"] = c;
            }
            body
        });
    prop_oneof![4 => shaped, 1 => json_value()]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_check_body_builds_or_is_refused_without_a_panic(
        (body, customer, legal_entity, claims) in {
            let actions: Vec<String> = shipped().actions().keys().cloned().collect();
            (
                check_body(actions),
                "\\PC{0,8}",
                prop::option::of("\\PC{0,8}"),
                prop::collection::vec(("\\PC{0,6}", json_value()), 0..3),
            )
        }
    ) {
        let snapshot = shipped();
        let customer = CustomerId(customer);
        let legal_entity = legal_entity.map(LegalEntityId);
        let claims: Map<String, Value> = claims.into_iter().collect();
        let principal = Principal {
            customer: &customer,
            legal_entity: legal_entity.as_ref(),
            claims: &claims,
        };
        if let Ok(check) = serde_json::from_value::<Check>(body) {
            let _ = build(snapshot, &principal, None, &check);
        }
    }
}
