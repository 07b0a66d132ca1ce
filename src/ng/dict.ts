/** Building ng dicts: objects without inherited keys whose own keys keep the order given (rtpengine does not sort). */
import type { NgDict, NgValue } from './types';

/**
 * The prototype of every built dict: an object with no properties and a null prototype, so that no key
 * (`__proto__`, `constructor`, `toString`) is inherited or special, as with Object.create(null). Unlike
 * Object.create(null), which V8 keeps in dictionary mode (a hash table per object), `new` of a function with
 * this prototype gives a fast-mode object: replies of the same kind share one hidden class, which is cheaper
 * to build, smaller, and what the encoder reads fastest (a `delete` reply is ~45 such dicts).
 */
const NO_INHERITED_KEYS: object = Object.create(null) as object;
function DictObject(): void {}
DictObject.prototype = NO_INHERITED_KEYS;
const newDict = (): NgDict => new (DictObject as unknown as new () => NgDict)();

export function ngDict(entries: ReadonlyArray<readonly [string, NgValue]> = []): NgDict {
  const d = newDict();
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    d[entry[0]] = entry[1];
  }
  return d;
}
