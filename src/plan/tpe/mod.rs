//! The one place that touches Cedar's experimental type-aware partial evaluation (`tpe`) and its
//! residual form (`pst`): run it with the resource unknown, and translate each policy's residual
//! into the filter language. An upgrade of `cedar-policy` that changes that API changes this file.
//!
//! A residual is read with three-valued Cedar semantics (true, false, error): for every expression
//! the translation gives `t` (the filter true exactly where it evaluates to `true`) and `f` (where it
//! evaluates to `false`); where neither holds, Cedar would raise an error. A permit applies where its
//! condition is `t`; a forbid stays out of the way only where its condition is `f` (legate denies on
//! a forbid that errors). What the language cannot express is reported, never guessed.

use std::{collections::HashSet, str::FromStr, sync::Arc};

use cedar_policy::{
    pst::{self, BinaryOp, Expr, Literal, PatternElem, UnaryOp, Var},
    Effect, EntityId, EntityTypeName, EntityUid, PartialEntities, PartialEntityUid, PartialRequest,
    PolicyId, PolicySet,
};

use super::filter::{and, not, or, Cmp, Filter, Operand, Value};
use super::Error;
use crate::{
    policy::{AttrType, Shape, Snapshot},
    request::Known,
};

/// What partial evaluation made of one policy.
#[derive(Debug, Clone)]
pub(super) enum Outcome {
    /// True whatever the resource.
    True,
    /// False (or not applicable) whatever the resource.
    False,
    /// Raises an error whatever the resource (e.g. an overflow).
    Error,
    /// Depends on the resource, as this condition.
    Residual(Cond),
    /// Depends on the resource in a way the filter language cannot express; the reason.
    Unexpressible(String),
}

/// A residual condition: where it is true and where it is false.
#[derive(Debug, Clone)]
pub(super) struct Cond {
    /// Where the condition evaluates to `true`.
    pub t: Filter,
    /// Where it evaluates to `false` (neither: it would raise an error).
    pub f: Filter,
    /// Whether it can never raise an error (then `f` is `not(t)`).
    total: bool,
}

impl Cond {
    fn exact(t: Filter) -> Self {
        let f = not(t.clone());
        Self { t, f, total: true }
    }

    fn constant(b: bool) -> Self {
        Self::exact(Filter::Const(b))
    }
}

/// Every policy's outcome, by `@id`, permits and forbids apart.
#[derive(Debug, Default)]
pub(super) struct Outcomes {
    /// Permit policies.
    pub permits: Vec<(String, Outcome)>,
    /// Forbid policies.
    pub forbids: Vec<(String, Outcome)>,
}

/// Partially evaluates `policies` (of `snapshot`) for `known` with a resource of type
/// `resource_type`.
pub(super) fn evaluate(
    snapshot: &Snapshot,
    policies: &PolicySet,
    known: &Known,
    resource_type: &EntityTypeName,
) -> Result<Outcomes, Error> {
    let request = PartialRequest::new(
        PartialEntityUid::from_concrete(known.principal.clone()),
        known.action.clone(),
        PartialEntityUid::new(resource_type.clone(), None),
        Some(known.context.clone()),
        &snapshot.schema,
    )
    .map_err(|e| Error::Request(super::cedar_message(&e)))?;
    let entities = PartialEntities::from_concrete(known.entities.clone(), &snapshot.schema)
        .map_err(|e| Error::Engine(super::cedar_message(&e)))?;
    let response = policies
        .tpe(&request, &entities, &snapshot.schema)
        .map_err(|e| Error::Engine(super::cedar_message(&e)))?;

    let shape = snapshot
        .shapes
        .get(resource_type)
        .cloned()
        .unwrap_or_default();
    let reader = Reader {
        shape: &shape,
        known,
        snapshot,
    };
    let mut out = Outcomes::default();
    let fixed = |ids: &mut dyn Iterator<Item = &PolicyId>, o: Outcome| {
        ids.map(|id| (id.to_string(), o.clone()))
            .collect::<Vec<_>>()
    };
    out.permits
        .extend(fixed(&mut response.true_permits(), Outcome::True));
    out.permits
        .extend(fixed(&mut response.false_permits(), Outcome::False));
    out.permits
        .extend(fixed(&mut response.error_permits(), Outcome::Error));
    out.forbids
        .extend(fixed(&mut response.true_forbids(), Outcome::True));
    out.forbids
        .extend(fixed(&mut response.false_forbids(), Outcome::False));
    out.forbids
        .extend(fixed(&mut response.error_forbids(), Outcome::Error));
    for policy in response.residual_policies() {
        let outcome = reader.policy(&policy);
        let entry = (policy.id().to_string(), outcome);
        match policy.effect() {
            Effect::Permit => out.permits.push(entry),
            Effect::Forbid => out.forbids.push(entry),
        }
    }
    out.permits.sort_by(|a, b| a.0.cmp(&b.0));
    out.forbids.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Translates residual expressions over one resource type.
struct Reader<'a> {
    shape: &'a Shape,
    known: &'a Known,
    /// For `resource.a in E`: the entities a decision would find for `a` (the known ones win).
    snapshot: &'a Snapshot,
}

