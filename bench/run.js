#!/usr/bin/env node
// Packet-path benchmark: ngrelay vs rtpengine 10.5 (userspace) vs minfwd (socket-API floor).
//
// Plain Node, no build step. It builds the C tools (bench/build.sh), installs rtpengine when
// missing, then for each forwarder in turn (never two at once) and each call count: starts the
// forwarder pinned to core 1, sets the calls up over ng like Kamailio would (offer with from-tag,
// answer with to-tag), and steps the offered rate with bench/bin/loadgen pinned to core 0.
// It prints one markdown table plus a targets summary. See bench/README.md.
//
// Safety: loopback only; every loadgen run is bounded in packets and seconds; only the PIDs this
// script started are ever signalled, also on Ctrl-C and on errors.
'use strict';

const { spawn, spawnSync, execFileSync } = require('node:child_process');
const dgram = require('node:dgram');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const BENCH = __dirname;
const BIN = path.join(BENCH, 'bin');
const OUT = path.join(BENCH, 'out');
const LOADGEN = path.join(BIN, 'loadgen');
const MINFWD = path.join(BIN, 'minfwd');

// Cores: relay on RELAY_CORE, generator/sink (and this script) on GEN_CORE.
const GEN_CORE = '0';
const RELAY_CORE = '1';

// Relay addresses. 1000 calls need 4000 relay ports (RTP + RTCP, both sides), so the range holds
// 8000; it stays clear of the ranges the test suites use (30000-30999, 36000-37999, 39000-39099, 44000-44099).
const RELAY_IP = '127.0.0.1';
const PORT_MIN = 50000;
const PORT_MAX = 57999;
// Phones: side A on 127.0.0.11, side B on 127.0.0.12, ports below the ephemeral range.
const IP_A = '127.0.0.11';
const IP_B = '127.0.0.12';
const PHONE_PORT_BASE = 20000;
// Endpoint sockets per side, shared round-robin by the calls (the sink tells streams apart by SSRC).
const PHONES_PER_SIDE = 4;
// minfwd's SO_RCVBUF per socket: ngrelay's default --socket-receive-buffer (4 MB).
const MINFWD_RCVBUF = 4 * 1024 * 1024;

// A step "is loss-free" when it loses at most LOSS_FREE_PCT of the packets AND the relay kept
// up in real time (forwarded >= KEEP_UP x offered). The second condition matters because
// big receive buffers can absorb a short overload step and forward it late without loss.
const LOSS_FREE_PCT = 0.1;
const KEEP_UP = 0.97;
const isLossFree = (r) => r.loss_pct <= LOSS_FREE_PCT && r.forwarded_pps >= KEEP_UP * r.offered_pps;

