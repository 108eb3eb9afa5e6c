//! A batch of checks for one token: each check parsed once from its own slice of the body (no
//! `serde_json::Value` in between), the principal's part of the request built once by the
//! [`Decider`], and a large batch decided on tokio's blocking pool so it cannot stall the async
//! workers that serve other requests.

use std::sync::Arc;

use serde_json::value::RawValue;

use super::{Decider, EntityData};
use crate::{
    audit, audit::Audit, decision::Decision, policy::Snapshot, request::Check,
    verify::VerifiedToken,
};

/// Batches with more checks than this are decided on the blocking pool (`spawn_blocking`); smaller
/// ones take less time than handing them over is worth.
pub const BLOCKING_AT: usize = 32;

/// Reads each raw check; one that is not a valid check body is `Err(reason)` on its own.
pub fn parse(checks: &[Box<RawValue>]) -> impl Iterator<Item = Result<Check, String>> + '_ {
    checks.iter().map(|raw| {
        serde_json::from_str::<Check>(raw.get()).map_err(|e| format!("invalid check: {e}"))
    })
}

/// Decides every check in order (as [`Decider::decide_each`]), on a blocking thread when there are
/// more than [`BLOCKING_AT`]. The decisions are recorded under the calling request's `x-request-id`
/// either way.
pub async fn decide_off_workers(
    snapshot: Arc<Snapshot>,
    data: EntityData,
    token: Arc<VerifiedToken>,
    audit: Arc<Audit>,
    checks: Vec<Box<RawValue>>,
) -> Vec<Decision> {
    let count = checks.len();
    let run =
        move || Decider::new(snapshot, data, &token, Some(&audit)).decide_each(parse(&checks));
    if count <= BLOCKING_AT {
        return run();
    }
    let request_id = audit::current_request_id();
    let work = move || match request_id {
        Some(id) => audit::with_request_id_sync(id, run),
        None => run(),
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
