//! Real parts for the forward-auth end-to-end tests: the `legate` binary with the routes of
//! `examples/legate.toml`, a tiny upstream service that echoes the headers it received and counts
//! its hits, process guards that stop what a test started, and the scenarios every proxy must pass.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use axum::{extract::Request, routing::any, Json, Router};
use reqwest::{header::HeaderMap, StatusCode};
use serde_json::{json, Map, Value};

use crate::common::{self, free_port, Keys};

/// How long any process gets to come up.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A child process that is stopped (SIGTERM, then SIGKILL) when dropped. Its stderr goes to a file,
/// printed when the test fails.
pub(crate) struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `cmd`, with stdout and stderr sent to `log`.
    pub(crate) fn spawn(name: &'static str, mut cmd: Command, log: PathBuf) -> Self {
        let out = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self { name, child, log }
    }

    /// What the process wrote so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `addr` accepts connections; panics with the process's output if it exits first.
    pub(crate) async fn wait_for_port(&mut self, addr: SocketAddr) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited ({status}):\n{}", self.name, self.log());
            }
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not listen on {addr} within {START_TIMEOUT:?}:\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- {} output:\n{}", self.name, self.log());
        }
        // SIGTERM first, so nginx's master stops its workers; then make sure.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `path` is an executable we can run; end-to-end tests say so and stop when it is not.
pub(crate) fn installed(path: &str) -> bool {
    Path::new(path).is_file()
}

/// A tool the Python packages of `tests/requirements.txt` put into the test virtual environment
/// (`$TEST_VENV_BIN/<name>`); panics saying how to get it when it is not there.
pub(crate) fn venv_tool(name: &str) -> PathBuf {
    let hint = format!("`bash .ci/run` installs {name} from tests/requirements.txt");
    let dir = std::env::var_os("TEST_VENV_BIN")
        .unwrap_or_else(|| panic!("TEST_VENV_BIN is not set: {hint} and sets it"));
    let path = Path::new(&dir).join(name);
    assert!(
        path.is_file(),
        "{} is not installed: {hint}",
        path.display()
    );
    path
}

