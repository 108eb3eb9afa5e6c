//! Refresh-token rotation (RFC 9700 §4.14.2): every refresh token is good once; presenting one that
//! was already used revokes its whole family, and with it every access token minted from the family.
//!
//! A family (`sid` claim) starts when legate first issues tokens for a login and lives until the
//! session's hard end (`auth_time + issue.max_session_secs`), after which every token of it has
//! expired anyway, so the state expires with it. Per family the store keeps whether it is active or
//! revoked and the set of refresh-token `jti`s already used; the signature proves a refresh token was
//! issued, so unused ones need no record. [`RotationStore::consume`] is atomic: of two simultaneous
//! uses of one refresh token exactly one wins, and the other is a reuse.
//!
//! `memory` keeps this in the process (one replica; state is lost on restart, which ends every
//! session: unknown families are refused). `redis` shares it between replicas.

use std::{
    collections::{HashMap, HashSet},
    fmt::Debug,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use serde_json::{Map, Value};

use crate::{
    shared::{BoxFuture, Clock},
    verify::{self, Revocation},
};

/// The claim naming an access or refresh token's family (OpenID's session id claim).
pub const FAMILY_CLAIM: &str = "sid";

/// Where one refresh token stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Not used yet, family active.
    Fresh,
    /// Already used once.
    Used,
    /// Its family was revoked.
    Revoked,
    /// The family is not known (expired, or state lost with a restart of a memory store).
    Unknown,
}

/// The store could not be asked (Redis down …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refresh-token store unavailable: {0}")]
pub struct StoreError(pub String);

/// Rotation state. Methods take the family id (`sid`) and, where it matters, the refresh token's
/// `jti`; `ttl_secs` is how long state must be kept (until the session's hard end).
pub trait RotationStore: Debug + Send + Sync {
    /// Opens an active family.
    fn start<'a>(&'a self, family: &'a str, ttl_secs: u64)
        -> BoxFuture<'a, Result<(), StoreError>>;
    /// Where `jti` stands, changing nothing.
    fn peek<'a>(
        &'a self,
        family: &'a str,
        jti: &'a str,
    ) -> BoxFuture<'a, Result<Standing, StoreError>>;
    /// Atomically uses `jti` and returns where it stood before: `Fresh` means this call won and the
    /// token is now used; `Used` means a reuse, and the family is now revoked.
    fn consume<'a>(
        &'a self,
        family: &'a str,
        jti: &'a str,
    ) -> BoxFuture<'a, Result<Standing, StoreError>>;
    /// Revokes the family (a no-op for an unknown one).
    fn revoke<'a>(&'a self, family: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Whether the family exists and is not revoked.
    fn is_active<'a>(&'a self, family: &'a str) -> BoxFuture<'a, Result<bool, StoreError>>;
}

#[derive(Debug)]
struct Family {
    revoked: bool,
    used: HashSet<String>,
    expires_at: u64,
}

/// Rotation state in this process.
///
/// A std `Mutex` (as mini-redis's `Db`): every critical section is a few hash-map operations with no
/// `.await` inside, so a blocking lock is cheaper than tokio's and cannot be held across a yield
/// (`clippy::await_holding_lock` guards that). Contention is bounded by refresh traffic, which is low.
#[derive(Debug)]
pub struct MemoryStore {
    families: Mutex<HashMap<String, Family>>,
    clock: Arc<dyn Clock>,
    starts: AtomicU64,
}

impl MemoryStore {
    /// An empty store judging expiry with `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            families: Mutex::new(HashMap::new()),
            clock,
            starts: AtomicU64::new(0),
        }
    }

    /// Families held (expired ones included until the next sweep).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no family is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Family>> {
        // A panic while holding the lock cannot leave a family half-updated in a way that grants
        // more than before (each section is one insert or flag flip), so poisoning is ignored.
        self.families.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn standing(&self, f: Option<&Family>, jti: &str, now: u64) -> Standing {
        match f {
            None => Standing::Unknown,
            Some(f) if f.expires_at <= now => Standing::Unknown,
            Some(f) if f.revoked => Standing::Revoked,
            Some(f) if f.used.contains(jti) => Standing::Used,
            Some(_) => Standing::Fresh,
        }
    }
}

