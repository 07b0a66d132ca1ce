import { describe, it, expect, beforeEach } from 'vitest';
import pino from 'pino';
import { CallManager } from '../../src/call/call-manager';
import type { SignalRequest } from '../../src/call/signal';
import type { RelayConfig } from '../../src/config/types';
import { NgError, PortsExhaustedError, RestoreBindError } from '../../src/errors';
import { expectThrows } from '../support/errors';
import type { CallState, StreamState } from '../../src/call/state';
import { TimeoutSweeper, expiredReason } from '../../src/call/timeouts';
import { callStatistics } from '../../src/commands/query-reply';
import { FakeDataPlane } from '../support/fake-dataplane';
import { signalRequest, testConfig } from '../support/call-fixtures';
import { pack, unpack } from 'msgpackr';

const logger = pino({ level: 'silent' });

/** testConfig with the three interfaces these cases choose between, and rtpengine's delete-delay. */
function config(over: Partial<RelayConfig> = {}): RelayConfig {
  return testConfig({
    interfaces: [
      { name: 'default', address: '127.0.0.1', advertised: '127.0.0.1', family: 'IPv4' },
      { name: 'default', address: '::1', advertised: '::1', family: 'IPv6' },
      { name: 'pub', address: '127.0.0.2', advertised: '203.0.113.7', family: 'IPv4' },
    ],
    listenNg: { address: '127.0.0.1', port: 2223 },
    deleteDelay: 30,
    ...over,
  });
}

function sdp(opts: { addr?: string; port?: number; extra?: string[]; media?: string[]; ip6?: boolean } = {}): Buffer {
  const addr = opts.addr ?? '192.168.1.10';
  const fam = opts.ip6 ? 'IP6' : 'IP4';
  const media = opts.media ?? [`m=audio ${opts.port ?? 40000} RTP/AVP 0 8`, 'a=rtpmap:0 PCMU/8000', ...(opts.extra ?? [])];
  return Buffer.from(['v=0', `o=- 1 1 IN ${fam} ${addr}`, 's=-', `c=IN ${fam} ${addr}`, 't=0 0', ...media, ''].join('\r\n'));
}

/** signalRequest with this file's SDP. */
function req(over: Partial<SignalRequest>): SignalRequest {
  return signalRequest({ sdp: sdp(), ...over });
}

const lines = (b: Buffer): string[] => b.toString('latin1').split('\r\n');
const mPorts = (b: Buffer): number[] =>
  lines(b)
    .filter((l) => l.startsWith('m='))
    .map((l) => Number(l.split(' ')[1]));

