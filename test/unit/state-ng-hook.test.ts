/** persistedCallId names the call the way the call manager keys it, so --state-dir writes the right call. */
import { describe, expect, it } from 'vitest';
import { idFromWire } from '../../src/ng/byte-string';
import { ngDict } from '../../src/ng/dict';
import { persistedCallId } from '../../src/state/ng-hook';

describe('persistedCallId', () => {
  it('returns the byte-string id of a call-id that is not UTF-8 (the call manager key)', () => {
    const raw = Buffer.from([0x78, 0xff, 0xfe]);
    const req = ngDict([['command', Buffer.from('offer')], ['call-id', raw]]);
    expect(persistedCallId(req)).toBe(idFromWire(raw));
    expect(persistedCallId(req)).toHaveLength(3);
  });

  it("finds the call-id under rtpengine's other spelling, `call id`", () => {
    expect(persistedCallId(ngDict([['command', Buffer.from('answer')], ['call id', Buffer.from('abc')]]))).toBe('abc');
  });

  it('is null for commands that change no stored call, and for a request without call-id', () => {
    expect(persistedCallId(ngDict([['command', Buffer.from('query')], ['call-id', Buffer.from('abc')]]))).toBeNull();
    expect(persistedCallId(ngDict([['command', Buffer.from('delete')]]))).toBeNull();
    expect(persistedCallId(ngDict([['call-id', Buffer.from('abc')]]))).toBeNull();
  });
});
