//! A trusted issuer whose keys come from a JWKS URL: fetched at start, fetched again when a token
//! names an unknown `kid` (at most once per `jwks_min_refresh_secs`), last good keys kept on failure.

use std::sync::{
    atomic::{AtomicU16, AtomicUsize, Ordering},
    Arc, Mutex,
};

use crate::common::{claims, order, sign, Keys, TestApp};
use axum::{http::StatusCode as AxStatus, response::IntoResponse, routing::get, Router};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// A pretend identity provider serving a JWKS that the test can change, break and count.
struct Idp {
    url: String,
    jwks: Arc<Mutex<Value>>,
    status: Arc<AtomicU16>,
    hits: Arc<AtomicUsize>,
}

async fn idp(initial: Value) -> Idp {
    let jwks = Arc::new(Mutex::new(initial));
    let status = Arc::new(AtomicU16::new(200));
    let hits = Arc::new(AtomicUsize::new(0));
    let (j, s, h) = (jwks.clone(), status.clone(), hits.clone());
    let router = Router::new().route(
        "/jwks.json",
        get(move || {
            h.fetch_add(1, Ordering::SeqCst);
            let body = j.lock().unwrap().clone();
            let code = s.load(Ordering::SeqCst);
            async move { (AxStatus::from_u16(code).unwrap(), axum::Json(body)).into_response() }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    Idp {
        url,
        jwks,
        status,
        hits,
    }
}

async fn app_trusting(url: &str, min_refresh: i64) -> TestApp {
    let url = url.to_string();
    TestApp::spawn_with(move |c| {
        let t = c["trust"].as_array_mut().unwrap()[0]
            .as_table_mut()
            .unwrap();
        t.insert("jwks".into(), toml::Value::String(url));
        t.insert(
            "jwks_min_refresh_secs".into(),
            toml::Value::Integer(min_refresh),
        );
    })
    .await
}

async fn status_of(app: &TestApp, token: &str) -> StatusCode {
    app.authorize(token, order("O-1", "C-1", None)).await.0
}

#[tokio::test]
async fn a_rotated_key_is_fetched_on_first_sight_of_its_kid() {
    let old = Keys::generate();
    let new = Keys::generate();
    let idp = idp(json!({"keys": [old.rsa.jwk]})).await;
    let app = app_trusting(&idp.url, 1).await;
    assert_eq!(idp.hits.load(Ordering::SeqCst), 1, "fetched at start");
    assert_eq!(
        status_of(&app, &sign(&old.rsa, &claims("C-1", None))).await,
        StatusCode::OK
    );
    assert_eq!(
        idp.hits.load(Ordering::SeqCst),
        1,
        "a known kid needs no fetch"
    );

    *idp.jwks.lock().unwrap() = json!({"keys": [old.rsa.jwk, new.rsa.jwk]});
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        status_of(&app, &sign(&new.rsa, &claims("C-1", None))).await,
        StatusCode::OK
    );
    assert_eq!(idp.hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_flood_of_unknown_kids_triggers_at_most_one_fetch_per_interval() {
    let keys = Keys::generate();
    let idp = idp(json!({"keys": [keys.rsa.jwk]})).await;
    let app = app_trusting(&idp.url, 60).await;
    let attacker = Keys::generate();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(format!("made-up-{i}"));
        let t =
            jsonwebtoken::encode(&header, &claims("C-1", None), &attacker.rsa.encoding).unwrap();
        let client = app.client.clone();
        let url = format!("{}/v1/authorize", app.base);
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(t)
                .json(&order("O", "C-1", None))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::UNAUTHORIZED);
    }
    // One fetch at start; the 50 unknown kids are all inside one 60 s interval that began at start.
    assert_eq!(idp.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_last_good_keys_are_kept_when_the_url_fails() {
    let keys = Keys::generate();
    let idp = idp(json!({"keys": [keys.rsa.jwk]})).await;
    let app = app_trusting(&idp.url, 1).await;
    idp.status.store(500, Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    // An unknown kid triggers a refresh, which fails...
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("unknown".into());
    let t = jsonwebtoken::encode(&header, &claims("C-1", None), &keys.rsa.encoding).unwrap();
    assert_eq!(status_of(&app, &t).await, StatusCode::UNAUTHORIZED);
    assert_eq!(idp.hits.load(Ordering::SeqCst), 2);
    // ...and the known key still verifies.
    assert_eq!(
        status_of(&app, &sign(&keys.rsa, &claims("C-1", None))).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_unreachable_jwks_url_at_start_is_not_ready_until_it_answers() {
    let keys = Keys::generate();
    let idp = idp(json!({"keys": [keys.rsa.jwk]})).await;
    idp.status.store(503, Ordering::SeqCst);
    let app = app_trusting(&idp.url, 1).await;
    let (s, b) = app.get("/readyz", None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{b}");
    assert_eq!(b["error"]["code"], "not_ready");
    assert_eq!(
        status_of(&app, &sign(&keys.rsa, &claims("C-1", None))).await,
        StatusCode::UNAUTHORIZED
    );
    idp.status.store(200, Ordering::SeqCst);
    // No token traffic: the background retry alone must make legate ready.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (s, _) = app.get("/readyz", None).await;
        if s == StatusCode::OK {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still not ready");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        status_of(&app, &sign(&keys.rsa, &claims("C-1", None))).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_background_key_retry_stops_when_the_server_shuts_down() {
    let keys = Keys::generate();
    let idp = idp(json!({"keys": [keys.rsa.jwk]})).await;
    idp.status.store(503, Ordering::SeqCst);
    let app = app_trusting(&idp.url, 1).await;
    // The retry runs once a second while the URL keeps failing.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let at_start = idp.hits.load(Ordering::SeqCst);
    while idp.hits.load(Ordering::SeqCst) < at_start + 1 {
        assert!(std::time::Instant::now() < deadline, "no retry seen");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    app.stop().await;
    let after_stop = idp.hits.load(Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(
        idp.hits.load(Ordering::SeqCst),
        after_stop,
        "the key retry kept fetching after shutdown"
    );
}
