/**
 * The request sequences the compatibility test sends to rtpengine and to ngrelay. Each scenario is a fixed
 * list of ng requests (the same call-ids and tags on both relays, so tag-keyed dicts line up) plus checks of
 * meaning that must hold on *both* relays (they run on rtpengine too, which proves each check is right).
 */
import { expect } from 'vitest';
import { BInputDict } from '../support/bencode';
import { NgReply, textOf } from '../support/ng-client';
import { RelayUnderTest } from '../support/relay';
import { buildSdp, calleeAudio, callerAudio, CALLEE_ADDRESS, CALLER_ADDRESS, mediaPorts, sdpLines } from '../support/sdp-fixtures';

export interface Step {
  label: string;
  request: BInputDict;
  /**
   * Compare reply dicts only this deep (see ShapeOptions.maxDepth). Used for `statistics`, whose hundreds of
   * counters are rtpengine internals; its groups are what clients read.
   */
  compareDepth?: number;
}

export interface TraceEntry {
  label: string;
  request: BInputDict;
  reply: NgReply;
}

export interface Scenario {
  name: string;
  steps: Step[];
  /** Checks of meaning on one relay's trace; throw (expect) on failure. */
  check: (trace: TraceEntry[], relay: RelayUnderTest) => void;
}

const FROM = 'ftag-A';
const TO = 'ttag-B';

function offer(callId: string, sdp: string, extra: BInputDict = {}): BInputDict {
  return { command: 'offer', 'call-id': callId, 'from-tag': FROM, sdp, ...extra };
}

function answer(callId: string, sdp: string, extra: BInputDict = {}): BInputDict {
  return { command: 'answer', 'call-id': callId, 'from-tag': FROM, 'to-tag': TO, sdp, ...extra };
}

/** The reply of the step with this label. */
export function replyOf(trace: TraceEntry[], label: string): NgReply {
  const entry = trace.find((e) => e.label === label);
  if (!entry) throw new Error(`scenario has no step "${label}"`);
  return entry.reply;
}

function sdpOf(trace: TraceEntry[], label: string): string {
  const reply = replyOf(trace, label);
  expect(textOf(reply.dict, 'result'), `${label}: ${JSON.stringify(reply.plain)}`).toBe('ok');
  const sdp = textOf(reply.dict, 'sdp');
  expect(sdp, `${label}: reply has no sdp`).toBeDefined();
  return sdp as string;
}

/** Every non-rejected m= port is even, inside the relay's range, with its c= on the relay's address. */
function expectRelayed(sdp: string, relay: RelayUnderTest, label: string): void {
  const ports = mediaPorts(sdp).filter((p) => p !== 0);
  expect(ports.length, `${label}: no relayed m= line in\n${sdp}`).toBeGreaterThan(0);
  for (const port of ports) {
    expect(port % 2, `${label}: RTP port ${port} is odd`).toBe(0);
    expect(port, `${label}: port ${port} outside ${relay.portMin}-${relay.portMax}`).toBeGreaterThanOrEqual(relay.portMin);
    expect(port, `${label}: port ${port} outside ${relay.portMin}-${relay.portMax}`).toBeLessThanOrEqual(relay.portMax);
  }
  expect(sdpLines(sdp, 'c=').every((line) => line === 'c=IN IP4 127.0.0.1'), `${label}: c= lines ${sdpLines(sdp, 'c=').join(' | ')}`).toBe(true);
}

function expectResult(trace: TraceEntry[], label: string, result: string, extra: Record<string, string> = {}): void {
  const reply = replyOf(trace, label);
  expect(reply.plain, label).toMatchObject({ result, ...extra });
}

const audioVideo = (address: string, sessionId: number, audioPort: number, videoPort: number): string =>
  buildSdp({
    address,
    sessionId,
    media: [
      { type: 'audio', port: audioPort, direction: 'sendrecv' },
      { type: 'video', port: videoPort, direction: 'sendrecv' },
    ],
  });

