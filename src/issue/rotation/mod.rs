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
//! session: unknown families are refused). `redis` shares it between replicas, through one Redis or
//! a Sentinel deployment (`sentinel`: its `store.url` form).

mod memory;
mod redis;
mod sentinel;

pub(crate) use memory::MemoryStore;
pub use redis::RedisStore;

use std::{fmt::Debug, sync::Arc};

use serde_json::{Map, Value};

use crate::{
    shared::BoxFuture,
    verify::{self, Revocation},
};

pub(crate) use crate::verify::FAMILY_CLAIM;

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

/// The verifier's check for legate's own access tokens: a token whose family (`sid`) is revoked,
/// expired or unknown is refused, and so is one without `sid` (every access token legate's token
/// endpoints issue has one; a token without could never be revoked).
#[derive(Debug)]
pub(crate) struct FamilyCheck(pub Arc<dyn RotationStore>);

impl Revocation for FamilyCheck {
    fn check<'a>(
        &'a self,
        claims: &'a Map<String, Value>,
    ) -> BoxFuture<'a, Result<(), verify::Error>> {
        Box::pin(async move {
            let Some(family) = claims
                .get(FAMILY_CLAIM)
                .and_then(Value::as_str)
                .filter(|f| !f.is_empty())
            else {
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
mod tests;
