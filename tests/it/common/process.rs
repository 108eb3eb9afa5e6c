//! A real `legate serve` process for black-box tests: stderr collected, the address read from the
//! "legate is listening" line (text or JSON logs), killed on drop.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{mpsc, Arc, Mutex},
    thread::JoinHandle,
    time::{Duration, Instant},
};

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
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self
                .log
                .lock()
                .unwrap()
                .iter()
                .find(
                    |line| match serde_json::from_str::<serde_json::Value>(line) {
                        Ok(v) => v["message"] == message,
                        Err(_) => line.contains(message),
                    },
                )
                .cloned();
            if let Some(line) = found {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no log line {message:?}:\n{}",
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
