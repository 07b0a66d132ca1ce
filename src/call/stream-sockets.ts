/**
 * Gets sockets for streams: a port from the interface's allocator, bound by the data plane. A port that some
 * other process holds is quarantined and the next one tried, so a foreign listener never fails a call.
 */
import type { DataPlane, StreamRule } from '../dataplane/types';
import { BindError } from '../dataplane/types';
import { descriptorLimitText } from '../dataplane/rlimit';

/** Bind failures that mean "no descriptor left", not "this port is taken". */
const DESCRIPTOR_CODES: ReadonlySet<string> = new Set(['EMFILE', 'ENFILE']);
import type { InterfaceConfig } from '../config/types';
import { PortAllocator } from './port-allocator';
import { NgError, PortsExhaustedError, RestoreBindError } from '../errors';
import type { StreamState } from './state';
import type { Logger } from '../logger';

/** How many foreign-held ports in a row we skip before giving up. */
const BIND_ATTEMPTS = 16;

/** A rule that forwards nothing; the call manager installs the real one right after. */
const IDLE_RULE: StreamRule = {
  expected: null,
  learning: 'heuristic',
  strictSource: false,
  mediaHandover: false,
  asymmetric: false,
  sink: null,
  signalGeneration: 0,
};

export class StreamSockets {
  private readonly allocators = new Map<string, PortAllocator>();
  private nextId = 1;

  constructor(
    private readonly dataPlane: DataPlane,
    private readonly portMin: number,
    private readonly portMax: number,
    private readonly logger?: Logger,
    /** Told about every stream removed from the data plane. */
    private readonly onClosed?: (id: number) => void,
  ) {}

  /** A stream id no stream of this relay has (foreign calls come numbered by another relay). */
  freshId(): number {
    return this.nextId++;
  }

  /** Keep stream ids unique after a restore. */
  noteUsedId(id: number): void {
    if (id >= this.nextId) this.nextId = id + 1;
  }

  allocator(address: string): PortAllocator {
    let a = this.allocators.get(address);
    if (!a) {
      a = new PortAllocator({ portMin: this.portMin, portMax: this.portMax });
      this.allocators.set(address, a);
    }
    return a;
  }

  /**
   * Bind an RTP socket and, unless muxed, an RTCP socket on RTP+1. Returns both stream states (the muxed RTCP
   * stream shares the RTP socket). Nothing is left bound or reserved when it throws. `threadOf`: both on that
   * stream's I/O thread (a BUNDLE member's on its transport's, see StreamSocketSpec.threadOf).
   */
  openPair(iface: InterfaceConfig, muxed: boolean, threadOf?: number): { rtp: StreamState; rtcp: StreamState } {
    const alloc = this.allocator(iface.address);
    for (let attempt = 0; ; attempt++) {
      const port = muxed ? alloc.acquireSingle() : alloc.acquirePair();
      const rtp = this.state(iface, 'rtp', port, null, true);
      const rtcp = muxed ? this.state(iface, 'rtcp', port, rtp.id, false) : this.state(iface, 'rtcp', port + 1, null, true);
      try {
        this.bind(rtp, threadOf);
        try {
          this.bind(rtcp, threadOf);
        } catch (err) {
          this.dataPlane.removeStream(rtp.id);
          throw err;
        }
        return { rtp, rtcp };
      } catch (err) {
        const portTaken = err instanceof BindError && (err.code === 'EADDRINUSE' || err.code === 'EACCES');
        if (!portTaken || attempt + 1 >= BIND_ATTEMPTS) {
          alloc.release(port);
          if (!muxed) alloc.release(port + 1);
          if (portTaken) throw new PortsExhaustedError();
          // Out of descriptors: Kamailio reacts to rtpengine's "Ran out of ports" (tries another relay), so that
          // is the reply; the log says which limit it really was.
          if (err instanceof BindError && DESCRIPTOR_CODES.has(err.code)) {
            this.logger?.error({ code: err.code, address: err.address, port: err.port }, `cannot open a media socket: ${descriptorLimitText(err.code)}`);
            throw new PortsExhaustedError();
          }
          // Not about this port (e.g. the interface address is not on this host): say so, do not retry.
          if (err instanceof BindError) throw new NgError(`Cannot bind media socket on ${err.address}: ${err.code}`);
          throw err;
        }
        // Someone else holds one of these ports: keep them out of rotation for a while and try the next.
        this.logger?.warn({ address: err.address, port: err.port, code: err.code }, 'media port unavailable, skipping it');
        alloc.quarantine(port);
        if (!muxed) alloc.quarantine(port + 1);
      }
    }
  }

