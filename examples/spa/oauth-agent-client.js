// oauth-agent-client.js: the browser side of the token handler. This is the
// file to copy into your SPA (plain modern JavaScript, no dependencies, no
// build step); docs/agent.md "Using the agent from an SPA" says how to use it.
//
// It keeps no token: the OAuth Agent writes them into HttpOnly cookies. This
// module remembers only the CSRF token the agent hands out, sends it on the
// calls that need it, and keeps the session alive:
//
// * An expired access token is refreshed when a call says so, from ANY call:
//   401 token_expired from the agent (userInfo, claims) or a 401 from an API
//   call through the OAuth Proxy (fetchApi). The client refreshes once and
//   retries the call once.
// * Refreshes are single-flight within the page: callers that find the token
//   expired at the same time share one POST /refresh, and a call whose 401
//   came back after another caller's refresh had finished just retries.
// * Only when the refresh itself fails with 401 (session_expired: the refresh
//   token expired or was revoked; or no session cookie at all) is the user
//   logged out: the error thrown then has loggedOut === true. Any other
//   failure (the Authorization Server unreachable, a network error) is thrown
//   as it is and leaves the session alone.
// * A callback URL loaded again (reload, back button or a bookmark of
//   ?code=…&state=…, after the login it finished) is treated as the page
//   load it is when a session exists: the agent answers it 400
//   invalid_request ("No login is in progress"), as the code was already
//   redeemed.
//
//   import { OAuthAgentClient, withoutOAuthParams } from './oauth-agent-client.js';
//   const agent = new OAuthAgentClient({ agentBaseUrl: 'https://api.example.com/oauth-agent' });
//   const page = await agent.handlePageLoad(location.href);   // on every page load
//   history.replaceState(history.state, '', withoutOAuthParams(location.href));
//   if (!page.isLoggedIn) location.href = await agent.startLogin();
//   const user = await agent.getUserInfo();
//   const orders = await (await agent.fetchApi('https://api.example.com/api/orders')).json();
//
// A client is safe to share within a page; use one per page.

/** The query parameters of an authorization response (RFC 6749 §4.1.2, RFC 9207 §2, OpenID Connect Session 1.0 §3). */
const oauthParams = ['code', 'state', 'error', 'error_description', 'error_uri', 'iss', 'session_state'];

/**
 * Returns url without the authorization response's parameters (code, state,
 * error, error_description, error_uri, iss, session_state), for
 * history.replaceState after a login, a logout or an error: they must not
 * stay in the address bar, the history or a bookmark.
 */
export function withoutOAuthParams(url) {
  const u = new URL(url);
  for (const name of oauthParams) u.searchParams.delete(name);
  return u.href;
}

/** Whether url carries any of the authorization response's parameters. */
export function hasOAuthParams(url) {
  const { searchParams } = new URL(url);
  return oauthParams.some((name) => searchParams.has(name));
}

/** An error answer of the OAuth Agent or the API: HTTP status and its JSON "code". */
export class OAuthAgentError extends Error {
  constructor(status, code, message) {
    super(message || code || `OAuth Agent answered ${status}`);
    this.name = 'OAuthAgentError';
    this.status = status;
    this.code = code || 'server_error';
    /** True when the session is over and the user must log in again (set by the client). */
    this.loggedOut = this.code === 'session_expired';
  }

  /** The session is over (refresh token expired or revoked): log in again. */
  get sessionExpired() {
    return this.code === 'session_expired';
  }

  /** The access token has expired: refresh, then retry. The client does this itself. */
  get tokenExpired() {
    return this.status === 401 && this.code === 'token_expired';
  }
}

export class OAuthAgentClient {
  #refreshing = null; // the refresh in flight, shared by every caller
  #refreshes = 0; // refreshes finished: a call that began before one need not refresh again

  /**
   * @param {{agentBaseUrl: string, cookieNamePrefix?: string, onRefresh?: (at: Date) => void}} options
   *   agentBaseUrl: where the agent is, e.g. https://api.example.com/oauth-agent
   *   cookieNamePrefix: the agent's cookie.prefix (default "example")
   *   onRefresh: called after every successful refresh, with its time
   */
  constructor({ agentBaseUrl, cookieNamePrefix = 'example', onRefresh }) {
    this.baseUrl = agentBaseUrl.replace(/\/$/, '');
    this.csrfHeader = `x-${cookieNamePrefix}-csrf`;
    this.csrfToken = null;
    this.onRefresh = onRefresh;
    /** When the last refresh of this page succeeded (a Date), or null. */
    this.lastRefresh = null;
  }

  /** How many refreshes this client has made. */
  get refreshCount() {
    return this.#refreshes;
  }