describe('CallManager', () => {
  let dp: FakeDataPlane;
  let cm: CallManager;
  let now: number;

  beforeEach(() => {
    dp = new FakeDataPlane();
    now = 1_700_000_000_000;
    cm = new CallManager(config(), dp, logger, {}, () => now);
  });

  it('offer allocates sockets for both sides and rewrites the SDP towards the relay', () => {
    const out = cm.offer(req({}));
    const l = lines(out);
    expect(l).toContain('c=IN IP4 127.0.0.1');
    const [port] = mPorts(out);
    expect(port! % 2).toBe(0);
    expect(port).toBeGreaterThanOrEqual(30000);
    expect(l).toContain(`a=rtcp:${port! + 1}`);
    expect(l).toContain('a=sendrecv');
    expect(dp.streams.size).toBe(4);
    // The socket in the offer's SDP is the callee's; what arrives there goes to the caller's socket.
    const calleeRtp = dp.byPort(port!)!;
    const callerRtp = dp.streams.get(calleeRtp.rule.sink!)!;
    expect(callerRtp.rule.expected).toEqual({ family: 'IPv4', address: '192.168.1.10', port: 40000 });
    expect(callerRtp.rule.sink).toBe(calleeRtp.spec.id);
    expect(calleeRtp.rule.expected).toBeNull();
  });

  it('answer completes the path and gives the caller its own socket', () => {
    const offerPort = mPorts(cm.offer(req({})))[0]!;
    const ans = cm.answer(req({ toTag: 'B', sdp: sdp({ addr: '10.0.0.5', port: 50000 }) }));
    const answerPort = mPorts(ans)[0]!;
    expect(answerPort).not.toBe(offerPort);
    const callerRtp = dp.byPort(answerPort)!;
    const calleeRtp = dp.byPort(offerPort)!;
    expect(calleeRtp.rule.expected).toEqual({ family: 'IPv4', address: '10.0.0.5', port: 50000 });
    expect(dp.byPort(offerPort + 1)!.rule.expected).toEqual({ family: 'IPv4', address: '10.0.0.5', port: 50001 });
    expect(callerRtp.rule.sink).toBe(calleeRtp.spec.id);
    expect(calleeRtp.rule.sink).toBe(callerRtp.spec.id);
    const stats = callStatistics(cm.calls.get('call-1')!, (id) => dp.readCounters([id]).get(id));
    expect(Object.keys(stats['tags'] as object).sort()).toEqual(['A', 'B']);
  });

  it('re-INVITE keeps ports when the media did not change, and takes new ones when it did', () => {
    const first = mPorts(cm.offer(req({})))[0];
    cm.answer(req({ toTag: 'B', sdp: sdp({ addr: '10.0.0.5', port: 50000 }) }));
    expect(mPorts(cm.offer(req({ sdp: sdp({ port: 40100 }) })))[0]).toBe(first);
    // The callee re-INVITEs: its SDP goes to the caller, carrying the caller-facing socket.
    const callerPort = dp.streams.get(dp.byPort(first!)!.rule.sink!)!.spec.localPort;
    expect(mPorts(cm.offer(req({ fromTag: 'B', sdp: sdp({ addr: '10.0.0.5', port: 50000 }) })))[0]).toBe(callerPort);
    const video = cm.offer(
      req({ sdp: sdp({ media: ['m=video 40000 RTP/AVP 96', 'a=rtpmap:96 H264/90000'] }) }),
    );
    expect(mPorts(video)[0]).not.toBe(first);
    expect(dp.streams.size).toBe(4);
  });

  it('forks by via-branch get their own ports; an answer picks one and deleting the other branch frees it', () => {
    const p1 = mPorts(cm.offer(req({ viaBranch: 'z9hG4bK-1' })))[0]!;
    const p2 = mPorts(cm.offer(req({ viaBranch: 'z9hG4bK-2' })))[0]!;
    expect(p1).not.toBe(p2);
    expect(dp.streams.size).toBe(6);
    cm.answer(req({ toTag: 'B2', viaBranch: 'z9hG4bK-2', sdp: sdp({ addr: '10.0.0.6', port: 50002 }) }));
    expect(dp.byPort(p2)!.rule.expected?.address).toBe('10.0.0.6');
    const callerRtp = dp.streams.get(dp.byPort(p2)!.rule.sink!)!;
    expect(callerRtp.rule.sink).toBe(dp.byPort(p2)!.spec.id);
    cm.delete({ callId: 'call-1', fromTag: 'A', toTag: null, viaBranch: 'z9hG4bK-1', deleteDelay: null, fatal: false, fast: false });
    expect(dp.byPort(p1)).toBeUndefined();
    expect(dp.byPort(p2)).toBeDefined();
  });

  it('several answers without via-branch: the latest answer wins', () => {
    const port = mPorts(cm.offer(req({})))[0]!;
    cm.answer(req({ toTag: 'B1', sdp: sdp({ addr: '10.0.0.7', port: 50010 }) }));
    cm.answer(req({ toTag: 'B2', sdp: sdp({ addr: '10.0.0.8', port: 50020 }) }));
    expect(dp.byPort(port)!.rule.expected?.address).toBe('10.0.0.8');
    expect(cm.findByTag(cm.calls.get('call-1')!, 'B2')).toBeDefined();
  });

  it('late offer: the offer comes from the callee (tags swapped) and works the same way', () => {
    const port = mPorts(cm.offer(req({ fromTag: 'callee', sdp: sdp({ addr: '10.0.0.9', port: 50030 }) })))[0]!;
    const ans = cm.answer(req({ fromTag: 'callee', toTag: 'caller', sdp: sdp({ addr: '192.168.1.10', port: 40000 }) }));
    expect(dp.byPort(port)!.rule.expected?.address).toBe('192.168.1.10');
    expect(dp.byPort(mPorts(ans)[0]!)!.rule.expected?.address).toBe('10.0.0.9');
  });

  it('rtcp-mux offer: offered onwards, accepted by the callee, not forced on a caller that did not offer it', () => {
    const out = cm.offer(req({ rtcpMux: new Set(['offer']) }));
    expect(lines(out)).toContain('a=rtcp-mux');
    const port = mPorts(out)[0]!;
    const ans = cm.answer(req({ toTag: 'B', sdp: sdp({ addr: '10.0.0.5', port: 50000, extra: ['a=rtcp-mux'] }) }));
    expect(lines(ans)).not.toContain('a=rtcp-mux');
    // The callee's RTCP now shares its RTP socket; the separate RTCP port is free again.
    expect(dp.byPort(port + 1)).toBeUndefined();
    const muxed = [...dp.streams.values()].find((s) => s.spec.muxedWith === dp.byPort(port)!.spec.id);
    expect(muxed?.spec.component).toBe('rtcp');
  });

  it('a caller offering rtcp-mux gets it when the callee accepts', () => {
    cm.offer(req({ sdp: sdp({ extra: ['a=rtcp-mux'] }) }));
    const ans = cm.answer(req({ toTag: 'B', sdp: sdp({ addr: '10.0.0.5', port: 50000, extra: ['a=rtcp-mux'] }) }));
    const port = mPorts(ans)[0]!;
    expect(lines(ans)).toContain('a=rtcp-mux');
    expect(lines(ans)).toContain(`a=rtcp:${port}`);
  });

  it('two m= lines, the second rejected by the answer', () => {
    const two = ['m=audio 40000 RTP/AVP 0', 'a=rtpmap:0 PCMU/8000', 'm=video 40002 RTP/AVP 96', 'a=rtpmap:96 H264/90000'];
    const out = cm.offer(req({ sdp: sdp({ media: two }) }));
    expect(mPorts(out)).toHaveLength(2);
    expect(dp.streams.size).toBe(8);
    const ansMedia = ['m=audio 50000 RTP/AVP 0', 'a=rtpmap:0 PCMU/8000', 'm=video 0 RTP/AVP 96'];
    const ans = cm.answer(req({ toTag: 'B', sdp: sdp({ addr: '10.0.0.5', media: ansMedia }) }));
    expect(mPorts(ans)[1]).toBe(0);
    expect(dp.streams.size).toBe(4);
  });

  it('hold: sendonly passes through, c=0.0.0.0 stays and leaves no destination', () => {
    cm.offer(req({}));
    cm.answer(req({ toTag: 'B', sdp: sdp({ addr: '10.0.0.5', port: 50000 }) }));
    const hold = cm.offer(req({ sdp: sdp({ extra: ['a=sendonly'] }) }));
    expect(lines(hold)).toContain('a=sendonly');
    const zero = cm.offer(req({ sdp: sdp({ addr: '0.0.0.0' }) }));
    expect(lines(zero)).toContain('c=IN IP4 0.0.0.0');
    const callerRtp = [...dp.streams.values()].find((s) => s.rule.expected === null && s.spec.component === 'rtp');
    expect(callerRtp).toBeDefined();
  });

  it('SIP-source-address sends to received-from with the SDP port; media-address overrides', () => {
    const port = mPorts(
      cm.offer(req({ flags: new Set(['SIP-source-address']), receivedFrom: { addrType: 'IP4', address: '198.51.100.9' } })),
    )[0]!;
    const caller = dp.streams.get(dp.byPort(port)!.rule.sink!)!;
    expect(caller.rule.expected).toEqual({ family: 'IPv4', address: '198.51.100.9', port: 40000 });
    cm.offer(req({ callId: 'call-2', mediaAddress: '198.51.100.20' }));
    const exp = [...dp.streams.values()].map((s) => s.rule.expected?.address);
    expect(exp).toContain('198.51.100.20');
  });

  it('direction picks named interfaces and replace-origin uses the advertised address', () => {
    const out = cm.offer(req({ direction: ['default', 'pub'], replace: new Set(['origin']) }));
    expect(lines(out)).toContain('c=IN IP4 203.0.113.7');
    expect(lines(out)).toContain('o=- 1 1 IN IP4 203.0.113.7');
    expect(dp.byPort(mPorts(out)[0]!)!.spec.localAddress).toBe('127.0.0.2');
  });

  it('IPv6 SDP gets the IPv6 interface', () => {
    const out = cm.offer(req({ sdp: sdp({ addr: '2001:db8::1', ip6: true }) }));
    expect(lines(out)).toContain('c=IN IP6 ::1');
    expect(dp.byPort(mPorts(out)[0]!)!.spec.localAddress).toBe('::1');
  });

  it('running out of ports answers "Ran out of ports" and leaves the existing call untouched', () => {
    cm = new CallManager(config({ portMin: 30000, portMax: 30005 }), dp, logger, {}, () => now);
    cm.offer(req({}));
    cm.answer(req({ toTag: 'B', sdp: sdp({ addr: '10.0.0.5', port: 50000 }) }));
    const before = JSON.stringify([...dp.streams.entries()]);
    expectThrows(() => cm.offer(req({ callId: 'call-2' })), PortsExhaustedError, 'Ran out of ports');
    expect(() => cm.offer(req({ sdp: sdp({ media: ['m=video 4000 RTP/AVP 96'] }) }))).toThrowError(NgError);
    expect(JSON.stringify([...dp.streams.entries()])).toBe(before);
    expect(cm.calls.has('call-2')).toBe(false);
  });

  it('ports held by another process are skipped', () => {
    // Every RTCP port of the first 12 pairs is taken by someone else.
    for (let p = 30001; p < 30024; p += 2) dp.foreign.add(`127.0.0.1:${p}`);
    for (let i = 0; i < 10; i++) {
      const port = mPorts(cm.offer(req({ callId: `c${i}` })))[0]!;
      expect(dp.foreign.has(`127.0.0.1:${port + 1}`)).toBe(false);
    }
    expect(dp.streams.size).toBe(40);
  });

  it('bad SDP changes nothing', () => {
    expect(() => cm.offer(req({ sdp: Buffer.from('garbage') }))).toThrowError(new NgError('Failed to parse SDP'));
    expect(cm.calls.size).toBe(0);
    expect(dp.streams.size).toBe(0);
  });

  it('loop-protect returns an SDP that already passed through untouched', () => {
    const out = cm.offer(req({ flags: new Set(['loop-protect']) }));
    expect(lines(out).some((l) => l.startsWith('a=rtpengine:'))).toBe(true);
    expect(cm.offer(req({ sdp: out })).equals(out)).toBe(true);
  });

  it('delete honours delete-delay and the sweep frees every port', () => {
    cm.offer(req({}));
    cm.answer(req({ toTag: 'B', sdp: sdp({ addr: '10.0.0.5', port: 50000 }) }));
    cm.delete({ callId: 'call-1', fromTag: 'A', toTag: null, viaBranch: null, deleteDelay: null, fatal: false, fast: false });
    expect(cm.calls.has('call-1')).toBe(true);
    const sweeper = new TimeoutSweeper(cm, dp, config(), () => now);
    now += 29_000;
    sweeper.sweep();
    expect(cm.calls.has('call-1')).toBe(true);
    now += 2_000;
    sweeper.sweep();
    expect(cm.calls.has('call-1')).toBe(false);
    expect(dp.streams.size).toBe(0);
    expect(cm.sockets.allocator('127.0.0.1').counts().used).toBe(0);
    expect(cm.delete({ callId: 'call-1', fromTag: null, toTag: null, viaBranch: null, deleteDelay: 0, fatal: false, fast: false })).toBeNull();
  });

  it('the sweep ends each call on its own media timeout, from the data plane\'s last-packet times', () => {
    for (const callId of ['call-1', 'call-2', 'call-3']) {
      cm.offer(req({ callId }));
      cm.answer(req({ callId, toTag: 'B', sdp: sdp({ addr: '10.0.0.5', port: 50000 }) }));
    }
    const sweeper = new TimeoutSweeper(cm, dp, config(), () => now);
    const started = now;
    now += 50_000;
    // call-1 and call-3 had media 50 s in (one stream of each is enough); call-2 never did.
    const touch = (callId: string) => {
      const id = cm.streamIds(cm.calls.get(callId)!)[1]!;
      dp.counters.set(id, { packets: 1, bytes: 172, errors: 0, lastPacketMs: now, endpoint: null, confirmed: true, ssrc: 1, lastSeq: 1 });
    };
    touch('call-1');
    touch('call-3');
    now = started + 61_000;
    sweeper.sweep();
    expect([...cm.calls.keys()].sort()).toEqual(['call-1', 'call-3']);
    now = started + 50_000 + 61_000;
    sweeper.sweep();
    expect(cm.calls.size).toBe(0);
    expect(dp.streams.size).toBe(0);
  });

  it('call state is plain data: it survives a msgpackr round trip unchanged', () => {
    cm.offer(req({ rtcpMux: new Set(['offer']), flags: new Set(['strict-source']) }));
    cm.answer(req({ toTag: 'B', sdp: sdp({ addr: '10.0.0.5', port: 50000, extra: ['a=rtcp-mux'] }) }));
    const call = cm.calls.get('call-1')!;
    expect(unpack(pack(call))).toEqual(JSON.parse(JSON.stringify(call)));
  });

  it('replace SDP-version: the version stays while the SDP is unchanged and goes up by one when it changes', () => {
    const version = (b: Buffer) => lines(b).find((l) => l.startsWith('o='))!.split(' ')[2];
    const sv = new Set(['SDP-version']);
    expect(version(cm.offer(req({ replace: sv })))).toBe('1');
    expect(version(cm.offer(req({ replace: sv, sdp: sdp() })))).toBe('1');
    expect(version(cm.offer(req({ replace: sv, sdp: sdp({ extra: ['a=sendonly'] }) })))).toBe('2');
    expect(version(cm.offer(req({ replace: sv, sdp: sdp({ extra: ['a=sendonly'] }) })))).toBe('2');
    expect(version(cm.offer(req({ replace: new Set(['force-increment-sdp-ver']), sdp: sdp({ extra: ['a=sendonly'] }) })))).toBe('3');
  });

  it('delete-delay 0 ends the call at once', () => {
    cm.offer(req({}));
    cm.delete({ callId: 'call-1', fromTag: null, toTag: null, viaBranch: null, deleteDelay: 0, fatal: false, fast: false });
    expect(cm.calls.size).toBe(0);
    expect(dp.streams.size).toBe(0);
  });
});

