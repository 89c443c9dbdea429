// flow.mjs is what the browser flows (spa-flow.mjs, backchannel-flow.mjs)
// share: named steps that print ok or FAIL with their time and stop the
// flow at the first failure, checks, and the headless Chromium they drive.
import { chromium } from 'playwright-core';

// counts are the steps passed and failed so far.
export const counts = { passed: 0, failed: 0 };

// step runs fn as one step; a failure is printed and thrown on.
export async function step(name, fn) {
  const started = Date.now();
  try {
    await fn();
    counts.passed++;
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    counts.failed++;
    console.log(`FAIL ${name}: ${e.message}`);
    throw e;
  }
}

export function check(condition, message) {
  if (!condition) throw new Error(message);
}

// launch starts headless Chromium: CHROMIUM, by default Debian's.
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic'],
  });
}
