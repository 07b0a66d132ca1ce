import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { NgError } from '../../src/errors';
import { decodeDict } from '../../src/ng/bencode';
import {
  canonicalKey,
  findKey,
  getBuffer,
  getInt,
  getList,
  getString,
  normalizeRequest,
  parseRtppFlags,
} from '../../src/ng/request';
import type { NgDict, NgValue } from '../../src/ng/types';

const TRANSCRIPTS = '/work/shared/reference/rtpengine-10.5-transcripts';

function dict(entries: Array<[string, NgValue]>): NgDict {
  const d = Object.create(null) as NgDict;
  for (const [k, v] of entries) d[k] = v;
  return d;
}

const buf = (s: string): Buffer => Buffer.from(s, 'utf8');

function transcriptRequest(name: string): NgDict {
  const msg = readFileSync(`${TRANSCRIPTS}/${name}.request.bin`);
  return decodeDict(msg.subarray(msg.indexOf(0x20) + 1));
}

describe('key spelling', () => {
  it('treats space and underscore as hyphen', () => {
    expect(canonicalKey('call id')).toBe('call-id');
    expect(canonicalKey('delete delay')).toBe('delete-delay');
    expect(canonicalKey('rtpp_flags')).toBe('rtpp-flags');
    expect(canonicalKey('call-ID')).toBe('call-id');
  });

  it('finds a key under any accepted spelling', () => {
    const d = dict([['call id', buf('abc')], ['from_tag', buf('ft')], ['delete delay', 5]]);
    expect(findKey(d, 'call-id')).toBe('call id');
    expect(getString(d, 'call-id')).toBe('abc');
    expect(getString(d, 'from-tag')).toBe('ft');
    expect(getInt(d, 'delete-delay')).toBe(5);
    expect(getString(d, 'to-tag')).toBeNull();
  });

  it('keeps keys case-sensitive apart from known aliases', () => {
    const d = dict([['Call-Id', buf('x')]]);
    expect(getString(d, 'call-id')).toBeNull();
  });
});

describe('typed accessors', () => {
  it('reads strings from Buffers and JS strings, integers from numbers and digits', () => {
    const d = dict([['a', buf('text')], ['b', 'js'], ['n', 7], ['s', buf('42')], ['neg', buf('-3')]]);
    expect(getString(d, 'a')).toBe('text');
    expect(getString(d, 'b')).toBe('js');
    expect(getString(d, 'n')).toBe('7');
    expect(getInt(d, 's')).toBe(42);
    expect(getInt(d, 'neg')).toBe(-3);
  });

  it('returns the SDP bytes themselves', () => {
    const sdp = Buffer.from([0x76, 0x3d, 0x30, 0x0d, 0x0a, 0xff]);
    const d = dict([['sdp', sdp]]);
    expect(getBuffer(d, 'sdp')).toBe(sdp);
  });

  it('throws NgError for wrong types', () => {
    const d = dict([['flags', buf('trust-address')], ['call-id', dict([])], ['n', buf('12x')], ['l', [[buf('x')]]]]);
    expect(() => getList(d, 'flags')).toThrow(NgError);
    expect(() => getString(d, 'call-id')).toThrow(NgError);
    expect(() => getInt(d, 'n')).toThrow(NgError);
    expect(() => getList(d, 'l')).toThrow(NgError);
  });

  it('reads a list of strings', () => {
    expect(getList(dict([['replace', [buf('origin'), 'session-connection']]]), 'replace')).toEqual(['origin', 'session-connection']);
  });
});

