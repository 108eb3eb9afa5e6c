//! The `redis` rotation store when Redis fails, with real parts: `redis-server` processes (a
//! primary, two replicas, a sentinel: `redis-server --sentinel`) started here on free loopback ports,
//! and the real `legate` binary. Redis is killed and restarted under a running legate, and a
//! Sentinel failover promotes a replica; legate must carry on by itself, refuse (503) while it
//! cannot reach the store, and never let a used refresh token pass.
//! Needs `redis-server` on the PATH (`bash .ci/run` installs Debian's package).

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::common::{
    self, free_port,
    process::{self, redis_store, LegateProcess, ServeDir},
};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn connection(port: u16) -> redis::RedisResult<redis::Connection> {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))?
        .get_connection_with_timeout(Duration::from_millis(300))
}

fn ping(port: u16) -> bool {
    connection(port)
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
        .is_ok()
}

/// Polls `ok` every 50 ms for at most `limit`.
fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One `redis-server` of ours on a fixed port, in its own directory; killed on drop.
struct Node {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    args: Vec<String>,
}

impl Node {
    /// `redis-server` with `args` (before `--port`, `--bind`, `--dir`) on a free port.
    fn start(dir: &Path, args: &[&str]) -> Self {
        let dir = dir.join(format!("node-{}", free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut node = Node {
            child: None,
            port: 0,
            dir,
            args: args.iter().map(|s| s.to_string()).collect(),
        };
        for _attempt in 0..5 {
            node.port = free_port();
            if node.spawn() {
                return node;
            }
        }
        panic!("redis-server did not start");
    }

    /// Starts the server (again) on its port and directory; true once it answers `PING`.
    fn spawn(&mut self) -> bool {
        let mut child = Command::new("redis-server")
            .args(&self.args)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed: `bash .ci/run` installs it");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return false; // the port was taken in the meantime
            }
            if ping(self.port) {
                self.child = Some(child);
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// SIGKILL, as a crash: no shutdown save.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        wait_until("redis to be gone", Duration::from_secs(5), || {
            !ping(self.port)
        });
    }

    fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> T {
        cmd.query(&mut connection(self.port).unwrap()).unwrap()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A legate using `store_url`, with the shipped policies and an identity provider of fresh keys.
struct Legate {
    dir: ServeDir,
    process: LegateProcess,
    client: reqwest::Client,
}

impl Legate {
    fn start(store_url: &str) -> Self {
        let dir = ServeDir::new();
        let process = dir.start(|t| redis_store(t, store_url));
        Self {
            dir,
            process,
            client: reqwest::Client::new(),
        }
    }

    fn idp_token(&self) -> String {
        self.dir.idp_token("C-1", Some("LE-1"))
    }

    /// `/v1/token/refresh`: with a bearer, or the refresh token in the body.
    async fn refresh(&self, bearer: Option<&str>, body: Value) -> (StatusCode, Value) {
        let mut req = self
            .client
            .post(format!("{}/v1/token/refresh", self.process.base()))
            .json(&body);
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        let resp = req.send().await.unwrap();
        (resp.status(), resp.json().await.unwrap_or(Value::Null))
    }

    /// `/v1/token/refresh` with `rt` in the body.
    async fn rotate(&self, rt: &Value) -> (StatusCode, Value) {
        self.refresh(None, json!({"refresh_token": rt["refresh_token"]}))
            .await
    }

    /// `/oauth2/token` with `grant_type=refresh_token`.
    async fn oauth_refresh(&self, rt: &str) -> (StatusCode, Value) {
        let resp = self
            .client
            .post(format!("{}/oauth2/token", self.process.base()))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json().await.unwrap_or(Value::Null))
    }

    async fn authorize(&self, token: &str) -> (StatusCode, Value) {
        let resp = self
            .client
            .post(format!("{}/v1/authorize", self.process.base()))
            .bearer_auth(token)
            .json(&common::order("O-1", "C-1", Some("LE-1")))
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json().await.unwrap_or(Value::Null))
    }

