//! Which legal entities a customer may select: the policies' answer to `selectLegalEntity` on
//! `LegalEntity::"<id>"`, asked through the [`Decider`] like any other check. The token refresh
//! asks it for one target; `/v1/me` for every entity the source lists.

use cedar_policy::EvalResult;
use serde::Serialize;

use super::Decider;
use crate::{
    decision::Decision,
    entities::Assignments,
    request::{Check, ResourceRef},
    verify::LegalEntityId,
};

/// The action asked before a token is issued for another legal entity.
pub(crate) const SELECT_ACTION: &str = "selectLegalEntity";

/// A legal entity the customer may select, for a storefront's picker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Selectable {
    /// Legal entity id.
    pub id: String,
    /// Display name, when the entity data has one.
    pub name: Option<String>,
    /// The roles the customer holds there (`context.roles` when acting for it); left out when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// Asks the policies whether the decider's customer may select `target`. Anything that keeps the
/// question from being asked is a deny with the reason.
pub(crate) fn may_select(decider: &Decider<'_>, target: &LegalEntityId) -> Decision {
    let check = Check {
        action: SELECT_ACTION.into(),
        resource: ResourceRef {
            kind: "LegalEntity".into(),
            id: target.0.clone(),
            attrs: None,
        },
        context: None,
    };
    decider
        .decide(&check)
        .unwrap_or_else(|e| Decision::deny(e.to_string()))
}

/// Every legal entity in `assignments` (the decider's entity data) that the policies let the
/// customer select, by id.
pub(crate) fn selectable(decider: &Decider<'_>, assignments: &Assignments) -> Vec<Selectable> {
    let Some(le_type) = decider.snapshot().entity_type("LegalEntity") else {
        return Vec::new();
    };
    let mut out: Vec<Selectable> = assignments
        .parents
        .iter()
        .filter(|uid| uid.type_name() == &le_type)
        .map(|uid| (LegalEntityId(uid.id().unescaped().to_string()), uid))
        .filter(|(id, _)| may_select(decider, id).allow)
        .map(|(id, uid)| {
            let name = assignments
                .entities
                .iter()
                .find(|e| e.uid().id().unescaped() == id.0 && e.uid().type_name() == &le_type)
                .and_then(|e| match e.attr("name") {
                    Some(Ok(EvalResult::String(s))) => Some(s),
                    _ => None,
                });
            Selectable {
                id: id.0,
                name,
                roles: assignments.roles_in(uid),
            }
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out.dedup_by(|a, b| a.id == b.id);
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        decide::EntityData,
        entities::{self, FileSource},
        verify::VerifiedToken,
    };

    #[test]
    fn the_shipped_policies_let_a_customer_select_their_assigned_entities_only() {
        let s = Arc::new(crate::policy::shipped());
        let token = VerifiedToken::for_test("C-1", None);
        let c1 = FileSource::lookup(&s, &token.customer);
        let d = Decider::new(s.clone(), c1.clone().into(), &token, None);
        let le = |id: &str| LegalEntityId(id.into());
        assert!(may_select(&d, &le("LE-2")).allow);
        assert!(!may_select(&d, &le("LE-3")).allow);
        assert!(!may_select(&d, &le("LE-404")).allow);
        // Without the source's data there are no assignments: nothing may be selected.
        let down = EntityData::Unavailable(entities::Error::Timeout(1));
        assert!(!may_select(&Decider::new(s, down, &token, None), &le("LE-2")).allow);
        assert_eq!(
            selectable(&d, &c1),
            vec![
                Selectable {
                    id: "LE-1".into(),
                    name: Some("Acme Wholesale GmbH".into()),
                    roles: Vec::new(),
                },
                Selectable {
                    id: "LE-2".into(),
                    name: Some("Acme Retail AG".into()),
                    roles: Vec::new(),
                },
            ]
        );
    }
}
