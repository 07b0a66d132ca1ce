import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NgError } from '../../src/errors';
import type { Logger } from '../../src/logger';
import { decodeDict, encode } from '../../src/ng/bencode';
import { NgServer } from '../../src/ng/server';
import type { NgDict, NgHandler, NgRequestContext, NgValue } from '../../src/ng/types';

const TRANSCRIPTS = '/work/shared/reference/rtpengine-10.5-transcripts';

interface LogLine {
  level: string;
  obj: object;
  msg?: string;
}

function memoryLogger(lines: LogLine[]): Logger {
  const at = (level: string) => (obj: object, msg?: string) => void lines.push({ level, obj, msg });
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

function dict(entries: Array<[string, NgValue]>): NgDict {
  const d = Object.create(null) as NgDict;
  for (const [k, v] of entries) d[k] = v;
  return d;
}

function text(v: NgValue | undefined): string | undefined {
  return Buffer.isBuffer(v) ? v.toString('utf8') : typeof v === 'string' ? v : undefined;
}

/** A UDP client on loopback that sends raw datagrams and collects replies. */
class RawClient {
  readonly socket = dgram.createSocket('udp4');
  private readonly received: Buffer[] = [];
  private waiters: Array<() => void> = [];

  async open(): Promise<void> {
    this.socket.on('message', (m) => {
      this.received.push(m);
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
    });
    await new Promise<void>((resolve) => this.socket.bind(0, '127.0.0.1', resolve));
  }

  send(msg: Buffer | string, port: number): void {
    this.socket.send(typeof msg === 'string' ? Buffer.from(msg, 'latin1') : msg, port, '127.0.0.1');
  }

  /** Waits until `n` replies have arrived in total (bounded: fails after `ms`). */
  async replies(n: number, ms = 3000): Promise<Buffer[]> {
    const deadline = Date.now() + ms;
    while (this.received.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected ${n} replies, got ${this.received.length}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.received.slice(0, n);
  }

  /** Sends one message and returns the next reply. */
  async request(msg: Buffer | string, port: number): Promise<Buffer> {
    const before = this.received.length;
    this.send(msg, port);
    const all = await this.replies(before + 1);
    return all[before]!;
  }

  get count(): number {
    return this.received.length;
  }

  close(): void {
    this.socket.close();
  }
}

function splitReply(reply: Buffer): { cookie: string; body: Buffer } {
  const i = reply.indexOf(0x20);
  return { cookie: reply.subarray(0, i).toString('latin1'), body: reply.subarray(i + 1) };
}

function errorReason(reply: Buffer): string | undefined {
  const d = decodeDict(splitReply(reply).body);
  expect(text(d['result'])).toBe('error');
  return text(d['error-reason']);
}

/** A stand-in for the command layer: ping, echo, slow, failing commands. */
function stubHandler(calls: Array<{ request: NgDict; context: NgRequestContext }>, gate?: { promise: Promise<void> }): NgHandler {
  return async (request, context) => {
    calls.push({ request, context });
    const command = text(request['command']);
    switch (command) {
      case 'ping':
        return dict([['result', 'pong']]);
      case 'echo':
        // Reply with the SDP bytes untouched and without `result` (the server appends it).
        return dict([['sdp', request['sdp'] ?? Buffer.alloc(0)]]);
      case 'slow':
        await gate?.promise;
        return dict([['result', 'ok'], ['n', calls.length]]);
      case 'boom':
        throw new Error('handler bug');
      case 'bad-reply':
        return dict([['x', 1.5]]);
      case 'offer':
        throw new NgError('No SDP body in message');
      default:
        throw new NgError('Unrecognized command');
    }
  };
}

describe('NgServer over UDP on 127.0.0.1', () => {
  let server: NgServer;
  let port: number;
  let client: RawClient;
  let calls: Array<{ request: NgDict; context: NgRequestContext }>;
  let logs: LogLine[];
  let release: () => void;

  beforeEach(async () => {
    calls = [];
    logs = [];
    let r!: () => void;
    const gate = { promise: new Promise<void>((resolve) => (r = resolve)) };
    release = r;
    server = new NgServer({ address: '127.0.0.1', port: 0, handler: stubHandler(calls, gate), logger: memoryLogger(logs) });
    port = (await server.listen()).port;
    client = new RawClient();
    await client.open();
  });

  afterEach(async () => {
    release();
    client.close();
    await server.close();
  });

  it('answers ping with pong, byte-exact like rtpengine 10.5', async () => {
    const request = readFileSync(`${TRANSCRIPTS}/01-ping.request.bin`);
    const expected = readFileSync(`${TRANSCRIPTS}/01-ping.reply.bin`);
    const reply = await client.request(request, port);
    expect(reply.toString('latin1')).toBe(expected.toString('latin1'));
  });

  it('answers an unknown command with rtpengine\'s bytes (result before error-reason)', async () => {
    const request = readFileSync(`${TRANSCRIPTS}/13-bad-command.request.bin`);
    const expected = readFileSync(`${TRANSCRIPTS}/13-bad-command.reply.bin`);
    const reply = await client.request(request, port);
    expect(Buffer.compare(reply, expected)).toBe(0);
  });

  it('passes the decoded dict and context to the handler and keeps the SDP byte-exact', async () => {
    const sdp = Buffer.concat([Buffer.from('v=0\r\ns=\r\n'), Buffer.from([0xff, 0x80, 0x0d, 0x0a])]);
    const body = encode(dict([['sdp', sdp], ['command', 'echo'], ['call-id', 'c1']]));
    const reply = await client.request(Buffer.concat([Buffer.from('ck1 '), body]), port);
    const { cookie, body: replyBody } = splitReply(reply);
    expect(cookie).toBe('ck1');
    // Handler's keys first, then the appended result, like rtpengine's `d3:sdp...6:result2:oke`.
    expect(Buffer.compare(replyBody, Buffer.concat([Buffer.from(`d3:sdp${sdp.length}:`), sdp, Buffer.from('6:result2:oke')]))).toBe(0);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.context.encoding).toBe('bencode');
    expect(calls[0]!.context.remote.address).toBe('127.0.0.1');
    expect(calls[0]!.context.remote.port).toBe(client.socket.address().port);
  });

  it('accepts keys in any order', async () => {
    for (const body of ['d7:call-id1:x7:command4:pinge', 'd1:zi1e7:command4:ping1:ai2ee', 'd7:command4:ping7:call-id1:xe']) {
      const reply = await client.request(`k-${body.length}-${body.charCodeAt(2)} ${body}`, port);
      expect(splitReply(reply).body.toString()).toBe('d6:result4:ponge');
    }
  });

  it('answers a JSON request in JSON with the same cookie', async () => {
    const reply = await client.request('json-1 {"command":"ping"}', port);
    expect(reply.toString()).toBe('json-1 {"result":"pong"}');
    const reply2 = await client.request('json-2 {"command":"nope","call-id":"x"}', port);
    expect(JSON.parse(splitReply(reply2).body.toString())).toEqual({ result: 'error', 'error-reason': 'Unrecognized command' });
    expect(calls.map((c) => c.context.encoding)).toEqual(['json', 'json']);
    expect(Buffer.isBuffer(calls[1]!.request['call-id'])).toBe(true);
  });

  const malformed: Array<[string, string, string]> = [
    ['empty body', 'c ', 'Invalid data (no payload)'],
    ['neither bencode nor JSON', 'c hello', 'Invalid NG data format'],
    ['a bencode list', 'c l7:commande', 'Invalid NG data format'],
    ['truncated bencode', 'c d7:command4:pin', 'Could not decode bencode dictionary'],
    ['bad length', 'c d7:command9:pinge', 'Could not decode bencode dictionary'],
    ['leading zero length', 'c d07:command4:pinge', 'Could not decode bencode dictionary'],
    ['leading zero integer', 'c d7:command4:ping1:xi03ee', 'Could not decode bencode dictionary'],
    ['negative zero', 'c d7:command4:ping1:xi-0ee', 'Could not decode bencode dictionary'],
    ['trailing bytes', 'c d7:command4:pingeXYZ', 'Could not decode bencode dictionary'],
    ['integer key', 'c di1e4:pinge', 'Could not decode bencode dictionary'],
    ['nesting bomb', `c d1:x${'l'.repeat(5000)}`, 'Could not decode bencode dictionary'],
    ['no command', 'c d7:call-id1:xe', 'Dictionary contains no key "command"'],
    ['command not a string', 'c d7:commandi5ee', 'Dictionary contains no key "command"'],
    ['empty dict', 'c de', 'Dictionary contains no key "command"'],
    ['broken JSON', 'c {"command":', 'Failed to parse JSON document'],
    ['JSON with a float', 'c {"command":"ping","x":1.5}', 'Could not decode bencode dictionary'],
    ['JSON without command', 'c {"call-id":"x"}', 'Dictionary contains no key "command"'],
    ['handler throws NgError', 'c d7:command5:offere', 'No SDP body in message'],
    ['handler bug', 'c d7:command4:boome', 'Internal error while processing command'],
    ['handler reply not encodable', 'c d7:command9:bad-replye', 'Internal error while processing command'],
  ];
  for (const [name, msg, reason] of malformed) {
    it(`answers ${name} with an error reply`, async () => {
      const cookie = `m-${name.replace(/ /g, '_')}`;
      const reply = await client.request(msg.replace(/^c /, `${cookie} `), port);
      expect(splitReply(reply).cookie).toBe(cookie);
      const body = splitReply(reply).body;
      const reasonGot = body[0] === 0x7b ? (JSON.parse(body.toString()) as Record<string, string>)['error-reason'] : errorReason(reply);
      expect(reasonGot).toBe(reason);
    });
  }

  it('logs the stack of an unexpected handler exception', async () => {
    await client.request('s1 d7:command4:boome', port);
    const line = logs.find((l) => l.level === 'error');
    expect(line).toBeDefined();
    const err = (line!.obj as { err?: Error }).err;
    expect(err?.stack).toContain('handler bug');
  });

  it('drops a datagram without a cookie, then keeps serving', async () => {
    client.send('d7:command4:pinge', port); // no space at all
    client.send(' d7:command4:pinge', port); // empty cookie
    const reply = await client.request('after d7:command4:pinge', port);
    expect(reply.toString()).toBe('after d6:result4:ponge');
    expect(client.count).toBe(1);
    expect(server.stats().dropped).toBe(2);
    expect(logs.some((l) => l.level === 'warn' && /no cookie/.test(l.msg ?? ''))).toBe(true);
  });

  it('runs a command once for a cookie sent 5 times while the handler is slow; all 5 get identical bytes', async () => {
    const msg = 'dup-1 d7:command4:slowe';
    for (let i = 0; i < 5; i++) client.send(msg, port);
    // Give all 5 datagrams time to reach the server while the handler is still blocked.
    await new Promise((r) => setTimeout(r, 100));
    expect(calls).toHaveLength(1);
    expect(client.count).toBe(0);
    release();
    const replies = await client.replies(5);
    for (const r of replies) expect(Buffer.compare(r, replies[0]!)).toBe(0);
    expect(replies[0]!.toString()).toBe('dup-1 d6:result2:ok1:ni1ee');
    expect(calls).toHaveLength(1);
    // A later retransmit still comes from the cache.
    const late = await client.request(msg, port);
    expect(Buffer.compare(late, replies[0]!)).toBe(0);
    expect(calls).toHaveLength(1);
    expect(server.stats().duplicates).toBe(5);
  });

  it('caches error replies too, and a different cookie runs again', async () => {
    const first = await client.request('e1 d7:command4:nopee', port);
    const again = await client.request('e1 d7:command4:pinge', port); // same cookie, different body: cached reply
    expect(Buffer.compare(first, again)).toBe(0);
    const other = await client.request('e2 d7:command4:pinge', port);
    expect(other.toString()).toBe('e2 d6:result4:ponge');
  });

  it('counts commands, durations and errors per command and per proxy', async () => {
    await client.request('a1 d7:command4:pinge', port);
    await client.request('a2 d7:command4:pinge', port);
    await client.request('a3 d7:command5:offere', port);
    await client.request('a4 d7:command4:boome', port);
    await client.request('a5 garbage', port);
    const s = server.stats();
    expect(s.commands['ping']!.count).toBe(2);
    expect(s.commands['ping']!.errors).toBe(0);
    expect(s.commands['ping']!.durationSeconds).toBeGreaterThanOrEqual(0);
    expect(s.commands['offer']!.errors).toBe(1);
    expect(s.commands['boom']!.errors).toBe(1);
    expect(s.errors).toBe(3);
    expect(s.decodeErrors).toBe(1);
    expect(s.internalErrors).toBe(1);
    expect(s.received).toBe(5);
    expect(s.proxies['127.0.0.1']!.commands['ping']).toBe(2);
    expect(s.proxies['127.0.0.1']!.errors).toBe(3);
  });

  it('never crashes on random garbage and answers every datagram that has a cookie', async () => {
    // Deterministic pseudo-random bodies (xorshift), bounded count.
    let x = 0x2545f491;
    const rnd = (): number => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) / 0x100000000;
    };
    const alphabet = 'dlie0123456789:-{}"[],x ';
    const n = 200;
    const before = client.count;
    for (let i = 0; i < n; i++) {
      const len = Math.floor(rnd() * 40);
      let body = i % 2 === 0 ? 'd' : '';
      for (let j = 0; j < len; j++) body += alphabet[Math.floor(rnd() * alphabet.length)];
      client.send(`fz${i} ${body}`, port);
    }
    const replies = await client.replies(before + n, 5000);
    expect(replies).toHaveLength(before + n);
    const ping = await client.request('fz-end d7:command4:pinge', port);
    expect(ping.toString()).toBe('fz-end d6:result4:ponge');
  });
});

describe('NgServer on IPv6', () => {
  it('listens on ::1 and answers', async () => {
    const server = new NgServer({ address: '::1', port: 0, handler: () => dict([['result', 'pong']]), logger: memoryLogger([]) });
    const { port } = await server.listen();
    const sock = dgram.createSocket('udp6');
    try {
      const reply = await new Promise<Buffer>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no reply')), 3000);
        sock.on('message', (m) => {
          clearTimeout(t);
          resolve(m);
        });
        sock.send(Buffer.from('v6 d7:command4:pinge'), port, '::1');
      });
      expect(reply.toString()).toBe('v6 d6:result4:ponge');
    } finally {
      sock.close();
      await server.close();
    }
  });

  it('rejects a listen address that is not an IP literal', () => {
    expect(() => new NgServer({ address: 'localhost', port: 0, handler: () => dict([]), logger: memoryLogger([]) })).toThrow(TypeError);
  });
});
