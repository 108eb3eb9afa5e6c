//! `/v1/forward-auth` in-process (real socket, no proxy): the request shapes nginx, Caddy and Envoy
//! send, with the `[[routes]]` of `examples/legate.toml`; cookie tokens; unmatched allow/deny; and
//! the paths and header combinations that must never be allowed.

use crate::common::{self, process, TestApp};
use reqwest::{header::HeaderMap, Method, StatusCode};
use serde_json::{json, Value};

/// Copies `[forward_auth]` and `[[routes]]` from the shipped example config into a test config.
fn example_routes(table: &mut toml::Table) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/legate.toml");
    let mut example: toml::Table = std::fs::read_to_string(path).unwrap().parse().unwrap();
    for key in ["routes", "forward_auth"] {
        table.insert(key.into(), example.remove(key).expect(key));
    }
}

async fn example_app() -> TestApp {
    TestApp::spawn_with(example_routes).await
}

fn set(table: &mut toml::Table, key: &str, value: toml::Value) {
    table
        .get_mut("forward_auth")
        .and_then(toml::Value::as_table_mut)
        .unwrap()
        .insert(key.into(), value);
}

/// `method path` on legate with `headers`; returns status, headers and JSON body.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Value) {
    let mut req = app.client.request(method, format!("{}{path}", app.base));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    (status, headers, resp.json().await.unwrap_or(Value::Null))
}

/// nginx's sub-request: `GET /v1/forward-auth` with `X-Original-Method` and `X-Original-URI`.
async fn nginx(
    app: &TestApp,
    token: Option<&str>,
    method: &str,
    uri: &str,
) -> (StatusCode, HeaderMap, Value) {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut h = vec![("X-Original-Method", method), ("X-Original-URI", uri)];
    if let Some(b) = &bearer {
        h.push(("Authorization", b));
    }
    call(app, Method::GET, "/v1/forward-auth", &h).await
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).map(|v| v.to_str().unwrap())
}

fn assert_forbidden(s: StatusCode, b: &Value, says: &str) {
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(b["error"]["code"], "forbidden", "{b}");
    let msg = b["error"]["message"].as_str().unwrap();
    assert!(msg.contains(says), "{msg:?} should say {says:?}");
}

#[tokio::test]
async fn nginx_style_request_is_allowed_with_the_identity_headers() {
    let app = example_app().await;
    let t = app.token("C-1", Some("LE-1")); // LE-1 is in the wholesale segment
    let (s, h, b) = nginx(&app, Some(&t), "GET", "/catalog/wholesale/P-1?page=2").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(header(&h, "x-customer-id"), Some("C-1"));
    assert_eq!(header(&h, "legalentityid"), Some("LE-1"));
    assert_eq!(
        b,
        json!({"decision": "allow", "route": "GET /catalog/{segment}/{id}", "action": "viewProduct",
               "policies": ["segment-products"], "principal": "C-1", "legal_entity_id": "LE-1"})
    );
    // Same customer and entity, the retail catalogue: a deny is a 403 with the JSON error body.
    let (s, h, b) = nginx(&app, Some(&t), "GET", "/catalog/retail/P-1").await;
    assert_forbidden(s, &b, "GET /catalog/retail/P-1 is denied");
    assert_eq!(header(&h, "x-customer-id"), None);
    assert_eq!(header(&h, "legalentityid"), None);
}

