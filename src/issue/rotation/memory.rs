//! The `memory` store: rotation state in this process (one replica; lost on restart, which ends
//! every session).

use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
};

use super::{RotationStore, Standing, StoreError};
use crate::shared::{BoxFuture, Clock};

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
pub(crate) struct MemoryStore {
    families: Mutex<HashMap<String, Family>>,
    clock: Arc<dyn Clock>,
    starts: AtomicU64,
}

impl MemoryStore {
    /// Families held (expired ones included until the next sweep).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// An empty store judging expiry with `clock`.
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            families: Mutex::new(HashMap::new()),
            clock,
            starts: AtomicU64::new(0),
        }
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
