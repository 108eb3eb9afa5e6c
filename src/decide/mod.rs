//! The one way a check is decided. Every caller — `/v1/authorize` and its batch, forward-auth,
//! the refresh endpoint's `selectLegalEntity` check, `/v1/me`, `legate authorize` and `legate
//! test` — opens a [`Decider`] for one verified token and asks it one or many checks.
//!
//! In: a policy snapshot (taken once by the caller, so every check of a request sees the same set),
//! the verified token and the entity source's answer for its customer ([`EntityData`], fetched
//! once). Out: a [`Decision`] per check, each recorded (counters and decision log) unless the
//! decider was opened unrecorded (the `/v1/me` picker, which only lists what may be selected).
//! A check the caller got wrong (unknown action, attributes that do not fit the schema …) is an
//! `Err` the caller turns into a 400 or a deny; it is recorded as a deny either way.

pub mod batch;
pub(crate) mod select;

use std::{sync::Arc, time::Instant};

use crate::{
    audit::Audit,
    decision::Decision,
    entities::{self, Assignments, EntitySource},
    policy::Snapshot,
    request::{self, Check},
    verify::VerifiedToken,
};

/// The entity source's answer for one customer: the assignments, or why there are none.
#[derive(Debug, Clone)]
pub enum EntityData {
    /// What the source knows about the customer (possibly nothing).
    Known(Arc<Assignments>),
    /// The source could not answer; checks are decided without assignments (fail closed).
    Unavailable(entities::Error),
}

impl EntityData {
    /// The assignments, when the source answered.
    pub fn known(&self) -> Option<&Assignments> {
        match self {
            EntityData::Known(a) => Some(a),
            EntityData::Unavailable(_) => None,
        }
    }
}

impl From<Result<Arc<Assignments>, entities::Error>> for EntityData {
    fn from(r: Result<Arc<Assignments>, entities::Error>) -> Self {
        match r {
            Ok(a) => EntityData::Known(a),
            Err(e) => EntityData::Unavailable(e),
        }
    }
}

impl From<Assignments> for EntityData {
    fn from(a: Assignments) -> Self {
        EntityData::Known(Arc::new(a))
    }
}

/// Records the allow that forward-auth gives a request no route matches when
/// `forward_auth.unmatched = "allow"`: no policy decides it, but it is a decision like any other,
/// so it is counted (`action="unmatched"`) and logged, with the original method and path as the
/// resource (`{"type": "Request", "id": "GET /path"}`).
pub(crate) fn record_unmatched_allow(
    audit: &Audit,
    snapshot: &Snapshot,
    token: &VerifiedToken,
    request: String,
) -> Decision {
    let decision = Decision {
        allow: true,
        policies: Vec::new(),
        errors: Vec::new(),
    };
    let check = Check {
        action: crate::audit::UNMATCHED_ACTION.into(),
        resource: request::ResourceRef {
            kind: "Request".into(),
            id: request,
            attrs: None,
        },
        context: None,
    };
    audit.decision(
        token,
        &check,
        &decision,
        snapshot,
        std::time::Duration::ZERO,
    );
    decision
}

/// Decides checks for one token against one snapshot with one entity-source answer.
#[derive(Debug)]
pub struct Decider<'a> {
    snapshot: Arc<Snapshot>,
    token: &'a VerifiedToken,
    data: EntityData,
    audit: Option<&'a Audit>,
    /// The principal's part of every request, built once for all checks.
    base: Result<request::Base, request::Error>,
}

impl<'a> Decider<'a> {
    /// Asks `source` once for the token's customer and opens a recording decider.
    pub async fn fetch(
        snapshot: Arc<Snapshot>,
        source: &dyn EntitySource,
        token: &'a VerifiedToken,
        audit: &'a Audit,
    ) -> Self {
        let data = source.assignments(&snapshot, &token.customer).await.into();
        Self::new(snapshot, data, token, Some(audit))
    }

    /// A decider over entity data the caller already has; `audit: None` records nothing.
    pub fn new(
        snapshot: Arc<Snapshot>,
        data: EntityData,
        token: &'a VerifiedToken,
        audit: Option<&'a Audit>,
    ) -> Self {
        let base = request::Base::new(&snapshot, &token.into(), data.known());
        Self {
            snapshot,
            token,
            data,
            audit,
            base,
        }
    }

    /// The same decider, recording nothing.
    pub fn unrecorded(self) -> Self {
        Self {
            audit: None,
            ..self
        }
    }

    /// The snapshot every check is decided against.
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snapshot
    }

    /// The token the checks are asked for.
    pub fn token(&self) -> &VerifiedToken {
        self.token
    }

    /// The entity source's answer.
    pub fn entity_data(&self) -> &EntityData {
        &self.data
    }

    /// The base, or the reason it could not be built — reported as a request built from scratch
    /// would report it: an unknown `action` first.
    fn base(&self, action: &str) -> Result<&request::Base, request::Error> {
        self.base.as_ref().map_err(|e| {
            if self.snapshot.actions().contains_key(action) {
                e.clone()
            } else {
                request::Error::UnknownAction(action.to_string())
            }
        })
    }

    /// The known half of a request for `action` whose resource is unknown (for `/v1/plan`): the
    /// same principal part, selected entity, roles and context a decision of this decider uses.
    pub fn known(
        &self,
        action: &str,
        caller_context: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Result<request::Known, request::Error> {
        self.base(action)?
            .known(&self.snapshot, action, caller_context)
    }

    /// Builds the Cedar request for `check` and evaluates it, recording the decision. When the
    /// entity source could not answer, the check is decided without assignments and `errors` says
    /// so. `Err` is the caller's mistake, recorded as a deny.
    pub fn decide(&self, check: &Check) -> Result<Decision, request::Error> {
        let started = Instant::now();
        let snapshot = &self.snapshot;
        let result = self
            .base(&check.action)
            .and_then(|base| base.build(snapshot, check))
            .map(|(req, entities)| crate::policy::evaluate(snapshot, &req, &entities))
            .map(|mut d| {
                if let EntityData::Unavailable(e) = &self.data {
                    d.errors.push(format!(
                        "entity source unavailable, decided without assignments: {e}"
                    ));
                }
                d
            });
        if let Some(audit) = self.audit {
            let recorded = match &result {
                Ok(d) => d.clone(),
                Err(e) => Decision::deny(e.to_string()),
            };
            audit.decision(self.token, check, &recorded, snapshot, started.elapsed());
        }
        result
    }

    /// Decides each check in order; a check that could not be read (`Err(reason)`) or decided is
    /// a deny with the reason, so one bad check does not sink the others.
    pub fn decide_each(
        &self,
        checks: impl IntoIterator<Item = Result<Check, String>>,
    ) -> Vec<Decision> {
        checks
            .into_iter()
            .map(|c| c.and_then(|c| self.decide(&c).map_err(|e| e.to_string())))
            .map(|r| r.unwrap_or_else(Decision::deny))
            .collect()
    }
}
