/**
 * The ng `ICE` key's five values as rtpengine 10.5 acts on them (src/call/webrtc-negotiation.ts): who gets the
 * relay's own ICE, when the parties' ICE passes through, and how the relay ranks its candidate then. The
 * priorities are the ones rtpengine 10.5 wrote for the same SDPs (test/compat/webrtc-sdp.test.ts).
 */
import { describe, expect, it } from 'vitest';
import type { IceCandidate } from '../../src/dataplane/types';
import { iceMode, icePassThrough, iceWanted, passThroughCandidateValues, passThroughPreference } from '../../src/call/webrtc-negotiation';

const host = (priority: number, component = 1): IceCandidate => ({
  foundation: 'f',
  component,
  priority,
  type: 'host',
  endpoint: { family: 'IPv4', address: '127.0.0.1', port: 1 },
});

describe('ICE modes', () => {
  it('reads the five values; anything else is default', () => {
    expect(['remove', 'force', 'default', 'optional', 'force-relay', 'bogus', null].map(iceMode)).toEqual([
      'remove', 'force', 'default', 'optional', 'force-relay', 'default', 'default',
    ]);
  });

  it.each([
    // mode, the SDP had ICE, the relay's own ICE, pass-through
    ['remove', true, false, false],
    ['remove', false, false, false],
    ['force', true, true, false],
    ['force', false, true, false],
    ['default', true, true, false],
    ['default', false, false, false],
    ['optional', true, false, true],
    ['optional', false, true, false],
    ['force-relay', true, false, true],
    ['force-relay', false, true, false],
  ] as const)('%s with ICE in the SDP %s: own ICE %s, pass-through %s', (mode, hadIce, own, through) => {
    expect(iceWanted(mode, hadIce)).toBe(own);
    expect(icePassThrough(mode, hadIce)).toBe(through);
  });

  it('ranks the relay just above the lowest RTP candidate of its type, as rtpengine 10.5 does', () => {
    // Chromium's host 2122260223 (local preference 32542): the relay's host candidate gets 32543.
    expect(passThroughPreference('host', [host(2122260223)])).toEqual({ type: 126, local: 32543 });
    // Two host candidates: above the lower one (32286 -> 32287, rtpengine wrote 2122194943); RTCP candidates and other types do not count.
    expect(passThroughPreference('host', [host(2122260223), host(2122194687), host(1, 2)])).toEqual({ type: 126, local: 32287 });
    // No candidate of that type: the type's own preference, local preference 65535.
    expect(passThroughPreference('relay', [host(2122260223)])).toEqual({ type: 0, local: 65535 });
    expect(passThroughPreference('host', [])).toEqual({ type: 126, local: 65535 });
  });

  it('writes host and relay candidates with rtpengine 10.5 priorities (relay: raddr/rport = itself)', () => {
    const candidates = [{ foundation: 'F', component: 1, address: '127.0.0.1', port: 31000 }, { foundation: 'F', component: 2, address: '127.0.0.1', port: 31001 }];
    expect(passThroughCandidateValues(candidates, { type: 'host', preference: { type: 126, local: 32543 } })).toEqual([
      'candidate:F 1 UDP 2122260479 127.0.0.1 31000 typ host',
      'candidate:F 2 UDP 2122260478 127.0.0.1 31001 typ host',
    ]);
    expect(passThroughCandidateValues(candidates.slice(0, 1), { type: 'relay', preference: { type: 0, local: 65535 } })).toEqual([
      'candidate:F 1 UDP 16777215 127.0.0.1 31000 typ relay raddr 127.0.0.1 rport 31000',
    ]);
  });
});
