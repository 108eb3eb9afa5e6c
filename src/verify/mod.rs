//! Stage 2, token verification: a bearer string in, a [`VerifiedToken`] or an [`Error`] out.
//!
//! RFC 8725 rules: the token's `iss` picks one trusted issuer; that issuer's algorithm allow-list,
//! key set, audience and leeway decide the rest. The key's type must fit the algorithm, `none` and
//! HMAC are never accepted, `crit` is refused, and `jku`/`x5u`/`x5c` are ignored (keys come only from
//! configuration). Tokens over [`MAX_TOKEN_BYTES`] are refused before any parsing.

mod cache;
mod claims;
mod jwk;
mod jwks;
mod trust;

pub use claims::{ClaimNames, CustomerId, LegalEntityId, VerifiedToken};
pub(crate) use claims::{FAMILY_CLAIM, RESERVED_CLAIMS};
pub use jwk::VerifyKey;
pub use jwks::{KeySet, KeySource};
pub(crate) use trust::Revocation;
pub use trust::TrustedIssuer;

use std::{collections::HashMap, sync::Arc};

use base64::Engine as _;

/// Tokens longer than this are refused unread.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why a token was refused. Every variant answers 401; the text is safe to show the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Longer than [`MAX_TOKEN_BYTES`].
    #[error("token is larger than 8 KiB")]
    TooLarge,
    /// Not three base64url parts, or a part that does not decode to JSON.
    #[error("token is malformed: {0}")]
    Malformed(&'static str),
    /// The header names an algorithm this issuer does not allow (or `none`).
    #[error("algorithm {0} is not allowed for this issuer")]
    AlgorithmNotAllowed(String),
    /// The header has `crit`, which legate does not understand.
    #[error("token has a critical header parameter legate does not support")]
    CriticalHeader,
    /// The header's `typ` is not the one this issuer's tokens carry.
    #[error("token type is not accepted here")]
    WrongType,
    /// No `[[trust]]` entry for this `iss`.
    #[error("issuer is not trusted")]
    UnknownIssuer,
    /// No key with this `kid`, even after refreshing the key set.
    #[error("no key with this kid")]
    UnknownKid,
    /// No `kid` and more than one candidate key.
    #[error("token has no kid and the issuer has several keys")]
    MissingKid,
    /// The key's type or curve does not fit the algorithm.
    #[error("key type does not match the algorithm")]
    KeyAlgorithmMismatch,
    /// Signature does not verify.
    #[error("signature is invalid")]
    BadSignature,
    /// `exp` is in the past.
    #[error("token has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("token is not valid yet")]
    NotYetValid,
    /// `aud` names none of the accepted audiences.
    #[error("audience is not accepted")]
    WrongAudience,
    /// `iss` does not match.
    #[error("issuer does not match")]
    WrongIssuer,
    /// A required claim is missing or has the wrong type.
    #[error("claim `{0}` is missing or invalid")]
    MissingClaim(String),
    /// The token's session was revoked (a refresh token of its family was reused).
    #[error("token has been revoked")]
    Revoked,
    /// The revocation state could not be read; refused, since it might be revoked.
    #[error("token revocation state cannot be checked right now")]
    RevocationUnavailable,
}

impl Error {
    /// A short label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::TooLarge => "too_large",
            Error::Malformed(_) => "malformed",
            Error::AlgorithmNotAllowed(_) => "algorithm",
            Error::CriticalHeader => "crit",
            Error::WrongType => "typ",
            Error::UnknownIssuer => "unknown_issuer",
            Error::UnknownKid => "unknown_kid",
            Error::MissingKid => "missing_kid",
            Error::KeyAlgorithmMismatch => "key_type",
            Error::BadSignature => "signature",
            Error::Expired => "expired",
            Error::NotYetValid => "not_yet_valid",
            Error::WrongAudience => "audience",
            Error::WrongIssuer => "issuer",
            Error::MissingClaim(_) => "claims",
            Error::Revoked => "revoked",
            Error::RevocationUnavailable => "revocation_unavailable",
        }
    }
}

/// Counts a refused token in `legate_token_rejections_total` under its [`Error::reason`]; every
/// path that verifies a presented token (bearer, forward-auth, refresh/exchange) calls it.
pub(crate) fn count_rejection(e: &Error) {
    metrics::counter!("legate_token_rejections_total", "reason" => e.reason()).increment(1);
}

/// Verifies bearer tokens against every trusted issuer. Cheap to share: clone the `Arc`.
#[derive(Debug)]
pub struct Verifier {
    issuers: HashMap<String, Arc<TrustedIssuer>>,
    names: ClaimNames,
    cache: cache::TokenCache,
}

impl Verifier {
    /// A verifier over these issuers (each `iss` at most once).
    pub fn new(issuers: Vec<TrustedIssuer>, names: ClaimNames) -> Self {
        let issuers = issuers
            .into_iter()
            .map(|i| (i.issuer().to_string(), Arc::new(i)))
            .collect();
        Self {
            issuers,
            names,
            cache: cache::TokenCache::new(),
        }
    }

