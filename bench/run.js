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
// NET_RX softirq meter (bench/softirq-meter.*; built only where clang + libbpf-dev exist).
const SOFTIRQ_METER = path.join(BIN, 'softirq-meter');
const SOFTIRQ_METER_OBJ = path.join(BIN, 'softirq-meter.bpf.o');
// Generator-only NET_RX softirq ns per packet (the ceiling runs: generator -> sink), plain and GSO; set in main().
const NETRX_BASELINE = { plain: null, gso: null };

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
// SRTP rows: the sink unprotects 1 in SRTP_CHECK_EVERY packets per stream during the rate steps
// (all of them in the warm-up, the verify run and the after-overload check); the generator
// pre-protects what it sends, at most SRTP_MAX_COUNT_PPS x seconds packets for an unpaced step.
const SRTP_CHECK_EVERY = 16;
const SRTP_MAX_COUNT_PPS = 900000;
const isLossFree = (r) => r.loss_pct <= LOSS_FREE_PCT && r.forwarded_pps >= KEEP_UP * r.offered_pps;

// ---------------------------------------------------------------- options
function parseArgs(argv) {
  const o = {
    quick: false,
    forwarders: [
      'ngrelay',
      'ngrelay-kernel',
      'rtpengine',
      'minfwd',
      'ngrelay-rec',
      'ngrelay-srtp-rtp',
      'rtpengine-srtp-rtp',
      'ngrelay-srtp-srtp',
      'rtpengine-srtp-srtp',
    ],
    calls: [1, 100, 1000],
    // Recording and SRTP forwarders run at these call counts only (unless --calls is given).
    extraCalls: [100],
    stepSeconds: 3,
    rates: null,
    maxSteps: 9,
    report: null,
  };
  for (const a of argv) {
    const [k, v] = a.split('=');
    if (k === '--quick') o.quick = true;
    else if (k === '--forwarders') o.forwarders = v.split(',');
    else if (k === '--calls') o.calls = o.extraCalls = v.split(',').map(Number);
    else if (k === '--extra-calls') o.extraCalls = v.split(',').map(Number);
    else if (k === '--step-seconds') o.stepSeconds = Number(v);
    else if (k === '--rates') o.rates = v.split(',').map(Number);
    else if (k === '--report') o.report = v;
    else if (k === '--help' || k === '-h') {
      console.log(
        'usage: node bench/run.js [--quick] [--forwarders=ngrelay,ngrelay-kernel,rtpengine,minfwd,ngrelay-rec,ngrelay-srtp-rtp,...]\n' +
          '                         [--calls=1,100,1000] [--extra-calls=100 (call counts of the -rec/-srtp-* forwarders)]\n' +
          '       SRTP forwarders: ngrelay|rtpengine + -srtp-rtp | -srtp-srtp | -srtp-rtp-gcm\n' +
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
    if (!['ngrelay', 'ngrelay-kernel', 'ngrelay-rec', 'rtpengine', 'minfwd'].includes(f) && !SRTP_NAME.test(f))
      throw new Error(`unknown forwarder ${f}`);
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
  const srcs = ['loadgen.c', 'minfwd.c', 'softirq-meter.c', 'softirq-meter.bpf.c', 'build.sh'].map((f) => path.join(BENCH, f));
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
let cookieSeq = 0;
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
    // One counter for every client of this process: relays cache replies by cookie, so a second
    // client starting again at 1 would get the cached reply of an earlier request.
    const cookie = `${process.pid}_${++cookieSeq}`;
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

// crypto: null for plain RTP/AVP, else { tag, suite, key (Buffer) }: an SDES phone (RTP/SAVP + a=crypto).
function phoneSdp(ip, port, sessId, crypto = null) {
  return (
    'v=0\r\n' +
    `o=- ${sessId} 1 IN IP4 ${ip}\r\n` +
    's=bench\r\n' +
    `c=IN IP4 ${ip}\r\n` +
    't=0 0\r\n' +
    `m=audio ${port} ${crypto ? 'RTP/SAVP' : 'RTP/AVP'} 8 101\r\n` +
    'a=rtpmap:8 PCMA/8000\r\n' +
    'a=rtpmap:101 telephone-event/8000\r\n' +
    'a=fmtp:101 0-16\r\n' +
    'a=ptime:20\r\n' +
    'a=sendrecv\r\n' +
    (crypto ? `a=crypto:${crypto.tag} ${crypto.suite} inline:${crypto.key.toString('base64')}\r\n` : '')
  );
}

// SDES master key + salt lengths (bytes) of the suites the SRTP rows use.
const SRTP_KEY_LEN = { AES_CM_128_HMAC_SHA1_80: 30, AES_CM_128_HMAC_SHA1_32: 30, AEAD_AES_128_GCM: 28 };
const newCrypto = (tag, suite) => ({ tag, suite, key: require('node:crypto').randomBytes(SRTP_KEY_LEN[suite]) });

// a=crypto lines of a reply SDP: [{ tag, suite, key }] (inline key without |lifetime|MKI).
function sdpCryptos(sdp) {
  const out = [];
  for (const m of sdp.matchAll(/^a=crypto:(\d+) (\S+) inline:([A-Za-z0-9+/=]+)/gm))
    out.push({ tag: Number(m[1]), suite: m[2], key: Buffer.from(m[3], 'base64') });
  return out;
}

function pickCrypto(sdp, suite, what) {
  const c = sdpCryptos(sdp).find((x) => x.suite === suite);
  if (!c) throw new Error(`${what}: no a=crypto line with ${suite} in ${JSON.stringify(sdp).slice(0, 300)}`);
  if (c.key.length !== SRTP_KEY_LEN[suite]) throw new Error(`${what}: ${suite} key of ${c.key.length} bytes`);
  return c;
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
// srtp: null (plain RTP both legs), or { kind: 'srtp-rtp' | 'srtp-srtp', suite }:
//  - srtp-rtp: A is an SDES phone (RTP/SAVP, a=crypto tag 1 with its key); the offer carries
//    transport-protocol RTP/AVP so B gets plain RTP. The answer reply gives A the relay's key for B -> A.
//  - srtp-srtp: both legs SDES. A offers AES_CM_128_HMAC_SHA1_32 (tag 1); B answers with the relay's
//    AES_CM_128_HMAC_SHA1_80 line from the offer reply (its tag, B's own key). Different suites on
//    the two legs force decrypt + re-encrypt (B picking tag 1 would be pass-through).
// Returns the phones, where each side sends, and per direction the SRTP the sender protects with
// and the sink unprotects with (null = plain).
async function setupCall(ng, tagBase, i, calls, record = false, srtp = null) {
  const a = phoneOf('A', i, calls);
  const b = phoneOf('B', i, calls);
  const callId = `${tagBase}-${i}@bench`;
  const common = { supports: ['load limit'] };
  const aCrypto = srtp ? newCrypto(1, srtp.kind === 'srtp-srtp' ? 'AES_CM_128_HMAC_SHA1_32' : srtp.suite) : null;
  const offer = await ng.request({
    ...common,
    sdp: phoneSdp(a.ip, a.port, 1000 + i, aCrypto),
    ICE: 'remove',
    replace: ['origin', 'session-connection'],
    ...(srtp && srtp.kind === 'srtp-rtp' ? { 'transport-protocol': 'RTP/AVP' } : {}),
    'call-id': callId,
    'received-from': ['IP4', a.ip],
    'from-tag': `ft${i}`,
    ...(record ? { 'record-call': 'yes' } : {}),
    command: 'offer',
  });
  if (offer.result !== 'ok') throw new Error(`offer: ${offer.result} ${offer['error-reason'] || ''}`);
  let bCrypto = null;
  let relayToB = null;
  if (srtp && srtp.kind === 'srtp-srtp') {
    relayToB = pickCrypto(offer.sdp, srtp.suite, 'offer reply');
    bCrypto = { ...newCrypto(relayToB.tag, srtp.suite) };
  } else if (srtp && sdpCryptos(offer.sdp).length)
    throw new Error(`offer reply towards the RTP/AVP leg still carries a=crypto: ${JSON.stringify(offer.sdp).slice(0, 300)}`);
  const answer = await ng.request({
    ...common,
    sdp: phoneSdp(b.ip, b.port, 2000 + i, bCrypto),
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
  const call = { a, b, toRelayFromA: sdpMedia(answer.sdp), toRelayFromB: sdpMedia(offer.sdp) };
  if (srtp) {
    const relayToA = pickCrypto(answer.sdp, aCrypto.suite, 'answer reply');
    call.srtpAtoB = { tx: aCrypto, rx: relayToB }; // A protects; B unprotects (srtp-srtp) or gets RTP
    call.srtpBtoA = { tx: bCrypto, rx: relayToA }; // B protects (srtp-srtp) or sends RTP; A unprotects
  }
  return call;
}

async function setupCalls(ng, tagBase, calls, record = false, srtp = null) {
  const out = new Array(calls);
  let next = 0;
  const worker = async () => {
    while (next < calls) {
      const i = next++;
      out[i] = await setupCall(ng, tagBase, i, calls, record, srtp);
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
async function startNgrelay(calls, logFile, record, srtp, label) {
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
      // ngrelay-kernel: the eBPF fast path (README "Kernel fast path"); the others forward in userspace.
      `--table=${label === 'ngrelay-kernel' ? 0 : -1}`,
      ...(recDir ? [`--recording-dir=${recDir}`] : []),
    ],
    logFile,
  );
  let fwd;
  try {
    fwd = await ngSetup(child, ngPort, calls, logFile, label, 8000, { record, srtp });
  } catch (e) {
    if (recDir) fs.rmSync(recDir, { recursive: true, force: true });
    throw e;
  }
  if (recDir) {
    fwd.cleanup = () => fs.rmSync(recDir, { recursive: true, force: true });
    fwd.afterRun = () => recordingCounters(ngPort, fwd.callIds);
  }
  return fwd;
}

// Recording counters summed over every call (ng query), shown next to the ngrelay-rec rows.
async function recordingCounters(ngPort, callIds) {
  const ng = new NgClient('127.0.0.1', ngPort);
  let written = 0;
  let dropped = 0;
  let missing = 0;
  try {
    for (const callId of callIds) {
      const q = await ng.request({ command: 'query', 'call-id': callId });
      const rec = q.recording || {};
      if (typeof rec['packets written'] !== 'number') {
        if (!missing) console.error(`bench: query ${callId} without recording counters: ${JSON.stringify(q).slice(0, 400)}`);
        missing++;
      }
      written += rec['packets written'] || 0;
      dropped += rec['packets dropped'] || 0;
    }
    return {
      text: `recording (${callIds.length} calls, whole block): packets written ${written}, dropped ${dropped}` +
        (missing ? `; ${missing} calls without recording counters` : ''),
      written,
      dropped,
    };
  } catch (e) {
    return { text: `recording query failed: ${e.message}` };
  } finally {
    ng.close();
  }
}

// Relay-side view of an SRTP block, from ng query: per call the streams' packets and errors
// (auth/replay failures are counted as errors by both relays). Summed over all calls.
async function relayErrorCounters(ngPort, callIds) {
  const ng = new NgClient('127.0.0.1', ngPort);
  const sum = { packets: 0, errors: 0, errorCounters: 0, calls: 0 };
  const walk = (v, key) => {
    if (Array.isArray(v)) v.forEach((x) => walk(x, key));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, k);
    else if (typeof v === 'number' && key === 'errors') {
      sum.errors += v;
      sum.errorCounters++;
    }
  };
  try {
    for (const callId of callIds) {
      const q = await ng.request({ command: 'query', 'call-id': callId });
      if (q.result !== 'ok') continue;
      sum.calls++;
      // totals: { RTP: { packets, bytes, errors }, RTCP: {...} } in both relays
      const t = (q.totals && q.totals.RTP) || {};
      sum.packets += t.packets || 0;
      walk(q.tags || q.totals, '');
    }
    return sum;
  } catch (e) {
    return { error: e.message };
  } finally {
    ng.close();
  }
}

// Each returns { pid, child, calls: [{a,b,toRelayFromA,toRelayFromB}], cleanup?, afterRun? } or throws
// with a reason.
// Forwarder names: ngrelay, rtpengine, minfwd; ngrelay-rec (every call recorded to pcap: the offer
// carries record-call); <ngrelay|rtpengine>-srtp-rtp and -srtp-srtp (SDES, AES_CM_128_HMAC_SHA1_80 on
// the B leg), -srtp-rtp-gcm (AEAD_AES_128_GCM).
const SRTP_NAME = /^(ngrelay|rtpengine)-(srtp-rtp|srtp-srtp)(-gcm)?$/;
function srtpOf(name) {
  const m = SRTP_NAME.exec(name);
  if (!m) return null;
  if (m[3] && m[2] === 'srtp-srtp') throw new Error(`${name}: GCM is only wired for srtp-rtp`);
  return { kind: m[2], suite: m[3] ? 'AEAD_AES_128_GCM' : 'AES_CM_128_HMAC_SHA1_80' };
}
const baseOf = (name) => name.split('-')[0];
function startForwarder(name, calls, logFile) {
  const srtp = srtpOf(name);
  if (baseOf(name) === 'ngrelay') return startNgrelay(calls, logFile, name === 'ngrelay-rec', srtp, name);
  if (baseOf(name) === 'rtpengine') return FORWARDERS.rtpengine(calls, logFile, srtp, name);
  return FORWARDERS[name](calls, logFile);
}

const FORWARDERS = {
  async rtpengine(calls, logFile, srtp = null, label = 'rtpengine') {
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
    return ngSetup(child, ngPort, calls, logFile, label, 8000, { srtp });
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

async function ngSetup(child, ngPort, calls, logFile, label, readyMs, { record = false, srtp = null } = {}) {
  const ng = new NgClient('127.0.0.1', ngPort);
  try {
    const err = await waitForPing(ng, child, readyMs);
    if (err) throw new Error(`${err}; log: ${logTail(logFile)}`);
    const tagBase = `${label}-${calls}-${process.pid}`;
    const list = await setupCalls(ng, tagBase, calls, record, srtp);
    return { pid: child.pid, child, calls: list, ngPort, callIds: list.map((_, i) => `${tagBase}-${i}@bench`) };
  } catch (e) {
    await stopChild(child, label);
    throw e;
  } finally {
    ng.close();
  }
}

// ---------------------------------------------------------------- load steps
// One line per stream; SRTP streams add "TX_SUITE TX_KEYHEX RX_SUITE RX_KEYHEX" ('-' = plain).
function writeStreams(file, callList) {
  const lines = [];
  const sr = (dir) => {
    if (!dir) return '';
    const f = (c) => (c ? `${c.suite} ${c.key.toString('hex')}` : '- -');
    return ` ${f(dir.tx)} ${f(dir.rx)}`;
  };
  for (const c of callList) {
    lines.push(`${c.a.ip} ${c.a.port} ${c.toRelayFromA.ip} ${c.toRelayFromA.port}${sr(c.srtpAtoB)}`); // A -> relay -> B
    lines.push(`${c.b.ip} ${c.b.port} ${c.toRelayFromB.ip} ${c.toRelayFromB.port}${sr(c.srtpBtoA)}`); // B -> relay -> A
  }
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return lines.length;
}

// rate 0 = as fast as the generator goes. Bounded by packets and seconds.
// gso: send each stream's consecutive packets as one UDP_SEGMENT message (used for the unpaced
// `max` step and the GSO ceiling; paced steps send one message per packet).
// SRTP streams files: stateFile carries seq/ROC from one run to the next (relays keep a replay window),
// checkEvery = the sink unprotects every Nth SRTP packet per stream; maxCount bounds the unpaced
// count (each SRTP packet is protected before the run, so the count costs time up front).
/**
 * Starts the NET_RX softirq meter for one loadgen run; resolves to { stop(): Promise<counts|null> }, or
 * null when the meter is not built or cannot load (no CAP_BPF): the report then says so.
 */
async function startSoftirqMeter(relayPid) {
  if (!fs.existsSync(SOFTIRQ_METER) || !fs.existsSync(SOFTIRQ_METER_OBJ)) return null;
  const child = track(spawn(SOFTIRQ_METER, [String(relayPid || 0), SOFTIRQ_METER_OBJ], { stdio: ['pipe', 'pipe', 'pipe'] }));
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const ready = await new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), 5000);
    child.stdout.on('data', () => {
      if (out.includes('ready')) {
        clearTimeout(t);
        resolve(true);
      }
    });
    child.on('exit', () => {
      clearTimeout(t);
      resolve(false);
    });
  });
  if (!ready) {
    await stopChild(child, 'softirq-meter');
    return null;
  }
  let stopped = null;
  const exited = new Promise((resolve) => child.on('exit', resolve));
  return {
    // Idempotent: closing stdin makes the meter print its counts and exit.
    stop: () =>
      (stopped ??= (async () => {
        child.stdin.end();
        await exited;
        const m = /\{.*\}/.exec(out);
        return m ? JSON.parse(m[0]) : null;
      })()),
  };
}

async function runLoadgen(args) {
  const meter = await startSoftirqMeter(args.watchPid);
  try {
    const r = await runLoadgenOnly(args);
    r.netrx = meter ? await meter.stop() : null;
    return r;
  } finally {
    if (meter) await meter.stop().catch(() => null);
  }
}

function runLoadgenOnly({ streamsFile, rate, seconds, watchPid, perStream = false, gso = false, stateFile = null, checkEvery = 1, maxCount = Infinity }) {
  const count = Math.min(maxCount, rate > 0 ? Math.ceil(rate * seconds) : Math.ceil((gso ? 5e6 : 2e6) * seconds));
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
  if (stateFile) args.push('--state-file', stateFile, '--srtp-check-every', String(checkEvery));
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
    }, (seconds + 45) * 1000); // + pre-protect time of SRTP runs
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

// The generator's ceiling with SRTP the way the SRTP -> SRTP rows load it: every packet sent is
// SRTP (pre-protected) and every packet received is SRTP (unprotected 1 in SRTP_CHECK_EVERY).
async function measureSrtpCeiling(seconds) {
  const file = path.join(OUT, 'ceiling-srtp-streams.txt');
  const calls = 100;
  const list = [];
  for (let i = 0; i < calls; i++) {
    const a = phoneOf('A', i, calls);
    const b = phoneOf('B', i, calls);
    const k1 = newCrypto(1, 'AES_CM_128_HMAC_SHA1_80');
    const k2 = newCrypto(1, 'AES_CM_128_HMAC_SHA1_80');
    list.push({ a, b, toRelayFromA: b, toRelayFromB: a, srtpAtoB: { tx: k1, rx: k1 }, srtpBtoA: { tx: k2, rx: k2 } });
  }
  writeStreams(file, list);
  const stateFile = path.join(OUT, 'ceiling-srtp.state');
  fs.rmSync(stateFile, { force: true });
  const common = { streamsFile: file, rate: 0, seconds, stateFile, checkEvery: SRTP_CHECK_EVERY, maxCount: SRTP_MAX_COUNT_PPS * seconds };
  const plain = await runLoadgen(common);
  const gso = await runLoadgen({ ...common, gso: true });
  fs.rmSync(stateFile, { force: true });
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
async function runBlock(name, calls, rates, opts, rows, blocks) {
  const logFile = path.join(OUT, `${name}-${calls}.log`);
  const t0 = Date.now();
  let fwd;
  try {
    fwd = await startForwarder(name, calls, logFile);
  } catch (e) {
    return `${name} @ ${calls} calls: not available (${e.message})`;
  }
  try {
    const streamsFile = path.join(OUT, `streams-${name}-${calls}.txt`);
    const nStreams = writeStreams(streamsFile, fwd.calls);
    const isSrtp = Boolean(fwd.calls[0].srtpAtoB);
    // SRTP: sequence numbers/ROC continue across the block's loadgen runs (fresh state per block).
    const stateFile = isSrtp ? path.join(OUT, `state-${name}-${calls}.txt`) : null;
    if (stateFile) fs.rmSync(stateFile, { force: true });
    const srtpArgs = (checkEvery) => (isSrtp ? { stateFile, checkEvery, maxCount: SRTP_MAX_COUNT_PPS * opts.stepSeconds } : {});
    console.error(`bench: ${name} pid ${fwd.pid}, ${calls} calls set up in ${Date.now() - t0} ms`);
    // Warm-up: lets the relay learn/confirm both endpoints of every stream before measuring.
    const warm = await runLoadgen({
      streamsFile,
      rate: Math.max(2000, nStreams * 10),
      seconds: opts.quick ? 0.5 : 1,
      watchPid: fwd.pid,
      ...srtpArgs(1),
    });
    if (warm.received === 0) throw new Error(`nothing forwarded during warm-up (sent ${warm.sent})`);
    const block = { name, calls };
    blocks.push(block);
    if (isSrtp) {
      // Correctness at a low rate: every packet unprotected at the sink, per-stream counts, and
      // the relay's own error counters (auth/replay failures) before and after.
      const before = await relayErrorCounters(fwd.ngPort, fwd.callIds);
      const v = await runLoadgen({
        streamsFile,
        rate: Math.max(5000, nStreams * 25),
        seconds: opts.quick ? 1 : 2,
        watchPid: fwd.pid,
        perStream: true,
        ...srtpArgs(1),
      });
      const after = await relayErrorCounters(fwd.ngPort, fwd.callIds);
      const per = v.per_stream_received || [];
      block.verify = {
        sent: v.sent,
        received: v.received,
        loss_pct: v.loss_pct,
        silent: v.silent_streams,
        minPerStream: Math.min(...per),
        maxPerStream: Math.max(...per),
        srtp: v.srtp,
        foreign: v.foreign,
        relayErrorsDuring: after.errors !== undefined && before.errors !== undefined ? after.errors - before.errors : `? (${after.error || before.error})`,
        relayErrorsTotal: after.errors,
        relayErrorCounters: after.errorCounters, // how many per-stream error counters the query showed
        relayPackets: after.packets,
      };
      const ok =
        v.silent_streams === 0 &&
        v.loss_pct < 0.1 &&
        v.srtp.rx_auth_fail + v.srtp.rx_replay_fail + v.srtp.rx_other_fail + v.srtp.tx_errors === 0 &&
        v.srtp.rx_ok > 0 &&
        block.verify.relayErrorsDuring === 0;
      block.verify.ok = ok;
      console.error(`bench: ${name} SRTP verify ${ok ? 'ok' : 'FAILED'}: ${JSON.stringify(block.verify)}`);
    }
    let last = null;
    let skipped = null;
    for (const rate of rates) {
      await sleep(300);
      const r = await runLoadgen({
        streamsFile,
        rate,
        seconds: opts.stepSeconds,
        watchPid: fwd.pid,
        gso: rate === 0,
        ...srtpArgs(SRTP_CHECK_EVERY),
      });
      if (!children.has(fwd.child)) throw new Error(`${name} died during the ${rate} pps step: ${logTail(logFile)}`);
      // NET_RX work outside the relay's process, beyond what the generator alone costs (its ceiling run).
      r.netrx_base_ns_per_pkt = rate === 0 ? NETRX_BASELINE.gso : NETRX_BASELINE.plain;
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
      ...srtpArgs(1),
    });
    const ok = check.silent_streams === 0 && check.loss_pct < 1;
    if (isSrtp) block.afterOverloadSrtp = check.srtp;
    if (fwd.afterRun) block.extra = await fwd.afterRun();
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
    if (fwd.calls[0] && fwd.calls[0].srtpAtoB) fs.rmSync(path.join(OUT, `state-${name}-${calls}.txt`), { force: true });
  }
}

// ---------------------------------------------------------------- report
const fmtInt = (n) => (n >= 1000 ? `${(n / 1000).toFixed(n >= 100000 ? 0 : 1)}k` : String(Math.round(n)));

function rowCells(x) {
  const r = x.r;
  const cpuPct = r.relay_cpu_s >= 0 && r.active_s > 0 ? (100 * r.relay_cpu_s) / r.active_s : NaN;
  const usPerPkt = r.relay_cpu_s >= 0 && r.received > 0 ? (1e6 * r.relay_cpu_s) / r.received : NaN;
  // Softirq: NET_RX time in the generator's context beyond its baseline, plus in anyone else's (ksoftirqd,
  // idle); what ran in the relay's own context is in its process CPU already.
  const n = r.netrx;
  const softUs =
    n && r.received > 0 && r.netrx_base_ns_per_pkt !== null && r.netrx_base_ns_per_pkt !== undefined
      ? Math.max(0, n.gen_ns - r.netrx_base_ns_per_pkt * r.sent + n.other_ns) / 1e3 / r.received
      : NaN;
  const totalUs = usPerPkt + softUs;
  return {
    cpuPct,
    usPerPkt,
    softUs,
    totalUs,
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
      Number.isFinite(softUs) ? softUs.toFixed(2) : '—',
      Number.isFinite(totalUs) ? totalUs.toFixed(2) : '—',
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
    'softirq µs/packet',
    'total CPU-µs/packet',
    'latency p50 / p99 µs',
    'all streams forward after overload',
  ];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const x of rows) lines.push(`| ${rowCells(x).cells.join(' | ')} |`);
  return lines.join('\n');
}

const isExtraName = (name) => name === 'ngrelay-rec' || SRTP_NAME.test(name);

function summary(allRows, forwarders, blocks) {
  let rows = allRows;
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
  rows = rows.filter((x) => !isExtraName(x.name)); // recording/SRTP rows: see extraRows
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
        worst.push({
          q: x.r.lat_p50_us / m.r.lat_p50_us,
          // CPU of both at that step: near 100 % the p50 is queueing delay, very sensitive to small cost differences
          at: `${x.calls} calls @ ${fmtInt(x.rate)}: ${x.r.lat_p50_us} vs ${m.r.lat_p50_us} µs, CPU ${rowCells(x).cpuPct.toFixed(0)} % vs ${rowCells(m).cpuPct.toFixed(0)} %`,
        });
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
  for (const e of extraRows(allRows, blocks)) out.push(`- ${e.text}`);
  if (!forwarders.includes('ngrelay')) out.push('- ngrelay not requested in this run.');
  return out.join('\n');
}

// Recording and SRTP forwarders against their plain base row (same relay, same calls, same step).
function extraRows(rows, blocks = []) {
  const out = [];
  const rowAt = (name, calls, rate) => rows.find((x) => x.name === name && x.calls === calls && x.rate === rate);
  const us = (x) => (x ? rowCells(x).usPerPkt : NaN);
  const f2 = (v) => (Number.isFinite(v) ? v.toFixed(2) : 'n/a');
  const lossFreeMax = (name, calls) => {
    let best = NaN;
    for (const x of rows.filter((y) => y.name === name && y.calls === calls))
      if (isLossFree(x.r) && !(x.r.forwarded_pps <= best)) best = x.r.forwarded_pps;
    return best;
  };
  const names = [...new Set(rows.map((x) => x.name))].filter((n) => n === 'ngrelay-rec' || SRTP_NAME.test(n));
  for (const name of names) {
    const base = baseOf(name);
    for (const calls of [...new Set(rows.filter((x) => x.name === name).map((x) => x.calls))]) {
      const e = { name, base, calls };
      e.us50 = us(rowAt(name, calls, 50000));
      e.us100 = us(rowAt(name, calls, 100000));
      e.base100 = us(rowAt(base, calls, 100000));
      e.delta100 = e.us100 - e.base100;
      e.lossFree = lossFreeMax(name, calls);
      e.baseLossFree = lossFreeMax(base, calls);
      const x100 = rowAt(name, calls, 100000);
      e.p50 = x100 && x100.r.received > 0 ? x100.r.lat_p50_us : NaN;
      const last = rows.filter((x) => x.name === name && x.calls === calls).pop();
      e.overload = last && last.overload ? last.overload : '';
      const blk = blocks.find((b) => b.name === name && b.calls === calls) || {};
      e.block = blk;
      const srtp = srtpOf(name);
      let what;
      if (name === 'ngrelay-rec') what = 'ngrelay + pcap recording of every call';
      else what = `${base} ${srtp.kind === 'srtp-rtp' ? 'SRTP → RTP' : 'SRTP → SRTP (re-encrypt)'} (${srtp.suite})`;
      e.what = what;
      let text =
        `${what}, ${calls} calls: CPU-µs/packet at 100k pps = ${f2(e.us100)} (Δ ${f2(e.delta100)} µs vs ${base} plain RTP ${f2(e.base100)}` +
        (Number.isFinite(e.base100) && e.base100 > 0 ? `, ${f2(e.us100 / e.base100)}×` : '') +
        `), at 50k = ${f2(e.us50)}; highest loss-free ${fmtInt(e.lossFree || 0)} pps (plain ${fmtInt(e.baseLossFree || 0)})`;
      if (srtp) {
        const other = `${base === 'ngrelay' ? 'rtpengine' : 'ngrelay'}${name.slice(base.length)}`;
        const o100 = us(rowAt(other, calls, 100000));
        if (base === 'ngrelay' && Number.isFinite(o100)) text += `; ${f2(e.us100 / o100)}× rtpengine doing the same bridge (${f2(o100)})`;
        const v = blk.verify;
        if (v)
          text +=
            `; low-rate check: ${v.ok ? 'ok' : 'FAILED'} (sink unprotected ${v.srtp.rx_ok}/${v.received} SRTP-carrying packets` +
            ` with ${v.srtp.rx_auth_fail} auth / ${v.srtp.rx_replay_fail} replay failures, ${v.silent} silent of ${v.minPerStream}–${v.maxPerStream} per stream, loss ${v.loss_pct.toFixed(2)} %, relay errors ${v.relayErrorsDuring})`;
        const a = blk.afterOverloadSrtp;
        if (a && a.rx_auth_fail + a.rx_replay_fail + a.rx_other_fail > 0)
          text += `; after overload the sink saw ${a.rx_auth_fail} auth / ${a.rx_replay_fail} replay failures`;
      } else if (blk.extra) text += `; ${blk.extra.text}`;
      e.text = text;
      out.push(e);
    }
  }
  return out;
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
  // Generator-only NET_RX per packet sent (delivering to the sink), subtracted from every row the same way.
  for (const [k, c] of [['plain', ceilings.plain], ['gso', ceilings.gso]])
    NETRX_BASELINE[k] = c.netrx && c.sent > 0 ? c.netrx.gen_ns / c.sent : null;
  if (NETRX_BASELINE.plain === null)
    notes.push('softirq not measured (bench/bin/softirq-meter missing or refused): the softirq columns are empty');
  if (opts.forwarders.includes('rtpengine'))
    notes.push('rtpengine: userspace only (--table=-1); its kernel module cannot load on this kernel (no CONFIG_MODULES)');
  console.error(
    `bench: generator ceiling ${Math.round(ceilingPps)} pps (with GSO ${Math.round(ceilings.gso.forwarded_pps)}); ` +
      `steps ${rates.map((r) => r || 'max').join(', ')}`,
  );

  // SRTP blocks: the generator pays for SRTP too (pre-protect + sampled unprotect): its own ceiling
  // with SRTP bounds their steps.
  let srtpCeil = null;
  let srtpRates = rates;
  if (opts.forwarders.some((f) => SRTP_NAME.test(f))) {
    console.error('bench: measuring the generator ceiling with SRTP (every packet SRTP both ways)');
    srtpCeil = await measureSrtpCeiling(opts.quick ? 1 : 2);
    srtpRates = stepRates(opts, Math.min(ceilingPps, srtpCeil.plain.forwarded_pps));
    console.error(
      `bench: SRTP generator ceiling ${Math.round(srtpCeil.plain.forwarded_pps)} pps (GSO ${Math.round(srtpCeil.gso.forwarded_pps)}); ` +
        `SRTP steps ${srtpRates.map((r) => r || 'max').join(', ')}`,
    );
  }

  const rows = [];
  const blocks = [];
  const isExtra = (name) => name === 'ngrelay-rec' || SRTP_NAME.test(name);
  for (const name of opts.forwarders) {
    for (const calls of isExtra(name) ? opts.extraCalls : opts.calls) {
      const err = await runBlock(name, calls, SRTP_NAME.test(name) ? srtpRates : rates, opts, rows, blocks);
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

  const results = { info, opts, loadNote, ceiling: ceil, ceilingGso: ceilings.gso, srtpCeil, rates, srtpRates, rows, blocks, notes };
  // Raw results first: a report bug must not lose a 10-minute run (re-render with --report=FILE).
  const stamp = info.date.replace(/[:.]/g, '-');
  fs.writeFileSync(path.join(OUT, `results-${stamp}.json`), JSON.stringify(results, null, 2));
  const md = renderReport(results);
  console.log(md);
  fs.writeFileSync(path.join(OUT, 'latest.md'), md);
}

function extraTable(extras) {
  const f2 = (v) => (Number.isFinite(v) ? v.toFixed(2) : 'n/a');
  const lines = [
    '| row | calls | CPU-µs/packet @ 50k pps | @ 100k pps | Δ vs plain @ 100k | highest loss-free pps (plain) | p50 µs @ 100k | check |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const e of extras) {
    let check = '';
    if (e.block.verify) {
      const v = e.block.verify;
      check = `${v.ok ? 'ok' : 'FAILED'}: ${v.srtp.rx_ok} unprotected, ${v.srtp.rx_auth_fail + v.srtp.rx_replay_fail + v.srtp.rx_other_fail} failed, relay errors ${v.relayErrorsDuring}`;
    } else if (e.block.extra) check = `written ${e.block.extra.written ?? '?'}, dropped ${e.block.extra.dropped ?? '?'}`;
    lines.push(
      `| ${e.what} | ${e.calls} | ${f2(e.us50)} | ${f2(e.us100)} | ${Number.isFinite(e.delta100) ? `${e.delta100 >= 0 ? '+' : ''}${e.delta100.toFixed(2)}` : 'n/a'} (plain ${f2(e.base100)}) | ` +
        `${fmtInt(e.lossFree || 0)} (${fmtInt(e.baseLossFree || 0)}) | ${Number.isFinite(e.p50) ? e.p50 : '—'} | ${check} |`,
    );
  }
  return lines.join('\n');
}

// The markdown report; also re-rendered from a saved results file with --report=FILE.
function renderReport({ info, opts, loadNote, ceiling, ceilingGso, srtpCeil, rows, blocks = [], notes }) {
  const extras = extraRows(rows, blocks);
  return [
    `## Packet-path benchmark (${info.date})`,
    '',
    `- machine: ${info.cpuModel}, ${info.cores} cores, kernel ${info.kernel}${loadNote ? `; ${loadNote}` : ''}`,
    `- relay pinned to core ${RELAY_CORE} (whole process, --num-threads=1); generator+sink (one thread) and runner on core ${GEN_CORE}`,
    `- 172-byte RTP (PCMA), one stream per call direction, ${opts.stepSeconds} s per step; CPU from /proc/<pid>/stat (utime+stime) over the step`,
    `- generator ceiling (generator -> sink, no relay, 200 streams): ${Math.round(ceiling.forwarded_pps)} pps one message per packet` +
      (ceilingGso ? `, ${Math.round(ceilingGso.forwarded_pps)} pps with UDP GSO (used by the \`max\` step)` : '') +
      `; p50 ${ceiling.lat_p50_us} µs`,
    ...(srtpCeil
      ? [
          `- generator ceiling with SRTP (every packet SRTP both ways, AES_CM_128_HMAC_SHA1_80 via libsrtp2; sent packets pre-protected before each step, ` +
            `the sink unprotects 1 in ${SRTP_CHECK_EVERY} per stream during the steps and every packet in the low-rate checks): ` +
            `${Math.round(srtpCeil.plain.forwarded_pps)} pps one message per packet, ${Math.round(srtpCeil.gso.forwarded_pps)} pps with UDP GSO`,
        ]
      : []),
    '',
    table(rows),
    '',
    '`*` the generator (core 0) could not offer 90 % of the step\'s target rate: other work was sharing its core.',
    '`max` = the generator sending as fast as it can (UDP GSO: runs of one stream\'s packets per send). Latency is one-way generator -> relay -> sink.',
    '',
    ...(extras.length ? ['### Recording and SRTP (beside plain RTP)', '', extraTable(extras), ''] : []),
    '### Targets',
    summary(rows, opts.forwarders, blocks),
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
