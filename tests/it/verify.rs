//! Token verification attacks (RFC 8725), each answered 401 with RFC 6750 `WWW-Authenticate` and the
//! JSON error body; and the legitimate algorithms, accepted.

use crate::common::{claims, now, order, sign, Keys, TestApp, AUD};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn b64(v: &Value) -> String {
    B64.encode(serde_json::to_vec(v).unwrap())
}

/// Asserts that `token` is refused the RFC 6750 way.
async fn assert_refused(app: &TestApp, token: &str, what: &str) {
    let (status, headers, body) = app
        .post("/v1/authorize", Some(token), &order("O-1", "C-1", None))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
    let challenge = headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\", error_description=\""),
        "{what}: {challenge}"
    );
    assert_eq!(body["error"]["code"], "invalid_token", "{what}: {body}");
    assert!(!body["error"]["message"].as_str().unwrap().is_empty());
}

async fn assert_accepted(app: &TestApp, token: &str, what: &str) {
    let (status, body) = app.authorize(token, order("O-1", "C-1", None)).await;
    assert_eq!(status, StatusCode::OK, "{what}: {body}");
    assert_eq!(body["decision"], "allow", "{what}: {body}");
}

#[tokio::test]
async fn every_allowed_algorithm_verifies() {
    let app = TestApp::spawn().await;
    let c = claims("C-1", None);
    assert_accepted(&app, &sign(&app.keys.rsa, &c), "RS256").await;
    assert_accepted(&app, &sign(&app.keys.ec, &c), "ES256").await;
    assert_accepted(&app, &sign(&app.keys.ed, &c), "EdDSA").await;
}

#[tokio::test]
async fn alg_none_is_refused_with_and_without_a_signature_part() {
    let app = TestApp::spawn().await;
    let header = b64(&json!({"alg": "none", "typ": "JWT", "kid": app.keys.rsa.kid}));
    let payload = b64(&claims("C-1", None));
    assert_refused(
        &app,
        &format!("{header}.{payload}."),
        "none, empty signature",
    )
    .await;
    assert_refused(
        &app,
        &format!("{header}.{payload}"),
        "none, no signature part",
    )
    .await;
    assert_refused(
        &app,
        &format!("{header}.{payload}.c2ln"),
        "none, junk signature",
    )
    .await;
    let header = b64(&json!({"alg": "None"}));
    assert_refused(&app, &format!("{header}.{payload}.c2ln"), "None").await;
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_as_secret_is_refused() {
    let app = TestApp::spawn().await;
    let jwks = app.keys.jwks();
    let public_key_bytes = serde_json::to_vec(&jwks["keys"][0]).unwrap();
    let n = B64.decode(jwks["keys"][0]["n"].as_str().unwrap()).unwrap();
    for secret in [public_key_bytes, n] {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(app.keys.rsa.kid.clone());
        let token = jsonwebtoken::encode(
            &header,
            &claims("C-1", None),
            &jsonwebtoken::EncodingKey::from_secret(&secret),
        )
        .unwrap();
        assert_refused(&app, &token, "HS256 with the public key").await;
    }
}

#[tokio::test]
async fn unknown_kid_and_foreign_key_are_refused() {
    let app = TestApp::spawn().await;
    let c = claims("C-1", None);
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("no-such-kid".into());
    let t = jsonwebtoken::encode(&header, &c, &app.keys.rsa.encoding).unwrap();
    assert_refused(&app, &t, "unknown kid").await;

    let attacker = Keys::generate();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(app.keys.rsa.kid.clone());
    let t = jsonwebtoken::encode(&header, &c, &attacker.rsa.encoding).unwrap();
    assert_refused(&app, &t, "known kid, another key").await;
}

#[tokio::test]
async fn a_key_of_the_wrong_type_for_the_algorithm_is_refused() {
    let app = TestApp::spawn().await;
    // RS256 header naming the EC key's kid.
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(app.keys.ec.kid.clone());
    let t = jsonwebtoken::encode(&header, &claims("C-1", None), &app.keys.rsa.encoding).unwrap();
    assert_refused(&app, &t, "RS256 with an EC kid").await;
}

#[tokio::test]
async fn an_algorithm_outside_the_issuers_allow_list_is_refused() {
    let app = TestApp::spawn_with(|c| {
        let trust = c["trust"].as_array_mut().unwrap();
        trust[0]["algorithms"] = toml::Value::Array(vec!["RS256".into()]);
    })
    .await;
    assert_accepted(&app, &sign(&app.keys.rsa, &claims("C-1", None)), "RS256").await;
    assert_refused(
        &app,
        &sign(&app.keys.ec, &claims("C-1", None)),
        "ES256 not allowed",
    )
    .await;
    assert_refused(
        &app,
        &sign(&app.keys.ed, &claims("C-1", None)),
        "EdDSA not allowed",
    )
    .await;
}

#[tokio::test]
async fn lifetime_issuer_and_audience_are_checked() {
    let app = TestApp::spawn().await;
    let k = &app.keys.rsa;
    let mut c = claims("C-1", None);
    c["exp"] = json!(now() - 120);
    assert_refused(&app, &sign(k, &c), "expired").await;
    let mut c = claims("C-1", None);
    c["exp"] = json!(now() - 10); // inside the 30 s leeway
    assert_accepted(&app, &sign(k, &c), "expired within leeway").await;
    let mut c = claims("C-1", None);
    c["nbf"] = json!(now() + 3600);
    assert_refused(&app, &sign(k, &c), "not yet valid").await;
    let mut c = claims("C-1", None);
    c["iss"] = json!("https://evil.example");
    assert_refused(&app, &sign(k, &c), "wrong iss").await;
    let mut c = claims("C-1", None);
    c.as_object_mut().unwrap().remove("iss");
    assert_refused(&app, &sign(k, &c), "missing iss").await;
    let mut c = claims("C-1", None);
    c["aud"] = json!("other-service");
    assert_refused(&app, &sign(k, &c), "wrong aud").await;
    let mut c = claims("C-1", None);
    c["aud"] = json!(["other-service", AUD]);
    assert_accepted(&app, &sign(k, &c), "aud list including ours").await;
    let mut c = claims("C-1", None);
    c.as_object_mut().unwrap().remove("aud");
    assert_refused(&app, &sign(k, &c), "missing aud").await;
    let mut c = claims("C-1", None);
    c.as_object_mut().unwrap().remove("exp");
    assert_refused(&app, &sign(k, &c), "missing exp").await;
    let mut c = claims("C-1", None);
    c["exp"] = json!("tomorrow");
    assert_refused(&app, &sign(k, &c), "exp not a number").await;
    let mut c = claims("C-1", None);
    c.as_object_mut().unwrap().remove("sub");
    assert_refused(&app, &sign(k, &c), "missing sub").await;
}

#[tokio::test]
async fn tampered_truncated_and_malformed_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let good = app.token("C-2", None);
    let parts: Vec<&str> = good.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], b64(&claims("C-1", None)), parts[2]);
    assert_refused(&app, &tampered, "tampered payload").await;
    let truncated = &good[..good.len() - 10];
    assert_refused(&app, truncated, "truncated signature").await;
    assert_refused(&app, &format!("{}.{}", parts[0], parts[1]), "two parts").await;
    assert_refused(&app, &format!("{good}.extra"), "four parts").await;
    assert_refused(&app, "garbage", "garbage").await;
    assert_refused(&app, "a.b.c", "garbage parts").await;
    assert_refused(
        &app,
        &format!("{}.!!!.{}", parts[0], parts[2]),
        "bad base64",
    )
    .await;
    let huge = format!("{}.{}.{}", parts[0], "A".repeat(9000), parts[2]);
    assert_refused(&app, &huge, "over 8 KiB").await;
}

