/**
 * A mutational fuzzer for ng messages, run against a real relay over UDP on loopback.
 *
 * Inputs are built from seeds — the rtpengine 10.5 transcripts (real request datagrams), the SDP fixtures
 * and a few generated commands — by structural mutations (dict keys dropped, values swapped for other
 * types, huge or binary strings, SDP lines deleted, duplicated, renumbered) and byte mutations (flips,
 * inserts, cuts, splices of two seeds), in bencode and JSON. Everything is driven by one seeded PRNG, so a
 * run is reproducible from its seed and input count.
 *
 * Each input is framed with its own cookie, so it is a well-formed datagram and must get a reply. The run
 * records:
 *  - silent: no reply after three sends (retransmits reuse the cookie, as Kamailio does);
 *  - internal: a reply whose error-reason is rtpengine's "Internal error" (a bug reached the catch-all);
 *  - crashed: the relay process exited.
 * Call-ids come from a small pool, so offers, answers, deletes and queries meet the same calls; the pool is
 * deleted every few hundred inputs so ports keep coming back.
 */
import dgram from 'node:dgram';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { decodeDict, encode } from '../../src/ng/bencode';
import { encodeJsonDict } from '../../src/ng/json';
import type { NgDict, NgValue } from '../../src/ng/types';

export const TRANSCRIPTS = '/work/shared/reference/rtpengine-10.5-transcripts';
const SDP_FIXTURES = path.resolve(__dirname, '..', 'fixtures', 'sdp');
/** Requests stay well inside a datagram (the relay's reply may be larger; it must then say so). */
const MAX_INPUT = 60_000;

/** mulberry32: small, fast, good enough to drive mutations; the same seed gives the same run. */
export class Prng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

export interface Seeds {
  /** Decoded request dicts (from the transcripts and generated). */
  dicts: NgDict[];
  /** Raw request bodies, for byte-level mutation and splicing. */
  bodies: Buffer[];
  sdps: Buffer[];
}

const COMMANDS = ['offer', 'answer', 'delete', 'query', 'list', 'ping', 'statistics', 'start recording', 'stop recording', 'pause recording'];
const FLAGS = [
  'trust-address', 'SIP-source-address', 'symmetric', 'asymmetric', 'strict-source', 'media-handover', 'loop-protect',
  'record-call', 'fatal', 'fast', 'directional', 'port-latching', 'no-rtcp-attribute', 'full-rtcp-attribute',
  'generate-mid', 'original-sendrecv', 'reuse-codecs', 'recrypt', 'force-increment-sdp-ver', 'codec-strip-PCMA',
];
const INTERESTING_NUMBERS = ['0', '1', '-1', '65535', '65536', '99999', '4294967296', '9007199254740993', '00', '-0', '1e3', ''];
const INTERESTING_STRINGS = ['', ' ', '\0', 'IP4', 'IP6', 'RTP/AVP', 'RTP/SAVP', 'UDP/TLS/RTP/SAVPF', 'remove', 'force', '::1', '0.0.0.0', '[a b c]', '=', '%', '\xff\xfe'];
const SDP_LINE_STARTS = ['m=audio', 'm=video', 'c=IN IP4', 'c=IN IP6', 'a=rtcp:', 'a=rtcp-mux', 'a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:', 'a=rtpmap:', 'a=sendonly', 'a=inactive', 'o=-', 'a=rtpengine:', 'a=ice-ufrag:', 'a=candidate:'];

function bodyOf(datagram: Buffer): Buffer {
  const space = datagram.indexOf(0x20);
  return space > 0 ? datagram.subarray(space + 1) : datagram;
}

