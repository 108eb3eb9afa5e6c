//! `legate plan --claims JSON --action A --type T [DIR]`: prints the `/v1/plan` answer.

use std::{path::Path, path::PathBuf, process::ExitCode, sync::Arc};

use anyhow::Context as _;
use clap::Args;
use serde_json::{Map, Value};

use super::config_or_defaults;
use crate::{policy, toolkit, verify::ClaimNames};

/// `legate plan`
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The token's claims as JSON, e.g. `{"sub":"C-1","legalEntityId":"LE-1"}`.
    #[arg(long)]
    pub claims: String,
    /// The action, e.g. `listOrders`.
    #[arg(long)]
    pub action: String,
    /// The resource type, e.g. `Order`.
    #[arg(long = "type")]
    pub kind: String,
    /// Extra context keys as a JSON object.
    #[arg(long)]
    pub context: Option<String>,
    /// Policy directory (default: `policies.dir` from the config, else `policies`).
    pub dir: Option<PathBuf>,
}

/// Runs `legate plan`: exit 0 with the answer on stdout; any error is the caller's exit 2.
pub(super) fn run(config_path: &Path, args: PlanArgs) -> anyhow::Result<ExitCode> {
    let config = config_or_defaults(config_path)?;
    let dir = args.dir.unwrap_or(config.policies.dir.clone());
    let snapshot = policy::load(&dir, &config.namespace)
        .map_err(|e| anyhow::anyhow!("the policies in {} do not load:\n{e}", dir.display()))?;
    let claims: Map<String, Value> =
        serde_json::from_str(&args.claims).context("--claims is not a JSON object")?;
    let context = args
        .context
        .as_deref()
        .map(serde_json::from_str::<Map<String, Value>>)
        .transpose()
        .context("--context is not a JSON object")?;
    let answer = toolkit::plan::ask(
        &Arc::new(snapshot),
        &ClaimNames::from(&config.claims),
        &claims,
        &args.action,
        &args.kind,
        context,
        &config.plan,
    )?;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(ExitCode::SUCCESS)
}
