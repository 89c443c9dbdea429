// spa-flow.mjs drives the demo SPA in headless Debian Chromium, as a user
// would: log in through the Authorization Server's own pages, see user info
// and claims, call the API, let the access token expire and see the SPA
// refresh and retry, POST with the CSRF header, log out and see the cookies
// gone. With REFRESH_GRACE_MS it also refreshes from two tabs of the session
// at once and replays a just-rotated refresh cookie from a second browser
// context. The Go end-to-end tests run it against each deployment.
//
// Environment:
//   SPA_URL         the SPA, e.g. http://www.example.localhost:3000/
//   IDP             "devidp" (the development OpenID Provider) or "oidc-provider"
//   USERNAME        the user to log in as (default alice)
//   EXPECT_SUBJECT  the subject the API must report (default USERNAME)
//   ACCESS_TTL_MS   access-token lifetime; the flow waits it out to test refresh (0 skips that step)
//   SCREENSHOT      optional path of a PNG of the logged-in page
//   REFRESH_GRACE_MS the agent's refresh.grace_period; above 0 the two-tab steps run
//   COOKIE_FILE     optional path: the two-tab steps write the sealed access-token
//                   cookies each refresh set there (JSON, mode 0600), for the Go
//                   test to open with the key and compare; they are never printed
//
// Exit status 0 when every step passed; the last line says how many did.
import { writeFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const env = (name, fallback) => process.env[name] ?? fallback;
const spaURL = env('SPA_URL');
const idp = env('IDP', 'devidp');
const username = env('USERNAME', 'alice');
const subject = env('EXPECT_SUBJECT', username);
const accessTTL = Number(env('ACCESS_TTL_MS', '0'));
const refreshGrace = Number(env('REFRESH_GRACE_MS', '0'));
if (!spaURL) throw new Error('SPA_URL is required');

let passed = 0;
let failed = 0;
async function step(name, fn) {
  const started = Date.now();
  try {
    await fn();
    passed++;
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.message}`);
    throw e;
  }
}
function check(condition, message) {
  if (!condition) throw new Error(message);
}

const browser = await chromium.launch({
  executablePath: env('CHROMIUM', '/usr/bin/chromium'),
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', '--disable-quic'],
});
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

// What COOKIE_FILE gets: the sealed access-token cookies, by step.
const sealed = {};

const page = await newTab(context);

try {
  await step('the SPA loads logged out', async () => {
    await page.goto(spaURL);
    await page.waitForSelector('#status[data-state="logged-out"]');
  });

  await step(`log in as ${username} through ${idp}'s own pages`, async () => {
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
    check(page.url() === spaURL, `the code and state stayed in the URL: ${page.url()}`);
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

  await step('the API answers with the user\'s subject', async () => {
    await page.click('#call-api');
    await page.waitForSelector('#api[data-calls="1"]');
    check((await text('#api')).includes(`"subject": "${subject}"`), `API answer: ${await text('#api')}`);
  });

  await step('a POST carries the CSRF header through the proxy', async () => {
    await page.click('#post-api');
    await page.waitForFunction(() => document.querySelector('#api').textContent.includes('"at"'));
  });

  if (refreshGrace > 0) {
    await step('two tabs of the session refresh at once: both get 204 and the same new access-token cookie, and call the API', async () => {
      const tab = await openSPA(context);
      const before = (await apiCookies()).find((c) => isAT(c.name))?.value;
      const answers = await refreshAtOnce([page, tab]);
      for (const [i, a] of answers.entries()) {
        check(a.outcome === 'ok' && a.status === 204, `tab ${i + 1}'s refresh: ${a.outcome}, status ${a.status}`);
        check(Object.keys(a.setAT).length > 0, `tab ${i + 1}'s refresh set no access-token cookie`);
      }
      // Both carried the one refresh token: otherwise the second refresh ran
      // after the first had rotated it, and this step tested nothing.
      check(answers[0].sentAuth && answers[0].sentAuth === answers[1].sentAuth, 'the two refreshes did not carry the same refresh-token cookie');
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

  if (env('SCREENSHOT')) await page.screenshot({ path: env('SCREENSHOT'), fullPage: true });

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
    }
  });

  await step('back in the SPA, the user is logged out', async () => {
    await page.goto(spaURL);
    await page.waitForSelector('#status[data-state="logged-out"]');
  });

  await step('logging in again starts at the provider\'s login page', async () => {
    await page.click('#login');
    await page.waitForSelector(idp === 'devidp' ? 'button[name="username"]' : 'form:has(input[name="prompt"][value="login"])');
  });
} catch {
  // the failing step has printed why
} finally {
  await browser.close();
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}
