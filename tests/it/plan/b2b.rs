//! The differential check over the B2B pack (`examples/b2b/policies`): for customers holding
//! different roles in different legal entities of a company hierarchy, every plan's filter (read by
//! the test's interpreter) and its SQL (run by a real PostgreSQL) select exactly the orders and
//! products `/v1/authorize` allows. The roles reach both through `context.roles` from the file
//! entity source (the customers' tags).

use std::collections::BTreeSet;

use serde_json::{json, Value};
use tokio_postgres::Client;

use super::{interp, postgres, universe::Resource};
use crate::common::TestApp;

/// Owners of orders: holders of every role, and a customer nobody knows.
const OWNERS: &[&str] = &["C-ANNA", "C-BEN", "C-CARLA", "C-FINN", "C-X"];
/// Legal entities of orders: the whole hierarchy, another company, and one nobody knows.
const ENTITIES: &[&str] = &[
    "LE-ACME",
    "LE-ACME-DE",
    "LE-ACME-DE-B",
    "LE-ACME-FR",
    "LE-GLOBEX",
    "LE-9",
];
const TOTALS: &[i64] = &[0, 100_000, 250_000];
const STATUSES: &[&str] = &["pending_approval", "open", "shipped", "cancelled"];

/// (customer, selected entity): parent admin, the same person as subsidiary buyer, approver,
/// requester, an assignment without roles, an approver-buyer, a tag without an assignment, no
/// entity, an unknown customer and an unknown entity.
pub(crate) const PRINCIPALS: &[(&str, Option<&str>)] = &[
    ("C-ANNA", Some("LE-ACME")),
    ("C-ANNA", Some("LE-ACME-DE")),
    ("C-ANNA", None),
    ("C-ANNA", Some("LE-9")),
    ("C-BEN", Some("LE-ACME-DE")),
    ("C-BEN", Some("LE-ACME")),
    ("C-CARLA", Some("LE-ACME-DE")),
    ("C-CARLA", Some("LE-ACME-FR")),
    ("C-DAN", Some("LE-ACME-DE")),
    ("C-EVE", Some("LE-GLOBEX")),
    ("C-EVE", Some("LE-ACME-FR")),
    ("C-FINN", Some("LE-ACME-DE-B")),
    ("C-FINN", Some("LE-GLOBEX")),
    ("C-X", Some("LE-ACME")),
];

/// Every owner × entity × total × status.
pub(crate) fn orders() -> Vec<Resource> {
    let mut out = Vec::new();
    for owner in OWNERS {
        for le in ENTITIES {
            for total in TOTALS {
                for status in STATUSES {
                    let attrs = json!({"owner": {"type": "Shop::Customer", "id": owner},
                        "legalEntity": {"type": "Shop::LegalEntity", "id": le},
                        "total": total, "status": status});
                    out.push(Resource {
                        id: format!("O-{}", out.len()),
                        attrs,
                    });
                }
            }
        }
    }
    out
}

fn cases() -> Vec<(&'static str, &'static str, Vec<Resource>)> {
    vec![
        ("viewOrder", "Order", orders()),
        ("listOrders", "Order", orders()),
        ("cancelOrder", "Order", orders()),
        ("approveOrder", "Order", orders()),
        ("viewProduct", "Product", super::universe::products()),
    ]
}

/// A legate on the B2B pack, with a table for orders and products.
pub(crate) async fn b2b_app() -> TestApp {
    TestApp::spawn_with(|t| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/b2b/policies");
        t["policies"]
            .as_table_mut()
            .unwrap()
            .insert("dir".into(), dir.display().to_string().into());
        let plan: toml::Table = r#"
[tables.Order]
table = "orders"
columns = { owner = "owner_id", legalEntity = "legal_entity_id", total = "total", status = "status" }
[tables.Product]
columns = { segments = "segment_ids" }
"#
        .parse()
        .unwrap();
        t.insert("plan".into(), toml::Value::Table(plan));
    })
    .await
}

