//! The refresh flow: verify what is presented, check the session limit and the refresh token's
//! standing, ask the policies `selectLegalEntity` with the entity source's data, rotate, mint.
//!
//! Order matters. Everything that can refuse runs before the refresh token is used up, so a refusal
//! (403 not assigned, 503 entity source) leaves the token usable and issues nothing; but a *reused*
//! refresh token is detected first, so it revokes its family whatever else is wrong with the request.
//! The final use is atomic ([`RotationStore::consume`](super::RotationStore::consume)): of two
//! simultaneous refreshes with one token exactly one gets tokens.

use jsonwebtoken::{errors::ErrorKind, Validation};
use serde_json::{Map, Value};

use super::{
    mint::Session, rotation::FAMILY_CLAIM, Error, GrantError, Issued, Issuer, Standing, REFRESH_TYP,
};
use std::sync::Arc;

use crate::{
    audit::TokenEvent,
    decide::{select, Decider, EntityData},
    entities::EntitySource,
    policy::Snapshot,
    verify::{LegalEntityId, VerifiedToken, Verifier, MAX_TOKEN_BYTES},
};

/// What the caller presents.
#[derive(Debug, Clone)]
pub enum Grant {
    /// A refresh token legate issued (`POST /v1/token/refresh` body, `grant_type=refresh_token`).
    RefreshToken(String),
    /// An access token from a trusted issuer or legate (bearer header, RFC 8693 `subject_token`).
    AccessToken(String),
}

impl Grant {
    fn kind(&self) -> &'static str {
        match self {
            Grant::RefreshToken(_) => "refresh_token",
            Grant::AccessToken(_) => "token_exchange",
        }
    }
}

/// One refresh: what is presented, the target entity, and what to check it against.
#[derive(Debug)]
pub struct RefreshRequest<'a> {
    /// The presented token.
    pub grant: Grant,
    /// The legal entity to act for; `None` keeps the presented token's (re-validated).
    pub target: Option<LegalEntityId>,
    /// The policies to ask.
    pub snapshot: Arc<Snapshot>,
    /// Assignments and legal-entity data.
    pub entities: &'a dyn EntitySource,
    /// Verifies presented access tokens.
    pub verifier: &'a Verifier,
}

/// The presented token, read.
struct Presented {
    /// What it says, as verification maps it (customer, legal entity, claims, `jti`).
    token: VerifiedToken,
    auth_time: u64,
    /// `(family, jti)` of a presented refresh token.
    refresh: Option<(String, String)>,
    /// The family of a presented legate access token, continued by the new tokens.
    family: Option<String>,
}

impl Issuer {
    /// Issues a new token pair for `req`, or refuses with nothing issued. Either way one audit event.
    pub async fn refresh(&self, req: RefreshRequest<'_>) -> Result<Issued, Error> {
        let mut event = TokenEvent {
            grant: req.grant.kind(),
            ..TokenEvent::default()
        };
        let result = self.run(req, &mut event).await;
        match &result {
            Ok(_) => self.audit.token_issued(&event),
            Err(e) => self.audit.token_refused(&event, e.reason(), &e.to_string()),
        }
        result
    }

    /// The flow, step by step: read what is presented, check its standing, check the target,
    /// use the refresh token up (or start a family), mint.
    async fn run(&self, req: RefreshRequest<'_>, event: &mut TokenEvent) -> Result<Issued, Error> {
        let now = self.clock.now();
        let presented = self.present(&req, now).await?;
        event.customer = Some(presented.token.customer.0.clone());
        event.from_entity = presented.token.legal_entity.as_ref().map(|l| l.0.clone());
        event.old_jti = presented.token.jti.clone();
        event.family = presented
            .refresh
            .as_ref()
            .map(|(f, _)| f.clone())
            .or_else(|| presented.family.clone());

        let session_end = presented.auth_time.saturating_add(self.max_session);
        if now >= session_end {
            return Err(GrantError::SessionEnded.into());
        }
        if let Some((family, jti)) = &presented.refresh {
            self.check_standing(family, jti).await?;
        }
        let target = req.target.clone().or(presented.token.legal_entity.clone());
        event.to_entity = target.as_ref().map(|l| l.0.clone());
        if let Some(target) = &target {
            self.check_target(&req, &presented.token, target).await?;
        }
        let family = self.continue_family(&presented, session_end - now).await?;
        event.family = Some(family.clone());

        let session = Session {
            extra: self.carry_over(&presented.token.claims, req.snapshot.customer_attrs.keys()),
            customer: presented.token.customer,
            legal_entity: target.clone(),
            auth_time: presented.auth_time,
            family,
        };
        let (access, refresh) = self.mint_pair(&session, now, session_end)?;
        event.new_jti = Some(access.jti);
        event.new_refresh_jti = Some(refresh.jti);
        Ok(Issued {
            access_token: access.token,
            expires_in: access.exp.saturating_sub(now),
            refresh_token: refresh.token,
            legal_entity: target,
        })
    }

