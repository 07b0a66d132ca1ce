/**
 * Comparing a candidate relay's replies with rtpengine's: SDPs as ordered lines after normalising what is
 * legitimately different between two runs (allocated ports, session ids), reply dicts by shape (keys and
 * value types, recursively) plus the values that must agree. Every function returns a list of readable
 * differences; an empty list means "the same".
 */
import { BDict, BValue, isDict } from './bencode';

/**
 * Gives allocated ports stable names in order of first appearance (P1, P2, …), so "the re-offer kept its
 * port" and "a=rtcp is the RTP port + 1" survive normalisation while the numbers themselves do not matter.
 * One namer per relay per scenario.
 */
export class PortNamer {
  private readonly names = new Map<number, string>();
  private rtpCount = 0;
  private otherCount = 0;

  /** A port seen on an m= line (or as a stream's local port): a new name if unseen. */
  rtp(port: number): string {
    if (port === 0) return '0';
    const known = this.names.get(port);
    if (known) return known;
    this.rtpCount += 1;
    const name = `<P${this.rtpCount}>`;
    this.names.set(port, name);
    return name;
  }

  /** A port that should relate to a known RTP port (a=rtcp, candidates): named relative to it if it does. */
  related(port: number): string {
    if (port === 0) return '0';
    const known = this.names.get(port);
    if (known) return known;
    const below = this.names.get(port - 1);
    if (below && !below.endsWith('+1>')) {
      const name = `${below.slice(0, -1)}+1>`;
      this.names.set(port, name);
      return name;
    }
    this.otherCount += 1;
    const name = `<R${this.otherCount}>`;
    this.names.set(port, name);
    return name;
  }

  /** A port already named, or a marker saying it was never announced in an SDP. */
  lookup(port: number): string {
    return this.names.get(port) ?? (port === 0 ? '0' : '<port never seen in an SDP>');
  }
}

/** Splits an SDP on CRLF (so an LF-only SDP shows up as one odd line) and normalises ports and the session id. */
export function normalizeSdp(sdp: string, ports: PortNamer): string[] {
  return sdp.split('\r\n').map((line) => normalizeSdpLine(line, ports));
}

function normalizeSdpLine(line: string, ports: PortNamer): string {
  let match = /^o=(\S+) (\S+) (.*)$/.exec(line);
  if (match) return `o=${match[1]} <SESS-ID> ${match[3]}`;
  match = /^m=(\S+) (\d+)(\/\d+)? (.*)$/.exec(line);
  if (match) return `m=${match[1]} ${ports.rtp(Number(match[2]))}${match[3] ?? ''} ${match[4]}`;
  match = /^a=rtcp:(\d+)(.*)$/.exec(line);
  if (match) return `a=rtcp:${ports.related(Number(match[1]))}${match[2]}`;
  match = /^a=candidate:(\S+) (\S+) (\S+) (\S+) (\S+) (\d+) (.*)$/.exec(line);
  if (match) return `a=candidate:${match[1]} ${match[2]} ${match[3]} ${match[4]} ${match[5]} ${ports.related(Number(match[6]))} ${match[7]}`;
  return line;
}

/**
 * A minimal ordered line diff (LCS) for failure messages: "  " same, "- " only in the reference
 * (rtpengine), "+ " only in the candidate. Returns [] when equal.
 */
export function diffLines(reference: string[], candidate: string[]): string[] {
  if (reference.length === candidate.length && reference.every((line, i) => line === candidate[i])) return [];
  const n = reference.length;
  const m = candidate.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i -= 1) {
    for (let j = m - 1; j >= 0; j -= 1) {
      const row = lcs[i] as number[];
      row[j] =
        reference[i] === candidate[j]
          ? ((lcs[i + 1] as number[])[j + 1] as number) + 1
          : Math.max((lcs[i + 1] as number[])[j] as number, row[j + 1] as number);
    }
  }
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && reference[i] === candidate[j]) {
      out.push(`  ${reference[i] as string}`);
      i += 1;
      j += 1;
    } else if (j < m && (i === n || ((lcs[i] as number[])[j + 1] as number) >= ((lcs[i + 1] as number[])[j] as number))) {
      out.push(`+ ${candidate[j] as string}`);
      j += 1;
    } else {
      out.push(`- ${reference[i] as string}`);
      i += 1;
    }
  }
  return out;
}

export type ShapeKind = 'string' | 'integer' | 'list' | 'dict';

export function kindOf(value: BValue): ShapeKind {
  if (Buffer.isBuffer(value)) return 'string';
  if (typeof value === 'number') return 'integer';
  if (Array.isArray(value)) return 'list';
  return 'dict';
}

