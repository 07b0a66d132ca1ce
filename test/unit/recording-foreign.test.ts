/**
 * CallRecorder's part in foreign calls (src/state/foreign-calls.ts): a recorded call of another relay bound
 * here is recorded under its own name in this relay's recording dir (a new pcap when its spool file is not
 * here), and dropped while foreign, a recording that got no packet here leaves no file behind.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { CallRecorder } from '../../src/recording/call-recorder';
import { prepareRecordingDir } from '../../src/recording/recording-dir';
import type { CallState } from '../../src/call/state';
import { FakeDataPlane } from '../support/fake-dataplane';

const logger = pino({ level: 'silent' });

/** A call as the other relay recorded it: its files under the other relay's dir. */
function foreignRecordedCall(): CallState {
  const name = 'abc-0123456789abcdef';
  return {
    callId: 'abc',
    createdMs: 0,
    lastSignalMs: 0,
    answeredMs: null,
    monologues: [],
    deleteAtMs: null,
    loopToken: 't',
    recordCall: true,
    metadata: null,
    recording: {
      id: 7,
      name,
      pcapSpoolPath: `/other/spool/${name}.pcap`,
      pcapPath: `/other/pcaps/${name}.pcap`,
      metaSpoolPath: `/other/spool/${name}.meta`,
      metaPath: `/other/metadata/${name}.meta`,
      paused: false,
      startedMs: 0,
      sdps: [],
      metadata: [],
    },
    nextMonologueKey: 1,
    endReason: null,
  };
}

describe('CallRecorder and foreign calls', () => {
  let dir: string;
  let dp: FakeDataPlane;
  let recorder: CallRecorder;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'ngrelay-rec-foreign-'));
    prepareRecordingDir(dir);
    dp = new FakeDataPlane();
    recorder = new CallRecorder({ recordingDir: dir, recordingFormat: 'raw', recordEgress: false }, dp, () => [], logger, () => 5000);
  });

  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('continueForeign: recorded here under the same name, in this relay\'s dir (a new pcap: the spool file is elsewhere)', () => {
    const c = foreignRecordedCall();
    recorder.continueForeign(c);
    const rec = c.recording!;
    expect(rec.pcapSpoolPath).toBe(path.join(dir, 'spool', 'abc-0123456789abcdef.pcap'));
    expect(rec.pcapPath).toBe(path.join(dir, 'pcaps', 'abc-0123456789abcdef.pcap'));
    const started = dp.recordings.get(rec.id);
    expect(started?.spec).toMatchObject({ path: rec.pcapSpoolPath, format: 'raw' });
    expect(started?.spec.append).toBeFalsy();
    expect(existsSync(rec.metaSpoolPath)).toBe(true);
  });

  it('dropForeign: a recording started here that got no packet is removed; one with packets is finished', () => {
    const empty = foreignRecordedCall();
    recorder.continueForeign(empty);
    recorder.dropForeign(empty);
    expect(empty.recording).toBeNull();
    expect(readdirSync(path.join(dir, 'spool'))).toEqual([]);
    expect(readdirSync(path.join(dir, 'metadata'))).toEqual([]);

    const used = foreignRecordedCall();
    recorder.continueForeign(used);
    const counters = dp.recordings.get(used.recording!.id)!.counters;
    counters.written = 3;
    recorder.dropForeign(used);
    expect(readdirSync(path.join(dir, 'metadata'))).toEqual(['abc-0123456789abcdef.meta']);
    expect(readdirSync(path.join(dir, 'spool'))).toEqual([]);
  });
});
