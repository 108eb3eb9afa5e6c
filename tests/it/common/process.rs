//! A real `legate serve` process for black-box tests: stderr collected, the address read from the
//! "legate is listening" line (text or JSON logs), killed on drop.

use std::{
    io::{BufRead, BufReader, Read},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    sync::{mpsc, Arc, Mutex},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use super::{base_config, claims, copy_policies, sign, Keys};

/// How long start-up may take before the test fails.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `legate` binary.
pub(crate) struct LegateProcess {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
}

/// `legate` with the manifest directory as working directory and no inherited `LEGATE_LOG`.
pub(crate) fn legate() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_legate"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c.env_remove("LEGATE_LOG");
    c
}

/// `legate --config <config> serve --listen 127.0.0.1:0` (`config` relative to the manifest
/// directory, such as `examples/legate.toml`).
pub(crate) fn serve(config: &str) -> Command {
    let mut c = legate();
    c.args(["--config", config, "serve", "--listen", "127.0.0.1:0"]);
    c
}

/// What a spawned `legate serve` reads: a temp directory with the shipped policies, the JWKS of a
/// fresh identity provider (`idp-jwks.json`) and legate's own signing key (`legate.pem`, the dev
/// key of `examples/keys`); [`ServeDir::config`] writes the config next to them.
pub(crate) struct ServeDir {
    pub(crate) dir: tempfile::TempDir,
    /// The identity provider's keys (its JWKS is trusted).
    pub(crate) idp: Keys,
}

impl ServeDir {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        copy_policies(&dir.path().join("policies"));
        let idp = Keys::generate();
        std::fs::write(dir.path().join("idp-jwks.json"), idp.jwks().to_string()).unwrap();
        let dev_key = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/keys/legate-dev.pem");
        std::fs::copy(dev_key, dir.path().join("legate.pem")).unwrap();
        Self { dir, idp }
    }

    /// Writes `legate.toml` and returns its path: [`base_config`] listening on `127.0.0.1:0`,
    /// `public_url = "http://legate.test"`, JSON logs, then whatever `edit` changes.
    pub(crate) fn config(&self, edit: impl FnOnce(&mut toml::Table)) -> PathBuf {
        let mut table = base_config(self.dir.path(), "127.0.0.1:0".parse().unwrap());
        table.insert("public_url".into(), "http://legate.test".into());
        table["log"]
            .as_table_mut()
            .unwrap()
            .insert("format".into(), "json".into());
        edit(&mut table);
        let path = self.dir.path().join("legate.toml");
        std::fs::write(&path, table.to_string()).unwrap();
        path
    }

    /// `legate --config <config> serve`, to be started with [`LegateProcess::start`].
    pub(crate) fn command(config: &Path) -> Command {
        let mut c = legate();
        c.arg("--config").arg(config).arg("serve");
        c
    }

    /// Writes the config (see [`ServeDir::config`]) and starts `legate serve` on it.
    pub(crate) fn start(&self, edit: impl FnOnce(&mut toml::Table)) -> LegateProcess {
        LegateProcess::start(Self::command(&self.config(edit)))
    }

    /// An RS256 token of the identity provider for `sub`.
    pub(crate) fn idp_token(&self, sub: &str, legal_entity: Option<&str>) -> String {
        sign(&self.idp.rsa, &claims(sub, legal_entity))
    }
}

/// Runs `cmd` to its end and asserts it exited 0 (its stderr is the failure message).
pub(crate) fn succeeded(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A [`ServeDir::config`] edit: refresh tokens in the Redis at `url`, sessions of two hours.
pub(crate) fn redis_store(table: &mut toml::Table, url: &str) {
    table["issue"]
        .as_table_mut()
        .unwrap()
        .insert("max_session_secs".into(), 7200.into());
    let mut store = toml::Table::new();
    store.insert("kind".into(), "redis".into());
    store.insert("url".into(), url.into());
    table.insert("store".into(), store.into());
}

/// Reads one HTTP/1.1 response (head and `Content-Length` body) from `s`: the head (status line
/// first) and the body.
pub(crate) fn read_response(s: &mut TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "connection closed early");
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .expect("content-length");
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    (head, body)
}

/// The text of `GET <base>/metrics`.
pub(crate) async fn metrics(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The listening address in a log line, text (`address=…`) or JSON (`"address": …`).
fn listening_address(line: &str) -> Option<SocketAddr> {
    if !line.contains("legate is listening") {
        return None;
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
        return v["address"].as_str()?.parse().ok();
    }
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("address="))?
        .parse()
        .ok()
}

impl LegateProcess {
    /// Spawns `cmd` (a `legate … serve` command) and waits, bounded, until it listens.
    pub(crate) fn start(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("legate starts");
        let stderr = child.stderr.take().unwrap();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let (tx, rx) = mpsc::channel();
        let lines = log.clone();
        // Keeps draining after start-up so the pipe never fills.
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = listening_address(&line) {
                    let _ = tx.send(addr);
                }
                lines.lock().unwrap().push(line);
            }
        });
        let mut me = Self {
            child,
            addr: "127.0.0.1:1".parse().unwrap(),
            log,
            reader: Some(reader),
        };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => me.addr = addr,
            Err(_) => panic!("legate did not start listening:\n{}", me.log()),
        }
        me
    }

    /// `http://<addr>`
    pub(crate) fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Everything it wrote to stderr so far.
    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits (at most 10 s) for a log line whose message is `message` (JSON logs: the `message`
    /// field equals it; text logs: the line contains it) and returns that line.
    pub(crate) fn wait_for_message(&self, message: &str) -> String {
        self.wait_for_messages(message, 1).remove(0)
    }

    /// Waits (at most 10 s) until `n` log lines have `message` (as [`Self::wait_for_message`]
    /// matches it) and returns them.
    pub(crate) fn wait_for_messages(&self, message: &str, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found: Vec<String> = self
                .log
                .lock()
                .unwrap()
                .iter()
                .filter(
                    |line| match serde_json::from_str::<serde_json::Value>(line) {
                        Ok(v) => v["message"] == message,
                        Err(_) => line.contains(message),
                    },
                )
                .cloned()
                .collect();
            if found.len() >= n {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} log lines {message:?}:\n{}",
                found.len(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal (`"TERM"`, `"HUP"`, …) with `kill`.
    pub(crate) fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name} failed");
    }

    /// Waits (bounded) for the process to exit, then for its last log lines.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "legate did not exit within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        status
    }
}

impl Drop for LegateProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
