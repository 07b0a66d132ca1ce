/**
 * One native engine shared by the tests of a file, on real loopback sockets: created before them (with
 * environment overrides its constructor reads, e.g. a shortened DTLS or ICE timer), its events collected, and
 * after each test the streams it added removed, the parties closed and the events cleared.
 */
import { afterAll, afterEach, beforeAll } from 'vitest';
import { createNativeDataPlane } from '../../src/dataplane/native';
import type { DataPlane, EngineEvent, StreamCounters } from '../../src/dataplane/types';
import { Party } from './rtp-packets';

export const LO = '127.0.0.1';

export interface EngineHarnessOptions {
  threads: number;
  /** Set while the engine is created (its constructor reads them), then removed. */
  env?: Record<string, string>;
}

export class EngineHarness {
  private current: DataPlane | null = null;
  /** Every event the engine emitted in this test (cleared in place: references stay valid). */
  readonly events: EngineEvent[] = [];
  private parties: Party[] = [];
  private streamIds: number[] = [];

  get engine(): DataPlane {
    if (!this.current) throw new Error('the engine exists only while the tests run');
    return this.current;
  }

  start(options: EngineHarnessOptions): void {
    const env = options.env ?? {};
    Object.assign(process.env, env);
    try {
      this.current = createNativeDataPlane({ threads: options.threads, receiveBufferBytes: 0 });
    } finally {
      for (const name of Object.keys(env)) delete process.env[name];
    }
    this.current.onEvents((batch) => this.events.push(...batch));
  }

  /** Streams to remove after the test. */
  track(...ids: number[]): void {
    this.streamIds.push(...ids);
  }

  /** A stream the test removed itself. */
  untrack(id: number): void {
    this.streamIds = this.streamIds.filter((x) => x !== id);
  }

  clearEvents(): void {
    this.events.length = 0;
  }

  // Arrow properties: a test file can take them out of the harness (`const { party, counters } = h`).
  /** A party on loopback, closed after the test. */
  readonly party = async (): Promise<Party> => {
    const p = await Party.open(LO);
    this.parties.push(p);
    return p;
  };

  readonly counters = (id: number): StreamCounters => {
    const c = this.engine.readCounters([id]).get(id);
    if (!c) throw new Error(`no counters for ${id}`);
    return c;
  };

  async afterEach(): Promise<void> {
    for (const id of this.streamIds) this.engine.removeStream(id);
    this.streamIds = [];
    await Promise.all(this.parties.map((p) => p.close()));
    this.parties = [];
    this.clearEvents();
  }

  close(): void {
    this.current?.close();
    this.current = null;
  }
}

/** The harness with its hooks registered in the calling test file. */
export function useEngineHarness(options: EngineHarnessOptions): EngineHarness {
  const h = new EngineHarness();
  beforeAll(() => h.start(options));
  afterAll(() => h.close());
  afterEach(() => h.afterEach());
  return h;
}
