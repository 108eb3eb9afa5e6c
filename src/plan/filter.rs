//! The filter language of `/v1/plan`: a small boolean language over one resource's attributes, its
//! JSON form, and the simplification that makes an answer read like something a person wrote.
//!
//! Semantics (what the promise is stated against): `has a` is true when the resource has the
//! attribute `a`; every other operator that reads an attribute the resource does not have is
//! `false` (so `not(eq(a, v))` is true for a resource without `a`). `like` patterns use Cedar's
//! syntax in a JSON string: `*` is any run of characters, `\*` a literal star.

use std::collections::HashSet;

use serde::{Serialize, Serializer};
use serde_json::{json, Value as Json};

/// A constant in a filter, in the shapes `/v1/authorize` takes in `attrs`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Value {
    /// `true` / `false`
    Bool(bool),
    /// A Cedar `Long`.
    Long(i64),
    /// A Cedar `String`.
    String(String),
    /// An entity reference; `ty` is the full type name (`Shop::Customer`).
    Entity {
        /// Full type name.
        ty: String,
        /// Entity id.
        id: String,
    },
    /// A set, kept sorted and without duplicates (Cedar sets have neither order nor duplicates).
    Set(Vec<Value>),
}

impl Value {
    /// A set value from any elements: sorted, duplicates removed.
    pub fn set(mut items: Vec<Value>) -> Self {
        items.sort();
        items.dedup();
        Value::Set(items)
    }

    /// Cedar's JSON value form: entity references as `{"type", "id"}`, sets as arrays.
    pub fn to_json(&self) -> Json {
        match self {
            Value::Bool(b) => json!(b),
            Value::Long(n) => json!(n),
            Value::String(s) => json!(s),
            Value::Entity { ty, id } => json!({"type": ty, "id": id}),
            Value::Set(items) => Json::Array(items.iter().map(Value::to_json).collect()),
        }
    }
}

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operand {
    /// The resource's attribute of this name.
    Attr(String),
    /// A constant.
    Value(Value),
}

impl Operand {
    fn to_json(&self) -> Json {
        match self {
            Operand::Attr(a) => json!({"attr": a}),
            Operand::Value(v) => json!({"value": v.to_json()}),
        }
    }

