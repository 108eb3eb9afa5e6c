//! The `redis` rotation store with real parts: a `redis-server` started here on a free loopback
//! port, and two real `legate` processes (the binary) sharing it, as two replicas would.
//! Needs `redis-server` on the PATH (`.ci/run` installs Debian's package).

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use crate::common::{
    self, free_port,
    process::{redis_store, LegateProcess, ServeDir},
};
use base64::Engine as _;
use legate::testing::issue::{RedisStore, RotationStore, Standing};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// A `redis-server` of our own, killed on drop.
struct Redis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for _attempt in 0..5 {
            let port = free_port();
            let mut child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server must be installed (see .ci/run)");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // the port was taken in the meantime: try another
                }
                if ping(port) {
                    return Redis {
                        child,
                        port,
                        _dir: dir,
                    };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("redis-server did not start");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn ttl(&self, key: &str) -> i64 {
        let mut c = redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap();
        redis::cmd("TTL").arg(key).query(&mut c).unwrap()
    }
}

fn ping(port: u16) -> bool {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
        .is_ok()
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a replica: `legate serve` on `config`, waiting (bounded) for its "listening" line.
fn spawn(config: &Path) -> LegateProcess {
    LegateProcess::start(ServeDir::command(config))
}

async fn refresh(
    client: &reqwest::Client,
    legate: &LegateProcess,
    bearer: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let mut req = client
        .post(format!("{}/v1/token/refresh", legate.base()))
        .json(&body);
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    let resp = req.send().await.unwrap();
    (resp.status(), resp.json().await.unwrap_or(Value::Null))
}

async fn authorize(client: &reqwest::Client, legate: &LegateProcess, token: &str) -> StatusCode {
    client
        .post(format!("{}/v1/authorize", legate.base()))
        .bearer_auth(token)
        .json(&common::order("O-1", "C-1", None))
        .send()
        .await
        .unwrap()
        .status()
}

fn sid(token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice::<Value>(&bytes).unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_refresh_token_rotated_on_one_replica_is_refused_on_the_other() {
    let redis = Redis::start();
    let cluster = ServeDir::new();
    let config = cluster.config(|t| redis_store(t, &redis.url()));
    let (a, b) = (spawn(&config), spawn(&config));
    let client = reqwest::Client::new();

    let idp = cluster.idp_token("C-1", Some("LE-1"));
    let (s, first) = refresh(&client, &a, Some(&idp), json!({"legal_entity_id": "LE-1"})).await;
    assert_eq!(s, StatusCode::OK, "{first}");
    let rt1 = first["refresh_token"].as_str().unwrap();
    let at1 = first["access_token"].as_str().unwrap();
    assert_eq!(
        authorize(&client, &b, at1).await,
        StatusCode::OK,
        "B accepts A's token"
    );

    let (s, second) = refresh(
        &client,
        &a,
        None,
        json!({"refresh_token": rt1, "legal_entity_id": "LE-2"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{second}");
    let at2 = second["access_token"].as_str().unwrap();

    // B sees that rt1 was used on A: a reuse, which revokes the family everywhere.
    let (s, refused) = refresh(
        &client,
        &b,
        None,
        json!({"refresh_token": rt1, "legal_entity_id": "LE-2"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["error"]["code"], "invalid_grant");
    assert!(refused.get("access_token").is_none());
    assert_eq!(authorize(&client, &a, at2).await, StatusCode::UNAUTHORIZED);
    assert_eq!(authorize(&client, &b, at1).await, StatusCode::UNAUTHORIZED);
    let (s, _) = refresh(
        &client,
        &a,
        None,
        json!({"refresh_token": second["refresh_token"]}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // The family's state expires with the session (max_session_secs = 7200).
    let family = sid(at1);
    for key in [
        format!("legate:rt:{{{family}}}:state"),
        format!("legate:rt:{{{family}}}:used"),
    ] {
        let ttl = redis.ttl(&key);
        assert!((1..=7200).contains(&ttl), "{key}: ttl {ttl}");
    }
}

#[tokio::test]
async fn of_two_simultaneous_refreshes_on_two_replicas_exactly_one_succeeds() {
    let redis = Redis::start();
    let cluster = ServeDir::new();
    let config = cluster.config(|t| redis_store(t, &redis.url()));
    let (a, b) = (spawn(&config), spawn(&config));
    let client = reqwest::Client::new();
    for round in 0..10 {
        let idp = cluster.idp_token("C-1", Some("LE-1"));
        let (s, pair) = refresh(&client, &a, Some(&idp), json!({})).await;
        assert_eq!(s, StatusCode::OK, "{pair}");
        let body = json!({"refresh_token": pair["refresh_token"], "legal_entity_id": "LE-2"});
        let (ra, rb) = tokio::join!(
            refresh(&client, &a, None, body.clone()),
            refresh(&client, &b, None, body.clone())
        );
        let ok = [&ra, &rb]
            .iter()
            .filter(|(s, _)| *s == StatusCode::OK)
            .count();
        assert_eq!(ok, 1, "round {round}: {ra:?} {rb:?}");
        let loser = if ra.0 == StatusCode::OK { &rb } else { &ra };
        assert_eq!(loser.0, StatusCode::BAD_REQUEST, "round {round}: {loser:?}");
        assert_eq!(loser.1["error"]["code"], "invalid_grant");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_lets_exactly_one_of_many_uses_win() {
    let redis = Redis::start();
    let store = Arc::new(RedisStore::new(&redis.url()).unwrap());
    assert_eq!(store.peek("fam", "a").await, Ok(Standing::Unknown));
    assert!(!store.is_active("fam").await.unwrap());
    store.start("fam", 60).await.unwrap();
    assert!(store.is_active("fam").await.unwrap());
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let s = store.clone();
            tokio::spawn(async move { s.consume("fam", "a").await.unwrap() })
        })
        .collect();
    let mut fresh = 0;
    for t in tasks {
        if t.await.unwrap() == Standing::Fresh {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1);
    assert_eq!(store.peek("fam", "b").await, Ok(Standing::Revoked));
    assert!(!store.is_active("fam").await.unwrap());
    assert!((1..=60).contains(&redis.ttl("legate:rt:{fam}:state")));
}

#[tokio::test]
async fn an_unreachable_redis_refuses_with_503_and_nothing_issued() {
    let port = free_port();
    let cluster = ServeDir::new();
    let config = cluster.config(|t| redis_store(t, &format!("redis://127.0.0.1:{port}")));
    let a = spawn(&config);
    let client = reqwest::Client::new();
    let (s, b) = refresh(
        &client,
        &a,
        Some(&cluster.idp_token("C-1", Some("LE-1"))),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{b}");
    assert_eq!(b["error"]["code"], "store_unavailable");
    assert!(b.get("access_token").is_none());
}

async fn revoke(client: &reqwest::Client, legate: &LegateProcess, token: &str) -> StatusCode {
    let resp = client
        .post(format!("{}/oauth2/revoke", legate.base()))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    let status = resp.status();
    assert_eq!(resp.text().await.unwrap(), "", "RFC 7009: an empty body");
    status
}

#[tokio::test]
async fn logout_on_one_replica_ends_the_session_on_the_other() {
    let redis = Redis::start();
    let cluster = ServeDir::new();
    let config = cluster.config(|t| redis_store(t, &redis.url()));
    let (a, b) = (spawn(&config), spawn(&config));
    let client = reqwest::Client::new();

    let idp = cluster.idp_token("C-1", Some("LE-1"));
    let (s, pair) = refresh(&client, &a, Some(&idp), json!({"legal_entity_id": "LE-1"})).await;
    assert_eq!(s, StatusCode::OK, "{pair}");
    let at = pair["access_token"].as_str().unwrap();
    let rt = pair["refresh_token"].as_str().unwrap();
    assert_eq!(authorize(&client, &b, at).await, StatusCode::OK);

    // Logout on B with the refresh token: A refuses both tokens of the session.
    assert_eq!(revoke(&client, &b, rt).await, StatusCode::OK);
    assert_eq!(authorize(&client, &a, at).await, StatusCode::UNAUTHORIZED);
    assert_eq!(authorize(&client, &b, at).await, StatusCode::UNAUTHORIZED);
    let (s, refused) = refresh(&client, &a, None, json!({"refresh_token": rt})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["error"]["code"], "invalid_grant");
    let state = format!("legate:rt:{{{}}}:state", sid(at));
    assert!(redis.ttl(&state) > 0, "revoked state keeps its TTL");

    // Logout with an access token on A ends a second session on B; revoking again is still 200.
    let (_, pair) = refresh(&client, &b, Some(&idp), json!({"legal_entity_id": "LE-2"})).await;
    let at = pair["access_token"].as_str().unwrap();
    assert_eq!(revoke(&client, &a, at).await, StatusCode::OK);
    assert_eq!(authorize(&client, &b, at).await, StatusCode::UNAUTHORIZED);
    assert_eq!(revoke(&client, &b, at).await, StatusCode::OK);
}

#[tokio::test]
async fn a_legate_access_token_exchanged_on_two_replicas_is_good_once() {
    let redis = Redis::start();
    let cluster = ServeDir::new();
    let config = cluster.config(|t| redis_store(t, &redis.url()));
    let (a, b) = (spawn(&config), spawn(&config));
    let client = reqwest::Client::new();
    let idp = cluster.idp_token("C-1", Some("LE-1"));
    let (_, pair) = refresh(&client, &a, Some(&idp), json!({"legal_entity_id": "LE-1"})).await;
    let stolen = pair["access_token"].as_str().unwrap();
    let (s, first) = refresh(
        &client,
        &a,
        Some(stolen),
        json!({"legal_entity_id": "LE-2"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{first}");
    assert_eq!(sid(first["access_token"].as_str().unwrap()), sid(stolen));
    let (s, second) = refresh(
        &client,
        &b,
        Some(stolen),
        json!({"legal_entity_id": "LE-2"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{second}");
    assert_eq!(second["error"]["code"], "invalid_grant");
    let won = first["access_token"].as_str().unwrap();
    assert_eq!(
        authorize(&client, &a, won).await,
        StatusCode::UNAUTHORIZED,
        "family revoked"
    );
}

#[tokio::test]
async fn a_legate_token_minted_by_the_cli_has_a_session_in_redis_that_logout_ends() {
    let redis = Redis::start();
    let cluster = ServeDir::new();
    let config = cluster.config(|t| redis_store(t, &redis.url()));
    let a = spawn(&config);
    let client = reqwest::Client::new();
    let out = common::process::succeeded(
        common::process::legate()
            .arg("--config")
            .arg(&config)
            .args(["token", "--sub", "C-1", "--ttl-secs", "600"]),
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    // The CLI opened the token's session in the shared store, living as long as the token.
    let ttl = redis.ttl(&format!("legate:rt:{{{}}}:state", sid(&token)));
    assert!((1..=600).contains(&ttl), "ttl {ttl}");
    assert_eq!(authorize(&client, &a, &token).await, StatusCode::OK);
    assert_eq!(revoke(&client, &a, &token).await, StatusCode::OK);
    assert_eq!(
        authorize(&client, &a, &token).await,
        StatusCode::UNAUTHORIZED
    );
}
