//! Reading a residual (`pst`): each Cedar expression translated into the filter language,
//! as a [`Cond`] (where it is true, where it is false), with three-valued semantics (see the
//! parent module). What the language cannot express is an `Err` with the reason, never a guess.

use std::{collections::HashSet, sync::Arc};

use cedar_policy::pst::{self, BinaryOp, Expr, Literal, PatternElem, UnaryOp, Var};

use super::{Cond, Outcome};
use crate::plan::filter::{and, not, or, Cmp, Filter, Operand, Value};
use crate::{
    policy::{Shape, Snapshot},
    request::Known,
};

/// Translates residual expressions over one resource type.
pub(super) struct Reader<'a> {
    pub(super) shape: &'a Shape,
    pub(super) known: &'a Known,
    /// For `resource.a in E`: the entities a decision would find for `a` (the known ones win).
    pub(super) snapshot: &'a Snapshot,
}

/// Attributes known to be present where a subexpression is evaluated (from `has` guards).
pub(super) type Present = HashSet<String>;

impl Reader<'_> {
    pub(super) fn policy(&self, policy: &cedar_policy::Policy) -> Outcome {
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

    pub(super) fn negate(&self, c: Cond) -> Cond {
        Cond {
            t: c.f,
            f: c.t,
            total: c.total,
        }
    }

    pub(super) fn and(&self, l: Cond, r: Cond) -> Cond {
        let t = and(vec![l.t.clone(), r.t.clone()]);
        let total = l.total && r.total;
        let f = if total {
            not(t.clone())
        } else {
            or(vec![l.f, and(vec![l.t, r.f])])
        };
        Cond { t, f, total }
    }

    pub(super) fn or(&self, l: Cond, r: Cond) -> Cond {
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
    pub(super) fn expr(&self, e: &Expr, present: &Present) -> Result<Cond, String> {
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

    pub(super) fn binary(
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
}

pub(super) fn is_resource(e: &Expr) -> bool {
    matches!(e, Expr::Var(Var::Resource))
}

/// Attributes of the resource that `e` being `when` (true or false) guarantees present.
pub(super) fn asserted(e: &Expr, when: bool) -> Vec<String> {
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

/// Cedar's pattern in the filter's text form: `*` any run, `\*` a star, `\\` a backslash.
pub(super) fn pattern_text(pattern: &[PatternElem]) -> String {
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
