//! The command line: `serve` (default), `validate`, `test`, `authorize`, `token`.
//!
//! Each subcommand reads the same config file (`--config`, default `./legate.toml`) and environment
//! overlay as the server, so what `legate validate` accepts is what `legate serve` will load.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, Context as _};
use clap::{Args, Parser, Subcommand};
use serde_json::{json, Map, Value};

use crate::{
    app,
    audit::Audit,
    config::Config,
    entities::FileSource,
    issue::{keys::thumbprint, SigningKey},
    policy,
    request::{Check, ResourceRef},
    suite,
    verify::{ClaimNames, KeySource},
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
    Plan(PlanArgs),
}

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

/// `legate authorize`
#[derive(Debug, Args)]
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
        Some(Command::Token(args)) => token(&cli.config, args),
        Some(Command::Plan(args)) => plan(&cli.config, args),
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
pub fn load_config(path: &Path) -> anyhow::Result<Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    Ok(Config::parse(&text, std::env::vars())?)
}

/// The config when the file exists; defaults (plus environment) when it does not.
fn config_or_defaults(path: &Path) -> anyhow::Result<Config> {
    if path.exists() {
        load_config(path)
    } else {
        Ok(Config::parse("", std::env::vars())?)
    }
}

fn init_tracing(format: &str, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LEGATE_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

fn serve(config_path: &Path, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = load_config(config_path)?;
    if let Some(listen) = args.listen {
        config.listen = listen
            .parse()
            .with_context(|| format!("--listen {listen:?} is not an address"))?;
    }
    init_tracing(&config.log.format, &config.log.level);
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
            policies = state.policies.snapshot().files.len(),
            policy_hash = %state.policies.snapshot().hash,
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
                snapshot.files.len(),
                policy::SCHEMA_FILE,
                &snapshot.hash[..12]
            );
            for p in &snapshot.files {
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

fn claim_names(config: &Config) -> ClaimNames {
    ClaimNames {
        customer: config.claims.customer.clone(),
        legal_entity: config.claims.legal_entity.clone(),
    }
}

fn test(config_path: &Path, dir: Option<PathBuf>, verbose: bool) -> anyhow::Result<ExitCode> {
    let config = config_or_defaults(config_path)?;
    let dir = dir.unwrap_or(config.policies.dir.clone());
    let report = match suite::run_dir(&dir, &config.namespace, &claim_names(&config)) {
        Ok(r) => r,
        Err(suite::Error::Policies(e)) => {
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
    let dir = args.policies.unwrap_or(config.policies.dir.clone());
    let snapshot = policy::load(&dir, &config.namespace)
        .map_err(|e| anyhow::anyhow!("the policies in {} do not load:\n{e}", dir.display()))?;
    let names = claim_names(&config);
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
    let extra: Vec<suite::EntitySpec> = match &args.entities {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not a JSON list of entities", path.display()))?
        }
        None => Vec::new(),
    };
    let own = suite::with_entities(&snapshot, &extra).map_err(anyhow::Error::msg)?;
    let snapshot = own.as_ref().unwrap_or(&snapshot);
    let token = suite::token_from_claims(&claims, &names).map_err(anyhow::Error::msg)?;
    let check = Check {
        action: args.action,
        resource,
        context,
    };
    // The file source: entities.json as loaded, plus any entities given here.
    let assignments = Ok(std::sync::Arc::new(FileSource::lookup(
        snapshot,
        &token.customer,
    )));
    let decision = crate::decide(&Audit::disabled(), snapshot, &token, &assignments, &check)
        .context("the check is invalid")?;
    if args.json {
        let mut answer = serde_json::to_value(&decision)?;
        answer["principal"] = json!(token.customer.0);
        answer["legal_entity_id"] = json!(token.legal_entity.map(|l| l.0));
        println!("{answer}");
    } else {
        println!("{}", decision.as_str());
        println!(
            "  principal: {}  legal entity: {}",
            token.customer,
            token
                .legal_entity
                .as_ref()
                .map_or("(none)", |l| l.0.as_str())
        );
        let policies = if decision.policies.is_empty() {
            "(none: no permit applies, so the default is deny)".to_string()
        } else {
            decision.policies.join(", ")
        };
        println!("  determining policies: {policies}");
        for e in &decision.errors {
            println!("  error: {e}");
        }
    }
    Ok(if decision.allow {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `name=value`, the value read as JSON when it parses, else as a string.
fn parse_claim(c: &str) -> anyhow::Result<(String, Value)> {
    let (name, raw) = c
        .split_once('=')
        .with_context(|| format!("--claim {c:?} is not NAME=VALUE"))?;
    let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
    Ok((name.to_string(), value))
}

fn token(config_path: &Path, args: TokenArgs) -> anyhow::Result<ExitCode> {
    let config = config_or_defaults(config_path)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let (key, issuer, audience, kid, typ) = match &args.key {
        Some(path) => {
            let key = SigningKey::from_pem_file(path)?;
            let found = find_trust(&config, &key);
            let (iss, aud, kid) = match found {
                Some((iss, aud, kid)) => (Some(iss), Some(aud), Some(kid)),
                None => (None, None, None),
            };
            let issuer = args.issuer.clone().or(iss).context(
                "no [[trust]] JWKS holds this key's public half; pass --issuer and --audience",
            )?;
            let audience = args.audience.clone().or(aud).context("pass --audience")?;
            let kid = args.kid.clone().or(kid).unwrap_or_else(|| key.kid.clone());
            (key, issuer, audience, kid, "JWT")
        }
        None => {
            let Some(path) = config.issue.keys.first() else {
                bail!("pass --key, or configure [issue] keys to mint a legate access token");
            };
            let key = SigningKey::from_pem_file(path)?;
            let kid = key.kid.clone();
            let audience = args
                .audience
                .clone()
                .or_else(|| config.issue.audience.first().cloned())
                .context("pass --audience")?;
            let issuer = args
                .issuer
                .clone()
                .unwrap_or_else(|| config.issuer().to_string());
            (key, issuer, audience, kid, "at+jwt")
        }
    };
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(issuer));
    claims.insert(config.claims.customer.clone(), json!(args.sub));
    claims.insert("aud".into(), json!(audience));
    claims.insert("iat".into(), json!(now));
    claims.insert("nbf".into(), json!(now));
    claims.insert("exp".into(), json!(now + args.ttl_secs));
    claims.insert("auth_time".into(), json!(now));
    claims.insert("jti".into(), json!(uuid::Uuid::new_v4().to_string()));
    if let Some(le) = &args.legal_entity {
        claims.insert(config.claims.legal_entity.clone(), json!(le));
    }
    for c in &args.claims {
        let (name, value) = parse_claim(c)?;
        claims.insert(name, value);
    }
    let mut header = jsonwebtoken::Header::new(key.alg);
    header.kid = Some(kid);
    header.typ = Some(typ.into());
    let token = jsonwebtoken::encode(&header, &claims, &key.encoding).context("cannot sign")?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

/// The `[[trust]]` entry whose JWKS holds `key`'s public half: (issuer, first audience, kid).
fn find_trust(config: &Config, key: &SigningKey) -> Option<(String, String, String)> {
    for t in &config.trust {
        let KeySource::File(path) = KeySource::parse(&t.jwks) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(doc) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        for k in doc
            .get("keys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Ok(jwk) = serde_json::from_value::<jsonwebtoken::jwk::Jwk>(k.clone()) else {
                continue;
            };
            if thumbprint(&jwk).as_deref() == Some(key.kid.as_str()) {
                let kid = jwk.common.key_id.clone().unwrap_or_else(|| key.kid.clone());
                return Some((t.issuer.clone(), t.audience.first()?.clone(), kid));
            }
        }
    }
    None
}

fn plan(config_path: &Path, args: PlanArgs) -> anyhow::Result<ExitCode> {
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
    let token =
        suite::token_from_claims(&claims, &claim_names(&config)).map_err(anyhow::Error::msg)?;
    let body = crate::plan::PlanBody {
        action: args.action,
        resource: crate::plan::PlanResource {
            kind: args.kind,
            id: None,
            attrs: None,
        },
        context,
    };
    let assignments = Ok(std::sync::Arc::new(FileSource::lookup(
        &snapshot,
        &token.customer,
    )));
    let answer = crate::plan::plan(
        &snapshot,
        &(&token).into(),
        &assignments,
        &body,
        &config.plan,
        true,
    )
    .context("cannot plan")?;
    let mut json = serde_json::to_value(&answer)?;
    json["principal"] = json!(token.customer.0);
    json["legal_entity_id"] = json!(token.legal_entity.map(|l| l.0));
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(ExitCode::SUCCESS)
}
