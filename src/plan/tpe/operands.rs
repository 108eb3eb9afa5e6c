//! The operands and membership tests of a residual: `resource.a in E`, `containsAny`, attribute
//! types and presence, literal values. A second `impl` of the [`Reader`] in `residual.rs`.

use std::{str::FromStr, sync::Arc};

use cedar_policy::{
    pst::{BinaryOp, Expr, Literal},
    EntityId, EntityTypeName, EntityUid,
};

use super::residual::{is_resource, Present, Reader};
use super::Cond;
use crate::plan::filter::{and, not, or, Cmp, Filter, Operand, Value};
use crate::policy::AttrType;

impl Reader<'_> {
    pub(super) fn contains_any(&self, set: &Operand, other: &Operand) -> Filter {
        match other {
            Operand::Value(Value::Set(items)) => {
                let fitting: Vec<Value> = items
                    .iter()
                    .filter(|v| self.element_fits(set, v))
                    .cloned()
                    .collect();
                if fitting.is_empty() {
                    Filter::Const(false)
                } else {
                    Filter::ContainsAny(set.clone(), Operand::Value(Value::set(fitting)))
                }
            }
            _ => Filter::ContainsAny(set.clone(), other.clone()),
        }
    }

    /// `E in resource.a`: with `E`'s ancestors known (it is the principal, the selected entity or
    /// an action, whose data a decision would see unchanged), `a` is `E` or one of them.
    pub(super) fn member_of(
        &self,
        left: &Arc<Expr>,
        right: &Arc<Expr>,
        present: &Present,
    ) -> Result<Cond, String> {
        let whole = format!(
            "`{}` cannot be expressed as a filter (it needs the hierarchy of entities the resource names)",
            Expr::BinaryOp {
                op: BinaryOp::In,
                left: left.clone(),
                right: right.clone()
            }
        );
        if let (Ok(target @ Operand::Attr(_)), Ok(Operand::Value(group))) =
            (self.operand(left), self.operand(right))
        {
            return self.in_group(&target, &group, present).ok_or(whole);
        }
        let (Ok(Operand::Value(Value::Entity { ty, id })), Ok(target @ Operand::Attr(_))) =
            (self.operand(left), self.operand(right))
        else {
            return Err(whole);
        };
        let uid = EntityTypeName::from_str(&ty)
            .map(|t| EntityUid::from_type_name_and_id(t, EntityId::new(&id)))
            .map_err(|_| whole.clone())?;
        if self.known.entities.get(&uid).is_none() {
            return Err(whole);
        }
        let mut group = vec![Value::Entity {
            ty: ty.clone(),
            id: id.clone(),
        }];
        for a in self.known.entities.ancestors(&uid).into_iter().flatten() {
            group.push(Value::Entity {
                ty: a.type_name().to_string(),
                id: a.id().unescaped().to_string(),
            });
        }
        let filter = match self.attr_type(&target) {
            Some(AttrType::Set(_)) => {
                self.contains_any(&target, &Operand::Value(Value::set(group)))
            }
            Some(AttrType::Entity(_)) => or(group
                .into_iter()
                .map(Operand::Value)
                .filter(|v| self.may_equal(&target, v))
                .map(|v| Filter::Cmp(Cmp::Eq, target.clone(), v))
                .collect()),
            _ => return Err(whole),
        };
        Ok(self.atom(present, &[&target], filter, None))
    }

    /// `resource.a in E` (or `in [E1, …]`) for an entity-typed `a`: `a` is one of the `E`s or an
    /// entity whose ancestors include one, as a decision would find it: the known entities' data
    /// (the principal's assignments, the selected entity) first, else `entities.json`'s. An entity
    /// neither knows has no ancestors, so it is `in` only itself. `None`: not of this form.
    pub(super) fn in_group(
        &self,
        target: &Operand,
        group: &Value,
        present: &Present,
    ) -> Option<Cond> {
        let Some(AttrType::Entity(target_type)) = self.attr_type(target) else {
            return None;
        };
        let tops: Vec<EntityUid> = match group {
            Value::Entity { .. } => vec![entity_uid(group)?],
            Value::Set(items) => items.iter().map(entity_uid).collect::<Option<_>>()?,
            _ => return None,
        };
        let mut members: Vec<EntityUid> = tops.clone();
        let candidates = self
            .known
            .entities
            .iter()
            .chain(self.snapshot.entities().iter())
            .map(|e| e.uid())
            .filter(|u| u.type_name() == target_type);
        for uid in candidates {
            if members.contains(&uid) {
                continue;
            }
            let ancestors: Vec<&EntityUid> = if self.known.entities.get(&uid).is_some() {
                self.known
                    .entities
                    .ancestors(&uid)
                    .into_iter()
                    .flatten()
                    .collect()
            } else {
                self.snapshot
                    .entities()
                    .ancestors(&uid)
                    .into_iter()
                    .flatten()
                    .collect()
            };
            if ancestors.iter().any(|a| tops.contains(a)) {
                members.push(uid);
            }
        }
        members.sort();
        let filter = or(members
            .into_iter()
            .map(|u| {
                Operand::Value(Value::Entity {
                    ty: u.type_name().to_string(),
                    id: u.id().unescaped().to_string(),
                })
            })
            .filter(|v| self.may_equal(target, v))
            .map(|v| Filter::Cmp(Cmp::Eq, target.clone(), v))
            .collect());
        Some(self.atom(present, &[target], filter, None))
    }

    /// An expression that reads attributes: exact where they are present; where an optional one it
    /// reads is not known to be present, Cedar would raise an error, so `f` requires them.
    pub(super) fn atom(
        &self,
        present: &Present,
        operands: &[&Operand],
        t: Filter,
        negated: Option<Filter>,
    ) -> Cond {
        let unguarded: Vec<Filter> = operands
            .iter()
            .filter_map(|o| o.attr())
            .filter(|a| !present.contains(*a) && !self.required(a))
            .map(|a| Filter::Has(a.to_string()))
            .collect();
        if unguarded.is_empty() {
            // Every attribute read is present here, so the negated operator is exactly `not(t)`.
            return match negated {
                Some(f) => Cond { t, f, total: true },
                None => Cond::exact(t),
            };
        }
        // Filter semantics: an operator on an absent attribute is false, so `t` needs no guard.
        let mut f = unguarded;
        f.push(negated.unwrap_or_else(|| not(t.clone())));
        Cond {
            t,
            f: and(f),
            total: false,
        }
    }

    pub(super) fn required(&self, attr: &str) -> bool {
        matches!(self.shape.attrs.get(attr), Some((_, true)))
    }

    pub(super) fn attr_type(&self, o: &Operand) -> Option<&AttrType> {
        o.attr()
            .and_then(|a| self.shape.attrs.get(a))
            .and_then(|(t, _)| t.as_ref())
    }

    /// False only when the two can be shown to have different types.
    pub(super) fn may_equal(&self, a: &Operand, b: &Operand) -> bool {
        match (a, b) {
            (Operand::Attr(_), Operand::Value(v)) => self.attr_type(a).is_none_or(|t| fits(v, t)),
            (Operand::Value(_), Operand::Attr(_)) => self.may_equal(b, a),
            (Operand::Attr(_), Operand::Attr(_)) => match (self.attr_type(a), self.attr_type(b)) {
                (Some(x), Some(y)) => x == y,
                _ => true,
            },
            (Operand::Value(_), Operand::Value(_)) => true,
        }
    }

    pub(super) fn element_fits(&self, set: &Operand, v: &Value) -> bool {
        match self.attr_type(set) {
            Some(AttrType::Set(t)) => fits(v, t),
            _ => true,
        }
    }

    /// A value operand: `resource.a` or a constant.
    pub(super) fn operand(&self, e: &Expr) -> Result<Operand, String> {
        match e {
            Expr::GetAttr { expr, attr } if is_resource(expr) => {
                Ok(Operand::Attr(attr.to_string()))
            }
            _ => value(e).map(Operand::Value),
        }
    }
}

