//! Parsing and validating: the schema, the policy files (ids from `@id`, unique across files, no
//! templates), strict validation against the schema, and the entity data.

use std::{collections::HashMap, str::FromStr, sync::Arc};

use cedar_policy::{Entities, PolicyId, PolicySet, Schema, ValidationMode, Validator};

use super::{
    diagnostics::{diagnostics, diagnostics_at, problem},
    LoadError, ENTITIES_FILE, SCHEMA_FILE,
};
use crate::policy::PolicyInfo;

/// The policy files, parsed into one set.
pub(super) struct Parsed {
    pub(super) set: PolicySet,
    pub(super) infos: Vec<PolicyInfo>,
    /// Each policy's file, that file's text and the offset in it of the piece the policy was parsed
    /// from, for validation messages: one shared copy of the text per file (a copy of the text per
    /// policy made one file of 10,000 policies take gigabytes).
    origin: HashMap<PolicyId, Origin>,
}

/// Where a policy came from.
#[derive(Debug, Clone)]
struct Origin {
    file: Arc<str>,
    text: Arc<str>,
    /// Byte offset in `text` of the piece Cedar parsed: its positions are relative to that piece.
    base: usize,
}

/// A file's policies parsed piece by piece ([`chunks`](super::chunks)), each piece with its
/// offset; `None` when a piece does not parse (the caller then parses the whole file for the
/// errors, so they are placed as Cedar places them).
fn parse_pieces(text: &str) -> Option<Vec<(usize, PolicySet)>> {
    super::chunks::split(text, super::chunks::PER_CHUNK)
        .into_iter()
        .map(|(base, piece)| PolicySet::from_str(piece).ok().map(|set| (base, set)))
        .collect()
}

/// The schema file, parsed.
pub(super) fn schema(text: &str) -> Result<Schema, LoadError> {
    Schema::from_cedarschema_str(text)
        .map(|(schema, _warnings)| schema)
        .map_err(|e| LoadError {
            problems: diagnostics(SCHEMA_FILE, text, &e),
        })
}

/// Every policy file, parsed; every problem in every file at once.
pub(super) fn policies(files: &[(String, String)]) -> Result<Parsed, LoadError> {
    let mut problems = Vec::new();
    let mut parsed = Parsed {
        set: PolicySet::new(),
        infos: Vec::new(),
        origin: HashMap::new(),
    };
    for (rel, text) in files {
        let pieces = match parse_pieces(text) {
            Some(pieces) => pieces,
            None => match PolicySet::from_str(text) {
                Ok(set) => vec![(0, set)],
                Err(e) => {
                    problems.extend(diagnostics(rel, text, &e));
                    continue;
                }
            },
        };
        let (file, text) = (Arc::from(rel.as_str()), Arc::from(text.as_str()));
        parsed.add_file(&file, &text, pieces, &mut problems);
    }
    if problems.is_empty() {
        Ok(parsed)
    } else {
        Err(LoadError { problems })
    }
}

impl Parsed {
    /// Adds one file's policies (its pieces, in order) under their `@id`s.
    fn add_file(
        &mut self,
        file_name: &Arc<str>,
        file_text: &Arc<str>,
        pieces: Vec<(usize, PolicySet)>,
        problems: &mut Vec<super::Problem>,
    ) {
        let (rel, text) = (&**file_name, &**file_text);
        let has_templates = pieces.iter().any(|(_, p)| p.templates().next().is_some());
        if has_templates {
            let slot = ["?principal", "?resource"]
                .iter()
                .filter_map(|s| text.find(s))
                .min();
            problems.push(problem(
                rel,
                text,
                slot,
                "templates are not supported; write static policies".into(),
            ));
        }
        let mut n = 0;
        // Each piece is dropped once its policies are in the set (a policy's id is set anew).
        for (base, piece) in pieces {
            for policy in piece.policies() {
                self.add_policy(file_name, file_text, base, n, policy, problems);
                n += 1;
            }
        }
    }

    fn add_policy(
        &mut self,
        file_name: &Arc<str>,
        file_text: &Arc<str>,
        base: usize,
        n: usize,
        policy: &cedar_policy::Policy,
        problems: &mut Vec<super::Problem>,
    ) {
        let (rel, text) = (&**file_name, &**file_text);
        let id = policy
            .annotation("id")
            .map(str::to_string)
            .unwrap_or_else(|| format!("{rel}#{n}"));
        let pid = PolicyId::new(&id);
        if let Some(Origin { file: other, .. }) = self.origin.get(&pid) {
            // Cedar keeps no source location on a parsed policy: point at its annotation.
            let at = text
                .find(&format!("@id(\"{id}\")"))
                .or_else(|| text.find(&format!("@id(\"{}\")", id.escape_default())));
            problems.push(problem(
                rel,
                text,
                at,
                format!("policy id {id:?} is also used in {other}"),
            ));
            return;
        }
        let origin = Origin {
            file: file_name.clone(),
            text: file_text.clone(),
            base,
        };
        self.origin.insert(pid.clone(), origin);
        self.infos.push(PolicyInfo {
            id: id.clone(),
            file: rel.to_string(),
        });
        if let Err(e) = self.set.add(policy.new_id(pid)) {
            problems.push(problem(rel, text, None, e.to_string()));
        }
    }

    /// Strict validation against `schema`, each error placed in its policy's file.
    pub(super) fn validate(&self, schema: &Schema) -> Result<(), LoadError> {
        let result = Validator::new(schema.clone()).validate(&self.set, ValidationMode::Strict);
        let problems: Vec<_> = result
            .validation_errors()
            .flat_map(|e| {
                let Origin { file, text, base } =
                    self.origin.get(e.policy_id()).cloned().unwrap_or(Origin {
                        file: "?".into(),
                        text: "".into(),
                        base: 0,
                    });
                diagnostics_at(&file, &text, base, e)
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(LoadError { problems })
        }
    }
}

/// The entity data, read with the schema; none when there is no `entities.json`.
pub(super) fn entities(text: Option<&str>, schema: &Schema) -> Result<Entities, LoadError> {
    match text {
        Some(text) => Entities::from_json_str(text, Some(schema)).map_err(|e| LoadError {
            problems: diagnostics(ENTITIES_FILE, text, &e),
        }),
        None => Ok(Entities::empty()),
    }
}