    /// Token-cache (hits, misses) since start.
    pub fn cache_counts(&self) -> (u64, u64) {
        self.cache.counts()
    }

    /// The trusted issuer with this `iss`, if any.
    pub fn issuer(&self, iss: &str) -> Option<&Arc<TrustedIssuer>> {
        self.issuers.get(iss)
    }

    /// Every trusted issuer.
    pub fn issuers(&self) -> impl Iterator<Item = &Arc<TrustedIssuer>> {
        self.issuers.values()
    }

    /// True once every issuer has a key set loaded.
    pub fn ready(&self) -> bool {
        self.issuers.values().all(|i| i.keys().loaded())
    }

    /// For each issuer whose key set could not be fetched at start, retries in the background
    /// (every `jwks_min_refresh_secs`) until it loads, so `/readyz` turns 200 without traffic.
    /// The tasks live in the returned set: dropping or aborting it stops them (at shutdown).
    pub fn spawn_key_retries(&self) -> tokio::task::JoinSet<()> {
        let mut tasks = tokio::task::JoinSet::new();
        for issuer in self.issuers.values().filter(|i| !i.keys().loaded()) {
            let issuer = issuer.clone();
            tasks.spawn(async move {
                let pause = issuer
                    .keys()
                    .min_refresh()
                    .max(std::time::Duration::from_secs(1));
                while !issuer.keys().loaded() {
                    tokio::time::sleep(pause).await;
                    issuer.keys().refresh().await;
                }
                tracing::info!(issuer = %issuer.issuer(), "key set loaded; issuer is ready");
            });
        }
        tasks
    }

    /// Verifies `token` and maps its claims. A token verified before and still within its lifetime
    /// comes from the verified-token cache (module `cache`); its revocation is checked either way.
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, Error> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Error::TooLarge);
        }
        let key = cache::TokenCache::key(token);
        if let Some(hit) = self.cache.get(&key) {
            hit.issuer.check_revocation(&hit.token.claims).await?;
            return Ok(hit.token.clone());
        }
        let (trusted, generation, verified) = self.verify_in_full(token).await?;
        if let Some(entry) = cache::Entry::new(token.len(), verified.clone(), trusted, generation) {
            self.cache.insert(key, entry);
        }
        Ok(verified)
    }

    /// [`Verifier::verify`] without the token cache: neither consulted nor filled. What every request
    /// paid before the cache; the benchmarks compare the two.
    pub async fn verify_uncached(&self, token: &str) -> Result<VerifiedToken, Error> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Error::TooLarge);
        }
        Ok(self.verify_in_full(token).await?.2)
    }

    async fn verify_in_full(
        &self,
        token: &str,
    ) -> Result<(Arc<TrustedIssuer>, u64, VerifiedToken), Error> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::Malformed("a JWT has three dot-separated parts"));
        };
        if h.is_empty() || p.is_empty() || s.is_empty() {
            return Err(Error::Malformed("empty part"));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            // `alg` outside jsonwebtoken's enum (e.g. "none") fails header parsing.
            // Any other JSON fault (a non-string `kid`, a repeated `alg`, ...) is a malformed
            // header, not an algorithm problem.
            jsonwebtoken::errors::ErrorKind::Json(_) => match peek_alg(h) {
                Some(alg) if alg.parse::<jsonwebtoken::Algorithm>().is_err() => {
                    Error::AlgorithmNotAllowed(alg)
                }
                Some(_) => Error::Malformed("malformed token header"),
                None => Error::Malformed("header is not valid JSON"),
            },
            _ => Error::Malformed("header is not base64url JSON"),
        })?;
        if header.crit.is_some() {
            return Err(Error::CriticalHeader);
        }
        let iss = peek_issuer(p)?;
        let trusted = self.issuers.get(&iss).ok_or(Error::UnknownIssuer)?;
        // The generation before verifying: keys installed meanwhile make the entry stale, never the
        // other way round.
        let generation = trusted.keys().generation();
        let claims = trusted.verify(token, &header).await?;
        let verified = VerifiedToken::from_claims(iss, header.kid, claims, &self.names)?;
        Ok((trusted.clone(), generation, verified))
    }
}

fn decode_part(part: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .ok()
}

fn peek_alg(header: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(&decode_part(header)?).ok()?;
    v.get("alg")?.as_str().map(str::to_string)
}

/// Reads `iss` from the unverified payload, only to pick which issuer's rules apply.
fn peek_issuer(payload: &str) -> Result<String, Error> {
    #[derive(serde::Deserialize)]
    struct Iss {
        iss: Option<String>,
    }
    let bytes = decode_part(payload).ok_or(Error::Malformed("payload is not base64url"))?;
    let iss: Iss = serde_json::from_slice(&bytes)
        .map_err(|_| Error::Malformed("payload is not a JSON object"))?;
    iss.iss.ok_or_else(|| Error::MissingClaim("iss".into()))
}
