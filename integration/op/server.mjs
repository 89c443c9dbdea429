// A real, OpenID-certified OpenID Provider (panva/oidc-provider) for the
// OAuth Agent's integration test (integration/oidcprovider_test.go) and the
// browser end-to-end tests behind NGINX (e2e/nginx_test.go).
//
// Environment:
//   PORT              port on 127.0.0.1; 0 (default) picks a free one
//   CLIENT_SECRET     the secret of the confidential client spa-client (required)
//   REDIRECT_URI      the SPA's URL: its redirect_uri and post_logout_redirect_uri (required)
//   ACCESS_TOKEN_TTL  access-token lifetime in seconds (default 3600); short ones make the
//                     userinfo endpoint refuse a token soon, to test refresh
//   BACKCHANNEL_LOGOUT_URI  optional: spa-client's backchannel_logout_uri (OpenID Connect
//                     Back-Channel Logout 1.0 §2.2), with backchannel_logout_session_required,
//                     so that ID tokens carry sid and ending a session at the OP POSTs the
//                     agent a logout token with that sid
//   OP_VERBOSE        set to keep oidc-provider's development-only warnings
//
// Stdout carries one line "READY <issuer>" once the OP listens, then one
// line "EVENT <name> ..." per grant, revocation, logout and error event, which the
// test counts. Errors and warnings go to stderr. SIGTERM and SIGINT close the
// listener and exit 0.
//
// Development only: in-memory storage, devInteractions (any login and
// password are accepted), a signing key generated at start.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { once } from 'node:events';

import Provider from 'oidc-provider';

const { CLIENT_SECRET, REDIRECT_URI, OP_VERBOSE, BACKCHANNEL_LOGOUT_URI } = process.env;
const PORT = Number(process.env.PORT ?? '0');
const ACCESS_TOKEN_TTL = Number(process.env.ACCESS_TOKEN_TTL ?? String(60 * 60));
if (!CLIENT_SECRET || !REDIRECT_URI || !Number.isInteger(PORT) || PORT < 0 || PORT > 65535
  || !Number.isInteger(ACCESS_TOKEN_TTL) || ACCESS_TOKEN_TTL < 1) {
  console.error('usage: PORT=<port|0> CLIENT_SECRET=<secret> REDIRECT_URI=<SPA URL> [ACCESS_TOKEN_TTL=<seconds>] node server.mjs');
  process.exit(2);
}

// The development-only warnings are known and expected here; they would
// only clutter the test's output.
if (!OP_VERBOSE) {
  const noise = [
    'devInteractions is enabled',
    'in-memory adapter is used',
    'oidc-provider NOTICE: default ',
  ];
  for (const level of ['warn', 'info']) {
    const original = console[level].bind(console);
    console[level] = (...args) => {
      const text = args.map(String).join(' ');
      if (!noise.some((n) => text.includes(n))) original(...args);
    };
  }
}

// Listen first: with PORT=0 the issuer is only known once the port is.
let handler = (req, res) => {
  res.statusCode = 503;
  res.end();
};
const server = createServer((req, res) => handler(req, res));
server.listen(PORT, '127.0.0.1');
await once(server, 'listening');
const issuer = `http://localhost:${server.address().port}`;

// A signing key of our own instead of the library's published development keys.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex'), use: 'sig', alg: 'RS256' };