/** The transcripts' request datagrams, the SDP fixtures and generated offers/answers. */
export function loadSeeds(): Seeds {
  const dicts: NgDict[] = [];
  const bodies: Buffer[] = [];
  const sdps: Buffer[] = [];
  for (const f of readdirSync(TRANSCRIPTS).filter((n) => n.endsWith('.request.bin')).sort()) {
    const body = bodyOf(readFileSync(path.join(TRANSCRIPTS, f)));
    bodies.push(body);
    try {
      dicts.push(decodeDict(body));
    } catch {
      // a transcript that is not a dict still seeds byte mutations
    }
  }
  for (const f of readdirSync(TRANSCRIPTS).filter((n) => n.endsWith('.sdp')).sort()) sdps.push(readFileSync(path.join(TRANSCRIPTS, f)));
  for (const f of readdirSync(SDP_FIXTURES).filter((n) => n.endsWith('.sdp')).sort()) sdps.push(readFileSync(path.join(SDP_FIXTURES, f)));
  return { dicts, bodies, sdps };
}

function dictOf(entries: Array<[string, NgValue]>): NgDict {
  const d = Object.create(null) as NgDict;
  for (const [k, v] of entries) d[k] = v;
  return d;
}

export class NgFuzzer {
  private readonly rng: Prng;
  /** Call-ids and tags shared between inputs, so commands meet each other's calls. */
  readonly callIds: Buffer[];
  private readonly tags = ['a', 'b', 'c', 'ftag', 'ttag', 't\xff'].map((t) => Buffer.from(t, 'latin1'));

  constructor(
    private readonly seeds: Seeds,
    seed: number,
    poolSize = 24,
  ) {
    this.rng = new Prng(seed);
    this.callIds = Array.from({ length: poolSize }, (_, i) => Buffer.from(i % 5 === 4 ? `fz-${i}-\xff\xfe` : `fz-${i}`, 'latin1'));
  }

  /** One fuzz input: an ng body (bytes after the cookie). */
  next(): Buffer {
    const r = this.rng;
    const roll = r.next();
    let out: Buffer;
    if (roll < 0.45) out = this.encodeDict(this.mutateDict(this.baseDict()));
    else if (roll < 0.6) out = this.encodeDict(this.baseDict());
    else if (roll < 0.9) out = this.mutateBytes(this.encodeDict(this.r0() ? this.baseDict() : this.mutateDict(this.baseDict())));
    else out = this.mutateBytes(r.pick(this.seeds.bodies));
    return out.length > MAX_INPUT ? out.subarray(0, MAX_INPUT) : out;
  }

  private r0(): boolean {
    return this.rng.chance(0.5);
  }

  private encodeDict(d: NgDict): Buffer {
    if (this.rng.chance(0.15)) {
      try {
        return encodeJsonDict(d);
      } catch {
        // not representable in JSON: send it bencoded
      }
    }
    return encode(d);
  }

  /** A sensible command on a pooled call: a transcript's dict with our call-id and tags, or a generated one. */
  private baseDict(): NgDict {
    const r = this.rng;
    const callId = r.pick(this.callIds);
    if (r.chance(0.3) && this.seeds.dicts.length > 0) {
      const d = dictOf(Object.entries(r.pick(this.seeds.dicts)));
      if (d['call-id'] !== undefined) d['call-id'] = callId;
      return d;
    }
    const command = r.chance(0.7) ? r.pick(['offer', 'answer', 'offer', 'delete', 'query']) : r.pick(COMMANDS);
    const entries: Array<[string, NgValue]> = [['command', command], ['call-id', callId], ['from-tag', r.pick(this.tags)]];
    if (command === 'answer' || r.chance(0.1)) entries.push(['to-tag', r.pick(this.tags)]);
    if (command === 'offer' || command === 'answer') entries.push(['sdp', this.sdp()]);
    if (r.chance(0.3)) entries.push(['flags', Array.from({ length: 1 + r.int(3) }, () => r.pick(FLAGS))]);
    if (r.chance(0.15)) entries.push(['replace', [r.pick(['origin', 'session-connection', 'SDP-version', 'zero-address'])]]);
    if (r.chance(0.1)) entries.push(['rtcp-mux', [r.pick(['offer', 'demux', 'accept', 'reject', 'require'])]]);
    if (r.chance(0.1)) entries.push(['transport-protocol', r.pick(['RTP/AVP', 'RTP/SAVP', 'RTP/AVPF', 'RTP/SAVPF'])]);
    if (r.chance(0.1)) entries.push(['via-branch', r.pick(['z1', 'z2', 'z3'])]);
    if (r.chance(0.1)) entries.push(['rtpp-flags', r.pick(['replace-origin ICE=remove', 'SDES-off trust-address', 'RTP AVP', 'from-tag=x direction=[internal external]'])]);
    if (r.chance(0.05)) entries.push(['received-from', ['IP4', '127.0.0.9']]);
    if (r.chance(0.05)) entries.push(['delete-delay', r.int(3)]);
    if (command === 'list' || r.chance(0.02)) entries.push(['limit', r.int(100)]);
    return dictOf(entries);
  }

