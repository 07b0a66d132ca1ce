/**
 * A real browser and an interface name with two addresses: headless Chromium offers, a plain SIP phone
 * answers, and the relay's answer carries a host candidate per address of the browser leg's interface
 * (`pub`: 127.0.0.1 advertised as 127.0.0.3, where nothing listens, and 127.0.0.2). The browser can reach the
 * relay through the second candidate (and through the peer-reflexive address the relay's own checks from
 * 127.0.0.1 show it): the call must connect (ICE, DTLS-SRTP, >= 100 RTP packets each way) with the relay
 * sending from the socket ICE nominated last, with the keys of whichever socket ran the handshake.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrowserPeer, Chromium, type PeerStats, waitForStats } from '../support/browser';
import { until } from '../support/counting-party';
import { NgRawClient } from '../support/ng-client';
import type { PlainValue } from '../support/bencode';
import { PlainRtpLeg } from '../support/plain-phone';
import type { RelayUnderTest } from '../support/relay';
import { startNgrelay } from '../support/ngrelay';
import { attributeValues, keepLoopbackCandidates, parseMediaLines, plainChoice, plainSdp } from '../support/webrtc-sdp';
import { relayOptions, TOWARDS_BROWSER, TOWARDS_SIP, ngOk, type Plain } from '../support/webrtc-relays';

const MIN_PACKETS = 100;
const PHONE_PACKET_LIMIT = 400;
const MEDIA_WAIT_MS = 12_000;
const PHONE = '127.0.0.1';
/** The advertised address of the interface's first address: no socket is bound there. */
const DEAD = '127.0.0.3';
const SECOND = '127.0.0.2';

/** Every value under key `key` anywhere in `v`. */
function valuesUnder(v: PlainValue, key: string, out: PlainValue[] = []): PlainValue[] {
  if (Array.isArray(v)) for (const x of v) valuesUnder(x, key, out);
  else if (v !== null && typeof v === 'object') {
    if (key in v) out.push(v[key] as PlainValue);
    for (const x of Object.values(v)) valuesUnder(x, key, out);
  }
  return out;
}

