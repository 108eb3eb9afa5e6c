//! The `http` entity source against a small customer-management server started here (axum on
//! 127.0.0.1:0, a test double of a service the user owns): assigned, not assigned, slow beyond the
//! timeout, down, failing, cached within the TTL, and the customer id URL-encoded.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use crate::common::{claims, order, product, sign, TestApp};
use axum::{extract::State, http::Uri, response::IntoResponse, routing::get, Json, Router};
use legate::testing::issue::ManualClock;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// What the pretend customer-management service knows, and what it saw.
#[derive(Clone, Default)]
struct Service {
    calls: Arc<AtomicUsize>,
    delay_ms: Arc<AtomicU64>,
    paths: Arc<Mutex<Vec<String>>>,
}

async fn legal_entities(State(s): State<Service>, uri: Uri) -> axum::response::Response {
    s.calls.fetch_add(1, Ordering::SeqCst);
    s.paths.lock().unwrap().push(uri.path().to_string());
    let delay = s.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let customer = uri.path().split('/').nth(2).unwrap_or_default().to_string();
    let body = match customer.as_str() {
        "C-1" => json!([
            {"id": "LE-1", "name": "Acme Wholesale GmbH", "segments": ["wholesale"]},
            {"id": "LE-2", "name": "Acme Retail AG", "segments": ["retail"]}]),
        "C-7" => json!([{"id": "LE-9", "name": "Nine Retail", "segments": ["retail"]}]),
        "C-8" => json!([
            {"id": "LE-1", "segments": ["wholesale"]},
            {"id": "LE-9", "segments": ["retail"], "default": true}]),
        "C%2F1%20x" => json!([{"id": "LE-1"}]),
        "C-500" => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        "C-junk" => return Json(json!({"not": "a list"})).into_response(),
        _ => json!([]),
    };
    Json(body).into_response()
}

