/**
 * Types for the test-only STUN/ICE surface of the addon (`stunTest`, native/src/stun_binding.cpp): the codec
 * and ICE-lite decisions the engine runs on its I/O threads, callable on single datagrams.
 */
import { nativeAddonExport } from './native';
import type { Endpoint } from './types';

export interface ParsedStun {
  /** null = parsed; else why not (stunErrorName in native/src/stun.cpp). */
  error: 'too-short' | 'too-long' | 'not-stun' | 'bad-length' | 'bad-attribute' | 'bad-fingerprint' | null;
  type?: number;
  transactionId?: Buffer;
  username?: string | null;
  priority?: number | null;
  useCandidate?: boolean;
  controlling?: boolean;
  controlled?: boolean;
  /** 16 hex digits of ICE-CONTROLLING/CONTROLLED. */
  tieBreaker?: string | null;
  xorMapped?: Endpoint | null;
  errorCode?: number | null;
  hasIntegrity?: boolean;
  hasFingerprint?: boolean;
}

export interface StunIceConfig {
  localUfrag: string;
  localPwd: string;
  remoteUfrag?: string | null;
  controlling: boolean;
  lite: boolean;
  tieBreaker: string;
}

export interface IceDecision {
  verdict: 'reject' | 'ignore' | 'answer' | 'role-conflict';
  nominate: boolean;
  switchRole: boolean;
}

export interface StunTestBinding {
  parse(datagram: Buffer): ParsedStun;
  /** MESSAGE-INTEGRITY verifies with the short-term key (password). */
  integrityOk(datagram: Buffer, key: string): boolean;
  crc32(data: Buffer): number;
  /** What the ICE-lite responder decides about a binding request, in role `controllingNow`. */
  decide(request: Buffer, config: StunIceConfig, controllingNow: boolean): IceDecision;
  /** The response the responder sends (success with XOR-MAPPED-ADDRESS of `from`, or 487). */
  answer(request: Buffer, config: StunIceConfig, from: Endpoint, roleConflict: boolean): Buffer;
}

function isStunTestBinding(v: unknown): v is StunTestBinding {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return ['parse', 'integrityOk', 'crc32', 'decide', 'answer'].every((k) => typeof o[k] === 'function');
}

export function loadStunTestBinding(): StunTestBinding {
  const binding = nativeAddonExport('stunTest');
  if (!isStunTestBinding(binding)) throw new Error('native addon has no stunTest binding (rebuild with npm run build:native)');
  return binding;
}