  private sdp(): Buffer {
    const r = this.rng;
    const base = r.pick(this.seeds.sdps);
    return r.chance(0.6) ? this.mutateSdp(base) : base;
  }

  /** Line-level SDP mutations: the parser's and the rewriter's inputs. */
  private mutateSdp(sdp: Buffer): Buffer {
    const r = this.rng;
    const crlf = r.chance(0.9);
    let lines = sdp.toString('latin1').split(/\r?\n/).filter((l) => l.length > 0);
    const rounds = 1 + r.int(4);
    for (let i = 0; i < rounds && lines.length > 0; i++) {
      const at = r.int(lines.length);
      switch (r.int(8)) {
        case 0:
          lines.splice(at, 1);
          break;
        case 1:
          lines.splice(at, 0, lines[at]!);
          break;
        case 2: {
          const other = r.int(lines.length);
          [lines[at], lines[other]] = [lines[other]!, lines[at]!];
          break;
        }
        case 3:
          lines[at] = lines[at]!.replace(/\d+/, r.pick(INTERESTING_NUMBERS));
          break;
        case 4:
          lines.splice(at, 0, `${r.pick(SDP_LINE_STARTS)}${r.chance(0.5) ? ` ${r.pick(INTERESTING_NUMBERS)}` : ''} ${r.pick(INTERESTING_STRINGS)}`);
          break;
        case 5: {
          // Many media: port exhaustion, big replies.
          const m = lines.findIndex((l) => l.startsWith('m='));
          if (m >= 0) {
            const block = lines.slice(m);
            const copies = 1 + r.int(r.chance(0.1) ? 60 : 4);
            for (let c = 0; c < copies; c++) lines.push(...block);
          }
          break;
        }
        case 6:
          lines[at] = lines[at]!.slice(0, r.int(lines[at]!.length + 1));
          break;
        default:
          lines[at] = `${lines[at]!} ${r.pick(INTERESTING_STRINGS)}`;
      }
    }
    if (lines.length > 400) lines = lines.slice(0, 400);
    return Buffer.from(lines.join(crlf ? '\r\n' : '\n') + (r.chance(0.9) ? (crlf ? '\r\n' : '\n') : ''), 'latin1');
  }

  private randomValue(depth: number): NgValue {
    const r = this.rng;
    switch (r.int(depth > 3 ? 4 : 6)) {
      case 0:
        return r.int(2) === 0 ? r.int(70_000) - 2 : r.pick([0, -1, 65535, 65536, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER]);
      case 1:
        return Buffer.from(r.pick(INTERESTING_STRINGS), 'latin1');
      case 2:
        return r.bytes(r.int(r.chance(0.05) ? 40_000 : 40));
      case 3:
        return Buffer.from(r.pick(INTERESTING_NUMBERS));
      case 4:
        return Array.from({ length: r.int(4) }, () => this.randomValue(depth + 1));
      default: {
        const d = Object.create(null) as NgDict;
        for (let i = r.int(3); i > 0; i--) d[r.pick([...COMMANDS, 'strip', 'offer', 'x'])] = this.randomValue(depth + 1);
        return d;
      }
    }
  }

