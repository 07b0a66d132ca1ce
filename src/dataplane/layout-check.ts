/**
 * The load-time check of the layouts JS and the addon share (rule slots, counter slots): the addon reports
 * its slot names in order, and any difference means an addon built from other sources than this JS.
 */

/** Whether the addon's names are ours, in the same order. */
export function sameNames(ours: readonly string[], native: readonly string[] | undefined): boolean {
  return native !== undefined && native.length === ours.length && ours.every((name, i) => native[i] === name);
}

/** The error for an addon whose `what` layout differs from the one `file` defines (`ours`, as text). */
export function layoutMismatch(what: string, native: unknown, file: string, ours: string): Error {
  return new Error(`native engine's ${what} layout ${JSON.stringify(native ?? null)} differs from ${file} (${ours}): rebuild it (npm run build:native)`);
}
