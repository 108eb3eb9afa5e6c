//! A batch of checks for one token: each check parsed once from its own slice of the body (no
//! `serde_json::Value` in between), the principal's part of the request built once by the
//! [`Decider`], and the checks decided in chunks of [`CHUNK`], yielding to the runtime between
//! chunks, so a 1,000-check batch holds an async worker for one chunk at a time and single requests
//! queued behind it are served in between.
//!
//! Chunks rather than `spawn_blocking`: a sidecar usually runs on one core, where a blocking thread
//! competes with the async worker for the same CPU and the scheduler's time slices (milliseconds)
//! become the single requests' latency (measured: p99 7.5 ms with `spawn_blocking`, see
//! BENCHMARKS.md).

use serde_json::value::RawValue;

use super::Decider;
use crate::{decision::Decision, request::Check};

/// Checks decided between two yields to the runtime (about 0.2 ms of work).
pub const CHUNK: usize = 8;

/// Reads each raw check; one that is not a valid check body is `Err(reason)` on its own.
///
/// Each check is read from its own raw text by the same derived deserializer as a single
/// `/v1/authorize` body, so a duplicate key is refused (`duplicate field ...`) exactly as there;
/// going through `serde_json::Value` first would let the last duplicate win silently.
pub fn parse(checks: &[Box<RawValue>]) -> impl Iterator<Item = Result<Check, String>> + '_ {
    checks.iter().map(|raw| {
        serde_json::from_str::<Check>(raw.get()).map_err(|e| format!("invalid check: {e}"))
    })
}

/// Decides every check in order (as [`Decider::decide_each`]), [`CHUNK`] at a time with a yield to
/// the runtime after each chunk. Decisions are recorded as the decider records them (under the
/// calling request's `x-request-id`).
pub async fn decide_in_chunks(decider: &Decider<'_>, checks: &[Box<RawValue>]) -> Vec<Decision> {
    let mut decisions = Vec::with_capacity(checks.len());
    for (n, chunk) in checks.chunks(CHUNK).enumerate() {
        if n > 0 {
            tokio::task::yield_now().await;
        }
        decisions.extend(decider.decide_each(parse(chunk)));
    }
    decisions
}
