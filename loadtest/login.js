// Login plus refresh: RATE (default 5) whole sign-ins per second for
// DURATION (default 30s) — login/start, the development IdP's login form,
// login/end, an API call, refresh, an API call with the new token — through
// NGINX to the OAuth Agent. Needs examples/devidp as the Authorization
// Server (its login page is what the script fills in).
import { RATE, DURATION, LOGIN_API_GET, P99_MS } from './lib/config.js';
import { loginAndRefresh } from './lib/login.js';

const rate = RATE || 5;

export const options = {
  scenarios: {
    login: { executor: 'constant-arrival-rate', rate, timeUnit: '1s', duration: DURATION || '30s', preAllocatedVUs: rate * 2, maxVUs: rate * 10 },
  },
  thresholds: {
    http_req_failed: ['rate==0'],
    checks: ['rate==1'],
    dropped_iterations: ['count==0'],
    // Each step signs (RS256) or verifies a token and makes a back-channel
    // call: a few ms each; 500 ms at p99 allows for two shared cores.
    'http_req_duration{kind:login}': [`p(99)<${P99_MS || 500}`],
    iteration_duration: ['p(99)<2000'],
  },
};

export default function () {
  loginAndRefresh(LOGIN_API_GET);
}
