/**
 * The embedding API (README "Embedding"): a Node program starts a Relay, carries a call with media through
 * it, closes it and then simply ends, as a program does. Run in a child process, since what is checked is
 * how that process ends: it once died with std::terminate (exit 134) because fences and events still queued
 * on the engine's thread-safe functions were delivered while Node tore the environment down.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freeUdpPort } from '../support/free-ports';

const ROOT = path.resolve(__dirname, '..', '..');
const dir = mkdtempSync(path.join(tmpdir(), 'ngrelay-embed-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The program, as an embedder would write it (plain CommonJS against the package's main entry). */
const PROGRAM = `
const dgram = require('node:dgram');
const { Relay, parseCommandLine, createLogger } = require(${JSON.stringify(ROOT)});
const [ngPort, portMin] = process.argv.slice(2).map(Number);
const bstr = (s) => Buffer.byteLength(s) + ':' + s;
const dict = (o) => 'd' + Object.entries(o).map(([k, v]) => bstr(k) + bstr(v)).join('') + 'e';
const sdp = (port) => 'v=0\\r\\no=- 1 1 IN IP4 127.0.0.1\\r\\ns=-\\r\\nc=IN IP4 127.0.0.1\\r\\nt=0 0\\r\\n' +
  'm=audio ' + port + ' RTP/AVP 0\\r\\na=rtpmap:0 PCMU/8000\\r\\n';
(async () => {
  const config = parseCommandLine(['--config-file=none', '--table=-1', '--interface=127.0.0.1',
    '--listen-ng=127.0.0.1:' + ngPort, '--port-min=' + portMin, '--port-max=' + (portMin + 99), '--delete-delay=0']);
  const relay = await Relay.start(config, { logger: createLogger({ level: 3, stderr: true }) });
  const ng = dgram.createSocket('udp4');
  const media = dgram.createSocket('udp4');
  await new Promise((r) => media.bind(0, '127.0.0.1', r));
  let n = 0;
  const request = (body) => new Promise((resolve, reject) => {
    const cookie = 'e' + n++;
    const timer = setTimeout(() => reject(new Error('no reply to ' + body.command)), 3000);
    ng.on('message', function onReply(msg) {
      if (!msg.toString('latin1').startsWith(cookie + ' ')) return;
      ng.off('message', onReply);
      clearTimeout(timer);
      resolve(msg.toString('latin1'));
    });
    ng.send(cookie + ' ' + dict(body), ngPort, '127.0.0.1');
  });
  const offer = await request({ command: 'offer', 'call-id': 'embed', 'from-tag': 'a', sdp: sdp(media.address().port) });
  const relayPort = Number(/m=audio (\\d+)/.exec(offer)[1]);
  // A packet from the caller: the engine queues a first-packet event for JS.
  const rtp = Buffer.alloc(172); rtp[0] = 0x80;
  media.send(rtp, relayPort, '127.0.0.1');
  await request({ command: 'answer', 'call-id': 'embed', 'from-tag': 'a', 'to-tag': 'b', sdp: sdp(media.address().port + 2) });
  media.send(rtp, relayPort, '127.0.0.1');
  const del = await request({ command: 'delete', 'call-id': 'embed', 'from-tag': 'a' });
  if (!del.includes('6:result2:ok')) throw new Error('delete failed: ' + del);
  ng.close();
  media.close();
  await relay.close();
  process.stdout.write('closed\\n');
  // No process.exit(): the program ends when nothing is left on its event loop.
})().catch((err) => { process.stderr.write(String(err && err.stack || err) + '\\n'); process.exitCode = 1; });
`;

describe('embedding: a program that starts and closes a Relay', () => {
  it('ends normally after a call, with nothing left running', async () => {
    const file = path.join(dir, 'program.js');
    writeFileSync(file, PROGRAM);
    const ngPort = await freeUdpPort();
    const portMin = 42000 + 2 * Math.floor(Math.random() * 4000);
    const run = spawnSync(process.execPath, [file, String(ngPort), String(portMin)], { encoding: 'utf8', timeout: 30_000 });
    expect(run.stderr).not.toMatch(/terminate called|Aborted/);
    expect(run.stdout).toContain('closed');
    expect({ status: run.status, signal: run.signal }).toEqual({ status: 0, signal: null });
  });
});
