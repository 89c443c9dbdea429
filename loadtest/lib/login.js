// The login-plus-refresh flow against the OAuth Agent (through NGINX) and the
// development IdP (examples/devidp), as the SPA and the browser do it:
// login/start → the IdP's login page and form POST → login/end → an API call
// → refresh → an API call with the new access token.
//
// The cookies are Secure, and k6's jar (Go's) does not send Secure cookies
// over http, so the flow carries them itself, in the Cookie header, as a
// browser does on a secure context such as *.localhost.
import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';
import { BASE_URL, ORIGIN, PREFIX, CSRF_HEADER, AGENT_PATH, IDP_USERS } from './config.js';

const json = { Origin: ORIGIN, 'Content-Type': 'application/json', Accept: 'application/json' };

// cookies collects the Set-Cookie values of r into jar (name → value);
// an empty value clears.
function collect(jar, r) {
  for (const name in r.cookies) {
    for (const c of r.cookies[name]) {
      if (c.value === '' || c.max_age < 0) {
        delete jar[name];
      } else {
        jar[name] = c.value;
      }
    }
  }
}

function cookieHeader(jar, names) {
  return names.filter((n) => jar[PREFIX + '-' + n] !== undefined).map((n) => `${PREFIX}-${n}=${jar[PREFIX + '-' + n]}`).join('; ');
}

const formAction = /<form method="post" action="([^"]*)">/;
const formID = /<input type="hidden" name="request_id" value="([^"]*)">/;

function unescape(s) {
  return s.replace(/&amp;/g, '&').replace(/&#34;|&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>');
}

// loginAndRefresh runs the whole flow once; apiPath is a GET the proxy
// forwards to an API that trusts the IdP's access tokens.
export function loginAndRefresh(apiPath) {
  const tags = { kind: 'login' };
  const jar = {};
  const user = IDP_USERS[exec.scenario.iterationInTest % IDP_USERS.length];

  // k6's own jar would send the cookies a second time beside the Cookie
  // header built here, and the token handler refuses a cookie name that
  // comes twice: every call gets an empty jar of its own.
  let r = http.post(BASE_URL + AGENT_PATH + '/login/start', null, { headers: json, tags, jar: new http.CookieJar() });
  if (!check(r, { 'login/start 200': (r) => r.status === 200 && !!r.json('authorizationRequestUrl') })) return;
  collect(jar, r);
  const authURL = r.json('authorizationRequestUrl');

  // The IdP: its login page, then its form, whose answer redirects to the SPA.
  r = http.get(authURL, { tags, redirects: 0 });
  const action = formAction.exec(r.body || ''), id = formID.exec(r.body || '');
  if (!check(r, { 'IdP login page': (r) => r.status === 200 && action !== null && id !== null })) return;
  const target = unescape(action[1]).startsWith('http') ? unescape(action[1]) : authURL.match(/^https?:\/\/[^/]+/)[0] + unescape(action[1]);
  r = http.post(target, { request_id: unescape(id[1]), username: user }, { tags, redirects: 0 });
  const pageUrl = r.headers['Location'];
  if (!check(r, { 'IdP redirects with a code': (r) => (r.status === 303 || r.status === 302) && /[?&]code=/.test(pageUrl || '') })) return;

  r = http.post(BASE_URL + AGENT_PATH + '/login/end', JSON.stringify({ pageUrl }), {
    headers: Object.assign({ Cookie: cookieHeader(jar, ['login']) }, json), tags, jar: new http.CookieJar(),
  });
  collect(jar, r);
  if (!check(r, {
    'login/end 200 logged in': (r) => r.status === 200 && r.json('handled') === true && r.json('isLoggedIn') === true,
    'login/end sets the token cookies': () => ['at', 'auth', 'id', 'csrf'].every((n) => jar[PREFIX + '-' + n] !== undefined),
  })) return;
  const csrf = r.json('csrf');

  const api = () => http.get(BASE_URL + apiPath, { headers: { Origin: ORIGIN, Cookie: cookieHeader(jar, ['at', 'csrf']) }, tags, jar: new http.CookieJar() });
  r = api();
  check(r, { 'API with the new session 200': (r) => r.status === 200 && r.json('subject') === user });

  const oldAt = jar[PREFIX + '-at'];
  const h = Object.assign({ Cookie: cookieHeader(jar, ['auth', 'csrf']) }, json);
  h[CSRF_HEADER] = csrf;
  r = http.post(BASE_URL + AGENT_PATH + '/refresh', null, { headers: h, tags, jar: new http.CookieJar() });
  collect(jar, r);
  check(r, { 'refresh 204 with a new access token': (r) => r.status === 204 && jar[PREFIX + '-at'] !== oldAt });

  r = api();
  check(r, { 'API after refresh 200': (r) => r.status === 200 && r.json('subject') === user });
}
