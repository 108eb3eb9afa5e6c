//! Refused tokens, with the real binary over a real socket (findings 9 and 6 of issue 11's attack
//! run).
//!
//! Finding 9: a token whose header JSON is malformed (a non-string `kid`, a repeated `alg`) is
//! refused as *malformed*, not as "algorithm RS256 is not allowed", on every path that verifies a
//! presented access token (`/v1/authorize`, the bearer form of `/v1/token/refresh`, the
//! `subject_token` of an `/oauth2/token` exchange); and each refusal is counted in
//! `legate_token_rejections_total` under the same `reason` label, whichever path saw it.
//!
//! Finding 6: a token of legate's own issuer without a session (`sid`) would escape the revocation
//! check, so it is refused; `legate token` gives the legate tokens it mints a session.

use std::path::Path;

use crate::common::{
    self, now,
    process::{self, LegateProcess, ServeDir},
    AUD,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine as _};
use legate::testing::issue::SigningKey;
use reqwest::StatusCode;
use serde_json::{json, Value};

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// A `legate serve` with the shipped policies, an identity provider of fresh keys, memory store.
struct Server {
    dir: ServeDir,
    legate: LegateProcess,
    client: reqwest::Client,
}

impl Server {
    fn start() -> Self {
        let dir = ServeDir::new();
        Self {
            legate: dir.start(|_| {}),
            dir,
            client: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.legate.base())
    }

    /// A well-signed identity-provider token whose header is replaced by `header` (raw JSON
    /// text, so that a repeated member survives).
    fn with_header(&self, header: &str) -> String {
        let good = self.dir.idp_token("C-1", Some("LE-1"));
        let (_, rest) = good.split_once('.').unwrap();
        format!("{}.{rest}", B64.encode(header))
    }

    fn config(&self) -> std::path::PathBuf {
        self.dir.dir.path().join("legate.toml")
    }