// ---------------------------------------------------------------- options
function parseArgs(argv) {
  const o = {
    quick: false,
    forwarders: ['ngrelay', 'rtpengine', 'minfwd'],
    calls: [1, 100, 1000],
    stepSeconds: 3,
    rates: null,
    maxSteps: 9,
    report: null,
  };
  for (const a of argv) {
    const [k, v] = a.split('=');
    if (k === '--quick') o.quick = true;
    else if (k === '--forwarders') o.forwarders = v.split(',');
    else if (k === '--calls') o.calls = v.split(',').map(Number);
    else if (k === '--step-seconds') o.stepSeconds = Number(v);
    else if (k === '--rates') o.rates = v.split(',').map(Number);
    else if (k === '--report') o.report = v;
    else if (k === '--help' || k === '-h') {
      console.log(
        'usage: node bench/run.js [--quick] [--forwarders=ngrelay,rtpengine,minfwd,ngrelay-rec] [--calls=1,100,1000]\n' +
          '                         [--step-seconds=3] [--rates=50000,100000,...,0 (0 = generator ceiling)]\n' +
          '       node bench/run.js --report=bench/out/results-<date>.json   (re-print a saved run)',
      );
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  if (o.quick) {
    o.stepSeconds = 1;
    if (!o.rates) o.rates = [50000, 100000, 0];
  }
  for (const f of o.forwarders)
    if (!['ngrelay', 'ngrelay-rec', 'rtpengine', 'minfwd'].includes(f)) throw new Error(`unknown forwarder ${f}`);
  if (!(o.stepSeconds > 0 && o.stepSeconds <= 10)) throw new Error('--step-seconds must be in (0, 10]');
  return o;
}

// ---------------------------------------------------------------- child process bookkeeping
const children = new Set(); // ChildProcess objects this script started and that are still alive

function track(child) {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

function killAllChildren() {
  for (const c of children) {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}
process.on('exit', killAllChildren);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    console.error(`\nbench: ${sig}, stopping the processes it started`);
    killAllChildren();
    process.exit(130);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function stopChild(child, label) {
  if (!children.has(child)) return;
  const gone = new Promise((r) => child.once('exit', r));
  try {
    process.kill(child.pid, 'SIGTERM');
  } catch {
    return;
  }
  const t = await Promise.race([gone.then(() => 'exit'), sleep(3000).then(() => 'timeout')]);
  if (t === 'timeout') {
    console.error(`bench: ${label} (pid ${child.pid}) ignored SIGTERM, sending SIGKILL`);
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    await Promise.race([gone, sleep(2000)]);
  }
}

// ---------------------------------------------------------------- setup helpers
function buildTools() {
  const srcs = ['loadgen.c', 'minfwd.c', 'build.sh'].map((f) => path.join(BENCH, f));
  const bins = [LOADGEN, MINFWD];
  const newestSrc = Math.max(...srcs.map((f) => fs.statSync(f).mtimeMs));
  const stale = bins.some((b) => !fs.existsSync(b) || fs.statSync(b).mtimeMs < newestSrc);
  if (!stale) return;
  console.error('bench: building C tools (bench/build.sh)');
  execFileSync('sh', [path.join(BENCH, 'build.sh')], { stdio: 'inherit' });
}

function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

async function ensureRtpengine() {
  if (which('rtpengine')) return null;
  console.error('bench: rtpengine missing, running apt-get install -y rtpengine-daemon');
  for (let attempt = 1; attempt <= 10; attempt++) {
    const r = spawnSync('apt-get', ['install', '-y', 'rtpengine-daemon'], {
      encoding: 'utf8',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      timeout: 300000,
    });
    if (r.status === 0 && which('rtpengine')) return null;
    const err = `${r.stderr || ''}${r.error ? r.error.message : ''}`;
    if (/lock/i.test(err) && attempt < 10) {
      console.error('bench: dpkg lock busy, retrying in 10 s');
      await sleep(10000);
      continue;
    }
    return `apt-get install rtpengine-daemon failed: ${err.trim().split('\n').slice(-2).join(' ')}`;
  }
  return 'apt-get install rtpengine-daemon: dpkg lock stayed busy';
}

function pinSelf() {
  // The runner mostly sleeps while a step runs, but its wake-ups must not land on the relay's core.
  try {
    execFileSync('taskset', ['-a', '-p', '-c', GEN_CORE, String(process.pid)], { stdio: 'ignore' });
  } catch {
    console.error('bench: could not pin the runner to core', GEN_CORE);
  }
}

// Share of CPU time (all cores) that was busy over `ms`: other work on the machine skews every figure.
async function machineBusyPct(ms) {
  const snap = () => {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = f[3] + (f[4] || 0);
    return { idle, total: f.reduce((a, b) => a + b, 0) };
  };
  const a = snap();
  await sleep(ms);
  const b = snap();
  const total = b.total - a.total;
  return total > 0 ? (100 * (total - (b.idle - a.idle))) / total : 0;
}

function machineInfo() {
  const cpuModel = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) || [])[1] || 'unknown';
  const kernel = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
  return { date: new Date().toISOString(), kernel, cpuModel, cores: os.cpus().length };
}

// ---------------------------------------------------------------- bencode (by hand)
function benc(v) {
  if (typeof v === 'number') return Buffer.from(`i${Math.trunc(v)}e`);
  if (typeof v === 'string' || Buffer.isBuffer(v)) {
    const b = Buffer.isBuffer(v) ? v : Buffer.from(v);
    return Buffer.concat([Buffer.from(`${b.length}:`), b]);
  }
  if (Array.isArray(v)) return Buffer.concat([Buffer.from('l'), ...v.map(benc), Buffer.from('e')]);
  // dict: insertion order, like Kamailio (it does not sort keys either)
  const parts = [Buffer.from('d')];
  for (const [k, x] of Object.entries(v)) parts.push(benc(k), benc(x));
  parts.push(Buffer.from('e'));
  return Buffer.concat(parts);
}

function bdec(buf) {
  let i = 0;
  function item() {
    const c = buf[i];
    if (c === 0x69) {
      const e = buf.indexOf(0x65, i);
      const n = Number(buf.toString('latin1', i + 1, e));
      i = e + 1;
      return n;
    }
    if (c === 0x6c || c === 0x64) {
      i++;
      const isDict = c === 0x64;
      const out = isDict ? {} : [];
      while (buf[i] !== 0x65) {
        if (i >= buf.length) throw new Error('bencode: truncated');
        if (isDict) {
          const k = item();
          out[k] = item();
        } else out.push(item());
      }
      i++;
      return out;
    }
    const colon = buf.indexOf(0x3a, i);
    if (colon < 0) throw new Error('bencode: bad string');
    const len = Number(buf.toString('latin1', i, colon));
    const s = buf.toString('utf8', colon + 1, colon + 1 + len);
    i = colon + 1 + len;
    return s;
  }
  return item();
}

// ---------------------------------------------------------------- ng client
class NgClient {
  constructor(host, port) {
    this.host = host;
    this.port = port;
    this.seq = 0;
    this.pending = new Map();
    this.sock = dgram.createSocket('udp4');
    this.sock.on('message', (msg) => {
      const sp = msg.indexOf(0x20);
      if (sp < 0) return;
      const cookie = msg.toString('latin1', 0, sp);
      const p = this.pending.get(cookie);
      if (!p) return;
      this.pending.delete(cookie);
      clearTimeout(p.timer);
      try {
        p.resolve(bdec(msg.subarray(sp + 1)));
      } catch (e) {
        p.reject(e);
      }
    });
    this.ready = new Promise((r) => this.sock.bind(0, '127.0.0.1', r));
  }
  // Kamailio-like: resend the same cookie on timeout (the relay answers duplicates from its cache).
  async request(dict, { timeoutMs = 1000, tries = 3 } = {}) {
    await this.ready;
    const cookie = `${process.pid}_${++this.seq}`;
    const payload = Buffer.concat([Buffer.from(`${cookie} `), benc(dict)]);
    for (let t = 0; t < tries; t++) {
      const got = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          this.pending.delete(cookie);
          resolve(null);
        }, timeoutMs);
        this.pending.set(cookie, { resolve, reject, timer });
        this.sock.send(payload, this.port, this.host);
      });
      if (got) return got;
    }
    throw new Error(`ng ${dict.command}: no reply from ${this.host}:${this.port}`);
  }
  close() {
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.sock.close();
  }
}

