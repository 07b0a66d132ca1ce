/**
 * BUNDLE (RFC 9143, issue 12 item 4) with a real browser: headless Chromium with `bundlePolicy: 'max-bundle'`
 * (audio and video on ONE ICE/DTLS transport) on one side of the relay, a plain RTP/AVP phone with two m= lines
 * on two ports on the other, driven with the Kamailio WebRTC flag sets (test/support/webrtc-relays.ts).
 *   1. the browser offers max-bundle; the phone answers both m= lines on its own two ports;
 *   2. the phone offers audio+video with `bundle: [offer]` towards the browser (rtpengine's key for a bundled
 *      outgoing offer), the max-bundle browser answers;
 *   3. (ngrelay) browser to browser, both max-bundle: each leg its own bundled transport and DTLS handshake.
 * Each needs >= 100 RTP packets each way per media, counted at the phone per port and by the browser's getStats()
 * on both tracks, over one connected transport. The rtpengine 10.5 row asserts what 10.5 really does instead
 * (it answers and offers unbundled, a transport per m= line, which a max-bundle Chromium refuses), so the
 * comparison stays honest.
 * NGR_WEBRTC_DEBUG=1 prints every SDP the relay returns.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BrowserPeer, Chromium, PeerStats, waitForStats } from '../support/browser';
import { until } from '../support/counting-party';
import { NgRawClient } from '../support/ng-client';
import { PlainRtpLeg } from '../support/plain-phone';
import type { RelayUnderTest } from '../support/relay';
import { attributeValues, keepLoopbackCandidates, MediaLine, parseMediaLines, plainChoice, plainSdp } from '../support/webrtc-sdp';
import { relayOptions, TOWARDS_BROWSER, TOWARDS_SIP, WEBRTC_RELAYS, ngOk, sdpOf, type Plain } from '../support/webrtc-relays';

const MIN_PACKETS = 100;
const PHONE_PACKET_LIMIT = 400;
const MEDIA_WAIT_MS = 12_000;
const PHONE = '127.0.0.1';

/** The SIP side: two plain m= lines on two ports, nothing of the bundle, ICE or DTLS. */
function expectUnbundledPlain(sdp: string): MediaLine[] {
  const media = parseMediaLines(sdp);
  expect(media.map((m) => m.kind), sdp).toEqual(['audio', 'video']);
  expect(sdp, 'no a=group towards the SIP phone').not.toMatch(/a=group:BUNDLE/);
  for (const m of media) {
    expect(m.proto, sdp).toBe('RTP/AVP');
    expect(m.port, sdp).toBeGreaterThan(0);
    for (const name of ['fingerprint', 'setup', 'ice-ufrag', 'candidate', 'rtcp-mux', 'bundle-only']) {
      expect(attributeValues(m, name), `a=${name} leaked to the SIP side:\n${sdp}`).toEqual([]);
    }
  }
  expect(media[0]!.port, sdp).not.toBe(media[1]!.port);
  return media;
}

/** The browser side bundled: one port, one ICE ufrag, one fingerprint, the group naming both mids. */
function expectBundledWebrtc(sdp: string): void {
  const media = parseMediaLines(sdp);
  expect(media.map((m) => m.kind), sdp).toEqual(['audio', 'video']);
  const mids = media.map((m) => attributeValues(m, 'mid')[0]);
  expect(sdp, sdp).toContain(`a=group:BUNDLE ${mids.join(' ')}`);
  expect(new Set(media.map((m) => m.port)).size, `one transport port:\n${sdp}`).toBe(1);
  expect(new Set(media.map((m) => attributeValues(m, 'ice-ufrag')[0])).size, sdp).toBe(1);
  for (const m of media) {
    expect(m.proto, sdp).toBe('UDP/TLS/RTP/SAVPF');
    expect(attributeValues(m, 'rtcp-mux'), sdp).toEqual(['']);
    expect(attributeValues(m, 'fingerprint').length, sdp).toBeGreaterThan(0);
    expect(attributeValues(m, 'candidate').every((c) => c.includes(` ${media[0]!.port} typ host`)), sdp).toBe(true);
  }
}

function callId(scenario: string): string {
  return `bundle-${scenario}-${randomBytes(4).toString('hex')}`;
}

