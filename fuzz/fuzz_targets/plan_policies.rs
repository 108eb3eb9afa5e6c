//! `/v1/plan` end to end below HTTP: fuzzed policies (validated against the shipped schema, with
//! the shipped entity data) and a fuzzed plan body, through Cedar's partial evaluation (`tpe`), the
//! residual reading, the filter simplification and the SQL form of `examples/legate.toml`'s
//! `[plan.tables]`.
//!
//! Input: a policy file `\0` claims JSON (`sub`, `legalEntityId`) `\0` plan body JSON.
//! Properties: no panic; `kind` agrees with the filter; a SQL fragment carries every value as a
//! parameter (see `legate_fuzz::check_sql`).
#![no_main]

use legate::testing::{
    decide::{Decider, EntityData},
    entities::FileSource,
    plan::{plan, Filter, Kind, PlanBody},
    policy::from_texts,
    verify::VerifiedToken,
};
use legate_fuzz::{check_sql, claim_names, example_plan, parts, shipped_texts, IDP_ISSUER};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    let p = parts(data, 3);
    let Ok(policy) = std::str::from_utf8(p[0]) else {
        return;
    };
    let Ok(claims) = serde_json::from_slice::<Map<String, Value>>(p[1]) else {
        return;
    };
    let Ok(body) = serde_json::from_slice::<PlanBody>(p[2]) else {
        return;
    };
    let Ok(token) = VerifiedToken::from_claims(IDP_ISSUER.into(), None, claims, &claim_names())
    else {
        return;
    };
    let (schema, entities) = shipped_texts();
    let files = [("fuzz.cedar".to_string(), policy.to_string())];
    let Ok(snapshot) = from_texts(schema, &files, Some(entities), "Shop", "fuzz".into()) else {
        return;
    };
    let data: EntityData = FileSource::lookup(&snapshot, &token.customer).into();
    let decider = Decider::new(std::sync::Arc::new(snapshot), data, &token, None);
    let Ok(answer) = plan(&decider, &body, example_plan(), true) else {
        return;
    };
    match (&answer.kind, &answer.filter) {
        (Kind::AlwaysAllowed, Filter::Const(true)) | (Kind::AlwaysDenied, Filter::Const(false)) => {
        }
        (Kind::Conditional, Filter::Const(_)) => panic!("conditional with a constant filter"),
        (Kind::Conditional, _) => {}
        (k, f) => panic!("kind {k:?} with filter {}", f.to_json()),
    }
    if let Some(Some(sql)) = &answer.sql {
        if let Err(e) = check_sql(sql) {
            panic!("{e}\nfilter: {}", answer.filter.to_json());
        }
    }
});
