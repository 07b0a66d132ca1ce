/**
 * The ng fuzz target against the real relay (see ng-fuzzer.ts). CI runs it for a bounded time on every
 * change; `npm run fuzz -- --inputs 1000000` runs it longer (scripts/fuzz.js sets the environment below).
 *   NGRELAY_FUZZ_INPUTS   inputs to send (default: as many as fit the time)
 *   NGRELAY_FUZZ_SECONDS  time bound (default 20)
 *   NGRELAY_FUZZ_SEED     PRNG seed (default 1): the same seed generates the same inputs
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startNgrelay } from '../support/ngrelay';
import type { RelayUnderTest } from '../support/relay';
import { loadSeeds, runFuzz, type FuzzReport } from './ng-fuzzer';

const env = (name: string, fallback: number): number => {
  const v = process.env[name];
  return v === undefined || v === '' ? fallback : Number(v);
};
const INPUTS = env('NGRELAY_FUZZ_INPUTS', Number.MAX_SAFE_INTEGER);
const SECONDS = env('NGRELAY_FUZZ_SECONDS', 20);
const SEED = env('NGRELAY_FUZZ_SEED', 1);

let relay: RelayUnderTest | undefined;

beforeAll(async () => {
  // A few tries: a port taken by a concurrent run in another worktree makes the start fail; another slot works.
  let last: unknown;
  for (let attempt = 0; attempt < 4 && !relay; attempt++) {
    const slot = Math.floor(Math.random() * 300);
    try {
      relay = await startNgrelay({
        ngPort: 24000 + slot,
        portMin: 42000 + (slot % 8) * 2000,
        portMax: 43999 + (slot % 8) * 2000,
        deleteDelay: 0,
        // Errors only: millions of inputs would otherwise log millions of lines.
        extraArgs: ['--log-level=3'],
      });
    } catch (err) {
      last = err;
    }
  }
  if (!relay) throw last;
});

afterAll(async () => {
  await relay?.stop();
});

function summary(r: FuzzReport): string {
  const top = Object.entries(r.errorReasons)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 12)
    .map(([k, v]) => `    ${v}\t${k}`)
    .join('\n');
  return [
    `ng fuzz: seed ${SEED}, ${r.inputs} inputs in ${r.seconds.toFixed(1)} s (${Math.round(r.inputs / r.seconds)}/s)`,
    `  replies ${r.replies}, ok ${r.ok}, silent ${r.silent}, internal errors ${r.internal}, crashed ${r.crashed}`,
    '  most frequent error reasons:',
    top,
  ].join('\n');
}

it(
  'survives fuzzed ng messages: no crash, no silence, no internal error',
  async () => {
    if (!relay) throw new Error('relay not started');
    const under = relay;
    const report = await runFuzz(loadSeeds(), {
      host: under.ngHost,
      port: under.ngPort,
      inputs: INPUTS,
      maxSeconds: SECONDS,
      seed: SEED,
      relayExited: () => under.process.hasExited,
      progressEvery: 100_000,
      onProgress: (r) => console.log(summary(r)),
    });
    console.log(summary(report));
    const findings = report.findings.slice(0, 5).map((f) => `${f.kind}: ${JSON.stringify(f.body.subarray(0, 300).toString('latin1'))}`);
    expect(report.crashed, under.process.describe()).toBe(false);
    expect({ silent: report.silent, internal: report.internal, findings }).toEqual({ silent: 0, internal: 0, findings: [] });
    expect(report.inputs).toBeGreaterThan(100);
    // The relay still answers at once afterwards.
    expect(report.replies).toBeGreaterThan(0);
  },
  (SECONDS + 90) * 1000,
);
