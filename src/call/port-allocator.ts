/**
 * Hands out local media ports of one interface from [portMin, portMax]: even RTP ports with RTP+1 for RTCP,
 * or single ports for rtcp-mux. It binds nothing; the data plane does, and reports foreign-held ports back
 * through `quarantine`.
 *
 * Ports are grouped into blocks {2k, 2k+1}. A block whose two ports are both free sits in the "whole" list;
 * a block with exactly one free port sits in the "half" list; a block with no free port is in neither. Both
 * lists are intrusive doubly linked lists over typed arrays, so every operation is O(1): acquire pops a
 * head, release appends at the tail (a freed port is handed out again as late as possible, as rtpengine
 * does, so a late packet for an old call rarely reaches a new one). The order is shuffled once at
 * construction so port use is unpredictable from outside.
 */
import { randomInt as cryptoRandomInt } from 'node:crypto';
import { PortsExhaustedError } from '../errors';

export interface PortAllocatorOptions {
  portMin: number;
  portMax: number;
  /** Uniform integer in [0, maxExclusive). Default: node:crypto randomInt. Inject a seeded one in tests. */
  randomInt?: (maxExclusive: number) => number;
  /** Monotonic milliseconds, for quarantine expiry. Default: performance.now(). */
  now?: () => number;
  /** How long a quarantined port stays out of rotation. Default 60 000 ms. */
  quarantineMs?: number;
}

export interface PortCounts {
  /** Ports in the range. */
  total: number;
  free: number;
  used: number;
  quarantined: number;
  /** Whole free even/odd blocks, i.e. how many more `acquirePair` calls can succeed right now. */
  freePairs: number;
}

const FREE = 0;
const USED = 1;
const QUARANTINED = 2;
/** A port of an edge block that lies outside [portMin, portMax]. */
const OUTSIDE = 3;

const LIST_NONE = 0;
const LIST_WHOLE = 1;
const LIST_HALF = 2;

const NIL = -1;
const DEFAULT_QUARANTINE_MS = 60_000;

export class PortAllocator {
  readonly portMin: number;
  readonly portMax: number;
  /** Port number of block 0's even port. */
  private readonly firstBase: number;
  /** Per port (index = port - firstBase): FREE, USED, QUARANTINED or OUTSIDE. */
  private readonly portState: Uint8Array;
  /** Per port: when its quarantine ends (valid while QUARANTINED). */
  private readonly quarantineUntil: Float64Array;
  /** Per block: which list it is in, and its neighbours there. */
  private readonly blockList: Uint8Array;
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  private readonly heads = [NIL, NIL, NIL];
  private readonly tails = [NIL, NIL, NIL];
  private readonly lengths = [0, 0, 0];
  /** Quarantine entries (port, deadline) in deadline order: the duration is constant, so append order is it. */
  private quarantinePorts: number[] = [];
  private quarantineDeadlines: number[] = [];
  private quarantineHead = 0;
  private readonly now: () => number;
  private readonly quarantineMs: number;
  private usedCount = 0;
  private quarantinedCount = 0;

  constructor(options: PortAllocatorOptions) {
    const { portMin, portMax } = options;
    if (!Number.isInteger(portMin) || !Number.isInteger(portMax) || portMin < 1 || portMax > 65535 || portMin > portMax) {
      throw new RangeError(`invalid port range ${portMin}-${portMax}`);
    }
    this.portMin = portMin;
    this.portMax = portMax;
    this.now = options.now ?? (() => performance.now());
    this.quarantineMs = options.quarantineMs ?? DEFAULT_QUARANTINE_MS;
    this.firstBase = portMin - (portMin % 2);
    const blockCount = Math.floor((portMax - this.firstBase) / 2) + 1;
    this.portState = new Uint8Array(blockCount * 2);
    this.quarantineUntil = new Float64Array(blockCount * 2);
    this.blockList = new Uint8Array(blockCount);
    this.prev = new Int32Array(blockCount).fill(NIL);
    this.next = new Int32Array(blockCount).fill(NIL);
    for (let i = 0; i < this.portState.length; i++) {
      const port = this.firstBase + i;
      if (port < portMin || port > portMax) this.portState[i] = OUTSIDE;
    }

    // Fisher-Yates over block indices, then file each block into the list its state calls for.
    const randomInt = options.randomInt ?? ((n: number) => cryptoRandomInt(n));
    const order = new Int32Array(blockCount);
    for (let i = 0; i < blockCount; i++) order[i] = i;
    for (let i = blockCount - 1; i > 0; i--) {
      const j = randomInt(i + 1);
      if (!Number.isInteger(j) || j < 0 || j > i) throw new RangeError(`randomInt(${i + 1}) returned ${j}`);
      const t = order[i]!;
      order[i] = order[j]!;
      order[j] = t;
    }
    for (const block of order) this.relist(block);
  }

  /** An even port P with P and P+1 both reserved for the caller. Throws PortsExhaustedError. */
  acquirePair(): number {
    this.expireQuarantine();
    const block = this.heads[LIST_WHOLE]!;
    if (block === NIL) throw new PortsExhaustedError();
    const index = block * 2;
    this.portState[index] = USED;
    this.portState[index + 1] = USED;
    this.usedCount += 2;
    this.relist(block);
    return this.firstBase + index;
  }

  /**
   * One port (rtcp-mux). An even port while whole free blocks remain, so RTP keeps the conventional even
   * port; after that the leftover halves. Throws PortsExhaustedError.
   */
  acquireSingle(): number {
    this.expireQuarantine();
    let block = this.heads[LIST_WHOLE]!;
    let index: number;
    if (block !== NIL) {
      index = block * 2;
    } else {
      block = this.heads[LIST_HALF]!;
      if (block === NIL) throw new PortsExhaustedError();
      index = this.portState[block * 2] === FREE ? block * 2 : block * 2 + 1;
    }
    this.portState[index] = USED;
    this.usedCount++;
    this.relist(block);
    return this.firstBase + index;
  }

