//! Switching legal entity over a real socket: the full flow, every error path of
//! `/v1/token/refresh` and `/oauth2/token` (each issuing nothing), rotation and reuse detection, the
//! maximum session, the discovery documents, and the audit events and counters.

use std::sync::{Arc, Mutex, OnceLock};

use crate::common::{self, claims, order, sign, TestApp, AUD};
use base64::Engine as _;
use legate::testing::issue::{Clock as _, ManualClock};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Header and payload of a JWT, unverified (assertions only).
fn parts(token: &str) -> (Value, Value) {
    let mut it = token.split('.');
    let mut next = || {
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(it.next().unwrap())
            .unwrap();
        serde_json::from_slice::<Value>(&b).unwrap()
    };
    let header = next();
    (header, next())
}

fn set(t: &mut toml::Table, section: &str, key: &str, value: impl Into<toml::Value>) {
    t.entry(section)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .unwrap()
        .insert(key.into(), value.into());
}

async fn refresh(app: &TestApp, bearer: Option<&str>, body: Value) -> (StatusCode, Value) {
    let (s, _, b) = app.post("/v1/token/refresh", bearer, &body).await;
    (s, b)
}

async fn oauth(
    app: &TestApp,
    form: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let resp = app
        .client
        .post(format!("{}/oauth2/token", app.base))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap_or(Value::Null))
}

/// A token pair for C-1 acting for `le`, exchanged from an identity-provider token.
async fn login(app: &TestApp, le: &str) -> Value {
    let idp = app.token("C-1", Some("LE-1"));
    let (s, b) = refresh(app, Some(&idp), json!({"legal_entity_id": le})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b
}

fn assert_error(status: StatusCode, body: &Value, want: StatusCode, code: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body.get("access_token").is_none() && body.get("refresh_token").is_none());
}

fn decision(b: &Value) -> &str {
    b["decision"].as_str().unwrap_or("?")
}

