import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSdp } from '../../src/sdp/parse';
import { rewriteSdp } from '../../src/sdp/rewrite';
import type { MediaRewrite, SdpRewrite } from '../../src/sdp/types';

const FIXTURES = join(__dirname, '..', 'fixtures', 'sdp');

interface Fixture {
  command: 'offer' | 'answer';
  ng: Record<string, unknown>;
  plan: SdpRewrite;
}

const fixtureNames = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.plan.json'))
  .map((f) => f.slice(0, -'.plan.json'.length))
  .sort();

function loadFixture(name: string): { input: Buffer; expected: Buffer; fixture: Fixture } {
  return {
    input: readFileSync(join(FIXTURES, `${name}.in.sdp`)),
    expected: readFileSync(join(FIXTURES, `${name}.out.sdp`)),
    fixture: JSON.parse(readFileSync(join(FIXTURES, `${name}.plan.json`), 'utf8')) as Fixture,
  };
}

/** Shows line breaks when a comparison fails. */
const visible = (b: Buffer): string => b.toString('latin1').replace(/\r/g, '\\r').replace(/\n/g, '\\n\n');

describe('rewriteSdp reproduces rtpengine 10.5 (golden files)', () => {
  it('has the fixtures', () => {
    expect(fixtureNames.length).toBeGreaterThanOrEqual(40);
  });
  for (const name of fixtureNames) {
    it(name, () => {
      const { input, expected, fixture } = loadFixture(name);
      const out = rewriteSdp(parseSdp(input), fixture.plan);
      expect(visible(out)).toBe(visible(expected));
      expect(out.equals(expected)).toBe(true);
    });
  }
});

const relay = { addrType: 'IP4', address: '192.0.2.1' } as const;

function mediaPlan(over: Partial<MediaRewrite> = {}): MediaRewrite {
  return {
    port: 30000,
    connection: relay,
    rtcpPort: 30001,
    rtcpMux: false,
    direction: 'sendrecv',
    proto: null,
    removeIce: false,
    extraAttributes: [],
    ...over,
  };
}

function plan(media: MediaRewrite[], over: Partial<SdpRewrite> = {}): SdpRewrite {
  return { origin: null, sessionVersion: null, sessionConnection: relay, media, ...over };
}

const crlf = (s: string): Buffer => Buffer.from(s.replace(/\n/g, '\r\n'), 'latin1');

describe('rewriteSdp', () => {
  const body = 'v=0\no=- 7 3 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 4000 RTP/AVP 0\n';

  it('copies unknown lines byte for byte, non-UTF-8 bytes included, in their order', () => {
    const odd = Buffer.from([0x61, 0x3d, 0x78, 0x2d, 0xff, 0xfe, 0x00, 0xe9, 0x80]); // a=x-<bytes>
    const input = Buffer.concat([
      crlf(body + 'i=\u00e9t\u00e9\n'),
      odd,
      crlf('\na=zzz:1\nb=AS:64\n'),
    ]);
    const out = rewriteSdp(parseSdp(input), plan([mediaPlan()]));
    const idxI = out.indexOf(Buffer.from('i=\u00e9t\u00e9\r\n', 'latin1'));
    const idxOdd = out.indexOf(Buffer.concat([odd, Buffer.from('\r\n')]));
    const idxZ = out.indexOf(Buffer.from('a=zzz:1\r\nb=AS:64\r\n'));
    expect(idxI).toBeGreaterThan(0);
    expect(idxOdd).toBeGreaterThan(idxI);
    expect(idxZ).toBeGreaterThan(idxOdd);
  });

  it('writes LF output for LF input and CRLF output for CRLF input', () => {
    const lf = rewriteSdp(parseSdp(Buffer.from(body)), plan([mediaPlan()]));
    expect(lf.includes('\r')).toBe(false);
    expect(lf.toString().endsWith('a=rtcp:30001\n')).toBe(true);
    const cr = rewriteSdp(parseSdp(crlf(body)), plan([mediaPlan()]));
    expect(cr.toString().split('\r\n').length - 1).toBe(cr.toString().split('\n').length - 1);
    expect(cr.toString().endsWith('a=rtcp:30001\r\n')).toBe(true);
  });

  it('adds the final line ending the input lacked', () => {
    const out = rewriteSdp(parseSdp(Buffer.from(body + 'a=x')), plan([mediaPlan()]));
    expect(out.toString()).toContain('a=x\na=rtpmap:0 PCMU/8000\n');
  });

  it('rewrites o= only when asked, with the new address and version', () => {
    const sdp = parseSdp(Buffer.from(body));
    expect(rewriteSdp(sdp, plan([mediaPlan()])).toString()).toContain('o=- 7 3 IN IP4 10.0.0.1\n');
    const out = rewriteSdp(sdp, plan([mediaPlan()], { origin: { addrType: 'IP6', address: '2001:db8::1' }, sessionVersion: '4' }));
    expect(out.toString()).toContain('o=- 7 4 IN IP6 2001:db8::1\n');
  });

  it('writes exactly one direction per media, the plan one', () => {
    const sdp = parseSdp(Buffer.from(body + 'a=sendonly\na=inactive\n'));
    const out = rewriteSdp(sdp, plan([mediaPlan({ direction: 'recvonly' })])).toString();
    expect(out.match(/^a=(sendrecv|sendonly|recvonly|inactive)$/gm)).toEqual(['a=recvonly']);
  });

  it('writes rtcp-mux, extra attributes and strips ICE as planned', () => {
    const sdp = parseSdp(Buffer.from(body + 'a=ice-ufrag:u\na=candidate:1 1 UDP 1 10.0.0.1 4000 typ host\na=y\n'));
    const out = rewriteSdp(
      sdp,
      plan([mediaPlan({ rtcpPort: 30000, rtcpMux: true, removeIce: true, extraAttributes: ['x-extra:1'] })]),
    ).toString();
    expect(out).toContain('a=y\na=rtpmap:0 PCMU/8000\na=sendrecv\na=rtcp:30000\na=rtcp-mux\na=x-extra:1\n');
    expect(out).not.toMatch(/ice-ufrag|candidate/);
  });

  it('keeps ICE lines in place when ICE is not removed', () => {
    const sdp = parseSdp(Buffer.from(body + 'a=ice-ufrag:u\na=y\n'));
    expect(rewriteSdp(sdp, plan([mediaPlan()])).toString()).toContain('a=ice-ufrag:u\na=y\n');
  });

  it('refuses a plan whose media count does not match the m= lines', () => {
    expect(() => rewriteSdp(parseSdp(Buffer.from(body)), plan([]))).toThrow(RangeError);
  });
});
