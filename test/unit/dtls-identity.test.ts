/**
 * The DTLS certificate kept in the state dir (src/state/dtls-identity.ts): saved, read back for the same
 * options only, and anything unusable (damaged, truncated, another key, other options) means a new
 * certificate with one warning, never a failed start.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createNativeDataPlane } from '../../src/dataplane/native';
import { DEFAULT_DTLS_CERTIFICATE, dtlsOptionsWithSaved, keepDtlsIdentity, readDtlsIdentity, writeDtlsIdentity } from '../../src/state/dtls-identity';
import type { DtlsCertificatePem } from '../../src/dataplane/types';

let dir: string;
let pem: DtlsCertificatePem;
const file = (): string => path.join(dir, 'dtls-identity.state');

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'ngrelay-dtls-id-'));
  const engine = createNativeDataPlane({ threads: 1, receiveBufferBytes: 0, dtls: DEFAULT_DTLS_CERTIFICATE });
  pem = engine.dtlsCertificate!();
  engine.close();
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('DTLS identity in the state dir', () => {
  it('is written (mode 0600) and read back for the same options; other options make a new one', () => {
    expect(readDtlsIdentity(dir, DEFAULT_DTLS_CERTIFICATE)).toEqual({ kind: 'none', why: null });
    writeDtlsIdentity(dir, DEFAULT_DTLS_CERTIFICATE, pem, false);
    expect(statSync(file()).mode & 0o777).toBe(0o600);
    expect(readDtlsIdentity(dir, DEFAULT_DTLS_CERTIFICATE)).toEqual({ kind: 'saved', pem });
    expect(readDtlsIdentity(dir, { ...DEFAULT_DTLS_CERTIFICATE, cipher: 'rsa' })).toMatchObject({ kind: 'none', why: expect.stringMatching(/other --dtls-cert-cipher/) });
    // The RSA key size matters for RSA only.
    expect(readDtlsIdentity(dir, { ...DEFAULT_DTLS_CERTIFICATE, rsaKeyBits: 4096 }).kind).toBe('saved');
  });

  it('a damaged or truncated file, or a key of another certificate, is not used (and says why)', () => {
    writeDtlsIdentity(dir, DEFAULT_DTLS_CERTIFICATE, pem, false);
    const bytes = readFileSync(file());
    writeFileSync(file(), bytes.subarray(0, bytes.length - 10));
    expect(readDtlsIdentity(dir, DEFAULT_DTLS_CERTIFICATE)).toMatchObject({ kind: 'none', why: expect.stringMatching(/^truncated/) });
    const otherKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    writeDtlsIdentity(dir, DEFAULT_DTLS_CERTIFICATE, { certificatePem: pem.certificatePem, privateKeyPem: otherKey }, false);
    expect(readDtlsIdentity(dir, DEFAULT_DTLS_CERTIFICATE)).toMatchObject({ kind: 'none', why: expect.stringMatching(/does not belong/) });
  });

  it('dtlsOptionsWithSaved / keepDtlsIdentity: the saved one is used, a new one saved, a bad file warned about once', () => {
    const warnings: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => warnings.push(line) });
    expect(dtlsOptionsWithSaved(dir, undefined, logger)).toEqual(DEFAULT_DTLS_CERTIFICATE);
    keepDtlsIdentity(dir, DEFAULT_DTLS_CERTIFICATE, pem, false, logger);
    const options = dtlsOptionsWithSaved(dir, DEFAULT_DTLS_CERTIFICATE, logger);
    expect(options).toEqual({ ...DEFAULT_DTLS_CERTIFICATE, ...pem });
    expect(warnings).toEqual([]);
    writeFileSync(file(), 'junk');
    expect(dtlsOptionsWithSaved(dir, DEFAULT_DTLS_CERTIFICATE, logger)).toEqual(DEFAULT_DTLS_CERTIFICATE);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('saved DTLS certificate not used');
  });
});
