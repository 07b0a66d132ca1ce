/**
 * WebRTC in the control plane: the SDP a browser and a SIP phone get from ngrelay with Kamailio's WebRTC flags,
 * and the ICE / DTLS-SRTP / crypto parts of the rules the data plane gets (test/support/fake-dataplane.ts).
 * The same fixtures go to rtpengine 10.5 in test/compat/webrtc-sdp.test.ts.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import { CallManager } from '../../src/call/call-manager';
import type { SignalRequest } from '../../src/call/signal';
import { DtlsUnavailableError, hostPriority, relayControls, roleAgainst, unknownWebrtcValues } from '../../src/call/webrtc-negotiation';
import { parseSdp } from '../../src/sdp/parse';
import { callStatistics } from '../../src/commands/query-reply';
import { normalizeRequest } from '../../src/ng/request';
import { signal } from '../../src/commands/handler';
import type { NgDict, NgValue } from '../../src/ng/types';
import type { StreamRule } from '../../src/dataplane/types';
import { FakeDataPlane, fakeFingerprint } from '../support/fake-dataplane';
import { pack, unpack } from 'msgpackr';
import type { CallState } from '../../src/call/state';
import { signalRequest, testConfig } from '../support/call-fixtures';

const logger = pino({ level: 'silent' });
const FIXTURES = path.join(__dirname, '..', 'fixtures', 'sdp', 'webrtc');
const fixture = (name: string): Buffer => readFileSync(path.join(FIXTURES, name));
const lines = (b: Buffer): string[] => b.toString('latin1').split('\r\n').filter((l) => l !== '');
const attr = (b: Buffer, name: string): string[] => lines(b).filter((l) => l.startsWith(`a=${name}`));
const mPort = (b: Buffer): number => Number(lines(b).find((l) => l.startsWith('m='))?.split(' ')[1]);
const FAKE_SHA256 = `a=fingerprint:sha-256 ${Array(32).fill('AB').join(':')}`;
const CHROMIUM_FINGERPRINT = '7B8BF0655F78E2513BAC6FF33F461B35DCB85F641A24C243F0A158D0A12C1908';

/** Kamailio's usual flags towards the SIP side and towards the browser (README "WebRTC"). */
const TO_SIP: Partial<SignalRequest> = {
  ice: 'remove',
  transportProtocol: 'RTP/AVP',
  rtcpMux: new Set(['demux']),
  dtls: 'off',
  sdes: ['off'],
};
const TO_BROWSER: Partial<SignalRequest> = {
  ice: 'force',
  transportProtocol: 'UDP/TLS/RTP/SAVPF',
  rtcpMux: new Set(['offer', 'require']),
  dtls: 'passive',
  sdes: ['off'],
};

