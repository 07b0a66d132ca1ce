/**
 * Types for the test/bench-only SRTP surface of the addon (`srtpTest`, native/src/srtp_binding.cpp). The
 * forwarding engine uses the SRTP core natively; nothing here is on the packet path.
 */
import { nativeAddonExport } from './native';
import type { SrtpSuiteName } from './types';
import type { SrtpSuite } from './srtp-suites';

export type { SrtpSuiteName } from './types';

/** Result names of native SrtpResult (srtpResultName in native/src/srtp.cpp). */
export type SrtpResultName = 'ok' | 'auth-failed' | 'replayed' | 'malformed' | 'no-room' | 'mki-mismatch' | 'crypto-error';

export interface SrtpContextOptions {
  initialRoc?: number;
  encryptRtp?: boolean;
  encryptRtcp?: boolean;
  authRtp?: boolean;
  mki?: Buffer;
  initialSrtcpIndex?: number;
  /** AEAD only: key/salt are session keys (RFC 7714 test vectors), no key derivation. */
  testUseAsSessionKeys?: boolean;
}

export interface SrtpOutcome {
  result: SrtpResultName;
  /** The resulting packet when result is 'ok', else null. */
  packet: Buffer | null;
}

export interface SrtpTestContext {
  protectRtp(packet: Buffer): SrtpOutcome;
  unprotectRtp(packet: Buffer): SrtpOutcome;
  protectRtcp(packet: Buffer): SrtpOutcome;
  unprotectRtcp(packet: Buffer): SrtpOutcome;
  stats(): { authFailed: number; replayed: number; malformed: number; otherErrors: number };
  overhead(): { rtp: number; rtcp: number };
  sameKeysAs(other: SrtpTestContext): boolean;
}

/** What the native addon reports per suite: the same fields as the table in srtp-suites.ts. */
export type SrtpSuiteDescription = SrtpSuite;

export interface SrtpSessionKeys {
  rtpKey: Buffer;
  rtpAuth: Buffer;
  rtpSalt: Buffer;
  rtcpKey: Buffer;
  rtcpAuth: Buffer;
  rtcpSalt: Buffer;
}

export interface SrtpTestBinding {
  SrtpTestContext: new (suite: SrtpSuiteName, masterKey: Buffer, masterSalt: Buffer, options?: SrtpContextOptions) => SrtpTestContext;
  suites(): SrtpSuiteDescription[];
  deriveKeys(suite: SrtpSuiteName, masterKey: Buffer, masterSalt: Buffer): SrtpSessionKeys;
  aesCmKeystream(key: Buffer, iv: Buffer, length: number): Buffer;
  /** Native per-packet cost of protect and unprotect (bench/ only). */
  bench(suite: SrtpSuiteName, packets: number, payloadBytes: number): { protectNs: number; unprotectNs: number };
}

function isSrtpTestBinding(v: unknown): v is SrtpTestBinding {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return ['SrtpTestContext', 'suites', 'deriveKeys', 'aesCmKeystream', 'bench'].every((k) => typeof o[k] === 'function');
}

export function loadSrtpTestBinding(): SrtpTestBinding {
  const binding = nativeAddonExport('srtpTest');
  if (!isSrtpTestBinding(binding)) throw new Error('native addon has no srtpTest binding (rebuild with npm run build:native)');
  return binding;
}
