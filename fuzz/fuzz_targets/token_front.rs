//! The token front: everything the verifier does with a bearer string before and up to the
//! signature (size cap, three parts, header JSON, `crit`, `iss` peek, issuer, `alg` allow-list,
//! `typ`, `kid` lookup, key type) against the example configuration's two issuers and dev keys.
//!
//! Input: a raw token, or `P` followed by header JSON `\0` payload JSON `\0` signature bytes, which
//! the target base64url-encodes and joins (so mutations reach the JSON, not only its encoding).
//! Property: it never panics, and no input is accepted: the seeds signed with the dev keys expired
//! in 2001, and nothing else can carry a valid signature.
#![no_main]

use base64::Engine as _;
use legate::testing::verify::Error;
use legate_fuzz::{parts, runtime, verifier};
use libfuzzer_sys::fuzz_target;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fuzz_target!(|data: &[u8]| {
    let token = match data.strip_prefix(b"P") {
        Some(rest) => {
            let p = parts(rest, 3);
            format!("{}.{}.{}", b64(p[0]), b64(p[1]), b64(p[2]))
        }
        None => match std::str::from_utf8(data) {
            Ok(t) => t.to_string(),
            Err(_) => return,
        },
    };
    let result = runtime().block_on(verifier().verify(&token));
    match result {
        Ok(t) => panic!("a fuzzed token was accepted: customer {:?}", t.customer),
        Err(e) => {
            // Every refusal has a reason label and a message (answered 401 as JSON).
            assert!(!e.reason().is_empty());
            let _ = e.to_string();
            if let Error::TooLarge = e {
                assert!(token.len() > legate::testing::verify::MAX_TOKEN_BYTES);
            }
        }
    }
});
