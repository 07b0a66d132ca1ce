/**
 * The SRTP crypto suites the native SRTP core implements: the one table of their names and key, salt and tag
 * lengths. SDES (src/sdp/crypto.ts), the test/bench binding (srtp-binding.ts) and bench/run.js (through
 * dist/) read it; test/unit/srtp-suites.test.ts checks it against the list the native addon reports.
 */
import type { SrtpSuiteName } from './types';

export interface SrtpSuite {
  name: SrtpSuiteName;
  masterKeyLength: number;
  masterSaltLength: number;
  /** Bytes of authentication tag on SRTP / SRTCP packets. */
  srtpTagLength: number;
  srtcpTagLength: number;
  aead: boolean;
}

/** In rtpengine's preference order (reference §7), strongest first; SDES offers list them in this order. */
export const SRTP_SUITES: readonly SrtpSuite[] = [
  { name: 'AEAD_AES_256_GCM', masterKeyLength: 32, masterSaltLength: 12, srtpTagLength: 16, srtcpTagLength: 16, aead: true },
  { name: 'AEAD_AES_128_GCM', masterKeyLength: 16, masterSaltLength: 12, srtpTagLength: 16, srtcpTagLength: 16, aead: true },
  { name: 'AES_256_CM_HMAC_SHA1_80', masterKeyLength: 32, masterSaltLength: 14, srtpTagLength: 10, srtcpTagLength: 10, aead: false },
  { name: 'AES_256_CM_HMAC_SHA1_32', masterKeyLength: 32, masterSaltLength: 14, srtpTagLength: 4, srtcpTagLength: 10, aead: false },
  { name: 'AES_CM_128_HMAC_SHA1_80', masterKeyLength: 16, masterSaltLength: 14, srtpTagLength: 10, srtcpTagLength: 10, aead: false },
  { name: 'AES_CM_128_HMAC_SHA1_32', masterKeyLength: 16, masterSaltLength: 14, srtpTagLength: 4, srtcpTagLength: 10, aead: false },
];

export function srtpSuite(name: string): SrtpSuite | undefined {
  return SRTP_SUITES.find((s) => s.name === name);
}

/** DTLS-SRTP protection profiles (RFC 5764 §4.1.2, RFC 7714 §14.2) by the SDES name of the same suite. */
export const DTLS_SRTP_PROFILES: Readonly<Record<string, SrtpSuiteName>> = {
  SRTP_AES128_CM_SHA1_80: 'AES_CM_128_HMAC_SHA1_80',
  SRTP_AES128_CM_SHA1_32: 'AES_CM_128_HMAC_SHA1_32',
  SRTP_AEAD_AES_128_GCM: 'AEAD_AES_128_GCM',
  SRTP_AEAD_AES_256_GCM: 'AEAD_AES_256_GCM',
};
