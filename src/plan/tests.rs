//! Unit tests of planning over the shipped policies (black-box differential tests: tests/it/plan/).

use std::{path::Path, sync::Arc};

use serde_json::json;

use super::*;
use crate::{
    decide::Decider,
    entities::FileSource,
    policy::{load, Snapshot},
    verify::ClaimNames,
};

fn shipped() -> Arc<Snapshot> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    Arc::new(load(&dir, "Shop").unwrap())
}

fn plan_for(s: &Arc<Snapshot>, customer: &str, le: Option<&str>, action: &str, ty: &str) -> Plan {
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), json!(customer));
    if let Some(le) = le {
        claims.insert("legalEntityId".into(), json!(le));
    }
    let token = crate::toolkit::token(
        &claims,
        &ClaimNames {
            customer: "sub".into(),
            legal_entity: "legalEntityId".into(),
        },
    )
    .unwrap();
    let data = FileSource::lookup(s, &token.customer).into();
    let decider = Decider::new(s.clone(), data, &token, None);
    let body: PlanBody =
        serde_json::from_value(json!({"action": action, "resource": {"type": ty}})).unwrap();
    let tables: PlanConfig = toml::from_str(
        r#"
        [tables.Order]
        table = "orders"
        columns = { owner = "owner_id", legalEntity = "legal_entity_id", status = "status" }
        [tables.Product]
        columns = { segments = "segment_ids" }
        "#,
    )
    .unwrap();
    plan(&decider, &body, &tables, true).unwrap()
}

#[test]
fn list_orders_reads_like_the_design() {
    let s = shipped();
    let p = plan_for(&s, "C-1", Some("LE-1"), "listOrders", "Order");
    assert_eq!(p.kind, Kind::Conditional);
    assert_eq!(
        p.filter.to_json(),
        json!({"or": [{"eq": [{"attr": "owner"}, {"value": {"type": "Shop::Customer", "id": "C-1"}}]},
                      {"and": [{"has": "legalEntity"},
                               {"eq": [{"attr": "legalEntity"}, {"value": {"type": "Shop::LegalEntity", "id": "LE-1"}}]}]}]})
    );
    assert_eq!(p.policies, vec!["entity-orders", "own-orders"]);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let sql = p.sql.unwrap().unwrap();
    assert_eq!(
        sql.where_,
        r#"("owner_id" = $1 OR ("legal_entity_id" IS NOT NULL AND "legal_entity_id" = $2))"#
    );
    assert_eq!(sql.params, vec![json!("C-1"), json!("LE-1")]);
}

#[test]
fn an_unassigned_entity_leaves_only_own_orders() {
    let s = shipped();
    let p = plan_for(&s, "C-1", Some("LE-3"), "listOrders", "Order");
    assert_eq!(
        p.filter.to_json(),
        json!({"eq": [{"attr": "owner"}, {"value": {"type": "Shop::Customer", "id": "C-1"}}]})
    );
    assert_eq!(p.policies, vec!["own-orders"]);
}

#[test]
fn products_by_segment() {
    let s = shipped();
    let p = plan_for(&s, "C-1", Some("LE-1"), "viewProduct", "Product");
    assert_eq!(
        p.filter.to_json(),
        json!({"or": [{"is_empty": {"attr": "segments"}},
                      {"contains_any": [{"attr": "segments"}, {"value": [{"type": "Shop::Segment", "id": "wholesale"}]}]}]})
    );
    let none = plan_for(&s, "C-1", None, "viewProduct", "Product");
    assert_eq!(
        none.filter.to_json(),
        json!({"is_empty": {"attr": "segments"}})
    );
}

#[test]
fn cancel_orders_is_always_denied() {
    let s = shipped();
    let p = plan_for(&s, "C-1", Some("LE-1"), "cancelOrder", "Order");
    assert_eq!(p.kind, Kind::AlwaysDenied);
    assert_eq!(p.filter, Filter::Const(false));
    assert_eq!(p.sql.unwrap().unwrap().where_, "FALSE");
}

#[test]
fn table_config_is_checked_against_the_schema() {
    let s = shipped();
    let tables: PlanConfig = toml::from_str(
        r#"
        [tables.Order]
        columns = { owner = "owner_id", colour = "c", status = "" }
        [tables.Invoice]
        columns = {}
        "#,
    )
    .unwrap();
    assert_eq!(
        check_tables(&tables, &s),
        vec![
            "[plan.tables.Invoice]: the schema declares no entity type \"Invoice\"",
            "[plan.tables.Order] columns: Shop::Order has no attribute \"colour\"",
            "[plan.tables.Order] columns: the column of \"status\" is empty",
        ]
    );
    let shipped_tables: PlanConfig = toml::from_str(
        r#"
        [tables.Order]
        columns = { owner = "owner_id", legalEntity = "legal_entity_id", status = "status" }
        [tables.Product]
        columns = { segments = "segment_ids" }
        "#,
    )
    .unwrap();
    assert!(check_tables(&shipped_tables, &s).is_empty());
}

#[test]
fn an_attribute_without_a_column_gives_sql_null_and_a_reason() {
    let s = shipped();
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), json!("C-1"));
    claims.insert("legalEntityId".into(), json!("LE-1"));
    let names = ClaimNames {
        customer: "sub".into(),
        legal_entity: "legalEntityId".into(),
    };
    let token = crate::toolkit::token(&claims, &names).unwrap();
    let decider = Decider::new(
        s.clone(),
        FileSource::lookup(&s, &token.customer).into(),
        &token,
        None,
    );
    let body: PlanBody =
        serde_json::from_value(json!({"action": "listOrders", "resource": {"type": "Order"}}))
            .unwrap();
    let tables: PlanConfig =
        toml::from_str("[tables.Order]\ncolumns = { owner = \"owner_id\" }").unwrap();
    let p = plan(&decider, &body, &tables, true).unwrap();
    assert_eq!(p.kind, Kind::Conditional);
    assert!(matches!(p.sql, Some(None)), "{:?}", p.sql);
    assert_eq!(
        p.errors,
        vec!["no SQL: attribute `legalEntity` has no column in [plan.tables.Order]"]
    );
    assert_eq!(serde_json::to_value(&p).unwrap()["sql"], json!(null));
    let none = plan(&decider, &body, &tables, false).unwrap();
    assert!(none.sql.is_none() && none.errors.is_empty());
    assert!(serde_json::to_value(&none).unwrap().get("sql").is_none());
}
