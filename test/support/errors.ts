/** Checking a thrown error by its class (which failure it is) and its message (what a client or operator reads). */
import { expect } from 'vitest';

/**
 * Asserts that `fn` throws an instance of `cls` whose message contains `message` (a string) or matches it (a
 * RegExp); returns the error for checks of its other fields.
 */
export function expectThrows<E extends Error>(fn: () => unknown, cls: abstract new (...args: never[]) => E, message: string | RegExp): E {
  let threw = false;
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    threw = true;
    thrown = err;
  }
  expect(threw, `expected a ${cls.name}`).toBe(true);
  expect(thrown).toBeInstanceOf(cls);
  const text = (thrown as Error).message;
  if (typeof message === 'string') expect(text).toContain(message);
  else expect(text).toMatch(message);
  return thrown as E;
}
