// legate against real Node OAuth / JOSE client libraries: openid-client and jose.
//
// Run by tests/it/interop.rs against the real legate binary:
//
//     node node_clients.mjs BASE_URL CLIENT_ID CLIENT_SECRET IDP_TOKEN
//
// IDP_TOKEN is an identity-provider access token for customer C-1 (assigned to LE-1 and LE-2,
// default LE-1) without a legal entity. Every check throws on failure; the last line printed is a
// JSON summary with the library versions. Tokens are never printed.

import { readFileSync } from "node:fs";
import * as client from "openid-client";
import * as jose from "jose";

const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token";

const [base, clientId, clientSecret, idpToken] = process.argv.slice(2);
const passed = [];

async function check(name, fn) {
  await fn();
  passed.push(name);
  console.log(`ok   ${name}`);
}

function assert(cond, what) {
  if (!cond) throw new Error(`assertion failed: ${what}`);
}

/** The OAuth error code a refused request carried, as the library parsed it. */
async function oauthError(fn) {
  try {
    await fn();
  } catch (e) {
    if (e instanceof client.ResponseBodyError) return e.error;
    if (e instanceof client.WWWAuthenticateChallengeError) {
      return e.cause?.[0]?.parameters?.error ?? (await e.response?.json())?.error;
    }
    throw e;
  }
  throw new Error("the request was not refused");
}

function version(pkg) {
  const url = new URL(`./node_modules/${pkg}/package.json`, import.meta.url);
  return JSON.parse(readFileSync(url, "utf8")).version;
}

const exchangeParams = (extra = {}) => ({
  subject_token: idpToken,
  subject_token_type: ACCESS_TOKEN,
  ...extra,
});

let basic;
let state = {};

await check("RFC 8414 discovery (openid-client discovery, algorithm oauth2)", async () => {
  basic = await client.discovery(new URL(base), clientId, undefined,
    client.ClientSecretBasic(clientSecret),
    { algorithm: "oauth2", execute: [client.allowInsecureRequests] });
  const meta = basic.serverMetadata();
  assert(meta.issuer === base, `issuer ${meta.issuer}`);
  assert(meta.revocation_endpoint === `${base}/oauth2/revoke`, "revocation_endpoint");
  assert(meta.grant_types_supported.includes(TOKEN_EXCHANGE), "token exchange listed");
});

await check("OpenID Connect discovery (openid-client discovery, algorithm oidc)", async () => {
  const oidc = await client.discovery(new URL(base), clientId, undefined,
    client.ClientSecretBasic(clientSecret), { execute: [client.allowInsecureRequests] });
  assert(oidc.serverMetadata().token_endpoint === `${base}/oauth2/token`, "token_endpoint");
});

await check("token exchange, client_secret_basic (openid-client), default legal entity at login", async () => {
  const t = await client.genericGrantRequest(basic, TOKEN_EXCHANGE, exchangeParams());
  assert(t.token_type.toLowerCase() === "bearer", "token_type");
  assert(t.issued_token_type === ACCESS_TOKEN, "issued_token_type");
  assert(t.legal_entity_id === "LE-1", `legal_entity_id ${t.legal_entity_id}`);
  state.login = t;
});

await check("verify via the discovered jwks_uri with client_id required (jose createRemoteJWKSet)", async () => {
  const meta = basic.serverMetadata();
  const jwks = jose.createRemoteJWKSet(new URL(meta.jwks_uri));
  const { payload, protectedHeader } = await jose.jwtVerify(state.login.access_token, jwks, {
    issuer: meta.issuer,
    audience: "storefront",
    typ: "at+jwt",
    algorithms: ["ES256"],
    requiredClaims: ["client_id", "sub", "jti", "iat", "exp"],
  });
  assert(protectedHeader.alg === "ES256", `alg ${protectedHeader.alg}`);
  assert(payload.client_id === clientId, `client_id ${payload.client_id}`);
  assert(payload.legalEntityId === "LE-1", "legalEntityId");
});

await check("refresh with rotation (openid-client refreshTokenGrant); reuse is invalid_grant", async () => {
  const post = await client.discovery(new URL(base), clientId, undefined,
    client.ClientSecretPost(clientSecret),
    { algorithm: "oauth2", execute: [client.allowInsecureRequests] });
  const old = state.login.refresh_token;
  const t = await client.refreshTokenGrant(post, old, { legal_entity_id: "LE-2" });
  assert(t.legal_entity_id === "LE-2", "switched");
  assert(t.refresh_token !== old, "the refresh token rotates");
  assert((await oauthError(() => client.refreshTokenGrant(post, old))) === "invalid_grant", "reuse");
  const after = await oauthError(() => client.refreshTokenGrant(post, t.refresh_token));
  assert(after === "invalid_grant", `the reuse revoked the family (${after})`);
});

await check("error parsing (openid-client): invalid_client, invalid_target", async () => {
  const wrong = await client.discovery(new URL(base), clientId, undefined,
    client.ClientSecretBasic("wrong"),
    { algorithm: "oauth2", execute: [client.allowInsecureRequests] });
  const bad = await oauthError(() => client.genericGrantRequest(wrong, TOKEN_EXCHANGE, exchangeParams()));
  assert(bad === "invalid_client", `wrong secret: ${bad}`);
  const target = await oauthError(() => client.genericGrantRequest(basic, TOKEN_EXCHANGE,
    exchangeParams({ resource: "https://evil.example" })));
  assert(target === "invalid_target", `resource: ${target}`);
});

await check("revocation (openid-client tokenRevocation, RFC 7009): the session ends", async () => {
  const t = await client.genericGrantRequest(basic, TOKEN_EXCHANGE, exchangeParams({ legal_entity_id: "LE-2" }));
  const authorize = () => fetch(`${base}/v1/authorize`, {
    method: "POST",
    headers: { authorization: `Bearer ${t.access_token}`, "content-type": "application/json" },
    body: JSON.stringify({ action: "viewOrder", resource: { type: "Order", id: "O-1", attrs: {
      owner: { type: "Customer", id: "C-9" }, legalEntity: { type: "LegalEntity", id: "LE-2" } } } }),
  });
  assert((await (await authorize()).json()).decision === "allow", "allowed before logout");
  await client.tokenRevocation(basic, t.access_token, { token_type_hint: "access_token" });
  assert((await authorize()).status === 401, "the access token of a revoked session is refused");
  const again = await oauthError(() => client.refreshTokenGrant(basic, t.refresh_token));
  assert(again === "invalid_grant", `refresh after logout: ${again}`);
  await client.tokenRevocation(basic, "not-a-token");
});

console.log(JSON.stringify({
  passed,
  versions: Object.fromEntries(["openid-client", "jose", "oauth4webapi"].map((p) => [p, version(p)])),
}));