describe('normalizeRequest', () => {
  it('reads the rtpengine transcript offer with flags', () => {
    const raw = transcriptRequest('10-offer-flags');
    const r = normalizeRequest(raw);
    expect(r.command).toBe('offer');
    expect(r.callId).toBe('lab-call-1795233947-flags');
    expect(r.fromTag).toBe('ftag-A');
    expect(r.toTag).toBeNull();
    expect(r.ICE).toBe('remove');
    expect([...r.flags]).toEqual(['trust-address']);
    expect([...r.replace]).toEqual(['origin', 'session-connection']);
    expect(r.transportProtocol).toBe('RTP/AVP');
    expect(r.sdp).toBe(raw['sdp']);
    expect(r.sdp!.toString('latin1').startsWith('v=0\r\n')).toBe(true);
    expect(r.raw).toBe(raw);
  });

  it('reads a Kamailio-style offer', () => {
    const r = normalizeRequest(
      dict([
        ['supports', [buf('load limit')]],
        ['sdp', buf('v=0\r\n')],
        ['ICE', buf('remove')],
        ['label', buf('caller')],
        ['delete delay', 0],
        ['direction', [buf('internal'), buf('external')]],
        ['replace', [buf('origin'), buf('session connection')]],
        ['codec', dict([['strip', [buf('PCMA')]], ['offer', [buf('opus')]]])],
        ['transport-protocol', buf('RTP/AVPF')],
        ['rtcp-mux', [buf('offer'), buf('demux')]],
        ['received-from', [buf('IP4'), buf('192.0.2.7')]],
        ['call-id', buf('cid')],
        ['via-branch', buf('z9hG4bK.1')],
        ['from-tag', buf('ft')],
        ['to-tag', buf('tt')],
        ['command', buf('offer')],
        ['flags', [buf('SIP-source-address'), buf('trust address'), buf('asymmetric')]],
      ]),
    );
    expect([...r.supports]).toEqual(['load limit']);
    expect(r.deleteDelay).toBe(0);
    expect(r.label).toBe('caller');
    expect(r.direction).toEqual(['internal', 'external']);
    expect([...r.replace]).toEqual(['origin', 'session-connection']);
    expect(r.codec.strip).toEqual(['PCMA']);
    expect(r.codec.offer).toEqual(['opus']);
    expect([...r.rtcpMux]).toEqual(['offer', 'demux']);
    expect(r.receivedFrom).toEqual({ family: 'IP4', address: '192.0.2.7' });
    expect(r.viaBranch).toBe('z9hG4bK.1');
    expect(r.toTag).toBe('tt');
    expect([...r.flags]).toEqual(['SIP-source-address', 'trust-address', 'asymmetric']);
  });

  it('moves prefix flags into their structured fields', () => {
    const r = normalizeRequest(
      dict([
        [
          'flags',
          [
            buf('replace-origin'),
            buf('replace-session-connection'),
            buf('rtcp-mux-offer'),
            buf('SDES-off'),
            buf('SDES-no-AES_CM_128_HMAC_SHA1_32'),
            buf('codec-strip-PCMA'),
            buf('codec-offer-opus/48000/2'),
            buf('codec-mask-G722--x..y'),
            buf('transcode-PCMU'),
            buf('endpoint-learning-heuristic'),
            buf('OSRTP-accept'),
            buf('fatal'),
            buf('some-unknown-flag'),
          ],
        ],
      ]),
    );
    expect([...r.replace]).toEqual(['origin', 'session-connection']);
    expect([...r.rtcpMux]).toEqual(['offer']);
    expect(r.SDES).toEqual(['off', 'no-AES_CM_128_HMAC_SHA1_32']);
    expect(r.codec.strip).toEqual(['PCMA']);
    expect(r.codec.offer).toEqual(['opus/48000/2']);
    expect(r.codec.mask).toEqual(['G722=x y']);
    expect(r.codec.transcode).toEqual(['PCMU']);
    expect(r.endpointLearning).toBe('heuristic');
    expect(r.OSRTP).toEqual(['accept']);
    expect([...r.flags]).toEqual(['fatal', 'some-unknown-flag']);
  });

  it('applies k=v flag items as keys', () => {
    const r = normalizeRequest(dict([['flags', [buf('ICE=remove'), buf('label=callee'), buf('replace=origin'), buf('address-family=IP6')]]]));
    expect(r.ICE).toBe('remove');
    expect(r.label).toBe('callee');
    expect([...r.replace]).toEqual(['origin']);
    expect(r.addressFamily).toBe('IP6');
    expect(r.flags.size).toBe(0);
  });

  it('normalizes only space to hyphen and known case aliases, otherwise keeps case', () => {
    const r = normalizeRequest(
      dict([['flags', [buf('sip source address'), buf('webrtc'), buf('Strict-Source'), buf('loop protect'), buf('record-call')]]]),
    );
    expect([...r.flags]).toEqual(['SIP-source-address', 'WebRTC', 'Strict-Source', 'loop-protect', 'record-call']);
    expect(r.recordCall).toBe(true);
  });

  it('reads record-call, endpoint-learning, TOS, limit and metadata', () => {
    const r = normalizeRequest(
      dict([
        ['record call', buf('yes')],
        ['endpoint-learning', buf('delayed')],
        ['TOS', 184],
        ['limit', buf('10')],
        ['metadata', buf('a=b|c=d')],
        ['media address', buf('203.0.113.5')],
      ]),
    );
    expect(r.recordCall).toBe(true);
    expect(r.endpointLearning).toBe('delayed');
    expect(r.TOS).toBe(184);
    expect(r.limit).toBe(10);
    expect(r.metadata).toBe('a=b|c=d');
    expect(r.mediaAddress).toBe('203.0.113.5');
    expect(normalizeRequest(dict([['record-call', buf('off')]])).recordCall).toBe(false);
    expect(normalizeRequest(dict([['record-call', buf('maybe')]])).recordCall).toBeNull();
    expect(normalizeRequest(dict([['endpoint-learning', buf('bogus')]])).endpointLearning).toBeNull();
  });

  it('takes direction from from-interface / to-interface', () => {
    const r = normalizeRequest(dict([['from-interface', buf('pub')], ['to-interface', buf('priv')]]));
    expect(r.direction).toEqual(['pub', 'priv']);
  });

  it('infers the received-from family when it is not IP4/IP6', () => {
    expect(normalizeRequest(dict([['received-from', [buf('ip6'), buf('2001:db8::1')]]])).receivedFrom).toEqual({
      family: 'IP6',
      address: '2001:db8::1',
    });
    expect(normalizeRequest(dict([['received-from', [buf('x'), buf('2001:db8::1')]]])).receivedFrom?.family).toBe('IP6');
  });

  it('throws NgError for wrongly typed keys', () => {
    const cases: NgDict[] = [
      dict([['flags', buf('trust-address')]]),
      dict([['flags', [dict([])]]]),
      dict([['replace', 5]]),
      dict([['call-id', [buf('a')]]]),
      dict([['sdp', 12]]),
      dict([['received-from', buf('IP4 1.2.3.4')]]),
      dict([['received-from', [buf('IP4')]]]),
      dict([['delete-delay', buf('soon')]]),
      dict([['codec', [buf('strip')]]]),
      dict([['rtpp-flags', [buf('x')]]]),
    ];
    for (const d of cases) expect(() => normalizeRequest(d)).toThrow(NgError);
  });

  it('does not check for required keys', () => {
    const r = normalizeRequest(dict([['command', buf('offer')]]));
    expect(r.callId).toBeNull();
    expect(r.sdp).toBeNull();
  });

  it('accepts JS strings (JSON requests and hand-built dicts)', () => {
    const r = normalizeRequest(dict([['command', 'delete'], ['call-id', 'c'], ['flags', ['fatal']], ['delete-delay', '0']]));
    expect(r.command).toBe('delete');
    expect(r.flags.has('fatal')).toBe(true);
    expect(r.deleteDelay).toBe(0);
  });
});

