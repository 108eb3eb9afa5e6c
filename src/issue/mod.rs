//! The other direction: legate mints its own tokens when a customer switches legal entity.
//!
//! In: a refresh token legate issued, or an access token from a trusted identity provider (or from
//! legate), and the legal entity to act for. Out: a new access token (`typ: at+jwt`) and a new
//! refresh token (`typ: rt+jwt`), or an [`Error`] and nothing issued. [`Issuer`] is the one handle
//! the HTTP layer calls; `refresh` holds the flow, `mint` the token contents, `rotation` the
//! use-once state of refresh tokens, `keys` the signing keys, `clients` client authentication,
//! `revoke` logout (RFC 7009) and `clock` the time.

pub(crate) mod clients;
pub(crate) mod keys;
mod mint;
mod refresh;
mod revoke;
pub(crate) mod rotation;

pub(crate) use clients::{Client, ClientError, Clients, Credentials};

pub use crate::shared::{Clock, ManualClock, SystemClock};
pub(crate) use keys::KeyRing;
pub use keys::SigningKey;
pub(crate) use refresh::{Grant, RefreshRequest};
pub(crate) use revoke::Revoked;
pub(crate) use rotation::{MemoryStore, StoreError};
pub use rotation::{RedisStore, RotationStore, Standing};

use std::{
    collections::HashMap,
    sync::{atomic::AtomicU64, Arc},
};

use jsonwebtoken::Algorithm;

use crate::{
    audit::Audit,
    config::Config,
    entities,
    verify::{self, ClaimNames, KeySet, LegalEntityId, TrustedIssuer, VerifyKey},
};

/// `typ` of legate's access tokens (RFC 9068).
pub(crate) const ACCESS_TYP: &str = "at+jwt";
/// `typ` of legate's refresh tokens: never accepted where an access token is expected.
pub(crate) const REFRESH_TYP: &str = "rt+jwt";

/// A new token pair.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The access token (JWT, `typ: at+jwt`).
    pub access_token: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The refresh token (JWT, `typ: rt+jwt`), good once.
    pub refresh_token: String,
    /// The legal entity the tokens act for.
    pub legal_entity: Option<LegalEntityId>,
}

/// Why a presented refresh token (or session) was refused: all answer 400 `invalid_grant`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// Not a JWT, or claims legate always sets are missing.
    #[error("refresh token is malformed: {0}")]
    Malformed(&'static str),
    /// An access token (or an identity provider's token) where a refresh token belongs.
    #[error("this is not a refresh token (an access token cannot be used to refresh)")]
    NotARefreshToken,
    /// Not signed by one of legate's keys, or for another issuer.
    #[error("refresh token was not issued by this legate")]
    NotIssuedHere,
    /// Signature does not verify.
    #[error("refresh token signature is invalid")]
    BadSignature,
    /// `exp` has passed.
    #[error("refresh token has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("refresh token is not valid yet")]
    NotYetValid,
    /// Its family was revoked after a reuse.
    #[error("refresh token has been revoked")]
    Revoked,
    /// Already used once: the whole family is now revoked.
    #[error("refresh token was already used; its session has been revoked")]
    Reused,
    /// The family is unknown (ended, or legate lost its rotation state).
    #[error("refresh token belongs to no active session")]
    UnknownSession,
    /// Past `issue.max_session_secs` from the original login.
    #[error("the session has reached its maximum lifetime; log in again")]
    SessionEnded,
    /// Issued to another client than the one that authenticated.
    #[error("the token was issued to another client")]
    WrongClient,
}

impl GrantError {
    /// Label for metrics and the audit log.
    pub fn reason(&self) -> &'static str {
        match self {
            GrantError::Malformed(_) => "malformed",
            GrantError::NotARefreshToken => "not_a_refresh_token",
            GrantError::NotIssuedHere => "not_issued_here",
            GrantError::BadSignature => "signature",
            GrantError::Expired => "expired",
            GrantError::NotYetValid => "not_yet_valid",
            GrantError::Revoked => "revoked",
            GrantError::Reused => "reused",
            GrantError::UnknownSession => "unknown_session",
            GrantError::SessionEnded => "session_ended",
            GrantError::WrongClient => "wrong_client",
        }
    }
}

