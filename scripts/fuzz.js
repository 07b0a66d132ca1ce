#!/usr/bin/env node
// The long ng fuzz run: `npm run fuzz -- --inputs 1000000 [--seconds 1800] [--seed 1]`.
// Runs test/fuzz/ng-fuzz.test.ts (the same target CI runs for 20 s) with a larger budget.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const args = process.argv.slice(2);
const opts = { inputs: '1000000', seconds: '1800', seed: '1' };
for (let i = 0; i < args.length; i++) {
  const m = /^--(inputs|seconds|seed)(?:=(.*))?$/.exec(args[i]);
  if (!m) {
    console.error(`unknown argument ${args[i]}; use --inputs N --seconds S --seed N`);
    process.exit(2);
  }
  opts[m[1]] = m[2] ?? args[++i];
  if (!/^\d+$/.test(opts[m[1]] ?? '')) {
    console.error(`--${m[1]} needs a whole number`);
    process.exit(2);
  }
}
const root = path.resolve(__dirname, '..');
const vitest = path.join(root, 'node_modules', 'vitest', 'vitest.mjs');
const result = spawnSync(process.execPath, [vitest, 'run', 'test/fuzz/ng-fuzz.test.ts'], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, NGRELAY_FUZZ_INPUTS: opts.inputs, NGRELAY_FUZZ_SECONDS: opts.seconds, NGRELAY_FUZZ_SEED: opts.seed },
});
process.exit(result.status ?? 1);
