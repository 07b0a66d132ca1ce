/**
 * Values of an ng message. Bencode strings stay Buffers (SDP is bytes); integers are numbers.
 * A dict is a null-prototype object whose key order is the order keys were added (replies are not sorted,
 * like rtpengine's).
 */
export type NgValue = Buffer | string | number | NgValue[] | NgDict;
export interface NgDict {
  [key: string]: NgValue;
}

/** What the transport hands to the command layer: the decoded dict plus where it came from. */
export interface NgRequestContext {
  remote: { address: string; port: number };
  /** 'bencode' or 'json': the reply is encoded the same way. */
  encoding: 'bencode' | 'json';
}

/** The command layer: returns the reply dict, or throws NgError for `result: error`. */
export type NgHandler = (request: NgDict, context: NgRequestContext) => Promise<NgDict> | NgDict;