describe('timeouts', () => {
  const cfg = { timeout: 60, silentTimeout: 3600, offerTimeout: 120, finalTimeout: 0 };
  const base = {
    callId: 'c',
    createdMs: 0,
    lastSignalMs: 0,
    answeredMs: 0,
    monologues: [],
    deleteAtMs: null,
    loopToken: 'x',
    recordCall: false,
    metadata: null,
    nextMonologueKey: 1,
    endReason: null,
    recording: null,
  };
  it('offer-timeout applies before the answer, media timeout after it', () => {
    expect(expiredReason({ ...base, answeredMs: null }, cfg, 0, 119_000)).toBeNull();
    expect(expiredReason({ ...base, answeredMs: null }, cfg, 0, 120_000)).toBe('offer-timeout');
    // answered, nobody sending at all → silent-timeout
    expect(expiredReason(base, cfg, 0, 61_000)).toBeNull();
    expect(expiredReason(base, cfg, 0, 3_600_000)).toBe('silent-timeout');
  });
  it('media timeout reads the last packet time', () => {
    const media = { direction: 'sendrecv', rejected: false } as never;
    const call = { ...base, monologues: [{ medias: [media] }] } as never;
    expect(expiredReason(call, cfg, 50_000, 100_000)).toBeNull();
    expect(expiredReason(call, cfg, 50_000, 110_000)).toBe('timeout');
    expect(expiredReason(call, { ...cfg, finalTimeout: 10 }, 50_000, 10_000)).toBe('final-timeout');
  });
});

