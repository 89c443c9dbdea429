// spa-flow.mjs drives the demo SPA in headless Debian Chromium, as a user
// would: log in through the Authorization Server's own pages, see user info
// and claims and the session panel, call the API, POST with the CSRF header,
// load the login's callback URL again, reload the page after the access token
// expired and see the SPA refresh once and stay logged in, let the token
// expire again and see an API call refresh and retry, use the Refresh
// button, log out and see the cookies gone, and (devidp) cancel a login and
// see a friendly message. With REFRESH_GRACE_MS it also refreshes from two
// tabs of the session at once and replays a just-rotated refresh cookie from
// a second browser context. The Go end-to-end tests run it against each
// deployment.
//
// Environment:
//   SPA_URL         the SPA, e.g. http://www.example.localhost:3000/
//   IDP             "devidp" (the development OpenID Provider) or "oidc-provider"
//   USERNAME        the user to log in as (default alice)
//   EXPECT_SUBJECT  the subject the API must report (default USERNAME)
//   ACCESS_TTL_MS   access-token lifetime; the flow waits it out to test refresh (0 skips that step)
//   SCREENSHOT      optional path of a PNG of the logged-in page (after the first API call)
//   SCREENSHOT_REFRESHED optional path of a PNG of the page after the Refresh button
//   METRICS_URL     optional: the agent's metrics listener, e.g. http://127.0.0.1:9090;
//                   the refresh steps then check oauth_agent_refreshes_total there
//   REFRESH_GRACE_MS the agent's refresh.grace_period; above 0 the two-tab steps run
//   COOKIE_FILE     optional path: the two-tab steps write the sealed access-token
//                   cookies each refresh set there (JSON, mode 0600), for the Go
//                   test to open with the key and compare; they are never printed
//
// Exit status 0 when every step passed; the last line says how many did.
import { writeFileSync } from 'node:fs';
import { check, counts, launch, step } from './flow.mjs';

const env = (name, fallback) => process.env[name] ?? fallback;
const spaURL = env('SPA_URL');
const idp = env('IDP', 'devidp');
const username = env('USERNAME', 'alice');
const subject = env('EXPECT_SUBJECT', username);
const accessTTL = Number(env('ACCESS_TTL_MS', '0'));
const refreshGrace = Number(env('REFRESH_GRACE_MS', '0'));
const metricsURL = env('METRICS_URL', '').replace(/\/$/, '');
if (!spaURL) throw new Error('SPA_URL is required');

const browser = await launch();
const context = await browser.newContext();

const apiCookies = async (ctx = context) => (await ctx.cookies()).filter((c) => c.domain.includes('api.example.localhost') || c.name.startsWith('example-') || c.name.startsWith('__Host-example-'));
const text = async (selector, tab = page) => (await tab.textContent(selector)) ?? '';

// Cookie names by purpose: P-at and P-auth, whole or chunk 0.
const isAT = (name) => /(^|-)at(\.0)?$/.test(name);
const isAuth = (name) => /(^|-)auth(\.0)?$/.test(name);

// newTab opens a page in ctx that reports the browser's console errors and
// remembers the CSRF token the SPA in it holds: the agent hands it out in
// its answer to POST /login/end on every page load of a logged-in SPA, and
// the SPA's client sends it on every data-changing call.
const csrfTokens = new WeakMap();
async function newTab(ctx) {
  const tab = await ctx.newPage();
  tab.setDefaultTimeout(20_000);
  tab.on('console', (m) => { if (m.type() === 'error') console.log(`     browser console: ${m.text()}`); });
  tab.on('response', async (r) => {
    if (!r.url().endsWith('/login/end') || !r.ok()) return;
    const body = await r.json().catch(() => ({}));
    if (body.csrf) csrfTokens.set(tab, body.csrf);
  });
  return tab;
}

