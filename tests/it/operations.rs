//! Operations over a real socket: `/metrics` counts requests, decisions, token rejections and
//! reloads (made by the watcher, as in production); every response carries an `x-request-id`; the decision log writes one complete JSON
//! line per decision, keeps denies and samples allows.
//!
//! The metrics recorder is one per process, shared by every test of this binary (they run in
//! parallel), so metric assertions on an in-process app compare a series before and after, and
//! expect it to have grown by at least what the test did. A gauge is last-writer-wins across all
//! those apps: the test that reads `legate_policies_loaded` runs the binary, a process of its own.

use std::{collections::BTreeMap, time::Duration};

use crate::common::{self, order, process::ServeDir, product, TestApp};
use reqwest::StatusCode;
use serde_json::Value;

/// The metrics page as `(name, labels) -> value`.
async fn scrape(base: &str) -> BTreeMap<(String, BTreeMap<String, String>), f64> {
    let resp = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let ctype = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ctype.starts_with("text/plain"), "{ctype}");
    let text = resp.text().await.unwrap();
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let labels = labels
            .split("\",")
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once("=\"").unwrap();
                (k.to_string(), v.trim_end_matches('"').to_string())
            })
            .collect();
        out.insert((name.to_string(), labels), value.parse().unwrap());
    }
    out
}

