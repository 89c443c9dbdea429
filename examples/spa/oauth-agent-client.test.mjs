// Tests of oauth-agent-client.js against a scripted fetch (node --test; Go's
// TestClientModule runs them). Each test lists the answers the agent and the
// API give, in order, and checks the requests the client made.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OAuthAgentClient, OAuthAgentError, hasOAuthParams, withoutOAuthParams } from './oauth-agent-client.js';

const agentBase = 'https://api.example.com/oauth-agent';
const apiBase = 'https://api.example.com/api';

// script replaces fetch: answer(request) returns [status, body] for each
// request, which is recorded as "METHOD path" in calls (with the CSRF header
// and pageUrl when sent). Answers may be promises, to hold a request open.
function script(answer) {
  const calls = [];
  globalThis.fetch = async (url, init = {}) => {
    const path = url.replace(agentBase, '').replace(apiBase, '/api');
    const call = { what: `${init.method || 'GET'} ${path}`, csrf: init.headers?.['x-example-csrf'], credentials: init.credentials };
    if (init.body && path === '/login/end') call.pageUrl = JSON.parse(init.body).pageUrl;
    calls.push(call);
    const [status, body] = await answer(call, calls.length);
    return new Response(body === undefined ? null : JSON.stringify(body), { status });
  };
  return calls;
}

const expired = [401, { code: 'token_expired', message: 'The access token has expired' }];
const user = [200, { sub: 'alice' }];

function client() {
  const c = new OAuthAgentClient({ agentBaseUrl: agentBase });
  c.csrfToken = 'csrf-1';
  return c;
}

test('userInfo: token_expired → one refresh, one retry', async () => {
  let n = 0;
  const calls = script((c) => (c.what === 'GET /userInfo' ? (n++ === 0 ? expired : user) : [204]));
  const c = client();
  let refreshed = 0;
  c.onRefresh = () => refreshed++;
  assert.deepEqual(await c.getUserInfo(), { sub: 'alice' });
  assert.deepEqual(calls.map((x) => x.what), ['GET /userInfo', 'POST /refresh', 'GET /userInfo']);
  assert.equal(calls[1].csrf, 'csrf-1');
  assert.equal(c.refreshCount, 1);
  assert.equal(refreshed, 1);
  assert.ok(c.lastRefresh instanceof Date);
});

test('claims: token_expired → one refresh, one retry', async () => {
  let n = 0;
  const calls = script((c) => (c.what === 'GET /claims' ? (n++ === 0 ? expired : [200, { sub: 'alice' }]) : [204]));
  assert.deepEqual(await client().getClaims(), { sub: 'alice' });
  assert.deepEqual(calls.map((x) => x.what), ['GET /claims', 'POST /refresh', 'GET /claims']);
});

test('concurrent callers share one refresh', async () => {
  let refreshed = false;
  let release;
  const held = new Promise((resolve) => { release = resolve; });
  const calls = script(async (c) => {
    if (c.what === 'POST /refresh') {
      await held;
      refreshed = true;
      return [204];
    }
    return refreshed ? user : expired;
  });
  const c = client();
  const all = Promise.all([c.getUserInfo(), c.getClaims(), c.fetchApi(`${apiBase}/hello`), c.getUserInfo()]);
  await new Promise((resolve) => setTimeout(resolve, 20));
  release();
  const [a, b, api, d] = await all;
  assert.deepEqual([a, b, d], [{ sub: 'alice' }, { sub: 'alice' }, { sub: 'alice' }]);
  assert.equal(api.status, 200);
  assert.equal(calls.filter((x) => x.what === 'POST /refresh').length, 1);
  assert.equal(c.refreshCount, 1);
});

test('a 401 that comes back after a refresh finished retries without refreshing again', async () => {
  let release;
  const slow = new Promise((resolve) => { release = resolve; });
  let refreshed = false;
  let first = true;
  const calls = script(async (c) => {
    if (c.what === 'POST /refresh') { refreshed = true; return [204]; }
    if (c.what === 'GET /claims' && first) { first = false; await slow; return expired; } // sent before the refresh
    return refreshed ? user : expired;
  });
  const c = client();
  const late = c.getClaims();
  await new Promise((resolve) => setTimeout(resolve, 5));
  assert.deepEqual(await c.getUserInfo(), { sub: 'alice' }); // refreshes
  release();
  assert.deepEqual(await late, { sub: 'alice' });
  assert.equal(calls.filter((x) => x.what === 'POST /refresh').length, 1);
});

test('a refresh that fails with 401 means logged out; the call is not retried', async () => {
  for (const answer of [[401, { code: 'session_expired' }], [401, { code: 'unauthorized_request' }]]) {
    const calls = script((c) => (c.what === 'POST /refresh' ? answer : expired));
    const e = await client().getUserInfo().catch((e) => e);
    assert.ok(e instanceof OAuthAgentError);
    assert.equal(e.code, answer[1].code);
    assert.equal(e.loggedOut, true, answer[1].code);
    assert.deepEqual(calls.map((x) => x.what), ['GET /userInfo', 'POST /refresh']);
  }
});