function phoneSdp(ip, port, sessId) {
  return (
    'v=0\r\n' +
    `o=- ${sessId} 1 IN IP4 ${ip}\r\n` +
    's=bench\r\n' +
    `c=IN IP4 ${ip}\r\n` +
    't=0 0\r\n' +
    `m=audio ${port} RTP/AVP 8 101\r\n` +
    'a=rtpmap:8 PCMA/8000\r\n' +
    'a=rtpmap:101 telephone-event/8000\r\n' +
    'a=fmtp:101 0-16\r\n' +
    'a=ptime:20\r\n' +
    'a=sendrecv\r\n'
  );
}

function sdpMedia(sdp) {
  const m = /^m=audio (\d+) /m.exec(sdp);
  const c = /^c=IN IP4 (\S+)/m.exec(sdp);
  if (!m || !c) throw new Error(`reply SDP without m=audio/c= line: ${JSON.stringify(sdp).slice(0, 200)}`);
  return { ip: c[1], port: Number(m[1]) };
}

function phoneOf(side, i, calls) {
  const k = i % Math.min(calls, PHONES_PER_SIDE);
  return { ip: side === 'A' ? IP_A : IP_B, port: PHONE_PORT_BASE + 2 * k };
}

// Set one call up the way Kamailio's rtpengine module does (see the sipp transcripts).
async function setupCall(ng, tagBase, i, calls, record = false) {
  const a = phoneOf('A', i, calls);
  const b = phoneOf('B', i, calls);
  const callId = `${tagBase}-${i}@bench`;
  const common = { supports: ['load limit'] };
  const offer = await ng.request({
    ...common,
    sdp: phoneSdp(a.ip, a.port, 1000 + i),
    ICE: 'remove',
    replace: ['origin', 'session-connection'],
    'call-id': callId,
    'received-from': ['IP4', a.ip],
    'from-tag': `ft${i}`,
    ...(record ? { 'record-call': 'yes' } : {}),
    command: 'offer',
  });
  if (offer.result !== 'ok') throw new Error(`offer: ${offer.result} ${offer['error-reason'] || ''}`);
  const answer = await ng.request({
    ...common,
    sdp: phoneSdp(b.ip, b.port, 2000 + i),
    ICE: 'remove',
    replace: ['origin', 'session-connection'],
    'call-id': callId,
    'received-from': ['IP4', b.ip],
    'from-tag': `ft${i}`,
    'to-tag': `tt${i}`,
    command: 'answer',
  });
  if (answer.result !== 'ok') throw new Error(`answer: ${answer.result} ${answer['error-reason'] || ''}`);
  // The offer reply goes to B: B sends there. The answer reply goes to A: A sends there.
  return { a, b, toRelayFromA: sdpMedia(answer.sdp), toRelayFromB: sdpMedia(offer.sdp) };
}

async function setupCalls(ng, tagBase, calls, record = false) {
  const out = new Array(calls);
  let next = 0;
  const worker = async () => {
    while (next < calls) {
      const i = next++;
      out[i] = await setupCall(ng, tagBase, i, calls, record);
    }
  };
  await Promise.all(Array.from({ length: Math.min(16, calls) }, worker));
  return out;
}

async function waitForPing(ng, child, ms) {
  const deadline = Date.now() + ms;
  let lastErr = 'no reply';
  while (Date.now() < deadline) {
    if (!children.has(child)) return `exited (code ${child.exitCode})`;
    try {
      const r = await ng.request({ command: 'ping' }, { timeoutMs: 300, tries: 1 });
      if (r.result === 'pong') return null;
      lastErr = `ping reply ${JSON.stringify(r)}`;
    } catch (e) {
      lastErr = e.message;
    }
    await sleep(200);
  }
  return `no ng pong within ${ms} ms (${lastErr})`;
}

