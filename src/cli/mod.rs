//! The command line: `serve` (default), `validate`, `test`, `authorize`, `token`, `plan`.
//!
//! Each subcommand reads the same config file (`--config`, default `./legate.toml`) and environment
//! overlay as the server, so what `legate validate` accepts is what `legate serve` will load.

mod log;
mod plan;
mod token;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
};

use anyhow::{bail, Context as _};
use clap::{Args, Parser, Subcommand};
use serde_json::{json, Map, Value};

use crate::{
    app,
    config::Config,
    policy,
    request::{Check, ResourceRef},
    toolkit::{self, authorize::Question, EntitySpec},
    verify::ClaimNames,
};

/// legate: authorization sidecar for B2B storefronts (JWT + Cedar + legal-entity switching).
#[derive(Debug, Parser)]
#[command(name = "legate", version, about)]
pub struct Cli {
    /// Configuration file (TOML). `LEGATE_<KEY>` / `LEGATE_<SECTION>__<KEY>` override its values.
    #[arg(long, short, global = true, default_value = "legate.toml")]
    pub config: PathBuf,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the sidecar (the default).
    Serve(ServeArgs),
    /// Parse and strictly validate a policy directory; print every error with file:line:column.
    Validate {
        /// Policy directory (default: `policies.dir` from the config, else `policies`).
        dir: Option<PathBuf>,
    },
    /// Run the policy test files in `DIR/tests/` (*.toml, *.json); exit non-zero on any failure.
    Test {
        /// Policy directory (default: `policies.dir` from the config, else `policies`).
        dir: Option<PathBuf>,
        /// Also list the cases that pass.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Decide one check from the command line, without a server. Exit 0 on allow, 1 on deny,
    /// 2 when the check cannot be decided (bad input, policies that do not load).
    Authorize(AuthorizeArgs),
    /// Mint a signed token for development (never use dev keys in production).
    Token(TokenArgs),
    /// The `/v1/plan` answer (list filter and SQL) for claims given here. Exit 0, or 2 when it
    /// cannot be planned (bad input, policies that do not load).
    Plan(plan::PlanArgs),
}

/// `legate authorize`
#[derive(Debug, Clone, Args)]
pub struct AuthorizeArgs {
    /// The customer (the configured customer claim, `sub` by default).
    #[arg(long, visible_alias = "sub")]
    pub customer: String,
    /// The selected legal entity (the `legalEntityId` claim).
    #[arg(long)]
    pub legal_entity: Option<String>,
    /// Extra claim `name=value` (value read as JSON, else as a string); repeatable.
    #[arg(long = "claim", value_name = "NAME=VALUE")]
    pub claims: Vec<String>,
    /// The action, e.g. `viewOrder`.
    #[arg(long)]
    pub action: String,
    /// The resource as JSON, as in a `/v1/authorize` body: `{"type", "id", "attrs"?}`.
    #[arg(long)]
    pub resource: String,
    /// Extra context keys as a JSON object.
    #[arg(long)]
    pub context: Option<String>,
    /// A JSON file of entities (`[{"type", "id", "attrs"?, "parents"?}]`) added to the entity data.
    #[arg(long)]
    pub entities: Option<PathBuf>,
    /// Policy directory (default: `policies.dir` from the config, else `policies`).
    #[arg(long)]
    pub policies: Option<PathBuf>,
    /// Print the answer as `/v1/authorize` would, in JSON.
    #[arg(long)]
    pub json: bool,
}

/// `legate serve`
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// Listen address; overrides `listen` from the config and the environment.
    #[arg(long)]
    pub listen: Option<String>,
}

/// `legate token`
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The customer (`sub`, or the configured customer claim).
    #[arg(long)]
    pub sub: String,
    /// The selected legal entity claim.
    #[arg(long)]
    pub legal_entity: Option<String>,
    /// PEM private key to sign with. Without it, legate's own first `[issue] keys` entry signs an
    /// access token as legate would.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// `iss`; by default the `[[trust]]` issuer whose JWKS holds the key's public half.
    #[arg(long)]
    pub issuer: Option<String>,
    /// `aud`; by default that issuer's first audience.
    #[arg(long)]
    pub audience: Option<String>,
    /// `kid`; by default the matching JWKS key's kid, else the key's RFC 7638 thumbprint.
    #[arg(long)]
    pub kid: Option<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    pub ttl_secs: u64,
    /// Extra claim `name=value` (value read as JSON, else as a string); repeatable.
    #[arg(long = "claim", value_name = "NAME=VALUE")]
    pub claims: Vec<String>,
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    // `authorize` answers deny with 1, so its errors need another code.
    let error_code = match cli.command {
        Some(Command::Authorize(_)) | Some(Command::Plan(_)) => ExitCode::from(2),
        _ => ExitCode::FAILURE,
    };
    let result = match cli.command {
        None => serve(&cli.config, ServeArgs::default()),
        Some(Command::Serve(args)) => serve(&cli.config, args),
        Some(Command::Validate { dir }) => validate(&cli.config, dir),
        Some(Command::Test { dir, verbose }) => test(&cli.config, dir, verbose),
        Some(Command::Authorize(args)) => authorize(&cli.config, args),
        Some(Command::Token(args)) => token::run(&cli.config, args),
        Some(Command::Plan(args)) => plan::run(&cli.config, args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("legate: {e:#}");
            error_code
        }
    }
}

