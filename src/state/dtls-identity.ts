/**
 * The relay's DTLS certificate across restarts (`--state-dir`): a DTLS-SRTP call restored without a new
 * handshake keeps the keys of the old one, and any later handshake (re-INVITE, ICE restart) must present
 * the certificate whose a=fingerprint the party already has. So the certificate and its key are kept in
 * `DIR/dtls-identity.state` (a state file: header, checksum, msgpackr; mode 0600 in the 0700 dir), with the
 * options it was made for: changed `--dtls-cert-cipher` / `--dtls-rsa-key-size` / `--dtls-signature` make a
 * new one. With `--redis` the same record is kept in Redis too (redis-dtls-identity.ts chooses at start).
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import path from 'node:path';
import type { Logger } from '../logger';
import type { DtlsCertificateOptions, DtlsCertificatePem } from '../dataplane/types';
import { StateFileError, decodeStateFile, encodeStateFile, readStateFile, writeFileAtomic } from './state-file';

const IDENTITY_FILE = 'dtls-identity.state';

/** rtpengine's defaults (--dtls-cert-cipher=prime256v1, --dtls-rsa-key-size=2048, --dtls-signature=sha-256). */
export const DEFAULT_DTLS_CERTIFICATE: DtlsCertificateOptions = { cipher: 'prime256v1', rsaKeyBits: 2048, signature: 'sha-256' };

interface IdentityFile {
  options: Pick<DtlsCertificateOptions, 'cipher' | 'rsaKeyBits' | 'signature'>;
  certificatePem: string;
  privateKeyPem: string;
}

function isIdentityFile(v: unknown): v is IdentityFile {
  if (typeof v !== 'object' || v === null) return false;
  const f = v as Partial<IdentityFile>;
  return typeof f.certificatePem === 'string' && typeof f.privateKeyPem === 'string' && typeof f.options === 'object' && f.options !== null;
}

function sameOptions(a: IdentityFile['options'], b: DtlsCertificateOptions): boolean {
  return a.cipher === b.cipher && a.signature === b.signature && (a.cipher !== 'rsa' || a.rsaKeyBits === b.rsaKeyBits);
}

export type SavedIdentity =
  | { kind: 'saved'; pem: DtlsCertificatePem }
  /** Nothing usable saved (first start, other options, unreadable file): a new certificate is made. */
  | { kind: 'none'; why: string | null };

/** A decoded identity (state file or Redis key) checked against the options; never throws. */
function identityFromBody(body: unknown, options: DtlsCertificateOptions): SavedIdentity {
  if (!isIdentityFile(body)) return { kind: 'none', why: 'corrupt: payload is not a DTLS identity' };
  if (!sameOptions(body.options, options)) return { kind: 'none', why: 'made for other --dtls-cert-cipher/--dtls-rsa-key-size/--dtls-signature' };
  // Checked here, so that the engine is never handed a certificate it would refuse at start.
  try {
    if (!new X509Certificate(body.certificatePem).checkPrivateKey(createPrivateKey(body.privateKeyPem))) {
      return { kind: 'none', why: 'corrupt: the private key does not belong to the certificate' };
    }
  } catch (err) {
    return { kind: 'none', why: `corrupt: ${(err as Error).message}` };
  }
  return { kind: 'saved', pem: { certificatePem: body.certificatePem, privateKeyPem: body.privateKeyPem } };
}

function describeReadError(err: unknown): string {
  return err instanceof StateFileError ? `${err.reason}: ${err.message}` : (err as Error).message;
}

/** The saved certificate for these options; never throws (a bad file only means a new certificate). */
export function readDtlsIdentity(dir: string, options: DtlsCertificateOptions): SavedIdentity {
  let body: unknown;
  try {
    body = readStateFile('dtls-identity', path.join(dir, IDENTITY_FILE));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'none', why: null };
    return { kind: 'none', why: describeReadError(err) };
  }
  return identityFromBody(body, options);
}

/** The same record as the state file's, from other bytes (a Redis key); never throws. */
export function decodeDtlsIdentity(bytes: Buffer, options: DtlsCertificateOptions): SavedIdentity {
  let body: unknown;
  try {
    body = decodeStateFile('dtls-identity', bytes);
  } catch (err) {
    return { kind: 'none', why: describeReadError(err) };
  }
  return identityFromBody(body, options);
}

/** The certificate options for the engine: with the saved certificate when there is a usable one. */
export function dtlsOptionsWithSaved(dir: string, options: DtlsCertificateOptions | undefined, logger: Logger): DtlsCertificateOptions {
  const base = options ?? DEFAULT_DTLS_CERTIFICATE;
  const saved = readDtlsIdentity(dir, base);
  if (saved.kind === 'saved') return { ...base, ...saved.pem };
  if (saved.why !== null) logger.warn({ file: path.join(dir, IDENTITY_FILE), reason: saved.why }, 'saved DTLS certificate not used; a new one is made (restored DTLS calls keep their keys, a new handshake would show the party another fingerprint)');
  return base;
}

/**
 * After the state dir exists: the engine's certificate is saved unless the dir holds it already (it may
 * have come from Redis: redis-dtls-identity.ts).
 */
export function keepDtlsIdentity(dir: string, options: DtlsCertificateOptions, current: DtlsCertificatePem, fsync: boolean, logger: Logger): void {
  const saved = readDtlsIdentity(dir, options);
  if (saved.kind === 'saved' && saved.pem.certificatePem === current.certificatePem) return;
  try {
    writeDtlsIdentity(dir, options, current, fsync);
  } catch (err) {
    logger.error({ dir, err: (err as Error).message }, 'cannot save the DTLS certificate: after a restart DTLS calls would see another fingerprint');
  }
}

export function encodeDtlsIdentity(options: DtlsCertificateOptions, pem: DtlsCertificatePem): Buffer {
  const body: IdentityFile = {
    options: { cipher: options.cipher, rsaKeyBits: options.rsaKeyBits, signature: options.signature },
    certificatePem: pem.certificatePem,
    privateKeyPem: pem.privateKeyPem,
  };
  return encodeStateFile('dtls-identity', body);
}

export function writeDtlsIdentity(dir: string, options: DtlsCertificateOptions, pem: DtlsCertificatePem, fsync: boolean): void {
  writeFileAtomic(path.join(dir, IDENTITY_FILE), encodeDtlsIdentity(options, pem), fsync);
}
