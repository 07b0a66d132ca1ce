/**
 * A WebRTC call across `kill -9` of ngrelay and a restart with the same command line (issue 13: "DTLS-SRTP
 * ... the browser sees no new handshake and keeps receiving"): headless Chromium's RTCPeerConnection (ICE +
 * DTLS-SRTP, rtcp-mux) on one side, a plain RTP/AVP phone sending its own PCMU stream on the other, driven
 * with the Kamailio WebRTC gateway flags (test/support/webrtc-relays.ts). After the restart:
 *   - within 1 s of the relay answering again, media flows both ways (the browser's inbound-rtp
 *     packetsReceived grows, the phone receives the browser's RTP);
 *   - the browser's transport stays dtlsState 'connected' throughout, with the same remote certificate
 *     (sha-256 of RTCDtlsTransport.getRemoteCertificates() = the relay's a=fingerprint); the relay logs no
 *     handshake, and its query shows the browser's stream DTLS 'connected' with the browser's certificate;
 *   - for >= 10 s after the restart the browser's STUN consent checks are answered (RFC 7675: its
 *     candidate pair's responsesReceived keeps growing) and media keeps flowing;
 *   - a re-INVITE from the browser after the restart is answered with the same a=fingerprint, no handshake.
 * Once with `--state-dir`, once with `--redis` only (a real redis-server).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BrowserPeer, Chromium } from '../support/browser';
import { NgRawClient } from '../support/ng-client';
import type { PlainValue } from '../support/bencode';
import { PlainRtpLeg } from '../support/plain-phone';
import { startNgrelay } from '../support/ngrelay';
import type { RelayOptions, RelayUnderTest } from '../support/relay';
import { TestRedis } from '../support/redis-server';
import { freeMediaRange } from '../support/free-ports';
import { attributeValues, keepLoopbackCandidates, parseMediaLines, plainChoice, plainSdp } from '../support/webrtc-sdp';
import { TOWARDS_BROWSER, TOWARDS_SIP, ngOk, sdpOf, type Plain } from '../support/webrtc-relays';
import { sleep } from '../support/rtp-packets';

const PHONE = '127.0.0.1';
/** The phone's stream stops by itself after this many packets (40 s at 20 ms): longer than a run. */
const PHONE_PACKET_LIMIT = 2000;
/** Media before the crash: SRTP progress and the handshake's keys are in the store by then. */
const BEFORE_CRASH_MS = 3000;
/** How long the call is watched after the restart: two of Chromium's consent checks (every ~5 s) at least. */
const AFTER_RESTART_MS = 11_000;