describe('rtpp-flags', () => {
  it('parses Kamailio rtpp-flags text into the same structure', () => {
    const r = parseRtppFlags('replace-origin replace-session-connection ICE=remove trust-address label=caller  address-family=IP4');
    expect([...r.replace]).toEqual(['origin', 'session-connection']);
    expect(r.ICE).toBe('remove');
    expect([...r.flags]).toEqual(['trust-address']);
    expect(r.label).toBe('caller');
    expect(r.addressFamily).toBe('IP4');
  });

  it('parses bracketed lists', () => {
    const r = parseRtppFlags('replace=[origin session-connection] rtcp-mux=[offer require] received-from=[IP4 10.1.2.3] codec-strip=[PCMA PCMU]');
    expect([...r.replace]).toEqual(['origin', 'session-connection']);
    expect([...r.rtcpMux]).toEqual(['offer', 'require']);
    expect(r.receivedFrom).toEqual({ family: 'IP4', address: '10.1.2.3' });
    expect(r.codec.strip).toEqual(['PCMA', 'PCMU']);
  });

  it('combines transport words like rtpengine', () => {
    expect(parseRtppFlags('RTP AVPF').transportProtocol).toBe('RTP/AVPF');
    expect(parseRtppFlags('SRTP AVPF').transportProtocol).toBe('RTP/SAVPF');
    expect(parseRtppFlags('DTLS AVPF').transportProtocol).toBe('UDP/TLS/RTP/SAVPF');
    // rtpengine's table has no entry for DTLS+SRTP bits together: nothing is set, as there.
    expect(parseRtppFlags('DTLS SRTP AVPF').transportProtocol).toBeNull();
    expect(parseRtppFlags('RTP/SAVPF RTP').transportProtocol).toBe('RTP/AVPF');
    expect(parseRtppFlags('RTP/SAVP').transportProtocol).toBe('RTP/SAVP');
    expect(parseRtppFlags('transport-protocol=RTP/AVPF').transportProtocol).toBe('RTP/AVPF');
    expect(parseRtppFlags('trust-address').transportProtocol).toBeNull();
  });

  it('collects direction words', () => {
    expect(parseRtppFlags('internal external').direction).toEqual(['internal', 'external']);
    expect(parseRtppFlags('direction=pub direction=priv').direction).toEqual(['pub', 'priv']);
  });

  it('is applied after the dict keys, from `rtpp-flags` or `rtpp_flags`', () => {
    for (const key of ['rtpp-flags', 'rtpp_flags']) {
      const r = normalizeRequest(
        dict([
          ['command', buf('offer')],
          ['ICE', buf('force')],
          ['flags', [buf('asymmetric')]],
          [key, buf('ICE=remove replace-origin SIP-source-address')],
        ]),
      );
      expect(r.ICE).toBe('remove');
      expect([...r.replace]).toEqual(['origin']);
      expect([...r.flags]).toEqual(['asymmetric', 'SIP-source-address']);
    }
  });

  it('never takes sdp or command from flags text', () => {
    const r = normalizeRequest(dict([['command', buf('offer')], ['rtpp-flags', buf('command=delete sdp=x')]]));
    expect(r.command).toBe('offer');
    expect(r.sdp).toBeNull();
  });
});