    /// `legate_tokens_issued_total`, summed over its labels.
    async fn issued(&self) -> u64 {
        let text = process::metrics(&self.process.base()).await;
        text.lines()
            .filter(|l| l.starts_with("legate_tokens_issued_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }
}

fn assert_store_unavailable((status, body): &(StatusCode, Value)) {
    assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "store_unavailable", "{body}");
    assert!(body.get("access_token").is_none(), "{body}");
}

fn access(pair: &Value) -> &str {
    pair["access_token"].as_str().unwrap()
}

#[tokio::test]
async fn after_a_redis_restart_legate_reconnects_by_itself_having_answered_503_while_it_was_down() {
    let dir = tempfile::tempdir().unwrap();
    // Persistence on (fsync per write), so the state survives the crash.
    let mut redis = Node::start(
        dir.path(),
        &[
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ],
    );
    let legate = Legate::start(&format!("redis://127.0.0.1:{}", redis.port));

    let idp = legate.idp_token();
    let (s, first) = legate.refresh(Some(&idp), json!({})).await;
    assert_eq!(s, StatusCode::OK, "{first}");
    let (s, second) = legate.rotate(&first).await;
    assert_eq!(s, StatusCode::OK, "{second}");
    assert_eq!(legate.authorize(access(&second)).await.0, StatusCode::OK);
    let issued = legate.issued().await;

    redis.kill();
    // Down: every grant that needs the store is a 503 and issues nothing; the newest refresh
    // token is not used up by the failed attempts.
    for _ in 0..3 {
        assert_store_unavailable(&legate.rotate(&second).await);
    }
    assert_store_unavailable(&legate.refresh(Some(&idp), json!({})).await);
    let rt = second["refresh_token"].as_str().unwrap();
    let (s, b) = legate.oauth_refresh(rt).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{b}");
    assert_eq!(b["error"], "temporarily_unavailable", "{b}");
    // An identity provider's token needs no store: decisions go on.
    let (s, b) = legate.authorize(&idp).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // legate's own token: whether its session was revoked cannot be checked, so it is refused.
    let (s, b) = legate.authorize(access(&second)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    let message = b["error"]["message"].as_str().unwrap();
    assert!(message.contains("cannot be checked"), "{b}");
    assert_eq!(legate.issued().await, issued, "nothing issued while down");

    // Back on the same port, legate untouched: the very first refresh works.
    assert!(redis.spawn(), "redis-server restarts on its port");
    let (s, third) = legate.rotate(&second).await;
    assert_eq!(s, StatusCode::OK, "{third}");
    assert_eq!(legate.authorize(access(&third)).await.0, StatusCode::OK);
    // The state survived (appendonly): the token used before the crash is still a reuse.
    let (s, b) = legate.rotate(&first).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b["error"]["code"], "invalid_grant", "{b}");
    assert_eq!(
        legate.authorize(access(&third)).await.0,
        StatusCode::UNAUTHORIZED,
        "the reuse revoked the family"
    );
}

/// One sentinel watching `primary` as service `legate`: quorum 1, quick to act (a primary is down
/// after 500 ms). It rewrites its config file, so the file is its own.
fn sentinel_for(dir: &Path, primary: u16) -> Node {
    let conf = dir.join(format!("sentinel-{primary}.conf"));
    std::fs::write(
        &conf,
        format!(
            "sentinel monitor legate 127.0.0.1 {primary} 1\n\
             sentinel down-after-milliseconds legate 500\n\
             sentinel failover-timeout legate 3000\n"
        ),
    )
    .unwrap();
    Node::start(dir, &[conf.to_str().unwrap(), "--sentinel"])
}

/// The primary's port as `sentinel` lists it (what legate asks), once no failover is under way.
fn master_of(sentinel: &Node) -> Option<u16> {
    let m: HashMap<String, String> =
        sentinel.query(redis::cmd("SENTINEL").arg("master").arg("legate"));
    (m.get("flags").map(String::as_str) == Some("master"))
        .then(|| m.get("port")?.parse().ok())
        .flatten()
}

#[tokio::test]
async fn with_sentinel_a_write_no_replica_acknowledged_is_refused_and_issues_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let primary = Node::start(dir.path(), &["--save", "", "--appendonly", "no"]);
    let sentinel = sentinel_for(dir.path(), primary.port);
    wait_until(
        "the sentinel to list the primary",
        Duration::from_secs(10),
        || master_of(&sentinel) == Some(primary.port),
    );
    // No replica to acknowledge it: the new family's write would not survive a failover, so the
    // login is refused (503) and nothing issued.
    let waits = Legate::start(&format!(
        "redis+sentinel://127.0.0.1:{}/legate",
        sentinel.port
    ));
    let idp = waits.idp_token();
    assert_store_unavailable(&waits.refresh(Some(&idp), json!({})).await);
    assert_eq!(waits.issued().await, 0);
    // `?replicas=0` accepts the risk: the same primary takes it.
    let trusting = Legate::start(&format!(
        "redis+sentinel://127.0.0.1:{}/legate?replicas=0",
        sentinel.port
    ));
    let (s, b) = trusting
        .refresh(Some(&trusting.idp_token()), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

#[tokio::test]
async fn after_a_sentinel_failover_a_refresh_succeeds_and_reuse_is_still_detected() {
    let dir = tempfile::tempdir().unwrap();
    let no_persistence = ["--save", "", "--appendonly", "no"];
    let mut primary = Node::start(dir.path(), &no_persistence);
    let primary_port = primary.port.to_string();
    let mut replica_args = no_persistence.to_vec();
    replica_args.extend(["--replicaof", "127.0.0.1", &primary_port]);
    // Two replicas: each write waits for one (`replicas=1`, the default), so after the failover
    // the new primary needs a replica of its own to take writes.
    let replica = Node::start(dir.path(), &replica_args);
    let other = Node::start(dir.path(), &replica_args);

    let sentinel = sentinel_for(dir.path(), primary.port);
    let master = || master_of(&sentinel);
    // The sentinel must know the replicas, in sync, before a failover can pick one.
    wait_until(
        "the sentinel to see the replicas",
        Duration::from_secs(20),
        || {
            let replicas: Vec<HashMap<String, String>> =
                sentinel.query(redis::cmd("SENTINEL").arg("replicas").arg("legate"));
            replicas
                .iter()
                .filter(|r| r.get("master-link-status").map(String::as_str) == Some("ok"))
                .count()
                == 2
        },
    );
    assert_eq!(master(), Some(primary.port));

    let legate = Legate::start(&format!(
        "redis+sentinel://127.0.0.1:{}/legate",
        sentinel.port
    ));
    let (s, first) = legate.refresh(Some(&legate.idp_token()), json!({})).await;
    assert_eq!(s, StatusCode::OK, "{first}");
    let (s, second) = legate.rotate(&first).await;
    assert_eq!(s, StatusCode::OK, "{second}");

    primary.kill();
    let started = Instant::now();
    let mut promoted = None;
    wait_until("the failover to end", Duration::from_secs(20), || {
        promoted = [&replica, &other]
            .into_iter()
            .find(|n| master() == Some(n.port));
        promoted.is_some()
    });
    let promoted = promoted.unwrap();
    wait_until(
        "the new primary to have its replica",
        Duration::from_secs(20),
        || {
            let info: String = promoted.query(redis::cmd("INFO").arg("replication"));
            // Connected is not enough: a replica still syncing acknowledges no write (`WAIT`).
            info.contains("role:master")
                && info.contains("connected_slaves:1")
                && info.contains("state=online")
        },
    );
    eprintln!("failover took {:?}", started.elapsed());

    // The newest refresh token works against the new primary, legate untouched.
    let (s, third) = legate.rotate(&second).await;
    assert_eq!(s, StatusCode::OK, "{third}\n{}", legate.process.log());
    assert_eq!(legate.authorize(access(&third)).await.0, StatusCode::OK);
    // The first refresh token was used on the old primary, and the new one knows it (the use was
    // replicated before it counted): a reuse, which revokes the family.
    let (s, b) = legate.rotate(&first).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b["error"]["code"], "invalid_grant", "{b}");
    assert_eq!(
        legate.authorize(access(&third)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(legate.rotate(&third).await.0, StatusCode::BAD_REQUEST);
}