  /** Structural mutations of a request dict. */
  private mutateDict(d: NgDict): NgDict {
    const r = this.rng;
    const keys = Object.keys(d);
    const rounds = 1 + r.int(3);
    for (let i = 0; i < rounds; i++) {
      switch (r.int(7)) {
        case 0:
          if (keys.length) delete d[r.pick(keys)];
          break;
        case 1:
          if (keys.length) d[r.pick(keys)] = this.randomValue(0);
          break;
        case 2:
          d[r.pick(['call-id', 'from-tag', 'to-tag', 'via-branch', 'label', 'command', 'flags', 'sdp', 'codec', 'direction', 'ICE', 'DTLS', 'SDES', 'TOS', 'limit', 'ptime', 'metadata', 'record-call', 'address-family', 'media-address', 'endpoint-learning', 'received-from', 'rtpp-flags', 'call id', 'delete_delay'])] = this.randomValue(0);
          break;
        case 3:
          d['command'] = r.chance(0.8) ? r.pick(COMMANDS) : r.bytes(1 + r.int(r.chance(0.05) ? 40_000 : 30));
          break;
        case 4:
          d['call-id'] = r.chance(0.7) ? r.pick(this.callIds) : r.bytes(r.int(r.chance(0.05) ? 30_000 : 20));
          break;
        case 5:
          if (d['sdp'] !== undefined) d['sdp'] = this.mutateBytes(this.sdp());
          break;
        default:
          d[r.bytes(1 + r.int(8)).toString('latin1')] = this.randomValue(0);
      }
    }
    return d;
  }

  /** Byte-level mutations: what a broken proxy or an attacker sends. */
  private mutateBytes(input: Buffer): Buffer {
    const r = this.rng;
    let b = Buffer.from(input);
    const rounds = 1 + r.int(4);
    for (let i = 0; i < rounds; i++) {
      const at = b.length ? r.int(b.length) : 0;
      switch (r.int(7)) {
        case 0:
          if (b.length) b[at] = b[at]! ^ (1 << r.int(8));
          break;
        case 1:
          b = Buffer.concat([b.subarray(0, at), r.bytes(1 + r.int(8)), b.subarray(at)]);
          break;
        case 2:
          b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + r.int(16)))]);
          break;
        case 3:
          b = b.subarray(0, at);
          break;
        case 4: {
          const other = r.pick(this.seeds.bodies);
          b = Buffer.concat([b.subarray(0, at), other.subarray(r.int(other.length + 1))]);
          break;
        }
        case 5:
          // A bencode length or integer made interesting.
          b = Buffer.from(b.toString('latin1').replace(/\d+/, () => r.pick(INTERESTING_NUMBERS)), 'latin1');
          break;
        default:
          if (b.length) b[at] = r.pick([0x64, 0x65, 0x69, 0x6c, 0x3a, 0x7b, 0x7d, 0x22, 0x30, 0x00, 0xff]);
      }
    }
    return b;
  }

  /** Deletes of every pooled call: ports come back between bursts. */
  cleanupBodies(): Buffer[] {
    return this.callIds.map((id) => encode(dictOf([['command', 'delete'], ['call-id', id]])));
  }
}

export interface FuzzFinding {
  kind: 'silent' | 'internal';
  /** The input (body after the cookie), for reproduction. */
  body: Buffer;
  reply?: Buffer;
}

export interface FuzzReport {
  inputs: number;
  replies: number;
  /** Replies with result "error", per error-reason (reasons cut to 80 chars). */
  errorReasons: Record<string, number>;
  ok: number;
  silent: number;
  internal: number;
  crashed: boolean;
  findings: FuzzFinding[];
  seconds: number;
}

export interface FuzzRunOptions {
  host: string;
  port: number;
  inputs: number;
  /** Stop early after this long (the CI run is bounded in time). */
  maxSeconds: number;
  seed: number;
  /** Datagrams in flight at once. */
  window?: number;
  /** True once the relay process has exited. */
  relayExited: () => boolean;
  /** Called every `progressEvery` inputs. */
  onProgress?: (r: FuzzReport) => void;
  progressEvery?: number;
}

const RETRANSMIT_MS = 1000;
const SENDS = 3;

