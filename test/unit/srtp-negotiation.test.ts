/** SDES offer/answer decisions (src/call/srtp-negotiation.ts), as observed from rtpengine 10.5.3.5 over ng. */
import { describe, expect, it } from 'vitest';
import { parseSdp } from '../../src/sdp/parse';
import {
  emptyMediaCrypto,
  formatKeyLine,
  isSrtpProtocol,
  offerLines,
  plainProtocol,
  settleAnswer,
  srtpKeys,
  usableCryptoLines,
} from '../../src/call/srtp-negotiation';
import type { SdesKeyState } from '../../src/call/state';

const KEY30 = Buffer.from(Array.from({ length: 30 }, (_, i) => i + 1)).toString('base64');
const KEY28 = Buffer.from(Array.from({ length: 28 }, (_, i) => 100 + i)).toString('base64');

function media(lines: string[]) {
  const sdp = ['v=0', 'o=- 1 1 IN IP4 10.0.0.1', 's=-', 'c=IN IP4 10.0.0.1', 't=0 0', 'm=audio 4000 RTP/SAVP 0', ...lines, ''].join('\r\n');
  const parsed = parseSdp(Buffer.from(sdp, 'latin1'));
  const m = parsed.media[0];
  if (!m) throw new Error('no media');
  return m;
}

const ALL = ['AEAD_AES_256_GCM', 'AEAD_AES_128_GCM', 'AES_256_CM_HMAC_SHA1_80', 'AES_256_CM_HMAC_SHA1_32', 'AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32'];

describe('usable a=crypto lines', () => {
  it('keeps known, well-formed, single-key lines without MKI or KDR, in SDP order', () => {
    const m = media([
      `a=crypto:4 AEAD_AES_128_GCM inline:${KEY28}`,
      'a=crypto:1 F8_128_HMAC_SHA1_80 inline:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk',
      `a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:${KEY30.slice(0, 20)}`,
      `a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:${KEY30}|2^31|1:4`,
      `a=crypto:5 AES_CM_128_HMAC_SHA1_80 inline:${KEY30} KDR=1`,
      `a=crypto:6 AES_CM_128_HMAC_SHA1_32 inline:${KEY30} UNENCRYPTED_SRTCP`,
    ]);
    const lines = usableCryptoLines(m, []);
    expect(lines.map((l) => [l.tag, l.suite, l.unencryptedSrtcp])).toEqual([
      [4, 'AEAD_AES_128_GCM', false],
      [6, 'AES_CM_128_HMAC_SHA1_32', true],
    ]);
    expect(usableCryptoLines(m, ['no-AEAD_AES_128_GCM']).map((l) => l.tag)).toEqual([6]);
  });
});

describe('offer lines', () => {
  const offerer: SdesKeyState[] = [
    { tag: 3, suite: 'AES_CM_128_HMAC_SHA1_80', key: KEY30, unencryptedSrtp: false, unencryptedSrtcp: false, unauthenticatedSrtp: false, own: false },
  ];

  it('plain receiver or SDES off: none', () => {
    expect(offerLines('RTP/AVP', offerer, [], [])).toEqual([]);
    expect(offerLines('RTP/SAVP', offerer, ['off'], [])).toEqual([]);
  });

  it("SRTP receiver: the offerer's lines first, then fresh keys for the other suites, tags after the highest", () => {
    const lines = offerLines('RTP/SAVPF', offerer, [], []);
    expect(lines.map((l) => `${l.tag} ${l.suite} ${l.own}`)).toEqual([
      '3 AES_CM_128_HMAC_SHA1_80 false',
      '4 AEAD_AES_256_GCM true',
      '5 AEAD_AES_128_GCM true',
      '6 AES_256_CM_HMAC_SHA1_80 true',
      '7 AES_256_CM_HMAC_SHA1_32 true',
      '8 AES_CM_128_HMAC_SHA1_32 true',
    ]);
    expect(lines[0]?.key).toBe(KEY30);
    expect(new Set(lines.map((l) => l.key)).size).toBe(6);
  });

  it('from plain RTP: every suite, preference order, no-/only- and session flags honoured', () => {
    expect(offerLines('RTP/SAVP', [], [], []).map((l) => l.suite)).toEqual(ALL);
    expect(offerLines('RTP/SAVP', [], ['no-AEAD_AES_256_GCM', 'no-AES_CM_128_HMAC_SHA1_32'], []).map((l) => `${l.tag} ${l.suite}`)).toEqual([
      '1 AEAD_AES_128_GCM',
      '2 AES_256_CM_HMAC_SHA1_80',
      '3 AES_256_CM_HMAC_SHA1_32',
      '4 AES_CM_128_HMAC_SHA1_80',
    ]);
    expect(offerLines('RTP/SAVP', [], ['only-AES_CM_128_HMAC_SHA1_80', 'only-AEAD_AES_128_GCM'], []).map((l) => l.suite)).toEqual([
      'AEAD_AES_128_GCM',
      'AES_CM_128_HMAC_SHA1_80',
    ]);
    const flagged = offerLines('RTP/SAVP', [], ['unencrypted_srtp', 'unencrypted_srtcp', 'unauthenticated_srtp'], []);
    expect(formatKeyLine(flagged[4] as SdesKeyState)).toMatch(/^crypto:5 AES_CM_128_HMAC_SHA1_80 inline:\S+ UNENCRYPTED_SRTP UNENCRYPTED_SRTCP UNAUTHENTICATED_SRTP$/);
    // AEAD cannot be unencrypted/unauthenticated SRTP; its SRTCP may still be unencrypted.
    expect(formatKeyLine(flagged[0] as SdesKeyState)).toMatch(/^crypto:1 AEAD_AES_256_GCM inline:\S+ UNENCRYPTED_SRTCP$/);
  });

  it('a re-offer keeps the keys ngrelay generated before', () => {
    const first = offerLines('RTP/SAVP', [], [], []);
    const again = offerLines('RTP/SAVP', [], [], first);
    expect(again.map((l) => l.key)).toEqual(first.map((l) => l.key));
  });

  it('keys are written unpadded and split into key and salt for the engine', () => {
    const k: SdesKeyState = { tag: 1, suite: 'AEAD_AES_128_GCM', key: KEY28, unencryptedSrtp: false, unencryptedSrtcp: false, unauthenticatedSrtp: false, own: true };
    expect(formatKeyLine(k)).toBe(`crypto:1 AEAD_AES_128_GCM inline:${KEY28.replace(/=+$/, '')}`);
    const e = srtpKeys(k);
    expect(e?.key.length).toBe(16);
    expect(e?.salt.length).toBe(12);
  });
});

