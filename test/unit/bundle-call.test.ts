/**
 * BUNDLE in the control plane (src/call/bundle.ts): which browser SDPs the relay keeps bundled, the SDP each
 * side gets, and the rules the data plane gets for a bundled call (test/support/fake-dataplane.ts). The
 * packets themselves: test/integration/bundle-demux.test.ts; with Chromium: test/e2e/webrtc-bundle.test.ts.
 */
import { pack, unpack } from 'msgpackr';
import pino from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import { CallManager } from '../../src/call/call-manager';
import { bundledMedia } from '../../src/call/bundle';
import type { SignalRequest } from '../../src/call/signal';
import type { CallState } from '../../src/call/state';
import type { StreamRule } from '../../src/dataplane/types';
import { normalizeRequest } from '../../src/ng/request';
import { parseSdp } from '../../src/sdp/parse';
import { FakeDataPlane } from '../support/fake-dataplane';
import { signalRequest, testConfig } from '../support/call-fixtures';

const logger = pino({ level: 'silent' });
const lines = (b: Buffer): string[] => b.toString('latin1').split('\r\n').filter((l) => l !== '');
const mPorts = (b: Buffer): number[] => lines(b).filter((l) => l.startsWith('m=')).map((l) => Number(l.split(' ')[1]));

const TO_SIP: Partial<SignalRequest> = { ice: 'remove', transportProtocol: 'RTP/AVP', rtcpMux: new Set(['demux']), dtls: 'off', sdes: ['off'] };
const TO_BROWSER: Partial<SignalRequest> = {
  ice: 'force',
  transportProtocol: 'UDP/TLS/RTP/SAVPF',
  rtcpMux: new Set(['require']),
  dtls: 'passive',
  sdes: ['off'],
};

type Shape = 'max-bundle' | 'balanced' | 'bundle-only';

/** A Chromium-like audio+video offer: max-bundle (video shares audio's port, no candidates), balanced, or bundle-only. */
function browserOffer(shape: Shape): Buffer {
  const videoPort = shape === 'balanced' ? 50002 : shape === 'bundle-only' ? 0 : 50000;
  const common = (mid: string): string[] => [
    'c=IN IP4 127.0.0.1',
    'a=ice-ufrag:Ufr1',
    'a=ice-pwd:passwordpasswordpassword',
    'a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08',
    'a=setup:actpass',
    `a=mid:${mid}`,
    'a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid',
    'a=sendrecv',
    'a=rtcp-mux',
  ];
  return Buffer.from(
    [
      'v=0',
      'o=- 1 2 IN IP4 127.0.0.1',
      's=-',
      't=0 0',
      'a=group:BUNDLE 0 1',
      'm=audio 50000 UDP/TLS/RTP/SAVPF 111 0',
      ...common('0'),
      'a=rtpmap:111 opus/48000/2',
      'a=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host',
      `m=video ${videoPort} UDP/TLS/RTP/SAVPF 96 97`,
      ...common('1'),
      ...(shape === 'bundle-only' ? ['a=bundle-only'] : []),
      'a=rtpmap:96 VP8/90000',
      'a=rtpmap:97 rtx/90000',
      ...(shape === 'balanced' ? ['a=candidate:1 1 udp 2122260223 127.0.0.1 50002 typ host'] : []),
      '',
    ].join('\r\n'),
    'latin1',
  );
}

const PHONE_AV = Buffer.from(
  ['v=0', 'o=p 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', 'm=audio 40000 RTP/AVP 0', 'a=sendrecv', 'm=video 40010 RTP/AVP 96', 'a=rtpmap:96 VP8/90000', 'a=sendrecv', ''].join('\r\n'),
  'latin1',
);