// openSPA opens the SPA in a new tab of ctx and waits until it shows the
// user logged in and holds a CSRF token.
async function openSPA(ctx) {
  const tab = await newTab(ctx);
  await tab.goto(spaURL);
  await tab.waitForSelector('#status[data-state="logged-in"]');
  for (const deadline = Date.now() + 5000; !csrfTokens.has(tab); await tab.waitForTimeout(10)) {
    check(Date.now() < deadline, 'the SPA got no CSRF token from POST /login/end');
  }
  return tab;
}

// The value of the cookie whose name matches is in a Cookie request header.
function cookieIn(header, is) {
  for (const pair of (header ?? '').split(/;\s*/)) {
    const i = pair.indexOf('=');
    if (i > 0 && is(pair.slice(0, i))) return pair.slice(i + 1);
  }
  return undefined;
}

// The access-token cookies (whole or chunks) a response sets, by name.
async function setAT(response) {
  const set = {};
  for (const line of (await response.headerValues('set-cookie')).flatMap((v) => v.split('\n'))) {
    const [pair] = line.split(';');
    const i = pair.indexOf('=');
    const name = pair.slice(0, i).trim();
    if (i > 0 && /(^|-)at(\.\d)?$/.test(name)) set[name] = pair.slice(i + 1).trim();
  }
  return set;
}

// refreshAtOnce makes every tab POST <agent>/refresh at the same moment, as
// the SPA's client module does (examples/spa/oauth-agent-client.js: the
// CSRF header it holds, credentials included): each tab imports the
// module, arms a refresh on a BroadcastChannel, and one message fires them
// all. It returns, per tab, the client's outcome ("ok" or the error), the
// answer's status, the refresh cookie the request carried and the
// access-token cookies the answer set.
async function refreshAtOnce(tabs) {
  const channel = `spa-flow-refresh-${Math.random()}`;
  for (const tab of tabs) {
    await tab.evaluate(async ({ channel, csrf }) => {
      const { OAuthAgentClient } = await import(new URL('oauth-agent-client.js', location.href).href);
      const config = await (await fetch('config.json')).json();
      const client = new OAuthAgentClient({ agentBaseUrl: config.agentBaseUrl, cookieNamePrefix: config.cookieNamePrefix });
      client.csrfToken = csrf;
      const ch = new BroadcastChannel(channel);
      window.spaFlowRefresh = new Promise((resolve) => {
        ch.onmessage = () => {
          ch.close();
          client.refresh().then(() => resolve('ok'), (e) => resolve(`${e.name}: ${e.status} ${e.code}`));
        };
      });
    }, { channel, csrf: csrfTokens.get(tab) });
  }
  const answers = tabs.map((tab) => tab.waitForResponse((r) => r.url().endsWith('/refresh') && r.request().method() === 'POST'));
  await tabs[0].evaluate((channel) => { const ch = new BroadcastChannel(channel); ch.postMessage('go'); ch.close(); }, channel);
  const outcomes = await Promise.all(tabs.map((tab) => tab.evaluate(() => window.spaFlowRefresh)));
  return Promise.all(tabs.map(async (tab, i) => {
    const r = await answers[i];
    return {
      outcome: outcomes[i], status: r.status(),
      sentAuth: cookieIn(await r.request().headerValue('cookie'), isAuth),
      setAT: await setAT(r),
    };
  }));
}

// callAPI clicks the SPA's "call API" in tab and returns the access-token
// cookie the API request carried; it fails unless the API answered with the
// user's subject without the SPA refreshing first.
async function callAPI(tab) {
  const calls = Number((await tab.getAttribute('#api', 'data-calls')) ?? 0);
  const refreshed = await tab.getAttribute('#status', 'data-refreshed');
  const request = tab.waitForRequest((r) => r.url().endsWith('/api/hello'));
  await tab.click('#call-api');
  await tab.waitForSelector(`#api[data-calls="${calls + 1}"]`);
  check((await text('#api', tab)).includes(`"subject": "${subject}"`), `API answer: ${await text('#api', tab)}`);
  check(await tab.getAttribute('#status', 'data-refreshed') === refreshed, 'the SPA had to refresh before the API answered');
  return cookieIn(await (await request).headerValue('cookie'), isAT);
}

