//! `legate token`: a signed token for trying legate out. With `--key`, as the identity provider
//! whose `[[trust]]` JWKS holds the key's public half; without, as legate itself (`typ: at+jwt`).
//!
//! legate refuses its own access tokens without a session (`sid`), so a legate token minted here
//! gets a new one. With `store.kind = "redis"` that session is opened in the store, so a running
//! legate sharing it accepts the token (and `/oauth2/revoke` ends it); with the `memory` store the
//! session exists in no server, so legate itself refuses the token (said on stderr) and it is good
//! only for services that verify legate's tokens with its JWKS.

use std::{
    path::Path,
    process::ExitCode,
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, Context as _};
use serde_json::{json, Map, Value};

use super::{config_or_defaults, parse_claim, TokenArgs};
use crate::{
    config::{Config, StoreKind},
    issue::{keys::thumbprint, rotation::FAMILY_CLAIM, RedisStore, RotationStore, SigningKey},
    verify::KeySource,
};

/// `legate token`: signs a token for the customer, as an identity provider or legate would.
pub(super) fn run(config_path: &Path, args: TokenArgs) -> anyhow::Result<ExitCode> {
    let config = config_or_defaults(config_path)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let (key, issuer, audience, kid, typ, ours) = match &args.key {
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
            (key, issuer, audience, kid, "JWT", false)
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
            let ours = issuer == config.issuer();
            (key, issuer, audience, kid, "at+jwt", ours)
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
    if args.key.is_none() {
        claims.insert(FAMILY_CLAIM.into(), json!(uuid::Uuid::new_v4().to_string()));
    }
    for c in &args.claims {
        let (name, value) = parse_claim(c)?;
        claims.insert(name, value);
    }
    if ours {
        if let Some(family) = claims.get(FAMILY_CLAIM).and_then(Value::as_str) {
            open_session(&config, family, args.ttl_secs)?;
        }
    }
    let mut header = jsonwebtoken::Header::new(key.alg);
    header.kid = Some(kid);
    header.typ = Some(typ.into());
    let token = jsonwebtoken::encode(&header, &claims, &key.encoding).context("cannot sign")?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

/// Makes the session `family` of a legate token usable: opened in the Redis store for `ttl_secs`;
/// with the memory store only a note that a running legate will refuse the token.
fn open_session(config: &Config, family: &str, ttl_secs: u64) -> anyhow::Result<()> {
    match config.store.kind {
        StoreKind::Memory => {
            eprintln!(
                "note: store.kind = \"memory\": this token's session exists in no running legate, \
                 so legate refuses it (401); with store.kind = \"redis\" it would be opened there, \
                 or use --key for an identity provider's token"
            );
            Ok(())
        }
        StoreKind::Redis => {
            let store = RedisStore::new(config.store.url.as_deref().unwrap_or_default())
                .map_err(anyhow::Error::msg)?;
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(store.start(family, ttl_secs))
                .context("cannot open the token's session in the Redis store")
        }
    }
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
