/** Flags ngrelay acts on (or accepts as no-ops, as rtpengine does); anything else is logged as unknown. */
export const KNOWN_FLAGS: ReadonlySet<string> = new Set([
  'trust-address',
  'SIP-source-address',
  'symmetric',
  'asymmetric',
  'strict-source',
  'media-handover',
  'recrypt',
  'port-latching',
  'no-port-latching',
  'loop-protect',
  'record-call',
  'fatal',
  'fast',
  'to-tag',
  'generate-mid',
  'trickle-ICE',
]);
