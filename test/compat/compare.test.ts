/**
 * The comparison helpers of the compatibility test, on fixed inputs: they must see the differences that
 * matter and ignore the ones that do not (allocated port numbers, session ids).
 */
import { describe, expect, it } from 'vitest';
import { BDict, decode, encode } from '../support/bencode';
import { diffLines, normalizeSdp, PortNamer, shapeDiff } from '../support/compare';

const sdp = (port: number, sessionId: number, direction = 'sendrecv'): string =>
  ['v=0', `o=- ${sessionId} 1 IN IP4 127.0.0.1`, 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', `m=audio ${port} RTP/AVP 0`, `a=${direction}`, `a=rtcp:${port + 1}`, ''].join('\r\n');

const dict = (value: Parameters<typeof encode>[0]): BDict => decode(encode(value)) as BDict;

describe('normalizeSdp', () => {
  it('names ports by first appearance and RTCP relative to RTP, so different numbers compare equal', () => {
    const a = normalizeSdp(sdp(30000, 111), new PortNamer());
    const b = normalizeSdp(sdp(38000, 222), new PortNamer());
    expect(a).toEqual(b);
    expect(a).toContain('m=audio <P1> RTP/AVP 0');
    expect(a).toContain('a=rtcp:<P1+1>');
    expect(a).toContain('o=- <SESS-ID> 1 IN IP4 127.0.0.1');
  });

  it('keeps a port kept (re-offer) distinguishable from a port changed', () => {
    const kept = new PortNamer();
    normalizeSdp(sdp(30000, 1), kept);
    const changed = new PortNamer();
    normalizeSdp(sdp(38000, 1), changed);
    expect(normalizeSdp(sdp(30000, 1), kept)).not.toEqual(normalizeSdp(sdp(38002, 1), changed));
  });

  it('leaves port 0 (rejected media) as 0 and splits only on CRLF', () => {
    expect(normalizeSdp('m=video 0 RTP/AVP 96\r\n', new PortNamer())).toEqual(['m=video 0 RTP/AVP 96', '']);
    expect(normalizeSdp('v=0\nt=0 0\n', new PortNamer())).toHaveLength(1);
  });
});

describe('diffLines', () => {
  it('is empty for equal lists and marks removed/added lines otherwise', () => {
    expect(diffLines(['a', 'b'], ['a', 'b'])).toEqual([]);
    expect(diffLines(['a', 'b', 'c'], ['a', 'x', 'c'])).toEqual(['  a', '+ x', '- b', '  c']);
  });
});

describe('shapeDiff', () => {
  it('reports missing and extra keys, type changes and list lengths by path', () => {
    const reference = dict({ result: 'ok', tags: { t1: { medias: [{ index: 1 }] } }, n: 1 });
    const candidate = dict({ result: 'ok', tags: { t1: { medias: [{ index: '1' }, { index: 2 }] } }, extra: 'x' });
    const problems = shapeDiff(reference, candidate);
    expect(problems).toEqual(
      expect.arrayContaining([
        'n: missing in candidate (rtpengine has integer 1)',
        'extra: extra in candidate (string "x")',
        'tags.t1.medias: rtpengine list has 1 elements [dict], candidate 2 [dict, dict]',
        'tags.t1.medias[0].index: rtpengine has integer 1, candidate has string "1"',
      ]),
    );
    expect(problems).toHaveLength(4);
  });

  it('compares values only for the named keys, and ports by their names', () => {
    const refPorts = new PortNamer();
    refPorts.rtp(30000);
    const candPorts = new PortNamer();
    candPorts.rtp(38000);
    candPorts.rtp(38010);
    const options = { equalValueKeys: new Set(['result']), portKeys: new Set(['local port']), referencePorts: refPorts, candidatePorts: candPorts };
    expect(shapeDiff(dict({ result: 'ok', created: 5, 'local port': 30000 }), dict({ result: 'ok', created: 9, 'local port': 38000 }), options)).toEqual([]);
    expect(shapeDiff(dict({ result: 'ok' }), dict({ result: 'error' }), options)).toEqual(['result: rtpengine "ok", candidate "error"']);
    expect(shapeDiff(dict({ 'local port': 30000 }), dict({ 'local port': 38010 }), options)).toEqual([
      'local port: rtpengine port <P1> (30000), candidate port <P2> (38010)',
    ]);
  });

  it('stops at maxDepth', () => {
    const reference = dict({ statistics: { a: { x: 1 } } });
    const candidate = dict({ statistics: { a: { y: 1 } } });
    expect(shapeDiff(reference, candidate, { maxDepth: 2 })).toEqual([]);
    expect(shapeDiff(reference, candidate, { maxDepth: 3 })).toHaveLength(2);
  });
});
