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
use crate::{
    audit::TokenEvent,
    entities::{select, Assignments, EntitySource},
    policy::Snapshot,
    request::Principal,
    verify::{CustomerId, LegalEntityId, Verifier, MAX_TOKEN_BYTES},
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
    pub snapshot: &'a Snapshot,
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
    customer: CustomerId,
    legal_entity: Option<LegalEntityId>,
    auth_time: u64,
    claims: Map<String, Value>,
    /// `(family, jti)` of a presented refresh token or legate access token: good once, and the new
    /// tokens continue the family.
    once: Option<(String, String)>,
    /// An identity provider's token: a login, where the default legal entity may be chosen.
    login: bool,
    jti: Option<String>,
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

    async fn run(&self, req: RefreshRequest<'_>, event: &mut TokenEvent) -> Result<Issued, Error> {
        let now = self.clock.now();
        let presented = match &req.grant {
            Grant::RefreshToken(t) => self.read_refresh(t, now)?,
            Grant::AccessToken(t) => {
                let v = req.verifier.verify(t).await.map_err(Error::InvalidToken)?;
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
                Presented {
                    customer: v.customer,
                    legal_entity: v.legal_entity,
                    auth_time,
                    claims: v.claims,
                    once,
                    login: !ours,
                    jti: v.jti,
                }
            }
        };
        event.customer = Some(presented.customer.0.clone());
        event.from_entity = presented.legal_entity.as_ref().map(|l| l.0.clone());
        event.old_jti = presented.jti.clone();
        event.family = presented.once.as_ref().map(|(f, _)| f.clone());

        let session_end = presented.auth_time.saturating_add(self.max_session);
        if now >= session_end {
            return Err(GrantError::SessionEnded.into());
        }
        if let Some((family, jti)) = &presented.once {
            match self.rotation.peek(family, jti).await? {
                Standing::Fresh => {}
                Standing::Used => {
                    self.rotation.revoke(family).await?;
                    return Err(GrantError::Reused.into());
                }
                Standing::Revoked => return Err(GrantError::Revoked.into()),
                Standing::Unknown => return Err(GrantError::UnknownSession.into()),
            }
        }
        // RFC 6749 §6: a token legate issued to a confidential client is good only for that client.
        let bound = presented.claims.get("client_id").and_then(Value::as_str);
        if let (Some(client), Some(bound), Some(_)) = (&req.client, bound, &presented.once) {
            if client.confidential && client.id != bound {
                return Err(GrantError::WrongClient.into());
            }
        }
        let client_id = req
            .client
            .as_ref()
            .map(|c| c.id.clone())
            .or_else(|| bound.map(str::to_string))
            .or_else(|| {
                let azp = presented.claims.get("azp").and_then(Value::as_str);
                azp.map(str::to_string)
            })
            .unwrap_or_else(|| self.default_client_id.clone());

        // `context.legalEntity` of the check is the presented token's entity (absent at login), so
        // a policy can forbid switching once one is chosen.
        let principal = Principal {
            customer: presented.customer.clone(),
            legal_entity: presented.legal_entity.clone(),
            claims: presented.claims.clone(),
        };
        let mut target = req.target.clone().or(presented.legal_entity.clone());
        let mut assignments: Option<std::sync::Arc<Assignments>> = None;
        if target.is_none() && presented.login && self.default_entity {
            let a = req
                .entities
                .assignments(req.snapshot, &presented.customer)
                .await?;
            target = default_entity(req.snapshot, &principal, &a);
            assignments = Some(a);
        }
        event.to_entity = target.as_ref().map(|l| l.0.clone());
        if let Some(target) = &target {
            let assignments = match assignments {
                Some(a) => a,
                None => {
                    req.entities
                        .assignments(req.snapshot, &presented.customer)
                        .await?
                }
            };
            let decision = select::may_select(req.snapshot, &principal, Some(&assignments), target);
            if !decision.allow {
                return Err(Error::NotAssigned(target.clone()));
            }
        }

        let ttl = session_end - now;
        let family = match &presented.once {
            // A refresh token, or a legate access token whose family the verifier found active:
            // used up now, and the new tokens stay in its family, so a later reuse anywhere in
            // the family revokes these tokens too.
            Some((family, jti)) => match self.rotation.consume(family, jti).await? {
                Standing::Fresh => family.clone(),
                Standing::Used => return Err(GrantError::Reused.into()),
                Standing::Revoked => return Err(GrantError::Revoked.into()),
                Standing::Unknown => return Err(GrantError::UnknownSession.into()),
            },
            None => {
                let family = uuid::Uuid::new_v4().to_string();
                self.rotation.start(&family, ttl).await?;
                family
            }
        };
        event.family = Some(family.clone());

        let session = Session {
            extra: self.carry_over(&presented.claims, req.snapshot.customer_attrs.keys()),
            customer: presented.customer,
            legal_entity: target.clone(),
            auth_time: presented.auth_time,
            family,
            client_id,
            audience: req.audience,
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

    /// Verifies a refresh token: legate's key, `typ: rt+jwt`, `iss` and `aud` both legate's issuer,
    /// `exp`/`nbf` against the injected clock.
    fn read_refresh(&self, token: &str, now: u64) -> Result<Presented, GrantError> {
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
        let customer = text(&self.names.customer).ok_or(GrantError::Malformed("customer"))?;
        let family = text(FAMILY_CLAIM).ok_or(GrantError::Malformed("sid"))?;
        let jti = text("jti").ok_or(GrantError::Malformed("jti"))?;
        let auth_time = num("auth_time").ok_or(GrantError::Malformed("auth_time"))?;
        let legal_entity = text(&self.names.legal_entity).map(LegalEntityId);
        Ok(Presented {
            customer: CustomerId(customer),
            legal_entity,
            auth_time,
            once: Some((family, jti.clone())),
            login: false,
            jti: Some(jti),
            claims,
        })
    }
}

/// The legal entity a login without one gets: the one the source marks as the customer's default
/// if the policies let them select it, else the only one they may select, else none.
fn default_entity(
    snapshot: &Snapshot,
    principal: &Principal,
    assignments: &Assignments,
) -> Option<LegalEntityId> {
    if let Some(d) = &assignments.default {
        if select::may_select(snapshot, principal, Some(assignments), d).allow {
            return Some(d.clone());
        }
    }
    match select::selectable(snapshot, principal, assignments).as_slice() {
        [only] => Some(LegalEntityId(only.id.clone())),
        _ => None,
    }
}
