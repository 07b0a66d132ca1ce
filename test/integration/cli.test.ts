/**
 * Debian's rtpengine-ctl (unchanged) against ngrelay's --listen-cli, side by side with rtpengine 10.5:
 * the same call on each, every command's output compared in shape (numbers, addresses and padding aside),
 * and the commands that act (terminate, set maxsessions, set loglevel) checked for their effect.
 */
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNgrelay } from '../support/ngrelay';
import { startRtpengine } from '../support/rtpengine';
import type { RelayUnderTest } from '../support/relay';
import { NgRawClient } from '../support/ng-client';
import { calleeAudio, callerAudio } from '../support/sdp-fixtures';
import { freeMediaRange, freeTcpPort, freeUdpPort } from '../support/free-ports';

const CTL = '/usr/bin/rtpengine-ctl';

function ctl(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(CTL, ['-ip', '127.0.0.1', '-port', String(port), ...command.split(' ')], { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`rtpengine-ctl ${command} failed: ${err.message} ${stderr}`));
      else resolve(stdout);
    });
  });
}

/** Output with its values taken out: numbers, IPs and the padding around them; the codec name (see README). */
function shape(text: string): string[] {
  return text
    .replace(/using unknown codec|using \S+/g, 'using <codec>')
    .replace(/\d+\.\d+\.\d+\.\d+/g, '<ip>')
    .replace(/-?\d+(\.\d+)?/g, '#')
    .split('\n')
    .map((line) => line.replace(/ +/g, ' '));
}

interface Side {
  relay: RelayUnderTest;
  cli: number;
  http: number;
  ng: NgRawClient;
}

async function start(kind: 'rtpengine' | 'ngrelay'): Promise<Side> {
  const [ngPort, cli, http, range] = await Promise.all([freeUdpPort(), freeTcpPort(), freeTcpPort(), freeMediaRange()]);
  const options = {
    ngPort,
    ...range,
    extraArgs: [`--listen-cli=127.0.0.1:${cli}`, `--listen-http=127.0.0.1:${http}`],
  };
  const relay = kind === 'rtpengine' ? await startRtpengine(options) : await startNgrelay(options);
  return { relay, cli, http, ng: await NgRawClient.open(ngPort) };
}

async function call(side: Side, callId: string): Promise<void> {
  const offer = await side.ng.request({ command: 'offer', 'call-id': callId, 'from-tag': 'caller-tag', sdp: callerAudio(40000) });
  expect(offer.plain['result'], JSON.stringify(offer.plain)).toBe('ok');
  const answer = await side.ng.request({
    command: 'answer',
    'call-id': callId,
    'from-tag': 'caller-tag',
    'to-tag': 'callee-tag',
    sdp: calleeAudio(40002),
  });
  expect(answer.plain['result'], JSON.stringify(answer.plain)).toBe('ok');
}

