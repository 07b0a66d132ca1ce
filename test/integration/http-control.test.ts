/**
 * The control transports besides UDP, on the real bin/ngrelay: ng over TCP, HTTP POST /ng and /ng-plain,
 * WebSocket (ng.rtpengine.com and friends), HTTPS, /ping and Prometheus /metrics compared with rtpengine
 * 10.5's. The same request gets byte-identical reply bytes on every transport, a cookie seen on one is
 * answered from the cache on another, and malformed input on each gets an error, never a crash.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { encode } from '../support/bencode';
import { NgRawClient } from '../support/ng-client';
import { runNgrelay, startNgrelay } from '../support/ngrelay';
import { startRtpengine } from '../support/rtpengine';
import type { RelayUnderTest } from '../support/relay';
import { calleeAudio, callerAudio } from '../support/sdp-fixtures';
import { freeMediaRange, freeTcpPort, freeUdpPort } from '../support/free-ports';

const CT_NG = 'application/x-rtpengine-ng';

/** One TCP connection; `exchange` writes bytes and collects what arrives until `until` says enough. */
class TcpClient {
  private received = Buffer.alloc(0);
  private waiter: (() => void) | null = null;
  closed = false;
  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.received = Buffer.concat([this.received, d]);
      this.waiter?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
  }
  static open(port: number): Promise<TcpClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new TcpClient(s)));
      s.once('error', reject);
    });
  }
  async exchange(bytes: Buffer | string, until: (got: Buffer) => boolean, ms = 3000): Promise<Buffer> {
    this.received = Buffer.alloc(0);
    if (bytes.length > 0) this.socket.write(bytes);
    const deadline = Date.now() + ms;
    while (!until(this.received) && !this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, deadline - Date.now());
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    return this.received;
  }
  close(): void {
    this.socket.destroy();
  }
}

function openWs(port: number, protocol?: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, protocol ? [protocol] : []);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function wsRequest(ws: WebSocket, message: Buffer | string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no websocket reply')), 3000);
    ws.once('message', (data: Buffer) => {
      clearTimeout(t);
      resolve(Buffer.from(data));
    });
    ws.send(message);
  });
}

function wsClosed(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => ws.once('close', (code) => resolve(code)));
}

async function postNg(port: number, url: string, body: Buffer | string, type = CT_NG): Promise<{ status: number; body: Buffer; type: string | null }> {
  const res = await fetch(`http://127.0.0.1:${port}${url}`, { method: 'POST', headers: { 'content-type': type }, body });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()), type: res.headers.get('content-type') };
}

/** The bytes after `<cookie> `. */
function afterCookie(reply: Buffer): Buffer {
  return reply.subarray(reply.indexOf(0x20) + 1);
}

/** metric name -> {type, label names of its samples} from a Prometheus text page. */
function metricShapes(text: string): Map<string, { type: string; labels: string[] }> {
  const out = new Map<string, { type: string; labels: string[] }>();
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)/.exec(line);
    if (t) out.set(t[1]!, { type: t[2]!, labels: out.get(t[1]!)?.labels ?? [] });
    const s = /^([a-z_]+)(\{([^}]*)\})? /.exec(line);
    if (s && out.has(s[1]!)) {
      const labels = [...(s[3] ?? '').matchAll(/([a-z_]+)="/g)].map((m) => m[1]!).sort();
      out.get(s[1]!)!.labels = labels;
    }
  }
  return out;
}