    /// The attribute this operand reads, if any.
    pub fn attr(&self) -> Option<&str> {
        match self {
            Operand::Attr(a) => Some(a),
            Operand::Value(_) => None,
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cmp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<` (on `Long`)
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Cmp {
    /// The JSON key (`eq`, `ne`, …).
    pub fn key(self) -> &'static str {
        match self {
            Cmp::Eq => "eq",
            Cmp::Ne => "ne",
            Cmp::Lt => "lt",
            Cmp::Le => "le",
            Cmp::Gt => "gt",
            Cmp::Ge => "ge",
        }
    }

    /// The operator that is true exactly where this one is false (both operands defined).
    pub fn negate(self) -> Self {
        match self {
            Cmp::Eq => Cmp::Ne,
            Cmp::Ne => Cmp::Eq,
            Cmp::Lt => Cmp::Ge,
            Cmp::Le => Cmp::Gt,
            Cmp::Gt => Cmp::Le,
            Cmp::Ge => Cmp::Lt,
        }
    }
}

/// A filter over one resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Filter {
    /// `true` / `false`
    Const(bool),
    /// All of these.
    And(Vec<Filter>),
    /// Any of these.
    Or(Vec<Filter>),
    /// Not this.
    Not(Box<Filter>),
    /// The resource has the optional attribute.
    Has(String),
    /// `eq`, `ne`, `lt`, `le`, `gt`, `ge`.
    Cmp(Cmp, Operand, Operand),
    /// The set (first) contains the element (second).
    Contains(Operand, Operand),
    /// The sets share an element.
    ContainsAny(Operand, Operand),
    /// The first set contains every element of the second.
    ContainsAll(Operand, Operand),
    /// The set is empty.
    IsEmpty(Operand),
    /// Cedar `like`; the pattern in Cedar syntax (`*` any run, `\*` a star).
    Like(Operand, String),
}

impl Filter {
    /// The JSON form of the contract.
    pub fn to_json(&self) -> Json {
        let pair = |k: &str, a: &Operand, b: &Operand| json!({k: [a.to_json(), b.to_json()]});
        match self {
            Filter::Const(b) => json!(b),
            Filter::And(fs) => json!({"and": fs.iter().map(Filter::to_json).collect::<Vec<_>>()}),
            Filter::Or(fs) => json!({"or": fs.iter().map(Filter::to_json).collect::<Vec<_>>()}),
            Filter::Not(f) => json!({"not": f.to_json()}),
            Filter::Has(a) => json!({"has": a}),
            Filter::Cmp(op, a, b) => pair(op.key(), a, b),
            Filter::Contains(a, b) => pair("contains", a, b),
            Filter::ContainsAny(a, b) => pair("contains_any", a, b),
            Filter::ContainsAll(a, b) => pair("contains_all", a, b),
            Filter::IsEmpty(a) => json!({"is_empty": a.to_json()}),
            Filter::Like(a, p) => json!({"like": [a.to_json(), p]}),
        }
    }

    /// Every attribute the filter reads.
    pub fn attrs(&self) -> HashSet<&str> {
        let mut out = HashSet::new();
        self.collect_attrs(&mut out);
        out
    }

    fn collect_attrs<'a>(&'a self, out: &mut HashSet<&'a str>) {
        match self {
            Filter::Const(_) => {}
            Filter::And(fs) | Filter::Or(fs) => fs.iter().for_each(|f| f.collect_attrs(out)),
            Filter::Not(f) => f.collect_attrs(out),
            Filter::Has(a) => {
                out.insert(a);
            }
            Filter::Cmp(_, a, b)
            | Filter::Contains(a, b)
            | Filter::ContainsAny(a, b)
            | Filter::ContainsAll(a, b) => out.extend(a.attr().into_iter().chain(b.attr())),
            Filter::IsEmpty(a) | Filter::Like(a, _) => out.extend(a.attr()),
        }
    }
}

impl Serialize for Filter {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

/// `and(items)`, simplified: nested `and`s flattened, `true` dropped, `false` absorbs, duplicates
/// removed, a term beside its own negation makes it `false`, and `x` absorbs `or(x, ..)`.
pub fn and(items: Vec<Filter>) -> Filter {
    junction(items, true)
}

/// `or(items)`, simplified as [`and`] with the roles of `true` and `false` swapped.
pub fn or(items: Vec<Filter>) -> Filter {
    junction(items, false)
}

/// `not(f)`, simplified: constants flipped, double negation removed.
pub fn not(f: Filter) -> Filter {
    match f {
        Filter::Const(b) => Filter::Const(!b),
        Filter::Not(inner) => *inner,
        other => Filter::Not(Box::new(other)),
    }
}

fn junction(items: Vec<Filter>, is_and: bool) -> Filter {
    // For `and`: `true` is the unit and `false` absorbs; for `or` the other way round.
    let unit = is_and;
    let mut flat: Vec<Filter> = Vec::new();
    for item in items {
        match item {
            Filter::Const(b) if b == unit => {}
            Filter::Const(b) => return Filter::Const(b),
            Filter::And(inner) if is_and => flat.extend(inner),
            Filter::Or(inner) if !is_and => flat.extend(inner),
            other => flat.push(other),
        }
    }
    let mut seen = HashSet::new();
    flat.retain(|f| seen.insert(f.clone()));
    if flat
        .iter()
        .any(|f| matches!(f, Filter::Not(inner) if seen.contains(inner.as_ref())))
    {
        return Filter::Const(!unit);
    }
    // Absorption: in `and(x, or(x, y))` the `or` is redundant, and in `and(x, or(not(x), y))` the
    // `not(x)` is (dually for `or`).
    let mut kept: Vec<Filter> = Vec::new();
    let mut rewritten = false;
    for f in &flat {
        let inner = match (is_and, f) {
            (true, Filter::Or(inner)) | (false, Filter::And(inner)) => inner,
            _ => {
                kept.push(f.clone());
                continue;
            }
        };
        if inner.iter().any(|g| seen.contains(g)) {
            continue;
        }
        let rest: Vec<Filter> = inner
            .iter()
            .filter(|g| !matches!(g, Filter::Not(x) if seen.contains(x.as_ref())))
            .cloned()
            .collect();
        if rest.len() == inner.len() {
            kept.push(f.clone());
        } else {
            kept.push(junction(rest, !is_and));
            rewritten = true;
        }
    }
    if rewritten {
        // The shortened term may now be a constant or flatten into this junction: once more.
        return junction(kept, is_and);
    }
    match kept.len() {
        0 => Filter::Const(unit),
        1 => kept.into_iter().next().unwrap_or(Filter::Const(unit)),
        _ if is_and => Filter::And(kept),
        _ => Filter::Or(kept),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(a: &str, id: &str) -> Filter {
        Filter::Cmp(
            Cmp::Eq,
            Operand::Attr(a.into()),
            Operand::Value(Value::Entity {
                ty: "Shop::Customer".into(),
                id: id.into(),
            }),
        )
    }

    #[test]
    fn constants_are_folded_and_units_dropped() {
        assert_eq!(and(vec![]), Filter::Const(true));
        assert_eq!(or(vec![]), Filter::Const(false));
        assert_eq!(
            and(vec![Filter::Const(true), eq("owner", "C-1")]),
            eq("owner", "C-1")
        );
        assert_eq!(
            and(vec![eq("owner", "C-1"), Filter::Const(false)]),
            Filter::Const(false)
        );
        assert_eq!(
            or(vec![eq("owner", "C-1"), Filter::Const(true)]),
            Filter::Const(true)
        );
        assert_eq!(not(not(eq("owner", "C-1"))), eq("owner", "C-1"));
        assert_eq!(not(Filter::Const(true)), Filter::Const(false));
    }

    #[test]
    fn nesting_is_flattened_and_duplicates_removed() {
        let f = or(vec![
            eq("owner", "C-1"),
            or(vec![eq("owner", "C-2"), eq("owner", "C-1")]),
        ]);
        assert_eq!(f, Filter::Or(vec![eq("owner", "C-1"), eq("owner", "C-2")]));
        let g = and(vec![
            Filter::Has("a".into()),
            and(vec![Filter::Has("a".into())]),
        ]);
        assert_eq!(g, Filter::Has("a".into()));
    }

    #[test]
    fn a_term_beside_its_negation_is_decided() {
        let x = Filter::Has("legalEntity".into());
        assert_eq!(and(vec![x.clone(), not(x.clone())]), Filter::Const(false));
        assert_eq!(or(vec![x.clone(), not(x)]), Filter::Const(true));
    }

    #[test]
    fn absorption_removes_the_redundant_junction() {
        let x = eq("owner", "C-1");
        let y = Filter::Has("status".into());
        assert_eq!(or(vec![x.clone(), and(vec![x.clone(), y.clone()])]), x);
        assert_eq!(and(vec![x.clone(), or(vec![x.clone(), y.clone()])]), x);
        assert_eq!(
            or(vec![x.clone(), and(vec![not(x.clone()), y.clone()])]),
            Filter::Or(vec![x.clone(), y.clone()])
        );
        assert_eq!(
            and(vec![x.clone(), or(vec![not(x.clone()), y.clone()])]),
            Filter::And(vec![x, y])
        );
    }

    #[test]
    fn json_form_is_the_contracts() {
        let f = or(vec![
            eq("owner", "C-1"),
            and(vec![
                Filter::Has("legalEntity".into()),
                eq("legalEntity", "LE-1"),
            ]),
        ]);
        assert_eq!(
            f.to_json(),
            json!({"or": [
                {"eq": [{"attr": "owner"}, {"value": {"type": "Shop::Customer", "id": "C-1"}}]},
                {"and": [{"has": "legalEntity"},
                         {"eq": [{"attr": "legalEntity"}, {"value": {"type": "Shop::Customer", "id": "LE-1"}}]}]}]})
        );
        assert_eq!(
            Filter::Like(Operand::Attr("status".into()), "open*".into()).to_json(),
            json!({"like": [{"attr": "status"}, "open*"]})
        );
        assert_eq!(
            Value::set(vec![Value::Long(2), Value::Long(1), Value::Long(2)]).to_json(),
            json!([1, 2])
        );
    }
}
