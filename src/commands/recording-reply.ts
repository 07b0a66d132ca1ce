/** The `recording` dict of `query` (ngrelay's own key; only recorded calls get it). */
import type { NgDict } from '../ng/types';
import { ngDict } from '../ng/dict';
import type { RecordingStatus } from '../recording/call-recorder';

export function recordingReply(status: RecordingStatus): NgDict {
  const { recording: rec, counters: c } = status;
  const d = ngDict();
  d['recorded'] = 'yes';
  d['state'] = rec.paused ? 'paused' : 'recording';
  d['pcap'] = rec.pcapPath;
  d['spool file'] = rec.pcapSpoolPath;
  d['metadata file'] = rec.metaPath;
  d['packets written'] = c?.written ?? 0;
  d['packets dropped'] = c?.dropped ?? 0;
  d['packets queued'] = c?.queued ?? 0;
  if (c?.error) d['error'] = c.error;
  return d;
}
