/**
 * rtpmap handling as rtpengine 10.5 does it: it writes an a=rtpmap for every payload type of an RTP m= line,
 * static ones included, from its own table (below, as 10.5 prints it) or from the offer's rtpmap.
 */

/**
 * Static payload types (RFC 3551) as rtpengine 10.5.3.5 prints them. Note 10 and 11 are swapped relative to
 * RFC 3551 (10.5 prints 10 as mono and 11 as stereo); kept so the output matches it byte for byte.
 */
const STATIC_PAYLOAD_TYPES: ReadonlyMap<string, string> = new Map([
  ['0', 'PCMU/8000'],
  ['3', 'GSM/8000'],
  ['4', 'G723/8000'],
  ['5', 'DVI4/8000'],
  ['6', 'DVI4/16000'],
  ['7', 'LPC/8000'],
  ['8', 'PCMA/8000'],
  ['9', 'G722/8000'],
  ['10', 'L16/44100'],
  ['11', 'L16/44100/2'],
  ['12', 'QCELP/8000'],
  ['13', 'CN/8000'],
  ['14', 'MPA/90000'],
  ['15', 'G728/8000'],
  ['16', 'DVI4/11025'],
  ['17', 'DVI4/22050'],
  ['18', 'G729/8000'],
  ['25', 'CelB/90000'],
  ['26', 'JPEG/90000'],
  ['28', 'nv/90000'],
  ['31', 'H261/90000'],
  ['32', 'MPV/90000'],
  ['33', 'MP2T/90000'],
  ['34', 'H263/90000'],
]);

/** What 10.5 writes for a payload type it has no name for (no rtpmap, not in its static table). */
const UNKNOWN_ENCODING = '/0';

/**
 * `a=rtpmap:` value → [payload type, "enc/clock[/channels]"] in 10.5's canonical form (channels 1 dropped),
 * or null when the value is not a well-formed rtpmap (then the line is just an unknown attribute).
 */
export function parseRtpmap(value: string): [string, string] | null {
  const m = /^([0-9]{1,3})[ \t]+([^/ \t]+)\/([0-9]+)(?:\/([0-9]+))?[ \t]*$/.exec(value);
  if (m === null) return null;
  const [, pt, encoding, clock, channels] = m as unknown as [string, string, string, string, string | undefined];
  const base = `${encoding}/${Number(clock)}`;
  return [pt, channels === undefined || Number(channels) === 1 ? base : `${base}/${Number(channels)}`];
}

/** The text after `a=rtpmap:<pt> ` that 10.5 writes for a payload type of the m= line. */
export function rtpmapEncoding(pt: string, rtpmaps: ReadonlyMap<string, string>): string {
  return rtpmaps.get(pt) ?? STATIC_PAYLOAD_TYPES.get(pt) ?? UNKNOWN_ENCODING;
}