async fn load(db: &Client, orders: &[Resource], products: &[Resource]) {
    db.batch_execute(
        "CREATE TABLE orders (id text PRIMARY KEY, owner_id text NOT NULL,
             legal_entity_id text NOT NULL, total bigint NOT NULL, status text NOT NULL);
         CREATE TABLE products (id text PRIMARY KEY, segment_ids text[] NOT NULL);",
    )
    .await
    .unwrap();
    for o in orders {
        let a = &o.attrs;
        db.execute(
            "INSERT INTO orders VALUES ($1, $2, $3, $4, $5)",
            &[
                &o.id,
                &a["owner"]["id"].as_str().unwrap(),
                &a["legalEntity"]["id"].as_str().unwrap(),
                &a["total"].as_i64().unwrap(),
                &a["status"].as_str().unwrap(),
            ],
        )
        .await
        .unwrap();
    }
    for p in products {
        let segs: Vec<String> = p.attrs["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect();
        db.execute("INSERT INTO products VALUES ($1, $2)", &[&p.id, &segs])
            .await
            .unwrap();
    }
}

/// For every principal and action: the plan (error-free), its filter by the interpreter and its SQL
/// by PostgreSQL, each equal to authorize. Returns (who, kind, allowed ids) for further checks.
async fn differential(app: &TestApp, db: &Client) -> Vec<(String, Value, BTreeSet<String>)> {
    let mut seen = Vec::new();
    for (customer, le) in PRINCIPALS {
        let token = app.token(customer, *le);
        for (action, ty, resources) in cases() {
            let p = super::plan(app, &token, action, ty).await;
            let who = format!("{customer} acting for {le:?}, {action}");
            assert_eq!(p["errors"], json!([]), "{who}: {p}");
            let allow = super::allowed(app, &token, action, ty, &resources).await;
            let by_filter: BTreeSet<String> = resources
                .iter()
                .filter(|r| interp::eval(&p["filter"], &r.attrs))
                .map(|r| r.id.clone())
                .collect();
            assert_eq!(by_filter, allow, "{who}: filter {} differs", p["filter"]);
            let table = if ty == "Order" { "orders" } else { "products" };
            let by_sql = postgres::select(db, table, &p["sql"]).await;
            assert_eq!(by_sql, allow, "{who}: SQL {} differs", p["sql"]);
            seen.push((who, p["kind"].clone(), allow));
        }
    }
    seen
}

#[tokio::test]
async fn b2b_plans_equal_authorize_in_the_interpreter_and_in_postgres() {
    let cluster = postgres::Cluster::start();
    let db = cluster.connect().await;
    let all = orders();
    load(&db, &all, &super::universe::products()).await;
    let app = b2b_app().await;
    let seen = differential(&app, &db).await;
    let find = |who: &str| {
        seen.iter()
            .find(|(w, _, _)| w == who)
            .unwrap_or_else(|| panic!("{who} not planned"))
    };
    let entity_of = |id: &String| {
        let o = all.iter().find(|o| &o.id == id).unwrap();
        o.attrs["legalEntity"]["id"].as_str().unwrap().to_string()
    };
    // The universe exercises what the pack is about: the hierarchy (the parent's admin sees the
    // grandchild's orders) ...
    let (_, _, anna) = find("C-ANNA acting for Some(\"LE-ACME\"), listOrders");
    let entities: BTreeSet<String> = anna.iter().map(entity_of).collect();
    for le in ["LE-ACME", "LE-ACME-DE", "LE-ACME-DE-B", "LE-ACME-FR"] {
        assert!(entities.contains(le), "{entities:?}");
    }
    // ... roles changing with the selected entity (Anna is only buyer in LE-ACME-DE) ...
    let (_, _, anna_de) = find("C-ANNA acting for Some(\"LE-ACME-DE\"), listOrders");
    assert!(anna_de.len() < anna.len());
    let (_, kind, _) = find("C-ANNA acting for Some(\"LE-ACME-DE\"), approveOrder");
    assert_eq!(kind, "always_denied");
    // ... and separation of duties: Finn approves pending orders of LE-ACME-DE-B, never his own.
    let (_, kind, finn) = find("C-FINN acting for Some(\"LE-ACME-DE-B\"), approveOrder");
    assert_eq!(kind, "conditional");
    assert!(!finn.is_empty());
    for id in finn {
        let o = all.iter().find(|o| &o.id == id).unwrap();
        assert_ne!(o.attrs["owner"]["id"], "C-FINN", "{o:?}");
        assert_eq!(o.attrs["status"], "pending_approval", "{o:?}");
    }
    // A tag without an assignment gives no role.
    let (_, _, finn_globex) = find("C-FINN acting for Some(\"LE-GLOBEX\"), listOrders");
    assert!(finn_globex.iter().all(|id| all
        .iter()
        .any(|o| &o.id == id && o.attrs["owner"]["id"] == "C-FINN")));
}
