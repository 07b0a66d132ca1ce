import { describe, expect, it } from 'vitest';
import { NgError } from '../../src/errors';
import { parseSdp, sdpParseDetail } from '../../src/sdp/parse';

const HEAD = 'v=0\no=alice 123 7 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\n';
const crlf = (s: string): Buffer => Buffer.from(s.replace(/\n/g, '\r\n'), 'latin1');

function parseError(body: string): unknown {
  try {
    parseSdp(Buffer.from(body, 'latin1'));
  } catch (err) {
    return err;
  }
  return null;
}

describe('parseSdp', () => {
  it('reads session fields and detects CRLF', () => {
    const sdp = parseSdp(crlf(HEAD + 'm=audio 4000 RTP/AVP 0\n'));
    expect(sdp.eol).toBe('\r\n');
    expect(sdp.origin).toEqual({
      username: 'alice', sessionId: '123', sessionVersion: '7', netType: 'IN', addrType: 'IP4', address: '10.0.0.1',
    });
    expect(sdp.connection).toEqual({ addrType: 'IP4', address: '10.0.0.1' });
    expect(sdp.sessionLines.map((l) => l.type)).toEqual(['v', 'o', 's', 'c', 't']);
    expect(sdp.media).toHaveLength(1);
  });

  it('detects LF and tolerates a missing final line ending and trailing empty lines', () => {
    expect(parseSdp(Buffer.from(HEAD + 'm=audio 4000 RTP/AVP 0')).eol).toBe('\n');
    const sdp = parseSdp(Buffer.from(HEAD + 'm=audio 4000 RTP/AVP 0\na=x\n\n\n'));
    expect(sdp.media[0]?.lines.map((l) => l.value)).toEqual(['audio 4000 RTP/AVP 0', 'x']);
  });

  it('keeps each line as its exact bytes, without the line ending', () => {
    const odd = Buffer.from([0x61, 0x3d, 0xff, 0x00, 0xc3, 0x28, 0x20]);
    const input = Buffer.concat([crlf(HEAD + 'm=audio 4000 RTP/AVP 0\n'), odd, Buffer.from('\r\n')]);
    const last = parseSdp(input).media[0]?.lines[1];
    expect(Buffer.from(`${last?.type}=${last?.value}`, 'latin1').equals(odd)).toBe(true);
    expect(last?.type).toBe('a');
    expect(Buffer.from(last?.value ?? '', 'latin1').equals(odd.subarray(2))).toBe(true);
  });

  it('reads the m= line: type, port, port count, proto, formats (trailing blanks ignored)', () => {
    const sdp = parseSdp(Buffer.from(HEAD + 'm=video 5002/2 RTP/AVPF 96 97 \nm=audio 0 RTP/AVP\n'));
    expect(sdp.media[0]).toMatchObject({ index: 0, type: 'video', port: 5002, portCount: 2, proto: 'RTP/AVPF', formats: ['96', '97'] });
    expect(sdp.media[1]).toMatchObject({ index: 1, type: 'audio', port: 0, portCount: null, formats: [] });
  });

  it('falls back from media c= to session c= for the effective connection', () => {
    const sdp = parseSdp(Buffer.from(HEAD + 'm=audio 4000 RTP/AVP 0\nm=audio 4002 RTP/AVP 0\nc=IN IP6 2001:db8::5 \n'));
    expect(sdp.media[0]?.connection).toBeNull();
    expect(sdp.media[0]?.effectiveConnection).toEqual({ addrType: 'IP4', address: '10.0.0.1' });
    expect(sdp.media[1]?.connection).toEqual({ addrType: 'IP6', address: '2001:db8::5' });
    expect(sdp.media[1]?.effectiveConnection).toEqual({ addrType: 'IP6', address: '2001:db8::5' });
    const none = parseSdp(Buffer.from('v=0\ns=-\nt=0 0\nm=audio 4000 RTP/AVP 0\n'));
    expect(none.media[0]?.effectiveConnection).toBeNull();
    expect(none.origin).toBeNull();
  });

  it('takes the direction from the media, then the session, then sendrecv; the last one wins', () => {
    const sdp = parseSdp(
      Buffer.from(HEAD + 'a=sendonly\nm=audio 1 RTP/AVP 0\nm=audio 2 RTP/AVP 0\na=recvonly\na=inactive\n'),
    );
    expect(sdp.media.map((m) => m.direction)).toEqual(['sendonly', 'inactive']);
    expect(parseSdp(Buffer.from(HEAD + 'm=audio 1 RTP/AVP 0\n')).media[0]?.direction).toBe('sendrecv');
    // rtpengine 10.5 does not read `a=sendonly ` (trailing blank) as a direction either.
    expect(parseSdp(Buffer.from(HEAD + 'm=audio 1 RTP/AVP 0\na=sendonly \n')).media[0]?.direction).toBe('sendrecv');
  });

  it('reads a=rtcp with and without address, and ignores a malformed one', () => {
    const sdp = parseSdp(
      Buffer.from(HEAD + 'm=audio 1 RTP/AVP 0\na=rtcp:4001\nm=audio 2 RTP/AVP 0\na=rtcp:4005 IN IP4 10.0.0.9\nm=audio 3 RTP/AVP 0\na=rtcp:abc\n'),
    );
    expect(sdp.media.map((m) => m.rtcp)).toEqual([
      { port: 4001, connection: null },
      { port: 4005, connection: { addrType: 'IP4', address: '10.0.0.9' } },
      null,
    ]);
  });

  it('reads rtcp-mux, ICE presence (own or inherited), rtpmaps and loop-protect tokens', () => {
    const sdp = parseSdp(
      Buffer.from(
        HEAD +
          'a=rtpengine:sess1\n' +
          'm=audio 1 RTP/AVP 0 97 96\na=rtcp-mux\na=rtpmap:97 opus/48000/2\na=rtpmap:0 PCMU/8000/1\na=rtpmap:96\na=candidate:1 1 UDP 1 10.0.0.1 1 typ host\n' +
          'm=audio 2 RTP/AVP 0\na=rtpengine:media2\n',
      ),
    );
    const [a, b] = sdp.media;
    expect(a?.rtcpMux).toBe(true);
    expect(b?.rtcpMux).toBe(false);
    expect(a?.hasIce).toBe(true);
    expect(b?.hasIce).toBe(false);
    expect([...(a?.rtpmaps ?? [])]).toEqual([['97', 'opus/48000/2'], ['0', 'PCMU/8000']]);
    expect(a?.loopProtectToken).toBe('sess1');
    expect(b?.loopProtectToken).toBe('media2');
    expect(b?.loopProtectTokens).toEqual(['sess1', 'media2']);
    const sessIce = parseSdp(Buffer.from(HEAD + 'a=ice-ufrag:u\na=ice-pwd:p\nm=audio 1 RTP/AVP 0\n'));
    expect(sessIce.media[0]?.hasIce).toBe(true);
  });

  it('accepts an SDP without m= lines', () => {
    expect(parseSdp(Buffer.from(HEAD)).media).toEqual([]);
  });

  const garbage: Array<[string, string]> = [
    ['empty body', ''],
    ['only blank lines', '\r\n\r\n'],
    ['no v= first', 'o=- 1 1 IN IP4 10.0.0.1\nv=0\nm=audio 1 RTP/AVP 0\n'],
    ['v=1', 'v=1\nm=audio 1 RTP/AVP 0\n'],
    ['line without <letter>=', HEAD + 'm=audio 1 RTP/AVP 0\ngarbage\n'],
    ['line starting with =', HEAD + '=x\n'],
    ['m= without port', HEAD + 'm=audio RTP/AVP 0\n'],
    ['m= port out of range', HEAD + 'm=audio 70000 RTP/AVP 0\n'],
    ['m= port not a number', HEAD + 'm=audio 4x00 RTP/AVP 0\n'],
    ['m= negative port', HEAD + 'm=audio -1 RTP/AVP 0\n'],
    ['m= bad port count', HEAD + 'm=audio 4000/x RTP/AVP 0\n'],
    ['m= too short', HEAD + 'm=audio 4000\n'],
    ['c= host name', HEAD.replace('c=IN IP4 10.0.0.1', 'c=IN IP4 foo') + 'm=audio 1 RTP/AVP 0\n'],
    ['c= missing address', HEAD.replace('c=IN IP4 10.0.0.1', 'c=IN IP4') + 'm=audio 1 RTP/AVP 0\n'],
    ['c= family mismatch', HEAD.replace('c=IN IP4 10.0.0.1', 'c=IN IP4 ::1') + 'm=audio 1 RTP/AVP 0\n'],
    ['media c= bad', HEAD + 'm=audio 1 RTP/AVP 0\nc=IN IP7 1.2.3.4\n'],
    ['o= short', HEAD.replace('o=alice 123 7 IN IP4 10.0.0.1', 'o=- 1 IN IP4') + 'm=audio 1 RTP/AVP 0\n'],
    ['binary junk', '\x00\x01\x02\xff'],
  ];
  for (const [what, body] of garbage) {
    it(`rejects ${what} with "Failed to parse SDP"`, () => {
      const err = parseError(body);
      expect(err).toBeInstanceOf(NgError);
      expect((err as NgError).reason).toBe('Failed to parse SDP');
    });
  }

  it.each([
    ['line 7: not a \'<letter>=\' line: "garbage"', HEAD + 'm=audio 1 RTP/AVP 0\ngarbage\n'],
    ['line 6: m= needs at least 3 fields (media port proto): "m=audio 4000"', HEAD + 'm=audio 4000\n'],
    ['line 4: bad c= address: "c=IN IP4 foo"', HEAD.replace('c=IN IP4 10.0.0.1', 'c=IN IP4 foo') + 'm=audio 1 RTP/AVP 0\n'],
    ['line 7: bad c= address: "c=IN IP7 1.2.3.4"', HEAD + 'm=audio 1 RTP/AVP 0\nc=IN IP7 1.2.3.4\n'],
    ['line 2: o= needs 6 fields: "o=- 1 IN IP4"', HEAD.replace('o=alice 123 7 IN IP4 10.0.0.1', 'o=- 1 IN IP4')],
    ['line 1: the first line is not \'v=0\': "v=1"', 'v=1\nm=audio 1 RTP/AVP 0\n'],
    ['empty body', ''],
  ])('the error names the line for the log: %s', (detail, body) => {
    const err = parseError(body);
    expect(err).toEqual(new NgError('Failed to parse SDP'));
    expect(sdpParseDetail(err)).toBe(detail);
  });
  it('counts blank lines and CRLF bodies like an editor does', () => {
    const err = parseError(crlf(HEAD + '\nm=audio 1 RTP/AVP 0\nbad line\n').toString('latin1'));
    expect(sdpParseDetail(err)).toBe('line 8: not a \'<letter>=\' line: "bad line"');
  });
});