describe('ng over TCP, HTTP and WebSocket; /metrics and /ping', () => {
  let ngrelay: RelayUnderTest;
  let rtpengine: RelayUnderTest;
  let udp: NgRawClient;
  let tcpPort: number;
  let httpPort: number;
  let httpsPort: number;
  let rtpengineHttp: number;
  let tlsDir: string;

  beforeAll(async () => {
    tlsDir = mkdtempSync(path.join(os.tmpdir(), 'ngrelay-h4-tls-'));
    const cert = path.join(tlsDir, 'cert.pem');
    const key = path.join(tlsDir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-days', '1', '-keyout', key, '-out', cert], {
      stdio: 'ignore',
    });
    const [ngPort, tcp, http, httpsP, range, refNg, refHttp, refRange] = await Promise.all([
      freeUdpPort(),
      freeTcpPort(),
      freeTcpPort(),
      freeTcpPort(),
      freeMediaRange(),
      freeUdpPort(),
      freeTcpPort(),
      freeMediaRange(),
    ]);
    [tcpPort, httpPort, httpsPort, rtpengineHttp] = [tcp, http, httpsP, refHttp];
    [ngrelay, rtpengine] = await Promise.all([
      startNgrelay({
        ngPort,
        ...range,
        extraArgs: [
          `--listen-tcp-ng=127.0.0.1:${tcp}`,
          `--listen-http=127.0.0.1:${http}`,
          `--listen-https=127.0.0.1:${httpsP}`,
          `--https-cert=${cert}`,
          `--https-key=${key}`,
        ],
      }),
      startRtpengine({ ngPort: refNg, ...refRange, extraArgs: [`--listen-http=127.0.0.1:${refHttp}`] }),
    ]);
    udp = await NgRawClient.open(ngPort);
  }, 60_000);

  afterAll(async () => {
    udp?.close();
    await ngrelay?.stop();
    await rtpengine?.stop();
    if (tlsDir) rmSync(tlsDir, { recursive: true, force: true });
  });

  it('GET /ping answers pong, over HTTP and HTTPS', async () => {
    const res = await fetch(`http://127.0.0.1:${httpPort}/ping`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('pong\n');
    const body = await new Promise<string>((resolve, reject) => {
      https
        .get({ host: '127.0.0.1', port: httpsPort, path: '/ping', rejectUnauthorized: false }, (r) => {
          let text = '';
          r.on('data', (c: Buffer) => (text += c.toString()));
          r.on('end', () => resolve(text));
        })
        .on('error', reject);
    });
    expect(body).toBe('pong\n');
  });

  it('gives byte-identical replies to the same request over UDP, TCP, HTTP /ng and WebSocket', async () => {
    const bodies: Buffer[] = [
      encode({ command: 'ping' }),
      encode({ command: 'list' }),
      encode({ command: 'offer', 'call-id': 'x', 'from-tag': 'y' }), // no SDP: an error reply
      encode({ command: 'no such command' }),
      Buffer.from('{"command":"ping"}'),
    ];
    const tcp = await TcpClient.open(tcpPort);
    const ws = await openWs(httpPort, 'ng.rtpengine.com');
    try {
      for (const [i, body] of bodies.entries()) {
        const viaUdp = (await udp.request(body)).body;
        const viaHttp = await postNg(httpPort, '/ng', Buffer.concat([Buffer.from(`http-${i} `), body]));
        expect(viaHttp.status).toBe(200);
        expect(viaHttp.type).toBe(CT_NG);
        expect(viaHttp.body.subarray(0, `http-${i} `.length).toString()).toBe(`http-${i} `);
        expect(afterCookie(viaHttp.body)).toEqual(viaUdp);
        expect(afterCookie(await wsRequest(ws, Buffer.concat([Buffer.from(`ws-${i} `), body])))).toEqual(viaUdp);
        if (body[0] === 0x64) {
          // TCP carries bencode only (a JSON value has no length to frame it by).
          const cookie = `tcp-${i} `;
          const expected = Buffer.concat([Buffer.from(cookie), viaUdp]);
          const got = await tcp.exchange(Buffer.concat([Buffer.from(cookie), body]), (b) => b.length >= expected.length);
          expect(got).toEqual(expected);
        }
      }
    } finally {
      tcp.close();
      ws.close();
    }
  });

  it('answers pipelined and split TCP messages in order, each once', async () => {
    const tcp = await TcpClient.open(tcpPort);
    try {
      const ping = encode({ command: 'ping' });
      const two = Buffer.concat([Buffer.from('p1 '), ping, Buffer.from('p2 '), ping]);
      const pong = 'd6:result4:ponge';
      expect((await tcp.exchange(two, (b) => b.length >= 2 * (3 + pong.length))).toString()).toBe(`p1 ${pong}p2 ${pong}`);
      const frame = Buffer.concat([Buffer.from('p3 '), ping]);
      expect((await tcp.exchange(frame.subarray(0, 7), (b) => b.length > 0, 300)).length).toBe(0);
      expect((await tcp.exchange(frame.subarray(7), (b) => b.length >= 3 + pong.length)).toString()).toBe(`p3 ${pong}`);
    } finally {
      tcp.close();
    }
  });

  it('shares one cookie cache between transports: a UDP cookie resent over TCP gets the cached reply, the offer runs once', async () => {
    const cookie = udp.newCookie();
    const offer = encode({ command: 'offer', 'call-id': 'shared-cookie-call', 'from-tag': 'a', sdp: callerAudio(40100) });
    const first = await udp.exchange(cookie, NgRawClient.frame(cookie, offer));
    expect(first.plain['result']).toBe('ok');
    const tcp = await TcpClient.open(tcpPort);
    try {
      const again = await tcp.exchange(NgRawClient.frame(cookie, offer), (b) => b.length >= first.datagram.length);
      expect(again).toEqual(first.datagram);
    } finally {
      tcp.close();
    }
    const list = await udp.request({ command: 'list' });
    expect(list.plain['calls']).toEqual(['shared-cookie-call']);
    await udp.request({ command: 'delete', 'call-id': 'shared-cookie-call', 'delete-delay': 0 });
  });

  it('serves POST /ng-plain (no cookie) as JSON or bencode, in the request\'s content type', async () => {
    const json = await postNg(httpPort, '/ng-plain', '{"command":"ping"}', 'application/json');
    expect(json.status).toBe(200);
    expect(json.type).toBe('application/json');
    expect(json.body.toString()).toBe('{"result":"pong"}');
    const bencoded = await postNg(httpPort, '/ng-plain', encode({ command: 'ping' }));
    expect(bencoded.body.toString()).toBe('d6:result4:ponge');
    const ws = await openWs(httpPort, 'ng-plain.rtpengine.com');
    expect((await wsRequest(ws, '{"command":"ping"}')).toString()).toBe('{"result":"pong"}');
    ws.close();
  });

  it('answers WebSocket cli.rtpengine.com with the CLI text and echoes on echo.rtpengine.com', async () => {
    const cli = await openWs(httpPort, 'cli.rtpengine.com');
    expect((await wsRequest(cli, 'list maxsessions')).toString()).toBe('Maximum sessions configured on rtpengine: -1\n');
    // A UTF-8 call-id: the CLI finds the call by its bytes and prints them back as text.
    const callId = 'café-ws-cli';
    const offer = await udp.request({ command: 'offer', 'call-id': Buffer.from(callId, 'utf8'), 'from-tag': 'a', sdp: callerAudio(40210) });
    expect(offer.plain['result']).toBe('ok');
    expect((await wsRequest(cli, `list sessions ${callId}`)).toString()).toContain(`callid: ${callId}`);
    // The same over GET /cli/<command>, URL-encoded.
    const listed = await fetch(`http://127.0.0.1:${httpPort}/cli/${encodeURIComponent(`list sessions ${callId}`)}`).then((r) => r.text());
    expect(listed).toContain(`callid: ${callId}`);
    expect((await wsRequest(cli, `terminate ${callId}`)).toString()).toContain(callId);
    cli.close();
    const echo = await openWs(httpPort, 'echo.rtpengine.com');
    expect((await wsRequest(echo, 'hello')).toString()).toBe('hello');
    echo.close();
  });

  it('serves /metrics with rtpengine 10.5\'s names, types and labels for what ngrelay has, plus ngrelay_*', async () => {
    const callId = 'metrics-call';
    const offer = await udp.request({ command: 'offer', 'call-id': callId, 'from-tag': 'a', sdp: callerAudio(40200) });
    expect(offer.plain['result']).toBe('ok');
    await udp.request({ command: 'answer', 'call-id': callId, 'from-tag': 'a', 'to-tag': 'b', sdp: calleeAudio(40202) });
    const [mine, theirs] = await Promise.all([
      fetch(`http://127.0.0.1:${httpPort}/metrics`).then(async (r) => ({ type: r.headers.get('content-type'), text: await r.text() })),
      fetch(`http://127.0.0.1:${rtpengineHttp}/metrics`).then((r) => r.text()),
    ]);
    expect(mine.type).toMatch(/^text\/plain/);
    const reference = metricShapes(theirs);
    const candidate = metricShapes(mine.text);
    const ours = [...candidate.keys()].filter((n) => n.startsWith('rtpengine_'));
    // Every rtpengine_* name ngrelay serves is one rtpengine serves, with its type and label names.
    for (const name of ours) expect({ name, ...candidate.get(name) }).toEqual({ name, ...reference.get(name) });
    expect(ours.sort()).toEqual(
      [
        'rtpengine_sessions', 'rtpengine_transcoded_media', 'rtpengine_uptime_seconds', 'rtpengine_sessions_total',
        'rtpengine_closed_sessions_total', 'rtpengine_packets_total', 'rtpengine_packet_errors_total', 'rtpengine_bytes_total',
        'rtpengine_call_duration_avg', 'rtpengine_call_duration_total', 'rtpengine_requests_total',
        'rtpengine_request_seconds_total', 'rtpengine_errors_total', 'rtpengine_ports_used', 'rtpengine_ports_free', 'rtpengine_ports',
        'rtpengine_mos_total', 'rtpengine_mos2_total', 'rtpengine_mos_samples_total', 'rtpengine_mediastreams',
      ].sort(),
    );
    for (const own of ['ngrelay_engine_dropped_packets_total', 'ngrelay_engine_malformed_packets_total', 'ngrelay_engine_threads', 'ngrelay_io_thread_cpu_seconds_total']) {
      expect(candidate.has(own)).toBe(true);
    }
    // One CPU-time counter per engine I/O thread (their rate is the per-thread load).
    expect(mine.text).toMatch(/ngrelay_io_thread_cpu_seconds_total\{thread="ngrelay-io-0"\} \d/);
    // Values are live: this call, its offer, the ports it holds.
    expect(mine.text).toContain('rtpengine_sessions{type="own"} 1\n');
    expect(mine.text).toMatch(/rtpengine_requests_total\{proxy="127\.0\.0\.1",request="offer"\} [1-9]/);
    expect(mine.text).toMatch(/rtpengine_request_seconds_total\{proxy="127\.0\.0\.1",request="offer"\} [0-9.e-]*[1-9]/);
    expect(mine.text).toMatch(/rtpengine_ports_used\{name="default",address="127\.0\.0\.1"\} 4\n/);
    await udp.request({ command: 'delete', 'call-id': callId, 'delete-delay': 0 });
  });

  it('answers malformed HTTP, WebSocket and TCP input with an error and keeps serving', async () => {
    // HTTP: no cookie (rtpengine's status 600), wrong content type, unknown path, body too large, garbage.
    const noCookie = await postNg(httpPort, '/ng', 'nocookie');
    expect([noCookie.status, noCookie.body.toString()]).toEqual([600, 'error\n']);
    expect((await postNg(httpPort, '/ng', 'c d7:command4:pinge', 'text/plain')).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${httpPort}/nothing`)).status).toBe(404);
    expect((await postNg(httpPort, '/ng', Buffer.alloc(2 * 1024 * 1024, 0x61))).status).toBe(413);
    const bad = await postNg(httpPort, '/ng', 'c1 dxx');
    expect(afterCookie(bad.body).toString()).toBe('d6:result5:error12:error-reason35:Could not decode bencode dictionarye');
    const raw = await TcpClient.open(httpPort);
    expect((await raw.exchange('\x00\x01garbage\r\n\r\n', (b) => b.includes('\r\n\r\n'))).toString()).toMatch(/^HTTP\/1\.1 400/);
    raw.close();

    // WebSocket: no subprotocol is refused with a close; a message without cookie gets an error dict.
    const none = await openWs(httpPort);
    expect(await wsClosed(none)).toBe(1002);
    const ws = await openWs(httpPort, 'ng.rtpengine.com');
    expect((await wsRequest(ws, 'nocookie')).toString()).toBe('d6:result5:error12:error-reason24:Invalid data (no cookie)e');
    expect((await wsRequest(ws, 'c2 {"command":')).toString()).toBe('c2 {"result":"error","error-reason":"Failed to parse JSON document"}');
    const closed = wsClosed(ws);
    ws.send(Buffer.alloc(2 * 1024 * 1024, 0x61));
    expect(await closed).toBe(1009);

    // TCP: bytes that can never frame get an error reply, then the connection ends.
    const tcp = await TcpClient.open(tcpPort);
    const got = await tcp.exchange('c3 xyz', () => false);
    expect(got.toString()).toBe('c3 d6:result5:error12:error-reason35:Could not decode bencode dictionarye');
    expect(tcp.closed).toBe(true);

    // Still alive on every transport.
    expect((await udp.request({ command: 'ping' })).plain['result']).toBe('pong');
    expect((await postNg(httpPort, '/ng', 'c4 d7:command4:pinge')).body.toString()).toBe('c4 d6:result4:ponge');
  });
});

describe('--listen-https without its certificate', () => {
  it('stops the start with one line naming the missing options', async () => {
    const [ngPort, httpsPort] = await Promise.all([freeUdpPort(), freeTcpPort()]);
    const result = await runNgrelay(['--config-file=none', `--listen-ng=127.0.0.1:${ngPort}`, `--listen-https=127.0.0.1:${httpsPort}`]);
    expect(result.timedOut, 'ngrelay kept running').toBe(false);
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toContain('--listen-https needs --https-cert and --https-key');
  });
});
