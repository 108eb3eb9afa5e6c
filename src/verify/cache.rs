//! The verified-token cache: a token whose signature and claims were checked once is not checked
//! again until it expires.
//!
//! The key is the SHA-256 of the complete token bytes (header, payload and signature), never the
//! signature alone: a tampered header or payload is a different key, so it misses and is verified
//! from scratch (and refused). The value is the verified token. An entry is served only while the
//! token's own lifetime allows it under the issuer's leeway (the same rule jsonwebtoken applies:
//! `exp >= now - leeway`, `nbf <= now + leeway`), and is evicted when it could no longer be served. An
//! entry made under an older key set of its issuer is not served (a key removed from the JWKS stops
//! its tokens at once). What the cache never skips: the revocation (session family) check, which runs
//! on every request, hit or miss.
//!
//! Bounded in memory and in entries: each entry weighs at least `MAX_BYTES / MAX_ENTRIES`, and
//! roughly what it holds (twice the token's length: its claims, parsed, are about the token's size).
//! Hits and misses are counted in `legate_token_cache_hits_total` / `legate_token_cache_misses_total`.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant, SystemTime},
};

use sha2::{Digest, Sha256};

use super::{TrustedIssuer, VerifiedToken};

/// The most memory the cache's entries may weigh, in bytes.
pub(super) const MAX_BYTES: u64 = 32 * 1024 * 1024;
/// The most entries the cache holds.
pub(super) const MAX_ENTRIES: u64 = 64 * 1024;
const MIN_WEIGHT: u64 = MAX_BYTES / MAX_ENTRIES;

/// One verified token and what serving it again depends on.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) token: VerifiedToken,
    pub(super) issuer: Arc<TrustedIssuer>,
    /// The issuer's key-set generation the token was verified under.
    pub(super) generation: u64,
    exp: u64,
    nbf: Option<u64>,
    leeway: u64,
    weight: u32,
}

impl Entry {
    /// An entry for `token`, verified now; `None` when the token's lifetime cannot be read (then it
    /// is not cached, only verified every time).
    pub(super) fn new(
        raw_len: usize,
        token: VerifiedToken,
        issuer: Arc<TrustedIssuer>,
        generation: u64,
    ) -> Option<Self> {
        let exp = token.time_claim("exp")?;
        let nbf = match token.claims.get("nbf") {
            None => None,
            Some(v) => Some(v.as_u64()?),
        };
        let leeway = issuer.leeway_secs();
        let weight = (raw_len as u64 * 2)
            .max(MIN_WEIGHT)
            .min(u64::from(u32::MAX)) as u32;
        Some(Self {
            token,
            issuer,
            generation,
            exp,
            nbf,
            leeway,
            weight,
        })
    }

    /// Whether the token may still be accepted at `now` (seconds since the epoch).
    pub(super) fn fresh(&self, now: u64) -> bool {
        self.exp.saturating_add(self.leeway) >= now
            && self
                .nbf
                .is_none_or(|nbf| nbf <= now.saturating_add(self.leeway))
    }

    /// How long from `now` until the entry can no longer be served.
    fn remaining(&self, now: u64) -> Duration {
        Duration::from_secs(
            self.exp
                .saturating_add(self.leeway)
                .saturating_add(1)
                .saturating_sub(now),
        )
    }
}

struct UntilExpiry;

impl moka::Expiry<[u8; 32], Arc<Entry>> for UntilExpiry {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        value: &Arc<Entry>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.remaining(unix_now()))
    }
}

/// Seconds since the epoch by the system clock (the clock jsonwebtoken checks `exp` against).
pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Verified tokens by the SHA-256 of their bytes.
pub(super) struct TokenCache {
    entries: moka::sync::Cache<[u8; 32], Arc<Entry>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("entries", &self.entries.entry_count())
            .field("hits", &self.hits.load(Ordering::Relaxed))
            .field("misses", &self.misses.load(Ordering::Relaxed))
            .finish()
    }
}

impl TokenCache {
    pub(super) fn new() -> Self {
        Self::with_capacity(MAX_BYTES)
    }

    fn with_capacity(bytes: u64) -> Self {
        let entries = moka::sync::Cache::builder()
            .max_capacity(bytes)
            .weigher(|_k: &[u8; 32], v: &Arc<Entry>| v.weight)
            .expire_after(UntilExpiry)
            .build();
        Self {
            entries,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The cache key of `token`: SHA-256 over every byte of it.
    pub(super) fn key(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    /// The entry for `key` if it may be served now; a stale one is dropped. Counts a hit or a miss.
    pub(super) fn get(&self, key: &[u8; 32]) -> Option<Arc<Entry>> {
        let found = self.entries.get(key).filter(|e| {
            let usable = e.fresh(unix_now()) && e.generation == e.issuer.keys().generation();
            if !usable {
                self.entries.invalidate(key);
            }
            usable
        });
        match found {
            Some(_) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("legate_token_cache_hits_total").increment(1);
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("legate_token_cache_misses_total").increment(1);
            }
        }
        found
    }

    pub(super) fn insert(&self, key: [u8; 32], entry: Entry) {
        self.entries.insert(key, Arc::new(entry));
    }

    /// (hits, misses) since start.
    pub(super) fn counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(exp: u64, nbf: Option<u64>, leeway: u64) -> Entry {
        Entry {
            token: VerifiedToken {
                issuer: "i".into(),
                kid: None,
                customer: super::super::CustomerId("C".into()),
                legal_entity: None,
                jti: None,
                claims: serde_json::Map::new(),
            },
            issuer: Arc::new(TrustedIssuer::new(
                "i",
                &["a".into()],
                &[jsonwebtoken::Algorithm::RS256],
                leeway,
                super::super::KeySet::fixed(Vec::new()),
                None,
            )),
            generation: 0,
            exp,
            nbf,
            leeway,
            weight: 1,
        }
    }

    #[test]
    fn an_entry_is_served_only_within_the_tokens_lifetime_and_leeway() {
        let e = entry(1000, Some(900), 30);
        assert!(e.fresh(1000));
        assert!(e.fresh(1030));
        assert!(!e.fresh(1031));
        assert!(e.fresh(870));
        assert!(!e.fresh(869));
        assert_eq!(e.remaining(1000), Duration::from_secs(31));
        assert_eq!(e.remaining(2000), Duration::ZERO);
    }

    #[test]
    fn the_key_covers_every_byte_of_the_token() {
        let a = TokenCache::key("h.p.s");
        assert_ne!(a, TokenCache::key("h.q.s"));
        assert_ne!(a, TokenCache::key("g.p.s"));
        assert_ne!(a, TokenCache::key("h.p.t"));
        assert_eq!(a, TokenCache::key("h.p.s"));
    }

    #[test]
    fn entries_are_bounded_by_weight() {
        let cache = TokenCache::with_capacity(MIN_WEIGHT * 10);
        for i in 0..100u8 {
            let mut e = entry(u64::MAX / 2, None, 0);
            e.weight = MIN_WEIGHT as u32;
            cache.insert([i; 32], e);
        }
        cache.entries.run_pending_tasks();
        assert!(cache.entries.entry_count() <= 10, "{cache:?}");
    }
}
