//! The refresh flow: verify what is presented, check the session limit and the refresh token's
//! standing, ask the policies `selectLegalEntity` with the entity source's data, rotate, mint.
//!
//! Order matters. Everything that can refuse runs before the refresh token is used up, so a refusal
//! (403 not assigned, 503 entity source) leaves the token usable and issues nothing; but a *reused*
//! refresh token is detected first, so it revokes its family whatever else is wrong with the request.
//! The final use is atomic ([`RotationStore::consume`](super::RotationStore::consume)): of two
//! simultaneous refreshes with one token exactly one gets tokens.
//!
//! A legate access token presented as a grant is used up the same way (its `jti` is recorded in its
//! family), and the new tokens stay in that family: one stolen access token buys one exchange, and a
//! second use revokes the whole session. An identity provider's token starts a new family; when it
//! names no legal entity and the request asks for none, the customer's default entity is chosen
//! (the one the entity source marks, else the only one the customer may select), subject to the
//! same `selectLegalEntity` check as any target.

use jsonwebtoken::{errors::ErrorKind, Validation};
use serde_json::{Map, Value};

use super::{
    mint::Session, rotation::FAMILY_CLAIM, Client, Error, GrantError, Issued, Issuer, Standing,
    REFRESH_TYP,
};
use std::sync::Arc;

use crate::{
    audit::TokenEvent,
    decide::{select, Decider, EntityData},
    entities::{Assignments, EntitySource},
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
    /// The client that authenticated, or the public client the request named.
    pub client: Option<Client>,
    /// RFC 8693 `audience` / `resource` values, already checked against `issue.audience`.
    pub audience: Option<Vec<String>>,
}

/// The presented token, read.
struct Presented {
    /// What it says, as verification maps it (customer, legal entity, claims, `jti`).
    token: VerifiedToken,
    auth_time: u64,
    /// `(family, jti)` of a presented refresh token or legate access token: good once, and the new
    /// tokens continue the family.
    once: Option<(String, String)>,
    /// An identity provider's token: a login, where the default legal entity may be chosen.
    login: bool,
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
        event.family = presented.once.as_ref().map(|(f, _)| f.clone());

        let session_end = presented.auth_time.saturating_add(self.max_session);
        if now >= session_end {
            return Err(GrantError::SessionEnded.into());
        }
        if let Some((family, jti)) = &presented.once {
            self.check_standing(family, jti).await?;
        }
        let client_id = self.client_id(&req, &presented)?;
        let mut target = req.target.clone().or(presented.token.legal_entity.clone());
        let wants_default = target.is_none() && presented.login && self.default_entity;
        if target.is_some() || wants_default {
            // One entity-source answer for the whole refresh: a default is chosen from the very
            // data it is then checked against.
            let data = self.entity_data(&req, &presented.token).await?;
            if wants_default {
                target = self.default_target(&req, &presented.token, &data);
            }
            event.to_entity = target.as_ref().map(|l| l.0.clone());
            if let Some(target) = &target {
                self.check_target(&req, &presented.token, data, target)?;
            }
        }
        let family = self.continue_family(&presented, session_end - now).await?;
        event.family = Some(family.clone());

