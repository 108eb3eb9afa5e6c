//! The `redis` store: rotation state shared by every replica, one Lua script per operation.
//!
//! `store.url` is a plain Redis (`redis://host:port[/db]`) or a Redis Sentinel deployment
//! (`redis+sentinel://…`, see `super::sentinel`). Either way one multiplexed connection is kept and
//! dropped on any error; the next operation opens a new one (asking the sentinels afresh which node
//! is the primary), so legate starts while Redis does not, and carries on by itself after a Redis
//! restart or a failover. While no connection can be had every operation fails with a
//! [`StoreError`] (503), and nothing is issued. (`redis::aio::ConnectionManager`, used before,
//! reconnects by itself too, but always to the one address it was made for: after a failover that
//! is the dead or demoted primary.)
//!
//! Retries: an operation that changes nothing twice (`peek`, `is_active`, `start` with `NX`,
//! `revoke`) is retried once on a fresh connection when the kept one turns out broken; `consume`
//! never is, since its first attempt may have used the token up: a lost answer is a 503 and the
//! token stays used (fail closed: the client logs in again).
//!
//! With Sentinel, each write waits (`WAIT`) until `replicas` replicas have it, else the operation
//! fails: a used or revoked mark that only the old primary had would come back unused after a
//! failover, and reuse would go undetected.

use std::{fmt::Debug, future::Future, time::Duration};

use redis::aio::MultiplexedConnection;
use tokio::sync::Mutex;

use super::{sentinel, RotationStore, Standing, StoreError};
use crate::shared::BoxFuture;

const PEEK: &str = r"
local state = redis.call('GET', KEYS[1])
if not state then return 'unknown' end
if state == 'revoked' then return 'revoked' end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 'used' end
return 'fresh'
";

/// One script, so Redis runs it atomically: no other command sees the family between the check and
/// the `SADD`, and of two simultaneous uses exactly one `SADD` returns 1.
const CONSUME: &str = r"
local state = redis.call('GET', KEYS[1])
if not state then return 'unknown' end
if state == 'revoked' then return 'revoked' end
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then
  redis.call('SET', KEYS[1], 'revoked', 'KEEPTTL')
  return 'used'
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
return 'fresh'
";

/// How long connecting (including asking the sentinels) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one command may take.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a write waits for its replicas (`WAIT`), below [`RESPONSE_TIMEOUT`].
const REPLICA_TIMEOUT_MS: u64 = 1000;

/// Where the primary is.
enum Target {
    /// One Redis at a fixed address.
    Direct(redis::Client),
    /// The primary the sentinels name, asked on every new connection.
    Sentinel {
        client: Mutex<redis::sentinel::SentinelClient>,
        /// Replicas each write must reach (`WAIT`); 0 waits for none.
        replicas: u32,
    },
}

/// Rotation state in Redis, shared by every replica. Keys (both expire with the session):
/// `legate:rt:{<sid>}:state` (`active` | `revoked`) and `legate:rt:{<sid>}:used` (set of `jti`s);
/// the hash tag keeps a family's keys in one Redis Cluster slot.
pub struct RedisStore {
    target: Target,
    /// The kept connection and its number, so that only the failed one is dropped.
    conn: Mutex<Option<(u64, MultiplexedConnection)>>,
    opened: std::sync::atomic::AtomicU64,
    peek: redis::Script,
    consume: redis::Script,
}

impl Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: never printed.
        f.debug_struct("RedisStore").finish_non_exhaustive()
    }
}

fn store_err(e: redis::RedisError) -> StoreError {
    StoreError(e.to_string())
}

/// An error that says the connection (or the node behind it) is no good any more, so the same
/// operation on a new connection may work: I/O, a dropped link, or a primary demoted to replica.
fn connection_failed(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_unrecoverable_error() || matches!(e.kind(), redis::ErrorKind::ReadOnly)
}

/// Whether an operation may run a second time after a broken connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Running it twice changes nothing more than once.
    Idempotent,
    /// Its first attempt may have taken effect.
    Never,
}

impl RedisStore {
    /// A store for `url`: `redis://host:port[/db]`, or
    /// `redis+sentinel://[[user]:password@]host:port[,host:port…]/service[/db][?replicas=N]`.
    /// Checks the URL, does not connect yet.
    pub fn new(url: &str) -> Result<Self, String> {
        let target = if sentinel::is_sentinel_url(url) {
            let s = sentinel::SentinelUrl::parse(url)
                .map_err(|e| format!("`store.url` is not a Redis Sentinel URL: {e}"))?;
            Target::Sentinel {
                replicas: s.replicas,
                client: Mutex::new(
                    s.client()
                        .map_err(|e| format!("`store.url` is not a Redis Sentinel URL: {e}"))?,
                ),
            }
        } else {
            Target::Direct(
                redis::Client::open(url)
                    .map_err(|e| format!("`store.url` is not a Redis URL: {e}"))?,
            )
        };
        Ok(Self {
            target,
            conn: Mutex::new(None),
            opened: std::sync::atomic::AtomicU64::new(0),
            peek: redis::Script::new(PEEK),
            consume: redis::Script::new(CONSUME),
        })
    }

