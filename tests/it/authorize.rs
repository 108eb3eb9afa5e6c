//! `/v1/authorize` and `/v1/authorize/batch` over a real socket: every shipped policy both ways,
//! batch order, and bad bodies answered 4xx in the JSON error shape.

use crate::common::{order, product, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn assert_allow(b: &Value, policy: &str) {
    assert_eq!(b["decision"], "allow", "{b}");
    assert_eq!(b["policies"], json!([policy]), "{b}");
}

fn assert_deny(b: &Value) {
    assert_eq!(b["decision"], "deny", "{b}");
    assert_eq!(b["policies"], json!([]), "{b}");
}

#[tokio::test]
async fn own_orders_allows_the_owner_and_denies_others() {
    let app = TestApp::spawn().await;
    let t = app.token("C-1", None);
    let (s, b) = app.authorize(&t, order("O-1", "C-1", None)).await;
    assert_eq!(s, StatusCode::OK);
    assert_allow(&b, "own-orders");
    assert_eq!(b["principal"], "C-1");
    assert_eq!(b["legal_entity_id"], Value::Null);
    let (_, b) = app.authorize(&t, order("O-2", "C-2", None)).await;
    assert_deny(&b);
}

#[tokio::test]
async fn entity_orders_allows_orders_of_the_selected_assigned_entity_only() {
    let app = TestApp::spawn().await;
    let (_, b) = app
        .authorize(
            &app.token("C-1", Some("LE-1")),
            order("O-9", "C-2", Some("LE-1")),
        )
        .await;
    assert_allow(&b, "entity-orders");
    assert_eq!(b["legal_entity_id"], "LE-1");
    // Same order, but the token selects another entity.
    let (_, b) = app
        .authorize(
            &app.token("C-1", Some("LE-2")),
            order("O-9", "C-2", Some("LE-1")),
        )
        .await;
    assert_deny(&b);
    // A token naming an entity the customer is not assigned to.
    let (_, b) = app
        .authorize(
            &app.token("C-2", Some("LE-1")),
            order("O-9", "C-9", Some("LE-1")),
        )
        .await;
    assert_deny(&b);
}

#[tokio::test]
async fn public_products_are_visible_to_everyone() {
    let app = TestApp::spawn().await;
    let (_, b) = app
        .authorize(&app.token("C-404", None), product("P-1", &[]))
        .await;
    assert_allow(&b, "public-products");
    let (_, b) = app
        .authorize(&app.token("C-404", None), product("P-2", &["wholesale"]))
        .await;
    assert_deny(&b);
}

#[tokio::test]
async fn segment_products_follow_the_selected_entitys_segments() {
    let app = TestApp::spawn().await;
    let le1 = app.token("C-1", Some("LE-1")); // LE-1: wholesale
    let (_, b) = app.authorize(&le1, product("P-W", &["wholesale"])).await;
    assert_allow(&b, "segment-products");
    let (_, b) = app.authorize(&le1, product("P-R", &["retail"])).await;
    assert_deny(&b);
    let le2 = app.token("C-1", Some("LE-2")); // LE-2: retail
    let (_, b) = app.authorize(&le2, product("P-R", &["retail"])).await;
    assert_allow(&b, "segment-products");
}

#[tokio::test]
async fn select_assigned_entity_allows_only_assignments() {
    let app = TestApp::spawn().await;
    let t = app.token("C-1", Some("LE-1"));
    let select = |id: &str| json!({"action": "selectLegalEntity", "resource": {"type": "LegalEntity", "id": id}});
    let (_, b) = app.authorize(&t, select("LE-2")).await;
    assert_allow(&b, "select-assigned-entity");
    let (_, b) = app.authorize(&t, select("LE-3")).await;
    assert_deny(&b);
    let (_, b) = app.authorize(&t, select("LE-unknown")).await;
    assert_deny(&b);
}

#[tokio::test]
async fn batch_answers_in_order_and_denies_invalid_checks_alone() {
    let app = TestApp::spawn().await;
    let t = app.token("C-1", Some("LE-1"));
    let body = json!({"checks": [
        product("P-1", &["retail"]),
        product("P-2", &["wholesale"]),
        {"action": "fly", "resource": {"type": "Product", "id": "P"}},
        order("O-1", "C-1", None),
        {"nonsense": true},
    ]});
    let (s, _, b) = app.post("/v1/authorize/batch", Some(&t), &body).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["principal"], "C-1");
    assert_eq!(b["legal_entity_id"], "LE-1");
    let r = b["results"].as_array().unwrap();
    let decisions: Vec<&str> = r.iter().map(|x| x["decision"].as_str().unwrap()).collect();
    assert_eq!(decisions, ["deny", "allow", "deny", "allow", "deny"]);
    assert!(
        r[2]["errors"][0]
            .as_str()
            .unwrap()
            .contains("unknown action"),
        "{b}"
    );
    assert!(
        r[4]["errors"][0]
            .as_str()
            .unwrap()
            .contains("invalid check"),
        "{b}"
    );
}

