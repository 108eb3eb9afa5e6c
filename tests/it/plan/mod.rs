//! `POST /v1/plan` end to end: a legate on a real socket, differential tests against
//! `/v1/authorize` over a generated universe (filter interpreter and a real PostgreSQL), bad input,
//! 401, hot reload, `legate plan` on the command line, and the B2B pack (`b2b`).

mod b2b;
mod interp;
mod postgres;
mod universe;

use std::collections::BTreeSet;

use crate::common::{self, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use universe::{cases, Resource, PRINCIPALS};

/// The `[plan.tables]` of DESIGN.md.
pub(crate) fn with_tables(t: &mut toml::Table) {
    let plan: toml::Table = r#"
[tables.Order]
table = "orders"
columns = { owner = "owner_id", legalEntity = "legal_entity_id", status = "status" }
[tables.Product]
columns = { segments = "segment_ids" }
"#
    .parse()
    .unwrap();
    t.insert("plan".into(), toml::Value::Table(plan));
}

/// An app over the shipped policies plus `tests/it/plan/extra.cedar`.
pub(crate) async fn extra_app() -> TestApp {
    let app = TestApp::spawn_with(with_tables).await;
    std::fs::write(
        app.policy_dir().join("extra.cedar"),
        include_str!("extra.cedar"),
    )
    .unwrap();
    app.state.policies.reload().expect("extra policies load");
    app
}

/// `/v1/plan` for `token`.
pub(crate) async fn plan(app: &TestApp, token: &str, action: &str, ty: &str) -> Value {
    let (s, _, b) = app
        .post(
            "/v1/plan",
            Some(token),
            &json!({"action": action, "resource": {"type": ty}, "context": {}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b
}

/// The ids of `resources` that `/v1/authorize` allows for `token` (one batch).
pub(crate) async fn allowed(
    app: &TestApp,
    token: &str,
    action: &str,
    ty: &str,
    resources: &[Resource],
) -> BTreeSet<String> {
    let checks: Vec<Value> = resources
        .iter()
        .map(|r| json!({"action": action, "resource": {"type": ty, "id": r.id, "attrs": r.attrs}}))
        .collect();
    let (s, _, b) = app
        .post(
            "/v1/authorize/batch",
            Some(token),
            &json!({"checks": checks}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let results = b["results"].as_array().unwrap();
    resources
        .iter()
        .zip(results)
        .filter(|(_, r)| r["decision"] == "allow")
        .map(|(res, _)| res.id.clone())
        .collect()
}

/// For every principal and action: the filter, evaluated by the test's interpreter, against
/// authorize. Exact when `errors` is empty, never wider otherwise. Returns the plans that had errors.
async fn differential(app: &TestApp) -> Vec<(String, String, Value)> {
    let mut with_errors = Vec::new();
    for (customer, le) in PRINCIPALS {
        let token = app.token(customer, *le);
        for (action, ty, resources) in cases() {
            let p = plan(app, &token, action, ty).await;
            let allow = allowed(app, &token, action, ty, &resources).await;
            let selected: BTreeSet<String> = resources
                .iter()
                .filter(|r| interp::eval(&p["filter"], &r.attrs))
                .map(|r| r.id.clone())
                .collect();
            let who = format!("{customer} acting for {le:?}, {action}");
            let kind = match &p["filter"] {
                Value::Bool(true) => "always_allowed",
                Value::Bool(false) => "always_denied",
                _ => "conditional",
            };
            assert_eq!(p["kind"], kind, "{who}: {p}");
            if p["errors"].as_array().unwrap().is_empty() {
                assert_eq!(
                    selected, allow,
                    "{who}: filter {} differs from authorize",
                    p["filter"]
                );
            } else {
                assert!(
                    selected.is_subset(&allow),
                    "{who}: filter {} is wider than authorize: {:?}",
                    p["filter"],
                    selected.difference(&allow).collect::<Vec<_>>()
                );
                with_errors.push((who, action.to_string(), p));
            }
        }
    }
    with_errors
}

#[tokio::test]
async fn filter_equals_authorize_over_the_shipped_policies() {
    let app = TestApp::spawn_with(with_tables).await;
    let with_errors = differential(&app).await;
    assert!(with_errors.is_empty(), "{with_errors:#?}");
}

#[tokio::test]
async fn filter_equals_authorize_over_policies_using_every_operator() {
    let app = extra_app().await;
    let with_errors = differential(&app).await;
    // Only the two policies with `in` between two resource attributes may make a plan inexact, and
    // they say so (`resource.owner in <entity>` is expanded: colleagues-orders and no-cancel-le3
    // are exact).
    for (who, action, p) in &with_errors {
        let errors = p["errors"].to_string();
        assert!(!errors.contains("colleagues-orders"), "{who}: {p}");
        assert!(!errors.contains("no-cancel-le3"), "{who}: {p}");
        match action.as_str() {
            "viewOrder" => assert!(errors.contains("members-orders"), "{who}: {p}"),
            "cancelOrder" => {
                assert!(errors.contains("no-cancel-held-members"), "{who}: {p}");
                assert_eq!(p["kind"], "always_denied", "{who}: {p}");
            }
            _ => panic!("{who}: unexpected errors {p}"),
        }
    }
    assert!(with_errors.iter().any(|(_, a, _)| a == "viewOrder"));
    assert!(with_errors.iter().any(|(_, a, _)| a == "cancelOrder"));
}

#[tokio::test]
async fn list_orders_answer_has_the_contract_shape() {
    let app = TestApp::spawn_with(with_tables).await;
    let token = app.token("C-1", Some("LE-1"));
    let p = plan(&app, &token, "listOrders", "Order").await;
    assert_eq!(
        p,
        json!({"principal": "C-1", "legal_entity_id": "LE-1", "kind": "conditional",
               "filter": {"or": [{"eq": [{"attr": "owner"}, {"value": {"type": "Shop::Customer", "id": "C-1"}}]},
                                 {"and": [{"has": "legalEntity"},
                                          {"eq": [{"attr": "legalEntity"}, {"value": {"type": "Shop::LegalEntity", "id": "LE-1"}}]}]}]},
               "policies": ["entity-orders", "own-orders"],
               "errors": [],
               "sql": {"where": "(\"owner_id\" = $1 OR (\"legal_entity_id\" IS NOT NULL AND \"legal_entity_id\" = $2))",
                       "params": ["C-1", "LE-1"]}})
    );
    let (s, _, no_sql) = app
        .post(
            "/v1/plan?sql=false",
            Some(&token),
            &json!({"action": "listOrders", "resource": {"type": "Shop::Order"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(no_sql.get("sql").is_none(), "{no_sql}");
    assert_eq!(no_sql["filter"], p["filter"]);
}

#[tokio::test]
async fn bad_input_is_invalid_request_and_no_token_is_401() {
    let app = TestApp::spawn_with(with_tables).await;
    let token = app.token("C-1", Some("LE-1"));
    let bad = [
        json!({"action": "nope", "resource": {"type": "Order"}}),
        json!({"action": "listOrders", "resource": {"type": "Nope"}}),
        json!({"action": "viewProduct", "resource": {"type": "Order"}}),
        json!({"action": "listOrders", "resource": {"type": "Order", "id": "O-1"}}),
        json!({"action": "listOrders", "resource": {"type": "Order", "attrs": {}}}),
        json!({"action": "listOrders", "resource": {"type": "Order"}, "context": {"legalEntity": {"type": "LegalEntity", "id": "LE-2"}}}),
        json!({"action": "listOrders", "resource": {"type": "Order"}, "extra": 1}),
        json!({"action": "listOrders"}),
        json!({"action": 5, "resource": {"type": "Order"}}),
        json!([]),
    ];
    for body in bad {
        let (s, _, b) = app.post("/v1/plan", Some(&token), &body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body} → {b}");
        assert_eq!(b["error"]["code"], "invalid_request", "{body} → {b}");
        assert!(b["error"]["message"].as_str().unwrap().len() > 5, "{b}");
    }
    let body = json!({"action": "listOrders", "resource": {"type": "Order"}});
    let (s, _, b) = app.post("/v1/plan?sql=maybe", Some(&token), &body).await;
    assert_eq!(
        (s, &b["error"]["code"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_request"))
    );
    let resp = app
        .client
        .post(format!("{}/v1/plan", app.base))
        .header("content-type", "application/json")
        .body("{not json")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    let (s, h, b) = app.post("/v1/plan", None, &body).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    assert_eq!(h["www-authenticate"], "Bearer");
    let (s, _, b) = app.post("/v1/plan", Some("not.a.token"), &body).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    assert_eq!(b["error"]["code"], "invalid_token");
    // Still serving.
    assert_eq!(
        plan(&app, &token, "listOrders", "Order").await["kind"],
        "conditional"
    );
}

#[tokio::test]
async fn hot_reload_changes_the_plan() {
    let app = TestApp::spawn_with(with_tables).await;
    let token = app.token("C-1", Some("LE-1"));
    let before = plan(&app, &token, "listOrders", "Order").await;
    assert_eq!(before["policies"], json!(["entity-orders", "own-orders"]));
    std::fs::write(
        app.policy_dir().join("hide.cedar"),
        r#"@id("hide-shipped")
forbid (principal, action == Shop::Action::"listOrders", resource is Shop::Order)
when { resource has status && resource.status == "shipped" };"#,
    )
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let after = loop {
        let p = plan(&app, &token, "listOrders", "Order").await;
        if p["filter"] != before["filter"] {
            break p;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "plan unchanged after reload: {p}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(
        after["filter"]["and"][1],
        json!({"not": {"and": [{"has": "status"}, {"eq": [{"attr": "status"}, {"value": "shipped"}]}]}}),
        "{after}"
    );
    assert!(
        after["sql"]["where"]
            .as_str()
            .unwrap()
            .contains("NOT (\"status\" IS NOT NULL AND \"status\" = $3)"),
        "{after}"
    );
}

#[test]
fn legate_plan_prints_the_answer_and_exits_2_when_it_cannot_plan() {
    let out = common::process::succeeded(common::process::legate().args([
        "--config",
        "examples/legate.toml",
        "plan",
        "--claims",
        r#"{"sub":"C-1","legalEntityId":"LE-1"}"#,
        "--action",
        "listOrders",
        "--type",
        "Order",
        "policies",
    ]));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["kind"], "conditional");
    assert_eq!(answer["principal"], "C-1");
    assert_eq!(answer["sql"]["params"], json!(["C-1", "LE-1"]));

    for args in [
        vec!["--action", "nope", "--type", "Order"],
        vec!["--action", "viewProduct", "--type", "Order"],
    ] {
        let out = common::process::legate()
            .args([
                "--config",
                "examples/legate.toml",
                "plan",
                "--claims",
                r#"{"sub":"C-1"}"#,
            ])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn entity_source_down_plans_without_assignments_and_says_so() {
    // A port nothing listens on: the HTTP entity source cannot answer.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let app = TestApp::spawn_with(|t| {
        with_tables(t);
        let entities: toml::Table = format!(
            "source = \"http\"\nurl = \"http://{closed}/customers/{{customer}}/legal-entities\"\ntimeout_ms = 300"
        )
        .parse()
        .unwrap();
        t.insert("entities".into(), toml::Value::Table(entities));
    })
    .await;
    let token = app.token("C-1", Some("LE-1"));
    let p = plan(&app, &token, "listOrders", "Order").await;
    // Without assignments C-1 is not in LE-1: only its own orders, as authorize decides.
    assert_eq!(
        p["filter"],
        json!({"eq": [{"attr": "owner"}, {"value": {"type": "Shop::Customer", "id": "C-1"}}]}),
        "{p}"
    );
    assert!(
        p["errors"][0]
            .as_str()
            .unwrap()
            .contains("entity source unavailable"),
        "{p}"
    );
    let orders = universe::orders();
    let allow = allowed(&app, &token, "listOrders", "Order", &orders).await;
    let selected: BTreeSet<String> = orders
        .iter()
        .filter(|r| interp::eval(&p["filter"], &r.attrs))
        .map(|r| r.id.clone())
        .collect();
    assert_eq!(selected, allow);
}