describe('BUNDLE towards a WebRTC party', () => {
  let dp: FakeDataPlane;
  let cm: CallManager;
  beforeEach(() => {
    dp = new FakeDataPlane({ dtls: true });
    cm = new CallManager(testConfig(), dp, logger);
  });
  const stream = (port: number) => {
    const s = dp.byPort(port);
    if (!s) throw new Error(`no stream on ${port}`);
    return s;
  };
  const rule = (port: number): StreamRule => stream(port).rule;

  it('keeps max-bundle and bundle-only offers bundled, answers balanced ones a transport per m= line, and never with bundle=reject', () => {
    const policy = new Set<string>();
    expect([...bundledMedia(parseSdp(browserOffer('max-bundle')), policy).keys()]).toEqual([0, 1]);
    expect([...bundledMedia(parseSdp(browserOffer('bundle-only')), policy).keys()]).toEqual([0, 1]);
    expect(bundledMedia(parseSdp(browserOffer('balanced')), policy).size).toBe(0);
    expect([...bundledMedia(parseSdp(browserOffer('balanced')), new Set(['accept'])).keys()]).toEqual([0, 1]);
    expect(bundledMedia(parseSdp(browserOffer('max-bundle')), new Set(['reject'])).size).toBe(0);
    // Payload types unique to each m= line; the MID extension id from a=extmap.
    expect(bundledMedia(parseSdp(browserOffer('max-bundle')), policy).get(1)).toEqual({
      transportIndex: 0,
      memberIndexes: [0, 1],
      midExtensionId: 4,
      payloadTypes: [96, 97],
    });
  });

  for (const shape of ['max-bundle', 'bundle-only'] as const) {
    it(`${shape}: the phone gets two plain m= lines on two ports, the browser one bundled transport; the rules bundle video on audio`, () => {
      const offer = cm.offer(signalRequest({ sdp: browserOffer(shape), ...TO_SIP }));
      const [phoneAudioPort, phoneVideoPort] = mPorts(offer) as [number, number];
      expect(phoneVideoPort, 'the bundle-only m= line is not rejected').toBeGreaterThan(0);
      expect(phoneAudioPort).not.toBe(phoneVideoPort);
      expect(lines(offer).filter((l) => l.startsWith('a=group') || l.startsWith('a=bundle-only'))).toEqual([]);

      const answer = cm.answer(signalRequest({ sdp: PHONE_AV, toTag: 'B', ...TO_BROWSER }));
      const l = lines(answer);
      const [audioPort, videoPort] = mPorts(answer) as [number, number];
      expect(videoPort, 'both m= lines on the transport port').toBe(audioPort);
      expect(l).toContain('a=group:BUNDLE 0 1');
      expect(l.filter((x) => x.startsWith('a=mid:'))).toEqual(['a=mid:0', 'a=mid:1']);
      expect(new Set(l.filter((x) => x.startsWith('a=ice-ufrag:'))).size).toBe(1);
      expect(l.filter((x) => x.startsWith('a=candidate:')).every((c) => c.includes(` ${audioPort} typ host`))).toBe(true);

      // The transport: ICE, DTLS, its own SRTP, bundle naming itself. The video member: bundled on it, nothing else.
      const transport = stream(audioPort);
      const audioId = transport.spec.id;
      expect(transport.rule.bundle).toEqual({ transport: audioId, mid: '0', midExtensionId: 4, payloadTypes: [111, 0] });
      expect(transport.rule.ice).toBeTruthy();
      expect(transport.rule.dtls?.role).toBe('passive');
      const members = [...dp.streams.values()].filter((s) => s.rule.bundle?.transport === audioId && s.spec.id !== audioId);
      expect(members).toHaveLength(1);
      const video = members[0]!;
      expect(video.rule.bundle).toEqual({ transport: audioId, mid: '1', midExtensionId: 4, payloadTypes: [96, 97] });
      expect(video.rule.ice ?? null).toBeNull();
      expect(video.rule.dtls ?? null).toBeNull();
      expect(video.rule.crypto?.inbound ?? null).toBeNull();
      expect(video.spec.threadOf, 'on the transport thread').toBe(audioId);
      // The phone's video goes to the browser out of the transport, with the transport's DTLS keys.
      expect(rule(phoneVideoPort).sink).toBe(audioId);
      expect(rule(phoneVideoPort).crypto?.outbound).toEqual({ dtlsOf: audioId });
      const transportRtcp = [...dp.streams.values()].find((x) => x.spec.muxedWith === audioId);
      expect(rule(phoneVideoPort + 1).sink, 'RTCP too').toBe(transportRtcp?.spec.id);
      expect(rule(phoneAudioPort).sink).toBe(audioId);
    });
  }

  it('a bundled call restored from the state dir gets its bundle rules back, members on their transport\'s thread', () => {
    cm.offer(signalRequest({ sdp: browserOffer('max-bundle'), ...TO_SIP }));
    cm.answer(signalRequest({ sdp: PHONE_AV, toTag: 'B', ...TO_BROWSER }));
    const stored = unpack(pack(cm.calls.get('call-1'))) as CallState;
    const dp2 = new FakeDataPlane({ dtls: true });
    new CallManager(testConfig(), dp2, logger).restore(stored, (_s, r) => r);
    const bundled = [...dp.streams.values()].filter((s) => s.rule.bundle);
    expect(bundled).toHaveLength(2);
    for (const s of bundled) {
      const again = dp2.streams.get(s.spec.id);
      expect(again?.rule.bundle).toEqual(s.rule.bundle);
      if (s.rule.bundle?.transport !== s.spec.id) expect(again?.spec.threadOf).toBe(s.rule.bundle?.transport);
    }
  });

  it('balanced: answered unbundled, a transport per m= line (as rtpengine 10.5), no bundle rules', () => {
    cm.offer(signalRequest({ sdp: browserOffer('balanced'), ...TO_SIP }));
    const answer = cm.answer(signalRequest({ sdp: PHONE_AV, toTag: 'B', ...TO_BROWSER }));
    const [audioPort, videoPort] = mPorts(answer) as [number, number];
    expect(audioPort).not.toBe(videoPort);
    expect(lines(answer).filter((l) => l.startsWith('a=group'))).toEqual([]);
    expect([...dp.streams.values()].filter((s) => s.rule.bundle)).toEqual([]);
  });

  it('bundle=offer: the phone\'s offer reaches the browser bundled with generated mids; an answer without the group unbundles', () => {
    const offer = cm.offer(signalRequest({ sdp: PHONE_AV, fromTag: 'P', ...TO_BROWSER, bundle: new Set(['offer']) }));
    const [audioPort, videoPort] = mPorts(offer) as [number, number];
    expect(videoPort).toBe(audioPort);
    expect(lines(offer)).toContain('a=group:BUNDLE 1 2');
    expect(lines(offer).filter((x) => x.startsWith('a=mid:'))).toEqual(['a=mid:1', 'a=mid:2']);
    expect(rule(audioPort).bundle?.transport).toBe(stream(audioPort).spec.id);

    // The browser answers without a=group (it declined): each m= line its own transport again.
    const declined = Buffer.from(
      browserOffer('balanced').toString('latin1').replace('a=group:BUNDLE 0 1\r\n', '').replace('a=mid:0', 'a=mid:1').replace(/a=mid:1\r\na=extmap(.*)\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:96/, 'a=mid:2\r\na=extmap$1\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:96'),
      'latin1',
    );
    cm.answer(signalRequest({ sdp: declined, fromTag: 'P', toTag: 'B', ...TO_SIP }));
    expect([...dp.streams.values()].filter((s) => s.rule.bundle)).toEqual([]);
  });

  it('a re-offer that bundles m= lines opened unbundled gives the new member sockets on its transport\'s thread', () => {
    const first = cm.offer(signalRequest({ sdp: PHONE_AV, fromTag: 'P', ...TO_BROWSER }));
    const [audioPort, videoPort] = mPorts(first) as [number, number];
    expect(videoPort).not.toBe(audioPort);
    const oldVideoId = stream(videoPort).spec.id;
    const again = cm.offer(signalRequest({ sdp: PHONE_AV, fromTag: 'P', ...TO_BROWSER, bundle: new Set(['offer']) }));
    expect(mPorts(again)).toEqual([audioPort, audioPort]);
    const audioId = stream(audioPort).spec.id;
    expect(dp.streams.has(oldVideoId), 'the unbundled video socket is gone').toBe(false);
    const members = [...dp.streams.values()].filter((x) => x.rule.bundle?.transport === audioId && x.spec.id !== audioId);
    expect(members).toHaveLength(1);
    expect(members[0]!.spec.threadOf).toBe(audioId);
  });

  it('the ng bundle key and bundle-X flags reach the request as rtpengine spells them', () => {
    const req = normalizeRequest({ command: Buffer.from('offer'), bundle: [Buffer.from('accept')], flags: [Buffer.from('bundle-offer')] });
    expect([...req.bundle].sort()).toEqual(['accept', 'offer']);
  });
});