#[tokio::test]
async fn crit_and_embedded_key_headers_are_not_trusted() {
    let app = TestApp::spawn().await;
    let c = claims("C-1", None);
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(app.keys.rsa.kid.clone());
    header.crit = Some(vec!["exp".into()]);
    assert_refused(
        &app,
        &jsonwebtoken::encode(&header, &c, &app.keys.rsa.encoding).unwrap(),
        "crit",
    )
    .await;

    // An attacker embeds its own public key (`jwk`) or certificate chain (`x5c`) and signs with it.
    let attacker = Keys::generate();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(attacker.rsa.kid.clone());
    header.jwk = Some(attacker.rsa.jwk.clone());
    header.x5c = Some(vec!["MIIB".into()]);
    assert_refused(
        &app,
        &jsonwebtoken::encode(&header, &c, &attacker.rsa.encoding).unwrap(),
        "jwk/x5c",
    )
    .await;
}

#[tokio::test]
async fn jku_and_x5u_pointing_at_an_attackers_key_set_are_ignored() {
    use std::sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    };
    let attacker = Keys::generate();
    let hits = Arc::new(AtomicUsize::new(0));
    let jwks = attacker.jwks();
    let counter = hits.clone();
    let router = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let jwks = jwks.clone();
            async move { axum::Json(jwks) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let evil = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let app = TestApp::spawn().await;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(attacker.rsa.kid.clone());
    header.jku = Some(evil.clone());
    header.x5u = Some(evil);
    let t = jsonwebtoken::encode(&header, &claims("C-1", None), &attacker.rsa.encoding).unwrap();
    assert_refused(&app, &t, "jku").await;
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "legate fetched the attacker's key set"
    );
}

#[tokio::test]
async fn no_credentials_get_a_bare_bearer_challenge() {
    let app = TestApp::spawn().await;
    for auth in [
        None,
        Some("Basic dXNlcjpwdw=="),
        Some("Bearer "),
        Some("Bearer"),
    ] {
        let mut req = app
            .client
            .post(format!("{}/v1/authorize", app.base))
            .json(&order("O", "C-1", None));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(resp.headers()["www-authenticate"], "Bearer", "{auth:?}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "missing_token");
    }
    // The scheme is case-insensitive.
    let resp = app
        .client
        .post(format!("{}/v1/authorize", app.base))
        .header(
            "authorization",
            format!("bEaReR {}", app.token("C-1", None)),
        )
        .json(&order("O", "C-1", None))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_token_without_kid_uses_the_one_key_that_fits_its_algorithm() {
    let app = TestApp::spawn().await;
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256); // no kid
    let t = jsonwebtoken::encode(&header, &claims("C-1", None), &app.keys.rsa.encoding).unwrap();
    assert_accepted(&app, &t, "one RSA key published, no kid").await;
}
