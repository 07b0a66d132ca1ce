/**
 * The endpoint a stream's senders read (PublishedAddr) has two writers: the JS thread publishes a
 * re-signalled party's address ahead of the owner thread's Update, and the owner thread stores what it
 * applied or learned. An owner that runs an older, still-queued Update after the JS thread published a
 * newer one must not put the older party back: a packet sent after settled() would go there. (Seen as a
 * flake of dataplane-fences' "obeys an update of a live stream" on a loaded VM.)
 */
import { describe, expect, it } from 'vitest';
import { nativeAddonExport } from '../../src/dataplane/native';

type Step = [op: 'publish' | 'applied' | 'store', port: number, gen: number];
interface PublishedAddrTest {
  play(steps: Step[]): { port: number; stored: boolean }[];
}
function isPublishedAddrTest(v: unknown): v is PublishedAddrTest {
  return typeof v === 'object' && v !== null && typeof (v as Record<string, unknown>).play === 'function';
}
const binding = nativeAddonExport('publishedAddrTest');
if (!isPublishedAddrTest(binding)) throw new Error('native addon has no publishedAddrTest binding (rebuild it: npm run build:native)');
const { play } = binding;

describe('PublishedAddr: who may store the endpoint', () => {
  it("an owner still applying command 1 does not undo command 2's published address", () => {
    // Attach (gen 1) published C; an Update (gen 2) published B; the owner runs the Attach only now.
    const r = play([['publish', 3000, 1], ['publish', 4000, 2], ['applied', 3000, 1]]);
    expect(r.map((x) => x.port)).toEqual([3000, 4000, 4000]);
    expect(r[2]!.stored).toBe(false);
  });

  it('once the owner ran the newest command, what it applies or learns is stored', () => {
    const r = play([['publish', 3000, 1], ['publish', 4000, 2], ['applied', 4000, 2], ['applied', 5000, 2]]);
    expect(r.map((x) => x.port)).toEqual([3000, 4000, 4000, 5000]);
    expect(r.every((x) => x.stored)).toBe(true);
  });

  it('an owner that learned a source under the old rule does not override the re-signalled party', () => {
    const r = play([['publish', 3000, 1], ['applied', 3000, 1], ['applied', 3100, 1], ['publish', 4000, 2], ['applied', 3200, 1]]);
    expect(r.map((x) => x.port)).toEqual([3000, 3000, 3100, 4000, 4000]);
  });

  it('generations compare across the 32-bit wrap', () => {
    const max = 0xffffffff;
    const r = play([['publish', 3000, max], ['publish', 4000, 0], ['applied', 3000, max], ['applied', 5000, 0]]);
    expect(r.map((x) => x.port)).toEqual([3000, 4000, 4000, 5000]);
  });

  it('a plain store (one writer) always stores', () => {
    const r = play([['publish', 3000, 5], ['store', 6000, 0]]);
    expect(r.map((x) => x.port)).toEqual([3000, 6000]);
  });
});
