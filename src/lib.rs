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
//! `issue` goes the other way: it mints legate's own tokens.

pub mod app;
pub mod audit;
pub mod cli;
pub mod config;
pub mod decision;
pub mod http;
pub mod issue;
pub mod policy;
pub mod request;
pub mod routes;
pub mod signals;
pub mod verify;

use std::time::Instant;

use crate::{
    audit::Audit, decision::Decision, policy::Snapshot, request::Check, verify::VerifiedToken,
};

/// Builds the Cedar request for `check` and evaluates it against `snapshot`, recording the decision.
/// `Err` is the caller's mistake (unknown action, wrong attribute type …), recorded as a deny.
pub fn decide(
    audit: &Audit,
    snapshot: &Snapshot,
    token: &VerifiedToken,
    check: &Check,
) -> Result<Decision, request::Error> {
    let started = Instant::now();
    let result = request::build(snapshot, &token.into(), check)
        .map(|(req, entities)| policy::evaluate(snapshot, &req, &entities));
    let recorded = match &result {
        Ok(d) => d.clone(),
        Err(e) => Decision::deny(e.to_string()),
    };
    audit.decision(token, check, &recorded, snapshot, started.elapsed());
    result
}
