/**
 * A call with known quality, driven through any relay that speaks ng (rtpengine or ngrelay), for the call
 * quality tests: two loopback parties A and B, each with an RTP and an RTCP socket (RTCP on RTP port + 1),
 * exchange 20 ms PCMU packets. A -> B drops every `dropEvery`-th packet before sending it and delays some;
 * both parties send RFC 3550 sender reports every `reportMs` and, in the same compound packet, a receiver
 * report about the other side's stream built from what they really received (fraction lost, cumulative
 * loss, interarrival jitter) with LSR/DLSR, holding each report `extraDelayMs` longer than its DLSR says,
 * so the relay measures a per-leg round-trip time of about that much.
 */
import dgram from 'node:dgram';
import { NgRawClient } from './ng-client';
import { toPlain, type BDict } from './bencode';

export interface QualityOptions {
  ngPort: number;
  callId: string;
  /** Packets per direction (20 ms apart). */
  packets: number;
  /** A -> B loses every n-th packet (0 = none). */
  dropEvery: number;
  /** A -> B: every n-th packet is sent `delayMs` late (0 = none). */
  delayEvery: number;
  delayMs: number;
  reportMs: number;
  extraDelayMs: number;
  ssrcA: number;
  ssrcB: number;
  /** Runs after the traffic, before this module's own query and delete (e.g. a SIP proxy querying the call). */
  afterTraffic?: (tags: { from: string; to: string }) => Promise<void>;
  /** The codec both parties offer (default PCMU): its payload type and a=rtpmap value. */
  codec?: { pt: number; rtpmap: string };
}

const PCMU = { pt: 0, rtpmap: 'PCMU/8000' };

/**
 * The traffic the call-quality comparisons judge relays by: A -> B loses every 10th packet and delays every
 * 7th by 30 ms, each report is held 30 ms longer than its DLSR says (so ~10 % loss, ~60 ms round trip).
 */
export const LOSSY_CALL = {
  packets: 300,
  dropEvery: 10,
  delayEvery: 7,
  delayMs: 30,
  reportMs: 1000,
  extraDelayMs: 30,
  ssrcA: 0x1111,
  ssrcB: 0x2222,
} as const satisfies Partial<QualityOptions>;

interface Socket {
  socket: dgram.Socket;
  port: number;
}

async function bound(port: number): Promise<Socket | null> {
  const socket = dgram.createSocket('udp4');
  return new Promise((resolve) => {
    socket.once('error', () => {
      socket.close();
      resolve(null);
    });
    socket.bind(port, '127.0.0.1', () => resolve({ socket, port: socket.address().port }));
  });
}

/** An RTP socket on an even port and its RTCP socket on the next one. */
async function socketPair(): Promise<[Socket, Socket]> {
  for (let i = 0; i < 50; ++i) {
    const base = 20000 + 2 * Math.floor(Math.random() * 10000);
    const rtp = await bound(base);
    if (!rtp) continue;
    const rtcp = await bound(base + 1);
    if (rtcp) return [rtp, rtcp];
    rtp.socket.close();
  }
  throw new Error('no free RTP/RTCP port pair on loopback');
}

/** RFC 3550 A.1/A.8 receiver statistics of one incoming stream, as a real endpoint keeps them. */
class ReceiverStats {
  private base = -1;
  private maxSeq = 0;
  private cycles = 0;
  received = 0;
  private expectedPrior = 0;
  private receivedPrior = 0;
  private transit: number | null = null;
  jitter = 0; // timestamp units
  ssrc = 0;
  onPacket(pkt: Buffer, arrivalMs: number): void {
    const seq = pkt.readUInt16BE(2);
    const ts = pkt.readUInt32BE(4);
    this.ssrc = pkt.readUInt32BE(8);
    if (this.base < 0) {
      this.base = seq;
      this.maxSeq = seq;
    } else if (((seq - this.maxSeq) & 0xffff) < 0x8000) {
      if (seq < this.maxSeq) this.cycles += 0x10000;
      this.maxSeq = seq;
    }
    ++this.received;
    const transit = arrivalMs * 8 - ts; // 8 kHz
    if (this.transit !== null) {
      const d = Math.abs(transit - this.transit);
      this.jitter += (d - this.jitter) / 16;
    }
    this.transit = transit;
  }
  block(lsr: number, dlsr: number): Buffer {
    const b = Buffer.alloc(24);
    const extMax = this.cycles + this.maxSeq;
    const expected = this.base < 0 ? 0 : extMax - this.base + 1;
    const lost = Math.max(0, expected - this.received);
    const expectedInterval = expected - this.expectedPrior;
    const receivedInterval = this.received - this.receivedPrior;
    this.expectedPrior = expected;
    this.receivedPrior = this.received;
    const lostInterval = expectedInterval - receivedInterval;
    const fraction = expectedInterval <= 0 || lostInterval <= 0 ? 0 : Math.floor((lostInterval << 8) / expectedInterval);
    b.writeUInt32BE(this.ssrc >>> 0, 0);
    b[4] = fraction;
    b.writeUIntBE(lost & 0xffffff, 5, 3);
    b.writeUInt32BE(extMax >>> 0, 8);
    b.writeUInt32BE(Math.floor(this.jitter) >>> 0, 12);
    b.writeUInt32BE(lsr >>> 0, 16);
    b.writeUInt32BE(dlsr >>> 0, 20);
    return b;
  }
}

