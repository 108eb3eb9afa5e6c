//! A filter as a PostgreSQL `WHERE` fragment: `$n` placeholders with their `params`, identifiers
//! only from `[plan.tables.<Type>]` (always quoted), values only in `params`.
//!
//! Mapping: an entity reference compares by id (a `text` column); a set of entities or strings is a
//! `text[]` column (`contains` → `$1 = ANY(col)`, `contains_any` → `col && $1`, `contains_all` →
//! `col @> $1`, `is_empty` → `cardinality(col) = 0`); `Long` is `bigint`, `Bool` is `boolean`; an
//! absent optional attribute is `NULL` (`has` → `IS NOT NULL`). SQL comparisons with `NULL` are
//! `NULL`, not `false`, so an operator on a column not known to be present is wrapped as
//! `(col IS NOT NULL AND ...)`: the fragment then is true exactly where the filter is.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::{json, Value as Json};

use super::filter::{Cmp, Filter, Operand, Value};

/// A `WHERE` fragment and its parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sql {
    /// The fragment, with `$1`, `$2`, … placeholders.
    #[serde(rename = "where")]
    pub where_: String,
    /// The placeholders' values in order: strings (ids too), numbers, booleans, arrays of strings.
    pub params: Vec<Json>,
}

/// Why a filter has no SQL form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlError {
    /// The filter reads an attribute `[plan.tables.<Type>].columns` does not map.
    #[error("attribute `{0}` has no column in [plan.tables.{1}]")]
    NoColumn(String, String),
}

/// Translates `filter` for resources of `type_name` stored with `columns` (attribute → column);
/// `required` are the attributes the schema requires (never `NULL`), the others may be absent.
pub fn to_sql(
    filter: &Filter,
    type_name: &str,
    columns: &HashMap<String, String>,
    required: &HashSet<String>,
) -> Result<Sql, SqlError> {
    let mut missing: Vec<&str> = filter
        .attrs()
        .into_iter()
        .filter(|a| !columns.contains_key(*a))
        .collect();
    missing.sort();
    if let Some(a) = missing.first() {
        return Err(SqlError::NoColumn(a.to_string(), type_name.to_string()));
    }
    let mut w = Writer {
        columns,
        required,
        params: Vec::new(),
    };
    // Junctions are always parenthesised, so the fragment can be joined with `AND` as it is.
    let where_ = w.filter(filter, &HashSet::new());
    Ok(Sql {
        where_,
        params: w.params,
    })
}

struct Writer<'a> {
    columns: &'a HashMap<String, String>,
    required: &'a HashSet<String>,
    params: Vec<Json>,
}

