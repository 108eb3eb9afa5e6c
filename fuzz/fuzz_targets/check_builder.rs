//! The authorize and batch bodies → Cedar request builder → evaluation, against the shipped
//! schema, policies and entity data (the `file` source), as `/v1/authorize` and
//! `/v1/authorize/batch` run them after the token verified.
//!
//! Input: claims JSON (an object; `sub` and `legalEntityId` pick the principal) `\0` body. The body
//! is read both as a single check and as a batch (`{"checks": [...]}`, at most 1,000 as
//! `limits.batch_max`), exactly as the handlers' extractors read them.
//! Properties: no panic; a batch answers one decision per check; an allow names the permit(s) that
//! allowed it; a single body and the same check alone in a batch are decided alike; verified claims
//! never carry an id with a control character (or empty, or over 256 characters); a body with a
//! repeated member name is refused before it is read (as `AppJson` does), and no check that is
//! decided has such an id as its resource or in an entity reference.
#![no_main]

use legate::testing::{
    decide::{batch, Decider, EntityData},
    entities::FileSource,
    http::authorize::BatchBody,
    request::Check,
    shared::{check_unique_members, is_valid_id},
    verify::VerifiedToken,
};
use legate_fuzz::{claim_names, parts, shipped, IDP_ISSUER};
use libfuzzer_sys::fuzz_target;
use serde_json::{value::RawValue, Map, Value};

/// The resource id and every `{"type", "id"}` / `{"__entity": ...}` id in attributes and context.
fn ids_valid(check: &Check) -> bool {
    fn walk(v: &Value) -> bool {
        match v {
            Value::Array(a) => a.iter().all(walk),
            Value::Object(o) => {
                let inner = match o.get("__entity") {
                    Some(Value::Object(e)) if o.len() == 1 => Some(e),
                    _ if o.len() == 2 && o.get("type").is_some_and(Value::is_string) => Some(o),
                    _ => None,
                };
                match inner.and_then(|e| e.get("id")).and_then(Value::as_str) {
                    Some(id) => is_valid_id(id),
                    None => o.values().all(walk),
                }
            }
            _ => true,
        }
    }
    is_valid_id(&check.resource.id)
        && check.resource.attrs.iter().flat_map(Map::values).all(walk)
        && check.context.iter().flat_map(Map::values).all(walk)
}

fuzz_target!(|data: &[u8]| {
    let p = parts(data, 2);
    let Ok(claims) = serde_json::from_slice::<Map<String, Value>>(p[0]) else {
        return;
    };
    // What verification makes of the claims; refused claims never reach the builder.
    let Ok(token) = VerifiedToken::from_claims(IDP_ISSUER.into(), None, claims, &claim_names())
    else {
        return;
    };
    assert!(is_valid_id(&token.customer.0), "accepted customer id");
    if let Some(le) = &token.legal_entity {
        assert!(is_valid_id(&le.0), "accepted legal entity id");
    }
    let snapshot = shipped();
    let data: EntityData = FileSource::lookup(&snapshot, &token.customer).into();
    let decider = Decider::new(snapshot, data, &token, None);
    let body = p[1];
    // `AppJson`: a repeated member name anywhere is 400 before the typed read.
    if check_unique_members(body).is_err() {
        return;
    }

    if let Ok(check) = serde_json::from_slice::<Check>(body) {
        let single = decider.decide(&check);
        if let Ok(d) = &single {
            assert!(ids_valid(&check), "a decided check with an invalid id");
            assert!(
                !d.allow || !d.policies.is_empty(),
                "an allow without a permit"
            );
        }
        // The same text as the only check of a batch.
        if let Ok(text) = std::str::from_utf8(body) {
            if let Ok(raw) = RawValue::from_string(text.to_string()) {
                let in_batch = decider.decide_each(batch::parse(&[raw]));
                assert_eq!(in_batch.len(), 1);
                let single_allow = single.as_ref().is_ok_and(|d| d.allow);
                assert_eq!(in_batch[0].allow, single_allow, "single and batch disagree");
            }
        }
    }

    if let Ok(b) = serde_json::from_slice::<BatchBody>(body) {
        let checks = b.checks();
        if checks.len() <= 1000 {
            let decisions = decider.decide_each(batch::parse(checks));
            assert_eq!(decisions.len(), checks.len());
            for d in &decisions {
                assert!(
                    !d.allow || !d.policies.is_empty(),
                    "an allow without a permit"
                );
            }
        }
    }
});