function isPlainDict(v: PlainValue | undefined): v is Plain {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Every stream of a query reply (tags -> medias -> streams). */
function streamsOf(query: Plain): Plain[] {
  const tags = isPlainDict(query['tags']) ? Object.values(query['tags']) : [];
  return tags.flatMap((tag) => {
    const medias = isPlainDict(tag) && Array.isArray(tag['medias']) ? tag['medias'] : [];
    return medias.flatMap((m) => (isPlainDict(m) && Array.isArray(m['streams']) ? m['streams'].filter(isPlainDict) : []));
  });
}

/** What this test reads from the browser's getStats() (more than webrtc-page.js's summary). */
interface TransportView {
  connectionState: string;
  dtlsStates: string[];
  /** Fingerprints of the certificates the relay presented, per transport. */
  remoteFingerprints: string[];
  /** The selected pair's STUN figures: consent checks sent and answered. */
  requestsSent: number;
  responsesReceived: number;
  inboundPackets: number;
}

/**
 * Chromium's getStats() carries no remote certificate entry: the certificate the relay presented comes from
 * RTCDtlsTransport.getRemoteCertificates() (DER), hashed here with sha-256 as a=fingerprint is.
 */
function transportView(peer: BrowserPeer): Promise<TransportView> {
  return peer.page.evaluate(`(async () => {
    const pc = window.ngr.pc;
    const report = await pc.getStats();
    const byId = {};
    report.forEach((s) => { byId[s.id] = s; });
    const view = { connectionState: pc.connectionState, dtlsStates: [], remoteFingerprints: [],
      requestsSent: 0, responsesReceived: 0, inboundPackets: 0 };
    report.forEach((s) => {
      if (s.type === 'transport') {
        view.dtlsStates.push(s.dtlsState);
        const pair = s.selectedCandidatePairId ? byId[s.selectedCandidatePairId] : undefined;
        if (pair) {
          view.requestsSent += pair.requestsSent || 0;
          view.responsesReceived += pair.responsesReceived || 0;
        }
      } else if (s.type === 'inbound-rtp') view.inboundPackets += s.packetsReceived || 0;
    });
    const transports = [...new Set(pc.getSenders().map((s) => s.transport).filter(Boolean))];
    for (const t of transports) {
      const certs = t.getRemoteCertificates();
      if (certs.length === 0) { view.remoteFingerprints.push(''); continue; }
      const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', certs[0]));
      view.remoteFingerprints.push([...digest].map((b) => b.toString(16).padStart(2, '0').toUpperCase()).join(':'));
    }
    return view;
  })()`) as Promise<TransportView>;
}

/** A new offer on the same peer connection (a re-INVITE: same tracks, ICE credentials and certificate). */
function renegotiate(peer: BrowserPeer): Promise<string> {
  return peer.page.evaluate(`(async () => {
    const pc = window.ngr.pc;
    await pc.setLocalDescription(await pc.createOffer());
    return pc.localDescription.sdp;
  })()`) as Promise<string>;
}

interface Store {
  name: string;
  args(): string[];
  close(): Promise<void>;
}

async function stateDirStore(): Promise<Store> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ngrelay-webrtc-restart-'));
  return { name: '--state-dir', args: () => [`--state-dir=${path.join(dir, 'state')}`], close: async () => rmSync(dir, { recursive: true, force: true }) };
}

async function redisStore(): Promise<Store> {
  const redis = await TestRedis.start();
  return { name: '--redis', args: () => [`--redis=${redis.url(2)}`], close: () => redis.stop() };
}

