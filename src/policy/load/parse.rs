//! Parsing and validating: the schema, the policy files (ids from `@id`, unique across files, no
//! templates), strict validation against the schema, and the entity data.

use std::{collections::HashMap, str::FromStr, sync::Arc};

use cedar_policy::{Entities, PolicyId, PolicySet, Schema, ValidationMode, Validator};

use super::{
    diagnostics::{diagnostics, problem},
    LoadError, ENTITIES_FILE, SCHEMA_FILE,
};
use crate::policy::PolicyInfo;

/// The policy files, parsed into one set.
pub(super) struct Parsed {
    pub(super) set: PolicySet,
    pub(super) infos: Vec<PolicyInfo>,
    /// Each policy's file and that file's text, for validation messages: one shared copy per file
    /// (a copy of the text per policy made one file of 10,000 policies take gigabytes).
    origin: HashMap<PolicyId, (Arc<str>, Arc<str>)>,
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
        match PolicySet::from_str(text) {
            Ok(set) => {
                let origin = (Arc::from(rel.as_str()), Arc::from(text.as_str()));
                parsed.add_file(&origin, set, &mut problems)
            }
            Err(e) => problems.extend(diagnostics(rel, text, &e)),
        }
    }
    if problems.is_empty() {
        Ok(parsed)
    } else {
        Err(LoadError { problems })
    }
}

impl Parsed {
    /// Adds one file's policies under their `@id`s.
    fn add_file(
        &mut self,
        origin: &(Arc<str>, Arc<str>),
        file: PolicySet,
        problems: &mut Vec<super::Problem>,
    ) {
        let (rel, text) = (&*origin.0, &*origin.1);
        if file.templates().next().is_some() {
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
        for (n, policy) in file.policies().enumerate() {
            let id = policy
                .annotation("id")
                .map(str::to_string)
                .unwrap_or_else(|| format!("{rel}#{n}"));
            let pid = PolicyId::new(&id);
            if let Some((other, _)) = self.origin.get(&pid) {
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
                continue;
            }
            self.origin.insert(pid.clone(), origin.clone());
            self.infos.push(PolicyInfo {
                id: id.clone(),
                file: rel.to_string(),
            });
            if let Err(e) = self.set.add(policy.new_id(pid)) {
                problems.push(problem(rel, text, None, e.to_string()));
            }
        }
    }

    /// Strict validation against `schema`, each error placed in its policy's file.
    pub(super) fn validate(&self, schema: &Schema) -> Result<(), LoadError> {
        let result = Validator::new(schema.clone()).validate(&self.set, ValidationMode::Strict);
        let problems: Vec<_> = result
            .validation_errors()
            .flat_map(|e| {
                let (file, text) = self
                    .origin
                    .get(e.policy_id())
                    .cloned()
                    .unwrap_or_else(|| ("?".into(), "".into()));
                diagnostics(&file, &text, e)
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
