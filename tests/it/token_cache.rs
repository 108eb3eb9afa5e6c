//! The verified-token cache over a real socket: a cached token is answered from the cache, and the
//! cache never lets through what verifying from scratch would refuse — a tampered token that keeps a
//! cached signature, a cached token past its `exp`, a cached token whose session family was revoked.

use crate::common::{self, claims, order, sign, TestApp};
use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(part: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap()
}

fn hits(app: &TestApp) -> u64 {
    app.state.verifier.cache_counts().0
}

async fn status(app: &TestApp, token: &str, body: &Value) -> (StatusCode, String, Value) {
    let (s, h, b) = app.post("/v1/authorize", Some(token), body).await;
    let www = h
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (s, www, b)
}

#[tokio::test]
async fn a_second_request_with_the_same_token_is_a_cache_hit() {
    let app = TestApp::spawn().await;
    let token = app.token("C-1", Some("LE-1"));
    let body = order("O-1", "C-1", None);
    let before = app.state.verifier.cache_counts();
    assert_eq!(status(&app, &token, &body).await.0, StatusCode::OK);
    let after_first = app.state.verifier.cache_counts();
    assert_eq!(after_first.1, before.1 + 1, "first use is a miss");
    let (s, _, b) = status(&app, &token, &body).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["decision"], "allow", "{b}");
    assert_eq!(hits(&app), after_first.0 + 1, "second use is a hit");
    app.stop().await;
}

#[tokio::test]
async fn a_tampered_token_with_a_cached_signature_is_refused() {
    let app = TestApp::spawn().await;
    let token = app.token("C-1", Some("LE-1"));
    let mine = order("O-1", "C-1", None);
    let theirs = order("O-2", "C-2", None);
    assert_eq!(status(&app, &token, &mine).await.0, StatusCode::OK);
    assert_eq!(status(&app, &token, &mine).await.0, StatusCode::OK);
    let cached = hits(&app);
    assert!(cached >= 1, "the token is in the cache");

    let parts: Vec<&str> = token.split('.').collect();
    // Payload changed to another customer, the cached signature kept.
    let mut payload: Value = serde_json::from_slice(&unb64(parts[1])).unwrap();
    payload["sub"] = json!("C-2");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(payload.to_string().as_bytes()),
        parts[2]
    );
    let (s, www, b) = status(&app, &forged, &theirs).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    assert!(www.contains("invalid_token"), "{www}");
    // Header changed (an extra member), payload and signature kept.
    let mut header: Value = serde_json::from_slice(&unb64(parts[0])).unwrap();
    header["x"] = json!(1);
    let forged = format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        parts[1],
        parts[2]
    );
    let (s, _, b) = status(&app, &forged, &mine).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    assert_eq!(
        hits(&app),
        cached,
        "no forged token was answered from the cache"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_cached_token_is_refused_once_it_expires() {
    let app = TestApp::spawn_with(|t| {
        t.entry("claims")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .unwrap()
            .insert("leeway_secs".into(), 0.into());
    })
    .await;
    let mut c = claims("C-1", Some("LE-1"));
    let exp = common::now() + 2;
    c["exp"] = json!(exp);
    let token = sign(&app.keys.rsa, &c);
    let body = order("O-1", "C-1", None);
    assert_eq!(status(&app, &token, &body).await.0, StatusCode::OK);
    let (s, _, _) = status(&app, &token, &body).await;
    assert_eq!(s, StatusCode::OK);
    assert!(hits(&app) >= 1, "the token is in the cache");
    while common::now() <= exp {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (s, www, b) = status(&app, &token, &body).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    assert!(www.contains("expired"), "{www}");
    app.stop().await;
}

#[tokio::test]
async fn a_revoked_family_is_refused_on_a_cache_hit() {
    let app = TestApp::spawn().await;
    let idp = app.token("C-1", Some("LE-1"));
    let (s, _, pair) = app
        .post(
            "/v1/token/refresh",
            Some(&idp),
            &json!({"legal_entity_id": "LE-1"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{pair}");
    let at = pair["access_token"].as_str().unwrap().to_string();
    let rt = pair["refresh_token"].as_str().unwrap().to_string();
    let body = order("O-1", "C-1", None);
    assert_eq!(status(&app, &at, &body).await.0, StatusCode::OK);
    assert_eq!(status(&app, &at, &body).await.0, StatusCode::OK);

    // Using the refresh token twice is reuse: its whole family is revoked.
    for _ in 0..2 {
        app.post(
            "/v1/token/refresh",
            None,
            &json!({"refresh_token": rt, "legal_entity_id": "LE-1"}),
        )
        .await;
    }
    let before = hits(&app);
    let (s, www, b) = status(&app, &at, &body).await;
    assert_eq!(hits(&app), before + 1, "answered from the cache");
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    assert!(www.contains("revoked"), "{www}");
    app.stop().await;
}