  /**
   * Tells the agent about the page URL: finishes a login when the URL carries
   * an authorization response, else says whether the user is logged in.
   * A callback URL the agent has no login for (invalid_request: typically the
   * same ?code&state loaded again after the login it finished) is asked again
   * as a plain page load; when that finds a session, the answer has
   * replayed: true and no error is thrown. Remove the parameters from the
   * address bar afterwards, success or not (withoutOAuthParams).
   * @returns {Promise<{handled: boolean, isLoggedIn: boolean, replayed?: boolean}>}
   */
  async handlePageLoad(pageUrl) {
    let body;
    try {
      body = await this.#fetch('POST', '/login/end', { pageUrl });
    } catch (e) {
      if (!(e instanceof OAuthAgentError && e.status === 400 && e.code === 'invalid_request' && hasOAuthParams(pageUrl))) throw e;
      const page = await this.handlePageLoad(withoutOAuthParams(pageUrl));
      if (!page.isLoggedIn) throw e;
      return { ...page, replayed: true };
    }
    if (body.csrf) this.csrfToken = body.csrf;
    return { handled: !!body.handled, isLoggedIn: !!body.isLoggedIn };
  }

  /**
   * Starts a login; navigate the browser to the returned URL.
   * @param {Record<string,string>} [extraParams] e.g. {prompt: 'login'}
   */
  async startLogin(extraParams = {}) {
    const list = Object.entries(extraParams).map(([key, value]) => ({ key, value }));
    const body = await this.#fetch('POST', '/login/start', list.length ? { extraParams: list } : undefined);
    return body.authorizationRequestUrl;
  }

  /** The Authorization Server's user info; refreshes once on token_expired. */
  getUserInfo() {
    return this.#withRefresh(() => this.#fetch('GET', '/userInfo'));
  }

  /** The ID token's claims; refreshes once on token_expired. */
  getClaims() {
    return this.#withRefresh(() => this.#fetch('GET', '/claims'));
  }

  /**
   * Gets new tokens with the refresh token. Concurrent callers share one
   * request. Throws OAuthAgentError with loggedOut when the session is over
   * (any 401: session_expired, or no session cookie).
   */
  refresh() {
    this.#refreshing ??= this.#fetch('POST', '/refresh').then(() => {
      this.#refreshes++;
      this.lastRefresh = new Date();
      this.onRefresh?.(this.lastRefresh);
    }, (e) => {
      if (e.status === 401) e.loggedOut = true;
      throw e;
    }).finally(() => {
      this.#refreshing = null;
    });
    return this.#refreshing;
  }

  /** Logs out: clears the cookies and returns the Authorization Server's end-session URL to navigate to ("" if none). */
  async logout() {
    const body = await this.#fetch('POST', '/logout');
    this.csrfToken = null;
    return body.url || '';
  }

  /**
   * Calls the API through the OAuth Proxy: fetch(url, init) with the
   * session's cookies and, for data-changing methods, the CSRF header. On a
   * 401 it refreshes (as above) and sends the request once more, so init's
   * body must be one fetch can send twice (a string, FormData, Blob, …; not a
   * stream). Returns the Response, whatever its status; throws
   * OAuthAgentError when the refresh fails (loggedOut when the session is
   * over) or the network does.
   */
  async fetchApi(url, init = {}) {
    const method = (init.method || 'GET').toUpperCase();
    const send = async () => {
      try {
        return await fetch(url, {
          ...init,
          credentials: 'include',
          headers: { accept: 'application/json', ...(init.headers || {}), ...this.apiHeaders(method) },
        });
      } catch (e) {
        throw new OAuthAgentError(0, 'network_error', `The API could not be reached: ${e.message}`);
      }
    };
    const generation = this.#refreshes;
    const response = await send();
    if (response.status !== 401) return response;
    await response.body?.cancel();
    if (this.#refreshes === generation) await this.refresh();
    return send();
  }

  /**
   * The headers an API call through the OAuth Proxy needs: the CSRF header
   * for data-changing methods. fetchApi adds them; use this for calls of
   * your own, with fetch(..., {credentials: 'include'}).
   */
  apiHeaders(method = 'GET') {
    const headers = {};
    if (this.csrfToken && !['GET', 'HEAD', 'OPTIONS'].includes(method.toUpperCase())) {
      headers[this.csrfHeader] = this.csrfToken;
    }
    return headers;
  }

  // #withRefresh runs call; on token_expired it refreshes, unless a refresh
  // finished while the call was under way (its cookies are newer than the
  // ones the call sent), and runs call once more.
  async #withRefresh(call) {
    const generation = this.#refreshes;
    try {
      return await call();
    } catch (e) {
      if (!(e instanceof OAuthAgentError && e.tokenExpired)) throw e;
    }
    if (this.#refreshes === generation) await this.refresh();
    return call();
  }

  async #fetch(method, path, body) {
    const headers = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.csrfToken && method !== 'GET') headers[this.csrfHeader] = this.csrfToken;
    let response;
    try {
      response = await fetch(this.baseUrl + path, {
        method,
        headers,
        credentials: 'include',
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new OAuthAgentError(0, 'network_error', `The OAuth Agent could not be reached: ${e.message}`);
    }
    const text = await response.text();
    let json = {};
    if (text) {
      try {
        json = JSON.parse(text);
      } catch {
        throw new OAuthAgentError(response.status, 'server_error', 'The OAuth Agent answered something that is not JSON');
      }
    }
    if (!response.ok) throw new OAuthAgentError(response.status, json.code, json.message);
    return json;
  }
}
