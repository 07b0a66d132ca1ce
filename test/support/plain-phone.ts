/**
 * The media side of a plain SIP phone (RTP/AVP, separate RTCP on port+1) for the WebRTC tests: one leg per
 * m= line, on an even/odd port pair of 127.0.0.1. A leg counts the RTP and RTCP it receives and either sends
 * its own stream (PCMU at 20 ms, a bounded number of packets) or echoes what it gets under its own SSRC
 * (video: the browser's own frames come back decodable).
 */
import dgram from 'node:dgram';
import { freeMediaRange } from './free-ports';
import { rtpPacket } from './rtp-packets';

const LOOPBACK = '127.0.0.1';

/** RFC 5761 §4: payload types 64-95 after the marker bit are RTCP packet types 192-223. */
function isRtcp(packet: Buffer): boolean {
  if (packet.length < 2) return false;
  const pt = packet[1]! & 0x7f;
  return pt >= 64 && pt <= 95;
}

function bind(port: number): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4');
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, LOOPBACK, () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}

export interface Target {
  address: string;
  port: number;
}

export class PlainRtpLeg {
  /** RTP packets received on the RTP port. */
  rtpReceived = 0;
  /** RTCP packets received (on either port). */
  rtcpReceived = 0;
  /** RTP packets this leg sent (own stream or echo). */
  rtpSent = 0;
  /** Payload types seen in received RTP. */
  readonly payloadTypesSeen = new Set<number>();
  private target: Target | undefined;
  private echoing = false;
  private timer: NodeJS.Timeout | undefined;
  readonly ssrc = (0x5a000000 + Math.floor(Math.random() * 0xffffff)) >>> 0;

  private constructor(
    readonly kind: 'audio' | 'video',
    private readonly rtp: dgram.Socket,
    private readonly rtcp: dgram.Socket,
  ) {
    rtp.on('message', (packet) => this.onRtpPort(packet));
    rtcp.on('message', () => (this.rtcpReceived += 1));
  }

  static async open(kind: 'audio' | 'video'): Promise<PlainRtpLeg> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const { portMin } = await freeMediaRange(2);
      try {
        const rtp = await bind(portMin);
        try {
          return new PlainRtpLeg(kind, rtp, await bind(portMin + 1));
        } catch (err) {
          rtp.close();
          throw err;
        }
      } catch {
        // taken between the check and the bind by a concurrent test: try another pair
      }
    }
    throw new Error('no free even/odd port pair on 127.0.0.1 for a plain RTP leg');
  }

  get port(): number {
    return this.rtp.address().port;
  }

  /** Where this leg sends: the relay's address and port from the SDP the relay gave the phone. */
  sendTo(target: Target): void {
    this.target = target;
  }

  /** Sends its own PCMU stream (payload type `payloadType`, 160 bytes per 20 ms) until `maxPackets` are out. */
  startStream(payloadType: number, maxPackets: number): void {
    if (!this.target) throw new Error(`${this.kind} leg: sendTo() first`);
    let seq = Math.floor(Math.random() * 30000);
    this.timer = setInterval(() => {
      if (this.rtpSent >= maxPackets) {
        this.stopStream();
        return;
      }
      seq += 1;
      // 0xff is PCMU silence; a real phone's comfort level, decodable by the browser.
      const packet = rtpPacket({ seq, ssrc: this.ssrc, payloadType, payloadBytes: 160, marker: this.rtpSent === 0 });
      packet.fill(0xff, 12);
      this.send(packet);
    }, 20);
  }

  stopStream(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.echoing = false;
  }

  /** Sends every RTP packet received back to the target with this leg's SSRC, up to `maxPackets`. */
  startEcho(maxPackets: number): void {
    if (!this.target) throw new Error(`${this.kind} leg: sendTo() first`);
    this.echoing = true;
    this.echoLimit = maxPackets;
  }

  private echoLimit = 0;

  private onRtpPort(packet: Buffer): void {
    if (isRtcp(packet)) {
      this.rtcpReceived += 1;
      return;
    }
    if (packet.length < 12) return;
    this.rtpReceived += 1;
    this.payloadTypesSeen.add(packet[1]! & 0x7f);
    if (this.echoing && this.rtpSent < this.echoLimit) {
      const copy = Buffer.from(packet);
      copy.writeUInt32BE(this.ssrc, 8);
      this.send(copy);
    }
  }

  private send(packet: Buffer): void {
    const target = this.target;
    if (!target) return;
    this.rtpSent += 1;
    this.rtp.send(packet, target.port, target.address);
  }

  close(): void {
    this.stopStream();
    this.rtp.close();
    this.rtcp.close();
  }
}
