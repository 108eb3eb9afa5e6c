//! Policy test suites, run by `legate test`: files of named cases in `<policy dir>/tests/`, each
//! deciding one check against the policy set and comparing the decision with what the case expects.
//!
//! A suite file is TOML (`*.toml`) or JSON (`*.json`) with the same shape:
//!
//! ```toml
//! [[entities]]                 # optional: added to (or replacing) entities.json for every case
//! type = "Customer"
//! id = "C-9"
//! parents = [{ type = "LegalEntity", id = "LE-1" }]
//!
//! [[case]]
//! name = "a customer sees their own order"
//! action = "viewOrder"
//! expect = "allow"             # or "deny"
//! policies = ["own-orders"]    # optional: the determining policies, in any order
//! [case.claims]                # the token's claims: customer, legal entity, any other
//! sub = "C-1"
//! [case.resource]              # as in a /v1/authorize body
//! type = "Order"
//! id = "O-1"
//! attrs.owner = { type = "Customer", id = "C-1" }
//! # [case.context] extra context keys; [[case.entities]] entities for this case only
//! ```
//!
//! The check is decided exactly as `/v1/authorize` decides it (through [`super::decide`]), with the
//! claims standing in for a verified token. The policy loader reads only `*.cedar` files, so suites
//! in `tests/` are never taken for policies.

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
};

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{decide, token, with_entities, EntitySpec};
use crate::{
    decision::Decision,
    policy::{self, LoadError, Snapshot},
    request::{Check, ResourceRef},
    verify::ClaimNames,
};

/// The directory under the policy directory that holds suite files.
pub(crate) const TESTS_DIR: &str = "tests";

/// One suite file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteFile {
    /// Entities added to (or replacing) the entity data for every case of the file.
    #[serde(default)]
    pub entities: Vec<EntitySpec>,
    /// The cases, in order.
    #[serde(rename = "case", alias = "cases", default)]
    pub cases: Vec<Case>,
}

/// One named case.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What the case shows, in words.
    pub name: String,
    /// The token's claims: the customer claim (`sub`), the legal entity claim (`legalEntityId`),
    /// and any other claims that fill principal attributes.
    pub claims: Map<String, Value>,
    /// The action, e.g. `viewOrder`.
    pub action: String,
    /// The resource, as in a `/v1/authorize` body.
    pub resource: ResourceRef,
    /// Extra context keys (never `legalEntity` or `roles`).
    #[serde(default)]
    pub context: Option<Map<String, Value>>,
    /// Entities added to (or replacing) the entity data for this case only.
    #[serde(default)]
    pub entities: Vec<EntitySpec>,
    /// The decision the case expects.
    pub expect: Expect,
    /// The determining policies the case expects, in any order; unchecked when absent.
    #[serde(default)]
    pub policies: Option<Vec<String>>,
}

/// The expected decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// `"allow"`
    Allow,
    /// `"deny"`
    Deny,
}

/// A case that did not get what it expected, or a file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// The suite file, relative to the policy directory.
    pub file: String,
    /// The case's name; `None` when the whole file failed.
    pub case: Option<String>,
    /// Why.
    pub why: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.case {
            Some(case) => write!(f, "FAIL {}: {case:?}: {}", self.file, self.why),
            None => write!(f, "FAIL {}: {}", self.file, self.why),
        }
    }
}

/// What a run found.
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// `file: name` of every case that passed, in order.
    pub passed: Vec<String>,
    /// Every failure, in order.
    pub failures: Vec<Failure>,
}

/// Why no case could run at all.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The policy set itself does not load.
    #[error("the policies do not load:\n{0}")]
    Policies(#[from] LoadError),
    /// No `*.toml` or `*.json` file under `<dir>/tests/`.
    #[error("no test files (*.toml, *.json) in {0}")]
    NoSuites(PathBuf),
}

/// Loads the policy directory `dir` and runs every suite file in `dir/tests/`.
pub(crate) fn run_dir(dir: &Path, namespace: &str, names: &ClaimNames) -> Result<Report, Error> {
    let snapshot = Arc::new(policy::load(dir, namespace)?);
    let tests = dir.join(TESTS_DIR);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&tests)
        .map_err(|_| Error::NoSuites(tests.clone()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("toml" | "json")
                )
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::NoSuites(tests));
    }
    let mut report = Report::default();
    for path in files {
        let rel = format!(
            "{TESTS_DIR}/{}",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        match read_suite(&path) {
            Ok(suite) => run_suite(&snapshot, names, &rel, &suite, &mut report),
            Err(why) => report.failures.push(Failure {
                file: rel,
                case: None,
                why,
            }),
        }
    }
    Ok(report)
}

/// Parses a suite file by its extension.
pub fn read_suite(path: &Path) -> Result<SuiteFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let suite: SuiteFile = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| e.to_string())?
    } else {
        toml::from_str(&text).map_err(|e| e.to_string().trim_end().to_string())?
    };
    if suite.cases.is_empty() {
        return Err("no [[case]] in this file".into());
    }
    Ok(suite)
}

/// Runs one suite's cases against `snapshot`, adding to `report`.
pub(crate) fn run_suite(
    snapshot: &Arc<Snapshot>,
    names: &ClaimNames,
    file: &str,
    suite: &SuiteFile,
    report: &mut Report,
) {
    let shared = match with_entities(snapshot, &suite.entities) {
        Ok(s) => s,
        Err(why) => {
            report.failures.push(Failure {
                file: file.into(),
                case: None,
                why: format!("[[entities]]: {why}"),
            });
            return;
        }
    };
    for case in &suite.cases {
        match run_case(&shared, names, case) {
            Ok(()) => report.passed.push(format!("{file}: {}", case.name)),
            Err(why) => report.failures.push(Failure {
                file: file.into(),
                case: Some(case.name.clone()),
                why,
            }),
        }
    }
}

/// Decides one case; `Err` says why it failed.
fn run_case(snapshot: &Arc<Snapshot>, names: &ClaimNames, case: &Case) -> Result<(), String> {
    let snapshot = with_entities(snapshot, &case.entities).map_err(|e| format!("entities: {e}"))?;
    let token = token(&case.claims, names)?;
    let check = Check {
        action: case.action.clone(),
        resource: case.resource.clone(),
        context: case.context.clone(),
    };
    let decision =
        decide(snapshot, &token, &check).map_err(|e| format!("the check is invalid: {e}"))?;
    let mut got_policies = decision.policies.clone();
    got_policies.sort();
    if (case.expect == Expect::Allow) != decision.allow {
        return Err(format!(
            "expected {}, got {} ({})",
            Decision::word(case.expect == Expect::Allow),
            decision.as_str(),
            detail(&decision, &got_policies)
        ));
    }
    if let Some(want) = &case.policies {
        let mut want = want.clone();
        want.sort();
        if want != got_policies {
            return Err(format!(
                "{} as expected, but expected determining policies [{}], got [{}]",
                decision.as_str(),
                want.join(", "),
                got_policies.join(", ")
            ));
        }
    }
    Ok(())
}

/// What decided (`policies`, sorted) and what went wrong, for a failure message.
fn detail(decision: &Decision, policies: &[String]) -> String {
    let mut d = if policies.is_empty() {
        "no policy applied".to_string()
    } else {
        format!("determining policies: [{}]", policies.join(", "))
    };
    if !decision.errors.is_empty() {
        d.push_str(&format!("; errors: {}", decision.errors.join("; ")));
    }
    d
}