test('a refresh that fails otherwise is not a logout', async () => {
  script((c) => (c.what === 'POST /refresh' ? [502, { code: 'authorization_server_error' }] : expired));
  const e = await client().getUserInfo().catch((e) => e);
  assert.equal(e.code, 'authorization_server_error');
  assert.equal(e.loggedOut, false);
});

test('still expired after the refresh: the error, no second refresh', async () => {
  const calls = script((c) => (c.what === 'POST /refresh' ? [204] : expired));
  const e = await client().getUserInfo().catch((e) => e);
  assert.equal(e.code, 'token_expired');
  assert.deepEqual(calls.map((x) => x.what), ['GET /userInfo', 'POST /refresh', 'GET /userInfo']);
});

test('other errors are not refreshed', async () => {
  const calls = script(() => [401, { code: 'unauthorized_request' }]);
  const e = await client().getUserInfo().catch((e) => e);
  assert.equal(e.code, 'unauthorized_request');
  assert.deepEqual(calls.map((x) => x.what), ['GET /userInfo']);
});

test('fetchApi: a 401 refreshes once and sends the request again, with the CSRF header', async () => {
  let n = 0;
  const calls = script((c) => (c.what === 'POST /refresh' ? [204] : n++ === 0 ? [401, { code: 'invalid_token' }] : [200, { ok: true }]));
  const r = await client().fetchApi(`${apiBase}/echo`, { method: 'POST', body: '{}' });
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { ok: true });
  assert.deepEqual(calls.map((x) => x.what), ['POST /api/echo', 'POST /refresh', 'POST /api/echo']);
  assert.deepEqual(calls.map((x) => [x.csrf, x.credentials]), [['csrf-1', 'include'], ['csrf-1', 'include'], ['csrf-1', 'include']]);
});

test('fetchApi: other statuses are returned as they are, and GET carries no CSRF header', async () => {
  const calls = script(() => [403, { code: 'forbidden' }]);
  const r = await client().fetchApi(`${apiBase}/hello`);
  assert.equal(r.status, 403);
  assert.deepEqual(calls.map((x) => [x.what, x.csrf]), [['GET /api/hello', undefined]]);
});

test('fetchApi: the refresh failing with 401 is thrown, loggedOut', async () => {
  script((c) => (c.what === 'POST /refresh' ? [401, { code: 'session_expired' }] : [401, {}]));
  const e = await client().fetchApi(`${apiBase}/hello`).catch((e) => e);
  assert.equal(e.loggedOut, true);
});

const callback = 'https://www.example.com/app/?code=c0de&state=st4te&iss=https%3A%2F%2Flogin.example.com&x=1#top';

test('handlePageLoad: a replayed callback URL is a page load when a session exists', async () => {
  const calls = script((c) => (c.pageUrl.includes('code=') ? [400, { code: 'invalid_request', message: 'No login is in progress' }] : [200, { handled: false, isLoggedIn: true, csrf: 'csrf-2' }]));
  const c = new OAuthAgentClient({ agentBaseUrl: agentBase });
  assert.deepEqual(await c.handlePageLoad(callback), { handled: false, isLoggedIn: true, replayed: true });
  assert.deepEqual(calls.map((x) => x.pageUrl), [callback, 'https://www.example.com/app/?x=1#top']);
  assert.equal(c.csrfToken, 'csrf-2');
});

test('handlePageLoad: a replayed callback URL without a session is the error', async () => {
  script((c) => (c.pageUrl.includes('code=') ? [400, { code: 'invalid_request' }] : [200, { handled: false, isLoggedIn: false }]));
  const e = await new OAuthAgentClient({ agentBaseUrl: agentBase }).handlePageLoad(callback).catch((e) => e);
  assert.equal(e.code, 'invalid_request');
});

test('handlePageLoad: an error response of the login is thrown, not retried', async () => {
  const calls = script(() => [400, { code: 'access_denied' }]);
  const e = await new OAuthAgentClient({ agentBaseUrl: agentBase }).handlePageLoad('https://www.example.com/?error=access_denied&state=s').catch((e) => e);
  assert.equal(e.code, 'access_denied');
  assert.equal(calls.length, 1);
});

test('handlePageLoad: a login finishes', async () => {
  script(() => [200, { handled: true, isLoggedIn: true, csrf: 'csrf-3' }]);
  const c = new OAuthAgentClient({ agentBaseUrl: agentBase });
  assert.deepEqual(await c.handlePageLoad(callback), { handled: true, isLoggedIn: true });
  assert.equal(c.csrfToken, 'csrf-3');
});

test('withoutOAuthParams and hasOAuthParams', () => {
  for (const [url, want] of [
    [callback, 'https://www.example.com/app/?x=1#top'],
    ['https://www.example.com/?error=access_denied&error_description=no&error_uri=u&state=s', 'https://www.example.com/'],
    ['https://www.example.com/?session_state=a&state=b', 'https://www.example.com/'],
    ['https://www.example.com/page?tab=2', 'https://www.example.com/page?tab=2'],
  ]) {
    assert.equal(withoutOAuthParams(url), want);
    assert.equal(hasOAuthParams(url), url !== want);
  }
});
