//! Entity data that is not in the request: which legal entities a customer is assigned to (the
//! principal's parents, `Customer in LegalEntity`), each legal entity's data (`name`, `segments`)
//! and the roles the customer holds in each assignment (`context.roles`, see [`Assignments::roles_in`]).
//!
//! In: the current policy snapshot and a customer id. Out: [`Assignments`] or an [`Error`] when the
//! source cannot answer. Two sources sit behind [`EntitySource`]: [`FileSource`] reads the snapshot's
//! `entities.json` (so it reloads with the policies), [`HttpSource`] asks the customer-management
//! service and caches the answer.

mod config;
mod file;
mod http;

pub(crate) use config::{EntitiesConfig, EntitySourceKind};
pub use file::FileSource;
pub(crate) use http::HttpSource;

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use cedar_policy::{Entity, EntityUid};

use crate::{
    policy::Snapshot,
    shared::BoxFuture,
    verify::{CustomerId, LegalEntityId},
};

/// What the entity source knows about one customer.
#[derive(Debug, Clone, Default)]
pub struct Assignments {
    /// The principal's parents: the legal entities the customer is assigned to (and, from a file,
    /// whatever other ancestors it lists).
    pub parents: Vec<EntityUid>,
    /// Data of those parents that the source has (legal entities with `name` and `segments`).
    pub entities: Vec<Entity>,
    /// The legal entity the source marks as the customer's default (HTTP: `"default": true`; file:
    /// the customer's `defaultLegalEntity` attribute), chosen at login.
    pub default: Option<LegalEntityId>,
    /// The roles the customer holds per legal entity id (HTTP: an item's `"roles"`; file: the
    /// customer's tags, keyed by legal entity id, each a `Set<String>`). Read through
    /// [`Assignments::roles_in`], which gives none for an entity the customer is not assigned to.
    pub roles: HashMap<String, Vec<String>>,
}

impl Assignments {
    /// The roles held in `legal_entity`, sorted and without repeats; none unless the customer is
    /// assigned to it (it is one of [`Assignments::parents`]): fail closed.
    pub fn roles_in(&self, legal_entity: &EntityUid) -> Vec<String> {
        if !self.parents.contains(legal_entity) {
            return Vec::new();
        }
        let mut roles = self
            .roles
            .get(legal_entity.id().unescaped())
            .cloned()
            .unwrap_or_default();
        roles.sort();
        roles.dedup();
        roles
    }
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
