// The demo SPA: logs in through the OAuth Agent, shows user info and claims,
// and calls the demo API through the OAuth Proxy. It never sees a token.
import { OAuthAgentClient, OAuthAgentError } from './oauth-agent-client.js';

const $ = (id) => document.getElementById(id);
const show = (id, visible) => { $(id).hidden = !visible; };
const print = (id, value) => { $(id).textContent = typeof value === 'string' ? value : JSON.stringify(value, null, 2); };

let agent;
let config;

/** Calls the API through the proxy; on a 401 refreshes once and retries. */
async function callApi(path, options = {}) {
  const send = () => fetch(config.apiBaseUrl + path, {
    ...options,
    credentials: 'include',
    headers: { accept: 'application/json', ...(options.headers || {}), ...agent.apiHeaders(options.method || 'GET') },
  });
  let response = await send();
  if (response.status === 401) {
    await agent.refresh(); // throws OAuthAgentError (sessionExpired) when the session is over
    $('status').dataset.refreshed = String(Number($('status').dataset.refreshed || 0) + 1);
    response = await send();
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new OAuthAgentError(response.status, body.code, body.message);
  return body;
}

function loggedOut(message) {
  show('login', true);
  show('session', false);
  print('status', message || 'Not logged in.');
  $('status').dataset.state = 'logged-out';
}

async function loggedIn() {
  show('login', false);
  show('session', true);
  print('status', 'Logged in.');
  $('status').dataset.state = 'logged-in';
  const [userInfo, claims] = await Promise.all([agent.getUserInfo(), agent.getClaims()]);
  print('userinfo', userInfo);
  print('claims', claims);
}

function onError(e) {
  if (e instanceof OAuthAgentError && (e.sessionExpired || e.code === 'unauthorized_request')) {
    loggedOut('Your session has ended: please log in again.');
    return;
  }
  print('error', `${e.name}: ${e.status || ''} ${e.code || ''} ${e.message}`);
  show('error', true);
}

async function main() {
  config = await (await fetch('config.json')).json();
  agent = new OAuthAgentClient({ agentBaseUrl: config.agentBaseUrl, cookieNamePrefix: config.cookieNamePrefix });

  $('login').onclick = async () => {
    try {
      location.href = await agent.startLogin();
    } catch (e) { onError(e); }
  };
  $('logout').onclick = async () => {
    try {
      const url = await agent.logout();
      if (url) location.href = url; else loggedOut();
    } catch (e) { onError(e); }
  };
  $('call-api').onclick = async () => {
    try {
      print('api', await callApi('/hello'));
      $('api').dataset.calls = String(Number($('api').dataset.calls || 0) + 1);
    } catch (e) { onError(e); }
  };
  $('post-api').onclick = async () => {
    try {
      print('api', await callApi('/echo', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ at: new Date().toISOString() }) }));
    } catch (e) { onError(e); }
  };

  try {
    const page = await agent.handlePageLoad(location.href);
    if (page.handled) history.replaceState({}, document.title, location.pathname); // drop code and state from the URL
    if (page.isLoggedIn) await loggedIn(); else loggedOut();
  } catch (e) {
    loggedOut();
    onError(e);
  }
}

main();
