//! Which legal entities a customer may select: the policies' answer to `selectLegalEntity` on
//! `LegalEntity::"<id>"`, asked through the normal request building with the entity source's data.
//! The token refresh asks it for one target; `/v1/me` for every entity the source lists.

use cedar_policy::EvalResult;
use serde::Serialize;

use super::Assignments;
use crate::{
    decision::Decision,
    policy::{self, Snapshot},
    request::{self, Check, Principal, ResourceRef},
    verify::LegalEntityId,
};

/// The action asked before a token is issued for another legal entity.
pub const SELECT_ACTION: &str = "selectLegalEntity";

/// A legal entity the customer may select, for a storefront's picker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Selectable {
    /// Legal entity id.
    pub id: String,
    /// Display name, when the entity data has one.
    pub name: Option<String>,
}

/// Asks the policies whether `principal` may select `target`. Anything that keeps the question from
/// being asked is a deny with the reason.
pub fn may_select(
    snapshot: &Snapshot,
    principal: &Principal,
    assignments: Option<&Assignments>,
    target: &LegalEntityId,
) -> Decision {
    let check = Check {
        action: SELECT_ACTION.into(),
        resource: ResourceRef {
            kind: "LegalEntity".into(),
            id: target.0.clone(),
            attrs: None,
        },
        context: None,
    };
    match request::build(snapshot, principal, assignments, &check) {
        Ok((req, entities)) => policy::evaluate(snapshot, &req, &entities),
        Err(e) => Decision::deny(e.to_string()),
    }
}

/// Every legal entity the source lists for the customer that the policies let them select, by id.
pub fn selectable(
    snapshot: &Snapshot,
    principal: &Principal,
    assignments: &Assignments,
) -> Vec<Selectable> {
    let Some(le_type) = snapshot.entity_type("LegalEntity") else {
        return Vec::new();
    };
    let mut out: Vec<Selectable> = assignments
        .parents
        .iter()
        .filter(|uid| uid.type_name() == &le_type)
        .map(|uid| LegalEntityId(uid.id().unescaped().to_string()))
        .filter(|id| may_select(snapshot, principal, Some(assignments), id).allow)
        .map(|id| {
            let name = assignments
                .entities
                .iter()
                .find(|e| e.uid().id().unescaped() == id.0 && e.uid().type_name() == &le_type)
                .and_then(|e| match e.attr("name") {
                    Some(Ok(EvalResult::String(s))) => Some(s),
                    _ => None,
                });
            Selectable { id: id.0, name }
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out.dedup_by(|a, b| a.id == b.id);
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::Map;

    use super::*;
    use crate::{entities::FileSource, verify::CustomerId};

    fn principal(c: &str) -> Principal {
        Principal {
            customer: CustomerId(c.into()),
            legal_entity: None,
            claims: Map::new(),
        }
    }

    #[test]
    fn the_shipped_policies_let_a_customer_select_their_assigned_entities_only() {
        let s = policy::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"),
            "Shop",
        )
        .unwrap();
        let c1 = FileSource::lookup(&s, &CustomerId("C-1".into()));
        let p = principal("C-1");
        let le = |id: &str| LegalEntityId(id.into());
        assert!(may_select(&s, &p, Some(&c1), &le("LE-2")).allow);
        assert!(!may_select(&s, &p, Some(&c1), &le("LE-3")).allow);
        assert!(!may_select(&s, &p, Some(&c1), &le("LE-404")).allow);
        // Without the source's data there are no assignments: nothing may be selected.
        assert!(!may_select(&s, &p, None, &le("LE-2")).allow);
        assert_eq!(
            selectable(&s, &p, &c1),
            vec![
                Selectable {
                    id: "LE-1".into(),
                    name: Some("Acme Wholesale GmbH".into())
                },
                Selectable {
                    id: "LE-2".into(),
                    name: Some("Acme Retail AG".into())
                },
            ]
        );
    }
}
