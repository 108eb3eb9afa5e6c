//! Input hygiene (DESIGN.md, "Input hygiene, everywhere"): what a client sends cannot forge a log
//! line, smuggle a repeated JSON member or a repeated `Authorization` header, or carry a control
//! character in an id.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine as _};
use reqwest::StatusCode;
use serde_json::json;

use crate::common::{
    process::{LegateProcess, ServeDir},
    TestApp,
};

/// Client text that would start a new log line if written as it is.
const HOSTILE: &[&str] = &[
    "x\nFORGED legate::audit: token issued",
    "x\r\nFORGED legate::audit: token issued",
    "x\rFORGED\x0bFORGED\x0cFORGED",
    "x\u{2028}FORGED\u{85}FORGED\u{2029}FORGED",
    "x\u{1b}[2K\rFORGED\0",
];

/// Sends every [`HOSTILE`] string to the three places an attack run got a line through: an unknown
/// member name on `/v1/token/refresh`, `legal_entity_id` on `/oauth2/token`, a token header's `alg`
/// on `GET /v1/me`.
async fn send_hostile_input(server: &LegateProcess, dir: &ServeDir) {
    let http = reqwest::Client::new();
    let base = server.base();
    let token = dir.idp_token("C-1", Some("LE-1"));
    for hostile in HOSTILE {
        let mut body = serde_json::Map::new();
        body.insert("legal_entity_id".into(), json!("LE-1"));
        body.insert((*hostile).into(), json!(1));
        let r = http
            .post(format!("{base}/v1/token/refresh"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);

        let r = http
            .post(format!("{base}/oauth2/token"))
            .form(&[
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:token-exchange",
                ),
                ("subject_token", &token),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:access_token",
                ),
                ("legal_entity_id", hostile),
            ])
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{}", r.status());

        let header = B64.encode(json!({"alg": hostile, "kid": "k"}).to_string());
        let forged = format!("{header}.{}.c2ln", B64.encode(b"{}"));
        let r = http
            .get(format!("{base}/v1/me"))
            .bearer_auth(forged)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
}

/// Text logs: every line starts with its timestamp, and no line is a forged one.
#[tokio::test]
async fn client_input_cannot_start_a_log_line_in_the_text_format() {
    let dir = ServeDir::new();
    let server = dir.start(|t| {
        let log = t["log"].as_table_mut().unwrap();
        log.insert("format".into(), "text".into());
        log.insert("level".into(), "debug".into());
    });
    send_hostile_input(&server, &dir).await;
    // The last request's refusal is logged before its answer is sent.
    let log = server.log();
    assert!(
        log.contains("FORGED"),
        "the hostile input is logged:\n{log}"
    );
    for line in log.lines() {
        assert!(
            line.starts_with(|c: char| c.is_ascii_digit()) && !line.contains('\r'),
            "a log line that is not an event's:\n{line:?}\n\nin\n{log}"
        );
    }
}

/// JSON logs: every line is one JSON object.
#[tokio::test]
async fn client_input_cannot_start_a_log_line_in_the_json_format() {
    let dir = ServeDir::new();
    let server = dir.start(|t| {
        let log = t["log"].as_table_mut().unwrap();
        log.insert("level".into(), "debug".into());
    });
    send_hostile_input(&server, &dir).await;
    let log = server.log();
    assert!(
        log.contains("FORGED"),
        "the hostile input is logged:\n{log}"
    );
    for line in log.lines() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| v.is_object())
                && !line.contains(['\r', '\u{2028}', '\u{2029}', '\u{85}']),
            "a log line that is not an event's:\n{line:?}\n\nin\n{log}"
        );
    }
}

/// Posts `body` as it is (JSON text) with the token of C-1 in LE-1.
async fn post_raw(app: &TestApp, path: &str, body: &str) -> (StatusCode, serde_json::Value) {
    let r = app
        .client
        .post(format!("{}{path}", app.base))
        .bearer_auth(app.token("C-1", Some("LE-1")))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or_default())
}