// ---------------------------------------------------------------- forwarders
// The most telling lines of a forwarder's log: the first error line if any, else the last lines.
function logTail(file) {
  try {
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    const err = lines.find((l) => /error|fatal|cannot|failed/i.test(l));
    return (err ? err.trim() : lines.slice(-3).join(' | ')).slice(0, 300);
  } catch {
    return '';
  }
}

function spawnPinned(core, cmd, args, logFile, opts = {}) {
  const fd = fs.openSync(logFile, 'w');
  const child = spawn('taskset', ['-c', core, cmd, ...args], { stdio: ['ignore', fd, fd], cwd: ROOT, ...opts });
  fs.closeSync(fd);
  return track(child);
}

// NGRELAY_ENTRY: another entry script (default bin/ngrelay, which loads dist/cli.js).
async function startNgrelay(calls, logFile, record) {
  const entry = process.env.NGRELAY_ENTRY || 'bin/ngrelay';
  if (!process.env.NGRELAY_ENTRY && !fs.existsSync(path.join(ROOT, 'dist', 'cli.js')))
    throw new Error('dist/cli.js missing (run `npm run build:ts`)');
  const ngPort = 22404;
  const recDir = record ? fs.mkdtempSync(path.join(OUT, 'rec-')) : null;
  const child = spawnPinned(
    RELAY_CORE,
    process.execPath,
    [
      entry,
      '--config-file=none',
      `--interface=${RELAY_IP}`,
      `--listen-ng=127.0.0.1:${ngPort}`,
      `--port-min=${PORT_MIN}`,
      `--port-max=${PORT_MAX}`,
      '--num-threads=1',
      '--foreground',
      '--log-stderr',
      '--log-level=4',
      ...(recDir ? [`--recording-dir=${recDir}`] : []),
    ],
    logFile,
  );
  let fwd;
  try {
    fwd = await ngSetup(child, ngPort, calls, logFile, record ? 'ngrelay-rec' : 'ngrelay', 8000, { record });
  } catch (e) {
    if (recDir) fs.rmSync(recDir, { recursive: true, force: true });
    throw e;
  }
  if (recDir) {
    fwd.cleanup = () => fs.rmSync(recDir, { recursive: true, force: true });
    fwd.afterRun = () => recordingCounters(ngPort, fwd.callIds[0]);
  }
  return fwd;
}

// Recording counters of one call (ng query), shown next to the ngrelay-rec rows.
async function recordingCounters(ngPort, callId) {
  const ng = new NgClient('127.0.0.1', ngPort);
  try {
    const q = await ng.request({ command: 'query', 'call-id': callId });
    const rec = q.recording || {};
    return `call 0 recording: written ${rec['packets written'] ?? '?'}, dropped ${rec['packets dropped'] ?? '?'}`;
  } catch (e) {
    return `recording query failed: ${e.message}`;
  } finally {
    ng.close();
  }
}

// Each returns { pid, child, calls: [{a,b,toRelayFromA,toRelayFromB}], cleanup?, afterRun? } or throws
// with a reason.
const FORWARDERS = {
  ngrelay: (calls, logFile) => startNgrelay(calls, logFile, false),
  // Opt-in (not in the default run): every call recorded to pcap (the offer carries record-call).
  'ngrelay-rec': (calls, logFile) => startNgrelay(calls, logFile, true),
  async rtpengine(calls, logFile) {
    const ngPort = 22304;
    const child = spawnPinned(
      RELAY_CORE,
      'rtpengine',
      [
        '--config-file=none',
        '--table=-1',
        '--num-threads=1',
        `--interface=${RELAY_IP}`,
        `--listen-ng=127.0.0.1:${ngPort}`,
        `--port-min=${PORT_MIN}`,
        `--port-max=${PORT_MAX}`,
        '--foreground',
        '--log-stderr',
      ],
      logFile,
    );
    return ngSetup(child, ngPort, calls, logFile, 'rtpengine', 8000);
  },
  async minfwd(calls, logFile) {
    // No signalling: minfwd takes free even ports from the range itself and prints them.
    const peers = [];
    for (let i = 0; i < calls; i++) peers.push({ a: phoneOf('A', i, calls), b: phoneOf('B', i, calls) });
    const pairsFile = path.join(OUT, `minfwd-pairs-${calls}.txt`);
    fs.writeFileSync(pairsFile, peers.map((p) => `${p.a.ip} ${p.a.port} ${p.b.ip} ${p.b.port}`).join('\n') + '\n');
    const child = spawnPinned(
      RELAY_CORE,
      MINFWD,
      [
        '--pairs-file',
        pairsFile,
        '--bind',
        RELAY_IP,
        '--port-min',
        String(PORT_MIN),
        '--port-max',
        String(PORT_MAX),
        // Same SO_RCVBUF as ngrelay's default socket-receive-buffer, so "loss-free" compares
        // forwarding speed, not how long a buffer rides out a scheduling hiccup.
        '--rcvbuf',
        String(MINFWD_RCVBUF),
        '--max-seconds',
        '900',
      ],
      logFile,
    );
    const deadline = Date.now() + 5000;
    const readLog = () => fs.readFileSync(logFile, 'utf8');
    while (Date.now() < deadline && !/^ready/m.test(readLog())) {
      if (!children.has(child)) throw new Error(`minfwd exited: ${logTail(logFile)}`);
      await sleep(50);
    }
    if (!/^ready/m.test(readLog())) {
      await stopChild(child, 'minfwd');
      throw new Error('minfwd did not become ready');
    }
    const list = peers.map((p) => ({ ...p }));
    for (const m of readLog().matchAll(/^pair (\d+) (\d+) (\d+)$/gm)) {
      const c = list[Number(m[1])];
      c.toRelayFromA = { ip: RELAY_IP, port: Number(m[2]) };
      c.toRelayFromB = { ip: RELAY_IP, port: Number(m[3]) };
    }
    if (list.some((c) => !c.toRelayFromA)) {
      await stopChild(child, 'minfwd');
      throw new Error('minfwd did not report every pair');
    }
    return { pid: child.pid, child, calls: list };
  },
};

