//! Forward-auth routes: which Cedar check a proxied request stands for.
//!
//! In: the `[[routes]]` table (compiled once; every bad entry is a configuration problem), then per
//! request the original method and URI and the verified token's ids. Out: a [`Check`] for
//! the decider (`decide::Decider`), or `None` when no route matches.
//!
//! Matching: the method must be equal (`*` matches any, and a `GET` route also answers `HEAD`); the
//! path is compared segment by segment after [`path::segments`] has decoded and vetted it. A literal
//! segment matches itself, `{name}` matches any one non-empty segment, and a last `{*name}` matches
//! the rest of the path (one segment or more, joined with `/`). **The first route that matches
//! wins**, in file order; a route that an earlier one always wins over is refused at start-up.

mod config;
mod path;
mod template;

pub use config::RouteConfig;
pub use path::segments;
pub(crate) use template::{AttrTemplate, RenderError, Template, Values, CUSTOMER, LEGAL_ENTITY};

use axum::http::Method;

use crate::{
    policy::Snapshot,
    request::{Check, ResourceRef},
    verify::{CustomerId, LegalEntityId},
};

/// The compiled `[[routes]]` table.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

/// One compiled route.
#[derive(Debug, Clone)]
pub struct Route {
    /// 1-based position in the file, for messages.
    pub number: usize,
    /// `GET /orders/{id}`, as written.
    pub label: String,
    method: Option<Method>,
    pattern: Vec<Segment>,
    params: Vec<String>,
    /// Cedar action asked.
    pub action: String,
    kind: String,
    id: Template,
    attrs: Option<AttrTemplate>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param,
    Rest,
}

/// A route that matched, with the values of its path parameters.
#[derive(Debug)]
pub struct Match<'a> {
    /// The route.
    pub route: &'a Route,
    /// Decoded parameter values, in pattern order.
    pub params: Vec<String>,
}

impl RouteTable {
    /// Compiles `routes`; `Err` lists every problem, one sentence each.
    pub fn compile(routes: &[RouteConfig]) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let mut compiled: Vec<Route> = Vec::new();
        for (i, r) in routes.iter().enumerate() {
            match Route::compile(i + 1, r) {
                Ok(route) => {
                    if let Some(earlier) = compiled.iter().find(|e| e.covers(&route)) {
                        problems.push(format!(
                            "[[routes]] #{} ({}) can never match: #{} ({}) comes first and matches \
                             every request it would (the first match wins; put the narrower route first)",
                            route.number, route.label, earlier.number, earlier.label
                        ));
                    }
                    compiled.push(route);
                }
                Err(mut p) => problems.append(&mut p),
            }
        }
        if problems.is_empty() {
            Ok(Self { routes: compiled })
        } else {
            Err(problems)
        }
    }

    /// The routes, in file order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The first route matching `method` and the decoded path `segments`.
    pub fn find(&self, method: &Method, segments: &[String]) -> Option<Match<'_>> {
        self.routes.iter().find_map(|r| r.matches(method, segments))
    }

    /// Problems with the routes against a policy snapshot: actions and types the schema lacks.
    pub fn check_schema(&self, snapshot: &Snapshot) -> Vec<String> {
        let mut problems = Vec::new();
        for r in &self.routes {
            if !snapshot.actions().contains_key(&r.action) {
                problems.push(format!(
                    "[[routes]] #{} ({}): the schema has no action {:?}",
                    r.number, r.label, r.action
                ));
            }
            if snapshot.entity_type(&r.kind).is_none() {
                problems.push(format!(
                    "[[routes]] #{} ({}): the schema has no entity type {:?}",
                    r.number, r.label, r.kind
                ));
            }
        }
        problems
    }
}

impl Route {
    fn compile(number: usize, r: &RouteConfig) -> Result<Self, Vec<String>> {
        let label = format!("{} {}", r.method, r.path);
        let at = format!("[[routes]] #{number} ({label})");
        let mut problems = Vec::new();
        let method = match r.method.as_str() {
            "*" => None,
            m => match Method::from_bytes(m.to_ascii_uppercase().as_bytes()) {
                Ok(m) => Some(m),
                Err(_) => {
                    problems.push(format!("{at}: `method` {m:?} is not an HTTP method or `*`"));
                    None
                }
            },
        };
        let (pattern, params) = match parse_pattern(&r.path) {
            Ok(p) => p,
            Err(e) => {
                problems.push(format!("{at}: `path` {e}"));
                (Vec::new(), Vec::new())
            }
        };
        if r.action.trim().is_empty() {
            problems.push(format!("{at}: `action` is empty"));
        }
        if r.resource.kind.trim().is_empty() {
            problems.push(format!("{at}: `resource.type` is empty"));
        }
        let id = Template::parse(&r.resource.id, &params)
            .map_err(|e| problems.push(format!("{at}: `resource.id`: {e}")))
            .ok();
        if id.as_ref().is_some_and(Template::is_empty) {
            problems.push(format!("{at}: `resource.id` is empty"));
        }
        let attrs = match &r.resource.attrs {
            None => None,
            Some(t) => AttrTemplate::parse_table(t, &params)
                .map_err(|e| problems.push(format!("{at}: `resource.attrs`: {e}")))
                .ok(),
        };
        match id {
            Some(id) if problems.is_empty() => Ok(Self {
                number,
                label,
                method,
                pattern,
                params,
                action: r.action.clone(),
                kind: r.resource.kind.clone(),
                id,
                attrs,
            }),
            _ => Err(problems),
        }
    }