for (const makeStore of [stateDirStore, redisStore]) {
  describe(`WebRTC call across kill -9 of ngrelay (${makeStore === stateDirStore ? '--state-dir' : '--redis only'})`, () => {
    let store: Store;
    let options: RelayOptions;
    let relay: RelayUnderTest | undefined;
    let ng: NgRawClient | undefined;
    let chromium: Chromium | undefined;
    const peers: BrowserPeer[] = [];
    const legs: PlainRtpLeg[] = [];

    beforeAll(async () => {
      store = await makeStore();
      // The ng port below the ephemeral range: between kill -9 and the restart no other process is handed it.
      const ngPort = 23000 + (process.pid % 2000) + (makeStore === stateDirStore ? 0 : 1);
      options = { ngPort, ...(await freeMediaRange(40)), deleteDelay: 0, extraArgs: store.args() };
      chromium = await Chromium.launch();
    }, 60_000);

    afterEach(async () => {
      for (const leg of legs.splice(0)) leg.close();
      for (const peer of peers.splice(0)) await peer.close();
    });

    afterAll(async () => {
      await chromium?.close();
      ng?.close();
      await relay?.stop();
      await store?.close();
    });

    async function startRelay(): Promise<void> {
      relay = await startNgrelay(options);
      ng?.close();
      ng = await NgRawClient.open(options.ngPort);
    }

    function diagnostics(): string {
      return `\n${relay?.process.describe(30) ?? ''}\n--- browser console\n${(chromium?.consoleLines ?? []).join('\n')}`;
    }

    it('media both ways within 1 s of the restart, DTLS stays connected with the same certificate, no handshake, consent goes on', async () => {
      await startRelay();
      const id = `webrtc-restart-${randomBytes(4).toString('hex')}`;
      const browser = await chromium!.peer();
      peers.push(browser);
      const browserOffer = keepLoopbackCandidates(await browser.offer());
      const offer = await ngOk(ng!, { command: 'offer', 'call-id': id, 'from-tag': 'browser', sdp: browserOffer, ...TOWARDS_SIP });
      const [audio] = parseMediaLines(sdpOf(offer));
      const phone = await PlainRtpLeg.open('audio');
      legs.push(phone);
      phone.sendTo({ address: audio!.address, port: audio!.port });
      const codec = plainChoice(audio!);
      const answer = await ngOk(ng!, {
        command: 'answer', 'call-id': id, 'from-tag': 'browser', 'to-tag': 'sipphone',
        sdp: plainSdp(PHONE, [{ kind: 'audio', port: phone.port, ...codec }]), ...TOWARDS_BROWSER,
      });
      const browserFingerprint = /^a=fingerprint:sha-256 (\S+)/m.exec(browserOffer)?.[1] ?? '';
      const [toBrowser] = parseMediaLines(sdpOf(answer));
      const relayFingerprint = (attributeValues(toBrowser!, 'fingerprint')[0] ?? '').split(' ')[1] ?? '';
      expect(relayFingerprint).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/i);
      await browser.acceptAnswer(sdpOf(answer));
      phone.startStream(codec.payloadType, PHONE_PACKET_LIMIT);

      let view = await transportView(browser);
      const connectDeadline = Date.now() + 10_000;
      while ((view.inboundPackets < 50 || phone.rtpReceived < 50) && Date.now() < connectDeadline) {
        await sleep(100);
        view = await transportView(browser);
      }
      expect(view.inboundPackets, `browser receives before the crash${diagnostics()}`).toBeGreaterThanOrEqual(50);
      expect(phone.rtpReceived, `phone receives before the crash${diagnostics()}`).toBeGreaterThanOrEqual(50);
      expect(view.dtlsStates).toEqual(['connected']);
      expect(view.remoteFingerprints.map((f) => f.toUpperCase())).toEqual([relayFingerprint.toUpperCase()]);
      expect(relay!.process.stderrText).toContain('DTLS-SRTP handshake done');
      await sleep(BEFORE_CRASH_MS);

      // kill -9, and the same command line again.
      relay!.process.killNow();
      await relay!.process.exited;
      relay = undefined;
      await startRelay();
      const restartedMs = Date.now();
      const atRestart = await transportView(browser);
      const phoneAtRestart = phone.rtpReceived;

      // Within 1 s of the relay answering again: media both ways.
      let browserBackMs = Infinity;
      let phoneBackMs = Infinity;
      const views: Array<TransportView & { atMs: number }> = [];
      while (Date.now() - restartedMs < AFTER_RESTART_MS) {
        const v = await transportView(browser);
        const now = Date.now() - restartedMs;
        views.push({ ...v, atMs: now });
        if (browserBackMs === Infinity && v.inboundPackets > atRestart.inboundPackets + 5) browserBackMs = now;
        if (phoneBackMs === Infinity && phone.rtpReceived > phoneAtRestart + 5) phoneBackMs = now;
        await sleep(100);
      }
      const last = views[views.length - 1]!;
      const summary = `restart: browser back after ${browserBackMs} ms, phone after ${phoneBackMs} ms; at restart ${JSON.stringify(atRestart)}; last ${JSON.stringify(last)}${diagnostics()}`;
      if (process.env.NGR_WEBRTC_DEBUG) console.log(summary);
      expect(browserBackMs, summary).toBeLessThan(1000);
      expect(phoneBackMs, summary).toBeLessThan(1000);
      // DTLS never left 'connected' and the certificate is the one of the first handshake.
      for (const v of views) {
        const at = `at ${v.atMs} ms: ${summary}`;
        expect(v.connectionState, at).toBe('connected');
        expect(v.dtlsStates, at).toEqual(['connected']);
        expect(v.remoteFingerprints.map((f) => f.toUpperCase()), at).toEqual([relayFingerprint.toUpperCase()]);
      }
      // Still flowing at the end: the last 2 s each way (50 packets a second).
      const twoSecondsBefore = views.find((v) => v.atMs >= last.atMs - 2000)!;
      expect(last.inboundPackets - twoSecondsBefore.inboundPackets, summary).toBeGreaterThan(50);
      const phoneBefore = phone.rtpReceived;
      await sleep(1000);
      expect(phone.rtpReceived - phoneBefore, summary).toBeGreaterThan(30);
      // Consent freshness: the browser's checks went on after the restart and were answered by the new relay.
      expect(last.requestsSent, summary).toBeGreaterThan(atRestart.requestsSent);
      expect(last.responsesReceived, summary).toBeGreaterThan(atRestart.responsesReceived);
      // The restarted relay restored the call and made no handshake.
      expect(relay!.process.stderrText, summary).toMatch(new RegExp(`"call-id":"${id}".*call restored`));
      expect(relay!.process.stderrText, summary).not.toContain('DTLS-SRTP handshake');
      // Its own view (query): the browser's stream is DTLS 'connected' with the browser's certificate, and it
      // answered the browser's consent checks since the restart (its counters start at the restart).
      const browserStream = streamsOf(await ngOk(ng!, { command: 'query', 'call-id': id })).find((st) => isPlainDict(st['DTLS']));
      const dtls = browserStream?.['DTLS'] as Plain | undefined;
      const ice = browserStream?.['ICE'] as Plain | undefined;
      expect(dtls?.['state'], summary).toBe('connected');
      expect(String(dtls?.['peer fingerprint']).toUpperCase(), summary).toBe(`SHA-256 ${browserFingerprint.toUpperCase()}`);
      expect(Number(ice?.['checks received']), summary).toBeGreaterThan(0);

      // A re-INVITE from the browser after the restart: the relay's answer carries the certificate the DTLS
      // session has (a new one would make Chromium start a new handshake), and the call goes on as it was.
      const reOffer = await ngOk(ng!, { command: 'offer', 'call-id': id, 'from-tag': 'browser', sdp: keepLoopbackCandidates(await renegotiate(browser)), ...TOWARDS_SIP });
      expect(parseMediaLines(sdpOf(reOffer))[0]?.port, 'the phone keeps its relay port').toBe(audio!.port);
      const reAnswer = await ngOk(ng!, {
        command: 'answer', 'call-id': id, 'from-tag': 'browser', 'to-tag': 'sipphone',
        sdp: plainSdp(PHONE, [{ kind: 'audio', port: phone.port, ...codec }]), ...TOWARDS_BROWSER,
      });
      const again = (attributeValues(parseMediaLines(sdpOf(reAnswer))[0]!, 'fingerprint')[0] ?? '').split(' ')[1] ?? '';
      expect(again.toUpperCase(), 'the re-INVITE\'s a=fingerprint').toBe(relayFingerprint.toUpperCase());
      await browser.acceptAnswer(sdpOf(reAnswer));
      const afterReinvite = await transportView(browser);
      const phoneAfterReinvite = phone.rtpReceived;
      await sleep(2000);
      const end = await transportView(browser);
      const endSummary = `after the re-INVITE: ${JSON.stringify(afterReinvite)} -> ${JSON.stringify(end)}${diagnostics()}`;
      expect(end.dtlsStates, endSummary).toEqual(['connected']);
      expect(end.remoteFingerprints.map((f) => f.toUpperCase()), endSummary).toEqual([relayFingerprint.toUpperCase()]);
      expect(end.inboundPackets - afterReinvite.inboundPackets, endSummary).toBeGreaterThan(50);
      expect(phone.rtpReceived - phoneAfterReinvite, endSummary).toBeGreaterThan(50);
      expect(relay!.process.stderrText, endSummary).not.toContain('DTLS-SRTP handshake');
      await ngOk(ng!, { command: 'delete', 'call-id': id, 'from-tag': 'browser' });
    }, 90_000);
  });
}