async function ngSetup(child, ngPort, calls, logFile, label, readyMs, { record = false } = {}) {
  const ng = new NgClient('127.0.0.1', ngPort);
  try {
    const err = await waitForPing(ng, child, readyMs);
    if (err) throw new Error(`${err}; log: ${logTail(logFile)}`);
    const tagBase = `${label}-${calls}-${process.pid}`;
    const list = await setupCalls(ng, tagBase, calls, record);
    return { pid: child.pid, child, calls: list, callIds: list.map((_, i) => `${tagBase}-${i}@bench`) };
  } catch (e) {
    await stopChild(child, label);
    throw e;
  } finally {
    ng.close();
  }
}

// ---------------------------------------------------------------- load steps
function writeStreams(file, callList) {
  const lines = [];
  for (const c of callList) {
    lines.push(`${c.a.ip} ${c.a.port} ${c.toRelayFromA.ip} ${c.toRelayFromA.port}`); // A -> relay -> B
    lines.push(`${c.b.ip} ${c.b.port} ${c.toRelayFromB.ip} ${c.toRelayFromB.port}`); // B -> relay -> A
  }
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return lines.length;
}

// rate 0 = as fast as the generator goes. Bounded by packets and seconds.
// gso: send each stream's consecutive packets as one UDP_SEGMENT message (used for the unpaced
// `max` step and the GSO ceiling; paced steps send one message per packet).
function runLoadgen({ streamsFile, rate, seconds, watchPid, perStream = false, gso = false }) {
  const count = rate > 0 ? Math.ceil(rate * seconds) : Math.ceil((gso ? 5e6 : 2e6) * seconds);
  const args = [
    '-c',
    GEN_CORE,
    LOADGEN,
    '--streams-file',
    streamsFile,
    '--rate',
    String(rate),
    '--count',
    String(count),
    '--seconds',
    String(seconds),
    '--drain-ms',
    '250',
  ];
  if (watchPid) args.push('--watch-pid', String(watchPid));
  if (perStream) args.push('--per-stream');
  if (gso) args.push('--gso');
  return new Promise((resolve, reject) => {
    const child = track(spawn('taskset', args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    // Belt and braces: loadgen stops itself after `seconds` + at most 5 s of draining.
    const guard = setTimeout(() => {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, (seconds + 15) * 1000);
    child.on('exit', (code) => {
      clearTimeout(guard);
      if (code !== 0) return reject(new Error(`loadgen exited ${code}: ${err.trim()}`));
      try {
        resolve(JSON.parse(out));
      } catch {
        reject(new Error(`loadgen output not JSON: ${out.slice(0, 200)} ${err}`));
      }
    });
  });
}

async function measureCeiling(seconds) {
  // Generator -> sink directly, same phone sockets, 100 calls' worth of streams.
  const file = path.join(OUT, 'ceiling-streams.txt');
  const calls = 100;
  const list = [];
  for (let i = 0; i < calls; i++) {
    const a = phoneOf('A', i, calls);
    const b = phoneOf('B', i, calls);
    list.push({ a, b, toRelayFromA: b, toRelayFromB: a });
  }
  writeStreams(file, list);
  const plain = await runLoadgen({ streamsFile: file, rate: 0, seconds });
  const gso = await runLoadgen({ streamsFile: file, rate: 0, seconds, gso: true });
  return { plain, gso };
}

function stepRates(opts, ceilingPps) {
  if (opts.rates) return opts.rates;
  const rates = [];
  for (const r of [50000, 100000, 150000, 200000, 250000, 300000, 400000, 500000, 600000, 800000])
    if (r < ceilingPps * 0.9) rates.push(r);
  while (rates.length > opts.maxSteps - 1) rates.pop();
  rates.push(0); // last step: as fast as the generator goes
  return rates;
}

// ---------------------------------------------------------------- one (forwarder, calls) block
async function runBlock(name, calls, rates, opts, rows) {
  const logFile = path.join(OUT, `${name}-${calls}.log`);
  const t0 = Date.now();
  let fwd;
  try {
    fwd = await FORWARDERS[name](calls, logFile);
  } catch (e) {
    return `${name} @ ${calls} calls: not available (${e.message})`;
  }
  try {
    const streamsFile = path.join(OUT, `streams-${name}-${calls}.txt`);
    const nStreams = writeStreams(streamsFile, fwd.calls);
    console.error(`bench: ${name} pid ${fwd.pid}, ${calls} calls set up in ${Date.now() - t0} ms`);
    // Warm-up: lets the relay learn/confirm both endpoints of every stream before measuring.
    const warm = await runLoadgen({
      streamsFile,
      rate: Math.max(2000, nStreams * 10),
      seconds: opts.quick ? 0.5 : 1,
      watchPid: fwd.pid,
    });
    if (warm.received === 0) throw new Error(`nothing forwarded during warm-up (sent ${warm.sent})`);
    let last = null;
    let skipped = null;
    for (const rate of rates) {
      await sleep(300);
      const r = await runLoadgen({ streamsFile, rate, seconds: opts.stepSeconds, watchPid: fwd.pid, gso: rate === 0 });
      if (!children.has(fwd.child)) throw new Error(`${name} died during the ${rate} pps step: ${logTail(logFile)}`);
      last = { name, calls, rate, r, overload: null };
      rows.push(last);
      if (r.received === 0 && r.sent > 0) {
        // Muted (e.g. rtpengine ignoring an overflowed socket): higher steps would show the same.
        skipped = `${name} @ ${calls} calls: forwarded nothing at the ${rate ? fmtInt(rate) : 'max'} pps step; higher steps skipped`;
        break;
      }
      console.error(
        `bench: ${name} calls=${calls} offered=${Math.round(r.offered_pps)} fwd=${Math.round(r.forwarded_pps)} ` +
          `loss=${r.loss_pct.toFixed(3)}% cpu=${r.relay_cpu_s}s p50=${r.lat_p50_us}us`,
      );
    }
    // After the highest step: does every stream still forward at a low rate?
    await sleep(500);
    const check = await runLoadgen({
      streamsFile,
      rate: Math.max(5000, nStreams * 10),
      seconds: opts.quick ? 1 : 2,
      watchPid: fwd.pid,
      perStream: true,
    });
    const ok = check.silent_streams === 0 && check.loss_pct < 1;
    if (last && fwd.afterRun) last.extra = await fwd.afterRun();
    if (last)
      last.overload = ok
        ? 'yes'
        : `no (${check.silent_streams}/${check.streams} silent, loss ${check.loss_pct.toFixed(1)}%)`;
    return skipped;
  } catch (e) {
    return `${name} @ ${calls} calls: failed (${e.message})`;
  } finally {
    await stopChild(fwd.child, name);
    if (fwd.cleanup) fwd.cleanup();
  }
}

// ---------------------------------------------------------------- report
const fmtInt = (n) => (n >= 1000 ? `${(n / 1000).toFixed(n >= 100000 ? 0 : 1)}k` : String(Math.round(n)));

function rowCells(x) {
  const r = x.r;
  const cpuPct = r.relay_cpu_s >= 0 && r.active_s > 0 ? (100 * r.relay_cpu_s) / r.active_s : NaN;
  const usPerPkt = r.relay_cpu_s >= 0 && r.received > 0 ? (1e6 * r.relay_cpu_s) / r.received : NaN;
  return {
    cpuPct,
    usPerPkt,
    cells: [
      x.name,
      String(x.calls),
      x.rate === 0
        ? `max ${fmtInt(r.offered_pps)}`
        : r.offered_pps < 0.9 * x.rate
          ? `${fmtInt(r.offered_pps)} (of ${fmtInt(x.rate)})*`
          : fmtInt(r.offered_pps),
      fmtInt(r.forwarded_pps),
      r.loss_pct.toFixed(2),
      Number.isFinite(cpuPct) ? cpuPct.toFixed(0) : '?',
      Number.isFinite(usPerPkt) ? usPerPkt.toFixed(2) : '—',
      r.received > 0 ? `${r.lat_p50_us} / ${r.lat_p99_us}` : '—',
      x.overload || '',
    ],
  };
}

function table(rows) {
  const head = [
    'forwarder',
    'calls',
    'offered pps',
    'forwarded pps',
    'loss %',
    'relay CPU %',
    'CPU-µs/packet',
    'latency p50 / p99 µs',
    'all streams forward after overload',
  ];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const x of rows) lines.push(`| ${rowCells(x).cells.join(' | ')} |`);
  return lines.join('\n');
}

function summary(rows, forwarders) {
  const by = (name, calls) => rows.filter((x) => x.name === name && x.calls === calls);
  const row100k = (name) => by(name, 100).find((y) => y.rate === 100000);
  const at100k = (name) => {
    const x = row100k(name);
    return x ? rowCells(x).usPerPkt : NaN;
  };
  const starved = (name) => {
    const x = row100k(name);
    return x && x.r.offered_pps < 0.9 * x.rate ? ` [${name}'s step was starved: offered ${fmtInt(x.r.offered_pps)}]` : '';
  };
  const lossFreeMax = (name, calls) => {
    let best = NaN;
    for (const x of by(name, calls))
      if (isLossFree(x.r) && !(x.r.forwarded_pps <= best)) best = x.r.forwarded_pps;
    return best;
  };
  const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? (a / b).toFixed(2) : 'n/a');
  const out = [];
  const has = (n) => rows.some((x) => x.name === n);
  const cands = ['ngrelay', 'rtpengine'].filter(has);
  if (!has('minfwd')) out.push('- minfwd rows missing: no ratios against the socket-API floor.');
  for (const n of cands) {
    out.push(
      `- ${n}: CPU-µs/packet at 100k pps, 100 calls = ${Number.isFinite(at100k(n)) ? at100k(n).toFixed(2) : 'n/a'}` +
        ` → ${ratio(at100k(n), at100k('minfwd'))}× minfwd (${Number.isFinite(at100k('minfwd')) ? at100k('minfwd').toFixed(2) : 'n/a'})` +
        (n === 'ngrelay' ? `, ${ratio(at100k(n), at100k('rtpengine'))}× rtpengine (target ≤ 1.15× minfwd, ~0.8× rtpengine)` : '') +
        starved(n) +
        starved('minfwd'),
    );
    for (const calls of [...new Set(rows.map((x) => x.calls))]) {
      // If no step overloaded it, its limit was not reached: the figure is a lower bound.
      const never = by(n, calls).length > 0 && by(n, calls).every((x) => isLossFree(x.r));
      out.push(
        `- ${n}, ${calls} calls: highest loss-free (≤ ${LOSS_FREE_PCT} % loss, kept up ≥ ${KEEP_UP * 100} %) forwarded rate ${never ? '≥ ' : ''}${fmtInt(lossFreeMax(n, calls) || 0)} pps` +
          (never ? ' (no step overloaded it: limit not reached)' : '') +
          ` → ${ratio(lossFreeMax(n, calls), lossFreeMax('minfwd', calls))}× minfwd` +
          (n === 'ngrelay' ? `, ${ratio(lossFreeMax(n, calls), lossFreeMax('rtpengine', calls))}× rtpengine (target ≥ 0.9× minfwd)` : ''),
      );
    }
    // p50 latency vs minfwd at each step where both are loss-free
    const worst = [];
    // Only paced steps where both forwarders were loss-free and both generators offered ≥ 90 % of the target.
    const fed = (y) => y.r.offered_pps >= 0.9 * y.rate;
    for (const x of rows.filter((y) => y.name === n && y.rate > 0 && isLossFree(y.r) && fed(y))) {
      const m = rows.find((y) => y.name === 'minfwd' && y.calls === x.calls && y.rate === x.rate);
      if (m && isLossFree(m.r) && fed(m) && m.r.lat_p50_us > 0)
        worst.push({ q: x.r.lat_p50_us / m.r.lat_p50_us, at: `${x.calls} calls @ ${fmtInt(x.rate)}` });
    }
    if (worst.length) {
      worst.sort((a, b) => a.q - b.q);
      const w = worst[worst.length - 1];
      const med = worst[Math.floor(worst.length / 2)].q;
      out.push(
        `- ${n}: p50 latency ÷ minfwd's over ${worst.length} paced steps where both are loss-free and fed: median ${med.toFixed(2)}×, ` +
          `worst ${w.q.toFixed(2)}× (${w.at})${n === 'ngrelay' ? ' (target ≤ 1.5× at every such step)' : ''}`,
      );
    }
    const ov = rows.filter((x) => x.name === n && x.overload);
    if (ov.length)
      out.push(
        `- ${n}: every stream forwards after overload: ${ov.every((x) => x.overload === 'yes') ? 'yes' : 'NO'} (${ov
          .map((x) => `${x.calls} calls: ${x.overload}`)
          .join('; ')})`,
      );
  }
  if (has('ngrelay-rec')) {
    const rec = at100k('ngrelay-rec');
    const plain = at100k('ngrelay');
    out.push(
      `- ngrelay-rec (pcap recording of every call): CPU-µs/packet at 100k pps, 100 calls = ${Number.isFinite(rec) ? rec.toFixed(2) : 'n/a'}` +
        (Number.isFinite(rec) && Number.isFinite(plain) ? `, Δ ${(rec - plain).toFixed(2)} µs vs ngrelay (${plain.toFixed(2)})` : ''),
    );
    for (const x of rows.filter((y) => y.name === 'ngrelay-rec' && y.extra)) out.push(`- ngrelay-rec, ${x.calls} calls: ${x.extra}`);
  }
  if (!forwarders.includes('ngrelay')) out.push('- ngrelay not requested in this run.');
  return out.join('\n');
}

// ---------------------------------------------------------------- main
async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.report) {
    console.log(renderReport(JSON.parse(fs.readFileSync(opts.report, 'utf8'))));
    return;
  }
  fs.mkdirSync(OUT, { recursive: true });
  buildTools();
  pinSelf();
  const info = machineInfo();
  const notes = [];

  if (opts.forwarders.includes('rtpengine')) {
    const err = await ensureRtpengine();
    if (err) {
      notes.push(`rtpengine: not available (${err})`);
      opts.forwarders = opts.forwarders.filter((f) => f !== 'rtpengine');
    }
  }

  const busy = await machineBusyPct(1000);
  const loadNote = `machine busy ${busy.toFixed(0)} % (all cores) in the second before the run, load average ${os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`;
  if (busy > 10) notes.push(`WARNING: ${loadNote}; other work shares the cores, figures are noisy`);
  console.error('bench: measuring the generator ceiling (generator -> sink, no relay)');
  const ceilings = await measureCeiling(opts.quick ? 1 : 2);
  const ceil = ceilings.plain;
  // Paced steps send without GSO, so the plain ceiling bounds them; `max` uses GSO.
  const ceilingPps = ceil.forwarded_pps;
  for (const c of [ceilings.plain, ceilings.gso])
    if (c.loss_pct > 1) notes.push(`generator ceiling run lost ${c.loss_pct.toFixed(2)} % at the sink`);
  const rates = stepRates(opts, ceilingPps);
  console.error(
    `bench: generator ceiling ${Math.round(ceilingPps)} pps (with GSO ${Math.round(ceilings.gso.forwarded_pps)}); ` +
      `steps ${rates.map((r) => r || 'max').join(', ')}`,
  );

  const rows = [];
  for (const name of opts.forwarders) {
    for (const calls of opts.calls) {
      const err = await runBlock(name, calls, rates, opts, rows);
      if (err) {
        console.error(`bench: ${err}`);
        // One reason per forwarder is enough when it cannot start at all.
        if (/not available/.test(err) && name.startsWith('ngrelay')) {
          notes.push(`${name}: not available (${err.replace(/^.*not available \((.*)\)$/s, '$1')})`);
          break;
        }
        notes.push(err);
      }
    }
  }

  const results = { info, opts, loadNote, ceiling: ceil, ceilingGso: ceilings.gso, rates, rows, notes };
  const md = renderReport(results);
  console.log(md);
  const stamp = info.date.replace(/[:.]/g, '-');
  fs.writeFileSync(path.join(OUT, 'latest.md'), md);
  fs.writeFileSync(path.join(OUT, `results-${stamp}.json`), JSON.stringify(results, null, 2));
}