/// The first line `<tool> version` (or `--version`) prints, for asserting which release a test ran.
pub(crate) fn version_line(tool: &Path, arg: &str) -> String {
    let out = Command::new(tool).arg(arg).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Waits until the proxy at `base` forwards to legate: a token-less request answered 401 (by
/// legate, through the proxy) instead of the proxy's own 404 while it is still loading its routes.
/// Such a request never reaches the upstream.
pub(crate) async fn wait_until_routed(base: &str) {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let client = reqwest::Client::new();
        if let Ok(r) = client
            .get(format!("{base}/legal-entities/LE-1"))
            .send()
            .await
        {
            if r.status() == StatusCode::UNAUTHORIZED {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{base} did not route to legate within {START_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The service behind the proxy: answers every request with what it received and counts hits.
pub(crate) struct Upstream {
    pub(crate) addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Upstream {
    pub(crate) async fn start() -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let app = Router::new().fallback(any(move |req: Request| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut headers: Map<String, Value> = Map::new();
                for (k, v) in req.headers() {
                    let list = headers
                        .entry(k.as_str())
                        .or_insert_with(|| Value::Array(Vec::new()));
                    if let Value::Array(a) = list {
                        a.push(Value::String(String::from_utf8_lossy(v.as_bytes()).into()));
                    }
                }
                Json(
                    json!({"method": req.method().as_str(), "uri": req.uri().to_string(),
                            "headers": headers}),
                )
            }
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        Self {
            addr,
            hits,
            stop: Some(tx),
        }
    }

    /// Requests received so far.
    pub(crate) fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// The real `legate` binary with the test identity provider's keys, the shipped policies, and the
/// `[forward_auth]` and `[[routes]]` of `examples/legate.toml`.
pub(crate) struct Legate {
    pub(crate) addr: SocketAddr,
    _dir: tempfile::TempDir,
    keys: Keys,
    _process: Process,
}

impl Legate {
    pub(crate) async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::generate();
        common::copy_policies(&dir.path().join("policies"));
        std::fs::write(dir.path().join("idp-jwks.json"), keys.jwks().to_string()).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut table = common::base_config(dir.path(), addr);
        // No signing key file: legate makes an ephemeral one (forward-auth never issues tokens).
        table["issue"].as_table_mut().unwrap().remove("keys");
        let example: toml::Table =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/legate.toml"))
                .unwrap()
                .parse()
                .unwrap();
        for key in ["routes", "forward_auth"] {
            table.insert(key.into(), example[key].clone());
        }
        let config = dir.path().join("legate.toml");
        std::fs::write(&config, table.to_string()).unwrap();

        let mut cmd = Command::new(env!("CARGO_BIN_EXE_legate"));
        cmd.arg("--config")
            .arg(&config)
            .arg("serve")
            .args(["--listen", &addr.to_string()])
            .env("LEGATE_LOG", "warn");
        let mut process = Process::spawn("legate", cmd, dir.path().join("legate.log"));
        process.wait_for_port(addr).await;
        Self {
            addr,
            _dir: dir,
            keys,
            _process: process,
        }
    }

    /// An RS256 token from the test identity provider.
    pub(crate) fn token(&self, sub: &str, legal_entity: Option<&str>) -> String {
        common::sign(&self.keys.rsa, &common::claims(sub, legal_entity))
    }
}

/// A response from the proxy: status, headers and body (JSON or text).
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Answer {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The values of `name` the upstream received (from its echo).
    pub(crate) fn upstream_saw(&self, name: &str) -> Option<Vec<String>> {
        let v = self.json()["headers"][name.to_ascii_lowercase()].clone();
        serde_json::from_value(v).ok()
    }
}

/// `method path` through the proxy at `base`, with `headers`.
pub(crate) async fn send(base: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = client.request(method, format!("{base}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    Answer {
        status: resp.status(),
        headers: resp.headers().clone(),
        body: resp.text().await.unwrap(),
    }
}

/// What a proxy in front of legate must do, checked through the proxy at `base`. `json_errors`:
/// the proxy passes legate's JSON error bodies through (Caddy does; nginx's `auth_request` answers
/// with its own error page).
pub(crate) async fn check_proxy(
    base: &str,
    upstream: &Upstream,
    legate: &Legate,
    json_errors: bool,
) {
    let le1 = format!("Bearer {}", legate.token("C-1", Some("LE-1")));
    let no_entity = format!("Bearer {}", legate.token("C-1", None));

    // Allowed (LE-1 is wholesale): the request reaches the service with the real identity, not the
    // copies the client forged.
    let before = upstream.hits();
    let a = send(
        base,
        "GET",
        "/catalog/wholesale/P-1?page=2",
        &[
            ("Authorization", &le1),
            ("legalEntityId", "LE-3"),
            ("X-Customer-Id", "C-2"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(upstream.hits(), before + 1);
    assert_eq!(a.json()["uri"], "/catalog/wholesale/P-1?page=2");
    assert_eq!(a.upstream_saw("legalEntityId"), Some(vec!["LE-1".into()]));
    assert_eq!(a.upstream_saw("X-Customer-Id"), Some(vec!["C-1".into()]));

    // Allowed for a token without a legal entity: no entity header reaches the service, not even
    // the client's own.
    let a = send(
        base,
        "GET",
        "/legal-entities/LE-2",
        &[
            ("Authorization", &no_entity),
            ("legalEntityId", "LE-3"),
            ("X-Customer-Id", "C-2"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(upstream.hits(), before + 2);
    assert_eq!(a.upstream_saw("legalEntityId"), None, "{}", a.body);
    assert_eq!(a.upstream_saw("X-Customer-Id"), Some(vec!["C-1".into()]));

    // Refused requests never reach the service.
    let before = upstream.hits();
    let denied = send(
        base,
        "GET",
        "/catalog/retail/P-1",
        &[("Authorization", &le1)],
    )
    .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{}", denied.body);
    let unmatched = send(base, "GET", "/admin", &[("Authorization", &le1)]).await;
    assert_eq!(
        unmatched.status,
        StatusCode::FORBIDDEN,
        "{}",
        unmatched.body
    );
    let wrong_method = send(
        base,
        "POST",
        "/legal-entities/LE-1",
        &[("Authorization", &le1)],
    )
    .await;
    assert_eq!(wrong_method.status, StatusCode::FORBIDDEN);
    let anonymous = send(base, "GET", "/legal-entities/LE-1", &[]).await;
    assert_eq!(
        anonymous.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        anonymous.body
    );
    assert_eq!(
        anonymous
            .headers
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap()),
        Some("Bearer")
    );
    let bad = send(
        base,
        "GET",
        "/legal-entities/LE-1",
        &[("Authorization", "Bearer not.a.jwt")],
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert!(bad.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer error=\"invalid_token\""));
    // A client naming an allowed path in the headers legate reads the original request from:
    // the proxy overrides or drops them, so the real (denied) path is what is decided.
    let smuggled = send(
        base,
        "GET",
        "/legal-entities/LE-3",
        &[
            ("Authorization", &le1),
            ("X-Original-Method", "GET"),
            ("X-Original-URI", "/legal-entities/LE-1"),
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Uri", "/legal-entities/LE-1"),
        ],
    )
    .await;
    assert_eq!(smuggled.status, StatusCode::FORBIDDEN, "{}", smuggled.body);
    assert_eq!(
        upstream.hits(),
        before,
        "a refused request reached the service"
    );

    if json_errors {
        assert_eq!(
            denied.json()["error"]["code"],
            "forbidden",
            "{}",
            denied.body
        );
        assert_eq!(unmatched.json()["error"]["code"], "forbidden");
        assert_eq!(anonymous.json()["error"]["code"], "missing_token");
        assert_eq!(bad.json()["error"]["code"], "invalid_token");
    }
}