#[tokio::test]
async fn full_flow_idp_token_me_switch_authorize_and_back() {
    let app = TestApp::spawn().await;
    let idp = app.token("C-1", Some("LE-1"));
    let le1_order = order("O-1", "C-9", Some("LE-1"));
    let le2_order = order("O-2", "C-9", Some("LE-2"));

    let (s, me) = app.get("/v1/me", Some(&idp)).await;
    assert_eq!(s, StatusCode::OK, "{me}");
    assert_eq!(
        me,
        json!({"customer_id": "C-1", "legal_entity_id": "LE-1", "legal_entities": [
            {"id": "LE-1", "name": "Acme Wholesale GmbH"}, {"id": "LE-2", "name": "Acme Retail AG"}]})
    );
    assert_eq!(
        decision(&app.authorize(&idp, le1_order.clone()).await.1),
        "allow"
    );
    assert_eq!(
        decision(&app.authorize(&idp, le2_order.clone()).await.1),
        "deny"
    );

    // Switch to LE-2 with the identity provider's token as the bearer.
    let (s, b) = refresh(&app, Some(&idp), json!({"legal_entity_id": "LE-2"})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["token_type"], "Bearer");
    assert_eq!(b["expires_in"], 900);
    assert_eq!(b["legal_entity_id"], "LE-2");
    let at2 = b["access_token"].as_str().unwrap().to_string();
    let rt2 = b["refresh_token"].as_str().unwrap().to_string();
    let (header, payload) = parts(&at2);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["kid"], app.state.issuer.keys().signing().kid);
    for claim in ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "auth_time"] {
        assert!(payload.get(claim).is_some(), "{claim} missing: {payload}");
    }
    assert_eq!(payload["legalEntityId"], "LE-2");
    assert_eq!(payload["sub"], "C-1");
    assert_eq!(payload["iss"], app.base);
    assert_eq!(payload["aud"], AUD);

    let (s, b) = app.authorize(&at2, le2_order.clone()).await;
    assert_eq!((s, decision(&b)), (StatusCode::OK, "allow"), "{b}");
    assert_eq!(b["policies"], json!(["entity-orders"]));
    assert_eq!(b["legal_entity_id"], "LE-2");
    assert_eq!(
        decision(&app.authorize(&at2, le1_order.clone()).await.1),
        "deny"
    );
    assert_eq!(
        app.get("/v1/me", Some(&at2)).await.1["legal_entity_id"],
        "LE-2"
    );

    // Back to LE-1 with the new refresh token: no login.
    let (s, b) = refresh(
        &app,
        None,
        json!({"refresh_token": rt2, "legal_entity_id": "LE-1"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let at3 = b["access_token"].as_str().unwrap();
    assert_eq!(parts(at3).1["legalEntityId"], "LE-1");
    assert_eq!(decision(&app.authorize(at3, le1_order).await.1), "allow");
    assert_eq!(decision(&app.authorize(at3, le2_order).await.1), "deny");
    assert_eq!(app.state.issuer.issued(), 2);
    app.stop().await;
}

#[tokio::test]
async fn an_issued_token_verifies_with_nothing_but_the_published_jwks() {
    let app = TestApp::spawn().await;
    let at = login(&app, "LE-2").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, config) = app.get("/.well-known/openid-configuration", None).await;
    let jwks: jsonwebtoken::jwk::JwkSet = app
        .client
        .get(config["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(&at).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("kid is published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_issuer(&[config["issuer"].as_str().unwrap()]);
    v.set_audience(&[AUD]);
    let data = jsonwebtoken::decode::<Value>(&at, &key, &v).expect("verifies with the JWKS");
    assert_eq!(data.claims["legalEntityId"], "LE-2");
    app.stop().await;
}

#[tokio::test]
async fn discovery_documents_are_absolute_on_public_url_and_publish_every_key() {
    let second =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/keys/legate-dev.pem");
    let app = TestApp::spawn_with(|t| {
        t.insert("public_url".into(), "https://legate.example.com/".into());
        let first = t["issue"]["keys"][0].clone();
        set(
            t,
            "issue",
            "keys",
            toml::Value::Array(vec![first, second.display().to_string().into()]),
        );
    })
    .await;
    let (s, c) = app.get("/.well-known/openid-configuration", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(c["issuer"], "https://legate.example.com");
    assert_eq!(
        c["jwks_uri"],
        "https://legate.example.com/.well-known/jwks.json"
    );
    assert_eq!(
        c["token_endpoint"],
        "https://legate.example.com/oauth2/token"
    );
    let (_, jwks) = app.get("/.well-known/jwks.json", None).await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2);
    assert_eq!(kids[0], app.state.issuer.keys().signing().kid);
    assert!(jwks["keys"][0].get("d").is_none(), "no private part");
    app.stop().await;
}

#[tokio::test]
async fn without_issue_keys_an_ephemeral_key_signs_and_is_published() {
    let app = TestApp::spawn_with(|t| set(t, "issue", "keys", toml::Value::Array(vec![]))).await;
    assert!(app.state.issuer.keys().is_ephemeral());
    let at = login(&app, "LE-1").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, jwks) = app.get("/.well-known/jwks.json", None).await;
    assert_eq!(jwks["keys"][0]["kid"], parts(&at).0["kid"]);
    assert_eq!(
        decision(&app.authorize(&at, order("O", "C-9", Some("LE-1"))).await.1),
        "allow"
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_refresh_tokens_are_invalid_grant_and_issue_nothing() {
    let app = TestApp::spawn().await;
    let pair = login(&app, "LE-1").await;
    let issued = app.state.issuer.issued();
    let at = pair["access_token"].as_str().unwrap();
    let idp = app.token("C-1", Some("LE-1"));
    // A refresh-token-shaped token signed by another key under legate's kid.
    let (_, mut forged_claims) = parts(pair["refresh_token"].as_str().unwrap());
    forged_claims["legalEntityId"] = json!("LE-3");
    let mut header = jsonwebtoken::Header::new(app.keys.ed.alg);
    header.kid = Some(app.state.issuer.keys().signing().kid.clone());
    header.typ = Some("rt+jwt".into());
    let forged = jsonwebtoken::encode(&header, &forged_claims, &app.keys.ed.encoding).unwrap();
    let cases = [
        ("not a jwt", "garbage".to_string(), "malformed"),
        ("legate access token", at.to_string(), "not a refresh token"),
        ("identity-provider token", idp, "not a refresh token"),
        ("forged signature", forged, "signature"),
    ];
    for (what, token, msg) in cases {
        let (s, b) = refresh(
            &app,
            None,
            json!({"refresh_token": token, "legal_entity_id": "LE-2"}),
        )
        .await;
        assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_grant");
        assert!(
            b["error"]["message"].as_str().unwrap().contains(msg),
            "{what}: {b}"
        );
    }
    assert_eq!(app.state.issuer.issued(), issued);
    // The genuine refresh token was not touched by any of this.
    let (s, _) = refresh(
        &app,
        None,
        json!({"refresh_token": pair["refresh_token"], "legal_entity_id": "LE-2"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn an_expired_refresh_token_is_invalid_grant() {
    let clock = Arc::new(ManualClock::starting_now());
    let app =
        TestApp::spawn_with_clock(|t| set(t, "issue", "refresh_ttl_secs", 60), clock.clone()).await;
    let rt = login(&app, "LE-1").await["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        parts(&rt).1["exp"].as_u64().unwrap() - parts(&rt).1["iat"].as_u64().unwrap(),
        60
    );
    clock.advance(60);
    let (s, b) = refresh(
        &app,
        None,
        json!({"refresh_token": rt, "legal_entity_id": "LE-2"}),
    )
    .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("expired"),
        "{b}"
    );
    assert_eq!(app.state.issuer.issued(), 1);
    app.stop().await;
}

#[tokio::test]
async fn nothing_outlives_the_maximum_session_from_the_original_login() {
    let clock = Arc::new(ManualClock::starting_now());
    let app =
        TestApp::spawn_with_clock(|t| set(t, "issue", "max_session_secs", 1000), clock.clone())
            .await;
    let login_at = clock.now() - 100;
    let mut c = claims("C-1", Some("LE-1"));
    c["auth_time"] = json!(login_at);
    let idp = sign(&app.keys.rsa, &c);
    let (s, b) = refresh(&app, Some(&idp), json!({"legal_entity_id": "LE-2"})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, rt) = parts(b["refresh_token"].as_str().unwrap());
    assert_eq!(rt["auth_time"], login_at);
    assert_eq!(
        rt["exp"],
        login_at + 1000,
        "refresh token capped at the session end"
    );

    clock.advance(500);
    let (s, b) = refresh(
        &app,
        None,
        json!({"refresh_token": b["refresh_token"], "legal_entity_id": "LE-1"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, at) = parts(b["access_token"].as_str().unwrap());
    assert_eq!(
        at["auth_time"], login_at,
        "auth_time is the original login's"
    );
    assert_eq!(
        at["exp"],
        login_at + 1000,
        "access token capped at the session end"
    );
    assert_eq!(b["expires_in"], 400);

    // An identity-provider token from a login longer ago than the maximum.
    let mut old = claims("C-1", Some("LE-1"));
    old["auth_time"] = json!(clock.now() - 1000);
    let (s, b) = refresh(
        &app,
        Some(&sign(&app.keys.rsa, &old)),
        json!({"legal_entity_id": "LE-2"}),
    )
    .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("maximum"),
        "{b}"
    );
    // Without auth_time, iat counts.
    let mut no_auth_time = claims("C-1", Some("LE-1"));
    no_auth_time["iat"] = json!(clock.now() - 1000);
    let (s, b) = refresh(&app, Some(&sign(&app.keys.rsa, &no_auth_time)), json!({})).await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(app.state.issuer.issued(), 2);
    app.stop().await;
}

#[tokio::test]
async fn a_reused_refresh_token_is_refused_and_revokes_its_family() {
    let app = TestApp::spawn().await;
    let first = login(&app, "LE-1").await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_string();
    let at1 = first["access_token"].as_str().unwrap().to_string();
    let (s, second) = refresh(
        &app,
        None,
        json!({"refresh_token": rt1, "legal_entity_id": "LE-2"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let at2 = second["access_token"].as_str().unwrap().to_string();
    let rt2 = second["refresh_token"].as_str().unwrap().to_string();
    let le2_order = order("O-2", "C-9", Some("LE-2"));
    assert_eq!(
        decision(&app.authorize(&at2, le2_order.clone()).await.1),
        "allow"
    );

    // rt1 again: reuse. Refused, and the family (at1, at2, rt2) is revoked.
    let (s, b) = refresh(
        &app,
        None,
        json!({"refresh_token": rt1, "legal_entity_id": "LE-2"}),
    )
    .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{b}"
    );
    for at in [&at1, &at2] {
        let (s, h, b) = app.post("/v1/authorize", Some(at), &le2_order).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
        assert!(h["www-authenticate"].to_str().unwrap().contains("revoked"));
    }
    let (s, b) = refresh(
        &app,
        None,
        json!({"refresh_token": rt2, "legal_entity_id": "LE-1"}),
    )
    .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("revoked"),
        "{b}"
    );
    // Nor can a revoked access token open a new family.
    let (s, b) = refresh(&app, Some(&at2), json!({"legal_entity_id": "LE-1"})).await;
    assert_error(s, &b, StatusCode::UNAUTHORIZED, "invalid_token");
    assert_eq!(app.state.issuer.issued(), 2);
    app.stop().await;
}

#[tokio::test]
async fn an_unassigned_entity_is_403_and_keeps_the_refresh_token_usable() {
    let app = TestApp::spawn().await;
    let pair = login(&app, "LE-1").await;
    for le in ["LE-3", "LE-404"] {
        let (s, b) = refresh(
            &app,
            None,
            json!({"refresh_token": pair["refresh_token"], "legal_entity_id": le}),
        )
        .await;
        assert_error(s, &b, StatusCode::FORBIDDEN, "legal_entity_not_assigned");
    }
    let idp = app.token("C-1", None);
    let (s, b) = refresh(&app, Some(&idp), json!({"legal_entity_id": "LE-3"})).await;
    assert_error(s, &b, StatusCode::FORBIDDEN, "legal_entity_not_assigned");
    // The claim in a token is re-checked too: C-2 claims LE-1 but is not assigned to it.
    let (s, b) = refresh(&app, Some(&app.token("C-2", Some("LE-1"))), json!({})).await;
    assert_error(s, &b, StatusCode::FORBIDDEN, "legal_entity_not_assigned");
    assert_eq!(app.state.issuer.issued(), 1);
    let (s, b) = refresh(
        &app,
        None,
        json!({"refresh_token": pair["refresh_token"], "legal_entity_id": "LE-2"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    app.stop().await;
}

#[tokio::test]
async fn an_unavailable_entity_source_is_503_and_authorize_fails_closed() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let app = TestApp::spawn_with(|t| {
        set(t, "entities", "source", "http");
        set(
            t,
            "entities",
            "url",
            format!("http://{closed}/customers/{{customer}}/legal-entities"),
        );
        set(t, "entities", "timeout_ms", 500);
    })
    .await;
    let idp = app.token("C-1", Some("LE-1"));
    let (s, b) = refresh(&app, Some(&idp), json!({"legal_entity_id": "LE-2"})).await;
    assert_error(
        s,
        &b,
        StatusCode::SERVICE_UNAVAILABLE,
        "entity_source_unavailable",
    );
    assert_eq!(app.state.issuer.issued(), 0);
    let (s, b) = app.get("/v1/me", Some(&idp)).await;
    assert_error(
        s,
        &b,
        StatusCode::SERVICE_UNAVAILABLE,
        "entity_source_unavailable",
    );
    // /v1/authorize keeps answering: entity-dependent permits do not apply, and it says why.
    let (s, b) = app.authorize(&idp, order("O-1", "C-9", Some("LE-1"))).await;
    assert_eq!((s, decision(&b)), (StatusCode::OK, "deny"), "{b}");
    assert!(
        b["errors"][0]
            .as_str()
            .unwrap()
            .contains("entity source unavailable"),
        "{b}"
    );
    let (_, b) = app.authorize(&idp, order("O-1", "C-1", None)).await;
    assert_eq!(
        decision(&b),
        "allow",
        "own orders do not need the entity source: {b}"
    );
    app.stop().await;
}

#[tokio::test]
async fn bearer_errors_are_401_invalid_token() {
    let app = TestApp::spawn().await;
    let (s, b) = refresh(&app, None, json!({"legal_entity_id": "LE-2"})).await;
    assert_error(s, &b, StatusCode::UNAUTHORIZED, "missing_token");
    let mut expired = claims("C-1", Some("LE-1"));
    expired["exp"] = json!(common::now() - 3600);
    let (s, b) = refresh(
        &app,
        Some(&sign(&app.keys.rsa, &expired)),
        json!({"legal_entity_id": "LE-2"}),
    )
    .await;
    assert_error(s, &b, StatusCode::UNAUTHORIZED, "invalid_token");
    let (s, b) = refresh(&app, Some("a.b.c"), json!({"legal_entity_id": "LE-2"})).await;
    assert_error(s, &b, StatusCode::UNAUTHORIZED, "invalid_token");
    assert_eq!(app.state.issuer.issued(), 0);
    app.stop().await;
}

#[tokio::test]
async fn token_kinds_never_pass_for_one_another() {
    let app = TestApp::spawn().await;
    let pair = login(&app, "LE-1").await;
    let rt = pair["refresh_token"].as_str().unwrap();
    let check = order("O-1", "C-9", Some("LE-1"));
    // A refresh token is not an access token, anywhere.
    assert_eq!(
        app.authorize(rt, check.clone()).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/v1/me", Some(rt)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (s, b) = refresh(&app, Some(rt), json!({"legal_entity_id": "LE-2"})).await;
    assert_error(s, &b, StatusCode::UNAUTHORIZED, "invalid_token");
    // An upstream-signed token claiming legate's issuer is not legate's.
    let mut fake = claims("C-1", Some("LE-1"));
    fake["iss"] = json!(app.base);
    let mut header = jsonwebtoken::Header::new(app.keys.ed.alg);
    header.typ = Some("at+jwt".into());
    header.kid = Some(app.state.issuer.keys().signing().kid.clone());
    let fake = jsonwebtoken::encode(&header, &fake, &app.keys.ed.encoding).unwrap();
    assert_eq!(
        app.authorize(&fake, check.clone()).await.0,
        StatusCode::UNAUTHORIZED
    );
    // legate's key without `typ: at+jwt` is not an access token either.
    let key = app.state.issuer.keys().signing();
    let mut c = claims("C-1", Some("LE-1"));
    c["iss"] = json!(app.base);
    let mut header = jsonwebtoken::Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    let untyped = jsonwebtoken::encode(&header, &c, &key.encoding).unwrap();
    let (s, h, _) = app.post("/v1/authorize", Some(&untyped), &check).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(h["www-authenticate"].to_str().unwrap().contains("type"));
    // And an identity provider's token is never a refresh token (checked above); nor is an IdP
    // token with legate's issuer accepted by the refresh endpoint.
    let (s, b) = refresh(
        &app,
        None,
        json!({"refresh_token": sign(&app.keys.rsa, &claims("C-1", None))}),
    )
    .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(app.state.issuer.issued(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_legate_access_token_can_switch_and_stays_in_its_family() {
    let app = TestApp::spawn().await;
    let first = login(&app, "LE-1").await;
    let at1 = first["access_token"].as_str().unwrap();
    let (s, b) = refresh(&app, Some(at1), json!({"legal_entity_id": "LE-2"})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let at2 = b["access_token"].as_str().unwrap();
    assert_eq!(parts(at2).1["sid"], parts(at1).1["sid"]);
    assert_eq!(parts(at2).1["auth_time"], parts(at1).1["auth_time"]);
    // Reusing a refresh token of the family later revokes the token switched to here as well.
    let rt1 = first["refresh_token"].as_str().unwrap();
    assert_eq!(
        refresh(&app, None, json!({"refresh_token": rt1})).await.0,
        StatusCode::OK
    );
    assert_eq!(
        refresh(&app, None, json!({"refresh_token": rt1})).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.authorize(at2, order("O", "C-1", None)).await.0,
        StatusCode::UNAUTHORIZED
    );
    app.stop().await;
}

#[tokio::test]
async fn without_legal_entity_id_the_current_entity_is_kept_and_rechecked() {
    let app = TestApp::spawn().await;
    let pair = login(&app, "LE-2").await;
    let (s, b) = refresh(&app, None, json!({"refresh_token": pair["refresh_token"]})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["legal_entity_id"], "LE-2");
    let (s, b) = refresh(
        &app,
        None,
        json!({"refresh_token": "x", "legal_entity_id": ""}),
    )
    .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_request");
    let (s, b) = refresh(&app, None, json!({"refresh_token": "x", "bogus": 1})).await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_request");
    app.stop().await;
}

#[tokio::test]
async fn oauth_token_endpoint_speaks_rfc_6749_and_8693() {
    let app = TestApp::spawn().await;
    let idp = app.token("C-1", Some("LE-1"));
    const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
    const AT: &str = "urn:ietf:params:oauth:token-type:access_token";

    let (s, h, b) = oauth(
        &app,
        &[
            ("grant_type", EXCHANGE),
            ("subject_token", &idp),
            ("subject_token_type", AT),
            ("legal_entity_id", "LE-2"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(b["issued_token_type"], AT);
    assert_eq!(b["token_type"], "Bearer");
    assert_eq!(b["legal_entity_id"], "LE-2");
    let rt = b["refresh_token"].as_str().unwrap().to_string();

    let (s, _, b) = oauth(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("legal_entity_id", "LE-1"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(b.get("issued_token_type").is_none());
    let rt2 = b["refresh_token"].as_str().unwrap().to_string();
    let issued = app.state.issuer.issued();

    type Case<'a> = (Vec<(&'a str, &'a str)>, StatusCode, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt2),
                ("legal_entity_id", "LE-3"),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_target",
        ),
        (
            vec![("grant_type", "refresh_token"), ("refresh_token", "nope")],
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            vec![("grant_type", "refresh_token"), ("refresh_token", &idp)],
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            vec![("grant_type", "password"), ("username", "x")],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            vec![("refresh_token", &rt2)],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            vec![("grant_type", "refresh_token")],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt2),
                ("refresh_token", &rt2),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", EXCHANGE),
                ("subject_token", "a.b.c"),
                ("subject_token_type", AT),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", EXCHANGE),
                ("subject_token", &idp),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:id_token",
                ),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", EXCHANGE),
                ("subject_token", &idp),
                ("subject_token_type", AT),
                ("legal_entity_id", "LE-3"),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_target",
        ),
    ];
    for (form, status, code) in cases {
        let (s, h, b) = oauth(&app, &form).await;
        assert_eq!(
            (s, b["error"].as_str()),
            (status, Some(code)),
            "{form:?}: {b}"
        );
        assert!(b["error_description"].is_string(), "{b}");
        assert_eq!(h["cache-control"], "no-store");
    }
    // A JSON body is not a form.
    let (s, _, b) = app
        .post(
            "/oauth2/token",
            None,
            &json!({"grant_type": "refresh_token"}),
        )
        .await;
    assert_eq!(b["error"], "invalid_request", "{s} {b}");
    assert_eq!(app.state.issuer.issued(), issued);
    // The refresh token refused for LE-3 still works.
    let (s, _, b) = oauth(
        &app,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt2)],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    app.stop().await;
}

/// Captures every log line of this test binary (the audit test filters by its own customer).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The test binary's tracing subscriber (`legate::audit` events, captured) and legate's metrics
/// recorder, installed on first use. Both are process-wide, for every module of the binary: this
/// is the one place that installs a subscriber, and its readers filter by what their test did.
fn observe() -> &'static (Captured, metrics_exporter_prometheus::PrometheusHandle) {
    static ONCE: OnceLock<(Captured, metrics_exporter_prometheus::PrometheusHandle)> =
        OnceLock::new();
    ONCE.get_or_init(|| {
        let logs = Captured::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_env_filter("legate::audit=info")
            .with_writer(move || writer.clone())
            .init();
        // The process-wide recorder legate installs (and `/metrics` renders).
        let metrics = legate::testing::telemetry::install().expect("legate's Prometheus recorder");
        (logs, metrics)
    })
}

#[tokio::test]
async fn every_issue_and_refusal_is_audited_and_counted_without_tokens() {
    let (logs, metrics) = observe();
    let app = TestApp::spawn().await;
    let customer = format!("C-audit-{}", common::now());
    let idp = sign(&app.keys.rsa, &claims(&customer, None));
    let (s, issued) = refresh(&app, Some(&idp), json!({})).await;
    assert_eq!(s, StatusCode::OK, "{issued}");
    let rt = issued["refresh_token"].as_str().unwrap();
    let (s, _) = refresh(
        &app,
        None,
        json!({"refresh_token": rt, "legal_entity_id": "LE-1"}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let events: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["customer"] == customer.as_str())
        .collect();
    assert_eq!(events.len(), 2, "{text}");
    let (access, refresh_claims) = (
        parts(issued["access_token"].as_str().unwrap()).1,
        parts(rt).1,
    );
    assert_eq!(events[0]["event"], "token_issued");
    assert_eq!(events[0]["target"], "legate::audit");
    assert_eq!(events[0]["new_jti"], access["jti"]);
    assert_eq!(events[0]["new_refresh_jti"], refresh_claims["jti"]);
    assert_eq!(events[0]["old_jti"], claims_jti(&idp));
    assert_eq!(events[1]["event"], "token_refused");
    assert_eq!(events[1]["reason"], "not_assigned");
    assert_eq!(events[1]["to_entity"], "LE-1");
    assert_eq!(events[1]["old_jti"], refresh_claims["jti"]);
    for token in [&idp, issued["access_token"].as_str().unwrap(), rt] {
        let signature = token.rsplit('.').next().unwrap();
        assert!(!text.contains(signature), "a token reached the log");
    }
    let rendered = metrics.render();
    assert!(
        rendered.contains("legate_tokens_issued_total{grant=\"token_exchange\"}"),
        "{rendered}"
    );
    assert!(
        rendered.contains("legate_token_refusals_total{reason=\"not_assigned\"}"),
        "{rendered}"
    );
    app.stop().await;
}

fn claims_jti(token: &str) -> Value {
    parts(token).1["jti"].clone()
}

#[tokio::test]
async fn me_lists_only_what_select_legal_entity_allows() {
    let app = TestApp::spawn().await;
    // Forbid selecting LE-2 by policy: /v1/me stops offering it although C-1 is assigned.
    std::fs::write(
        app.policy_dir().join("no_le2.cedar"),
        "@id(\"no-le2\")\nforbid (principal, action == Shop::Action::\"selectLegalEntity\", resource == Shop::LegalEntity::\"LE-2\");\n",
    )
    .unwrap();
    app.state.policies.reload().unwrap();
    let (_, me) = app.get("/v1/me", Some(&app.token("C-1", None))).await;
    assert_eq!(me["legal_entity_id"], Value::Null);
    assert_eq!(
        me["legal_entities"],
        json!([{"id": "LE-1", "name": "Acme Wholesale GmbH"}])
    );
    let (_, me) = app.get("/v1/me", Some(&app.token("C-404", None))).await;
    assert_eq!(me["legal_entities"], json!([]));
    let (s, b) = refresh(
        &app,
        Some(&app.token("C-1", None)),
        json!({"legal_entity_id": "LE-2"}),
    )
    .await;
    assert_error(s, &b, StatusCode::FORBIDDEN, "legal_entity_not_assigned");
    app.stop().await;
}
