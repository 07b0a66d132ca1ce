/**
 * BUNDLE in the native data plane (StreamRule.bundle, src/dataplane/types.ts), below the control plane: one
 * SRTP transport (a browser's audio+video on one socket) demultiplexed to two plain SIP-side m= lines, and
 * back out through the transport's socket and keys. Real sockets and SRTP; the sender protects with the native
 * core's test binding.
 *   streams 1 (+2 muxed RTCP)  browser audio = the bundle transport, port P
 *   streams 5 (+6 muxed RTCP)  browser video, bundled on 1 (its own port P+2 is not read)
 *   streams 3/4, 7/8           the SIP phone's audio and video, RTP and RTCP on ports of their own
 */
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createNativeDataPlane } from '../../src/dataplane/native';
import { loadSrtpTestBinding, type SrtpTestContext } from '../../src/dataplane/srtp-binding';
import type { DataPlane, SrtpKeys, StreamBundle, StreamRule } from '../../src/dataplane/types';
import { Party, rtcpPacket, rtpPacket, sleep, waitUntil } from '../support/rtp-packets';
import { endpointOf, PortRuns, streamRule } from '../support/dataplane-fixtures';

const LO = '127.0.0.1';
const MID_EXT = 4;
const srtp = loadSrtpTestBinding();
const relayPorts = new PortRuns(48600, 48999);

function keys(): SrtpKeys {
  return {
    suite: 'AES_CM_128_HMAC_SHA1_80',
    key: randomBytes(16),
    salt: randomBytes(14),
    unencryptedSrtp: false,
    unencryptedSrtcp: false,
    unauthenticatedSrtp: false,
  };
}

function ctx(k: SrtpKeys): SrtpTestContext {
  return new srtp.SrtpTestContext(k.suite, k.key, k.salt);
}

function ok(o: { result: string; packet: Buffer | null }): Buffer {
  if (o.result !== 'ok' || !o.packet) throw new Error(`SRTP ${o.result}`);
  return o.packet;
}

/** An RTP packet carrying the MID header extension (RFC 8843 §15) in the one- or two-byte form (RFC 8285). */
function rtpWithMid(o: { seq: number; ssrc: number; payloadType: number; mid: string; form: 'one-byte' | 'two-byte'; extId?: number }): Buffer {
  const id = o.extId ?? MID_EXT;
  const mid = Buffer.from(o.mid, 'latin1');
  // Another element first (audio level, id 1), so the parser has to walk past it.
  const elements =
    o.form === 'one-byte'
      ? Buffer.concat([Buffer.from([0x10, 0x2a]), Buffer.from([(id << 4) | (mid.length - 1)]), mid])
      : Buffer.concat([Buffer.from([1, 1, 0x2a]), Buffer.from([id, mid.length]), mid]);
  const words = Math.ceil(elements.length / 4);
  const ext = Buffer.alloc(4 + words * 4, 0);
  ext.writeUInt16BE(o.form === 'one-byte' ? 0xbede : 0x1000, 0);
  ext.writeUInt16BE(words, 2);
  elements.copy(ext, 4);
  const plain = rtpPacket({ seq: o.seq, ssrc: o.ssrc, payloadType: o.payloadType, payloadBytes: 40 });
  const header = Buffer.from(plain.subarray(0, 12));
  header[0] = (header[0] as number) | 0x10;
  return Buffer.concat([header, ext, plain.subarray(12)]);
}

let engine: DataPlane;
let parties: Party[] = [];

async function party(): Promise<Party> {
  const p = await Party.open();
  parties.push(p);
  return p;
}

beforeEach(() => {
  // Two I/O threads: the members must land on their transport's thread (threadOf), not round robin.
  engine = createNativeDataPlane({ threads: 2, receiveBufferBytes: 1 << 20 });
});

afterEach(async () => {
  engine.close();
  await Promise.all(parties.map((p) => p.close()));
  parties = [];
});