for (const row of WEBRTC_RELAYS) {
  describe(`BUNDLE: max-bundle browser <-> two-port SIP phone through ${row.name}`, () => {
    let relay: RelayUnderTest | undefined;
    let ng: NgRawClient | undefined;
    let chromium: Chromium | undefined;
    const peers: BrowserPeer[] = [];
    const legs: PlainRtpLeg[] = [];

    beforeAll(async () => {
      relay = await row.start(await relayOptions());
      ng = await NgRawClient.open(relay.ngPort);
      chromium = await Chromium.launch();
    });

    afterEach(async () => {
      for (const leg of legs.splice(0)) leg.close();
      for (const peer of peers.splice(0)) await peer.close();
    });

    afterAll(async () => {
      await chromium?.close();
      ng?.close();
      await relay?.stop();
    });

    async function browserPeer(): Promise<BrowserPeer> {
      const p = await chromium!.peer({ video: true, bundlePolicy: 'max-bundle' });
      peers.push(p);
      return p;
    }

    async function leg(kind: 'audio' | 'video'): Promise<PlainRtpLeg> {
      const l = await PlainRtpLeg.open(kind);
      legs.push(l);
      return l;
    }

    function diagnostics(): string {
      return `\n--- ${row.name}\n${relay?.process.describe(20) ?? ''}\n--- browser console\n${(chromium?.consoleLines ?? []).join('\n')}`;
    }

    async function hangUp(id: string, fromTag: string): Promise<void> {
      await ngOk(ng!, { command: 'delete', 'call-id': id, 'from-tag': fromTag });
      const list = await ngOk(ng!, { command: 'list', limit: 100 });
      expect((list.calls as string[] | undefined) ?? []).not.toContain(id);
    }

    /** PCMU from the phone's audio port, the browser's own video echoed from its video port; both ways counted. */
    async function expectMediaBothWays(browser: BrowserPeer, phoneAudio: PlainRtpLeg, phoneVideo: PlainRtpLeg, audioPt: number, videoPt: number): Promise<PeerStats> {
      phoneAudio.startStream(audioPt, PHONE_PACKET_LIMIT);
      phoneVideo.startEcho(PHONE_PACKET_LIMIT * 4);
      const stats = await waitForStats(
        browser,
        `browser receives and sends ${MIN_PACKETS} RTP packets on both tracks${diagnostics()}`,
        (s) =>
          (s.inbound.audio ?? 0) >= MIN_PACKETS && (s.inbound.video ?? 0) >= MIN_PACKETS &&
          (s.outbound.audio ?? 0) >= MIN_PACKETS && (s.outbound.video ?? 0) >= MIN_PACKETS,
        MEDIA_WAIT_MS,
      );
      await until(
        `phone receives ${MIN_PACKETS} RTP per port (audio ${phoneAudio.rtpReceived}, video ${phoneVideo.rtpReceived})${diagnostics()}`,
        () => phoneAudio.rtpReceived >= MIN_PACKETS && phoneVideo.rtpReceived >= MIN_PACKETS,
        MEDIA_WAIT_MS,
      );
      // Demultiplexed: each SIP port got its own m= line's packets only.
      expect([...phoneAudio.payloadTypesSeen]).toEqual([audioPt]);
      expect([...phoneVideo.payloadTypesSeen]).toEqual([videoPt]);
      const final = await browser.stats();
      expect(final.transports.length, JSON.stringify(final)).toBe(1);
      expect(final.transports[0]!.dtlsState, JSON.stringify(final)).toBe('connected');
      expect(final.transports[0]!.selectedPairState, JSON.stringify(final)).toBe('succeeded');
      return stats;
    }

    it('1: the browser offers max-bundle audio+video; the phone answers on two ports', async () => {
      const id = callId('browser-offers');
      const browser = await browserPeer();
      const browserOffer = keepLoopbackCandidates(await browser.offer());
      expect(browserOffer).toMatch(/a=group:BUNDLE 0 1/);
      const offer = await ngOk(ng!, { command: 'offer', 'call-id': id, 'from-tag': 'browser', sdp: browserOffer, ...TOWARDS_SIP });
      const [audio, video] = expectUnbundledPlain(sdpOf(offer));
      const phoneAudio = await leg('audio');
      const phoneVideo = await leg('video');
      phoneAudio.sendTo({ address: audio!.address, port: audio!.port });
      phoneVideo.sendTo({ address: video!.address, port: video!.port });
      const audioCodec = plainChoice(audio!);
      const videoCodec = plainChoice(video!);
      const answer = await ngOk(ng!, {
        command: 'answer', 'call-id': id, 'from-tag': 'browser', 'to-tag': 'sipphone',
        sdp: plainSdp(PHONE, [{ kind: 'audio', port: phoneAudio.port, ...audioCodec }, { kind: 'video', port: phoneVideo.port, ...videoCodec }]),
        ...TOWARDS_BROWSER,
      });
      const browserAnswer = sdpOf(answer);
      if (!row.bundles) {
        // rtpengine 10.5: no a=group, a transport (own port and ICE credentials) per m= line; Chromium refuses it.
        expect(browserAnswer).not.toMatch(/a=group:BUNDLE/);
        const media = parseMediaLines(browserAnswer);
        expect(new Set(media.map((m) => m.port)).size, browserAnswer).toBe(2);
        await expect(browser.acceptAnswer(browserAnswer)).rejects.toThrow(/BUNDLE group/);
        await hangUp(id, 'browser');
        return;
      }
      expectBundledWebrtc(browserAnswer);
      await browser.acceptAnswer(browserAnswer);
      await expectMediaBothWays(browser, phoneAudio, phoneVideo, audioCodec.payloadType, videoCodec.payloadType);
      // query: each m= line of the browser counts its own packets (the video ones arrived on the audio port).
      const query = await ngOk(ng!, { command: 'query', 'call-id': id });
      const browserMedias = ((query.tags as Plain).browser as Plain).medias as Plain[];
      expect(browserMedias.map((m) => (m.flags as string[]).includes('bundle'))).toEqual([true, true]);
      const rtpStats = browserMedias.map((m) => ((m.streams as Plain[])[0]!.stats as Plain));
      expect(rtpStats[1]!.packets as number, JSON.stringify(rtpStats)).toBeGreaterThanOrEqual(MIN_PACKETS);
      expect(rtpStats[0]!.packets as number, JSON.stringify(rtpStats)).toBeGreaterThanOrEqual(MIN_PACKETS);
      expect(typeof rtpStats[0]!['bundle unmatched'], JSON.stringify(rtpStats)).toBe('number');
      await hangUp(id, 'browser');
    }, 40_000);

    it('2: the phone offers audio+video with bundle=offer; the max-bundle browser answers', async () => {
      const id = callId('phone-offers');
      const phoneAudio = await leg('audio');
      const phoneVideo = await leg('video');
      const offer = await ngOk(ng!, {
        command: 'offer', 'call-id': id, 'from-tag': 'sipphone',
        sdp: plainSdp(PHONE, [
          { kind: 'audio', port: phoneAudio.port, payloadType: 0, encoding: 'PCMU/8000' },
          { kind: 'video', port: phoneVideo.port, payloadType: 96, encoding: 'VP8/90000' },
        ]),
        ...TOWARDS_BROWSER,
        bundle: ['offer'],
      });
      const browserOfferSdp = sdpOf(offer);
      const browser = await browserPeer();
      if (!row.bundles) {
        // rtpengine 10.5 does not know `bundle`: an unbundled offer, which a max-bundle Chromium cannot answer.
        expect(browserOfferSdp).not.toMatch(/a=group:BUNDLE/);
        expect(new Set(parseMediaLines(browserOfferSdp).map((m) => m.port)).size, browserOfferSdp).toBe(2);
        await expect(browser.answer(browserOfferSdp)).rejects.toThrow(/max-bundle is used but no bundle group found/);
        await hangUp(id, 'sipphone');
        return;
      }
      expectBundledWebrtc(browserOfferSdp);
      const browserAnswer = keepLoopbackCandidates(await browser.answer(browserOfferSdp));
      expect(browserAnswer, browserAnswer).toMatch(/a=group:BUNDLE/);
      const answer = await ngOk(ng!, {
        command: 'answer', 'call-id': id, 'from-tag': 'sipphone', 'to-tag': 'browser', sdp: browserAnswer, ...TOWARDS_SIP,
      });
      const [audio, video] = expectUnbundledPlain(sdpOf(answer));
      phoneAudio.sendTo({ address: audio!.address, port: audio!.port });
      phoneVideo.sendTo({ address: video!.address, port: video!.port });
      await expectMediaBothWays(browser, phoneAudio, phoneVideo, 0, 96);
      await hangUp(id, 'sipphone');
    }, 40_000);

    if (row.bundles) {
      it('3: browser to browser, both max-bundle: audio and video both ways, one transport per leg', async () => {
        const id = callId('browser-browser');
        const caller = await browserPeer();
        const callee = await browserPeer();
        const callerOffer = keepLoopbackCandidates(await caller.offer());
        const offer = await ngOk(ng!, {
          command: 'offer', 'call-id': id, 'from-tag': 'caller', sdp: callerOffer, ...TOWARDS_BROWSER, bundle: ['offer'],
        });
        expectBundledWebrtc(sdpOf(offer));
        const calleeAnswer = keepLoopbackCandidates(await callee.answer(sdpOf(offer)));
        const answer = await ngOk(ng!, {
          command: 'answer', 'call-id': id, 'from-tag': 'caller', 'to-tag': 'callee', sdp: calleeAnswer, ...TOWARDS_BROWSER,
        });
        expectBundledWebrtc(sdpOf(answer));
        await caller.acceptAnswer(sdpOf(answer));
        const flowing = (s: PeerStats): boolean =>
          (s.inbound.audio ?? 0) >= MIN_PACKETS && (s.inbound.video ?? 0) >= MIN_PACKETS &&
          (s.outbound.audio ?? 0) >= MIN_PACKETS && (s.outbound.video ?? 0) >= MIN_PACKETS;
        for (const [name, peer] of [['caller', caller], ['callee', callee]] as const) {
          const stats = await waitForStats(peer, `${name} receives and sends ${MIN_PACKETS} RTP on both tracks${diagnostics()}`, flowing, MEDIA_WAIT_MS);
          expect(stats.transports.length, JSON.stringify(stats)).toBe(1);
          expect(stats.transports[0]!.dtlsState, JSON.stringify(stats)).toBe('connected');
        }
        await hangUp(id, 'caller');
      }, 40_000);
    }
  });
}