// refreshes returns the agent's oauth_agent_refreshes_total by result, from
// METRICS_URL (agent/metrics.go), or null without one.
async function refreshes() {
  if (!metricsURL) return null;
  const response = await fetch(`${metricsURL}/metrics`);
  check(response.ok, `GET ${metricsURL}/metrics: ${response.status}`);
  const counts = { all: 0 };
  for (const m of (await response.text()).matchAll(/^oauth_agent_refreshes_total\{[^}]*result="([^"]+)"[^}]*\} (\d+)$/gm)) {
    // Summed over the series of every application (app="..." with apps).
    counts[m[1]] = (counts[m[1]] ?? 0) + Number(m[2]);
    counts.all += Number(m[2]);
  }
  return counts;
}

// checkOneRefresh fails unless the agent counted exactly one refresh, and
// that one ok, since before (a refreshes() result; nothing to check
// without METRICS_URL).
async function checkOneRefresh(before) {
  if (!before) return;
  const after = await refreshes();
  check(after.all - before.all === 1 && (after.ok ?? 0) - (before.ok ?? 0) === 1,
    `the agent's oauth_agent_refreshes_total went from ${JSON.stringify(before)} to ${JSON.stringify(after)}, want one more ok`);
}

// checkSession fails unless tab shows the user logged in, in the session
// panel too, with no error, and no code or state in its address.
async function checkSession(tab = page) {
  await tab.waitForSelector('#status[data-state="logged-in"]');
  await tab.waitForFunction((s) => document.querySelector('#who').dataset.sub === s, subject, { timeout: 10000 })
    .catch(() => {});
  check(await tab.getAttribute('#who', 'data-sub') === subject, `the session panel shows ${await text('#who', tab)}`);
  check(await tab.isHidden('#error'), `the SPA shows an error: ${await text('#error', tab)}`);
  check(tab.url() === spaURL, 'the authorization response\'s parameters stayed in the address bar');
}

// What COOKIE_FILE gets: the sealed access-token cookies, by step.
const sealed = {};

const page = await newTab(context);
let callbackURL; // the login's callback (its code is spent): never printed