  /**
   * Reserve a given port (and port+1 when `pair`), e.g. to restore a call's state or to put RTCP back on
   * RTP+1. Returns false, reserving nothing, when any of them is outside the range or in use.
   */
  reserveSpecific(port: number, pair = false): boolean {
    this.expireQuarantine();
    const ports = pair ? [port, port + 1] : [port];
    // A quarantined port may be taken: quarantine keeps a port another process held out of the random
    // rotation, while a restore (a foreign call taken over when the other relay died) needs exactly it.
    if (!ports.every((p) => this.stateOf(p) === FREE || this.stateOf(p) === QUARANTINED)) return false;
    for (const p of ports) {
      const index = p - this.firstBase;
      if (this.portState[index] === QUARANTINED) this.quarantinedCount--;
      this.portState[index] = USED;
      this.usedCount++;
      this.relist(index >> 1);
    }
    return true;
  }

  /**
   * Give a port back; it is handed out again after all other free ports. Returns false (and changes nothing)
   * when the port was not in use, e.g. a double release or a port that is quarantined.
   */
  release(port: number): boolean {
    if (this.stateOf(port) !== USED) return false;
    const index = port - this.firstBase;
    this.portState[index] = FREE;
    this.usedCount--;
    this.relist(index >> 1);
    return true;
  }

  /**
   * Another process holds this port: keep it out of rotation for `quarantineMs`, after which it becomes free
   * again. Works on a port the caller acquired (no release needed for it; its partner stays the caller's)
   * or on a free one. Returns false for a port outside the range.
   */
  quarantine(port: number): boolean {
    const state = this.stateOf(port);
    if (state === OUTSIDE) return false;
    const index = port - this.firstBase;
    if (state === USED) this.usedCount--;
    if (state !== QUARANTINED) this.quarantinedCount++;
    this.portState[index] = QUARANTINED;
    const deadline = this.now() + this.quarantineMs;
    this.quarantineUntil[index] = deadline;
    this.quarantinePorts.push(port);
    this.quarantineDeadlines.push(deadline);
    this.relist(index >> 1);
    return true;
  }

  inUse(port: number): boolean {
    return this.stateOf(port) === USED;
  }

  isQuarantined(port: number): boolean {
    return this.stateOf(port) === QUARANTINED;
  }

  counts(): PortCounts {
    this.expireQuarantine();
    const total = this.portMax - this.portMin + 1;
    return {
      total,
      free: total - this.usedCount - this.quarantinedCount,
      used: this.usedCount,
      quarantined: this.quarantinedCount,
      freePairs: this.lengths[LIST_WHOLE]!,
    };
  }

  private stateOf(port: number): number {
    if (!Number.isInteger(port) || port < this.portMin || port > this.portMax) return OUTSIDE;
    return this.portState[port - this.firstBase]!;
  }

  /** Free ports whose quarantine has run out; they join the tails like released ports. */
  private expireQuarantine(): void {
    if (this.quarantineHead === this.quarantinePorts.length) return;
    const now = this.now();
    while (this.quarantineHead < this.quarantinePorts.length) {
      // Entries are in deadline order, so the first one still running ends the scan.
      if (this.quarantineDeadlines[this.quarantineHead]! > now) break;
      const index = this.quarantinePorts[this.quarantineHead]! - this.firstBase;
      // Skip entries whose port was released meanwhile or quarantined again with a later deadline.
      if (this.portState[index] === QUARANTINED && this.quarantineUntil[index]! <= now) {
        this.portState[index] = FREE;
        this.quarantinedCount--;
        this.relist(index >> 1);
      }
      this.quarantineHead++;
    }
    // Drop the consumed prefix now and then so the queue does not grow without bound.
    if (this.quarantineHead > 1024 && this.quarantineHead * 2 > this.quarantinePorts.length) {
      this.quarantinePorts = this.quarantinePorts.slice(this.quarantineHead);
      this.quarantineDeadlines = this.quarantineDeadlines.slice(this.quarantineHead);
      this.quarantineHead = 0;
    }
  }

  /** Put a block into the list its free ports call for; a block that changes list goes to the tail. */
  private relist(block: number): void {
    const a = this.portState[block * 2] === FREE ? 1 : 0;
    const b = this.portState[block * 2 + 1] === FREE ? 1 : 0;
    const wanted = a + b === 2 ? LIST_WHOLE : a + b === 1 ? LIST_HALF : LIST_NONE;
    const current = this.blockList[block]!;
    if (wanted === current) return;
    if (current !== LIST_NONE) this.unlink(block, current);
    if (wanted !== LIST_NONE) this.append(block, wanted);
    this.blockList[block] = wanted;
  }

  private unlink(block: number, list: number): void {
    const p = this.prev[block]!;
    const n = this.next[block]!;
    if (p === NIL) this.heads[list] = n;
    else this.next[p] = n;
    if (n === NIL) this.tails[list] = p;
    else this.prev[n] = p;
    this.prev[block] = NIL;
    this.next[block] = NIL;
    this.lengths[list]!--;
  }

  private append(block: number, list: number): void {
    const tail = this.tails[list]!;
    this.prev[block] = tail;
    this.next[block] = NIL;
    if (tail === NIL) this.heads[list] = block;
    else this.next[tail] = block;
    this.tails[list] = block;
    this.lengths[list]!++;
  }
}
