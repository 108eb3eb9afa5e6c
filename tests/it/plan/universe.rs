//! The generated universe of the differential tests: every owner × legal entity (absent included) ×
//! status (absent included) for orders, every subset of segments for products, and principals that
//! are assigned, unassigned, without an entity, unknown, or unconditionally allowed.

use serde_json::{json, Value};

/// An id that would break SQL or a naive quoting if it ever reached the query text.
pub(crate) const NASTY: &str = "C-'q\"$1--\\x";

/// Owners of orders.
pub(crate) const OWNERS: &[&str] = &["C-1", "C-2", "C-AUDIT", "C-9", NASTY];
/// Legal entities of orders (`None` = attribute absent).
pub(crate) const ENTITIES: &[Option<&str>] =
    &[None, Some("LE-1"), Some("LE-2"), Some("LE-3"), Some("LE-9")];
/// Statuses of orders (`None` = attribute absent).
pub(crate) const STATUSES: &[Option<&str>] = &[
    None,
    Some("open"),
    Some("open-late"),
    Some("cancelled"),
    Some("shipped"),
    Some("o'pen*$2"),
    // Matches `*_50%\**` in Cedar; the second would also match if `_` and `%` were SQL wildcards.
    Some("x_50%*y"),
    Some("xA50b*y"),
];
/// Segments products draw from.
pub(crate) const SEGMENTS: &[&str] = &["wholesale", "retail", "outlet", "blocked"];

/// (customer, selected legal entity): assigned, unassigned, none, unknown customer, unknown entity,
/// another assigned customer, the auditor.
pub(crate) const PRINCIPALS: &[(&str, Option<&str>)] = &[
    ("C-1", Some("LE-1")),
    ("C-1", Some("LE-2")),
    ("C-1", Some("LE-3")),
    ("C-1", None),
    ("C-9", Some("LE-1")),
    ("C-1", Some("LE-9")),
    ("C-2", Some("LE-3")),
    ("C-AUDIT", None),
    (NASTY, Some("LE-1")),
];

/// One resource: its id and Cedar JSON attributes (entity references with full type names).
#[derive(Debug, Clone)]
pub(crate) struct Resource {
    pub(crate) id: String,
    pub(crate) attrs: Value,
}

/// Every order.
pub(crate) fn orders() -> Vec<Resource> {
    let mut out = Vec::new();
    for owner in OWNERS {
        for le in ENTITIES {
            for status in STATUSES {
                let mut attrs = json!({"owner": {"type": "Shop::Customer", "id": owner}});
                if let Some(le) = le {
                    attrs["legalEntity"] = json!({"type": "Shop::LegalEntity", "id": le});
                }
                if let Some(s) = status {
                    attrs["status"] = json!(s);
                }
                out.push(Resource {
                    id: format!("O-{}", out.len()),
                    attrs,
                });
            }
        }
    }
    out
}

/// Every product: one per subset of [`SEGMENTS`].
pub(crate) fn products() -> Vec<Resource> {
    (0..1u32 << SEGMENTS.len())
        .map(|mask| {
            let segs: Vec<Value> = SEGMENTS
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, s)| json!({"type": "Shop::Segment", "id": s}))
                .collect();
            Resource {
                id: format!("P-{mask}"),
                attrs: json!({"segments": segs}),
            }
        })
        .collect()
}

/// Actions with the type they apply to and that type's universe.
pub(crate) fn cases() -> Vec<(&'static str, &'static str, Vec<Resource>)> {
    vec![
        ("viewOrder", "Order", orders()),
        ("listOrders", "Order", orders()),
        ("cancelOrder", "Order", orders()),
        ("viewProduct", "Product", products()),
    ]
}
