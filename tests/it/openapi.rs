//! The OpenAPI document stays in sync with the router: it is served at `/openapi.json`, it holds
//! together (every `$ref` resolves, every operation has an id and responses), every documented
//! path and method is routed, i.e. is not answered by our `not_found` / `method_not_allowed`, and
//! every routed endpoint (`http::ENDPOINTS`, the router's only source) is documented.

use crate::common::{self, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::Value;

fn document() -> Value {
    serde_json::from_str(legate::testing::http::ops::OPENAPI).expect("openapi.json is JSON")
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
    let (s, mut served) = app.get("/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    // `servers` is the one member built at serve time: the configured public_url.
    assert_eq!(served["servers"][0]["url"], app.base.as_str());
    let mut shipped = document();
    shipped["servers"] = Value::Null;
    served["servers"] = Value::Null;
    assert_eq!(served, shipped);
    assert!(served["openapi"].as_str().unwrap().starts_with("3."));
    app.stop().await;
}

#[tokio::test]
async fn the_document_is_rendered_once_not_per_request() {
    let app = TestApp::spawn().await;
    assert!(
        app.state.openapi.get().is_none(),
        "nothing rendered before a request"
    );
    let url = format!("{}/openapi.json", app.base);
    let first = app.client.get(&url).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()["content-type"], "application/json");
    let first = first.bytes().await.unwrap();
    let kept = app
        .state
        .openapi
        .get()
        .expect("kept after the first request");
    assert_eq!(kept.as_ref().unwrap(), &first);
    let second = app
        .client
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(first, second);
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

/// The router is built from `http::ENDPOINTS` only; every entry, with each of its methods, must be
/// an operation of the document. (The other direction is `every_documented_operation_is_routed`.)
#[test]
fn every_routed_endpoint_is_documented() {
    let doc = document();
    let documented = operations(&doc);
    let mut missing = Vec::new();
    for e in legate::testing::http::ENDPOINTS {
        for m in e.methods {
            if !documented.contains(&(e.doc_path.to_string(), m.to_string())) {
                missing.push(format!(
                    "{} {} (routed as {})",
                    m.to_uppercase(),
                    e.doc_path,
                    e.path
                ));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "routed but not documented in src/http/openapi.json:\n  {}",
        missing.join("\n  ")
    );
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

/// Checks `v` against `schema`, resolving `$ref`s in `doc`; the subset of JSON Schema the document
/// uses: `type` (one or several), `required`, `properties`, `additionalProperties: false`, `items`,
/// `enum`, `allOf`, `oneOf`. Returns every mismatch as `path: what`.
fn conforms(doc: &Value, schema: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
    if let Some(r) = schema["$ref"].as_str() {
        let target = doc
            .pointer(r.trim_start_matches('#'))
            .expect("ref resolves");
        return conforms(doc, target, v, at, out);
    }
    if let Some(all) = schema["allOf"].as_array() {
        all.iter().for_each(|s| conforms(doc, s, v, at, out));
    }
    if let Some(any) = schema["oneOf"].as_array() {
        let fits = any
            .iter()
            .filter(|s| {
                let mut o = Vec::new();
                conforms(doc, s, v, at, &mut o);
                o.is_empty()
            })
            .count();
        if fits != 1 {
            out.push(format!("{at}: fits {fits} of the oneOf schemas: {v}"));
        }
    }
    let type_name = match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let number_ok = type_name == "integer" && types.contains(&"number");
    if !types.is_empty() && !types.contains(&type_name) && !number_ok {
        out.push(format!("{at}: a {type_name}, documented as {types:?}"));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(v) {
            out.push(format!("{at}: {v} is not one of {allowed:?}"));
        }
    }
    if let Value::Object(o) = v {
        for key in schema["required"].as_array().into_iter().flatten() {
            if !o.contains_key(key.as_str().unwrap()) {
                out.push(format!(
                    "{at}: `{key}` is documented as required but missing"
                ));
            }
        }
        let props = schema["properties"].as_object();
        for (k, val) in o {
            match props.and_then(|p| p.get(k)) {
                Some(s) => conforms(doc, s, val, &format!("{at}.{k}"), out),
                None if schema["additionalProperties"] == Value::Bool(false) => {
                    out.push(format!("{at}: `{k}` is not documented"))
                }
                None => {}
            }
        }
    }
    if let (Value::Array(items), Some(s)) = (v, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            conforms(doc, s, item, &format!("{at}[{i}]"), out);
        }
    }
}

/// The documented JSON schema of `method path`'s answer with `status`.
fn documented<'a>(doc: &'a Value, path: &str, method: &str, status: u16) -> &'a Value {
    let mut r = &doc["paths"][path][method]["responses"][status.to_string()];
    if let Some(reference) = r["$ref"].as_str() {
        r = doc.pointer(reference.trim_start_matches('#')).unwrap();
    }
    let content = &r["content"];
    let schema = &content["application/json"]["schema"];
    assert!(
        !schema.is_null(),
        "{method} {path}: no JSON schema documented for {status}"
    );
    schema
}

#[tokio::test]
async fn real_answers_match_their_documented_schemas() {
    let app = TestApp::spawn().await;
    let doc = document();
    let idp = app.token("C-1", None);
    let mut mismatches = Vec::new();
    let mut check = |path: &str, method: &str, status: StatusCode, body: &Value| {
        let schema = documented(&doc, path, method, status.as_u16());
        conforms(
            &doc,
            schema,
            body,
            &format!("{method} {path} {status}"),
            &mut mismatches,
        );
    };

    let allow = common::order("O-1", "C-1", None);
    let (s, b) = app.authorize(&idp, allow.clone()).await;
    assert_eq!(s, StatusCode::OK);
    check("/v1/authorize", "post", s, &b);
    let mut unknown = allow.clone();
    unknown["action"] = "eatOrder".into();
    let (s, b) = app.authorize(&idp, unknown.clone()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    check("/v1/authorize", "post", s, &b);
    let (s, b) = app.authorize("no.such.token", allow.clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    check("/v1/authorize", "post", s, &b);
    let (s, _, b) = app
        .post(
            "/v1/authorize/batch",
            Some(&idp),
            &serde_json::json!({"checks": [allow, unknown]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    check("/v1/authorize/batch", "post", s, &b);

    let (s, b) = app.get("/v1/me", Some(&idp)).await;
    assert_eq!(s, StatusCode::OK);
    check("/v1/me", "get", s, &b);

    let select = |le: &str| serde_json::json!({ "legal_entity_id": le });
    let (s, _, tokens) = app
        .post("/v1/token/refresh", Some(&idp), &select("LE-1"))
        .await;
    assert_eq!(s, StatusCode::OK, "{tokens}");
    check("/v1/token/refresh", "post", s, &tokens);
    let (s, _, b) = app
        .post("/v1/token/refresh", Some(&idp), &select("LE-3"))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    check("/v1/token/refresh", "post", s, &b);
    let bogus = serde_json::json!({"refresh_token": "a.b.c", "legal_entity_id": "LE-2"});
    let (s, _, b) = app.post("/v1/token/refresh", None, &bogus).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    check("/v1/token/refresh", "post", s, &b);

    let form = |pairs: &[(&str, &str)]| {
        let client = app.client.clone();
        let url = format!("{}/oauth2/token", app.base);
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        async move {
            let resp = client.post(url).form(&pairs).send().await.unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    };
    let rt = tokens["refresh_token"].as_str().unwrap();
    let (s, b) = form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", rt),
        ("legal_entity_id", "LE-2"),
    ])
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    check("/oauth2/token", "post", s, &b);
    let (s, b) = form(&[("grant_type", "password")]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    check("/oauth2/token", "post", s, &b);

    let (s, b) = app.get("/v1/forward-auth", Some(&idp)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "no original request named: {b}");
    check("/v1/forward-auth", "get", s, &b);
    let proxied = |token: Option<&str>| {
        let mut req = app
            .client
            .get(format!("{}/v1/forward-auth", app.base))
            .header("X-Original-Method", "GET")
            .header("X-Original-URI", "/orders/O-1");
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move {
            let resp = req.send().await.unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    };
    let (s, b) = proxied(None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    check("/v1/forward-auth", "get", s, &b);
    let (s, b) = proxied(Some(&idp)).await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "no [[routes]]: unmatched is denied"
    );
    check("/v1/forward-auth", "get", s, &b);

    app.state.policies.reload().unwrap();
    for path in [
        "/.well-known/jwks.json",
        "/.well-known/openid-configuration",
        "/healthz",
        "/readyz",
        "/v1/policies",
    ] {
        let (s, b) = app.get(path, None).await;
        assert_eq!(s, StatusCode::OK, "{path}");
        check(path, "get", s, &b);
    }
    assert!(
        mismatches.is_empty(),
        "answers that do not match src/http/openapi.json:\n  {}",
        mismatches.join("\n  ")
    );
    app.stop().await;
}

/// The fields a `deny_unknown_fields` body type accepts, read from serde's refusal of an unknown
/// one ("unknown field `…`, expected one of `a`, `b`").
fn accepted_fields<T: serde::de::DeserializeOwned>() -> std::collections::BTreeSet<String> {
    let err = serde_json::from_str::<T>(r#"{"__probe__": 0}"#)
        .err()
        .expect("an unknown field is refused");
    let msg = err.to_string();
    let expected = msg
        .split_once("expected")
        .unwrap_or_else(|| panic!("{msg}"))
        .1;
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn documented_properties(doc: &Value, schema: &str) -> std::collections::BTreeSet<String> {
    let s = &doc["components"]["schemas"][schema];
    assert_eq!(
        s["additionalProperties"],
        Value::Bool(false),
        "{schema}: the body refuses unknown fields, so must the document"
    );
    s["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

/// A request body's documented properties are exactly the fields its type accepts, so a field
/// added to (or renamed in) a body type without the document fails here.
#[test]
fn request_schemas_name_exactly_the_fields_the_bodies_accept() {
    let doc = document();
    let pairs = [
        (
            "Check",
            accepted_fields::<legate::testing::request::Check>(),
        ),
        (
            "Resource",
            accepted_fields::<legate::testing::request::ResourceRef>(),
        ),
        (
            "BatchBody",
            accepted_fields::<legate::testing::http::authorize::BatchBody>(),
        ),
        (
            "RefreshBody",
            accepted_fields::<legate::testing::http::token::RefreshBody>(),
        ),
    ];
    for (schema, fields) in pairs {
        assert!(!fields.is_empty(), "{schema}");
        assert_eq!(documented_properties(&doc, schema), fields, "{schema}");
    }
}
