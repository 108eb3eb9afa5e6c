//! `legate authorize`: one check, decided from the command line without a server, exactly as
//! `/v1/authorize` would decide it for a token with the given claims.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::{decide, token, with_entities, EntitySpec};
use crate::{
    decision::Decision,
    policy::Snapshot,
    request::{self, Check},
    verify::{ClaimNames, VerifiedToken},
};

/// What is asked: the token's claims, the check, and entities added to the entity data.
#[derive(Debug, Clone)]
pub(crate) struct Question {
    /// The claims standing in for a verified token.
    pub claims: Map<String, Value>,
    /// The check, as in a `/v1/authorize` body.
    pub check: Check,
    /// Entities added to (or replacing) `entities.json` for this question.
    pub entities: Vec<EntitySpec>,
}

/// The answer: who asked and the decision.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    /// The token the claims stand for.
    pub token: VerifiedToken,
    /// The decision.
    pub decision: Decision,
}

/// Why a question could not be decided.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The claims or the entities are not usable.
    #[error("{0}")]
    Input(String),
    /// The check does not fit the schema.
    #[error("the check is invalid: {0}")]
    Check(#[from] request::Error),
}

/// Decides `question` against `snapshot`.
pub(crate) fn ask(
    snapshot: &Arc<Snapshot>,
    names: &ClaimNames,
    q: &Question,
) -> Result<Answer, Error> {
    let snapshot = with_entities(snapshot, &q.entities).map_err(Error::Input)?;
    let token = token(&q.claims, names).map_err(Error::Input)?;
    let decision = decide(snapshot, &token, &q.check)?;
    Ok(Answer { token, decision })
}

impl Answer {
    /// The answer as `/v1/authorize` gives it.
    pub(crate) fn to_json(&self) -> Value {
        let mut answer = serde_json::to_value(&self.decision).unwrap_or_default();
        answer["principal"] = json!(self.token.customer.0);
        answer["legal_entity_id"] = json!(self.token.legal_entity.as_ref().map(|l| &l.0));
        answer
    }

    /// The answer for a person: the decision, who, what decided it and any errors, one per line.
    pub(crate) fn to_text(&self) -> String {
        let d = &self.decision;
        let legal_entity = self
            .token
            .legal_entity
            .as_ref()
            .map_or("(none)", |l| l.0.as_str());
        let policies = if d.policies.is_empty() {
            "(none: no permit applies, so the default is deny)".to_string()
        } else {
            d.policies.join(", ")
        };
        let mut out = format!(
            "{}\n  principal: {}  legal entity: {legal_entity}\n  determining policies: {policies}\n",
            d.as_str(),
            self.token.customer
        );
        for e in &d.errors {
            out.push_str(&format!("  error: {e}\n"));
        }
        out
    }
}