interface Setup {
  port: number;
  browser: Party;
  phoneAudio: Party;
  phoneAudioRtcp: Party;
  phoneVideo: Party;
  phoneVideoRtcp: Party;
  /** What the browser sends with, and what the relay must send it with. */
  fromBrowser: SrtpKeys;
  toBrowser: SrtpKeys;
  videoRule: StreamRule;
}

const AUDIO: StreamBundle = { transport: 1, mid: '0', midExtensionId: MID_EXT, payloadTypes: [0, 8] };
const VIDEO: StreamBundle = { transport: 1, mid: '1', midExtensionId: MID_EXT, payloadTypes: [96, 97] };

async function setUp(): Promise<Setup> {
  const [browser, phoneAudio, phoneAudioRtcp, phoneVideo, phoneVideoRtcp] = await Promise.all([party(), party(), party(), party(), party()]);
  const port = await relayPorts.take(8, LO);
  const fromBrowser = keys();
  const toBrowser = keys();
  const r = (partial: Partial<StreamRule>): StreamRule => streamRule(partial, 'off');
  const browserEp = endpointOf(browser);
  engine.addStream({ id: 1, component: 'rtp', localAddress: LO, localPort: port },
    r({ expected: browserEp, sink: 3, bundle: AUDIO, crypto: { inbound: fromBrowser, outbound: null, recrypt: false } }));
  engine.addStream({ id: 2, component: 'rtcp', localAddress: LO, localPort: port, muxedWith: 1 },
    r({ expected: browserEp, sink: 4, crypto: { inbound: fromBrowser, outbound: null, recrypt: false } }));
  const videoRule = r({ expected: browserEp, sink: 7, bundle: VIDEO });
  engine.addStream({ id: 5, component: 'rtp', localAddress: LO, localPort: port + 2, threadOf: 1 }, videoRule);
  engine.addStream({ id: 6, component: 'rtcp', localAddress: LO, localPort: port + 2, muxedWith: 5 }, r({ expected: browserEp, sink: 8 }));
  const towardsBrowser = { inbound: null, outbound: toBrowser, recrypt: false };
  engine.addStream({ id: 3, component: 'rtp', localAddress: LO, localPort: port + 4 }, r({ expected: endpointOf(phoneAudio), sink: 1, crypto: towardsBrowser }));
  engine.addStream({ id: 4, component: 'rtcp', localAddress: LO, localPort: port + 5 }, r({ expected: endpointOf(phoneAudioRtcp), sink: 2, crypto: towardsBrowser }));
  engine.addStream({ id: 7, component: 'rtp', localAddress: LO, localPort: port + 6 }, r({ expected: endpointOf(phoneVideo), sink: 1, crypto: towardsBrowser }));
  engine.addStream({ id: 8, component: 'rtcp', localAddress: LO, localPort: port + 7 }, r({ expected: endpointOf(phoneVideoRtcp), sink: 2, crypto: towardsBrowser }));
  await engine.settled();
  return { port, browser, phoneAudio, phoneAudioRtcp, phoneVideo, phoneVideoRtcp, fromBrowser, toBrowser, videoRule };
}

const ssrcOf = (b: Buffer): number => b.readUInt32BE(8);
const ptOf = (b: Buffer): number => (b[1] as number) & 0x7f;