/// An entity value's uid; `None` for anything else.
pub(super) fn entity_uid(v: &Value) -> Option<EntityUid> {
    let Value::Entity { ty, id } = v else {
        return None;
    };
    let t = EntityTypeName::from_str(ty).ok()?;
    Some(EntityUid::from_type_name_and_id(t, EntityId::new(id)))
}

pub(super) fn value(e: &Expr) -> Result<Value, String> {
    match e {
        Expr::Literal(Literal::Bool(b)) => Ok(Value::Bool(*b)),
        Expr::Literal(Literal::Long(n)) => Ok(Value::Long(*n)),
        Expr::Literal(Literal::String(s)) => Ok(Value::String(s.to_string())),
        Expr::Literal(Literal::EntityUID(u)) => Ok(Value::Entity {
            ty: u.ty.to_string(),
            id: u.eid.to_string(),
        }),
        Expr::Set(items) => items
            .iter()
            .map(|i| value(i))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::set),
        other => Err(format!("`{other}` cannot be expressed as a filter value")),
    }
}

pub(super) fn fits(v: &Value, t: &AttrType) -> bool {
    match (v, t) {
        (Value::Bool(_), AttrType::Bool)
        | (Value::Long(_), AttrType::Long)
        | (Value::String(_), AttrType::String) => true,
        (Value::Entity { ty, .. }, AttrType::Entity(et)) => *ty == et.to_string(),
        (Value::Set(items), AttrType::Set(inner)) => items.iter().all(|i| fits(i, inner)),
        _ => false,
    }
}