impl RotationStore for MemoryStore {
    fn start<'a>(
        &'a self,
        family: &'a str,
        ttl_secs: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let now = self.clock.now();
            let mut map = self.lock();
            if self
                .starts
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(1024)
            {
                map.retain(|_, f| f.expires_at > now);
            }
            map.entry(family.to_string()).or_insert(Family {
                revoked: false,
                used: HashSet::new(),
                expires_at: now.saturating_add(ttl_secs),
            });
            Ok(())
        })
    }

    fn peek<'a>(
        &'a self,
        family: &'a str,
        jti: &'a str,
    ) -> BoxFuture<'a, Result<Standing, StoreError>> {
        Box::pin(async move {
            let now = self.clock.now();
            let map = self.lock();
            Ok(self.standing(map.get(family), jti, now))
        })
    }

    fn consume<'a>(
        &'a self,
        family: &'a str,
        jti: &'a str,
    ) -> BoxFuture<'a, Result<Standing, StoreError>> {
        Box::pin(async move {
            let now = self.clock.now();
            let mut map = self.lock();
            let standing = self.standing(map.get(family), jti, now);
            if let Some(f) = map.get_mut(family) {
                match standing {
                    Standing::Fresh => {
                        f.used.insert(jti.to_string());
                    }
                    Standing::Used => f.revoked = true,
                    Standing::Revoked | Standing::Unknown => {}
                }
            }
            Ok(standing)
        })
    }

    fn revoke<'a>(&'a self, family: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            if let Some(f) = self.lock().get_mut(family) {
                f.revoked = true;
            }
            Ok(())
        })
    }

    fn is_active<'a>(&'a self, family: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let now = self.clock.now();
            let map = self.lock();
            Ok(map
                .get(family)
                .is_some_and(|f| !f.revoked && f.expires_at > now))
        })
    }
}

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

/// The verifier's check for legate's own access tokens: a token whose family (`sid`) is revoked,
/// expired or unknown is refused. Tokens without `sid` (minted by `legate token`) belong to no
/// family and pass.
#[derive(Debug)]
pub struct FamilyCheck(pub Arc<dyn RotationStore>);

impl Revocation for FamilyCheck {
    fn check<'a>(
        &'a self,
        claims: &'a Map<String, Value>,
    ) -> BoxFuture<'a, Result<(), verify::Error>> {
        Box::pin(async move {
            let Some(family) = claims.get(FAMILY_CLAIM) else {
                return Ok(());
            };
            let Some(family) = family.as_str() else {
                return Err(verify::Error::MissingClaim(FAMILY_CLAIM.into()));
            };
            match self.0.is_active(family).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(verify::Error::Revoked),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot check whether an access token's session is revoked; refusing it");
                    Err(verify::Error::RevocationUnavailable)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issue::ManualClock;

    #[tokio::test]
    async fn a_refresh_token_is_good_once_and_reuse_revokes_the_family() {
        let clock = Arc::new(ManualClock::at(1_000));
        let s = MemoryStore::new(clock.clone());
        assert_eq!(s.peek("f", "a").await, Ok(Standing::Unknown));
        s.start("f", 100).await.unwrap();
        assert!(s.is_active("f").await.unwrap());
        assert_eq!(s.peek("f", "a").await, Ok(Standing::Fresh));
        assert_eq!(s.consume("f", "a").await, Ok(Standing::Fresh));
        assert_eq!(s.peek("f", "a").await, Ok(Standing::Used));
        // Its successor is fresh, until the used one comes back.
        assert_eq!(s.peek("f", "b").await, Ok(Standing::Fresh));
        assert_eq!(s.consume("f", "a").await, Ok(Standing::Used));
        assert!(!s.is_active("f").await.unwrap());
        assert_eq!(s.consume("f", "b").await, Ok(Standing::Revoked));
    }

    #[tokio::test]
    async fn state_expires_with_the_session() {
        let clock = Arc::new(ManualClock::at(1_000));
        let s = MemoryStore::new(clock.clone());
        s.start("f", 100).await.unwrap();
        clock.advance(100);
        assert_eq!(s.peek("f", "a").await, Ok(Standing::Unknown));
        assert!(!s.is_active("f").await.unwrap());
        // Expired families are swept as new ones start (every 1024 starts).
        for i in 0..1023 {
            s.start(&format!("old{i}"), 10).await.unwrap();
        }
        clock.advance(10);
        s.start("new", 10).await.unwrap();
        assert_eq!(s.len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn of_many_simultaneous_uses_exactly_one_wins() {
        let s = Arc::new(MemoryStore::new(Arc::new(ManualClock::at(1))));
        s.start("f", 100).await.unwrap();
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move { s.consume("f", "a").await.unwrap() })
            })
            .collect();
        let mut fresh = 0;
        for t in tasks {
            if t.await.unwrap() == Standing::Fresh {
                fresh += 1;
            }
        }
        assert_eq!(fresh, 1);
        assert!(!s.is_active("f").await.unwrap());
    }

    #[tokio::test]
    async fn family_check_refuses_revoked_and_unknown_sessions() {
        let store = Arc::new(MemoryStore::new(Arc::new(ManualClock::at(1))));
        store.start("f", 100).await.unwrap();
        let check = FamilyCheck(store.clone());
        let claims = |v: Value| v.as_object().unwrap().clone();
        let with = claims(serde_json::json!({"sid": "f"}));
        assert_eq!(check.check(&with).await, Ok(()));
        assert_eq!(check.check(&claims(serde_json::json!({}))).await, Ok(()));
        assert_eq!(
            check
                .check(&claims(serde_json::json!({"sid": "other"})))
                .await,
            Err(verify::Error::Revoked)
        );
        store.revoke("f").await.unwrap();
        assert_eq!(check.check(&with).await, Err(verify::Error::Revoked));
    }
}