#[tokio::test]
async fn caddy_style_request_without_a_legal_entity_gets_no_entity_header() {
    let app = example_app().await;
    let t = format!("Bearer {}", app.token("C-1", None));
    let (s, h, b) = call(
        &app,
        Method::GET, // Caddy always asks with GET
        "/v1/forward-auth",
        &[
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Uri", "/legal-entities/LE-2"),
            ("Authorization", &t),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(header(&h, "x-customer-id"), Some("C-1"));
    assert_eq!(header(&h, "legalentityid"), None);
    assert_eq!(b["policies"], json!(["select-assigned-entity"]));
    assert_eq!(b["legal_entity_id"], Value::Null);
    // The forwarded method counts, not the sub-request's: no POST route for this path.
    let (s, _, b) = call(
        &app,
        Method::GET,
        "/v1/forward-auth",
        &[
            ("X-Forwarded-Method", "POST"),
            ("X-Forwarded-Uri", "/legal-entities/LE-2"),
            ("Authorization", &t),
        ],
    )
    .await;
    assert_forbidden(
        s,
        &b,
        "no forward-auth route matches POST /legal-entities/LE-2",
    );
}

#[tokio::test]
async fn envoy_style_request_carries_the_original_path_and_method() {
    let app = example_app().await;
    let t = format!("Bearer {}", app.token("C-1", Some("LE-1")));
    let auth = [("Authorization", t.as_str())];
    let (s, h, b) = call(
        &app,
        Method::GET,
        "/v1/forward-auth/legal-entities/LE-2?x=1",
        &auth,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(header(&h, "legalentityid"), Some("LE-1"));
    assert_eq!(b["route"], "GET /legal-entities/{id}");
    // HEAD is answered by GET routes.
    let (s, _, _) = call(
        &app,
        Method::HEAD,
        "/v1/forward-auth/legal-entities/LE-2",
        &auth,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    // The request's own method is the original one: POST .../cancel is routed, and denied (no
    // shipped policy permits cancelOrder).
    let (s, _, b) = call(
        &app,
        Method::POST,
        "/v1/forward-auth/orders/O-1/cancel",
        &auth,
    )
    .await;
    assert_forbidden(
        s,
        &b,
        "POST /orders/O-1/cancel is denied (cancelOrder on Order::\"O-1\")",
    );
    // C-1 is not assigned to LE-3. Headers a client might have sent are ignored on this form.
    let (s, _, b) = call(
        &app,
        Method::GET,
        "/v1/forward-auth/legal-entities/LE-3",
        &[
            ("Authorization", &t),
            ("X-Original-Method", "GET"),
            ("X-Original-URI", "/legal-entities/LE-1"),
            ("X-Forwarded-Uri", "/legal-entities/LE-1"),
        ],
    )
    .await;
    assert_forbidden(s, &b, "GET /legal-entities/LE-3 is denied");
    // The original root path.
    let (s, _, b) = call(&app, Method::GET, "/v1/forward-auth/", &auth).await;
    assert_forbidden(s, &b, "no forward-auth route matches GET /");
}

#[tokio::test]
async fn no_token_or_a_bad_one_is_401_with_www_authenticate() {
    let app = example_app().await;
    let (s, h, b) = nginx(&app, None, "GET", "/legal-entities/LE-1").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    assert_eq!(header(&h, "www-authenticate"), Some("Bearer"));
    assert_eq!(b["error"]["code"], "missing_token");
    let (s, h, b) = nginx(&app, Some("not.a.jwt"), "GET", "/legal-entities/LE-1").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    assert!(header(&h, "www-authenticate")
        .unwrap()
        .starts_with("Bearer error=\"invalid_token\""));
    assert_eq!(b["error"]["code"], "invalid_token");
    // Checked before routing: an unmatched path without a token is still 401.
    let (s, _, _) = nginx(&app, None, "GET", "/nowhere").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_token_may_come_from_the_configured_cookie() {
    let app = TestApp::spawn_with(|t| {
        example_routes(t);
        set(t, "cookie", "access_token".into());
    })
    .await;
    let jwt = app.token("C-1", Some("LE-1"));
    let uri = [
        ("X-Original-Method", "GET"),
        ("X-Original-URI", "/legal-entities/LE-1"),
    ];
    let cookie = format!("theme=dark; access_token={jwt}; other=1");
    let mut h = uri.to_vec();
    h.push(("Cookie", &cookie));
    let (s, hd, b) = call(&app, Method::GET, "/v1/forward-auth", &h).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(header(&hd, "x-customer-id"), Some("C-1"));
    // A bearer header wins over the cookie, even a bad one: no silent fallback.
    h.push(("Authorization", "Bearer not.a.jwt"));
    let (s, _, b) = call(&app, Method::GET, "/v1/forward-auth", &h).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(b["error"]["code"], "invalid_token");
    // Another cookie name is not a token.
    let mut h = uri.to_vec();
    let wrong = format!("token={jwt}");
    h.push(("Cookie", &wrong));
    let (s, _, _) = call(&app, Method::GET, "/v1/forward-auth", &h).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Without `forward_auth.cookie` the cookie is never read.
    let plain = example_app().await;
    let mut h = uri.to_vec();
    let cookie = format!("access_token={}", plain.token("C-1", Some("LE-1")));
    h.push(("Cookie", &cookie));
    let (s, _, _) = call(&plain, Method::GET, "/v1/forward-auth", &h).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn unmatched_requests_are_denied_by_default_and_allowed_when_configured() {
    let app = example_app().await;
    let t = app.token("C-1", Some("LE-1"));
    let (s, _, b) = nginx(&app, Some(&t), "GET", "/admin/users?all=1").await;
    assert_forbidden(s, &b, "no forward-auth route matches GET /admin/users");

    let open = TestApp::spawn_with(|t| {
        example_routes(t);
        set(t, "unmatched", "allow".into());
    })
    .await;
    let t = open.token("C-1", Some("LE-1"));
    let (s, h, b) = nginx(&open, Some(&t), "GET", "/admin/users").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(header(&h, "x-customer-id"), Some("C-1"));
    assert_eq!(header(&h, "legalentityid"), Some("LE-1"));
    assert_eq!(b["route"], Value::Null);
    // A matched route is still decided by the policies.
    let (s, _, _) = nginx(&open, Some(&t), "GET", "/legal-entities/LE-3").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // And a token is still required.
    let (s, _, _) = nginx(&open, None, "GET", "/admin/users").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

/// `legate_decisions_total{action="unmatched", decision="allow"}` on the app's `/metrics`.
async fn unmatched_allows_counted(app: &TestApp) -> f64 {
    let text = process::metrics(&app.base).await;
    text.lines()
        .filter(|l| l.starts_with("legate_decisions_total{"))
        .filter(|l| l.contains("action=\"unmatched\"") && l.contains("decision=\"allow\""))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn an_unmatched_allow_is_a_recorded_decision() {
    let log = tempfile::tempdir().unwrap();
    let path = log.path().join("decisions.jsonl");
    let p = path.display().to_string();
    let app = TestApp::spawn_with(|t| {
        example_routes(t);
        set(t, "unmatched", "allow".into());
        t["log"]["decisions"] = p.into();
    })
    .await;
    let before = unmatched_allows_counted(&app).await;
    let t = app.token("C-1", Some("LE-1"));
    let (s, _, b) = nginx(&app, Some(&t), "GET", "/admin/audit-me?x=1").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(unmatched_allows_counted(&app).await >= before + 1.0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let line = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["resource"]["id"] == "GET /admin/audit-me");
        if let Some(l) = line {
            assert_eq!(l["action"], "unmatched", "{l}");
            assert_eq!(l["resource"]["type"], "Request", "{l}");
            assert_eq!(l["decision"], "allow", "{l}");
            assert_eq!(l["customer"], "C-1", "{l}");
            assert_eq!(l["legal_entity"], "LE-1", "{l}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no decision log line for the unmatched allow in {text:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn paths_that_could_be_read_two_ways_are_refused_even_when_unmatched_is_allowed() {
    let app = TestApp::spawn_with(|t| {
        example_routes(t);
        set(t, "unmatched", "allow".into());
    })
    .await;
    let t = app.token("C-1", Some("LE-1"));
    for (uri, says) in [
        (
            "/catalog/wholesale/../../legal-entities/LE-3",
            "`.` or `..`",
        ),
        ("/catalog/wholesale/%2e%2e/retail/P-1", "`.` or `..`"),
        ("//legal-entities/LE-3", "empty segment"),
        ("/legal-entities/LE-1%2F..%2FLE-3", "encoded `/`"),
        ("/legal-entities;x=1/LE-3", "`;`"),
        ("/legal-entities/%E0%A4", "percent-encoding"),
        ("/legal-entities/LE-1%00", "control character"),
        ("http://shop/legal-entities/LE-1", "must be a path"),
    ] {
        let (s, _, b) = nginx(&app, Some(&t), "GET", uri).await;
        assert_forbidden(s, &b, says);
    }
    // Envoy form: the same rules apply to the appended path.
    let bearer = format!("Bearer {t}");
    let (s, _, b) = call(
        &app,
        Method::GET,
        "/v1/forward-auth//legal-entities/LE-3",
        &[("Authorization", &bearer)],
    )
    .await;
    assert_forbidden(s, &b, "empty segment");
}

#[tokio::test]
async fn a_proxy_that_does_not_say_what_the_original_request_was_gets_400() {
    let app = example_app().await;
    let bearer = format!("Bearer {}", app.token("C-1", Some("LE-1")));
    let cases: [&[(&str, &str)]; 4] = [
        &[],
        &[("X-Original-URI", "/legal-entities/LE-1")],
        // nginx's pair plus a different Caddy pair: one of them came from the client.
        &[
            ("X-Original-Method", "GET"),
            ("X-Original-URI", "/legal-entities/LE-3"),
            ("X-Forwarded-Uri", "/legal-entities/LE-1"),
        ],
        &[("X-Original-Method", "G E T"), ("X-Original-URI", "/x")],
    ];
    for extra in cases {
        let mut h = vec![("Authorization", bearer.as_str())];
        h.extend_from_slice(extra);
        let (s, _, b) = call(&app, Method::GET, "/v1/forward-auth", &h).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{extra:?}: {b}");
        assert_eq!(b["error"]["code"], "invalid_request", "{b}");
    }
    // The same value in both pairs is not a conflict.
    let (s, _, b) = call(
        &app,
        Method::GET,
        "/v1/forward-auth",
        &[
            ("Authorization", &bearer),
            ("X-Original-Method", "GET"),
            ("X-Forwarded-Method", "GET"),
            ("X-Original-URI", "/legal-entities/LE-1"),
            ("X-Forwarded-Uri", "/legal-entities/LE-1"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

#[tokio::test]
async fn orders_are_decided_with_the_entity_data() {
    let app = example_app().await;
    // The service's orders, as the entity source would know them.
    let file = app.policy_dir().join("entities.json");
    let mut entities: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    entities.push(json!({"uid": {"type": "Shop::Order", "id": "O-1"},
        "attrs": {"owner": {"__entity": {"type": "Shop::Customer", "id": "C-2"}},
                  "legalEntity": {"__entity": {"type": "Shop::LegalEntity", "id": "LE-1"}}},
        "parents": []}));
    std::fs::write(&file, serde_json::to_string(&entities).unwrap()).unwrap();
    app.state.policies.reload().unwrap();

    let le1 = app.token("C-1", Some("LE-1"));
    let (s, _, b) = nginx(&app, Some(&le1), "GET", "/orders/O-1").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["policies"], json!(["entity-orders"]));
    let le2 = app.token("C-1", Some("LE-2"));
    let (s, _, b) = nginx(&app, Some(&le2), "GET", "/orders/O-1").await;
    assert_forbidden(s, &b, "GET /orders/O-1 is denied");
    let owner = app.token("C-2", None);
    let (s, _, b) = nginx(&app, Some(&owner), "GET", "/orders/O-1").await;
    assert_eq!(b["policies"], json!(["own-orders"]), "{s}");
    // An order the entity data does not know has no owner: denied.
    let (s, _, _) = nginx(&app, Some(&le1), "GET", "/orders/O-404").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_route_that_needs_the_legal_entity_denies_a_token_without_one() {
    let app = TestApp::spawn_with(|t| {
        example_routes(t);
        let routes = t.get_mut("routes").unwrap().as_array_mut().unwrap();
        routes.insert(
            0,
            toml::Value::Table(
                r#"method = "GET"
                   path = "/my-entity"
                   action = "selectLegalEntity"
                   resource = { type = "LegalEntity", id = "{legal_entity}" }"#
                    .parse()
                    .unwrap(),
            ),
        );
    })
    .await;
    let (s, _, b) = nginx(
        &app,
        Some(&app.token("C-1", Some("LE-2"))),
        "GET",
        "/my-entity",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _, b) = nginx(&app, Some(&app.token("C-1", None)), "GET", "/my-entity").await;
    assert_forbidden(s, &b, "needs the selected legal entity");
}

#[tokio::test]
async fn header_names_are_configurable() {
    let app = TestApp::spawn_with(|t| {
        example_routes(t);
        set(t, "customer_header", "X-Auth-Customer".into());
        set(t, "legal_entity_header", "X-Auth-Legal-Entity".into());
    })
    .await;
    let (s, h, _) = nginx(
        &app,
        Some(&app.token("C-1", Some("LE-1"))),
        "GET",
        "/legal-entities/LE-2",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(header(&h, "x-auth-customer"), Some("C-1"));
    assert_eq!(header(&h, "x-auth-legal-entity"), Some("LE-1"));
    assert_eq!(header(&h, "legalentityid"), None);
}

#[tokio::test]
async fn a_route_naming_what_the_schema_lacks_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    common::copy_policies(&dir.path().join("policies"));
    let keys = common::Keys::generate();
    std::fs::write(dir.path().join("idp-jwks.json"), keys.jwks().to_string()).unwrap();
    let mut table = common::base_config(dir.path(), "127.0.0.1:1".parse().unwrap());
    table["issue"].as_table_mut().unwrap().remove("keys");
    table.insert(
        "routes".into(),
        toml::Value::Array(vec![toml::Value::Table(
            r#"method = "GET"
               path = "/x/{id}"
               action = "shipOrder"
               resource = { type = "Parcel", id = "{id}" }"#
                .parse()
                .unwrap(),
        )]),
    );
    let config = legate::testing::config::Config::parse(&table.to_string(), Vec::new()).unwrap();
    let err = legate::testing::app::build(config)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[[routes]] #1 (GET /x/{id}): the schema has no action \"shipOrder\""),
        "{err}"
    );
    assert!(
        err.contains("the schema has no entity type \"Parcel\""),
        "{err}"
    );
}

/// The route table is compiled once, at start-up: a malformed route is a start-up problem (the
/// config parser only reads routes), listed with every other one.
#[tokio::test]
async fn a_malformed_route_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    common::copy_policies(&dir.path().join("policies"));
    let keys = common::Keys::generate();
    std::fs::write(dir.path().join("idp-jwks.json"), keys.jwks().to_string()).unwrap();
    let mut table = common::base_config(dir.path(), "127.0.0.1:1".parse().unwrap());
    table["issue"].as_table_mut().unwrap().remove("keys");
    table.insert(
        "routes".into(),
        toml::Value::Array(vec![toml::Value::Table(
            r#"method = "GET"
               path = "orders"
               action = "viewOrder"
               resource = { type = "Order", id = "{order}" }"#
                .parse()
                .unwrap(),
        )]),
    );
    let config = legate::testing::config::Config::parse(&table.to_string(), Vec::new()).unwrap();
    let err = legate::testing::app::build(config)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("[[routes]] #1 (GET orders): `path`"), "{err}");
}

#[test]
fn the_envoy_example_asks_the_shape_tested_above_and_strips_client_copies() {
    // Envoy is not in Debian, so examples/envoy.yaml is not run; at least keep it in step with
    // the endpoint and the header names it is documented with.
    let yaml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/envoy.yaml"))
        .unwrap();
    for want in [
        "path_prefix: /v1/forward-auth",
        "failure_mode_allow: false",
        "uri: http://127.0.0.1:8181",
        "- { exact: x-customer-id, ignore_case: true }",
        "- { exact: legalentityid, ignore_case: true }",
        "- remove: x-customer-id",
        "- remove: legalentityid",
    ] {
        assert!(yaml.contains(want), "examples/envoy.yaml lacks {want:?}");
    }
    // The header mutation must run before ext_authz, or it would delete legate's headers.
    assert!(
        yaml.find("envoy.filters.http.header_mutation").unwrap()
            < yaml.find("envoy.filters.http.ext_authz").unwrap()
    );
}
