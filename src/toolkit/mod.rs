//! The policy author's toolkit: what `legate test`, `legate authorize` and `legate plan` do without
//! a server.
//!
//! Claims given by hand stand in for a verified token ([`token`], the verifier's own mapping);
//! entities given by hand are added to the snapshot's entity data ([`with_entities`]); checks are
//! decided by the one decision path ([`decide`], the file entity source's assignments). [`suite`]
//! runs test files of named cases; [`authorize`] answers one question.

pub(crate) mod authorize;
pub(crate) mod plan;
pub(crate) mod suite;

use std::sync::Arc;

use cedar_policy::Entity;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{
    decide::Decider,
    decision::Decision,
    entities::FileSource,
    policy::Snapshot,
    request::{self, Check, ResourceRef},
    verify::{self, ClaimNames, VerifiedToken},
};

pub use suite::{read_suite, Expect};
pub(crate) use suite::{run_dir, Error};

/// The issuer hand-written claims are attributed to when they name none.
const TEST_ISSUER: &str = "legate-test";

/// An entity given in a suite (or to `legate authorize --entities`): `{type, id, attrs?,
/// parents?}`, short type names allowed, references written `{type, id}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntitySpec {
    /// Entity type, with or without the namespace.
    #[serde(rename = "type")]
    pub kind: String,
    /// Entity id.
    pub id: String,
    /// Attributes in Cedar JSON form.
    #[serde(default)]
    pub attrs: Map<String, Value>,
    /// Parent entities (`Customer` → the legal entities it is assigned to).
    #[serde(default)]
    pub parents: Vec<EntityRef>,
}

/// `{type, id}`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityRef {
    /// Entity type, with or without the namespace.
    #[serde(rename = "type")]
    pub kind: String,
    /// Entity id.
    pub id: String,
}

/// The token a set of claims stands for, as verification maps it.
pub fn token(claims: &Map<String, Value>, names: &ClaimNames) -> Result<VerifiedToken, String> {
    let issuer = claims
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or(TEST_ISSUER)
        .to_string();
    VerifiedToken::from_claims(issuer, None, claims.clone(), names).map_err(|e| match e {
        verify::Error::MissingClaim(c) if c == names.customer => {
            format!("claims must name the customer in `{c}` (a non-empty string)")
        }
        verify::Error::MissingClaim(c) => format!("claim `{c}` must be a non-empty string"),
        other => other.to_string(),
    })
}

/// Decides `check` for `token` against `snapshot`, with the assignments the file entity source
/// finds in the snapshot's entity data. Nothing is recorded.
pub(crate) fn decide(
    snapshot: Arc<Snapshot>,
    token: &VerifiedToken,
    check: &Check,
) -> Result<Decision, request::Error> {
    let data = FileSource::lookup(&snapshot, &token.customer).into();
    Decider::new(snapshot, data, token, None).decide(check)
}

/// `snapshot` with `specs` added to its entity data (an entity with the same uid is replaced);
/// the same snapshot when there is nothing to add.
pub(crate) fn with_entities(
    snapshot: &Arc<Snapshot>,
    specs: &[EntitySpec],
) -> Result<Arc<Snapshot>, String> {
    if specs.is_empty() {
        return Ok(snapshot.clone());
    }
    let entities: Vec<Entity> = specs
        .iter()
        .map(|s| {
            let r = ResourceRef {
                kind: s.kind.clone(),
                id: s.id.clone(),
                attrs: Some(s.attrs.clone()),
            };
            let parents: Vec<(String, String)> = s
                .parents
                .iter()
                .map(|p| (p.kind.clone(), p.id.clone()))
                .collect();
            request::entity(snapshot, &r, &parents)
                .map_err(|e| format!("{} {:?}: {e}", s.kind, s.id))
        })
        .collect::<Result<_, _>>()?;
    Ok(Arc::new(snapshot.with_entities(entities)?))
}

#[cfg(test)]
mod tests;