    /// `legate_token_rejections_total{reason="<reason>"}`, 0 when not exported yet.
    async fn rejections(&self, reason: &str) -> u64 {
        let text = process::metrics(&self.legate.base()).await;
        let series = format!("legate_token_rejections_total{{reason=\"{reason}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .map_or(0, |v| v.trim().parse().unwrap())
    }

    /// `/v1/authorize` with `token` as bearer: (status, error message).
    async fn authorize(&self, token: &str) -> (StatusCode, String) {
        self.authorize_any(token)
            .await
            .unwrap_or_else(|b| panic!("allowed: {b}"))
    }

    /// `/v1/authorize` with `token`: `Ok((status, message))` if refused, `Err(body)` if decided.
    async fn authorize_any(&self, token: &str) -> Result<(StatusCode, String), Value> {
        let r = self
            .client
            .post(self.url("/v1/authorize"))
            .bearer_auth(token)
            .json(&common::order("O-1", "C-1", Some("LE-1")))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        if status.is_success() {
            return Err(body);
        }
        assert_eq!(body["error"]["code"], "invalid_token", "{body}");
        Ok((status, body["error"]["message"].as_str().unwrap().into()))
    }

    /// `/v1/token/refresh` with `token` as bearer: (status, error message).
    async fn refresh(&self, token: &str) -> (StatusCode, String) {
        let r = self
            .client
            .post(self.url("/v1/token/refresh"))
            .bearer_auth(token)
            .json(&json!({"legal_entity_id": "LE-1"}))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_token", "{body}");
        assert!(body.get("access_token").is_none(), "{body}");
        (status, body["error"]["message"].as_str().unwrap().into())
    }

    /// An RFC 8693 exchange with `token` as `subject_token`: (status, `error_description`).
    async fn exchange(&self, token: &str) -> (StatusCode, String) {
        let r = self
            .client
            .post(self.url("/oauth2/token"))
            .form(&[
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", token),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
            ])
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{body}");
        assert!(body.get("access_token").is_none(), "{body}");
        (status, body["error_description"].as_str().unwrap().into())
    }
}

/// The headers the attack run sent: well-formed `alg`, malformed elsewhere.
const MALFORMED_HEADERS: [(&str, &str); 3] = [
    ("a non-string kid", r#"{"alg":"RS256","typ":"JWT","kid":7}"#),
    (
        "a repeated alg",
        r#"{"alg":"RS256","alg":"RS256","typ":"JWT"}"#,
    ),
    ("a non-string typ", r#"{"alg":"RS256","typ":["JWT"]}"#),
];

fn assert_malformed(what: &str, path: &str, message: &str) {
    assert!(
        message.contains("malformed"),
        "{what} on {path}: {message:?} should say the token is malformed"
    );
    assert!(
        !message.contains("algorithm"),
        "{what} on {path}: {message:?} blames the algorithm"
    );
}

#[tokio::test]
async fn a_malformed_header_is_reported_as_malformed_on_authorize() {
    let server = Server::start();
    let before = server.rejections("malformed").await;
    for (what, header) in MALFORMED_HEADERS {
        let (status, message) = server.authorize(&server.with_header(header)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
        assert_malformed(what, "/v1/authorize", &message);
    }
    assert_eq!(server.rejections("malformed").await, before + 3);
    assert_eq!(server.rejections("algorithm").await, 0);
}

#[tokio::test]
async fn a_malformed_header_is_reported_and_counted_on_the_refresh_bearer_path() {
    let server = Server::start();
    for (what, header) in MALFORMED_HEADERS {
        let (status, message) = server.refresh(&server.with_header(header)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
        assert_malformed(what, "/v1/token/refresh", &message);
    }
    assert_eq!(server.rejections("malformed").await, 3);
    assert_eq!(server.rejections("algorithm").await, 0);
}

#[tokio::test]
async fn a_malformed_header_is_reported_and_counted_on_the_token_exchange_path() {
    let server = Server::start();
    for (what, header) in MALFORMED_HEADERS {
        let (status, message) = server.exchange(&server.with_header(header)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}");
        assert_malformed(what, "/oauth2/token", &message);
    }
    assert_eq!(server.rejections("malformed").await, 3);
    assert_eq!(server.rejections("algorithm").await, 0);
}

#[tokio::test]
async fn a_disallowed_algorithm_is_still_reported_and_counted_as_one_on_every_path() {
    let server = Server::start();
    let none = server.with_header(r#"{"alg":"none","typ":"JWT"}"#);
    let (s, m) = server.authorize(&none).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(m.contains("algorithm none is not allowed"), "{m}");
    let (s, m) = server.refresh(&none).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(m.contains("algorithm none is not allowed"), "{m}");
    let (s, m) = server.exchange(&none).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(m.contains("algorithm none is not allowed"), "{m}");
    assert_eq!(server.rejections("algorithm").await, 3);
    assert_eq!(server.rejections("malformed").await, 0);
}

/// An access token signed with legate's own key, as legate would mint one, but with `claims`.
fn legate_token(claims: &Value) -> String {
    let key = SigningKey::from_pem_file(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/keys/legate-dev.pem"),
    )
    .unwrap();
    let mut header = jsonwebtoken::Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    header.typ = Some("at+jwt".into());
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

fn legate_claims() -> Value {
    let now = now();
    json!({"iss": "http://legate.test", "aud": AUD, "sub": "C-1", "legalEntityId": "LE-1",
           "iat": now, "nbf": now, "exp": now + 600, "auth_time": now, "jti": "j-1",
           "client_id": "storefront"})
}

#[tokio::test]
async fn a_legate_access_token_without_a_session_is_refused_on_every_path() {
    let server = Server::start();
    for (what, claims) in [
        ("no sid", legate_claims()),
        ("an empty sid", {
            let mut c = legate_claims();
            c["sid"] = json!("");
            c
        }),
    ] {
        let token = legate_token(&claims);
        let (s, m) = server.authorize(&token).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{what}");
        assert!(m.contains("`sid`"), "{what}: {m}");
        let (s, m) = server.refresh(&token).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{what}");
        assert!(m.contains("`sid`"), "{what}: {m}");
        let (s, m) = server.exchange(&token).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{what}");
        assert!(m.contains("`sid`"), "{what}: {m}");
    }
    assert_eq!(server.rejections("claims").await, 6);
    // The same token from the identity provider (no `sid` there) is fine: the rule is legate's.
    let idp = server.dir.idp_token("C-1", Some("LE-1"));
    assert!(server.authorize_any(&idp).await.is_err(), "decided");
}

#[tokio::test]
async fn legate_token_gives_its_legate_tokens_a_session_which_a_memory_store_legate_refuses() {
    let server = Server::start();
    let out = common::process::succeeded(
        common::process::legate()
            .arg("--config")
            .arg(server.config())
            .args(["token", "--sub", "C-1", "--legal-entity", "LE-1"]),
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let payload: Value =
        serde_json::from_slice(&B64.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert!(
        payload["sid"].as_str().is_some_and(|s| !s.is_empty()),
        "{payload}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("store.kind = \"memory\""), "{stderr}");
    // Its session lives in no server's memory: refused, as the note says.
    let (s, _) = server.authorize(&token).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