function reasonOf(reply: Buffer): { result: string; reason: string } {
  const text = reply.toString('latin1');
  const space = text.indexOf(' ');
  const body = text.slice(space + 1);
  const json = body.startsWith('{');
  const grab = (key: string): string => {
    if (json) {
      const m = new RegExp(`"${key}":"((?:[^"\\\\]|\\\\.)*)"`).exec(body);
      if (!m) return '';
      try {
        return JSON.parse(`"${m[1]!}"`) as string;
      } catch {
        return m[1]!;
      }
    }
    const at = body.indexOf(`${key.length}:${key}`);
    if (at < 0) return '';
    const rest = body.slice(at + key.length + 1 + String(key.length).length);
    const colon = rest.indexOf(':');
    const len = Number(rest.slice(0, colon));
    return rest.slice(colon + 1, colon + 1 + len);
  };
  return { result: grab('result'), reason: grab('error-reason') };
}

/** Sends `inputs` fuzzed datagrams (or fewer, if time runs out) and checks every reply. */
export async function runFuzz(seeds: Seeds, options: FuzzRunOptions): Promise<FuzzReport> {
  const fuzzer = new NgFuzzer(seeds, options.seed);
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  socket.setRecvBufferSize?.(8 << 20);
  const started = performance.now();
  const report: FuzzReport = { inputs: 0, replies: 0, errorReasons: {}, ok: 0, silent: 0, internal: 0, crashed: false, findings: [], seconds: 0 };
  const pending = new Map<string, { resolve: (reply: Buffer | null) => void }>();
  socket.on('message', (msg) => {
    const space = msg.indexOf(0x20);
    const cookie = msg.subarray(0, space > 0 ? space : msg.length).toString('latin1');
    pending.get(cookie)?.resolve(msg);
  });
  const window = options.window ?? 32;
  let sequence = 0;

  const exchange = async (body: Buffer): Promise<Buffer | null> => {
    const cookie = `z${(sequence++).toString(36)}`;
    const datagram = Buffer.concat([Buffer.from(`${cookie} `), body]);
    return new Promise<Buffer | null>((resolve) => {
      let sends = 0;
      let timer: NodeJS.Timeout | undefined;
      const finish = (reply: Buffer | null): void => {
        clearTimeout(timer);
        pending.delete(cookie);
        resolve(reply);
      };
      pending.set(cookie, { resolve: finish });
      const send = (): void => {
        if (sends++ >= SENDS || options.relayExited()) return finish(null);
        socket.send(datagram, options.port, options.host);
        timer = setTimeout(send, RETRANSMIT_MS);
      };
      send();
    });
  };

  const check = (body: Buffer, reply: Buffer | null): void => {
    if (reply === null) {
      if (options.relayExited()) return;
      report.silent++;
      if (report.findings.length < 50) report.findings.push({ kind: 'silent', body });
      return;
    }
    report.replies++;
    const { result, reason } = reasonOf(reply);
    if (result === 'error') {
      const key = reason.slice(0, 80);
      report.errorReasons[key] = (report.errorReasons[key] ?? 0) + 1;
      if (reason.startsWith('Internal error')) {
        report.internal++;
        if (report.findings.length < 50) report.findings.push({ kind: 'internal', body, reply });
      }
    } else report.ok++;
  };

  const deadline = started + options.maxSeconds * 1000;
  const progressEvery = options.progressEvery ?? 100_000;
  const worker = async (): Promise<void> => {
    while (report.inputs < options.inputs && performance.now() < deadline && !options.relayExited()) {
      const n = report.inputs++;
      if (n > 0 && n % 400 === 0) for (const b of fuzzer.cleanupBodies()) check(b, await exchange(b));
      const body = fuzzer.next();
      check(body, await exchange(body));
      if (options.onProgress && (n + 1) % progressEvery === 0) options.onProgress({ ...report, seconds: (performance.now() - started) / 1000 });
    }
  };
  try {
    await Promise.all(Array.from({ length: window }, () => worker()));
  } finally {
    socket.close();
  }
  report.crashed = options.relayExited();
  report.seconds = (performance.now() - started) / 1000;
  return report;
}
