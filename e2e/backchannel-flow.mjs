// backchannel-flow.mjs drives the demo SPA in headless Debian Chromium to
// show OpenID Connect Back-Channel Logout end to end (issue #13): alice logs
// in from two browsers (two sessions at oidc-provider) and bob from a
// third; alice's first browser ends its session on the provider's own
// logout page; that browser's SPA is logged out on its next API call, while
// alice's second browser and bob go on; then an administrator's "log out
// everywhere" (a logout token naming only sub=alice) logs out alice's second
// browser too. The Go test (e2e/backchannel_test.go) runs it behind NGINX
// in both of the proxy's modes.
//
// Environment:
//   SPA_URL   the SPA, e.g. http://www.example.localhost:3000/
//   OP        oidc-provider's issuer URL (integration/op/server.mjs)
//   BOUND_MS  how long after the logout the SPA may still pass (default 1000)
//
// Exit status 0 when every step passed; the last line says how many did.
import { check, counts, launch, step } from './flow.mjs';

const spaURL = process.env.SPA_URL;
const op = process.env.OP;
const bound = Number(process.env.BOUND_MS ?? '1000');
if (!spaURL || !op) throw new Error('SPA_URL and OP are required');

const browser = await launch();

// login opens the SPA in a browser of its own (its own cookies at the SPA's
// API host and at the provider) and logs in as user on the provider's pages.
async function login(user) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  await page.goto(spaURL);
  await page.waitForSelector('#status[data-state="logged-out"]');
  await page.click('#login');
  await page.waitForSelector('form:has(input[name="prompt"][value="login"])');
  await page.fill('input[name="login"]', user);
  await page.fill('input[name="password"]', 'any-password');
  await page.click('button[type="submit"]');
  await page.waitForSelector('form:has(input[name="prompt"][value="consent"])');
  await page.click('button[type="submit"]');
  await page.waitForSelector('#status[data-state="logged-in"]');
  return { user, context, page };
}

// callAPI clicks "call API" and reports whether the API answered for the
// user (true) or the SPA showed itself logged out (false).
async function callAPI(b) {
  const calls = Number((await b.page.getAttribute('#api', 'data-calls')) ?? 0);
  await b.page.click('#call-api');
  await b.page.waitForFunction((n) => document.querySelector('#status').dataset.state === 'logged-out'
    || Number(document.querySelector('#api').dataset.calls) > n, calls);
  if (await b.page.getAttribute('#status', 'data-state') === 'logged-out') return false;
  const answer = (await b.page.textContent('#api')) ?? '';
  check(answer.includes(`"subject": "${b.user}"`), `${b.user}'s API answer: ${answer}`);
  return true;
}

// loggedOutWithin calls the API every 50 ms from b until the SPA shows
// itself logged out, and fails unless that happened within bound of since.
async function loggedOutWithin(b, since) {
  while (await callAPI(b)) {
    check(Date.now() - since <= bound, `${b.user}'s SPA still calls the API ${Date.now() - since} ms after the logout`);
    await b.page.waitForTimeout(50);
  }
  console.log(`     ${b.user}'s SPA showed logged out ${Date.now() - since} ms after the logout`);
}

try {
  let alice1, alice2, bob;
  await step('alice logs in from two browsers, bob from a third', async () => {
    alice1 = await login('alice');
    alice2 = await login('alice');
    bob = await login('bob');
    for (const b of [alice1, alice2, bob]) check(await callAPI(b), `${b.user} cannot call the API`);
  });

  await step('alice\'s first browser ends its session on the provider\'s logout page', async () => {
    const tab = await alice1.context.newPage();
    await tab.goto(`${op}/session/end?client_id=spa-client`);
    await tab.click('button[name="logout"][value="yes"]');
    await tab.waitForURL((u) => u.pathname.startsWith('/session/end/success'));
    await tab.close();
    await loggedOutWithin(alice1, Date.now());
  });

  await step('alice\'s second browser and bob go on', async () => {
    check(await callAPI(alice2), 'alice\'s second browser was logged out');
    check(await callAPI(bob), 'bob was logged out');
  });

  await step('"log out everywhere" (a logout token with sub=alice only) ends alice\'s second browser, not bob', async () => {
    const r = await fetch(`${op}/admin/logout-everywhere`, { method: 'POST', body: new URLSearchParams({ sub: 'alice' }) });
    check(r.status === 204, `admin logout: ${r.status}`);
    await loggedOutWithin(alice2, Date.now());
    check(await callAPI(bob), 'bob was logged out');
  });
} finally {
  await browser.close();
  console.log(`${counts.passed} steps passed`);
}