try {
  await step('the SPA loads logged out', async () => {
    await page.goto(spaURL);
    await page.waitForSelector('#status[data-state="logged-out"]');
  });

  await step(`log in as ${username} through ${idp}'s own pages`, async () => {
    const callback = page.waitForRequest((r) => r.isNavigationRequest() && r.url().startsWith(spaURL) && new URL(r.url()).searchParams.has('code'), { timeout: 60_000 });
    await page.click('#login');
    if (idp === 'devidp') {
      await page.click(`button[name="username"][value="${username}"]`);
    } else {
      // oidc-provider's development interactions: a login form (any login and
      // password), then a consent page, each a form with a hidden "prompt".
      await page.waitForSelector('form:has(input[name="prompt"][value="login"])');
      await page.fill('input[name="login"]', username);
      await page.fill('input[name="password"]', 'any-password');
      await page.click('button[type="submit"]');
      await page.waitForSelector('form:has(input[name="prompt"][value="consent"])');
      await page.click('button[type="submit"]'); // "Continue"
    }
    await page.waitForSelector('#status[data-state="logged-in"]');
    check(page.url() === spaURL, 'the code and state stayed in the URL');
    callbackURL = (await callback).url();
  });

  await step('the token cookies are HttpOnly, Secure, SameSite=Strict and invisible to scripts', async () => {
    const cookies = await apiCookies();
    const at = cookies.find((c) => /(^|-)at(\.0)?$/.test(c.name));
    check(at, `no access-token cookie among ${cookies.map((c) => c.name).join(', ')}`);
    for (const c of cookies) check(c.httpOnly && c.secure && c.sameSite === 'Strict', `cookie ${c.name} lacks an attribute`);
    const visible = await page.evaluate(() => document.cookie);
    check(!/example-/.test(visible), `document.cookie shows token-handler cookies: ${visible}`);
  });

  await step('user info and claims show the user', async () => {
    // The SPA shows it is logged in, then fetches both: wait for them (the
    // checks below say what was there if they never came).
    await page.waitForFunction((s) => ['#userinfo', '#claims'].every((q) => document.querySelector(q).textContent.includes(s)),
      subject, { timeout: 10000 }).catch(() => {});
    check((await text('#userinfo')).includes(subject), `user info: ${await text('#userinfo')}`);
    check((await text('#claims')).includes(subject), `claims: ${await text('#claims')}`);
  });

  await step('the session panel shows who is logged in, and no token', async () => {
    await checkSession();
    check(await page.isVisible('#panel'), 'the session panel is hidden');
    check(await text('#last-refresh') === 'none since this page loaded', `last refresh: ${await text('#last-refresh')}`);
    const shown = await page.evaluate(() => document.body.innerText);
    check(!/eyJ[\w-]{10,}/.test(shown), 'the page shows something shaped like a JWT');
    for (const c of await apiCookies()) check(!shown.includes(c.value), `the page shows the value of cookie ${c.name}`);
  });

  await step('the API answers with the user\'s subject', async () => {
    await page.click('#call-api');
    await page.waitForSelector('#api[data-calls="1"]');
    check((await text('#api')).includes(`"subject": "${subject}"`), `API answer: ${await text('#api')}`);
  });

  if (env('SCREENSHOT')) await page.screenshot({ path: env('SCREENSHOT'), fullPage: true });

  await step('a POST carries the CSRF header through the proxy', async () => {
    await page.click('#post-api');
    await page.waitForFunction(() => document.querySelector('#api').textContent.includes('"at"'));
  });

  await step('the login\'s callback URL loaded again while logged in: still logged in, no error', async () => {
    // The agent has no login in progress for it (its code is spent): the
    // SPA must not show that as an error while a session exists.
    const answers = [];
    const seen = async (r) => {
      if (!r.url().endsWith('/login/end')) return;
      const sent = JSON.parse(r.request().postData() || '{}').pageUrl ?? '';
      answers.push(`${new URL(sent).searchParams.has('code') ? 'callback' : 'page'} ${r.status()}`);
    };
    page.on('response', seen);
    try {
      await page.goto(callbackURL);
      await checkSession();
    } finally {
      page.off('response', seen);
    }
    check(answers[0]?.startsWith('callback'), `the SPA did not send the callback URL to the agent: ${answers.join(', ')}`);
    console.log(`     POST /login/end answers: ${answers.join(', ')}`);
  });

  if (refreshGrace > 0) {
    await step('two tabs of the session refresh at once: both get 204 and the same new access-token cookie, and call the API', async () => {
      const tab = await openSPA(context);
      let before, answers;
      for (let attempt = 1; ; attempt++) {
        before = (await apiCookies()).find((c) => isAT(c.name))?.value;
        answers = await refreshAtOnce([page, tab]);
        for (const [i, a] of answers.entries()) {
          check(a.outcome === 'ok' && a.status === 204, `tab ${i + 1}'s refresh: ${a.outcome}, status ${a.status}`);
          check(Object.keys(a.setAT).length > 0, `tab ${i + 1}'s refresh set no access-token cookie`);
        }
        // Both carried the one refresh token: otherwise the second refresh
        // ran after the first had rotated it (a busy machine can deliver the
        // second tab's message that late), and this attempt tested nothing.
        if (answers[0].sentAuth && answers[0].sentAuth === answers[1].sentAuth) break;
        check(attempt < 3, 'the two refreshes did not carry the same refresh-token cookie (3 attempts)');
        console.log(`     attempt ${attempt}: the second refresh came after the first's rotation; again`);
      }
      const now = (await apiCookies()).find((c) => isAT(c.name))?.value;
      check(before && now && before !== now, 'the access-token cookie did not change');
      const sent = [await callAPI(page), await callAPI(tab)];
      check(sent.every((v) => v === now), 'the two tabs did not send the same new access-token cookie to the API');
      sealed.before = { [(await apiCookies()).find((c) => isAT(c.name)).name]: before };
      [sealed.tab1, sealed.tab2] = answers.map((a) => a.setAT);
      await tab.close();
    });

    await step('a second tab of the session replaying the just-rotated refresh cookie within the grace gets 204 and the same access token', async () => {
      // The other tab: a browser context with the session's cookies as they
      // were before the refresh, its SPA loaded before it so that the
      // replay follows the rotation within milliseconds.
      const saved = await apiCookies();
      const other = await browser.newContext();
      try {
        await other.addCookies(saved);
        const old = await openSPA(other);
        const [rotated] = await refreshAtOnce([page]);
        const rotatedAt = Date.now();
        const [replayed] = await refreshAtOnce([old]);
        const elapsed = Date.now() - rotatedAt;
        check(rotated.outcome === 'ok' && rotated.status === 204, `the refresh: ${rotated.outcome}, status ${rotated.status}`);
        check(replayed.outcome === 'ok' && replayed.status === 204, `the replay ${elapsed} ms after the rotation: ${replayed.outcome}, status ${replayed.status}`);
        check(elapsed < refreshGrace, `the replay came ${elapsed} ms after the rotation, not within the ${refreshGrace} ms grace`);
        check(replayed.sentAuth && replayed.sentAuth === saved.find((c) => isAuth(c.name))?.value, 'the replay did not carry the saved refresh-token cookie');
        check(rotated.sentAuth === replayed.sentAuth, 'the refresh and the replay carried different refresh-token cookies');
        const now = (await apiCookies()).find((c) => isAuth(c.name))?.value;
        check(now && now !== replayed.sentAuth, 'the refresh did not rotate the refresh-token cookie');
        check(Object.keys(rotated.setAT).length > 0 && Object.keys(replayed.setAT).length > 0, 'a refresh set no access-token cookie');
        check(await callAPI(old), 'the replaying tab sent no access-token cookie to the API');
        sealed.rotated = rotated.setAT;
        sealed.replayed = replayed.setAT;
      } finally {
        await other.close();
      }
    });

    if (env('COOKIE_FILE')) writeFileSync(env('COOKIE_FILE'), JSON.stringify(sealed), { mode: 0o600 });
  }

  if (accessTTL > 0) {
    await step('a reload after the access token expired: still logged in, after one refresh', async () => {
      const before = await refreshes();
      await page.waitForTimeout(accessTTL + 1500); // the token's own lifetime: nothing to poll for
      const answers = [];
      const seen = (r) => {
        if (/\/(userInfo|claims|refresh)$/.test(r.url())) answers.push(`${new URL(r.url()).pathname.split('/').pop()} ${r.status()}`);
      };
      page.on('response', seen);
      try {
        await page.reload();
        await checkSession();
      } finally {
        page.off('response', seen);
      }
      check(answers.includes('userInfo 401'), `the access token had not expired at the reload: ${answers.join(', ')}`);
      check(answers.filter((a) => a.startsWith('refresh')).join() === 'refresh 204', `the SPA's refreshes: ${answers.join(', ')}`);
      check(await page.getAttribute('#status', 'data-refreshed') === '1', 'the SPA does not count one refresh');
      check((await text('#userinfo')).includes(subject), `user info: ${await text('#userinfo')}`);
      await checkOneRefresh(before);
    });

    await step('after the access token expires the SPA refreshes and retries', async () => {
      const before = (await apiCookies()).find((c) => /(^|-)at(\.0)?$/.test(c.name))?.value;
      const calls = Number((await page.getAttribute('#api', 'data-calls')) ?? 0);
      await page.waitForTimeout(accessTTL + 1500); // the token's own lifetime: nothing to poll for
      await page.click('#call-api');
      await page.waitForSelector(`#api[data-calls="${calls + 1}"]`);
      check(Number(await page.getAttribute('#status', 'data-refreshed')) >= 1, 'the SPA did not refresh');
      check((await text('#api')).includes(subject), `API answer after refresh: ${await text('#api')}`);
      const after = (await apiCookies()).find((c) => /(^|-)at(\.0)?$/.test(c.name))?.value;
      check(before && after && before !== after, 'the access-token cookie did not change');
    });
  }

  await step('the Refresh button refreshes once and the panel says when', async () => {
    const before = await refreshes();
    const count = Number(await page.getAttribute('#status', 'data-refreshed') ?? 0);
    const answer = page.waitForResponse((r) => r.url().endsWith('/refresh'));
    await page.click('#refresh');
    await page.waitForSelector(`#status[data-refreshed="${count + 1}"]`);
    check((await answer).status() === 204, `POST /refresh: ${(await answer).status()}`);
    check((await text('#last-refresh')).includes(`(${count + 1} since this page loaded)`), `last refresh: ${await text('#last-refresh')}`);
    check(await page.isHidden('#error'), `the SPA shows an error: ${await text('#error')}`);
    await checkOneRefresh(before);
  });

  if (env('SCREENSHOT_REFRESHED')) await page.screenshot({ path: env('SCREENSHOT_REFRESHED'), fullPage: true });

  await step('logout clears every token-handler cookie and ends the session at the provider', async () => {
    await page.click('#logout');
    await page.waitForURL((u) => !u.href.startsWith(spaURL));
    const left = (await apiCookies()).map((c) => c.name);
    check(left.length === 0, `cookies left after logout: ${left.join(', ')}`);
    if (idp === 'oidc-provider') {
      // Its end-session page asks; "Yes, sign me out" ends the provider's
      // session and sends the browser back to the post-logout redirect URI.
      await page.click('button[name="logout"][value="yes"]');
      await page.waitForURL((u) => u.href.startsWith(spaURL));
    } else {
      // The development provider links back, with the logout's state.
      await page.click('a[href^="http://www.example.localhost"]');
      await page.waitForURL((u) => u.href.startsWith(spaURL));
    }
    await page.waitForSelector('#status[data-state="logged-out"]');
    check(await page.isHidden('#error'), `the SPA shows an error after logout: ${await text('#error')}`);
    check(page.url() === spaURL, 'the state stayed in the address bar after logout');
  });

  await step('back in the SPA, the user is logged out', async () => {
    await page.goto(spaURL);
    await page.waitForSelector('#status[data-state="logged-out"]');
  });

  await step('logging in again starts at the provider\'s login page', async () => {
    await page.click('#login');
    await page.waitForSelector(idp === 'devidp' ? 'button[name="username"]' : 'form:has(input[name="prompt"][value="login"])');
  });

  if (idp === 'devidp') {
    await step('cancelling the login at the provider: a friendly access_denied message and a clean address bar', async () => {
      await page.click('button[name="cancel"]');
      await page.waitForURL((u) => u.href.startsWith(spaURL));
      await page.waitForSelector('#error[data-code="access_denied"]');
      check((await text('#error')).startsWith('The sign-in was cancelled'), `the SPA shows: ${await text('#error')}`);
      check(await page.getAttribute('#status', 'data-state') === 'logged-out', 'the SPA is not logged out');
      check(page.url() === spaURL, 'the error and state stayed in the address bar');
    });
  }
} catch {
  // the failing step has printed why
} finally {
  await browser.close();
  console.log(`${counts.passed} passed, ${counts.failed} failed`);
  process.exitCode = counts.failed ? 1 : 0;
}
