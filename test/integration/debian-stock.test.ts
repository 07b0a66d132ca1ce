/**
 * ngrelay in place of Debian's rtpengine: Debian's stock /etc/rtpengine/rtpengine.conf (package
 * rtpengine-daemon, installed by scripts/install-test-deps.sh) and the exact arguments of Debian's unit
 * (`rtpengine-daemon.service`): `-f -E --no-log-timestamps --pidfile ... --config-file ...`.
 *
 * The file is copied to a temp dir and only its ports are changed: the stock `listen-ng = localhost:2223`,
 * `listen-cli`, `listen-http` and `port-min/max = 30000..40000` would collide with other relays running
 * tests on this machine at the same time. Everything else stays as shipped: `interface = any`, `table = 0`,
 * `tos = 184`, `recording-dir = /var/spool/rtpengine` (owner rtpengine), `recording-method = proc`.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NgRawClient, textOf } from '../support/ng-client';
import { NGRELAY_BIN, REPO_ROOT } from '../support/ngrelay';
import { startNgProcess, type ManagedProcess } from '../support/process';
import { callerAudio, calleeAudio, mediaPorts } from '../support/sdp-fixtures';

const STOCK_CONF = '/etc/rtpengine/rtpengine.conf';
const SPOOL = '/var/spool/rtpengine';

const ngPort = 45000 + Math.floor(Math.random() * 5000);
const portMin = 50000 + 2 * Math.floor(Math.random() * 4000);
const portMax = portMin + 99;

/** The stock file with its ports moved (every other line as shipped). */
function stockConfWithOwnPorts(): string {
  const moved: Record<string, string> = {
    'listen-ng': `127.0.0.1:${ngPort}`,
    'port-min': String(portMin),
    'port-max': String(portMax),
    'listen-cli': `127.0.0.1:${ngPort + 1}`,
    'listen-http': `127.0.0.1:${ngPort + 2}`,
  };
  return readFileSync(STOCK_CONF, 'utf8')
    .split('\n')
    .flatMap((line) => {
      const m = /^([a-z0-9-]+)\s*=/.exec(line);
      if (!m || !(m[1]! in moved)) return [line];
      return [`${m[1]} = ${moved[m[1]!]}`];
    })
    .join('\n');
}

let dir: string;
let conf: string;
let pidfile: string;
let relay: ManagedProcess | undefined;
let client: NgRawClient;
let spoolBefore: string[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ngrelay-debian-stock-'));
  conf = join(dir, 'rtpengine.conf');
  pidfile = join(dir, 'rtpengine-daemon.pid');
  // Like /run/rtpengine, which systemd creates for the unit's User=rtpengine (RuntimeDirectory=).
  const rtpengineUser = statSync(SPOOL);
  chownSync(dir, rtpengineUser.uid, rtpengineUser.gid);
  writeFileSync(conf, stockConfWithOwnPorts());
  spoolBefore = readdirSync(SPOOL);
  relay = await startNgProcess(
    {
      name: 'ngrelay',
      command: process.execPath,
      // ExecStart of Debian's rtpengine-daemon.service, with our copies of the pidfile and config paths.
      args: [NGRELAY_BIN, '-f', '-E', '--no-log-timestamps', '--pidfile', pidfile, '--config-file', conf],
      cwd: REPO_ROOT,
    },
    { host: '127.0.0.1', port: ngPort, deadlineMs: 15_000 },
  );
  client = await NgRawClient.open(ngPort);
}, 30_000);

afterAll(async () => {
  client?.close();
  await relay?.stop();
  // Leave rtpengine's spool as we found it.
  for (const entry of readdirSync(SPOOL)) {
    if (!spoolBefore.includes(entry)) rmSync(join(SPOOL, entry), { recursive: true, force: true });
  }
  rmSync(dir, { recursive: true, force: true });
});

/** Debian's rtpengine-ctl, unchanged, against the stock `listen-cli` (moved to our port). */
function ctl(command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('/usr/bin/rtpengine-ctl', ['-ip', '127.0.0.1', '-port', String(ngPort + 1), ...command.split(' ')], { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`rtpengine-ctl ${command} failed: ${err.message} ${stderr}`));
      else resolve(stdout);
    });
  });
}

