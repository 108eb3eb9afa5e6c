"""legate against real Python OAuth / JOSE client libraries: authlib, PyJWT, joserfc.

Run by tests/it/interop.rs against the real legate binary:

    python python_clients.py BASE_URL CLIENT_ID CLIENT_SECRET IDP_TOKEN

IDP_TOKEN is an identity-provider access token for customer C-1 (assigned to LE-1 and LE-2, default
LE-1) without a legal entity. Every check raises on failure; the last line printed is a JSON summary
with the library versions. Tokens are never printed.
"""

import json
import sys
from importlib.metadata import version

import jwt as pyjwt
import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"

checks = []


def check(name):
    def run(fn):
        fn()
        checks.append(name)
        print(f"ok   {name}", flush=True)
        return fn

    return run


def oauth_error(fn):
    """The OAuth error code authlib parsed from a refused request."""
    try:
        fn()
    except (OAuthError, OAuth2Error) as e:
        return e.error
    raise AssertionError("the request was not refused")


def main():
    base, client_id, client_secret, idp_token = sys.argv[1:5]
    state = {}

    @check("RFC 8414 discovery (authlib AuthorizationServerMetadata.validate)")
    def _():
        r = requests.get(f"{base}/.well-known/oauth-authorization-server", timeout=10)
        r.raise_for_status()
        meta = AuthorizationServerMetadata(r.json())
        meta.validate()
        assert meta["issuer"] == base, meta["issuer"]
        assert meta["revocation_endpoint"] == f"{base}/oauth2/revoke"
        assert TOKEN_EXCHANGE in meta["grant_types_supported"]
        assert "client_secret_basic" in meta["token_endpoint_auth_methods_supported"]
        state["meta"] = meta

    @check("OpenID Connect discovery (authlib OpenIDProviderMetadata.validate)")
    def _():
        r = requests.get(f"{base}/.well-known/openid-configuration", timeout=10)
        r.raise_for_status()
        OpenIDProviderMetadata(r.json()).validate()
        assert r.json()["revocation_endpoint"] == state["meta"]["revocation_endpoint"]

    meta = state["meta"]
    basic = OAuth2Session(
        client_id, client_secret, token_endpoint_auth_method="client_secret_basic",
        revocation_endpoint_auth_method="client_secret_basic",
    )
    post = OAuth2Session(
        client_id, client_secret, token_endpoint_auth_method="client_secret_post",
        revocation_endpoint_auth_method="client_secret_post",
    )

    @check("token exchange, client_secret_basic (authlib), default legal entity at login")
    def _():
        t = basic.fetch_token(
            meta["token_endpoint"], grant_type=TOKEN_EXCHANGE, subject_token=idp_token,
            subject_token_type=ACCESS_TOKEN,
        )
        assert t["token_type"] == "Bearer" and t["issued_token_type"] == ACCESS_TOKEN
        assert t["legal_entity_id"] == "LE-1", t["legal_entity_id"]
        state["login"] = t

    @check("verify via the discovered jwks_uri with client_id required (PyJWT PyJWKClient)")
    def _():
        at = state["login"]["access_token"]
        assert pyjwt.get_unverified_header(at)["typ"] == "at+jwt"
        key = pyjwt.PyJWKClient(meta["jwks_uri"]).get_signing_key_from_jwt(at)
        claims = pyjwt.decode(
            at, key, algorithms=meta["access_token_signing_alg_values_supported"],
            audience="storefront", issuer=meta["issuer"],
            options={"require": ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"]},
        )
        assert claims["client_id"] == client_id, claims["client_id"]
        assert claims["legalEntityId"] == "LE-1"

    @check("verify via the discovered jwks_uri with client_id essential (joserfc)")
    def _():
        at = state["login"]["access_token"]
        keys = KeySet.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())
        token = jose_jwt.decode(at, keys, algorithms=["ES256"])
        assert token.header["typ"] == "at+jwt"
        JWTClaimsRegistry(
            iss={"essential": True, "value": meta["issuer"]},
            aud={"essential": True, "value": "storefront"},
            sub={"essential": True, "value": "C-1"},
            exp={"essential": True},
            jti={"essential": True},
            client_id={"essential": True, "value": client_id},
        ).validate(token.claims)

    @check("refresh with rotation, client_secret_post (authlib); reuse is invalid_grant")
    def _():
        old = state["login"]["refresh_token"]
        t = post.refresh_token(meta["token_endpoint"], refresh_token=old, legal_entity_id="LE-2")
        assert t["legal_entity_id"] == "LE-2"
        assert t["refresh_token"] != old, "the refresh token rotates"
        reused = oauth_error(
            lambda: post.refresh_token(meta["token_endpoint"], refresh_token=old)
        )
        assert reused == "invalid_grant", reused
        # The reuse revoked the family: the rotated token is refused as well.
        after = oauth_error(
            lambda: post.refresh_token(meta["token_endpoint"], refresh_token=t["refresh_token"])
        )
        assert after == "invalid_grant", after

    @check("error parsing (authlib): invalid_client, invalid_target, unsupported_grant_type")
    def _():
        wrong = OAuth2Session(client_id, "wrong", token_endpoint_auth_method="client_secret_basic")
        exchange = dict(
            grant_type=TOKEN_EXCHANGE, subject_token=idp_token, subject_token_type=ACCESS_TOKEN,
        )
        assert oauth_error(lambda: wrong.fetch_token(meta["token_endpoint"], **exchange)) == "invalid_client"
        target = oauth_error(
            lambda: basic.fetch_token(meta["token_endpoint"], audience="https://evil.example", **exchange)
        )
        assert target == "invalid_target", target
        entity = oauth_error(
            lambda: basic.fetch_token(meta["token_endpoint"], legal_entity_id="LE-3", **exchange)
        )
        assert entity == "invalid_target", entity
        grant = oauth_error(
            lambda: basic.fetch_token(meta["token_endpoint"], grant_type="password", username="u", password="p")
        )
        assert grant == "unsupported_grant_type", grant

    @check("revocation (authlib revoke_token, RFC 7009): the session ends")
    def _():
        t = basic.fetch_token(
            meta["token_endpoint"], grant_type=TOKEN_EXCHANGE, subject_token=idp_token,
            subject_token_type=ACCESS_TOKEN, legal_entity_id="LE-2",
        )
        check_body = {"action": "viewOrder", "resource": {"type": "Order", "id": "O-1", "attrs": {
            "owner": {"type": "Customer", "id": "C-9"},
            "legalEntity": {"type": "LegalEntity", "id": "LE-2"}}}}
        authz = lambda: requests.post(
            f"{base}/v1/authorize", json=check_body, timeout=10,
            headers={"Authorization": f"Bearer {t['access_token']}"},
        )
        assert authz().json()["decision"] == "allow"
        r = basic.revoke_token(meta["revocation_endpoint"], token=t["refresh_token"],
                               token_type_hint="refresh_token")
        assert r.status_code == 200 and r.text == "", (r.status_code, r.text)
        assert authz().status_code == 401, "the access token of a revoked session is refused"
        again = oauth_error(lambda: basic.refresh_token(meta["token_endpoint"], refresh_token=t["refresh_token"]))
        assert again == "invalid_grant", again
        r = post.revoke_token(meta["revocation_endpoint"], token="not-a-token")
        assert r.status_code == 200, "an unknown token is 200 too"

    versions = {p: version(p) for p in ("authlib", "PyJWT", "joserfc", "requests")}
    print(json.dumps({"passed": checks, "versions": versions}))


if __name__ == "__main__":
    main()