#[tokio::test]
async fn batch_larger_than_the_limit_is_refused() {
    let app = TestApp::spawn_with(|c| {
        c.insert(
            "limits".into(),
            toml::Value::Table(toml::toml! { batch_max = 2 }),
        );
    })
    .await;
    let t = app.token("C-1", None);
    let body = json!({"checks": [product("a", &[]), product("b", &[]), product("c", &[])]});
    let (s, _, b) = app.post("/v1/authorize/batch", Some(&t), &body).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["error"]["code"], "batch_too_large");
}

async fn raw(app: &TestApp, content_type: Option<&str>, body: Vec<u8>) -> (StatusCode, Value) {
    let mut req = app
        .client
        .post(format!("{}/v1/authorize", app.base))
        .bearer_auth(app.token("C-1", None))
        .body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(ct.as_deref(), Some("application/json"), "status {status}");
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn bad_bodies_get_4xx_json_errors_and_the_server_keeps_serving() {
    let app = TestApp::spawn_with(|c| {
        c.insert(
            "limits".into(),
            toml::Value::Table(toml::toml! { body_bytes = 65536 }),
        );
    })
    .await;
    let json = Some("application/json");
    // (name, content type, body, expected status, expected code)
    type Case<'a> = (&'a str, Option<&'a str>, Vec<u8>, u16, &'a str);
    let cases: Vec<Case<'_>> = vec![
        ("not json", json, b"{not json".to_vec(), 400, "invalid_request"),
        ("wrong content type", Some("text/plain"), b"{}".to_vec(), 415, "unsupported_media_type"),
        ("no content type", None, b"{}".to_vec(), 415, "unsupported_media_type"),
        ("unknown action", json, serde_json::to_vec(&json!({"action": "fly", "resource": {"type": "Order", "id": "O"}})).unwrap(), 400, "invalid_request"),
        ("unknown type", json, serde_json::to_vec(&json!({"action": "viewOrder", "resource": {"type": "Spaceship", "id": "O"}})).unwrap(), 400, "invalid_request"),
        ("wrong attribute type", json, serde_json::to_vec(&json!({"action": "viewOrder", "resource": {"type": "Order", "id": "O", "attrs": {"owner": 42}}})).unwrap(), 400, "invalid_request"),
        ("context sets legalEntity", json, serde_json::to_vec(&json!({"action": "viewOrder", "resource": {"type": "Order", "id": "O"}, "context": {"legalEntity": {"type": "LegalEntity", "id": "LE-1"}}})).unwrap(), 400, "invalid_request"),
        ("oversize", json, vec![b' '; 70_000], 413, "payload_too_large"),
        ("deeply nested", json, format!("{{\"action\":\"viewOrder\",\"resource\":{{\"type\":\"Order\",\"id\":\"O\",\"attrs\":{{\"owner\":{}1{}}}}}}}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(), 400, "invalid_request"),
        ("missing fields", json, b"{}".to_vec(), 400, "invalid_request"),
    ];
    for (name, ct, body, status, code) in cases {
        let (s, b) = raw(&app, ct, body).await;
        assert_eq!(s.as_u16(), status, "{name}: {b}");
        assert_eq!(b["error"]["code"], code, "{name}: {b}");
        assert!(
            b["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{name}: {b}"
        );
    }
    let (s, b) = app
        .authorize(&app.token("C-1", None), order("O-1", "C-1", None))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["decision"], "allow");
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_json() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .get(format!("{}/nope", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "not_found"
    );
    let r = app
        .client
        .get(format!("{}/v1/authorize", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "method_not_allowed"
    );
}

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::spawn().await;
    let (s, b) = app.get("/healthz", None).await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (s, b) = app.get("/readyz", None).await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("ready")));
}
