import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import pino from 'pino';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { CallRecorder, fileStem, NO_RECORDING_DIR } from '../../src/recording/call-recorder';
import { metadataText } from '../../src/recording/metadata-file';
import { recordingReply } from '../../src/commands/recording-reply';
import { prepareRecordingDir } from '../../src/recording/recording-dir';
import { cutToLastRecord, recoverSpool } from '../../src/recording/spool-recovery';
import type { CallState } from '../../src/call/state';
import { NgError } from '../../src/errors';
import { FakeDataPlane } from '../support/fake-dataplane';

const logger = pino({ level: 'silent' });

function call(id = 'c/1 x'): CallState {
  return {
    callId: id,
    createdMs: 0,
    lastSignalMs: 0,
    answeredMs: null,
    monologues: [],
    deleteAtMs: null,
    loopToken: 't',
    recordCall: false,
    metadata: null,
    recording: null,
    nextMonologueKey: 1,
    endReason: null,
  };
}

describe('recording file names and metadata', () => {
  it('keeps call-ids to a file-name-safe stem', () => {
    expect(fileStem('abc@host')).toBe('abc@host');
    expect(fileStem('../a/b c')).toBe('__a_b_c');
    expect(fileStem('')).toBe('call');
    expect(fileStem('x'.repeat(500)).length).toBe(120);
  });

  it('lists call-id, pcap, tags, SDPs in order, times and user metadata in blank-line separated blocks', () => {
    const c = call('call-9');
    c.monologues = [{ tag: 'a', label: 'caller' } as CallState['monologues'][number], { tag: 'b', label: null } as CallState['monologues'][number]];
    const text = metadataText(
      c,
      {
        id: 1,
        name: 'n',
        pcapSpoolPath: '/d/spool/n.pcap',
        pcapPath: '/d/pcaps/n.pcap',
        metaSpoolPath: '/d/spool/n.meta',
        metaPath: '/d/metadata/n.meta',
        paused: false,
        startedMs: 1000,
        sdps: [
          { mode: 'offer', fromTag: 'a', packetsBefore: 0, atMs: 1000, sdp: 'v=0\r\n' },
          { mode: 'answer', fromTag: 'b', packetsBefore: 7, atMs: 2000, sdp: 'v=0\r\no=x\r\n' },
        ],
        metadata: ['k=v'],
      },
      3000,
    );
    const blocks = text.trimEnd().split('\n\n');
    expect(blocks[0]).toBe('CALL-ID: call-9\nPCAP: /d/pcaps/n.pcap');
    expect(blocks[1]).toBe('TAG: a\nLABEL: caller\nTAG: b');
    expect(blocks[2]).toMatch(/^SDP mode: offer\nSDP from-tag: a\n.*\nSDP before RTP packet: 0$/);
    expect(blocks[3]).toBe('v=0');
    expect(blocks[4]).toMatch(/^SDP mode: answer\nSDP from-tag: b\n.*\nSDP before RTP packet: 7$/);
    expect(blocks[5]).toBe('v=0\r\no=x');
    expect(blocks[6]).toBe('START TIME: 1970-01-01T00:00:01.000Z (1.000)\nEND TIME: 1970-01-01T00:00:03.000Z (3.000)');
    expect(blocks[7]).toBe('METADATA: k=v');
  });
});

