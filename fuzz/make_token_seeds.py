#!/usr/bin/env python3
"""Writes fuzz/corpus/token_front/: tokens signed with the dev keys in examples/keys/, all expired
(exp in 2001) so no seed is a valid token, plus the usual attack shapes. Run from the repository
root: python3 fuzz/make_token_seeds.py (needs the `cryptography` package)."""
import base64, json, os
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

out = "fuzz/corpus/token_front"
os.makedirs(out, exist_ok=True)
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
enc = lambda o: b64(json.dumps(o, separators=(",", ":")).encode())
idp = serialization.load_pem_private_key(open("examples/keys/idp-dev-private.pem", "rb").read(), None)
own = serialization.load_pem_private_key(open("examples/keys/legate-dev.pem", "rb").read(), None)
# legate's kid is the key's RFC 7638 thumbprint.
_n = own.public_key().public_numbers()
_jwk = {"crv": "P-256", "kty": "EC", "x": b64(_n.x.to_bytes(32, "big")), "y": b64(_n.y.to_bytes(32, "big"))}
_d = hashes.Hash(hashes.SHA256()); _d.update(json.dumps(_jwk, separators=(",", ":"), sort_keys=True).encode())
OWN_KID = b64(_d.finalize())
EXP = 1_000_000_000  # 2001-09-09: long expired

def rs256(h, p):
    msg = f"{enc(h)}.{enc(p)}".encode()
    return f"{msg.decode()}.{b64(idp.sign(msg, padding.PKCS1v15(), hashes.SHA256()))}"

def es256(h, p):
    msg = f"{enc(h)}.{enc(p)}".encode()
    r, s = decode_dss_signature(own.sign(msg, ec.ECDSA(hashes.SHA256())))
    return f"{msg.decode()}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

idp_claims = {"iss": "https://idp.example.com", "aud": "storefront", "sub": "C-1",
              "legalEntityId": "LE-1", "iat": EXP - 60, "exp": EXP}
own_claims = dict(idp_claims, iss="http://127.0.0.1:8181", sid="s-1", jti="j-1", client_id="legate")
seeds = {
    "idp_rs256": rs256({"alg": "RS256", "typ": "JWT", "kid": "idp-dev-rsa-1"}, idp_claims),
    "idp_no_kid": rs256({"alg": "RS256"}, idp_claims),
    "idp_nbf_future": rs256({"alg": "RS256", "kid": "idp-dev-rsa-1"}, dict(idp_claims, nbf=EXP)),
    "idp_aud_list": rs256({"alg": "RS256", "kid": "idp-dev-rsa-1"}, dict(idp_claims, aud=["x", "storefront"])),
    "legate_es256": es256({"alg": "ES256", "typ": "at+jwt", "kid": OWN_KID}, own_claims),
    "legate_wrong_typ": es256({"alg": "ES256", "typ": "JWT"}, own_claims),
    "alg_none": f"{enc({'alg': 'none'})}.{enc(idp_claims)}.",
    "alg_hs256": f"{enc({'alg': 'HS256'})}.{enc(idp_claims)}.{b64(b'x' * 32)}",
    "crit": f"{enc({'alg': 'RS256', 'crit': ['exp'], 'exp': 1})}.{enc(idp_claims)}.{b64(b's')}",
    "jku": f"{enc({'alg': 'RS256', 'jku': 'http://evil/jwks', 'kid': 'x'})}.{enc(idp_claims)}.{b64(b's')}",
    "kid_injection": f"{enc({'alg': 'RS256', 'kid': '../../dev/null'})}.{enc(idp_claims)}.{b64(b's')}",
    "kid_number": f"{enc({'alg': 'RS256', 'kid': 7})}.{enc(idp_claims)}.{b64(b's')}",
    "unknown_issuer": f"{enc({'alg': 'RS256'})}.{enc(dict(idp_claims, iss='https://evil'))}.{b64(b's')}",
    "four_parts": "a.b.c.d",
}
for name, tok in seeds.items():
    open(f"{out}/{name}", "w").write(tok)
# The structured form: P header \0 payload \0 signature (the target base64url-encodes each part).
parts = lambda h, p, s: b"P" + json.dumps(h).encode() + b"\0" + json.dumps(p).encode() + b"\0" + s
open(f"{out}/parts_rs256", "wb").write(
    parts({"alg": "RS256", "kid": "idp-dev-rsa-1"}, idp_claims, b"\x01" * 256))
open(f"{out}/parts_es256", "wb").write(
    parts({"alg": "ES256", "typ": "at+jwt", "kid": OWN_KID}, own_claims, b"\x02" * 64))
open(f"{out}/parts_dup_alg", "wb").write(
    b'P{"alg":"RS256","alg":"ES256"}\0' + json.dumps(idp_claims).encode() + b"\0sig")
