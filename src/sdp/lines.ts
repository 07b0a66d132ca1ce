/**
 * Splitting an SDP body into lines without losing a byte.
 *
 * The body is handled as latin1 text, where every byte is exactly one char: a line's bytes are exactly
 * `${type}=${value}` written back as latin1 (the rewrite copies lines that way), so no Buffer per line.
 */
import { NgError } from '../errors';
import type { SdpLine } from './types';
import { splitAttribute } from './attributes';

const SDP_PARSE_ERROR = 'Failed to parse SDP';

/**
 * Where and why each SDP parse error happened ("line 5: c= needs 3 fields ..."), for the log. The error
 * itself is a plain NgError('Failed to parse SDP'), the ng reply, equal to any other; the detail rides
 * beside it here rather than as a property.
 */
const parseDetails = new WeakMap<NgError, string>();

/** NgError('Failed to parse SDP') remembering which line (1-based; null = the body as a whole) and why. */
export function sdpParseError(lineNo: number | null, what: string, content?: string): NgError {
  const err = new NgError(SDP_PARSE_ERROR);
  const shown = content === undefined ? '' : `: ${JSON.stringify(content.length > 80 ? `${content.slice(0, 80)}...` : content)}`;
  parseDetails.set(err, `${lineNo !== null ? `line ${lineNo}: ` : ''}${what}${shown}`);
  return err;
}

/** The detail of an error made by sdpParseError; null for any other error. */
export function sdpParseDetail(err: unknown): string | null {
  return err instanceof NgError ? (parseDetails.get(err) ?? null) : null;
}

export interface SplitSdp {
  eol: '\r\n' | '\n';
  lines: SdpLine[];
}

/** `<letter>=` at `i`: one ASCII letter, then '='. */
function lineStartAt(text: string, i: number): boolean {
  const c = text.charCodeAt(i) | 0x20; // lower case
  return c >= 0x61 && c <= 0x7a && text.charCodeAt(i + 1) === 0x3d;
}

/**
 * Split into lines. CRLF or LF (the first line ending decides what the output uses); a missing final line
 * ending is fine. Empty lines are dropped (rtpengine 10.5 drops them too); any other line that is not
 * `<letter>=...` makes the body unparseable.
 */
export function splitSdpLines(buf: Buffer): SplitSdp {
  const text = buf.toString('latin1');
  const firstLf = text.indexOf('\n');
  const eol: '\r\n' | '\n' = firstLf > 0 && text.charCodeAt(firstLf - 1) === 0x0d ? '\r\n' : '\n';
  const lines: SdpLine[] = [];
  let start = 0;
  let lineNo = 0;
  while (start < text.length) {
    lineNo++;
    let lf = text.indexOf('\n', start);
    if (lf < 0) lf = text.length;
    // A CR directly before the LF belongs to the line ending, whatever the first line used.
    const end = lf > start && text.charCodeAt(lf - 1) === 0x0d ? lf - 1 : lf;
    if (end > start) {
      if (end - start < 2 || !lineStartAt(text, start)) throw sdpParseError(lineNo, "not a '<letter>=' line", text.slice(start, end));
      const type = text.charAt(start);
      const value = text.slice(start + 2, end);
      // Every reader of a line asks for its attribute (parse, bundle, WebRTC, rewrite): split it once.
      lines.push({ type, value, lineNo, attr: splitAttribute(type, value) });
    }
    start = lf + 1;
  }
  return { eol, lines };
}