function logLines(): Array<Record<string, unknown>> {
  return relay!.stderrText
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe("Debian's stock rtpengine.conf and unit command line", () => {
  it("starts, writes the pidfile (rtpengine's, in rtpengine's run dir) and logs without timestamps", () => {
    expect(readFileSync(pidfile, 'utf8').trim()).toBe(String(relay!.pid));
    expect(statSync(pidfile).uid).toBe(statSync(SPOOL).uid);
    const lines = logLines();
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line).not.toHaveProperty('time');
  });

  it('warns once for each stock setting ngrelay has no feature for, saying what it does instead', () => {
    const warnings = logLines()
      .filter((l) => l['level'] === 40)
      .map((l) => String(l['msg']));
    const about = (key: string) => warnings.filter((w) => w.startsWith(`option ${key} (${conf}:`));
    // table = 0 is the kernel fast path now (README "Kernel fast path"): no warning, one line saying it is on.
    expect(about('table')).toHaveLength(0);
    const kernel = logLines().filter((l) => String(l['msg']).startsWith('kernel fast path'));
    expect(kernel.map((l) => l['msg'])).toEqual(['kernel fast path on']);
    expect(kernel[0]?.['interfaces']).toContain('lo');
    expect(about('tos')).toHaveLength(1);
    expect(about('recording-method')).toHaveLength(1);
    expect(about('recording-method')[0]).toContain('recorded as pcap under --recording-dir');
  });

  it("uses every non-loopback address for interface = any, as rtpengine does", () => {
    const started = logLines().find((l) => l['msg'] === 'ngrelay started');
    const addresses = (started?.['interfaces'] as Array<{ address: string }>).map((i) => i.address);
    const machine = execFileSync('ip', ['-o', 'addr', 'show', 'scope', 'global'], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => l.split(/\s+/)[3]!.split('/')[0]!);
    expect(addresses.sort()).toEqual(machine.sort());
  });

  it('answers offer, answer and delete', async () => {
    const callId = `debian-stock-${Date.now()}`;
    const offer = await client.request({ command: 'offer', 'call-id': callId, 'from-tag': 'a', sdp: callerAudio(40000) });
    expect(textOf(offer.dict, 'result'), JSON.stringify(offer.plain)).toBe('ok');
    const offerPorts = mediaPorts(textOf(offer.dict, 'sdp')!);
    expect(offerPorts[0]).toBeGreaterThanOrEqual(portMin);
    expect(offerPorts[0]).toBeLessThanOrEqual(portMax);
    const answer = await client.request({
      command: 'answer',
      'call-id': callId,
      'from-tag': 'a',
      'to-tag': 'b',
      sdp: calleeAudio(40002),
    });
    expect(textOf(answer.dict, 'result'), JSON.stringify(answer.plain)).toBe('ok');
    const del = await client.request({ command: 'delete', 'call-id': callId, 'from-tag': 'a' });
    expect(textOf(del.dict, 'result'), JSON.stringify(del.plain)).toBe('ok');
  });

  it("Debian's rtpengine-ctl lists and terminates a call on the stock listen-cli; /metrics on the stock listen-http has rtpengine's names", async () => {
    // The call deleted above is still held for delete-delay and counted, as rtpengine counts it.
    const own = async (): Promise<number> => Number(/Current sessions own: (\d+)/.exec(await ctl('list numsessions'))?.[1]);
    const before = await own();
    const callId = `debian-stock-ctl-${Date.now()}`;
    const offer = await client.request({ command: 'offer', 'call-id': callId, 'from-tag': 'a', sdp: callerAudio(40010) });
    expect(textOf(offer.dict, 'result'), JSON.stringify(offer.plain)).toBe('ok');
    const answer = await client.request({ command: 'answer', 'call-id': callId, 'from-tag': 'a', 'to-tag': 'b', sdp: calleeAudio(40012) });
    expect(textOf(answer.dict, 'result')).toBe('ok');

    expect(await own()).toBe(before + 1);
    expect(await ctl('list sessions all')).toContain(callId);
    const metrics = await (await fetch(`http://127.0.0.1:${ngPort + 2}/metrics`)).text();
    expect(metrics).toMatch(/^# TYPE rtpengine_sessions gauge$/m);
    expect(metrics).toContain(`rtpengine_sessions{type="own"} ${before + 1}\n`);
    expect(metrics).toMatch(/^rtpengine_ports_used\{/m);

    expect(await ctl(`terminate ${callId}`)).toContain(callId);
    expect(await own()).toBe(before);
    const query = await client.request({ command: 'query', 'call-id': callId });
    expect(textOf(query.dict, 'result')).toBe('error');
  });

  it("what it creates under rtpengine's /var/spool/rtpengine belongs to rtpengine's user", () => {
    const owner = statSync(SPOOL);
    const created = readdirSync(SPOOL).filter((e) => !spoolBefore.includes(e));
    for (const entry of created) {
      const st = statSync(join(SPOOL, entry));
      expect({ entry, uid: st.uid, gid: st.gid }).toEqual({ entry, uid: owner.uid, gid: owner.gid });
    }
  });

  it('stops on SIGTERM and removes its pidfile', async () => {
    await relay!.stop();
    expect(existsSync(pidfile)).toBe(false);
  });
});
