// Spike: a base rate (RATE, default 100 requests/s), a sudden jump to ten
// times that for 10 s, and back: the proxy must answer every request, and
// recover its latency once the spike has passed.
import { sessions, RATE, P99_MS } from './lib/config.js';
import { requireSessions, pick, get, post } from './lib/api.js';

const base = RATE || 100;

export const options = {
  scenarios: {
    spike: {
      executor: 'ramping-arrival-rate', startRate: base, timeUnit: '1s',
      preAllocatedVUs: Math.max(50, base * 2), maxVUs: Math.max(400, base * 4),
      stages: [
        { target: base, duration: '15s' },
        { target: base * 10, duration: '3s' },
        { target: base * 10, duration: '10s' },
        { target: base, duration: '3s' },
        { target: base, duration: '19s' },
      ],
    },
  },
  thresholds: {
    http_req_failed: ['rate==0'],
    checks: ['rate==1'],
    // k6 (on the same cores) may fall behind by 1 % of the spike's requests.
    dropped_iterations: [`count<=${base}`],
    // The spike itself may queue on two cores: 500 ms at p99 over the run.
    'http_req_duration{kind:api}': [`p(99)<${P99_MS || 500}`],
  },
};

export function setup() {
  requireSessions(sessions);
}

export default function () {
  const s = pick(sessions);
  if (Math.random() < 0.8) get(s); else post(s);
}
