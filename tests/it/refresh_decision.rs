//! The refresh's `selectLegalEntity` check goes through the one decision path, so it is recorded
//! like any other decision: a decision log line with the customer, the target entity and the
//! answer, for an allowed switch and for a refused one.

use std::time::Duration;

use crate::common::TestApp;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// The decision log's lines for `selectLegalEntity` on `LegalEntity::"<target>"` (bounded wait).
async fn select_lines(path: &std::path::Path, target: &str) -> Vec<Value> {
    for _ in 0..60 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["action"] == "selectLegalEntity" && l["resource"]["id"] == target)
            .collect();
        if !lines.is_empty() {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Vec::new()
}

#[tokio::test]
async fn the_refresh_select_check_is_a_recorded_decision() {
    let (app, _log, path) = TestApp::spawn_logging_decisions().await;
    let token = app.token("C-1", Some("LE-1"));
    // C-1 is assigned to LE-2: the switch is allowed and recorded as an allow.
    let (s, _, b) = app
        .post(
            "/v1/token/refresh",
            Some(&token),
            &json!({"legal_entity_id": "LE-2"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let allowed = select_lines(&path, "LE-2").await;
    assert_eq!(allowed.len(), 1, "{allowed:?}");
    assert_eq!(allowed[0]["decision"], "allow");
    assert_eq!(allowed[0]["customer"], "C-1");
    assert_eq!(allowed[0]["legal_entity"], "LE-1");
    assert_eq!(allowed[0]["resource"]["type"], "LegalEntity");
    // Not assigned to LE-3: refused (403) and recorded as a deny.
    let (s, _, b) = app
        .post(
            "/v1/token/refresh",
            Some(&token),
            &json!({"legal_entity_id": "LE-3"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let denied = select_lines(&path, "LE-3").await;
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0]["decision"], "deny");
    app.stop().await;
}