        let session = Session {
            extra: self.carry_over(
                &presented.token.claims,
                req.snapshot.customer_attrs().keys(),
            ),
            customer: presented.token.customer,
            legal_entity: target.clone(),
            auth_time: presented.auth_time,
            family,
            client_id,
            audience: req.audience.clone(),
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
                let v = req.verifier.verify(t).await.map_err(|e| {
                    crate::verify::count_rejection(&e);
                    Error::InvalidToken(e)
                })?;
                let ours = v.issuer == self.issuer;
                let family = ours
                    .then(|| v.claims.get(FAMILY_CLAIM).and_then(Value::as_str))
                    .flatten()
                    .map(str::to_string);
                let once = match family {
                    Some(f) => {
                        let jti = v.jti.clone().ok_or(GrantError::Malformed("jti"))?;
                        Some((f, jti))
                    }
                    None => None,
                };
                let auth_time = v
                    .time_claim("auth_time")
                    .or_else(|| v.time_claim("iat"))
                    .unwrap_or(now)
                    .min(now);
                Ok(Presented {
                    token: v,
                    auth_time,
                    once,
                    login: !ours,
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

    /// The `client_id` the new tokens carry: the authenticated client (or the public client the
    /// request named), else the presented token's `client_id` or `azp`, else the default. RFC 6749
    /// §6: a token legate issued to a client is good only for that client, public or confidential.
    fn client_id(&self, req: &RefreshRequest<'_>, presented: &Presented) -> Result<String, Error> {
        let claim = |n: &str| presented.token.claims.get(n).and_then(Value::as_str);
        let bound = claim("client_id");
        if let (Some(client), Some(bound), Some(_)) = (&req.client, bound, &presented.once) {
            if client.id != bound {
                return Err(GrantError::WrongClient.into());
            }
        }
        Ok(req
            .client
            .as_ref()
            .map(|c| c.id.clone())
            .or_else(|| bound.or_else(|| claim("azp")).map(str::to_string))
            .unwrap_or_else(|| self.default_client_id.clone()))
    }

    /// The entity source's answer for the token's customer, asked once per refresh; no answer is
    /// a 503.
    async fn entity_data(
        &self,
        req: &RefreshRequest<'_>,
        token: &VerifiedToken,
    ) -> Result<Arc<Assignments>, Error> {
        match EntityData::from(
            req.entities
                .assignments(&req.snapshot, &token.customer)
                .await,
        ) {
            EntityData::Known(a) => Ok(a),
            EntityData::Unavailable(e) => Err(e.into()),
        }
    }

    /// A login without a target: the source's default entity when the policies let the customer
    /// select it, else the only selectable one, else none. Asked unrecorded (it lists options; the
    /// target chosen is then checked, and recorded, by [`Self::check_target`]).
    fn default_target(
        &self,
        req: &RefreshRequest<'_>,
        token: &VerifiedToken,
        assignments: &Arc<Assignments>,
    ) -> Option<LegalEntityId> {
        let data = EntityData::Known(assignments.clone());
        let decider = Decider::new(req.snapshot.clone(), data, token, None);
        if let Some(d) = &assignments.default {
            if select::may_select(&decider, d).allow {
                return Some(d.clone());
            }
        }
        match select::selectable(&decider, assignments).as_slice() {
            [only] => Some(LegalEntityId(only.id.clone())),
            _ => None,
        }
    }

    /// The policies must let the customer select `target`, asked with the entity source's data
    /// through the one decision path (and recorded there).
    fn check_target(
        &self,
        req: &RefreshRequest<'_>,
        token: &VerifiedToken,
        assignments: Arc<Assignments>,
        target: &LegalEntityId,
    ) -> Result<(), Error> {
        let data = EntityData::Known(assignments);
        let decider = Decider::new(req.snapshot.clone(), data, token, Some(&self.audit));
        if !select::may_select(&decider, target).allow {
            return Err(Error::NotAssigned(target.clone()));
        }
        Ok(())
    }

    /// Uses the refresh token or legate access token up (atomically: of two simultaneous uses one
    /// wins) and stays in its family, so a later reuse anywhere in the family revokes these tokens
    /// too; or starts a new family living `ttl` seconds.
    async fn continue_family(&self, presented: &Presented, ttl: u64) -> Result<String, Error> {
        match &presented.once {
            Some((family, jti)) => match self.rotation.consume(family, jti).await? {
                Standing::Fresh => Ok(family.clone()),
                Standing::Used => Err(GrantError::Reused.into()),
                Standing::Revoked => Err(GrantError::Revoked.into()),
                Standing::Unknown => Err(GrantError::UnknownSession.into()),
            },
            None => {
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
            once: Some((family, jti)),
            login: false,
        })
    }
}
