/**
 * A restore takes the port it needs even when it is quarantined: a standby that met the other relay's ports
 * while they were held quarantines them, and must still bind a foreign call on them once that relay died.
 */
import { describe, expect, it } from 'vitest';
import { PortAllocator } from '../../src/call/port-allocator';

describe('PortAllocator.reserveSpecific and quarantine', () => {
  it('takes a quarantined port (counted as used, no longer as quarantined), and a used one still not', () => {
    let now = 0;
    const a = new PortAllocator({ portMin: 30000, portMax: 30009, now: () => now });
    expect(a.quarantine(30004)).toBe(true);
    expect(a.counts().quarantined).toBe(1);
    expect(a.reserveSpecific(30004)).toBe(true);
    expect(a.inUse(30004)).toBe(true);
    expect(a.counts()).toMatchObject({ quarantined: 0, used: 1 });
    expect(a.reserveSpecific(30004)).toBe(false);
    // The quarantine's expiry later leaves the port in use.
    now = 120_000;
    expect(a.reserveSpecific(30006)).toBe(true);
    expect(a.inUse(30004)).toBe(true);
    expect(a.release(30004)).toBe(true);
  });
});