impl Writer<'_> {
    /// `present`: attributes an enclosing `and` already requires to be present.
    fn filter(&mut self, f: &Filter, present: &HashSet<&str>) -> String {
        match f {
            Filter::Const(true) => "TRUE".into(),
            Filter::Const(false) => "FALSE".into(),
            Filter::And(items) => {
                let mut inner = present.clone();
                inner.extend(items.iter().filter_map(|i| match i {
                    Filter::Has(a) => Some(a.as_str()),
                    _ => None,
                }));
                let parts: Vec<String> = items.iter().map(|i| self.filter(i, &inner)).collect();
                format!("({})", parts.join(" AND "))
            }
            Filter::Or(items) => {
                let parts: Vec<String> = items.iter().map(|i| self.filter(i, present)).collect();
                format!("({})", parts.join(" OR "))
            }
            Filter::Not(inner) => format!("NOT {}", self.filter_parenthesised(inner, present)),
            Filter::Has(a) => format!("{} IS NOT NULL", self.column(a)),
            atom => {
                let text = self.atom(atom);
                let unguarded: Vec<String> = atom
                    .attrs()
                    .into_iter()
                    .filter(|a| !present.contains(a) && !self.required.contains(*a))
                    .map(|a| format!("{} IS NOT NULL", self.column(a)))
                    .collect();
                if unguarded.is_empty() {
                    text
                } else {
                    let mut sorted = unguarded;
                    sorted.sort();
                    sorted.push(text);
                    format!("({})", sorted.join(" AND "))
                }
            }
        }
    }

    fn filter_parenthesised(&mut self, f: &Filter, present: &HashSet<&str>) -> String {
        let s = self.filter(f, present);
        if s.starts_with('(') && s.ends_with(')') {
            s
        } else {
            format!("({s})")
        }
    }

    fn atom(&mut self, f: &Filter) -> String {
        match f {
            Filter::Cmp(op, a, b) => self.cmp(*op, a, b),
            Filter::Contains(s, x) => {
                let (s, x) = (self.operand(s), self.operand(x));
                format!("{x} = ANY({s})")
            }
            Filter::ContainsAny(s, t) => format!("{} && {}", self.operand(s), self.operand(t)),
            Filter::ContainsAll(s, t) => format!("{} @> {}", self.operand(s), self.operand(t)),
            Filter::IsEmpty(s) => format!("cardinality({}) = 0", self.operand(s)),
            Filter::Like(x, pattern) => {
                let x = self.operand(x);
                let p = self.param(json!(like_pattern(pattern)));
                format!("{x} LIKE {p}")
            }
            Filter::Const(_) | Filter::And(_) | Filter::Or(_) | Filter::Not(_) | Filter::Has(_) => {
                unreachable!("not an atom")
            }
        }
    }

    fn cmp(&mut self, op: Cmp, a: &Operand, b: &Operand) -> String {
        let is_set = |o: &Operand| matches!(o, Operand::Value(Value::Set(_)));
        let (a, b) = ((self.operand(a), is_set(a)), (self.operand(b), is_set(b)));
        if a.1 || b.1 {
            // Sets are equal when each contains the other (arrays compare by order and repeats).
            let eq = format!("({} @> {} AND {} <@ {})", a.0, b.0, a.0, b.0);
            return match op {
                Cmp::Ne => format!("NOT {eq}"),
                _ => eq,
            };
        }
        let sym = match op {
            Cmp::Eq => "=",
            Cmp::Ne => "<>",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
        };
        format!("{} {sym} {}", a.0, b.0)
    }

    fn operand(&mut self, o: &Operand) -> String {
        match o {
            Operand::Attr(a) => self.column(a),
            Operand::Value(v) => {
                let p = param_value(v);
                self.param(p)
            }
        }
    }

    fn param(&mut self, v: Json) -> String {
        self.params.push(v);
        format!("${}", self.params.len())
    }

    fn column(&self, attr: &str) -> String {
        // `to_sql` checked that every attribute has a column.
        let name = self.columns.get(attr).map(String::as_str).unwrap_or(attr);
        quote_ident(name)
    }
}

/// A column name as a quoted PostgreSQL identifier: `"` doubled, so any text is one identifier.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Entity references by id; sets as arrays of their elements' parameter values.
fn param_value(v: &Value) -> Json {
    match v {
        Value::Bool(b) => json!(b),
        Value::Long(n) => json!(n),
        Value::String(s) => json!(s),
        Value::Entity { id, .. } => json!(id),
        Value::Set(items) => Json::Array(items.iter().map(param_value).collect()),
    }
}

/// Cedar's pattern (`*` any run, `\*` a star, `\\` a backslash) as a `LIKE` pattern with
/// PostgreSQL's default escape `\`: `%` and `_` of the text are escaped.
fn like_pattern(cedar: &str) -> String {
    let mut out = String::new();
    let mut chars = cedar.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push('%'),
            '\\' => match chars.next() {
                Some('*') => out.push('*'),
                Some('\\') | None => out.push_str("\\\\"),
                Some(other) => {
                    out.push_str("\\\\");
                    push_literal(&mut out, other);
                }
            },
            other => push_literal(&mut out, other),
        }
    }
    out
}

