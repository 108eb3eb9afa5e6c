//! Token contents: what legate's access and refresh tokens say, and signing them with the first key.
//!
//! Access token (RFC 9068 `typ: at+jwt`): `iss`, `sub`, `aud` (`issue.audience`), `exp`, `iat`,
//! `nbf`, `jti`, `auth_time`, `client_id`, `sid` (the rotation family), the legal-entity claim and the customer
//! claim (names from `[claims]`), plus the customer attributes the schema declares, copied from the
//! presented token. Refresh token (`typ: rt+jwt`): the same, but `aud` is legate's own issuer, so it
//! is never an access token for any audience. Neither outlives the session's hard end.

use std::sync::atomic::Ordering;

use jsonwebtoken::Header;
use serde_json::{json, Map, Value};

use super::{rotation::FAMILY_CLAIM, Error, Issuer, ACCESS_TYP, REFRESH_TYP};
use crate::verify::{CustomerId, LegalEntityId, RESERVED_CLAIMS as RESERVED};

/// What a new token pair says.
#[derive(Debug, Clone)]
pub(super) struct Session {
    pub(super) customer: CustomerId,
    pub(super) legal_entity: Option<LegalEntityId>,
    /// The original login (`auth_time`, else `iat` of the first token).
    pub(super) auth_time: u64,
    /// The rotation family.
    pub(super) family: String,
    /// `client_id` (RFC 9068 §2.2).
    pub(super) client_id: String,
    /// The access token's `aud` when the request narrowed it (RFC 8693 `audience`/`resource`);
    /// `None`: `issue.audience`.
    pub(super) audience: Option<Vec<String>>,
    /// Customer attributes carried over.
    pub(super) extra: Map<String, Value>,
}

/// One signed token.
#[derive(Debug, Clone)]
pub(super) struct Minted {
    pub(super) token: String,
    pub(super) jti: String,
    pub(super) exp: u64,
}

impl Issuer {
    /// Signs a new access and refresh token for `session`; `session_end` caps both `exp`s.
    pub(super) fn mint_pair(
        &self,
        session: &Session,
        now: u64,
        session_end: u64,
    ) -> Result<(Minted, Minted), Error> {
        let audience = match session.audience.as_deref().unwrap_or(&self.audience) {
            [one] => json!(one),
            many => json!(many),
        };
        let access = self.mint(
            session,
            ACCESS_TYP,
            audience,
            now,
            now.saturating_add(self.access_ttl).min(session_end),
        )?;
        let refresh = self.mint(
            session,
            REFRESH_TYP,
            json!(self.issuer),
            now,
            now.saturating_add(self.refresh_ttl).min(session_end),
        )?;
        self.issued.fetch_add(1, Ordering::Relaxed);
        Ok((access, refresh))
    }

    fn mint(
        &self,
        s: &Session,
        typ: &str,
        aud: Value,
        now: u64,
        exp: u64,
    ) -> Result<Minted, Error> {
        let jti = uuid::Uuid::new_v4().to_string();
        let mut claims = s.extra.clone();
        claims.insert("iss".into(), json!(self.issuer));
        claims.insert("sub".into(), json!(s.customer.0));
        claims.insert(self.names.customer.clone(), json!(s.customer.0));
        claims.insert("aud".into(), aud);
        claims.insert("exp".into(), json!(exp));
        claims.insert("iat".into(), json!(now));
        claims.insert("nbf".into(), json!(now));
        claims.insert("jti".into(), json!(jti));
        claims.insert("auth_time".into(), json!(s.auth_time));
        claims.insert("client_id".into(), json!(s.client_id));
        claims.insert(FAMILY_CLAIM.into(), json!(s.family));
        if let Some(le) = &s.legal_entity {
            claims.insert(self.names.legal_entity.clone(), json!(le.0));
        }
        let key = self.keys.signing();
        let mut header = Header::new(key.alg);
        header.typ = Some(typ.into());
        header.kid = Some(key.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &key.encoding)
            .map_err(|e| Error::Signing(e.to_string()))?;
        Ok(Minted { token, jti, exp })
    }

    /// The presented token's claims worth carrying over: the customer attributes `names` lists,
    /// minus anything legate sets itself.
    pub(super) fn carry_over<'a>(
        &self,
        claims: &Map<String, Value>,
        names: impl Iterator<Item = &'a String>,
    ) -> Map<String, Value> {
        names
            .filter(|n| {
                !RESERVED.contains(&n.as_str())
                    && **n != self.names.customer
                    && **n != self.names.legal_entity
            })
            .filter_map(|n| claims.get(n).map(|v| (n.clone(), v.clone())))
            .collect()
    }
}