describe('CallManager logs for a person', () => {
  let dp: FakeDataPlane;
  let cm: CallManager;
  let now: number;
  let logged: Array<Record<string, unknown>>;

  beforeEach(() => {
    dp = new FakeDataPlane();
    now = 1_700_000_000_000;
    logged = [];
    const capture = pino({ level: 'info' }, { write: (line: string) => logged.push(JSON.parse(line) as Record<string, unknown>) });
    cm = new CallManager(config(), dp, capture, {}, () => now);
  });

  const byMsg = (msg: string) => logged.filter((l) => l['msg'] === msg);
  const deleteReq = { callId: 'call-1', fromTag: 'A', toTag: null, viaBranch: null, deleteDelay: null, fatal: false, fast: false };

  it('offer and answer lines name the local ports of both parties', () => {
    const offerPort = mPorts(cm.offer(req({})))[0]!;
    const answerPort = mPorts(cm.answer(req({ toTag: 'B', sdp: sdp({ addr: '10.0.0.5', port: 50000 }) })))[0]!;
    const ports = { offerer: [`127.0.0.1:${answerPort}/${answerPort + 1}`], answerer: [`127.0.0.1:${offerPort}/${offerPort + 1}`] };
    expect(byMsg('offer processed')[0]).toMatchObject({ ports });
    expect(byMsg('answer processed')[0]).toMatchObject({ ports });
  });

  it("a call's end logs every stream's final packets/bytes/errors, then the reason and the duration", () => {
    const offerPort = mPorts(cm.offer(req({})))[0]!;
    cm.answer(req({ toTag: 'B', sdp: sdp({ addr: '10.0.0.5', port: 50000 }) }));
    const calleeRtp = dp.byPort(offerPort)!;
    dp.counters.set(calleeRtp.spec.id, {
      packets: 250, bytes: 43000, errors: 3, lastPacketMs: now, endpoint: { family: 'IPv4', address: '10.0.0.5', port: 50000 },
      confirmed: true, ssrc: 1, lastSeq: 250,
    });
    now += 5_200;
    cm.delete({ ...deleteReq, deleteDelay: 0 });
    const stats = byMsg('final packet stats');
    expect(stats).toHaveLength(4);
    expect(stats).toContainEqual(
      expect.objectContaining({
        'call-id': 'call-1', tag: 'B', media: 1, component: 'rtp', local: `127.0.0.1:${offerPort}`, remote: '10.0.0.5:50000',
        packets: 250, bytes: 43000, errors: 3,
      }),
    );
    expect(byMsg('call ended')).toEqual([expect.objectContaining({ 'call-id': 'call-1', reason: 'delete', duration: 5.2 })]);
    // The end line comes after the stream lines.
    expect(logged.findIndex((l) => l['msg'] === 'call ended')).toBeGreaterThan(logged.findIndex((l) => l['msg'] === 'final packet stats'));
  });

  it('the duration ends at the delete, not after delete-delay (avgcallduration as rtpengine reports it)', () => {
    cm.offer(req({}));
    cm.answer(req({ toTag: 'B', sdp: sdp({ addr: '10.0.0.5', port: 50000 }) }));
    now += 5_200;
    cm.delete(deleteReq);
    now += 31_000;
    new TimeoutSweeper(cm, dp, config(), () => now).sweep();
    expect(cm.calls.has('call-1')).toBe(false);
    expect(cm.totals.totalCallDurationMs).toBe(5_200);
    expect(byMsg('call ended')[0]).toMatchObject({ reason: 'delete', duration: 5.2 });
  });

  it('calls closed when the relay stops are logged with reason shutdown; terminate is counted as forced', () => {
    cm.offer(req({}));
    cm.offer(req({ callId: 'call-2' }));
    cm.destroy(cm.calls.get('call-2')!, 'terminate');
    cm.destroyAll();
    expect(byMsg('call ended').map((l) => [l['call-id'], l['reason']])).toEqual([
      ['call-2', 'terminate'],
      ['call-1', 'shutdown'],
    ]);
    expect(cm.totals).toMatchObject({ forcedTerminatedSessions: 1, regularTerminatedSessions: 0, endedCalls: 2 });
  });

  it('an SDP that does not parse is logged with the line at fault; the reply keeps rtpengine\'s words', () => {
    const bad = Buffer.from('v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 nowhere\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n');
    expect(() => cm.offer(req({ sdp: bad }))).toThrow(new NgError('Failed to parse SDP'));
    expect(byMsg('SDP not accepted')).toEqual([
      expect.objectContaining({ 'call-id': 'call-1', 'from-tag': 'A', detail: 'line 4: bad c= address: "c=IN IP4 nowhere"' }),
    ]);
  });
});