/// Why no token was issued.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// A refresh token or session that cannot be used (400 `invalid_grant`).
    #[error(transparent)]
    InvalidGrant(#[from] GrantError),
    /// The bearer (or subject) access token did not verify (401 `invalid_token`).
    #[error(transparent)]
    InvalidToken(verify::Error),
    /// The policies do not let the customer select the entity (403 `legal_entity_not_assigned`).
    #[error("the customer may not act for legal entity {0}")]
    NotAssigned(LegalEntityId),
    /// The entity source could not answer (503 `entity_source_unavailable`).
    #[error(transparent)]
    EntitySource(#[from] entities::Error),
    /// The rotation store could not answer (503).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Signing failed (500).
    #[error("cannot sign a token: {0}")]
    Signing(String),
}

impl Error {
    /// Label for metrics and the audit log.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::InvalidGrant(g) => g.reason(),
            Error::InvalidToken(_) => "invalid_token",
            Error::NotAssigned(_) => "not_assigned",
            Error::EntitySource(_) => "entity_source_unavailable",
            Error::Store(_) => "store_unavailable",
            Error::Signing(_) => "signing",
        }
    }
}

/// Mints and refreshes legate's tokens. Built once in `app::build`.
#[derive(Debug)]
pub struct Issuer {
    issuer: String,
    audience: Vec<String>,
    access_ttl: u64,
    refresh_ttl: u64,
    max_session: u64,
    leeway: u64,
    default_client_id: String,
    default_entity: bool,
    clients: Clients,
    names: ClaimNames,
    keys: KeyRing,
    /// Public halves of `keys` by `kid`, to verify refresh tokens.
    verify_keys: HashMap<String, VerifyKey>,
    clock: Arc<dyn Clock>,
    rotation: Arc<dyn RotationStore>,
    audit: Arc<Audit>,
    /// Token pairs minted so far (tests check that an error issued nothing).
    issued: AtomicU64,
}

impl Issuer {
    /// An issuer for `config.issue` signing with `keys`.
    pub fn new(
        config: &Config,
        keys: KeyRing,
        clock: Arc<dyn Clock>,
        rotation: Arc<dyn RotationStore>,
        audit: Arc<Audit>,
    ) -> Self {
        let verify_keys = keys
            .verify_keys()
            .into_iter()
            .map(|k| (k.kid.clone(), k))
            .collect();
        Self {
            issuer: config.issuer().to_string(),
            audience: config.issue.audience.clone(),
            access_ttl: config.issue.access_ttl_secs,
            refresh_ttl: config.issue.refresh_ttl_secs,
            max_session: config.issue.max_session_secs,
            leeway: config.claims.leeway_secs,
            default_client_id: config.issue.default_client_id.clone(),
            default_entity: config.issue.default_entity,
            clients: Clients::new(&config.clients),
            names: ClaimNames::from(&config.claims),
            keys,
            verify_keys,
            clock,
            rotation,
            audit,
            issued: AtomicU64::new(0),
        }
    }

    /// The `iss` of legate's tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The configured OAuth clients.
    pub fn clients(&self) -> &Clients {
        &self.clients
    }

    /// The access tokens' possible audiences (`issue.audience`).
    pub fn audience(&self) -> &[String] {
        &self.audience
    }

    /// The signing keys.
    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// Token pairs minted by this process so far.
    pub fn issued(&self) -> u64 {
        self.issued.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The verifier's rules for legate's own access tokens: legate's issuer and keys, its access
    /// audience, `typ: at+jwt` required (so a refresh token, `rt+jwt` with `aud` = the issuer, never
    /// passes), and the family of each token checked against the rotation state.
    pub fn trusted_issuer(&self) -> TrustedIssuer {
        let algorithms: Vec<Algorithm> = self.keys.algorithms();
        TrustedIssuer::new(
            &self.issuer,
            &self.audience,
            &algorithms,
            self.leeway,
            KeySet::fixed(self.keys.verify_keys()),
            Some(ACCESS_TYP),
        )
        .with_revocation(Arc::new(rotation::FamilyCheck(self.rotation.clone())))
    }
}
