/**
 * What a relay loads at start: the optional dependencies stay unloaded unless the config asks for what needs
 * them (ioredis ~20 MB of RSS, ws and prom-client ~10 MB, msgpackr and its native helper). A plain ng relay
 * starts without any of them; --listen-http loads ws and prom-client and still not ioredis. Run in a child
 * process, since vitest's own process has loaded whatever the other tests imported.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { freeMediaRange, freeTcpPort, freeUdpPort } from '../support/free-ports';

const ROOT = path.resolve(__dirname, '..', '..');
const OPTIONAL = ['ioredis', 'msgpackr', 'ws', 'prom-client'];

/** Starts a relay with `extra` arguments, then prints the optional packages in require.cache. */
const PROGRAM = `
const { Relay, parseCommandLine, createLogger } = require(${JSON.stringify(ROOT)});
const [ngPort, portMin, ...extra] = process.argv.slice(1); // node -e: no script path in argv
(async () => {
  const config = parseCommandLine(['--config-file=none', '--table=-1', '--interface=127.0.0.1',
    '--listen-ng=127.0.0.1:' + ngPort, '--port-min=' + portMin, '--port-max=' + (Number(portMin) + 99), ...extra]);
  const relay = await Relay.start(config, { logger: createLogger({ level: 3, stderr: true }) });
  const loaded = new Set();
  for (const file of Object.keys(require.cache)) {
    const m = /node_modules\\/([^/]+)\\//.exec(file);
    if (m && ${JSON.stringify(OPTIONAL)}.includes(m[1])) loaded.add(m[1]);
  }
  await relay.close();
  process.stdout.write(JSON.stringify([...loaded].sort()) + '\\n');
})().catch((err) => { process.stderr.write(String(err && err.stack || err) + '\\n'); process.exitCode = 1; });
`;

async function loadedWith(extra: string[]): Promise<string[]> {
  const ngPort = await freeUdpPort();
  const { portMin } = await freeMediaRange(100);
  const run = spawnSync(process.execPath, ['-e', PROGRAM, String(ngPort), String(portMin), ...extra], { encoding: 'utf8', timeout: 20_000 });
  expect(run.status, run.stderr).toBe(0);
  return JSON.parse(run.stdout.trim().split('\n').pop()!) as string[];
}

describe('optional dependencies load only when configured', () => {
  it('a plain ng relay loads none of them', async () => {
    expect(await loadedWith([])).toEqual([]);
  });

  it('--listen-http loads ws and prom-client, not ioredis', async () => {
    const httpPort = await freeTcpPort();
    const loaded = await loadedWith([`--listen-http=127.0.0.1:${httpPort}`]);
    expect(loaded).toContain('ws');
    expect(loaded).toContain('prom-client');
    expect(loaded).not.toContain('ioredis');
  });
});