    /// Reads the presented token: a refresh token against legate's keys, an access token through
    /// the verifier.
    async fn present(&self, req: &RefreshRequest<'_>, now: u64) -> Result<Presented, Error> {
        match &req.grant {
            Grant::RefreshToken(t) => Ok(self.read_refresh(t, now)?),
            Grant::AccessToken(t) => {
                let v = req.verifier.verify(t).await.map_err(Error::InvalidToken)?;
                let family = (v.issuer == self.issuer)
                    .then(|| v.claims.get(FAMILY_CLAIM).and_then(Value::as_str))
                    .flatten()
                    .map(str::to_string);
                let auth_time = v
                    .time_claim("auth_time")
                    .or_else(|| v.time_claim("iat"))
                    .unwrap_or(now)
                    .min(now);
                Ok(Presented {
                    token: v,
                    auth_time,
                    refresh: None,
                    family,
                })
            }
        }
    }

    /// A presented refresh token must be fresh; a used one revokes its family here, whatever else
    /// is wrong with the request.
    async fn check_standing(&self, family: &str, jti: &str) -> Result<(), Error> {
        match self.rotation.peek(family, jti).await? {
            Standing::Fresh => Ok(()),
            Standing::Used => {
                self.rotation.revoke(family).await?;
                Err(GrantError::Reused.into())
            }
            Standing::Revoked => Err(GrantError::Revoked.into()),
            Standing::Unknown => Err(GrantError::UnknownSession.into()),
        }
    }

    /// The policies must let the customer select `target`, asked with the entity source's data
    /// through the one decision path (and recorded there); no answer from the source is a 503.
    async fn check_target(
        &self,
        req: &RefreshRequest<'_>,
        token: &VerifiedToken,
        target: &LegalEntityId,
    ) -> Result<(), Error> {
        let decider = Decider::fetch(req.snapshot.clone(), req.entities, token, &self.audit).await;
        if let EntityData::Unavailable(e) = decider.entity_data() {
            return Err(e.clone().into());
        }
        if !select::may_select(&decider, target).allow {
            return Err(Error::NotAssigned(target.clone()));
        }
        Ok(())
    }

    /// Uses the refresh token up (atomically: of two simultaneous refreshes one wins), stays in
    /// a presented access token's family, or starts a new family living `ttl` seconds.
    async fn continue_family(&self, presented: &Presented, ttl: u64) -> Result<String, Error> {
        match (&presented.refresh, &presented.family) {
            (Some((family, jti)), _) => match self.rotation.consume(family, jti).await? {
                Standing::Fresh => Ok(family.clone()),
                Standing::Used => Err(GrantError::Reused.into()),
                Standing::Revoked => Err(GrantError::Revoked.into()),
                Standing::Unknown => Err(GrantError::UnknownSession.into()),
            },
            // A legate access token whose family the verifier found active: stay in it, so a
            // later reuse anywhere in the family revokes these tokens too.
            (None, Some(family)) => Ok(family.clone()),
            (None, None) => {
                let family = uuid::Uuid::new_v4().to_string();
                self.rotation.start(&family, ttl).await?;
                Ok(family)
            }
        }
    }

    /// A refresh token's header, checked (size, no `crit`, `typ: rt+jwt`), and the key of legate's
    /// that its `kid` names for its `alg`.
    fn refresh_key(
        &self,
        token: &str,
    ) -> Result<(jsonwebtoken::Header, &crate::verify::VerifyKey), GrantError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(GrantError::Malformed("larger than 8 KiB"));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| GrantError::Malformed("not a signed JWT"))?;
        if header.crit.is_some() {
            return Err(GrantError::Malformed("critical header parameter"));
        }
        if !header
            .typ
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(REFRESH_TYP))
        {
            return Err(GrantError::NotARefreshToken);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.verify_keys.get(kid))
            .ok_or(GrantError::NotIssuedHere)?;
        key.check(header.alg)
            .map_err(|_| GrantError::NotIssuedHere)?;
        Ok((header, key))
    }

    /// Verifies a refresh token: legate's key, `typ: rt+jwt`, `iss` and `aud` both legate's issuer,
    /// `exp`/`nbf` against the injected clock.
    fn read_refresh(&self, token: &str, now: u64) -> Result<Presented, GrantError> {
        let (header, key) = self.refresh_key(token)?;
        let mut v = Validation::new(header.alg);
        v.leeway = 0;
        v.validate_exp = false;
        v.validate_nbf = false;
        v.validate_aud = true;
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.issuer]);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &v)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => GrantError::BadSignature,
                ErrorKind::InvalidIssuer => GrantError::NotIssuedHere,
                ErrorKind::InvalidAudience => GrantError::NotARefreshToken,
                _ => GrantError::Malformed("claims"),
            })?
            .claims;
        let num = |name: &str| claims.get(name).and_then(Value::as_u64);
        let text = |name: &str| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let exp = num("exp").ok_or(GrantError::Malformed("exp"))?;
        if now >= exp {
            return Err(GrantError::Expired);
        }
        if num("nbf").is_some_and(|nbf| nbf > now.saturating_add(self.leeway)) {
            return Err(GrantError::NotYetValid);
        }
        let family = text(FAMILY_CLAIM).ok_or(GrantError::Malformed("sid"))?;
        let jti = text("jti").ok_or(GrantError::Malformed("jti"))?;
        let auth_time = num("auth_time").ok_or(GrantError::Malformed("auth_time"))?;
        let token =
            VerifiedToken::from_claims(self.issuer.clone(), header.kid, claims, &self.names)
                .map_err(|_| GrantError::Malformed("customer"))?;
        Ok(Presented {
            token,
            auth_time,
            refresh: Some((family, jti)),
            family: None,
        })
    }
}
