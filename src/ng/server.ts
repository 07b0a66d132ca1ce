/**
 * The ng control transport over UDP (rtpengine's `listen-ng`): one datagram `<cookie><SP><dict>` per
 * message, the reply datagram goes back to the sender. Decoding, the cookie cache, the handler call, error
 * replies and counters are the transport-neutral NgProcessor's (processor.ts); this file only owns the
 * socket. The error strings are re-exported here for existing importers.
 */
import dgram from 'node:dgram';
import dns from 'node:dns';
import net from 'node:net';
import type { Logger } from '../logger';
import { fitDatagram } from './datagram-fit';
import { NgProcessor, type NgProcessorOptions, type NgServerStats } from './processor';
import { AdmissionQueue, DEFAULT_ADMISSION, NG_RECEIVE_BUFFER_BYTES, looksLikePing, type AdmissionOptions, type AdmissionStats } from './admission';

export {
  ERR_BAD_BENCODE,
  ERR_BAD_FORMAT,
  ERR_BAD_JSON,
  ERR_INTERNAL,
  ERR_NO_COMMAND,
  ERR_NO_PAYLOAD,
  type NgCommandStats,
  type NgProxyStats,
  type NgServerStats,
} from './processor';

/** Either a processor shared with other transports, or what it takes to make one for this socket alone. */
export type NgServerOptions = {
  /** Listen address, IPv4 or IPv6 literal. */
  address: string;
  /** 0 = pick a free port (tests). */
  port: number;
  logger: Logger;
  /** Overload shedding (admission.ts); default DEFAULT_ADMISSION. */
  admission?: AdmissionOptions;
} & ({ processor: NgProcessor } | NgProcessorOptions);

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string, family: number) => void;

/**
 * The socket's address lookup. A reply goes to its request's source, always an IP literal, so it is answered
 * at once: dgram's send() then hands the datagram to the kernel inside the call. dns.lookup answers a literal
 * only on the next tick, which comes after every microtask of the current drain, i.e. after the other commands
 * that the same batch of datagrams started (measured at 500 cycles/s: a delete's reply left ~50 µs later
 * than it was ready, at the median).
 */
export function literalLookup(hostname: string, options: dns.LookupOneOptions | number, callback: LookupCallback): void {
  const family = net.isIP(hostname);
  if (family !== 0) {
    callback(null, hostname, family);
    return;
  }
  dns.lookup(hostname, typeof options === 'number' ? { family: options } : options, callback);
}

export class NgServer {
  private readonly socket: dgram.Socket;
  private readonly logger: Logger;
  readonly processor: NgProcessor;
  private listening = false;
  private closed = false;
  private readonly admission: AdmissionQueue<{ msg: Buffer; rinfo: dgram.RemoteInfo }>;

  constructor(private readonly options: NgServerOptions) {
    if (net.isIP(options.address) === 0) throw new TypeError(`listen address is not an IP literal: ${options.address}`);
    this.logger = options.logger;
    this.processor = 'processor' in options ? options.processor : new NgProcessor(options);
    this.socket = dgram.createSocket({
      type: net.isIPv6(options.address) ? 'udp6' : 'udp4',
      recvBufferSize: NG_RECEIVE_BUFFER_BYTES,
      lookup: literalLookup,
    });
    // Datagrams wait in our own queue, where their age is seen, not in the kernel's (admission.ts).
    this.admission = new AdmissionQueue(options.admission ?? DEFAULT_ADMISSION, ({ msg, rinfo }, late) => {
      void this.onDatagram(msg, rinfo, late);
    });
    this.socket.on('message', (msg, rinfo) => this.admission.offer({ msg, rinfo }, looksLikePing(msg)));
    // A runtime socket error (e.g. ICMP-induced, or a reply the kernel refused) must not crash the relay.
    this.socket.on('error', (err) => {
      this.logger.error({ err }, 'ng socket error');
    });
  }

  /** Binds the socket; resolves with the bound address (useful with port 0). */
  listen(): Promise<{ address: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.socket.once('error', onError);
      this.socket.bind(this.options.port, this.options.address, () => {
        this.socket.off('error', onError);
        this.listening = true;
        const a = this.socket.address();
        this.logger.info({ address: a.address, port: a.port }, 'ng control listening');
        resolve({ address: a.address, port: a.port });
      });
    });
  }

  address(): { address: string; port: number } {
    const a = this.socket.address();
    return { address: a.address, port: a.port };
  }

  /** Releases the socket. Commands still running finish, but their replies are not sent. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    if (!this.listening) {
      this.socket.close();
      return Promise.resolve();
    }
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }

  /** A snapshot of the processor's counters (shared with the other transports when the processor is). */
  stats(): NgServerStats {
    return this.processor.stats();
  }

  /** How long requests wait for their turn, and how many were late (see admission.ts). */
  admissionStats(): AdmissionStats {
    return this.admission.stats();
  }

  private async onDatagram(msg: Buffer, rinfo: dgram.RemoteInfo, late: boolean): Promise<void> {
    let reply: Buffer | null;
    try {
      reply = await this.handleDatagram(msg, { address: rinfo.address, port: rinfo.port }, late);
    } catch (err) {
      // handleMessage already converts every failure into a reply; this is the last line of defence.
      this.logger.error({ err, remote: rinfo.address }, 'ng datagram handling failed');
      return;
    }
    if (!reply || this.closed) return;
    // A datagram cannot carry more than 65,507 bytes: a bigger reply becomes a short error saying so (the
    // TCP, HTTP and WebSocket transports carry the whole reply).
    const datagram = fitDatagram(reply);
    if (datagram !== reply) this.logger.warn({ remote: `${rinfo.address}:${rinfo.port}`, bytes: reply.length }, 'ng reply too large for UDP');
    if (!datagram) return;
    // No callback: Node then completes the send synchronously when the kernel takes the datagram at once
    // (loopback, LAN), where a callback costs the JS thread a deferred completion per reply (about half of a
    // send's 20-30 µs on the 2-vCPU VMs here). A failed send arrives as the socket's 'error' event (logged
    // above, with the address and port the error names).
    this.socket.send(datagram, rinfo.port, rinfo.address);
  }

  /** One datagram in, the reply datagram out, or null when it has to be dropped (no cookie). */
  handleDatagram(msg: Buffer, remote: { address: string; port: number }, late = false): Promise<Buffer | null> {
    return this.processor.handleMessage(msg, { ...remote, transport: 'udp' }, late);
  }
}