/** NTP time now: [seconds since 1900, fraction]. */
function ntpNow(): [number, number] {
  const ms = Date.now();
  const sec = Math.floor(ms / 1000) + 2208988800;
  const frac = Math.floor(((ms % 1000) / 1000) * 2 ** 32);
  return [sec >>> 0, frac >>> 0];
}

function rtpPacket(seq: number, ssrc: number, pt = 0): Buffer {
  const b = Buffer.alloc(172, 0xff);
  b[0] = 0x80;
  b[1] = pt;
  b.writeUInt16BE(seq & 0xffff, 2);
  b.writeUInt32BE((seq * 160) >>> 0, 4);
  b.writeUInt32BE(ssrc >>> 0, 8);
  return b;
}

interface PartyState {
  rtp: Socket;
  rtcp: Socket;
  ssrc: number;
  stats: ReceiverStats;
  sent: number;
  octets: number;
  /** Middle 32 bits of the last SR received from the other side, and when (ms). */
  lastSr: { middle: number; atMs: number } | null;
  peerRtp: number;
  peerRtcp: number;
  /** The interarrival jitter field of every report block this party sent, in RTP timestamp units. */
  reportedJitter: number[];
}

function compound(p: PartyState, extraDelayMs: number): Buffer {
  const [sec, frac] = ntpNow();
  const sr = Buffer.alloc(28);
  const blocks = p.stats.received > 0 ? 1 : 0;
  sr[0] = 0x80 | blocks;
  sr[1] = 200;
  sr.writeUInt16BE(6 + 6 * blocks, 2);
  sr.writeUInt32BE(p.ssrc >>> 0, 4);
  sr.writeUInt32BE(sec, 8);
  sr.writeUInt32BE(frac, 12);
  sr.writeUInt32BE((p.sent * 160) >>> 0, 16);
  sr.writeUInt32BE(p.sent >>> 0, 20);
  sr.writeUInt32BE(p.octets >>> 0, 24);
  const parts: Buffer[] = [sr];
  if (blocks) {
    let lsr = 0;
    let dlsr = 0;
    if (p.lastSr) {
      lsr = p.lastSr.middle;
      const heldMs = Date.now() - p.lastSr.atMs - extraDelayMs;
      dlsr = Math.max(0, Math.round((heldMs / 1000) * 65536));
    }
    const block = p.stats.block(lsr, dlsr);
    p.reportedJitter.push(block.readUInt32BE(12));
    parts.push(block);
  }
  const cname = Buffer.from('quality-test');
  const sdes = Buffer.alloc(4 + 4 + 2 + cname.length + 2);
  sdes[0] = 0x81;
  sdes[1] = 202;
  sdes.writeUInt16BE(sdes.length / 4 - 1, 2);
  sdes.writeUInt32BE(p.ssrc >>> 0, 4);
  sdes[8] = 1;
  sdes[9] = cname.length;
  cname.copy(sdes, 10);
  parts.push(sdes);
  return Buffer.concat(parts);
}

function sdp(port: number, codec = PCMU): string {
  return ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', `m=audio ${port} RTP/AVP ${codec.pt}`, `a=rtpmap:${codec.pt} ${codec.rtpmap}`, ''].join('\r\n');
}

function mPort(reply: BDict): number {
  const body = reply['sdp'];
  if (!Buffer.isBuffer(body)) throw new Error(`offer/answer failed: ${JSON.stringify(toPlain(reply))}`);
  const m = /m=audio (\d+) /.exec(body.toString('latin1'));
  if (!m) throw new Error('no m= line');
  return Number(m[1]);
}

