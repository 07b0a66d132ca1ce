/**
 * The text of a recording's metadata file: blocks separated by blank lines, as rtpengine's pcap recording
 * writes them. Pure, so the format is tested without files.
 */
import type { CallState, CallRecordingState } from '../call/state';

function time(ms: number): string {
  return `${new Date(ms).toISOString()} (${(ms / 1000).toFixed(3)})`;
}

/** `endMs` null: the recording is still running (the spool copy). */
export function metadataText(call: CallState, rec: CallRecordingState, endMs: number | null): string {
  const blocks: string[] = [];
  blocks.push([`CALL-ID: ${call.callId}`, `PCAP: ${rec.pcapPath}`].join('\n'));
  const tags = call.monologues
    .filter((m) => m.tag !== '')
    .map((m) => (m.label !== null ? `TAG: ${m.tag}\nLABEL: ${m.label}` : `TAG: ${m.tag}`));
  if (tags.length > 0) blocks.push(tags.join('\n'));
  for (const s of rec.sdps) {
    // The SDP keeps its own line ends; the block ends where the next blank line starts.
    blocks.push(
      [`SDP mode: ${s.mode}`, `SDP from-tag: ${s.fromTag}`, `SDP time: ${time(s.atMs)}`, `SDP before RTP packet: ${s.packetsBefore}`, '', s.sdp.replace(/\s+$/, '')].join(
        '\n',
      ),
    );
  }
  const times = [`START TIME: ${time(rec.startedMs)}`];
  if (endMs !== null) times.push(`END TIME: ${time(endMs)}`);
  blocks.push(times.join('\n'));
  if (rec.metadata.length > 0) blocks.push(rec.metadata.map((m) => `METADATA: ${m}`).join('\n'));
  return `${blocks.join('\n\n')}\n`;
}
