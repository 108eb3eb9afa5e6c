//! Shared test harness: a legate served on a real socket (`127.0.0.1:0`) with a temp copy of the
//! shipped policies, a pretend identity provider with freshly generated keys, and helpers to mint
//! tokens and call the API.

pub(crate) mod configmap;
pub(crate) mod process;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use aws_lc_rs::{
    encoding::AsDer,
    rsa::{KeyPair as RsaKeyPair, KeySize},
    signature::{EcdsaKeyPair, Ed25519KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING},
};
use legate::testing::{app, config::Config, issue::SigningKey};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// The identity provider every test app trusts.
pub(crate) const IDP: &str = "https://idp.test";
/// The audience it issues for.
pub(crate) const AUD: &str = "storefront";

/// Fresh keys of every supported kind.
#[derive(Clone)]
pub(crate) struct Keys {
    pub(crate) rsa: SigningKey,
    pub(crate) ec: SigningKey,
    pub(crate) ed: SigningKey,
}

fn pem_of(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("PRIVATE KEY", der.to_vec()))
}

impl Keys {
    pub(crate) fn generate() -> Self {
        let rsa = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let rsa_pem = pem_of(
            AsDer::<aws_lc_rs::encoding::Pkcs8V1Der<'_>>::as_der(&rsa)
                .unwrap()
                .as_ref(),
        );
        let ec = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let ec_pem = pem_of(ec.to_pkcs8v1().unwrap().as_ref());
        let ed = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
        let ed_pem = pem_of(ed.as_ref());
        Self {
            rsa: SigningKey::from_pem(rsa_pem.as_bytes()).expect("rsa"),
            ec: SigningKey::from_pem(ec_pem.as_bytes()).expect("ec"),
            ed: SigningKey::from_pem(ed_pem.as_bytes()).expect("ed"),
        }
    }

    /// The public JWKS of all three keys.
    pub(crate) fn jwks(&self) -> Value {
        json!({"keys": [self.rsa.jwk, self.ec.jwk, self.ed.jwk]})
    }
}