describe('answer settlement', () => {
  const a = (tag: number, suite: SdesKeyState['suite'], key: string): SdesKeyState => ({
    tag, suite, key, unencryptedSrtp: false, unencryptedSrtcp: false, unauthenticatedSrtp: false, own: false,
  });

  it("answerer takes the offerer's own line: the offerer hears the answerer's key (pass-through)", () => {
    const offered = [a(1, 'AES_CM_128_HMAC_SHA1_80', KEY30)];
    const given = offerLines('RTP/SAVP', offered, [], []);
    const answerKey = Buffer.alloc(30, 7).toString('base64');
    const s = settleAnswer({ ...emptyMediaCrypto(), offered }, { ...emptyMediaCrypto(), given }, [a(1, 'AES_CM_128_HMAC_SHA1_80', answerKey)], []);
    expect(s.answerer.theirs?.key).toBe(answerKey);
    expect(s.answerer.ours?.key).toBe(KEY30);
    expect(s.offerer.theirs?.key).toBe(KEY30);
    expect(s.offerer.ours).toMatchObject({ tag: 1, key: answerKey });
  });

  it("answerer takes one of ngrelay's lines: the offerer gets its first usable suite with a fresh key", () => {
    const offered = [a(2, 'AEAD_AES_128_GCM', KEY28), a(5, 'AES_CM_128_HMAC_SHA1_80', KEY30)];
    const given = offerLines('RTP/SAVP', offered, [], []);
    const pick = given.find((g) => g.suite === 'AES_256_CM_HMAC_SHA1_80') as SdesKeyState;
    const s = settleAnswer({ ...emptyMediaCrypto(), offered }, { ...emptyMediaCrypto(), given }, [a(pick.tag, pick.suite, Buffer.alloc(46, 1).toString('base64'))], []);
    expect(s.answerer.ours?.key).toBe(pick.key);
    expect(s.offerer.theirs?.tag).toBe(2);
    expect(s.offerer.ours).toMatchObject({ tag: 2, suite: 'AEAD_AES_128_GCM', own: true });
    expect(s.offerer.ours?.key).not.toBe(KEY28);
  });

  it('plain answerer and an offerer without usable keys: both plain', () => {
    const s = settleAnswer(emptyMediaCrypto(), { ...emptyMediaCrypto(), given: offerLines('RTP/SAVP', [], [], []) }, [], []);
    expect([s.offerer.theirs, s.offerer.ours, s.answerer.theirs, s.answerer.ours]).toEqual([null, null, null, null]);
  });

  it('protocol helpers', () => {
    expect(['RTP/AVP', 'RTP/AVPF', 'RTP/SAVP', 'RTP/SAVPF', 'UDP/TLS/RTP/SAVPF'].map(isSrtpProtocol)).toEqual([false, false, true, true, true]);
    expect(['RTP/SAVP', 'RTP/SAVPF', 'RTP/AVP'].map(plainProtocol)).toEqual(['RTP/AVP', 'RTP/AVPF', 'RTP/AVP']);
  });
});
