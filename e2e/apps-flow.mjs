// apps-flow.mjs drives two applications of one OAuth Agent and one OAuth
// Proxy (issue #15) in one headless Chromium browser context, as one user
// with both SPAs open would: log in to the shop on oidc-provider's pages and
// to the admin console on the development IdP's, call each SPA's API and
// refresh each session (each refresh counted for its own application alone),
// try each application's cookies from the other SPA's origin (refused: the
// SPA's Content-Security-Policy stops the call, and from a page without it
// the browser sends them but the agent and the proxy refuse the origin and
// the page reads nothing), log out of the admin console and see the shop stay logged
// in while the admin API answers 401. The Go test (e2e/apps_test.go) runs it
// behind NGINX in both of the proxy's modes.
//
// Environment:
//   SHOP_URL, ADMIN_URL    the two SPAs, e.g. http://www.shop.example.localhost:3000/
//   SHOP_USER, ADMIN_USER  who logs in: any login at oidc-provider (the shop's),
//                          a demo user of the development IdP (the admin console's)
//   METRICS_URL            the agent's metrics listener, e.g. http://127.0.0.1:9100
//
// Exit status 0 when every step passed; the last line says how many did.
import { check, counts, launch, step } from './flow.mjs';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is required`);
  return v;
};
const metricsURL = env('METRICS_URL').replace(/\/$/, '');
const shop = { name: 'shop', url: env('SHOP_URL'), user: env('SHOP_USER'), idp: 'oidc-provider' };
const admin = { name: 'admin', url: env('ADMIN_URL'), user: env('ADMIN_USER'), idp: 'devidp' };

// barePage is a page the Go test serves beside each SPA, on its origin,
// without the SPA's Content-Security-Policy.
const barePage = '/no-csp.html';

const browser = await launch();
const context = await browser.newContext(); // one browser: both applications' cookies side by side

const text = async (app, selector) => (await app.page.textContent(selector)) ?? '';

// cookies returns the cookies the browser keeps for app's API host (the
// agent's and the proxy's, host-only), and those named with its prefix
// anywhere.
async function cookies(app) {
  return (await context.cookies()).filter((c) => c.domain === app.apiHost || c.name.startsWith(`${app.config.cookieNamePrefix}-`));
}

// open loads app's SPA in a new tab of the one context, waits until it
// shows itself logged out and reads its config.json (where its agent and
// API are, its cookie prefix).
async function open(app) {
  app.page = await context.newPage();
  app.page.setDefaultTimeout(20_000);
  app.page.on('console', (m) => { if (m.type() === 'error') console.log(`     ${app.name} console: ${m.text()}`); });
  await app.page.goto(app.url);
  await app.page.waitForSelector('#status[data-state="logged-out"]');
  app.config = await app.page.evaluate(async () => (await fetch('config.json')).json());
  app.apiHost = new URL(app.config.apiBaseUrl).hostname;
  check(new URL(app.config.agentBaseUrl).hostname === app.apiHost, `${app.name}'s agent and API are on different hosts`);
}

// login logs app's user in on its provider's own pages.
async function login(app) {
  const { page } = app;
  await page.click('#login');
  if (app.idp === 'devidp') {
    await page.click(`button[name="username"][value="${app.user}"]`);
  } else {
    await page.waitForSelector('form:has(input[name="prompt"][value="login"])');
    await page.fill('input[name="login"]', app.user);
    await page.fill('input[name="password"]', 'any-password');
    await page.click('button[type="submit"]');
    await page.waitForSelector('form:has(input[name="prompt"][value="consent"])');
    await page.click('button[type="submit"]'); // "Continue"
  }
  await checkSession(app);
}

// checkSession fails unless app's page shows its own user logged in.
async function checkSession(app) {
  const { page } = app;
  await page.waitForSelector('#status[data-state="logged-in"]');
  await page.waitForFunction(() => document.querySelector('#who').dataset.sub, null, { timeout: 10_000 }).catch(() => {});
  check(await page.getAttribute('#who', 'data-sub') === app.user, `${app.name} shows ${await text(app, '#who')}`);
  check(await page.isHidden('#error'), `${app.name} shows an error: ${await text(app, '#error')}`);
  check(page.url() === app.url, `${app.name}'s address is ${page.url()}`);
}

// callAPI clicks app's "call API" and fails unless its own API answered
// for its user, without a refresh.
async function callAPI(app) {
  const { page } = app;
  await page.bringToFront(); // a background tab's timers are throttled
  const calls = Number((await page.getAttribute('#api', 'data-calls')) ?? 0);
  const refreshed = await page.getAttribute('#status', 'data-refreshed');
  const request = page.waitForRequest((r) => r.url().endsWith('/api/hello'));
  await page.click('#call-api');
  await page.waitForSelector(`#api[data-calls="${calls + 1}"]`);
  check((await text(app, '#api')).includes(`"subject": "${app.user}"`), `${app.name}'s API answer: ${await text(app, '#api')}`);
  check(new URL((await request).url()).hostname === app.apiHost, `${app.name} called ${(await request).url()}`);
  check(await page.getAttribute('#status', 'data-refreshed') === refreshed, `${app.name} had to refresh before its API answered`);
}