describe('CallManager stream rules: the clock rate of the media', () => {
  it("is the rate after the codec's first slash (opus/48000/2 -> 48000), else 8000", () => {
    const rateOf = (rtpmap: string[]): number => {
      const dp = new FakeDataPlane();
      const cm = new CallManager(config(), dp, logger, {}, () => 1_700_000_000_000);
      cm.offer(req({ sdp: sdp({ media: ['m=audio 40000 RTP/AVP 111', ...rtpmap] }) }));
      const port = mPorts(cm.answer(req({ toTag: 'B', sdp: sdp({ addr: '10.0.0.5', port: 50000, media: ['m=audio 50000 RTP/AVP 111', ...rtpmap] }) })))[0]!;
      return dp.byPort(port)!.rule.clockRate!;
    };
    expect(rateOf(['a=rtpmap:111 opus/48000/2'])).toBe(48000);
    expect(rateOf(['a=rtpmap:111 G722/8000'])).toBe(8000);
    expect(rateOf(['a=rtpmap:111 L16/16000'])).toBe(16000);
    expect(rateOf(['a=rtpmap:111 weird/x'])).toBe(8000);
    expect(rateOf([])).toBe(8000); // no rtpmap: no codec name to read a rate from
  });
});

describe('CallManager media control (block/silence media)', () => {
  it("marks the rules of the streams that receive the named party's media, and only those; undo clears them", () => {
    const dp = new FakeDataPlane();
    const cm = new CallManager(config(), dp, logger, {}, () => 1_700_000_000_000);
    const offerPort = mPorts(cm.offer(req({})))[0]!;
    const answerPort = mPorts(cm.answer(req({ toTag: 'B', sdp: sdp({ addr: '10.0.0.5', port: 50000 }) })))[0]!;
    const call = cm.calls.get('call-1')!;
    const fromA = dp.byPort(answerPort)!; // what A sends arrives on the socket in the answer's SDP
    const fromB = dp.byPort(offerPort)!;
    expect(fromA.rule).toMatchObject({ blockMedia: false, silenceMedia: false, clockRate: 8000 });
    cm.setMediaControl(call, [cm.findByTag(call, 'A')!], 'blocked', true);
    expect(dp.byPort(answerPort)!.rule).toMatchObject({ blockMedia: true, silenceMedia: false });
    expect(dp.byPort(answerPort + 1)!.rule.blockMedia).toBe(true);
    expect(dp.byPort(offerPort)!.rule.blockMedia).toBe(false);
    cm.setMediaControl(call, call.monologues, 'silenced', true);
    expect(dp.byPort(offerPort)!.rule.silenceMedia).toBe(true);
    expect(dp.byPort(answerPort)!.rule.silenceMedia).toBe(true);
    cm.setMediaControl(call, call.monologues, 'blocked', false);
    cm.setMediaControl(call, call.monologues, 'silenced', false);
    expect(dp.byPort(answerPort)!.rule).toMatchObject({ blockMedia: false, silenceMedia: false });
    // The rest of the rule is untouched by media control.
    expect(dp.byPort(answerPort)!.rule.sink).toBe(fromA.rule.sink);
    expect(dp.byPort(offerPort)!.rule.expected).toEqual(fromB.rule.expected);
  });
});

