/**
 * The WebRTC gateway end to end (issue 12): Debian's Kamailio 5.6 running examples/webrtc/kamailio.cfg
 * (SIP over ws:// for browsers, UDP for phones, the relay driven through its rtpengine module), a JsSIP
 * phone in headless Chromium, and sipp as the plain RTP SIP phone (-rtp_echo). All on 127.0.0.1 with
 * ports picked free at start, every process started here and stopped by its PID.
 *   1. the browser registers over ws:// and calls sipp: two-way audio (the browser's getStats() and sipp's
 *      echo counter), the browser's BYE makes Kamailio delete the call on the relay;
 *   2. sipp calls the browser (JsSIP answers by itself): the same, and sipp's BYE cleans up.
 * Runs once per row of WEBRTC_RELAYS (rtpengine 10.5 and ngrelay).
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Chromium, PeerStats } from '../support/browser';
import { sippCounter } from '../support/e2e-procs';
import { freeMediaRange, freeTcpPort, freeUdpPort } from '../support/free-ports';
import { JssipPhone } from '../support/jssip-phone';
import { NgRawClient } from '../support/ng-client';
import { ManagedProcess, startProcess } from '../support/process';
import type { RelayUnderTest } from '../support/relay';
import { relayOptions, WEBRTC_RELAYS } from '../support/webrtc-relays';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const KAMAILIO_CFG = path.join(REPO_ROOT, 'examples', 'webrtc', 'kamailio.cfg');
const SCENARIOS = path.join(__dirname, 'scenarios');
const HOST = '127.0.0.1';
const MIN_PACKETS = 100;
const ECHO_LABEL = 'Total echo RTP pckts 1st stream';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, detail: () => string = () => ''): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${detail()}`);
    await sleep(200);
  }
}

function connected(stats: PeerStats | null): boolean {
  return (
    stats !== null &&
    stats.connectionState === 'connected' &&
    stats.transports.length === 1 &&
    stats.transports.every((t) => t.dtlsState === 'connected' && ['connected', 'completed'].includes(t.iceState ?? ''))
  );
}

for (const row of WEBRTC_RELAYS) {
  describe(`WebRTC gateway: JsSIP in Chromium <-> Kamailio (ws://) <-> ${row.name} <-> sipp`, () => {
    let relay: RelayUnderTest | undefined;
    let ng: NgRawClient | undefined;
    let kamailio: ManagedProcess | undefined;
    let chromium: Chromium | undefined;
    let phone: JssipPhone | undefined;
    let workDir = '';
    let sipPort = 0;
    let wsPort = 0;
    const sipps: ManagedProcess[] = [];
    let serial = 0;

    beforeAll(async () => {
      workDir = mkdtempSync(path.join(os.tmpdir(), 'ngr-webrtc-gw-'));
      for (const file of ['register.xml', 'uas_webrtc.xml', 'uac_webrtc.xml']) copyFileSync(path.join(SCENARIOS, file), path.join(workDir, file));
      relay = await row.start(await relayOptions());
      ng = await NgRawClient.open(relay.ngPort);
      sipPort = await freeUdpPort();
      wsPort = await freeTcpPort();
      kamailio = startProcess({
        name: 'kamailio',
        command: 'kamailio',
        args: [
          '-f', KAMAILIO_CFG, '-DD', '-E', '-w', workDir,
          '-A', `SIP_LISTEN=udp:${HOST}:${sipPort}`,
          '-A', `WS_LISTEN=tcp:${HOST}:${wsPort}`,
          '-A', `NGRELAY_SOCK="udp:${HOST}:${relay.ngPort}"`,
          '-A', 'NGRELAY_TOUT_MS=500',
          '-A', 'SIP_CHILDREN=2',
          '-A', 'TCP_CHILDREN=2',
          '-A', `CTL_BINRPC="unix:${path.join(workDir, 'kamailio_ctl')}"`,
        ],
      });
      // Each SIP worker pings the relay once at start (rtpengine module): "... <udp:HOST:PORT> found".
      const found = `<udp:${HOST}:${relay.ngPort}> found`;
      await waitFor('kamailio started and found the relay', async () => (kamailio!.stderrText.includes(found) ? true : undefined), 15_000,
        () => `\n${kamailio!.describe(40)}`);
      chromium = await Chromium.launch();
      phone = await JssipPhone.open(chromium);
      await phone.register(`ws://${HOST}:${wsPort}`, `sip:alice@${HOST}`);
    }, 60_000);

    afterAll(async () => {
      await phone?.close();
      await chromium?.close();
      for (const sipp of sipps) await sipp.stop(1000);
      await kamailio?.stop();
      ng?.close();
      await relay?.stop();
      if (workDir) rmSync(workDir, { recursive: true, force: true });
    });

    function diagnostics(): string {
      return [
        kamailio ? `\n--- kamailio\n${kamailio.describe(30)}` : '',
        relay ? `\n--- ${row.name}\n${relay.process.describe(20)}` : '',
        ...sipps.map((s) => `\n--- ${s.name}\n${s.describe(20)}`),
        `\n--- browser console\n${(chromium?.consoleLines ?? []).join('\n')}`,
      ].join('');
    }

    function sipp(name: string, args: string[]): ManagedProcess {
      const proc = startProcess({ name, command: 'sipp', args: [...args, '-nostdin', '-timeout', '30s', '-timeout_error'], cwd: workDir });
      sipps.push(proc);
      return proc;
    }

    async function exitCode(proc: ManagedProcess, timeoutMs: number): Promise<number | null> {
      const timer = sleep(timeoutMs).then(() => 'timeout' as const);
      const result = await Promise.race([proc.exited, timer]);
      if (result === 'timeout') {
        await proc.stop(1000);
        throw new Error(`${proc.name} did not finish within ${timeoutMs} ms${diagnostics()}`);
      }
      return result.code;
    }

    /** sipp's echo counter, read from the statistics screen it dumps on SIGUSR2 while the call is up. */
    async function echoedBySipp(proc: ManagedProcess, screens: string, atLeast: number): Promise<number> {
      return waitFor(`sipp echoes ${atLeast} RTP packets`, async () => {
        process.kill(proc.pid, 'SIGUSR2');
        await sleep(150);
        const echoed = existsSync(screens) ? sippCounter(readFileSync(screens, 'utf8'), ECHO_LABEL) : undefined;
        return echoed !== undefined && echoed >= atLeast ? echoed : undefined;
      }, 12_000, diagnostics);
    }

    async function callsOnRelay(): Promise<string[]> {
      const reply = await ng!.request({ command: 'list', limit: 100 }, { retransmitMs: 0 });
      expect(reply.plain.result).toBe('ok');
      return (reply.plain.calls as string[] | undefined) ?? [];
    }

    async function expectTwoWayAudio(): Promise<PeerStats> {
      let last: PeerStats | null = null;
      return waitFor(`the browser's call is up with ${MIN_PACKETS} RTP packets each way`, async () => {
        const stats = await phone!.stats();
        last = stats;
        return connected(stats) && (stats!.inbound.audio ?? 0) >= MIN_PACKETS && (stats!.outbound.audio ?? 0) >= MIN_PACKETS
          ? stats!
          : undefined;
      }, 15_000, () => `\nlast browser stats: ${JSON.stringify(last)}${diagnostics()}`);
    }

    it('the browser registers over ws://, calls the SIP phone: two-way audio through the relay, BYE deletes the call', async () => {
      const uasPort = await freeUdpPort();
      const { portMin: mediaPort } = await freeMediaRange(4);
      const register = sipp('sipp-register', [`${HOST}:${sipPort}`, '-sf', 'register.xml', '-s', 'bob', '-i', HOST, '-p', String(uasPort), '-m', '1']);
      expect(await exitCode(register, 10_000), `bob's REGISTER${diagnostics()}`).toBe(0);
      const screens = path.join(workDir, `uas.${++serial}.screens`);
      const uas = sipp('sipp-uas', ['-sf', 'uas_webrtc.xml', '-i', HOST, '-p', String(uasPort), '-mp', String(mediaPort), '-rtp_echo', '-m', '1',
        '-trace_screen', '-screen_file', screens]);
      await sleep(300);

      await phone!.dial(`sip:bob@${HOST}`);
      const calls = await callsOnRelay();
      expect(calls.length, `the relay holds the call${diagnostics()}`).toBe(1);

      const stats = await expectTwoWayAudio();
      const echoed = await echoedBySipp(uas, screens, MIN_PACKETS);
      expect(stats.inbound.audio, JSON.stringify(stats)).toBeGreaterThanOrEqual(MIN_PACKETS);
      expect(echoed).toBeGreaterThanOrEqual(MIN_PACKETS);

      await phone!.hangUp();
      expect(await exitCode(uas, 10_000), `sipp UAS${diagnostics()}`).toBe(0);
      await waitFor('the relay holds no call after BYE', async () => ((await callsOnRelay()).length === 0 ? true : undefined), 5000,
        diagnostics);
    }, 30_000);

    it('the SIP phone calls the browser, JsSIP answers: two-way audio through the relay, BYE deletes the call', async () => {
      const { portMin: mediaPort } = await freeMediaRange(4);
      const uacPort = await freeUdpPort();
      const screens = path.join(workDir, `uac.${++serial}.screens`);
      const uac = sipp('sipp-uac', [`${HOST}:${sipPort}`, '-sf', 'uac_webrtc.xml', '-s', 'alice', '-i', HOST, '-p', String(uacPort),
        '-mp', String(mediaPort), '-rtp_echo', '-m', '1', '-d', '7000', '-trace_screen', '-screen_file', screens]);

      await waitFor('JsSIP answered', async () => ((await phone!.state()) === 'confirmed' ? true : undefined), 10_000,
        () => diagnostics());
      const calls = await callsOnRelay();
      expect(calls.length, `the relay holds the call${diagnostics()}`).toBe(1);
      const stats = await expectTwoWayAudio();
      const echoed = await echoedBySipp(uac, screens, MIN_PACKETS);
      expect(stats.inbound.audio).toBeGreaterThanOrEqual(MIN_PACKETS);
      expect(echoed).toBeGreaterThanOrEqual(MIN_PACKETS);

      // sipp hangs up after -d ms; its exit code 0 says every message of the scenario went as written.
      expect(await exitCode(uac, 15_000), `sipp UAC${diagnostics()}`).toBe(0);
      await waitFor('the browser saw the BYE', async () => ((await phone!.state()) === 'ended' ? true : undefined), 5000, diagnostics);
      await waitFor('the relay holds no call after BYE', async () => ((await callsOnRelay()).length === 0 ? true : undefined), 5000,
        diagnostics);
    }, 30_000);
  });
}
