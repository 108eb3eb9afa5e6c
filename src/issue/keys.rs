//! Signing keys: PEM private keys (Ed25519, P-256, P-384, RSA) in, a signing key with its public JWK
//! and RFC 7638 thumbprint `kid` out; [`KeyRing`] holds `issue.keys` (the first signs, all are
//! published and verify). Private key material is never logged or printed.

use std::path::{Path, PathBuf};

use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
};
use base64::Engine as _;
use jsonwebtoken::{
    jwk::{
        AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, KeyAlgorithm,
        OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse, ThumbprintHash,
    },
    Algorithm, EncodingKey,
};

/// Why a key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read.
    #[error("cannot read key file {path}: {source}")]
    Read {
        /// the file
        path: String,
        /// why
        source: std::io::Error,
    },
    /// Not a PEM private key of a supported kind.
    #[error("{0}: not a PEM private key of a supported kind (Ed25519, P-256, P-384, RSA of 2048 bits or more)")]
    Unsupported(String),
}

/// A private key legate (or `legate token`) signs with.
#[derive(Clone)]
pub struct SigningKey {
    /// RFC 7638 thumbprint of the public key.
    pub kid: String,
    /// The algorithm this key signs with.
    pub alg: Algorithm,
    /// The private key.
    pub encoding: EncodingKey,
    /// The public key as a JWK (with `kid`, `alg`, `use`).
    pub jwk: Jwk,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Reads a PEM private key file.
    pub fn from_pem_file(path: &Path) -> Result<Self, KeyError> {
        let pem = std::fs::read(path).map_err(|source| KeyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_pem(&pem).ok_or_else(|| KeyError::Unsupported(path.display().to_string()))
    }

    /// Parses a PEM private key.
    pub fn from_pem(pem: &[u8]) -> Option<Self> {
        if let Ok(enc) = EncodingKey::from_ed_pem(pem) {
            let der = pem::parse(pem).ok()?;
            let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der.contents()).ok()?;
            let x =
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
            let jwk = Jwk {
                common: CommonParameters::default(),
                algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                    key_type: OctetKeyPairType::OctetKeyPair,
                    curve: EllipticCurve::Ed25519,
                    x,
                }),
            };
            return Some(Self::finish(enc, Algorithm::EdDSA, jwk));
        }
        if let Ok(enc) = EncodingKey::from_ec_pem(pem) {
            for alg in [Algorithm::ES256, Algorithm::ES384] {
                if let Ok(jwk) = Jwk::from_encoding_key(&enc, alg) {
                    if let AlgorithmParameters::EllipticCurve(ec) = &jwk.algorithm {
                        let fits = matches!(
                            (alg, &ec.curve),
                            (Algorithm::ES256, EllipticCurve::P256)
                                | (Algorithm::ES384, EllipticCurve::P384)
                        );
                        if fits
                            && jsonwebtoken::encode(
                                &jsonwebtoken::Header::new(alg),
                                &serde_json::json!({}),
                                &enc,
                            )
                            .is_ok()
                        {
                            return Some(Self::finish(enc, alg, jwk));
                        }
                    }
                }
            }
            return None;
        }
        if let Ok(enc) = EncodingKey::from_rsa_pem(pem) {
            let jwk = Jwk::from_encoding_key(&enc, Algorithm::RS256).ok()?;
            if let AlgorithmParameters::RSA(rsa) = &jwk.algorithm {
                let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(&rsa.n)
                    .ok()?;
                if n.iter().skip_while(|b| **b == 0).count() < 256 {
                    return None;
                }
            }
            return Some(Self::finish(enc, Algorithm::RS256, jwk));
        }
        None
    }

    /// A fresh P-256 key (ES256, which every JOSE library verifies) that lives as long as the
    /// process.
    pub fn ephemeral() -> Self {
        let pair =
            EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("the system RNG works");
        let doc = pair
            .to_pkcs8v1()
            .expect("a fresh P-256 key encodes as PKCS#8");
        let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", doc.as_ref().to_vec()));
        Self::from_pem(pem.as_bytes()).expect("a freshly generated P-256 key parses")
    }

    fn finish(encoding: EncodingKey, alg: Algorithm, mut jwk: Jwk) -> Self {
        let kid = jwk.thumbprint(ThumbprintHash::SHA256);
        jwk.common = CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(key_algorithm(alg)),
            key_id: Some(kid.clone()),
            ..Default::default()
        };
        Self {
            kid,
            alg,
            encoding,
            jwk,
        }
    }
}

/// legate's issuing keys: the first signs, all are published in the JWKS and verify, so a new key
/// can be put first while tokens signed by the old one are still valid.
#[derive(Debug, Clone)]
pub struct KeyRing {
    keys: Vec<SigningKey>,
    ephemeral: bool,
}

