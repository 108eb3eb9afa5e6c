//! Set-up shared by the criterion benches: signing keys of each algorithm, a token signed by one,
//! and a verifier that trusts them.
#![allow(dead_code, unreachable_pub)]

use aws_lc_rs::{
    encoding::{AsDer, Pkcs8V1Der},
    rsa::{KeyPair as RsaKeyPair, KeySize},
    signature::{EcdsaKeyPair, Ed25519KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING},
};
use jsonwebtoken::Algorithm;
use legate::testing::{
    issue::SigningKey,
    verify::{ClaimNames, KeySet, TrustedIssuer, Verifier, VerifyKey},
};
use serde_json::json;

fn pem(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("PRIVATE KEY", der.to_vec()))
}

/// One fresh RS256, ES256 and EdDSA key, in that order.
pub fn keys() -> Vec<SigningKey> {
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

/// A day-long token for C-1 acting for LE-1, signed by `key`.
pub fn token(key: &SigningKey) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let mut header = jsonwebtoken::Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    let claims = json!({"iss": "https://idp.bench", "aud": "storefront", "sub": "C-1",
                        "legalEntityId": "LE-1", "iat": now, "exp": now + 86_400});
    jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap()
}

/// A verifier trusting `keys` for the issuer [`token`] names.
pub fn verifier(keys: &[SigningKey]) -> Verifier {
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
    Verifier::new(
        vec![issuer],
        ClaimNames {
            customer: "sub".into(),
            legal_entity: "legalEntityId".into(),
        },
    )
}