    /// The kept connection, or a new one to the (current) primary.
    async fn conn(&self) -> Result<(u64, MultiplexedConnection), StoreError> {
        let mut slot = self.conn.lock().await;
        if let Some(kept) = &*slot {
            return Ok(kept.clone());
        }
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(CONNECT_TIMEOUT)
            .set_response_timeout(RESPONSE_TIMEOUT);
        let connect = async {
            let client = match &self.target {
                Target::Direct(c) => c.clone(),
                Target::Sentinel { client, .. } => client.lock().await.async_get_client().await?,
            };
            client
                .get_multiplexed_async_connection_with_config(&config)
                .await
        };
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| StoreError("connecting to Redis timed out".into()))?
            .map_err(store_err)?;
        let n = self
            .opened
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *slot = Some((n, conn.clone()));
        Ok((n, conn))
    }

    /// Drops connection `n` if it is still the kept one.
    async fn forget(&self, n: u64) {
        let mut slot = self.conn.lock().await;
        if slot.as_ref().is_some_and(|(kept, _)| *kept == n) {
            *slot = None;
        }
    }

    /// Runs `op` on a connection; on a failed connection drops it, and retries once on a new one
    /// if `retry` allows.
    async fn with_conn<T, F, Fut>(&self, retry: Retry, op: F) -> Result<T, StoreError>
    where
        F: Fn(MultiplexedConnection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let mut attempts = if retry == Retry::Idempotent { 2 } else { 1 };
        loop {
            attempts -= 1;
            let (n, conn) = self.conn().await?;
            match op(conn).await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    self.forget(n).await;
                    if attempts == 0 || !connection_failed(&e) {
                        return Err(store_err(e));
                    }
                    tracing::debug!(error = %e, "Redis connection failed; retrying on a new one");
                }
            }
        }
    }

    /// With Sentinel: waits until the configured number of replicas has this connection's writes.
    async fn replicated(&self, conn: &mut MultiplexedConnection) -> redis::RedisResult<()> {
        let Target::Sentinel { replicas, .. } = &self.target else {
            return Ok(());
        };
        if *replicas == 0 {
            return Ok(());
        }
        let acked: u32 = redis::cmd("WAIT")
            .arg(*replicas)
            .arg(REPLICA_TIMEOUT_MS)
            .query_async(conn)
            .await?;
        if acked < *replicas {
            return Err(redis::RedisError::from((
                redis::ErrorKind::TryAgain,
                "write not replicated",
                format!("{acked} of {replicas} replicas acknowledged it"),
            )));
        }
        Ok(())
    }

    fn keys(family: &str) -> (String, String) {
        (
            format!("legate:rt:{{{family}}}:state"),
            format!("legate:rt:{{{family}}}:used"),
        )
    }

    async fn run(
        &self,
        script: &redis::Script,
        family: &str,
        jti: &str,
        retry: Retry,
    ) -> Result<Standing, StoreError> {
        let (state, used) = Self::keys(family);
        let answer: String = self
            .with_conn(retry, |mut conn| {
                let mut invocation = script.key(&state);
                invocation.key(&used).arg(jti);
                async move {
                    let answer = invocation.invoke_async(&mut conn).await?;
                    if retry == Retry::Never {
                        // `consume` writes: it must survive a failover before it counts.
                        self.replicated(&mut conn).await?;
                    }
                    Ok(answer)
                }
            })
            .await?;
        match answer.as_str() {
            "fresh" => Ok(Standing::Fresh),
            "used" => Ok(Standing::Used),
            "revoked" => Ok(Standing::Revoked),
            "unknown" => Ok(Standing::Unknown),
            other => Err(StoreError(format!("unexpected script answer {other:?}"))),
        }
    }

    /// `SET state value` with `args`, then (Sentinel) wait for the replicas.
    async fn set_state(&self, family: &str, value: &str, args: &[&str]) -> Result<(), StoreError> {
        let (state, _) = Self::keys(family);
        self.with_conn(Retry::Idempotent, |mut conn| {
            let mut cmd = redis::cmd("SET");
            cmd.arg(&state).arg(value).arg(args);
            async move {
                cmd.exec_async(&mut conn).await?;
                self.replicated(&mut conn).await
            }
        })
        .await
    }
}

impl RotationStore for RedisStore {
    fn start<'a>(
        &'a self,
        family: &'a str,
        ttl_secs: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let ttl = ttl_secs.max(1).to_string();
            self.set_state(family, "active", &["EX", &ttl, "NX"]).await
        })
    }

    fn peek<'a>(
        &'a self,
        family: &'a str,
        jti: &'a str,
    ) -> BoxFuture<'a, Result<Standing, StoreError>> {
        Box::pin(self.run(&self.peek, family, jti, Retry::Idempotent))
    }

    fn consume<'a>(
        &'a self,
        family: &'a str,
        jti: &'a str,
    ) -> BoxFuture<'a, Result<Standing, StoreError>> {
        Box::pin(self.run(&self.consume, family, jti, Retry::Never))
    }

    fn revoke<'a>(&'a self, family: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.set_state(family, "revoked", &["XX", "KEEPTTL"]))
    }

    fn is_active<'a>(&'a self, family: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let (state, _) = Self::keys(family);
            let value: Option<String> = self
                .with_conn(Retry::Idempotent, |mut conn| {
                    let mut cmd = redis::cmd("GET");
                    cmd.arg(&state);
                    async move { cmd.query_async(&mut conn).await }
                })
                .await?;
            Ok(value.as_deref() == Some("active"))
        })
    }
}
