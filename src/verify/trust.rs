//! Per-issuer rules (RFC 8725): which algorithms, which audience, how much leeway, which `typ`.
//!
//! Each issuer gets its own `jsonwebtoken::Validation`, built from configuration (never
//! `Validation::default()`): `iss`, `aud` and `exp` required, `nbf` checked when present.

use std::{collections::HashMap, fmt::Debug, sync::Arc};

use jsonwebtoken::{Algorithm, Header, Validation};
use serde_json::{Map, Value};

use super::{Error, KeySet};
use crate::shared::BoxFuture;

/// Revocation state consulted after a token of an issuer verified (legate's own access tokens: is
/// their session family still active?).
pub trait Revocation: Debug + Send + Sync {
    /// `Ok` when the token with these verified claims is not revoked; [`Error::Revoked`] or
    /// [`Error::RevocationUnavailable`] otherwise.
    fn check<'a>(&'a self, claims: &'a Map<String, Value>) -> BoxFuture<'a, Result<(), Error>>;
}

/// One issuer legate accepts tokens from.
#[derive(Debug)]
pub struct TrustedIssuer {
    issuer: String,
    /// One `Validation` per allowed algorithm: jsonwebtoken refuses a list that mixes key families.
    validations: HashMap<Algorithm, Validation>,
    keys: KeySet,
    leeway_secs: u64,
    /// When set, the header's `typ` must equal it (legate's own access tokens: `at+jwt`).
    required_typ: Option<String>,
    /// When set, asked after the signature and claims check out.
    revocation: Option<Arc<dyn Revocation>>,
}

impl TrustedIssuer {
    /// Rules for `issuer`. `algorithms` must already be checked against the supported list.
    pub fn new(
        issuer: &str,
        audience: &[String],
        algorithms: &[Algorithm],
        leeway_secs: u64,
        keys: KeySet,
        required_typ: Option<&str>,
    ) -> Self {
        let validations = algorithms
            .iter()
            .map(|alg| {
                let mut v = Validation::new(*alg);
                v.leeway = leeway_secs;
                v.validate_exp = true;
                v.validate_nbf = true;
                v.validate_aud = true;
                v.set_issuer(&[issuer]);
                v.set_audience(audience);
                v.set_required_spec_claims(&["exp", "iss", "aud"]);
                (*alg, v)
            })
            .collect();
        Self {
            issuer: issuer.to_string(),
            validations,
            keys,
            leeway_secs,
            required_typ: required_typ.map(str::to_string),
            revocation: None,
        }
    }

    /// Also asks `revocation` about every token that verifies.
    pub fn with_revocation(mut self, revocation: Arc<dyn Revocation>) -> Self {
        self.revocation = Some(revocation);
        self
    }

    /// `iss`
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The issuer's key set.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// Clock skew allowed on `exp` and `nbf`.
    pub fn leeway_secs(&self) -> u64 {
        self.leeway_secs
    }

    /// The revocation check alone, for a token whose signature and claims were verified before (a
    /// token-cache hit): it runs on every request.
    pub(super) async fn check_revocation(&self, claims: &Map<String, Value>) -> Result<(), Error> {
        match &self.revocation {
            Some(r) => r.check(claims).await,
            None => Ok(()),
        }
    }

    /// Checks algorithm, `typ`, key and signature, then the registered claims.
    pub(super) async fn verify(
        &self,
        token: &str,
        header: &Header,
    ) -> Result<Map<String, Value>, Error> {
        let Some(validation) = self.validations.get(&header.alg) else {
            return Err(Error::AlgorithmNotAllowed(format!("{:?}", header.alg)));
        };
        if let Some(typ) = &self.required_typ {
            if !header
                .typ
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case(typ))
            {
                return Err(Error::WrongType);
            }
        }
        let key = match &header.kid {
            Some(kid) => self.keys.get(kid).await?,
            None => self.keys.only_key_for(header.alg)?,
        };
        key.check(header.alg)?;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, validation)
            .map_err(map_error)?;
        self.check_revocation(&data.claims).await?;
        Ok(data.claims)
    }
}

fn map_error(e: jsonwebtoken::errors::Error) -> Error {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::InvalidSignature => Error::BadSignature,
        K::ExpiredSignature => Error::Expired,
        K::ImmatureSignature => Error::NotYetValid,
        K::InvalidAudience => Error::WrongAudience,
        K::InvalidIssuer => Error::WrongIssuer,
        K::MissingRequiredClaim(c) => Error::MissingClaim(c.clone()),
        K::InvalidAlgorithm | K::InvalidAlgorithmName => Error::AlgorithmNotAllowed("?".into()),
        K::InvalidKeyFormat | K::InvalidRsaKey(_) | K::InvalidEcdsaKey => {
            Error::KeyAlgorithmMismatch
        }
        K::Base64(_) | K::Json(_) | K::Utf8(_) | K::InvalidToken => {
            Error::Malformed("undecodable part")
        }
        K::InvalidClaimFormat(c) => Error::MissingClaim(c.clone()),
        _ => Error::BadSignature,
    }
}