export const scenarios: Scenario[] = [
  {
    name: 'plain offer/answer',
    steps: [
      { label: 'offer', request: offer('compat-plain', callerAudio(40000)) },
      { label: 'answer', request: answer('compat-plain', calleeAudio(40002)) },
    ],
    check: (trace, relay) => {
      for (const label of ['offer', 'answer']) {
        const sdp = sdpOf(trace, label);
        expectRelayed(sdp, relay, label);
        const [port] = mediaPorts(sdp);
        expect(sdpLines(sdp, 'a=rtcp:'), label).toEqual([`a=rtcp:${(port as number) + 1}`]);
      }
      // Without replace-origin the o= line is the endpoint's own.
      expect(sdpLines(sdpOf(trace, 'offer'), 'o=')).toEqual([`o=- 1001 1 IN IP4 ${CALLER_ADDRESS}`]);
    },
  },
  {
    name: 'replace-origin and session-connection',
    steps: [
      { label: 'offer', request: offer('compat-replace', callerAudio(40010), { replace: ['origin', 'session-connection'] }) },
      { label: 'answer', request: answer('compat-replace', calleeAudio(40012), { replace: ['origin', 'session-connection'] }) },
    ],
    check: (trace, relay) => {
      for (const label of ['offer', 'answer']) {
        const sdp = sdpOf(trace, label);
        expectRelayed(sdp, relay, label);
        expect(sdpLines(sdp, 'o=')[0], label).toMatch(/ IN IP4 127\.0\.0\.1$/);
      }
    },
  },
  {
    name: 'SIP-source-address with received-from',
    steps: [
      {
        label: 'offer',
        request: offer('compat-sipsource', callerAudio(40020, {}, { address: '10.20.30.40' }), {
          flags: ['SIP-source-address'],
          'received-from': ['IP4', '127.0.0.21'],
          replace: ['origin', 'session-connection'],
        }),
      },
      { label: 'answer', request: answer('compat-sipsource', calleeAudio(40022)) },
      { label: 'query', request: { command: 'query', 'call-id': 'compat-sipsource' } },
    ],
    check: (trace, relay) => {
      expectRelayed(sdpOf(trace, 'offer'), relay, 'offer');
      expectRelayed(sdpOf(trace, 'answer'), relay, 'answer');
      // The caller's media goes to the SIP source address (with the SDP's port), not the private SDP address.
      const query = replyOf(trace, 'query').plain as { tags?: Record<string, { medias?: { streams?: { endpoint?: unknown }[] }[] }> };
      const endpoint = query.tags?.[FROM]?.medias?.[0]?.streams?.[0]?.endpoint;
      expect(endpoint, JSON.stringify(query)).toMatchObject({ address: '127.0.0.21', port: 40020 });
    },
  },
  {
    name: 'ICE=remove strips candidates',
    steps: [
      {
        label: 'offer',
        request: offer(
          'compat-ice',
          callerAudio(40030, {
            attributes: [
              'ice-ufrag:F7gI',
              'ice-pwd:x9cml/YzichV2+XlhiMu8g',
              `candidate:1 1 UDP 2130706431 ${CALLER_ADDRESS} 40030 typ host`,
              `candidate:1 2 UDP 2130706430 ${CALLER_ADDRESS} 40031 typ host`,
            ],
          }),
          { ICE: 'remove' },
        ),
      },
      { label: 'answer', request: answer('compat-ice', calleeAudio(40032), { ICE: 'remove' }) },
    ],
    check: (trace, relay) => {
      const sdp = sdpOf(trace, 'offer');
      expectRelayed(sdp, relay, 'offer');
      expect(sdp, 'ICE lines left in the offer').not.toMatch(/^a=(ice-|candidate)/m);
    },
  },
  {
    name: 'rtcp-mux offer, accepted in the answer',
    steps: [
      { label: 'offer', request: offer('compat-mux', callerAudio(40040), { 'rtcp-mux': ['offer'] }) },
      {
        label: 'answer',
        request: answer('compat-mux', calleeAudio(40042, { attributes: ['rtcp-mux'] }), { 'rtcp-mux': ['accept'] }),
      },
    ],
    check: (trace, relay) => {
      const offered = sdpOf(trace, 'offer');
      expectRelayed(offered, relay, 'offer');
      expect(sdpLines(offered, 'a=rtcp-mux'), 'the offer towards B offers rtcp-mux').toEqual(['a=rtcp-mux']);
      // The caller did not offer mux, so its answer must not carry it.
      const answered = sdpOf(trace, 'answer');
      expectRelayed(answered, relay, 'answer');
      expect(sdpLines(answered, 'a=rtcp-mux'), 'answer to the non-mux caller').toEqual([]);
    },
  },
  {
    name: 'hold: re-offer sendonly, then c=0.0.0.0',
    steps: [
      { label: 'offer', request: offer('compat-hold', callerAudio(40050)) },
      { label: 'answer', request: answer('compat-hold', calleeAudio(40052)) },
      { label: 'hold offer', request: offer('compat-hold', callerAudio(40050, { direction: 'sendonly' }, { version: 2 })) },
      { label: 'hold answer', request: answer('compat-hold', calleeAudio(40052, { direction: 'recvonly' }, { version: 2 })) },
      {
        label: 'zero offer',
        request: offer('compat-hold', callerAudio(40050, {}, { version: 3, connection: '0.0.0.0' })),
      },
      { label: 'zero answer', request: answer('compat-hold', calleeAudio(40052, {}, { version: 3 })) },
    ],
    check: (trace, relay) => {
      expectRelayed(sdpOf(trace, 'hold offer'), relay, 'hold offer');
      expect(sdpLines(sdpOf(trace, 'hold offer'), 'a=sendonly')).toEqual(['a=sendonly']);
      expect(sdpLines(sdpOf(trace, 'hold answer'), 'a=recvonly')).toEqual(['a=recvonly']);
      // Hold keeps the ports of the call.
      expect(mediaPorts(sdpOf(trace, 'hold offer'))).toEqual(mediaPorts(sdpOf(trace, 'offer')));
      expect(mediaPorts(sdpOf(trace, 'zero offer'))).toEqual(mediaPorts(sdpOf(trace, 'offer')));
    },
  },
  {
    name: 'two m= lines (audio + video)',
    steps: [
      { label: 'offer', request: offer('compat-video', audioVideo(CALLER_ADDRESS, 1001, 40060, 40062)) },
      { label: 'answer', request: answer('compat-video', audioVideo(CALLEE_ADDRESS, 2002, 40064, 40066)) },
    ],
    check: (trace, relay) => {
      for (const label of ['offer', 'answer']) {
        const sdp = sdpOf(trace, label);
        expectRelayed(sdp, relay, label);
        const ports = mediaPorts(sdp);
        expect(ports.length, label).toBe(2);
        expect(new Set(ports).size, `${label}: audio and video share a port`).toBe(2);
      }
    },
  },
  {
    name: 'rejected m= (port 0 in the answer)',
    steps: [
      { label: 'offer', request: offer('compat-reject', audioVideo(CALLER_ADDRESS, 1001, 40070, 40072)) },
      { label: 'answer', request: answer('compat-reject', audioVideo(CALLEE_ADDRESS, 2002, 40074, 0)) },
    ],
    check: (trace, relay) => {
      const sdp = sdpOf(trace, 'answer');
      expectRelayed(sdp, relay, 'answer');
      const ports = mediaPorts(sdp);
      expect(ports[0], 'audio stays').not.toBe(0);
      expect(ports[1], 'video stays rejected').toBe(0);
    },
  },
  {
    name: 're-INVITE with the same media keeps the ports',
    steps: [
      { label: 'offer', request: offer('compat-reinvite', callerAudio(40080)) },
      { label: 'answer', request: answer('compat-reinvite', calleeAudio(40082)) },
      { label: 're-offer', request: offer('compat-reinvite', callerAudio(40080, {}, { version: 2 })) },
      { label: 're-answer', request: answer('compat-reinvite', calleeAudio(40082, {}, { version: 2 })) },
    ],
    check: (trace) => {
      expect(mediaPorts(sdpOf(trace, 're-offer'))).toEqual(mediaPorts(sdpOf(trace, 'offer')));
      expect(mediaPorts(sdpOf(trace, 're-answer'))).toEqual(mediaPorts(sdpOf(trace, 'answer')));
    },
  },
  {
    name: 'delete, then query during delete-delay',
    steps: [
      { label: 'offer', request: offer('compat-delete', callerAudio(40090)) },
      { label: 'answer', request: answer('compat-delete', calleeAudio(40092)) },
      { label: 'query before', request: { command: 'query', 'call-id': 'compat-delete' } },
      { label: 'delete', request: { command: 'delete', 'call-id': 'compat-delete', 'from-tag': FROM } },
      { label: 'query after', request: { command: 'query', 'call-id': 'compat-delete' } },
    ],
    check: (trace) => {
      expectResult(trace, 'delete', 'ok');
      expectResult(trace, 'query after', 'ok');
      const after = replyOf(trace, 'query after').plain as { tags?: Record<string, unknown> };
      expect(Object.keys(after.tags ?? {}).sort()).toEqual([FROM, TO]);
    },
  },
  {
    name: 'delete by call-id of an unanswered call, then query',
    steps: [
      { label: 'offer', request: offer('compat-delete-unanswered', callerAudio(40100)) },
      { label: 'delete', request: { command: 'delete', 'call-id': 'compat-delete-unanswered' } },
      { label: 'query after', request: { command: 'query', 'call-id': 'compat-delete-unanswered' } },
    ],
    check: (trace) => {
      expectResult(trace, 'delete', 'ok');
      expectResult(trace, 'query after', 'ok');
    },
  },
  {
    name: 'list',
    steps: [
      { label: 'offer', request: offer('compat-list', callerAudio(40110)) },
      { label: 'list', request: { command: 'list' } },
    ],
    check: (trace) => {
      const list = replyOf(trace, 'list').plain as { result?: string; calls?: string[] };
      expect(list.result).toBe('ok');
      expect(list.calls).toContain('compat-list');
    },
  },
  {
    name: 'statistics',
    steps: [{ label: 'statistics', request: { command: 'statistics' }, compareDepth: 2 }],
    check: (trace) => {
      const stats = replyOf(trace, 'statistics').plain as { result?: string; statistics?: Record<string, unknown> };
      expect(stats.result).toBe('ok');
      expect(Object.keys(stats.statistics ?? {})).toEqual(
        expect.arrayContaining(['currentstatistics', 'totalstatistics', 'intervalstatistics', 'controlstatistics']),
      );
    },
  },
  {
    name: 'ping',
    steps: [{ label: 'ping', request: { command: 'ping' } }],
    check: (trace) => expectResult(trace, 'ping', 'pong'),
  },
  {
    name: 'unknown command',
    steps: [{ label: 'bad', request: { command: 'no-such-command' } }],
    check: (trace) => expectResult(trace, 'bad', 'error', { 'error-reason': 'Unrecognized command' }),
  },
  {
    name: 'answer for an unknown call-id',
    steps: [{ label: 'answer', request: answer('compat-nope', calleeAudio(40120)) }],
    check: (trace) => expectResult(trace, 'answer', 'error', { 'error-reason': 'Unknown call-id' }),
  },
  {
    name: 'delete of an unknown call: warning, and error with fatal',
    steps: [
      { label: 'delete', request: { command: 'delete', 'call-id': 'compat-nope', 'from-tag': FROM } },
      { label: 'delete fatal', request: { command: 'delete', 'call-id': 'compat-nope', 'from-tag': FROM, flags: ['fatal'] } },
    ],
    check: (trace) => {
      expectResult(trace, 'delete', 'ok', { warning: "Call-ID not found or tags didn't match" });
      expectResult(trace, 'delete fatal', 'error', { 'error-reason': "Call-ID not found or tags didn't match" });
    },
  },
];
