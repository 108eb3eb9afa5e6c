//! Claims of a verified token, mapped to legate's domain: which customer, which legal entity.
//!
//! The claim names come from `[claims]`; everything else in the token stays in [`VerifiedToken::claims`]
//! for attribute mapping and audit.

use std::fmt;

use serde_json::{Map, Value};

use super::Error;

/// The customer a token speaks for: the Cedar principal's id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CustomerId(pub String);

/// A legal entity id, as found in the `legalEntityId` claim or a request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LegalEntityId(pub String);

impl fmt::Display for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for LegalEntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The claim naming an access or refresh token's family (OpenID's session id claim).
pub(crate) const FAMILY_CLAIM: &str = "sid";

/// Claims legate sets itself in the tokens it issues; never copied from a presented token, and
/// never the name of `claims.legal_entity` (nor of `claims.customer`, except `sub`, which carries
/// the same value), or an issued token would say two things in one claim.
pub(crate) const RESERVED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "auth_time",
    "client_id",
    FAMILY_CLAIM,
];

/// Which claims carry the customer and the selected legal entity.
#[derive(Debug, Clone)]
pub struct ClaimNames {
    /// e.g. `sub`
    pub customer: String,
    /// e.g. `legalEntityId`
    pub legal_entity: String,
}

/// A token whose signature, issuer, audience and lifetime have been checked.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    /// `iss`
    pub issuer: String,
    /// The `kid` that verified it, if the header had one.
    pub kid: Option<String>,
    /// The customer (principal).
    pub customer: CustomerId,
    /// The selected legal entity, if the token carries one.
    pub legal_entity: Option<LegalEntityId>,
    /// `jti`, if present.
    pub jti: Option<String>,
    /// All claims, for attribute mapping and token exchange.
    pub claims: Map<String, Value>,
}

impl VerifiedToken {
    /// The token `claims` stand for, with the customer and legal entity read by `names`: what
    /// verification makes of a token once its signature and lifetime are checked (`legate test`
    /// and `legate authorize` use it for claims given by hand, the issuer for its refresh tokens).
    pub fn from_claims(
        issuer: String,
        kid: Option<String>,
        claims: Map<String, Value>,
        names: &ClaimNames,
    ) -> Result<Self, Error> {
        let customer = match claims.get(&names.customer) {
            Some(Value::String(s)) if crate::shared::is_valid_id(s) => CustomerId(s.clone()),
            _ => return Err(Error::MissingClaim(names.customer.clone())),
        };
        let legal_entity = match claims.get(&names.legal_entity) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if crate::shared::is_valid_id(s) => {
                Some(LegalEntityId(s.clone()))
            }
            Some(_) => return Err(Error::MissingClaim(names.legal_entity.clone())),
        };
        let jti = claims
            .get("jti")
            .and_then(Value::as_str)
            .map(str::to_string);
        Ok(Self {
            issuer,
            kid,
            customer,
            legal_entity,
            jti,
            claims,
        })
    }

    /// A token for `customer` (claim `sub`), optionally selecting `legal_entity` (unit tests).
    #[cfg(test)]
    pub(crate) fn for_test(customer: &str, legal_entity: Option<&str>) -> Self {
        let mut claims = Map::new();
        claims.insert("sub".into(), customer.into());
        if let Some(le) = legal_entity {
            claims.insert("legalEntityId".into(), le.into());
        }
        let names = ClaimNames {
            customer: "sub".into(),
            legal_entity: "legalEntityId".into(),
        };
        Self::from_claims("https://idp.test".into(), None, claims, &names)
            .expect("a test token names its customer")
    }

    /// A numeric claim such as `iat` or `auth_time`.
    pub fn time_claim(&self, name: &str) -> Option<u64> {
        self.claims.get(name).and_then(Value::as_u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names() -> ClaimNames {
        ClaimNames {
            customer: "sub".into(),
            legal_entity: "legalEntityId".into(),
        }
    }

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn maps_customer_and_legal_entity() {
        let t = VerifiedToken::from_claims(
            "i".into(),
            None,
            map(json!({"sub": "C-1", "legalEntityId": "LE-1", "jti": "j"})),
            &names(),
        )
        .unwrap();
        assert_eq!(t.customer, CustomerId("C-1".into()));
        assert_eq!(t.legal_entity, Some(LegalEntityId("LE-1".into())));
        assert_eq!(t.jti.as_deref(), Some("j"));
    }

    #[test]
    fn legal_entity_is_optional_but_must_be_a_string() {
        let none = VerifiedToken::from_claims("i".into(), None, map(json!({"sub": "C"})), &names());
        assert_eq!(none.unwrap().legal_entity, None);
        let bad = VerifiedToken::from_claims(
            "i".into(),
            None,
            map(json!({"sub": "C", "legalEntityId": 7})),
            &names(),
        );
        assert_eq!(
            bad.unwrap_err(),
            Error::MissingClaim("legalEntityId".into())
        );
    }

    #[test]
    fn customer_is_required() {
        let e = VerifiedToken::from_claims("i".into(), None, map(json!({"sub": ""})), &names());
        assert_eq!(e.unwrap_err(), Error::MissingClaim("sub".into()));
    }
}
