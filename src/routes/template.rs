//! Templates of a route's resource: `"{id}"`, `"{customer}"`, `"orders-of-{legal_entity}"`.
//!
//! Parsed once from the config against the route's path parameters, so an unknown placeholder is a
//! configuration error, never a runtime surprise. `{{` and `}}` stand for literal braces. Rendering
//! needs only the path parameters and the token's customer and legal entity.

use serde_json::{Map, Value};

use crate::verify::{CustomerId, LegalEntityId};

/// Placeholder filled with the token's customer.
pub(crate) const CUSTOMER: &str = "customer";
/// Placeholder filled with the token's selected legal entity.
pub(crate) const LEGAL_ENTITY: &str = "legal_entity";

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The route uses `{legal_entity}` and the token selects none.
    #[error("this route needs the selected legal entity and the token has none")]
    NoLegalEntity,
}

/// What a template is filled from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Values<'a> {
    /// Path parameters, in the order the pattern names them.
    pub params: &'a [String],
    /// The token's customer.
    pub customer: &'a CustomerId,
    /// The token's selected legal entity.
    pub legal_entity: Option<&'a LegalEntityId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Param(usize),
    Customer,
    LegalEntity,
}

/// A parsed string template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template(Vec<Piece>);

impl Template {
    /// Parses `text`; `params` are the route's path parameter names.
    pub(crate) fn parse(text: &str, params: &[String]) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => return Err(format!("unmatched `}}` in {text:?} (write `}}}}`)")),
                '{' => {
                    let (mut name, mut closed) = (String::new(), false);
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    if !closed {
                        return Err(format!("unclosed `{{` in {text:?} (write `{{{{`)"));
                    }
                    let piece = match name.as_str() {
                        CUSTOMER => Piece::Customer,
                        LEGAL_ENTITY => Piece::LegalEntity,
                        _ => match params.iter().position(|p| *p == name) {
                            Some(i) => Piece::Param(i),
                            None => {
                                return Err(format!(
                                    "unknown placeholder {{{name}}} in {text:?} (known: {})",
                                    known(params)
                                ))
                            }
                        },
                    };
                    if !literal.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut literal)));
                    }
                    pieces.push(piece);
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Self(pieces))
    }

    /// Fills the placeholders.
    pub(crate) fn render(&self, v: Values<'_>) -> Result<String, RenderError> {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Piece::Text(t) => out.push_str(t),
                // Parsed against the same route's params, so the index is in range.
                Piece::Param(i) => out.push_str(v.params.get(*i).map_or("", String::as_str)),
                Piece::Customer => out.push_str(&v.customer.0),
                Piece::LegalEntity => {
                    out.push_str(&v.legal_entity.ok_or(RenderError::NoLegalEntity)?.0)
                }
            }
        }
        Ok(out)
    }

    /// Whether the template renders to the empty string whatever the values (e.g. `""`).
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn known(params: &[String]) -> String {
    params
        .iter()
        .map(String::as_str)
        .chain([CUSTOMER, LEGAL_ENTITY])
        .map(|n| format!("{{{n}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A route's fixed attributes: Cedar JSON values whose strings are templates.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AttrTemplate {
    /// A string template.
    Text(Template),
    /// A number or boolean, used as is.
    Fixed(Value),
    /// A set.
    List(Vec<AttrTemplate>),
    /// A record or an entity reference (`{type, id}`).
    Record(Vec<(String, AttrTemplate)>),
}

impl AttrTemplate {
    /// Reads a TOML table of attributes. Floats and datetimes have no Cedar JSON form and are refused.
    pub(crate) fn parse_table(table: &toml::Table, params: &[String]) -> Result<Self, String> {
        table
            .iter()
            .map(|(k, v)| Ok((k.clone(), Self::parse(v, params)?)))
            .collect::<Result<_, String>>()
            .map(AttrTemplate::Record)
    }

    fn parse(v: &toml::Value, params: &[String]) -> Result<Self, String> {
        Ok(match v {
            toml::Value::String(s) => AttrTemplate::Text(Template::parse(s, params)?),
            toml::Value::Integer(i) => AttrTemplate::Fixed(Value::from(*i)),
            toml::Value::Boolean(b) => AttrTemplate::Fixed(Value::Bool(*b)),
            toml::Value::Array(items) => AttrTemplate::List(
                items
                    .iter()
                    .map(|i| Self::parse(i, params))
                    .collect::<Result<_, _>>()?,
            ),
            toml::Value::Table(t) => Self::parse_table(t, params)?,
            toml::Value::Float(f) => {
                return Err(format!(
                    "attribute value {f} is a float; Cedar has no floats (use an integer or a decimal string)"
                ))
            }
            toml::Value::Datetime(d) => {
                return Err(format!(
                    "attribute value {d} is a TOML datetime; write it as a string"
                ))
            }
        })
    }

    /// Fills the placeholders.
    pub(crate) fn render(&self, v: Values<'_>) -> Result<Value, RenderError> {
        Ok(match self {
            AttrTemplate::Text(t) => Value::String(t.render(v)?),
            AttrTemplate::Fixed(x) => x.clone(),
            AttrTemplate::List(items) => Value::Array(
                items
                    .iter()
                    .map(|i| i.render(v))
                    .collect::<Result<_, _>>()?,
            ),
            AttrTemplate::Record(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, t)| Ok((k.clone(), t.render(v)?)))
                    .collect::<Result<Map<_, _>, _>>()?,
            ),
        })
    }
}