describe('rtpengine-ctl against ngrelay, compared with rtpengine 10.5', () => {
  let reference: Side;
  let ngrelay: Side;

  beforeAll(async () => {
    [reference, ngrelay] = await Promise.all([start('rtpengine'), start('ngrelay')]);
    await Promise.all([call(reference, 'cli-call-1'), call(ngrelay, 'cli-call-1')]);
  }, 60_000);

  afterAll(async () => {
    for (const side of [reference, ngrelay]) {
      side?.ng.close();
      await side?.relay.stop();
    }
  });

  it.each([
    'list numsessions',
    'list sessions all',
    'list sessions own',
    'list sessions foreign',
    'list sessions cli-call-1',
    'list sessions no-such-call',
    'list totals',
    'list maxsessions',
    'list maxload',
    'list maxcpu',
    'list maxbw',
    'list interfaces',
    'list timeout',
    'list silenttimeout',
    'list offertimeout',
    'list finaltimeout',
    'list deletedelay',
    'get loglevel',
    'list nonsense',
    'nonsense',
    'terminate no-such-call',
    'set maxsessions',
    'set maxsessions abc',
    'set maxsessions -5',
  ])('"%s" prints what rtpengine prints (values aside)', async (command) => {
    const [expected, actual] = await Promise.all([ctl(reference.cli, command), ctl(ngrelay.cli, command)]);
    expect(actual.length).toBeGreaterThan(0);
    expect(shape(actual)).toEqual(shape(expected));
  });

  it('counts the running call in list numsessions and shows its tags and ports in list sessions <call-id>', async () => {
    expect(await ctl(ngrelay.cli, 'list numsessions')).toContain('Current sessions own: 1\n');
    const detail = await ctl(ngrelay.cli, 'list sessions cli-call-1');
    expect(detail).toContain("--- Tag 'caller-tag', type: FROM_TAG");
    expect(detail).toContain("--- Tag 'callee-tag', type: TO_TAG");
    expect(detail).toMatch(/-------- Port +127\.0\.0\.1:\d+ <> +127\.0\.0\.41:40000, SSRC 0, 0 p, 0 b, 0 e, \d+ ts/);
  });

  it('lists its sub-commands with help, in rtpengine\'s layout', async () => {
    expect(await ctl(ngrelay.cli, 'help')).toBe('Available sub-commands at this level:\n\tlist\n\tterminate\n\tset\n\tget\n\tksadd\n\tksrm\n\tkslist\n\tactive\n\tstandby\n');
    const list = await ctl(ngrelay.cli, 'list help');
    expect(list).toMatch(/^Available sub-commands at this level:\n\tnumsessions\n\tsessions\n\ttotals\n/);
    // Every sub-command it names is one rtpengine names too.
    const names = (text: string) => text.split('\n').filter((l) => l.startsWith('\t')).map((l) => l.slice(1));
    const theirs = names(await ctl(reference.cli, 'list help'));
    for (const name of names(list)) expect(theirs).toContain(name);
  });

  it('serves the same text over HTTP GET /cli/<command>', async () => {
    const res = await fetch(`http://127.0.0.1:${ngrelay.http}/cli/list+numsessions`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(await ctl(ngrelay.cli, 'list numsessions'));
  });

  it('set loglevel N changes what get loglevel reports, with rtpengine\'s reply', async () => {
    for (const side of [reference, ngrelay]) expect(await ctl(side.cli, 'set loglevel 7')).toBe('Success setting loglevel to 7\n');
    expect(await ctl(ngrelay.cli, 'get loglevel')).toMatch(/^core = 7\n/);
    for (const side of [reference, ngrelay]) await ctl(side.cli, 'set loglevel 6');
    expect(await ctl(ngrelay.cli, 'get loglevel')).toMatch(/^core = 6\n/);
  });

  it('set maxsessions N changes the limit live: the next new call is refused, an existing one goes on', async () => {
    for (const side of [reference, ngrelay]) {
      expect(await ctl(side.cli, 'set maxsessions 1')).toBe('Success setting maxsessions to 1\n');
      expect(await ctl(side.cli, 'list maxsessions')).toBe('Maximum sessions configured on rtpengine: 1\n');
      const refused = await side.ng.request({
        command: 'offer',
        'call-id': 'cli-call-over-limit',
        'from-tag': 'a',
        sdp: callerAudio(40010),
        supports: ['load limit'],
      });
      expect(refused.plain).toEqual({ result: 'load limit', message: 'Parallel session limit reached' });
      const reoffer = await side.ng.request({ command: 'offer', 'call-id': 'cli-call-1', 'from-tag': 'caller-tag', sdp: callerAudio(40000) });
      expect(reoffer.plain['result']).toBe('ok');
      expect(await ctl(side.cli, 'set maxsessions -1')).toBe('Success setting maxsessions to -1; disable feature\n');
    }
    const totals = await ctl(ngrelay.cli, 'list totals');
    expect(totals).toMatch(/ Total rejected sessions +:1\n/);
  });

  it('terminate <call-id> ends the call (query then fails) and counts it as forced', async () => {
    for (const side of [reference, ngrelay]) {
      await call(side, 'cli-call-2');
      expect(await ctl(side.cli, 'terminate cli-call-2'), side.relay.name).toBe('\nCall Id (cli-call-2) successfully terminated by operator.\n\n');
      const query = await side.ng.request({ command: 'query', 'call-id': 'cli-call-2' });
      expect(query.plain, side.relay.name).toEqual({ result: 'error', 'error-reason': 'Unknown call-id' });
    }
    expect(await ctl(ngrelay.cli, 'list totals')).toMatch(/ Total forced terminated sessions +:1\n/);
    const metrics = await (await fetch(`http://127.0.0.1:${ngrelay.http}/metrics`)).text();
    expect(metrics).toContain('rtpengine_closed_sessions_total{reason="force_terminated"} 1\n');
  });

  it('terminate all ends every call', async () => {
    for (const side of [reference, ngrelay]) {
      await call(side, 'cli-call-3');
      expect(await ctl(side.cli, 'terminate all'), side.relay.name).toBe('All calls terminated by operator.\n');
      expect(await ctl(side.cli, 'list sessions all'), side.relay.name).toBe('No sessions on this media relay.\n');
    }
    expect(await ctl(ngrelay.cli, 'list numsessions')).toContain('Current sessions own: 0\n');
  });
});
