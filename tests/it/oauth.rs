//! OAuth conformance over a real socket: `client_id` in every issued access token (RFC 9068),
//! `[[clients]]` authentication (`client_secret_basic` / `_post`, 401 `invalid_client`), RFC 8693
//! `audience` / `resource` targets, a legate access token as a once-only grant, logout with
//! `POST /oauth2/revoke` (RFC 7009), the default legal entity at login, the RFC 8414 / OpenID
//! discovery documents, `Cache-Control: no-store` on every refresh answer, the OpenAPI `servers`,
//! and every metric family on a fresh process.

use crate::common::{claims, order, process, sign, TestApp};
use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Digest;

fn payload(token: &str) -> Value {
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.split('.').nth(1).unwrap())
        .unwrap();
    serde_json::from_slice(&b).unwrap()
}

fn set(t: &mut toml::Table, section: &str, key: &str, value: impl Into<toml::Value>) {
    t.entry(section)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .unwrap()
        .insert(key.into(), value.into());
}

const SECRET: &str = "s3cret-for-tests";

/// Adds `[[clients]]` `shop` and `other`, both with [`SECRET`].
fn with_client(t: &mut toml::Table) {
    let hex: String = sha2::Sha256::digest(SECRET.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let client = |id: &str| -> toml::Value {
        let t: toml::Table = format!("id = \"{id}\"\nsecret_sha256 = \"{hex}\"\n")
            .parse()
            .unwrap();
        toml::Value::Table(t)
    };
    t.insert(
        "clients".into(),
        toml::Value::Array(vec![client("shop"), client("other")]),
    );
}

/// `POST path` form-encoded, with optional Basic credentials.
async fn form(
    app: &TestApp,
    path: &str,
    basic: Option<(&str, &str)>,
    pairs: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let mut req = app.client.post(format!("{}{path}", app.base)).form(pairs);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap())
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or(Value::Null)
}

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const AT: &str = "urn:ietf:params:oauth:token-type:access_token";

