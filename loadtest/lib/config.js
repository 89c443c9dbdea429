// Settings of every script, from the environment (k6 run -e NAME=value, or
// exported variables), so that the scripts can point at a real deployment.
// loadtest/README.md lists them.
import { SharedArray } from 'k6/data';

function env(name, def) {
  const v = __ENV[name];
  return v === undefined || v === '' ? def : v;
}

// Where NGINX (or the proxy, or the API domain) listens, without a trailing slash.
export const BASE_URL = env('BASE_URL', 'http://127.0.0.1:8000').replace(/\/$/, '');
// The SPA's origin: one of the proxy's and agent's trusted_web_origins.
export const ORIGIN = env('ORIGIN', 'http://www.example.localhost:3000');
// COOKIE_PREFIX is cookie.prefix of agent and proxy, NAME_PREFIX their cookie.name_prefix: none, host (the
// names start with __Host-) or host-http (__Host-Http-). HOST_PREFIX=true, from before NAME_PREFIX, is host.
const NAME_PREFIXES = { none: '', host: '__Host-', 'host-http': '__Host-Http-' };
const NAME_PREFIX = env('NAME_PREFIX', env('HOST_PREFIX', 'false') === 'true' ? 'host' : 'none');
if (!Object.prototype.hasOwnProperty.call(NAME_PREFIXES, NAME_PREFIX)) {
  throw new Error(`NAME_PREFIX must be none, host or host-http, got "${NAME_PREFIX}"`);
}
export const PREFIX = NAME_PREFIXES[NAME_PREFIX] + env('COOKIE_PREFIX', 'example');
export const CSRF_HEADER = 'x-' + env('COOKIE_PREFIX', 'example') + '-csrf';
// The API behind the proxy: a GET path and a POST path that echoes JSON.
export const API_GET = env('API_GET', '/api/data');
export const API_POST = env('API_POST', '/api/echo');
// The OAuth Agent's base path behind NGINX.
export const AGENT_PATH = env('AGENT_PATH', '/oauth-agent');
// The development IdP (examples/devidp) of the login-plus-refresh flow.
export const IDP_URL = env('IDP_URL', 'http://127.0.0.1:8443').replace(/\/$/, '');
export const IDP_USERS = env('IDP_USERS', 'alice,bob,carol').split(',');

export const RATE = parseInt(env('RATE', '0'), 10); // 0: the script's default
export const DURATION = env('DURATION', '');        // '': the script's default

// Sessions: the cookies k6 sends, minted with thctl. SESSIONS_FILE is JSON
// {"sessions": [{"at", "csrfCookie", "csrf"}], "rotated": [...]} as
// loadtest/run writes it; without it, one session from AT_COOKIE,
// CSRF_COOKIE and CSRF_TOKEN.
function loadSessions(field) {
  const file = env('SESSIONS_FILE', '');
  if (file !== '') {
    return JSON.parse(open(file))[field] || [];
  }
  if (field !== 'sessions' || env('AT_COOKIE', '') === '') {
    return [];
  }
  return [{ sub: 'env', at: env('AT_COOKIE'), csrfCookie: env('CSRF_COOKIE', ''), csrf: env('CSRF_TOKEN', '') }];
}

export const sessions = new SharedArray('sessions', () => loadSessions('sessions'));
export const rotatedSessions = new SharedArray('rotated', () => loadSessions('rotated'));

// p99 bounds in milliseconds, overridable for slower or remote targets.
export const P99_MS = parseInt(env('P99_MS', '0'), 10);
// The GET of the login-plus-refresh flow: an API route that trusts the
// IdP's access tokens (loadtest/run routes /api/idp/ to one).
export const LOGIN_API_GET = env('LOGIN_API_GET', '/api/idp/me');
