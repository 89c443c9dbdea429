// The demo SPA: logs in through the OAuth Agent, shows who is logged in and
// the session's state, user info and claims, and calls the demo API through
// the OAuth Proxy. It never sees a token; oauth-agent-client.js (the file to
// copy into your own SPA) refreshes expired access tokens for it.
import { OAuthAgentClient, OAuthAgentError, hasOAuthParams, withoutOAuthParams } from './oauth-agent-client.js';

const $ = (id) => document.getElementById(id);
const show = (id, visible) => { $(id).hidden = !visible; };
const print = (id, value) => { $(id).textContent = typeof value === 'string' ? value : JSON.stringify(value, null, 2); };
const time = (date) => date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });

// What to tell the user for the error codes the agent (and the API) answer:
// those of contract §5 and the authorization endpoint's (RFC 6749 §4.1.2.1,
// OpenID Connect Core §3.1.2.6) that the agent passes on.
const friendly = {
  access_denied: 'The sign-in was cancelled or refused. You can try again.',
  login_required: 'You need to sign in again at the identity provider.',
  consent_required: 'The identity provider needs your consent for this application: log in again and accept.',
  interaction_required: 'The identity provider needs you to do something first: log in again.',
  account_selection_required: 'Choose an account at the identity provider: log in again.',
  invalid_request: 'The sign-in could not be completed: it was not started here, or the link was already used. Please log in again.',
  invalid_scope: 'The identity provider refused the permissions this application asks for.',
  unauthorized_client: 'The identity provider does not let this application sign you in.',
  temporarily_unavailable: 'The identity provider is busy. Try again in a moment.',
  authorization_error: 'The identity provider refused the request. Please log in again.',
  authorization_server_error: 'The identity provider cannot be reached right now. Try again in a moment.',
  session_expired: 'Your session has ended: please log in again.',
  unauthorized_request: 'You are not logged in here (the session cookies are missing or not valid): please log in.',
  token_expired: 'Your access could not be renewed. Try again, or log in again.',
  network_error: 'The server cannot be reached. Check your connection and try again.',
  server_error: 'Something went wrong on the server. Try again in a moment.',
};

let agent;
let config;

/** Calls the API through the proxy (the client refreshes once on a 401) and returns its JSON. */
async function callApi(path, options = {}) {
  const response = await agent.fetchApi(config.apiBaseUrl + path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new OAuthAgentError(response.status, body.code, body.message);
  return body;
}

/** Removes code, state, error, iss and session_state from the address bar. */
function cleanURL() {
  if (hasOAuthParams(location.href)) history.replaceState(history.state, document.title, withoutOAuthParams(location.href));
}

function loggedOut(message) {
  show('login', true);
  show('session', false);
  show('panel', false);
  print('status', message || 'Not logged in.');
  $('status').dataset.state = 'logged-out';
}

function clearError() {
  show('error', false);
  print('error', '');
  delete $('error').dataset.code;
}

// showRefresh writes the session panel's refresh lines; the count is also
// #status's data-refreshed, which the end-to-end test reads.
function showRefresh() {
  $('status').dataset.refreshed = String(agent.refreshCount);
  print('last-refresh', agent.lastRefresh
    ? `${time(agent.lastRefresh)} (${agent.refreshCount} since this page loaded)`
    : 'none since this page loaded');
}

// showSession fills the session panel from user info and the ID token's
// claims: who, since when, and what is known of the tokens' lifetimes. No
// token value is ever here: the page has none.
function showSession(userInfo, claims) {
  const who = userInfo.name || claims.name || userInfo.preferred_username || claims.preferred_username;
  const sub = userInfo.sub || claims.sub;
  print('who', who ? `${who} (${sub})` : sub || 'unknown');
  $('who').dataset.sub = sub || '';
  print('signed-in', claims.auth_time ? time(new Date(claims.auth_time * 1000)) : 'not told');
  print('id-expiry', claims.exp ? time(new Date(claims.exp * 1000)) : 'not told');
  // The agent keeps the access token in an HttpOnly cookie and does not say
  // when it expires (contract §5): the client refreshes when a call answers
  // 401 token_expired, so the page need not know.
  print('at-expiry', 'not told to the page: refreshed when a call finds it expired');
  showRefresh();
  show('panel', true);
}

async function loggedIn() {
  show('login', false);
  show('session', true);
  print('status', 'Logged in.');
  $('status').dataset.state = 'logged-in';
  const [userInfo, claims] = await Promise.all([agent.getUserInfo(), agent.getClaims()]);
  showSession(userInfo, claims);
  print('userinfo', userInfo);
  print('claims', claims);
}

function onError(e) {
  cleanURL();
  if (e instanceof OAuthAgentError && (e.loggedOut || (e.status === 401 && e.code === 'unauthorized_request'))) {
    loggedOut(friendly[e.code] || friendly.session_expired);
    return;
  }
  const code = e instanceof OAuthAgentError ? e.code : 'server_error';
  const detail = e instanceof OAuthAgentError ? `${code}${e.status ? `, HTTP ${e.status}` : ''}` : e.message;
  print('error', `${friendly[code] || 'Something went wrong.'} (${detail})`);
  $('error').dataset.code = code;
  show('error', true);
}

// run runs an action of a button: clears the last error first.
const run = (action) => async () => {
  clearError();
  try {
    await action();
  } catch (e) { onError(e); }
};

async function main() {
  config = await (await fetch('config.json')).json();
  if (config.title) {
    document.title = config.title;
    print('title', config.title);
  }
  agent = new OAuthAgentClient({
    agentBaseUrl: config.agentBaseUrl,
    cookieNamePrefix: config.cookieNamePrefix,
    onRefresh: showRefresh,
  });

  $('login').onclick = run(async () => {
    location.href = await agent.startLogin();
  });
  $('logout').onclick = run(async () => {
    const url = await agent.logout();
    if (url) location.href = url; else loggedOut();
  });
  $('refresh').onclick = run(async () => {
    await agent.refresh();
    print('status', 'Logged in: tokens refreshed.');
  });
  $('call-api').onclick = run(async () => {
    print('api', await callApi('/hello'));
    $('api').dataset.calls = String(Number($('api').dataset.calls || 0) + 1);
  });
  $('post-api').onclick = run(async () => {
    print('api', await callApi('/echo', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ at: new Date().toISOString() }) }));
  });

  try {
    // A login's callback, an error response, the way back from logout, or a
    // plain page load; a replayed callback URL is a page load when a
    // session exists (oauth-agent-client.js).
    const page = await agent.handlePageLoad(location.href);
    cleanURL();
    if (page.isLoggedIn) await loggedIn(); else loggedOut();
  } catch (e) {
    loggedOut();
    onError(e);
  }
}

main();