/// Attributes known to be present where a subexpression is evaluated (from `has` guards).
type Present = HashSet<String>;

impl Reader<'_> {
    fn policy(&self, policy: &cedar_policy::Policy) -> Outcome {
        let pst = match policy.to_pst() {
            Ok(p) => p,
            Err(e) => return Outcome::Unexpressible(format!("residual not readable: {e}")),
        };
        let mut conds = Vec::new();
        for clause in pst.body().clauses() {
            let (expr, negate) = match clause {
                pst::Clause::When(e) => (e, false),
                pst::Clause::Unless(e) => (e, true),
            };
            match self.expr(expr, &Present::new()) {
                Ok(c) if negate => conds.push(self.negate(c)),
                Ok(c) => conds.push(c),
                Err(why) => return Outcome::Unexpressible(why),
            }
        }
        let cond = conds
            .into_iter()
            .fold(Cond::constant(true), |acc, c| self.and(acc, c));
        match (&cond.t, &cond.f) {
            (Filter::Const(true), _) => Outcome::True,
            (_, Filter::Const(true)) => Outcome::False,
            (Filter::Const(false), Filter::Const(false)) => Outcome::Error,
            _ => Outcome::Residual(cond),
        }
    }

    fn negate(&self, c: Cond) -> Cond {
        Cond {
            t: c.f,
            f: c.t,
            total: c.total,
        }
    }

    fn and(&self, l: Cond, r: Cond) -> Cond {
        let t = and(vec![l.t.clone(), r.t.clone()]);
        let total = l.total && r.total;
        let f = if total {
            not(t.clone())
        } else {
            or(vec![l.f, and(vec![l.t, r.f])])
        };
        Cond { t, f, total }
    }

    fn or(&self, l: Cond, r: Cond) -> Cond {
        let t = or(vec![l.t.clone(), and(vec![l.f.clone(), r.t.clone()])]);
        let total = l.total && r.total;
        let f = if total {
            not(t.clone())
        } else {
            and(vec![l.f, r.f])
        };
        Cond { t, f, total }
    }

    /// A boolean expression.
    fn expr(&self, e: &Expr, present: &Present) -> Result<Cond, String> {
        match e {
            Expr::Literal(Literal::Bool(b)) => Ok(Cond::constant(*b)),
            Expr::ResidualError => Ok(Cond {
                t: Filter::Const(false),
                f: Filter::Const(false),
                total: false,
            }),
            Expr::UnaryOp {
                op: UnaryOp::Not,
                expr,
            } => Ok(self.negate(self.expr(expr, present)?)),
            Expr::BinaryOp {
                op: BinaryOp::And,
                left,
                right,
            } => {
                let l = self.expr(left, present)?;
                let mut guarded = present.clone();
                guarded.extend(asserted(left, true));
                let r = self.expr(right, &guarded)?;
                Ok(self.and(l, r))
            }
            Expr::BinaryOp {
                op: BinaryOp::Or,
                left,
                right,
            } => {
                let l = self.expr(left, present)?;
                let mut guarded = present.clone();
                guarded.extend(asserted(left, false));
                let r = self.expr(right, &guarded)?;
                Ok(self.or(l, r))
            }
            Expr::IfThenElse {
                cond,
                then_expr,
                else_expr,
            } => {
                let c = self.expr(cond, present)?;
                let mut when_true = present.clone();
                when_true.extend(asserted(cond, true));
                let mut when_false = present.clone();
                when_false.extend(asserted(cond, false));
                let a = self.expr(then_expr, &when_true)?;
                let b = self.expr(else_expr, &when_false)?;
                let total = c.total && a.total && b.total;
                let t = or(vec![
                    and(vec![c.t.clone(), a.t.clone()]),
                    and(vec![c.f.clone(), b.t]),
                ]);
                let f = if total {
                    not(t.clone())
                } else {
                    or(vec![and(vec![c.t, a.f]), and(vec![c.f, b.f])])
                };
                Ok(Cond { t, f, total })
            }
            Expr::HasAttr { expr, attrs } if is_resource(expr) && attrs.tail.is_empty() => {
                let a = attrs.head.as_str();
                match self.shape.attrs.get(a) {
                    Some((_, true)) => Ok(Cond::constant(true)),
                    Some((_, false)) => Ok(Cond::exact(Filter::Has(a.to_string()))),
                    None if self.shape.simple => Ok(Cond::constant(false)),
                    None => Err(format!("`resource has {a}` on a type with open attributes")),
                }
            }
            Expr::GetAttr { expr, attr } if is_resource(expr) => {
                // A Bool attribute used as a condition.
                let op = Operand::Attr(attr.to_string());
                let cmp =
                    |b: bool| Filter::Cmp(Cmp::Eq, op.clone(), Operand::Value(Value::Bool(b)));
                Ok(self.atom(present, &[&op], cmp(true), Some(cmp(false))))
            }
            Expr::BinaryOp { op, left, right } => self.binary(*op, left, right, present),
            Expr::UnaryOp {
                op: UnaryOp::IsEmpty,
                expr,
            } => {
                let s = self.operand(expr)?;
                if let Operand::Value(Value::Set(items)) = &s {
                    return Ok(Cond::constant(items.is_empty()));
                }
                Ok(self.atom(present, &[&s], Filter::IsEmpty(s.clone()), None))
            }
            Expr::Like { expr, pattern } => {
                let x = self.operand(expr)?;
                let p = pattern_text(pattern);
                Ok(self.atom(present, &[&x], Filter::Like(x.clone(), p), None))
            }
            other => Err(format!("`{other}` cannot be expressed as a filter")),
        }
    }

    fn binary(
        &self,
        op: BinaryOp,
        left: &Arc<Expr>,
        right: &Arc<Expr>,
        present: &Present,
    ) -> Result<Cond, String> {
        if op == BinaryOp::In {
            return self.member_of(left, right, present);
        }
        let cmp = match op {
            BinaryOp::Eq => Some(Cmp::Eq),
            BinaryOp::NotEq => Some(Cmp::Ne),
            BinaryOp::Less => Some(Cmp::Lt),
            BinaryOp::LessEq => Some(Cmp::Le),
            BinaryOp::Greater => Some(Cmp::Gt),
            BinaryOp::GreaterEq => Some(Cmp::Ge),
            _ => None,
        };
        let whole = || {
            format!(
                "`{}` cannot be expressed as a filter",
                Expr::BinaryOp {
                    op,
                    left: left.clone(),
                    right: right.clone()
                }
            )
        };
        let (a, b) = match (self.operand(left), self.operand(right)) {
            (Ok(a), Ok(b)) => (a, b),
            _ => return Err(whole()),
        };
        let operands = [&a, &b];
        if let Some(cmp) = cmp {
            if matches!(cmp, Cmp::Eq | Cmp::Ne) && !self.may_equal(&a, &b) {
                // Operands of different types are never equal in Cedar (and never an error).
                let t = Filter::Const(cmp == Cmp::Ne);
                return Ok(self.atom(present, &operands, t.clone(), Some(not(t))));
            }
            let yes = Filter::Cmp(cmp, a.clone(), b.clone());
            let no = Filter::Cmp(cmp.negate(), a.clone(), b.clone());
            return Ok(self.atom(present, &operands, yes, Some(no)));
        }
        let filter = match (op, &a, &b) {
            // `[v1, v2].contains(resource.a)`: `a` is one of them.
            (BinaryOp::Contains, Operand::Value(Value::Set(items)), Operand::Attr(_)) => or(items
                .iter()
                .filter(|v| self.may_equal(&b, &Operand::Value((*v).clone())))
                .map(|v| Filter::Cmp(Cmp::Eq, b.clone(), Operand::Value(v.clone())))
                .collect()),
            (BinaryOp::Contains, Operand::Attr(_), Operand::Value(v)) => {
                if self.element_fits(&a, v) {
                    Filter::Contains(a.clone(), b.clone())
                } else {
                    Filter::Const(false)
                }
            }
            (BinaryOp::Contains, _, _) => Filter::Contains(a.clone(), b.clone()),
            (BinaryOp::ContainsAny, Operand::Value(_), Operand::Attr(_)) => {
                self.contains_any(&b, &a)
            }
            (BinaryOp::ContainsAny, _, _) => self.contains_any(&a, &b),
            (BinaryOp::ContainsAll, Operand::Attr(_), Operand::Value(Value::Set(items))) => {
                if items.iter().all(|v| self.element_fits(&a, v)) {
                    Filter::ContainsAll(a.clone(), b.clone())
                } else {
                    Filter::Const(false)
                }
            }
            (BinaryOp::ContainsAll, _, _) => Filter::ContainsAll(a.clone(), b.clone()),
            _ => return Err(whole()),
        };
        Ok(self.atom(present, &operands, filter, None))
    }

    fn contains_any(&self, set: &Operand, other: &Operand) -> Filter {
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
    fn member_of(
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
    fn in_group(&self, target: &Operand, group: &Value, present: &Present) -> Option<Cond> {
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
            .chain(self.snapshot.entities.iter())
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
                    .entities
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
    fn atom(
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

    fn required(&self, attr: &str) -> bool {
        matches!(self.shape.attrs.get(attr), Some((_, true)))
    }

    fn attr_type(&self, o: &Operand) -> Option<&AttrType> {
        o.attr()
            .and_then(|a| self.shape.attrs.get(a))
            .and_then(|(t, _)| t.as_ref())
    }

    /// False only when the two can be shown to have different types.
    fn may_equal(&self, a: &Operand, b: &Operand) -> bool {
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

    fn element_fits(&self, set: &Operand, v: &Value) -> bool {
        match self.attr_type(set) {
            Some(AttrType::Set(t)) => fits(v, t),
            _ => true,
        }
    }

    /// A value operand: `resource.a` or a constant.
    fn operand(&self, e: &Expr) -> Result<Operand, String> {
        match e {
            Expr::GetAttr { expr, attr } if is_resource(expr) => {
                Ok(Operand::Attr(attr.to_string()))
            }
            _ => value(e).map(Operand::Value),
        }
    }
}

/// An entity value's uid; `None` for anything else.
fn entity_uid(v: &Value) -> Option<EntityUid> {
    let Value::Entity { ty, id } = v else {
        return None;
    };
    let t = EntityTypeName::from_str(ty).ok()?;
    Some(EntityUid::from_type_name_and_id(t, EntityId::new(id)))
}

fn is_resource(e: &Expr) -> bool {
    matches!(e, Expr::Var(Var::Resource))
}

/// Attributes of the resource that `e` being `when` (true or false) guarantees present.
fn asserted(e: &Expr, when: bool) -> Vec<String> {
    match e {
        Expr::HasAttr { expr, attrs } if when && is_resource(expr) && attrs.tail.is_empty() => {
            vec![attrs.head.to_string()]
        }
        Expr::UnaryOp {
            op: UnaryOp::Not,
            expr,
        } => asserted(expr, !when),
        Expr::BinaryOp {
            op: BinaryOp::And,
            left,
            right,
        } if when => [asserted(left, true), asserted(right, true)].concat(),
        Expr::BinaryOp {
            op: BinaryOp::Or,
            left,
            right,
        } if !when => [asserted(left, false), asserted(right, false)].concat(),
        _ => Vec::new(),
    }
}

fn value(e: &Expr) -> Result<Value, String> {
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

fn fits(v: &Value, t: &AttrType) -> bool {
    match (v, t) {
        (Value::Bool(_), AttrType::Bool)
        | (Value::Long(_), AttrType::Long)
        | (Value::String(_), AttrType::String) => true,
        (Value::Entity { ty, .. }, AttrType::Entity(et)) => *ty == et.to_string(),
        (Value::Set(items), AttrType::Set(inner)) => items.iter().all(|i| fits(i, inner)),
        _ => false,
    }
}

/// Cedar's pattern in the filter's text form: `*` any run, `\*` a star, `\\` a backslash.
fn pattern_text(pattern: &[PatternElem]) -> String {
    let mut out = String::new();
    for p in pattern {
        match p {
            PatternElem::Wildcard => out.push('*'),
            PatternElem::Char('*') => out.push_str("\\*"),
            PatternElem::Char('\\') => out.push_str("\\\\"),
            PatternElem::Char(c) => out.push(*c),
        }
    }
    out
}
