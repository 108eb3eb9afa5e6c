//! The error shape, pinned in-process with `router(state).oneshot(..)`: every framework answer
//! (404, 405, 408, 413, 415) and every refused body carries `{"error": {"code", "message"}}` with a
//! JSON content type and an `x-request-id`. A layer moved to the wrong place in `http::router`
//! (the timeout or the body limit outside `ensure_json`, the request id inside the fallback) fails
//! one of these.

use axum::{
    body::Body,
    http::{header, Method, Request, StatusCode},
};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::ServiceExt as _;

use crate::common::TestApp;

/// An app whose requests time out after 1 s, whose bodies may be 256 bytes, and whose entity
/// source is a server that accepts connections and never answers (so a decision waits on it).
async fn app() -> (TestApp, tokio::task::JoinHandle<()>) {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            open.push(conn); // keep it open, say nothing
        }
    });
    let app = TestApp::spawn_with(move |t| {
        let extra: toml::Table = format!(
            "[limits]\nrequest_timeout_secs = 1\nbody_bytes = 256\n\
             [entities]\nsource = \"http\"\ntimeout_ms = 5000\n\
             url = \"http://{silent_addr}/customers/{{customer}}/legal-entities\"\n"
        )
        .parse()
        .unwrap();
        t.extend(extra);
    })
    .await;
    (app, hold)
}

/// Sends `req` through the full router in-process; returns status, content type, request id and
/// the body as JSON (`Value::Null` when it is not JSON).
async fn send(app: &TestApp, req: Request<Body>) -> (StatusCode, String, bool, Value) {
    let resp = legate::testing::http::router(app.state.clone())
        .oneshot(req)
        .await
        .unwrap();
    let status = resp.status();
    let ctype = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let has_id = resp.headers().contains_key("x-request-id");
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, ctype, has_id, body)
}

fn assert_error(got: (StatusCode, String, bool, Value), status: StatusCode, code: &str) {
    let (s, ctype, has_id, body) = got;
    assert_eq!(s, status, "{body}");
    assert!(ctype.starts_with("application/json"), "{status}: {ctype:?}");
    assert!(has_id, "{status}: no x-request-id");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

fn post(path: &str, ctype: &str, body: impl Into<Body>) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, ctype)
        .body(body.into())
        .unwrap()
}

#[tokio::test]
async fn unknown_paths_answer_404_not_found_in_json() {
    let (app, _hold) = app().await;
    let req = Request::get("/no/such/endpoint")
        .body(Body::empty())
        .unwrap();
    assert_error(send(&app, req).await, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn a_wrong_method_answers_405_method_not_allowed_in_json() {
    let (app, _hold) = app().await;
    let req = Request::get("/v1/authorize").body(Body::empty()).unwrap();
    assert_error(
        send(&app, req).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
}

#[tokio::test]
async fn a_body_over_the_limit_answers_413_payload_too_large_in_json() {
    let (app, _hold) = app().await;
    let token = app.token("C-1", Some("LE-1"));
    let mut req = post("/v1/authorize", "application/json", "x".repeat(1024));
    req.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    assert_error(
        send(&app, req).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
}

#[tokio::test]
async fn a_body_that_is_not_json_answers_415_unsupported_media_type_in_json() {
    let (app, _hold) = app().await;
    let token = app.token("C-1", Some("LE-1"));
    let mut req = post("/v1/authorize", "text/plain", "{}");
    req.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    assert_error(
        send(&app, req).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
}

#[tokio::test]
async fn a_request_past_the_timeout_answers_408_request_timeout_in_json() {
    let (app, _hold) = app().await;
    let token = app.token("C-1", Some("LE-1"));
    let check = r#"{"action": "viewOrder", "resource": {"type": "Order", "id": "O-1"}}"#;
    let mut req = post("/v1/authorize", "application/json", check);
    req.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    let started = std::time::Instant::now();
    let got = send(&app, req).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    assert_error(got, StatusCode::REQUEST_TIMEOUT, "request_timeout");
}

#[tokio::test]
async fn a_malformed_body_answers_400_invalid_request_in_json() {
    let (app, _hold) = app().await;
    let token = app.token("C-1", Some("LE-1"));
    let mut req = post("/v1/authorize", "application/json", "{not json");
    req.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    assert_error(
        send(&app, req).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    );
}