/// A repeated member name anywhere in a body is 400 `invalid_request`: the attack run's allows (a
/// repeated `owner`, a repeated `id` in an entity reference, a repeated `total` in a batch check's
/// context) are refused, while the same bodies without the repetition are answered.
#[tokio::test]
async fn a_repeated_json_member_at_any_depth_is_refused() {
    let app = TestApp::spawn().await;
    let owner = r#"{"action":"viewOrder","resource":{"type":"Order","id":"O-1","attrs":{"owner":{"type":"Customer","id":"C-1"}}},"context":{}}"#;
    assert_eq!(
        post_raw(&app, "/v1/authorize", owner).await.0,
        StatusCode::OK
    );
    let repeated = [
        (
            "/v1/authorize",
            r#"{"action":"viewOrder","resource":{"type":"Order","id":"O-1","attrs":{"owner":{"type":"Customer","id":"C-2"},"owner":{"type":"Customer","id":"C-1"}}},"context":{}}"#,
        ),
        (
            "/v1/authorize",
            r#"{"action":"viewOrder","resource":{"type":"Order","id":"O-1","attrs":{"owner":{"type":"Customer","id":"C-2","id":"C-1"}}},"context":{}}"#,
        ),
        (
            "/v1/authorize",
            r#"{"action":"viewOrder","action":"viewOrder","resource":{"type":"Order","id":"O-1"}}"#,
        ),
        (
            "/v1/authorize/batch",
            r#"{"checks":[{"action":"viewOrder","resource":{"type":"Order","id":"O-1","attrs":{"owner":{"type":"Customer","id":"C-1"}}},"context":{"total":999999,"total":1}}]}"#,
        ),
        (
            "/v1/plan",
            r#"{"action":"listOrders","resource":{"type":"Order"},"context":{"a":1,"a":1}}"#,
        ),
        (
            "/v1/token/refresh",
            r#"{"legal_entity_id":"LE-2","legal_entity_id":"LE-1"}"#,
        ),
    ];
    for (path, body) in repeated {
        let (status, answer) = post_raw(&app, path, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {answer}");
        assert_eq!(
            answer["error"]["code"], "invalid_request",
            "{path} {body}: {answer}"
        );
    }
    app.stop().await;
}

/// Two `Authorization` headers are 400 `invalid_request` on every endpoint, forward-auth included
/// (it used the first; an upstream reading the last saw another identity).
#[tokio::test]
async fn two_authorization_headers_are_refused_everywhere() {
    let app = TestApp::spawn().await;
    let mine = format!("Bearer {}", app.token("C-1", Some("LE-1")));
    let other = format!("Bearer {}", app.token("C-2", Some("LE-2")));
    assert_eq!(
        app.get("/v1/me", Some(&app.token("C-1", Some("LE-1"))))
            .await
            .0,
        StatusCode::OK
    );
    for (method, path) in [
        ("GET", "/v1/me"),
        ("POST", "/v1/authorize"),
        ("GET", "/v1/forward-auth/legal-entities/LE-1"),
        ("POST", "/v1/token/refresh"),
        ("POST", "/oauth2/token"),
        ("POST", "/oauth2/revoke"),
    ] {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.append("authorization", mine.parse().unwrap());
        headers.append("authorization", other.parse().unwrap());
        let r = app
            .client
            .request(method.parse().unwrap(), format!("{}{path}", app.base))
            .headers(headers)
            .header("x-original-method", "GET")
            .header("x-original-uri", "/legal-entities/LE-1")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{method} {path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(
            body.to_string().contains("invalid_request"),
            "{path}: {body}"
        );
    }
    app.stop().await;
}

/// An id with a control character, or of more than 256 characters, is refused wherever it comes in:
/// from a token (401 `invalid_token`; as a `subject_token` on `/oauth2/token` 400) — so `/v1/plan` never
/// answers params with `C-1\0x`, which a libpq text binding cuts to `C-1` — and from a body (400).
#[tokio::test]
async fn ids_with_control_characters_are_refused_at_every_boundary() {
    let app = TestApp::spawn().await;
    let plan = json!({"action": "listOrders", "resource": {"type": "Order"}});
    let good = app.token("C-1", Some("LE-1"));
    let (status, _, answer) = app.post("/v1/plan", Some(&good), &plan).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let long = "C".repeat(257);
    for (sub, le) in [
        ("C-1\u{0}x", Some("LE-1")),
        ("C-1\nx", Some("LE-1")),
        (long.as_str(), Some("LE-1")),
        ("C-1", Some("LE-1\u{0}")),
        ("C-1", Some("LE-1\r\n")),
    ] {
        let token = app.token(sub, le);
        for (path, body) in [
            ("/v1/plan", plan.clone()),
            (
                "/v1/authorize",
                crate::common::order("O-1", "C-1", Some("LE-1")),
            ),
        ] {
            let (status, _, answer) = app.post(path, Some(&token), &body).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{path} {sub:?} {le:?}: {answer}"
            );
            assert!(answer.get("params").is_none(), "{answer}");
        }
        let (status, _) = app.get("/v1/me", Some(&token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "/v1/me {sub:?} {le:?}");
        let r = app
            .client
            .post(format!("{}/oauth2/token", app.base))
            .form(&[
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:token-exchange",
                ),
                ("subject_token", &token),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:access_token",
                ),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::BAD_REQUEST,
            "/oauth2/token {sub:?} {le:?}"
        );
        let answer: serde_json::Value = r.json().await.unwrap();
        // RFC 8693 §2.2.2: a subject_token that is not valid is `invalid_request` (as for any
        // other reason a subject token is refused); nothing is issued either way.
        assert_eq!(answer["error"], "invalid_request", "{answer}");
    }
    for (path, body) in [
        (
            "/v1/authorize",
            crate::common::order("O-1\u{0}x", "C-1", Some("LE-1")),
        ),
        (
            "/v1/authorize",
            crate::common::order("O-1", "C-1\u{0}x", Some("LE-1")),
        ),
        (
            "/v1/authorize",
            crate::common::order("O-1", "C-1", Some("LE-1\n")),
        ),
        (
            "/v1/authorize",
            crate::common::order("", "C-1", Some("LE-1")),
        ),
        (
            "/v1/authorize/batch",
            json!({"checks": [crate::common::order("O-1", "C-1\u{7f}", Some("LE-1"))]}),
        ),
        ("/v1/token/refresh", json!({"legal_entity_id": "LE-1\u{0}"})),
    ] {
        let (status, _, answer) = app.post(path, Some(&good), &body).await;
        let refused = status == StatusCode::BAD_REQUEST
            || answer["results"][0]["decision"] == "deny"
                && answer["results"][0]["errors"]
                    .to_string()
                    .contains("control");
        assert!(refused, "{path} {body}: {status} {answer}");
    }
    app.stop().await;
}

/// `/oauth2/token` and `/oauth2/revoke` forms: a value that is not UTF-8 once decoded is 400 (it was
/// decoded lossily to U+FFFD), a form over `limits.body_bytes` is 413 (it was 400), and the media
/// type is matched case-insensitively.
#[tokio::test]
async fn forms_are_decoded_strictly() {
    let app = TestApp::spawn_with(|t| {
        t.insert("limits".into(), toml::Value::Table(toml::Table::new()));
        t["limits"]
            .as_table_mut()
            .unwrap()
            .insert("body_bytes".into(), 4096.into());
    })
    .await;
    let post = |path: &'static str, content_type: &'static str, body: Vec<u8>| {
        let req = app
            .client
            .post(format!("{}{path}", app.base))
            .header("content-type", content_type)
            .body(body);
        async move { req.send().await.unwrap() }
    };
    let form = "application/x-www-form-urlencoded";
    for path in ["/oauth2/revoke", "/oauth2/token"] {
        let r = post(
            path,
            form,
            b"grant_type=refresh_token&token=%FF%FE&legal_entity_id=LE-%C3".to_vec(),
        )
        .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{path}: {body}");
        let r = post(
            path,
            form,
            format!("token={}", "a".repeat(5000)).into_bytes(),
        )
        .await;
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
    }
    // Upper case media type: read as a form (the token is unknown: 200 on revoke).
    let r = post(
        "/oauth2/revoke",
        "Application/X-WWW-Form-URLEncoded; Charset=UTF-8",
        b"token=x".to_vec(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    app.stop().await;
}