    fn method_matches(&self, m: &Method) -> bool {
        match &self.method {
            None => true,
            Some(own) => own == m || (*own == Method::GET && *m == Method::HEAD),
        }
    }

    fn matches(&self, method: &Method, segments: &[String]) -> Option<Match<'_>> {
        if !self.method_matches(method) {
            return None;
        }
        let mut params = Vec::with_capacity(self.params.len());
        for (i, seg) in self.pattern.iter().enumerate() {
            match seg {
                Segment::Literal(l) => (segments.get(i)? == l).then_some(())?,
                Segment::Param => {
                    let s = segments.get(i).filter(|s| !s.is_empty())?;
                    params.push(s.clone());
                }
                Segment::Rest => {
                    let rest = segments.get(i..)?.join("/");
                    if rest.is_empty() {
                        return None;
                    }
                    params.push(rest);
                    return Some(Match {
                        route: self,
                        params,
                    });
                }
            }
        }
        (segments.len() == self.pattern.len()).then_some(Match {
            route: self,
            params,
        })
    }

    /// Whether every request `later` matches is matched by `self` first.
    fn covers(&self, later: &Route) -> bool {
        let methods = match (&self.method, &later.method) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => a == b || (*a == Method::GET && *b == Method::HEAD),
        };
        if !methods {
            return false;
        }
        for (i, seg) in self.pattern.iter().enumerate() {
            let other = later.pattern.get(i);
            match (seg, other) {
                (Segment::Rest, _) => {
                    // A rest needs a non-empty remainder; `later` always has one unless all it has
                    // left is a trailing slash.
                    let left = &later.pattern[i.min(later.pattern.len())..];
                    return !left.is_empty() && left != [Segment::Literal(String::new())];
                }
                (Segment::Param, Some(Segment::Param)) => {}
                (Segment::Param, Some(Segment::Literal(l))) if !l.is_empty() => {}
                (Segment::Literal(a), Some(Segment::Literal(b))) if a == b => {}
                _ => return false,
            }
        }
        self.pattern.len() == later.pattern.len()
    }

    /// The check this route asks for a matched request, filled from the path and the token.
    pub fn check(
        &self,
        params: &[String],
        customer: &CustomerId,
        legal_entity: Option<&LegalEntityId>,
    ) -> Result<Check, RenderError> {
        let values = Values {
            params,
            customer,
            legal_entity,
        };
        let attrs = match &self.attrs {
            Some(a) => match a.render(values)? {
                serde_json::Value::Object(m) => Some(m),
                _ => None,
            },
            None => None,
        };
        Ok(Check {
            action: self.action.clone(),
            resource: ResourceRef {
                kind: self.kind.clone(),
                id: self.id.render(values)?,
                attrs,
            },
            context: None,
        })
    }
}

impl Match<'_> {
    /// The check for this match (see [`Route::check`]).
    pub fn check(
        &self,
        customer: &CustomerId,
        legal_entity: Option<&LegalEntityId>,
    ) -> Result<Check, RenderError> {
        self.route.check(&self.params, customer, legal_entity)
    }
}

/// Parses `/orders/{id}` into segments and parameter names.
fn parse_pattern(path: &str) -> Result<(Vec<Segment>, Vec<String>), String> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!("{path:?} must start with `/`"));
    };
    if path.contains(['?', '#', '%', '\\', ';']) {
        return Err(format!(
            "{path:?} may not contain `?`, `#`, `%`, `\\` or `;` (write segments decoded)"
        ));
    }
    let raw: Vec<&str> = rest.split('/').collect();
    let mut segments = Vec::with_capacity(raw.len());
    let mut params: Vec<String> = Vec::new();
    for (i, s) in raw.iter().enumerate() {
        let last = i + 1 == raw.len();
        let seg = if let Some(inner) = s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            let (name, seg) = match inner.strip_prefix('*') {
                Some(name) if last => (name, Segment::Rest),
                Some(_) => return Err(format!("{path:?}: `{{*…}}` must be the last segment")),
                None => (inner, Segment::Param),
            };
            if !is_name(name) {
                return Err(format!(
                    "{path:?}: {{{name}}} is not a parameter name (letters, digits, `_`)"
                ));
            }
            if name == CUSTOMER || name == LEGAL_ENTITY {
                return Err(format!(
                    "{path:?}: {{{name}}} is reserved for the token's {name}"
                ));
            }
            if params.iter().any(|p| p == name) {
                return Err(format!("{path:?}: {{{name}}} appears twice"));
            }
            params.push(name.to_string());
            seg
        } else if s.contains(['{', '}']) {
            return Err(format!(
                "{path:?}: a parameter must be a whole segment, like `/orders/{{id}}`"
            ));
        } else if s.is_empty() && !last {
            return Err(format!("{path:?} has an empty segment (`//`)"));
        } else if *s == "." || *s == ".." {
            return Err(format!("{path:?} has a `.` or `..` segment"));
        } else {
            Segment::Literal((*s).to_string())
        };
        segments.push(seg);
    }
    Ok((segments, params))
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[doc(hidden)]
pub mod oracle;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