describe('CallRecorder', () => {
  let dir: string;
  let dp: FakeDataPlane;
  let ids: number[];
  let recorder: CallRecorder;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'ngrelay-rec-unit-'));
    prepareRecordingDir(dir);
    dp = new FakeDataPlane();
    ids = [];
    for (const id of [1, 2]) {
      dp.addStream({ id, component: 'rtp', localAddress: '127.0.0.1', localPort: 1000 + id }, {
        expected: null, learning: 'off', strictSource: false, mediaHandover: false, asymmetric: false, sink: null, signalGeneration: 0,
      });
      ids.push(id);
    }
    recorder = new CallRecorder({ recordingDir: dir, recordingFormat: 'eth', recordEgress: true }, dp, () => ids, logger, () => 5000);
  });

  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('starts in the spool, feeds the call streams, pauses and resumes, and moves both files at the end', () => {
    const c = call();
    recorder.start(c);
    const rec = c.recording!;
    expect(rec.pcapSpoolPath.startsWith(path.join(dir, 'spool', 'c_1_x-'))).toBe(true);
    expect(dp.recordings.get(rec.id)).toMatchObject({ spec: { path: rec.pcapSpoolPath, format: 'eth', egress: true }, streams: [1, 2] });
    expect(existsSync(rec.metaSpoolPath)).toBe(true);
    recorder.pause(c);
    expect(dp.recordings.get(rec.id)?.streams).toEqual([]);
    expect(recordingReply(recorder.status(c)!)).toMatchObject({ recorded: 'yes', state: 'paused' });
    recorder.start(c);
    expect(dp.recordings.get(rec.id)?.streams).toEqual([1, 2]);
    recorder.stop(c);
    expect(c.recording).toBeNull();
    expect(dp.recordings.size).toBe(0);
    expect(recorder.status(c)).toBeNull();
    // The fake engine writes no pcap, so only the metadata can be checked on disk.
    expect(readFileSync(rec.metaPath, 'utf8')).toContain('END TIME');
    expect(existsSync(rec.metaSpoolPath)).toBe(false);
  });

  it("files and directories created in another user's recording dir get that user (rtpengine's spool under root)", () => {
    if (process.geteuid?.() !== 0) return; // only root can give files away; as another user there is nothing to do
    const owned = mkdtempSync(path.join(tmpdir(), 'ngrelay-rec-owner-'));
    try {
      const owner = { uid: 4321, gid: 4322 };
      chownSync(owned, owner.uid, owner.gid);
      prepareRecordingDir(owned);
      const ownerOf = (p: string) => ({ uid: statSync(p).uid, gid: statSync(p).gid });
      for (const sub of ['spool', 'pcaps', 'metadata']) expect(ownerOf(path.join(owned, sub))).toEqual(owner);
      const r = new CallRecorder({ recordingDir: owned, recordingFormat: 'raw', recordEgress: false }, dp, () => ids, logger);
      const c = call();
      r.start(c);
      const rec = c.recording!;
      expect(ownerOf(rec.metaSpoolPath)).toEqual(owner);
      r.stop(c);
      expect(ownerOf(rec.metaPath)).toEqual(owner);
      // Our own directory stays as it is: nothing is given away.
      expect(ownerOf(path.join(dir, 'spool')).uid).toBe(0);
    } finally {
      rmSync(owned, { recursive: true, force: true });
    }
  });

  it('record-call=no in a signal stops the recording; without a directory a request to record is refused', () => {
    const c = call();
    c.recordCall = true;
    expect(recorder.afterSignal(c, { mode: 'offer', fromTag: 'a', sdp: Buffer.from('v=0\r\n'), metadata: 'm', recordCall: true })).toBeNull();
    expect(c.recording?.sdps.length).toBe(1);
    expect(c.recording?.metadata).toEqual(['m']);
    recorder.afterSignal(c, { mode: 'answer', fromTag: 'b', sdp: Buffer.from('v=0\r\n'), metadata: null, recordCall: false });
    expect(c.recording).toBeNull();
    const none = new CallRecorder({ recordingDir: null, recordingFormat: 'raw', recordEgress: false }, dp, () => ids, logger);
    expect(() => none.checkRequest(true)).toThrow(new NgError(NO_RECORDING_DIR));
    expect(() => none.checkRequest(null)).not.toThrow();
    expect(() => none.start(call())).toThrow(NgError);
  });
});

describe('spool recovery after a crash', () => {
  function pcap(records: number[], partialTail: number): Buffer {
    const header = Buffer.alloc(24);
    header.writeUInt32LE(0xa1b2c3d4, 0);
    header.writeUInt16LE(2, 4);
    header.writeUInt16LE(4, 6);
    header.writeUInt32LE(65535, 16);
    header.writeUInt32LE(101, 20);
    const parts = [header];
    for (const len of records) {
      const rec = Buffer.alloc(16 + len, 0x55);
      rec.writeUInt32LE(len, 8);
      rec.writeUInt32LE(len, 12);
      parts.push(rec);
    }
    const last = Buffer.alloc(16 + 100, 0x66);
    last.writeUInt32LE(100, 8);
    parts.push(last.subarray(0, partialTail));
    return Buffer.concat(parts);
  }

  it('cuts a half-written last record and moves pcap and metadata to their final places', () => {
    const root = mkdtempSync(path.join(tmpdir(), 'ngrelay-recover-'));
    try {
      const dirs = prepareRecordingDir(root);
      const whole = pcap([40, 60], 0);
      writeFileSync(path.join(dirs.spool, 'c1-abc.pcap'), pcap([40, 60], 30));
      writeFileSync(path.join(dirs.spool, 'c1-abc.meta'), 'CALL-ID: c1\n');
      const out = recoverSpool(dirs, Date.UTC(2026, 0, 1));
      expect(out).toEqual([
        { pcap: path.join(dirs.pcaps, 'c1-abc.pcap'), metadata: path.join(dirs.metadata, 'c1-abc.meta'), records: 2 },
      ]);
      expect(readFileSync(path.join(dirs.pcaps, 'c1-abc.pcap')).equals(whole)).toBe(true);
      expect(readFileSync(path.join(dirs.metadata, 'c1-abc.meta'), 'utf8')).toMatch(/END TIME: 2026-01-01T00:00:00.000Z .*recovered/);
      expect(readdirSync(dirs.spool)).toEqual([]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('leaves a file that is not a classic pcap as it is', () => {
    const root = mkdtempSync(path.join(tmpdir(), 'ngrelay-recover-'));
    try {
      const file = path.join(root, 'x.pcap');
      writeFileSync(file, Buffer.from('not a pcap at all, just text'));
      expect(cutToLastRecord(file)).toBeNull();
      expect(readFileSync(file, 'utf8')).toBe('not a pcap at all, just text');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
