//! The `file` entity source: assignments from the snapshot's `entities.json`, so they reload
//! together with the policies and a request sees the entities of the same snapshot it is decided on.
//! A customer's optional `defaultLegalEntity` attribute (an entity reference) names its default.
//! Its roles per assignment are its Cedar entity tags (`tags Set<String>` in the schema): the tag
//! key is a legal entity id, the value the roles held there (`"tags": {"LE-1": ["buyer"]}`); a tag
//! whose value is not a set of strings gives no roles.

use std::sync::Arc;

use cedar_policy::{EntityId, EntityUid, EvalResult};

use super::{Assignments, EntitySource, Error};
use crate::{
    policy::Snapshot,
    shared::BoxFuture,
    verify::{CustomerId, LegalEntityId},
};

/// The customer attribute naming its default legal entity.
const DEFAULT_ATTR: &str = "defaultLegalEntity";

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
        let Some(me) = snapshot.entities().get(&uid) else {
            return Assignments::default();
        };
        let default = match me.attr(DEFAULT_ATTR) {
            Some(Ok(EvalResult::EntityUid(le))) => Some(LegalEntityId(le.id().unescaped().into())),
            _ => None,
        };
        let parents: Vec<EntityUid> = snapshot
            .entities()
            .ancestors(&uid)
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        let entities = parents
            .iter()
            .filter_map(|p| snapshot.entities().get(p).cloned())
            .collect();
        Assignments {
            parents,
            entities,
            default,
            roles: roles(me),
        }
    }
}

/// The customer's tags that are sets of strings, by tag key (a legal entity id).
fn roles(me: &cedar_policy::Entity) -> std::collections::HashMap<String, Vec<String>> {
    me.tags()
        .filter_map(|(key, value)| {
            let Ok(EvalResult::Set(set)) = value else {
                return None;
            };
            let roles = set
                .iter()
                .map(|v| match v {
                    EvalResult::String(s) => Some(s.clone()),
                    _ => None,
                })
                .collect::<Option<Vec<String>>>()?;
            Some((key.to_string(), roles))
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_the_customers_set_of_strings_tags() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/b2b/policies");
        let snapshot = crate::policy::load(&dir, "Shop").unwrap();
        let anna = FileSource::lookup(&snapshot, &CustomerId("C-ANNA".into()));
        assert_eq!(anna.roles.len(), 2);
        assert_eq!(anna.roles["LE-ACME"], ["admin"]);
        assert_eq!(anna.roles["LE-ACME-DE"], ["buyer"]);
        let le =
            |id: &str| -> EntityUid { format!("Shop::LegalEntity::\"{id}\"").parse().unwrap() };
        assert_eq!(anna.roles_in(&le("LE-ACME")), ["admin"]);
        // Finn has an admin tag for LE-GLOBEX but is not assigned there.
        let finn = FileSource::lookup(&snapshot, &CustomerId("C-FINN".into()));
        assert_eq!(finn.roles_in(&le("LE-ACME-DE-B")), ["approver", "buyer"]);
        assert!(finn.roles_in(&le("LE-GLOBEX")).is_empty());
        // The shipped entities have no tags.
        let shipped = crate::policy::shipped();
        assert!(FileSource::lookup(&shipped, &CustomerId("C-1".into()))
            .roles
            .is_empty());
    }
}