const day = 24 * 60 * 60;
const provider = new Provider(issuer, {
  clients: [{
    client_id: 'spa-client',
    client_secret: CLIENT_SECRET,
    redirect_uris: [REDIRECT_URI],
    post_logout_redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...(BACKCHANNEL_LOGOUT_URI ? {
      backchannel_logout_uri: BACKCHANNEL_LOGOUT_URI,
      backchannel_logout_session_required: true,
    } : {}),
  }],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  claims: { openid: ['sub'], profile: ['name'] },
  // api:read is a scope of no OpenID Connect meaning: asked for without
  // openid it makes a plain OAuth 2.0 grant (no ID token), which the
  // agent's OAuth-only sessions are tested with (integration/hygiene_agent_test.go).
  scopes: ['openid', 'offline_access', 'api:read'],
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, name: `User ${id}` };
      },
    };
  },
  pkce: { required: () => true }, // S256 is the only method oidc-provider knows
  // Refresh tokens for every code grant, without offline_access, and a new
  // one on every use: the rotation the agent's single-flight must absorb.
  issueRefreshToken: async () => true,
  rotateRefreshToken: () => true,
  features: {
    devInteractions: { enabled: true },
    revocation: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    // Back-Channel Logout 1.0: at the end of a session the OP POSTs a
    // logout token to each of the session's clients that registered a
    // backchannel_logout_uri, and waits for the answers before it sends the
    // browser on.
    backchannelLogout: { enabled: true },
    pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: false },
    userinfo: { enabled: true },
  },
  // oidc-provider refuses to connect to special-use addresses (SSRF
  // protection); the agent's back-channel logout endpoint is on loopback
  // here, as every part of the test is.
  fetch: (url, { dispatcher, ...options }) => globalThis.fetch(url, options),
  // Provider and clients share this machine's clock. The default tolerance
  // (15 s) would keep a short-lived access token valid well past its exp.
  clockTolerance: 0,
  ttl: {
    AccessToken: ACCESS_TOKEN_TTL,
    AuthorizationCode: 60,
    IdToken: 60 * 60,
    Interaction: 60 * 60,
    RefreshToken: 14 * day,
    Session: 14 * day,
    Grant: 14 * day,
  },
});

// What the test counts, and what explains a failure.
provider.on('grant.success', (ctx) => console.log(`EVENT grant.success ${ctx.oidc.params.grant_type}`));
// grant.revoked names the route: "token" is oidc-provider's answer to a
// rotated refresh token used again (the whole grant goes).
provider.on('grant.revoked', (ctx) => console.log(`EVENT grant.revoked ${ctx.oidc.route}`));
// Revoked (RFC 7009), or used again after rotation.
provider.on('refresh_token.destroyed', () => console.log('EVENT refresh_token.destroyed'));
provider.on('pushed_authorization_request.success', () => console.log('EVENT pushed_authorization_request.success'));
provider.on('end_session.success', () => console.log('EVENT end_session.success'));
// The agent's answer to a logout token: 200 (success) or anything else (error).
provider.on('backchannel.success', () => console.log('EVENT backchannel.success'));
for (const name of [
  'grant.error', 'authorization.error', 'pushed_authorization_request.error', 'userinfo.error', 'revocation.error',
  'end_session.error', 'end_session_confirm.error', 'jwks.error', 'discovery.error', 'server_error',
  'backchannel.error',
]) {
  provider.on(name, (ctx, err) => {
    const detail = [err?.error_description, err?.error_detail].filter(Boolean).map((d) => ` (${d})`).join('');
    console.log(`EVENT ${name} ${err?.error ?? err?.name ?? 'error'}`);
    console.error(`${name}: ${err?.message ?? err}${detail}`);
  });
}

// The UserInfo endpoint's method, which the agent's userinfo_method
// chooses (integration/hygiene_agent_test.go counts it).
provider.use(async (ctx, next) => {
  if (ctx.path === '/me') console.log(`EVENT userinfo ${ctx.method}`);
  await next();
});

// POST /admin/logout-everywhere with the form field sub: what an
// administrator's "end every session of this user" does, which
// oidc-provider has no endpoint for: spa-client, when it registered a
// backchannel_logout_uri, gets a logout token that names sub and no sid
// (Back-Channel Logout 1.0 §2.4), signed and sent by oidc-provider's own
// code. Answers 204 once the client acknowledged, else 502. For tests on
// this machine only, like the rest of this file.
provider.use(async (ctx, next) => {
  if (ctx.path !== '/admin/logout-everywhere' || ctx.method !== 'POST') return next();
  let body = '';
  for await (const chunk of ctx.req) {
    body += chunk;
    if (body.length > 4096) ctx.throw(413);
  }
  const sub = new URLSearchParams(body).get('sub');
  const client = await provider.Client.find('spa-client');
  if (!sub || !client?.backchannelLogoutUri) ctx.throw(400);
  try {
    await client.backchannelLogout(sub, undefined); // no sid: every session of sub
    console.log('EVENT backchannel.success');
    ctx.status = 204;
  } catch (err) {
    console.log('EVENT backchannel.error');
    console.error(`admin logout-everywhere: ${err?.message ?? err}`);
    ctx.status = 502;
  }
});

handler = provider.callback();

// Installed before READY: a test may signal as soon as it reads that line.
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}

console.log(`READY ${issuer}`);
