//! A batch of checks for one token: each check parsed once from its own slice of the body, the
//! principal's part of the request built once and shared, and a large batch decided on a blocking
//! thread so it cannot stall the async workers that serve other requests.

use std::{sync::Arc, time::Instant};

use serde_json::value::RawValue;

use crate::{
    audit::{self, Audit},
    decision::Decision,
    entities::{self, Assignments},
    policy::Snapshot,
    request::{self, Check},
    verify::VerifiedToken,
};

/// Batches with more checks than this are decided on tokio's blocking pool (`spawn_blocking`);
/// smaller ones take less time than handing them over would be worth.
pub const BLOCKING_AT: usize = 32;

/// Decides every check of a batch, in order. A check that is not a valid check body is denied on
/// its own with the reason; the others are decided as [`crate::decide`] would.
pub fn decide_all(
    audit: &Audit,
    snapshot: &Snapshot,
    token: &VerifiedToken,
    assignments: &Result<Arc<Assignments>, entities::Error>,
    checks: &[Box<RawValue>],
) -> Vec<Decision> {
    let base = request::Base::for_token(snapshot, token, assignments.as_deref().ok());
    checks
        .iter()
        .map(|raw| {
            let started = Instant::now();
            let check = serde_json::from_str::<Check>(raw.get())
                .map_err(|e| format!("invalid check: {e}"))?;
            crate::decide_on(
                audit,
                snapshot,
                token,
                assignments,
                base.as_ref(),
                &check,
                started,
            )
            .map_err(|e| e.to_string())
        })
        .map(|r| r.unwrap_or_else(Decision::deny))
        .collect()
}

/// [`decide_all`], on a blocking thread when the batch is larger than [`BLOCKING_AT`]. The decisions
/// are logged under the calling request's `x-request-id` either way.
pub async fn decide_all_off_workers(
    audit: Arc<Audit>,
    snapshot: Arc<Snapshot>,
    token: Arc<VerifiedToken>,
    assignments: Result<Arc<Assignments>, entities::Error>,
    checks: Vec<Box<RawValue>>,
) -> Vec<Decision> {
    if checks.len() <= BLOCKING_AT {
        return decide_all(&audit, &snapshot, &token, &assignments, &checks);
    }
    let count = checks.len();
    let request_id = audit::current_request_id();
    let work = move || {
        let run = || decide_all(&audit, &snapshot, &token, &assignments, &checks);
        match request_id {
            Some(id) => audit::with_request_id_sync(id, run),
            None => run(),
        }
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(decisions) => decisions,
        // Only a panic in the decision code gets here: deny every check (fail closed).
        Err(e) => {
            tracing::error!(error = %e, "a batch's decisions did not complete");
            vec![Decision::deny("internal error: the batch was not decided"); count]
        }
    }
}