describe('BUNDLE demultiplexing in the native data plane', () => {
  it('hands each packet of the transport to its m= line: by MID (one- and two-byte), then the SSRC it taught, then the payload type; strangers are counted and dropped', async () => {
    const s = await setUp();
    const sender = ctx(s.fromBrowser);
    const send = (plain: Buffer): Promise<void> => s.browser.send(ok(sender.protectRtp(plain)), s.port, LO);

    // (a) MID: payload type 111 belongs to neither m= line, so only the extension can place these.
    await send(rtpWithMid({ seq: 1, ssrc: 0x1111, payloadType: 111, mid: '1', form: 'one-byte' }));
    await send(rtpWithMid({ seq: 1, ssrc: 0x2222, payloadType: 111, mid: '0', form: 'two-byte' }));
    expect(await waitUntil(() => s.phoneVideo.received.length === 1 && s.phoneAudio.received.length === 1)).toBe(true);
    expect(ssrcOf(s.phoneVideo.received[0]!.data)).toBe(0x1111);
    expect(ssrcOf(s.phoneAudio.received[0]!.data)).toBe(0x2222);

    // (b) the SSRCs the MID taught, without the extension (browsers stop sending it once acknowledged).
    await send(rtpPacket({ seq: 2, ssrc: 0x1111, payloadType: 111, payloadBytes: 40 }));
    await send(rtpPacket({ seq: 2, ssrc: 0x2222, payloadType: 111, payloadBytes: 40 }));
    expect(await waitUntil(() => s.phoneVideo.received.length === 2 && s.phoneAudio.received.length === 2)).toBe(true);
    expect(ssrcOf(s.phoneVideo.received[1]!.data)).toBe(0x1111);
    expect(ssrcOf(s.phoneAudio.received[1]!.data)).toBe(0x2222);

    // (c) payload type only: new SSRCs with a payload type of one m= line each.
    await send(rtpPacket({ seq: 1, ssrc: 0x3333, payloadType: 97, payloadBytes: 40 }));
    await send(rtpPacket({ seq: 1, ssrc: 0x4444, payloadType: 8, payloadBytes: 40 }));
    expect(await waitUntil(() => s.phoneVideo.received.length === 3 && s.phoneAudio.received.length === 3)).toBe(true);
    expect([ssrcOf(s.phoneVideo.received[2]!.data), ptOf(s.phoneVideo.received[2]!.data)]).toEqual([0x3333, 97]);
    expect([ssrcOf(s.phoneAudio.received[2]!.data), ptOf(s.phoneAudio.received[2]!.data)]).toEqual([0x4444, 8]);

    // A stranger: unknown SSRC, payload type of neither line, no MID (or a MID of no line).
    await send(rtpPacket({ seq: 1, ssrc: 0x5555, payloadType: 50, payloadBytes: 40 }));
    await send(rtpWithMid({ seq: 2, ssrc: 0x5555, payloadType: 50, mid: '7', form: 'one-byte' }));
    // A MID element whose length runs past the end of its extension block is no MID either.
    const broken = rtpWithMid({ seq: 3, ssrc: 0x5556, payloadType: 50, mid: '1', form: 'one-byte' });
    broken[18] = (MID_EXT << 4) | 15;
    await send(broken);
    expect(await waitUntil(() => engine.readCounters([1]).get(1)?.bundleUnmatched === 3)).toBe(true);
    await sleep(50);
    expect(s.phoneVideo.received.length).toBe(3);
    expect(s.phoneAudio.received.length).toBe(3);

    const c = engine.readCounters([1, 5]);
    // Counted where they belong: the video packets on the video stream, not on the transport.
    expect(c.get(5)?.packets).toBe(3);
    expect(c.get(1)?.packets).toBe(3);
    expect(c.get(1)?.errors).toBe(3);
  });

  it('sends RTCP by its sender SSRC to the m= line that SSRC belongs to, anything else to the first m= line', async () => {
    const s = await setUp();
    const sender = ctx(s.fromBrowser);
    await s.browser.send(ok(sender.protectRtp(rtpWithMid({ seq: 1, ssrc: 0xabcd, payloadType: 96, mid: '1', form: 'one-byte' }))), s.port, LO);
    expect(await waitUntil(() => s.phoneVideo.received.length === 1)).toBe(true);
    await s.browser.send(ok(sender.protectRtcp(rtcpPacket(0xabcd, 'sr'))), s.port, LO);
    await s.browser.send(ok(sender.protectRtcp(rtcpPacket(0x9999, 'rr'))), s.port, LO);
    expect(await waitUntil(() => s.phoneVideoRtcp.received.length === 1 && s.phoneAudioRtcp.received.length === 1)).toBe(true);
    expect(s.phoneVideoRtcp.received[0]!.data.readUInt32BE(4)).toBe(0xabcd);
    expect(s.phoneAudioRtcp.received[0]!.data.readUInt32BE(4)).toBe(0x9999);
  });

  it('sends both SIP m= lines to the browser out of the transport socket with the transport keys; the member port reads nothing', async () => {
    const s = await setUp();
    await s.phoneAudio.send(rtpPacket({ seq: 10, ssrc: 0xa0, payloadType: 0 }), s.port + 4, LO);
    await s.phoneVideo.send(rtpPacket({ seq: 20, ssrc: 0xb0, payloadType: 96 }), s.port + 6, LO);
    await s.phoneVideoRtcp.send(rtcpPacket(0xb0, 'sr'), s.port + 7, LO);
    expect(await waitUntil(() => s.browser.received.length === 3)).toBe(true);
    for (const r of s.browser.received) expect(r.port, 'everything leaves from the bundle transport').toBe(s.port);
    const receiver = ctx(s.toBrowser);
    const rtp = s.browser.received.filter((r) => (r.data[1] as number) < 192 || (r.data[1] as number) > 223);
    const plain = rtp.map((r) => ok(receiver.unprotectRtp(r.data)));
    expect(plain.map(ssrcOf).sort()).toEqual([0xa0, 0xb0]);
    const rtcp = s.browser.received.find((r) => (r.data[1] as number) === 200);
    expect(ok(receiver.unprotectRtcp(rtcp!.data)).readUInt32BE(4)).toBe(0xb0);

    // The video stream's own port was never given to the browser: what arrives there is not read.
    const sender = ctx(s.fromBrowser);
    await s.browser.send(ok(sender.protectRtp(rtpPacket({ seq: 1, ssrc: 0x77, payloadType: 96 }))), s.port + 2, LO);
    await s.browser.send(rtpPacket({ seq: 2, ssrc: 0x77, payloadType: 96 }), s.port + 2, LO);
    await sleep(100);
    expect(s.phoneVideo.received.length).toBe(0);
    expect(engine.readCounters([5]).get(5)?.packets).toBe(0);
  });

  it('un-bundled by a rule update, the member reads its own socket again and the transport stops handing it packets', async () => {
    const s = await setUp();
    const { bundle: _dropped, ...alone } = s.videoRule;
    engine.updateStream(5, alone);
    await engine.settled();
    await s.browser.send(rtpPacket({ seq: 1, ssrc: 0x88, payloadType: 96 }), s.port + 2, LO);
    expect(await waitUntil(() => s.phoneVideo.received.length === 1)).toBe(true);
    const sender = ctx(s.fromBrowser);
    await s.browser.send(ok(sender.protectRtp(rtpPacket({ seq: 1, ssrc: 0x99, payloadType: 96 }))), s.port, LO);
    expect(await waitUntil(() => engine.readCounters([1]).get(1)?.bundleUnmatched === 1)).toBe(true);
    expect(s.phoneVideo.received.length).toBe(1);
  });

  it('refuses a malformed bundle field with a typed error naming it', () => {
    const bad = { transport: 0, mid: '0', midExtensionId: 4, payloadTypes: [0] };
    expect(() =>
      engine.addStream({ id: 9, component: 'rtp', localAddress: LO, localPort: 0 }, streamRule({ bundle: bad }, 'off')),
    ).toThrow(/rule\.bundle\.transport/);
    expect(() =>
      engine.addStream({ id: 9, component: 'rtp', localAddress: LO, localPort: 0 }, streamRule({ bundle: { ...bad, transport: 1, payloadTypes: [128] } }, 'off')),
    ).toThrow(/rule\.bundle\.payloadTypes/);
    expect(() =>
      engine.addStream(
        { id: 9, component: 'rtp', localAddress: LO, localPort: 0 },
        streamRule({ bundle: { transport: 1, midExtensionId: 4, payloadTypes: [0] } as unknown as StreamBundle }, 'off'),
      ),
    ).toThrow(/rule\.bundle\.mid/);
  });
});
