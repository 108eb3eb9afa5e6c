//! A batch of several chunks answers exactly what the same checks answer one by one, in order, and
//! logs each decision under the batch request's `x-request-id`.

mod common;

use common::{order, product, TestApp};
use legate::decide::batch::CHUNK;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn a_large_batch_answers_as_single_checks_do_and_logs_under_its_request_id() {
    let log = tempfile::tempdir().unwrap();
    let path = log.path().join("decisions.jsonl");
    let p = path.display().to_string();
    let app = TestApp::spawn_with(|t| {
        t["log"]["decisions"] = p.into();
    })
    .await;
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