  /**
   * openPair on `port` (and port+1 unless muxed) when that is free on this address, as rtpengine gives one media
   * the same port on every address of its interface name; otherwise on any free port.
   */
  openPairNear(iface: InterfaceConfig, muxed: boolean, port: number): { rtp: StreamState; rtcp: StreamState } {
    const alloc = this.allocator(iface.address);
    if (alloc.reserveSpecific(port, !muxed)) {
      const rtp = this.state(iface, 'rtp', port, null, true);
      const rtcp = muxed ? this.state(iface, 'rtcp', port, rtp.id, false) : this.state(iface, 'rtcp', port + 1, null, true);
      try {
        this.bind(rtp);
        try {
          this.bind(rtcp);
        } catch (err) {
          this.dataPlane.removeStream(rtp.id);
          throw err;
        }
        return { rtp, rtcp };
      } catch (err) {
        alloc.release(port);
        if (!muxed) alloc.release(port + 1);
        // Taken by another process: any other port will do (openPair quarantines what it finds taken).
        if (!(err instanceof BindError)) throw err;
      }
    }
    return this.openPair(iface, muxed);
  }

  /**
   * A replacement RTCP stream: muxed on `rtp`'s socket, or back on a socket of its own (RTP+1 when free).
   * The caller closes the old one once it commits.
   */
  reopenRtcp(iface: InterfaceConfig, rtp: StreamState, muxed: boolean): StreamState {
    const alloc = this.allocator(iface.address);
    if (muxed) {
      const next = this.state(iface, 'rtcp', rtp.localPort, rtp.id, false);
      this.bind(next);
      return next;
    }
    // Leaving mux: a separate RTCP socket, preferably on RTP+1.
    const want = rtp.localPort + 1;
    const port = alloc.reserveSpecific(want) ? want : alloc.acquireSingle();
    const next = this.state(iface, 'rtcp', port, null, true);
    try {
      this.bind(next);
    } catch (err) {
      alloc.release(port);
      if (err instanceof BindError && DESCRIPTOR_CODES.has(err.code)) {
        this.logger?.error({ code: err.code, address: err.address }, `cannot open an RTCP socket: ${descriptorLimitText(err.code)}`);
      }
      throw err instanceof BindError ? new PortsExhaustedError() : err;
    }
    return next;
  }

  /**
   * Bind a restored stream again (src/state/): the same id and port, the port reserved in its allocator.
   * Throws RestoreBindError naming why; nothing stays reserved or bound then. `threadOf`: see bind().
   */
  rebind(stream: StreamState, threadOf?: number): void {
    if (stream.id === 0) return;
    this.noteUsedId(stream.id);
    const alloc = this.allocator(stream.localAddress);
    if (stream.ownsPort && !alloc.reserveSpecific(stream.localPort)) {
      throw new RestoreBindError(`port ${stream.localAddress}:${stream.localPort} is in use or outside --port-min..--port-max`);
    }
    try {
      this.bind(stream, threadOf);
    } catch (err) {
      if (stream.ownsPort) alloc.release(stream.localPort);
      if (err instanceof BindError) throw new RestoreBindError(`cannot bind ${err.address}:${err.port}: ${err.code}`);
      throw err;
    }
  }

  /** Remove the stream from the data plane and return its port. */
  close(stream: StreamState): void {
    if (stream.id === 0) return;
    this.dataPlane.removeStream(stream.id);
    this.onClosed?.(stream.id);
    if (stream.ownsPort) this.allocator(stream.localAddress).release(stream.localPort);
  }

  /** `threadOf`: on that stream's I/O thread (StreamSocketSpec.threadOf). */
  private bind(stream: StreamState, threadOf?: number): void {
    this.dataPlane.addStream(
      {
        id: stream.id,
        component: stream.component,
        localAddress: stream.localAddress,
        localPort: stream.localPort,
        // Absent fields as undefined rather than spread in: one object shape for every bind.
        muxedWith: stream.muxedWith ?? undefined,
        threadOf: stream.muxedWith === null ? threadOf : undefined,
      },
      IDLE_RULE,
    );
  }

  private state(
    iface: InterfaceConfig,
    component: 'rtp' | 'rtcp',
    port: number,
    muxedWith: number | null,
    ownsPort: boolean,
  ): StreamState {
    return {
      id: this.nextId++,
      component,
      interfaceName: iface.name,
      localAddress: iface.address,
      localPort: port,
      advertisedAddress: iface.advertised,
      muxedWith,
      advertised: null,
      expected: null,
      ownsPort,
    };
  }
}