/// Reads and validates the config file with the process environment overlaid.
pub(crate) fn load_config(path: &Path) -> anyhow::Result<Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    Ok(Config::parse(&text, std::env::vars())?)
}

/// The config when the file exists; defaults (plus environment) when it does not.
pub(super) fn config_or_defaults(path: &Path) -> anyhow::Result<Config> {
    let config = if path.exists() {
        load_config(path)?
    } else {
        Config::parse("", std::env::vars())?
    };
    // The subcommands log nothing else; their warnings go straight to stderr.
    for w in &config.warnings {
        eprintln!("legate: warning: {w}");
    }
    Ok(config)
}

fn serve(config_path: &Path, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = load_config(config_path)?;
    if let Some(listen) = args.listen {
        config.listen = listen
            .parse()
            .with_context(|| format!("--listen {listen:?} is not an address"))?;
    }
    log::init_tracing(config.log.format, &config.log.level);
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listen = config.listen;
        let state = app::build(config).await?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        // Signal handlers go in before "listening" is announced: a SIGTERM after it is graceful.
        let shutdown = crate::signals::shutdown();
        tracing::info!(
            address = %listener.local_addr()?,
            policies = state.policies.snapshot().files().len(),
            policy_hash = %state.policies.snapshot().hash(),
            "legate is listening"
        );
        app::serve(listener, state, shutdown).await?;
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

fn validate(config_path: &Path, dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let config = config_or_defaults(config_path)?;
    let dir = dir.unwrap_or(config.policies.dir);
    match policy::load(&dir, &config.namespace) {
        Ok(snapshot) => {
            println!(
                "{}: {} policies valid against {} (hash {})",
                dir.display(),
                snapshot.files().len(),
                policy::SCHEMA_FILE,
                &snapshot.hash()[..12]
            );
            for p in snapshot.files() {
                println!("  {}  ({})", p.id, p.file);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            for p in &e.problems {
                let mut p = p.clone();
                p.file = dir.join(&p.file).display().to_string();
                eprintln!("error: {p}");
            }
            eprintln!("{} problem(s) in {}", e.problems.len(), dir.display());
            Ok(ExitCode::FAILURE)
        }
    }
}

fn test(config_path: &Path, dir: Option<PathBuf>, verbose: bool) -> anyhow::Result<ExitCode> {
    let config = config_or_defaults(config_path)?;
    let dir = dir.unwrap_or(config.policies.dir.clone());
    let names = ClaimNames::from(&config.claims);
    let report = match toolkit::run_dir(&dir, &config.namespace, &names) {
        Ok(r) => r,
        Err(toolkit::Error::Policies(e)) => {
            for p in &e.problems {
                let mut p = p.clone();
                p.file = dir.join(&p.file).display().to_string();
                eprintln!("error: {p}");
            }
            bail!("the policies in {} do not load", dir.display());
        }
        Err(e) => return Err(e.into()),
    };
    if verbose {
        for p in &report.passed {
            println!("ok   {p}");
        }
    }
    for f in &report.failures {
        println!("{f}");
    }
    println!(
        "{} passed, {} failed",
        report.passed.len(),
        report.failures.len()
    );
    Ok(if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn authorize(config_path: &Path, args: AuthorizeArgs) -> anyhow::Result<ExitCode> {
    let config = config_or_defaults(config_path)?;
    let dir = args.policies.clone().unwrap_or(config.policies.dir.clone());
    let snapshot = policy::load(&dir, &config.namespace)
        .map_err(|e| anyhow::anyhow!("the policies in {} do not load:\n{e}", dir.display()))?;
    let names = ClaimNames::from(&config.claims);
    let question = question(&names, args.clone())?;
    let answer = toolkit::authorize::ask(&Arc::new(snapshot), &names, &question)?;
    if args.json {
        println!("{}", answer.to_json());
    } else {
        print!("{}", answer.to_text());
    }
    Ok(if answer.decision.allow {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The question `legate authorize`'s flags ask.
fn question(names: &ClaimNames, args: AuthorizeArgs) -> anyhow::Result<Question> {
    let mut claims = Map::new();
    claims.insert(names.customer.clone(), json!(args.customer));
    if let Some(le) = &args.legal_entity {
        claims.insert(names.legal_entity.clone(), json!(le));
    }
    for c in &args.claims {
        let (name, value) = parse_claim(c)?;
        claims.insert(name, value);
    }
    let resource: ResourceRef = serde_json::from_str(&args.resource)
        .context("--resource is not {\"type\", \"id\", \"attrs\"?} JSON")?;
    let context = args
        .context
        .as_deref()
        .map(serde_json::from_str::<Map<String, Value>>)
        .transpose()
        .context("--context is not a JSON object")?;
    let entities: Vec<EntitySpec> = match &args.entities {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not a JSON list of entities", path.display()))?
        }
        None => Vec::new(),
    };
    let check = Check {
        action: args.action,
        resource,
        context,
    };
    Ok(Question {
        claims,
        check,
        entities,
    })
}

/// `name=value`, the value read as JSON when it parses, else as a string.
pub(super) fn parse_claim(c: &str) -> anyhow::Result<(String, Value)> {
    let (name, raw) = c
        .split_once('=')
        .with_context(|| format!("--claim {c:?} is not NAME=VALUE"))?;
    let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
    Ok((name.to_string(), value))
}
