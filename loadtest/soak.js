// Soak: a fixed arrival rate (RATE, default 200 requests/s) for DURATION
// (default 10m) through NGINX, zero errors allowed. loadtest/run rotates the
// proxies' keys with SIGHUP at 40 % and stops one of two proxies with SIGTERM
// at 80 %, and checks their memory; this script supplies the traffic:
//   steady:  80 % GETs, 20 % POSTs, cookies sealed with the original key;
//   slow:    SLOW_RATE POSTs/s (default 4) to SLOW_PATH, which the API answers
//            SLOW_MS late: requests in flight when a proxy is stopped. POSTs,
//            because NGINX never retries a POST it has sent, so a request the
//            drain drops reaches k6 as an error instead of being retried
//            quietly on the other proxy;
//   rotated: from ROTATED_START on, a quarter of RATE with cookies sealed
//            with the new key, which opens only after the rotation.
// Without SLOW_PATH or ROTATED_START (a real deployment) those scenarios are
// left out.
import { sessions, rotatedSessions, RATE, DURATION, P99_MS } from './lib/config.js';
import { requireSessions, pick, get, post } from './lib/api.js';

const rate = RATE || 200;
const duration = DURATION || '10m';
const slowPath = __ENV.SLOW_PATH || '';
const slowRate = parseInt(__ENV.SLOW_RATE || '4', 10);
const slowMS = parseInt(__ENV.SLOW_MS || '2000', 10);
const rotatedStart = __ENV.ROTATED_START || '';
const seconds = (d) => parseInt(d, 10) * (d.endsWith('m') ? 60 : 1);

const scenarios = {
  steady: {
    executor: 'constant-arrival-rate', rate, timeUnit: '1s', duration,
    preAllocatedVUs: Math.max(10, rate / 20), maxVUs: Math.max(50, rate / 2), exec: 'steady',
  },
};
const thresholds = {
  http_req_failed: ['rate==0'],
  checks: ['rate==1'],
  dropped_iterations: ['count==0'],
  // 100 ms, as load.js: a few ms is normal on two shared cores; a p99 ten
  // times that is a stall. The SIGTERM and the SIGHUP happen inside this
  // window and must not push it over.
  'http_req_duration{kind:api}': [`p(99)<${P99_MS || 100}`],
};
if (slowPath !== '') {
  scenarios.slow = {
    executor: 'constant-arrival-rate', rate: slowRate, timeUnit: '1s', duration,
    preAllocatedVUs: slowRate * 4, maxVUs: slowRate * 8, exec: 'slow',
  };
  // A slow request that was answered once, by the proxy it was sent to,
  // takes SLOW_MS and a little; one retried elsewhere would take twice that.
  thresholds['http_req_duration{kind:slow}'] = [`max<${slowMS + 1000}`];
}
if (rotatedStart !== '') {
  scenarios.rotated = {
    executor: 'constant-arrival-rate', rate: Math.max(1, Math.round(rate / 4)), timeUnit: '1s',
    startTime: rotatedStart, duration: `${Math.max(1, seconds(duration) - seconds(rotatedStart))}s`,
    preAllocatedVUs: 10, maxVUs: Math.max(20, rate / 4), exec: 'rotated',
  };
  thresholds['http_reqs{scenario:rotated}'] = ['count>0'];
}

export const options = { scenarios, thresholds };

export function setup() {
  requireSessions(sessions);
  if (rotatedStart !== '') requireSessions(rotatedSessions);
}

export function steady() {
  const s = pick(sessions);
  if (Math.random() < 0.8) get(s); else post(s);
}

export function slow() {
  post(pick(sessions), { kind: 'slow' }, slowPath);
}

export function rotated() {
  const s = pick(rotatedSessions);
  if (Math.random() < 0.8) get(s, { kind: 'api', keys: 'rotated' }); else post(s, { kind: 'api', keys: 'rotated' });
}
