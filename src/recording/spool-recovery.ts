/**
 * After a crash (kill -9, power loss) the recordings that were in progress are left in DIR/spool/. At the
 * next start they are finished the way a call end would: the pcap is cut back to its last complete record
 * (a power loss can leave half a record; kill -9 cannot, since every record is one write), the metadata
 * file gets an END TIME line saying the relay stopped, and both move to pcaps/ and metadata/.
 */
import { appendFileSync, closeSync, existsSync, fstatSync, ftruncateSync, openSync, readdirSync, readSync, renameSync } from 'node:fs';
import * as path from 'node:path';
import type { RecordingDirs } from './recording-dir';

const GLOBAL_HEADER = 24;
const RECORD_HEADER = 16;
const MAGIC_LE = 0xa1b2c3d4;

/**
 * Truncate a classic pcap file after its last complete record. Returns the number of complete records,
 * or null when the file is not a pcap this relay writes (it is then left as it is).
 */
export function cutToLastRecord(file: string): number | null {
  const fd = openSync(file, 'r+');
  try {
    const size = fstatSync(fd).size;
    const header = Buffer.alloc(GLOBAL_HEADER);
    if (size < GLOBAL_HEADER || readSync(fd, header, 0, GLOBAL_HEADER, 0) !== GLOBAL_HEADER) return null;
    if (header.readUInt32LE(0) !== MAGIC_LE) return null;
    const snaplen = header.readUInt32LE(16);
    const rec = Buffer.alloc(RECORD_HEADER);
    let offset = GLOBAL_HEADER;
    let records = 0;
    while (offset + RECORD_HEADER <= size) {
      readSync(fd, rec, 0, RECORD_HEADER, offset);
      const caplen = rec.readUInt32LE(8);
      if (caplen > snaplen || offset + RECORD_HEADER + caplen > size) break;
      offset += RECORD_HEADER + caplen;
      records++;
    }
    if (offset < size) ftruncateSync(fd, offset);
    return records;
  } finally {
    closeSync(fd);
  }
}

export interface RecoveredRecording {
  pcap: string | null;
  metadata: string | null;
  records: number | null;
}

/**
 * Finish every recording left in the spool; `nowMs` goes into the metadata's END TIME line. `keep`: spool
 * pcaps of calls that are restored (--state-dir) and continue their recording, left where they are.
 */
export function recoverSpool(dirs: RecordingDirs, nowMs: number, keep: ReadonlySet<string> = new Set()): RecoveredRecording[] {
  const names = new Set<string>();
  for (const file of readdirSync(dirs.spool)) {
    const ext = path.extname(file);
    if (ext === '.pcap' || ext === '.meta') names.add(file.slice(0, -ext.length));
  }
  const recovered: RecoveredRecording[] = [];
  for (const name of names) {
    const spoolPcap = path.join(dirs.spool, `${name}.pcap`);
    const spoolMeta = path.join(dirs.spool, `${name}.meta`);
    if (keep.has(spoolPcap)) continue;
    const out: RecoveredRecording = { pcap: null, metadata: null, records: null };
    if (existsSync(spoolPcap)) {
      out.records = cutToLastRecord(spoolPcap);
      out.pcap = path.join(dirs.pcaps, `${name}.pcap`);
      renameSync(spoolPcap, out.pcap);
    }
    if (existsSync(spoolMeta)) {
      const when = `${new Date(nowMs).toISOString()} (${(nowMs / 1000).toFixed(3)})`;
      appendFileSync(spoolMeta, `\nEND TIME: ${when} (recovered at start-up: ngrelay stopped during the call)\n`);
      out.metadata = path.join(dirs.metadata, `${name}.meta`);
      renameSync(spoolMeta, out.metadata);
    }
    recovered.push(out);
  }
  return recovered;
}