describe('Kamailio requests captured in the sipp runs', () => {
  const SIPP = `${TRANSCRIPTS}/sipp`;
  const files = ['uac_pcap-vs-uas_pcma', 'uac_pcap-vs-builtin-uas', 'builtin-uac-vs-builtin-uas'].map(
    (d) => `${SIPP}/${d}/ng-messages.txt`,
  );

  /** Lines `<time> <src> -> 22222 <cookie> <bencode with \r\n escaped>`: the requests to the relay. */
  function requests(file: string): NgDict[] {
    return readFileSync(file, 'latin1')
      .split('\n')
      .filter((l) => / -> 22222 /.test(l))
      .map((l) => {
        const payload = l.slice(l.indexOf(' -> 22222 ') + ' -> 22222 '.length);
        const raw = Buffer.from(payload.replace(/\\r/g, '\r').replace(/\\n/g, '\n'), 'latin1');
        return decodeDict(raw.subarray(raw.indexOf(0x20) + 1));
      });
  }

  it('normalizes every request Kamailio sent', () => {
    let offers = 0;
    for (const file of files) {
      const all = requests(file);
      expect(all.length).toBeGreaterThan(0);
      for (const raw of all) {
        const r = normalizeRequest(raw);
        expect(r.command.length).toBeGreaterThan(0);
        if (r.command === 'offer' || r.command === 'answer') {
          offers++;
          expect(r.callId).toBeTruthy();
          expect(r.fromTag).toBeTruthy();
          expect(r.sdp!.subarray(0, 5).toString()).toBe('v=0\r\n');
          expect(r.supports.has('load limit')).toBe(true);
          expect(r.receivedFrom?.family).toBe('IP4');
          expect(r.replace.has('origin')).toBe(true);
        }
      }
    }
    expect(offers).toBeGreaterThan(0);
  });
});

describe('identifiers are byte strings', () => {
  it('keeps call-ids, tags, via-branch and labels that differ only in non-UTF-8 bytes apart', () => {
    const dictOf = (bytes: string): NgDict => {
      const d = Object.create(null) as NgDict;
      for (const k of ['call-id', 'from-tag', 'to-tag', 'via-branch', 'label']) d[k] = Buffer.from(bytes, 'latin1');
      d['command'] = Buffer.from('offer');
      return d;
    };
    const a = normalizeRequest(dictOf('x\xff\xfe'));
    const b = normalizeRequest(dictOf('x\xfe\xff'));
    for (const k of ['callId', 'fromTag', 'toTag', 'viaBranch', 'label'] as const) {
      expect(a[k]).not.toBe(b[k]);
      expect(Buffer.from(a[k]!, 'latin1')).toEqual(Buffer.from('x\xff\xfe', 'latin1'));
    }
  });

  it('reads a from-tag inside rtpp-flags as bytes too', () => {
    const d = Object.create(null) as NgDict;
    d['rtpp-flags'] = Buffer.from('from-tag=t\xff', 'latin1');
    expect(normalizeRequest(d).fromTag).toBe('t\xff');
  });
});
