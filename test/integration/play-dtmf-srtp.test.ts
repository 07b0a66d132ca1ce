/**
 * play DTMF towards an SRTP party (a plain caller bridged to an SDES callee, transport-protocol RTP/SAVP):
 * the injected events are protected with the leg's outbound keys and index, and the caller's packets after
 * them carry shifted sequence numbers that the same context protects — libsrtp2 (one session, as the callee
 * would run it) must accept every packet, across a sequence wrap in the middle of the event, and the callee
 * must see one unbroken stream with the event in it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { startNgrelay } from '../support/ngrelay';
import { NgRawClient } from '../support/ng-client';
import { startOnRandomPorts } from '../support/random-relay';
import { toPlain } from '../support/bencode';
import { buildLibsrtpHelper, type LibsrtpHelper } from '../support/libsrtp';

const SUITE = 'AES_CM_128_HMAC_SHA1_80';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function sdp(port: number, proto: string, crypto: string[]): string {
  return ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', `m=audio ${port} ${proto} 0 101`, 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:101 telephone-event/8000', 'a=sendrecv', ...crypto, ''].join('\r\n');
}

function pcmu(seq: number): Buffer {
  const b = Buffer.alloc(172, 0x22);
  b[0] = 0x80;
  b[1] = 0;
  b.writeUInt16BE(seq & 0xffff, 2);
  b.writeUInt32BE((seq * 160) >>> 0, 4);
  b.writeUInt32BE(0xaaaa, 8);
  return b;
}

describe('play DTMF into an SRTP leg', () => {
  let helper: LibsrtpHelper;
  beforeAll(() => {
    helper = buildLibsrtpHelper();
  });
  afterAll(() => helper?.dispose());

  it('protects the events and the shifted packets so that libsrtp accepts every one, across a wrap', async () => {
    const relay = await startOnRandomPorts(startNgrelay);
    const ng = await NgRawClient.open(relay.ngPort);
    const a = dgram.createSocket('udp4');
    const b = dgram.createSocket('udp4');
    await Promise.all([a, b].map((s) => new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()))));
    const got: Buffer[] = [];
    b.on('message', (m) => got.push(m));
    try {
      const offer = toPlain((await ng.request({ command: 'offer', 'call-id': 'pd-srtp', 'from-tag': 'A', sdp: sdp(a.address().port, 'RTP/AVP', []), 'transport-protocol': 'RTP/SAVP' })).dict) as Record<string, unknown>;
      const offerSdp = String(offer['sdp']);
      const crypto = /a=crypto:(\d+) AES_CM_128_HMAC_SHA1_80 inline:([A-Za-z0-9+/=]+)/.exec(offerSdp);
      expect(crypto).not.toBeNull();
      const relayKey = Buffer.from(crypto![2]!, 'base64');
      const calleeKey = randomBytes(30).toString('base64').replace(/=+$/, '');
      const answer = toPlain((await ng.request({ command: 'answer', 'call-id': 'pd-srtp', 'from-tag': 'A', 'to-tag': 'B', sdp: sdp(b.address().port, 'RTP/SAVP', [`a=crypto:${crypto![1]} ${SUITE} inline:${calleeKey}`]) })).dict) as Record<string, unknown>;
      const toA = Number(/m=audio (\d+)/.exec(String(answer['sdp']))?.[1]);
      // 40 packets, 20 ms apart, from seq 65520: the event starts around 65530 and the wrap falls inside it.
      let sent = 0;
      const media = (async () => {
        for (let seq = 65520; seq < 65520 + 40; ++seq, ++sent) {
          a.send(pcmu(seq), toA, '127.0.0.1');
          await sleep(20);
        }
      })();
      await sleep(200);
      const reply = toPlain((await ng.request({ command: 'play DTMF', 'call-id': 'pd-srtp', 'from-tag': 'A', code: 9, duration: 100, volume: 10 })).dict);
      expect(reply).toEqual({ result: 'ok' });
      await media;
      await sleep(150);
      const plain = helper.run('unprotect-rtp', SUITE, relayKey, got);
      expect(plain.filter((p) => typeof p === 'string')).toEqual([]);
      const packets = plain as Buffer[];
      const seqs = packets.map((p) => p.readUInt16BE(2));
      for (let i = 1; i < seqs.length; ++i) expect((seqs[i]! - seqs[i - 1]!) & 0xffff).toBe(1);
      const events = packets.filter((p) => (p[1]! & 0x7f) === 101);
      expect(events.map((p) => p[12])).toEqual(Array(8).fill(9));
      expect(events.filter((p) => p[13]! & 0x80).length).toBe(3);
      expect(new Set(packets.map((p) => p.readUInt32BE(8)))).toEqual(new Set([0xaaaa]));
      // The wrap happened inside what the callee saw (so the index, not just the sequence, was right).
      expect(seqs.some((s, i) => i > 0 && s < seqs[i - 1]!)).toBe(true);
      expect(sent).toBe(40);
    } finally {
      a.close();
      b.close();
      ng.close();
      await relay.stop();
    }
  }, 60_000);
});
