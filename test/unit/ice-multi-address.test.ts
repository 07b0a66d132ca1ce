/**
 * ICE with several addresses per interface name in the control plane (src/call/ice-sockets.ts), on the fake
 * data plane: which sockets a media gets and gives back, the rules they get (sink, DTLS key source, who
 * nominates), what `ice-selected` and a completed handshake change, and that a failed command leaves nothing.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import { CallManager } from '../../src/call/call-manager';
import type { SignalRequest } from '../../src/call/signal';
import type { MediaState } from '../../src/call/state';
import type { InterfaceConfig } from '../../src/config/types';
import { FakeDataPlane } from '../support/fake-dataplane';
import { signalRequest, testConfig } from '../support/call-fixtures';

const logger = pino({ level: 'silent' });
const FIXTURES = path.join(__dirname, '..', 'fixtures', 'sdp', 'webrtc');
const fixture = (name: string): Buffer => readFileSync(path.join(FIXTURES, name));
const candidates = (b: Buffer): string[] => b.toString('latin1').split('\r\n').filter((l) => l.startsWith('a=candidate:'));

const TWO: InterfaceConfig[] = [
  { name: 'default', address: '127.0.0.1', advertised: '203.0.113.1', family: 'IPv4' },
  { name: 'default', address: '127.0.0.2', advertised: '203.0.113.2', family: 'IPv4' },
];
const TO_SIP: Partial<SignalRequest> = { ice: 'remove', transportProtocol: 'RTP/AVP', rtcpMux: new Set(['demux']), dtls: 'off', sdes: ['off'] };
const TO_BROWSER: Partial<SignalRequest> = { ice: 'force', transportProtocol: 'UDP/TLS/RTP/SAVPF', rtcpMux: new Set(['offer', 'require']), dtls: 'passive', sdes: ['off'] };

describe('ICE with several addresses per interface name (control plane)', () => {
  let dp: FakeDataPlane;
  let cm: CallManager;

  beforeEach(() => {
    dp = new FakeDataPlane({ dtls: true });
    cm = new CallManager(testConfig({ interfaces: TWO }), dp, logger);
  });

  /** The browser calls a phone; returns the browser's media and the phone's. */
  function browserCall(): { browser: MediaState; phone: MediaState; answer: Buffer } {
    cm.offer(signalRequest({ sdp: fixture('chromium-audio-offer.sdp'), ...TO_SIP }));
    const answer = cm.answer(signalRequest({ toTag: 'callee', sdp: fixture('sip-audio-answer.sdp'), ...TO_BROWSER }));
    const call = [...cm.calls.values()][0]!;
    return { browser: call.monologues[0]!.medias[0]!, phone: call.monologues[1]!.medias[0]!, answer };
  }

  it('a socket per address for the ICE party (same port), one host candidate each; the plain party keeps one', () => {
    const { browser, phone, answer } = browserCall();
    expect(browser.iceSockets).toHaveLength(1);
    const extra = browser.iceSockets![0]!;
    expect(extra.rtp).toMatchObject({ localAddress: '127.0.0.2', localPort: browser.rtp.localPort, advertisedAddress: '203.0.113.2' });
    // rtcp-mux settled by the answer: the extra's RTCP shares its RTP socket, as the media's own does.
    expect(extra.rtcp.muxedWith).toBe(extra.rtp.id);
    expect(phone.iceSockets).toBeUndefined();
    const cands = candidates(answer);
    expect(cands).toHaveLength(2);
    expect(cands[0]).toMatch(new RegExp(`^a=candidate:\\S+ 1 UDP 2130706431 203\\.0\\.113\\.1 ${browser.rtp.localPort} typ host$`));
    expect(cands[1]).toMatch(new RegExp(`^a=candidate:\\S+ 1 UDP 2130706175 203\\.0\\.113\\.2 ${browser.rtp.localPort} typ host$`));
    expect(cands[0]!.split(' ')[0]).not.toBe(cands[1]!.split(' ')[0]);
    // Both sockets run ICE and take the media's DTLS keys from its own socket; the phone's media goes to the
    // browser out of the media's own socket until ICE nominates another.
    for (const id of [browser.rtp.id, extra.rtp.id]) expect(dp.streams.get(id)!.rule.ice).toBeTruthy();
    expect(dp.streams.get(extra.rtp.id)!.rule.crypto?.inbound).toEqual({ dtlsOf: browser.rtp.id });
    expect(dp.streams.get(extra.rtp.id)!.rule.sink).toBe(phone.rtp.id);
    expect(dp.streams.get(phone.rtp.id)!.rule).toMatchObject({ sink: browser.rtp.id, crypto: { outbound: { dtlsOf: browser.rtp.id } } });
  });

  it('ice-selected on the second socket sends from it; a handshake done there keys every socket', () => {
    const { browser, phone } = browserCall();
    const extra = browser.iceSockets![0]!;
    expect(cm.socketEvent(extra.rtp.id, 'ice-selected')).not.toBeNull();
    expect(dp.streams.get(phone.rtp.id)!.rule).toMatchObject({ sink: extra.rtp.id, crypto: { outbound: { dtlsOf: browser.rtp.id } } });
    // The same event again changes nothing.
    expect(cm.socketEvent(extra.rtp.id, 'ice-selected')).toBeNull();
    expect(cm.socketEvent(extra.rtp.id, 'dtls-done')).not.toBeNull();
    for (const id of [browser.rtp.id, extra.rtp.id]) expect(dp.streams.get(id)!.rule.crypto?.inbound).toEqual({ dtlsOf: extra.rtp.id });
    expect(dp.streams.get(phone.rtp.id)!.rule.crypto?.outbound).toEqual({ dtlsOf: extra.rtp.id });
    // Back to the first socket.
    expect(cm.socketEvent(browser.rtp.id, 'ice-selected')).not.toBeNull();
    expect(dp.streams.get(phone.rtp.id)!.rule.sink).toBe(browser.rtp.id);
    // A stream of a media with one socket: nothing to do.
    expect(cm.socketEvent(phone.rtp.id, 'ice-selected')).toBeNull();
  });

  it('relay controlling: only the first socket checks and nominates, the other answers as lite', () => {
    cm.offer(signalRequest({ sdp: fixture('sip-audio-offer.sdp'), ...TO_BROWSER }));
    cm.answer(signalRequest({ toTag: 'callee', sdp: fixture('chromium-audio-answer.sdp'), ...TO_SIP }));
    const browser = [...cm.calls.values()][0]!.monologues[1]!.medias[0]!;
    expect(browser.webrtc?.ice?.controlling).toBe(true);
    expect(dp.streams.get(browser.rtp.id)!.rule.ice).toMatchObject({ controlling: true, lite: false });
    expect(dp.streams.get(browser.iceSockets![0]!.rtp.id)!.rule.ice).toMatchObject({ controlling: true, lite: true });
  });

  it('delete returns every port; a re-offer without ICE closes the extra sockets', () => {
    const { browser } = browserCall();
    const extraId = browser.iceSockets![0]!.rtp.id;
    const before = dp.streams.size;
    // The browser re-offers and the relay is told to give it no ICE any more... the phone side stays plain.
    cm.offer(signalRequest({ sdp: fixture('chromium-audio-offer.sdp'), ...TO_SIP }));
    cm.answer(signalRequest({ toTag: 'callee', sdp: fixture('sip-audio-answer.sdp'), ...TO_BROWSER, ice: 'remove' }));
    const now = [...cm.calls.values()][0]!.monologues[0]!.medias[0]!;
    expect(now.iceSockets).toBeUndefined();
    expect(dp.streams.has(extraId)).toBe(false);
    expect(dp.streams.size).toBeLessThan(before);
    cm.delete({ callId: 'call-1', fromTag: 'A', toTag: null, viaBranch: null, deleteDelay: 0, fatal: false, fast: true });
    expect(dp.streams.size).toBe(0);
    expect(cm.sockets.allocator('127.0.0.2').counts().used).toBe(0);
    expect(cm.sockets.allocator('127.0.0.1').counts().used).toBe(0);
  });

  it('a command that fails after opening the extra sockets leaves none behind', () => {
    cm.offer(signalRequest({ sdp: fixture('chromium-audio-offer.sdp'), ...TO_SIP }));
    const media = (): MediaState => [...cm.calls.values()][0]!.monologues[0]!.medias[0]!;
    // The offerer's ICE is remembered at the offer: its sockets are there already, RTCP not muxed yet.
    const extrasBefore = media().iceSockets;
    expect(extrasBefore?.[0]?.rtcp.muxedWith).toBeNull();
    const before = new Set(dp.streams.keys());
    const failing = dp.updateStream.bind(dp);
    let calls = 0;
    dp.updateStream = (id, rule) => {
      if (++calls === 3) throw new Error('refused');
      failing(id, rule);
    };
    expect(() => cm.answer(signalRequest({ toTag: 'callee', sdp: fixture('sip-audio-answer.sdp'), ...TO_BROWSER }))).toThrow('refused');
    dp.updateStream = failing;
    // The muxed RTCP streams the answer opened for both sockets are gone again, the call is as it was.
    expect(new Set(dp.streams.keys())).toEqual(before);
    expect(media().iceSockets).toEqual(extrasBefore);
  });
});
