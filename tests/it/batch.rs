//! A batch of several chunks answers exactly what the same checks answer one by one, in order, and
//! logs each decision under the batch request's `x-request-id`.

use crate::common::{self, order, product, TestApp};
use legate::testing::decide::batch::CHUNK;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn a_large_batch_answers_as_single_checks_do_and_logs_under_its_request_id() {
    let (app, _log, path) = TestApp::spawn_logging_decisions().await;
    let token = app.token("C-1", Some("LE-1"));
    let n = CHUNK * 3 + 1;
    let checks: Vec<Value> = (0..n)
        .map(|i| match i % 4 {
            0 => order(&format!("O-{i}"), "C-1", None),
            1 => order(&format!("O-{i}"), "C-9", None),
            2 => product(&format!("P-{i}"), &[]),
            _ => json!({"action": "fly", "resource": {"type": "Product", "id": "P"}}),
        })
        .collect();
    let resp = app
        .client
        .post(format!("{}/v1/authorize/batch", app.base))
        .bearer_auth(&token)
        .header("x-request-id", "batch-1")
        .json(&json!({ "checks": checks }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), n);
    for (i, check) in checks.iter().enumerate() {
        let (s, single) = app.authorize(&token, check.clone()).await;
        let single = if s == StatusCode::OK {
            json!({"decision": single["decision"], "policies": single["policies"], "errors": single["errors"]})
        } else {
            // A single check the server refuses (400) is a deny with the reason in a batch.
            assert_eq!(results[i]["decision"], "deny");
            continue;
        };
        assert_eq!(results[i], single, "check {i}");
    }
    let lines = common::decision_log_lines(&path, n).await;
    let batch_lines: Vec<&Value> = lines
        .iter()
        .filter(|l| l["request_id"] == "batch-1")
        .collect();
    assert_eq!(
        batch_lines.len(),
        n,
        "every decision of the batch, under its id"
    );
    app.stop().await;
}

/// Sends `body` as it is (duplicate keys cannot be written with `json!`).
async fn post_raw(app: &TestApp, path: &str, token: &str, body: &str) -> (StatusCode, Value) {
    let resp = app
        .client
        .post(format!("{}{path}", app.base))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn a_check_with_a_duplicate_key_is_refused_in_a_batch_as_alone() {
    let app = TestApp::spawn().await;
    let token = app.token("C-1", Some("LE-1"));
    // Each would be allowed if the last duplicate won (P-1, a wholesale product, is one C-1 under LE-1 may view).
    let duplicated = [
        r#"{"action": "fly", "action": "viewProduct", "resource": {"type": "Product", "id": "P-1", "attrs": {"segments": [{"type": "Segment", "id": "wholesale"}]}}}"#,
        r#"{"action": "viewProduct", "resource": {"type": "Product", "id": "X", "id": "P-1", "attrs": {"segments": [{"type": "Segment", "id": "wholesale"}]}}}"#,
        r#"{"action": "viewProduct", "resource": {"type": "Product", "id": "P-1", "attrs": {"segments": [{"type": "Segment", "id": "wholesale"}]}, "attrs": {"segments": [{"type": "Segment", "id": "wholesale"}]}}}"#,
    ];
    let fine = product("P-2", &["wholesale"]);
    for check in duplicated {
        let (s, single) = post_raw(&app, "/v1/authorize", &token, check).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{check}: {single}");
        let reason = single["error"]["message"].as_str().unwrap();
        assert!(reason.contains("is repeated"), "{single}");
        // A repeated member at any depth of a body refuses the whole body (I-JSON, DESIGN.md
        // "Input hygiene"): a batch with one such check is 400, nothing decided.
        let body = format!(r#"{{"checks": [{fine}, {check}, {fine}]}}"#);
        let (s, batch) = post_raw(&app, "/v1/authorize/batch", &token, &body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{batch}");
        assert_eq!(batch["error"]["code"], "invalid_request", "{batch}");
    }
    // A duplicate key at the top of the batch body: 400, as at the top of a single body.
    let body = format!(r#"{{"checks": [], "checks": [{fine}]}}"#);
    let (s, b) = post_raw(&app, "/v1/authorize/batch", &token, &body).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b["error"]["code"], "invalid_request", "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is repeated"),
        "{b}"
    );
    app.stop().await;
}
