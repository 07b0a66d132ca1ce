/**
 * How stream counters come back from the native engine: readCounters fills a Float64Array, COUNTER_SLOTS
 * numbers per stream, and returns per stream the endpoint's address (or, for a stream with ICE or DTLS, an
 * object with the address and those statuses, built natively). The StreamCounters objects are made here, in
 * JS, where an object literal is cheap; made natively, a dozen napi_set_named_property calls per stream (each
 * internalizing its key) were most of a `delete`'s time in the addon.
 *
 * COUNTER_SLOTS must equal the addon's `counterLayout` (native/src/addon.cpp kCounterSlotNames): the loader
 * checks it at start and a test checks it too.
 */
import type { DtlsStatus, Endpoint, IceStatus, StreamCounters } from './types';
import { layoutMismatch, sameNames } from './layout-check';

export const COUNTER_SLOTS = [
  'present',
  'packets',
  'bytes',
  'errors',
  'hasSrtp',
  'srtpAuthFailed',
  'srtpReplayed',
  'lastPacketMs',
  'endpoint.family',
  'endpoint.port',
  'confirmed',
  'hasRtp',
  'ssrc',
  'lastSeq',
  'hasBundle',
  'bundleUnmatched',
  'kernelPath',
  'inKernel',
  'kernelPackets',
  'userspaceLastPacketMs',
  'kernelLastPacketMs',
] as const;

type SlotName = (typeof COUNTER_SLOTS)[number];
const SLOT = Object.fromEntries(COUNTER_SLOTS.map((name, i) => [name, i])) as Record<SlotName, number>;
const STRIDE = COUNTER_SLOTS.length;

/** What readCounters returns per stream besides its numbers. */
export type CounterAux = string | null | { address: string | null; ice?: IceStatus; dtls?: DtlsStatus };

/** Throws when the addon was built with another layout (a stale native build). */
export function checkCounterLayout(native: readonly string[] | undefined): void {
  if (!sameNames(COUNTER_SLOTS, native)) throw layoutMismatch('counter', native, 'src/dataplane/counter-unpacking.ts', COUNTER_SLOTS.join(','));
}

/** The buffer readCounters writes into, grown as needed and reused (every call is synchronous). */
export class CounterBuffer {
  private slots = new Float64Array(STRIDE * 16);

  /** A buffer for `count` streams. */
  forStreams(count: number): Float64Array {
    if (this.slots.length < count * STRIDE) this.slots = new Float64Array(Math.max(count, this.slots.length / STRIDE * 2) * STRIDE);
    return this.slots;
  }
}

/** Stream `i`'s counters from what readCounters wrote; null when the engine has no such stream. */
export function unpackCounters(slots: Float64Array, i: number, aux: CounterAux | undefined): StreamCounters | null {
  const base = i * STRIDE;
  if (slots[base + SLOT.present] !== 1) return null;
  const at = (slot: number): number => slots[base + slot]!;
  const address = typeof aux === 'object' && aux !== null ? aux.address : (aux ?? null);
  const family = at(SLOT['endpoint.family']);
  const endpoint: Endpoint | null =
    family === 0 || address === null ? null : { family: family === 4 ? 'IPv4' : 'IPv6', address, port: at(SLOT['endpoint.port']) };
  const hasRtp = at(SLOT.hasRtp) === 1;
  // One literal for what every stream has; the optional keys only where the engine has them, as before.
  const c: StreamCounters = {
    packets: at(SLOT.packets),
    bytes: at(SLOT.bytes),
    errors: at(SLOT.errors),
    lastPacketMs: at(SLOT.lastPacketMs),
    endpoint,
    confirmed: at(SLOT.confirmed) === 1,
    ssrc: hasRtp ? at(SLOT.ssrc) : null,
    lastSeq: hasRtp ? at(SLOT.lastSeq) : null,
  };
  if (at(SLOT.hasSrtp) === 1) {
    c.srtpAuthFailed = at(SLOT.srtpAuthFailed);
    c.srtpReplayed = at(SLOT.srtpReplayed);
  }
  if (typeof aux === 'object' && aux !== null) {
    if (aux.ice) c.ice = aux.ice;
    if (aux.dtls) c.dtls = aux.dtls;
  }
  if (at(SLOT.hasBundle) === 1) c.bundleUnmatched = at(SLOT.bundleUnmatched);
  if (at(SLOT.kernelPath) === 1) {
    c.inKernel = at(SLOT.inKernel) === 1;
    c.kernelPackets = at(SLOT.kernelPackets);
    c.userspaceLastPacketMs = at(SLOT.userspaceLastPacketMs);
    c.kernelLastPacketMs = at(SLOT.kernelLastPacketMs);
  }
  return c;
}
