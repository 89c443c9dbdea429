// Calls of the SPA to the API through NGINX and the OAuth Proxy, with the
// cookies and headers a browser sends.
import http from 'k6/http';
import { check, fail } from 'k6';
import exec from 'k6/execution';
import { BASE_URL, ORIGIN, PREFIX, CSRF_HEADER, API_GET, API_POST, sessions } from './config.js';

export function requireSessions(list) {
  if (list.length === 0) {
    fail('no sessions: set SESSIONS_FILE, or AT_COOKIE, CSRF_COOKIE and CSRF_TOKEN (loadtest/README.md)');
  }
}

// pick spreads iterations over the users' sessions.
export function pick(list) {
  return list[exec.scenario.iterationInTest % list.length];
}

// cookieHeader is what a browser sends to the API domain: the token-handler
// cookies among a site cookie or two, which the proxy must pass on untouched.
export function cookieHeader(s) {
  let c = `theme=dark; ${PREFIX}-at=${s.at}`;
  if (s.csrfCookie) {
    c += `; ${PREFIX}-csrf=${s.csrfCookie}`;
  }
  return c + '; _ga=GA1.2.1234567890.1700000000';
}

function headers(s, post) {
  const h = {
    Origin: ORIGIN,
    Cookie: cookieHeader(s),
    Accept: 'application/json',
    'User-Agent': 'Mozilla/5.0 (k6 token-handler load test)',
    'Sec-Fetch-Site': 'same-site',
  };
  if (post) {
    h['Content-Type'] = 'application/json';
    h[CSRF_HEADER] = s.csrf;
    // A browser resends any request whose reused keep-alive connection
    // closed before an answer began (Chromium's ShouldResendRequest): the
    // server cannot have seen it. k6's Go client resends only idempotent
    // requests, or ones with this header (net/http isReplayable). Without
    // it, a POST that meets NGINX closing an idle client connection (at
    // every reload) fails in k6 where a browser would not notice. A request
    // that reached NGINX and failed behind it gets an answer (502), which is
    // never resent.
    h['Idempotency-Key'] = `${exec.vu.idInTest}-${exec.scenario.iterationInTest}`;
  }
  return h;
}

const okCORS = (r) => r.headers['Access-Control-Allow-Origin'] === ORIGIN;

// get calls the API with s's cookies: 200 with the CORS headers.
export function get(s, tags, path) {
  const r = http.get(BASE_URL + (path || API_GET), { headers: headers(s, false), tags: tags || { kind: 'api' } });
  if (r.status !== 200) {
    console.warn(`GET ${path || API_GET}: ${r.status} ${r.error_code} ${r.error}`);
  }
  check(r, {
    'GET 200': (r) => r.status === 200,
    'GET CORS': okCORS,
  });
  return r;
}

// post sends JSON with the CSRF header: 200, echoed.
export function post(s, tags, path) {
  const body = JSON.stringify({ order: exec.scenario.iterationInTest, items: [{ sku: 'A-1', qty: 2 }, { sku: 'B-7', qty: 1 }] });
  const r = http.post(BASE_URL + (path || API_POST), body, { headers: headers(s, true), tags: tags || { kind: 'api' } });
  if (r.status !== 200) {
    console.warn(`POST ${path || API_POST}: ${r.status} ${r.error_code} ${r.error}`);
  }
  check(r, {
    'POST 200': (r) => r.status === 200,
    'POST echoed': (r) => r.body === body,
    'POST CORS': okCORS,
  });
  return r;
}

// denials: what the proxy must refuse, each answered 401 with the
// reference JSON and CORS headers. Marked as expected so that they do not
// count in http_req_failed.
const expect401 = http.expectedStatuses(401);
export function denials(s) {
  const tags = { kind: 'denied' };
  const unauthorized = (r) => r.status === 401 && r.json('code') === 'unauthorized';
  let r = http.get(BASE_URL + API_GET, { headers: { Origin: ORIGIN }, tags, responseCallback: expect401 });
  check(r, { 'no cookie: 401 unauthorized': unauthorized, 'no cookie: CORS': okCORS });
  const h = headers(s, true);
  delete h[CSRF_HEADER];
  r = http.post(BASE_URL + API_POST, '{}', { headers: h, tags, responseCallback: expect401 });
  check(r, { 'POST without CSRF header: 401': unauthorized });
  const bad = headers(s, false);
  bad.Cookie = `${PREFIX}-at=${s.at.slice(0, -4)}AAAA`;
  r = http.get(BASE_URL + API_GET, { headers: bad, tags, responseCallback: expect401 });
  check(r, { 'tampered cookie: 401': unauthorized });
  r = http.get(BASE_URL + API_GET, { headers: { Origin: 'https://evil.example', Cookie: cookieHeader(s) }, tags, responseCallback: expect401 });
  check(r, { 'untrusted Origin: 401, no CORS': (r) => unauthorized(r) && r.headers['Access-Control-Allow-Origin'] === undefined });
}

// preflight is the browser's CORS preflight of a POST.
export function preflight() {
  const r = http.options(BASE_URL + API_POST, null, {
    headers: { Origin: ORIGIN, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': `content-type,${CSRF_HEADER}` },
    tags: { kind: 'preflight' },
  });
  check(r, { 'preflight 204': (r) => r.status === 204 && okCORS(r) });
}

export { sessions };