impl KeyRing {
    /// Reads every key file; every problem is reported. No files: one ephemeral key, loudly.
    pub fn load(paths: &[PathBuf]) -> Result<Self, Vec<String>> {
        if paths.is_empty() {
            tracing::warn!(
                "NO `issue.keys` CONFIGURED: legate signs with an EPHEMERAL key that changes on every \
                 restart and differs between replicas; tokens it issues stop verifying when it \
                 restarts. Configure `issue.keys` for anything but local development."
            );
            return Ok(Self {
                keys: vec![SigningKey::ephemeral()],
                ephemeral: true,
            });
        }
        let mut keys: Vec<SigningKey> = Vec::new();
        let mut problems = Vec::new();
        for path in paths {
            match SigningKey::from_pem_file(path) {
                Ok(k) if keys.iter().any(|o| o.kid == k.kid) => problems.push(format!(
                    "`issue.keys`: {} is the same key as an earlier entry",
                    path.display()
                )),
                Ok(k) => keys.push(k),
                Err(e) => problems.push(format!("`issue.keys`: {e}")),
            }
        }
        if problems.is_empty() {
            Ok(Self {
                keys,
                ephemeral: false,
            })
        } else {
            Err(problems)
        }
    }

    /// A ring over keys already loaded; `None` when `keys` is empty.
    pub fn new(keys: Vec<SigningKey>) -> Option<Self> {
        (!keys.is_empty()).then_some(Self {
            keys,
            ephemeral: false,
        })
    }

    /// The key that signs.
    pub fn signing(&self) -> &SigningKey {
        &self.keys[0]
    }

    /// Every key, the signing one first.
    pub fn all(&self) -> &[SigningKey] {
        &self.keys
    }

    /// Whether the ring is one throwaway key.
    pub fn is_ephemeral(&self) -> bool {
        self.ephemeral
    }

    /// The public JWKS document: `{"keys": [...]}`.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({"keys": self.keys.iter().map(|k| &k.jwk).collect::<Vec<_>>()})
    }

    /// The public keys, ready to verify.
    pub fn verify_keys(&self) -> Vec<crate::verify::VerifyKey> {
        self.keys
            .iter()
            .filter_map(|k| crate::verify::VerifyKey::from_jwk(&k.jwk))
            .collect()
    }

    /// The algorithms the keys sign with, each once.
    pub fn algorithms(&self) -> Vec<Algorithm> {
        let mut algs: Vec<Algorithm> = Vec::new();
        for k in &self.keys {
            if !algs.contains(&k.alg) {
                algs.push(k.alg);
            }
        }
        algs
    }
}

fn key_algorithm(alg: Algorithm) -> KeyAlgorithm {
    match alg {
        Algorithm::EdDSA => KeyAlgorithm::EdDSA,
        Algorithm::ES256 => KeyAlgorithm::ES256,
        Algorithm::ES384 => KeyAlgorithm::ES384,
        _ => KeyAlgorithm::RS256,
    }
}

/// RFC 7638 thumbprint of a public JWK (`None` for shapes legate does not use).
pub(crate) fn thumbprint(jwk: &Jwk) -> Option<String> {
    let ok = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(ec) => ec.curve != EllipticCurve::Ed25519,
        AlgorithmParameters::OctetKeyPair(okp) => okp.curve == EllipticCurve::Ed25519,
        AlgorithmParameters::RSA(_) => true,
        AlgorithmParameters::OctetKey(_) => false,
    };
    ok.then(|| jwk.thumbprint(ThumbprintHash::SHA256))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ephemeral_key_signs_and_has_a_thumbprint_kid() {
        let k = SigningKey::ephemeral();
        assert_eq!(k.alg, Algorithm::ES256);
        assert_eq!(k.kid.len(), 43);
        assert_eq!(thumbprint(&k.jwk).as_deref(), Some(k.kid.as_str()));
    }

    #[test]
    fn the_dev_keys_load() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/keys");
        let legate = SigningKey::from_pem_file(&root.join("legate-dev.pem")).unwrap();
        assert_eq!(legate.alg, Algorithm::ES256);
        let idp = SigningKey::from_pem_file(&root.join("idp-dev-private.pem")).unwrap();
        assert_eq!(idp.alg, Algorithm::RS256);
    }

    #[test]
    fn a_ring_publishes_every_key_and_signs_with_the_first() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/keys");
        let ring = KeyRing::load(&[
            root.join("legate-dev.pem"),
            root.join("idp-dev-private.pem"),
        ])
        .unwrap();
        assert_eq!(ring.signing().alg, Algorithm::ES256);
        assert_eq!(ring.jwks()["keys"].as_array().unwrap().len(), 2);
        assert_eq!(ring.verify_keys().len(), 2);
        assert_eq!(ring.algorithms(), vec![Algorithm::ES256, Algorithm::RS256]);
        assert!(!ring.is_ephemeral());
        let twice = KeyRing::load(&[root.join("legate-dev.pem"), root.join("legate-dev.pem")]);
        assert!(twice.unwrap_err()[0].contains("same key"));
        let missing = KeyRing::load(&[root.join("nope.pem")]).unwrap_err();
        assert!(missing[0].contains("nope.pem"), "{missing:?}");
        assert!(KeyRing::load(&[]).unwrap().is_ephemeral());
    }

    #[test]
    fn ed25519_and_rsa_keys_still_sign() {
        let doc = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
        let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", doc.as_ref().to_vec()));
        let ed = SigningKey::from_pem(pem.as_bytes()).unwrap();
        assert_eq!(ed.alg, Algorithm::EdDSA);
        assert_eq!(thumbprint(&ed.jwk).as_deref(), Some(ed.kid.as_str()));
    }

    #[test]
    fn garbage_is_refused() {
        assert!(SigningKey::from_pem(
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
        )
        .is_none());
        assert!(SigningKey::from_pem(b"hello").is_none());
    }
}