fn push_literal(out: &mut String, c: char) {
    if matches!(c, '%' | '_' | '\\') {
        out.push('\\');
    }
    out.push(c);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::filter::{and, or};

    fn required() -> HashSet<String> {
        ["owner".to_string(), "segments".to_string()].into()
    }

    fn columns() -> HashMap<String, String> {
        [
            ("owner", "owner_id"),
            ("legalEntity", "legal_entity_id"),
            ("status", "status"),
            ("segments", "segment_ids"),
        ]
        .into_iter()
        .map(|(a, c)| (a.to_string(), c.to_string()))
        .collect()
    }

    fn entity(ty: &str, id: &str) -> Operand {
        Operand::Value(Value::Entity {
            ty: ty.into(),
            id: id.into(),
        })
    }

    fn attr(a: &str) -> Operand {
        Operand::Attr(a.into())
    }

    #[test]
    fn the_orders_example_reads_as_design_md_shows() {
        let f = or(vec![
            Filter::Cmp(Cmp::Eq, attr("owner"), entity("Shop::Customer", "C-1")),
            and(vec![
                Filter::Has("legalEntity".into()),
                Filter::Cmp(
                    Cmp::Eq,
                    attr("legalEntity"),
                    entity("Shop::LegalEntity", "LE-1"),
                ),
            ]),
        ]);
        let sql = to_sql(&f, "Order", &columns(), &required()).unwrap();
        assert_eq!(
            sql.where_,
            r#"("owner_id" = $1 OR ("legal_entity_id" IS NOT NULL AND "legal_entity_id" = $2))"#
        );
        assert_eq!(sql.params, vec![json!("C-1"), json!("LE-1")]);
    }

    #[test]
    fn unguarded_optional_operators_are_null_safe_under_not() {
        let f = Filter::Not(Box::new(Filter::Cmp(
            Cmp::Eq,
            attr("status"),
            Operand::Value(Value::String("x".into())),
        )));
        let sql = to_sql(&f, "Order", &columns(), &required()).unwrap();
        assert_eq!(
            sql.where_,
            r#"NOT ("status" IS NOT NULL AND "status" = $1)"#
        );
    }

    #[test]
    fn values_never_reach_the_text_and_identifiers_are_quoted() {
        let evil = "x'; DROP TABLE orders; -- $1 \\";
        let f = Filter::Cmp(Cmp::Eq, attr("owner"), entity("Shop::Customer", evil));
        let mut cols = columns();
        cols.insert("owner".into(), "own\"er".into());
        let sql = to_sql(&f, "Order", &cols, &required()).unwrap();
        assert_eq!(sql.where_, r#""own""er" = $1"#);
        assert_eq!(sql.params, vec![json!(evil)]);
    }

    #[test]
    fn sets_map_to_array_operators() {
        let s = |ids: &[&str]| {
            Operand::Value(Value::set(
                ids.iter()
                    .map(|i| Value::Entity {
                        ty: "Shop::Segment".into(),
                        id: i.to_string(),
                    })
                    .collect(),
            ))
        };
        let f = or(vec![
            Filter::IsEmpty(attr("segments")),
            Filter::ContainsAny(attr("segments"), s(&["b", "a"])),
            Filter::ContainsAll(attr("segments"), s(&["a"])),
            Filter::Contains(attr("segments"), entity("Shop::Segment", "c")),
        ]);
        let sql = to_sql(&f, "Product", &columns(), &required()).unwrap();
        assert_eq!(
            sql.where_,
            r#"(cardinality("segment_ids") = 0 OR "segment_ids" && $1 OR "segment_ids" @> $2 OR $3 = ANY("segment_ids"))"#
        );
        assert_eq!(
            sql.params,
            vec![json!(["a", "b"]), json!(["a"]), json!("c")]
        );
    }

    #[test]
    fn like_patterns_escape_sql_wildcards() {
        assert_eq!(like_pattern("open*"), "open%");
        assert_eq!(like_pattern("100%_\\*"), "100\\%\\_*");
        assert_eq!(like_pattern("a\\\\b"), "a\\\\b");
    }

    #[test]
    fn a_missing_column_is_named() {
        let f = Filter::Has("status".into());
        let err = to_sql(&f, "Order", &HashMap::new(), &required()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "attribute `status` has no column in [plan.tables.Order]"
        );
    }
}
