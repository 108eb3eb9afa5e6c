//! The `redis` store: rotation state shared by every replica, one Lua script per operation.

use std::{fmt::Debug, time::Duration};

use super::{RotationStore, Standing, StoreError};
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

/// Rotation state in Redis, shared by every replica. Keys (both expire with the session):
/// `legate:rt:{<sid>}:state` (`active` | `revoked`) and `legate:rt:{<sid>}:used` (set of `jti`s);
/// the hash tag keeps a family's keys in one Redis Cluster slot. The connection is opened on first
/// use and re-established by the connection manager, so legate starts even while Redis does not.
pub struct RedisStore {
    client: redis::Client,
    conn: tokio::sync::OnceCell<redis::aio::ConnectionManager>,
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

impl RedisStore {
    /// A store for `url` (`redis://host:port[/db]`); checks the URL, does not connect yet.
    pub fn new(url: &str) -> Result<Self, String> {
        let client =
            redis::Client::open(url).map_err(|e| format!("`store.url` is not a Redis URL: {e}"))?;
        Ok(Self {
            client,
            conn: tokio::sync::OnceCell::new(),
            peek: redis::Script::new(PEEK),
            consume: redis::Script::new(CONSUME),
        })
    }

    async fn conn(&self) -> Result<redis::aio::ConnectionManager, StoreError> {
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(2))
            .set_number_of_retries(1);
        self.conn
            .get_or_try_init(|| {
                redis::aio::ConnectionManager::new_with_config(self.client.clone(), config)
            })
            .await
            .cloned()
            .map_err(store_err)
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
    ) -> Result<Standing, StoreError> {
        let mut conn = self.conn().await?;
        let (state, used) = Self::keys(family);
        let answer: String = script
            .key(state)
            .key(used)
            .arg(jti)
            .invoke_async(&mut conn)
            .await
            .map_err(store_err)?;
        match answer.as_str() {
            "fresh" => Ok(Standing::Fresh),
            "used" => Ok(Standing::Used),
            "revoked" => Ok(Standing::Revoked),
            "unknown" => Ok(Standing::Unknown),
            other => Err(StoreError(format!("unexpected script answer {other:?}"))),
        }
    }
}

impl RotationStore for RedisStore {
    fn start<'a>(
        &'a self,
        family: &'a str,
        ttl_secs: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            let (state, _) = Self::keys(family);
            redis::cmd("SET")
                .arg(state)
                .arg("active")
                .arg("EX")
                .arg(ttl_secs.max(1))
                .arg("NX")
                .exec_async(&mut conn)
                .await
                .map_err(store_err)
        })
    }

    fn peek<'a>(
        &'a self,
        family: &'a str,
        jti: &'a str,
    ) -> BoxFuture<'a, Result<Standing, StoreError>> {
        Box::pin(self.run(&self.peek, family, jti))
    }

    fn consume<'a>(
        &'a self,
        family: &'a str,
        jti: &'a str,
    ) -> BoxFuture<'a, Result<Standing, StoreError>> {
        Box::pin(self.run(&self.consume, family, jti))
    }

    fn revoke<'a>(&'a self, family: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            let (state, _) = Self::keys(family);
            redis::cmd("SET")
                .arg(state)
                .arg("revoked")
                .arg("XX")
                .arg("KEEPTTL")
                .exec_async(&mut conn)
                .await
                .map_err(store_err)
        })
    }

    fn is_active<'a>(&'a self, family: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            let (state, _) = Self::keys(family);
            let value: Option<String> = redis::cmd("GET")
                .arg(state)
                .query_async(&mut conn)
                .await
                .map_err(store_err)?;
            Ok(value.as_deref() == Some("active"))
        })
    }
}
