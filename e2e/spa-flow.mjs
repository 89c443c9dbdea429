// spa-flow.mjs drives the demo SPA in headless Debian Chromium, as a user
// would: log in through the Authorization Server's own pages, see user info
// and claims, call the API, let the access token expire and see the SPA
// refresh and retry, POST with the CSRF header, log out and see the cookies
// gone. The Go end-to-end tests run it against each deployment.
//
// Environment:
//   SPA_URL         the SPA, e.g. http://www.example.localhost:3000/
//   IDP             "devidp" (the development OpenID Provider) or "oidc-provider"
//   USERNAME        the user to log in as (default alice)
//   EXPECT_SUBJECT  the subject the API must report (default USERNAME)
//   ACCESS_TTL_MS   access-token lifetime; the flow waits it out to test refresh (0 skips that step)
//   SCREENSHOT      optional path of a PNG of the logged-in page
//
// Exit status 0 when every step passed; the last line says how many did.
import { chromium } from 'playwright-core';

const env = (name, fallback) => process.env[name] ?? fallback;
const spaURL = env('SPA_URL');
const idp = env('IDP', 'devidp');
const username = env('USERNAME', 'alice');
const subject = env('EXPECT_SUBJECT', username);
const accessTTL = Number(env('ACCESS_TTL_MS', '0'));
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
const page = await context.newPage();
page.setDefaultTimeout(20_000);
page.on('console', (m) => { if (m.type() === 'error') console.log(`     browser console: ${m.text()}`); });

const apiCookies = async () => (await context.cookies()).filter((c) => c.domain.includes('api.example.localhost') || c.name.startsWith('example-') || c.name.startsWith('__Host-example-'));
const text = async (selector) => (await page.textContent(selector)) ?? '';

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

  if (accessTTL > 0) {
    await step('after the access token expires the SPA refreshes and retries', async () => {
      const before = (await apiCookies()).find((c) => /(^|-)at(\.0)?$/.test(c.name))?.value;
      await page.waitForTimeout(accessTTL + 1500); // the token's own lifetime: nothing to poll for
      await page.click('#call-api');
      await page.waitForSelector('#api[data-calls="2"]');
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
