//! The `file` entity source: assignments from the snapshot's `entities.json`, so they reload
//! together with the policies and a request sees the entities of the same snapshot it is decided on.

use std::sync::Arc;

use cedar_policy::{EntityId, EntityUid};

use super::{Assignments, EntitySource, Error};
use crate::{policy::Snapshot, shared::BoxFuture, verify::CustomerId};

/// Reads `entities.json` as loaded into the snapshot. Never fails.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileSource;

impl FileSource {
    /// The customer's ancestors and their data, as the snapshot has them.
    pub fn lookup(snapshot: &Snapshot, customer: &CustomerId) -> Assignments {
        let Some(t) = snapshot.entity_type("Customer") else {
            return Assignments::default();
        };
        let uid = EntityUid::from_type_name_and_id(t, EntityId::new(&customer.0));
        if snapshot.entities.get(&uid).is_none() {
            return Assignments::default();
        }
        let parents: Vec<EntityUid> = snapshot
            .entities
            .ancestors(&uid)
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        let entities = parents
            .iter()
            .filter_map(|p| snapshot.entities.get(p).cloned())
            .collect();
        Assignments { parents, entities }
    }
}

impl EntitySource for FileSource {
    fn assignments<'a>(
        &'a self,
        snapshot: &'a Snapshot,
        customer: &'a CustomerId,
    ) -> BoxFuture<'a, Result<Arc<Assignments>, Error>> {
        Box::pin(async move { Ok(Arc::new(Self::lookup(snapshot, customer))) })
    }
}
