//! The plan filter → SQL translator (`plan::to_sql`), from structured filters (`arbitrary`): the
//! shapes a residual becomes, built both raw and through the simplifiers (`and`, `or`, `not`) the
//! plan answer uses, with attribute and column names that need quoting and values of every kind.
//!
//! Properties: no panic; an attribute without a column is an error, never SQL; the fragment
//! carries every value as a `$n` parameter (nothing but keywords, operators, quoted identifiers
//! and placeholders outside them), each parameter used, no placeholder without one.
#![no_main]

use std::collections::HashSet;

use arbitrary::Arbitrary;
use legate::testing::plan::{
    filter::{and, not, or, Cmp},
    to_sql, Filter, Operand, SqlError, Value,
};
use legate_fuzz::{check_sql, columns_for};
use libfuzzer_sys::fuzz_target;

/// Names: the example's attributes, names that need quoting, or any text.
#[derive(Arbitrary, Debug)]
enum Name {
    Owner,
    LegalEntity,
    Status,
    Segments,
    Quote,
    Any(String),
}

impl Name {
    fn get(&self) -> String {
        match self {
            Name::Owner => "owner".into(),
            Name::LegalEntity => "legalEntity".into(),
            Name::Status => "status".into(),
            Name::Segments => "segments".into(),
            Name::Quote => "a\"; DROP TABLE orders; --".into(),
            Name::Any(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum V {
    Bool(bool),
    Long(i64),
    String(String),
    Entity(String, String),
    Set(Vec<V>),
}

#[derive(Arbitrary, Debug)]
enum O {
    Attr(Name),
    Value(V),
}

#[derive(Arbitrary, Debug)]
enum F {
    Const(bool),
    And(Vec<F>),
    Or(Vec<F>),
    Not(Box<F>),
    Has(Name),
    Cmp(u8, O, O),
    Contains(O, O),
    ContainsAny(O, O),
    ContainsAll(O, O),
    IsEmpty(O),
    Like(O, String),
}

#[derive(Arbitrary, Debug)]
struct Input {
    filter: F,
    /// Build through the simplifiers (as the plan answer does) rather than raw.
    simplify: bool,
    /// Leave this attribute without a column.
    unmapped: Option<Name>,
    /// Attributes the schema requires (never NULL).
    required: Vec<Name>,
}

const DEPTH: usize = 24;

fn value(v: &V, depth: usize) -> Value {
    match v {
        V::Bool(b) => Value::Bool(*b),
        V::Long(n) => Value::Long(*n),
        V::String(s) => Value::String(s.clone()),
        V::Entity(ty, id) => Value::Entity {
            ty: ty.clone(),
            id: id.clone(),
        },
        V::Set(items) if depth < DEPTH => {
            Value::set(items.iter().map(|i| value(i, depth + 1)).collect())
        }
        V::Set(_) => Value::Set(Vec::new()),
    }
}

fn operand(o: &O) -> Operand {
    match o {
        O::Attr(n) => Operand::Attr(n.get()),
        O::Value(v) => Operand::Value(value(v, 0)),
    }
}

fn filter(f: &F, simplify: bool, depth: usize) -> Filter {
    if depth > DEPTH {
        return Filter::Const(true);
    }
    let many = |fs: &Vec<F>| -> Vec<Filter> {
        fs.iter().map(|f| filter(f, simplify, depth + 1)).collect()
    };
    match f {
        F::Const(b) => Filter::Const(*b),
        F::And(fs) if simplify => and(many(fs)),
        F::And(fs) => Filter::And(many(fs)),
        F::Or(fs) if simplify => or(many(fs)),
        F::Or(fs) => Filter::Or(many(fs)),
        F::Not(f) if simplify => not(filter(f, simplify, depth + 1)),
        F::Not(f) => Filter::Not(Box::new(filter(f, simplify, depth + 1))),
        F::Has(n) => Filter::Has(n.get()),
        F::Cmp(op, a, b) => {
            let op = [Cmp::Eq, Cmp::Ne, Cmp::Lt, Cmp::Le, Cmp::Gt, Cmp::Ge][*op as usize % 6];
            Filter::Cmp(op, operand(a), operand(b))
        }
        F::Contains(a, b) => Filter::Contains(operand(a), operand(b)),
        F::ContainsAny(a, b) => Filter::ContainsAny(operand(a), operand(b)),
        F::ContainsAll(a, b) => Filter::ContainsAll(operand(a), operand(b)),
        F::IsEmpty(a) => Filter::IsEmpty(operand(a)),
        F::Like(a, p) => Filter::Like(operand(a), p.clone()),
    }
}

fuzz_target!(|input: Input| {
    let f = filter(&input.filter, input.simplify, 0);
    let attrs = f.attrs();
    let unmapped = input.unmapped.as_ref().map(Name::get);
    let mut columns = columns_for(attrs.iter().copied());
    if let Some(u) = &unmapped {
        columns.remove(u);
    }
    let required: HashSet<String> = input.required.iter().map(Name::get).collect();
    match to_sql(&f, "Order", &columns, &required) {
        Ok(sql) => {
            assert!(
                unmapped
                    .as_ref()
                    .is_none_or(|u| !attrs.contains(u.as_str())),
                "SQL for a filter that reads an unmapped attribute"
            );
            if let Err(e) = check_sql(&sql) {
                panic!("{e}\nfilter: {}", f.to_json());
            }
        }
        Err(SqlError::NoColumn(a, _)) => {
            assert_eq!(
                Some(&a),
                unmapped.as_ref(),
                "no column for a mapped attribute"
            );
        }
    }
});