describe('WebRTC SDP and rules', () => {
  let dp: FakeDataPlane;
  let cm: CallManager;

  beforeEach(() => {
    dp = new FakeDataPlane({ dtls: true });
    cm = new CallManager(testConfig(), dp, logger);
  });

  const rule = (port: number): StreamRule => {
    const s = dp.byPort(port);
    if (!s) throw new Error(`no stream on ${port}`);
    return s.rule;
  };
  const idOf = (port: number): number => dp.byPort(port)?.spec.id ?? -1;

  it('browser offers, SIP phone answers: plain RTP/AVP to the phone, ICE + DTLS (passive) back to the browser', () => {
    const offer = cm.offer(signalRequest({ sdp: fixture('chromium-audio-offer.sdp'), ...TO_SIP }));
    const toPhone = lines(offer);
    expect(toPhone.find((l) => l.startsWith('m='))).toMatch(/^m=audio \d+ RTP\/AVP 111 63 9 0 8 13 110 126$/);
    // Nothing of the browser's ICE or DTLS reaches the phone; what rtpengine 10.5 passes (mid, msid, ssrc) does.
    for (const name of ['ice-', 'candidate', 'fingerprint', 'setup', 'crypto', 'group', 'rtcp-mux', 'end-of-candidates']) {
      expect(attr(offer, name), name).toEqual([]);
    }
    expect(attr(offer, 'mid')).toEqual(['a=mid:0']);
    expect(attr(offer, 'ssrc').length).toBe(2);
    expect(attr(offer, 'msid:').length).toBe(1);
    expect(toPhone).toContain(`a=rtcp:${mPort(offer) + 1}`);
    // The browser's c=IN IP4 0.0.0.0 is an ICE placeholder, not a hold (rtpengine 10.5 says sendrecv too).
    expect(toPhone).toContain('c=IN IP4 127.0.0.1');
    expect(toPhone).toContain('a=sendrecv');

    const answer = cm.answer(signalRequest({ sdp: fixture('sip-audio-answer.sdp'), toTag: 'B', ...TO_BROWSER }));
    const browserPort = mPort(answer);
    const toBrowser = lines(answer);
    expect(toBrowser.find((l) => l.startsWith('m='))).toBe(`m=audio ${browserPort} UDP/TLS/RTP/SAVPF 0 126`);
    const ufrag = attr(answer, 'ice-ufrag:')[0]?.slice('a=ice-ufrag:'.length) ?? '';
    const pwd = attr(answer, 'ice-pwd:')[0]?.slice('a=ice-pwd:'.length) ?? '';
    expect(ufrag).toMatch(/^[A-Za-z0-9]{8}$/);
    expect(pwd).toMatch(/^[A-Za-z0-9]{26}$/);
    const candidates = attr(answer, 'candidate:');
    // rtcp-mux: component 1 only; the browser offered trickle, so the relay says so and ends its candidates.
    expect(candidates).toHaveLength(1);
    expect(candidates[0]).toMatch(new RegExp(`^a=candidate:[A-Za-z0-9]{16} 1 UDP ${hostPriority(1)} 127\\.0\\.0\\.1 ${browserPort} typ host$`));
    expect(hostPriority(1)).toBe(2130706431);
    // rtpengine 10.5's order after the codecs.
    const tail = toBrowser.slice(toBrowser.indexOf('a=sendrecv'));
    expect(tail.map((l) => l.replace(/:.*/, ''))).toEqual([
      'a=sendrecv', 'a=rtcp', 'a=rtcp-mux', 'a=setup', 'a=fingerprint', 'a=ice-ufrag', 'a=ice-pwd', 'a=ice-options',
      'a=candidate', 'a=end-of-candidates',
    ]);
    expect(toBrowser).toContain('a=setup:passive');
    expect(toBrowser).toContain(FAKE_SHA256);
    expect(toBrowser).toContain('a=ice-options:trickle');
    expect(toBrowser).toContain('a=mid:0');
    expect(attr(answer, 'crypto')).toEqual([]);

    // The browser's stream: ICE with its credentials, DTLS passive against its fingerprint, SRTP keys from DTLS.
    const browser = rule(browserPort);
    expect(browser.ice).toMatchObject({
      localUfrag: ufrag,
      localPwd: pwd,
      remoteUfrag: '8hhY',
      remotePwd: 'asd88fgpdd777uzjYhagZg3p',
      controlling: false,
      lite: false,
    });
    expect(browser.ice?.tieBreaker).toMatch(/^[0-9a-f]{16}$/);
    expect(browser.ice?.remoteCandidates).toEqual([
      { foundation: '1467250027', component: 1, priority: 2122260223, type: 'host', endpoint: { family: 'IPv4', address: '127.0.0.1', port: 46243 } },
    ]);
    expect(browser.dtls?.role).toBe('passive');
    expect(browser.dtls?.remoteFingerprint?.hash).toBe('sha-256');
    expect(browser.dtls?.remoteFingerprint?.value.toString('hex').toUpperCase()).toBe(CHROMIUM_FINGERPRINT);
    expect(browser.crypto?.inbound).toEqual({ dtlsOf: idOf(browserPort) });
    expect(browser.crypto?.outbound).toBeNull();
    // The phone's stream forwards to the browser: encrypted with the browser's DTLS keys; no ICE there.
    const phonePort = mPort(offer);
    const phone = rule(phonePort);
    expect(phone.sink).toBe(idOf(browserPort));
    expect(phone.crypto?.outbound).toEqual({ dtlsOf: idOf(browserPort) });
    expect(phone.crypto?.inbound).toBeNull();
    expect(phone.ice ?? null).toBeNull();
    expect(phone.dtls ?? null).toBeNull();
    // The phone's RTCP (separate port) forwards into the browser's muxed RTCP stream: keys of the RTP handshake.
    const phoneRtcp = rule(phonePort + 1);
    expect(phoneRtcp.crypto?.outbound).toEqual({ dtlsOf: idOf(browserPort) });
  });

  it('SIP phone offers, browser answers: actpass + generated mid to the browser, plain answer to the phone', () => {
    const offer = cm.offer(
      signalRequest({ sdp: fixture('sip-audio-offer.sdp'), ...TO_BROWSER, flags: new Set(['generate-mid']) }),
    );
    const toBrowser = lines(offer);
    const browserPort = mPort(offer);
    expect(toBrowser).toContain('a=mid:1');
    expect(toBrowser).toContain('a=setup:actpass');
    expect(toBrowser).toContain(FAKE_SHA256);
    expect(toBrowser).toContain(`a=rtcp:${browserPort}`);
    // The phone did not announce trickle and the flags do not ask for it: no ice-options, no end-of-candidates.
    expect(attr(offer, 'ice-options')).toEqual([]);
    expect(attr(offer, 'end-of-candidates')).toEqual([]);
    expect(attr(offer, 'candidate:')).toHaveLength(1);
    // Before the answer: ICE towards the browser (relay offered: controlling), DTLS role not settled yet.
    expect(rule(browserPort).ice).toMatchObject({ remoteUfrag: null, controlling: true });
    expect(rule(browserPort).dtls ?? null).toBeNull();

    const answer = cm.answer(signalRequest({ sdp: fixture('chromium-audio-answer.sdp'), toTag: 'B', ...TO_SIP }));
    const toPhone = lines(answer);
    expect(toPhone.find((l) => l.startsWith('m='))).toMatch(/^m=audio \d+ RTP\/AVP 0 101$/);
    for (const name of ['ice-', 'candidate', 'fingerprint', 'setup', 'crypto', 'group', 'mid', 'rtcp-mux']) {
      expect(attr(answer, name), name).toEqual([]);
    }
    const browser = rule(browserPort);
    expect(browser.ice).toMatchObject({ remoteUfrag: 'Ab12', controlling: true });
    // The browser answered a=setup:active: the relay is passive.
    expect(browser.dtls?.role).toBe('passive');
    expect(browser.crypto?.inbound).toEqual({ dtlsOf: idOf(browserPort) });
    expect(rule(mPort(answer)).crypto?.outbound).toEqual({ dtlsOf: idOf(browserPort) });
  });

  it('a re-offer with a new ufrag/pwd (ICE restart) gets new relay credentials and a new DTLS handshake', () => {
    cm.offer(signalRequest({ sdp: fixture('chromium-audio-offer.sdp'), ...TO_SIP }));
    const first = cm.answer(signalRequest({ sdp: fixture('sip-audio-answer.sdp'), toTag: 'B', ...TO_BROWSER }));
    const port = mPort(first);
    expect(rule(port).dtls?.generation).toBe(1);
    const same = cm.offer(signalRequest({ sdp: fixture('chromium-audio-offer.sdp'), ...TO_SIP }));
    expect(same.length).toBeGreaterThan(0);
    const again = cm.answer(signalRequest({ sdp: fixture('sip-audio-answer.sdp'), toTag: 'B', ...TO_BROWSER }));
    expect(attr(again, 'ice-ufrag')).toEqual(attr(first, 'ice-ufrag'));
    expect(rule(port).dtls?.generation).toBe(1);

    const restarted = Buffer.from(
      fixture('chromium-audio-offer.sdp').toString('latin1').replace('a=ice-ufrag:8hhY', 'a=ice-ufrag:zz99').replace('Zg3p', 'Zg3X'),
      'latin1',
    );
    cm.offer(signalRequest({ sdp: restarted, ...TO_SIP }));
    const afterRestart = cm.answer(signalRequest({ sdp: fixture('sip-audio-answer.sdp'), toTag: 'B', ...TO_BROWSER }));
    expect(attr(afterRestart, 'ice-ufrag')).not.toEqual(attr(first, 'ice-ufrag'));
    expect(attr(afterRestart, 'ice-pwd')).not.toEqual(attr(first, 'ice-pwd'));
    expect(rule(port).ice?.remoteUfrag).toBe('zz99');
    expect(rule(port).ice?.localUfrag).toBe(attr(afterRestart, 'ice-ufrag:')[0]?.slice(12));
    expect(rule(port).dtls?.generation).toBe(2);
  });

  it('ICE-lite forward: a=ice-lite at session level, the relay lite and controlled towards that party', () => {
    const offer = cm.offer(
      signalRequest({ sdp: fixture('sip-audio-offer.sdp'), ...TO_BROWSER, iceLite: 'forward', dtlsFingerprint: 'SHA-1' }),
    );
    const l = lines(offer);
    expect(l.indexOf('a=ice-lite')).toBeGreaterThan(l.indexOf('t=0 0'));
    expect(l.indexOf('a=ice-lite')).toBeLessThan(l.findIndex((x) => x.startsWith('m=')));
    expect(rule(mPort(offer)).ice).toMatchObject({ lite: true, controlling: false });
    expect(attr(offer, 'fingerprint')).toEqual([`a=fingerprint:sha-1 ${Array(20).fill('AB').join(':')}`]);
    expect(dp.fingerprintHashes).toContain('sha-1');
  });

  it('without rtcp-mux the relay lists component 2 on the RTCP port and runs ICE/DTLS on the RTCP stream too', () => {
    const offer = cm.offer(
      signalRequest({ sdp: fixture('sip-audio-offer.sdp'), ...TO_BROWSER, rtcpMux: new Set() }),
    );
    const port = mPort(offer);
    expect(attr(offer, 'candidate:').map((c) => c.split(' ').slice(1, 6).join(' '))).toEqual([
      `1 UDP 2130706431 127.0.0.1 ${port}`,
      `2 UDP 2130706430 127.0.0.1 ${port + 1}`,
    ]);
    expect(rule(port + 1).ice?.tieBreaker).not.toBe(rule(port).ice?.tieBreaker);
  });

  it('SDES-no / SDES-off / SDES-disable: an RTP/SAVP receiver gets DTLS but no a=crypto line', () => {
    for (const word of ['no', 'off', 'disable']) {
      const offer = cm.offer(
        signalRequest({ callId: `sdes-${word}`, sdp: fixture('sip-audio-offer.sdp'), transportProtocol: 'RTP/SAVP', sdes: [word] }),
      );
      expect(attr(offer, 'crypto'), word).toEqual([]);
      expect(attr(offer, 'setup')).toEqual(['a=setup:actpass']);
    }
    const withSdes = cm.offer(signalRequest({ callId: 'sdes-on', sdp: fixture('sip-audio-offer.sdp'), transportProtocol: 'RTP/SAVP' }));
    expect(attr(withSdes, 'crypto').length).toBe(6);
    // DTLS=off: SDES only.
    const noDtls = cm.offer(
      signalRequest({ callId: 'dtls-off', sdp: fixture('sip-audio-offer.sdp'), transportProtocol: 'RTP/SAVP', dtls: 'off' }),
    );
    expect(attr(noDtls, 'setup')).toEqual([]);
    expect(attr(noDtls, 'fingerprint')).toEqual([]);
  });

  it('refuses a UDP/TLS receiver when the data plane has no DTLS, and leaves no call behind', () => {
    const plain = new FakeDataPlane();
    const manager = new CallManager(testConfig(), plain, logger);
    expect(() => manager.offer(signalRequest({ sdp: fixture('sip-audio-offer.sdp'), ...TO_BROWSER }))).toThrow(DtlsUnavailableError);
    expect(manager.calls.size).toBe(0);
    expect(plain.streams.size).toBe(0);
    // RTP/SAVP still works there, with SDES only.
    const sdes = manager.offer(signalRequest({ sdp: fixture('sip-audio-offer.sdp'), transportProtocol: 'RTP/SAVP' }));
    expect(attr(sdes, 'crypto').length).toBe(6);
    expect(attr(sdes, 'fingerprint')).toEqual([]);
  });

  it('DTLS to DTLS (browser to browser, default flags): each leg its own handshake, nothing passes through', () => {
    const offer = cm.offer(signalRequest({ sdp: fixture('chromium-audio-offer.sdp'), sdes: ['off'] }));
    // ICE default: the offer had ICE, so the receiver gets the relay's; DTLS actpass with the relay's fingerprint.
    expect(attr(offer, 'ice-ufrag').length).toBe(1);
    expect(attr(offer, 'fingerprint')).toEqual([FAKE_SHA256]);
    expect(attr(offer, 'setup')).toEqual(['a=setup:actpass']);
    const answer = cm.answer(signalRequest({ sdp: fixture('chromium-audio-answer.sdp'), toTag: 'B', sdes: ['off'] }));
    expect(attr(answer, 'setup')).toEqual(['a=setup:active']); // the caller offered actpass; the relay's default is active
    const a = rule(mPort(answer));
    const b = rule(mPort(offer));
    expect(a.dtls?.role).toBe('active');
    expect(b.dtls?.role).toBe('passive');
    expect(a.crypto).toEqual({ inbound: { dtlsOf: idOf(mPort(answer)) }, outbound: { dtlsOf: idOf(mPort(offer)) }, recrypt: false });
    expect(b.crypto).toEqual({ inbound: { dtlsOf: idOf(mPort(offer)) }, outbound: { dtlsOf: idOf(mPort(answer)) }, recrypt: false });
  });

  it('the SDP parser reads ICE, DTLS and mid once (session-level values inherited)', () => {
    const parsed = parseSdp(fixture('chromium-audio-offer.sdp'));
    const m = parsed.media[0];
    expect(parsed.bundleGroups).toEqual([['0']]);
    expect(m?.mid).toBe('0');
    expect(m?.ice).toMatchObject({ ufrag: '8hhY', options: ['trickle'], lite: false, endOfCandidates: false });
    expect(m?.dtls?.setup).toBe('actpass');
    expect(m?.dtls?.fingerprint?.value.toString('hex').toUpperCase()).toBe(CHROMIUM_FINGERPRINT);
    const firefoxLike = Buffer.from(
      ['v=0', 'o=- 1 1 IN IP4 10.0.0.1', 's=-', 't=0 0', 'a=fingerprint:SHA-256 ' + Array(32).fill('0f').join(':'),
        'a=ice-ufrag:sess', 'a=ice-pwd:sessionpasswordsessionpw', 'a=ice-lite', 'c=IN IP4 10.0.0.1',
        'm=audio 5000 UDP/TLS/RTP/SAVPF 0', 'a=setup:passive', 'a=candidate:x 1 TCP 1 10.0.0.1 9 typ host',
        'a=candidate:1 1 udp 5 10.0.0.1 5000 typ host', 'a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:bad', ''].join('\r\n'),
    );
    const f = parseSdp(firefoxLike).media[0];
    expect(f?.ice).toMatchObject({ ufrag: 'sess', lite: true });
    expect(f?.ice?.candidates.map((c) => c.foundation)).toEqual(['1']); // TCP candidates are not for a UDP relay
    expect(f?.dtls).toMatchObject({ setup: 'passive' });
    expect(f?.dtls?.fingerprint?.hash).toBe('sha-256');
    expect(f?.crypto).toEqual([{ ok: false, reason: 'key is not base64' }].map((x) => expect.objectContaining({ ok: x.ok })));
  });

  it('query: rtpengine 10.5 media and stream flags, the DTLS profile as crypto suite, ICE and DTLS state', () => {
    cm.offer(signalRequest({ sdp: fixture('chromium-audio-offer.sdp'), ...TO_SIP }));
    const answer = cm.answer(signalRequest({ sdp: fixture('sip-audio-answer.sdp'), toTag: 'B', ...TO_BROWSER }));
    const browserId = idOf(mPort(answer));
    dp.counters.set(browserId, {
      packets: 5, bytes: 500, errors: 0, lastPacketMs: 0, endpoint: null, confirmed: true, ssrc: null, lastSeq: null,
      ice: { state: 'connected', selected: { family: 'IPv4', address: '127.0.0.1', port: 46243 }, checksReceived: 3, checksSent: 1, stunRejected: 2, consentExpired: 0, lastConsentMs: 1_700_000_000_000 },
      dtls: { state: 'connected', role: 'passive', profile: 'SRTP_AES128_CM_SHA1_80', peerFingerprint: 'AA:BB', error: null },
    });
    const call = cm.calls.get('call-1');
    if (!call) throw new Error('no call');
    const counters = dp.readCounters(cm.streamIds(call));
    const stats = callStatistics(call, (id) => counters.get(id));
    const tags = stats.tags as NgDict;
    const browserMedia = ((tags.A as NgDict).medias as NgDict[])[0] as NgDict;
    expect(browserMedia.flags).toEqual(['initialized', 'send', 'recv', 'rtcp-mux', 'DTLS-SRTP', 'DTLS role passive', 'ICE', 'trickle ICE']);
    const [rtp, rtcp] = browserMedia.streams as NgDict[];
    expect(rtp?.['crypto suite']).toBe('AES_CM_128_HMAC_SHA1_80');
    expect(rtp?.flags).toContain('ICE');
    expect(rtcp?.flags).toEqual(expect.arrayContaining(['RTCP', 'rtcp-mux', 'ICE']));
    const ice = rtp?.ICE as Record<string, NgValue>;
    expect(ice.state).toBe('connected');
    expect(ice.selected).toEqual({ family: 'IPv4', address: '127.0.0.1', port: 46243 });
    expect(ice['STUN rejected']).toBe(2);
    expect(rtp?.DTLS).toEqual({ state: 'connected', role: 'passive', profile: 'SRTP_AES128_CM_SHA1_80', 'peer fingerprint': 'sha-256 AA:BB' });
    // The phone's side: plain, no ICE or DTLS keys, rtpengine's key set.
    const phoneMedia = ((tags.B as NgDict).medias as NgDict[])[0] as NgDict;
    expect(phoneMedia.flags).not.toContain('DTLS-SRTP');
    expect(Object.keys((phoneMedia.streams as NgDict[])[0] as NgDict)).not.toContain('ICE');
  });

  it("Kamailio's rtpp-flags strings and dict keys reach the call model", () => {
    const fromText = signal(
      normalizeRequest({
        command: 'offer', 'call-id': 'c', 'from-tag': 'f', sdp: 'v=0',
        'rtpp-flags': 'ICE=force UDP/TLS/RTP/SAVPF rtcp-mux-require DTLS=passive DTLS-reverse=active ICE-lite=both DTLS-fingerprint=SHA-384 SDES-off generate-mid',
      }),
      logger,
      false,
    );
    expect(fromText).toMatchObject({
      ice: 'force', transportProtocol: 'UDP/TLS/RTP/SAVPF', dtls: 'passive', dtlsReverse: 'active', iceLite: 'both', dtlsFingerprint: 'SHA-384', sdes: ['off'],
    });
    expect([...fromText.rtcpMux]).toEqual(['require']);
    expect(fromText.flags.has('generate-mid')).toBe(true);
    const fromDict = signal(
      normalizeRequest({ command: 'offer', 'call-id': 'c', 'from-tag': 'f', sdp: 'v=0', 'DTLS reverse': 'passive', 'ICE lite': 'forward', 'DTLS fingerprint': 'sha-1' }),
      logger,
      false,
    );
    expect(fromDict).toMatchObject({ dtlsReverse: 'passive', iceLite: 'forward', dtlsFingerprint: 'sha-1' });
  });

  it('DTLS-reverse=passive in the offer makes the relay passive towards the offering browser', () => {
    cm.offer(signalRequest({ sdp: fixture('chromium-audio-offer.sdp'), ...TO_SIP, dtlsReverse: 'passive' }));
    const answer = cm.answer(signalRequest({ sdp: fixture('sip-audio-answer.sdp'), toTag: 'B', ...TO_BROWSER, dtls: null }));
    expect(attr(answer, 'setup')).toEqual(['a=setup:passive']);
    cm.offer(signalRequest({ callId: 'c2', sdp: fixture('chromium-audio-offer.sdp'), ...TO_SIP }));
    const active = cm.answer(signalRequest({ callId: 'c2', sdp: fixture('sip-audio-answer.sdp'), toTag: 'B', ...TO_BROWSER, dtls: null }));
    expect(attr(active, 'setup')).toEqual(['a=setup:active']);
  });

  it('--dtls-passive is the default role when the party leaves the choice to the relay', () => {
    const passiveCm = new CallManager(testConfig({ dtlsPassive: true }), dp, logger);
    passiveCm.offer(signalRequest({ sdp: fixture('chromium-audio-offer.sdp'), ...TO_SIP }));
    const answer = passiveCm.answer(signalRequest({ sdp: fixture('sip-audio-answer.sdp'), toTag: 'B', ...TO_BROWSER, dtls: null }));
    expect(attr(answer, 'setup')).toEqual(['a=setup:passive']);
  });

  it('a call restored from the state dir gets the same ICE, DTLS and DTLS-keyed crypto rules back', () => {
    cm.offer(signalRequest({ sdp: fixture('chromium-audio-offer.sdp'), ...TO_SIP }));
    cm.answer(signalRequest({ sdp: fixture('sip-audio-answer.sdp'), toTag: 'B', ...TO_BROWSER }));
    const stored = unpack(pack(cm.calls.get('call-1'))) as CallState;
    const dp2 = new FakeDataPlane({ dtls: true });
    new CallManager(testConfig(), dp2, logger).restore(stored, (_s, r) => r);
    let withIce = 0;
    for (const [id, s] of dp.streams) {
      const restored = dp2.streams.get(id)?.rule;
      expect({ ...restored, signalGeneration: 0 }).toEqual({ ...s.rule, signalGeneration: 0 });
      if (s.rule.ice) withIce++;
    }
    expect(withIce).toBe(1);
  });

  it('DTLS-SRTP browser to an SDES phone: DTLS keys one way, SDES keys the other', () => {
    const toSdesPhone = { ...TO_SIP, transportProtocol: 'RTP/SAVP', dtls: 'off', sdes: [] };
    const offer = cm.offer(signalRequest({ sdp: fixture('chromium-audio-offer.sdp'), ...toSdesPhone }));
    expect(attr(offer, 'fingerprint')).toEqual([]);
    const given = attr(offer, 'crypto:5 ')[0] ?? '';
    expect(given).toMatch(/^a=crypto:5 AES_CM_128_HMAC_SHA1_80 inline:/);
    const phoneKey = 'a=crypto:5 AES_CM_128_HMAC_SHA1_80 inline:' + Buffer.alloc(30, 7).toString('base64');
    const phoneAnswer = Buffer.from(
      fixture('sip-audio-answer.sdp').toString('latin1').replace('RTP/AVP', 'RTP/SAVP').replace('a=sendrecv', `a=sendrecv\r\n${phoneKey}`),
      'latin1',
    );
    const answer = cm.answer(signalRequest({ sdp: phoneAnswer, toTag: 'B', ...TO_BROWSER }));
    expect(attr(answer, 'crypto')).toEqual([]);
    expect(attr(answer, 'setup')).toEqual(['a=setup:passive']);
    const browser = rule(mPort(answer));
    const phone = rule(mPort(offer));
    expect(browser.crypto?.inbound).toEqual({ dtlsOf: idOf(mPort(answer)) });
    // What the browser sends is encrypted towards the phone with the key ngrelay offered it (tag 5).
    expect(browser.crypto?.outbound).toMatchObject({ suite: 'AES_CM_128_HMAC_SHA1_80' });
    expect(phone.crypto?.inbound).toMatchObject({ suite: 'AES_CM_128_HMAC_SHA1_80', key: Buffer.alloc(16, 7) });
    expect(phone.crypto?.outbound).toEqual({ dtlsOf: idOf(mPort(answer)) });
  });

  it('an RTP/SAVP receiver offered SDES and DTLS: a=crypto-only answer is SDES, an answer with a=fingerprint is DTLS', () => {
    const key = 'a=crypto:5 AES_CM_128_HMAC_SHA1_80 inline:' + Buffer.alloc(30, 9).toString('base64');
    const savpAnswer = (extra: string[]): Buffer =>
      Buffer.from(
        fixture('sip-audio-answer.sdp').toString('latin1').replace('RTP/AVP', 'RTP/SAVP').replace('a=sendrecv', ['a=sendrecv', key, ...extra].join('\r\n')),
        'latin1',
      );
    const offer = cm.offer(signalRequest({ sdp: fixture('sip-audio-offer.sdp'), transportProtocol: 'RTP/SAVP' }));
    expect(attr(offer, 'setup')).toEqual(['a=setup:actpass']);
    expect(attr(offer, 'crypto').length).toBe(6);
    cm.answer(signalRequest({ sdp: savpAnswer([]), toTag: 'B' }));
    const sdes = rule(mPort(offer));
    expect(sdes.dtls ?? null).toBeNull();
    expect(sdes.crypto?.inbound).toMatchObject({ key: Buffer.alloc(16, 9) });

    const offer2 = cm.offer(signalRequest({ callId: 'c2', sdp: fixture('sip-audio-offer.sdp'), transportProtocol: 'RTP/SAVP' }));
    cm.answer(
      signalRequest({ callId: 'c2', sdp: savpAnswer(['a=setup:passive', `a=fingerprint:sha-256 ${Array(32).fill('01').join(':')}`]), toTag: 'B' }),
    );
    const dtls = rule(mPort(offer2));
    expect(dtls.dtls?.role).toBe('active');
    expect(dtls.crypto?.inbound).toEqual({ dtlsOf: idOf(mPort(offer2)) });
  });

  it('without DTLS in the data plane an RTP/SAVP offer with a=fingerprint is answered with SDES', () => {
    const plain = new FakeDataPlane();
    const manager = new CallManager(testConfig(), plain, logger);
    const savpOffer = Buffer.from(
      fixture('sip-audio-offer.sdp').toString('latin1').replace('RTP/AVP', 'RTP/SAVP').replace('a=sendrecv', [
        'a=sendrecv', 'a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:' + Buffer.alloc(30, 3).toString('base64'),
        'a=setup:actpass', `a=fingerprint:sha-256 ${Array(32).fill('01').join(':')}`,
      ].join('\r\n')),
      'latin1',
    );
    manager.offer(signalRequest({ sdp: savpOffer, transportProtocol: 'RTP/AVP' }));
    const answer = manager.answer(signalRequest({ sdp: fixture('sip-audio-answer.sdp'), toTag: 'B' }));
    expect(lines(answer).find((l) => l.startsWith('m='))).toMatch(/ RTP\/SAVP /);
    expect(attr(answer, 'crypto').length).toBe(1);
    expect(attr(answer, 'setup')).toEqual([]);
  });

  it("the relay's fingerprint hash: the party's own by default, DTLS-fingerprint in the answer overrides it", () => {
    const sha1Offer = Buffer.from(
      fixture('chromium-audio-offer.sdp').toString('latin1').replace(/a=fingerprint:sha-256 \S+/, `a=fingerprint:sha-1 ${Array(20).fill('0A').join(':')}`),
      'latin1',
    );
    cm.offer(signalRequest({ sdp: sha1Offer, ...TO_SIP }));
    const answer = cm.answer(signalRequest({ sdp: fixture('sip-audio-answer.sdp'), toTag: 'B', ...TO_BROWSER }));
    expect(attr(answer, 'fingerprint')[0]).toMatch(/^a=fingerprint:sha-1 /);
    cm.offer(signalRequest({ callId: 'c2', sdp: sha1Offer, ...TO_SIP }));
    const overridden = cm.answer(signalRequest({ callId: 'c2', sdp: fixture('sip-audio-answer.sdp'), toTag: 'B', ...TO_BROWSER, dtlsFingerprint: 'SHA-512' }));
    expect(attr(overridden, 'fingerprint')[0]).toMatch(/^a=fingerprint:sha-512 /);
  });

  it('unknown ICE/DTLS values are named for the log and act as the default (rtpengine 10.5 ignores them too)', () => {
    expect(
      unknownWebrtcValues({ ICE: 'bogus', 'ICE-lite': 'forward', DTLS: 'weird', 'DTLS-reverse': null, 'DTLS-fingerprint': 'md5' }),
    ).toEqual(['ICE=bogus', 'DTLS=weird', 'DTLS-fingerprint=md5']);
    expect(unknownWebrtcValues({ ICE: 'force-relay', 'ICE-lite': 'off', DTLS: 'no', 'DTLS-reverse': 'active', 'DTLS-fingerprint': 'SHA-256' })).toEqual([]);
    const offer = cm.offer(signalRequest({ sdp: fixture('sip-audio-offer.sdp'), ice: 'bogus', dtls: 'weird', transportProtocol: 'RTP/SAVP' }));
    expect(attr(offer, 'ice-ufrag')).toEqual([]); // default: the phone's SDP had no ICE
    expect(attr(offer, 'setup')).toEqual(['a=setup:actpass']);
  });

  it('roles: RFC 8445 controlling rules and RFC 5763 setup answers', () => {
    expect(relayControls(true, false, false)).toBe(true);
    expect(relayControls(false, false, false)).toBe(false);
    expect(relayControls(false, false, true)).toBe(true); // full relay facing a lite party controls
    expect(relayControls(true, true, false)).toBe(false); // a lite relay never controls a full party
    expect(roleAgainst('active', false)).toBe('passive');
    expect(roleAgainst('passive', true)).toBe('active');
    expect(roleAgainst('actpass', true)).toBe('passive');
    expect(roleAgainst('actpass', false)).toBe('active');
    expect(fakeFingerprint('sha-512').value.length).toBe(64);
  });
});