/// The value of `name` with exactly these labels (0 when absent).
fn value(
    page: &BTreeMap<(String, BTreeMap<String, String>), f64>,
    name: &str,
    labels: &[(&str, &str)],
) -> f64 {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    page.get(&(name.to_string(), labels))
        .copied()
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_requests_decisions_token_rejections_and_issuing() {
    let app = TestApp::spawn().await;
    let before = scrape(&app.base).await;

    let token = app.token("C-1", Some("LE-1"));
    let (s, b) = app
        .authorize(&token, order("O-1", "C-2", Some("LE-1")))
        .await;
    assert_eq!((s, b["decision"].as_str()), (StatusCode::OK, Some("allow")));
    let (_, b) = app.authorize(&token, product("P-9", &["retail"])).await;
    assert_eq!(b["decision"], "deny");
    let (s, _) = app
        .authorize("not.a.token", order("O-1", "C-1", None))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = app.get("/no/such/path", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let login = app.token("C-1", None);
    for (le, status) in [("LE-1", StatusCode::OK), ("LE-3", StatusCode::FORBIDDEN)] {
        let body = serde_json::json!({ "legal_entity_id": le });
        let (s, _, _) = app.post("/v1/token/refresh", Some(&login), &body).await;
        assert_eq!(s, status);
    }

    let after = scrape(&app.base).await;
    let grew = |name: &str, labels: &[(&str, &str)], by: f64| {
        let (b, a) = (value(&before, name, labels), value(&after, name, labels));
        assert!(a - b >= by, "{name}{labels:?}: {b} -> {a}, expected +{by}");
    };
    let authorize_ok = [
        ("method", "POST"),
        ("route", "/v1/authorize"),
        ("status", "200"),
    ];
    grew("legate_http_requests_total", &authorize_ok, 2.0);
    grew(
        "legate_http_requests_total",
        &[
            ("method", "POST"),
            ("route", "/v1/authorize"),
            ("status", "401"),
        ],
        1.0,
    );
    // Unknown paths share one label value: the raw URI never becomes a series.
    grew(
        "legate_http_requests_total",
        &[("method", "GET"), ("route", "unmatched"), ("status", "404")],
        1.0,
    );
    assert!(!after
        .keys()
        .any(|(_, l)| l.values().any(|v| v == "/no/such/path")));
    grew(
        "legate_decisions_total",
        &[("action", "viewOrder"), ("decision", "allow")],
        1.0,
    );
    grew(
        "legate_decisions_total",
        &[("action", "viewProduct"), ("decision", "deny")],
        1.0,
    );
    grew("legate_decision_duration_seconds_count", &[], 2.0);
    grew(
        "legate_decision_duration_seconds_bucket",
        &[("le", "+Inf")],
        2.0,
    );
    grew(
        "legate_token_rejections_total",
        &[("reason", "malformed")],
        1.0,
    );
    grew(
        "legate_tokens_issued_total",
        &[("grant", "token_exchange")],
        1.0,
    );
    grew(
        "legate_token_refusals_total",
        &[("reason", "not_assigned")],
        1.0,
    );
    grew(
        "legate_http_request_duration_seconds_count",
        &[("method", "POST"), ("route", "/v1/authorize")],
        3.0,
    );
    assert!(value(&after, "legate_policies_loaded", &[]) >= 1.0);
    app.stop().await;
}

/// Scrapes until `name{labels}` exceeds `above` (at most 10 s: reloads go through the watcher).
async fn until_above(base: &str, name: &str, labels: &[(&str, &str)], above: f64) {
    for _ in 0..200 {
        if value(&scrape(base).await, name, labels) > above {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name}{labels:?} stayed at {above}");
}

#[tokio::test]
async fn metrics_count_policy_reloads_by_result() {
    // The real binary: `legate_policies_loaded` is its own, not the last value any app of this
    // test binary set.
    let dir = ServeDir::new();
    let legate = dir.start(|_| {});
    let base = legate.base();
    let reloads = "legate_policy_reloads_total";
    let orders = dir.dir.path().join("policies/orders.cedar");
    let text = std::fs::read_to_string(&orders).unwrap();
    for (content, result) in [
        (
            "permit (principal, action, resource) when {".to_string(),
            "error",
        ),
        (format!("{text}\n// edited\n"), "ok"),
        (format!("{text}\n// edited\n"), "unchanged"),
    ] {
        let before = value(&scrape(&base).await, reloads, &[("result", result)]);
        std::fs::write(&orders, content).unwrap();
        until_above(&base, reloads, &[("result", result)], before).await;
    }
    let page = scrape(&base).await;
    assert_eq!(value(&page, "legate_policies_loaded", &[]), 5.0);
}

#[tokio::test]
async fn decisions_on_undeclared_actions_share_one_label() {
    let app = TestApp::spawn().await;
    let token = app.token("C-1", None);
    let mut body = order("O-1", "C-1", None);
    body["action"] = "action-made-up-by-a-caller".into();
    let (s, _) = app.authorize(&token, body).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let page = scrape(&app.base).await;
    assert!(
        value(
            &page,
            "legate_decisions_total",
            &[("action", "unknown"), ("decision", "deny")]
        ) >= 1.0
    );
    assert!(!page
        .keys()
        .any(|(_, l)| l.values().any(|v| v == "action-made-up-by-a-caller")));
    app.stop().await;
}

#[tokio::test]
async fn every_response_carries_a_request_id_the_callers_when_usable() {
    let app = TestApp::spawn().await;
    let get = |path: &'static str, id: Option<&'static str>| {
        let mut req = app.client.get(format!("{}{path}", app.base));
        if let Some(id) = id {
            req = req.header("x-request-id", id);
        }
        async move {
            let resp = req.send().await.unwrap();
            resp.headers()
                .get("x-request-id")
                .map(|v| v.to_str().unwrap().to_string())
        }
    };
    assert_eq!(
        get("/healthz", Some("abc-123")).await.as_deref(),
        Some("abc-123")
    );
    // An error answer (our fallback) gets one too.
    assert_eq!(
        get("/nowhere", Some("req.7")).await.as_deref(),
        Some("req.7")
    );
    let generated = get("/healthz", None).await.unwrap();
    assert_eq!(generated.len(), 36, "{generated}"); // a UUID
    let other = get("/healthz", None).await.unwrap();
    assert_ne!(generated, other);
    // Unusable ids (too long, spaces) are replaced, not echoed.
    let long: &'static str = Box::leak("x".repeat(200).into_boxed_str());
    let replaced = get("/healthz", Some(long)).await.unwrap();
    assert_eq!(replaced.len(), 36);
    let replaced = get("/healthz", Some("two words")).await.unwrap();
    assert_ne!(replaced, "two words");
    app.stop().await;
}

#[tokio::test]
async fn the_decision_log_line_of_a_request_has_every_field() {
    let (app, _log, path) = TestApp::spawn_logging_decisions().await;
    let claims = common::claims("C-1", Some("LE-1"));
    let token = common::sign(&app.keys.ec, &claims);
    let resp = app
        .client
        .post(format!("{}/v1/authorize", app.base))
        .bearer_auth(&token)
        .header("x-request-id", "audit-me-1")
        .json(&order("O-77", "C-2", Some("LE-1")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let lines = common::decision_log_lines(&path, 1).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    let l = &lines[0];
    assert_eq!(l["request_id"], "audit-me-1");
    assert_eq!(l["issuer"], common::IDP);
    assert_eq!(l["jti"], claims["jti"]);
    assert_eq!(l["customer"], "C-1");
    assert_eq!(l["legal_entity"], "LE-1");
    assert_eq!(l["action"], "viewOrder");
    assert_eq!(
        l["resource"],
        serde_json::json!({"type": "Order", "id": "O-77"})
    );
    assert_eq!(l["decision"], "allow");
    assert_eq!(l["policies"], serde_json::json!(["entity-orders"]));
    assert_eq!(l["errors"], serde_json::json!([]));
    assert_eq!(l["policy_hash"], app.state.policies.snapshot().hash());
    assert!(l["latency_us"].is_u64(), "{l}");
    let time = l["time"].as_str().unwrap();
    assert!(time.len() == 24 && time.ends_with('Z'), "{time}");
    // Ids only: neither the token nor the resource's attributes are written.
    let raw = std::fs::read_to_string(&path).unwrap();
    assert!(!raw.contains(&token) && !raw.contains(token.split('.').nth(1).unwrap()));
    assert!(!raw.contains("attrs") && !raw.contains("\"C-2\""), "{raw}");
    app.stop().await;
}

#[tokio::test]
async fn sampling_drops_allows_but_always_keeps_denies() {
    let log = tempfile::tempdir().unwrap();
    let path = log.path().join("decisions.jsonl");
    let p = path.display().to_string();
    let app = TestApp::spawn_with(|t| {
        t["log"]["decisions"] = p.into();
        let log = t["log"].as_table_mut().unwrap();
        log.insert("allow_sample_rate".into(), 0.0.into());
    })
    .await;
    let token = app.token("C-1", Some("LE-1"));
    let checks: Vec<Value> = (0..20)
        .map(|i| {
            let owner = if i % 2 == 0 { "C-1" } else { "C-9" };
            order(&format!("O-{i}"), owner, None)
        })
        .collect();
    let (s, _, b) = app
        .post(
            "/v1/authorize/batch",
            Some(&token),
            &serde_json::json!({ "checks": checks }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let lines = common::decision_log_lines(&path, 10).await;
    // Give a stray allow line time to show up before counting.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lines_now = common::decision_log_lines(&path, 10).await;
    assert_eq!(lines.len(), lines_now.len());
    assert_eq!(lines_now.len(), 10, "{lines_now:?}");
    assert!(lines_now.iter().all(|l| l["decision"] == "deny"));
    let id = lines_now[0]["request_id"].as_str().unwrap();
    assert!(
        lines_now.iter().all(|l| l["request_id"] == id),
        "one batch, one request id"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_decision_log_that_cannot_be_opened_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut table = common::base_config(dir.path(), addr);
    common::copy_policies(&dir.path().join("policies"));
    std::fs::write(dir.path().join("idp-jwks.json"), r#"{"keys": []}"#).unwrap();
    table["log"]["decisions"] = dir
        .path()
        .join("no-such-dir/decisions.jsonl")
        .display()
        .to_string()
        .into();
    let config = legate::testing::config::Config::parse(&table.to_string(), Vec::new()).unwrap();
    let err = legate::testing::app::build(config).await.unwrap_err();
    assert!(
        err.problems.iter().any(|p| p.contains("log.decisions")),
        "{err}"
    );
}