// refreshes returns oauth_agent_refreshes_total{result="ok"} by application.
async function refreshes() {
  const response = await fetch(`${metricsURL}/metrics`);
  check(response.ok, `GET ${metricsURL}/metrics: ${response.status}`);
  const ok = { shop: 0, admin: 0 };
  for (const m of (await response.text()).matchAll(/^oauth_agent_refreshes_total\{app="([^"]+)",result="ok"\} (\d+)$/gm)) ok[m[1]] = Number(m[2]);
  return ok;
}

// refresh clicks app's Refresh button and fails unless the agent answered
// 204 and counted one refresh, of app alone.
async function refresh(app) {
  const { page } = app;
  await page.bringToFront();
  const before = await refreshes();
  const count = Number(await page.getAttribute('#status', 'data-refreshed') ?? 0);
  const answer = page.waitForResponse((r) => r.url().endsWith('/refresh'));
  await page.click('#refresh');
  await page.waitForSelector(`#status[data-refreshed="${count + 1}"]`);
  check((await answer).status() === 204, `${app.name}'s POST /refresh: ${(await answer).status()}`);
  check(new URL((await answer).url()).hostname === app.apiHost, `${app.name} refreshed at ${(await answer).url()}`);
  check(await page.isHidden('#error'), `${app.name} shows an error: ${await text(app, '#error')}`);
  const after = await refreshes();
  for (const name of ['shop', 'admin']) {
    const want = before[name] + (name === app.name ? 1 : 0);
    check(after[name] === want, `oauth_agent_refreshes_total{app="${name}",result="ok"} went from ${before[name]} to ${after[name]}, want ${want}`);
  }
}

// fetchFrom makes page fetch url with credentials (init adds to that) and
// returns what the page got: "status N" when it could read an answer,
// "refused <error>" when the browser refused it.
function fetchFrom(page, url, init = {}) {
  return page.evaluate(async ({ url, init }) => {
    try {
      const r = await fetch(url, { ...init, credentials: 'include' });
      return `status ${r.status}`;
    } catch (e) {
      return `refused ${e.name}`;
    }
  }, { url, init });
}

// checkRefused fails unless from's origin can use none of to's endpoints
// with to's cookies. The SPA's own Content-Security-Policy (connect-src:
// its agent and API) already keeps its page from calling another
// application; a page of the same origin without that policy (another page
// of the site, an older build) gets further: the browser sends to's
// cookies with its calls (the two SPAs are one site), and only the agent's
// and the proxy's refusal of the origin keeps them from working: to's
// API, its agent's user info, and a refresh (a simple POST, which a
// browser sends without a preflight) each answer nothing the page can
// read, and to's agent refreshes nothing.
async function checkRefused(from, to) {
  const before = await refreshes();
  const blocked = await fetchFrom(from.page, `${to.config.apiBaseUrl}/hello`);
  check(blocked === 'refused TypeError', `${from.name}'s SPA read ${to.name}'s API: ${blocked}`);
  const page = await context.newPage();
  try {
    page.setDefaultTimeout(20_000);
    // Which cookies each request carried, as Chromium reports them: a
    // request the page may not read fails before Playwright learns its
    // full headers, but the DevTools protocol still says what was sent.
    const cdp = await context.newCDPSession(page);
    const urls = new Map();
    const carried = new Map();
    cdp.on('Network.requestWillBeSent', (e) => urls.set(e.requestId, e.request.url));
    cdp.on('Network.requestWillBeSentExtraInfo', (e) => carried.set(e.requestId,
      e.associatedCookies.filter((c) => c.blockedReasons.length === 0).map((c) => c.cookie.name)));
    await cdp.send('Network.enable');
    await page.goto(new URL(barePage, from.url).href);
    for (const [what, url, init] of [
      ['API', `${to.config.apiBaseUrl}/hello`, {}],
      ['user info', `${to.config.agentBaseUrl}/userInfo`, {}],
      ['refresh', `${to.config.agentBaseUrl}/refresh`, { method: 'POST', body: '{}', headers: { 'content-type': 'text/plain' } }],
    ]) {
      const outcome = await fetchFrom(page, url, init);
      check(outcome === 'refused TypeError', `a page of ${from.name}'s origin read ${to.name}'s ${what}: ${outcome}`);
      const sent = () => [...urls].filter(([, u]) => u === url).flatMap(([id]) => carried.get(id) ?? []);
      for (const deadline = Date.now() + 5000; !sent().length && Date.now() < deadline;) await page.waitForTimeout(20);
      check(sent().includes(`${to.config.cookieNamePrefix}-at`),
        `the call to ${to.name}'s ${what} from ${from.name}'s origin carried ${sent().join(', ') || 'no cookie'}, not ${to.name}'s: its refusal tested nothing`);
      urls.clear();
    }
    await cdp.detach();
  } finally {
    await page.close();
  }
  const after = await refreshes();
  check(after[to.name] === before[to.name], `${from.name}'s origin made ${to.name}'s agent refresh: ${before[to.name]} -> ${after[to.name]}`);
}

// status fetches url from app's page with credentials and returns the
// status the page read.
async function status(app, url) {
  return app.page.evaluate(async (url) => (await fetch(url, { credentials: 'include' })).status, url);
}

const names = (list) => list.map((c) => c.name).sort().join(', ');

try {
  await step('shop: the SPA loads logged out', () => open(shop));
  await step(`shop: log in as ${shop.user} on oidc-provider's pages`, () => login(shop));
  await step('admin: the SPA loads logged out in the same browser', () => open(admin));
  await step(`admin: log in as ${admin.user} on the development IdP's page`, () => login(admin));

  await step('each application\'s cookies are host-only on its own API host, HttpOnly and SameSite=Strict', async () => {
    for (const [app, other] of [[shop, admin], [admin, shop]]) {
      const own = await cookies(app);
      check(own.some((c) => /-at(\.0)?$/.test(c.name)), `no access-token cookie of ${app.name} among ${names(own)}`);
      for (const c of own) {
        check(c.domain === app.apiHost, `${app.name}'s cookie ${c.name} is for ${c.domain}`);
        check(c.name.startsWith(`${app.config.cookieNamePrefix}-`), `${app.name}'s host has cookie ${c.name}`);
        check(!c.name.startsWith(`${other.config.cookieNamePrefix}-`), `${app.name}'s host has ${other.name}'s cookie ${c.name}`);
        check(c.httpOnly && c.sameSite === 'Strict', `${app.name}'s cookie ${c.name} lacks an attribute`);
      }
    }
  });

  await step('both SPAs show their own user; the shop, reloaded, is still logged in', async () => {
    await admin.page.bringToFront();
    await checkSession(admin);
    await shop.page.bringToFront();
    await shop.page.reload();
    await checkSession(shop);
  });

  await step(`shop: the API answers for ${shop.user}`, () => callAPI(shop));
  await step(`admin: the API answers for ${admin.user}`, () => callAPI(admin));

  await step('shop: the Refresh button refreshes the shop\'s session alone, and the API still answers', async () => {
    await refresh(shop);
    await callAPI(shop);
  });
  await step('admin: the Refresh button refreshes the admin session alone, and the API still answers', async () => {
    await refresh(admin);
    await callAPI(admin);
  });

  await step('the admin origin cannot use the shop\'s cookies: its API, user info and refresh refuse it', () => checkRefused(admin, shop));
  await step('the shop origin cannot use the admin cookies: its API, user info and refresh refuse it', () => checkRefused(shop, admin));

  await step('admin: logout clears the admin cookies alone and ends its session at the IdP', async () => {
    const shopBefore = await cookies(shop);
    const { page } = admin;
    await page.bringToFront();
    await page.click('#logout');
    await page.waitForURL((u) => !u.href.startsWith(admin.url));
    const left = await cookies(admin);
    check(left.length === 0, `admin cookies left after logout: ${names(left)}`);
    const shopAfter = await cookies(shop);
    check(names(shopAfter) === names(shopBefore), `the shop's cookies went from ${names(shopBefore)} to ${names(shopAfter)}`);
    check(shopAfter.every((c) => shopBefore.some((b) => b.name === c.name && b.value === c.value)), 'the admin logout changed a shop cookie');
    await page.click(`a[href^="${new URL(admin.url).origin}"]`); // the development IdP links back
    await page.waitForURL((u) => u.href.startsWith(admin.url));
    await page.waitForSelector('#status[data-state="logged-out"]');
  });

  await step(`shop: still logged in after the admin logout: a reload shows ${shop.user} and the API answers`, async () => {
    await shop.page.bringToFront();
    await shop.page.reload();
    await checkSession(shop);
    await callAPI(shop);
    const s = await status(shop, `${shop.config.apiBaseUrl}/hello`);
    check(s === 200, `the shop's API answered the shop page ${s}`);
  });

  await step('admin: the API and the agent answer the logged-out SPA 401', async () => {
    for (const [what, url] of [['API', `${admin.config.apiBaseUrl}/hello`], ['user info', `${admin.config.agentBaseUrl}/userInfo`]]) {
      const s = await status(admin, url);
      check(s === 401, `the admin ${what} answered ${s}, want 401`);
    }
  });
} catch {
  // the failing step has printed why
} finally {
  await browser.close();
  console.log(`${counts.passed} passed, ${counts.failed} failed`);
  process.exitCode = counts.failed ? 1 : 0;
}
