// oauth-agent-client.js: a small client for the token handler's OAuth Agent.
// Copy it into your SPA. It keeps no token: the agent writes them into
// HttpOnly cookies; this module only remembers the CSRF token the agent hands
// out and sends it on the calls that need it.
//
//   import { OAuthAgentClient } from './oauth-agent-client.js';
//   const agent = new OAuthAgentClient({ agentBaseUrl: 'https://api.example.com/oauth-agent' });
//   const page = await agent.handlePageLoad(location.href);   // on every page load
//   if (!page.isLoggedIn) location.href = await agent.startLogin();

/** An error answer of the OAuth Agent: HTTP status and its JSON "code". */
export class OAuthAgentError extends Error {
  constructor(status, code, message) {
    super(message || code || `OAuth Agent answered ${status}`);
    this.name = 'OAuthAgentError';
    this.status = status;
    this.code = code || 'server_error';
  }

  /** The session is over (refresh token expired or revoked): log in again. */
  get sessionExpired() {
    return this.code === 'session_expired';
  }
}

export class OAuthAgentClient {
  /**
   * @param {{agentBaseUrl: string, cookieNamePrefix?: string}} options
   *   agentBaseUrl: where the agent is, e.g. https://api.example.com/oauth-agent
   *   cookieNamePrefix: the agent's cookie_name_prefix (default "example")
   */
  constructor({ agentBaseUrl, cookieNamePrefix = 'example' }) {
    this.baseUrl = agentBaseUrl.replace(/\/$/, '');
    this.csrfHeader = `x-${cookieNamePrefix}-csrf`;
    this.csrfToken = null;
  }

  /**
   * Tells the agent about the page URL: finishes a login when the URL carries
   * an authorization response, else says whether the user is logged in.
   * @returns {Promise<{handled: boolean, isLoggedIn: boolean}>}
   */
  async handlePageLoad(pageUrl) {
    const body = await this.#fetch('POST', '/login/end', { pageUrl });
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

  getUserInfo() {
    return this.#fetch('GET', '/userInfo');
  }

  getClaims() {
    return this.#fetch('GET', '/claims');
  }

  /** Gets new tokens with the refresh token; throws OAuthAgentError (sessionExpired) when the session is over. */
  async refresh() {
    await this.#fetch('POST', '/refresh');
  }

  /** Logs out: clears the cookies and returns the Authorization Server's end-session URL to navigate to ("" if none). */
  async logout() {
    const body = await this.#fetch('POST', '/logout');
    this.csrfToken = null;
    return body.url || '';
  }

  /**
   * The headers an API call through the OAuth Proxy needs: the CSRF header
   * for data-changing methods. Use with fetch(..., {credentials: 'include'}).
   */
  apiHeaders(method = 'GET') {
    const headers = {};
    if (this.csrfToken && !['GET', 'HEAD', 'OPTIONS'].includes(method.toUpperCase())) {
      headers[this.csrfHeader] = this.csrfToken;
    }
    return headers;
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