describe('WebRTC browser <-> plain SIP phone, two addresses on the browser leg (ngrelay)', () => {
  let relay: RelayUnderTest | undefined;
  let ng: NgRawClient | undefined;
  let chromium: Chromium | undefined;
  let browser: BrowserPeer | undefined;
  let phone: PlainRtpLeg | undefined;

  /** At least MIN_PACKETS each way, the browser's ICE and its one DTLS transport connected; its stats. */
  async function expectMediaBothWays(peer: BrowserPeer, leg: PlainRtpLeg): Promise<PeerStats> {
    const diagnostics = (): string => `\n${relay?.process.describe(20) ?? ''}\n--- browser console\n${(chromium?.consoleLines ?? []).join('\n')}`;
    await waitForStats(
      peer,
      `browser receives and sends ${MIN_PACKETS} RTP packets${diagnostics()}`,
      (s) => (s.inbound.audio ?? 0) >= MIN_PACKETS && (s.outbound.audio ?? 0) >= MIN_PACKETS,
      MEDIA_WAIT_MS,
    );
    await until(`phone receives ${MIN_PACKETS} RTP (has ${leg.rtpReceived})${diagnostics()}`, () => leg.rtpReceived >= MIN_PACKETS, MEDIA_WAIT_MS);
    const stats = await peer.stats();
    expect(stats.connectionState, JSON.stringify(stats)).toBe('connected');
    expect(stats.transports.map((t) => t.dtlsState)).toEqual(['connected']);
    return stats;
  }

  beforeAll(async () => {
    relay = await startNgrelay(await relayOptions([`--interface=pub/127.0.0.1!${DEAD}`, `--interface=pub/${SECOND}`]));
    ng = await NgRawClient.open(relay.ngPort);
    chromium = await Chromium.launch();
  }, 60_000);

  afterAll(async () => {
    phone?.close();
    await browser?.close();
    await chromium?.close();
    ng?.close();
    await relay?.stop();
  });

  it('the browser connects through the second candidate: PCMU both ways over ICE + DTLS-SRTP', async () => {
    const id = `webrtc-multi-${randomBytes(4).toString('hex')}`;
    browser = await chromium!.peer();
    const browserOffer = keepLoopbackCandidates(await browser.offer());
    // The browser's leg on `pub`, the phone's on the default interface.
    const offer = await ngOk(ng!, {
      command: 'offer', 'call-id': id, 'from-tag': 'browser', sdp: browserOffer, direction: ['pub', 'default'], ...TOWARDS_SIP,
    });
    const [audio] = parseMediaLines(String(offer.sdp));
    expect(attributeValues(audio!, 'candidate')).toEqual([]);
    phone = await PlainRtpLeg.open('audio');
    phone.sendTo({ address: audio!.address, port: audio!.port });
    const codec = plainChoice(audio!);
    const answer = await ngOk(ng!, {
      command: 'answer', 'call-id': id, 'from-tag': 'browser', 'to-tag': 'sipphone',
      sdp: plainSdp(PHONE, [{ kind: 'audio', port: phone.port, ...codec }]), ...TOWARDS_BROWSER,
    });
    const toBrowser = String(answer.sdp);
    const candidates = attributeValues(parseMediaLines(toBrowser)[0]!, 'candidate');
    // Two host candidates (rtcp-mux: component 1 only), the advertised address first.
    expect(candidates.map((c) => c.split(' ')[4]), toBrowser).toEqual([DEAD, SECOND]);
    await browser.acceptAnswer(toBrowser);
    phone.startStream(codec.payloadType, PHONE_PACKET_LIMIT);

    const stats = await expectMediaBothWays(browser, phone);
    expect(stats.transports[0]!.srtpCipher ?? '').toMatch(/^(AES_CM_128_HMAC_SHA1_(80|32)|AEAD_AES_(128|256)_GCM)$/);
    // The relay says which of its sockets the pair uses.
    const query = await ngOk(ng!, { command: 'query', 'call-id': id });
    const selectedLocal = valuesUnder(query, 'selected local').map((v) => (v as Plain).address);
    expect(selectedLocal, JSON.stringify(query)).toContain(SECOND);

    await ngOk(ng!, { command: 'delete', 'call-id': id, 'from-tag': 'browser' });
    await browser.close();
    browser = undefined;
    phone.close();
    phone = undefined;
  }, 45_000);

  it('the phone offers, the browser answers (the relay controls ICE): one socket nominates, the call connects', async () => {
    const id = `webrtc-multi-b-${randomBytes(4).toString('hex')}`;
    phone = await PlainRtpLeg.open('audio');
    const offer = await ngOk(ng!, {
      command: 'offer', 'call-id': id, 'from-tag': 'sipphone', direction: ['default', 'pub'],
      sdp: plainSdp(PHONE, [{ kind: 'audio', port: phone.port, payloadType: 0, encoding: 'PCMU/8000' }]), ...TOWARDS_BROWSER,
    });
    const toBrowser = String(offer.sdp);
    expect(attributeValues(parseMediaLines(toBrowser)[0]!, 'candidate').map((c) => c.split(' ')[4]), toBrowser).toEqual([DEAD, SECOND]);
    browser = await chromium!.peer();
    const browserAnswer = keepLoopbackCandidates(await browser.answer(toBrowser));
    const answer = await ngOk(ng!, {
      command: 'answer', 'call-id': id, 'from-tag': 'sipphone', 'to-tag': 'browser', sdp: browserAnswer, ...TOWARDS_SIP,
    });
    const [audio] = parseMediaLines(String(answer.sdp));
    phone.sendTo({ address: audio!.address, port: audio!.port });
    phone.startStream(0, PHONE_PACKET_LIMIT);
    await expectMediaBothWays(browser, phone);
    await ngOk(ng!, { command: 'delete', 'call-id': id, 'from-tag': 'sipphone' });
  }, 45_000);
});