/// Seconds since the epoch.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Signs `claims` with `key` (header: `alg` of the key, `kid` = its thumbprint, `typ` JWT).
pub(crate) fn sign(key: &SigningKey, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

/// Standard claims from the test IdP for `sub`, valid for an hour.
pub(crate) fn claims(sub: &str, legal_entity: Option<&str>) -> Value {
    let now = now();
    let mut c = json!({"iss": IDP, "aud": AUD, "sub": sub, "iat": now, "nbf": now, "exp": now + 3600,
                       "jti": uuid_like()});
    if let Some(le) = legal_entity {
        c["legalEntityId"] = json!(le);
    }
    c
}

fn uuid_like() -> String {
    format!("{:x}", rand_u64())
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    u64::from_le_bytes(b)
}

/// A loopback port that was free a moment ago (for processes that must be told their port).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A legate serving on a real socket, with its own temp directory.
pub(crate) struct TestApp {
    pub(crate) base: String,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) keys: Keys,
    pub(crate) client: reqwest::Client,
    pub(crate) state: app::AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Copies the shipped `policies/` (top level only) into `to`.
pub(crate) fn copy_policies(to: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// The config every test app starts from; `public_url` and paths filled in.
pub(crate) fn base_config(dir: &Path, addr: SocketAddr) -> toml::Table {
    let d = dir.display();
    format!(
        r#"
listen = "{addr}"
public_url = "http://{addr}"
[policies]
dir = "{d}/policies"
check_interval_secs = 1
debounce_ms = 50
[[trust]]
issuer = "{IDP}"
audience = ["{AUD}"]
jwks = "{d}/idp-jwks.json"
algorithms = ["RS256", "ES256", "EdDSA"]
[issue]
keys = ["{d}/legate.pem"]
[log]
decisions = "off"
"#
    )
    .parse()
    .unwrap()
}

impl TestApp {
    /// The default app.
    pub(crate) async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// An app whose config `edit` may change first.
    pub(crate) async fn spawn_with(edit: impl FnOnce(&mut toml::Table)) -> Self {
        Self::spawn_with_clock(
            edit,
            std::sync::Arc::new(legate::testing::issue::SystemClock),
        )
        .await
    }

    /// An app whose decision log goes to a file of its own (its path, and the directory that holds
    /// it for as long as the test keeps it).
    pub(crate) async fn spawn_logging_decisions() -> (Self, tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decisions.jsonl");
        let p = path.display().to_string();
        let app = Self::spawn_with(|t| {
            t["log"]["decisions"] = p.into();
        })
        .await;
        (app, dir, path)
    }

    /// An app whose config `edit` may change first, telling time by `clock`.
    pub(crate) async fn spawn_with_clock(
        edit: impl FnOnce(&mut toml::Table),
        clock: std::sync::Arc<dyn legate::testing::issue::Clock>,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::generate();
        copy_policies(&dir.path().join("policies"));
        std::fs::write(dir.path().join("idp-jwks.json"), keys.jwks().to_string()).unwrap();
        std::fs::write(dir.path().join("legate.pem"), pem_of_ed_for_legate()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut table = base_config(dir.path(), addr);
        edit(&mut table);
        let config = Config::parse(&table.to_string(), Vec::new()).expect("test config is valid");
        let state = app::build_with_clock(config, clock)
            .await
            .expect("test app builds");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app::serve(listener, state.clone(), async move {
            let _ = rx.await;
        }));
        Self {
            base: format!("http://{addr}"),
            dir,
            keys,
            client: reqwest::Client::new(),
            state,
            stop: Some(tx),
            server: Some(server),
        }
    }

    /// Where the app's policies live.
    pub(crate) fn policy_dir(&self) -> PathBuf {
        self.dir.path().join("policies")
    }

    /// An RS256 token from the test IdP.
    pub(crate) fn token(&self, sub: &str, legal_entity: Option<&str>) -> String {
        sign(&self.keys.rsa, &claims(sub, legal_entity))
    }

    /// `POST path` with a bearer token and a JSON body; returns status, headers and JSON body.
    pub(crate) async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self.client.post(format!("{}{path}", self.base)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        (status, headers, body)
    }

    /// `GET path` with an optional bearer token.
    pub(crate) async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.json::<Value>().await.unwrap_or(Value::Null))
    }

    /// `/v1/authorize` for `token`; returns status and body.
    pub(crate) async fn authorize(&self, token: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, b) = self.post("/v1/authorize", Some(token), &body).await;
        (s, b)
    }

    /// Stops the server and waits for it.
    pub(crate) async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(s) = self.server.take() {
            let _ = s.await;
        }
    }
}

fn pem_of_ed_for_legate() -> String {
    let ed = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
    pem_of(ed.as_ref())
}

/// An order check body.
pub(crate) fn order(id: &str, owner: &str, legal_entity: Option<&str>) -> Value {
    let mut attrs = json!({"owner": {"type": "Customer", "id": owner}});
    if let Some(le) = legal_entity {
        attrs["legalEntity"] = json!({"type": "LegalEntity", "id": le});
    }
    json!({"action": "viewOrder", "resource": {"type": "Order", "id": id, "attrs": attrs}, "context": {}})
}

/// A product check body.
pub(crate) fn product(id: &str, segments: &[&str]) -> Value {
    let segs: Vec<Value> = segments
        .iter()
        .map(|s| json!({"type": "Segment", "id": s}))
        .collect();
    json!({"action": "viewProduct", "resource": {"type": "Product", "id": id, "attrs": {"segments": segs}}})
}

/// Waits (bounded, 5 s) until the decision log at `path` holds at least `n` lines, and returns
/// them parsed.
pub(crate) async fn decision_log_lines(path: &Path, n: usize) -> Vec<Value> {
    for _ in 0..100 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect();
        if lines.len() >= n {
            return lines;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("fewer than {n} decision log lines in {}", path.display());
}