/// The service on a real socket; `stop` closes it and every connection to it.
struct Running {
    addr: SocketAddr,
    service: Service,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn start() -> Self {
        let service = Service::default();
        let app = Router::new()
            .route("/customers/{customer}/legal-entities", get(legal_entities))
            .with_state(service.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        Self {
            addr,
            service,
            stop: Some(tx),
            task,
        }
    }

    fn calls(&self) -> usize {
        self.service.calls.load(Ordering::SeqCst)
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        // Bounded: idle keep-alive connections close at once; a slow request would be cut off.
        let task = &mut self.task;
        if tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn legate_for(cm: SocketAddr, clock: Arc<ManualClock>) -> TestApp {
    TestApp::spawn_with_clock(
        |t| {
            let mut e = toml::Table::new();
            e.insert("source".into(), "http".into());
            e.insert(
                "url".into(),
                format!("http://{cm}/customers/{{customer}}/legal-entities").into(),
            );
            e.insert("timeout_ms".into(), 300.into());
            e.insert("cache_ttl_secs".into(), 60.into());
            t.insert("entities".into(), toml::Value::Table(e));
        },
        clock,
    )
    .await
}

async fn refresh(app: &TestApp, bearer: &str, le: &str) -> (StatusCode, Value) {
    let (s, _, b) = app
        .post(
            "/v1/token/refresh",
            Some(bearer),
            &json!({"legal_entity_id": le}),
        )
        .await;
    (s, b)
}

#[tokio::test]
async fn assigned_entities_and_their_segments_come_from_the_service() {
    let cm = Running::start().await;
    let app = legate_for(cm.addr, Arc::new(ManualClock::starting_now())).await;
    // C-7 and LE-9 exist only in the customer-management service, not in entities.json.
    let idp = app.token("C-7", None);
    let (s, me) = app.get("/v1/me", Some(&idp)).await;
    assert_eq!(s, StatusCode::OK, "{me}");
    assert_eq!(
        me["legal_entities"],
        json!([{"id": "LE-9", "name": "Nine Retail"}])
    );
    let (s, b) = refresh(&app, &idp, "LE-9").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let at = b["access_token"].as_str().unwrap();
    let (_, d) = app.authorize(at, order("O-9", "C-2", Some("LE-9"))).await;
    assert_eq!(d["decision"], "allow", "{d}");
    assert_eq!(d["policies"], json!(["entity-orders"]));
    // LE-9's segments come from the service too.
    let (_, d) = app.authorize(at, product("P-R", &["retail"])).await;
    assert_eq!(d["policies"], json!(["segment-products"]), "{d}");
    let (_, d) = app.authorize(at, product("P-W", &["wholesale"])).await;
    assert_eq!(d["decision"], "deny", "{d}");
    app.stop().await;
    cm.stop().await;
}

#[tokio::test]
async fn an_entity_the_service_does_not_list_is_not_assigned() {
    let cm = Running::start().await;
    let app = legate_for(cm.addr, Arc::new(ManualClock::starting_now())).await;
    let (s, b) = refresh(&app, &app.token("C-7", None), "LE-1").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(b["error"]["code"], "legal_entity_not_assigned");
    // entities.json assigns C-2 to LE-3, but with the http source only the service counts.
    let (s, b) = refresh(&app, &app.token("C-2", None), "LE-3").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(app.state.issuer.issued(), 0);
    app.stop().await;
    cm.stop().await;
}

#[tokio::test]
async fn a_service_slower_than_the_timeout_is_503_and_authorize_still_answers() {
    let cm = Running::start().await;
    let app = legate_for(cm.addr, Arc::new(ManualClock::starting_now())).await;
    cm.service.delay_ms.store(5_000, Ordering::SeqCst);
    let idp = app.token("C-1", Some("LE-1"));
    let started = Instant::now();
    let (s, b) = refresh(&app, &idp, "LE-2").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{b}");
    assert_eq!(b["error"]["code"], "entity_source_unavailable");
    assert!(b.get("access_token").is_none());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "gave up after the 300 ms timeout, not the 5 s delay: {:?}",
        started.elapsed()
    );
    let (s, d) = app.authorize(&idp, order("O-1", "C-9", Some("LE-1"))).await;
    assert_eq!(
        (s, d["decision"].as_str()),
        (StatusCode::OK, Some("deny")),
        "{d}"
    );
    assert!(d["errors"][0].as_str().unwrap().contains("300 ms"), "{d}");
    assert_eq!(app.state.issuer.issued(), 0);
    app.stop().await;
    cm.stop().await;
}

#[tokio::test]
async fn a_service_that_is_down_or_failing_is_503() {
    let cm = Running::start().await;
    let addr = cm.addr;
    let app = legate_for(addr, Arc::new(ManualClock::starting_now())).await;
    for customer in ["C-500", "C-junk"] {
        let (s, b) = refresh(&app, &app.token(customer, None), "LE-1").await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{customer}: {b}");
    }
    cm.stop().await;
    let (s, b) = refresh(&app, &app.token("C-1", None), "LE-1").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{b}");
    assert_eq!(b["error"]["code"], "entity_source_unavailable");
    assert_eq!(app.state.issuer.issued(), 0);
    app.stop().await;
}

#[tokio::test]
async fn answers_are_cached_within_the_ttl_and_failures_are_not() {
    let cm = Running::start().await;
    let clock = Arc::new(ManualClock::starting_now());
    let app = legate_for(cm.addr, clock.clone()).await;
    let idp = app.token("C-1", Some("LE-1"));
    assert_eq!(app.get("/v1/me", Some(&idp)).await.0, StatusCode::OK);
    assert_eq!(refresh(&app, &idp, "LE-2").await.0, StatusCode::OK);
    app.authorize(&idp, order("O", "C-9", Some("LE-1"))).await;
    assert_eq!(cm.calls(), 1, "one call for three requests within the TTL");
    clock.advance(59);
    assert_eq!(app.get("/v1/me", Some(&idp)).await.0, StatusCode::OK);
    assert_eq!(cm.calls(), 1);
    clock.advance(1);
    assert_eq!(app.get("/v1/me", Some(&idp)).await.0, StatusCode::OK);
    assert_eq!(cm.calls(), 2, "asked again once the TTL has passed");
    // A failure is not remembered: the next request asks again.
    let failing = app.token("C-500", None);
    assert_eq!(
        app.get("/v1/me", Some(&failing)).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        app.get("/v1/me", Some(&failing)).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(cm.calls(), 4);
    app.stop().await;
    cm.stop().await;
}

#[tokio::test]
async fn the_customer_id_is_url_encoded_into_one_path_segment() {
    let cm = Running::start().await;
    let app = legate_for(cm.addr, Arc::new(ManualClock::starting_now())).await;
    let idp = sign(&app.keys.rsa, &claims("C/1 x", None));
    let (s, b) = refresh(&app, &idp, "LE-1").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        cm.service.paths.lock().unwrap().as_slice(),
        ["/customers/C%2F1%20x/legal-entities"]
    );
    app.stop().await;
    cm.stop().await;
}

/// The entity an identity-provider token without one is exchanged for.
async fn login(app: &TestApp, sub: &str) -> Value {
    let idp = app.token(sub, None);
    let (s, _, b) = app.post("/v1/token/refresh", Some(&idp), &json!({})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["legal_entity_id"].clone()
}

#[tokio::test]
async fn a_login_without_an_entity_gets_the_one_the_service_marks_default() {
    let cm = Running::start().await;
    let app = legate_for(cm.addr, Arc::new(ManualClock::starting_now())).await;
    // C-8: two entities, LE-9 marked `"default": true`.
    assert_eq!(login(&app, "C-8").await, "LE-9");
    // C-7: one entity, none marked: the only one it may select.
    assert_eq!(login(&app, "C-7").await, "LE-9");
    // C-1: two entities, none marked: no entity.
    assert_eq!(login(&app, "C-1").await, Value::Null);
    app.stop().await;
    cm.stop().await;
}
