/** The one SRTP suite table (src/dataplane/srtp-suites.ts) against what the native SRTP core says it implements. */
import { describe, expect, it } from 'vitest';
import { SRTP_SUITES, srtpSuite } from '../../src/dataplane/srtp-suites';
import { loadSrtpTestBinding } from '../../src/dataplane/srtp-binding';
import { SDES_SUITES, sdesSuite } from '../../src/sdp/crypto';

describe('SRTP suite table', () => {
  it('lists exactly the native suites, with the native key, salt and tag lengths', () => {
    const native = loadSrtpTestBinding().suites();
    const byName = (a: { name: string }, b: { name: string }): number => a.name.localeCompare(b.name);
    expect([...SRTP_SUITES].sort(byName)).toEqual([...native].sort(byName));
  });

  it('is what SDES negotiates (the same objects, not a copy)', () => {
    expect(SDES_SUITES).toBe(SRTP_SUITES);
    for (const s of SRTP_SUITES) expect(sdesSuite(s.name)).toBe(srtpSuite(s.name));
    expect(srtpSuite('F8_128_HMAC_SHA1_80')).toBeUndefined();
  });
});
