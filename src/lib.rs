//! legate: an authorization sidecar for B2B storefronts.
//!
//! A request flows through the stages in the order of the modules below:
//!
//! ```text
//! HTTP in (http)  ->  verify the bearer JWT (verify)  ->  build the Cedar request (request)
//!                 ->  evaluate against one policy snapshot (policy)  ->  Decision + audit event
//! ```
//!
//! [`decide`] is that pipeline after verification; the HTTP handlers and `legate authorize` call it.
//! `entities` supplies what the token does not say (assignments, legal-entity data); `issue` goes the
//! other way: it mints legate's own tokens when a customer switches legal entity.

pub mod app;
pub mod audit;
pub mod batch;
pub mod cli;
pub mod config;
pub mod decision;
pub mod entities;
pub mod http;
pub mod issue;
pub mod policy;
pub mod request;
pub mod routes;
pub mod signals;
pub mod suite;
pub mod telemetry;
pub mod verify;

use std::{future::Future, pin::Pin, sync::Arc, time::Instant};

use crate::{
    audit::Audit, decision::Decision, entities::Assignments, policy::Snapshot, request::Check,
    verify::VerifiedToken,
};

/// A boxed future, for the async methods of `dyn` traits (entity source, rotation store).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Builds the Cedar request for `check` and evaluates it against `snapshot`, recording the decision.
/// `assignments` is the entity source's answer for the token's customer (`state.entities`); when the
/// source could not answer, the check is decided without assignments (fail closed) and `errors` says
/// so. `Err` is the caller's mistake (unknown action, wrong attribute type …), recorded as a deny.
pub fn decide(
    audit: &Audit,
    snapshot: &Snapshot,
    token: &VerifiedToken,
    assignments: &Result<Arc<Assignments>, entities::Error>,
    check: &Check,
) -> Result<Decision, request::Error> {
    let started = Instant::now();
    let base = request::Base::for_token(snapshot, token, assignments.as_deref().ok());
    decide_on(
        audit,
        snapshot,
        token,
        assignments,
        base.as_ref(),
        check,
        started,
    )
}

/// [`decide`] with the principal's part of the request already built (`base`, shared by the checks
/// of a batch); `started` is when this check's decision began.
pub fn decide_on(
    audit: &Audit,
    snapshot: &Snapshot,
    token: &VerifiedToken,
    assignments: &Result<Arc<Assignments>, entities::Error>,
    base: Result<&request::Base<'_>, &request::Error>,
    check: &Check,
    started: Instant,
) -> Result<Decision, request::Error> {
    let result = base
        .map_err(Clone::clone)
        .and_then(|base| base.build(check))
        .map(|(req, entities)| policy::evaluate(snapshot, &req, &entities))
        .map(|mut d| {
            if let Err(e) = assignments {
                d.errors.push(format!(
                    "entity source unavailable, decided without assignments: {e}"
                ));
            }
            d
        });
    let recorded = match &result {
        Ok(d) => d.clone(),
        Err(e) => Decision::deny(e.to_string()),
    };
    audit.decision(token, check, &recorded, snapshot, started.elapsed());
    result
}
