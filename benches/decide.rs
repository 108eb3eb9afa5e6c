//! Criterion benchmarks of the decision path's functions: token verification per algorithm (cached:
//! the same token each time; `fast_path.rs` has cached and uncached side by side), request
//! building + Cedar evaluation for one check, and a 100-check batch against one snapshot.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::path::Path;

use aws_lc_rs::{
    encoding::{AsDer, Pkcs8V1Der},
    rsa::{KeyPair as RsaKeyPair, KeySize},
    signature::{EcdsaKeyPair, Ed25519KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING},
};
use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::Algorithm;
use legate::{
    audit::Audit,
    decide::Decider,
    entities::{EntitySource, FileSource},
    issue::SigningKey,
    policy,
    request::Check,
    verify::{ClaimNames, KeySet, TrustedIssuer, Verifier, VerifyKey},
};
use serde_json::json;

fn pem(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("PRIVATE KEY", der.to_vec()))
}

fn keys() -> Vec<SigningKey> {
    let rsa = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let rsa = pem(AsDer::<Pkcs8V1Der<'_>>::as_der(&rsa).unwrap().as_ref());
    let ec = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let ec = pem(ec.to_pkcs8v1().unwrap().as_ref());
    let ed = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
    let ed = pem(ed.as_ref());
    [rsa, ec, ed]
        .iter()
        .map(|p| SigningKey::from_pem(p.as_bytes()).unwrap())
        .collect()
}

fn token(key: &SigningKey) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let mut header = jsonwebtoken::Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    let claims = json!({"iss": "https://idp.bench", "aud": "storefront", "sub": "C-1",
                        "legalEntityId": "LE-1", "iat": now, "exp": now + 86_400});
    jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let keys = keys();
    let verify_keys: Vec<VerifyKey> = keys
        .iter()
        .map(|k| VerifyKey::from_jwk(&k.jwk).unwrap())
        .collect();
    let issuer = TrustedIssuer::new(
        "https://idp.bench",
        &["storefront".to_string()],
        &[Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
        30,
        KeySet::fixed(verify_keys),
        None,
    );
    let verifier = Verifier::new(
        vec![issuer],
        ClaimNames {
            customer: "sub".into(),
            legal_entity: "legalEntityId".into(),
        },
    );
    let mut group = c.benchmark_group("verify");
    for key in &keys {
        let t = token(key);
        group.bench_function(format!("{:?}", key.alg), |b| {
            b.iter(|| rt.block_on(verifier.verify(&t)).unwrap())
        });
    }
    group.finish();

    let snapshot = std::sync::Arc::new(
        policy::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"),
            "Shop",
        )
        .unwrap(),
    );
    let verified = rt.block_on(verifier.verify(&token(&keys[0]))).unwrap();
    let audit = Audit::disabled();
    let data = rt
        .block_on(FileSource.assignments(&snapshot, &verified.customer))
        .into();
    let decider = Decider::new(snapshot.clone(), data, &verified, Some(&audit));
    let order: Check = serde_json::from_value(json!({"action": "viewOrder", "resource": {"type": "Order", "id": "O-1",
        "attrs": {"owner": {"type": "Customer", "id": "C-2"}, "legalEntity": {"type": "LegalEntity", "id": "LE-1"}}}}))
    .unwrap();
    c.bench_function("decide/order", |b| {
        b.iter(|| decider.decide(&order).unwrap())
    });
    let products: Vec<Check> = (0..100)
        .map(|i| {
            let seg = ["wholesale", "retail"][i % 2];
            serde_json::from_value(json!({"action": "viewProduct", "resource": {"type": "Product", "id": format!("P-{i}"),
                "attrs": {"segments": [{"type": "Segment", "id": seg}]}}}))
            .unwrap()
        })
        .collect();
    c.bench_function("decide/batch_100_products", |b| {
        b.iter(|| {
            products
                .iter()
                .filter(|c| decider.decide(c).unwrap().allow)
                .count()
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