// The markdown report; also re-rendered from a saved results file with --report=FILE.
function renderReport({ info, opts, loadNote, ceiling, ceilingGso, rows, notes }) {
  return [
    `## Packet-path benchmark (${info.date})`,
    '',
    `- machine: ${info.cpuModel}, ${info.cores} cores, kernel ${info.kernel}${loadNote ? `; ${loadNote}` : ''}`,
    `- relay pinned to core ${RELAY_CORE} (whole process, --num-threads=1); generator+sink (one thread) and runner on core ${GEN_CORE}`,
    `- 172-byte RTP (PCMA), one stream per call direction, ${opts.stepSeconds} s per step; CPU from /proc/<pid>/stat (utime+stime) over the step`,
    `- generator ceiling (generator -> sink, no relay, 200 streams): ${Math.round(ceiling.forwarded_pps)} pps one message per packet` +
      (ceilingGso ? `, ${Math.round(ceilingGso.forwarded_pps)} pps with UDP GSO (used by the \`max\` step)` : '') +
      `; p50 ${ceiling.lat_p50_us} µs`,
    '',
    table(rows),
    '',
    '`*` the generator (core 0) could not offer 90 % of the step\'s target rate: other work was sharing its core.',
    '`max` = the generator sending as fast as it can (UDP GSO: runs of one stream\'s packets per send). Latency is one-way generator -> relay -> sink.',
    '',
    '### Targets',
    summary(rows, opts.forwarders),
    ...notes.map((n) => `- ${n}`),
    '',
  ].join('\n');
}

main()
  .catch((e) => {
    console.error(`bench: ${e.stack || e.message}`);
    process.exitCode = 1;
  })
  .finally(killAllChildren);
