//! Logout (RFC 7009): a refresh or access token legate issued revokes its whole family (`sid`), so
//! every refresh token of the session is then `invalid_grant` and every access token 401, on every
//! replica sharing the rotation store.
//!
//! The token must carry one of legate's signatures and its issuer; its expiry is not checked (an
//! expired token of a live session still ends that session, which is what logging out means). A
//! token legate did not issue, or one without a family, revokes nothing, and the caller is not told
//! which (RFC 7009 §2.2: the answer is the same).

use jsonwebtoken::Validation;
use serde_json::{Map, Value};

use super::{rotation::FAMILY_CLAIM, Issuer, StoreError, ACCESS_TYP, REFRESH_TYP};
use crate::verify::MAX_TOKEN_BYTES;

/// What a revocation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Revoked {
    /// The family was revoked.
    Family(String),
    /// Not a token of a legate family: nothing to do.
    Nothing(&'static str),
    /// A token issued to another client than `client`: refused, nothing revoked (RFC 7009 §2.1).
    OtherClient,
}

impl Issuer {
    /// Revokes the family of `token` if legate issued it, unless it was issued to another client
    /// than `client` (the authenticated one, or the public one the request named).
    pub(crate) async fn revoke(
        &self,
        token: &str,
        client: Option<&str>,
    ) -> Result<Revoked, StoreError> {
        let claims = match self.read_own(token) {
            Ok(c) => c,
            Err(why) => {
                metrics::counter!("legate_token_revocations_total", "result" => "ignored")
                    .increment(1);
                tracing::info!(target: "legate::audit", event = "token_revocation_ignored", reason = why, "token revocation ignored");
                return Ok(Revoked::Nothing(why));
            }
        };
        let bound = claims.get("client_id").and_then(Value::as_str);
        if let (Some(client), Some(bound)) = (client, bound) {
            if client != bound {
                tracing::info!(target: "legate::audit", event = "token_revocation_refused", client_id = client, "token revocation refused: issued to another client");
                return Ok(Revoked::OtherClient);
            }
        }
        let Some(family) = claims.get(FAMILY_CLAIM).and_then(Value::as_str) else {
            metrics::counter!("legate_token_revocations_total", "result" => "ignored").increment(1);
            return Ok(Revoked::Nothing("no family"));
        };
        self.rotation.revoke(family).await?;
        metrics::counter!("legate_token_revocations_total", "result" => "revoked").increment(1);
        let text = |n: &str| claims.get(n).and_then(Value::as_str).unwrap_or("");
        tracing::info!(
            target: "legate::audit",
            event = "token_revoked",
            customer = text(&self.names.customer),
            jti = text("jti"),
            client_id = text("client_id"),
            family,
            "session revoked"
        );
        Ok(Revoked::Family(family.to_string()))
    }

    /// The claims of an access or refresh token signed by one of legate's keys for its issuer.
    fn read_own(&self, token: &str) -> Result<Map<String, Value>, &'static str> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err("larger than 8 KiB");
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| "not a signed JWT")?;
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case(ACCESS_TYP) || t.eq_ignore_ascii_case(REFRESH_TYP)
        });
        if !typ_ok || header.crit.is_some() {
            return Err("not a legate token");
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.verify_keys.get(kid))
            .ok_or("not signed by legate")?;
        key.check(header.alg).map_err(|_| "not signed by legate")?;
        let mut v = Validation::new(header.alg);
        v.validate_exp = false;
        v.validate_nbf = false;
        v.validate_aud = false;
        v.set_issuer(&[&self.issuer]);
        v.set_required_spec_claims(&["iss"]);
        jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &v)
            .map(|d| d.claims)
            .map_err(|_| "signature or issuer")
    }
}
