//! The OpenAPI document stays in sync with the router: it is served at `/openapi.json`, it holds
//! together (every `$ref` resolves, every operation has an id and responses), and every documented
//! path and method is routed, i.e. is not answered by our `not_found` / `method_not_allowed`.

mod common;

use common::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::Value;

fn document() -> Value {
    serde_json::from_str(legate::http::ops::OPENAPI).expect("openapi.json is JSON")
}

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Every `(path, method)` the document describes.
fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (key, _) in item.as_object().unwrap() {
            if METHODS.contains(&key.as_str()) {
                ops.push((path.clone(), key.clone()));
            }
        }
    }
    ops
}

#[tokio::test]
async fn the_served_document_is_the_shipped_one() {
    let app = TestApp::spawn().await;
    let (s, served) = app.get("/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(served, document());
    assert!(served["openapi"].as_str().unwrap().starts_with("3."));
    app.stop().await;
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get("$ref") {
                out.push(r.clone());
            }
            o.values().for_each(|x| collect_refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

#[test]
fn the_document_holds_together() {
    let doc = document();
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let pointer = r.strip_prefix('#').expect("local refs only");
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
    let mut ids = std::collections::HashSet::new();
    for (path, method) in operations(&doc) {
        let op = &doc["paths"][&path][&method];
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path}: no operationId"));
        assert!(ids.insert(id.to_string()), "operationId {id} used twice");
        assert!(
            op["responses"].as_object().is_some_and(|r| !r.is_empty()),
            "{method} {path}: no responses"
        );
    }
}

/// `/v1/forward-auth/{path}` → `/v1/forward-auth/orders/1`.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                "orders/1"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = TestApp::spawn().await;
    let doc = document();
    let mut missing = Vec::new();
    for (path, method) in operations(&doc) {
        let m = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
        let url = format!("{}{}", app.base, concrete(&path));
        let resp = app.client.request(m, url).send().await.unwrap();
        let status = resp.status();
        let code = resp
            .json::<Value>()
            .await
            .ok()
            .and_then(|b| b["error"]["code"].as_str().map(str::to_string));
        // A HEAD answer has no body to read the code from: its status has to do.
        let code = code.or_else(|| {
            (method == "head").then(|| match status {
                StatusCode::NOT_FOUND => "not_found".into(),
                StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed".into(),
                _ => String::new(),
            })
        });
        let unrouted = matches!(
            (status, code.as_deref()),
            (StatusCode::NOT_FOUND, Some("not_found"))
                | (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
        );
        if unrouted {
            missing.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    assert!(
        missing.is_empty(),
        "documented in src/http/openapi.json but not routed:\n  {}",
        missing.join("\n  ")
    );
    app.stop().await;
}
