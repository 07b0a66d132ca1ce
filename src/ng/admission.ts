/**
 * Admission of ng datagrams under overload: the listener hands each datagram here the moment libuv reads
 * it, and this queue runs them in slices of bounded length, yielding to the event loop in between. So:
 *
 *  - requests wait in this queue, where their age is known, instead of in the kernel's socket buffer, where
 *    it is not and which drops them silently when full: libuv reads at most 32 datagrams per wake-up, so
 *    while wake-ups keep bringing full batches the queue only reads (see drain) and runs a slice once the
 *    socket is empty, or after `maxReadTurns` turns of reading;
 *  - pings (`urgent`) skip the queue: a proxy that pings a busy relay learns it is alive, not that it is
 *    behind;
 *  - a request that waited longer than `maxWaitMs` is handed on marked late: the server then answers a new
 *    `offer` with rtpengine's load-limit reply at once (see load-limit.ts) instead of doing work whose reply
 *    the proxy has stopped waiting for. Everything else still runs: pings stay prompt, answers and deletes
 *    finish calls that exist (shedding a delete would keep the call's ports for offer-timeout), and
 *    retransmits are answered from the cookie cache before any of this matters.
 *
 * Past capacity the relay thus keeps completing calls at its capacity and refuses the rest quickly, rather
 * than falling behind on everything.
 */
import { loadLimitReply } from './load-limit';
import type { NgDict } from './types';

export interface AdmissionOptions {
  /** A request older than this when its turn comes is late (new offers get the load-limit reply). */
  maxWaitMs: number;
  /** Work at most this long before the event loop may read the socket again. */
  sliceMs: number;
  /** Turns in a row that only read (full batches came in) before a slice runs regardless. */
  maxReadTurns: number;
}

/**
 * Receive buffer of the ng socket: room for a few thousand requests, so a stall of the JS thread (GC, a
 * busy CPU) delays them, to be answered or refused by age here, rather than making the kernel drop them
 * unseen. The kernel caps it at net.core.rmem_max.
 */
export const NG_RECEIVE_BUFFER_BYTES = 4 << 20;

/** 1 s is Kamailio's default ng timeout: an offer that waited 300 ms would mostly be answered too late. */
export const DEFAULT_ADMISSION: AdmissionOptions = { maxWaitMs: 300, sliceMs: 5, maxReadTurns: 64 };

/** libuv's unix/udp.c reads at most this many datagrams each time the socket polls readable. */
export const LIBUV_READS_PER_WAKEUP = 32;

export interface AdmissionStats {
  /** Requests handed on late. */
  late: number;
  /** The longest wait seen, ms. */
  maxWaitMs: number;
  /** Requests queued right now. */
  queued: number;
}

interface Entry<T> {
  item: T;
  arrivedMs: number;
}

export class AdmissionQueue<T> {
  // A ring would spare the shifts, but `head` makes the array a queue at O(1) per item just as well.
  private queue: Entry<T>[] = [];
  private head = 0;
  private scheduled = false;
  private late = 0;
  private longestWaitMs = 0;
  /** Requests offered since the last drain (a full libuv batch means the socket may hold more). */
  private offeredThisTurn = 0;
  private readTurns = 0;

  constructor(
    private readonly options: AdmissionOptions,
    /** Runs one request; `late` says it waited longer than maxWaitMs. Must not throw. */
    private readonly deliver: (item: T, late: boolean) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** `urgent` (a ping): runs at once, ahead of everything queued. */
  offer(item: T, urgent = false): void {
    if (urgent) {
      this.deliver(item, false);
      return;
    }
    this.offeredThisTurn++;
    this.queue.push({ item, arrivedMs: this.now() });
    this.schedule();
  }

  stats(): AdmissionStats {
    return { late: this.late, maxWaitMs: this.longestWaitMs, queued: this.queue.length - this.head };
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // An immediate runs after the poll phase: every datagram libuv read in this turn is queued first.
    setImmediate(() => this.drain());
  }

  private drain(): void {
    this.scheduled = false;
    const fullBatch = this.offeredThisTurn >= LIBUV_READS_PER_WAKEUP;
    this.offeredThisTurn = 0;
    if (fullBatch && this.readTurns < this.options.maxReadTurns) {
      // More is probably waiting in the kernel: read it first (cheap), so that its age is seen here.
      this.readTurns++;
      this.schedule();
      return;
    }
    this.readTurns = 0;
    const sliceEnd = this.now() + this.options.sliceMs;
    while (this.head < this.queue.length) {
      const entry = this.queue[this.head]!;
      this.queue[this.head] = undefined as unknown as Entry<T>; // let the datagram go
      this.head++;
      const start = this.now();
      const waited = start - entry.arrivedMs;
      if (waited > this.longestWaitMs) this.longestWaitMs = waited;
      const late = waited > this.options.maxWaitMs;
      if (late) this.late++;
      this.deliver(entry.item, late);
      if (this.now() >= sliceEnd) break;
    }
    if (this.head >= this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else {
      if (this.head > 1024) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      this.schedule();
    }
  }
}

/**
 * Whether a datagram is (most likely) a ping, judged from its bytes without decoding: small and naming
 * the command (`4:ping` in bencode, `"ping"` in JSON). A wrong guess only runs a small request early.
 */
export function looksLikePing(datagram: Buffer): boolean {
  return datagram.length <= 96 && (datagram.includes('4:ping') || datagram.includes('"ping"'));
}

/** The message of the load-limit reply (rtpengine words its limits' messages alike). */
export const OVERLOAD_MESSAGE = 'Overloaded: request waited too long';

/**
 * What a late request gets instead of running: the load-limit reply for a new offer, null (= run it) for
 * everything else (see the module comment for why only offers are refused).
 */
export function shedReply(command: string, request: NgDict): NgDict | null {
  return command === 'offer' ? loadLimitReply(request, OVERLOAD_MESSAGE) : null;
}