export interface ShapeOptions {
  /** Key names whose values must be equal, not just of the same type (e.g. result, error-reason). */
  equalValueKeys?: ReadonlySet<string>;
  /** Key names holding allocated ports: compared by their PortNamer names. */
  portKeys?: ReadonlySet<string>;
  /** Key names whose values are not compared at all (e.g. sdp, compared separately as lines). */
  ignoreKeys?: ReadonlySet<string>;
  /** Key names of lists whose length may differ (e.g. `calls`): every element just needs the reference's element shape. */
  anyLengthListKeys?: ReadonlySet<string>;
  referencePorts?: PortNamer;
  candidatePorts?: PortNamer;
  /** Compare only this many levels of nesting (1 = the top-level keys and their types); default: all. */
  maxDepth?: number;
}

function show(value: BValue): string {
  if (Buffer.isBuffer(value)) return JSON.stringify(value.toString('utf8'));
  if (typeof value === 'number') return String(value);
  return kindOf(value);
}

/**
 * Differences between two decoded replies: missing/extra keys, type changes, list length changes, and value
 * changes for the keys named in `options`. Paths look like `tags.ftag-A.medias[0].streams[1].local port`.
 */
export function shapeDiff(reference: BValue, candidate: BValue, options: ShapeOptions = {}, path = '', depth = 0): string[] {
  const here = path === '' ? '(top)' : path;
  const refKind = kindOf(reference);
  const candKind = kindOf(candidate);
  if (refKind !== candKind) {
    return [`${here}: rtpengine has ${refKind} ${show(reference)}, candidate has ${candKind} ${show(candidate)}`];
  }
  const key = lastKey(path);
  if (key !== undefined && options.ignoreKeys?.has(key)) return [];
  if (options.maxDepth !== undefined && depth >= options.maxDepth) return [];
  if (refKind === 'string' || refKind === 'integer') {
    if (key !== undefined && options.portKeys?.has(key) && typeof reference === 'number' && typeof candidate === 'number') {
      const refName = options.referencePorts?.lookup(reference) ?? String(reference);
      const candName = options.candidatePorts?.lookup(candidate) ?? String(candidate);
      return refName === candName ? [] : [`${here}: rtpengine port ${refName} (${reference}), candidate port ${candName} (${candidate})`];
    }
    if (key !== undefined && options.equalValueKeys?.has(key) && show(reference) !== show(candidate)) {
      return [`${here}: rtpengine ${show(reference)}, candidate ${show(candidate)}`];
    }
    return [];
  }
  if (Array.isArray(reference) && Array.isArray(candidate)) {
    if (key !== undefined && options.anyLengthListKeys?.has(key)) {
      const model = reference[0];
      if (model === undefined) return [];
      return candidate.flatMap((item, i) => shapeDiff(model, item, options, `${path}[${i}]`, depth + 1));
    }
    const problems: string[] = [];
    if (reference.length !== candidate.length) {
      problems.push(
        `${here}: rtpengine list has ${reference.length} elements ${listPreview(reference)}, candidate ${candidate.length} ${listPreview(candidate)}`,
      );
    }
    const common = Math.min(reference.length, candidate.length);
    for (let i = 0; i < common; i += 1) {
      problems.push(...shapeDiff(reference[i] as BValue, candidate[i] as BValue, options, `${path}[${i}]`, depth + 1));
    }
    return problems;
  }
  if (isDict(reference) && isDict(candidate)) return dictDiff(reference, candidate, options, path, depth);
  return [];
}

function dictDiff(reference: BDict, candidate: BDict, options: ShapeOptions, path: string, depth: number): string[] {
  const problems: string[] = [];
  const join = (key: string): string => (path === '' ? key : `${path}.${key}`);
  for (const key of Object.keys(reference)) {
    if (!(key in candidate)) problems.push(`${join(key)}: missing in candidate (rtpengine has ${kindOf(reference[key] as BValue)} ${show(reference[key] as BValue)})`);
  }
  for (const key of Object.keys(candidate)) {
    if (!(key in reference)) problems.push(`${join(key)}: extra in candidate (${kindOf(candidate[key] as BValue)} ${show(candidate[key] as BValue)})`);
  }
  for (const key of Object.keys(reference)) {
    if (key in candidate) problems.push(...shapeDiff(reference[key] as BValue, candidate[key] as BValue, options, join(key), depth + 1));
  }
  return problems;
}

function lastKey(path: string): string | undefined {
  if (path === '' || path.endsWith(']')) return undefined;
  const dot = path.lastIndexOf('.');
  return dot < 0 ? path : path.slice(dot + 1);
}

function listPreview(list: BValue[]): string {
  const items = list.slice(0, 8).map(show);
  return `[${items.join(', ')}${list.length > 8 ? ', …' : ''}]`;
}
