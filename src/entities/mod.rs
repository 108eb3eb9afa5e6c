//! Entity data that is not in the request: which legal entities a customer is assigned to (the
//! principal's parents, `Customer in LegalEntity`) and each legal entity's data (`name`, `segments`).
//!
//! In: the current policy snapshot and a customer id. Out: [`Assignments`] or an [`Error`] when the
//! source cannot answer. Two sources sit behind [`EntitySource`]: [`FileSource`] reads the snapshot's
//! `entities.json` (so it reloads with the policies), [`HttpSource`] asks the customer-management
//! service and caches the answer.

mod file;
mod http;

pub use file::FileSource;
pub use http::{HttpSource, LegalEntityRecord};

use std::fmt::Debug;
use std::sync::Arc;

use cedar_policy::{Entity, EntityUid};

use crate::{policy::Snapshot, shared::BoxFuture, verify::CustomerId};

/// What the entity source knows about one customer.
#[derive(Debug, Clone, Default)]
pub struct Assignments {
    /// The principal's parents: the legal entities the customer is assigned to (and, from a file,
    /// whatever other ancestors it lists).
    pub parents: Vec<EntityUid>,
    /// Data of those parents that the source has (legal entities with `name` and `segments`).
    pub entities: Vec<Entity>,
}

/// Why the entity source could not answer. Refreshes answer 503; `/v1/authorize` decides without
/// assignments (fail closed) and says so in `errors`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// No answer within `entities.timeout_ms`.
    #[error("the customer-management service did not answer within {0} ms")]
    Timeout(u64),
    /// Connection refused, reset, DNS …
    #[error("cannot reach the customer-management service: {0}")]
    Unreachable(String),
    /// A status other than 2xx.
    #[error("the customer-management service answered status {0}")]
    Status(u16),
    /// Not `[{"id", "name", "segments"}]`, or too large.
    #[error("the customer-management service's answer is not a list of legal entities: {0}")]
    BadAnswer(String),
    /// The answer does not fit the policy schema.
    #[error("legal-entity data does not fit the schema: {0}")]
    Schema(String),
}

/// Where assignments and legal-entity data come from. Implementations must be cheap to call once
/// per request; the HTTP source caches.
pub trait EntitySource: Debug + Send + Sync {
    /// The customer's assignments, as Cedar entities typed by `snapshot`'s schema.
    fn assignments<'a>(
        &'a self,
        snapshot: &'a Snapshot,
        customer: &'a CustomerId,
    ) -> BoxFuture<'a, Result<Arc<Assignments>, Error>>;
}