describe('CallManager.restore (--state-dir)', () => {
  function answeredCall(): { dp: FakeDataPlane; cm: CallManager } {
    const dp = new FakeDataPlane();
    const cm = new CallManager(config(), dp, logger);
    cm.offer(req({ sdp: sdp({ port: 40000 }) }));
    cm.answer(req({ toTag: 'B', sdp: sdp({ addr: '192.168.1.20', port: 50000 }) }));
    return { dp, cm };
  }

  it('binds every stream again on its id and port and installs the same rules', () => {
    const { dp, cm } = answeredCall();
    const stored = unpack(pack(cm.calls.get('call-1'))) as CallState;
    const dp2 = new FakeDataPlane();
    const cm2 = new CallManager(config(), dp2, logger);
    cm2.restore(stored, (_s, rule) => rule);
    expect([...dp2.streams.keys()].sort()).toEqual([...dp.streams.keys()].sort());
    for (const [id, s] of dp.streams) {
      const r = dp2.streams.get(id);
      expect(r?.spec).toEqual(s.spec);
      expect({ ...r?.rule, signalGeneration: 0 }).toEqual({ ...s.rule, signalGeneration: 0 });
    }
    // The ports are reserved: a new call gets others, and stream ids do not collide.
    cm2.offer(req({ callId: 'call-2', sdp: sdp({ port: 40010 }) }));
    const ports = [...dp2.streams.values()].map((s) => s.spec.localPort);
    expect(new Set(ports).size).toBe(ports.length);
  });

  it('a port held by another process fails that call with RestoreBindError and leaves nothing bound', () => {
    const { cm } = answeredCall();
    const stored = unpack(pack(cm.calls.get('call-1'))) as CallState;
    const dp2 = new FakeDataPlane();
    const last = stored.monologues[1]?.medias[0]?.rtcp as StreamState;
    dp2.foreign.add(`${last.localAddress}:${last.localPort}`);
    const cm2 = new CallManager(config(), dp2, logger);
    expect(() => cm2.restore(stored, (_s, rule) => rule)).toThrow(RestoreBindError);
    expect(dp2.streams.size).toBe(0);
    expect(cm2.calls.size).toBe(0);
    expect(cm2.sockets.allocator('127.0.0.1').counts().used).toBe(0);
  });

  it('media timeouts of a restored call count from the media seen before the restart', () => {
    const cfg = config({ timeout: 60 });
    const call = {
      ...(unpack(pack(answeredCall().cm.calls.get('call-1'))) as CallState),
      lastSignalMs: 0,
      createdMs: 0,
      answeredMs: 0,
    };
    expect(expiredReason(call, cfg, 0, 100_000)).toBe('timeout');
    expect(expiredReason({ ...call, mediaBeforeRestoreMs: 50_000 }, cfg, 0, 100_000)).toBeNull();
    expect(expiredReason({ ...call, mediaBeforeRestoreMs: 50_000 }, cfg, 0, 110_000)).toBe('timeout');
  });
});