export interface QualityRun {
  query: BDict;
  deleteReply: BDict;
  /** What B really saw of A's stream, and A of B's. */
  receivedAtB: number;
  receivedAtA: number;
  /** The jitter field of each report block a party sent (RTP timestamp units), keyed by the reporter's SSRC. */
  reportedJitter: Record<number, number[]>;
  /** A's RTP, RTCP and B's ports: the relay-side ports are in the SDP. */
  tags: { from: string; to: string };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runQualityCall(o: QualityOptions): Promise<QualityRun> {
  const ng = await NgRawClient.open(o.ngPort);
  const [aRtp, aRtcp] = await socketPair();
  const [bRtp, bRtcp] = await socketPair();
  const tags = { from: 'qa-from', to: 'qa-to' };
  try {
    const offer = await ng.request({ command: 'offer', 'call-id': o.callId, 'from-tag': tags.from, sdp: sdp(aRtp.port, o.codec) });
    const toB = mPort(offer.dict);
    const answer = await ng.request({
      command: 'answer',
      'call-id': o.callId,
      'from-tag': tags.from,
      'to-tag': tags.to,
      sdp: sdp(bRtp.port, o.codec),
    });
    const toA = mPort(answer.dict);
    const a: PartyState = { rtp: aRtp, rtcp: aRtcp, ssrc: o.ssrcA, stats: new ReceiverStats(), sent: 0, octets: 0, lastSr: null, peerRtp: toA, peerRtcp: toA + 1, reportedJitter: [] };
    const b: PartyState = { rtp: bRtp, rtcp: bRtcp, ssrc: o.ssrcB, stats: new ReceiverStats(), sent: 0, octets: 0, lastSr: null, peerRtp: toB, peerRtcp: toB + 1, reportedJitter: [] };
    for (const [me] of [[a], [b]] as const) {
      me.rtp.socket.on('message', (pkt) => me.stats.onPacket(pkt, Date.now()));
      me.rtcp.socket.on('message', (pkt) => {
        if (pkt.length >= 28 && pkt[1] === 200) me.lastSr = { middle: ((pkt.readUInt32BE(8) & 0xffff) << 16 | pkt.readUInt16BE(12)) >>> 0, atMs: Date.now() };
      });
    }
    const start = Date.now();
    let nextReport = start + o.reportMs / 2;
    for (let i = 0; i < o.packets; ++i) {
      const due = start + i * 20;
      const wait = due - Date.now();
      if (wait > 0) await sleep(wait);
      const seq = 1000 + i;
      const fromA = rtpPacket(seq, o.ssrcA, o.codec?.pt);
      a.sent++;
      a.octets += 160;
      const dropped = o.dropEvery > 0 && i % o.dropEvery === o.dropEvery - 1;
      const delayed = o.delayEvery > 0 && i % o.delayEvery === o.delayEvery - 1;
      if (!dropped) {
        if (delayed) setTimeout(() => a.rtp.socket.send(fromA, a.peerRtp, '127.0.0.1'), o.delayMs);
        else a.rtp.socket.send(fromA, a.peerRtp, '127.0.0.1');
      }
      b.sent++;
      b.octets += 160;
      b.rtp.socket.send(rtpPacket(seq, o.ssrcB, o.codec?.pt), b.peerRtp, '127.0.0.1');
      if (Date.now() >= nextReport) {
        nextReport += o.reportMs;
        a.rtcp.socket.send(compound(a, o.extraDelayMs), a.peerRtcp, '127.0.0.1');
        // B answers a little later, as a real endpoint's report timer would.
        setTimeout(() => b.rtcp.socket.send(compound(b, o.extraDelayMs), b.peerRtcp, '127.0.0.1'), 100 + o.extraDelayMs);
      }
    }
    await sleep(400);
    if (o.afterTraffic) await o.afterTraffic(tags);
    const query = await ng.request({ command: 'query', 'call-id': o.callId });
    const del = await ng.request({ command: 'delete', 'call-id': o.callId, 'from-tag': tags.from });
    return { query: query.dict, deleteReply: del.dict, receivedAtB: b.stats.received, receivedAtA: a.stats.received, reportedJitter: { [o.ssrcA]: a.reportedJitter, [o.ssrcB]: b.reportedJitter }, tags };
  } finally {
    for (const s of [aRtp, aRtcp, bRtp, bRtcp]) s.socket.close();
    ng.close();
  }
}