async fn exchange(
    app: &TestApp,
    basic: Option<(&str, &str)>,
    subject: &str,
    extra: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut pairs = vec![
        ("grant_type", EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", AT),
    ];
    pairs.extend_from_slice(extra);
    let (s, h, b) = form(app, "/oauth2/token", basic, &pairs).await;
    (s, h, json_of(&b))
}

#[tokio::test]
async fn every_issued_access_token_names_its_client() {
    let app = TestApp::spawn().await;
    // No client named anywhere: issue.default_client_id.
    let idp = app.token("C-1", Some("LE-1"));
    let (s, _, b) = exchange(&app, None, &idp, &[]).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let at = b["access_token"].as_str().unwrap();
    assert_eq!(payload(at)["client_id"], "legate");
    // ... and a refresh keeps it.
    let rt = b["refresh_token"].as_str().unwrap();
    let (s, _, b) = form(
        &app,
        "/oauth2/token",
        None,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        payload(json_of(&b)["access_token"].as_str().unwrap())["client_id"],
        "legate"
    );
    // The IdP token's azp.
    let mut c = claims("C-1", Some("LE-1"));
    c["azp"] = json!("storefront-web");
    let (_, _, b) = exchange(&app, None, &sign(&app.keys.rsa, &c), &[]).await;
    assert_eq!(
        payload(b["access_token"].as_str().unwrap())["client_id"],
        "storefront-web"
    );
    // A public client's request client_id wins over the token's.
    let (_, _, b) = exchange(
        &app,
        None,
        &sign(&app.keys.rsa, &c),
        &[("client_id", "mobile")],
    )
    .await;
    assert_eq!(
        payload(b["access_token"].as_str().unwrap())["client_id"],
        "mobile"
    );
    app.stop().await;
}

#[tokio::test]
async fn with_clients_missing_or_wrong_credentials_are_invalid_client_and_issue_nothing() {
    let app = TestApp::spawn_with(with_client).await;
    let idp = app.token("C-1", Some("LE-1"));
    let before = app.state.issuer.issued();
    for basic in [None, Some(("evil", "wrong")), Some(("shop", "wrong"))] {
        let (s, h, b) = exchange(&app, basic, &idp, &[]).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{basic:?}: {b}");
        assert_eq!(b["error"], "invalid_client", "{b}");
        assert!(h["www-authenticate"].to_str().unwrap().starts_with("Basic"));
        assert!(b.get("access_token").is_none());
    }
    let wrong_post = [("client_id", "shop"), ("client_secret", "nope")];
    let (s, _, b) = exchange(&app, None, &idp, &wrong_post).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    // The JSON endpoint, bearer form: credentials in the body.
    let (s, h, b) = app
        .post(
            "/v1/token/refresh",
            Some(&idp),
            &json!({"client_id": "shop", "client_secret": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    assert_eq!(b["error"]["code"], "invalid_client");
    assert!(h["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    assert_eq!(app.state.issuer.issued(), before, "nothing issued");

    // Right credentials: basic, post, and the JSON body; the token names the client.
    let (s, _, b) = exchange(&app, Some(("shop", SECRET)), &idp, &[]).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        payload(b["access_token"].as_str().unwrap())["client_id"],
        "shop"
    );
    let rt = b["refresh_token"].as_str().unwrap().to_string();
    // Issued to `shop`: another client cannot use it (and the refusal leaves it usable).
    let (s, _, b) = form(
        &app,
        "/oauth2/token",
        Some(("other", SECRET)),
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
    )
    .await;
    assert_eq!(
        (s, json_of(&b)["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "{b}"
    );
    let post = [("client_id", "shop"), ("client_secret", SECRET)];
    let (s, _, b) = exchange(&app, None, &app.token("C-1", None), &post).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _, b) = app
        .post(
            "/v1/token/refresh",
            None,
            &json!({"refresh_token": rt, "client_id": "shop", "client_secret": SECRET}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // The discovery documents say so.
    let (_, meta) = app
        .get("/.well-known/oauth-authorization-server", None)
        .await;
    assert_eq!(
        meta["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post"])
    );
    app.stop().await;
}

#[tokio::test]
async fn without_clients_a_presented_secret_is_refused() {
    let app = TestApp::spawn().await;
    let (s, _, b) = exchange(&app, Some(("evil", "wrong")), &app.token("C-1", None), &[]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    assert_eq!(b["error"], "invalid_client");
    app.stop().await;
}

#[tokio::test]
async fn an_audience_or_resource_legate_does_not_issue_for_is_invalid_target() {
    let app = TestApp::spawn_with(|t| {
        set(
            t,
            "issue",
            "audience",
            toml::Value::Array(vec!["storefront".into(), "erp".into()]),
        );
    })
    .await;
    let idp = app.token("C-1", Some("LE-1"));
    let before = app.state.issuer.issued();
    for extra in [
        [("audience", "https://evil.example")],
        [("resource", "https://evil.example")],
    ] {
        let (s, _, b) = exchange(&app, None, &idp, &extra).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        assert_eq!(b["error"], "invalid_target", "{b}");
    }
    let (s, _, b) = exchange(
        &app,
        None,
        &idp,
        &[("audience", "erp"), ("audience", "nope")],
    )
    .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_target"))
    );
    assert_eq!(app.state.issuer.issued(), before);
    // A listed audience narrows the token to it.
    let (s, _, b) = exchange(&app, None, &idp, &[("audience", "erp")]).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(payload(b["access_token"].as_str().unwrap())["aud"], "erp");
    app.stop().await;
}

#[tokio::test]
async fn a_legate_access_token_is_a_grant_once_and_a_second_use_revokes_its_session() {
    let app = TestApp::spawn().await;
    let (_, _, first) = exchange(&app, None, &app.token("C-1", Some("LE-1")), &[]).await;
    let stolen = first["access_token"].as_str().unwrap().to_string();
    let sid = payload(&stolen)["sid"].clone();
    // The attack: the same access token exchanged 50 times.
    let mut ok = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..50 {
        let (s, _, b) = exchange(&app, None, &stolen, &[("legal_entity_id", "LE-2")]).await;
        match s {
            StatusCode::OK => ok.push(b),
            StatusCode::BAD_REQUEST => refused.push(b["error"].as_str().unwrap().to_string()),
            other => panic!("{other}: {b}"),
        }
    }
    assert_eq!((ok.len(), refused.len()), (1, 49), "good once");
    // The second use is the reuse; after it the token itself is revoked (an invalid subject
    // token is `invalid_request`, RFC 8693 §2.2.2).
    assert_eq!(refused[0], "invalid_grant");
    assert!(
        refused[1..].iter().all(|e| e == "invalid_request"),
        "{refused:?}"
    );
    let won = ok[0]["access_token"].as_str().unwrap();
    assert_eq!(payload(won)["sid"], sid, "stays in its family");
    // The second use revoked the family: every token of it is now refused.
    let (s, _) = app.authorize(won, order("O-1", "C-1", None)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let rt = ok[0]["refresh_token"].as_str().unwrap();
    let (s, _, b) = app
        .post("/v1/token/refresh", None, &json!({"refresh_token": rt}))
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // Also as a bearer on /v1/token/refresh.
    let (_, _, second) = exchange(&app, None, &app.token("C-1", Some("LE-1")), &[]).await;
    let at = second["access_token"].as_str().unwrap();
    let (s, _, _) = app.post("/v1/token/refresh", Some(at), &json!({})).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, b) = app.post("/v1/token/refresh", Some(at), &json!({})).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    app.stop().await;
}

#[tokio::test]
async fn revoke_ends_the_whole_session_and_always_answers_200() {
    let app = TestApp::spawn().await;
    let (_, _, pair) = exchange(&app, None, &app.token("C-1", Some("LE-1")), &[]).await;
    let at = pair["access_token"].as_str().unwrap();
    let rt = pair["refresh_token"].as_str().unwrap();
    let (s, _) = app.authorize(at, order("O-1", "C-1", None)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, body) = form(
        &app,
        "/oauth2/revoke",
        None,
        &[("token", rt), ("token_type_hint", "refresh_token")],
    )
    .await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, ""));
    let (s, _) = app.authorize(at, order("O-1", "C-1", None)).await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "access token of a revoked session"
    );
    let (s, _) = app.get("/v1/me", Some(at)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, b) = form(
        &app,
        "/oauth2/token",
        None,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await;
    assert_eq!(
        (s, json_of(&b)["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // Logout with an access token works the same.
    let (_, _, pair) = exchange(&app, None, &app.token("C-1", Some("LE-1")), &[]).await;
    let at = pair["access_token"].as_str().unwrap();
    let (s, _, _) = form(&app, "/oauth2/revoke", None, &[("token", at)]).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app.authorize(at, order("O-1", "C-1", None)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Unknown, foreign, garbage or repeated revocations: the same empty 200.
    let idp = app.token("C-1", None);
    for token in [rt, at, idp.as_str(), "garbage", "a.b.c"] {
        let (s, _, body) = form(&app, "/oauth2/revoke", None, &[("token", token)]).await;
        assert_eq!((s, body.as_str()), (StatusCode::OK, ""), "{token}");
    }
    // Not well-formed: no token.
    let (s, _, body) = form(
        &app,
        "/oauth2/revoke",
        None,
        &[("token_type_hint", "access_token")],
    )
    .await;
    assert_eq!(
        (s, json_of(&body)["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    app.stop().await;
}

#[tokio::test]
async fn revoke_requires_client_authentication_when_clients_are_configured() {
    let app = TestApp::spawn_with(with_client).await;
    let (_, _, pair) = exchange(
        &app,
        Some(("shop", SECRET)),
        &app.token("C-1", Some("LE-1")),
        &[],
    )
    .await;
    let at = pair["access_token"].as_str().unwrap();
    let (s, h, body) = form(&app, "/oauth2/revoke", None, &[("token", at)]).await;
    assert_eq!(
        (s, json_of(&body)["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    assert!(h["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    let (s, _) = app.authorize(at, order("O-1", "C-1", None)).await;
    assert_eq!(
        s,
        StatusCode::OK,
        "not revoked by an unauthenticated request"
    );
    let (s, _, _) = form(
        &app,
        "/oauth2/revoke",
        Some(("shop", SECRET)),
        &[("token", at)],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app.authorize(at, order("O-1", "C-1", None)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[tokio::test]
async fn a_login_without_an_entity_gets_the_customers_default() {
    let app = TestApp::spawn().await;
    // C-1 may select LE-1 and LE-2; entities.json marks LE-1 its default.
    let (s, _, b) = exchange(&app, None, &app.token("C-1", None), &[]).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["legal_entity_id"], "LE-1");
    assert_eq!(
        payload(b["access_token"].as_str().unwrap())["legalEntityId"],
        "LE-1"
    );
    // C-2 has no default but may select only LE-3.
    let (_, _, b) = exchange(&app, None, &app.token("C-2", None), &[]).await;
    assert_eq!(b["legal_entity_id"], "LE-3");
    // Unknown customer: no entity at all.
    let (s, _, b) = exchange(&app, None, &app.token("C-404", None), &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["legal_entity_id"], Value::Null);
    // An explicit target or the token's own entity still wins.
    let (_, _, b) = exchange(&app, None, &app.token("C-1", Some("LE-2")), &[]).await;
    assert_eq!(b["legal_entity_id"], "LE-2");
    app.stop().await;

    let off = TestApp::spawn_with(|t| set(t, "issue", "default_entity", false)).await;
    let (_, _, b) = exchange(&off, None, &off.token("C-1", None), &[]).await;
    assert_eq!(
        b["legal_entity_id"],
        Value::Null,
        "issue.default_entity = false"
    );
    off.stop().await;
}

#[tokio::test]
async fn the_policies_still_decide_the_default_entity() {
    let app = TestApp::spawn().await;
    // A policy that forbids LE-1: C-1's marked default is not selectable, LE-2 is the only one left.
    std::fs::write(
        app.policy_dir().join("forbid_le1.cedar"),
        "@id(\"no-le1\")\nforbid (principal, action == Shop::Action::\"selectLegalEntity\", resource == Shop::LegalEntity::\"LE-1\");\n",
    )
    .unwrap();
    app.state.policies.reload().unwrap();
    let (s, _, b) = exchange(&app, None, &app.token("C-1", None), &[]).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["legal_entity_id"], "LE-2");
    app.stop().await;
}

#[tokio::test]
async fn every_refresh_answer_says_no_store_errors_too() {
    let app = TestApp::spawn().await;
    let idp = app.token("C-1", Some("LE-1"));
    let url = format!("{}/v1/token/refresh", app.base);
    let cases = [
        app.client
            .post(&url)
            .bearer_auth(&idp)
            .json(&json!({"legal_entity_id": "LE-1"})),
        app.client
            .post(&url)
            .json(&json!({"refresh_token": "garbage"})),
        app.client.post(&url).json(&json!({})),
        app.client
            .post(&url)
            .bearer_auth("bad.token.here")
            .json(&json!({})),
        app.client
            .post(&url)
            .bearer_auth(&idp)
            .json(&json!({"legal_entity_id": "LE-3"})),
        app.client.post(&url).body("not json"),
        app.client.post(&url).json(&json!({"unknown": 1})),
    ];
    let mut statuses = Vec::new();
    for req in cases {
        let resp = req.send().await.unwrap();
        statuses.push(resp.status().as_u16());
        assert_eq!(
            resp.headers()
                .get("cache-control")
                .map(|v| v.to_str().unwrap()),
            Some("no-store"),
            "{}",
            resp.status()
        );
    }
    assert_eq!(statuses, [200, 400, 401, 401, 403, 415, 400]);
    app.stop().await;
}

#[tokio::test]
async fn both_discovery_documents_carry_every_required_member() {
    let app = TestApp::spawn_with(|t| {
        t.insert("public_url".into(), "https://legate.example.com".into());
    })
    .await;
    let (s, oauth) = app
        .get("/.well-known/oauth-authorization-server", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, oidc) = app.get("/.well-known/openid-configuration", None).await;
    assert_eq!(oauth, oidc);
    let base = "https://legate.example.com";
    assert_eq!(oauth["issuer"], base);
    for (member, path) in [
        ("token_endpoint", "/oauth2/token"),
        ("revocation_endpoint", "/oauth2/revoke"),
        ("jwks_uri", "/.well-known/jwks.json"),
        ("authorization_endpoint", "/oauth2/authorize"),
    ] {
        assert_eq!(oauth[member], format!("{base}{path}"), "{member}");
    }
    // RFC 8414 §2 and OpenID Connect Discovery §3 REQUIRED members.
    for member in [
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
        "grant_types_supported",
        "token_endpoint_auth_methods_supported",
    ] {
        assert!(!oauth[member].as_array().unwrap().is_empty(), "{member}");
    }
    assert!(oauth["id_token_signing_alg_values_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("RS256")));
    assert_eq!(
        oauth["token_endpoint_auth_methods_supported"],
        json!(["none"])
    );
    // The authorization endpoint exists and says why it issues nothing.
    let (s, b) = app.get("/oauth2/authorize?response_type=code", None).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unsupported_response_type"))
    );
    // The OpenAPI document's servers follow public_url too.
    let (_, doc) = app.get("/openapi.json", None).await;
    assert_eq!(doc["servers"][0]["url"], base);
    app.stop().await;
}

#[tokio::test]
async fn the_authorization_endpoint_answers_get_and_post_only() {
    let app = TestApp::spawn().await;
    let url = format!("{}/oauth2/authorize?response_type=code", app.base);
    for method in [reqwest::Method::GET, reqwest::Method::POST] {
        let r = app
            .client
            .request(method.clone(), &url)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{method}");
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["error"], "unsupported_response_type", "{method}");
    }
    // OpenID Connect asks GET and POST of an authorization endpoint, and that is what is documented.
    for method in [
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
        reqwest::Method::PATCH,
    ] {
        let r = app
            .client
            .request(method.clone(), &url)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "{method}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_fresh_process_shows_every_metric_family() {
    let mut cmd = process::legate();
    cmd.args(["serve", "--config", "examples/legate.toml"])
        .env("LEGATE_LISTEN", "127.0.0.1:0")
        .env("LEGATE_LOG__DECISIONS", "off");
    let p = process::LegateProcess::start(cmd);
    let text = process::metrics(&p.base()).await;
    for family in [
        "legate_http_requests_total",
        "legate_http_request_duration_seconds",
        "legate_decisions_total",
        "legate_decision_duration_seconds",
        "legate_token_rejections_total",
        "legate_policy_reloads_total",
        "legate_policies_loaded",
        "legate_tokens_issued_total",
        "legate_token_refusals_total",
        "legate_token_revocations_total",
        "legate_jwks_fetches_total",
        "legate_entity_source_calls_total",
        "legate_build_info",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing from a fresh /metrics:\n{text}"
        );
    }
}

/// RFC 7009 §2.1: `other` cannot revoke `shop`'s session (400 `unauthorized_client`, nothing
/// revoked); `shop` can.
#[tokio::test]
async fn revoke_refuses_a_token_issued_to_another_client() {
    let app = TestApp::spawn_with(with_client).await;
    let (_, _, pair) = exchange(
        &app,
        Some(("shop", SECRET)),
        &app.token("C-1", Some("LE-1")),
        &[],
    )
    .await;
    let at = pair["access_token"].as_str().unwrap();
    let rt = pair["refresh_token"].as_str().unwrap();
    for token in [at, rt] {
        let (s, _, body) = form(
            &app,
            "/oauth2/revoke",
            Some(("other", SECRET)),
            &[("token", token)],
        )
        .await;
        assert_eq!(
            (s, json_of(&body)["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("unauthorized_client")),
            "{body}"
        );
    }
    let (s, _) = app.authorize(at, order("O-1", "C-1", None)).await;
    assert_eq!(s, StatusCode::OK, "not revoked by another client");
    let (s, _, _) = form(
        &app,
        "/oauth2/revoke",
        Some(("shop", SECRET)),
        &[("token", rt)],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app.authorize(at, order("O-1", "C-1", None)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "revoked by its own client");
}

/// Without `[[clients]]` (public clients), a refresh token issued to `web` presented with
/// `client_id=mobile` is `invalid_grant` and stays good for `web`.
#[tokio::test]
async fn a_public_client_cannot_rebind_another_clients_refresh_token() {
    let app = TestApp::spawn().await;
    let (s, _, pair) = exchange(
        &app,
        None,
        &app.token("C-1", Some("LE-1")),
        &[("client_id", "web")],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{pair}");
    let rt = pair["refresh_token"].as_str().unwrap();
    let refresh = |client: &'static str| {
        [
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("legal_entity_id", "LE-1"),
            ("client_id", client),
        ]
    };
    let (s, _, body) = form(&app, "/oauth2/token", None, &refresh("mobile")).await;
    assert_eq!(
        (s, json_of(&body)["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "{body}"
    );
    let (s, _, body) = form(&app, "/oauth2/token", None, &refresh("web")).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        payload(json_of(&body)["access_token"].as_str().unwrap())["client_id"],
        "web"
    );
}
