/**
 * CallPersistence with the in-memory data plane: what is written when, what a restore makes of it (learned
 * endpoints as destinations, SRTP contexts resumed with the SRTCP margin), and what SIGTERM keeps.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { CallManager } from '../../src/call/call-manager';
import type { SignalRequest } from '../../src/call/signal';
import type { SrtpKeys, StreamSrtpProgress } from '../../src/dataplane/types';
import { CallStore } from '../../src/state/call-store';
import { CallPersistence, SRTCP_INDEX_MARGIN } from '../../src/state/persistence';
import { FakeDataPlane } from '../support/fake-dataplane';
import { signalRequest, testConfig } from '../support/call-fixtures';

const logger = pino({ level: 'silent' });
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** The fake data plane plus SRTP progress a test sets per stream id. */
class SrtpFakeDataPlane extends FakeDataPlane {
  readonly progress = new Map<number, StreamSrtpProgress>();
  readSrtpProgress(ids: readonly number[]): Map<number, StreamSrtpProgress> {
    return new Map(ids.flatMap((id) => (this.progress.has(id) ? [[id, this.progress.get(id) as StreamSrtpProgress] as const] : [])));
  }
}

const config = testConfig({ deleteDelay: 0 });

const KEY = 'a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz';
function sdp(port: number, srtp: boolean): Buffer {
  const proto = srtp ? 'RTP/SAVP' : 'RTP/AVP';
  return Buffer.from(
    ['v=0', 'o=- 1 1 IN IP4 192.0.2.1', 's=-', 'c=IN IP4 192.0.2.1', 't=0 0', `m=audio ${port} ${proto} 0`, ...(srtp ? [KEY] : []), ''].join('\r\n'),
  );
}
function req(over: Partial<SignalRequest>): SignalRequest {
  return signalRequest({ callId: 'c1', sdp: sdp(4000, false), ...over });
}

function setUp(dir = mkdtempSync(path.join(tmpdir(), 'ngrelay-persist-'))) {
  if (!dirs.includes(dir)) dirs.push(dir);
  const dp = new SrtpFakeDataPlane();
  const store = new CallStore(dir, false);
  const cm = new CallManager(config, dp, logger);
  const persistence = new CallPersistence(store, cm, dp, logger);
  return { dir, dp, store, cm, persistence };
}

describe('CallPersistence', () => {
  it('writes a call after a command, keeps it on shutdown, removes it when the call ends', () => {
    const { store, cm, persistence } = setUp();
    persistence.restore();
    cm.offer(req({}));
    persistence.persist('c1');
    expect(existsSync(store.fileOf('c1'))).toBe(true);
    const call = cm.calls.get('c1');
    if (!call) throw new Error('no call');
    persistence.callEnded(call, 'shutdown');
    expect(existsSync(store.fileOf('c1'))).toBe(true);
    persistence.callEnded(call, 'delete');
    expect(existsSync(store.fileOf('c1'))).toBe(false);
    expect(persistence.stats.writes).toBeGreaterThanOrEqual(2);
  });

  it('restores a learned endpoint as the destination and SRTP from the saved progress (SRTCP past the margin)', () => {
    const first = setUp();
    first.persistence.restore();
    first.cm.offer(req({ sdp: sdp(4000, true) }));
    first.cm.answer(req({ toTag: 'B', sdp: sdp(5000, true) }));
    first.persistence.persist('c1');
    const call = first.cm.calls.get('c1');
    const rtpA = call?.monologues[0]?.medias[0]?.rtp;
    if (!rtpA) throw new Error('no stream');
    const learned = { family: 'IPv4' as const, address: '198.51.100.7', port: 6000 };
    first.persistence.onEvents([{ type: 'learned', id: rtpA.id, endpoint: learned, atMs: 1 }]);
    first.dp.progress.set(rtpA.id, {
      inbound: { rtp: { ssrc: 7, roc: 1, seq: 100 } },
      outbound: { rtp: { ssrc: 7, roc: 1, seq: 100 }, rtcp: { ssrc: 7, index: 10 } },
    });
    first.persistence.tick();

    const second = setUp(first.dir);
    second.persistence.restore();
    expect(second.persistence.stats.restoredCalls).toBe(1);
    const rule = second.dp.streams.get(rtpA.id)?.rule;
    expect(rule?.expected).toEqual(learned);
    expect((rule?.crypto?.inbound as SrtpKeys | null | undefined)?.resume).toEqual({ rtp: { ssrc: 7, roc: 1, seq: 100 } });
    expect((rule?.crypto?.outbound as SrtpKeys | null | undefined)?.resume).toEqual({ rtp: { ssrc: 7, roc: 1, seq: 100 }, rtcp: { ssrc: 7, index: 10 + SRTCP_INDEX_MARGIN } });
  });

  it('restores the address ICE nominated as the destination (a party\'s consent checks nominate nothing)', () => {
    const first = setUp();
    first.persistence.restore();
    first.cm.offer(req({}));
    first.cm.answer(req({ toTag: 'B', sdp: sdp(5000, false) }));
    const rtpA = first.cm.calls.get('c1')?.monologues[0]?.medias[0]?.rtp;
    if (!rtpA) throw new Error('no stream');
    first.persistence.persist('c1');
    const nominated = { family: 'IPv4' as const, address: '198.51.100.9', port: 6100 };
    first.persistence.onEvents([{ type: 'ice-selected', id: rtpA.id, endpoint: nominated, atMs: 1 }]);
    first.persistence.tick();

    const second = setUp(first.dir);
    second.persistence.restore();
    expect(second.dp.streams.get(rtpA.id)?.rule.expected).toEqual(nominated);
  });

  it('a learned endpoint is not used once a re-offer moved the party elsewhere', () => {
    const first = setUp();
    first.persistence.restore();
    first.cm.offer(req({}));
    first.cm.answer(req({ toTag: 'B', sdp: sdp(5000, false) }));
    const rtpA = first.cm.calls.get('c1')?.monologues[0]?.medias[0]?.rtp;
    if (!rtpA) throw new Error('no stream');
    first.persistence.onEvents([{ type: 'learned', id: rtpA.id, endpoint: { family: 'IPv4', address: '198.51.100.7', port: 6000 }, atMs: 1 }]);
    first.persistence.tick();
    first.cm.offer(req({ toTag: 'B', sdp: sdp(4100, false) }));
    first.persistence.persist('c1');

    const second = setUp(first.dir);
    second.persistence.restore();
    expect(second.dp.streams.get(rtpA.id)?.rule.expected).toEqual({ family: 'IPv4', address: '192.0.2.1', port: 4100 });
  });
});
